#!/usr/bin/env python3
"""Per-run options of exec (issue 14, item 1; docs/protocol.md, "Per-run
options"): a request may lower its module's policy's timeout, memory and
pids, never raise them; set only the environment names the policy's
[runtime] request_env lists; and start the module in a directory of the
jail. Each test drives a real airlockd through its socket and through
`airlock exec`; every refusal is checked to have run and recorded
nothing, and every hostile request to leave the daemon serving (the
build-asan pass: a leak ends airlockd non-zero at its stop).

    python3 tests/integration/test_runopts.py BUILD_DIR [WORD...]

Python 3 standard library only.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import harness
from harness import Failure, check, check_eq, note, test

# The daemon fixture of test_daemon.py; importing it registers that
# suite's tests too, which this suite does not run.
import test_daemon
from test_daemon import Daemon, as_user, expect_error

del harness.TESTS[:]

# the ceilings every test's module is held to
RUNOPTS_POLICY = """[policy]
name = runopts
[limits]
timeout = 5s
memory = 128M
pids = 32
[runtime]
archive_on = none
request_env = SEED GREETING
"""

SLEEPER = b"#!/bin/sh\nexec sleep \"${1:-0}\"\n"
ENVDUMP = (b"#!/bin/sh\necho \"seed=${SEED-unset} greeting=${GREETING-unset} "
           b"path=$PATH\"\npwd\n")
# HOG N: hold N MiB, every page written
HOG = (b"#!/usr/bin/python3\nimport sys\n"
       b"n = int(sys.argv[1]) if len(sys.argv) > 1 else 0\n"
       b"b = b'x' * (n << 20)\nprint('held', len(b) >> 20)\n")
# FORKER N: N children alive at once (each waits on a pipe the parent
# closes when it is done forking); says how many forks worked
FORKER = b"""#!/usr/bin/python3
import os, sys
n = int(sys.argv[1]) if len(sys.argv) > 1 else 0
r, w = os.pipe()
kids, failed = [], 0
for _ in range(n):
    try:
        pid = os.fork()
    except OSError:
        failed += 1
        continue
    if pid == 0:
        os.close(w)
        os.read(r, 1)
        os._exit(0)
    kids.append(pid)
os.close(w)
for k in kids:
    os.waitpid(k, 0)
