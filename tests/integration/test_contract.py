#!/usr/bin/env python3
"""Integration tests for the result contract (issue 14, "Contract
defects"): one module seen through `airlock run --json`, `airlock exec
--json` (airlockd) and `airlock validate`'s JSON report must give the same
object; validate records a missing module and goes on; quotas, stdin,
policy lookup and the smaller defects of that list.

    python3 tests/integration/test_contract.py BUILD_DIR [WORD...]

Python 3 standard library only.
"""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

import harness
from harness import Failure, check, check_eq, note, test

# The daemon fixture of test_daemon.py; importing it registers that
# suite's tests too, which this suite does not run.
import test_daemon
from test_daemon import Daemon, as_user, expect_error, wait_for, WAIT

del harness.TESTS[:]

# One module, one behaviour per argument; validated (no argument) ok.
MODES = b"""#!/bin/sh
case "$1" in
ok) echo hello; echo warn >&2 ;;
crash) kill -SEGV $$ ;;
forkbomb) while :; do sleep 100 & done 2>/dev/null ;;
memory) a=xxxxxxxxxxxxxxxx; while :; do a="$a$a"; done ;;
timeout) sleep 30 ;;
esac
"""
# Small limits so the limit cases end fast; the same policy, by name, in
# all three paths (the daemon finds it in its policy directory, the CLI
# through AIRLOCK_POLICY_PATH).
CONTRACT_POLICY = "[limits]\ntimeout = 1s\npids = 16\nmemory = 32M\n"

# mode -> the verdict all three paths must agree on
# (crash last: it archives the module in the daemon)
CASES = [("ok", "ok"), ("forkbomb", "exit_nonzero"),
         ("memory", "memory_limit"), ("timeout", "timeout"),
         ("crash", "crashed")]

# Members whose values belong to one run (its timing, usage and host uid,
# and the kernel's event counts: how many tasks the OOM killer took, how
# many forks hit pids.max, depend on timing): by type only, the counts
# checked to be at least 1 in all three below. Every other member must be
# equal in all three objects.
RUN_SPECIFIC = {"wall_ms", "cpu_ms", "peak_memory_bytes", "host_uid",
                "oom_kills", "pids_limit_hits"}
# Members validate's JSON report adds around the result (the case's own).
VALIDATE_CASE_MEMBERS = {"name", "passed", "failures"}


