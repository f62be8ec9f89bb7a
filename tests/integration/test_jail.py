#!/usr/bin/env python3
"""Integration tests for `airlock run`: every isolation property the design
promises (docs/design.md, "airlock run", "Inside the jail", "Default limits")
has a test here that fails when the property is lost.

    python3 tests/integration/test_jail.py BUILD_DIR [WORD...]

BUILD_DIR holds the airlock under test (build or build-asan). The probe is
always the static build/probe of this repository: it is built only there.
Extra WORDs select the tests whose names contain any of them.

Output: one line per test, "ok - NAME", "not ok - NAME" followed by indented
details, or "skip - NAME: reason"; then "N passed, N failed, N skipped".
Exit status 1 if any test failed. With CI=true in the environment a skip
counts as a failure: CI must not go green by running nothing.

Python 3 standard library only.
"""

import fcntl
import json
import os
import pty
import re
import secrets
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time
import tty

import harness
from harness import LOG, Failure, Skip, check, check_eq, excerpt, note, test

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROBE = os.path.join(REPO, "build", "probe")
MODULES = os.path.join(REPO, "tests", "modules")

AIRLOCK = None  # set from argv in main()

# Limits of the default policy (docs/design.md, "Default limits").
OUTPUT_CAP = 1024 * 1024
TMP_SIZE = 16 * 1024 * 1024
MIB = 1024 * 1024

# Seconds a single airlock invocation may take before the suite gives up on
# it. The default wall-clock limit is 3 s, so anything well past that means
# airlock itself hung.
RUN_TIMEOUT = 20

# The uid host-side victim processes run as in tests of signals: the same
# uid the jail runs as, so only the pid namespace (not a permission check)
# stands between the jail and the victim.
NOBODY = 65534


# Every process the suite started airlock as: a run cgroup named after one
# of them that is still there afterwards was left behind.
STARTED = set()


# ----------------------------------------------------------------- helpers

def run_airlock(args, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL, env=None,
                pass_fds=(), wrapper=(), preexec_fn=None):
    """Run `airlock ARGS` (under `wrapper`, if given); returns (status,
    stdout bytes, stderr bytes)."""
    return harness.run_logged(list(wrapper) + [AIRLOCK] + list(args), timeout,
                              started=STARTED, stdin=stdin, env=env,
                              pass_fds=pass_fds, preexec_fn=preexec_fn)


parse_result = harness.parse_result


def run_json(args, **kw):
    """`airlock run --json ARGS` → (status, result dict, stderr text)."""
    status, out, err = run_airlock(["run", "--json"] + list(args), **kw)
    return status, parse_result(status, out), err.decode("utf-8", "replace")


def probe(*args, opts=(), **kw):
    """Run the probe in a jail: → (status, result dict, stderr text)."""
    return run_json(list(opts) + ["--", PROBE] + [str(a) for a in args], **kw)


def expect(result, verdict, exit_status=None):
    check_eq(result.get("verdict"), verdict, "verdict")
    if exit_status is not None:
        check_eq(result.get("exit_status"), exit_status, "exit_status")


def result_line(result, name):
    """The probe's result line "NAME: ..." from stdout."""
    for line in (result.get("stdout") or "").splitlines():
        if line.startswith(name + ":"):
            return line
    raise Failure(f"no '{name}:' line in stdout {excerpt(result.get('stdout'))}")


def probe_ok(*args, **kw):
    """Run the probe, expect it to succeed, return its result dict."""
    _, r, _ = probe(*args, **kw)
    expect(r, "ok", 0)
    return r


def python_json(code, *args):
    """Run `python3 -c CODE ARGS` in a jail, expect it to succeed, return
    the JSON it printed."""
    _, r, _ = run_json(["--", "python3", "-c", code] + list(args))
    expect(r, "ok", 0)
    try:
        return json.loads(r["stdout"])
    except ValueError:
        raise Failure(f"python printed {excerpt(r.get('stdout'))}")


def require_contained():
    """Tests that unleash something on purpose (a fork bomb, kill(-1), a
    daemon) would hurt the host if the jail were broken. Before them, check
    that the jail at least has its own pid namespace and is not root;
    otherwise fail without unleashing anything."""
    _, r, _ = probe("pids")
    check(r.get("stdout") == "pids: ok 1 2\n",
          f"not run: the jail sees host processes ({excerpt(r.get('stdout'))})")
    _, r, _ = probe("ids")
    m = re.match(r"ids: ok uid=(\d+),(\d+),(\d+) ", r.get("stdout") or "")
    check(m and "0" not in m.groups(),
          f"not run: the jail runs as root ({excerpt(r.get('stdout'))})")
    LOG.runs.clear()


def need_file(path):
    if not os.path.exists(path):
        raise Skip(f"{path} is missing (run make)")


def proc_cmdlines():
    """{pid: cmdline text} of every host process but this one."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                found[int(entry)] = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            pass  # it ended while we looked
    return found


def processes_matching(text):
    return {pid: cmd for pid, cmd in proc_cmdlines().items() if text in cmd}


def kill_all_matching(text):
    """Clean up after a failed containment test: SIGKILL, by pid, the
    processes the jail let escape (all of them started by this test),
    until none is left."""
    for _ in range(50):
        left = processes_matching(text)
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            else:
                exited_within(pid, 0.5)


def exited_within(pid, seconds):
    """Whether process `pid` ends within `seconds`: waits on its pidfd, so
    a live process costs the whole wait and a dead one none of it."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(seconds * 1000))
    finally:
        os.close(fd)