print(f"forked {len(kids)} failed {failed}")
"""


def daemon():
    """An airlockd whose policy path holds runopts.policy, and the
    modules submitted under it."""
    pdir = tempfile.mkdtemp(prefix="airlock-runopts-")
    with open(os.path.join(pdir, "runopts.policy"), "w") as f:
        f.write(RUNOPTS_POLICY)
    d = Daemon(env={"AIRLOCK_POLICY_PATH":
                    pdir + ":" + test_daemon.SHIPPED_POLICIES})
    d.policy_dir = pdir
    for name, content in (("sleeper", SLEEPER), ("envdump", ENVDUMP),
                          ("hog", HOG), ("forker", FORKER)):
        r = d.submit(name, content, policy="runopts")
        check(r.get("ok"), f"submit {name}: {r}")
    return d


def finish(d):
    """Stop the daemon and check it ended cleanly: a sanitizer report
    (a leak in build-asan) ends it non-zero."""
    try:
        rc = d.stop()
        check_eq(rc, 0, "airlockd's exit status (a sanitizer report?)")
    finally:
        shutil.rmtree(d.policy_dir, ignore_errors=True)


def runs_of(d, name):
    r = d.request({"op": "runs", "name": name, "limit": 1000})
    check(r.get("ok"), f"runs {name}: {r}")
    return r["runs"]


def exec_ok(d, **req):
    r = d.request(dict({"op": "exec"}, **req))
    check(r.get("ok"), f"exec {req}: {r}")
    return r["result"]


def expect_refused(d, req, want, runs_before):
    """bad_request whose message contains `want`; nothing run or
    recorded; the daemon still answering."""
    r = d.request(dict({"op": "exec"}, **req) if isinstance(req, dict) else req)
    expect_error(r, "bad_request")
    check(want in r["error"]["message"],
          f"message {r['error']['message']!r} lacks {want!r}")
    check("result" not in r and "run" not in r, f"a refused request ran: {r}")
    for name, count in runs_before.items():
        check_eq(len(runs_of(d, name)), count, f"runs of {name} after a refusal")
    check(d.request({"op": "health"})["ok"], "daemon stopped answering")
    check(d.proc.poll() is None, "airlockd died")
    return r["error"]["message"]


def counts(d):
    return {n: len(runs_of(d, n)) for n in ("sleeper", "envdump", "hog", "forker")}


@test("timeout: a lower timeout ends a sleeping module there (verdict timeout, limits say so)")
def t_timeout():
    d = daemon()
    r = d.request({"op": "exec", "name": "sleeper", "args": ["30"],
                   "timeout": "500ms"})
    check(r.get("ok"), f"exec: {r}")
    res = r["result"]
    check_eq(res["verdict"], "timeout", "verdict")
    check_eq(res["limits"]["timeout_ms"], 500, "limits.timeout_ms")
    check(500 <= res["wall_ms"] < 4000, f"wall_ms {res['wall_ms']}: not ended at 500 ms")
    # the other limits are the policy's, under the policy's own hash
    check_eq(res["limits"]["memory_bytes"], 128 << 20, "limits.memory_bytes")
    check_eq(res["limits"]["pids"], 32, "limits.pids")
    check_eq(res["policy"], "runopts", "policy")
    check_eq(res["policy_hash"], r["module"]["policy_hash"], "policy_hash")
    rec = runs_of(d, "sleeper")[0]
    check_eq(rec["verdict"], "timeout", "recorded verdict")
    check_eq(rec["limits"], res["limits"], "recorded limits")
    check_eq(rec["policy_hash"], res["policy_hash"], "recorded policy_hash")
    # without the option the policy's 5s holds
    res = exec_ok(d, name="sleeper", args=["0.1"])
    check_eq((res["verdict"], res["limits"]["timeout_ms"]), ("ok", 5000), "no option")
    # the CLI: same option, the same answer, exit 124
    status, out, err = d.airlock("exec", "--timeout", "300ms", "sleeper", "30")
    check_eq(status, 124, f"airlock exec --timeout status (stderr {err!r})")
    check("(limit 300 ms)" in err, f"airlock exec explains the limit: {err!r}")
    status, out, _ = d.airlock("exec", "--json", "--timeout", "300ms", "sleeper", "30")
    check_eq(json.loads(out)["result"]["limits"]["timeout_ms"], 300, "--json limits")
    finish(d)


@test("memory: a lower limit turns a module that fits the policy into memory_limit")
def t_memory():
    d = daemon()
    res = exec_ok(d, name="hog", args=["48"])
    check_eq((res["verdict"], res["stdout"]), ("ok", "held 48\n"), "48 MiB under the policy's 128M")
    res = exec_ok(d, name="hog", args=["48"], memory="32M")
    check_eq(res["verdict"], "memory_limit", "48 MiB under a request's 32M")
    check_eq(res["limits"]["memory_bytes"], 32 << 20, "limits.memory_bytes")
    check(res["oom_kills"] >= 1, f"oom_kills {res['oom_kills']}")
    check_eq(runs_of(d, "hog")[0]["limits"],
             {"timeout_ms": 5000, "memory_bytes": 32 << 20, "pids": 32}, "recorded limits")
    status, _, err = d.airlock("exec", "--memory", "32M", "hog", "48")
    check_eq(status, 137, f"airlock exec --memory status (stderr {err!r})")
    finish(d)


@test("pids: a lower limit stops a fork loop the policy lets through")
def t_pids():
    d = daemon()
    res = exec_ok(d, name="forker", args=["20"])
    check_eq(res["stdout"], "forked 20 failed 0\n", "20 children under the policy's 32")
    res = exec_ok(d, name="forker", args=["20"], pids=4)
    check_eq(res["limits"]["pids"], 4, "limits.pids")
    check(res["stdout"].startswith("forked "), f"stdout {res['stdout']!r}")
    forked = int(res["stdout"].split()[1])
    check(forked <= 3, f"{forked} children alive under pids 4")
    check(res["pids_limit_hits"] >= 1, f"pids_limit_hits {res['pids_limit_hits']}")
    status, out, _ = d.airlock("exec", "--pids", "4", "forker", "20")
    check_eq(status, 0, "airlock exec --pids status")
    check(int(out.split()[1]) <= 3, f"airlock exec --pids 4: {out!r}")
    finish(d)


@test("ceilings: an option above the policy's is bad_request naming it; nothing is run or recorded")
def t_above_ceiling():
    d = daemon()
    before = counts(d)
    quota = d.request({"op": "quota_show"})
    msg = expect_refused(d, {"name": "sleeper", "timeout": "10s"},
                         "timeout 10s is above the policy's timeout 5s; "
                         "a request may only lower it", before)
    note(msg)
    expect_refused(d, {"name": "hog", "memory": "1G"},
                   "memory 1G is above the policy's memory 128 MiB", before)
    expect_refused(d, {"name": "forker", "pids": 33},
                   "pids 33 is above the policy's pids 32", before)
    # one good option does not carry a bad one
    expect_refused(d, {"name": "sleeper", "timeout": "1s", "pids": 1000},
                   "pids 1000 is above", before)
    check_eq(d.request({"op": "quota_show"}), quota, "quota after refusals")
    # the CLI says the same and runs nothing
    status, out, err = d.airlock("exec", "--timeout", "10s", "sleeper")
    check_eq(status, 125, "airlock exec above the ceiling")
    check("timeout 10s is above the policy's timeout 5s" in err, f"stderr {err!r}")
    check_eq(out, "", "stdout")
    check_eq(counts(d), before, "runs after the CLI's refusal")
    # submit's validation run takes none: held to the policy as it is
    r = d.submit("other", SLEEPER, policy="runopts", timeout="1s")
    expect_error(r, "bad_request")
    check("submit takes no per-run options" in r["error"]["message"], r["error"]["message"])
    expect_error(d.request({"op": "show", "name": "other"}), "not_found")
    status, _, err = d.airlock("submit", "/bin/true", "--timeout", "1s")
    check_eq(status, 125, f"airlock submit --timeout (stderr {err!r})")
    finish(d)


@test("env: a name request_env lists is seen by the module; any other is refused by name")
def t_env():
    d = daemon()
    res = exec_ok(d, name="envdump", env={"SEED": "42", "GREETING": "hi there"})
    first = res["stdout"].splitlines()[0]
    check(first.startswith("seed=42 greeting=hi there path=/"), f"stdout {first!r}")
    res = exec_ok(d, name="envdump")
    check(res["stdout"].startswith("seed=unset greeting=unset"), f"no env: {res['stdout']!r}")
    before = counts(d)
    msg = expect_refused(d, {"name": "envdump", "env": {"LD_PRELOAD": "/tmp/x.so"}},
                         "env LD_PRELOAD is not a name the policy lets a request set",
                         before)
    check("GREETING SEED" in msg, f"the allowed names are said: {msg!r}")
    # names the jail sets itself are not the request's unless listed
    for name in ("PATH", "HOME", "seed"):
        expect_refused(d, {"name": "envdump", "env": {name: "/x"}},
                       f"env {name} is not a name", before)
    # a module of a policy without request_env takes none at all
    check(d.submit("plain", ENVDUMP)["ok"], "submit plain")
    expect_refused(d, {"name": "plain", "env": {"SEED": "1"}},
                   "(its [runtime] request_env: none)", before)
    # the CLI
    status, out, err = d.airlock("exec", "--env", "SEED=7", "--env", "GREETING=a=b", "envdump")
    check_eq(status, 0, f"airlock exec --env (stderr {err!r})")
    check(out.startswith("seed=7 greeting=a=b path="), f"airlock exec --env: {out!r}")
    status, out, err = d.airlock("exec", "--env", "PATH=/evil", "envdump")
    check_eq(status, 125, "airlock exec --env PATH=")
    check("env PATH is not a name" in err, f"stderr {err!r}")
    status, _, err = d.airlock("exec", "--env", "SEED", "envdump")
    check_eq(status, 125, "--env without '='")
    check("expected NAME=value" in err, f"stderr {err!r}")
    check_eq(counts(d), dict(before, envdump=before["envdump"] + 1), "runs")
    finish(d)


@test("cwd: the module starts in the directory asked for; a missing one is a setup error naming it")
def t_cwd():
    d = daemon()
    res = exec_ok(d, name="envdump")
    check_eq(res["stdout"].splitlines()[1], "/tmp", "default cwd")
    res = exec_ok(d, name="envdump", cwd="/usr/lib")
    check_eq(res["stdout"].splitlines()[1], "/usr/lib", "cwd /usr/lib")
    res = exec_ok(d, name="envdump", cwd="/nonexistent/dir")
    check_eq(res["verdict"], "setup_error", "a cwd the jail lacks")
    check("cwd /nonexistent/dir" in res["error"] and "No such file" in res["error"],
          f"error {res['error']!r}")
    check_eq(runs_of(d, "envdump")[0]["verdict"], "setup_error", "recorded")
    # the host's directories are not the jail's
    res = exec_ok(d, name="envdump", cwd=d.tmp)
    check_eq(res["verdict"], "setup_error", f"the host's {d.tmp}")
    status, out, err = d.airlock("exec", "--cwd", "/usr", "envdump")
    check_eq((status, out.splitlines()[1]), (0, "/usr"), f"airlock exec --cwd (stderr {err!r})")
    status, _, err = d.airlock("exec", "--cwd", "usr", "envdump")
    check_eq(status, 125, "airlock exec --cwd relative")
    check("not an absolute path" in err, f"stderr {err!r}")
    finish(d)


@test("hostile values: huge env, 10,000 vars, NUL, non-strings, ../.., negative pids, 1e99s: clear errors, daemon alive")
def t_hostile():
    d = daemon()
    before = counts(d)
    many = {f"V{i}": "x" for i in range(10000)}
    cases = [
        ({"name": "envdump", "env": {"SEED": "x" * 5000}},
         "the value of SEED is longer than 4096 bytes"),
        ({"name": "envdump", "env": {"SEED": "x" * (1 << 20)}},
         "the value of SEED is longer than 4096 bytes"),
        ({"name": "envdump", "env": many}, "too many"),
        ({"name": "envdump", "env": {f"V{i}": "x" for i in range(65)}},
         "65 variables; at most 64"),
        ({"name": "envdump", "env": {"SEED": "a\u0000b"}}, "contains a NUL character"),
        ({"name": "envdump", "env": {"SE\u0000ED": "a"}}, "is not a variable name"),
        ({"name": "envdump", "env": {"1SEED": "a"}}, "is not a variable name"),
        ({"name": "envdump", "env": {"SEED": 1}}, "the value of SEED is not a string"),
        ({"name": "envdump", "env": {"SEED": ["a"]}}, "the value of SEED is not a string"),
        ({"name": "envdump", "env": ["SEED=1"]}, "expected an object"),
        ({"name": "envdump", "cwd": "../.."}, "member \"cwd\": not an absolute path"),
        ({"name": "envdump", "cwd": "/tmp/../../etc"}, "not a plain absolute path"),
        ({"name": "envdump", "cwd": "/" + "d" * 5000}, "member \"cwd\": too long"),
        ({"name": "envdump", "cwd": "/tmp\u0000/x"}, "contains a NUL character"),
        ({"name": "envdump", "cwd": 5}, "expected a string"),
        ({"name": "forker", "pids": -1}, "member \"pids\": expected a whole number"),
        ({"name": "forker", "pids": 0}, "pids 0 is below the least a run can have"),
        ({"name": "forker", "pids": 1e99}, "member \"pids\": expected a whole number"),
        ({"name": "forker", "pids": "4"}, "member \"pids\": expected a whole number"),
        ({"name": "sleeper", "timeout": "1e99s"}, "timeout: invalid duration"),
        ({"name": "sleeper", "timeout": "5"}, "a number needs a unit"),
        ({"name": "sleeper", "timeout": 5}, "expected a duration string"),
        ({"name": "sleeper", "timeout": "-1s"}, "timeout: invalid duration"),
        ({"name": "sleeper", "timeout": "0"}, "below the least a run can have"),
        ({"name": "hog", "memory": "99999999999999T"}, "memory: "),
        ({"name": "hog", "memory": 1 << 20}, "expected a size string"),
    ]
    with d.connect() as c:
        for req, want in cases:
            r = c.request(dict({"op": "exec"}, **req))
            expect_error(r, "bad_request")
            check(want in r["error"]["message"],
                  f"{str(req)[:80]}: {r['error']['message'][:200]!r} lacks {want!r}")
        # the same connection still serves
        check(c.request({"op": "health"})["ok"], "connection unusable after errors")
    check_eq(counts(d), before, "runs after hostile requests")
    check(d.proc.poll() is None, "airlockd died")
    # and a good request after them all is run as asked
    res = exec_ok(d, name="envdump", env={"SEED": "ok"}, cwd="/usr")
    check_eq(res["stdout"].splitlines(), ["seed=ok greeting=unset path=/usr/local/bin:/usr/bin:/bin",
                                          "/usr"], "a good request after the hostile ones")
    # the CLI's own refusals
    for args, want in ((["--pids", "-1"], "--pids"), (["--pids", "x"], "--pids"),
                       (["--timeout", "1e99s"], "invalid duration"),
                       (["--env", "=x"], "expected NAME=value")):
        status, _, err = d.airlock("exec", *args, "sleeper")
        check_eq(status, 125, f"airlock exec {args}")
        check(want in err, f"airlock exec {args}: {err!r}")
    finish(d)


@test("tenants: another owner's module answers not_found whatever the options; its policy's ceilings and names stay unsaid")
def t_tenant():
    d = daemon()
    d.stop()
    d.args = ["--allow-uid", str(test_daemon.NOBODY)]
    d.start()
    os.chmod(d.sock, 0o666)
    before = counts(d)
    probes = [{"timeout": "10s"}, {"env": {"LD_PRELOAD": "x"}}, {"pids": 1000},
              {"env": {"SEED": "1"}, "cwd": "/usr"}]
    for opts in probes:
        theirs, nobodys = as_user(d.sock, test_daemon.NOBODY, test_daemon.NOBODY, [
            dict({"op": "exec", "name": "envdump"}, **opts),
            dict({"op": "exec", "name": "no-such-module"}, **opts)])
        expect_error(theirs, "not_found")
        check_eq(theirs["error"]["message"].replace("envdump", "NAME"),
                 nobodys["error"]["message"].replace("no-such-module", "NAME"),
                 f"another's module and no module at all, with {opts}")
        for word in ("SEED", "GREETING", "5s", "32", "request_env"):
            check(word not in theirs["error"]["message"],
                  f"{word} told to another tenant: {theirs['error']['message']!r}")
    check_eq(counts(d), before, "runs after another tenant's requests")
    finish(d)


def airlock_run(*args):
    p = subprocess.run([test_daemon.AIRLOCK, "run"] + list(args), capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=test_daemon.WAIT)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


@test("airlock run: --env and --cwd in exec's words; inputs of the run, so the hash stays")
def t_run_env_cwd():
    script = ["--", "/bin/sh", "-c", 'echo "$FOO|$HOME"; pwd']
    status, out, err = airlock_run("--json", *script)
    check_eq(status, 0, f"plain run (stderr {err!r})")
    plain = json.loads(out)
    status, out, err = airlock_run("--json", "--env", "FOO=a=b", "--env", "HOME=/usr",
                                   "--cwd", "/usr/lib", *script)
    check_eq(status, 0, f"run --env --cwd (stderr {err!r})")
    r = json.loads(out)
    check_eq(r["stdout"], "a=b|/usr\n/usr/lib\n", "the module's view")
    check_eq(r["policy_hash"], plain["policy_hash"], "policy_hash")
    check_eq(plain["stdout"], "|/tmp\n/tmp\n", "without them")
    status, out, _ = airlock_run("--json", "--cwd", "/nonexistent", "--", "/bin/true")
    r = json.loads(out)
    check_eq((status, r["verdict"]), (125, "setup_error"), "a cwd the jail lacks")
    check("cwd /nonexistent" in r["error"], f"error {r['error']!r}")
    for args, want in ((["--cwd", "../.."], "cwd: not an absolute path"),
                       (["--cwd", "/tmp/../etc"], "cwd: not a plain absolute path"),
                       (["--env", "1X=2"], "env: \"1X\" is not a plain variable name"),
                       (["--env", "NOEQUALS"], "--env NOEQUALS: expected NAME=value"),
                       (["--env", "X=" + "v" * 5000], "the value of X is longer than 4096 bytes")):
        status, out, err = airlock_run(*args, "--", "/bin/true")
        check_eq(status, 125, f"airlock run {args[0]} {args[1][:20]}")
        check(want in err, f"airlock run {args[0]} {args[1][:20]}: {err!r}")
        check_eq(out, "", "stdout of a refused run")


def main(argv):
    # a leak found at airlockd's exit must end it non-zero
    os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=1:exitcode=99")
    return harness.main(argv, test_daemon.configure,
                        report=test_daemon.report_failure,
                        after_test=test_daemon.stop_daemons,
                        root_reason="airlockd builds jails only as root")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
