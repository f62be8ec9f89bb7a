"""The framework the integration suites (test_*.py in this directory) share:
the test registry, assertions, and the runner with its output contract.

    python3 tests/integration/test_X.py BUILD_DIR [WORD...]

Extra WORDs select the tests whose names contain any of them.

Output: one line per test, "ok - NAME" (then any notes as "  # NOTE"),
"not ok - NAME" followed by indented details, or "skip - NAME: reason";
then "N passed, N failed, N skipped". Exit status 1 if any test failed,
2 on a usage error. With CI=true in the environment a skip counts as a
failure (CI must not go green by running nothing), except a Skip whose
ci_exempt is true.

Not named test_*.py: tests/run.sh runs every test_*.py as a suite.
Python 3 standard library only.
"""

import json
import os
import shlex
import subprocess
import sys
import time
import traceback


class Failure(Exception):
    """A test's assertion did not hold."""


class Skip(Exception):
    """The test cannot run in this environment."""

    ci_exempt = False  # True: CI=true does not turn this skip into a failure


class OtherHierarchy(Skip):
    """A test that can only pass on one cgroup hierarchy, on a host with the
    other: its twin for this host's hierarchy runs instead, so CI=true does
    not count this skip (make check runs the v1 tests, make check-vm the v2
    ones)."""

    ci_exempt = True


def cgroup_v2_only():
    """Whether the host has the unified hierarchy alone at /sys/fs/cgroup
    (cgroup v2, as under systemd's default); a v1 or hybrid host has a
    tmpfs there with one mount per v1 controller, which airlock uses."""
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


TESTS = []  # (name, function, needs_root), in the order they run


def test(name, root=True):
    """Register a test. root=True: it needs to build a jail, which airlock
    only does as root."""
    def register(fn):
        TESTS.append((name, fn, root))
        return fn
    return register


class Log:
    """What the current test ran, for the failure report, and notes a
    passing test wants to show (e.g. which outcome a syscall got). The
    lists are emptied in place before each test, so aliases stay valid."""

    def __init__(self):
        self.runs = []
        self.notes = []


LOG = Log()


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def check_eq(actual, expected, what):
    if actual != expected:
        raise Failure(f"{what}: expected {expected!r}, got {actual!r}")


def note(msg):
    LOG.notes.append(msg)


def excerpt(data, limit=400):
    if data is None:
        return "None"
    if isinstance(data, bytes):
        data = data.decode("utf-8", "backslashreplace")
    if len(data) > limit:
        return repr(data[:limit]) + f"... ({len(data)} chars)"
    return repr(data)


def run_logged(cmd, timeout, started=None, **popen_kw):
    """Run `cmd` with its output captured and recorded in the test's log
    (shown when the test fails); returns (status, stdout bytes, stderr
    bytes). A run that outlives `timeout` is killed and fails the test, so
    nothing can hang a suite. `started`, a set, gets the process's pid."""
    entry = {"cmd": list(cmd), "status": None, "stdout": b"", "stderr": b""}
    LOG.runs.append(entry)
    popen_kw.setdefault("stdin", subprocess.DEVNULL)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **popen_kw)
    if started is not None:
        started.add(proc.pid)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        entry.update(status=proc.returncode, stdout=out, stderr=err)
        raise Failure(f"{os.path.basename(cmd[0])} did not finish within "
                      f"{timeout} s")
    entry.update(status=proc.returncode, stdout=out, stderr=err)
    return proc.returncode, out, err


def parse_result(status, out):
    """The one JSON object `airlock run --json` must print, checked against
    airlock's own exit status."""
    check(out.endswith(b"\n") and out.count(b"\n") == 1,
          "stdout is not exactly one line (one JSON object)")
    try:
        result = json.loads(out)
    except ValueError as e:
        raise Failure(f"stdout is not JSON: {e}")
    check(isinstance(result, dict), "the JSON result is not an object")
    check_eq(status, result.get("exit_status"),
             "airlock's exit status vs the JSON exit_status")
    return result


