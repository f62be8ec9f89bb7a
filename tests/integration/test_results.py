#!/usr/bin/env python3
"""Integration tests for results that outlive the connection (issue 14,
item 2): exec with "wait": false, the wait and result ops, the output the
manifest keeps (bounded, compressed when that pays, gone with its run),
and the airlock exec --detach / result / wait commands.

    python3 tests/integration/test_results.py BUILD_DIR [WORD...]

Python 3 standard library only.
"""

import base64
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

import harness
from harness import Failure, check, check_eq, test

import test_daemon
import test_metrics
import test_tenants
import test_postgres
from test_daemon import Daemon, as_user, expect_error, wait_for, WAIT
from test_tenants import Users

del harness.TESTS[:]

# sleeps a little so that it is still running when asked, then says
# something on both streams and exits 3 (0 without arguments: validation)
SLOW = (b"#!/bin/sh\nsleep 1\necho \"out:$*\"\necho \"err:$*\" >&2\n"
        b"[ -z \"$1\" ] || exit 3\n")
LONG = b"#!/bin/sh\nsleep 2\necho done\n"
QUICK = b"#!/bin/sh\necho \"out:$*\"\n"


def ready(d, name, content, **extra):
    r = d.submit(name, content, **extra)
    check(r.get("ok") and r["module"]["state"] == "active", f"submit {name}: {r}")


def detach(d, name, args=(), conn=None):
    req = {"op": "exec", "name": name, "args": list(args), "wait": False}
    r = conn.request(req) if conn else d.request(req)
    check(r.get("ok") and r.get("detached") is True and r.get("run", 0) > 0,
          f"a detached exec: {r}")
    return r["run"]


def wait_result(d, run, timeout="30s"):
    r = d.request({"op": "wait", "run": run, "timeout": timeout})
    check(r.get("ok"), f"wait {run}: {r}")
    return r


def row(d, run):
    """The run's run_output row, read from the manifest beside airlockd."""
    db = sqlite3.connect(f"file:{d.state}/manifest.db?mode=ro", uri=True)
    try:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM run_output WHERE run_id = ?",
                          (run,)).fetchone()
    finally:
        db.close()


def kept(r, stream):
    return base64.b64decode(r["output"][stream]["data"])


# the members of a result that differ from one run of a module to the next
PER_RUN = {"wall_ms", "cpu_ms", "peak_memory_bytes", "host_uid"}


@test("detach: answered at once; result is not_finished; wait answers what an attached exec answers")
def t_detach_wait_result():
    d = Daemon()
    ready(d, "slow", SLOW)
    attached = d.request({"op": "exec", "name": "slow", "args": ["x"]})
    check(attached.get("ok"), f"attached exec: {attached}")
    started = time.monotonic()
    run = detach(d, "slow", ["x"])
    check(time.monotonic() - started < 0.9, "the detached answer waited for the run")
    r = d.request({"op": "result", "run": run})
    expect_error(r, "not_finished")
    check(f"run {run}" in r["error"]["message"], r["error"]["message"])
    w = wait_result(d, run)
    res = d.request({"op": "result", "run": run})
    check(res.get("ok"), f"result after wait: {res}")
    check_eq(w, res, "the wait answer and the result answer")
    # every member of exec's answer, and of its result object
    check_eq(sorted(set(attached) - {"id"}), sorted(set(res) - {"output"}),
             "answer members")
    check_eq(res["run"], run, "run")
    check_eq(res["module"]["id"], attached["module"]["id"], "module")
    check_eq(res["archived"], attached["archived"], "archived")
    check_eq(sorted(res["result"]), sorted(attached["result"]), "result members")
    for k, v in attached["result"].items():
        if k not in PER_RUN:
            check_eq(res["result"][k], v, f"result.{k}")
    check_eq(res["result"]["stdout"], "out:x\n", "stdout")
    check_eq(kept(res, "stdout"), b"out:x\n", "output.stdout")
    check_eq(kept(res, "stderr"), b"err:x\n", "output.stderr")
    check_eq(res["result"]["exit_status"], 3, "exit_status")
    # the CLI: exec --detach prints the id; result prints like exec, exits like it
    st, out, err = d.airlock("exec", "--detach", "slow", "y", check_status=0)
    cli_run = int(out.strip())
    st, out, err = d.airlock("wait", "--timeout", "30s", str(cli_run))
    check_eq((st, out), (3, "out:y\n"), "airlock wait: status and stdout")
    check("err:y\n" in err, f"airlock wait stderr: {err!r}")
    st2, out2, err2 = d.airlock("exec", "slow", "y")
    check_eq((st2, out2, err2), (st, out, err), "airlock exec vs airlock wait")
    st3, out3, err3 = d.airlock("result", str(cli_run))
    check_eq((st3, out3, err3), (st, out, err), "airlock result vs airlock wait")
    st, out, err = d.airlock("result", "--json", str(cli_run))
    check_eq(json.loads(out)["run"], cli_run, "airlock result --json")
    st, out, err = d.airlock("exec", "--detach", "--json", "slow", "z")
    check(json.loads(out).get("detached") is True, f"exec --detach --json: {out}")


