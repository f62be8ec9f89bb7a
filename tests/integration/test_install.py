#!/usr/bin/env python3
"""Integration tests for `make install` and `make uninstall` (issue 6): the
installed tree, the systemd unit (checked by systemd-analyze verify), the
sysusers.d and tmpfiles.d entries (applied by systemd-sysusers and
systemd-tmpfiles to a scratch root), and airlockd serving under the unit's
hardening, which these tests apply by hand because systemd is not PID 1 on
the machines that run them (see t_hardening).

    python3 tests/integration/test_install.py BUILD_DIR [WORD...]

`make install` is run with BUILD=BUILD_DIR (and SAN=1 for build-asan), so
it installs the binaries already built there and builds nothing new.

Python 3 standard library only.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request

import harness
from harness import Skip, check, check_eq, run_logged, test

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = None     # set by configure()
WAIT = 60

UNIT = "usr/lib/systemd/system/airlockd.service"
POLICIES = sorted(f for f in os.listdir(os.path.join(ROOT, "policy/policies"))
                  if f.endswith(".policy"))

# What `make install PREFIX=/usr` must put in place, with its mode.
EXPECTED = {
    "usr/bin/airlock": 0o755,
    "usr/sbin/airlockd": 0o755,
    "usr/share/man/man1/airlock.1": 0o644,
    "usr/share/man/man5/airlock.policy.5": 0o644,
    "usr/share/man/man8/airlockd.8": 0o644,
    UNIT: 0o644,
    "usr/lib/tmpfiles.d/airlock.conf": 0o644,
    "usr/lib/sysusers.d/airlock.conf": 0o644,
    "usr/share/airlock/airlock.default": 0o644,
    "usr/share/doc/airlock/operations.md": 0o644,
    "usr/share/doc/airlock/metrics.md": 0o644,
    "usr/share/doc/airlock/alerts.yml": 0o644,
}
EXPECTED.update({f"usr/share/airlock/policies/{p}": 0o644 for p in POLICIES})
# the CLI linked with libpq, for a PostgreSQL DATABASE_URL
EXPECTED["usr/libexec/airlock/airlock-pg"] = 0o755
# the jail's init helper: built on x86-64 only; root's, executable by all,
# readable by nobody else (sandbox/host.c trusts nothing looser)
if os.uname().machine == "x86_64":
    EXPECTED["usr/libexec/airlock/airlock-init"] = 0o711


def make(target, destdir, prefix="/usr"):
    cmd = ["make", "-s", "-C", ROOT, target, f"DESTDIR={destdir}",
           f"PREFIX={prefix}", f"BUILD={BUILD}"]
    if os.path.basename(BUILD.rstrip("/")) == "build-asan":
        cmd.append("SAN=1")
    status, out, err = run_logged(cmd, timeout=300)
    check_eq(status, 0, f"make {target} exit status")


def files_under(top):
    found = {}
    for d, _, names in os.walk(top):
        for n in names:
            p = os.path.join(d, n)
            found[os.path.relpath(p, top)] = os.lstat(p).st_mode & 0o7777
    return found


class Tree:
    """A scratch DESTDIR, removed afterwards."""

    def __init__(self, parent=None):
        self.parent = parent

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="airlock-install-", dir=self.parent)
        return self.dir

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)


def need_tool(name):
    path = shutil.which(name)
    if not path:
        # tools/install-deps.sh installs systemd for these; CI=true turns
        # this skip into a failure
        raise Skip(f"{name} is not installed (tools/install-deps.sh adds it)")
    return path


def unit_values(path, key):
    """The values of KEY= in a unit file, in order."""
    vals = []
    with open(path) as f:
        for line in f:
            if line.startswith(key + "="):
                vals.append(line.rstrip("\n").split("=", 1)[1])
    return vals


# =================================================================== tests

@test("make install: every file in place with its mode; binaries as built")
def t_install_tree():
    with Tree() as d:
        make("install", d)
        found = files_under(d)
        missing = sorted(set(EXPECTED) - set(found))
        extra = sorted(set(found) - set(EXPECTED))
        check(not missing, f"not installed: {missing}")
        check(not extra, f"installed but not expected: {extra}")
        for path, mode in EXPECTED.items():
            check_eq(oct(found[path]), oct(mode), f"mode of {path}")
        built = [("airlock", "usr/bin"), ("airlockd", "usr/sbin"),
                 ("airlock-pg", "usr/libexec/airlock")]
        if "usr/libexec/airlock/airlock-init" in EXPECTED:
            built.append(("airlock-init", "usr/libexec/airlock"))
        for name, where in built:
            with open(os.path.join(BUILD, name), "rb") as a, \
                    open(os.path.join(d, where, name), "rb") as b:
                check(a.read() == b.read(), f"{where}/{name} differs from {BUILD}/{name}")
        with open(os.path.join(d, UNIT)) as f:
            unit = f.read()
        check("@" not in unit.replace("man:", ""), "a placeholder left in the unit")
        start = unit_values(os.path.join(d, UNIT), "ExecStart")
        check_eq(len(start), 1, "ExecStart lines")
        argv = start[0].split()
        check_eq(argv[0], "/usr/sbin/airlockd", "ExecStart program")
        for flag, value in (("--state-dir", "/var/lib/airlock"),
                            ("--socket", "/run/airlock/airlock.sock"),
                            ("--socket-group", "airlock")):
            check(flag in argv and argv[argv.index(flag) + 1] == value,
                  f"ExecStart lacks {flag} {value}: {start[0]}")
        check_eq(unit_values(os.path.join(d, UNIT), "Type"), ["notify"], "Type")
        # the installed airlockd accepts the unit's options
        # (group names resolve on this host, which has no airlock group)
        opts = ["root" if a == "airlock" else a for a in argv[1:]
                if not a.startswith("$")]
        status, out, err = run_logged(
            [os.path.join(d, "usr/sbin/airlockd")] + opts + ["--help"], timeout=WAIT)
        check_eq(status, 0, "installed airlockd with the unit's options and --help")
    with Tree() as d:
        make("install", d, prefix="/usr/local")
        start = unit_values(os.path.join(d, "usr/local/lib/systemd/system/airlockd.service"),
                            "ExecStart")
        check(start and start[0].startswith("/usr/local/sbin/airlockd "),
              f"PREFIX=/usr/local: ExecStart {start}")


@test("systemd-analyze verify accepts the installed unit (binary, man pages)")
def t_verify():
    need_tool("systemd-analyze")
    with Tree() as d:
        make("install", d)
        # verify checks that ExecStart's program and the Documentation= man
        # pages exist at their installed paths: show it the DESTDIR's, in a
        # private mount namespace, over the host's directories.
        binds = [("usr/sbin", "/usr/sbin"),
                 ("usr/share/man/man1", "/usr/share/man/man1"),
                 ("usr/share/man/man8", "/usr/share/man/man8")]
        script = "set -e\n" + "".join(
            f"mount --bind {os.path.join(d, src)} {dst}\n" for src, dst in binds)
        script += f"exec systemd-analyze verify {os.path.join(d, UNIT)}\n"
        status, out, err = run_logged(["unshare", "-m", "sh", "-c", script],
                                      timeout=WAIT)
        check_eq(status, 0, "systemd-analyze verify exit status")
        complaints = [l for l in (out + err).decode().splitlines()
                      if "airlockd" in l or "airlock" in l]
        check(not complaints, f"systemd-analyze complains: {complaints}")
    # and it does complain about a broken unit (the check can fail)
    with Tree() as d:
        bad = os.path.join(d, "airlockd.service")
        with open(os.path.join(ROOT, "tools/systemd/airlockd.service.in")) as f:
            text = f.read().replace("@SBINDIR@", "/nonexistent/sbin")
        with open(bad, "w") as f:
            f.write(text.replace("Type=notify", "Type=notifyy"))
        status, out, err = run_logged(["systemd-analyze", "verify", bad], timeout=WAIT)
        check(status != 0, "systemd-analyze verify passed a broken unit")


@test("sysusers.d makes the airlock group; tmpfiles.d makes /run/airlock 0750 root:airlock")
def t_sysusers_tmpfiles():
    need_tool("systemd-sysusers")
    need_tool("systemd-tmpfiles")
    with Tree() as d:
        make("install", d)
        # a scratch root with an /etc of its own for the tools to write to
        os.makedirs(os.path.join(d, "etc"))
        for name in ("passwd", "group"):
            open(os.path.join(d, "etc", name), "w").close()
        status, _, _ = run_logged(["systemd-sysusers", f"--root={d}",
                                   os.path.join(d, "usr/lib/sysusers.d/airlock.conf")],
                                  timeout=WAIT)
        check_eq(status, 0, "systemd-sysusers exit status")
        with open(os.path.join(d, "etc/group")) as f:
            groups = {l.split(":")[0]: int(l.split(":")[2]) for l in f if l.strip()}
        check("airlock" in groups, f"no airlock group in {groups}")
        check(groups["airlock"] < 1000, f"airlock is not a system group: {groups}")
        status, _, _ = run_logged(["systemd-tmpfiles", f"--root={d}", "--create",
                                   os.path.join(d, "usr/lib/tmpfiles.d/airlock.conf")],
                                  timeout=WAIT)
        check_eq(status, 0, "systemd-tmpfiles exit status")
        st = os.stat(os.path.join(d, "run/airlock"))
        check_eq(oct(st.st_mode & 0o7777), oct(0o750), "mode of /run/airlock")
        check_eq(st.st_uid, 0, "owner of /run/airlock")
        check_eq(st.st_gid, groups["airlock"], "group of /run/airlock")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mount_points():
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            p = line.split()[4]
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), p))
    return points


def hardening_script(unit, rw_paths, argv):
    """A shell script that applies, in a fresh mount namespace, what the
    unit's ProtectSystem=strict, ReadWritePaths=, ProtectHome=yes,
    PrivateTmp=yes, PrivateIPC=yes (the caller's unshare -i),
    NoNewPrivileges=yes and CapabilityBoundingSet= do, the
    way systemd's namespace setup does it (every mount but /dev, /proc and
    /sys remounted read-only, the writable paths bound over themselves
    first; /home, /root and /run/user hidden; /tmp and /var/tmp private),
    then execs airlockd."""
    check_eq(unit_values(unit, "ProtectSystem"), ["strict"], "ProtectSystem")
    check_eq(unit_values(unit, "ProtectHome"), ["yes"], "ProtectHome")
    check_eq(unit_values(unit, "PrivateTmp"), ["yes"], "PrivateTmp")
    check_eq(unit_values(unit, "NoNewPrivileges"), ["yes"], "NoNewPrivileges")
    check_eq(unit_values(unit, "PrivateIPC"), ["yes"], "PrivateIPC")
    bound = unit_values(unit, "CapabilityBoundingSet")
    check(len(bound) == 1 and bound[0].startswith("~"), f"CapabilityBoundingSet {bound}")
    drop = ",".join("-" + c.lower().removeprefix("cap_") for c in bound[0][1:].split())
    lines = ["set -e", "mount --make-rslave /"]
    lines += [f"mount --bind {p} {p}" for p in rw_paths]
    for p in mount_points():
        if p in rw_paths or any(p == a or p.startswith(a + "/")
                                for a in ("/dev", "/proc", "/sys")):
            continue
        lines.append(f"mount -o remount,bind,ro '{p}' 2>/dev/null || true")
    for p in ("/home", "/root", "/run/user"):
        lines.append(f"if [ -d {p} ]; then mount -t tmpfs -o ro,mode=000 none {p}; fi")
    lines += ["mount -t tmpfs -o mode=1777 none /tmp",
              "mount -t tmpfs -o mode=1777 none /var/tmp",
              "exec setpriv --no-new-privs --bounding-set " + drop + " -- "
              + " ".join(argv)]
    return "\n".join(lines) + "\n"


@test("airlockd under the unit's hardening: submit, exec, learned syscalls (BPF), "
      "auto-archive, restore, /healthz")
def t_hardening():
    # systemd is not PID 1 here (a container), so systemd-run cannot start
    # the unit; the script above applies the same restrictions by hand.
    need_tool("setpriv")
    need_tool("unshare")
    # outside /tmp and /var/tmp: PrivateTmp hides them from the daemon
    with Tree("/var/lib") as d:
        make("install", d)
        unit = os.path.join(d, UNIT)
        state = os.path.join(d, "state")
        os.mkdir(state, 0o750)  # StateDirectory= makes it under systemd
        run = tempfile.mkdtemp(prefix="airlock-hardening-", dir="/run")
        sock = os.path.join(run, "airlock.sock")
        argv = [os.path.join(d, "usr/sbin/airlockd"), "--state-dir", state,
                "--socket", sock, "--tick", "1s"]
        # ReadWritePaths=-/run/airlock: the runs' uid locks live there
        os.makedirs("/run/airlock", 0o755, exist_ok=True)
        script = hardening_script(unit, [state, run, "/run/airlock"], argv)
        port = free_port()
        # the policies inside the tree: the source tree may itself be under
        # /tmp (a CI checkout), which PrivateTmp hides from the daemon
        policies = os.path.join(d, "policies")
        os.mkdir(policies)
        shutil.copy(os.path.join(ROOT, "tests/policies/learning/learned.policy"), policies)
        policy_path = policies + ":" + os.path.join(d, "usr/share/airlock/policies")
        proc = subprocess.Popen(["unshare", "-m", "-i", "sh", "-c", script],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE,
                                env=dict(os.environ, METRICS_PORT=str(port),
                                         AIRLOCK_POLICY_PATH=policy_path))
        log, ready = [], threading.Event()

        def drain():
            for raw in proc.stderr:
                log.append(raw.decode("utf-8", "replace").rstrip("\n"))
                if '"msg":"ready' in log[-1]:
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        try:
            check(ready.wait(WAIT) and proc.poll() is None,
                  "airlockd did not become ready under the hardening:\n" +
                  "\n".join(log[-15:]))
            # unshare (no --fork) and sh exec: the pid started is airlockd's
            with open(f"/proc/{proc.pid}/status") as f:
                status_text = f.read()
            check("NoNewPrivs:\t1" in status_text, "airlockd runs without NoNewPrivs")
            bnd = int(re.search(r"CapBnd:\t([0-9a-f]+)", status_text).group(1), 16)
            check(not bnd & (1 << 16), "CAP_SYS_MODULE is still in the bounding set")
            # the restrictions really are in force around the daemon
            with open(f"/proc/{proc.pid}/mountinfo") as f:
                mounts = {l.split()[4]: l.split() for l in f}
            check("ro" in mounts["/"][5].split(","), "/ is writable for airlockd")
            check("rw" in mounts[state][5].split(","), "the state dir is read-only")
            check(" - tmpfs " in " ".join(mounts["/tmp"]), "/tmp is not private")
            check(os.readlink(f"/proc/{proc.pid}/ns/ipc") != os.readlink("/proc/self/ns/ipc"),
                  "airlockd shares the host's IPC namespace")
            client = os.path.join(d, "usr/bin/airlock")
            env = dict(os.environ, AIRLOCK_SOCKET=sock)
            mod = os.path.join(d, "crasher.sh")
            with open(mod, "w") as f:
                f.write("#!/bin/sh\nif [ \"$1\" = crash ]; then kill -SEGV $$; fi\n"
                        "echo fine\n")
            # seccomp = learned: the BPF learner loads under the restrictions
            probe = os.path.join(ROOT, "build", "probe")
            steps = [(["submit", probe, "--name", "memfd", "--policy", "learned",
                       "--arg", "syscall", "--arg", "memfd_create"], 0, "active"),
                     (["exec", "memfd", "syscall", "memfd_create"], 0, None),
                     (["submit", mod, "--name", "crasher"], 0, "active"),
                     (["exec", "crasher"], 0, "fine"),
                     (["exec", "crasher", "crash"], None, None),
                     (["exec", "crasher"], None, "archived"),
                     (["restore", "crasher"], 0, None),
                     (["exec", "crasher"], 0, "fine")]
            for args, want, text in steps:
                status, out, err = run_logged([client] + args, timeout=WAIT, env=env)
                if want is not None:
                    check_eq(status, want, f"airlock {' '.join(args)} exit status")
                else:
                    check(status != 0, f"airlock {' '.join(args)} succeeded")
                if text:
                    check(text in (out + err).decode(),
                          f"airlock {' '.join(args)}: no {text!r}")
            status, out, _ = run_logged([client, "runs", "crasher", "--json",
                                         "--state-dir", state], timeout=WAIT)
            verdicts = [r["verdict"] for r in json.loads(out)["runs"]]
            check("crashed" in verdicts, f"no crashed run in {verdicts}")
            # the HTTP endpoint answers from inside the restrictions
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz",
                                        timeout=WAIT) as r:
                check_eq(r.status, 200, "/healthz status")
        finally:
            if proc.poll() is None:
                proc.terminate()
            try:
                rc = proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                rc = None
            shutil.rmtree(run, ignore_errors=True)
        check_eq(rc, 0, "airlockd exit status after SIGTERM")


@test("make uninstall removes every installed file")
def t_uninstall():
    with Tree() as d:
        make("install", d)
        check(files_under(d), "make install installed nothing")
        make("uninstall", d)
        left = sorted(files_under(d))
        check(not left, f"left behind: {left}")
        check(not os.path.exists(os.path.join(d, "usr/share/airlock")),
              "usr/share/airlock is still there")


def configure(build_dir):
    global BUILD
    BUILD = os.path.abspath(build_dir)
    return (os.path.join(BUILD, "airlock"), os.path.join(BUILD, "airlockd"))


def main(argv):
    return harness.main(argv, configure,
                        root_reason="installing and starting airlockd need root")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
