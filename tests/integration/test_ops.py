#!/usr/bin/env python3
"""Integration tests for the operator commands (issue 6): airlock status,
top, events (and the subscribe op), quota show/reset, audit and doctor,
against a real airlockd on a temporary state directory (the Daemon of
test_daemon.py), and quotas that survive a restart.

    python3 tests/integration/test_ops.py BUILD_DIR [WORD...]

Output and exit status as every suite (harness.py). Python 3 standard
library only; `top` is driven through tmux.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import harness
from harness import Failure, check, check_eq, note, test

# The daemon fixture of test_daemon.py; importing it registers its tests,
# which this suite does not run.
_before = len(harness.TESTS)
import test_daemon as td  # noqa: E402
del harness.TESTS[_before:]

Daemon = td.Daemon
WAIT = td.WAIT
SLEEPER, CRASHER, ECHO = td.SLEEPER, td.CRASHER, td.ECHO


def airlock(d, *args, env=None, timeout=WAIT):
    """The airlock client against daemon d (its socket and state
    directory): (status, stdout, stderr)."""
    e = dict(os.environ, AIRLOCK_SOCKET=d.sock, AIRLOCK_STATE_DIR=d.state)
    e.update(env or {})
    status, out, err = harness.run_logged([td.AIRLOCK] + list(args), timeout,
                                          env=e)
    return status, out.decode(), err.decode()


def events_of(d, **req):
    r = d.request(dict({"op": "events", "limit": 1000}, **req))
    check(r.get("ok"), f"events: {r}")
    return r["events"]


def exec_ok(d, name, *args):
    r = d.request({"op": "exec", "name": name, "args": list(args)})
    check(r.get("ok"), f"exec {name}: {r}")
    return r


def log_has(d, text, timeout=WAIT):
    td.wait_for(lambda: any(text in line for line in d.log),
                f"{text!r} in the daemon's log", timeout)


# ================================================================= status

@test("status: version, isolation, state directory, active runs, counters, archives, quotas")
def t_status():
    d = Daemon(args=["--quota-per-hour", "50"])
    check(d.submit("sleeper", SLEEPER)["ok"], "submit sleeper")
    check(d.submit("crasher", CRASHER)["ok"], "submit crasher")
    r = exec_ok(d, "crasher", "crash")
    check(r["archived"], "the crasher was not auto-archived")
    c = d.connect()
    c.send({"op": "exec", "name": "sleeper", "args": ["3"]})
    td.wait_for(lambda: d.request({"op": "status"})["active_runs"] == 1,
                "the sleeper running")
    st, out, err = airlock(d, "status")
    check_eq(st, 0, "airlock status exit status")
    for text in ("airlockd 0.1.0, pid", "healthy", "isolation",
                 "cgroup v", "seccomp filter with user notification",
                 "free of", "sleeper v1", "exec", "modules by state",
                 "active 1", "archived 1", "runs by verdict",
                 "crashed 1", "auto-archives        1",
                 "crasher v1: auto-archived: crashed in run",
                 "THIS HOUR", "of 50 ("):
        check(text in out, f"airlock status lacks {text!r}:\n{out}")
    st, out, _ = airlock(d, "status", "--json")
    check_eq(st, 0, "status --json exit status")
    s = json.loads(out)
    check_eq(len(s["active"]), 1, "active runs")
    a = s["active"][0]
    check_eq((a["module"], a["uid"], a["kind"]), ("sleeper", 0, "exec"),
             "the active run")
    check(a["elapsed_ms"] >= 0 and "memory_bytes" in a, f"usage {a}")
    check(s["state_dir_free_bytes"] > 0, "free space")
    check_eq(s["runs_by_verdict"].get("crashed"), 1, "crashed since start")
    check_eq(s["counters"]["auto_archives_total"], 1, "auto-archives")
    check_eq(s["modules"]["archived"], 1, "archived modules")
    check("crashed" in s["recent_archives"][-1]["reason"], "archive reason")
    q = [q for q in s["quotas"] if q["uid"] == 0]
    check(q and q[0]["hour_used"] == 4 and q[0]["hour_left"] == 46,
          f"quota of uid 0: {q} (two validations, two execs)")
    check(c.recv()["ok"], "the sleeper's answer")
    c.sock.close()


@test("status: airlockd down: says so, exit 3, shows what the manifest knows")
def t_status_down():
    d = Daemon()
    check(d.submit("hello", ECHO)["ok"], "submit")
    exec_ok(d, "hello")
    check_eq(d.stop(), 0, "airlockd exit status")
    st, out, err = airlock(d, "status")
    check_eq(st, 3, "exit status with the daemon down")
    for text in ("airlockd is NOT RUNNING", "cannot reach airlockd",
                 "modules by state", "active 1", "runs recorded        2",
                 "runs by verdict      ok 2"):
        check(text in out, f"status lacks {text!r}:\n{out}")
    st, out, _ = airlock(d, "status", "--json")
    check_eq(st, 3, "status --json exit status")
    s = json.loads(out)
    check_eq(s["daemon"], False, "daemon member")
    check_eq(s["modules"]["active"], 1, "active modules")
    check_eq(s["quotas"][0]["hour_used"], 2, "runs of uid 0")
    # neither a daemon nor a manifest: an error, not exit 3
    st, out, err = airlock(d, "status", "--state-dir", d.tmp + "/none")
    check_eq(st, 1, "exit status with nothing to show")


# ================================================================= quotas

@test("quota: counts survive a restart; rate_limited at the same point; events")
def t_quota_restart():
    harness.within_one_quota_hour()
    d = Daemon(args=["--quota-per-hour", "4"])
    check(d.submit("hello", ECHO)["ok"], "submit")       # 1: validation
    exec_ok(d, "hello")                                   # 2
    st, out, _ = airlock(d, "quota", "show", "--json")
    check_eq(json.loads(out)["quotas"][0]["hour_used"], 2, "used before")
    check_eq(d.stop(), 0, "stop")
    d.start()
    st, out, _ = airlock(d, "quota", "show", "0")
    check_eq(st, 0, "quota show exit status")
    check("2 of 4 (2 left)" in out, f"after the restart: {out}")
    exec_ok(d, "hello")                                   # 3
    exec_ok(d, "hello")                                   # 4
    r = d.request({"op": "exec", "name": "hello"})
    td.expect_error(r, "rate_limited")
    check(r["error"]["retry_after_ms"] > 0, "retry_after_ms")
    kinds = [e["kind"] for e in events_of(d)]
    check("rate_limited" in kinds, f"no rate_limited event: {kinds}")
    check(kinds.count("started") == 2 and "stopped" in kinds,
          f"start and stop events: {kinds}")


@test("quota: reset is admin only, forgets the use, is an event and survives a restart")
def t_quota_reset():
    harness.within_one_quota_hour()
    d = Daemon(args=["--quota-per-hour", "2",
                     "--allow-uid", str(td.NOBODY)])
    os.chmod(d.sock, 0o666)
    check(d.submit("hello", ECHO)["ok"], "submit")
    exec_ok(d, "hello")
    td.expect_error(d.request({"op": "exec", "name": "hello"}),
                    "rate_limited")
    td.expect_error(td._as_nobody(d.sock, {"op": "quota_reset", "uid": 0}),
                    "unauthorized")
    shown = td._as_nobody(d.sock, {"op": "quota_show"})
    check(shown.get("ok"), f"a client may see quotas: {shown}")
    st, out, err = airlock(d, "quota", "reset", "0")
    check_eq(st, 0, "quota reset exit status")
    check("0 of 2 (2 left)" in out, f"after the reset: {out}")
    resets = events_of(d, since="1h")
    check(any(e["kind"] == "quota_reset" and e.get("uid") == 0
              for e in resets), "no quota_reset event")
    d.stop()
    d.start()
    exec_ok(d, "hello")
    exec_ok(d, "hello")
    td.expect_error(d.request({"op": "exec", "name": "hello"}),
                    "rate_limited")
    st, out, err = airlock(d, "quota", "reset")
    check_eq(st, 125, "quota reset without a UID")


# ================================================================= events

@test("events: the feed from the daemon and from the manifest; --since, --limit")
def t_events():
    d = Daemon()
    check(d.submit("hello", ECHO)["ok"], "submit")
    exec_ok(d, "hello")
    check(d.request({"op": "archive", "name": "hello"})["ok"], "archive")
    check(d.request({"op": "restore", "name": "hello"})["ok"], "restore")
    st, out, err = airlock(d, "events", "--json", "--limit", "100")
    check_eq(st, 0, "events exit status")
    evs = [json.loads(line) for line in out.splitlines()]
    kinds = [e["kind"] for e in evs]
    want = ["started", "submitted", "validating", "run", "validated", "run",
            "archived", "restored"]
    check_eq(kinds, want, "the feed")
    run = evs[3]
    check_eq((run["module"], run["verdict"], run["uid"]), ("hello", "ok", 0),
             "a run event")
    check(evs == sorted(evs, key=lambda e: e["id"]), "not in id order")
    st, out, _ = airlock(d, "events", "--limit", "2")
    check_eq(len(out.splitlines()), 2, "--limit 2")
    check("restored" in out.splitlines()[-1], f"newest last: {out}")
    st, out, _ = airlock(d, "events", "--since", "2999-01-01")
    check_eq(out, "", "--since in the future")
    d.stop()
    st, out, _ = airlock(d, "events", "--json", "--limit", "100")
    check_eq(st, 0, "events with the daemon down")
    offline = [json.loads(line) for line in out.splitlines()]
    check_eq(offline[:len(evs)], evs, "the manifest's feed")
    check_eq(offline[-1]["kind"], "stopped", "the stop event")


@test("events --follow: earlier events, then each new one as it happens")
def t_events_follow():
    d = Daemon()
    check(d.submit("hello", ECHO)["ok"], "submit")
    env = dict(os.environ, AIRLOCK_SOCKET=d.sock)
    p = subprocess.Popen([td.AIRLOCK, "events", "--follow", "--json",
                          "--limit", "1"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    try:
        first = json.loads(p.stdout.readline())
        check_eq(first["kind"], "validated", "the one earlier event")
        exec_ok(d, "hello", "x")
        live = json.loads(p.stdout.readline())
        check_eq((live["kind"], live["module"], live["verdict"]),
                 ("run", "hello", "ok"), "the live event")
        check(live["id"] > first["id"], "ids grow")
        os.kill(d.proc.pid, signal.SIGHUP)
        reload = json.loads(p.stdout.readline())
        check_eq(reload["kind"], "policy_reload", "SIGHUP's event")
    finally:
        p.kill()
        p.wait()


@test("subscribe: a subscriber that never reads is dropped; the daemon keeps serving")
def t_slow_subscriber():
    d = Daemon()
    check(d.submit("hello", ECHO)["ok"], "submit")
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(d.sock)
    slow.sendall(b'{"op":"subscribe"}\n')
    # a reading subscriber beside it must see everything
    good = d.connect()
    check(good.request({"op": "subscribe"})["ok"], "subscribe")
    runs = 0
    started = time.monotonic()
    with d.connect() as c:
        while not any("dropped" in line for line in d.log):
            check(runs < 3000, "3000 runs and the subscriber is not dropped")
            for _ in range(40):  # pipelined
                c.send({"op": "exec", "name": "hello"})
            for _ in range(40):
                check(c.recv()["ok"], "exec")
            runs += 40
            # drain the good subscriber as we go
            good.sock.settimeout(0.01)
            try:
                while True:
                    chunk = good.sock.recv(1 << 20)
                    if not chunk:
                        raise Failure("the reading subscriber was dropped")
                    good.buf += chunk
            except socket.timeout:
                pass
    note(f"dropped after {runs} runs in {time.monotonic() - started:.1f} s")
    check(d.request({"op": "status"})["ok"], "status after the drop")
    exec_ok(d, "hello")
    # the slow one's stream ends: read what it was sent, then EOF
    slow.settimeout(WAIT)
    total = 0
    while True:
        try:
            chunk = slow.recv(1 << 16)
        except ConnectionResetError:
            break
        if not chunk:
            break
        total += len(chunk)
    check(total < runs * 400, f"the dropped subscriber got {total} bytes")
    slow.close()
    # the reading one got every run, in order, and is still there
    good.sock.settimeout(WAIT)
    seen = 0
    while seen < runs + 1:
        line = good.recv()
        if line.get("event", {}).get("kind") == "run":
            seen += 1
    good.sock.close()


@test("subscribe: earlier events stop at half the bound and say where; events gives the rest")
def t_catch_up_cut():
    d = Daemon()
    check(d.submit("hello", ECHO)["ok"], "submit")
    for i in range(30):  # archive events with 1000-byte reasons
        check(d.request({"op": "archive", "name": "hello",
                         "reason": f"{i:04d}" + "r" * 996})["ok"], "archive")
        check(d.request({"op": "restore", "name": "hello"})["ok"], "restore")
    with d.connect() as c:
        # read nothing until the catch-up is queued: the daemon handles one
        # request at a time, so a status answered after the subscription's
        # log line comes after its catch-up
        c.send({"op": "subscribe", "limit": 100})
        log_has(d, "subscribed to events")
        check(d.request({"op": "status"})["ok"], "status")
        check(c.recv()["ok"], "subscribe")
        got = []
        while True:
            line = c.recv()
            if "catch_up_cut" in line:
                break
            got.append(line["event"]["id"])
        check(10 <= len(got) < 60, f"{len(got)} earlier events sent")
        check_eq(line["after"], got[-1], "where the catch-up stopped")
        rest = events_of(d, after=line["after"])
        check(len(got) + len(rest) >= 60, "the rest through events")
        exec_ok(d, "hello")
        while True:  # and the live stream goes on
            ev = c.recv()["event"]
            if ev["kind"] == "run":
                break


# ================================================================== audit

POLICY_EXTRA = "\n# edited\n"


@test("audit: modules and runs held to an edited policy; exit 1, --json, --policy")
def t_audit():
    pdir = tempfile.mkdtemp(prefix="airlock-policies-")
    try:
        src = os.path.join(os.path.dirname(__file__), "..", "..", "policy",
                           "policies", "default.policy")
        mine = os.path.join(pdir, "mine.policy")
        with open(src) as f:
            text = f.read()
        with open(mine, "w") as f:
            f.write(text.replace("memory = 64M", "memory = 96M"))
        env = {"AIRLOCK_POLICY_PATH": pdir}
        d = Daemon(env=env)
        check(d.submit("held", ECHO, policy="mine")["ok"], "submit mine")
        check(d.submit("plain", ECHO)["ok"], "submit default")
        exec_ok(d, "held")
        st, out, err = airlock(d, "audit", env=env)
        check_eq(st, 0, f"audit before any edit ({out}{err})")
        with open(mine, "w") as f:
            f.write(text.replace("memory = 64M", "memory = 80M"))
        st, out, err = airlock(d, "audit", env=env)
        check_eq(st, 1, "audit after the edit")
        check("held v1  policy mine" in out, f"audit output:\n{out}")
        check("plain" not in out, f"the default module flagged:\n{out}")
        check("1 modules and 2 runs to re-validate" in out, out)
        st, out, err = airlock(d, "audit", "--json", env=env)
        a = json.loads(out)
        check_eq([m["module"] for m in a["modules"]], ["held"], "modules")
        check(a["modules"][0]["held_hash"] != a["modules"][0]["current_hash"],
              "hashes")
        check_eq(sorted(r["run"] for r in a["runs"]), [1, 3], "runs")
        st, out, err = airlock(d, "audit", "--policy", "default", env=env)
        check_eq(st, 0, "--policy default")
        st, out, err = airlock(d, "audit", "--since", "2999-01-01", env=env)
        check_eq(st, 1, "the module still counts outside the window")
        check("0 runs" in out, out)
        # the policy file gone: every holder is reported, with why
        os.unlink(mine)
        st, out, err = airlock(d, "audit", "--json", env=env)
        check_eq(st, 1, "audit with the policy missing")
        check(json.loads(out)["modules"][0]["current_hash"] is None,
              "current hash of a missing policy")
    finally:
        shutil.rmtree(pdir, ignore_errors=True)


# ================================================================= doctor

@test("doctor: every required check passes here as root; --json")
def t_doctor():
    tmp = tempfile.mkdtemp(prefix="airlock-doctor-")
    try:
        os.chmod(tmp, 0o750)
        status, out, err = harness.run_logged(
            [td.AIRLOCK, "doctor", "--state-dir", tmp], WAIT)
        check_eq(status, 0, "doctor exit status")
        text = out.decode()
        for name in ("root", "kernel", "cgroup", "user namespaces",
                     "seccomp user-notify", "pidfd", "state directory"):
            check(f"PASS  {name}" in text, f"{name} did not pass:\n{text}")
        check("ready: 0 required checks failed" in text, text)
        # the driver doctor names is the one a run gets, and doctor says
        # where run cgroups go (not merely what the root offers)
        status, out, err = harness.run_logged(
            [td.AIRLOCK, "run", "--json", "--", "/bin/true"], WAIT)
        mode = json.loads(out)["cgroup"]
        line = [l for l in text.splitlines() if "PASS  cgroup" in l][0]
        check(f"driver {mode}: runs under /sys/fs/cgroup/" in line, line)
        check("airlock" in line, line)
        status, out, err = harness.run_logged(
            [td.AIRLOCK, "doctor", "--json", "--state-dir", tmp], WAIT)
        r = json.loads(out)
        check_eq(r["ok"], True, "ok")
        check(all(c["status"] == "pass" for c in r["checks"]),
              f"checks: {r['checks']}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@test("doctor: no cgroup hierarchy at all fails the cgroup check, with a fix")
def t_doctor_no_cgroup():
    # an empty tmpfs over /sys/fs/cgroup, in a mount namespace of its own:
    # neither v1 nor v2 is there (true on either hierarchy)
    tmp = tempfile.mkdtemp(prefix="airlock-doctor-")
    try:
        os.chmod(tmp, 0o750)
        status, out, err = harness.run_logged(
            ["unshare", "-m", "sh", "-c",
             'umount -R -l /sys/fs/cgroup && mount -t tmpfs none /sys/fs/cgroup '
             '&& exec "$0" doctor --json '
             '--state-dir "$1"', td.AIRLOCK, tmp], WAIT)
        check_eq(status, 1, f"doctor exit status ({err.decode()})")
        r = json.loads(out)
        check_eq(r["ok"], False, "ok")
        cg = [c for c in r["checks"] if c["check"] == "cgroup"][0]
        check_eq(cg["status"], "fail", f"cgroup check: {cg}")
        check("memory" in cg["detail"], f"detail names the controller: {cg}")
        check("mount the memory and pids controllers" in (cg["fix"] or ""),
              f"fix: {cg}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@test("doctor: a world-writable or missing state directory fails, with a fix")
def t_doctor_fails():
    tmp = tempfile.mkdtemp(prefix="airlock-doctor-")
    try:
        os.chmod(tmp, 0o777)
        status, out, err = harness.run_logged(
            [td.AIRLOCK, "doctor", "--json", "--state-dir", tmp], WAIT)
        check_eq(status, 1, "exit status")
        r = json.loads(out)
        bad = [c for c in r["checks"] if c["status"] == "fail"]
        check_eq([c["check"] for c in bad], ["state directory"], "failed")
        check("writable by everyone" in bad[0]["detail"], bad[0]["detail"])
        check_eq(bad[0]["fix"], f"chmod 0750 {tmp}", "fix")
        missing = os.path.join(tmp, "no", "such")
        status, out, err = harness.run_logged(
            [td.AIRLOCK, "doctor", "--state-dir", missing], WAIT)
        check_eq(status, 1, "exit status for a missing directory")
        check(f"fix: install -d -m 0750 {missing}" in out.decode(),
              out.decode())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ==================================================================== top

@test("top: the status screen under tmux, redrawn, q quits")
def t_top():
    if not shutil.which("tmux"):
        raise Failure("tmux is not installed (tools/install-deps.sh)")
    d = Daemon()
    check(d.submit("hello", ECHO)["ok"], "submit")
    server = f"airlock-test-{os.getpid()}"
    tmux = ["tmux", "-L", server]
    done = os.path.join(d.tmp, "top.status")
    cmd = (f"AIRLOCK_SOCKET={d.sock} {td.AIRLOCK} top --interval 200ms; "
           f"echo $? > {done}")
    harness.run_logged(tmux + ["new-session", "-d", "-s", "top", "-x", "120",
                               "-y", "45", cmd], WAIT)
    try:
        def screen():
            return subprocess.run(tmux + ["capture-pane", "-p", "-t", "top"],
                                  capture_output=True, timeout=WAIT
                                  ).stdout.decode()
        td.wait_for(lambda: "modules by state" in screen(), "the screen")
        first = screen()
        for text in ("airlock top", "q quits", "airlockd 0.1.0", "healthy",
                     "running", "active 1"):
            check(text in first, f"top lacks {text!r}:\n{first}")
        exec_ok(d, "hello")
        td.wait_for(lambda: "ok 2" in screen(), "a redraw with the new run")
        harness.run_logged(tmux + ["send-keys", "-t", "top", "q"], WAIT)
        td.wait_for(lambda: os.path.exists(done), "top to exit on q")
        with open(done) as f:
            check_eq(f.read().strip(), "0", "top's exit status")
        note("screen:\n" + "\n".join("    " + l for l in
                                     first.rstrip().splitlines()[:12]))
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True)


def main(argv):
    return harness.main(argv, td.configure, report=td.report_failure,
                        after_test=td.stop_daemons,
                        root_reason="airlockd builds jails only as root")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
