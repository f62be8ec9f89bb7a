#!/usr/bin/env python3
"""Integration tests for a daemon many tenants share (issue 13): each test
performs an attack a hostile local user or client made in the review and
checks that airlockd now refuses it. Real local users and groups are
created for the tests (useradd/groupadd) and removed after each one; the
hostile clients connect as them (fork, setgid/setuid, connect).

    python3 tests/integration/test_tenants.py BUILD_DIR [WORD...]

Python 3 standard library only.
"""

import base64
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

import harness
from harness import Failure, check, check_eq, note, test

# The daemon fixture of test_daemon.py; importing it registers that
# suite's tests too, which this suite does not run.
import test_daemon
import test_metrics
from test_daemon import Daemon, as_user, expect_error, wait_for, WAIT

del harness.TESTS[:]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = os.path.join(ROOT, "policy", "policies")
LEARNING = os.path.join(ROOT, "tests", "policies", "learning")
ECHO = b"#!/bin/sh\necho \"out:$*\"\n"
CAT = b"#!/bin/sh\nexec cat\n"


# ------------------------------------------------------------ local users

class Users:
    """Local users (and one group they share) made for one test and
    removed after it, whatever happens: `with Users("a", "b") as u:` gives
    u.uid["a"], u.gid (the shared group), u.name["a"]."""

    def __init__(self, *short):
        tag = f"{os.getpid() % 100000}"
        self.group = f"alt{tag}"
        self.name = {s: f"alt{tag}{s}" for s in short}
        self.uid, self.gid = {}, None

    def __enter__(self):
        try:
            subprocess.run(["groupadd", self.group], check=True,
                           capture_output=True, timeout=WAIT)
            self.gid = int(subprocess.run(
                ["getent", "group", self.group], check=True,
                capture_output=True, timeout=WAIT).stdout.split(b":")[2])
            for s, n in self.name.items():
                subprocess.run(["useradd", "-M", "-N", "-g", self.group,
                                "-s", "/usr/sbin/nologin", n], check=True,
                               capture_output=True, timeout=WAIT)
                self.uid[s] = pwd.getpwnam(n).pw_uid
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for n in self.name.values():
            subprocess.run(["userdel", n], capture_output=True, timeout=WAIT)
        subprocess.run(["groupdel", self.group], capture_output=True,
                       timeout=WAIT)

    def daemon_args(self):
        """What lets these users talk to a daemon: the socket's group and
        the client group."""
        return ["--socket-group", self.group, "--allow-group", self.group]


def submit_req(name, content, **extra):
    req = {"op": "submit", "name": name,
           "content": base64.b64encode(content).decode()}
    req.update(extra)
    return req


# ============================================== 1. client-chosen policy file

PWN_POLICY = """[policy]
name = pwn
[identity]
uid = 1001
gid = 42
[filesystem]
bind_ro = /etc/shadow
"""


@test("policy names: a pwn.policy planted in airlockd's writable working directory is never loaded")
def t_policy_planted_in_cwd():
    with Users("m") as u:
        cwd = tempfile.mkdtemp(prefix="airlock-cwd-")
        try:
            os.chmod(cwd, 0o777)  # a writable directory airlockd is started from
            path = os.path.join(cwd, "pwn.policy")
            with open(path, "w") as f:
                f.write(PWN_POLICY)
            os.chown(path, u.uid["m"], u.gid)
            d = Daemon(cwd=cwd, env={"AIRLOCK_POLICY_PATH": SHIPPED},
                       args=u.daemon_args())
            check_eq(os.readlink(f"/proc/{d.proc.pid}/cwd"), "/",
                     "airlockd's working directory")
            for name in ("pwn.policy", "./pwn.policy", path, "../" + os.path.basename(cwd) + "/pwn.policy"):
                r = as_user(d.sock, u.uid["m"], u.gid,
                            [submit_req("shadow", b"#!/bin/sh\ncat /etc/shadow\n",
                                        policy=name)])[0]
                expect_error(r, "bad_policy")
                check("not a path" in r["error"]["message"],
                      f"policy {name!r}: {r['error']['message']}")
            # the plain name is looked up in the daemon's directories only
            r = as_user(d.sock, u.uid["m"], u.gid,
                        [submit_req("shadow", b"#!/bin/sh\ncat /etc/shadow\n",
                                    policy="pwn")])[0]
            check(r.get("ok") is False, f"policy pwn was found: {r}")
            check("unknown policy" in r["error"]["message"], r["error"]["message"])
            # a shipped policy still works for the same client
            r = as_user(d.sock, u.uid["m"], u.gid,
                        [submit_req("echo", ECHO, policy="strict")])[0]
            check(r.get("ok"), f"a shipped policy by name: {r}")
        finally:
            shutil.rmtree(cwd, ignore_errors=True)