def start_victim():
    """A host process for the jail to try to see or kill: `sleep 60`, as the
    jail's uid when we are root (so only the namespace protects it)."""
    kw = {"user": NOBODY} if os.geteuid() == 0 else {}
    return subprocess.Popen(["sleep", "60"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)


def stop_victim(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=5)


# ---------------------------------------------------------------- cgroups

def _mounts():
    """(mount point, root, fstype, super options) of each cgroup mount."""
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if len(fields) < 5 or len(rfields) < 3:
                continue
            if rfields[0] in ("cgroup", "cgroup2"):
                mounts.append((fields[4], fields[3], rfields[0], set(rfields[2].split(","))))
    return mounts


def airlock_cgroup_bases():
    """The directories under which airlock makes its run-* cgroups: on v1
    <controller mount>/<our cgroup>/airlock for memory, pids, cpuacct and
    cpu; on v2 <cgroup2 mount>/<our cgroup>/airlock. Both are listed on a
    hybrid host; the ones airlock does not use simply do not exist."""
    bases = set()
    mounts = _mounts()
    with open("/proc/self/cgroup") as f:
        lines = [l.rstrip("\n").split(":", 2) for l in f if l.count(":") >= 2]
    for _, controllers, path in lines:
        for mnt, root, fstype, opts in mounts:
            if controllers == "":
                if fstype != "cgroup2":
                    continue
            elif fstype != "cgroup" or not (set(controllers.split(",")) & opts):
                continue
            if not path.startswith(root):
                continue
            rel = path[len(root):].lstrip("/")
            bases.add(os.path.join(mnt, rel, "airlock"))
    return sorted(bases)


def run_cgroups():
    """Every run-* cgroup directory airlock has now, wherever its driver
    made it (below the caller's cgroup, in a scope of its own, under the
    v2 root)."""
    return sorted(harness.run_cgroups(("run-",)))


# Hides /run/systemd in a mount namespace: airlock then takes the driver
# of a host without systemd (on v2: one base, /sys/fs/cgroup/airlock,
# shared by every airlock process, which is what the sweep works on).
HIDE_SYSTEMD = ["unshare", "-m", "sh", "-c",
                '[ -d /run/systemd ] && mount -t tmpfs none /run/systemd; exec "$@"',
                "sh"]


def systemd_scopes():
    """True where runs get a transient scope each (v2 under systemd, called
    from a shared cgroup, as this suite is)."""
    return (os.path.exists("/sys/fs/cgroup/cgroup.controllers")
            and os.path.isdir("/run/systemd/system"))


def expected_driver():
    if not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return "v1"
    return "v2 systemd" if systemd_scopes() else "v2"


def run_cgroup_owner(path):
    """The airlock pid in a run cgroup's name, run-<pid>-<n>."""
    m = re.match(r"run-(\d+)-", os.path.basename(path))
    return int(m.group(1)) if m else None


def leaked_cgroups(paths=None):
    """The run cgroups among `paths` (default: all there are now) that were
    left behind: those of an airlock this suite started (all of which have
    ended by the time this is asked), of one no longer alive, or whose name
    does not say. A live airlock of someone else's, running concurrently,
    is not a leak."""
    leaked = []
    for path in run_cgroups() if paths is None else paths:
        owner = run_cgroup_owner(path)
        if owner is None or owner in STARTED or not os.path.exists(f"/proc/{owner}"):
            leaked.append(path)
    return sorted(leaked)


def new_leaks(before):
    """Run cgroups left behind since `before` (a run_cgroups() list)."""
    return leaked_cgroups(set(run_cgroups()) - set(before))


# ================================================================== tests

# --- 1. the basics ---------------------------------------------------------

@test("true: ok with policy, hash and cgroup mode")
def t_true():
    status, r, _ = run_json(["--", "/bin/true"])
    expect(r, "ok", 0)
    check_eq(status, 0, "exit status")
    check_eq(r.get("exit_code"), 0, "exit_code")
    check_eq(r.get("signal"), None, "signal")
    check_eq(r.get("policy"), "default", "policy")
    check(re.fullmatch(r"sha256:[0-9a-f]{64}", r.get("policy_hash") or ""),
          f"policy_hash {r.get('policy_hash')!r} is not sha256:<64 hex>")
    check(r.get("cgroup") in ("v1", "v2", "v2 systemd"),
          f"cgroup {r.get('cgroup')!r} is not v1, v2 or v2 systemd")
    for key in ("wall_ms", "cpu_ms", "peak_memory_bytes", "stdout", "stderr",
                "stdout_truncated", "stderr_truncated", "syscall", "privilege"):
        check(key in r, f"key {key!r} missing from the result")
    check_eq(r["stdout"], "", "stdout")
    check_eq(r["stdout_truncated"], False, "stdout_truncated")


# --- 2. real modules -------------------------------------------------------

@test("shell module: #! interpreter found in the jail, argument passed")
def t_shell_module():
    _, r, _ = run_json(["--", os.path.join(MODULES, "hello.sh"), "airlock"])
    expect(r, "ok", 0)
    check_eq(r["stdout"], "hello, airlock\n", "stdout")


@test("python module: env python3 runs it, exact output")
def t_python_module():
    _, r, _ = run_json(["--", os.path.join(MODULES, "hello.py")])
    expect(r, "ok", 0)
    check_eq(r["stdout"], "sum=15 python=3\n", "stdout")
    check_eq(r["stderr"], "", "stderr")


@test("bare name: sh -c found on the jail's PATH")
def t_bare_name():
    _, r, _ = run_json(["--", "sh", "-c", "echo hi"])
    expect(r, "ok", 0)
    check_eq(r["stdout"], "hi\n", "stdout")


# --- 3. how a module ends --------------------------------------------------

@test("exit code passes through")
def t_exit_code():
    _, r, _ = probe("exit", 3)
    expect(r, "exit_nonzero", 3)
    check_eq(r["exit_code"], 3, "exit_code")
    check_eq(r["signal"], None, "signal")


@test("crash: SIGSEGV is crashed, 139")
def t_segv():
    _, r, _ = probe("segv")
    expect(r, "crashed", 139)
    check_eq(r["signal"], "SIGSEGV", "signal")
    check("survived" not in r["stdout"], "the probe survived its own segfault")


@test("crash: SIGABRT is crashed, 134")
def t_abort():
    _, r, _ = probe("abort")
    expect(r, "crashed", 134)
    check_eq(r["signal"], "SIGABRT", "signal")


# --- 4. the host's files -------------------------------------------------

@test("host files: secrets in /root and /tmp are not there")
def t_host_secrets():
    tag = secrets.token_hex(8)
    content = f"airlock-secret-content-{tag}\n"
    paths = [f"/root/airlock-secret-{tag}", f"/tmp/airlock-secret-{tag}"]
    try:
        for path in paths:
            with open(path, "w") as f:
                f.write(content)
            os.chmod(path, 0o644)  # readable by anyone: only the jail may hide it
        for path in paths:
            _, r, _ = probe("read", path)
            check_eq(r["stdout"], "read: ENOENT\n", f"probe read {path}")
            expect(r, "exit_nonzero", 1)
            _, r, _ = probe("cat", path)
            check(tag not in (r["stdout"] or ""), f"the secret of {path} leaked")
    finally:
        for path in paths:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


@test("host files: /etc/shadow is not readable")
def t_shadow():
    _, r, _ = probe("read", "/etc/shadow")
    line = result_line(r, "read")
    check(not line.startswith("read: ok"), f"/etc/shadow was read: {line!r}")
    expect(r, "exit_nonzero", 1)


@test("host files: / shows no home, root, var, srv, work, opt")
def t_root_listing():
    r = probe_ok("ls", "/")
    line = result_line(r, "ls")
    check(line.startswith("ls: ok"), f"ls / failed: {line!r}")
    names = set(line.split()[2:])
    visible = names & {"home", "root", "var", "srv", "work", "opt"}
    check(not visible, f"host directories visible in the jail: {sorted(visible)} (all: {sorted(names)})")
    note("/ holds: " + " ".join(sorted(names)))


# --- 5. read-only system ---------------------------------------------------

def _file_state(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


@test("read-only: system paths cannot be written")
def t_readonly():
    attempts = [("write", "/usr/bin/airlock-x"), ("write", "/etc/passwd"),
                ("write", "/x"), ("write", "/bin/x"), ("mkdir", "/newdir")]
    # On the host these must be exactly as they were: a jail that wrote
    # through to the host would be worse than one that merely allowed it.
    before = {path: _file_state(path) for _, path in attempts if path != "/newdir"}
    newdir_existed = os.path.exists("/newdir")
    try:
        for op, path in attempts:
            _, r, _ = probe(op, path)
            line = result_line(r, op)
            check(line in (f"{op}: EROFS", f"{op}: EACCES"),
                  f"{op} {path}: expected EROFS or EACCES, got {line!r}")
            expect(r, "exit_nonzero", 1)
        for path, content in before.items():
            check(_file_state(path) == content, f"host {path} changed")
        check(os.path.exists("/newdir") == newdir_existed, "host /newdir appeared")
    finally:
        # A jail that wrote through to the host must not leave the host
        # broken (an /etc/passwd of "x"): put back what was there.
        for path, content in before.items():
            if _file_state(path) != content:
                if content is None:
                    os.unlink(path)
                else:
                    with open(path, "wb") as f:
                        f.write(content)
        if not newdir_existed and os.path.isdir("/newdir"):
            os.rmdir("/newdir")


@test("read-only: /tmp is writable, and private")
def t_tmp_writable():
    name = f"/tmp/airlock-x-{secrets.token_hex(6)}"
    try:
        r = probe_ok("write", name)
        check_eq(result_line(r, "write"), "write: ok", "probe write " + name)
        check(not os.path.exists(name), f"the jail's {name} appeared on the host")
    finally:
        if os.path.exists(name):
            os.unlink(name)


# --- 6. host processes -----------------------------------------------------

@test("processes: host processes invisible and unkillable")
def t_host_processes():
    victim = start_victim()
    try:
        r = probe_ok("pids")
        check_eq(r["stdout"], "pids: ok 1 2\n", "probe pids")
        _, r, _ = probe("kill", victim.pid, 9)
        check_eq(r["stdout"], "kill: ESRCH\n", f"probe kill {victim.pid} 9")
        check(not exited_within(victim.pid, 0.2),
              f"host process {victim.pid} was killed from the jail")
    finally:
        stop_victim(victim)


# --- 6b. what /proc tells about the host -------------------------------------

# Host facts a new proc still shows (sandbox/mount.c, mask_proc): each must
# read as empty or be refused inside the jail.
PROC_MASKED = ["cmdline", "sys/kernel/random/boot_id", "config.gz", "kallsyms",
               "kcore", "keys", "key-users", "locks", "timer_list", "timer_stats",
               "sched_debug", "latency_stats", "sysrq-trigger", "interrupts",
               "modules", "partitions", "diskstats", "swaps"]
PROC_MASKED_DIRS = ["acpi", "asound", "scsi"]
PROC_READONLY = ["sys", "bus", "fs", "irq"]

# Each path → the bytes read, or the errno name; directories → their entries.
PROC_READER = r"""
import errno, json, os, sys
seen = {}
for path in sys.argv[1:]:
    try:
        if os.path.isdir(path):
            seen[path] = sorted(os.listdir(path))
        else:
            with open(path, "rb") as f:
                seen[path] = len(f.read())
    except OSError as e:
        seen[path] = errno.errorcode.get(e.errno, str(e.errno))
print(json.dumps(seen))
"""


@test("/proc: host facts read as empty or are refused; status, cpuinfo, meminfo still work")
def t_proc_masked():
    files = [f"/proc/{n}" for n in PROC_MASKED if os.path.exists(f"/proc/{n}")]
    dirs = [f"/proc/{n}" for n in PROC_MASKED_DIRS if os.path.isdir(f"/proc/{n}")]
    needed = ["/proc/self/status", "/proc/cpuinfo", "/proc/meminfo", "/proc/stat"]
    seen = python_json(PROC_READER, *(files + dirs + needed))
    check("/proc/cmdline" in files, "the host has no /proc/cmdline to test with")
    for path in files:
        check(seen.get(path) in (0, "EACCES"),
              f"{path} shows the host: {seen.get(path)!r} (0 bytes or EACCES expected)")
    for path in dirs:
        check(seen.get(path) in ([], "EACCES"), f"{path} lists {seen.get(path)!r}")
    for path in needed:
        check(isinstance(seen.get(path), int) and seen[path] > 0,
              f"{path} is unreadable in the jail: {seen.get(path)!r}")
    note(f"masked here: {len(files)} files, {len(dirs)} directories")
    # the kernel's tunables are read-only mounts, whatever their modes say
    r = probe_ok("cat", "/proc/self/mountinfo")
    mounts = {line.split()[4]: line.split()[5].split(",")
              for line in r["stdout"].splitlines()}
    for name in PROC_READONLY:
        if os.path.exists(f"/proc/{name}"):
            check("ro" in mounts.get(f"/proc/{name}", []),
                  f"/proc/{name} is not a read-only mount: {mounts.get(f'/proc/{name}')}")


@test("/proc: a Python program counting CPUs and using a process pool still works")
def t_proc_python_pool():
    code = ("import multiprocessing, os, json\n"
            "def sq(x): return x * x\n"
            "if __name__ == '__main__':\n"
            "    with multiprocessing.Pool(2) as p: r = p.map(sq, range(8))\n"
            "    print(json.dumps({'cpus': os.cpu_count(), 'mp': multiprocessing.cpu_count(),"
            " 'affinity': len(os.sched_getaffinity(0)), 'r': r,"
            " 'load': len(os.getloadavg())}))\n")
    seen = python_json(code)
    check_eq(seen.get("cpus"), os.cpu_count(), "os.cpu_count()")
    check_eq(seen.get("mp"), os.cpu_count(), "multiprocessing.cpu_count()")
    check_eq(seen.get("r"), [x * x for x in range(8)], "Pool.map")


# --- 7. network ------------------------------------------------------------

def _listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    s.setblocking(False)
    return s


def _accepted_nothing(s):
    try:
        conn, peer = s.accept()
    except BlockingIOError:
        return
    conn.close()
    raise Failure(f"the host listener accepted a connection from {peer}")


@test("network: host loopback unreachable (default loopback policy)")
def t_net_loopback():
    s = _listener()
    try:
        port = s.getsockname()[1]
        _, r, _ = probe("connect", "127.0.0.1", port)
        check_eq(r["stdout"], "connect: ECONNREFUSED\n", f"probe connect 127.0.0.1 {port}")
        expect(r, "exit_nonzero", 1)
        _accepted_nothing(s)
    finally:
        s.close()


@test("network: host loopback unreachable (--net none)")
def t_net_none():
    s = _listener()
    try:
        port = s.getsockname()[1]
        _, r, _ = probe("connect", "127.0.0.1", port, opts=["--net", "none"])
        check_eq(r["stdout"], "connect: ENETUNREACH\n", f"probe connect 127.0.0.1 {port}")
        expect(r, "exit_nonzero", 1)
        _accepted_nothing(s)
    finally:
        s.close()


@test("network: only lo, up by default")
def t_net_interfaces():
    r = probe_ok("net")
    check_eq(r["stdout"], "net: ok lo:up\n", "probe net")


@test("network: only lo, down with --net none")
def t_net_interfaces_none():
    r = probe_ok("net", opts=["--net", "none"])
    check_eq(r["stdout"], "net: ok lo:down\n", "probe net --net none")


POLICY_DIR = os.path.join(REPO, "policy", "policies")
SHIPPED = sorted(f[:-len(".policy")] for f in os.listdir(POLICY_DIR)
                 if f.endswith(".policy"))
NETLINK_ROUTE, NETLINK_KOBJECT_UEVENT = 0, 15


def _abstract_listener():
    """A host listener on an abstract AF_UNIX name, reachable from the
    host (checked), so that a refusal in the jail means isolation."""
    name = "airlock-test-" + secrets.token_hex(8)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind("\0" + name)
    s.listen(8)
    s.setblocking(False)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect("\0" + name)
    c.close()
    s.accept()[0].close()
    return s, name


@test("network: uevent netlink denied under every shipped policy, naming socket")
def t_net_uevent():
    check(len(SHIPPED) >= 4, f"shipped policies not found in {POLICY_DIR}")
    for name in SHIPPED:
        _, r, _ = probe("netlink", NETLINK_KOBJECT_UEVENT, opts=["--policy", name])
        expect(r, "seccomp_violation", 159)
        check_eq(r["syscall"], "socket", f"syscall named under {name}")
    r = probe_ok("netlink", NETLINK_ROUTE)
    check_eq(r["stdout"], "netlink: ok\n", "NETLINK_ROUTE under default")
    note("uevent killed under " + " ".join(SHIPPED))


@test("network: AF_UNIX socketpair works under --net none")
def t_net_socketpair_none():
    for policy in ("default", "python", "node"):
        r = probe_ok("socketpair", opts=["--policy", policy, "--net", "none"])
        check_eq(r["stdout"], "socketpair: ok\n", f"socketpair under {policy}")


@test("network: --net none with sockets allowed reaches nothing, loopback included")
def t_net_none_sockets():
    s = _listener()
    a, name = _abstract_listener()
    try:
        port = s.getsockname()[1]
        none = ["--policy", "python", "--net", "none"]
        for args, want in ((("connect", "127.0.0.1", port), "connect: ENETUNREACH"),
                           (("selfconnect", "127.0.0.1"), "selfconnect: ENETUNREACH"),
                           (("abstract", name), "abstract: ECONNREFUSED")):
            _, r, _ = probe(*args, opts=none)
            check_eq(r["stdout"], want + "\n", f"probe {' '.join(map(str, args))}")
            expect(r, "exit_nonzero", 1)
        r = probe_ok("net", opts=none)
        check_eq(r["stdout"], "net: ok lo:down\n", "interfaces")
        _accepted_nothing(s)
        _accepted_nothing(a)
    finally:
        s.close()
        a.close()


@test("network: loopback mode reaches its own lo only, not the host's names")
def t_net_loopback_own():
    a, name = _abstract_listener()
    try:
        r = probe_ok("selfconnect", "127.0.0.1", opts=["--policy", "python"])
        check_eq(r["stdout"], "selfconnect: ok\n", "a server on the jail's lo")
        _, r, _ = probe("abstract", name, opts=["--policy", "python"])
        check_eq(r["stdout"], "abstract: ECONNREFUSED\n", "host abstract name")
        _accepted_nothing(a)
    finally:
        a.close()


# --- 8-11. limits ----------------------------------------------------------

@test("limits: fork bomb stopped by the pids limit, nothing survives")
def t_forkbomb():
    require_contained()
    _, r, _ = probe("forkbomb", opts=["--timeout", "2s"])
    expect(r, "timeout", 124)
    hits = r.get("pids_limit_hits", 0)
    check(isinstance(hits, int) and hits > 0,
          f"pids_limit_hits {r.get('pids_limit_hits')!r}: the pids limit was never hit")
    note(f"pids_limit_hits {hits}")
    left = processes_matching("forkbomb")
    if left:
        kill_all_matching("forkbomb")
    check(not left, f"fork bomb processes survived the run: {left}")


@test("limits: memory bomb killed at 64M")
def t_membomb():
    _, r, _ = probe("alloc", 500)
    expect(r, "memory_limit", 137)
    check(isinstance(r.get("oom_kills"), int) and r["oom_kills"] >= 1,
          f"oom_kills {r.get('oom_kills')!r}, expected >= 1")
    check("alloc: ok" not in r["stdout"], "500 MiB were allocated")


@test("limits: TCP socket buffers are held to the memory limit")
def t_tcp_buffers():
    # 120 loopback connections written to and never read: unbounded, the
    # kernel buffers ~350 MiB. v2 charges socket memory to memory.max;
    # v1 does not, so airlock sets memory.kmem.tcp.limit_in_bytes too.
    _, r, _ = probe("tcpfill", 120, opts=["--memory", "64M", "--timeout", "30s"])
    check(r["verdict"] in ("ok", "memory_limit"), f"verdict {r['verdict']}")
    m = re.search(r"tcpfill: queued (\d+)", r["stdout"])
    if r["verdict"] == "ok":
        check(m, f"no count: {excerpt(r['stdout'])}")
        check(int(m.group(1)) <= 80 * 2**20,
              f"{int(m.group(1)) >> 20} MiB of TCP buffers under a 64 MiB limit")


@test("limits: --memory 128M allows 64 MiB")
def t_memory_option():
    r = probe_ok("alloc", 64, opts=["--memory", "128M"])
    check_eq(r["stdout"], "alloc: ok 64\n", "probe alloc 64")


@test("limits: endless loop killed at --timeout 500ms")
def t_spin():
    _, r, _ = probe("spin", opts=["--timeout", "500ms"])
    expect(r, "timeout", 124)
    wall = r.get("wall_ms")
    check(isinstance(wall, (int, float)) and 450 <= wall <= 3000,
          f"wall_ms {wall!r} not within [450, 3000]")


# Two threads that burn CPU in parallel (hashlib releases the GIL on large
# buffers), so CPU time runs ahead of the wall clock.
_CPU_BURNER = """
import hashlib, threading
buf = b"x" * (4 << 20)
def burn():
    while True:
        hashlib.sha256(buf).digest()
for _ in range(2):
    threading.Thread(target=burn).start()
"""


@test("limits: CPU-time limit (multi-threaded) is a timeout")
def t_cpu_limit():
    # The CPU limit equals the wall-clock limit (docs/design.md, "Default
    # limits"); on a machine with more than one CPU two threads reach it
    # first. Being stopped by it is running out of time, not a crash.
    _, r, _ = run_json(["--timeout", "2s", "--", "python3", "-c", _CPU_BURNER])
    note(f"wall_ms {r.get('wall_ms')}, cpu_ms {r.get('cpu_ms')}")
    expect(r, "timeout", 124)


@test("limits: orphaned daemon dies with the run")
def t_orphan():
    require_contained()
    marker = f"MARKER-{secrets.token_hex(8)}"
    _, r, _ = probe("orphan", marker, opts=["--timeout", "1s"])
    expect(r, "timeout", 124)
    # Without this the test would pass vacuously if the orphan never started.
    check(result_line(r, "orphan").startswith("orphan: ok"), "the orphan was not created")
    left = processes_matching(marker)
    if left:
        kill_all_matching(marker)
    check(not left, f"the orphan survived the run: {left}")


# --- 12-14. output and disk ------------------------------------------------

# Runs airlock (argv[1:]) with this process's stdout and stderr and reports
# the largest RSS among its waited-for descendants (airlock, and the jail it
# reaped) on stderr's last line. A fresh interpreter, so that what the suite
# itself ran before does not count.
_MAXRSS_CHILD = r"""
import resource, subprocess, sys
status = subprocess.call(sys.argv[1:], stdin=subprocess.DEVNULL)
sys.stderr.write("\nmaxrss_kib=%d\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(status if status >= 0 else 128 - status)
"""


@test("output: 1 GiB flood truncated at 1 MiB, airlock stays small")
def t_flood():
    args = ["run", "--json", "--timeout", "60s", "--", PROBE, "flood", str(1 << 30)]
    status, out, err = run_airlock(args, timeout=90,
                                   wrapper=[sys.executable, "-c", _MAXRSS_CHILD])
    r = parse_result(status, out)
    expect(r, "ok", 0)
    check_eq(r["stdout_truncated"], True, "stdout_truncated")
    check_eq(len(r["stdout"]), OUTPUT_CAP, "len(stdout)")
    check(r["stdout"] == "A" * OUTPUT_CAP, "stdout is not all 'A'")
    # The rest was drained, not refused: the probe wrote all of it.
    check_eq(r["stderr"], "flood: ok\n", "the probe's own report")
    m = re.search(rb"maxrss_kib=(\d+)\n$", err)
    check(m, "no maxrss report from the wrapper")
    rss = int(m.group(1)) * 1024
    note(f"peak RSS {rss / MIB:.1f} MiB")
    check(rss < 64 * MIB, f"peak RSS {rss / MIB:.1f} MiB, expected < 64 MiB")


@test("output: stderr truncated at 1 MiB")
def t_stderr_cap():
    _, r, _ = run_json(["--", "sh", "-c", "head -c 3000000 /dev/zero >&2"])
    expect(r, "ok", 0)
    check_eq(r["stderr_truncated"], True, "stderr_truncated")
    check_eq(len(r["stderr"]), OUTPUT_CAP, "len(stderr)")
    check(r["stderr"] == "\0" * OUTPUT_CAP, "stderr is not the zeros written")
    check_eq(r["stdout_truncated"], False, "stdout_truncated")


@test("disk: filling /tmp stops at ENOSPC within 16 MiB")
def t_fill_tmp():
    _, r, _ = probe("fill", "/tmp")
    line = result_line(r, "fill")
    check(line.startswith("fill: ENOSPC "), f"probe fill /tmp: {line!r}")
    total = int(line.split()[2])
    check(0 < total <= TMP_SIZE, f"{total} bytes written to /tmp, limit {TMP_SIZE}")
    note(f"{total} bytes written")
    expect(r, "exit_nonzero", 1)


@test("disk: /dev/shm is private, writable and stops at ENOSPC within 16 MiB")
def t_dev_shm():
    secret = f"/dev/shm/airlock-host-{secrets.token_hex(6)}"
    with open(secret, "w") as f:
        f.write("host")
    try:
        r = probe_ok("ls", "/dev/shm")
        check_eq(r["stdout"], "ls: ok\n", "probe ls /dev/shm (the host's files)")
        _, r, _ = probe("fill", "/dev/shm")
        line = result_line(r, "fill")
        check(line.startswith("fill: ENOSPC "), f"probe fill /dev/shm: {line!r}")
        total = int(line.split()[2])
        check(0 < total <= TMP_SIZE, f"{total} bytes in /dev/shm, limit {TMP_SIZE}")
        _, r, _ = run_json(["--", "/usr/bin/python3", "-c",
                            "import multiprocessing as m; q = m.Queue(); "
                            "q.put(42); print(q.get(timeout=5))"])
        expect(r, "ok", 0)
        check_eq(r["stdout"], "42\n", "multiprocessing.Queue (its semaphore lives in /dev/shm)")
    finally:
        os.unlink(secret)


@test("disk: the working directory is the writable /tmp")
def t_workdir():
    _, r, _ = run_json(["--", "/bin/sh", "-c",
                        'pwd; echo "{}" > results.json && cat results.json'])
    expect(r, "ok", 0)
    check_eq(r["stdout"], "/tmp\n{}\n", "pwd and a file written to the working directory")


# --- 14b. IPC and the calls runtimes make -------------------------------------

@test("ipc: SysV shm, sem and msg work; the host's segment is not visible")
def t_sysv_private():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    key = 0x41490000 + secrets.randbelow(0xffff)
    shm = libc.shmget(key, 4096, 0o1000 | 0o600)  # IPC_CREAT
    check(shm >= 0, f"host shmget: errno {ctypes.get_errno()}")
    try:
        check(libc.shmget(key, 0, 0) == shm, "the host's own segment is not found")
        r = probe_ok("sysv", key)
        check_eq(r["stdout"], "sysv: ok\n", f"probe sysv {key:#x}")
    finally:
        libc.shmctl(shm, 0, None)  # IPC_RMID


RUNTIME_CALLS = r"""
import errno, os, signal, subprocess
os.sync()
os.mkfifo("/tmp/fifo")
fd = os.open("/tmp/f", os.O_CREAT | os.O_WRONLY)
try:
    os.setxattr(fd, "user.origin", b"airlock")
    assert os.getxattr(fd, "user.origin") == b"airlock"
except OSError as e:  # tmpfs has user xattrs from Linux 6.6
    assert e.errno == errno.EOPNOTSUPP, e
p = subprocess.Popen(["sleep", "0.3"])
pidfd = os.pidfd_open(p.pid)
signal.pidfd_send_signal(pidfd, signal.SIGSTOP)
signal.pidfd_send_signal(pidfd, signal.SIGCONT)
assert p.wait() == 0, "stopped and continued sleep did not finish"
for call in (lambda: os.setgroups([]), lambda: os.sched_setscheduler(
        0, os.SCHED_FIFO, os.sched_param(1))):
    try:
        call()
        raise SystemExit("a privileged call succeeded")
    except PermissionError:
        pass
os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
print("runtime calls: ok")
"""


@test("syscalls: sync, mkfifo, user xattrs, pidfd, stop/continue, setgroups EPERM (python)")
def t_runtime_calls():
    for policy in ("default", "python"):
        _, r, _ = run_json(["--policy", policy, "--", "/usr/bin/python3", "-c",
                            RUNTIME_CALLS])
        expect(r, "ok", 0)
        check_eq(r["stdout"], "runtime calls: ok\n", f"under {policy}")


@test("syscalls: strict keeps sockets, SysV IPC, pidfds and priority changes out")
def t_strict_stays_strict():
    for args, call in ((("socketpair",), "socketpair"), (("sysv", 1), "shmget"),
                       (("syscall", "pidfd_open"), "pidfd_open"),
                       (("syscall", "sched-fifo"), "sched_setscheduler")):
        _, r, _ = probe(*args, opts=["--policy", "strict"])
        expect(r, "seccomp_violation", 159)
        check_eq(r["syscall"], call, f"probe {' '.join(map(str, args))} under strict")


@test("syscalls: a shell script stopped with SIGSTOP and continued survives")
def t_stop_continue():
    script = ("sleep 1 & p=$!; sleep 0.2; kill -STOP $p; sleep 0.2; "
              "kill -CONT $p; wait $p && echo resumed")
    _, r, _ = run_json(["--", "/bin/sh", "-c", script])
    expect(r, "ok", 0)
    check_eq(r["stdout"], "resumed\n", "stdout")


# --- 15. escape syscalls ---------------------------------------------------

# probe name → the kernel's name of the syscall the filter must refuse.
ESCAPES = {
    "ptrace": "ptrace", "mount": "mount", "umount": "umount2",
    "unshare": "unshare", "unshare-ns": "unshare", "setns": "setns",
    "keyctl": "keyctl", "add_key": "add_key", "bpf": "bpf",
    "perf_event_open": "perf_event_open", "init_module": "init_module",
    "finit_module": "finit_module", "kexec_load": "kexec_load",
    "open_by_handle_at": "open_by_handle_at", "userfaultfd": "userfaultfd",
    "io_uring_setup": "io_uring_setup", "clone-newuser": "clone",
    "chroot": "chroot", "pivot_root": "pivot_root",
    "process_vm_readv": "process_vm_readv", "socket-packet": "socket",
    "socket-alg": "socket", "swapon": "swapon", "reboot": "reboot",
    "iopl": "iopl", "syslog": "syslog", "fanotify_init": "fanotify_init",
    # allowed by a group since runtimes call them, but still refused by
    # the kernel for want of a capability or an rlimit (policy/syscalls.c)
    "mknod": "mknodat", "sched-fifo": "sched_setscheduler",
    "xattr-trusted": "fsetxattr",
    # pidfd_open is allowed; taking init's fds with it is not
    "pidfd_getfd": "pidfd_getfd",
}

# Too dangerous to be merely refused with an errno: the filter must kill.
MUST_KILL = {"ptrace", "mount", "unshare", "keyctl", "bpf", "perf_event_open",
             "init_module", "kexec_load", "open_by_handle_at", "userfaultfd",
             "pidfd_getfd"}

# Refused with ENOSYS so that libc falls back (clone3) or a program takes
# its plain-syscall path (io_uring).
MUST_ENOSYS = {"io_uring_setup", "clone3"}


def _escape_test(name, kernel_name):
    def run():
        _, r, _ = probe("syscall", name)
        out = r.get("stdout") or ""
        check(f"syscall {name}: ok" not in out, f"syscall {name} succeeded in the jail")
        if name in MUST_ENOSYS:
            check_eq(out, f"syscall {name}: ENOSYS\n", "probe output")
            expect(r, "exit_nonzero", 1)
        elif r["verdict"] == "seccomp_violation":
            check_eq(r["syscall"], kernel_name, "syscall")
            check_eq(r["exit_status"], 159, "exit_status")
        else:
            check(name not in MUST_KILL,
                  f"{name} must be a seccomp_violation, got {r['verdict']!r} {out!r}")
            expect(r, "exit_nonzero", 1)
            check(re.fullmatch(rf"syscall {re.escape(name)}: E[A-Z0-9]+\n", out),
                  f"expected 'syscall {name}: E...', got {out!r}")
        if r["verdict"] == "seccomp_violation":
            note(f"seccomp_violation ({r['syscall']})")
        else:
            note(f"{r['verdict']} ({out.strip()})")
    return run


for _name, _kernel in ESCAPES.items():
    test(f"escape syscall {_name}")(_escape_test(_name, _kernel))
test("escape syscall clone3")(_escape_test("clone3", "clone3"))


@test("seccomp: a filter of the module's own cannot hide its denied calls")
def t_own_filter():
    # An ERRNO filter stacked on the jail's would outrank its user
    # notification: ptrace, unshare and keyctl would fail quietly and the
    # run end ok. Installing it must fail, and the call stop the run.
    for how in ("prctl", "seccomp"):
        for call in ("ptrace", "unshare", "keyctl"):
            _, r, _ = probe("ownfilter", how, call)
            what = f"ownfilter {how} {call}"
            check_eq(r.get("stdout"), f"ownfilter {how}: EINVAL\n",
                     f"{what}: installing the filter")
            expect(r, "seccomp_violation", 159)
            check_eq(r.get("syscall"), call, f"{what}: the call named")


@test("seccomp: a program that sandboxes itself with libseccomp is told EINVAL and carries on")
def t_self_sandbox():
    src = os.path.join(MODULES, "self_sandbox.c")
    with tempfile.TemporaryDirectory(prefix="airlock-selfsb-") as d:
        os.chmod(d, 0o755)
        exe = os.path.join(d, "self_sandbox")
        cc = subprocess.run(["cc", "-O1", "-o", exe, src, "-lseccomp"],
                            capture_output=True, text=True)
        check_eq(cc.returncode, 0, f"cc: {excerpt(cc.stderr)}")
        host = subprocess.run([exe], capture_output=True, text=True)
        check_eq(host.stdout.split()[-1:], ["ok"], "the filter loads outside a jail")
        # (strict leaves seccomp and prctl out altogether)
        for policy in ("default", "python"):
            _, r, _ = run_json(["--policy", policy, "--", exe])
            expect(r, "ok", 0)
            check(re.fullmatch(r"self_sandbox: api \d+ load EINVAL\n", r["stdout"]),
                  f"under {policy}: {excerpt(r['stdout'])}")


def _abi_works_on_host(abi):
    """Whether the kernel has this entry: outside a jail, the probe's call
    returns (ENOSYS too: x32 off, still seen by seccomp) rather than dying
    (int 0x80 without IA32 emulation) or not being made (not x86-64)."""
    out = subprocess.run([PROBE, "foreign", abi], capture_output=True,
                         text=True).stdout
    return out.startswith(f"foreign {abi}: ok") or out == f"foreign {abi}: ENOSYS\n"


@test("seccomp: calls through int 0x80 and the x32 bit are seccomp violations, from a child too")
def t_foreign_abi():
    tried = 0
    for abi, prefix in (("int80", "i386"), ("x32", "x32")):
        if not _abi_works_on_host(abi):
            note(f"{abi}: not on this machine (the host's probe died or made no call)")
            continue
        tried += 1
        for args in ((abi,), (abi, "child")):
            _, r, _ = probe("foreign", *args)
            what = "probe foreign " + " ".join(args)
            check("ok" not in (r.get("stdout") or ""),
                  f"{what}: the call ran: {excerpt(r.get('stdout'))}")
            expect(r, "seccomp_violation", 159)
            check_eq(r.get("syscall"), f"{prefix}:getpid", f"{what}: the call named")
    if not tried:
        raise Skip("neither ABI exists on this machine (x86-64 only)")


# --- 16. identity ------------------------------------------------------------

@test("identity: no capabilities, no_new_privs, seccomp filter, not root")
def t_status():
    r = probe_ok("status")
    fields = {}
    for line in r["stdout"].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key] = value.strip()
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        check_eq(fields.get(cap), "0000000000000000", cap)
    check_eq(fields.get("NoNewPrivs"), "1", "NoNewPrivs")
    check_eq(fields.get("Seccomp"), "2", "Seccomp")
    uids = (fields.get("Uid") or "").split()
    check(len(uids) == 4 and "0" not in uids, f"Uid {fields.get('Uid')!r} includes root")
    check_eq(fields.get("Groups"), "", "Groups")


@test("identity: ids not root")
def t_ids():
    r = probe_ok("ids")
    m = re.match(r"ids: ok uid=(\d+),(\d+),(\d+) gid=(\d+),(\d+),(\d+) groups=(\d+)",
                 result_line(r, "ids"))
    check(m, f"unexpected ids line {result_line(r, 'ids')!r}")
    check("0" not in m.groups()[:3], f"uid is root: {m.group(0)!r}")
    check_eq(m.group(7), "0", "supplementary group count")


@test("identity: hostname is airlock")
def t_hostname():
    r = probe_ok("hostname")
    check_eq(r["stdout"], "hostname: ok airlock\n", "probe hostname")


# --- 17. terminal ------------------------------------------------------------

def _read_nonblocking(fd):
    os.set_blocking(fd, False)
    data = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except (BlockingIOError, OSError):
            return data
        if not chunk:
            return data
        data += chunk


def _own_terminal():
    """In the child before exec: a new session whose controlling terminal
    is stdin (the pty slave)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@test("terminal: TIOCSTI cannot inject input into the caller's pty")
def t_tiocsti():
    master, slave = pty.openpty()
    try:
        # Raw and without echo, so that an injected byte is not echoed (or
        # turned into a signal) but waits, as typed input, to be read.
        tty.setraw(slave)
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        # The pty is airlock's controlling terminal, as a terminal is for a
        # user's shell: TIOCSTI on one's own controlling terminal needs no
        # privilege, so only the jail (a new session) stands in the way.
        _, r, _ = probe("tiocsti", 0, stdin=slave, preexec_fn=_own_terminal)
        line = result_line(r, "tiocsti")
        check(line != "tiocsti: ok", "TIOCSTI succeeded on the host's terminal")
        check(line in ("tiocsti: EPERM", "tiocsti: EIO", "tiocsti: ENOTTY"),
              f"unexpected {line!r}")
        note(line)
        typed = _read_nonblocking(slave)   # what a shell on it would read
        echoed = _read_nonblocking(master)  # what a terminal would show
        check(b"x" not in typed, f"bytes injected into the terminal's input: {typed!r}")
        check(b"x" not in echoed, f"bytes injected reached the terminal: {echoed!r}")
    finally:
        os.close(master)
        os.close(slave)


def _airlock_on_pty(args, typed=b"", timeout=20, stdout=None):
    """Run `airlock ARGS` with a pty's slave as stdin, stdout (unless
    given) and stderr and as its controlling terminal (a user's shell);
    type `typed` into it. Returns (exit status, what the terminal showed,
    the slave fd)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    p = subprocess.Popen([AIRLOCK] + list(args), stdin=slave,
                         stdout=slave if stdout is None else stdout,
                         stderr=slave, preexec_fn=_own_terminal)
    STARTED.add(p.pid)
    shown = b""
    deadline = time.monotonic() + timeout
    if typed:
        # typed ahead: it waits in the terminal until airlock reads it
        os.write(master, typed)
    while p.poll() is None and time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                shown += os.read(master, 4096)
            except OSError:
                break
    if p.poll() is None:
        p.kill()
    status = p.wait()
    os.set_blocking(master, False)
    try:
        shown += os.read(master, 65536)
    except OSError:
        pass
    # the master stays open with the slave: a pty whose master is closed
    # answers nothing but EIO
    PTY_MASTERS[slave] = master
    return status, shown, slave


PTY_MASTERS = {}


def _close_pty(slave):
    os.close(slave)
    os.close(PTY_MASTERS.pop(slave))


@test("terminal: the module gets a pty of its own; the caller's is as it was")
def t_own_pty():
    slave = None
    try:
        # what the caller's terminal looked like before, read on a fresh pty
        m2, s2 = pty.openpty()
        fcntl.ioctl(s2, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
        before = termios.tcgetattr(s2)
        os.close(m2)
        os.close(s2)
        # stdout to a file: had the module's N_NULL discipline been set,
        # it would silence its pty
        with tempfile.TemporaryFile() as f:
            status, shown, slave = _airlock_on_pty(
                ["run", "--", PROBE, "ttyattack"], stdout=f)
            f.seek(0)
            text = f.read().decode("utf-8", "replace") + shown.decode(
                "utf-8", "replace")
        check_eq(status, 0, f"exit status ({excerpt(text)})")
        # the module could do all of it, to its own terminal, but for the
        # line discipline (t_tty_requests)
        check(re.search(r"ttyattack: .*ldisc EPERM .*winsize ok .*nonblock ok",
                        text), f"module saw: {excerpt(text)}")
        ldisc = struct.unpack("i", fcntl.ioctl(slave, termios.TIOCGETD, b"\0" * 4))[0]
        check_eq(ldisc, 0, "the caller's line discipline (N_TTY)")
        check_eq(termios.tcgetattr(slave), before, "the caller's terminal modes")
        rows, cols, _, _ = struct.unpack(
            "HHHH", fcntl.ioctl(slave, termios.TIOCGWINSZ, b"\0" * 8))
        check_eq((rows, cols), (40, 100), "the caller's window size")
        check(not fcntl.fcntl(slave, fcntl.F_GETFL) & os.O_NONBLOCK,
              "the caller's terminal was left non-blocking")
    finally:
        if slave is not None:
            _close_pty(slave)


@test("terminal: typed input and the window size reach the module's pty")
def t_pty_relay():
    status, shown, slave = _airlock_on_pty(
        ["run", "--", "/bin/sh", "-c", 'stty size; read x; echo "got $x"'],
        typed=b"hello\r")
    _close_pty(slave)
    text = shown.decode("utf-8", "replace")
    check_eq(status, 0, f"exit status ({excerpt(text)})")
    check("40 100" in text, f"stty size: {excerpt(text)}")
    check("got hello" in text, f"the typed line: {excerpt(text)}")


TTY_REFUSED = "ttyioctl: setd EPERM sti EPERM linux EPERM\n"
TTY_WINSIZE = "ttyioctl winsize: ok\n"

# A policy whose allow-list has no ioctl at all: the three requests are
# still refused with EPERM (not a kill), ahead of the policy's rules,
# and every other request is the policy's (a violation).
NO_IOCTL_POLICY = """\
[seccomp]
allow = @basic-io @file-system @memory @process @credentials @signal @time
allow = @event @network @ipc !ioctl
"""


@test("terminal: TIOCSETD, TIOCSTI and TIOCLINUX fail with EPERM on the module's terminal and its own pty")
def t_tty_requests():
    # on the pty `airlock run` gives the module for the caller's terminal
    with tempfile.NamedTemporaryFile("w", suffix=".policy") as f:
        f.write(NO_IOCTL_POLICY)
        f.flush()
        for policy, status, shows in (("default", 0, TTY_REFUSED + TTY_WINSIZE),
                                      ("strict", 0, TTY_REFUSED + TTY_WINSIZE),
                                      (f.name, 159, TTY_REFUSED)):
            name = os.path.basename(policy)
            got, shown, slave = _airlock_on_pty(
                ["run", "--policy", policy, "--", PROBE, "ttyioctl", "0"])
            _close_pty(slave)
            text = shown.decode("utf-8", "replace").replace("\r\n", "\n")
            check_eq(got, status, f"exit status under {name} ({excerpt(text)})")
            check(shows in text, f"under {name}: {excerpt(text)}")
            if status == 159:
                check("syscall ioctl" in text, f"under {name}: {excerpt(text)}")
    # on a pty the module opens itself (and makes its controlling
    # terminal, on which TIOCSTI would need no privilege)
    _, r, _ = probe("ttyioctl", "pty", opts=["--policy", "python"])
    expect(r, "ok", 0)
    check_eq(r.get("stdout"), TTY_REFUSED + TTY_WINSIZE, "its own pty")


# A terminal program's everyday requests on a pty of its own.
PTY_PROGRAM = r"""
import os, pty, termios, tty, struct, fcntl
m, s = os.openpty()
fcntl.ioctl(s, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
mode = termios.tcgetattr(s)
tty.setraw(s)
termios.tcsetattr(s, termios.TCSANOW, mode)
ldisc = struct.unpack("i", fcntl.ioctl(s, termios.TIOCGETD, b"\0" * 4))[0]
pid, fd = pty.fork()
if pid == 0:
    # stty stays on the terminal until told to go: a pty's master may
    # answer EIO before the last output of a closed slave is read
    os.execv("/bin/sh", ["sh", "-c", "stty -a && read x"])
out = b""
while not (b"echo" in out and out.endswith(b"\n")):
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
os.write(fd, b"\n")
_, st = os.waitpid(pid, 0)
print("ldisc", ldisc, "stty", os.waitstatus_to_exitcode(st),
      "speed" in out.decode(), "echo" in out.decode())
"""


@test("terminal: stty, python's pty and termios still work")
def t_tty_programs():
    status, shown, slave = _airlock_on_pty(
        ["run", "--", "/bin/sh", "-c",
         "stty -a && stty -echo && stty echo && stty rows 30 cols 90 && stty size"])
    _close_pty(slave)
    text = shown.decode("utf-8", "replace")
    check_eq(status, 0, f"exit status ({excerpt(text)})")
    check("speed" in text and "30 90" in text, f"stty: {excerpt(text)}")
    _, r, _ = run_json(["--policy", "python", "--", "/usr/bin/python3", "-c", PTY_PROGRAM])
    expect(r, "ok", 0)
    check_eq(r["stdout"], "ldisc 0 stty 0 True True\n", "python pty, termios, stty -a")


# --- 18-19. what the jail inherits ---------------------------------------------

PTY_CHECK = r"""
import os
m, s = os.openpty()
os.write(s, b"ping\n")
assert os.read(m, 16) == b"ping\r\n"
print(os.ttyname(s), sorted(os.listdir("/dev/pts")))
"""


@test("terminal: terminal = yes gives a private /dev/pts; without it there is none")
def t_private_pts():
    host_ptys = [p for p in os.listdir("/dev/pts") if p.isdigit()]
    master, slave = pty.openpty()  # at least one host pty exists
    try:
        _, r, _ = run_json(["--policy", "python", "--", "/usr/bin/python3", "-c", PTY_CHECK])
        expect(r, "ok", 0)
        check_eq(r["stdout"], "/dev/pts/0 ['0', 'ptmx']\n",
                 "the jail's ptys (the host's are not there)")
        _, r, _ = run_json(["--", "/bin/ls", "/dev/pts", "/dev/ptmx"])
        expect(r, "exit_nonzero", 2)
        note(f"host had {len(host_ptys) + 1} ptys; the jail saw only its own")
    finally:
        os.close(master)
        os.close(slave)


@test("inheritance: only fds 0 1 2 reach the jail")
def t_fds():
    fd = os.open("/etc/hostname" if os.path.exists("/etc/hostname") else "/etc/passwd",
                 os.O_RDONLY)
    try:
        os.set_inheritable(fd, True)
        r = probe_ok("fds", pass_fds=(fd,))
        check_eq(r["stdout"], "fds: ok 0 1 2\n", f"probe fds (host fd {fd} inherited by airlock)")
    finally:
        os.close(fd)


@test("inheritance: a caller holding many fds still gets a working jail")
def t_many_fds():
    # A supervisor with many runs holds many fds; the jail must drop them
    # before its open-files limit (256) applies, or its own set-up fails.
    fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(300)]
    try:
        for fd in fds:
            os.set_inheritable(fd, True)
        _, r, _ = probe("fds", pass_fds=fds)
        expect(r, "ok", 0)
        check_eq(r["stdout"], "fds: ok 0 1 2\n", "fds in the jail")
    finally:
        for fd in fds:
            os.close(fd)


@test("inheritance: environment built from the policy, not inherited")
def t_env():
    secret = f"xyz-{secrets.token_hex(6)}"
    env = dict(os.environ, AIRLOCK_TEST_SECRET=secret)
    r = probe_ok("env", env=env)
    out = r["stdout"]
    check("AIRLOCK_TEST_SECRET" not in out, "AIRLOCK_TEST_SECRET reached the jail")
    check(secret not in out, "the secret's value reached the jail")
    lines = out.splitlines()
    check(any(l.startswith("PATH=") for l in lines), f"no PATH in {out!r}")
    check("HOME=/tmp" in lines, f"no HOME=/tmp in {out!r}")


# --- 20. kill(-1) -------------------------------------------------------------

@test("kill(-1): ends only the jail, verdict within the timeout")
def t_killall():
    require_contained()
    victim = start_victim()
    try:
        _, r, _ = probe("killall", timeout=15)
        expect(r, "ok", 0)
        note(result_line(r, "killall"))
        check(not exited_within(victim.pid, 0.2),
              "kill(-1) in the jail killed a host process")
    finally:
        stop_victim(victim)


# --- 21. bad input ----------------------------------------------------------

def _bad_input(args, status, mentions, plain_mentions=None):
    """airlock run with ARGS must refuse with `status`, a setup_error whose
    message mentions `mentions`, and leave no cgroup behind. With
    plain_mentions, the run without --json must also say so on stderr."""
    before = run_cgroups()
    got, out, err = run_airlock(["run", "--json"] + args)
    r = parse_result(got, out)
    expect(r, "setup_error", status)
    error = r.get("error")
    check(isinstance(error, str) and error, f"error {error!r} is empty")
    check(mentions.lower() in error.lower(), f"error {error!r} does not mention {mentions!r}")
    note(f"error: {error}")
    leaked = new_leaks(before)
    check(not leaked, f"cgroups left behind: {leaked}")
    if plain_mentions:
        before = run_cgroups()
        got, out, err = run_airlock(["run"] + args)
        check_eq(got, status, "exit status without --json")
        text = err.decode("utf-8", "replace")
        check(plain_mentions.lower() in text.lower(),
              f"stderr {text!r} does not mention {plain_mentions!r}")
        check_eq(out, b"", "stdout without --json")
        leaked = new_leaks(before)
        check(not leaked, f"cgroups left behind without --json: {leaked}")


@test("bad input: missing module → 127")
def t_bad_missing():
    path = f"/tmp/airlock-missing-{secrets.token_hex(6)}"
    _bad_input(["--", path], 127, path)


@test("bad input: non-executable file → 126")
def t_bad_noexec():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "module.txt")
        with open(path, "w") as f:
            f.write("#!/bin/sh\necho should not run\n")
        os.chmod(path, 0o644)
        _bad_input(["--", path], 126, path)


