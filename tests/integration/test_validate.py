#!/usr/bin/env python3
"""Integration tests for `airlock validate` (docs/ci.md): suites with
passing and failing cases of every expectation kind, exit codes, -j1 equal
to -jN, the JUnit report checked structurally and read back by a real
consumer (Debian's python3-junitparser, in a subprocess), hostile module
output, and bad suite files.

    python3 tests/integration/test_validate.py BUILD_DIR [WORD...]

Same contract as test_jail.py: one line per test, "ok - NAME", "not ok -
NAME" with indented details, or "skip - NAME: reason"; then "N passed, N
failed, N skipped". With CI=true a skip counts as a failure.

Python 3 standard library only (junitparser is the consumer under test,
run as /usr/bin/python3).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

import harness
from harness import LOG, Failure, check, check_eq, test

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROBE = os.path.join(REPO, "build", "probe")
HELLO = os.path.join(REPO, "tests", "modules", "hello.sh")
RUN_TIMEOUT = 60

AIRLOCK = None  # set from argv in main()


RUNS = LOG.runs  # what the current test ran, for the failure report


def validate(args, timeout=RUN_TIMEOUT):
    """`airlock validate ARGS` → (status, stdout text, stderr text)."""
    cmd = [AIRLOCK, "validate"] + list(args)
    entry = {"cmd": cmd, "status": None, "stdout": "", "stderr": ""}
    RUNS.append(entry)
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failure(f"airlock validate did not finish within {timeout} s")
    out = p.stdout.decode("utf-8", "backslashreplace")
    err = p.stderr.decode("utf-8", "backslashreplace")
    entry.update(status=p.returncode, stdout=out, stderr=err)
    return p.returncode, out, err


class Workdir:
    """A temporary directory for suites, modules and reports."""

    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="airlock-validate-")
        os.chmod(self.path, 0o755)
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)

    def file(self, name, text, mode=0o644):
        path = os.path.join(self.path, name)
        with open(path, "wb") as f:
            f.write(text if isinstance(text, bytes) else text.encode())
        os.chmod(path, mode)
        return path


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# ----------------------------------------------------------------- suites

# name → (suite text, should pass, expected failure message regex or None)
CASES = [
    ("verdict-pass", f"module = {PROBE}\nargs = exit 0\nverdict = ok\n", True, None),
    ("verdict-fail", f"module = {PROBE}\nargs = segv\nverdict = ok\n", False,
     r"^expected verdict ok, got crashed \(SIGSEGV\)$"),
    ("verdict-crashed", f"module = {PROBE}\nargs = segv\nverdict = crashed\n", True, None),
    ("exit-code-pass", f"module = {PROBE}\nargs = exit 3\nexit_code = 3\n", True, None),
    ("exit-code-fail", f"module = {PROBE}\nargs = exit 4\nexit_code = 3\n", False,
     r"^expected exit_code 3, got 4$"),
    ("stdout-pass", f"module = {PROBE}\nargs = echo hello world\nstdout = hello world\\n\n", True, None),
    ("stdout-fail", f"module = {PROBE}\nargs = echo hello\nstdout = bye\\n\n", False,
     r'^expected stdout "bye\\n", got "hello\\n"$'),
    ("contains-pass", f"module = {PROBE}\nargs = echo a ; b\nstdout_contains = a ; b\n", True, None),
    ("contains-fail", f"module = {PROBE}\nargs = echo hello\nstdout_contains = bye\n", False,
     r'^expected stdout to contain "bye", got "hello\\n"$'),
    ("regex-pass", f"module = {PROBE}\nargs = echo result: 42\nstdout_regex = ^result: [0-9]+$\n", True, None),
    ("regex-fail", f"module = {PROBE}\nargs = echo result: x\nstdout_regex = ^result: [0-9]+$\n", False,
     r'^expected stdout to match /\^result: \[0-9\]\+\$/, got "result: x\\n"$'),
    ("stderr-pass", "module = sh\narg = -c\narg = echo oops >&2\nstderr_contains = oops\n", True, None),
    ("stderr-fail", "module = sh\narg = -c\narg = echo oops >&2\nstderr_contains = fine\n", False,
     r'^expected stderr to contain "fine", got "oops\\n"$'),
    ("wall-pass", f"module = {PROBE}\nargs = sleep 1\nmax_wall = 10s\n", True, None),
    ("wall-fail", f"module = {PROBE}\nargs = sleep 300\nmax_wall = 50ms\n", False,
     r"^expected max_wall 50ms, took [0-9.]+ ms$"),
    ("memory-pass", f"module = {PROBE}\nargs = exit 0\nmax_memory = 60M\n", True, None),
    ("memory-fail", f"module = {PROBE}\nargs = alloc 8\nmax_memory = 1M\n", False,
     r"^expected max_memory 1M, peak .* \([0-9]+ bytes\)$"),
    ("stdin-text", f"module = {PROBE}\nargs = stdin\nstdin = \"  ping\\n\"\nstdout = \"  ping\\n\"\n", True, None),
    ("stdin-file", f"module = {PROBE}\nargs = stdin\nstdin_file = input.txt\nstdout = from a file\\n\n", True, None),
    ("policy-named", f"module = {PROBE}\nargs = exit 0\npolicy = python\n", True, None),
    ("timeout-override", f"module = {PROBE}\nargs = sleep 5000\ntimeout = 200ms\nverdict = timeout\n", True, None),
    ("several-fail", f"module = {PROBE}\nargs = exit 1\nverdict = ok\nstdout_contains = x\n", False,
     r"^expected verdict ok, got exit_nonzero \(exit code 1\)$"),
]


def write_suite(wd, cases, name="suite.ini"):
    wd.file("input.txt", "from a file\n")
    text = "# written by test_validate.py\n"
    for case, body, _, _ in cases:
        text += f"\n[case {case}]\n{body}"
    return wd.file(name, text)


def run_suite(wd, suite, jobs):
    junit = os.path.join(wd.path, f"junit-{jobs}.xml")
    js = os.path.join(wd.path, f"results-{jobs}.json")
    status, out, err = validate([f"-j{jobs}", "--junit", junit, "--json", js,
                                 "--suite", suite])
    return status, out, err, junit, js


@test("every expectation kind passes and fails with its message")
def t_expectations():
    with Workdir() as wd:
        suite = write_suite(wd, CASES)
        status, out, err, _, js = run_suite(wd, suite, 4)
        check_eq(status, 1, "exit status with failing cases")
        doc = load_json(js)
        results = doc["results"]
        check_eq([r["name"] for r in results], [c[0] for c in CASES],
                 "results in suite order")
        lines = out.splitlines()
        for (name, _, should_pass, pattern), r in zip(CASES, results):
            check_eq(r["passed"], should_pass, f"{name}: passed")
            if should_pass:
                check_eq(r["failures"], [], f"{name}: failures")
                check(any(re.fullmatch(rf"PASS {re.escape(name)} \([0-9.]+ ms\)", l)
                          for l in lines), f"{name}: no PASS progress line")
            else:
                check(r["failures"], f"{name}: no failure message")
                check(re.search(pattern, r["failures"][0]),
                      f"{name}: message {r['failures'][0]!r} does not match {pattern!r}")
                prefix = f"FAIL {name}: {r['failures'][0]}"
                check(any(l.startswith(prefix) for l in lines),
                      f"{name}: no progress line starting {prefix!r}")
        by_name = {r["name"]: r for r in results}
        check_eq(by_name["policy-named"].get("policy"), "python", "policy of policy-named")
        check_eq(by_name["verdict-pass"].get("policy"), "default", "policy of a case naming none")
        several = results[[c[0] for c in CASES].index("several-fail")]
        check_eq(len(several["failures"]), 2, "several-fail: one message per unmet expectation")
        npass = sum(1 for c in CASES if c[2])
        check(re.search(rf"^{npass} passed, {len(CASES) - npass} failed, {len(CASES)} cases",
                        out, re.M), "no summary line")
        check_eq((doc["tests"], doc["passed"], doc["failures"]),
                 (len(CASES), npass, len(CASES) - npass), "JSON counts")


@test("a passing suite and passing modules exit 0")
def t_exit_zero():
    with Workdir() as wd:
        suite = write_suite(wd, [c for c in CASES if c[2]])
        status, out, _ = validate(["--suite", suite])
        check_eq(status, 0, "exit status")
        status, out, _ = validate([HELLO, HELLO])
        check_eq(status, 0, "exit status for two passing modules")
        check_eq(len([l for l in out.splitlines() if l.startswith("PASS ")]), 2,
                 "PASS lines")


@test("a failing module on the command line exits 1")
def t_exit_one():
    status, out, _ = validate([HELLO, PROBE])  # the probe without args: usage, exit 2
    check_eq(status, 1, "exit status")
    check(re.search(r"^FAIL .*probe: expected verdict ok, got exit_nonzero \(exit code 2\)$",
                    out, re.M), "no FAIL line for the probe")


@test("usage errors exit 2", root=False)
def t_usage():
    for args in ([], ["--suite", "x.ini", HELLO], ["-j", "0", HELLO],
                 ["--bogus", HELLO], ["--suite"]):
        status, out, err = validate(args)
        check_eq(status, 2, f"exit status of {args}")
        check(err.startswith("airlock validate: "), f"no message for {args}: {err!r}")
        check_eq(out, "", f"stdout of {args}")


@test("-j1 and -j4 give the same results")
def t_parallel_equals_sequential():
    def normal(doc):
        rs = []
        for r in doc["results"]:
            r = dict(r)
            # host_uid: concurrent runs each have their own (sandbox/uids.c)
            for k in ("wall_ms", "cpu_ms", "peak_memory_bytes", "host_uid"):
                r.pop(k, None)
            r["failures"] = [re.sub(r"(took|peak) .*", r"\1 …", m) for m in r["failures"]]
            rs.append(r)
        return rs

    with Workdir() as wd:
        suite = write_suite(wd, CASES)
        s1, _, _, _, j1 = run_suite(wd, suite, 1)
        s4, _, _, _, j4 = run_suite(wd, suite, 4)
        check_eq(s1, s4, "exit status -j1 vs -j4")
        a, b = normal(load_json(j1)), normal(load_json(j4))
        for x, y in zip(a, b):
            check_eq(y, x, f"result of {x['name']} with -j4 vs -j1")
        check_eq(len(a), len(b), "number of results")


def check_junit(path, results):
    """The elements and attributes the JUnit schema (Ant's junit.xsd, as
    GitLab and Jenkins read it) requires, and counts that add up."""
    root = ET.parse(path).getroot()
    check_eq(root.tag, "testsuites", "root element")
    suites = root.findall("testsuite")
    check_eq(len(suites), 1, "testsuite elements")
    ts = suites[0]
    for attr in ("name", "tests", "failures", "errors", "time", "timestamp", "hostname"):
        check(attr in ts.attrib, f"testsuite has no {attr} attribute")
    float(ts.get("time"))
    check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", ts.get("timestamp")),
          "timestamp is not ISO 8601 without zone")
    cases = ts.findall("testcase")
    check_eq(int(ts.get("tests")), len(cases), "tests attribute vs testcase elements")
    check_eq(len(cases), len(results), "testcases vs results")
    nfail = sum(1 for c in cases if c.find("failure") is not None)
    nerr = sum(1 for c in cases if c.find("error") is not None)
    check_eq(int(ts.get("failures")), nfail, "failures attribute")
    check_eq(int(ts.get("errors")), nerr, "errors attribute")
    check_eq(int(root.get("tests")), len(cases), "testsuites tests attribute")
    for c, r in zip(cases, results):
        for attr in ("name", "classname", "time"):
            check(attr in c.attrib, f"testcase has no {attr} attribute")
        check_eq(c.get("name"), r["name"], "testcase name")
        float(c.get("time"))
        order = [e.tag for e in c]
        check(order in (["system-out", "system-err"],
                        ["failure", "system-out", "system-err"],
                        ["error", "system-out", "system-err"]),
              f"{r['name']}: children {order} not in schema order")
        f = c.find("failure")
        if r["passed"]:
            check(f is None, f"{r['name']}: a passing case has a failure")
        else:
            check(f is not None, f"{r['name']}: a failing case has no failure")
            check_eq(f.get("message"), "; ".join(r["failures"]),
                     f"{r['name']}: failure message")
        check_eq(c.find("system-out").text or "", r["stdout"], f"{r['name']}: system-out")
        check_eq(c.find("system-err").text or "", r["stderr"], f"{r['name']}: system-err")
    return root


@test("JUnit report has the schema's elements and matching counts")
def t_junit():
    with Workdir() as wd:
        suite = write_suite(wd, CASES)
        _, _, _, junit, js = run_suite(wd, suite, 4)
        check_junit(junit, load_json(js)["results"])


# Run by Debian's python3 (python3-junitparser, tools/install-deps.sh): the
# report as a JUnit consumer reads it, back as JSON.
JUNITPARSER = r"""
import json, sys
from junitparser import JUnitXml, Failure, Error
xml = JUnitXml.fromfile(sys.argv[1])
out = []
for suite in xml:
    cases = []
    for case in suite:
        results = [{"kind": type(r).__name__, "message": r.message}
                   for r in case.result]
        cases.append({"name": case.name, "classname": case.classname,
                      "time": case.time, "passed": case.is_passed,
                      "results": results, "system_out": case.system_out,
                      "system_err": case.system_err})
    out.append({"name": suite.name, "tests": suite.tests,
                "failures": suite.failures, "errors": suite.errors,
                "cases": cases})
