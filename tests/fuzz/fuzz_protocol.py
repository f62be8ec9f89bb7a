#!/usr/bin/env python3
"""The protocol fuzzer: the sanitizer build of airlockd over its socket,
as several local users at once (issue 13).

    python3 tests/fuzz/fuzz_protocol.py BUILD_DIR [--seconds N] [--seed S]
    python3 tests/fuzz/fuzz_protocol.py BUILD_DIR --replay S --steps N

It starts BUILD_DIR/airlockd (build-asan: ASan, UBSan, LeakSanitizer) on a
temporary state directory and socket, creates three local users (a and b
share a group, c does not; all are clients) and connects as them, as root
(an admin) and as nobody (no role). Each identity first submits modules
of its own; then, for the time given, the fuzzer sends mutations of valid
requests of every op: byte flips, truncation, huge numbers, wrong types,
deep nesting, long strings, invalid UTF-8, lone surrogates, duplicated and
unknown members, pipelined bursts, lines written a byte at a time, half-
closed and abandoned connections, descriptors passed with SCM_RIGHTS of
every kind (regular file, finished and unfinished pipes, O_PATH,
directory, device, socket, write-only, two at once, on the wrong op or
byte). Every choice comes from one random generator seeded with S, in one
thread, so a seed and a step count replay the same requests (the summary's
"requests digest" is the same). Requests are generated, and shown in
reports, with stand-ins for what differs from run to run: @G@ and @S@ for
the users' two groups, 999000001-3 for the uids of a, b and c.

It fails (exit 1), printing the seed, the step and the offending request,
when:

  - an answer is not one JSON object with "ok" (or an event), or an error
    has no known code or no message;
  - a client's answer names a module it does not own (list, show, runs,
    events, subscribe, status, submit, exec: every "module" and module
    object), or carries another uid's quota, storage or event line;
  - a request naming another tenant's module is answered differently from
    the same request naming a module nobody has (the pair is sent
    back to back: not_found must not tell "exists" from "does not");
  - nobody gets anything but "unauthorized";
  - airlockd dies, stops answering status, or holds more descriptors or
    much more memory after the run (every connection closed, every run
    ended) than before it;
  - airlockd's stderr has a sanitizer report (at exit too: LeakSanitizer),
    or it does not exit 0 on SIGTERM.

Needs root (users, setuid, a jail per run). Python 3 standard library.
"""

import argparse
import base64
import hashlib
import json
import os
import pwd
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = os.path.join(ROOT, "policy", "policies")
WAIT = 30  # seconds a single setup step may take

ECHO = b"#!/bin/sh\necho \"out:$*\"\n"
CRASHER = b"#!/bin/sh\nif [ \"$1\" = crash ]; then kill -SEGV $$; fi\necho fine\n"
FAILING = b"#!/bin/sh\necho broken >&2\nexit 3\n"
CAT = b"#!/bin/sh\nexec cat\n"

ERROR_CODES = {"bad_request", "too_large", "unknown_op", "unauthorized",
               "rate_limited", "overloaded", "not_found", "archived",
               "rejected", "conflict", "bad_policy", "shutting_down",
               "internal", "cancelled", "storage_full", "interrupted",
               "not_finished"}
OPS = ["submit", "exec", "status", "health", "list", "show", "runs",
       "events", "subscribe", "quota_show", "quota_reset", "archive",
       "restore", "rollback", "languages", "cancel", "wait", "result"]
SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:|"
                       r"SUMMARY: (Address|Undefined|Leak)")
MAX_REQUEST = 1 << 20  # --max-request: over-long lines stay cheap
UID_STAND_IN = 999000001  # a, b, c's uids in generated requests
FD_SLACK = 2           # descriptors airlockd may hold more at the end
RSS_SLACK_MIB = 192    # and memory (ASan's allocator keeps what it freed)


class Violation(Exception):
    pass


# -------------------------------------------------------------- identities

class Identity:
    def __init__(self, name, uid, gid, groups, admin=False, client=True):
        self.name, self.uid, self.gid = name, uid, gid
        self.groups = list(groups)  # supplementary, set at connect
        self.admin, self.client = admin, client

    def gids(self):
        return set(self.groups) | {self.gid}

    def owns(self, owner_uid, owner_gid):
        return self.admin or self.uid == owner_uid or \
            (owner_gid is not None and owner_gid in self.gids())


class Users:
    """Three local users in a client group G; a and b also share S."""

    def __init__(self):
        tag = f"alz{os.getpid() % 100000}"
        self.g, self.s = tag + "g", tag + "s"
        self.names = {k: tag + k for k in "abc"}
        self.made = []

    def __enter__(self):
        try:
            for grp_name in (self.g, self.s):
                self._run(["groupadd", grp_name])
                self.made.append(("groupdel", grp_name))
            for k, n in self.names.items():
                extra = ["-G", self.s] if k in "ab" else []
                self._run(["useradd", "-M", "-N", "-g", self.g, *extra,
                           "-s", "/usr/sbin/nologin", n])
                self.made.insert(0, ("userdel", n))
        except BaseException:
            self.__exit__()
            raise
        return self

    @staticmethod
    def _run(cmd):
        subprocess.run(cmd, check=True, capture_output=True, timeout=WAIT)

    def gid(self, name):
        out = subprocess.run(["getent", "group", name], check=True,
                             capture_output=True, timeout=WAIT).stdout
        return int(out.split(b":")[2])

    def __exit__(self, *exc):
        for cmd, name in self.made:
            subprocess.run([cmd, name], capture_output=True, timeout=WAIT)
        self.made = []