@test("bad input: directory → 126")
def t_bad_directory():
    with tempfile.TemporaryDirectory() as d:
        _bad_input(["--", d], 126, d)


@test("bad input: dangling symlink → 127")
def t_bad_dangling():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "link")
        os.symlink(os.path.join(d, "nowhere"), path)
        _bad_input(["--", path], 127, "symbolic link")


@test("bad input: bare name not on PATH → 127")
def t_bad_bare():
    _bad_input(["--", "nosuchprogram-xyz"], 127, "nosuchprogram-xyz")


# (options, what the message must name). These fail before any jail, so
# they need no root.
BAD_OPTIONS = [
    (["--memory", "0"], "memory"),
    (["--memory", "99999999999999T"], "memory"),
    (["--timeout", "-1"], "timeout"),
    (["--timeout", "0"], "timeout"),
    (["--pids", "0"], "pids"),
    (["--net", "bogus"], "bogus"),
    (["--policy", "nosuch"], "nosuch"),
]


def _bad_option_test(opts, mentions):
    return lambda: _bad_input(opts + ["--", "/bin/true"], 125, mentions, mentions)


for _opts, _mentions in BAD_OPTIONS:
    test(f"bad input: {' '.join(_opts)} → 125", root=False)(_bad_option_test(_opts, _mentions))


