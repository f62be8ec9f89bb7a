#!/usr/bin/env python3
"""Integration tests for `airlock languages` and the `languages` op (issue
14, item 5): each policy the daemon accepts, its interpreter and the
version its [policy] version_command prints inside that policy's jail.
Real airlockd (test_daemon.py's fixture), real jails, the host's own
interpreters to compare with.

    python3 tests/integration/test_languages.py BUILD_DIR [WORD...]

Python 3 standard library only.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import harness
from harness import Failure, check, check_eq, note, test

import test_daemon
from test_daemon import (Daemon, NOBODY, SHIPPED_POLICIES, as_user,
                         expect_error, jail_processes, wait_for, WAIT)

del harness.TESTS[:]

PROBE_CAP_S = 5  # SANDBOX_PROBE_TIMEOUT_MS


def host_version(*cmd):
    """The first line the host's own program prints: the jail binds the
    host's /usr read-only, so the two must agree."""
    p = subprocess.run(list(cmd), capture_output=True, timeout=WAIT)
    out = (p.stdout or p.stderr).decode()
    return out.splitlines()[0].strip()


def by_policy(answer):
    check(answer.get("ok"), f"languages: {answer}")
    return {e["policy"]: e for e in answer["languages"]}


class Policies:
    """A root-owned policy directory: the shipped policies plus test ones,
    given to the daemon as AIRLOCK_POLICY_PATH."""

    def __init__(self, **extra):
        self.dir = tempfile.mkdtemp(prefix="airlock-lang-policies-")
        os.chmod(self.dir, 0o755)
        for name in os.listdir(SHIPPED_POLICIES):
            shutil.copy(os.path.join(SHIPPED_POLICIES, name), self.dir)
        for name, text in extra.items():
            with open(os.path.join(self.dir, name + ".policy"), "w") as f:
                f.write(text)

    def daemon(self, **kw):
        return Daemon(env={"AIRLOCK_POLICY_PATH": self.dir}, **kw)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


MISSING = """[policy]
description = an interpreter this host does not have
version_command = airlock-no-such-interpreter --version
"""

HANGS = """[policy]
description = a version command that never ends
version_command = sleep 60
[limits]
timeout = 60s
"""

# /usr/bin/env: a program that is there, running one that is not
ENV_MISSING = """[policy]
version_command = /usr/bin/env airlock-no-such-interpreter
"""


# =================================================================== tests

@test("languages: python, node, shell and c show the version the host's interpreters print")
def t_versions():
    d = Daemon()
    r = d.request({"op": "languages", "id": "l1"})
    check_eq(r.get("id"), "l1", "echoed id")
    got = by_policy(r)
    expect = {
        "python": ("python3", host_version("/usr/bin/python3", "--version")),
        "node": ("node", host_version("/usr/bin/node", "--version")),
        "shell": ("bash", host_version("/usr/bin/bash", "--version")),
        "c": ("gcc", host_version("/usr/bin/gcc", "--version")),
    }
    for policy, (interp, version) in expect.items():
        e = got.get(policy)
        check(e, f"no entry for {policy}: {sorted(got)}")
        check_eq((e["interpreter"], e["status"], e["version"]),
                 (interp, "ok", version), f"{policy}'s entry")
        check_eq(e["detail"], None, f"{policy}'s detail")
        note(f"{policy}: {version}")
    for policy in ("default", "strict"):
        check_eq((got[policy]["status"], got[policy]["interpreter"],
                  got[policy]["version"]), ("none", None, None),
                 f"{policy}: no interpreter")
    check_eq(r["truncated"], False, "truncated")
    # the command line prints the same, as a table and as JSON
    status, out, err = d.airlock("languages", check_status=0)
    check(expect["python"][1] in out and "POLICY" in out,
          f"airlock languages printed {out!r}")
    status, out, err = d.airlock("languages", "--json", check_status=0)
    cli = json.loads(out)
    check("local" not in cli, f"airlockd answered, not a local probe: {cli}")
    check_eq(by_policy(cli), got, "airlock languages --json")


@test("languages: a missing interpreter says not installed; a hanging command is cut off")
def t_missing_and_hang():
    pol = Policies(missing=MISSING, hangs=HANGS, envmissing=ENV_MISSING)
    try:
        d = pol.daemon()
        start = time.monotonic()
        r = d.request({"op": "languages"})
        took = time.monotonic() - start
        got = by_policy(r)
        check_eq((got["missing"]["status"], got["missing"]["version"],
                  got["missing"]["detail"]),
                 ("not_installed", None, "not installed"), "missing")
        check_eq(got["missing"]["interpreter"], "airlock-no-such-interpreter",
                 "missing's interpreter")
        check_eq(got["envmissing"]["status"], "not_installed",
                 "a program the jail has, exiting 127")
        check_eq(got["hangs"]["status"], "timeout", "hangs")
        check(got["hangs"]["detail"].startswith("cut off after"),
              got["hangs"]["detail"])
        check(took < PROBE_CAP_S + 10,
              f"the answer took {took:.1f} s: the hang was not cut off at "
              f"{PROBE_CAP_S} s")
        check(took >= PROBE_CAP_S - 0.5,
              f"the answer took {took:.1f} s: the hang was not waited for")
        check_eq(got["python"]["status"], "ok", "python beside them")
        check_eq(jail_processes([d.proc.pid]), [], "jails left behind")
        # kept: asked again, answered at once, no probe run again
        start = time.monotonic()
        again = by_policy(d.request({"op": "languages"}))
        check(time.monotonic() - start < PROBE_CAP_S - 1,
              "the second answer was not the kept one")
        check_eq(again, got, "the kept answer")
        wait_for(lambda: any("languages: sleep 60:" in l for l in d.log),
                 "the probe's log line")
        probes = [l for l in d.log if "languages: sleep 60:" in l]
        check_eq(len(probes), 1, f"probes of hangs: {probes}")
        status, out, err = d.airlock("languages", check_status=0)
        check("not installed" in out and "timeout: cut off" in out,
              f"airlock languages printed {out!r}")
    finally:
        pol.cleanup()