def connector(sock_path, ident):
    """A child that has become `ident` and connects to the daemon each time
    it is asked, handing the connected socket back (SCM_RIGHTS): the peer
    credentials are taken at connect, so the parent can then drive every
    identity's connections from one thread. (pid, control socket)."""
    parent, child = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        try:
            # nothing of the parent's: the other connectors' control
            # sockets would never see their parent close them
            keep = child.fileno()
            os.closerange(3, keep)
            os.closerange(keep + 1, 1 << 16)
            os.setgroups(ident.groups)
            os.setgid(ident.gid)
            os.setuid(ident.uid)
            while child.recv(1):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(sock_path)
                    socket.send_fds(child, [b"k"], [s.fileno()])
                except OSError:
                    child.sendall(b"e")
                s.close()
        finally:
            os._exit(0)
    child.close()
    return pid, parent


# ------------------------------------------------------------------ daemon

class Daemon:
    def __init__(self, airlockd, tmp, users):
        self.tmp = tmp
        self.state = os.path.join(tmp, "state")
        self.sock = os.path.join(tmp, "airlock.sock")
        self.stderr_path = os.path.join(tmp, "airlockd.stderr")
        env = dict(os.environ, METRICS_PORT="0", AIRLOCK_POLICY_PATH=SHIPPED)
        asan = os.environ.get("ASAN_OPTIONS", "")
        # freed memory waits in ASan's quarantine before reuse: keep it
        # small so the RSS measure sees growth, not the quarantine
        env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + \
            "detect_leaks=1:quarantine_size_mb=16:exitcode=99"
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=99")
        cmd = [airlockd, "--state-dir", self.state, "--socket", self.sock,
               "--tick", "1s", "--socket-group", users.g, "--allow-group", users.g,
               "--max-active", "2", "--queue-max", "8",
               "--max-request", str(MAX_REQUEST),
               "--max-connections-per-uid", "12"]
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=self.stderr, env=env)
        deadline = time.monotonic() + WAIT
        while b'"msg":"ready' not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise Violation("airlockd did not become ready:\n" + self.tail())
            time.sleep(0.05)
        os.chmod(self.sock, 0o666)  # the kernel, not the mode, refuses nobody

    def log(self):
        with open(self.stderr_path, "rb") as f:
            return f.read()

    def tail(self, n=40):
        lines = self.log().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])

    def alive(self):
        return self.proc.poll() is None

    def fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise Violation("airlockd did not stop within 60 s of SIGTERM")
        self.stderr.close()
        return self.proc.returncode


# ------------------------------------------------------------- connections

class Conn:
    serial = 0

    def __init__(self, ident, sock):
        Conn.serial += 1
        self.serial = Conn.serial
        self.ident, self.sock = ident, sock
        self.buf = b""
        self.eof = sock is None
        # shut: the fuzzer half-closed or closed it (what it chooses by,
        # so that a replay chooses alike); write_closed: writes fail
        self.shut = False
        self.write_closed = sock is None
        self.subscribed = False  # events outlive a half-close
        self.sent = []  # (step, bytes) of the last requests, for reports
        if sock:
            sock.setblocking(False)

    def remember(self, step, data):
        self.sent.append((step, data))
        del self.sent[:-8]

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock = None
        self.eof = self.write_closed = self.shut = True


def excerpt(data, limit=300):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if len(data) > limit:
        return repr(data[:limit]) + f"... ({len(data)} bytes)"
    return repr(data)


# ------------------------------------------------------------------ fuzzer

