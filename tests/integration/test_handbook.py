#!/usr/bin/env python3
"""The operations handbook (docs/operations.md) as a test: its shell
blocks marked `<!-- test ... -->` run in order against a real airlockd on a
temporary state directory, with the handbook's variables (AIRLOCK_STATE_DIR,
AIRLOCK_SOCKET, BACKUP_DIR, TMPDIR, METRICS_PORT, PROM_API_KEY) pointing
there and the airlock and airlockd under test first on PATH.

A marker's words:
  exit=N        the block must exit with N (default 0)
  daemon=start  the block is the command that starts airlockd: the test
                runs it (in the background, stderr to airlockd.log in the
                working directory) whenever the daemon must be up
  daemon=down   the daemon is stopped (SIGTERM) before the block runs; the
                next block that needs it starts it again

Each block runs as `sh -eu -c BLOCK` in a scratch working directory. Every
```sh block, marked or not, must parse (`sh -n`) and name only airlock
commands and airlockd options that exist.

    python3 tests/integration/test_handbook.py BUILD_DIR [WORD...]

Python 3 standard library only.
"""

import os
import re
import secrets
import shutil
import socket
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import harness
from harness import Failure, check, check_eq, note, run_logged, test

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HANDBOOK = os.path.join(ROOT, "docs/operations.md")
BUILD = None
WAIT = 30          # seconds for the daemon to become ready or to stop
BLOCK_TIMEOUT = 120

