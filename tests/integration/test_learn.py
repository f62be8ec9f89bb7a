#!/usr/bin/env python3
"""Integration tests for syscall learning (issue 7, docs/learning.md): the
BPF learner sees a module's unusual syscall, a learned policy runs the
same module to ok and stops a variant that makes one more call, the
supervisor's `seccomp = learned` flow (submit, stored set, exec, archive),
and the clear error where BPF is not available.

    python3 tests/integration/test_learn.py BUILD_DIR [WORD...]

BUILD_DIR holds the airlock and airlockd under test (build or build-asan).
The probe is always the static build/probe of this repository. Output and
exit status: tests/integration/harness.py.

Python 3 standard library only.
"""

import base64
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading

import harness
from harness import Failure, check, check_eq, note, test

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROBE = os.path.join(REPO, "build", "probe")
LEARNING_POLICIES = os.path.join(REPO, "tests", "policies", "learning")
AIRLOCK = None  # set from argv in main()
AIRLOCKD = None
WAIT = 60  # seconds any one command or wait may take
NOBODY = 65534

TMPDIRS = []
DAEMONS = []


def tmpdir():
    d = tempfile.mkdtemp(prefix="airlock-learn-test-")
    os.chmod(d, 0o755)
    TMPDIRS.append(d)
    return d


def airlock(*args, env=None):
    return harness.run_logged([AIRLOCK] + list(args), WAIT, cwd=REPO,
                              env=env)


def run_json(*args):
    status, out, _ = airlock("run", "--json", *args)
    return harness.parse_result(status, out)


def learn_policy(*args):
    """`airlock policy learn ARGS` into a file; returns its path and text."""
    status, out, err = airlock("policy", "learn", *args)
    check_eq(status, 0, "airlock policy learn exit status")
    path = os.path.join(tmpdir(), "learned.policy")
    with open(path, "wb") as f:
        f.write(out)
    return path, out.decode()


def allowed(policy_text):
    """The syscalls a learned policy file allows (one per allow line)."""
    return {line.split("=", 1)[1].split("#", 1)[0].strip()
            for line in policy_text.splitlines()
            if line.startswith("allow =")}


# ------------------------------------------------------------------ run

@test("run --learn: the learned set has the module's unusual syscall (memfd_create)")
def t_run_learn():
    r = run_json("--learn", "--", PROBE, "syscall", "memfd_create")
    check_eq(r["verdict"], "ok", "verdict")
    check_eq(r["stdout"], "syscall memfd_create: ok\n", "stdout")
    calls = r.get("syscalls")
    check(isinstance(calls, list), f"no syscalls list in {sorted(r)}")
    check("memfd_create" in calls, f"memfd_create not learned: {calls}")
    check_eq(calls, sorted(calls), "syscalls sorted")
    # the launcher's own setup (mount, pivot_root, seccomp, ...) is not
    # the module's: init is left out
    for launcher in ("mount", "pivot_root", "seccomp", "sethostname",
                     "setresuid", "capset"):
        check(launcher not in calls, f"{launcher} (the launcher's) learned")
    # a run without the call does not have it
    r = run_json("--learn", "--", PROBE, "syscall", "getrandom")
    check("memfd_create" not in r["syscalls"],
          f"memfd_create learned from a run that did not make it: {r['syscalls']}")
    note(f"{len(calls)} syscalls: {' '.join(calls)}")


@test("run --learn without --json: the set on stderr; ordinary runs have none")
def t_run_learn_plain():
    status, out, err = airlock("run", "--learn", "--", PROBE, "syscall",
                               "memfd_create")
    check_eq(status, 0, "exit status")
    check_eq(out, b"syscall memfd_create: ok\n", "the module's stdout")
    line = [l for l in err.decode().splitlines() if l.startswith("airlock: syscalls")]
    check(line and "memfd_create" in line[0], f"stderr {err!r}")
    r = run_json("--", PROBE, "syscall", "memfd_create")
    check("syscalls" not in r, "an ordinary run reports syscalls")


@test("run --learn: forked children count, in a run of several processes")
def t_run_learn_children():
    # /bin/sh forks: the module's children are in the jail's pid namespace
    r = run_json("--learn", "--", "/bin/sh", "-c",
                 "/bin/true; echo $(cat /proc/self/status >/dev/null; echo x)")
    check_eq(r["verdict"], "ok", "verdict")
    for call in ("clone", "wait4", "execve"):
        check(call in r["syscalls"], f"{call} not learned: {r['syscalls']}")


# --------------------------------------------------------- policy learn

