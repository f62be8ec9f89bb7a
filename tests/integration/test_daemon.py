#!/usr/bin/env python3
"""Integration tests for airlockd and the airlock client commands that talk
to it (issue 5; protocol: docs/protocol.md). Every test starts a real
airlockd on a temporary state directory and socket, waits for its readiness
log line (never a fixed sleep) and always stops it.

    python3 tests/integration/test_daemon.py BUILD_DIR [WORD...]

BUILD_DIR holds the airlock and airlockd under test (build or build-asan).
Extra WORDs select the tests whose names contain any of them.

Output: one line per test, "ok - NAME", "not ok - NAME" followed by indented
details, or "skip - NAME: reason"; then "N passed, N failed, N skipped".
Exit status 1 if any test failed. With CI=true a skip counts as a failure.

Python 3 standard library only.
"""

import base64
import json
import resource
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import harness
from harness import Failure, check, check_eq, note, test, wait_for

AIRLOCK = None   # set from argv in main()
AIRLOCKD = None
NOBODY = 65534
SHIPPED_POLICIES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "policy", "policies")
WAIT = 30        # seconds any single wait may take before the test fails

SLEEPER = b"#!/bin/sh\nsleep \"${1:-0}\"\necho slept\n"
ECHO = b"#!/bin/sh\necho \"out:$*\"\necho \"err:$#\" >&2\nexit \"${EXIT:-0}\"\n"
FAILING = b"#!/bin/sh\necho broken >&2\nexit 3\n"
CRASHER = b"#!/bin/sh\nif [ \"$1\" = crash ]; then kill -SEGV $$; fi\necho fine\n"


# -------------------------------------------------------------- test state

DAEMONS = []  # the daemons of the current test, stopped after it
DAEMON_LOG = []  # the tail of their logs, for the failure report


# ------------------------------------------------------------------ daemon

