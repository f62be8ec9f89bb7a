#!/usr/bin/env python3
"""Integration tests for module versions (issue 14, item 3): rollback to
the good version before the active one, restore of a given version, and
`show` listing every version with its state, hash and runs. Each test
starts a real airlockd (test_daemon.py's fixture) and drives it through
the socket and through the airlock command line.

    python3 tests/integration/test_versions.py BUILD_DIR [WORD...]

Python 3 standard library only.
"""

import json
import os
import socket
import sys

import harness
from harness import Failure, check, check_eq, note, test

import test_daemon
from test_daemon import Daemon, NOBODY, as_user, expect_error, wait_for, WAIT

del harness.TESTS[:]


def version_script(n, extra=b""):
    """A module that says which version it is (after sleeping $1 s)."""
    return (b"#!/bin/sh\nsleep \"${1:-0}\"\necho v%d\n" % n) + extra


# fine, unless given "crash": then killed by its own SIGSEGV
def crasher(n):
    return (b"#!/bin/sh\nif [ \"$1\" = crash ]; then kill -SEGV $$; fi\n"
            b"echo v%d\n" % n)


def submit_versions(d, name, count, make=version_script):
    for n in range(1, count + 1):
        r = d.submit(name, make(n))
        check(r.get("ok"), f"submit v{n}: {r}")
        check_eq(r["module"]["version"], n, "version number")


def versions(d, name):
    """{version: its object} from show's "versions"."""
    r = d.request({"op": "show", "name": name})
    check(r.get("ok"), f"show: {r}")
    return {v["version"]: v for v in r["versions"]}


def states(d, name):
    return {n: v["state"] for n, v in versions(d, name).items()}


def events(d, name):
    r = d.request({"op": "events", "limit": 1000})
    check(r.get("ok"), f"events: {r}")
    return [e for e in r["events"] if e.get("module") == name]


def exec_out(d, name, *args):
    r = d.request({"op": "exec", "name": name, "args": list(args)})
    check(r.get("ok"), f"exec {name}: {r}")
    return r["result"]["stdout"]


def cli_show(d, name):
    """`airlock show NAME --json` on the daemon's state directory (the
    command reads the manifest itself)."""
    status, out, err = d.airlock("show", name, "--json", "--state-dir",
                                 d.state, check_status=0)
    return json.loads(out)


# =================================================================== tests

@test("rollback: v3 -> v2 (v3 archived with the reason); exec runs v2; show lists every version")
def t_rollback():
    d = Daemon()
    submit_versions(d, "greet", 3)
    check_eq(exec_out(d, "greet"), "v3\n", "v3 runs before the rollback")
    r = d.request({"op": "rollback", "name": "greet", "id": "rb"})
    check(r.get("ok"), f"rollback: {r}")
    check_eq(r.get("id"), "rb", "echoed id")
    check_eq((r["module"]["version"], r["module"]["state"]), (2, "active"),
             "the answer's module")
    v = versions(d, "greet")
    check_eq({n: x["state"] for n, x in v.items()},
             {1: "archived", 2: "active", 3: "archived"}, "states")
    check_eq(v[3]["reason"], "rolled back to v2 by uid 0", "v3's reason")
    check_eq(v[3]["archive_cause"], "rolled_back", "v3's cause")
    check_eq(v[3]["good"], False, "v3 is not good")
    check_eq(v[1]["good"], True, "v1 (superseded) is good")
    check_eq(exec_out(d, "greet"), "v2\n", "exec after the rollback")
    # the files followed the rows
    check(os.path.exists(os.path.join(d.state, "modules", v[2]["sha256"])),
          "v2's file is not in modules/")
    check(os.path.exists(os.path.join(d.state, "archive", v[3]["sha256"])),
          "v3's file is not in archive/")
    # every version: number, state, sha256, created, last verdict, runs
    for n, x in v.items():
        for key in ("sha256", "created", "last_verdict", "runs_total",
                    "run_counts"):
            check(key in x, f"version {n} has no {key!r}: {x}")
        check_eq(len(x["sha256"]), 64, "sha256")
    check_eq(v[3]["runs_total"], 2, "v3's runs (validation + one exec)")
    check_eq(v[3]["run_counts"], {"ok": 2}, "v3's run counts")
    check_eq(v[2]["run_counts"], {"ok": 1}, "v2's run counts (its validation)")
    check_eq(v[2]["last_verdict"], "ok", "v2's last verdict")
    # the trail: v3 archived, v2 restored, each with its reason
    ev = events(d, "greet")
    check(any(e["kind"] == "archived" and e["version"] == 3 and
              e["detail"] == "rolled back to v2 by uid 0" for e in ev),
          f"no archived event of v3: {ev[-4:]}")
    check(any(e["kind"] == "restored" and e["version"] == 2 and
              e["detail"] == "rollback from v3 by uid 0" for e in ev),
          f"no restored event of v2: {ev[-4:]}")
    # the command line: the CLI rolls back once more, to v1
    status, out, err = d.airlock("rollback", "greet", "--json", check_status=0)
    r = json.loads(out)
    check_eq((r["ok"], r["module"]["version"], r["module"]["state"]),
             (True, 1, "active"), "airlock rollback --json")
    check_eq(exec_out(d, "greet"), "v1\n", "exec after the second rollback")
    shown = cli_show(d, "greet")
    got = {x["version"]: (x["state"], x["archive_cause"]) for x in shown["versions"]}
    check_eq(got, {1: ("active", None), 2: ("archived", "rolled_back"),
                   3: ("archived", "rolled_back")}, "airlock show --json")
    check_eq(shown["versions"][0]["runs_total"], 2, "v1's runs in airlock show (validation, exec)")
    status, out, err = d.airlock("show", "greet", "--state-dir", d.state,
                                 check_status=0)
    check("VERDICTS" in out and "rolled back to v1 by uid 0" in out,
          f"airlock show's versions table: {out!r}")