@test("archive_on: a detached run that archives its module says so in result, as exec does")
def t_archived():
    d = Daemon()
    ready(d, "crasher", b"#!/bin/sh\n[ \"$1\" = crash ] && kill -SEGV $$\necho fine\n")
    run = detach(d, "crasher", ["crash"])
    r = wait_result(d, run)
    check_eq((r["result"]["verdict"], r["archived"], r["module"]["state"]),
             ("crashed", True, "archived"), "verdict, archived, module state")
    st, out, err = d.airlock("result", str(run))
    check_eq(st, 139, "airlock result of a SIGSEGV")
    check("crasher was archived after this run" in err, err)


@test("output: over --output-keep it is cut, flagged, with its full size")
def t_output_bound():
    d = Daemon(args=["--output-keep", "1K"])
    ready(d, "big", b"#!/bin/sh\nhead -c 10000 /dev/zero | tr '\\0' a\n")
    r = wait_result(d, detach(d, "big"))
    out = r["output"]["stdout"]
    check_eq(len(kept(r, "stdout")), 1024, "bytes kept")
    check_eq(out["size"], 10000, "full size")
    check_eq(out["truncated"], True, "truncated")
    check_eq(r["result"]["stdout_truncated"], True, "result.stdout_truncated")
    check_eq(r["result"]["stdout"], "a" * 1024, "result.stdout")
    check_eq(r["output"]["stderr"], {"data": "", "size": 0, "truncated": False},
             "an empty stderr")
    # a setting that does not fit one uid's buffers is refused at start
    p = subprocess.run([test_daemon.AIRLOCKD, "--state-dir", d.tmp + "/s2",
                        "--socket", d.tmp + "/s2.sock", "--output-keep", "4M",
                        "--max-buffered-per-uid", "16M"],
                       capture_output=True, timeout=WAIT)
    check(p.returncode != 0 and b"--output-keep" in p.stderr,
          f"--output-keep 4M with 16M per uid: exit {p.returncode}, {p.stderr[-300:]!r}")


@test("output: compressible output is stored smaller and comes back byte-exact; random output stays raw")
def t_output_compression():
    d = Daemon()
    ready(d, "seq", b"#!/bin/sh\nseq 1 20000\n")
    ready(d, "noise", b"#!/bin/sh\nhead -c 4000 /dev/urandom\n")
    run = detach(d, "seq")
    r = wait_result(d, run)
    want = "".join(f"{i}\n" for i in range(1, 20001)).encode()
    check_eq(kept(r, "stdout"), want, "seq's output, byte for byte")
    rw = row(d, run)
    check_eq(rw["stdout_encoding"], "zlib", "encoding of compressible output")
    check(len(rw["stdout"]) < len(want) / 2,
          f"stored {len(rw['stdout'])} bytes of {len(want)}")
    check_eq(rw["stdout_kept"], len(want), "kept")
    run = detach(d, "noise")
    r = wait_result(d, run)
    rw = row(d, run)
    check_eq(rw["stdout_encoding"], "raw", "encoding of random bytes")
    check_eq(len(rw["stdout"]), 4000, "stored bytes")
    check_eq(kept(r, "stdout"), bytes(rw["stdout"]), "random bytes, byte for byte")
    # a damaged row is an error answer, never invalid JSON
    db = sqlite3.connect(f"{d.state}/manifest.db", timeout=WAIT)
    db.execute("UPDATE run_output SET result = '{\"verdict\":' WHERE run_id = ?",
               (run,))
    db.commit()
    db.close()
    r = d.request({"op": "result", "run": run})
    expect_error(r, "internal")
    check("damaged" in r["error"]["message"], r["error"]["message"])
    check(d.request({"op": "status"}).get("ok"), "status after a damaged row")


