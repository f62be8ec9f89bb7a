#!/usr/bin/env python3
"""Real programs under the shipped policies: false denials measured.

    python3 tests/compat/compat.py BUILD_DIR [--short] [--before BUILD_DIR]
                                             [MODULE...]

Runs CPython's own regression test modules (Debian's
libpython3.11-testsuite) one by one, bare and jailed under the `python`
policy with the limits raised out of the way (2G, 900 s, 512 pids: only the
isolation is measured), and the runtime programs of programs/ under their
policies. Prints a table: module, cases, passed bare, passed jailed, and
for each case that fails only in the jail its cause: the verdict and the
syscall when the jail ended the run, else the exception the case died of.

A jailed-only failure listed in denials.txt (a deliberate denial, with its
reason) is shown but accepted; any other one, or a program that does not
end `ok`, makes the exit status 1. --short runs SHORT_MODULES (under two
minutes on two cores; `make check` runs it through
tests/integration/test_compat.py), the default is MODULES (`make compat`).
--before BUILD_DIR adds a column: passed jailed under another build of
airlock (the before/after table of docs/compat.md).

Bare runs use the jail's identity (uid and gid 65534, HOME and the working
directory a fresh directory of theirs), so that the difference between
the columns is the jail and not root's privileges. Modules run one at a
time: the suite is CPU-heavy and the machine is shared.

Why tests/compat/ and not bench/: the result is a pass/fail gate on
behaviour that `make check` enforces, not a measurement of speed.

Python 3 standard library only.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PROGRAMS = os.path.join(HERE, "programs")
DENIALS = os.path.join(HERE, "denials.txt")
PYTHON = "/usr/bin/python3"
TESTSUITE = "/usr/lib/python3.11/test/test_asyncio"
NOBODY = 65534

# The pinned list: what the issue measured and what runtimes lean on
# (event loops, processes, signals, sockets on loopback, IPC, terminals,
# files). One module per line is one run.
MODULES = [
    "test_asyncio", "test_concurrent_futures", "test_multiprocessing_forkserver",
    "test_multiprocessing_spawn", "test_multiprocessing_main_handling",
    "test_logging", "test_httpservers", "test_socketserver", "test_selectors",
    "test_socket", "test_select", "test_poll", "test_epoll", "test_subprocess",
    "test_signal", "test_posix", "test_os", "test_pty", "test_resource",
    "test_threading", "test_thread", "test_threadedtempfile", "test_queue",
    "test_uuid", "test_platform", "test_sqlite3", "test_shutil", "test_tempfile",
    "test_fcntl", "test_mmap", "test_time", "test_wait4", "test_fork1",
    "test_pathlib", "test_glob", "test_tarfile", "test_zipfile", "test_json",
    "test_csv", "test_sched", "test_fileio", "test_stat", "test_getpass",
    "test_ioctl", "test_urllib2_localnet", "test_xmlrpc",
    "test_smtplib", "test_ftplib", "test_telnetlib", "test_asynchat",
    "test_asyncore", "test_sys", "test_faulthandler", "test_tracemalloc",
    "test_file", "test_io", "test_genericpath", "test_mailbox", "test_shelve",
    "test_dbm", "test_pwd",
]

# make check: a handful that exercise what the jail used to deny (asyncio's
# subprocess watcher and self-pipe, signals, posix calls, ptys, rlimits,
# uuid, SysV-free multiprocessing primitives) and finish quickly.
SHORT_MODULES = [
    "test_asyncio.test_subprocess", "test_asyncio.test_unix_events",
    "test_posix", "test_pty", "test_resource", "test_uuid", "test_fcntl",
    "test_platform", "test_wait4", "test_os", "test_selectors",
    "test_asyncio.test_sock_lowlevel",
]

# The runtime programs: (policy, program in programs/ or a C build).
PROGRAM_RUNS = [
    ("python", "python-runtime.py"),
    ("node", "node-runtime.js"),
    ("shell", "shell-pipeline.sh"),
    ("c", "c-compile.sh"),
    ("c", "c-threads.c dynamic"),
    ("c", "c-threads.c static"),
    ("c", "go-runtime.go static"),
    ("c", "go-runtime.go cgo"),
]

JAIL_LIMITS = ["--memory", "2G", "--timeout", "900s", "--pids", "512"]
RUN_TIMEOUT = 1000

CASE_RE = re.compile(r"^(test\w*) \(([\w.]+)\)", re.M)
OK_RE = re.compile(r"\.\.\. ok$", re.M)
BLOCK_RE = re.compile(r"^(?:FAIL|ERROR): (\S+) \(([\w.]+)\)([^\n]*)\n", re.M)
RAN_RE = re.compile(r"^Ran (\d+) tests?", re.M)
SKIP_RE = re.compile(r"skipped=(\d+)")
VERDICT_RE = re.compile(r"^airlock: (\w+)(?:: (.*))?$", re.M)


class Outcome:
    """One run of one module: cases seen, which failed, and why."""

    def __init__(self, text, status, verdict=None, detail=None):
        self.status, self.verdict, self.detail = status, verdict, detail
        self.failed = {}  # case id -> the last line of its traceback
        for m in BLOCK_RE.finditer(text):
            case = m.group(2)
            tail = text[m.end():].split("\n\n", 1)[0].strip().splitlines()
            self.failed.setdefault(case, tail[-1][:120] if tail else "")
        ran = [int(n) for n in RAN_RE.findall(text)]
        self.completed = bool(ran)
        self.cases = sum(ran) if ran else len(set(CASE_RE.findall(text)))
        skipped = sum(int(n) for n in SKIP_RE.findall(text))
        if self.completed:
            self.passed = self.cases - len(self.failed) - skipped
        else:  # ended early: only what reported ok counts
            self.passed = len(OK_RE.findall(text))

    def ended_by_jail(self):
        return self.verdict not in (None, "ok", "exit_nonzero")


def drop_to_nobody():
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def run_bare(module):
    work = tempfile.mkdtemp(prefix="airlock-compat-")
    os.chown(work, NOBODY, NOBODY)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "TMPDIR": work,
           "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        p = subprocess.run([PYTHON, "-m", "test", "--timeout", "300", "-v", module], cwd=work, env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT,
                           preexec_fn=drop_to_nobody)
        return Outcome(p.stdout.decode("utf-8", "replace"), p.returncode)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_jailed(airlock, module):
    """Output passes through (not --json): no capture limit on a verbose
    suite; airlock's own last line on stderr names a verdict that is not
    the module's exit."""
    p = subprocess.run([airlock, "run", "--policy", "python"] + JAIL_LIMITS +
                       ["--", PYTHON, "-m", "test", "--timeout", "300", "-v", module],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=RUN_TIMEOUT)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    verdicts = VERDICT_RE.findall(err)
    verdict, detail = verdicts[-1] if verdicts else (None, None)
    return Outcome(out + "\n" + err, p.returncode, verdict, detail)