@test("rollback: nothing older and good -> conflict, nothing changed (show, events, files)")
def t_rollback_nothing_older():
    d = Daemon()
    submit_versions(d, "solo", 1)
    before_v, before_e = versions(d, "solo"), events(d, "solo")
    before_files = sorted(os.listdir(os.path.join(d.state, "modules")))
    r = d.request({"op": "rollback", "name": "solo"})
    expect_error(r, "conflict")
    check("no good version older than version 1" in r["error"]["message"],
          r["error"]["message"])
    status, out, err = d.airlock("rollback", "solo")
    check(status == 1 and "no good version older" in err,
          f"airlock rollback: {status} {err!r}")
    check_eq(versions(d, "solo"), before_v, "show after the refused rollback")
    check_eq(events(d, "solo"), before_e, "events after the refused rollback")
    check_eq(sorted(os.listdir(os.path.join(d.state, "modules"))),
             before_files, "modules/ after the refused rollback")
    check_eq(exec_out(d, "solo"), "v1\n", "v1 still runs")
    # a name nobody uses
    expect_error(d.request({"op": "rollback", "name": "nosuch"}), "not_found")
    # a name whose only version was rejected: never active
    r = d.submit("bad", b"#!/bin/sh\nexit 3\n")
    expect_error(r, "rejected")
    r = d.request({"op": "rollback", "name": "bad"})
    expect_error(r, "conflict")
    check("no version of it was ever active" in r["error"]["message"], r["error"]["message"])


@test("restore --version: a given version becomes active (the active one archived)")
def t_restore_version():
    d = Daemon()
    submit_versions(d, "pick", 3)
    r = d.request({"op": "restore", "name": "pick", "version": 1})
    check(r.get("ok"), f"restore version 1: {r}")
    check_eq((r["module"]["version"], r["module"]["state"]), (1, "active"),
             "the answer's module")
    v = versions(d, "pick")
    check_eq(v[3]["state"], "archived", "v3")
    check_eq(v[3]["reason"], "superseded by the restore of version 1", "v3's reason")
    check_eq(v[3]["good"], True, "v3, superseded, is good")
    check_eq(exec_out(d, "pick"), "v1\n", "exec after restore --version 1")
    status, out, err = d.airlock("restore", "pick", "--version", "2", check_status=0)
    check("pick version 2: active" in out, f"airlock restore printed {out!r}")
    check_eq(exec_out(d, "pick"), "v2\n", "exec after restore --version 2")
    # an active, unknown or rejected version cannot be restored
    expect_error(d.request({"op": "restore", "name": "pick", "version": 2}), "conflict")
    expect_error(d.request({"op": "restore", "name": "pick", "version": 9}), "not_found")
    check_eq(states(d, "pick"), {1: "archived", 2: "active", 3: "archived"},
             "states after the refused restores")
    # without --version: today's rule, refused while a version is active
    r = d.request({"op": "restore", "name": "pick"})
    expect_error(r, "conflict")
    check("archive it first" in r["error"]["message"], r["error"]["message"])