@test("languages: clients asking at once share the probes; one that leaves does not disturb the rest")
def t_concurrent():
    pol = Policies(hangs=HANGS)
    try:
        d = pol.daemon()
        with d.connect() as a, d.connect() as b:
            gone = d.connect()
            a.send({"op": "languages", "id": "a"})
            b.send({"op": "languages", "id": "b"})
            gone.send({"op": "languages", "id": "gone"})
            # gone leaves with its answer pending
            gone.sock.close()
            ra, rb = a.recv(), b.recv()
        check_eq((ra["id"], rb["id"]), ("a", "b"), "ids")
        check_eq(by_policy(ra), by_policy(rb), "the same answer")
        check_eq(by_policy(ra)["hangs"]["status"], "timeout", "hangs")
        # the log line is written before the answers; its reader thread
        # may be behind
        wait_for(lambda: any("languages: sleep 60:" in l for l in d.log),
                 "the probe's log line")
        probes = [l for l in d.log if "languages: sleep 60:" in l]
        check_eq(len(probes), 1, f"one probe shared by three requests: {probes}")
        check(d.request({"op": "health"}).get("ok"), "health after")
    finally:
        pol.cleanup()


@test("languages: airlockd stopping while a probe hangs kills it and stops at once")
def t_stop_during_probe():
    pol = Policies(hangs=HANGS)
    try:
        d = pol.daemon()
        c = d.connect()
        c.send({"op": "languages"})
        wait_for(lambda: jail_processes([d.proc.pid]), "the probes' jails")
        start = time.monotonic()
        check_eq(d.stop(), 0, "airlockd's exit status")
        check(time.monotonic() - start < PROBE_CAP_S,
              "airlockd waited for the hanging probe")
        check_eq(jail_processes([d.proc.pid]), [], "jails left behind")
        c.sock.close()
    finally:
        pol.cleanup()


@test("languages: any client may ask; bad requests are refused; an unlisted uid is unauthorized")
def t_roles_and_bad_input():
    d = Daemon(args=["--allow-uid", str(NOBODY)])
    os.chmod(d.sock, 0o666)
    r = as_user(d.sock, NOBODY, NOBODY, [{"op": "languages"},
                                         {"op": "languages", "bogus": 1},
                                         {"op": "languages", "name": 5}])
    check_eq(by_policy(r[0])["python"]["status"], "ok", "a client's answer")
    expect_error(r[1], "bad_request")
    expect_error(r[2], "bad_request")
    d.stop()
    d.args = []
    d.start()
    os.chmod(d.sock, 0o666)
    r = as_user(d.sock, NOBODY, NOBODY, [{"op": "languages"}])
    expect_error(r[0], "unauthorized")


@test("airlock languages without a daemon probes the policies itself")
def t_cli_local():
    env = dict(os.environ, AIRLOCK_SOCKET="/nonexistent/airlock.sock",
               AIRLOCK_POLICY_PATH=SHIPPED_POLICIES)
    p = subprocess.run([test_daemon.AIRLOCK, "languages", "--json"],
                       capture_output=True, timeout=WAIT * 2, env=env,
                       stdin=subprocess.DEVNULL)
    check_eq(p.returncode, 0, f"exit status (stderr {p.stderr[-300:]!r})")
    r = json.loads(p.stdout)
    check_eq(r.get("local"), True, "probed locally")
    got = by_policy(r)
    check_eq(got["python"]["version"],
             host_version("/usr/bin/python3", "--version"), "python")
    check_eq(got["node"]["version"],
             host_version("/usr/bin/node", "--version"), "node")
    p = subprocess.run([test_daemon.AIRLOCK, "languages", "--local"],
                       capture_output=True, timeout=WAIT * 2, env=env,
                       stdin=subprocess.DEVNULL)
    check_eq(p.returncode, 0, "--local exit status")
    check(b"probed here" in p.stdout, f"--local printed {p.stdout!r}")
    for bad in (["--bogus"], ["extra"], ["--socket"]):
        p = subprocess.run([test_daemon.AIRLOCK, "languages"] + bad,
                           capture_output=True, timeout=WAIT, env=env,
                           stdin=subprocess.DEVNULL)
        check_eq(p.returncode, 125, f"airlock languages {bad}")


def main(argv):
    return harness.main(argv, test_daemon.configure,
                        report=test_daemon.report_failure,
                        after_test=test_daemon.stop_daemons_checked,
                        root_reason="airlockd builds jails only as root")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
