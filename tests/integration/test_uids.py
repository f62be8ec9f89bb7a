#!/usr/bin/env python3
"""Integration tests for the runs' host uids (issue 13, item 9): as root,
every concurrent run is a host uid and gid of its own from a range
(AIRLOCK_UID_RANGE, sandbox/uids.c), so a module that uses up a per-user
kernel counter starves only itself; ids of host accounts are skipped; an id
is held by a lock that a killed airlock does not leak.

    python3 tests/integration/test_uids.py BUILD_DIR [WORD...]

Each test uses a range of its own, far from the default one, so that the
lowest free id (which airlock takes) is known. Output and exit status as
every suite (harness.py). Python 3 standard library only.
"""

import os
import signal
import subprocess
import sys
import time

import harness
from harness import Failure, check, check_eq, excerpt, note, test

_before = len(harness.TESTS)
import test_daemon as td  # noqa: E402  (the Daemon fixture; not its tests)
del harness.TESTS[_before:]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROBE = os.path.join(REPO, "build", "probe")
WAIT = 20
INSIDE = 65534  # the default policy's uid and gid, what the module sees

# 0x78000000 and up: above the default range (1879048192 = 0x70000000
# and 65536 more), below 2^31; each test takes its own slice.
RANGE_BASE = 0x78000000


def test_range(slot, count):
    base = RANGE_BASE + slot * 1024
    return base, f"{base}:{count}"


def env_with(uid_range):
    return dict(os.environ, AIRLOCK_UID_RANGE=uid_range)


def airlock(args, uid_range, timeout=WAIT):
    return harness.run_logged([td.AIRLOCK] + list(args), timeout,
                              env=env_with(uid_range))


def run_json(args, uid_range):
    status, out, _ = airlock(["run", "--json", "--"] + list(args), uid_range)
    return harness.parse_result(status, out)


def start(args, uid_range, json=True):
    """`airlock run [--json] -- ARGS` in the background, output piped."""
    cmd = [td.AIRLOCK, "run"] + (["--json"] if json else []) + ["--"] + list(args)
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env_with(uid_range))


def finish(proc):
    try:
        out, err = proc.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise Failure("airlock run did not finish")
    return harness.parse_result(proc.returncode, out)


def status_ids(pid):
    """(uids, gids) of /proc/PID/status, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return ([int(x) for x in fields["Uid"].split()],
            [int(x) for x in fields["Gid"].split()], fields["Name"].strip())


def processes_in(base, count, name="probe"):
    """{pid: ids} of host processes called `name` (None: any) whose uid is
    in the range."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        ids = status_ids(entry)
        if ids and name in (None, ids[2]) and base <= ids[0][0] < base + count:
            found[int(entry)] = ids
    return found


def wait_processes(base, count, n, name="probe"):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = processes_in(base, count, name)
        if len(found) >= n:
            return found
        time.sleep(0.05)
    raise Failure(f"{n} '{name}' processes with a uid in {base}:{count} did "
                  f"not appear (found {processes_in(base, count, name)})")


def line_of(result, name):
    for line in (result.get("stdout") or "").splitlines():
        if line.startswith(name + ":"):
            return line
    raise Failure(f"no '{name}:' line in {excerpt(result.get('stdout'))}")


# ------------------------------------------------------------------ tests

@test("uids: two concurrent jails are two host uids, each the policy's uid inside")
def t_concurrent():
    base, rng = test_range(0, 8)
    # the module also leaves a file in its /tmp and /dev/shm, to see from
    # the host whose they are
    script = "echo x > /tmp/f && echo y > /dev/shm/g && exec sleep 1.5"
    procs = [start(["/bin/sh", "-c", script], rng) for _ in range(2)]
    try:
        seen = wait_processes(base, 8, 2, "sleep")
        owners = {}
        for pid, (uids, gids, _) in seen.items():
            check(len(set(uids)) == 1 and gids == [uids[0]] * 4,
                  f"pid {pid}: uids {uids}, gids {gids}: not one id for all")
            for path in (f"/proc/{pid}/root/tmp/f", f"/proc/{pid}/root/dev/shm/g"):
                st = os.stat(path)
                check_eq((st.st_uid, st.st_gid), (uids[0], uids[0]),
                         f"owner of {path}")
            owners[pid] = uids[0]
    finally:
        results = [finish(p) for p in procs]
    check_eq(len(set(owners.values())), 2, f"distinct host uids of {owners}")
    check_eq(sorted(owners.values()), [base, base + 1],
             "the lowest free ids of the range")
    check_eq(sorted(r.get("host_uid") for r in results), [base, base + 1],
             "host_uid of the results")
    # inside: the policy's ids, through the run's own user namespace
    r = run_json([PROBE, "ids"], rng)
    check_eq(line_of(r, "ids"),
             f"ids: ok uid={INSIDE},{INSIDE},{INSIDE} gid={INSIDE},{INSIDE},{INSIDE} "
             "groups=0", "ids inside")
    check_eq(r.get("host_uid"), base, "host_uid once the others ended")
    note(f"host uids {sorted(owners.values())}; inside uid {INSIDE}")