@test("bad input: no program → 125", root=False)
def t_bad_no_program():
    _bad_input([], 125, "program", "program")


# --- cgroup drivers: which one, and nothing of the caller's touched ------------
# Each test holds on every host: the branch for the host it runs on is
# named in the test, and the v2 branches run in make check-vm's guest
# (systemd as PID 1, cgroup v2); the v1 ones on the project's CI machines.

def host_cgroup_kind():
    """('v1' or 'v2', whether systemd manages the tree)."""
    v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    return ("v2" if v2 else "v1"), os.path.isdir("/run/systemd/system")


def own_cgroup_dirs():
    """The cgroup directories this process is in (v2: one; v1: memory and
    pids)."""
    kind, _ = host_cgroup_kind()
    dirs = []
    with open("/proc/self/cgroup") as f:
        lines = [l.rstrip("\n").split(":", 2) for l in f if l.count(":") >= 2]
    for _, controllers, path in lines:
        if kind == "v2" and controllers == "":
            dirs.append("/sys/fs/cgroup" + path.rstrip("/"))
        elif kind == "v1" and controllers in ("memory", "pids"):
            dirs.append(f"/sys/fs/cgroup/{controllers}" + path.rstrip("/"))
    return dirs


def subdirs(d):
    try:
        return sorted(e for e in os.listdir(d) if os.path.isdir(os.path.join(d, e)))
    except OSError:
        return []