@test("policy learn: the policy parses, runs the module to ok, stops one more syscall")
def t_policy_learn():
    path, text = learn_policy("--", PROBE, "syscall", "memfd_create")
    calls = allowed(text)
    check("memfd_create" in calls, "memfd_create not in the learned allow-list")
    check("getppid" not in calls, "getppid allowed before any run made it")
    for needed in ("execve", "exit", "exit_group"):
        check(needed in calls, f"{needed} missing")
    check("# first seen: command: " in text, "no first-seen comments")
    status, out, _ = airlock("policy", "check", path)
    check_eq(status, 0, "airlock policy check of the learned file")
    check("default-learned" in out.decode(), f"policy check said {out!r}")
    r = run_json("--policy", path, "--", PROBE, "syscall", "memfd_create")
    check_eq(r["verdict"], "ok", "the learned policy runs the module")
    r = run_json("--policy", path, "--", PROBE, "getppid", "1")
    check_eq(r["verdict"], "seccomp_violation", "one extra syscall")
    check_eq(r["syscall"], "getppid", "the syscall named")


@test("policy learn --suite: the union of the cases, each call's first case named")
def t_policy_learn_suite():
    d = tmpdir()
    suite = os.path.join(d, "suite.ini")
    with open(suite, "w") as f:
        f.write(f"[case memfd]\nmodule = {PROBE}\nargs = syscall memfd_create\n\n"
                f"[case parent]\nmodule = {PROBE}\nargs = getppid 3\n")
    path, text = learn_policy("--suite", suite)
    lines = {l.split("=", 1)[1].split("#")[0].strip(): l
             for l in text.splitlines() if l.startswith("allow =")}
    check("first seen: case memfd" in lines.get("memfd_create", ""),
          f"memfd_create: {lines.get('memfd_create')!r}")
    check("first seen: case parent" in lines.get("getppid", ""),
          f"getppid: {lines.get('getppid')!r}")
    for args in (("syscall", "memfd_create"), ("getppid", "2")):
        r = run_json("--policy", path, "--", PROBE, *args)
        check_eq(r["verdict"], "ok", f"{args} under the suite's policy")
    # uname: allowed by the base policy, made by no case
    r = run_json("--policy", path, "--", PROBE, "hostname")
    check_eq(r["verdict"], "seccomp_violation", "a call no case made")
    check_eq(r["syscall"], "uname", "the syscall named")


@test("policy learn --from: derived from the base policy's other rules")
def t_policy_learn_from():
    path, text = learn_policy("--from", "strict", "--", PROBE, "echo", "hi")
    check("name = strict-learned" in text, "name")
    status, out, err = airlock("policy", "show", "strict")
    strict = out.decode()
    for line in strict.splitlines():
        if line.startswith(("memory", "timeout", "pids", "mode")):
            check(line in text.splitlines(), f"{line!r} of strict not kept")
    r = run_json("--policy", path, "--", PROBE, "echo", "hi")
    check_eq(r["verdict"], "ok", "verdict")


@test("no privilege: learning fails with a clear message, ordinary runs do not")
def t_no_privilege():
    if not shutil.which("setpriv"):
        raise Failure("setpriv (util-linux) is missing")
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                 "--clear-groups", "--inh-caps=-all"]
    status, out, err = harness.run_logged(
        as_nobody + [AIRLOCK, "run", "--learn", "--json", "--", "/bin/true"],
        WAIT, cwd="/")
    r = harness.parse_result(status, out)
    check_eq(r["verdict"], "setup_error", "verdict")
    check("syscall learning needs BPF" in r["error"] and
          "needs root" in r["error"], f"error {r['error']!r}")
    status, out, err = harness.run_logged(
        as_nobody + [AIRLOCK, "policy", "learn", "--", "/bin/true"], WAIT,
        cwd="/")
    check_eq(status, 125, "policy learn exit status")
    check_eq(out, b"", "policy learn printed a policy anyway")
    check(b"needs root" in err, f"stderr {err!r}")


# ------------------------------------------------------------ supervisor

class Daemon:
    """An airlockd on a temporary state directory, with the learning test
    policies on its search path."""

    def __init__(self):
        self.tmp = tmpdir()
        self.state = os.path.join(self.tmp, "state")
        self.sock = os.path.join(self.tmp, "airlock.sock")
        self.log = []
        # METRICS_PORT=0: no HTTP port that parallel daemons would share
        env = dict(os.environ, METRICS_PORT="0",
                   AIRLOCK_POLICY_PATH=LEARNING_POLICIES +
                   ":" + os.path.join(REPO, "policy", "policies"))
        self.proc = subprocess.Popen(
            [AIRLOCKD, "--state-dir", self.state, "--socket", self.sock],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=env)
        DAEMONS.append(self)
        ready = threading.Event()

        def drain():
            for raw in self.proc.stderr:
                self.log.append(raw.decode("utf-8", "replace").rstrip())
                if '"msg":"ready' in self.log[-1]:
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(WAIT) or self.proc.poll() is not None:
            raise Failure("airlockd did not start:\n" + "\n".join(self.log[-20:]))

    def request(self, obj):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(WAIT)
            s.connect(self.sock)
            s.sendall(json.dumps(obj).encode() + b"\n")
            buf = b""
            while b"\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    raise Failure(f"connection closed after {buf[:200]!r}")
                buf += chunk
        return json.loads(buf.split(b"\n", 1)[0])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise Failure("airlockd did not stop")
            # a sanitizer report (leak, UB) in build-asan ends it non-zero
            if self.proc.returncode != 0:
                raise Failure(f"airlockd exited {self.proc.returncode}")