class Fuzzer:
    def __init__(self, args, daemon, users, tmp):
        self.args, self.d, self.tmp = args, daemon, tmp
        self.rng = random.Random(args.seed)
        self.step = 0
        g, s = users.gid(users.g), users.gid(users.s)
        self.group_names = {"G": users.g, "S": users.s}
        uid = {k: pwd.getpwnam(n).pw_uid for k, n in users.names.items()}
        self.idents = [Identity("root", 0, 0, [], admin=True),
                       Identity("a", uid["a"], g, [s]),
                       Identity("b", uid["b"], g, [s]),
                       Identity("c", uid["c"], g, []),
                       Identity("nobody", 65534, 65534, [], client=False)]
        # the users' names and uids differ from run to run: requests are
        # generated with stand-ins, put in place as they are sent, so that
        # a seed makes the same requests (and digest) every time
        self.stand_ins = [(b"@G@", users.g.encode()), (b"@S@", users.s.encode())] + \
            [(str(UID_STAND_IN + k).encode(), str(uid[n]).encode())
             for k, n in enumerate("abc")]
        self.connectors = {i.name: connector(daemon.sock, i) for i in self.idents}
        self.conns = []
        self.answers = []   # (step, conn, answer) of clients, checked at the end
        self.by_id = {}     # request id -> (step, conn, bytes)
        self.probes = []    # (step, conn, foreign id, ghost id, name, ghost)
        self.replies = {}   # answer id -> answer
        self.codes = {}
        self.violations = []
        # what the fuzz loop sent: equal for a replay of the same steps
        self.digest, self.hashing = hashlib.sha256(), False
        self.fixtures = self._fixtures()
        self.module_file = self._file("module.sh", ECHO, 0o644)
        self.big_file = self._file("big.bin", b"", 0o644)
        os.truncate(self.big_file, MAX_REQUEST)  # over 3/4 of --max-request
        self.secret = self._file("secret", b"#!/bin/sh\necho secret\n", 0o600)
        os.mkdir(os.path.join(tmp, "dir"))

    def _file(self, name, data, mode):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        return path

    def _fixtures(self):
        """The modules each identity submits first: name -> (identity,
        content, group key)."""
        return {"root-echo": ("root", ECHO, None),
                "a-echo": ("a", ECHO, None), "a-crash": ("a", CRASHER, None),
                "a-shared": ("a", CAT, "S"),
                "b-echo": ("b", ECHO, None), "b-crash": ("b", CRASHER, None),
                "c-echo": ("c", ECHO, None), "c-crash": ("c", CRASHER, None)}

    def ident(self, name):
        return next(i for i in self.idents if i.name == name)

    def fixture_owned(self, ident, name):
        owner, _, group = self.fixtures[name]
        o = self.ident(owner)
        gid = {"S": self.ident("a").groups[0]}.get(group)
        return ident.owns(o.uid, gid)

    # ------------------------------------------------------------ sockets

    def connect(self, ident):
        if not self.d.alive():
            raise Violation("airlockd died")
        _, ctl = self.connectors[ident.name]
        ctl.sendall(b"c")
        ctl.settimeout(WAIT)
        msg, fds, _, _ = socket.recv_fds(ctl, 1, 1)
        sock = socket.socket(fileno=fds[0]) if fds else None
        c = Conn(ident, sock)
        self.conns.append(c)
        return c

    def send(self, c, data, fds=()):
        """Write `data` whole (pumping answers while the daemon pushes
        back); with fds, they go with its first byte."""
        c.remember(self.step, data)
        if self.hashing:
            self.digest.update(b"%d %d %d:" % (self.step, c.serial, len(fds)) + data)
        for stand_in, real in self.stand_ins:
            data = data.replace(stand_in, real)
        if c.write_closed or c.sock is None:
            return
        deadline = time.monotonic() + 5
        first = True
        while data:
            try:
                if fds and first:
                    n = c.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                                 b"".join(f.to_bytes(4, sys.byteorder)
                                                          for f in fds))])
                else:
                    n = c.sock.send(data)
                first = False
                data = data[n:]
            except BlockingIOError:
                if time.monotonic() > deadline:
                    c.write_closed = True  # a peer that stopped reading
                    return
                self.pump(0.01)
            except OSError:
                c.write_closed = True  # closed by the daemon: fine
                return

    def pump(self, timeout):
        live = [c for c in self.conns if not c.eof]
        if not live:
            if timeout:
                time.sleep(timeout)
            return
        poller = select.poll()
        by_fd = {}
        for c in live:
            poller.register(c.sock, select.POLLIN)
            by_fd[c.sock.fileno()] = c
        for fd, _ in poller.poll(timeout * 1000):
            c = by_fd[fd]
            s = c.sock
            try:
                chunk = s.recv(1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                c.eof = True
                continue
            c.buf += chunk
            while b"\n" in c.buf:
                line, c.buf = c.buf.split(b"\n", 1)
                self.answer(c, line)

    # ------------------------------------------------------------ answers

    def fail(self, what, c=None, request=None, answer=None):
        lines = [f"VIOLATION at step {self.step}: {what}"]
        if c is not None:
            lines.append(f"  connection {c.serial} as {c.ident.name} (uid {c.ident.uid})")
        if request is not None:
            lines.append(f"  request (step {request[0]}): {excerpt(request[1])}")
        elif c is not None:
            for step, data in c.sent[-3:]:
                lines.append(f"  sent at step {step}: {excerpt(data)}")
        if answer is not None:
            lines.append(f"  answer: {excerpt(answer, 600)}")
        self.violations.append("\n".join(lines))
        print(lines[0], file=sys.stderr)

    def answer(self, c, raw):
        try:
            a = json.loads(raw)
        except ValueError:
            return self.fail("an answer is not JSON", c, answer=raw)
        if not isinstance(a, dict):
            return self.fail("an answer is not an object", c, answer=raw)
        request = self.by_id.get(a.get("id")) if isinstance(a.get("id"), str) else None
        if a.get("subscribed") is True or "event" in a:
            c.subscribed = True
        if "event" in a or "catch_up_cut" in a:
            code = "event"
        elif isinstance(a.get("ok"), bool):
            code = "ok" if a["ok"] else a.get("error", {}).get("code")
            if not a["ok"] and (code not in ERROR_CODES or
                                not a["error"].get("message")):
                self.fail("an error without a known code or a message", c,
                          request, raw)
        else:
            return self.fail("an answer without \"ok\"", c, request, raw)
        self.codes[code] = self.codes.get(code, 0) + 1
        if isinstance(a.get("id"), str):
            self.replies[a["id"]] = a
        if not c.ident.client and code != "unauthorized":
            self.fail("a uid with no role got something but unauthorized", c,
                      request, raw)
        if c.ident.client and not c.ident.admin:
            self.answers.append((self.step, c, request, raw, a))

    # ---------------------------------------------------------- requests

    def names_for(self, ident):
        own = [n for n in self.fixtures if self.fixture_owned(ident, n)]
        foreign = [n for n in self.fixtures if not self.fixture_owned(ident, n)]
        fresh = [f"{ident.name}-n{k}" for k in range(6)]
        return own, foreign, fresh

    def pick_name(self, ident):
        own, foreign, fresh = self.names_for(ident)
        r = self.rng.random()
        if r < 0.5 and own:
            return self.rng.choice(own)
        if r < 0.7 and foreign:
            return self.rng.choice(foreign)
        if r < 0.85:
            return self.rng.choice(fresh)
        return f"ghost-{self.rng.randrange(10)}"

    def b64(self, data):
        return base64.b64encode(data).decode()

    def template(self, ident, op):
        rng = self.rng
        req = {"op": op, "id": f"s{self.step}"}
        if op == "submit":
            own, foreign, fresh = self.names_for(ident)
            req["name"] = rng.choice(fresh + own + foreign)
            req["content"] = self.b64(rng.choice([ECHO, CRASHER, FAILING, CAT,
                                                  rng.randbytes(rng.randrange(64))]))
            if rng.random() < 0.3:
                req["policy"] = rng.choice(["default", "strict", "nosuch", "pwn.policy",
                                            "../policy", "/etc/passwd"])
            if rng.random() < 0.3:
                req["validate_args"] = rng.choice([["x"], ["crash"], []])
            if rng.random() < 0.2:
                req["stdin"] = "in\n"
            if rng.random() < 0.2:
                req["group"] = rng.choice(["@G@", "@S@",
                                           "root", "0", "4294967294", "nosuchgroup"])
        elif op == "exec":
            req["name"] = self.pick_name(ident)
            if rng.random() < 0.6:
                req["args"] = rng.choice([["x"], ["crash"], [], ["a"] * 3])
            if rng.random() < 0.2:
                req["stdin"] = "stdin\n"
            if rng.random() < 0.2:
                req["wait"] = False
        elif op in ("wait", "result"):
            # any run id: another tenant's answers as a missing one
            req["run"] = rng.randrange(1, 40)
            if op == "wait" and rng.random() < 0.8:
                req["timeout"] = rng.choice(["0s", "50ms", "1s", "30", "1e99s"])
        elif op in ("show", "archive", "restore", "rollback"):
            req["name"] = self.pick_name(ident)
            if op in ("show", "restore") and rng.random() < 0.4:
                req["version"] = rng.randrange(1, 4)
            if op == "archive" and rng.random() < 0.4:
                req["reason"] = "fuzz"
        elif op in ("list", "runs"):
            if rng.random() < 0.6:
                req["name"] = self.pick_name(ident)
            if op == "runs" and rng.random() < 0.4:
                req["limit"] = rng.randrange(1, 100)
        elif op in ("events", "subscribe"):
            if rng.random() < 0.4:
                req["after"] = rng.randrange(0, 50)
            if rng.random() < 0.3:
                req["since"] = rng.choice(["1h", "90s", "2024-05-01T12:00:00Z", "7d"])
            if rng.random() < 0.4:
                req["limit"] = rng.randrange(1, 100)
        elif op in ("quota_show", "quota_reset"):
            if op == "quota_reset" or rng.random() < 0.5:
                req["uid"] = rng.choice([0, 65534] + [UID_STAND_IN + k for k in range(3)])
        elif op == "cancel":
            if rng.random() < 0.5:
                req["run"] = rng.randrange(1, 40)
            else:
                req["name"] = self.pick_name(ident)
        return req

    def wrong_value(self):
        rng = self.rng
        return rng.choice([None, True, False, 0, -1, 1.5, 2 ** 63, 2 ** 64,
                           -(2 ** 63) - 1, 10 ** 30, 1e308, "", "x", [], ["x"],
                           {}, {"a": 1}, [1, 2], "\ud800", "\u0000",
                           "é" * 50])

    def mutate_obj(self, req):
        """One structural change of the request object."""
        rng = self.rng
        keys = list(req)
        kind = rng.randrange(9)
        if kind == 0 and keys:                       # a wrong type
            req[rng.choice(keys)] = self.wrong_value()
        elif kind == 1:                              # a huge or odd number
            req[rng.choice(["run", "version", "limit", "uid", "after"])] = rng.choice(
                [2 ** 63 - 1, 2 ** 63, -1, 4294967295, 4294967294, 100001, 0,
                 10 ** 400, 1e-300, -0.0])
        elif kind == 2:                              # a long string
            key = rng.choice(keys + ["name", "id", "reason", "since", "group", "policy"])
            req[key] = "n" * rng.choice([32, 65, 129, 1024, 4097, 70000,
                                          MAX_REQUEST + 100])
        elif kind == 3:                              # deep nesting
            req[rng.choice(keys + ["args"])] = "@@DEEP@@"
        elif kind == 4:                              # an unknown member
            req[rng.choice(["zz", "Op", "op ", "content_fd", "\u00e9", ""])] = 1
        elif kind == 5 and keys:                     # a member missing
            del req[rng.choice(keys)]
        elif kind == 6:                              # another op
            req["op"] = rng.choice(OPS + ["", "SUBMIT", "bogus", "exec\u0000"])
        elif kind == 7:                              # many arguments
            req[rng.choice(["args", "validate_args"])] = ["a"] * rng.choice(
                [255, 256, 257, 2000])
        else:                                        # surrogates, NUL, escapes
            key = rng.choice(keys)
            req[key] = rng.choice(["\ud800", "\udc00x", "a\u0000b",
                                   "\U0001F600", "\\\"\n\t"]) + str(req.get(key))
        return req

    def serialize(self, req):
        text = json.dumps(req, ensure_ascii=self.rng.random() < 0.7)
        data = text.encode("utf-8", "surrogatepass")
        if b'"@@DEEP@@"' in data:
            depth = self.rng.choice([7, 8, 9, 64, 5000])
            opener, closer = self.rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
            data = data.replace(b'"@@DEEP@@"', opener * depth + b"1" + closer * depth)
        return data

    def mutate_bytes(self, data):
        """One change of the text."""
        rng = self.rng
        if not data:
            return data
        i = rng.randrange(len(data))
        kind = rng.randrange(9)
        if kind == 0:                                # bit flips
            b = bytearray(data)
            for _ in range(rng.randrange(1, 4)):
                j = rng.randrange(len(b))
                b[j] ^= 1 << rng.randrange(8)
            return bytes(b)
        if kind == 1:                                # truncated
            return data[:i]
        if kind == 2:                                # a byte deleted
            return data[:i] + data[i + 1:]
        if kind == 3:                                # invalid UTF-8 in a string
            q = data.find(b'"', i)
            q = q if q >= 0 else i
            bad = rng.choice([b"\xff", b"\xc0\x80", b"\xed\xa0\x80",
                              b"\xf4\x90\x80\x80", b"\xe2\x82", b"\x80"])
            return data[:q + 1] + bad + data[q + 1:]
        if kind == 4:                                # a member twice
            dup = rng.choice([b'"name":"a-echo",', b'"op":"status",',
                              b'"id":"dup",', b'"content_fd":true,',
                              b'"args":["x"],'])
            return data.replace(b"{", b"{" + dup, 1)
        if kind == 5:                                # a slice repeated
            j = rng.randrange(i, len(data))
            return data[:j] + data[i:j] + data[j:]
        if kind == 6:                                # control bytes
            return data[:i] + rng.choice([b"\x00", b"\r", b"\x1b", b"\t",
                                          b"\n"]) + data[i:]
        if kind == 7:                                # a random byte
            return data[:i] + bytes([rng.randrange(256)]) + data[i:]
        return data + rng.choice([b" ", b",", b"}", b"{}", b" null"])

    def request_line(self, ident):
        rng = self.rng
        op = rng.choices(OPS, weights=[6, 8, 6, 3, 6, 6, 5, 5, 3, 4, 2, 4, 4, 4, 2, 2,
                                       3, 3])[0]
        req = self.template(ident, op)
        mutated = rng.random() < 0.75
        if mutated:
            for _ in range(rng.randrange(1, 3)):
                if rng.random() < 0.5:
                    req = self.mutate_obj(req)
        data = self.serialize(req)
        if mutated:
            for _ in range(rng.randrange(0, 3)):
                data = self.mutate_bytes(data)
        end = rng.choices([b"\n", b"\r\n", b"\n\n", b""], weights=[85, 6, 6, 3])[0]
        if isinstance(req.get("id"), str):
            self.by_id.setdefault(req["id"], (self.step, data))
        return data + end

    # ------------------------------------------------ descriptors to pass

    def fd_of_kind(self, kind, keep):
        """A descriptor of `kind` to pass; anything that must stay open
        until it is sent goes into `keep`."""
        if kind == "file":
            return os.open(self.module_file, os.O_RDONLY)
        if kind == "big":
            return os.open(self.big_file, os.O_RDONLY)
        if kind == "opath":
            return os.open(self.secret, os.O_PATH)
        if kind == "wronly":
            return os.open(self.secret, os.O_WRONLY)
        if kind == "dir":
            return os.open(os.path.join(self.tmp, "dir"), os.O_RDONLY | os.O_DIRECTORY)
        if kind == "null":
            return os.open("/dev/null", os.O_RDONLY)
        if kind == "socket":
            a, b = socket.socketpair()
            keep.append(b.detach())
            return a.detach()
        if kind == "memfd":
            fd = os.memfd_create("module")
            os.write(fd, ECHO)
            return fd
        r, w = os.pipe()
        os.write(w, ECHO)
        if kind == "pipe-open":
            keep.append(w)  # a writer still there: "not finished"
        else:
            os.close(w)
        return r

    FD_KINDS = ["file", "file", "big", "opath", "wronly", "dir", "null",
                "socket", "memfd", "pipe", "pipe-open"]

    def fd_request(self, c):
        rng = self.rng
        keep, fds = [], []
        try:
            kind = rng.choice(self.FD_KINDS)
            fds.append(self.fd_of_kind(kind, keep))
            if rng.random() < 0.15:
                fds.append(self.fd_of_kind(rng.choice(self.FD_KINDS), keep))
            op = "submit" if rng.random() < 0.85 else rng.choice(["exec", "status"])
            own, _, fresh = self.names_for(c.ident)
            req = {"op": op, "id": f"s{self.step}", "name": rng.choice(fresh + own),
                   "content_fd": rng.random() < 0.9}
            if rng.random() < 0.1:
                req["content"] = self.b64(ECHO)
            data = self.serialize(req) + b"\n"
            self.by_id.setdefault(req["id"], (self.step, data))
            if rng.random() < 0.1:  # the descriptor not on the first byte
                cut = rng.randrange(1, len(data))
                self.send(c, data[:cut])
                self.send(c, data[cut:], fds)
            else:
                self.send(c, data, fds)
        finally:
            for fd in fds + keep:
                os.close(fd)

    # -------------------------------------------------------- the probes

    def probe(self, c):
        """The same request naming another's module and a name nobody
        has, back to back; their answers must not differ but by name."""
        rng = self.rng
        _, foreign, _ = self.names_for(c.ident)
        if not foreign:
            return
        name = rng.choice(foreign)
        ghost = f"ghost-{rng.randrange(10)}"
        op = rng.choice(["exec", "show", "archive", "restore", "rollback",
                         "list", "runs"])
        req = {"op": op, "name": name}
        if op in ("show", "restore") and rng.random() < 0.5:
            req["version"] = rng.randrange(1, 3)
        if op == "exec" and rng.random() < 0.5:
            req["args"] = ["crash"]
        ids = (f"p{self.step}f", f"p{self.step}g")
        lines = b""
        for rid, n in zip(ids, (name, ghost)):
            line = self.serialize(dict(req, id=rid, name=n)) + b"\n"
            self.by_id[rid] = (self.step, line)
            lines += line
        self.send(c, lines)
        self.probes.append((self.step, c, ids, name, ghost))

    # -------------------------------------------------------------- steps

    def one_step(self):
        rng = self.rng
        action = rng.choices(["open", "request", "burst", "slow", "fd",
                              "probe", "half", "close"],
                             weights=[6, 50, 8, 4, 8, 8, 3, 3])[0]
        open_conns = [c for c in self.conns if not c.shut]
        if action == "open" or not open_conns:
            shut = [c for c in self.conns if c.shut]
            if len(self.conns) >= 48 and shut:  # the oldest half-closed goes
                shut[0].close()
                self.conns.remove(shut[0])
            ident = rng.choice(self.idents)
            mine = [c for c in self.conns if c.ident is ident and not c.shut]
            if len(mine) < rng.choice([4, 4, 4, 16]):
                self.connect(ident)
            return
        c = rng.choice(open_conns)
        if action == "request":
            self.send(c, self.request_line(c.ident))
        elif action == "burst":
            self.send(c, b"".join(self.request_line(c.ident)
                                  for _ in range(rng.randrange(2, 24))))
        elif action == "slow":  # a line in pieces of a few bytes
            data = self.request_line(c.ident)
            piece = rng.randrange(1, 8) if len(data) < 4096 else 4096
            for k in range(0, len(data), piece):
                self.send(c, data[k:k + piece])
        elif action == "fd":
            self.fd_request(c)
        elif action == "probe" and c.ident.client and not c.ident.admin:
            self.probe(c)
        elif action == "half":
            try:
                c.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            c.write_closed = c.shut = True
        elif action == "close":
            c.close()
            self.conns.remove(c)

    # -------------------------------------------------------------- setup

    def request(self, c, req):
        """A request and its answer (the setup and the final checks)."""
        rid = f"x{Conn.serial}.{len(self.replies)}.{time.monotonic_ns()}"
        data = self.serialize(dict(req, id=rid)) + b"\n"
        self.by_id[rid] = (self.step, data)
        self.send(c, data)
        deadline = time.monotonic() + WAIT * 2
        while rid not in self.replies:
            if time.monotonic() > deadline or not self.d.alive():
                raise Violation(f"no answer to {excerpt(data)}\n{self.d.tail()}")
            self.pump(0.05)
        return self.replies[rid]

    def setup(self):
        s_gid = self.ident("a").groups[0]
        for name, (owner, content, group) in self.fixtures.items():
            c = self.connect(self.ident(owner))
            req = {"op": "submit", "name": name, "content": self.b64(content)}
            if group:
                req["group"] = self.group_names[group]
            a = self.request(c, req)
            if not a.get("ok"):
                raise Violation(f"setup: {owner}'s submit of {name}: {a}")
            want_gid = s_gid if group else None
            if a["module"]["owner_gid"] != want_gid:
                raise Violation(f"setup: {name} has owner_gid {a['module']['owner_gid']}")
            c.close()
        self.conns = []

    def settle(self, what):
        """Wait until airlockd has nothing running and one connection
        (ours); then its descriptors and memory."""
        c = self.connect(self.ident("root"))
        deadline = time.monotonic() + 120
        while True:
            st = self.request(c, {"op": "status"})
            if not st.get("ok"):
                raise Violation(f"status after {what}: {st}")
            if st["active_runs"] == 0 and st["queue_depth"] == 0 and st["connections"] == 1:
                break
            if time.monotonic() > deadline:
                raise Violation(f"airlockd did not settle after {what}: {st}")
            time.sleep(0.1)
        fds, rss = self.d.fds(), self.d.rss_kib()
        c.close()
        self.conns.remove(c)
        return fds, rss

    # ---------------------------------------------------------------- run

    def run(self):
        self.setup()
        fds0, rss0 = self.settle("the setup")
        started = time.monotonic()
        deadline = started + self.args.seconds
        peak = rss0
        self.hashing = True
        while (self.step < self.args.steps if self.args.steps
               else time.monotonic() < deadline):
            self.step += 1
            self.one_step()
            self.pump(0.002 if self.step % 8 == 0 else 0)
            if self.step % 200 == 0:
                if not self.d.alive():
                    raise Violation("airlockd died")
                peak = max(peak, self.d.rss_kib())
        steps, elapsed = self.step, time.monotonic() - started
        self.hashing = False
        self.drain()
        fds1, rss1 = self.settle("the run")
        self.check_tenants()
        self.check_probes()
        if fds1 > fds0 + FD_SLACK:
            self.fail(f"airlockd holds {fds1} descriptors after the run, {fds0} before")
        if rss1 - rss0 > RSS_SLACK_MIB * 1024:
            self.fail(f"airlockd's RSS grew from {rss0 // 1024} MiB to {rss1 // 1024} MiB")
        return {"steps": steps, "seconds": round(elapsed, 1), "fds": (fds0, fds1),
                "rss_mib": (rss0 // 1024, peak // 1024, rss1 // 1024),
                "digest": self.digest.hexdigest()[:16],
                "answers": dict(sorted(self.codes.items(), key=lambda kv: -kv[1]))}

    def drain(self):
        """Half-close every connection and read until airlockd closes it:
        it does once every answer is out (runs still queued end first);
        a subscriber's stream outlives a half-close, so it is closed once
        every other one is."""
        for c in self.conns:
            if c.sock and not c.write_closed:
                try:
                    c.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                c.write_closed = True
        deadline = time.monotonic() + 120
        while any(not c.eof and not c.subscribed for c in self.conns):
            if time.monotonic() > deadline:
                left = [c for c in self.conns if not c.eof and not c.subscribed]
                self.fail(f"{len(left)} half-closed connections still open after 120 s",
                          left[0])
                break
            if not self.d.alive():
                raise Violation("airlockd died")
            self.pump(0.1)
        for c in self.conns:
            c.close()
        self.conns = []

    # ------------------------------------------------------------ checks

    def owners(self):
        """Every module name's owner, as root's list has it."""
        c = self.connect(self.ident("root"))
        a = self.request(c, {"op": "list"})
        c.close()
        self.conns.remove(c)
        if not a.get("ok"):
            raise Violation(f"root's list after the run: {a}")
        return {m["name"]: (m["owner_uid"], m.get("owner_gid")) for m in a["modules"]}

    def check_tenants(self):
        owners = self.owners()
        for step, c, request, raw, a in self.answers:
            ident = c.ident
            for what in leaks(a, ident, owners):
                self.step = step
                self.fail(what, c, request, raw)

    def check_probes(self):
        owners = self.owners()
        for step, c, (fid, gid), name, ghost in self.probes:
            if ghost in owners:  # a mutation created it after all
                continue
            fa, ga = self.replies.get(fid), self.replies.get(gid)
            if fa is None or ga is None:
                continue  # the connection was dropped (bounds): no answer
            if normalize(fa, name) != normalize(ga, ghost):
                self.step = step
                self.fail(f"another's module {name} is answered unlike a name nobody has "
                          f"({ghost}): {excerpt(json.dumps(ga))}", c, self.by_id[fid],
                          json.dumps(fa))


def normalize(a, name):
    """An answer with its id and the name it was about taken out."""
    a = dict(a)
    a.pop("id", None)
    return json.dumps(a, sort_keys=True).replace(name, "<NAME>")


def leaks(a, ident, owners):
    """What a client's answer shows that is not the client's."""
    found = []

    def module_name(name):
        if isinstance(name, str) and name in owners and not ident.owns(*owners[name]):
            found.append(f"uid {ident.uid} was shown module {name!r} "
                         f"(owner uid {owners[name][0]}, gid {owners[name][1]})")

    def uid_line(obj, where):
        if isinstance(obj, dict) and "uid" in obj and obj["uid"] != ident.uid:
            found.append(f"uid {ident.uid} was shown uid {obj['uid']}'s {where}")

    def walk(v, key=None):
        if isinstance(v, dict):
            if key == "module" or "sha256" in v and "name" in v:
                module_name(v.get("name"))
            if "module" in v and isinstance(v["module"], str):
                module_name(v["module"])
            for k, sub in v.items():
                walk(sub, k)
        elif isinstance(v, list):
            for sub in v:
                if key in ("quotas", "uids"):
                    uid_line(sub, key)
                walk(sub, key)

    walk(a)
    if isinstance(a.get("quota"), dict):
        uid_line(a["quota"], "quota")
    for ev in ([a["event"]] if isinstance(a.get("event"), dict) else []) + \
            (a["events"] if isinstance(a.get("events"), list) else []):
        if isinstance(ev, dict) and "module" not in ev:
            uid_line(ev, f"{ev.get('kind')} event")
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", help="the build directory (build-asan)")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--replay", type=int, metavar="SEED",
                    help="the seed of a failed run (with --steps N: its steps)")
    ap.add_argument("--steps", type=int, default=0,
                    help="run exactly N steps instead of --seconds")
    args = ap.parse_args()
    if args.replay is not None:
        args.seed = args.replay
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "little")
    if os.geteuid() != 0:
        print("fuzz_protocol.py: needs root (local users, setuid clients, jails)",
              file=sys.stderr)
        return 2
    airlockd = os.path.join(args.build, "airlockd")
    if not os.access(airlockd, os.X_OK):
        print(f"fuzz_protocol.py: {airlockd} is missing (make SAN=1)", file=sys.stderr)
        return 2
    print(f"fuzz_protocol.py: seed {args.seed}, "
          + (f"{args.steps} steps" if args.steps else f"{args.seconds:g}s"), flush=True)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    # a stopped run still removes its users and daemon
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    tmp = tempfile.mkdtemp(prefix="airlock-fuzz-")
    os.chmod(tmp, 0o755)
    d = f = None
    stats, status, fatal = None, None, None
    with Users() as users:
        try:
            d = Daemon(airlockd, tmp, users)
            f = Fuzzer(args, d, users, tmp)
            stats = f.run()
        except Violation as e:
            fatal = str(e)
        finally:
            if f:
                for pid, ctl in f.connectors.values():
                    ctl.close()
                    os.waitpid(pid, 0)
                for c in f.conns:
                    c.close()
            if d:
                try:
                    status = d.stop()
                except Violation as e:
                    fatal = fatal or str(e)
    problems = list(f.violations) if f else []
    if fatal:
        where = f" at step {f.step}" if f else ""
        problems.append(f"VIOLATION{where}: {fatal}")
        if f:
            recent = sorted(((s, c, data) for c in f.conns for s, data in c.sent),
                            key=lambda t: t[0])[-8:]
            problems += [f"  sent at step {s} as {c.ident.name}: {excerpt(data)}"
                         for s, c, data in recent]
    log = d.log().decode("utf-8", "replace") if d else ""
    if SANITIZER.search(log):
        at = SANITIZER.search(log).start()
        problems.append("VIOLATION: a sanitizer report in airlockd's stderr:\n" +
                        log[max(0, log.rfind("\n", 0, at - 2000)):at + 4000])
    elif d and status != 0:
        problems.append(f"VIOLATION: airlockd exited {status} on SIGTERM:\n{d.tail()}")
    if stats:
        print(f"fuzz_protocol.py: {stats['steps']} steps in {stats['seconds']}s; "
              f"descriptors {stats['fds'][0]} -> {stats['fds'][1]}; RSS MiB "
              f"before/peak/after {'/'.join(map(str, stats['rss_mib']))}; "
              f"requests digest {stats['digest']}; "
              f"answers {stats['answers']}")
    shutil.rmtree(tmp, ignore_errors=True)
    if problems:
        report = os.path.join(ROOT, "build-fuzz", f"protocol-{args.seed}.txt")
        os.makedirs(os.path.dirname(report), exist_ok=True)
        with open(report, "w") as out:
            out.write("\n".join(problems) + "\n")
        for p in problems[:20]:
            print(p)
        if len(problems) > 20:
            print(f"... and {len(problems) - 20} more, all in {report}")
        steps = stats["steps"] if stats else (f.step if f else 0)
        print(f"fuzz_protocol.py: FAILED; replay with: python3 tests/fuzz/fuzz_protocol.py "
              f"{args.build} --replay {args.seed} --steps {steps}")
        return 1
    print(f"fuzz_protocol.py: seed {args.seed}: no violation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