@test("archive v3, restore --version 2: v2 comes back, not v3")
def t_archive_then_restore_older():
    d = Daemon()
    submit_versions(d, "arc", 3)
    check(d.request({"op": "archive", "name": "arc"}).get("ok"), "archive v3")
    check_eq(states(d, "arc"), {1: "archived", 2: "archived", 3: "archived"},
             "all archived")
    r = d.request({"op": "restore", "name": "arc", "version": 2})
    check(r.get("ok"), f"restore version 2: {r}")
    check_eq(states(d, "arc"), {1: "archived", 2: "active", 3: "archived"},
             "v2 active, v3 still archived")
    check_eq(exec_out(d, "arc"), "v2\n", "exec runs v2")
    # and with no version active, rollback goes back from the one that
    # was active last (v2 here), not from the newest
    check(d.request({"op": "archive", "name": "arc"}).get("ok"), "archive v2")
    r = d.request({"op": "rollback", "name": "arc"})
    check(r.get("ok"), f"rollback with none active: {r}")
    check_eq(r["module"]["version"], 1, "rollback from the last active (v2)")
    check_eq(exec_out(d, "arc"), "v1\n", "exec runs v1")


@test("rollback: an auto-archived (crashing) version is never good")
def t_crashed_never_good():
    d = Daemon()
    submit_versions(d, "crash", 2, make=crasher)
    r = d.request({"op": "exec", "name": "crash", "args": ["crash"]})
    check(r.get("ok") and r["archived"], f"v2 was not auto-archived: {r}")
    v = versions(d, "crash")
    check_eq((v[2]["archive_cause"], v[2]["good"]), ("auto_archived", False),
             "v2's cause")
    check_eq(v[2]["last_verdict"], "crashed", "v2's last verdict")
    check_eq(v[2]["run_counts"], {"crashed": 1, "ok": 1}, "v2's run counts")
    r = d.submit("crash", crasher(3))
    check(r.get("ok"), f"submit v3: {r}")
    r = d.request({"op": "rollback", "name": "crash"})
    check(r.get("ok"), f"rollback: {r}")
    check_eq(r["module"]["version"], 1, "rollback skipped the crashed v2")
    check_eq(states(d, "crash"), {1: "active", 2: "archived", 3: "archived"},
             "states")
    # with none active, from the crashed version: the good one before it
    d2 = Daemon()
    submit_versions(d2, "c2", 2, make=crasher)
    r = d2.request({"op": "exec", "name": "c2", "args": ["crash"]})
    check(r.get("ok") and r["archived"], f"v2 was not auto-archived: {r}")
    r = d2.request({"op": "rollback", "name": "c2"})
    check(r.get("ok"), f"rollback with none active: {r}")
    check_eq(r["module"]["version"], 1, "back from the crashed v2 to v1")
    check_eq(exec_out(d2, "c2"), "v1\n", "exec runs v1")
    # and rolling back from v1 now: v2 is newer and crashed anyway
    expect_error(d2.request({"op": "rollback", "name": "c2"}), "conflict")


@test("tenants: another uid's rollback and restore answer not_found, nothing changed")
def t_other_owner():
    d = Daemon(args=["--allow-uid", str(NOBODY)])
    os.chmod(d.sock, 0o666)
    submit_versions(d, "mine", 2)
    before = versions(d, "mine")
    r = as_user(d.sock, NOBODY, NOBODY, [
        {"op": "rollback", "name": "mine"},
        {"op": "restore", "name": "mine", "version": 1},
        {"op": "rollback", "name": "nosuch"},
        {"op": "show", "name": "mine"},
    ])
    for got in r:
        expect_error(got, "not_found")
    # the same answer as for a name nobody uses
    check_eq(r[0]["error"]["message"].replace("mine", "X"),
             r[2]["error"]["message"].replace("nosuch", "X"),
             "another's module answers like a missing one")
    check_eq(versions(d, "mine"), before, "nothing changed")
    check_eq(exec_out(d, "mine"), "v2\n", "v2 still runs")