BLOCK_RE = re.compile(
    r"^(?P<indent>[ \t]*)```sh\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
MARK_RE = re.compile(r"<!--\s*test\b(?P<opts>[^>]*?)-->\s*$")


class Block:
    def __init__(self, line, body, opts):
        self.line = line
        self.body = body
        self.opts = opts  # None: not run by the test

    @property
    def exit(self):
        return int(self.opts.get("exit", "0"))

    @property
    def daemon(self):
        return self.opts.get("daemon", "up")


def blocks():
    """Every ```sh block of the handbook, with the marker of the line before."""
    with open(HANDBOOK) as f:
        text = f.read()
    found = []
    for m in BLOCK_RE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = MARK_RE.search(before)
        opts = None
        if mark:
            opts = dict(w.split("=", 1) for w in mark.group("opts").split())
            unknown = set(opts) - {"exit", "daemon"}
            check(not unknown, f"line {line}: unknown marker words {unknown}")
            check(opts.get("daemon", "up") in ("up", "start", "down"),
                  f"line {line}: daemon={opts.get('daemon')}")
        body = textwrap.dedent(m.group("indent") + m.group("body"))
        found.append(Block(line, body, opts))
    return found


def commands():
    src = open(os.path.join(ROOT, "tools/airlock.c")).read()
    return set(re.findall(r'\{\s*"([a-z][a-z-]*)"\s*,\s*cmd_', src))


def daemon_options():
    # supervisor/settings.c: a row per setting, { "flag" or NULL, "VAR" or NULL, SET_...
    src = open(os.path.join(ROOT, "supervisor/settings.c")).read()
    return set(re.findall(r'\{\s*"([a-z][a-z-]*)"\s*,\s*(?:NULL|"[A-Z][A-Z0-9_]*")\s*,\s*SET_', src)) | {"help"}


def free_port():
    """A loopback TCP port nothing listens on now (the daemon binds it a
    moment later; another helper's test taking it in between would make
    start-up fail loudly, not pass wrongly)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ daemon

class Daemon:
    """airlockd as the handbook's daemon=start block starts it."""

    def __init__(self, work, env, start_block):
        self.work, self.env, self.block = work, env, start_block
        self.log = os.path.join(work, "airlockd.log")
        self.proc = None
        self.starts = 0

    def up(self):
        if self.proc is not None:
            return
        with open(self.log, "rb") as f:
            seen = f.read().count(b'"msg":"ready')
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(["sh", "-euc", "exec " + self.block.body],
                                         cwd=self.work, env=self.env,
                                         stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log)
        self.starts += 1
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            with open(self.log, "rb") as f:
                if f.read().count(b'"msg":"ready') > seen:
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise Failure(f"airlockd (line {self.block.line}) did not become ready:\n"
                      + self.tail())

    def down(self):
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(WAIT + 35)  # its --shutdown-grace is 30 s
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise Failure("airlockd did not stop on SIGTERM")
        check_eq(rc, 0, "airlockd's exit status after SIGTERM")

    def tail(self, n=15):
        with open(self.log, errors="replace") as f:
            return "\n".join(f.read().splitlines()[-n:])


# =================================================================== tests

@test("every sh block parses and names only existing commands and options", root=False)
def t_blocks_valid():
    cmds, opts = commands(), daemon_options()
    found = blocks()
    check(len(found) >= 20, f"only {len(found)} sh blocks found in the handbook")
    for b in found:
        p = subprocess.run(["sh", "-n", "-c", b.body], capture_output=True)
        check(p.returncode == 0,
              f"line {b.line}: sh -n: {p.stderr.decode().strip()}\n{b.body}")
        # command position: start of a line, or after | ; && || $( `
        for m in re.finditer(r"(?:^|[|;&(`]|\$\()\s*(?:[A-Z_]+=\S*\s+)*(airlockd?)\s+([^\n|;&)]*)",
                             b.body, re.M):
            prog, args = m.group(1), m.group(2).split()
            if prog == "airlock":
                check(args and args[0] in cmds,
                      f"line {b.line}: airlock {args[:1]}: no such command")
            else:
                bad = [a for a in args if a.startswith("--")
                       and a[2:].split("=")[0] not in opts]
                check(not bad, f"line {b.line}: airlockd has no option {bad}")
        # the unit's extra flags (/etc/default/airlock)
        for value in re.findall(r"AIRLOCKD_OPTS=\"([^\"]*)\"", b.body):
            bad = [a for a in value.split() if a.startswith("--")
                   and a[2:].split("=")[0] not in opts]
            check(not bad, f"line {b.line}: AIRLOCKD_OPTS: airlockd has no option {bad}")


@test("the handbook's marked commands run in order against a real airlockd")
def t_handbook_runs():
    found = blocks()
    marked = [b for b in found if b.opts is not None]
    starts = [b for b in marked if b.daemon == "start"]
    check_eq(len(starts), 1, "blocks marked daemon=start")
    work = tempfile.mkdtemp(prefix="airlock-handbook-")
    os.chmod(work, 0o755)
    bindir = os.path.join(work, "bin")
    os.mkdir(bindir)
    for prog in ("airlock", "airlockd"):
        os.symlink(os.path.join(BUILD, prog), os.path.join(bindir, prog))
    os.mkdir(os.path.join(work, "tmp"))
    os.mkdir(os.path.join(work, "run"))
    open(os.path.join(work, "airlockd.log"), "w").close()
    env = dict(os.environ,
               PATH=bindir + ":" + os.environ.get("PATH", "/usr/bin:/bin"),
               AIRLOCK_STATE_DIR=os.path.join(work, "state"),
               AIRLOCK_SOCKET=os.path.join(work, "run", "airlock.sock"),
               BACKUP_DIR=os.path.join(work, "backups"),
               TMPDIR=os.path.join(work, "tmp"),
               METRICS_PORT=str(free_port()),
               PROM_API_KEY=secrets.token_hex(16))
    env.pop("LOG_PRETTY", None)
    daemon = Daemon(work, env, starts[0])
    ran = 0
    try:
        for b in marked:
            if b.daemon == "start":
                daemon.up()
                continue
            if b.daemon == "down":
                daemon.down()
            else:
                daemon.up()
            status, out, err = run_logged(["sh", "-euc", b.body], timeout=BLOCK_TIMEOUT,
                                          cwd=work, env=env)
            if status != b.exit:
                raise Failure(f"the block at docs/operations.md:{b.line} exited "
                              f"{status}, expected {b.exit}:\n{b.body.rstrip()}\n"
                              f"airlockd log:\n{daemon.tail()}")
            # a jq filter naming a key the JSON does not have prints null
            check(not re.search(rb"\bnull\b", out),
                  f"the block at docs/operations.md:{b.line} printed null (a "
                  f"missing key?):\n{out.decode(errors='replace')[-800:]}")
            ran += 1
        daemon.down()
    finally:
        try:
            daemon.down()
        finally:
            shutil.rmtree(work, ignore_errors=True)
    note(f"{ran} blocks run, daemon started {daemon.starts} times; "
         f"{len(found) - len(marked)} blocks not run (systemd, cron, installation)")


def configure(build_dir):
    global BUILD
    BUILD = os.path.abspath(build_dir)
    return (os.path.join(BUILD, "airlock"), os.path.join(BUILD, "airlockd"))


def main(argv):
    return harness.main(argv, configure,
                        root_reason="airlockd builds jails only as root")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