class Daemon:
    """An airlockd on its own state directory and socket. Its stderr (JSON
    log lines) is collected by a thread so it can never block."""

    def __init__(self, args=(), env=None, state=None, prefix=(), cwd=None):
        self.prefix = list(prefix)  # e.g. unshare: run airlockd through it
        self.cwd = cwd  # where airlockd is started (it works from / anyway)
        self.tmp = tempfile.mkdtemp(prefix="airlockd-test-")
        os.chmod(self.tmp, 0o755)
        self.state = state or os.path.join(self.tmp, "state")
        self.sock = os.path.join(self.tmp, "airlock.sock")
        self.args = list(args)
        # no HTTP unless a test asks (METRICS_PORT or --metrics-listen):
        # daemons of parallel tests would all want port 9100
        self.env = dict(os.environ, METRICS_PORT="0")
        # airlockd never looks in the source tree beside its binary (a
        # build tree may be anyone's): name the shipped policies
        self.env.setdefault("AIRLOCK_POLICY_PATH", SHIPPED_POLICIES)
        self.env.update(env or {})
        self.log = []
        self.proc = None
        DAEMONS.append(self)
        self.start()

    def start(self):
        cmd = self.prefix + [AIRLOCKD, "--state-dir", self.state,
                             "--socket", self.sock, "--tick", "1s"] + self.args
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=self.env,
                                     cwd=self.cwd)
        ready = threading.Event()

        def drain(proc=self.proc):
            for raw in proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.log.append(line)
                if '"msg":"ready' in line:
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(WAIT) or self.proc.poll() is not None:
            raise Failure("airlockd did not become ready:\n" +
                          "\n".join(self.log[-20:]))

    def stop(self, sig=signal.SIGTERM, timeout=WAIT + 35):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Failure(f"airlockd did not stop within {timeout} s")
        return self.proc.returncode

    def cleanup(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(WAIT)
        s.connect(self.sock)
        return Client(s)

    def request(self, obj):
        with self.connect() as c:
            return c.request(obj)

    def airlock(self, *args, check_status=None):
        """Run the airlock client against this daemon: (status, out, err)."""
        p = subprocess.run([AIRLOCK] + list(args), capture_output=True,
                           stdin=subprocess.DEVNULL,  # exec would send a pipe
                           timeout=WAIT, env=dict(os.environ, AIRLOCK_SOCKET=self.sock))
        if check_status is not None and p.returncode != check_status:
            raise Failure(f"airlock {' '.join(args)}: exit {p.returncode}, "
                          f"expected {check_status}; stderr {p.stderr[-400:]!r}")
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def submit(self, name, content, **extra):
        req = {"op": "submit", "name": name,
               "content": base64.b64encode(content).decode()}
        req.update(extra)
        return self.request(req)


class Client:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, obj):
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def recv(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Failure(f"connection closed; got {self.buf[:200]!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError as e:
            raise Failure(f"response is not JSON ({e}): {line[:200]!r}")

    def request(self, obj):
        self.send(obj)
        return self.recv()


def expect_error(resp, code):
    check(resp.get("ok") is False, f"expected an error {code}, got {resp}")
    check_eq(resp.get("error", {}).get("code"), code, "error code")
    check(resp["error"].get("message"), "error without a message")


def run_prefixes(owners):
    """The run cgroup name prefixes of these airlockd pids (None: any run).
    The machine may be shared with other airlock tests: count only ours."""
    return ("run-",) if owners is None else tuple(f"run-{p}-" for p in owners)


def run_cgroups(owners=None):
    """run-* cgroup directories of the airlockd pids `owners`, on either
    hierarchy (harness.run_cgroups)."""
    return harness.run_cgroups(run_prefixes(owners))


def jail_processes(owners=None):
    """Jail inits (airlock-init) in the run cgroups of the airlockd pids
    `owners` (None: every one on the machine)."""
    prefixes = tuple("/" + p for p in run_prefixes(owners))
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() != "airlock-init":
                        continue
                with open(f"/proc/{entry}/cgroup") as f:
                    if any(p in f.read() for p in prefixes):
                        found.append(int(entry))
            except OSError:
                pass
    return found


# =================================================================== tests

@test("submit: a good module is validated and becomes active")
def t_submit_active():
    d = Daemon()
    path = os.path.join(d.tmp, "hello.sh")
    with open(path, "wb") as f:
        f.write(ECHO)
    status, out, err = d.airlock("submit", path, "--name", "hello", check_status=0)
    check("hello version 1: active" in out, f"submit printed {out!r}")
    r = d.request({"op": "show", "name": "hello"})
    check_eq(r["module"]["state"], "active", "state")
    check_eq(r["runs"][0]["verdict"], "ok", "validation run verdict")


@test("submit: a failing module is rejected, with its result")
def t_submit_rejected():
    d = Daemon()
    r = d.submit("bad", FAILING, id="s1")
    expect_error(r, "rejected")
    check_eq(r.get("id"), "s1", "echoed id")
    check_eq(r["module"]["state"], "rejected", "state")
    check_eq(r["result"]["verdict"], "exit_nonzero", "verdict")
    check_eq(r["result"]["exit_code"], 3, "exit_code")
    check_eq(r["result"]["stderr"], "broken\n", "stderr")
    expect_error(d.request({"op": "exec", "name": "bad"}), "not_found")


@test("exec: output, arguments and exit code round-trip (client and socket)")
def t_exec_roundtrip():
    d = Daemon()
    check(d.submit("echo", ECHO)["ok"], "submit failed")
    r = d.request({"op": "exec", "name": "echo", "args": ["a b", "c"]})
    check(r["ok"], f"exec failed: {r}")
    check_eq(r["result"]["stdout"], "out:a b c\n", "stdout")
    check_eq(r["result"]["stderr"], "err:2\n", "stderr")
    status, out, err = d.airlock("exec", "echo", "x", "y")
    check_eq(status, 0, "airlock exec status")
    check_eq(out, "out:x y\n", "airlock exec stdout")
    check("err:2" in err, f"airlock exec stderr {err!r}")
    status, out, _ = d.airlock("exec", "--json", "echo")
    check_eq(json.loads(out)["result"]["verdict"], "ok", "--json verdict")


def send_with_fds(c, obj, fds):
    """One request line with `fds` attached to its first byte (SCM_RIGHTS)."""
    data = json.dumps(obj).encode() + b"\n"
    n = socket.send_fds(c.sock, [data], fds)
    c.send_raw(data[n:])


@test("submit by fd: a file, a pipe, and airlock submit (default fd, --base64)")
def t_submit_fd():
    d = Daemon()
    path = os.path.join(d.tmp, "echo.sh")
    with open(path, "wb") as f:
        f.write(ECHO)
    with d.connect() as c, open(path, "rb") as f:
        send_with_fds(c, {"op": "submit", "id": "f", "name": "byfd",
                          "content_fd": True}, [f.fileno()])
        r = c.recv()
        check(r.get("ok"), f"fd submit failed: {r}")
        check_eq(r["module"]["size"], len(ECHO), "size")
        # a finished pipe (written, write end closed) is accepted
        rfd, wfd = os.pipe()
        os.write(wfd, ECHO)
        os.close(wfd)
        send_with_fds(c, {"op": "submit", "name": "bypipe", "content_fd": True}, [rfd])
        os.close(rfd)
        r = c.recv()
        check(r.get("ok"), f"pipe submit failed: {r}")
        # a pipe whose writer is still open is refused at once, not waited for
        rfd, wfd = os.pipe()
        os.write(wfd, ECHO)
        send_with_fds(c, {"op": "submit", "name": "open", "content_fd": True}, [rfd])
        r = c.recv()
        os.close(rfd)
        os.close(wfd)
        expect_error(r, "bad_request")
        check("write end" in r["error"]["message"], f"message {r['error']!r}")
    d.airlock("submit", path, "--name", "cli", check_status=0)
    check(any("from fd" in l and "submit cli" in l for l in d.log),
          "airlock submit did not pass the file's fd")
    d.airlock("submit", path, "--name", "cli64", "--base64", check_status=0)
    r = d.request({"op": "exec", "name": "cli", "args": ["z"]})
    check_eq(r["result"]["stdout"], "out:z\n", "exec of the fd-submitted module")


@test("submit by fd: two fds, a directory, too large, stray fd: errors; connection usable")
def t_submit_fd_errors():
    d = Daemon(args=["--max-request", "4096"])
    path = os.path.join(d.tmp, "echo.sh")
    with open(path, "wb") as f:
        f.write(ECHO)
    big = os.path.join(d.tmp, "big.sh")
    with open(big, "wb") as f:
        f.write(b"#!/bin/sh\n" + b"#" * 4096 + b"\n")
    req = {"op": "submit", "id": "x", "name": "m", "content_fd": True}
    with d.connect() as c, open(path, "rb") as f, open(big, "rb") as g:
        send_with_fds(c, req, [f.fileno(), f.fileno()])
        r = c.recv()
        expect_error(r, "bad_request")
        check_eq(r.get("id"), "x", "echoed id")
        dfd = os.open(d.tmp, os.O_RDONLY | os.O_DIRECTORY)
        send_with_fds(c, req, [dfd])
        os.close(dfd)
        r = c.recv()
        expect_error(r, "bad_request")
        check("directory" in r["error"]["message"], f"message {r['error']!r}")
        send_with_fds(c, req, [g.fileno()])
        expect_error(c.recv(), "too_large")
        send_with_fds(c, {"op": "status"}, [f.fileno()])  # an fd nobody uses
        expect_error(c.recv(), "bad_request")
        c.send(req)  # content_fd without an fd
        expect_error(c.recv(), "bad_request")
        check(c.request({"op": "health"})["ok"], "connection unusable after fd errors")
        send_with_fds(c, dict(req, id="ok"), [f.fileno()])
        r = c.recv()
        check(r.get("ok") and r["id"] == "ok", f"fd submit after errors: {r}")
    fds = os.listdir(f"/proc/{d.proc.pid}/fd")
    check(len(fds) < 30, f"airlockd holds {len(fds)} fds: passed ones leaked?")


@test("docs/client.py: the example client submits (by fd and base64), execs, prints the result")
def t_example_client():
    d = Daemon()
    path = os.path.join(d.tmp, "greet.sh")
    with open(path, "wb") as f:
        f.write(ECHO)
    client = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "..", "..", "docs", "client.py")
    for version, extra in ((1, []), (2, ["--base64"])):
        if version == 2:  # identical content would answer version 1, unchanged
            with open(path, "ab") as f:
                f.write(b"# version 2\n")
        p = subprocess.run([sys.executable, client, "--socket", d.sock] + extra +
                           [path, "a", "b"],
                           capture_output=True, timeout=WAIT, env=dict(os.environ))
        out, err = p.stdout.decode(), p.stderr.decode()
        check_eq(p.returncode, 0, f"client {extra} exit status (stderr {err[-300:]!r})")
        check(f"submit: greet.sh version {version}: active" in out, f"client printed {out!r}")
        check("verdict ok, exit status 0" in out, f"client printed {out!r}")
        check(out.endswith("out:a b\n"), f"module stdout not printed: {out!r}")
        check_eq(err, "err:2\n", "module stderr")
    runs = d.request({"op": "show", "name": "greet.sh"})["runs"]
    check(runs and runs[0]["verdict"] == "ok", f"recorded runs {runs}")
    check_eq([("from fd" in l) for l in d.log if "submit greet.sh" in l], [True, False],
             "how each version travelled (airlockd's log)")


@test("auto-archive: a crash archives the module; exec answers archived until restore")
def t_auto_archive():
    d = Daemon()
    check(d.submit("crasher", CRASHER)["ok"], "submit failed")
    r = d.request({"op": "exec", "name": "crasher", "args": ["crash"]})
    check(r["ok"], f"exec failed: {r}")
    check_eq(r["result"]["verdict"], "crashed", "verdict")
    check_eq(r["archived"], True, "archived flag")
    check_eq(r["module"]["state"], "archived", "state")
    sha = r["module"]["sha256"]
    check(os.path.exists(os.path.join(d.state, "archive", sha)), "file not in archive/")
    check(not os.path.exists(os.path.join(d.state, "modules", sha)), "file still in modules/")
    expect_error(d.request({"op": "exec", "name": "crasher"}), "archived")
    status, _, err = d.airlock("exec", "crasher")
    check(status != 0 and "archived" in err, f"airlock exec: {status} {err!r}")
    st = d.request({"op": "status"})
    check_eq(st["counters"]["auto_archives_total"], 1, "auto_archives counter")
    d.airlock("restore", "crasher", check_status=0)
    r = d.request({"op": "exec", "name": "crasher"})
    check_eq(r["result"]["stdout"], "fine\n", "stdout after restore")


# A module that, given "hide", stacks a filter of its own failing ptrace
# with EPERM (prctl PR_SET_SECCOMP) and then calls ptrace: were the filter
# in, the jail's denial would become a quiet error, the run ok and the
# module never archived.
HIDER = b"""#!/usr/bin/python3
import ctypes, platform, sys
if sys.argv[1:] != ["hide"]:
    print("fine")
    sys.exit(0)
libc = ctypes.CDLL(None, use_errno=True)
class Insn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte),
                ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Insn))]
# ld nr; jeq ptrace ? errno EPERM : allow
ptrace_nr = {"x86_64": 101, "aarch64": 117}[platform.machine()]
insns = (Insn * 4)((0x20, 0, 0, 0), (0x15, 0, 1, ptrace_nr),
                   (0x06, 0, 0, 0x00050001), (0x06, 0, 0, 0x7fff0000))
prog = Prog(4, insns)
rc = libc.prctl(22, 2, ctypes.byref(prog), 0, 0)
print("filter", "installed" if rc == 0 else "refused", ctypes.get_errno(), flush=True)
libc.ptrace(0, 0, 0, 0)
print("ptrace failed quietly", ctypes.get_errno(), flush=True)
"""


@test("auto-archive: a module hiding ptrace behind a filter of its own is archived")
def t_hidden_denial_archived():
    d = Daemon()
    check(d.submit("hider", HIDER)["ok"], "submit failed")
    r = d.request({"op": "exec", "name": "hider", "args": ["hide"]})
    check(r["ok"], f"exec failed: {r}")
    check_eq(r["result"]["stdout"], "filter refused 22\n", "the module's own filter")
    check_eq(r["result"]["verdict"], "seccomp_violation", "verdict")
    check_eq(r["result"]["syscall"], "ptrace", "syscall")
    check_eq(r["archived"], True, "archived flag")


@test("admission: MAX_ACTIVE_GENERATIONS=2, ten sleepers never more than two at once")
def t_concurrency():
    d = Daemon(env={"MAX_ACTIVE_GENERATIONS": "2"})
    check(d.submit("sleeper", SLEEPER)["ok"], "submit failed")
    with d.connect() as c:  # pipelined on one connection
        for i in range(10):
            c.send({"op": "exec", "id": str(i), "name": "sleeper", "args": ["0.3"]})
        peak = 0
        got = {}
        while len(got) < 10:
            r = c.recv()
            check(r.get("ok"), f"exec failed: {r}")
            got[r["id"]] = r
    runs = d.request({"op": "runs", "name": "sleeper", "limit": 100})["runs"]
    runs = [r for r in runs if r["verdict"] == "ok" and r["ended_ms"]]
    check_eq(len(runs), 11, "runs recorded (validation + 10)")
    events = sorted([(r["started_ms"], 1) for r in runs] + [(r["ended_ms"], -1) for r in runs],
                    key=lambda e: (e[0], e[1]))
    level = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    check(peak <= 2, f"{peak} runs overlapped")
    note(f"peak concurrency {peak}")


@test("admission: past the queue, overloaded at once")
def t_overloaded():
    d = Daemon(args=["--max-active", "1", "--queue-max", "1"])
    check(d.submit("sleeper", SLEEPER)["ok"], "submit failed")
    with d.connect() as c:
        for i in range(3):
            c.send({"op": "exec", "id": str(i), "name": "sleeper", "args": ["1"]})
        first = c.recv()
        expect_error(first, "overloaded")
        check_eq(first["id"], "2", "the third request is the one refused")
        check(c.recv()["ok"] and c.recv()["ok"], "the admitted runs failed")


@test("cancel: a queued run is removed and answered cancelled (--max-active 1)")
def t_cancel_queued():
    d = Daemon(args=["--max-active", "1"])
    check(d.submit("sleeper", SLEEPER)["ok"], "submit failed")
    with d.connect() as c:
        c.send({"op": "exec", "id": "run", "name": "sleeper", "args": ["1"]})
        wait_for(lambda: d.request({"op": "status"})["active_runs"] == 1, "the run to start")
        c.send({"op": "exec", "id": "q1", "name": "sleeper", "args": ["0"]})
        c.send({"op": "submit", "id": "q2", "name": "sleeper",  # a new version
                "content": base64.b64encode(SLEEPER + b"# v2\n").decode()})
        wait_for(lambda: d.request({"op": "status"})["queue_depth"] == 2, "two queued")
        status, out, err = d.airlock("cancel", "sleeper", check_status=0)
        check("2 queued runs of sleeper cancelled" in out, f"airlock cancel printed {out!r}")
        got = {}
        for _ in range(3):
            r = c.recv()
            got[r["id"]] = r
        expect_error(got["q1"], "cancelled")
        expect_error(got["q2"], "cancelled")
        check(got["run"]["ok"], f"the running run was disturbed: {got['run']}")
    check_eq(d.request({"op": "status"})["queue_depth"], 0, "queue depth")
    expect_error(d.request({"op": "cancel", "name": "sleeper"}), "not_found")
    mods = d.request({"op": "list", "name": "sleeper"})["modules"]
    check_eq(sorted(m["state"] for m in mods), ["active", "rejected"],
             "the cancelled validation's module is rejected")
    runs = d.request({"op": "runs", "name": "sleeper", "limit": 100})["runs"]
    check_eq(len(runs), 2, "runs recorded (validation + the one that ran)")


@test("admission: per-uid quota answers rate_limited with retry_after_ms")
def t_rate_limited():
    harness.within_one_quota_hour()
    d = Daemon(args=["--quota-per-hour", "2"])
    check(d.submit("echo", ECHO)["ok"], "submit failed")  # 1
    check(d.request({"op": "exec", "name": "echo"})["ok"], "exec failed")  # 2
    r = d.request({"op": "exec", "name": "echo"})
    expect_error(r, "rate_limited")
    check(r["error"].get("retry_after_ms", 0) > 0, "no retry_after_ms")


@test("admission: --quota-per-day answers rate_limited until QUOTA_RESET_HOUR")
def t_daily_quota():
    harness.within_one_quota_hour()
    d = Daemon(args=["--quota-per-day", "2"], env={"QUOTA_RESET_HOUR": "5"})
    check(d.submit("echo", ECHO)["ok"], "submit failed")  # 1
    check(d.request({"op": "exec", "name": "echo"})["ok"], "exec failed")  # 2
    r = d.request({"op": "exec", "name": "echo"})
    expect_error(r, "rate_limited")
    check("05:00 UTC" in r["error"]["message"], f"message {r['error']!r}")
    now_ms = time.time() * 1000
    reset = (int((now_ms - 5 * 3600000) // 86400000) + 1) * 86400000 + 5 * 3600000
    retry = r["error"].get("retry_after_ms", 0)
    check(abs(now_ms + retry - reset) < 60000,
          f"retry_after_ms {retry} does not end at the next 05:00 UTC")
    q = d.request({"op": "status"})["quota"]
    check_eq((q["per_day"], q["used_today"], q["reset_hour_utc"]), (2, 2, 5),
             "status quota")
    _, out, _ = d.airlock("status", check_status=0)
    for section in ("\nruns\n", "\nregistry\n", "\nsince start\n",
                    "\nquotas (per hour 0, per day 2; 0: none; days start 05:00 UTC)\n"):
        check(section in out, f"airlock status: no {section.strip()!r} section:\n{out}")
    for line in (r"^airlockd .*, healthy$", r"^  modules by state .* active 1 ",
                 r"^  0 +2 +2 of 2 \(0 left\)$", r"^  rate-limit hits +1$"):
        check(re.search(line, out, re.M), f"airlock status: no line {line!r}:\n{out}")
    _, out, _ = d.airlock("status", "--json", check_status=0)
    check_eq(json.loads(out)["quota"]["used_today"], 2, "status --json")


# Each bad value names its variable; airlockd exits 2 before binding anything.
BAD_ENV = [
    ("SANDBOX_MEM_MB", "64M"), ("SANDBOX_MEM_MB", "2"),
    ("SANDBOX_MEM_MB", "8"),  # below the default policy's 16M /tmp
    ("SANDBOX_TIMEOUT_MS", "3s"), ("SANDBOX_TIMEOUT_MS", "0"),
    ("SYSTEM_TICK_MS", "50"), ("MAX_ACTIVE_GENERATIONS", "0"),
    ("ARCHIVE_RETENTION_DAYS", "-1"), ("LOG_LEVEL", "verbose"),
    ("LOG_PRETTY", "yes"), ("QUOTA_RESET_HOUR", "24"),
    ("METRICS_PORT", "65536"), ("METRICS_PORT", "http"),
    ("PROM_API_KEY", "short"), ("DATABASE_URL", "postgres:///airlock"),
    ("DATABASE_URL", "mysql://db/airlock"),
    ("DATABASE_URL", "sqlite:///tmp/elsewhere.db"),
]


@test("configuration: each bad environment value stops start-up (exit 2, names it)")
def t_bad_env():
    tmp = tempfile.mkdtemp(prefix="airlockd-env-")
    try:
        sock = os.path.join(tmp, "airlock.sock")
        for name, value in BAD_ENV:
            p = subprocess.run([AIRLOCKD, "--state-dir", os.path.join(tmp, "state"),
                                "--socket", sock],
                               capture_output=True, timeout=WAIT,
                               env=dict(os.environ, **{name: value}))
            err = p.stderr.decode()
            check_eq(p.returncode, 2, f"{name}={value} exit status (stderr {err!r})")
            check(name in err, f"{name}={value}: stderr does not name it: {err!r}")
            check(not os.path.exists(sock), f"{name}={value}: socket created")
        p = subprocess.run([AIRLOCKD, "--state-dir", tmp, "--default-timeout", "forever"],
                           capture_output=True, timeout=WAIT)
        check_eq(p.returncode, 2, "bad flag exit status")
        check(b"--default-timeout" in p.stderr, f"flag not named: {p.stderr!r}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


SPINNER = b"#!/bin/sh\nif [ \"$1\" = spin ]; then while :; do :; done; fi\necho ready\n"


@test("configuration: SANDBOX_TIMEOUT_MS=300 times out the default policy at ~300 ms only")
def t_sandbox_timeout():
    d = Daemon(env={"SANDBOX_TIMEOUT_MS": "300", "DATABASE_URL": "sqlite:manifest.db"})
    check(d.submit("spin", SPINNER)["ok"], "submit failed")
    r = d.request({"op": "exec", "name": "spin", "args": ["spin"]})
    check(r["ok"], f"exec failed: {r}")
    check_eq(r["result"]["verdict"], "timeout", "verdict")
    wall = r["result"]["wall_ms"]
    check(250 <= wall < 1500, f"wall_ms {wall}: expected about 300")
    # a named policy keeps its own limit (strict: 1s)
    check(d.submit("spin2", SPINNER, policy="strict")["ok"], "submit (strict) failed")
    r = d.request({"op": "exec", "name": "spin2", "args": ["spin"]})
    check_eq(r["result"]["verdict"], "timeout", "strict verdict")
    check(r["result"]["wall_ms"] >= 900, f"strict wall_ms {r['result']['wall_ms']}")


def connect_as(sock_path, uid, gid):
    """In a forked child: become uid/gid (no supplementary groups) and
    connect to the daemon's socket."""
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(WAIT)
    s.connect(sock_path)
    return s


def as_user(sock_path, uid, gid, requests, fds=None, read=True):
    """Connect as uid/gid in a forked child, send each request (a dict, or
    raw bytes) and read one answer line per request (read=False: none);
    returns the answers as dicts. `fds`: for request i, an fd to pass with
    it (SCM_RIGHTS), opened in the child by the function given."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            s = connect_as(sock_path, uid, gid)
            f = s.makefile("rb")
            out = []
            for i, req in enumerate(requests):
                line = req if isinstance(req, bytes) else json.dumps(req).encode() + b"\n"
                opener = (fds or {}).get(i)
                if opener:
                    fd = opener()
                    s.sendmsg([line], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                        fd.to_bytes(4, sys.byteorder))])
                    os.close(fd)
                else:
                    try:
                        s.sendall(line)
                    except OSError:
                        pass  # refused at accept: the answer is already there
                if read:
                    got = f.readline()
                    out.append(json.loads(got) if got else {"closed": True})
            os.write(wfd, json.dumps(out).encode() + b"\n")
        except BaseException as e:
            os.write(wfd, json.dumps([{"child_error": repr(e)}]).encode() + b"\n")
        os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as f:
        line = f.readline()
    os.waitpid(pid, 0)
    answers = json.loads(line)
    check(not (answers and "child_error" in answers[0]),
          f"the client as uid {uid} failed: {answers}")
    return answers


def _as_nobody(sock_path, request):
    """Connect as uid 65534 and send one request: its answer."""
    return as_user(sock_path, NOBODY, NOBODY, [request])[0]


@test("authorization: an unlisted uid is refused; a client may not archive another's module")
def t_authorization():
    d = Daemon()
    os.chmod(d.sock, 0o666)  # let the kernel, not the file mode, be the test
    expect_error(_as_nobody(d.sock, {"op": "status"}), "unauthorized")
    d.stop()
    d.args = ["--allow-uid", str(NOBODY)]
    d.start()
    os.chmod(d.sock, 0o666)
    check(_as_nobody(d.sock, {"op": "status"}).get("ok"), "allowed uid refused")
    check(d.submit("echo", ECHO)["ok"], "submit failed")
    # root's module is not nobody's: answered as if it did not exist
    expect_error(_as_nobody(d.sock, {"op": "archive", "name": "echo"}), "not_found")
    check_eq(d.request({"op": "show", "name": "echo"})["module"]["state"], "active", "state")



# A module that leaves things behind ("leave") or looks for them ("look"):
# a file in /tmp, SysV shared memory, a message queue and a semaphore set,
# a listening abstract unix socket and TCP socket on lo, and a background
# process in its own session. "leave" checks each exists before it exits
# and prints what it made; "look" prints what it found.
LEFTOVERS = b"""#!/usr/bin/env python3
import ctypes, os, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
KEY, CREAT = 0x41524c4b, 0o1000
ABSTRACT, PORT = b"\\0airlock-leftover", 47123

def sysv():
    return {"shm": libc.shmget(KEY, 0, 0) != -1,
            "msg": libc.msgget(KEY, 0) != -1,
            "sem": libc.semget(KEY, 0, 0) != -1}

def reachable(family, addr):
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.connect(addr)
        return True
    except OSError:
        return False
    finally:
        s.close()

def others():
    me = {os.getpid(), 1}
    return [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in me]

def look():
    found = {"tmp": os.path.exists("/tmp/leftover")}
    found.update(sysv())
    found["unix"] = reachable(socket.AF_UNIX, ABSTRACT)
    found["tcp"] = reachable(socket.AF_INET, ("127.0.0.1", PORT))
    found["proc"] = bool(others())
    return sorted(k for k, v in found.items() if v)

if sys.argv[1:] == ["leave"]:
    open("/tmp/leftover", "w").write("x")
    libc.shmget(KEY, 4096, CREAT | 0o666)
    libc.msgget(KEY, CREAT | 0o666)
    libc.semget(KEY, 1, CREAT | 0o666)
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.bind(ABSTRACT)
    u.listen()
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", PORT))
    t.listen()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(60)
        os._exit(0)
    os.wait()  # the sleeper was forked before its parent exited: it exists
    print("made:", ",".join(look()))
else:
    print("found:", ",".join(look()) or "nothing")
"""

LEFTOVERS_POLICY = """[policy]
description = the default, and SysV IPC for the leftovers test
[seccomp]
allow = @basic-io @file-system @memory @process @credentials
allow = @signal @time @event @network
allow = shmget shmat shmdt shmctl msgget msgsnd msgrcv msgctl
allow = semget semop semtimedop semctl
"""


@test("reuse: nothing a run leaves (tmp file, SysV objects, sockets, process) reaches the next run")
def t_reuse_clean():
    policies = tempfile.mkdtemp(prefix="airlock-policies-")
    try:
        with open(os.path.join(policies, "leftovers.policy"), "w") as f:
            f.write(LEFTOVERS_POLICY)
        d = Daemon(env={"AIRLOCK_POLICY_PATH": policies})
        check(d.submit("leftovers", LEFTOVERS, policy="leftovers",
                       args=["look"])["ok"], "submit failed")
        everything = "proc,msg,sem,shm,tcp,tmp,unix"
        expected = ",".join(sorted(everything.split(",")))
        for round_ in range(3):
            r = d.request({"op": "exec", "name": "leftovers", "args": ["leave"]})
            check(r.get("ok"), f"leave run failed: {r}")
            check_eq(r["result"]["stdout"].strip(), f"made: {expected}",
                     "what the leaving run made (the test must be able to fail)")
            r = d.request({"op": "exec", "name": "leftovers", "args": ["look"]})
            check(r.get("ok"), f"look run failed: {r}")
            check_eq(r["result"]["stdout"].strip(), "found: nothing",
                     f"what the next run found (round {round_})")
        # and on the host: nothing of the jails' (the port, the key)
        host = socket.socket()
        try:
            check(host.connect_ex(("127.0.0.1", 47123)) != 0,
                  "the jail's TCP listener is reachable on the host")
        finally:
            host.close()
    finally:
        shutil.rmtree(policies, ignore_errors=True)


@test("hostile clients: garbage, a 100 MiB line, bad base64, unknown op; still serving")
def t_hostile():
    d = Daemon()
    with d.connect() as c:
        c.send_raw(b"this is not json\n")
        expect_error(c.recv(), "bad_request")
        c.send_raw(b"\x00\xff{{{\n")
        expect_error(c.recv(), "bad_request")
        c.send({"op": "nope"})
        expect_error(c.recv(), "unknown_op")
        c.send({"op": "submit", "name": "x", "content": "!!!notbase64"})
        expect_error(c.recv(), "bad_request")
        c.send({"op": "status", "extra": 1})
        expect_error(c.recv(), "bad_request")
        chunk = b"A" * (1 << 20)
        for _ in range(100):
            c.send_raw(chunk)
        c.send_raw(b"\n")
        expect_error(c.recv(), "too_large")
        check(c.request({"op": "health"})["ok"], "connection unusable after errors")
    check(d.request({"op": "status"})["ok"], "daemon stopped serving")
    check(d.proc.poll() is None, "daemon died")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@test("hostile clients: 500 idle connections are dropped; memory stays bounded")
def t_idle_connections():
    d = Daemon(args=["--idle-timeout", "1s"])
    check(d.request({"op": "health"})["ok"], "not serving")
    before = rss_kib(d.proc.pid)
    idle = []
    for _ in range(500):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.sock)
        idle.append(s)
    check(d.request({"op": "health"})["ok"], "not serving with 500 idle clients")
    for s in idle:
        s.settimeout(WAIT)
        check_eq(s.recv(1), b"", "an idle connection was not closed")
        s.close()
    check_eq(d.request({"op": "status"})["connections"], 1, "connections left")
    after = rss_kib(d.proc.pid)
    note(f"RSS {before} KiB before, {after} KiB after")
    check(after < before + 8192, f"RSS grew from {before} to {after} KiB")


@test("hostile clients: a client that disconnects mid-run; the run is recorded")
def t_disconnect_mid_run():
    d = Daemon()
    check(d.submit("sleeper", SLEEPER)["ok"], "submit failed")
    c = d.connect()
    c.send({"op": "exec", "name": "sleeper", "args": ["0.5"]})
    wait_for(lambda: d.request({"op": "status"})["active_runs"] == 1, "the run to start")
    c.sock.close()
    wait_for(lambda: d.request({"op": "status"})["active_runs"] == 0, "the run to end")
    runs = d.request({"op": "runs", "name": "sleeper"})["runs"]
    check_eq(runs[0]["verdict"], "ok", "the run's verdict")


@test("crash recovery: SIGKILL mid-run, restart: nothing left, runs interrupted")
def t_sigkill_recovery():
    d = Daemon()
    check(d.submit("sleeper", SLEEPER)["ok"], "submit failed")
    c = d.connect()
    c.send({"op": "exec", "name": "sleeper", "args": ["20"]})
    wait_for(lambda: d.request({"op": "status"})["active_runs"] == 1, "the run to start")
    killed = d.proc.pid
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait(WAIT)
    c.sock.close()
    wait_for(lambda: not jail_processes([killed]), "jail processes to die")
    d.start()
    check(not jail_processes([killed, d.proc.pid]), "jail processes left")
    wait_for(lambda: not run_cgroups([killed]), "leftover cgroups to be removed")
    runs = d.request({"op": "runs", "name": "sleeper"})["runs"]
    check_eq(runs[0]["verdict"], "interrupted", "the killed run")
    check_eq(d.request({"op": "show", "name": "sleeper"})["module"]["state"], "active", "state")
    d.stop()
    p = subprocess.run([AIRLOCK, "manifest", "check", "--state-dir", d.state],
                       capture_output=True, timeout=WAIT)
    check_eq(p.returncode, 0, f"manifest check ({p.stdout[-300:]!r})")


@test("graceful stop: SIGTERM during a run lets it finish and exits 0")
def t_sigterm():
    d = Daemon()
    check(d.submit("sleeper", SLEEPER)["ok"], "submit failed")
    with d.connect() as c:
        c.send({"op": "exec", "name": "sleeper", "args": ["1"]})
        wait_for(lambda: any('started' in l and 'running sleeper' in l for l in d.log),
                 "the run to start")
        d.proc.send_signal(signal.SIGTERM)
        r = c.recv()
        check(r["ok"], f"run answered {r}")
        check_eq(r["result"]["stdout"], "slept\n", "stdout")
    check_eq(d.proc.wait(WAIT), 0, "airlockd exit status")
    check(not os.path.exists(d.sock), "socket left behind")


@test("graceful stop: a run past the shutdown grace is killed and recorded interrupted")
def t_sigterm_grace_over():
    d = Daemon(args=["--shutdown-grace", "300ms"])
    check(d.submit("sleeper", SLEEPER)["ok"], "submit failed")
    with d.connect() as c:
        c.send({"op": "exec", "name": "sleeper", "args": ["20"]})
        wait_for(lambda: any('started' in l and 'running sleeper' in l for l in d.log),
                 "the run to start")
        d.proc.send_signal(signal.SIGTERM)
        check_eq(d.proc.wait(WAIT), 0, "airlockd exit status")
    check(not jail_processes([d.proc.pid]), "jail processes left")
    # killed once, then waited for (not a loop spinning on the deadline)
    check_eq(sum("grace period over" in l for l in d.log), 1,
             "grace-period log lines")
    p = subprocess.run([AIRLOCK, "runs", "sleeper", "--json", "--state-dir", d.state],
                       capture_output=True, timeout=WAIT)
    runs = json.loads(p.stdout)["runs"]
    check_eq(runs[0]["verdict"], "interrupted", "the run killed at the grace's end")


@test("fds: airlockd raises its open-files soft limit to the hard one")
def t_fd_limit():
    # each running jail costs the daemon ~14 fds: a soft limit of 1024
    # would cap it near seventy concurrent jails
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard // 2), hard))
    try:
        d = Daemon()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    with open(f"/proc/{d.proc.pid}/limits") as f:
        line = next(l for l in f if l.startswith("Max open files"))
    check_eq(line.split()[3], str(hard), f"airlockd's soft limit ({line.strip()})")
    d.stop()


@test("socket: a live daemon's socket is refused, a stale one replaced")
def t_socket_files():
    d = Daemon()
    p = subprocess.run([AIRLOCKD, "--state-dir", d.state + "2", "--socket", d.sock],
                       capture_output=True, timeout=WAIT)
    check(p.returncode != 0 and b"another airlockd" in p.stderr,
          f"second daemon: {p.returncode} {p.stderr[-300:]!r}")
    check_eq(oct(os.stat(d.sock).st_mode & 0o777), oct(0o660), "socket mode")
    d.stop(signal.SIGKILL)
    check(os.path.exists(d.sock), "SIGKILL should leave the socket file")
    d.start()
    check(d.request({"op": "health"})["ok"], "restarted daemon not serving")


@test("health: the tick's self-check (manifest, socket) in health and status")
def t_health():
    d = Daemon()
    with d.connect() as c:
        h = c.request({"op": "health"})
        check(h["ok"] and h["healthy"], f"health {h}")
        check_eq(h["checks"], {"manifest": "ok", "socket": "ok", "accepting": "ok"}, "checks")
        check(0 <= h["checked_ms_ago"] < 5000, f"checked_ms_ago {h['checked_ms_ago']}")
        check_eq(c.request({"op": "status"})["health"]["healthy"], True, "status health")
        os.unlink(d.sock)  # the socket file is gone: nobody new can connect
        wait_for(lambda: not c.request({"op": "health"})["healthy"], "the tick to notice")
        h = c.request({"op": "health"})
        check("gone" in h["checks"]["socket"], f"socket check {h['checks']}")
        check_eq(h["checks"]["manifest"], "ok", "manifest check")
        st = c.request({"op": "status"})["health"]
        check_eq((st["healthy"], st["checks"]["socket"]), (False, h["checks"]["socket"]),
                 "status health")
    check(any("unhealthy" in l for l in d.log), "the change was not logged")


@test("sd_notify: READY=1 and STOPPING=1 reach NOTIFY_SOCKET (path and @abstract)")
def t_sd_notify():
    tmp = tempfile.mkdtemp(prefix="airlockd-notify-")
    try:
        path = os.path.join(tmp, "notify.sock")
        for name, address in ((path, path),
                              (f"@airlock-test-{os.getpid()}", f"\0airlock-test-{os.getpid()}")):
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as ns:
                ns.settimeout(WAIT)
                ns.bind(address)
                d = Daemon(env={"NOTIFY_SOCKET": name})
                check_eq(ns.recv(4096), b"READY=1", f"first datagram on {name}")
                check(d.request({"op": "health"})["ok"], "not serving after READY=1")
                check_eq(d.stop(), 0, "airlockd exit status")
                check_eq(ns.recv(4096), b"STOPPING=1", f"datagram on {name} at SIGTERM")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)



# ------------------------------------------- pre-flight, --config, SIGHUP

HALF_CPU = b"[policy]\ndescription = half a CPU\n\n[limits]\ncpus = 0.5\n"
# cgroup v1: airlockd in a mount namespace of its own where the cpu
# controller's hierarchy is not mounted: a host without that controller
NO_CPU_CONTROLLER = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                     'umount /sys/fs/cgroup/cpu && exec "$@"', "sh"]


def expect_preflight_refusal(prefix):
    """airlockd started through `prefix` (a host without the cpu
    controller) with a policy asking for a CPU quota exits 1 naming the
    policy and the controller, and starts without that policy."""
    tmp = tempfile.mkdtemp(prefix="airlockd-preflight-")
    try:
        pdir = os.path.join(tmp, "policies")
        os.mkdir(pdir)
        with open(os.path.join(pdir, "halfcpu.policy"), "wb") as f:
            f.write(HALF_CPU)
        sock = os.path.join(tmp, "airlock.sock")
        p = subprocess.run(prefix + [AIRLOCKD, "--state-dir",
                           os.path.join(tmp, "state"), "--socket", sock],
                           capture_output=True, timeout=WAIT,
                           env=dict(os.environ, AIRLOCK_POLICY_PATH=pdir))
        err = p.stderr.decode()
        check_eq(p.returncode, 1, f"exit status (stderr {err[-600:]!r})")
        check('policy \\"halfcpu\\"' in err or 'policy "halfcpu"' in err,
              f"the policy is not named: {err[-600:]!r}")
        check("cpu controller" in err, f"the missing controller is not named: {err[-600:]!r}")
        check(not os.path.exists(sock), "the socket was created")
        # the same host without that policy starts: the policy was the reason
        d = Daemon(prefix=prefix)
        check(d.request({"op": "health"})["ok"], "not serving")
        check_eq(d.stop(), 0, "airlockd exit status")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# cgroup v1 only (hides a v1 mount); the v2 twin is the next test.
@test("start-up: a policy that needs a controller the host lacks stops airlockd, naming both")
def t_preflight_refuses():
    if harness.cgroup_v2_only():
        raise harness.OtherHierarchy("cgroup v2 host: the v2 twin runs instead")
    if not os.path.ismount("/sys/fs/cgroup/cpu"):
        raise harness.Skip("needs the cgroup v1 cpu controller at /sys/fs/cgroup/cpu to hide")
    expect_preflight_refusal(NO_CPU_CONTROLLER)


def remove_cgroup_tree(path):
    """rmdir a cgroup and everything under it, leaves first (a cgroup
    directory cannot be removed with anything in it)."""
    for root, dirs, _ in os.walk(path, topdown=False):
        for d in dirs:
            os.rmdir(os.path.join(root, d))
    os.rmdir(path)


# cgroup v2 only; the v1 twin is the test before.
@test("start-up (cgroup v2): a policy that needs cpu when the cpu controller is not delegated stops airlockd")
def t_preflight_refuses_v2():
    if not harness.cgroup_v2_only():
        raise harness.OtherHierarchy("cgroup v1 host: the v1 twin runs instead")
    # A parent that delegates memory and pids but not cpu to its child,
    # the cgroup airlockd is started in: what a unit with
    # DelegateControllers=memory pids would give it.
    parent = f"/sys/fs/cgroup/airlock-test-nocpu-{os.getpid()}"
    os.mkdir(parent)
    try:
        with open(os.path.join(parent, "cgroup.subtree_control"), "w") as f:
            f.write("+memory +pids")
        leaf = os.path.join(parent, "daemon")
        os.mkdir(leaf)
        # each start gets a fresh cgroup below `leaf` (airlockd leaves the
        # one it ran in restructured: airlock-self, airlock), given memory
        # and pids only, and marked delegated as systemd marks a Delegate=
        # unit's cgroup, so airlockd alone in it builds there (it would ask
        # systemd for a scope with every controller otherwise)
        with open(os.path.join(leaf, "cgroup.subtree_control"), "w") as f:
            f.write("+memory +pids")
        with open(os.path.join(leaf, "cgroup.controllers")) as f:
            controllers = f.read().split()
        check("cpu" not in controllers and "memory" in controllers,
              f"{leaf} has the controllers {controllers}")
        # into a new marked cgroup, then airlockd (an error names its errno)
        move = ("import os, sys\n"
                "d = os.path.join(sys.argv[1], 'start-%d' % os.getpid())\n"
                "os.mkdir(d)\n"
                "os.setxattr(d, 'trusted.delegate', b'1')\n"
                "with open(d + '/cgroup.procs', 'w') as f:\n"
                "    f.write(str(os.getpid()))\n"
                "os.execv(sys.argv[2], sys.argv[2:])\n")
        expect_preflight_refusal([sys.executable, "-c", move, leaf])
    finally:
        for d in DAEMONS:
            d.stop()  # nothing may stay in the tree
        remove_cgroup_tree(parent)


def write_config(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def status_of(d):
    st = d.request({"op": "status"})
    check(st["ok"], f"status {st}")
    return st


@test("--config: the file sets variables over the environment and under the flags")
def t_config_file():
    tmp = tempfile.mkdtemp(prefix="airlockd-config-")
    try:
        conf = os.path.join(tmp, "airlockd.conf")
        write_config(conf, "# airlockd\nMAX_ACTIVE_GENERATIONS=3\n"
                     "LOG_LEVEL = \"debug\"\n\nARCHIVE_RETENTION_DAYS=7\n")
        d = Daemon(args=["--config", conf],
                   env={"MAX_ACTIVE_GENERATIONS": "2", "ARCHIVE_RETENTION_DAYS": "9"})
        check_eq(status_of(d)["max_active"], 3, "max_active from the file over the environment")
        check(any('"level":"debug"' in l for l in d.log), "LOG_LEVEL=debug from the file not applied")
        d2 = Daemon(args=["--config", conf, "--max-active", "4"])
        check_eq(status_of(d2)["max_active"], 4, "the flag over the file")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


BAD_CONFIGS = [
    ("MAX_ACTIVE_GENERATIONS=2\nMAX_ACTIVE_GENERATIONS=0\n", 0o600, ":2:", "MAX_ACTIVE_GENERATIONS"),
    ("# ok\nNO_SUCH_THING=1\n", 0o600, ":2:", "unknown variable"),
    ("LOG_LEVEL debug\n", 0o600, ":1:", "NAME=VALUE"),
    ("LOG_LEVEL=loud\n", 0o600, ":1:", "LOG_LEVEL"),
    ("SYSTEM_TICK_MS=1\nSYSTEM_TICK_MS=2\n", 0o600, ":2:", "already set on line 1"),
    ("MAX_ACTIVE_GENERATIONS=2\n", 0o666, "", "writable by its owner only"),
    ("MAX_ACTIVE_GENERATIONS=2\x00\n", 0o600, "", "NUL"),
    ("#" * 70000 + "\n", 0o600, "", "larger than"),
]


@test("--config: bad files stop start-up with FILE:LINE and the reason, creating nothing")
def t_config_bad():
    tmp = tempfile.mkdtemp(prefix="airlockd-config-")
    try:
        conf = os.path.join(tmp, "airlockd.conf")
        sock = os.path.join(tmp, "airlock.sock")
        state = os.path.join(tmp, "state")
        cases = BAD_CONFIGS + [(None, 0, "", "No such file"), ("dir", 0, "", "not a regular file")]
        for text, mode, where, reason in cases:
            if os.path.isdir(conf):
                os.rmdir(conf)
            elif os.path.exists(conf):
                os.unlink(conf)
            if text == "dir":
                os.mkdir(conf)
            elif text is not None:
                write_config(conf, text, mode)
            p = subprocess.run([AIRLOCKD, "--state-dir", state, "--socket", sock,
                                "--config", conf], capture_output=True, timeout=WAIT)
            err = p.stderr.decode()
            check_eq(p.returncode, 2, f"{reason}: exit status (stderr {err!r})")
            check(conf + where in err, f"{reason}: {conf}{where} not in {err!r}")
            check(reason in err, f"{reason}: not in {err!r}")
            check(not os.path.exists(sock) and not os.path.exists(state),
                  f"{reason}: something was created")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@test("SIGHUP: the configuration is read again in place; a bad one changes nothing")
def t_sighup_reload():
    tmp = tempfile.mkdtemp(prefix="airlockd-config-")
    try:
        conf = os.path.join(tmp, "airlockd.conf")
        write_config(conf, "MAX_ACTIVE_GENERATIONS=1\n")
        d = Daemon(args=["--config", conf])
        check_eq(d.submit("sleeper", SLEEPER)["module"]["state"], "active", "submit")
        # one runs, the second waits in the queue until the reload lets it start
        with d.connect() as c1, d.connect() as c2:
            c1.send({"op": "exec", "name": "sleeper", "args": ["2"]})
            wait_for(lambda: status_of(d)["active_runs"] == 1, "the first run")
            c2.send({"op": "exec", "name": "sleeper", "args": ["0"]})
            wait_for(lambda: status_of(d)["queue_depth"] == 1, "the second to queue")
            write_config(conf, "MAX_ACTIVE_GENERATIONS=2\nMETRICS_PORT=9199\n")
            d.proc.send_signal(signal.SIGHUP)
            r2 = c2.recv()
            check(r2["ok"] and r2["result"]["verdict"] == "ok", f"queued run {r2}")
            check(status_of(d)["active_runs"] == 1, "the first run was disturbed")
            r1 = c1.recv()
            check(r1["ok"] and r1["result"]["verdict"] == "ok", f"first run {r1}")
        check_eq(status_of(d)["max_active"], 2, "max_active after the reload")
        check(any("restart airlockd" in l and "METRICS_PORT" in l for l in d.log),
              "a METRICS_PORT change was not logged as needing a restart")
        write_config(conf, "MAX_ACTIVE_GENERATIONS=many\n")
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: any("configuration is unchanged" in l for l in d.log),
                 "the bad reload to be logged")
        check_eq(status_of(d)["max_active"], 2, "max_active after a bad reload")
        check(any(conf + ":1:" in l for l in d.log), "the bad line is not named")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@test("tick: leftover staging files go, young ones and those rows want stay")
def t_staging_sweep():
    d = Daemon(args=["--tick", "200ms"])
    staging = os.path.join(d.state, "staging")
    old = time.time() - 3600
    paths = {name: os.path.join(staging, name)
             for name in (".%s.tmp" % ("a" * 64), "b" * 64, "c" * 64)}
    for name, path in paths.items():
        with open(path, "wb") as f:
            f.write(b"left behind")
        if name != "c" * 64:
            os.utime(path, (old, old))
    wait_for(lambda: not os.path.exists(paths["b" * 64]) and
             not os.path.exists(paths[".%s.tmp" % ("a" * 64)]), "the sweep")
    check(os.path.exists(paths["c" * 64]), "a fresh file was removed")
    # the log line is read by another thread: wait for it, not just look
    wait_for(lambda: sum("removed leftover staging/" in l for l in d.log) == 2,
             "both removals to be logged")
    check_eq(d.submit("echo", ECHO)["module"]["state"], "active", "submit after the sweep")
    check_eq(d.airlock("manifest", "check", "--state-dir", d.state)[0], 1,
             "manifest check should still report the fresh stray")


# ================================================================== runner

def configure(build_dir):
    global AIRLOCK, AIRLOCKD
    AIRLOCK = os.path.abspath(os.path.join(build_dir, "airlock"))
    AIRLOCKD = os.path.abspath(os.path.join(build_dir, "airlockd"))
    return (AIRLOCK, AIRLOCKD)


def stop_daemons(outcome, detail):
    """Stop the daemons the test left running; failing to stop one fails
    a test that passed."""
    DAEMON_LOG.clear()
    for d in DAEMONS:
        try:
            d.cleanup()
        except Failure as e:
            if outcome == "ok":
                outcome, detail = "fail", str(e)
        DAEMON_LOG.extend(d.log[-15:])
    DAEMONS.clear()
    return outcome, detail


def stop_daemons_checked(outcome, detail):
    """stop_daemons(), and a daemon that does not exit 0 on SIGTERM (a
    sanitizer's leak report in build-asan) fails a test that passed; for
    suites whose daemons all end that way."""
    for d in DAEMONS:
        rc = d.stop()
        if rc != 0 and outcome == "ok":
            outcome = "fail"
            detail = f"airlockd exited {rc} on SIGTERM"
    return stop_daemons(outcome, detail)


def report_failure(detail):
    for line in detail.splitlines() + ["airlockd log:"] + DAEMON_LOG:
        print("  " + line)


def main(argv):
    return harness.main(argv, configure, report=report_failure,
                        after_test=stop_daemons,
                        root_reason="airlockd builds jails only as root")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