def airlock_scopes():
    status, out, _ = harness.run_logged(
        ["systemctl", "list-units", "--all", "--plain", "--no-legend",
         "airlock-*.scope"], RUN_TIMEOUT)
    return [l.split()[0] for l in out.decode().splitlines() if l.strip()]


@test("cgroup driver: a run from a shared cgroup leaves that cgroup as it was")
def t_driver_shared_cgroup():
    # this suite's own cgroup holds the harness too: like a login shell,
    # sudo or a CI step, it is not airlock's to restructure
    kind, systemd = host_cgroup_kind()
    own = own_cgroup_dirs()
    before = {d: subdirs(d) for d in own}
    _, r, _ = run_json(["--", "/bin/true"])
    expect(r, "ok", 0)
    want = {"v1": "v1", "v2": "v2 systemd" if systemd else "v2"}[kind]
    check_eq(r.get("cgroup"), want, "driver")
    check_eq(own_cgroup_dirs(), own, "the caller's cgroup")
    for d in own:
        added = set(subdirs(d)) - set(before[d])
        if kind == "v2":
            # nothing made in the caller's cgroup, nothing moved out of it
            check(not added, f"{d} gained {sorted(added)}")
        else:
            # v1: run cgroups live below the caller's, under airlock/
            check(added <= {"airlock"}, f"{d} gained {sorted(added)}")
    if kind == "v2" and systemd:
        # the scope airlock asked for goes away with it
        left = airlock_scopes()
        for _ in range(100):
            if not left:
                break
            time.sleep(0.05)
            left = airlock_scopes()
        check(not left, f"scopes left behind: {left}")