def load_denials(path=DENIALS):
    """MODULE CASE-PREFIX lines, each after a comment giving its reason;
    a case id starting with the prefix is a deliberate denial."""
    denials = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                module, prefix = line.split()
                denials.append((module, prefix))
    return denials


def deliberate(denials, module, case):
    return any(module == m and case.startswith(p) for m, p in denials)


def compare(module, bare, jailed, denials):
    """The jailed-only failures: (case, cause, deliberate)."""
    rows = []
    if jailed.ended_by_jail():
        cause = f"run ended: {jailed.verdict}" + (f" ({jailed.detail})" if jailed.detail else "")
        rows.append(("(whole module)", cause, deliberate(denials, module, "(whole module)")))
    for case, why in sorted(jailed.failed.items()):
        if case not in bare.failed:
            rows.append((case, why, deliberate(denials, module, case)))
    return rows


def build_c(out_dir, how):
    src = os.path.join(PROGRAMS, "c-threads.c")
    exe = os.path.join(out_dir, f"c-threads-{how}")
    flags = ["-static"] if how == "static" else []
    subprocess.run(["gcc", "-O2", "-pthread", "-fopenmp"] + flags + ["-o", exe, src],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(out_dir, 0o755)
    return exe


def build_go(out_dir, how):
    """Go's own runtime: static (CGO_ENABLED=0, its own resolver and
    clone calls) or through libc (cgo)."""
    src = os.path.join(PROGRAMS, "go-runtime.go")
    exe = os.path.join(out_dir, f"go-runtime-{how}")
    env = dict(os.environ, GOCACHE=os.path.join(out_dir, "gocache"),
               GO111MODULE="off", CGO_ENABLED="1" if how == "cgo" else "0")
    subprocess.run(["go", "build", "-o", exe, src], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(out_dir, 0o755)
    return exe


BUILDERS = {"c-threads.c": build_c, "go-runtime.go": build_go}


def run_program(airlock, policy, program, out_dir):
    """→ (verdict text, ok?)"""
    name, _, how = program.partition(" ")
    path = BUILDERS[name](out_dir, how) if how else os.path.join(PROGRAMS, name)
    p = subprocess.run([airlock, "run", "--policy", policy, "--", path],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    out = p.stdout.decode("utf-8", "replace").splitlines()
    verdicts = VERDICT_RE.findall(p.stderr.decode("utf-8", "replace"))
    ok = p.returncode == 0 and out[-1:] == ["ok"]
    if ok:
        return "ok", True
    if verdicts:
        return ": ".join(x for x in verdicts[-1] if x), False
    return f"exit {p.returncode}: {' '.join(out[-1:])}", False


def print_table(rows, before):
    head = ["module", "cases", "passed bare", "passed jailed"]
    if before:
        head.insert(3, "jailed before")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")


def main(argv):
    args = argv[1:]
    if not args or args[0].startswith("-"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    airlock = os.path.join(os.path.abspath(args.pop(0)), "airlock")
    short = "--short" in args
    args = [a for a in args if a != "--short"]
    before = None
    if "--before" in args:
        i = args.index("--before")
        before = os.path.join(os.path.abspath(args[i + 1]), "airlock")
        del args[i:i + 2]
    if not os.path.isdir(TESTSUITE):
        print(f"compat: {TESTSUITE} is missing: install libpython3.11-testsuite "
              "(tools/install-deps.sh)", file=sys.stderr)
        return 2
    modules = args or (SHORT_MODULES if short else MODULES)
    denials = load_denials()
    bad = 0
    table, details = [], []
    for module in modules:
        bare = run_bare(module)
        jailed = run_jailed(airlock, module)
        row = [module, bare.cases, bare.passed, jailed.passed]
        if before:
            row.insert(3, run_jailed(before, module).passed)
        table.append(row)
        for case, cause, ok in compare(module, bare, jailed, denials):
            bad += not ok
            details.append(f"{module} {case}: {cause}" +
                           (" [deliberate: denials.txt]" if ok else ""))
        print(f"# {module}: {bare.cases} cases, bare {bare.passed}, jailed {jailed.passed}",
              file=sys.stderr, flush=True)
    print_table(table, before)
    print()
    print("jailed-only failures:" if details else "jailed-only failures: none")
    for d in details:
        print("  " + d)
    out_dir = tempfile.mkdtemp(prefix="airlock-compat-c-")
    try:
        print()
        print("| program | policy | result |")
        print("|---|---|---|")
        for policy, program in PROGRAM_RUNS:
            text, ok = run_program(airlock, policy, program, out_dir)
            bad += not ok
            print(f"| {program} | {policy} | {text} |")
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    print()
    print(f"compat: {bad} unexpected jailed-only failure(s)" if bad else "compat: ok")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