@test("detach: the run goes on after its client disconnects")
def t_detach_survives_disconnect():
    d = Daemon()
    ready(d, "slow", SLOW)
    with d.connect() as c:
        run = detach(d, "slow", ["gone"], conn=c)
    r = wait_result(d, run)
    check_eq(r["result"]["verdict"], "exit_nonzero", "verdict")
    check_eq(kept(r, "stdout"), b"out:gone\n", "its output")
    runs = d.request({"op": "runs", "name": "slow"})["runs"]
    check_eq([x["verdict"] for x in runs if x["id"] == run], ["exit_nonzero"],
             "the manifest's row")


@test("wait: a deadline answers not_finished; airlock wait exits 75; a bare number is refused")
def t_wait_deadline():
    d = Daemon()
    ready(d, "long", LONG)
    run = detach(d, "long")
    started = time.monotonic()
    r = d.request({"op": "wait", "run": run, "timeout": "300ms"})
    took = time.monotonic() - started
    expect_error(r, "not_finished")
    check(0.25 <= took < 1.8, f"the 300ms deadline answered after {took:.2f} s")
    r = d.request({"op": "wait", "run": run, "timeout": "0s"})
    expect_error(r, "not_finished")
    st, out, err = d.airlock("wait", "--timeout", "100ms", str(run))
    check_eq(st, 75, "airlock wait past its deadline")
    check("not_finished" in err, err)
    st, out, err = d.airlock("result", str(run))
    check_eq(st, 75, "airlock result of a running run")
    check_eq(wait_result(d, run)["result"]["verdict"], "ok", "then it ends")


@test("tenants: another uid's wait and result answer exactly as for a run that does not exist")
def t_tenants():
    with Users("a", "b") as u:
        d = Daemon(args=u.daemon_args())
        r = as_user(d.sock, u.uid["a"], u.gid,
                    [{"op": "submit", "name": "mine",
                      "content": base64.b64encode(QUICK).decode()},
                     {"op": "exec", "name": "mine", "wait": False}])
        check(r[1].get("ok"), f"a's detached exec: {r}")
        run = r[1]["run"]
        wait_result(d, run)  # the admin sees all
        missing = run + 1000
        mine = as_user(d.sock, u.uid["a"], u.gid,
                       [{"op": "result", "run": run}])[0]
        check(mine.get("ok"), f"the owner's result: {mine}")
        theirs = as_user(d.sock, u.uid["b"], u.gid,
                         [{"op": "result", "run": run},
                          {"op": "wait", "run": run, "timeout": "1s"},
                          {"op": "result", "run": missing},
                          {"op": "wait", "run": missing, "timeout": "1s"}])
        for ans in theirs:
            expect_error(ans, "not_found")
        words = [re.sub(r"run \d+", "run N", a["error"]["message"]) for a in theirs]
        check_eq(words[0], words[2], "result: another's run vs no run")
        check_eq(words[1], words[3], "wait: another's run vs no run")
        check(str(u.uid["a"]) not in json.dumps(theirs), "the owner's uid leaked")


@test("retention: a run's output goes with it, and result says it may have been removed by retention")
def t_retention():
    d = Daemon()
    ready(d, "q", QUICK)
    run = detach(d, "q")
    wait_result(d, run)
    check(row(d, run) is not None, "no output row")
    d.stop()
    db = sqlite3.connect(f"{d.state}/manifest.db")
    db.execute("UPDATE runs SET started_ms = 1 WHERE id = ?", (run,))
    db.commit()
    db.close()
    d.start()
    wait_for(lambda: row(d, run) is None, "retention to remove the run's output")
    r = d.request({"op": "result", "run": run})
    expect_error(r, "not_found")
    check("retention" in r["error"]["message"] and "30 days" in r["error"]["message"],
          r["error"]["message"])