def run_cgroups(prefixes):
    """Run cgroup directories whose names start with one of `prefixes`
    (e.g. "run-PID-"), anywhere under the cgroup mounts' "airlock"
    directories: each v1 controller hierarchy under /sys/fs/cgroup/NAME and
    the v2 hierarchy at /sys/fs/cgroup alike, so the same assertion holds on
    both (and on a hybrid host)."""
    found = []
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        if os.path.basename(root) == "airlock":
            found += [os.path.join(root, d) for d in dirs if d.startswith(prefixes)]
            dirs[:] = []
        elif root.count("/") > 10:
            dirs[:] = []  # deeper than any slice, unit and airlock level
    return found


def within_one_quota_hour(seconds=120):
    """Start a quota test where it cannot cross an hour boundary.

    airlockd's hourly quota windows are aligned to the clock (UTC hours),
    so a test that counts runs up to rate_limited would see its counts
    reset if the hour turned mid-test. When fewer than SECONDS are left in
    this hour, wait for the next one to begin; the wait is the boundary
    itself, not a guess at how long the test takes to settle."""
    import time
    left = 3600 - time.time() % 3600
    if left < seconds:
        note(f"waiting {left:.0f} s for the next quota hour")
        time.sleep(left + 0.5)


def wait_for(cond, what, timeout=30):
    """cond() until it returns something true, which is returned; a
    Failure past the deadline (a condition with no event to wait on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.05)
    raise Failure(f"timed out waiting for {what}")


def report_failure(msg):
    """The indented details under "not ok": what failed, then the last
    commands the test ran (LOG.runs entries: cmd, status, stdout, stderr)
    with their status and output."""
    lines = msg.splitlines() + [f"# {n}" for n in LOG.notes]
    for entry in LOG.runs[-2:]:
        command = " ".join(shlex.quote(str(a)) for a in entry["cmd"])
        lines += [f"command: {command}".replace("\n", "\\n"),
                  f"exit status: {entry['status']}",
                  f"stdout: {excerpt(entry['stdout'])}",
                  f"stderr: {excerpt(entry['stderr'])}"]
    for line in lines:
        print("  " + line)


def main(argv, configure, report=report_failure, after_test=None,
         root_reason="airlock builds jails only as root"):
    """Run the registered tests and print the results.

    configure(build_dir): set the suite's binary paths from BUILD_DIR and
    return the paths every test needs (a missing one skips the test).
    report(detail): print the indented details under "not ok".
    after_test(outcome, detail) -> (outcome, detail): clean up after each
    test, before skips are judged; it may turn "ok" into "fail"."""
    if len(argv) < 2:
        print(f"usage: {argv[0]} BUILD_DIR [WORD...]", file=sys.stderr)
        return 2
    required = configure(argv[1])
    words = argv[2:]
    ci = os.environ.get("CI", "").lower() == "true"
    is_root = os.geteuid() == 0
    passed = failed = skipped = 0

    for name, fn, needs_root in TESTS:
        if words and not any(w in name for w in words):
            continue
        LOG.runs.clear()
        LOG.notes.clear()
        outcome, detail, ci_exempt = "ok", None, False
        try:
            if needs_root and not is_root:
                raise Skip(f"needs root ({root_reason})")
            for path in required:
                if not os.path.exists(path):
                    raise Skip(f"{path} is missing (run make)")
            fn()
        except Skip as e:
            outcome, detail, ci_exempt = "skip", str(e), e.ci_exempt
        except Failure as e:
            outcome, detail = "fail", str(e)
        except subprocess.TimeoutExpired as e:
            outcome, detail = "fail", f"timed out: {e}"
        except Exception:
            outcome, detail = "fail", "unexpected error:\n" + traceback.format_exc().rstrip()
        if after_test is not None:
            outcome, detail = after_test(outcome, detail)
        if outcome == "skip" and ci and not ci_exempt:
            outcome, detail = "fail", f"skipped, but CI=true forbids skips: {detail}"

        if outcome == "ok":
            passed += 1
            print(f"ok - {name}")
            for n in LOG.notes:
                print(f"  # {n}")
        elif outcome == "skip":
            skipped += 1
            print(f"skip - {name}: {detail}")
        else:
            failed += 1
            print(f"not ok - {name}")
            report(detail)
        sys.stdout.flush()

    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0