@test("policy files: one not root-owned, group/other-writable, or under a user's directory is refused (StrictModes)")
def t_policy_strict_modes():
    with Users("m") as u:
        top = tempfile.mkdtemp(prefix="airlock-pdirs-")
        try:
            good = os.path.join(top, "good")      # root's, 0755
            userdir = os.path.join(top, "user")   # the user's directory
            os.mkdir(good, 0o755)
            os.mkdir(userdir, 0o755)
            os.chown(userdir, u.uid["m"], u.gid)
            files = {"owned": (good, u.uid["m"], 0o644),
                     "groupw": (good, 0, 0o664),
                     "otherw": (good, 0, 0o646),
                     "inuser": (userdir, 0, 0o644),
                     "fine": (good, 0, 0o644)}
            for name, (where, owner, mode) in files.items():
                p = os.path.join(where, name + ".policy")
                with open(p, "w") as f:
                    f.write(f"[policy]\nname = {name}\n")
                os.chown(p, owner, 0)
                os.chmod(p, mode)
            d = Daemon(env={"AIRLOCK_POLICY_PATH": good + ":" + userdir},
                       args=u.daemon_args())
            for name, why in (("owned", "owned by uid"), ("groupw", "writable by its group"),
                              ("otherw", "writable by everyone"), ("inuser", "owned by uid")):
                r = d.submit("m" + name, ECHO, policy=name)
                check(r.get("ok") is False, f"policy {name} was loaded: {r}")
                check("refused" in r["error"]["message"] and why in r["error"]["message"],
                      f"policy {name}: {r['error']['message']}")
            check(d.submit("mfine", ECHO, policy="fine").get("ok"),
                  "a root-owned 0644 policy in a root directory was refused")
        finally:
            shutil.rmtree(top, ignore_errors=True)


@test("policy path: airlockd does not look in the source tree next to its binary", root=True)
def t_policy_no_build_tree():
    # strict.policy ships in policy/policies beside build/: the CLI finds
    # it there, the daemon (AIRLOCK_POLICY_PATH unset) must not
    d = Daemon()
    d.stop()
    del d.env["AIRLOCK_POLICY_PATH"]
    d.start()
    r = d.submit("s", ECHO, policy="strict")
    if os.path.exists("/usr/local/share/airlock/policies/strict.policy") or \
       os.path.exists("/var/lib/airlock/policies/strict.policy"):
        note("strict.policy is installed on this host: only the message is checked")
        return
    check(r.get("ok") is False, f"the daemon found strict in the source tree: {r}")
    check(SHIPPED not in r["error"]["message"], r["error"]["message"])