def hog_then_try(counter, rng, hog_n):
    """A hostile module uses up `counter` and holds it; meanwhile a second
    run makes one of its own. The second run's probe line."""
    hog = start([PROBE, counter, str(hog_n), "2000"], rng, json=False)
    try:
        first = hog.stdout.readline().decode()
        check(first.startswith(f"{counter}: ") and not first.rstrip().endswith(" ok"),
              f"the hog did not reach the limit: {first!r}")
        victim = run_json([PROBE, counter, "1", "0"], rng)
    finally:
        hog.kill()  # its jail dies with it
        hog.communicate()
    return first.strip(), line_of(victim, counter)


@test("uids: a module using up per-user counters does not starve a concurrent run")
def t_counters():
    with open("/proc/sys/fs/inotify/max_user_instances") as f:
        max_instances = int(f.read())
    # the hog must reach the per-user limit before its open-files limit
    # (256 in the default policy)
    check(max_instances < 250, f"fs.inotify.max_user_instances is {max_instances}: "
          "above the jail's open-files limit, so one run cannot reach it")
    _, rng = test_range(1, 8)
    for counter, hog_n, starved in (("inotify", 1000, "inotify: 0 EMFILE"),
                                    ("sigqueue", 10 ** 7, "sigqueue: 0 EAGAIN")):
        # the control: every run the same host uid, as before item 9
        hog, victim = hog_then_try(counter, "none", hog_n)
        check_eq(victim, starved,
                 f"with one shared host uid (hog: {hog}), the second run")
        # each run its own uid: the second run is not affected
        hog, victim = hog_then_try(counter, rng, hog_n)
        check_eq(victim, f"{counter}: 1 ok",
                 f"with a uid per run (hog: {hog}), the second run")
        note(f"{counter}: hog {hog!r}; shared uid: {starved!r}; own uid: ok")


def shadow(*cmd):
    subprocess.run(list(cmd), check=True, capture_output=True, timeout=WAIT)


@test("uids: ids of host accounts (passwd, group, subuid) are skipped")
def t_accounts():
    base, rng = test_range(2, 6)
    user, group = "airlock-uidtest", "airlock-gidtest"
    subprocess.run(["userdel", user], capture_output=True)
    subprocess.run(["groupdel", group], capture_output=True)
    try:
        shadow("groupadd", "-g", str(base + 1), group)
        shadow("useradd", "-M", "-N", "-g", str(base + 1), "-u", str(base),
               "-s", "/usr/sbin/nologin", user)
        shadow("usermod", "--add-subuids", f"{base + 2}-{base + 3}", user)
        r = run_json([PROBE, "ids"], rng)
        check_eq(r.get("host_uid"), base + 4,
                 f"host_uid with {base} a user's, {base + 1} a group's and "
                 f"{base + 2}-{base + 3} the user's subuids")
        status, _, err = airlock(["run", "--", PROBE, "exit", "0"], f"{base}:4")
        check_eq(status, 125, "exit status with every id of the range taken")
        check(b"every id in it belongs to a host account" in err,
              f"error: {excerpt(err)}")
    finally:
        subprocess.run(["userdel", user], capture_output=True)
        subprocess.run(["groupdel", group], capture_output=True)
    r = run_json([PROBE, "ids"], rng)
    check_eq(r.get("host_uid"), base, "host_uid once the accounts are gone")


@test("uids: a SIGKILLed airlock run does not leak its id")
def t_sigkill():
    base, rng = test_range(3, 4)
    proc = start([PROBE, "sleep", "30000"], rng, json=False)
    try:
        seen = wait_processes(base, 4, 1)
        check_eq([ids[0][0] for ids in seen.values()], [base], "uid of the first run")
        proc.kill()
        proc.communicate()
        # its jail goes with it (PR_SET_PDEATHSIG), init included
        deadline = time.monotonic() + WAIT
        while processes_in(base, 4, None) and time.monotonic() < deadline:
            time.sleep(0.05)
        check(not processes_in(base, 4, None), "the killed run's jail lives on")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    with open(f"/run/airlock/uids/{base}") as f:
        note(f"lock file left by the killed run holds {f.read().strip()!r}")
    r = run_json([PROBE, "ids"], rng)
    check_eq(r.get("host_uid"), base, "host_uid of the next run")