class Workdir:
    """A root-owned directory (0755: the daemon trusts policy directories
    only when no one but root can write them) removed afterwards."""

    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="airlock-contract-")
        os.chmod(self.path, 0o755)
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)

    def file(self, name, data, mode=0o644):
        path = os.path.join(self.path, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        os.chmod(path, mode)
        return path


def airlock(args, env=None, timeout=WAIT):
    """airlock ARGS → (status, stdout text, stderr text)."""
    status, out, err = harness.run_logged(
        [test_daemon.AIRLOCK] + list(args), timeout,
        env=dict(os.environ, **(env or {})))
    return status, out.decode(), err.decode()


def run_with_stdin(cmd, data, env, timeout=WAIT):
    """Like harness.run_logged, with `data` on stdin."""
    entry = {"cmd": list(cmd), "status": None, "stdout": b"", "stderr": b""}
    harness.LOG.runs.append(entry)
    p = subprocess.run(cmd, input=data, capture_output=True, timeout=timeout,
                       env=env)
    entry.update(status=p.returncode, stdout=p.stdout, stderr=p.stderr)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def compare_results(objs, what):
    """objs: {path name: result dict}. Same members; equal values except
    RUN_SPECIFIC (same type there)."""
    names = list(objs)
    first = objs[names[0]]
    for other in names[1:]:
        o = objs[other]
        check_eq(sorted(o), sorted(first),
                 f"{what}: members of {other} vs {names[0]}")
        for k in first:
            if k in RUN_SPECIFIC:
                check(type(o[k]) is type(first[k]),
                      f"{what}: {k} is {o[k]!r} in {other}, "
                      f"{first[k]!r} in {names[0]}")
            else:
                check_eq(o[k], first[k], f"{what}: {k} of {other} vs {names[0]}")


def modes_daemon(w):
    """A daemon with the contract policy in its policy directory and MODES
    submitted as "modes": (daemon, MODES's host path, the CLI's env)."""
    pdir = os.path.join(w.path, "policies")
    os.makedirs(pdir)
    os.chmod(pdir, 0o755)
    w.file("policies/contract.policy", CONTRACT_POLICY)
    module = w.file("modes.sh", MODES, 0o755)
    env = {"AIRLOCK_POLICY_PATH": pdir}
    d = Daemon(env=env)
    got = d.submit("modes", MODES, policy="contract")
    check_eq(got.get("module", {}).get("state"), "active", f"submit: {got}")
    return d, module, env


# =================================================================== tests

@test("contract: one result object through airlock run --json, airlock exec --json and validate's JSON")
def t_one_result():
    with Workdir() as w:
        d, module, env = modes_daemon(w)

        suite = "".join(f"[case {mode}]\nmodule = {module}\nargs = {mode}\n"
                        f"policy = contract\nverdict = {verdict}\n\n"
                        for mode, verdict in CASES)
        suite_path = w.file("suite.ini", suite)
        report = os.path.join(w.path, "report.json")
        status, _, err = airlock(["validate", "-j1", "--json", report,
                                  "--suite", suite_path], env=env, timeout=120)
        check_eq(status, 0, f"validate: every case as expected ({err})")
        with open(report) as f:
            validated = {c["name"]: c for c in json.load(f)["results"]}

        sock = {"AIRLOCK_SOCKET": d.sock}
        for mode, verdict in CASES:
            status, out, _ = airlock(["run", "--json", "--policy", "contract",
                                      module, mode], env=env)
            ran = harness.parse_result(status, out.encode())
            xstatus, xout, _ = airlock(["exec", "--json", "modes", mode],
                                       env=sock)
            answer = json.loads(xout)
            check(answer.get("ok"), f"exec {mode}: {answer}")
            execd = answer["result"]
            check_eq(xstatus, execd["exit_status"], f"exec {mode}: exit status")
            case = {k: v for k, v in validated[mode].items()
                    if k not in VALIDATE_CASE_MEMBERS}
            check_eq(ran["verdict"], verdict, f"{mode}: verdict")
            compare_results({"airlock run": ran, "airlock exec": execd,
                             "validate": case}, mode)
            if mode == "crash":
                check_eq(execd["signal"], "SIGSEGV", "signal, by name")
            for name, got in (("airlock run", ran), ("airlock exec", execd),
                              ("validate", case)):
                if mode == "forkbomb":
                    check(got["pids_limit_hits"] >= 1, f"pids_limit_hits of {name}")
                if mode == "memory":
                    check(got["oom_kills"] >= 1, f"oom_kills of {name}")
        note("compared every member but " + ", ".join(sorted(RUN_SPECIFIC)) +
             " (validate's own: " + ", ".join(sorted(VALIDATE_CASE_MEMBERS)) + ")")


@test("contract: module and run records are the same in airlock list/runs --json and the daemon's answers")
def t_one_module_record():
    d = Daemon()
    d.submit("greet", b"#!/bin/sh\necho hi\n")
    d.request({"op": "exec", "name": "greet"})
    listed = d.request({"op": "list", "name": "greet"})["modules"]
    runs = d.request({"op": "runs", "name": "greet"})["runs"]
    status, out, _ = airlock(["list", "--json", "--state-dir", d.state])
    check_eq(status, 0, "airlock list")
    cli_mods = [m for m in json.loads(out)["modules"] if m["name"] == "greet"]
    check_eq(cli_mods, listed, "module records: airlock list --json vs op list")
    status, out, _ = airlock(["runs", "greet", "--json", "--state-dir", d.state])
    check_eq(status, 0, "airlock runs")
    check_eq(json.loads(out)["runs"], runs, "run records: airlock runs --json vs op runs")


@test("validate: a missing or non-executable module is recorded (setup_error 127/126) and the suite goes on")
def t_validate_missing_module():
    with Workdir() as w:
        w.file("noexec.sh", b"#!/bin/sh\necho never\n", 0o644)
        w.file("hello.sh", b"#!/bin/sh\necho hello\n", 0o755)
        suite = w.file("suite.ini", """
[case first-good]
module = ./hello.sh
stdout = hello\\n

[case missing]
module = ./no-such-module.sh
verdict = setup_error

[case not-executable]
module = ./noexec.sh
verdict = setup_error

[case missing-but-expected-ok]
module = ./also-missing.sh

[case last-good]
module = ./hello.sh
stdout = hello\\n
""")
        junit = os.path.join(w.path, "junit.xml")
        report = os.path.join(w.path, "report.json")
        status, out, err = airlock(["validate", "-j2", "--junit", junit,
                                    "--json", report, "--suite", suite])
        check_eq(status, 1, f"validate's exit status (one case failed): {err}")
        check("epoll_ctl" not in err, f"aborted: {err}")
        check("4 passed, 1 failed, 5 cases" in out, f"summary: {out}")
        with open(report) as f:
            doc = json.load(f)
        res = {c["name"]: c for c in doc["results"]}
        check_eq(list(res), ["first-good", "missing", "not-executable",
                             "missing-but-expected-ok", "last-good"],
                 "every case in the JSON report, in suite order")
        for name, code in (("missing", 127), ("not-executable", 126),
                           ("missing-but-expected-ok", 127)):
            check_eq(res[name]["verdict"], "setup_error", f"{name}: verdict")
            check_eq(res[name]["exit_status"], code, f"{name}: exit_status")
            check(res[name]["error"], f"{name}: no error message")
        check("no-such-module.sh" in res["missing"]["error"],
              f"the message names the module: {res['missing']['error']}")
        check(res["missing"]["passed"] and res["not-executable"]["passed"],
              "expected setup_error cases pass")
        check(not res["missing-but-expected-ok"]["passed"], "the ok case fails")
        check_eq(res["last-good"]["stdout"], "hello\n", "the case after them ran")
        check_eq((doc["passed"], doc["errors"]), (4, 1),
                 "passed and errors (setup_error where ok was expected)")
        cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
        check_eq(len(cases), 5, "JUnit testcases")
        check(cases["missing-but-expected-ok"].find("error") is not None,
              "JUnit: the unexpected setup error is an <error>")
        for name in ("first-good", "missing", "not-executable", "last-good"):
            check(cases[name].find("error") is None and
                  cases[name].find("failure") is None, f"JUnit: {name} passed")


NOBODY = 65534


def quota_lines(answer):
    return {q["uid"]: q for q in answer["quotas"]}


@test("quota: quota show, status and top agree on two uids' use (the listing does not re-enter its own query)")
def t_quota_two_uids():
    d = Daemon(["--allow-uid", str(NOBODY), "--quota-per-hour", "8"])
    os.chmod(d.sock, 0o666)  # the kernel's peer uid, not the mode, decides
    d.submit("mine", b"#!/bin/sh\necho root\n")            # uid 0: 1 run
    for _ in range(2):                                        # uid 0: 3 runs
        check(d.request({"op": "exec", "name": "mine"})["ok"], "exec as root")
    theirs = base64.b64encode(b"#!/bin/sh\necho nobody\n").decode()
    answers = as_user(d.sock, NOBODY, NOBODY,
                      [{"op": "submit", "name": "theirs", "content": theirs}] +
                      [{"op": "exec", "name": "theirs"}] * 4)  # 5 runs
    check(all(a.get("ok") for a in answers), f"nobody's runs: {answers}")
    want = {0: 3, NOBODY: 5}
    # a restart empties the admission table: every line now comes from the
    # manifest's listing (the path that re-entered its own statement)
    d.stop()
    d.start()
    os.chmod(d.sock, 0o666)

    shown = quota_lines(d.request({"op": "quota_show"}))
    status = quota_lines(d.request({"op": "status"}))
    for uid, used in want.items():
        one = quota_lines(d.request({"op": "quota_show", "uid": uid}))[uid]
        for what, lines in (("quota_show", shown), ("status", status)):
            check(uid in lines, f"{what}: no line for uid {uid}: {lines}")
            check_eq(lines[uid]["hour_used"], used, f"{what}: uid {uid} hour_used")
            check_eq(lines[uid]["day_used"], used, f"{what}: uid {uid} day_used")
            check_eq(lines[uid]["hour_left"], 8 - used, f"{what}: uid {uid} hour_left")
        check_eq(one["hour_used"], used, f"quota_show uid {uid}")
    check_eq(sorted(shown), sorted(want), "uids listed")

    for cmd in (("quota", "show"), ("status",)):
        _, out, _ = d.airlock(*cmd, check_status=0)
        for uid, used in want.items():
            check(any(line.split()[:1] == [str(uid)] and
                      f"{used} of 8 ({8 - used} left)" in line
                      for line in out.splitlines()),
                  f"airlock {' '.join(cmd)}: uid {uid} {used} of 8: {out}")
    # the ninth run of uid 65534 answers rate_limited exactly when the
    # listing says none are left
    answers = as_user(d.sock, NOBODY, NOBODY, [{"op": "exec", "name": "theirs"}] * 4)
    check_eq([a.get("ok") for a in answers], [True, True, True, False],
             "nobody's 6th-9th runs")
    expect_error(answers[3], "rate_limited")
    left = quota_lines(d.request({"op": "quota_show"}))
    check_eq((left[NOBODY]["hour_used"], left[NOBODY]["hour_left"]), (8, 0),
             "uid 65534 at its quota")
    check_eq(left[0]["hour_used"], 3, "uid 0 unchanged")


@test("exec stdin: a pipe reaches the module; over 1 MiB or not UTF-8 is refused with nothing run; --no-stdin sends none")
def t_exec_stdin():
    d = Daemon()
    check(d.submit("cat", b"#!/bin/sh\nexec cat\n")["ok"], "submit")
    env = dict(os.environ, AIRLOCK_SOCKET=d.sock)
    cmd = [test_daemon.AIRLOCK, "exec", "cat"]
    status, out, err = run_with_stdin(cmd, b"abc\n", env)
    check_eq((status, out), (0, "abc\n"), f"echo abc | airlock exec cat ({err})")
    status, out, _ = run_with_stdin(cmd, "\u00e9t\u00e9\n".encode(), env)
    check_eq((status, out), (0, "\u00e9t\u00e9\n"), "UTF-8 text")
    big = b"x" * (1 << 20)
    status, out, _ = run_with_stdin(cmd, big, env)
    check_eq((status, len(out)), (0, 1 << 20), "exactly 1 MiB passes")
    runs = len(d.request({"op": "runs", "name": "cat", "limit": 100})["runs"])
    status, out, err = run_with_stdin(cmd, big + b"x", env)
    check_eq(status, 125, "1 MiB + 1 byte: refused")
    check("larger than 1 MiB" in err and "nothing was run" in err, f"message: {err!r}")
    status, out, err = run_with_stdin(cmd, b"\xff\xfe binary", env)
    check_eq(status, 125, "not UTF-8: refused")
    check("not UTF-8" in err, f"message: {err!r}")
    check_eq(len(d.request({"op": "runs", "name": "cat", "limit": 100})["runs"]),
             runs, "a refused stdin ran nothing")
    status, out, _ = run_with_stdin(cmd[:2] + ["--no-stdin", "cat"], b"abc\n", env)
    check_eq((status, out), (0, ""), "--no-stdin")
    status, out, _ = run_with_stdin(cmd[:2] + ["--json", "cat"], b"json\n", env)
    check_eq(json.loads(out)["result"]["stdout"], "json\n", "--json with stdin")


@test("exec explains a verdict in the words airlock run uses (crash, timeout, memory)")
def t_exec_explains():
    with Workdir() as w:
        d, module, env = modes_daemon(w)
        for mode, word in (("timeout", "timeout"), ("memory", "memory_limit"),
                           ("crash", "crashed")):
            _, _, rerr = airlock(["run", "--policy", "contract", module, mode], env=env)
            _, _, xerr = airlock(["exec", "modes", mode], env={"AIRLOCK_SOCKET": d.sock})
            explain = [l for l in rerr.splitlines() if l.startswith(f"airlock: {word}: ")]
            check_eq(len(explain), 1, f"airlock run {mode}: one explanation line in {rerr!r}")
            line = explain[0]
            if mode == "timeout":  # "killed after N ms (limit 1000 ms)"
                line = line.split(" killed after ")[0]
                check("(limit 1000 ms)" in xerr, f"exec: the limit: {xerr!r}")
            check(line in xerr, f"exec {mode}: {line!r} not in {xerr!r}")


@test("policies: airlockd looks names up in STATE_DIR/policies (its --state-dir), trusted only when root's alone")
def t_state_dir_policies():
    with Workdir() as w:
        state = os.path.join(w.path, "state")
        pdir = os.path.join(state, "policies")
        os.makedirs(pdir)
        os.chmod(state, 0o755)
        os.chmod(pdir, 0o755)
        w.file("state/policies/mine.policy", "[limits]\ntimeout = 1500ms\n")
        # AIRLOCK_POLICY_PATH empty: the default search path
        d = Daemon(env={"AIRLOCK_POLICY_PATH": ""}, state=state)
        got = d.submit("m", b"#!/bin/sh\necho hi\n", policy="mine")
        check(got.get("ok"), f"submit under STATE_DIR/policies/mine.policy: {got}")
        check_eq((got["result"]["policy"], got["result"]["limits"]["timeout_ms"]),
                 ("mine", 1500), "the state directory's policy is the one in force")
        got = d.submit("m2", b"#!/bin/sh\necho hi\n", policy="nope")
        expect_error(got, "bad_policy")
        msg = got["error"]["message"]
        check(pdir in msg and "/var/lib/airlock/policies" not in msg,
              f"the search path is this daemon's: {msg}")
        check("mine" in msg and "default" in msg, f"names what it accepts: {msg}")
        # #13's rule holds in the state directory too (checked when a
        # policy is loaded: at start and on SIGHUP)
        os.chmod(pdir, 0o777)
        try:
            d.stop()
            d.start()
            got = d.submit("m3", b"#!/bin/sh\necho hi\n", policy="mine")
            expect_error(got, "bad_policy")
            check(pdir in got["error"]["message"] and "chmod go-w" in got["error"]["message"],
                  f"refusal names the directory and the fix: {got}")
            got = d.submit("m4", b"#!/bin/sh\necho hi\n", policy="nope")
            expect_error(got, "bad_policy")
            check("mine" not in got["error"]["message"].split("accepts")[1],
                  f"a policy the daemon refuses is not suggested: {got}")
        finally:
            os.chmod(pdir, 0o755)


@test("shutdown: a run killed at the grace's end is answered interrupted, as the manifest records it")
def t_grace_interrupted():
    d = Daemon(args=["--shutdown-grace", "300ms"])
    check(d.submit("sleeper", b"#!/bin/sh\nsleep \"${1:-0}\"\n")["ok"], "submit")
    with d.connect() as c:
        c.send({"op": "exec", "name": "sleeper", "id": "x", "args": ["20"]})
        wait_for(lambda: any("running sleeper" in l for l in d.log), "the run to start")
        d.proc.send_signal(signal.SIGTERM)
        answer = c.recv()
    check_eq(d.proc.wait(WAIT), 0, "airlockd exit status")
    expect_error(answer, "interrupted")
    check_eq(answer.get("id"), "x", "the request id")
    check("shutdown grace" in answer["error"]["message"], f"message: {answer}")
    status, out, _ = airlock(["runs", "sleeper", "--json", "--state-dir", d.state])
    check_eq(json.loads(out)["runs"][0]["verdict"], "interrupted", "the run's record")


@test("submit: identical content and policy answers the active version, unchanged (no version, no run)")
def t_resubmit_identical():
    d = Daemon()
    first = d.submit("same", b"#!/bin/sh\necho one\n")
    check_eq(first["module"]["version"], 1, "first submit")
    again = d.submit("same", b"#!/bin/sh\necho one\n")
    check(again.get("ok") and again.get("unchanged") is True, f"resubmit: {again}")
    check_eq(again["module"], first["module"], "the existing version, as it was")
    check("result" not in again, "no run, so no result")
    check_eq(len(d.request({"op": "list", "name": "same"})["modules"]), 1, "versions")
    check_eq(len(d.request({"op": "runs", "name": "same"})["runs"]), 1, "runs")
    path = os.path.join(d.tmp, "same")
    with open(path, "wb") as f:
        f.write(b"#!/bin/sh\necho one\n")
    _, out, _ = d.airlock("submit", path, check_status=0)
    check("same version 1: active" in out and "unchanged" in out, f"airlock submit: {out}")
    # a change of content or of policy is a new version
    check_eq(d.submit("same", b"#!/bin/sh\necho two\n")["module"]["version"], 2,
             "new content")
    check_eq(d.submit("same", b"#!/bin/sh\necho two\n", policy="python")["module"]["version"],
             3, "same content, another policy")


@test("durations: a bare number (--timeout 5) is refused as ambiguous everywhere; 5s and 0 are fine")
def t_duration_units():
    status, out, _ = airlock(["run", "--json", "--timeout", "5", "/bin/true"])
    r = harness.parse_result(status, out.encode())
    check_eq((status, r["verdict"]), (125, "setup_error"), "--timeout 5")
    check("needs a unit (5ms or 5s?)" in r["error"], f"message: {r['error']}")
    status, out, _ = airlock(["run", "--json", "--timeout", "5s", "/bin/true"])
    check_eq(status, 0, "--timeout 5s")
    check_eq(harness.parse_result(status, out.encode())["limits"]["timeout_ms"], 5000,
             "5s in force")
    with Workdir() as w:
        suite = w.file("s.ini", "[case c]\nmodule = /bin/true\ntimeout = 300\n")
        status, _, err = airlock(["validate", "--suite", suite])
        check_eq(status, 2, "a suite with timeout = 300")
        check("needs a unit (300ms or 300s?)" in err, f"validate: {err}")
    p = subprocess.run([test_daemon.AIRLOCKD, "--tick", "1000", "--state-dir", "/nonexistent/x",
                        "--socket", "/nonexistent/s"], capture_output=True, timeout=WAIT)
    check_eq(p.returncode, 2, "airlockd --tick 1000")
    check(b"needs a unit (1000ms or 1000s?)" in p.stderr, f"airlockd: {p.stderr!r}")


@test("module name: inside the jail the module is /module/NAME (its name, not its sha256), sanitized")
def t_module_name_in_jail():
    d = Daemon()
    me = b"#!/bin/sh\necho \"$0\"\nls /module\n"
    got = d.submit("report.sh", me)
    check(got.get("ok"), f"submit: {got}")
    check_eq(got["result"]["stdout"], "/module/report.sh\nreport.sh\n",
             "the validation run's $0 and /module")
    got = d.request({"op": "exec", "name": "report.sh"})
    check_eq(got["result"]["stdout"], "/module/report.sh\nreport.sh\n", "exec's $0")
    check(got["module"]["sha256"] not in got["result"]["stdout"], "no sha256 shown")
    # a traceback names the file as the author named it
    py = b"#!/usr/bin/env python3\nraise SystemExit(open('/nonexistent'))\n"
    got = d.submit("tool.py", py, policy="python")
    check('File "/module/tool.py"' in got["result"]["stderr"],
          f"traceback: {got['result']['stderr']!r}")
    # a host file name the CLI passes through is made one plain name
    with Workdir() as w:
        odd = w.file("odd name;$(x).sh", me, 0o755)
        status, out, _ = airlock(["run", odd])
        check_eq((status, out), (0, "/module/odd_name___x_.sh\nodd_name___x_.sh\n"),
                 "a host name with spaces and shell characters")
        hidden = w.file("..sh", me, 0o755)
        status, out, _ = airlock(["run", hidden])
        check_eq((status, out), (0, "/module/module..sh\nmodule..sh\n"),
                 "a name starting with a dot")


@test("start-up: with the metrics port taken airlockd names that port and leaves nothing it made")
def t_metrics_port_taken():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with Workdir() as w:
            state = os.path.join(w.path, "fresh-state")
            sock = os.path.join(w.path, "fresh-run", "airlock.sock")
            for how in (["--metrics-listen", f"127.0.0.1:{port}"], []):
                p = subprocess.run([test_daemon.AIRLOCKD, "--state-dir", state,
                                    "--socket", sock] + how,
                                   capture_output=True, timeout=WAIT, stdin=subprocess.DEVNULL,
                                   env=dict(os.environ, METRICS_PORT=str(port),
                                            AIRLOCK_POLICY_PATH=test_daemon.SHIPPED_POLICIES))
                err = p.stderr.decode()
                check_eq(p.returncode, 1, f"airlockd {how}: exit status ({err})")
                check(f"127.0.0.1:{port}" in err and f"port {port}" in err and
                      "port 0" not in err, f"names the port: {err!r}")
                check(not os.path.exists(state), "the state directory it made is gone")
                check(not os.path.exists(os.path.dirname(sock)), "the socket directory too")
            # a failure after the state directory was made: a live socket
            live = socket.socket(socket.AF_UNIX)
            live_path = os.path.join(w.path, "live.sock")
            live.bind(live_path)
            live.listen()
            try:
                p = subprocess.run([test_daemon.AIRLOCKD, "--state-dir", state,
                                    "--socket", live_path],
                                   capture_output=True, timeout=WAIT, stdin=subprocess.DEVNULL,
                                   env=dict(os.environ, METRICS_PORT="0",
                                            AIRLOCK_POLICY_PATH=test_daemon.SHIPPED_POLICIES))
            finally:
                live.close()
            check_eq(p.returncode, 1, f"a live socket: {p.stderr[-300:]!r}")
            check(not os.path.exists(state), "the state directory made before it failed is gone")
            # a state directory that was there is left as it was
            os.makedirs(state, mode=0o700)
            marker = os.path.join(state, "keep")
            open(marker, "w").close()
            p = subprocess.run([test_daemon.AIRLOCKD, "--state-dir", state, "--socket", sock,
                                "--metrics-listen", f"127.0.0.1:{port}"],
                               capture_output=True, timeout=WAIT, stdin=subprocess.DEVNULL,
                               env=dict(os.environ,
                                        AIRLOCK_POLICY_PATH=test_daemon.SHIPPED_POLICIES))
            check_eq(p.returncode, 1, "exit status")
            check(os.path.exists(marker), "a state directory it did not make is kept")
    finally:
        taken.close()


# ================================================================== runner

def main(argv):
    return harness.main(argv, test_daemon.configure,
                        report=test_daemon.report_failure,
                        after_test=test_daemon.stop_daemons,
                        root_reason="airlockd builds jails only as root")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