@test("hostile input: version 0, -1, 2^63, a string, a float; no name -> bad_request, nothing changed")
def t_hostile_versions():
    d = Daemon()
    submit_versions(d, "h", 2)
    check(d.request({"op": "archive", "name": "h"}).get("ok"), "archive v2")
    before_v, before_e = versions(d, "h"), events(d, "h")
    with d.connect() as c:
        for bad in (0, -1, 2 ** 63, 2 ** 64, "1", 1.5, True, None, [1]):
            r = c.request({"op": "restore", "name": "h", "version": bad})
            expect_error(r, "bad_request")
            check("version" in r["error"]["message"],
                  f"version {bad!r}: {r['error']['message']}")
        for op in ("rollback", "restore"):
            expect_error(c.request({"op": op}), "bad_request")
            expect_error(c.request({"op": op, "name": 7}), "bad_request")
            expect_error(c.request({"op": op, "name": "h", "bogus": 1}),
                         "bad_request")
        # raw text: the number too large for any integer
        c.send_raw(b'{"op":"restore","name":"h","version":99999999999999999999999}\n')
        expect_error(c.recv(), "bad_request")
        # the connection still works
        check(c.request({"op": "health"}).get("ok"), "health after bad input")
    for bad in ("0", "-1", "9223372036854775808", "two", "1x", ""):
        status, out, err = d.airlock("restore", "h", "--version", bad)
        check_eq(status, 125, f"airlock restore --version {bad!r} exit status")
        check("--version" in err, f"--version {bad!r}: {err!r}")
    status, out, err = d.airlock("rollback", "h", "--version", "1")
    check_eq(status, 125, "airlock rollback --version")
    check_eq(versions(d, "h"), before_v, "show after the bad requests")
    check_eq(events(d, "h"), before_e, "events after the bad requests")


@test("race: an exec queued before a rollback runs the new active version, never the archived one")
def t_exec_racing_rollback():
    d = Daemon(args=["--max-active", "1"])
    submit_versions(d, "race", 3)
    with d.connect() as c:
        c.send({"op": "exec", "id": "busy", "name": "race", "args": ["1"]})
        wait_for(lambda: d.request({"op": "status"})["active_runs"] == 1,
                 "the first run to start")
        c.send({"op": "exec", "id": "queued", "name": "race", "args": ["0"]})
        wait_for(lambda: d.request({"op": "status"})["queue_depth"] == 1,
                 "the second run to queue")
        r = d.request({"op": "rollback", "name": "race"})
        check(r.get("ok"), f"rollback: {r}")
        got = {}
        for _ in range(2):
            x = c.recv()
            got[x["id"]] = x
    check(got["busy"].get("ok"), f"the running run: {got['busy']}")
    check_eq(got["busy"]["result"]["stdout"], "v3\n",
             "the run that had started finishes as v3")
    check(got["queued"].get("ok"), f"the queued run: {got['queued']}")
    check_eq(got["queued"]["result"]["stdout"], "v2\n",
             "the queued run runs v2, the version active when it started")
    check_eq(got["queued"]["module"]["version"], 2, "its module")
    # and one queued before an archive (none active): archived, not run
    with d.connect() as c:
        c.send({"op": "exec", "id": "busy", "name": "race", "args": ["1"]})
        wait_for(lambda: d.request({"op": "status"})["active_runs"] == 1,
                 "the first run to start")
        c.send({"op": "exec", "id": "queued", "name": "race", "args": ["0"]})
        wait_for(lambda: d.request({"op": "status"})["queue_depth"] == 1,
                 "the second run to queue")
        check(d.request({"op": "archive", "name": "race"}).get("ok"), "archive")
        got = {}
        for _ in range(2):
            x = c.recv()
            got[x["id"]] = x
    expect_error(got["queued"], "archived")
    runs = d.request({"op": "runs", "name": "race", "limit": 100})["runs"]
    check(all(not (r["version"] == 2 and r["started_ms"] > 0 and
                   r["verdict"] == "setup_error") for r in runs),
          "a setup_error run was recorded for the archived version")


@test("a run whose version is archived while its jail is built still runs (its file is pinned)")
def t_pinned_while_starting():
    # init opens the module file again by its path, in its own mount
    # namespace, after airlockd checked it: an archive in between moved
    # modules/<sha256> away and the run failed to start (setup_error)
    d = Daemon()
    submit_versions(d, "pin", 1)
    failed, ran = [], 0
    for _ in range(40):
        with d.connect() as c:
            c.send({"op": "exec", "id": "x", "name": "pin"})
            d.request({"op": "archive", "name": "pin"})
            x = c.recv()
        check(d.request({"op": "restore", "name": "pin"}).get("ok"), "restore")
        if x.get("ok"):
            ran += 1
            if x["result"]["verdict"] != "ok":
                failed.append(x["result"].get("error") or x["result"]["verdict"])
    note(f"{ran} of 40 execs started before their archive")
    check(not failed, f"runs that failed to start: {failed[:3]}")
    check(not os.listdir(os.path.join(d.state, "running")), "pins left behind")


def main(argv):
    return harness.main(argv, test_daemon.configure,
                        report=test_daemon.report_failure,
                        after_test=test_daemon.stop_daemons_checked,
                        root_reason="airlockd builds jails only as root")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