def stored_syscalls(d, name):
    db = sqlite3.connect(f"file:{d.state}/manifest.db?mode=ro", uri=True)
    try:
        return db.execute("SELECT syscalls FROM modules WHERE name = ?",
                          (name,)).fetchone()[0]
    finally:
        db.close()


@test("airlockd, seccomp = learned: submit learns and stores; exec ok; one more call archives")
def t_daemon_learned():
    d = Daemon()
    with open(PROBE, "rb") as f:
        content = base64.b64encode(f.read()).decode()
    r = d.request({"op": "submit", "name": "memfd", "policy": "learned",
                   "content": content,
                   "validate_args": ["syscall", "memfd_create"]})
    check(r.get("ok"), f"submit failed: {r}")
    check_eq(r["module"]["state"], "active", "state after validation")
    stored = stored_syscalls(d, "memfd")
    check(stored and "memfd_create" in stored.split(),
          f"stored syscalls {stored!r}")
    check("getppid" not in stored.split(), "getppid stored before any run made it")
    status, out, _ = airlock("show", "--state-dir", d.state, "--json", "memfd")
    check_eq(status, 0, "airlock show status")
    check_eq(json.loads(out).get("syscalls"), stored, "airlock show --json syscalls")
    r = d.request({"op": "exec", "name": "memfd",
                   "args": ["syscall", "memfd_create"]})
    check(r.get("ok"), f"exec failed: {r}")
    check_eq(r["result"]["verdict"], "ok", "exec within the learned set")
    check_eq(r["archived"], False, "archived after an ok run")
    # the learned rules are compiled once, then reused: same verdicts
    r = d.request({"op": "exec", "name": "memfd",
                   "args": ["syscall", "memfd_create"]})
    check_eq(r["result"]["verdict"], "ok", "second exec within the learned set")
    check_eq(sum("learned policy compiled" in l for l in d.log), 1,
             "learned policy compilations for two execs")
    r = d.request({"op": "exec", "name": "memfd", "args": ["getppid", "1"]})
    check_eq(r["result"]["verdict"], "seccomp_violation", "one extra syscall")
    check_eq(r["result"]["syscall"], "getppid", "the syscall named")
    check_eq(r["archived"], True, "archived (archive_on seccomp_violation)")
    check_eq(r["module"]["state"], "archived", "module state")
    # the default policy (no learning) never loads the learner
    r = d.request({"op": "submit", "name": "plain", "content": content,
                   "validate_args": ["echo", "x"]})
    check(r.get("ok"), f"plain submit failed: {r}")
    check(stored_syscalls(d, "plain") is None, "a plain module got a set")
    loads = [l for l in d.log if "learner loaded" in l]
    check_eq(len(loads), 1, "learner loads (once, for the learned policy)")
    # no learning run is live: the program is detached, and every jail's
    # entry was deleted at teardown (pid namespace inodes are reused)
    maps, links = bpf_fds(d.proc.pid)
    check(maps, "airlockd holds no BPF map (is the learner loaded?)")
    check_eq(links, [], "BPF links airlockd holds with no learning run live")
    for map_id in maps:
        status, out, _ = harness.run_logged(
            ["bpftool", "-j", "map", "dump", "id", str(map_id)], WAIT)
        check_eq(status, 0, "bpftool map dump")
        check_eq(json.loads(out), [], f"entries left in map {map_id}")


def bpf_fds(pid):
    """The BPF map ids and link fds a process holds (from fdinfo)."""
    maps, links = [], []
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = dict(l.split(":", 1) for l in f.read().splitlines()
                            if ":" in l)
        except OSError:
            continue
        if "map_id" in info and info.get("map_type", "").strip() == "1":
            maps.append(int(info["map_id"]))
        if "link_type" in info:
            links.append(info["link_type"].strip())
    return maps, links


# ---------------------------------------------------------------- main

def configure(build_dir):
    global AIRLOCK, AIRLOCKD
    AIRLOCK = os.path.abspath(os.path.join(build_dir, "airlock"))
    AIRLOCKD = os.path.abspath(os.path.join(build_dir, "airlockd"))
    return (AIRLOCK, AIRLOCKD, PROBE)


def cleanup(outcome, detail):
    for d in DAEMONS:
        try:
            d.stop()
        except Failure as e:
            if outcome == "ok":
                outcome, detail = "fail", str(e)
        if outcome == "fail":
            detail = (detail or "") + "\nairlockd log:\n" + "\n".join(d.log[-15:])
    DAEMONS.clear()
    for t in TMPDIRS:
        shutil.rmtree(t, ignore_errors=True)
    TMPDIRS.clear()
    return outcome, detail


def main(argv):
    return harness.main(argv, configure, after_test=cleanup,
                        root_reason="learning loads BPF, which needs root")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