@test("relative paths: airlockd refuses a relative --state-dir / --socket (it works from /)", root=False)
def t_relative_paths():
    tmp = tempfile.mkdtemp(prefix="airlock-rel-")
    try:
        for args in (["--state-dir", "state", "--socket", os.path.join(tmp, "s")],
                     ["--state-dir", os.path.join(tmp, "st"), "--socket", "s.sock"]):
            p = subprocess.run([test_daemon.AIRLOCKD] + args, cwd=tmp,
                               capture_output=True, timeout=WAIT)
            check_eq(p.returncode, 2, f"airlockd {args}")
            check(b"absolute path" in p.stderr, p.stderr[-300:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ============================================ 4. content_fd, a confused deputy

SECRET = b"#!/bin/sh\necho root-only secret 4f1c\n"


@test("content_fd: an O_PATH descriptor of a root-only FIFO is refused, never reopened as root")
def t_content_fd_opath_fifo():
    with Users("m") as u:
        top = tempfile.mkdtemp(prefix="airlock-fifo-")
        try:
            os.chmod(top, 0o711)  # the user may pass through, not list
            fifo = os.path.join(top, "secret.fifo")
            os.mkfifo(fifo, 0o600)  # root's alone
            d = Daemon(args=u.daemon_args())
            stop = threading.Event()

            def feed():  # root writes the secret to whoever opens it
                while True:
                    fd = os.open(fifo, os.O_WRONLY)  # until a reader comes
                    try:
                        if stop.is_set():
                            return
                        os.write(fd, SECRET)
                    except OSError:
                        pass
                    finally:
                        os.close(fd)
            t = threading.Thread(target=feed, daemon=True)
            t.start()
            try:
                def opener_path():
                    return os.open(fifo, os.O_PATH)
                r = as_user(d.sock, u.uid["m"], u.gid,
                            [{"op": "submit", "name": "stolen", "content_fd": True}],
                            fds={0: opener_path})[0]
            finally:
                stop.set()
                # a reader of our own lets the feeder's open return
                wake = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
                t.join(WAIT)
                os.close(wake)
            check(not t.is_alive(), "the FIFO's feeder did not stop")
            digest = hashlib.sha256(SECRET).hexdigest()
            check(digest not in json.dumps(r), f"the secret's sha256 came back: {r}")
            expect_error(r, "bad_request")
            check("O_PATH" in r["error"]["message"], r["error"]["message"])
            # an O_PATH descriptor of a file the user may read is refused too,
            # and a write-only one: only a description open for reading
            mine = os.path.join(d.tmp, "mine.sh")
            with open(mine, "wb") as f:
                f.write(ECHO)
            os.chmod(mine, 0o644)
            r = as_user(d.sock, u.uid["m"], u.gid,
                        [{"op": "submit", "name": "p", "content_fd": True},
                         {"op": "submit", "name": "w", "content_fd": True},
                         {"op": "submit", "name": "r", "content_fd": True}],
                        fds={0: lambda: os.open(mine, os.O_PATH),
                             1: lambda: os.open("/dev/null", os.O_WRONLY),
                             2: lambda: os.open(mine, os.O_RDONLY)})
            expect_error(r[0], "bad_request")
            expect_error(r[1], "bad_request")
            check("writing only" in r[1]["error"]["message"], r[1]["error"]["message"])
            check(r[2].get("ok"), f"a readable descriptor was refused: {r[2]}")
        finally:
            shutil.rmtree(top, ignore_errors=True)


@test("content_fd: a blocking pipe whose writer is open is refused at once (read with RWF_NOWAIT, not reopened)")
def t_content_fd_pipe_blocking():
    d = Daemon()
    with d.connect() as c:
        rfd, wfd = os.pipe()  # blocking, and the writer stays open
        os.write(wfd, ECHO)
        test_daemon.send_with_fds(c, {"op": "submit", "name": "open",
                                      "content_fd": True}, [rfd])
        r = c.recv()
        expect_error(r, "bad_request")
        check("write end" in r["error"]["message"], r["error"]["message"])
        os.close(rfd)
        os.close(wfd)
    check(d.request({"op": "status"}).get("ok"), "the daemon stopped serving")


# ===================================================== 5. the state directory

def start_refused(state, why):
    """airlockd on `state` must refuse to start, naming `why`."""
    tmp = tempfile.mkdtemp(prefix="airlock-sock-")
    try:
        p = subprocess.run([test_daemon.AIRLOCKD, "--state-dir", state,
                            "--socket", os.path.join(tmp, "s.sock")],
                           capture_output=True, timeout=WAIT,
                           env=dict(os.environ, METRICS_PORT="0"))
        check_eq(p.returncode, 1, f"airlockd on {state} ({why})")
        check(b"refused" in p.stderr and why.encode() in p.stderr,
              f"{why}: {p.stderr[-400:]!r}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@test("state directory: one pre-created by another user, or writable by group/other, is refused")
def t_state_dir_owner():
    with Users("m") as u:
        top = tempfile.mkdtemp(prefix="airlock-state-")
        try:
            # the docs' old example: a directory under /tmp, made by a user
            theirs = os.path.join(top, "theirs")
            os.mkdir(theirs, 0o755)
            os.chown(theirs, u.uid["m"], u.gid)
            start_refused(theirs, "owned by uid")
            check(not os.path.exists(os.path.join(theirs, "manifest.db")),
                  "airlockd wrote into a state directory it refused")
            wide = os.path.join(top, "wide")
            os.mkdir(wide)
            os.chmod(wide, 0o777)
            start_refused(wide, "writable by everyone")
            # root's directory, with a subdirectory or the database of theirs
            for sub in ("modules", "staging", "archive", "manifest.db"):
                d = os.path.join(top, "sub-" + sub)
                os.mkdir(d, 0o750)
                path = os.path.join(d, sub)
                if sub.endswith(".db"):
                    open(path, "wb").close()
                else:
                    os.mkdir(path, 0o750)
                os.chown(path, u.uid["m"], u.gid)
                start_refused(d, "owned by uid")
            g = os.path.join(top, "groupw")
            os.mkdir(g, 0o750)
            os.mkdir(os.path.join(g, "modules"), 0o770)
            os.chmod(os.path.join(g, "modules"), 0o770)
            start_refused(g, "writable by its group")
        finally:
            shutil.rmtree(top, ignore_errors=True)


@test("state directory: a module file swapped for a trojan is refused at exec (sha256 checked)")
def t_module_swapped():
    d = Daemon()
    r = d.submit("echo", ECHO)
    check(r.get("ok"), f"submit: {r}")
    path = os.path.join(d.state, "modules", r["module"]["sha256"])
    check(os.path.exists(path), f"no {path}")
    os.chmod(path, 0o755)
    with open(path, "wb") as f:
        f.write(b"#!/bin/sh\necho trojan ran\n")
    os.chmod(path, 0o555)
    r = d.request({"op": "exec", "name": "echo", "args": ["x"]})
    res = r.get("result", {})
    check("trojan" not in json.dumps(r), f"the trojan ran: {r}")
    check_eq(res.get("verdict"), "setup_error", f"verdict of the swapped module ({r})")
    check("no longer has the content" in res.get("error", ""), res.get("error"))


# ========================== 17. concurrent submissions of identical content

@test("submit: eight concurrent submissions of identical content all validate (none 'replaced')")
def t_concurrent_identical():
    # a learning validation keeps init waiting on the daemon (forked, not
    # vforked), so the daemon serves the next submission while the first
    # jail is still being built: the window the review hit
    d = Daemon(args=["--max-active", "8"],
               env={"AIRLOCK_POLICY_PATH": SHIPPED + ":" + LEARNING})
    body = b"#!/bin/sh\necho same\n"
    conns = [d.connect() for _ in range(8)]
    try:
        for i, c in enumerate(conns):
            c.send(submit_req(f"same{i}", body, policy="learned"))
        answers = [c.recv() for c in conns]
    finally:
        for c in conns:
            c.sock.close()
    bad = [a for a in answers if not a.get("ok") or a["module"]["state"] != "active"]
    check(not bad, f"{len(bad)} of 8 identical submissions failed: {bad[:2]}")


# ========================================================= 2. module owners

CRASHER = b"#!/bin/sh\nif [ \"$1\" = crash ]; then kill -SEGV $$; fi\necho fine:$1\n"


def names_in(rows, key="name"):
    return {r.get(key) for r in rows}


@test("owners: another tenant can neither submit a version of, run, archive, restore nor see a module")
def t_owner_isolation():
    with Users("a", "b") as u:
        d = Daemon(args=u.daemon_args())
        a = lambda *reqs: as_user(d.sock, u.uid["a"], u.gid, list(reqs))
        b = lambda *reqs: as_user(d.sock, u.uid["b"], u.gid, list(reqs))
        r = a(submit_req("secret", ECHO))[0]
        check(r.get("ok"), f"a's submit: {r}")
        check_eq(r["module"]["owner_uid"], u.uid["a"], "the module's owner")
        check(a({"op": "exec", "name": "secret", "args": ["a-input"]})[0].get("ok"), "a's exec")
        # b tries everything the review did
        r = b(submit_req("secret", b"#!/bin/sh\necho \"$@\" >&2; exit 7\n"))[0]
        expect_error(r, "unauthorized")
        check("another owner" in r["error"]["message"], r["error"]["message"])
        for op in ({"op": "exec", "name": "secret"}, {"op": "archive", "name": "secret"},
                   {"op": "restore", "name": "secret"}, {"op": "show", "name": "secret"}):
            r = b(op)[0]
            expect_error(r, "not_found")
            check("secret" in r["error"]["message"] and "another" not in r["error"]["message"],
                  f"{op['op']}: {r['error']['message']}")
        check_eq(d.request({"op": "show", "name": "secret"})["module"]["version"], 1,
                 "versions of a's module after b's attempts")
        # b's own module, for b's views to show something
        check(b(submit_req("mine", ECHO))[0].get("ok"), "b's own submit")
        lb, rb, eb, sb, qb = b({"op": "list"}, {"op": "runs"}, {"op": "events", "limit": 1000},
                               {"op": "status"}, {"op": "quota_show"})
        check_eq(names_in(lb["modules"]), {"mine"}, "what b's list shows")
        check_eq({r["module"] for r in rb["runs"]}, {"mine"}, "what b's runs shows")
        check("secret" not in json.dumps(eb), f"b's events name a's module: {eb}")
        check(any(e.get("module") == "mine" or e.get("module_name") == "mine"
                  for e in eb["events"]) or "mine" in json.dumps(eb), "b's events miss b's module")
        check_eq({q["uid"] for q in sb["quotas"]}, {u.uid["b"]}, "quota lines in b's status")
        check_eq({q["uid"] for q in qb["quotas"]}, {u.uid["b"]}, "quota lines in b's quota_show")
        la = a({"op": "list"})[0]
        check_eq(names_in(la["modules"]), {"secret"}, "what a's list shows")
        check_eq(names_in(d.request({"op": "list"})["modules"]), {"secret", "mine"},
                 "an admin sees every module")
        # the owner archives and restores its own module
        ra, rr = a({"op": "archive", "name": "secret"}, {"op": "restore", "name": "secret"})
        check(ra.get("ok") and rr.get("ok"), f"the owner's archive/restore: {ra} {rr}")


@test("owners: status's counts and recent_archives and show's versions tell a client nothing of another's module")
def t_owner_status_show():
    # both found by the protocol fuzzer (tests/fuzz/fuzz_protocol.py)
    with Users("a", "b") as u:
        d = Daemon(args=u.daemon_args())
        a = lambda *reqs: as_user(d.sock, u.uid["a"], u.gid, list(reqs))
        b = lambda *reqs: as_user(d.sock, u.uid["b"], u.gid, list(reqs))
        check(a(submit_req("secret", ECHO))[0].get("ok"), "a's submit")
        # version 2 supersedes 1 (an archive event), then a archives it
        check(a(submit_req("secret", CAT))[0].get("ok"), "a's second version")
        check(a({"op": "archive", "name": "secret"})[0].get("ok"), "a's archive")
        check(b(submit_req("mine", ECHO))[0].get("ok"), "b's submit")
        check(b({"op": "archive", "name": "mine"})[0].get("ok"), "b's archive")
        sb = b({"op": "status"})[0]
        check_eq({r["module"] for r in sb["recent_archives"]}, {"mine"},
                 "the modules of recent_archives in b's status")
        sa = d.request({"op": "status"})
        check_eq({r["module"] for r in sa["recent_archives"]}, {"mine", "secret"},
                 "the modules of recent_archives in root's status")
        # the counts too: b's one module and its one (validation) run;
        # root sees a's two versions and their runs as well
        for who, st, n in (("b", sb, 1), ("root", sa, 3)):
            check_eq((sum(st["modules"].values()), st["runs_recorded"],
                      sum(st["runs_by_verdict"].values())), (n, n, n),
                     f"modules, runs and verdict counts in {who}'s status")
        # show with a version, of a version a has and of one it has not:
        # the answer of a name nobody uses, whichever
        for version in (1, 2, 7):
            theirs, nobodys = b({"op": "show", "name": "secret", "version": version},
                                {"op": "show", "name": "nobodys", "version": version})
            expect_error(theirs, "not_found")
            expect_error(nobodys, "not_found")
            check_eq(theirs["error"]["message"].replace("secret", "NAME"),
                     nobodys["error"]["message"].replace("nobodys", "NAME"),
                     f"b's show of a's module, version {version}")
        mine, missing = a({"op": "show", "name": "secret", "version": 1},
                          {"op": "show", "name": "secret", "version": 7})
        check_eq(mine.get("module", {}).get("version"), 1, f"the owner's show of version 1: {mine}")
        expect_error(missing, "not_found")
        check("version 7" in missing["error"]["message"], missing["error"]["message"])


@test("owners: an admin's crashing run of a tenant's module does not count toward archive_on")
def t_owner_archive_on():
    with Users("a") as u:
        d = Daemon(args=u.daemon_args())
        check(as_user(d.sock, u.uid["a"], u.gid, [submit_req("crashy", CRASHER)])[0].get("ok"),
              "submit")
        r = d.request({"op": "exec", "name": "crashy", "args": ["crash"]})
        check_eq(r.get("result", {}).get("verdict"), "crashed", f"root's run ({r})")
        check_eq(d.request({"op": "show", "name": "crashy"})["module"]["state"], "active",
                 "state after a non-owner's crash")
        r = as_user(d.sock, u.uid["a"], u.gid,
                    [{"op": "exec", "name": "crashy", "args": ["crash"]}])[0]
        check_eq(r.get("result", {}).get("verdict"), "crashed", f"the owner's run ({r})")
        check_eq(d.request({"op": "show", "name": "crashy"})["module"]["state"], "archived",
                 "state after the owner's crash")


@test("owners: a module shared with a group is usable by its members, not by others")
def t_owner_group():
    with Users("a", "b") as u:
        outsider = f"{u.group}x"
        subprocess.run(["useradd", "-M", "-N", "-g", "nogroup", "-s", "/usr/sbin/nologin",
                        outsider], check=True, capture_output=True, timeout=WAIT)
        try:
            ouid = pwd.getpwnam(outsider).pw_uid
            ogid = pwd.getpwnam(outsider).pw_gid
            d = Daemon(args=u.daemon_args() + ["--allow-uid", str(ouid)])
            os.chmod(d.sock, 0o666)  # the kernel's identity, not the file mode, decides
            r = as_user(d.sock, u.uid["a"], u.gid, [submit_req("team", ECHO, group=u.group)])[0]
            check(r.get("ok"), f"submit shared with {u.group}: {r}")
            check_eq(r["module"]["owner_gid"], u.gid, "owner group")
            r = as_user(d.sock, u.uid["b"], u.gid,
                        [{"op": "exec", "name": "team", "args": ["b"]},
                         submit_req("team", ECHO + b"# v2\n")])
            check_eq(r[0].get("result", {}).get("stdout"), "out:b\n", f"a member's exec: {r[0]}")
            check(r[1].get("ok"), f"a member's new version: {r[1]}")
            check_eq(r[1]["module"]["owner_uid"], u.uid["a"], "owner kept by version 2")
            r = as_user(d.sock, ouid, ogid, [{"op": "exec", "name": "team"},
                                             submit_req("team", ECHO),
                                             submit_req("own", ECHO, group=u.group)])
            expect_error(r[0], "not_found")
            expect_error(r[1], "unauthorized")
            expect_error(r[2], "unauthorized")  # not a member: cannot share with it
        finally:
            subprocess.run(["userdel", outsider], capture_output=True, timeout=WAIT)


def subscribe_as(sock_path, uid, gid, stop_word):
    """A subscriber as uid/gid in a child; returns (pid, read end): the child
    writes "ready\n", then every event line up to the first containing
    stop_word, then exits."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            s = test_daemon.connect_as(sock_path, uid, gid)
            f = s.makefile("rb")
            s.sendall(b'{"op":"subscribe"}\n')
            f.readline()
            os.write(wfd, b"ready\n")
            while True:
                line = f.readline()
                if not line:
                    break
                os.write(wfd, line)
                if stop_word.encode() in line:
                    break
        except BaseException as e:
            os.write(wfd, f"child_error {e!r}\n".encode())
        os._exit(0)
    os.close(wfd)
    return pid, os.fdopen(rfd, "rb")


@test("owners: a subscriber is streamed only the events of its own modules")
def t_owner_subscribe():
    with Users("a", "b") as u:
        d = Daemon(args=u.daemon_args())
        pid, out = subscribe_as(d.sock, u.uid["b"], u.gid, "bmark")
        try:
            check_eq(out.readline(), b"ready\n", "the subscriber")
            as_user(d.sock, u.uid["a"], u.gid, [submit_req("asecret", ECHO),
                                                {"op": "exec", "name": "asecret"}])
            as_user(d.sock, u.uid["b"], u.gid, [submit_req("bmark", ECHO)])
            lines = out.read().decode()
        finally:
            out.close()
            os.waitpid(pid, 0)
        check("bmark" in lines, f"b's own event did not arrive: {lines[:400]!r}")
        check("asecret" not in lines, f"b was streamed a's events: {lines[:600]!r}")


# ============================================== 3. one client exhausting all

# 1 MiB of \x01 on each stream: 6 MiB each once escaped to JSON
FLOOD = (b"#!/bin/sh\nhead -c 1048576 /dev/zero | tr '\\0' '\\1'\n"
         b"head -c 1048576 /dev/zero | tr '\\0' '\\1' >&2\n")


def first_line(s):
    """The first line a connection receives (b"" if it is closed first)."""
    got = b""
    while b"\n" not in got:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    return got.split(b"\n", 1)[0]


def hold_connections(sock_path, uid, gid, n, lines=b""):
    """A child as uid/gid that opens n connections, then sends `lines` on
    each one airlockd accepted and never reads again; it writes how many
    were accepted to the pipe, then holds them until killed. (pid, count).
    Which were: a refused connection's first line is the "overloaded"
    written at accept, an accepted one's is the answer to a health
    request (no waiting for a refusal that may be slow to come)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            socks, accepted = [], 0
            s0 = test_daemon.connect_as(sock_path, uid, gid)
            socks.append(s0)
            for _ in range(n - 1):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(WAIT)
                s.connect(sock_path)
                socks.append(s)
            for s in socks:
                try:
                    s.sendall(b'{"op":"health"}\n')
                except OSError:
                    pass  # refused and closed: its line is there to read
                if json.loads(first_line(s) or b"{}").get("ok") is True:
                    accepted += 1
                    if lines:
                        s.sendall(lines)
            os.write(wfd, f"{accepted}\n".encode())
            while True:
                signal.pause()
        except BaseException as e:
            os.write(wfd, f"-1 {e!r}\n".encode())
        os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as f:
        line = f.readline().decode()
    check(not line.startswith("-1"), f"the holding client failed: {line}")
    return pid, int(line.split()[0])


def release(pid):
    os.kill(pid, 9)
    os.waitpid(pid, 0)


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise Failure("no VmHWM")


@test("bounds: pipelined execs never read stay within the uid's buffer budget; others are served")
def t_bounds_non_reader():
    with Users("a", "b") as u:
        # under ASan, freed buffers wait in a quarantine (256 MiB) before
        # reuse and would count as growth: keep it small for this measure
        asan = os.environ.get("ASAN_OPTIONS", "")
        d = Daemon(args=u.daemon_args() + ["--max-buffered-per-uid", "16M",
                                           "--max-buffered", "64M", "--max-active", "4"],
                   env={"ASAN_OPTIONS": (asan + ":" if asan else "") + "quarantine_size_mb=4"})
        check(d.submit("flood", FLOOD, policy="default")["ok"], "submit")
        # a's module too: a may run only what it owns
        check(as_user(d.sock, u.uid["a"], u.gid, [submit_req("aflood", FLOOD)])[0].get("ok"),
              "a's submit")
        before = peak_rss_kib(d.proc.pid)
        req = json.dumps({"op": "exec", "name": "aflood"}).encode() + b"\n"
        pid, accepted = hold_connections(d.sock, u.uid["a"], u.gid, 4, req * 30)
        try:
            check_eq(accepted, 4, "a's connections accepted")
            # every run a got admitted ends; then nothing more is coming
            wait_for(lambda: (lambda st: st["active_runs"] == 0 and st["queue_depth"] == 0)(
                d.request({"op": "status"})), "a's runs to end", timeout=120)
            r = as_user(d.sock, u.uid["b"], u.gid, [submit_req("bmod", ECHO),
                                                    {"op": "exec", "name": "bmod", "args": ["x"]}])
            check_eq(r[1].get("result", {}).get("stdout"), "out:x\n", f"b's exec: {r}")
            check(d.request({"op": "status"}).get("ok"), "root's status")
            peak = peak_rss_kib(d.proc.pid)
        finally:
            release(pid)
        note(f"airlockd peak RSS {before} KiB before, {peak} KiB after 120 unread execs")
        check(peak - before < 160 * 1024,
              f"airlockd grew by {(peak - before) // 1024} MiB for one uid's unread answers")
        check(any("budget spent; dropped" in l or "are unread" in l for l in d.log),
              "no connection was dropped or refused for unread answers")


@test("bounds: one uid's idle connections cannot lock out another uid or root")
def t_bounds_connections():
    with Users("a", "b") as u:
        d = Daemon(args=u.daemon_args() + ["--max-connections", "24",
                                           "--max-connections-per-uid", "8",
                                           "--admin-connections", "4"])
        pid, accepted = hold_connections(d.sock, u.uid["a"], u.gid, 30, b"\n")
        try:
            check_eq(accepted, 8, "connections a got of the 30 it opened")
            pid2, accepted2 = hold_connections(d.sock, u.uid["b"], u.gid, 30, b"\n")
            try:
                check_eq(accepted2, 8, "connections b got beside a's")
                check(d.request({"op": "status"}).get("ok"), "root refused")
                conns = [d.connect() for _ in range(4)]  # root's reserved slots
                for c in conns:
                    check(c.request({"op": "health"}).get("ok"), "an admin slot")
                for c in conns:
                    c.sock.close()
            finally:
                release(pid2)
        finally:
            release(pid)
        check(any("too many connections from this uid" in l for l in d.log),
              "the per-uid refusals are not logged")


@test("bounds: a uid has at most --queue-max-per-uid runs waiting; another uid still queues")
def t_bounds_queue_per_uid():
    with Users("a", "b") as u:
        d = Daemon(args=u.daemon_args() + ["--max-active", "1", "--queue-max-per-uid", "2"])
        sleeper = b"#!/bin/sh\nsleep 1\necho done\n"
        for who in ("a", "b"):
            check(as_user(d.sock, u.uid[who], u.gid, [submit_req(who + "s", sleeper)])[0].get("ok"),
                  f"{who}'s submit")
        # pipelined: all five arrive in one write, before the first ends;
        # then one answer is read per (empty) request
        lines = (json.dumps({"op": "exec", "name": "as"}) + "\n").encode() * 5
        answers = as_user(d.sock, u.uid["a"], u.gid, [lines] + [b""] * 4)
        codes = sorted(a.get("error", {}).get("code", "ok") for a in answers)
        check_eq(codes, ["ok", "ok", "ok", "overloaded", "overloaded"],
                 "a's five pipelined execs (1 running + 2 queued)")
        r = as_user(d.sock, u.uid["b"], u.gid, [{"op": "exec", "name": "bs"}])[0]
        check(r.get("ok"), f"b's exec beside a's full queue: {r}")


# ======================================================= 8. the listen backlog

@test("backlog: 600 non-blocking connects while airlockd is busy all succeed (no EAGAIN)")
def t_listen_backlog():
    with open("/proc/sys/net/core/somaxconn") as f:
        somaxconn = int(f.read())
    n = min(600, somaxconn - 8)
    check(n > 200, f"net.core.somaxconn is {somaxconn}: too small to tell 128 apart")
    d = Daemon()
    socks = []
    os.kill(d.proc.pid, signal.SIGSTOP)  # a loop busy elsewhere accepts nothing
    try:
        failed = 0
        for _ in range(n):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(d.sock)
            except BlockingIOError:
                failed += 1
            socks.append(s)
    finally:
        os.kill(d.proc.pid, signal.SIGCONT)
        for s in socks:
            s.close()
    check_eq(failed, 0, f"connects of {n} refused with EAGAIN")
    check(d.request({"op": "health"}).get("ok"), "airlockd after the burst")


# ============================================================ 7. slowloris

def http_get(port, path, source="127.0.0.1", timeout=5):
    """One GET from `source` (a loopback address of our choosing, so that
    the daemon sees another peer): the status code, or None."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0))
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return None
            data += chunk
        return int(data.split(b" ")[1])
    except OSError:
        return None
    finally:
        s.close()


@test("http: 32 slowloris connections neither lock others out nor outlive the header deadline")
def t_http_slowloris():
    port = test_metrics.free_port()
    d = Daemon(args=["--metrics-listen", f"127.0.0.1:{port}"])
    slow, stop = [], threading.Event()
    for _ in range(32):
        try:
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            c.sendall(b"G")
            slow.append(c)
        except OSError:
            pass

    def drip():  # one header byte per second on each: never idle
        while not stop.wait(1):
            for c in slow:
                try:
                    c.send(b"E")
                except OSError:
                    pass
    t = threading.Thread(target=drip, daemon=True)
    t.start()
    try:
        started = time.monotonic()
        # another peer is served at once: one address holds at most 8
        check_eq(http_get(port, "/healthz", source="127.0.0.2"), 200,
                 "/healthz from another address during the attack")
        # and the dripping connections are closed by the deadline, not kept
        # open by their bytes
        alive = slow[0]
        alive.settimeout(15)
        try:
            got = alive.recv(4096)
        except (ConnectionResetError, socket.timeout):
            got = b""
        lasted = time.monotonic() - started
        check(lasted < 10, f"a dripping connection lasted {lasted:.1f} s")
        check(b"200" not in got, f"the slow request was answered: {got[:100]!r}")
        note(f"a connection sending a byte a second was closed after {lasted:.1f} s")
        wait_for(lambda: http_get(port, "/healthz") == 200,
                 "/healthz from the attacker's own address once the deadline cut it")
    finally:
        stop.set()
        t.join(5)
        for c in slow:
            c.close()
    check(any("headers took over" in l for l in d.log), "the deadline is not logged")


# ========================================================= 6. storage quota

@test("storage: per-uid stored bytes and versions, a free-space floor; figures in status and /metrics")
def t_storage_quota():
    with Users("a", "b") as u:
        port = test_metrics.free_port()
        d = Daemon(args=u.daemon_args() + ["--store-max-per-uid", "64K",
                                           "--store-versions-per-uid", "3",
                                           "--metrics-listen", f"127.0.0.1:{port}"],
                   env={"PROM_API_KEY": test_metrics.KEY})
        a = lambda *reqs: as_user(d.sock, u.uid["a"], u.gid, list(reqs))
        big = b"#!/bin/sh\necho big\n#" + b"x" * 40000 + b"\n"
        r = a(submit_req("big1", big), submit_req("big2", big + b"#2\n"))
        check(r[0].get("ok"), f"the first 40 KB module: {r[0]}")
        expect_error(r[1], "storage_full")
        check("--store-max-per-uid" in r[1]["error"]["message"], r[1]["error"]["message"])
        # versions: three kept (superseded ones count), the fourth refused
        r = a(*[submit_req("small", ECHO + b"#%d\n" % i) for i in range(3)])
        codes = [x.get("error", {}).get("code", "ok") for x in r]
        check_eq(codes, ["ok", "ok", "storage_full"], "versions 2-4 of a's stored modules")
        check("--store-versions-per-uid" in r[2]["error"]["message"], r[2]["error"]["message"])
        # another uid is unaffected
        check(as_user(d.sock, u.uid["b"], u.gid, [submit_req("bmod", ECHO)])[0].get("ok"),
              "b's submit")
        st = a({"op": "status"})[0]["storage"]
        check_eq([(x["uid"], x["versions"]) for x in st["uids"]], [(u.uid["a"], 3)],
                 "a's storage line in its status (its own only)")
        check(st["uids"][0]["bytes"] > 40000 and st["max_bytes_per_uid"] == 65536,
              f"storage figures: {st}")
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        c.sendall(f"GET /metrics HTTP/1.1\r\nHost: x\r\nx-api-key: {test_metrics.KEY}\r\n"
                  "Connection: close\r\n\r\n".encode())
        page = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            page += chunk
        c.close()
        text = page.decode()
        check(f'airlock_stored_versions{{uid="{u.uid["a"]}"}} 3' in text,
              "airlock_stored_versions for a missing from /metrics")
        check("airlock_state_dir_free_bytes" in text, "no free-space gauge")
    # the free-space floor: above what the disk has, every submit is refused
    d2 = Daemon(args=["--store-free-min", "1000000T"])
    r = d2.submit("any", ECHO)
    expect_error(r, "storage_full")
    check("--store-free-min" in r["error"]["message"], r["error"]["message"])


# ================================================================== runner

def main(argv):
    return harness.main(argv, test_daemon.configure,
                        report=test_daemon.report_failure,
                        after_test=test_daemon.stop_daemons,
                        root_reason="airlockd builds jails only as root")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