@test("hostile input: bad run ids and timeouts are bad_request, the daemon stays up")
def t_hostile():
    d = Daemon()
    ready(d, "q", QUICK)
    run = detach(d, "q")
    bad = [{"op": "result", "run": str(run)}, {"op": "result", "run": -1},
           {"op": "result", "run": 2 ** 63}, {"op": "result"},
           {"op": "result", "run": 0}, {"op": "wait"},
           {"op": "wait", "run": run, "timeout": "1e99s"},
           {"op": "wait", "run": run, "timeout": 5},
           {"op": "wait", "run": run, "timeout": "30"},
           {"op": "wait", "run": run, "timeout": "11m"},
           {"op": "wait", "run": run, "timeout": ""},
           {"op": "wait", "run": run, "timeout": "x" * 100},
           {"op": "exec", "name": "q", "wait": "no"},
           {"op": "exec", "name": "q", "wait": 0}]
    with d.connect() as c:
        for req in bad:
            r = c.request(req)
            expect_error(r, "bad_request")
    check(d.proc.poll() is None, "airlockd died")
    check(wait_result(d, run)["result"]["verdict"] == "ok", "the run after all that")
    # the CLI: usage errors exit 125 before anything is sent; the
    # daemon's refusal of a bare number is printed
    for args in (["result"], ["result", "x1"], ["wait", "0"], ["result", "1", "2"],
                 ["wait", "--timeout"]):
        st, out, err = d.airlock(*args)
        check_eq(st, 125, f"airlock {' '.join(args)}")
        check("airlock" in err, f"airlock {' '.join(args)}: {err!r}")
    st, out, err = d.airlock("wait", "--timeout", "30", str(run))
    check(st == 125 and "no unit" in err, f"airlock wait --timeout 30: {st} {err!r}")


@test("waiters: many on one run are all answered; one that disconnects changes nothing; at most 64 per connection")
def t_many_waiters():
    d = Daemon()
    ready(d, "long", LONG)
    run = detach(d, "long")
    conns = [d.connect() for _ in range(3)]
    try:
        for c in conns:
            c.send({"op": "wait", "run": run, "timeout": "30s", "id": "w"})
        quitter = d.connect()
        quitter.send({"op": "wait", "run": run, "timeout": "30s"})
        quitter.sock.close()
        answers = [c.recv() for c in conns]
    finally:
        for c in conns:
            c.sock.close()
    for a in answers:
        check(a.get("ok") and a.get("id") == "w", f"a waiter's answer: {a}")
        check_eq(a["result"]["stdout"], "done\n", "its stdout")
    # the bound: the 65th wait on one connection is refused at once
    run = detach(d, "long")
    with d.connect() as c:
        for i in range(64):
            c.send({"op": "wait", "run": run, "timeout": "30s", "id": str(i)})
        r = c.request({"op": "wait", "run": run, "timeout": "30s", "id": "over"})
        expect_error(r, "overloaded")
        check_eq(r.get("id"), "over", "the refused wait's id")
        got = {c.recv().get("id") for _ in range(64)}
        check_eq(len(got), 64, "every waiter answered")
    check(d.proc.poll() is None, "airlockd died")


@test("detach: a queued run has its id at once, runs when its turn comes, and is interrupted if airlockd stops first")
def t_detach_queued():
    d = Daemon(args=["--max-active", "1", "--shutdown-grace", "200ms"])
    ready(d, "long", LONG)
    first = d.request({"op": "exec", "name": "long", "wait": False})
    second = d.request({"op": "exec", "name": "long", "wait": False})
    check_eq((first.get("queued"), second.get("queued")), (False, True),
             "queued members")
    r = d.request({"op": "result", "run": second["run"]})
    expect_error(r, "not_finished")
    check("queued" in r["error"]["message"], r["error"]["message"])
    check_eq(wait_result(d, second["run"])["result"]["verdict"], "ok",
             "the queued run, once its turn came")
    third = d.request({"op": "exec", "name": "long", "wait": False})
    fourth = d.request({"op": "exec", "name": "long", "wait": False})
    check(fourth.get("queued"), f"the fourth: {fourth}")
    with d.connect() as c:
        c.send({"op": "wait", "run": fourth["run"], "timeout": "30s"})
        d.proc.send_signal(signal.SIGTERM)
        r = c.recv()
    expect_error(r, "interrupted")
    d.proc.wait(WAIT)
    d.start()
    for run in (third["run"], fourth["run"]):
        expect_error(d.request({"op": "result", "run": run}), "interrupted")