@test("cgroup driver: without systemd, root's runs get limits all the same")
def t_driver_no_systemd():
    # /run/systemd hidden in a mount namespace: on v2 the runs go under
    # the hierarchy root's airlock/ with nothing moved; on v1 nothing
    # changes (the v1 driver never asks systemd)
    kind, _ = host_cgroup_kind()
    hide = ["unshare", "-m", "sh", "-c",
            '[ -d /run/systemd ] && mount -t tmpfs none /run/systemd; exec "$@"',
            "sh"]
    _, r, _ = run_json(["--memory", "64M", "--", PROBE, "alloc", "256"],
                       wrapper=hide)
    expect(r, "memory_limit", 137)
    check_eq(r.get("cgroup"), kind, "driver")
    if kind == "v2":
        check(os.path.isdir("/sys/fs/cgroup/airlock"),
              "no /sys/fs/cgroup/airlock")
        with open("/sys/fs/cgroup/airlock/cgroup.subtree_control") as f:
            check("memory" in f.read().split(), "memory not delegated to runs")


def in_own_cgroup(name):
    """A wrapper that runs the command in a fresh cgroup `name` below ours,
    alone (v1: memory and pids; v2 without systemd), created here."""
    dirs = [os.path.join(d, name) for d in own_cgroup_dirs()]
    for d in dirs:
        os.mkdir(d)
    script = "".join(f'echo $$ > "{d}/cgroup.procs" && ' for d in dirs)
    return dirs, ["sh", "-c", script + 'exec "$@"', "sh"]


@test("cgroup driver: alone in a cgroup delegated to it, airlock builds inside it")
def t_driver_delegated():
    kind, systemd = host_cgroup_kind()
    if kind == "v2" and systemd:
        # a Delegate=yes scope; then one whose mark was removed, as systemd
        # before 251 leaves it (airlock asks systemd); then Delegate=no
        scope = ["systemd-run", "--scope", "--quiet", "-p", "Delegate=yes", "--"]
        _, r, _ = run_json(["--memory", "64M", "--", PROBE, "alloc", "256"],
                           wrapper=scope)
        expect(r, "memory_limit", 137)
        check_eq(r.get("cgroup"), "v2", "driver in a delegated scope")
        unmark = ["python3", "-c",
                  "import os, sys\n"
                  "p = '/sys/fs/cgroup' + open('/proc/self/cgroup').read()"
                  ".split('::')[1].strip()\n"
                  "os.removexattr(p, 'trusted.delegate')\n"
                  "os.execv(sys.argv[1], sys.argv[1:])"]
        _, r, _ = run_json(["--", "/bin/true"], wrapper=scope + unmark)
        expect(r, "ok", 0)
        if r.get("cgroup") != "v2":
            # doctor's detail says why systemd's answer was not had
            _, out, _ = run_airlock(["doctor"], wrapper=scope + unmark)
            raise Failure("driver in an unmarked delegated scope: expected "
                          f"'v2', got {r.get('cgroup')!r}; doctor: "
                          f"{excerpt(out.decode('utf-8', 'replace'))}")
        plain = ["systemd-run", "--scope", "--quiet", "--"]
        _, r, _ = run_json(["--", "/bin/true"], wrapper=plain)
        expect(r, "ok", 0)
        check_eq(r.get("cgroup"), "v2 systemd", "driver in a scope without Delegate")
        return
    # v1, or v2 without systemd: a cgroup of its own that the test makes
    dirs, wrapper = in_own_cgroup(f"t-delegated-{os.getpid()}")
    try:
        _, r, _ = run_json(["--memory", "64M", "--", PROBE, "alloc", "256"],
                           wrapper=wrapper)
        expect(r, "memory_limit", 137)
        check_eq(r.get("cgroup"), kind, "driver")
        if kind == "v1":
            for d in dirs:
                check(os.path.isdir(os.path.join(d, "airlock")),
                      f"the run's cgroup was not made below {d}")
    finally:
        for d in dirs:
            for sub in ("airlock/airlock-self", "airlock", "airlock-self", ""):
                try:
                    os.rmdir(os.path.join(d, sub))
                except OSError:
                    pass