@test("uids: runs started at the same instant never share an id (the lock decides)")
def t_race():
    # one id, six airlock runs launched together: the pid marker and the
    # /proc scan alone would let two of them see the id free at once; the
    # flock lets exactly one have it while it runs (2.5 s, far longer than
    # any start here), and the rest are told no id is free
    base, rng = test_range(6, 1)
    procs = [start([PROBE, "sleep", "2500"], rng) for _ in range(6)]
    results = [finish(p) for p in procs]
    verdicts = sorted(r.get("verdict") for r in results)
    check_eq(verdicts, ["ok"] + ["setup_error"] * 5, f"verdicts {results}")
    for r in results:
        if r.get("verdict") == "ok":
            check_eq(r.get("host_uid"), base, "host_uid of the run that got the id")
        else:
            check("no free host uid" in (r.get("error") or ""), f"error of {r}")


@test("uids: airlockd and airlock run share the range without sharing an id")
def t_daemon():
    base, rng = test_range(4, 8)
    d = td.Daemon(args=["--uid-range", rng])
    check(d.submit("sleeper", td.SLEEPER).get("ok"), "submit")
    cli = start([PROBE, "sleep", "2500"], rng)
    wait_processes(base, 8, 1)
    with d.connect() as c:
        for i in range(2):
            c.send({"op": "exec", "id": str(i), "name": "sleeper", "args": ["1.5"]})
        td.wait_for(lambda: len(processes_in(base, 8, "sleep")) == 2,
                    "the daemon's two runs")
        status = d.request({"op": "status"})
        daemon_uids = sorted(a.get("host_uid") for a in status.get("active", []))
        answers = [c.recv() for _ in range(2)]
    cli_uid = finish(cli).get("host_uid")
    check(all(a.get("ok") for a in answers), f"exec answers {answers}")
    check_eq(len(daemon_uids), 2, f"active runs in status {status.get('active')}")
    every = daemon_uids + [cli_uid]
    check_eq(len(set(every)), 3, f"host uids of the daemon's runs and the CLI's: {every}")
    check(all(base <= u < base + 8 for u in every), f"uids {every} outside {rng}")
    check(rng in (status.get("host_uids") or ""),
          f"status host_uids: {status.get('host_uids')!r}")
    note(f"daemon runs {daemon_uids}, airlock run {cli_uid}")


@test("uids: with every id of the range in use, an exec is answered with a setup error")
def t_daemon_exhausted():
    base, rng = test_range(5, 1)
    d = td.Daemon(args=["--uid-range", rng])
    check(d.submit("sleeper", td.SLEEPER).get("ok"), "submit")
    holder = start([PROBE, "sleep", "3000"], rng)
    try:
        wait_processes(base, 1, 1)
        r = d.request({"op": "exec", "name": "sleeper", "args": ["0"]})
    finally:
        finish(holder)
    result = r.get("result") or {}
    check_eq(result.get("verdict"), "setup_error", f"verdict of {r}")
    check("no free host uid" in (result.get("error") or ""), f"error of {r}")
    r = d.request({"op": "exec", "name": "sleeper", "args": ["0"]})
    check_eq((r.get("result") or {}).get("host_uid"), base,
             f"the next exec, once the id is free: {r}")


@test("uids: a malformed AIRLOCK_UID_RANGE stops run, validate and airlockd")
def t_bad_range():
    for bad in ("0:10", "12", "4294967000:1000", "60000:10000", "x:1"):
        status, _, err = airlock(["run", "--", PROBE, "exit", "0"], bad)
        check_eq(status, 125, f"airlock run with AIRLOCK_UID_RANGE={bad}")
        check(b"AIRLOCK_UID_RANGE" in err, f"error names the variable: {excerpt(err)}")
    status, _, err = airlock(["validate", "/nonexistent-suite"], "12")
    check(status != 0, "validate with a bad range passed")
    p = subprocess.run([td.AIRLOCKD, "--uid-range", "1:0", "--socket", "/nonexistent/s"],
                       capture_output=True, timeout=WAIT)
    check_eq(p.returncode, 2, "airlockd with --uid-range 1:0")
    check(b"--uid-range" in p.stderr, f"error names the flag: {excerpt(p.stderr)}")


def configure(build_dir):
    paths = td.configure(build_dir)
    return tuple(paths) + (PROBE,)


def main(argv):
    return harness.main(argv, configure, report=td.report_failure,
                        after_test=td.stop_daemons,
                        root_reason="only root runs jails as uids of a range")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