@test("drain: waiters of a run killed when the shutdown grace ran out are answered interrupted")
def t_drain():
    d = Daemon(args=["--shutdown-grace", "200ms"])
    ready(d, "long", LONG)
    run = detach(d, "long")
    queued = None
    with d.connect() as c:
        c.send({"op": "wait", "run": run, "timeout": "30s"})
        wait_for(lambda: any(f'"run":{run}' in l and "started" in l for l in d.log),
                 "the run to start")
        d.proc.send_signal(signal.SIGTERM)
        r = c.recv()
    expect_error(r, "interrupted")
    check(f"run {run}" in r["error"]["message"], r["error"]["message"])
    d.proc.wait(WAIT)
    d.start()
    r = d.request({"op": "result", "run": run})
    expect_error(r, "interrupted")


@test("postgresql: the output is kept, compressed and given back the same, and goes with its run")
def t_postgres():
    url = test_postgres.fresh_db("airlock_results")
    d = Daemon(env={"DATABASE_URL": url})
    ready(d, "seq", b"#!/bin/sh\nseq 1 20000\n")
    run = detach(d, "seq")
    r = wait_result(d, run)
    want = "".join(f"{i}\n" for i in range(1, 20001)).encode()
    check_eq(kept(r, "stdout"), want, "seq's output, byte for byte")
    stored = test_postgres.psql(
        "airlock_results",
        f"SELECT stdout_encoding || ' ' || length(stdout) FROM run_output"
        f" WHERE run_id = {run}").split()
    check(stored[0] == "zlib" and int(stored[1]) < len(want) / 2,
          f"the row: {stored}")
    other = d.request({"op": "result", "run": run + 1000})
    expect_error(other, "not_found")
    test_postgres.psql("airlock_results",
                       f"UPDATE runs SET started_ms = 1 WHERE id = {run}")
    wait_for(lambda: test_postgres.psql(
        "airlock_results",
        f"SELECT count(*) FROM run_output WHERE run_id = {run}") == "0",
        "retention to remove the run's output")
    r = d.request({"op": "result", "run": run})
    expect_error(r, "not_found")
    check_eq(re.sub(r"run \d+", "run N", r["error"]["message"]),
             re.sub(r"run \d+", "run N", other["error"]["message"]),
             "a removed run vs one that never was")


@test("sanitizers: waiters answered, expired, dropped and left at a stop leak nothing (build-asan)")
def t_no_leaks():
    asan = os.environ.get("ASAN_OPTIONS", "")
    reports_dir = tempfile.mkdtemp(prefix="airlock-results-asan-")
    prefix = os.path.join(reports_dir, "asan")
    d = Daemon(env={"ASAN_OPTIONS": (asan + ":" if asan else "") +
                    "log_path=" + prefix})
    ready(d, "long", LONG)
    ready(d, "q", QUICK)
    wait_result(d, detach(d, "q"))
    run = detach(d, "long")
    expect_error(d.request({"op": "wait", "run": run, "timeout": "50ms"}),
                 "not_finished")
    gone = d.connect()
    gone.send({"op": "wait", "run": run, "timeout": "30s"})
    gone.sock.close()
    with d.connect() as c:
        c.send({"op": "wait", "run": run, "timeout": "30s"})
        check(c.recv().get("ok"), "the waiter")
    other = detach(d, "long")
    left = d.connect()
    left.send({"op": "wait", "run": other, "timeout": "30s"})
    d.stop()
    try:
        r = left.recv()
        check(r.get("ok") or r["error"]["code"] in ("interrupted", "shutting_down"),
              f"a waiter at the stop: {r}")
    finally:
        left.sock.close()
    reports = sorted(os.listdir(reports_dir))
    text = "".join(open(os.path.join(reports_dir, f)).read() for f in reports)
    shutil.rmtree(reports_dir, ignore_errors=True)
    check(not reports, f"sanitizer reports:\n{text[:3000]}")


# ================================================================== runner

def main(argv):
    return harness.main(argv, test_daemon.configure,
                        report=test_daemon.report_failure,
                        after_test=test_daemon.stop_daemons,
                        root_reason="airlockd builds jails only as root")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