# --- cgroup discovery through libcgroup ---------------------------------------

# cgroup v1 only (libcgroup knows v1 layouts); the v2 twin follows.
@test("cgroup v1 discovery: the libcgroup fallback finds the same limits")
def t_libcgroup_fallback():
    if harness.cgroup_v2_only():
        raise harness.OtherHierarchy("cgroup v2 host: the v2 twin runs instead")
    env = dict(os.environ, AIRLOCK_CGROUP_DISCOVERY="libcgroup")
    _, r, _ = probe("alloc", "500", env=env)
    expect(r, "memory_limit", 137)
    check_eq(r.get("cgroup"), "v1", "cgroup")
    _, r, _ = probe("echo", "hi", env=env)
    expect(r, "ok", 0)


# cgroup v2 only; the v1 twin is the test before.
@test("cgroup v2 discovery: the limits apply on the unified hierarchy; the v1 libcgroup switch changes nothing")
def t_v2_discovery():
    if not harness.cgroup_v2_only():
        raise harness.OtherHierarchy("cgroup v1 host: the v1 twin runs instead")
    env = dict(os.environ, AIRLOCK_CGROUP_DISCOVERY="libcgroup")
    _, r, _ = probe("alloc", "500", env=env)
    expect(r, "memory_limit", 137)
    check_eq(r.get("cgroup"), expected_driver(), "cgroup")
    _, r, _ = probe("echo", "hi", env=env)
    expect(r, "ok", 0)


# --- rootless: the same jail in a user namespace ----------------------------

# An unprivileged uid with no account: the caller of the rootless tests.
ROOTLESS_UID = 12345


class Rootless:
    """Copies of airlock and the probe that an unprivileged user can run
    (the checkout itself may sit under a directory only root can enter),
    and a way to run them as ROOTLESS_UID."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="airlock-rootless-")
        os.chmod(self.dir, 0o755)
        self.airlock = os.path.join(self.dir, "airlock")
        self.probe = os.path.join(self.dir, "probe")
        for src, dst in ((AIRLOCK, self.airlock), (PROBE, self.probe)):
            with open(src, "rb") as f, open(dst, "wb") as g:
                g.write(f.read())
            os.chmod(dst, 0o755)

    def close(self):
        for name in ("airlock", "probe"):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)

    def run(self, opts, *probe_args):
        def drop():
            os.setgroups([])
            os.setresgid(ROOTLESS_UID, ROOTLESS_UID, ROOTLESS_UID)
            os.setresuid(ROOTLESS_UID, ROOTLESS_UID, ROOTLESS_UID)
        global AIRLOCK
        saved, AIRLOCK = AIRLOCK, self.airlock
        try:
            args = list(opts) + ["--", self.probe] + [str(a) for a in probe_args]
            return run_json(args, preexec_fn=drop)
        finally:
            AIRLOCK = saved


def rootless_test(fn):
    def wrapped():
        need_file(PROBE)
        r = Rootless()
        try:
            fn(r)
        finally:
            r.close()
    return wrapped


@test("rootless: cgroup limits required by default, refused with a way out")
@rootless_test
def t_rootless_refused(rl):
    status, r, _ = rl.run([], "true")
    expect(r, "setup_error", 125)
    check_eq(r.get("privilege"), "user-namespace", "privilege")
    check("--limits best-effort" in r.get("error", ""),
          f"the error does not say how to proceed: {excerpt(r.get('error'))}")


@test("rootless: best-effort runs jailed and lists the missing limits")
@rootless_test
def t_rootless_status(rl):
    _, r, _ = rl.run(["--limits", "best-effort"], "status")
    expect(r, "ok", 0)
    check_eq(r.get("limits_not_applied"), ["memory", "pids", "cpu_quota"],
             "limits_not_applied")
    check_eq(r.get("cgroup"), "none", "cgroup")
    out = r["stdout"]
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        check(f"{key}:\t0000000000000000" in out, f"{key} not empty: {excerpt(out)}")
    check("NoNewPrivs:\t1" in out and "Seccomp:\t2" in out,
          f"no_new_privs or seccomp missing: {excerpt(out)}")
    check(re.search(r"^Uid:\t65534\t65534\t65534\t65534$", out, re.M),
          f"not the jail's uid: {excerpt(out)}")


@test("rootless: host processes, files and root stay out of reach")
@rootless_test
def t_rootless_isolation(rl):
    opts = ["--limits", "best-effort"]
    _, r, _ = rl.run(opts, "pids")
    check_eq(r.get("stdout"), "pids: ok 1 2\n", "processes seen")
    _, r, _ = rl.run(opts, "read", "/root/.bashrc")
    check(r.get("stdout", "").startswith("read: E"), f"read a host file: {excerpt(r.get('stdout'))}")
    _, r, _ = rl.run(opts, "write", "/usr/airlock-rootless")
    check_eq(r.get("stdout"), "write: EROFS\n", "writing /usr")
    _, r, _ = rl.run(opts, "syscall", "ptrace")
    expect(r, "seccomp_violation", 159)
    check_eq(r.get("syscall"), "ptrace", "syscall")
    _, r, _ = rl.run(opts, "syscall", "unshare")
    expect(r, "seccomp_violation", 159)


@test("rootless: the deadline still ends a run")
@rootless_test
def t_rootless_timeout(rl):
    _, r, _ = rl.run(["--limits", "best-effort", "--timeout", "500ms"], "spin")
    expect(r, "timeout", 124)


@test("rootless: a run killed at the deadline reports the module's usage, not init's")
@rootless_test
def t_rootless_timeout_usage(rl):
    # no cgroup: what the killed module used is read before the kill. The
    # CPU limit is set well above the wall limit: with the two equal (the
    # default), a spinning module meets RLIMIT_CPU's SIGXCPU in the same
    # tick as the deadline and may already be exiting (no memory left to
    # read) when it is sampled; that is not the case this test is about.
    policy = os.path.join(rl.dir, "spin.policy")
    with open(policy, "w") as f:
        f.write("[policy]\nname = spin\n[limits]\nenforce = best-effort\n"
                "timeout = 3s\ncpu_time = 30s\nmemory = 512M\n")
    os.chmod(policy, 0o644)
    try:
        _, r, _ = rl.run(["--policy", policy], "hog", "100")
    finally:
        os.unlink(policy)
    expect(r, "timeout", 124)
    check_eq(r.get("signal"), "SIGKILL", "signal (SIGXCPU: RLIMIT_CPU ended it, not the deadline)")
    check(r["cpu_ms"] >= 400, f"cpu_ms {r['cpu_ms']} for ~3 s of touching and spinning")
    check(r["peak_memory_bytes"] >= 95 * 2**20,
          f"peak_memory_bytes {r['peak_memory_bytes']} for 100 MiB touched")


# What a debugger would open in init, which holds a copy of the caller's
# memory: each must be refused (EACCES) when init is non-dumpable.
INIT_PROC_FILES = [("read", "/proc/1/environ"), ("read", "/proc/1/maps"),
                   ("read", "/proc/1/auxv"), ("ls", "/proc/1/fd"),
                   ("ls", "/proc/1/root/"), ("ls", "/proc/1/cwd/")]


def secret_policy(directory, extra=""):
    """A policy whose description is a fresh secret: the caller parses it
    into its memory, the module is never given it."""
    secret = "airlock-caller-secret-" + secrets.token_hex(8)
    path = os.path.join(directory, "secret.policy")
    with open(path, "w") as f:
        f.write(f"[policy]\nname = secret\ndescription = {secret}\n{extra}")
    os.chmod(path, 0o644)
    return path, secret


def check_init_closed(run):
    """run(opts, *probe_args) → (status, result, stderr); a secret policy's
    description must stay in the caller: /proc/1/mem and the rest of init's
    /proc entries are closed to the module."""
    policy, secret = run.policy
    _, r, _ = run(["--policy", policy], "procmem", "1", secret.encode().hex())
    check_eq(r.get("stdout"), "procmem: EACCES\n",
             "opening init's memory (ok found: the caller's secret was read)")
    for cmd, path in INIT_PROC_FILES:
        _, r, _ = run(["--policy", policy], cmd, path)
        check_eq(r.get("stdout"), f"{cmd}: EACCES\n", path)
    # the parent is outside the pid namespace: nothing names it
    _, r, _ = run(["--policy", policy], "pids")
    check_eq(r.get("stdout"), "pids: ok 1 2\n", "processes seen")


@test("rootless: init's memory, environment and fds are closed to the module")
@rootless_test
def t_rootless_init_memory(rl):
    def run(opts, *args):
        return rl.run(opts, *args)
    run.policy = secret_policy(rl.dir, "[limits]\nenforce = best-effort\n")
    try:
        check_init_closed(run)
    finally:
        os.unlink(run.policy[0])


@test("rootless: the caller's own bind sources work, a symlink on the path is refused")
@rootless_test
def t_rootless_bind_symlink(rl):
    mine = os.path.join(rl.dir, "mine")
    try:
        for rel in ("data", "other"):
            os.makedirs(os.path.join(mine, rel), mode=0o755)
            with open(os.path.join(mine, rel, "file"), "w") as f:
                f.write(rel + "\n")
        for root, dirs, files in os.walk(mine):
            for name in [root] + [os.path.join(root, x) for x in files]:
                os.chown(name, ROOTLESS_UID, ROOTLESS_UID)
                os.chmod(name, 0o755 if name == root else 0o644)
        policy = os.path.join(rl.dir, "binds.policy")
        with open(policy, "w") as f:
            f.write(f"[limits]\nenforce = best-effort\n[filesystem]\n"
                    f"bind_ro = {mine}/data:/data/in\n")
        _, r, _ = rl.run(["--policy", policy], "cat", "/data/in/file")
        expect(r, "ok", 0)
        check_eq(r.get("stdout"), "data\n", "the bound file")
        shutil.rmtree(os.path.join(mine, "data"))
        os.symlink(os.path.join(mine, "other"), os.path.join(mine, "data"))
        _, r, _ = rl.run(["--policy", policy], "cat", "/data/in/file")
        expect(r, "setup_error", 125)
        error = r.get("error") or ""
        want = f"{mine}/data is a symbolic link"
        check(want in error and policy in error and "bind_ro" in error,
              f"error {error!r} does not name the policy, key and {want!r}")
    finally:
        shutil.rmtree(mine, ignore_errors=True)
        if os.path.exists(os.path.join(rl.dir, "binds.policy")):
            os.unlink(os.path.join(rl.dir, "binds.policy"))


@test("rootless: /proc's host facts are masked too")
@rootless_test
def t_rootless_proc_masked(rl):
    for name in ("cmdline", "sys/kernel/random/boot_id", "kallsyms", "key-users"):
        if os.path.exists(f"/proc/{name}"):
            _, r, _ = rl.run(["--limits", "best-effort"], "read", f"/proc/{name}")
            check(r.get("stdout") in ("read: ok 0\n", "read: EACCES\n"),
                  f"/proc/{name} shows the host: {excerpt(r.get('stdout'))}")


SUID_DUMPABLE = "/proc/sys/fs/suid_dumpable"


@test("root: init stays non-dumpable with fs.suid_dumpable = 1")
def t_init_nondumpable_suid_dumpable():
    # With 1 ("debug") a change of uid, and the exec of an unreadable
    # program, both leave a process dumpable: init must clear it itself.
    need_file(PROBE)
    with open(SUID_DUMPABLE) as f:
        saved = f.read().strip()
    d = tempfile.mkdtemp(prefix="airlock-dumpable-")
    try:
        with open(SUID_DUMPABLE, "w") as f:
            f.write("1")
        status, out, _ = run_airlock(["version"])
        check(b"launch: fork" in out,
              f"the init helper is used although it would be dumpable: {excerpt(out)}")
        def run(opts, *args):
            return probe(*args, opts=opts)
        run.policy = secret_policy(d)
        check_init_closed(run)
    finally:
        with open(SUID_DUMPABLE, "w") as f:
            f.write(saved)
        shutil.rmtree(d, ignore_errors=True)


# --- 23. a Python module's view --------------------------------------------

@test("python -c: no host /home or /root, HOME=/tmp")
def t_python_view():
    code = ("import json, os; print(json.dumps({'home': os.path.exists('/home'), "
            "'root': os.path.exists('/root'), 'HOME': os.environ.get('HOME'), "
            "'expanduser': os.path.expanduser('~')}, sort_keys=True))")
    seen = python_json(code)
    check_eq(seen, {"home": False, "root": False, "HOME": "/tmp", "expanduser": "/tmp"},
             "what python sees")


# --- 24. without --json ------------------------------------------------------

@test("passthrough: output goes straight to stdout")
def t_passthrough():
    status, out, err = run_airlock(["run", "--", PROBE, "echo", "hello", "world"])
    check_eq(status, 0, "exit status")
    check_eq(out, b"hello world\n", "stdout")


@test("passthrough: timeout exits 124 and says so")
def t_passthrough_timeout():
    status, out, err = run_airlock(["run", "--timeout", "300ms", "--", PROBE, "spin"])
    check_eq(status, 124, "exit status")
    check(b"timeout" in err, f"stderr {excerpt(err)} does not mention the timeout")


# --- a killed airlock's cgroup ------------------------------------------------

def start_sleeping_run(options, stderr=subprocess.DEVNULL):
    """An `airlock run` of a probe sleeping a minute, and its run cgroups
    once they exist (the probe prints nothing until it wakes up)."""
    proc = subprocess.Popen([AIRLOCK, "run"] + options + ["--timeout", "60s", "--",
                                                          PROBE, "sleep", "60000"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=stderr)
    STARTED.add(proc.pid)
    deadline = time.monotonic() + 10
    mine = []
    while not mine and time.monotonic() < deadline:
        mine = [p for p in run_cgroups() if run_cgroup_owner(p) == proc.pid]
        if not mine:
            exited_within(proc.pid, 0.05)
    return proc, mine


@test("cleanup: a SIGKILLed airlock's run cgroup is removed by the next airlock")
def t_killed_cli_cgroup_swept():
    # SIGKILL gives airlock no chance to clean up: its jail dies with it
    # (parent-death signal), but the run cgroup stays until the next
    # airlock (or airlockd) sweeps the cgroups of dead owners.
    proc, mine = start_sleeping_run([])
    try:
        check(mine, "no run cgroup appeared for the running airlock")
    finally:
        proc.kill()
        proc.wait()
    if systemd_scopes():
        # the killed airlock's scope empties when its jail dies, and
        # systemd removes it with everything inside
        deadline = time.monotonic() + 10
        while any(os.path.isdir(p) for p in mine) and time.monotonic() < deadline:
            time.sleep(0.05)
        check(not any(os.path.isdir(p) for p in mine),
              f"systemd did not remove the killed airlock's scope: {mine}")
        return
    check(all(os.path.isdir(p) for p in mine),
          "the killed airlock's cgroup vanished by itself (test assumption)")
    probe_ok("echo", "sweep")
    left = [p for p in mine if os.path.isdir(p)]
    check(not left, f"the next airlock did not remove {left}")


@test("cleanup: SIGINT/SIGTERM to airlock run cancel the jail, remove its cgroup, exit 128+N")
def t_interrupted_run():
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc, mine = start_sleeping_run(["--json"], stderr=subprocess.PIPE)
        try:
            check(mine, "no run cgroup appeared")
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        check_eq(proc.returncode, 128 + sig, f"{sig.name}: exit status (stderr {err[-300:]!r})")
        result = json.loads(out)
        check_eq(result["exit_status"], 128 + sig, f"{sig.name}: exit_status in the JSON")
        check_eq(result.get("error"), f"cancelled: interrupted by {sig.name}",
                 f"{sig.name}: error in the JSON")
        check(not any(os.path.isdir(p) for p in mine), f"{sig.name}: run cgroup left: {mine}")


def process_start(pid):
    """Field 22 of /proc/PID/stat: the start time in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