print(json.dumps(out))
"""


@test("JUnit report read by a real consumer (junitparser)")
def t_junit_consumer():
    python = "/usr/bin/python3"
    probe = subprocess.run([python, "-c", "import junitparser"],
                           capture_output=True)
    check(probe.returncode == 0,
          "python3-junitparser is missing (tools/install-deps.sh installs it)")
    with Workdir() as wd:
        suite = write_suite(wd, CASES)
        _, _, _, junit, js = run_suite(wd, suite, 4)
        results = load_json(js)["results"]
        status, out, err = harness.run_logged([python, "-c", JUNITPARSER, junit],
                                              RUN_TIMEOUT)
        check_eq(status, 0, "junitparser exit status")
        suites = json.loads(out)
        check_eq(len(suites), 1, "test suites read")
        s = suites[0]
        check_eq(s["tests"], len(results), "tests")
        check_eq(s["failures"], sum(1 for r in results if not r["passed"]),
                 "failures")
        check_eq(s["errors"], 0, "errors")
        check_eq([c["name"] for c in s["cases"]], [r["name"] for r in results],
                 "case names, in suite order")
        for c, r in zip(s["cases"], results):
            check_eq(c["passed"], r["passed"], f"{r['name']}: passed")
            check(c["time"] >= 0, f"{r['name']}: time {c['time']}")
            if r["passed"]:
                check_eq(c["results"], [], f"{r['name']}: results")
            else:
                check_eq(c["results"], [{"kind": "Failure",
                                         "message": "; ".join(r["failures"])}],
                         f"{r['name']}: failure read")
            check_eq(c["system_out"] or "", r["stdout"], f"{r['name']}: system-out")
            check_eq(c["system_err"] or "", r["stderr"], f"{r['name']}: system-err")


HOSTILE = (b"#!/bin/sh\n"
           b"printf 'a\\001b\\033[31mred\\377\\376 ]]> <&> \\047q\\047 \"dq\" \\r\\n'\n"
           b"printf '\\302\\200 \\355\\240\\200 \\357\\277\\276 ok\\n' >&2\n"
           b"exit 1\n")


@test("hostile module output still gives well-formed XML")
def t_hostile_xml():
    with Workdir() as wd:
        wd.file("hostile.sh", HOSTILE, 0o755)
        suite = wd.file("suite.ini",
                        "[case x<&>'y]\nmodule = ./hostile.sh\nexit_code = 1\nstdout = nothing\n")
        status, out, _, junit, js = run_suite(wd, suite, 2)
        check_eq(status, 1, "exit status")
        check(not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", out),
              f"control characters reached the progress output: {out!r}")
        with open(junit, "rb") as f:
            raw = f.read()
        raw.decode("utf-8")  # strict: well-formed UTF-8
        root = ET.fromstring(raw)
        case = root.find("testsuite/testcase")
        check_eq(case.get("name"), "x<&>'y", "case name through the attribute")
        text = case.find("system-out").text
        check("]]> <&> 'q' \"dq\" \r\n" in text, f"markup not kept as text: {text!r}")
        check("a\ufffdb\ufffd[31mred\ufffd\ufffd" in text,
              f"forbidden characters not replaced by U+FFFD: {text!r}")
        err = case.find("system-err").text
        check_eq(err, "\u0080 \ufffd\ufffd\ufffd \ufffd ok\n",
                 "C1 kept, a surrogate and U+FFFE replaced")
        msg = case.find("failure").get("message")
        check(msg.startswith('expected stdout "nothing", got "a\\x01b\\x1b[31mred\\xff'),
              f"failure message {msg!r}")
        check_eq(len(load_json(js)["results"]), 1, "JSON results")


BAD_SUITES = [
    ("unknown key", "[case a]\nmodule = /bin/true\ncolour = red\n", 3, r"\[case a\] colour: unknown key"),
    ("bad regex", "[case a]\nmodule = /bin/true\n\nstdout_regex = (unclosed\n", 4,
     r"\[case a\] stdout_regex: bad regular expression \"\(unclosed\""),
    ("bad duration", "[case a]\nmodule = /bin/true\nmax_wall = soon\n", 3, r"\[case a\] max_wall: "),
    ("bad size", "[case a]\nmodule = /bin/true\nmax_memory = 12 parsecs\n", 3, r"\[case a\] max_memory: "),
    ("missing module", "[case a]\nmodule = /bin/true\n[case b]\nverdict = ok\n", 3,
     r"\[case b\] module: missing"),
    ("duplicate case", "[case a]\nmodule = /bin/true\n[case b]\nmodule = /bin/true\n[case a]\nmodule = /bin/true\n",
     5, r"duplicate case \"a\" \(first at line 1\)"),
    ("duplicate key", "[case a]\nmodule = /bin/true\nmodule = /bin/false\n", 3, r"\[case a\] module: duplicate key"),
    ("unknown section", "[case a]\nmodule = /bin/true\n[defaults]\n", 3, r"unknown section \[defaults\]"),
    ("bad verdict", "[case a]\nmodule = /bin/true\nverdict = fine\n", 3, r"unknown verdict \"fine\""),
    ("bad escape", "[case a]\nmodule = /bin/true\nstdout = a\\qb\n", 3, r"unknown escape"),
    ("stdin twice", "[case a]\nmodule = /bin/true\nstdin = x\nstdin_file = y\n", 4, r"stdin or stdin_file"),
    ("bad policy", "[case a]\nmodule = /bin/true\npolicy = no-such-policy\n", 3, r"\[case a\] policy"),
    ("bad exit code", "[case a]\nmodule = /bin/true\nexit_code = 256\n", 3, r"\[case a\] exit_code: "),
    ("key outside a case", "module = /bin/true\n[case a]\nmodule = /bin/true\n", 1, r"outside any \[case NAME\]"),
    ("no cases", "# nothing\n", None, r"no \[case NAME\] section"),
]


@test("SIGINT cancels the running cases, reports every case, cleans up, exits 130")
def t_interrupted():
    with Workdir() as wd:
        cases = [(f"sleeper-{i}", f"module = {PROBE}\nargs = sleep 60000\ntimeout = 120s\n",
                  False, None) for i in range(5)]
        suite = write_suite(wd, cases)
        junit = os.path.join(wd.path, "junit.xml")
        js = os.path.join(wd.path, "results.json")
        cmd = [AIRLOCK, "validate", "-j2", "--junit", junit, "--json", js, "--suite", suite]
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            # both slots' jails are up once their run cgroups exist
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(own_cgroups(p.pid)) < 2:
                time.sleep(0.05)
            check(len(own_cgroups(p.pid)) >= 2, "the two first cases did not start")
            started = time.monotonic()
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=30)
            took = time.monotonic() - started
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        check_eq(p.returncode, 130, f"exit status (stderr {err[-300:]!r})")
        check(took < 10, f"took {took:.1f} s to stop after SIGINT")
        check_eq(own_cgroups(p.pid), [], "run cgroups left behind")
        results = load_json(js)["results"]
        errors = [r.get("error") or " ".join(r.get("failures", [])) for r in results]
        check_eq(len(errors), 5, "cases reported")
        check_eq(sum("cancelled: interrupted by SIGINT" in e for e in errors), 2,
                 f"cancelled cases: {errors}")
        check_eq(sum("not run: interrupted by SIGINT" in e for e in errors), 3,
                 f"cases not run: {errors}")
        check(not any(r["passed"] for r in results), "an interrupted case passed")
        root = ET.parse(junit).getroot()
        check_eq(len(root.findall(".//testcase")), 5, "JUnit testcases")


def own_cgroups(pid):
    """Run cgroups of airlock process `pid` (run-PID-...), on whichever
    hierarchy airlock uses (harness.run_cgroups looks in both)."""
    return harness.run_cgroups((f"run-{pid}-",))


@test("bad suite files give FILE:LINE errors and exit 2, running nothing")
def t_bad_suites():
    with Workdir() as wd:
        for what, text, line, pattern in BAD_SUITES:
            path = wd.file("bad.ini", text)
            junit = os.path.join(wd.path, "bad.xml")
            status, out, err = validate(["--junit", junit, "--suite", path])
            check_eq(status, 2, f"{what}: exit status")
            check_eq(out, "", f"{what}: stdout (nothing may run)")
            where = f"{path}:{line}:" if line else f"{path}"
            check(err.startswith(f"airlock validate: {where}"),
                  f"{what}: message does not start with {where!r}: {err!r}")
            check(re.search(pattern, err), f"{what}: {err!r} does not match {pattern!r}")
            check(not os.path.exists(junit), f"{what}: a report was written")


# ------------------------------------------------------------------- main

def report_failure(detail):
    for line in str(detail).splitlines():
        print(f"  {line}")
    for r in RUNS[-3:]:
        print(f"  $ {' '.join(r['cmd'])}")
        print(f"    status {r['status']}")
        for stream in ("stdout", "stderr"):
            text = r[stream]
            if text:
                short = text if len(text) < 2000 else text[:2000] + "..."
                print(f"    {stream}: " + short.replace("\n", "\n      "))


def configure(build_dir):
    global AIRLOCK
    AIRLOCK = os.path.abspath(os.path.join(build_dir, "airlock"))
    return (AIRLOCK, PROBE)


def main(argv):
    return harness.main(argv, configure, report=report_failure)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