@test("cleanup: the sweep spares a live owner of any name and removes a reused pid's")
def t_sweep_owner_identity():
    # run cgroups of a live process whose program is not named airlock*
    # (a library user) stay; a live pid with another start time is a reused
    # pid: its cgroup is stale and goes
    # under systemd each airlock has a scope of its own, which no other
    # process shares: the shared base of a host without systemd is swept
    kw = {"wrapper": HIDE_SYSTEMD} if systemd_scopes() else {}
    bases = (["/sys/fs/cgroup/airlock"] if systemd_scopes()
             else airlock_cgroup_bases())
    base = next((b for b in bases if os.path.isdir(b)), None)
    if base is None:
        probe_ok("echo", "make the base", **kw)
        base = next((b for b in bases if os.path.isdir(b)), None)
    check(base, "no airlock cgroup base")
    other = subprocess.Popen(["sleep", "60"])
    try:
        start = process_start(other.pid)
        live = os.path.join(base, f"run-{other.pid}-{start}-1")
        reused = os.path.join(base, f"run-{other.pid}-{start + 1}-2")
        for path in (live, reused):
            os.mkdir(path)
        try:
            probe_ok("echo", "sweep", **kw)
            check(os.path.isdir(live), "the cgroup of a live non-airlock owner was removed")
            check(not os.path.isdir(reused), "the cgroup of a reused pid was left")
        finally:
            for path in (live, reused):
                if os.path.isdir(path):
                    os.rmdir(path)
    finally:
        other.kill()
        other.wait()


# --- 22. last: nothing left behind ------------------------------------------

@test("cleanup: no run cgroup left behind", root=False)
def t_no_leftovers():
    bases = airlock_cgroup_bases()
    existing = [b for b in bases if os.path.isdir(b)]
    note("cgroup bases: " + (", ".join(existing) or "none yet"))
    leaked = leaked_cgroups()
    check(not leaked, f"run cgroups left behind: {leaked}")
    others = [p for p in run_cgroups() if p not in leaked]
    if others:
        note(f"run cgroups of other live airlock processes (not ours): {others}")


# ================================================================== runner

def configure(build_dir):
    global AIRLOCK
    AIRLOCK = os.path.abspath(os.path.join(build_dir, "airlock"))
    return (AIRLOCK, PROBE)



# An allow-everything seccomp program: BPF_RET|BPF_K SECCOMP_RET_ALLOW.
ALLOW_ALL_BPF = bytes([0x06, 0, 0, 0, 0, 0, 0xff, 0x7f])


@test("filter cache: root-only, reused, a tampered or foreign entry is ignored")
def t_filter_cache():
    with tempfile.TemporaryDirectory(prefix="airlock-cache-") as top:
        os.chmod(top, 0o700)
        env = dict(os.environ, AIRLOCK_CACHE_DIR=top)
        cache = os.path.join(top, "seccomp")
        _, r, _ = probe("syscall", "ptrace", env=env)
        expect(r, "seccomp_violation", 159)
        entries = os.listdir(cache)
        check_eq(len(entries), 1, f"cache entries {entries}")
        path = os.path.join(cache, entries[0])
        st = os.stat(path)
        check_eq((st.st_uid, oct(st.st_mode & 0o777)), (0, "0o600"), "entry owner and mode")
        check_eq(oct(os.stat(cache).st_mode & 0o777), "0o700", "cache directory mode")
        check_eq(st.st_size % 8, 0, "a whole number of BPF instructions")
        # reused: the same program comes back from the file
        mtime = st.st_mtime_ns
        probe_ok("pids")
        check_eq(os.stat(path).st_mtime_ns, mtime, "entry rewritten instead of reused")
        # a group- or other-writable entry is not trusted: its allow-all
        # program must not reach the jail
        with open(path, "wb") as f:
            f.write(ALLOW_ALL_BPF)
        os.chmod(path, 0o666)
        _, r, _ = probe("syscall", "ptrace", env=env)
        expect(r, "seccomp_violation", 159)
        # nor one owned by another user
        os.chmod(path, 0o600)
        os.chown(path, NOBODY, NOBODY)
        _, r, _ = probe("syscall", "ptrace", env=env)
        expect(r, "seccomp_violation", 159)
        # nor a symlink to a root-owned allow-all program
        os.unlink(path)
        fake = os.path.join(top, "fake.bpf")
        with open(fake, "wb") as f:
            f.write(ALLOW_ALL_BPF)
        os.chmod(fake, 0o600)
        os.symlink(fake, path)
        _, r, _ = probe("syscall", "ptrace", env=env)
        expect(r, "seccomp_violation", 159)
        # nor anything in a directory another user could write to
        os.unlink(path)
        with open(path, "wb") as f:
            f.write(ALLOW_ALL_BPF)
        os.chmod(path, 0o600)
        os.chmod(cache, 0o777)
        _, r, _ = probe("syscall", "ptrace", env=env)
        expect(r, "seccomp_violation", 159)
        # the control: a trusted entry is what the jail gets (the cache is
        # as trusted as the binary, so root alone may write it)
        os.chmod(cache, 0o700)
        _, r, _ = probe("syscall", "ptrace", env=env)
        check(r.get("verdict") != "seccomp_violation",
              f"a trusted entry was not used: {r.get('verdict')}")


def main(argv):
    return harness.main(argv, configure)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
