#!/usr/bin/env python3
"""Integration tests for airlockd's HTTP endpoints (issue 6; reference:
docs/metrics.md): /metrics behind x-api-key and checked by promtool,
counters that follow real runs, /healthz against a manifest that really
cannot be written, /ready while draining, hostile HTTP clients that must
not stall the socket protocol, and the METRICS_PORT / --metrics-listen
configuration.

    python3 tests/integration/test_metrics.py BUILD_DIR [WORD...]

Every daemon runs on a temporary state directory with HTTP on a free
loopback port. Python 3 standard library only, plus promtool (Debian's
prometheus package, tools/install-deps.sh) as the real parser of the
exposition format.
"""

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import harness
from harness import Failure, Skip, check, check_eq, note, test

# The daemon fixture of test_daemon.py; importing it registers that
# suite's tests too, which this suite does not run.
import test_daemon
from test_daemon import Daemon, expect_error, wait_for, WAIT

del harness.TESTS[:]

KEY = "metrics-test-key-0123456789"
# one module for every verdict the tests need, chosen by its argument
MULTI = (b"#!/bin/sh\ncase \"$1\" in\nfail) exit 4;;\n"
         b"spin) while :; do :; done;;\ncrash) kill -SEGV $$;;\n"
         b"sleep) sleep \"$2\";;\nesac\necho ok\n")
FAILING = b"#!/bin/sh\necho broken >&2\nexit 3\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Metrics:
    """An airlockd with HTTP on a free loopback port."""

    def __init__(self, key=KEY, args=(), env=None, state=None):
        self.port = free_port()
        env = dict(env or {})
        if key is not None:
            env["PROM_API_KEY"] = key
        self.d = Daemon(args=["--metrics-listen", f"127.0.0.1:{self.port}"] +
                        list(args), env=env, state=state)

    def get(self, path, headers=None, method="GET"):
        """(status, headers dict, body str)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)
        try:
            c.request(method, path, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read().decode()
        finally:
            c.close()

    def scrape(self):
        status, headers, body = self.get("/metrics", {"x-api-key": KEY})
        check_eq(status, 200, f"/metrics status (body {body[:200]!r})")
        return body


def samples(text):
    """{'name{labels}': float} of an exposition text."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def promtool_check(body):
    p = subprocess.run(["promtool", "check", "metrics"], input=body.encode(),
                       capture_output=True, timeout=WAIT)
    check_eq(p.returncode, 0, "promtool check metrics status "
             f"({(p.stdout + p.stderr).decode()[:400]!r})")


def require_promtool():
    if shutil.which("promtool") is None:
        raise Skip("promtool is missing (apt-get install prometheus; "
                   "tools/install-deps.sh)")


# =================================================================== tests

@test("/metrics: 401 without or with a wrong x-api-key, 200 with it; promtool accepts the text")
def t_auth():
    require_promtool()
    m = Metrics()
    for headers in ({}, {"x-api-key": ""}, {"x-api-key": "wrong"},
                    {"x-api-key": KEY[:-1]}, {"x-api-key": KEY + "x"},
                    {"x-api-key": KEY.upper()}, {"authorization": KEY}):
        status, h, body = m.get("/metrics", headers)
        check_eq(status, 401, f"/metrics with {headers}")
        check("airlock_" not in body, f"401 leaked metrics: {body[:200]!r}")
    status, h, body = m.get("/metrics", {"X-Api-Key": KEY})  # any case
    check_eq(status, 200, "/metrics with the key")
    check(h.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
          f"content type {h.get('Content-Type')!r}")
    promtool_check(body)
    for name in ("airlock_active_runs", "airlock_queue_depth",
                 "airlock_registry_modules", "airlock_runs_total",
                 "airlock_sandbox_timeouts_total",
                 "airlock_validation_failures_total",
                 "airlock_auto_archives_total", "airlock_rate_limit_hits_total",
                 "airlock_quota_remaining", "airlock_run_duration_seconds"):
        check(f"# HELP {name} " in body and f"# TYPE {name} " in body,
              f"no HELP/TYPE for {name}")
    check_eq(samples(body).get("airlock_ready"), 1.0, "airlock_ready")


@test("/metrics: 403 naming PROM_API_KEY when it is unset, and a warning at start")
def t_no_key():
    m = Metrics(key=None, env={"PROM_API_KEY": ""})
    status, _, body = m.get("/metrics", {"x-api-key": KEY})
    check_eq(status, 403, "/metrics status")
    check("PROM_API_KEY" in body, f"body {body!r}")
    check(any('"level":"warn"' in l and "PROM_API_KEY" in l for l in m.d.log),
          "no warning about PROM_API_KEY in the log")
    check_eq(m.get("/healthz")[0], 200, "/healthz still served")


@test("HTTP: unknown paths 404, other methods 405 with Allow, HEAD works, GET keeps the connection")
def t_routes():
    m = Metrics()
    for path in ("/", "/metrics/", "/healthz/x", "/../metrics", "/READY"):
        check_eq(m.get(path)[0], 404, f"GET {path}")
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        status, h, _ = m.get("/metrics", {"x-api-key": KEY}, method=method)
        check_eq(status, 405, f"{method} /metrics")
        check_eq(h.get("Allow"), "GET, HEAD", f"{method} Allow header")
    status, _, body = m.get("/healthz", method="HEAD")
    check_eq((status, body), (200, ""), "HEAD /healthz")
    # a GET keeps the connection for the next scrape
    c = http.client.HTTPConnection("127.0.0.1", m.port, timeout=WAIT)
    first = None
    try:
        for path in ("/metrics", "/healthz", "/metrics"):
            c.request("GET", path, headers={"x-api-key": KEY})
            r = c.getresponse()
            r.read()
            check_eq(r.status, 200, f"GET {path} on a kept connection")
            first = first or c.sock  # http.client drops it on a close
            check(c.sock is not None and c.sock is first,
                  f"the connection was not kept after {path}")
    finally:
        c.close()


@test("/metrics: counters, gauges and the histogram follow real runs")
def t_values():
    require_promtool()
    harness.within_one_quota_hour()
    m = Metrics(args=["--quota-per-hour", "8"],
                env={"SANDBOX_TIMEOUT_MS": "300"})
    d = m.d
    before = samples(m.scrape())
    check_eq(before["airlock_runs_total{verdict=\"ok\"}"], 0.0, "ok runs at start")
    check_eq(before["airlock_run_duration_seconds_count"], 0.0, "histogram count")
    check(d.submit("multi", MULTI)["ok"], "submit failed")           # 1 ok
    expect_error(d.submit("bad", FAILING), "rejected")               # 2 exit_nonzero
    check(d.request({"op": "exec", "name": "multi"})["ok"], "exec")  # 3 ok
    r = d.request({"op": "exec", "name": "multi", "args": ["fail"]})  # 4
    check_eq(r["result"]["verdict"], "exit_nonzero", "fail verdict")
    r = d.request({"op": "exec", "name": "multi", "args": ["spin"]})  # 5
    check_eq(r["result"]["verdict"], "timeout", "spin verdict")
    r = d.request({"op": "exec", "name": "multi", "args": ["crash"]})  # 6
    check_eq(r["result"]["verdict"], "crashed", "crash verdict")
    check_eq(r["archived"], True, "archived after the crash")
    # uid 0 started 6 runs of its 8 this hour: 2 more, then rate_limited
    check(d.submit("multi2", MULTI)["ok"], "submit 2")               # 7 ok
    check(d.request({"op": "exec", "name": "multi2"})["ok"], "exec 2")  # 8 ok
    expect_error(d.request({"op": "exec", "name": "multi2"}), "rate_limited")
    expect_error(d.request({"op": "exec", "name": "multi2"}), "rate_limited")

    body = m.scrape()
    promtool_check(body)
    s = samples(body)
    want = {
        'airlock_runs_total{verdict="ok"}': 4,
        'airlock_runs_total{verdict="exit_nonzero"}': 2,
        'airlock_runs_total{verdict="timeout"}': 1,
        'airlock_runs_total{verdict="crashed"}': 1,
        'airlock_runs_total{verdict="seccomp_violation"}': 0,
        "airlock_sandbox_timeouts_total": 1,
        "airlock_validation_failures_total": 1,
        "airlock_auto_archives_total": 1,
        "airlock_rate_limit_hits_total": 2,
        'airlock_registry_modules{state="active"}': 1,
        'airlock_registry_modules{state="archived"}': 1,
        'airlock_registry_modules{state="rejected"}': 1,
        'airlock_quota_remaining{uid="0",window="hour"}': 0,
        'airlock_quota_limit{window="hour"}': 8,
        "airlock_active_runs": 0,
        "airlock_queue_depth": 0,
    }
    for name, value in want.items():
        check_eq(s.get(name), float(value), name)
    runs = sum(v for k, v in s.items() if k.startswith("airlock_runs_total{"))
    check_eq(s["airlock_run_duration_seconds_count"], runs,
             "histogram count vs runs_total")
    check_eq(s['airlock_run_duration_seconds_bucket{le="+Inf"}'], runs,
             "+Inf bucket")
    # the 300 ms timeout lands between 0.2 s and 1 s
    check(s['airlock_run_duration_seconds_bucket{le="0.2"}'] <= runs - 1 and
          s['airlock_run_duration_seconds_bucket{le="1"}'] == runs,
          "bucket counts do not place the 300 ms timeout")
    check(s["airlock_run_duration_seconds_sum"] >= 0.3, "duration sum")
    # the same counters as the status op reports
    st = d.request({"op": "status"})
    check_eq(st["counters"]["runs_total"], runs, "status runs_total")
    check_eq(st["counters"]["auto_archives_total"], 1, "status auto_archives")


@test("/metrics: active runs and queue depth while runs are in flight")
def t_gauges_live():
    m = Metrics(args=["--max-active", "1"], env={"SANDBOX_TIMEOUT_MS": "20000"})
    d = m.d
    check(d.submit("multi", MULTI)["ok"], "submit failed")
    clients = [d.connect() for _ in range(2)]
    try:
        for c in clients:
            c.send({"op": "exec", "name": "multi", "args": ["sleep", "2"]})
        wait_for(lambda: samples(m.scrape()).get("airlock_queue_depth") == 1.0,
                 "queue depth 1")
        s = samples(m.scrape())
        check_eq(s["airlock_active_runs"], 1.0, "active runs")
        for c in clients:
            check(c.recv()["ok"], "exec failed")
    finally:
        for c in clients:
            c.sock.close()
    s = samples(m.scrape())
    check_eq((s["airlock_active_runs"], s["airlock_queue_depth"]), (0.0, 0.0),
             "gauges after the runs")


EXT4_IOC_SHUTDOWN = 0x8004587D  # _IOR('X', 125, __u32)
EXT4_GOING_FLAGS_NOLOGFLUSH = 2


@test("/healthz: 200, then 503 naming the manifest once its filesystem stops taking writes")
def t_healthz_unwritable():
    import fcntl
    for tool in ("mkfs.ext4", "mount", "umount"):
        if shutil.which(tool) is None:
            raise Skip(f"{tool} is missing")
    tmp = tempfile.mkdtemp(prefix="airlock-metrics-fs-")
    mnt = os.path.join(tmp, "mnt")
    os.mkdir(mnt)
    mounted = False
    try:
        img = os.path.join(tmp, "state.img")
        with open(img, "wb") as f:
            f.truncate(64 << 20)
        harness.run_logged(["mkfs.ext4", "-q", "-F", img], WAIT)
        status, _, err = harness.run_logged(["mount", "-o", "loop", img, mnt], WAIT)
        if status != 0:
            raise Skip(f"cannot loop-mount an ext4 image: {err.decode()[:200]}")
        mounted = True
        m = Metrics(state=os.path.join(mnt, "state"))
        status, _, body = m.get("/healthz")
        check_eq(status, 200, f"/healthz before (body {body!r})")
        check("manifest: ok" in body, f"body {body!r}")
        # what the kernel does to a filesystem after an I/O error: no
        # further writes reach it (ext4's shutdown ioctl, as xfstests'
        # godown uses); airlockd's open files stay open
        fd = os.open(mnt, os.O_RDONLY)
        try:
            fcntl.ioctl(fd, EXT4_IOC_SHUTDOWN,
                        EXT4_GOING_FLAGS_NOLOGFLUSH.to_bytes(4, "little"))
        finally:
            os.close(fd)
        # a probe re-runs the check at most once a second
        wait_for(lambda: m.get("/healthz")[0] == 503, "/healthz 503", 10)
        status, _, body = m.get("/healthz")
        check_eq(status, 503, f"/healthz after (body {body!r})")
        check("manifest: " in body and "manifest: ok" not in body,
              f"503 without the manifest's reason: {body!r}")
        note(body.splitlines()[2][:120])
        s = samples(m.scrape())
        check_eq(s["airlock_healthy"], 0.0, "airlock_healthy")
        # the socket protocol still answers (and says so too)
        check_eq(m.d.request({"op": "health"})["healthy"], False, "health op")
        m.d.stop()
    finally:
        for d in test_daemon.DAEMONS:
            try:
                d.stop()
            except Failure:
                pass
        if mounted:
            subprocess.run(["umount", "-l", mnt], timeout=WAIT)
        shutil.rmtree(tmp, ignore_errors=True)


@test("/ready and /healthz: 200 while serving, 503 \"draining\" while draining on SIGTERM; status says draining")
def t_ready_drain():
    m = Metrics(env={"SANDBOX_TIMEOUT_MS": "20000"},
                args=["--shutdown-grace", "20s"])
    d = m.d
    check_eq(m.get("/ready")[:1], (200,), "/ready while serving")
    check(d.submit("multi", MULTI)["ok"], "submit failed")
    c = d.connect()
    try:
        c.send({"op": "exec", "name": "multi", "args": ["sleep", "3"]})
        wait_for(lambda: samples(m.scrape()).get("airlock_active_runs") == 1.0,
                 "the run to start")
        d.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: m.get("/ready")[0] == 503, "/ready 503")
        status, _, body = m.get("/ready")
        check("draining" in body, f"/ready body {body!r}")
        status, _, body = m.get("/healthz")
        check_eq(status, 503, "/healthz while draining")
        check(body.startswith("draining\n"), f"/healthz body {body!r}")
        # the socket still answers: status says draining, not "not running"
        answer = d.request({"op": "status"})
        check(answer.get("stopping") is True, f"status while draining: {answer}")
        expect_error(d.request({"op": "exec", "name": "multi"}), "shutting_down")
        _, out, _ = d.airlock("status")
        check("DRAINING" in out and "NOT RUNNING" not in out,
              f"airlock status while draining: {out}")
        check_eq(samples(m.scrape())["airlock_ready"], 0.0, "airlock_ready")
        r = c.recv()
        check(r["ok"] and r["result"]["verdict"] == "ok",
              f"the draining run did not finish: {r}")
    finally:
        c.sock.close()
    check_eq(d.stop(), 0, "exit status")


@test("HTTP: idle, huge-header and slow clients do not stall the socket protocol")
def t_hostile_clients():
    m = Metrics()
    d = m.d
    check(d.submit("multi", MULTI)["ok"], "submit failed")
    socks = []
    try:
        # more idle connections than the limit (32), and one sending its
        # headers one byte at a time, never finishing
        for _ in range(40):
            s = socket.socket()
            s.settimeout(WAIT)
            try:
                s.connect(("127.0.0.1", m.port))
            except OSError:
                s.close()
                continue
            socks.append(s)
        slow = socks[0]
        slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        # a header block far above the per-connection memory (32 KiB)
        big = socket.create_connection(("127.0.0.1", m.port), timeout=WAIT)
        socks.append(big)
        try:
            big.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " +
                        b"a" * (256 << 10) + b"\r\n\r\n")
        except OSError:
            pass  # closed before it all went in: also a refusal
        t0 = time.monotonic()
        r = d.request({"op": "exec", "name": "multi"})
        check(r["ok"], f"exec while HTTP is flooded: {r}")
        took = time.monotonic() - t0
        note(f"exec answered in {took * 1000:.0f} ms with {len(socks)} "
             "hostile HTTP connections open")
        try:
            reply = big.recv(4096)
        except OSError:
            reply = b""
        check(reply == b"" or re.match(rb"HTTP/1\.[01] 4\d\d", reply),
              f"huge headers answered {reply[:80]!r}")
        # those slots are freed by their idle timeout (10 s), after which
        # HTTP answers again
        for s in socks[1:]:
            s.close()
        wait_for(lambda: ok_get(m, "/healthz"), "/healthz after the flood")
        # the slow client is cut off by the idle timeout, not held forever
        slow.settimeout(20)
        try:
            slow.recv(4096)  # EOF (or an error response), then closed
        except socket.timeout:
            raise Failure("the slow client was still connected after 20 s")
    finally:
        for s in socks:
            s.close()


def ok_get(m, path):
    try:
        return m.get(path)[0] == 200
    except OSError:
        return False


@test("configuration: bad --metrics-listen values stop start-up naming the flag; a taken port too")
def t_bad_listen():
    tmp = tempfile.mkdtemp(prefix="airlockd-listen-")
    try:
        def start(args, env=None):
            return subprocess.run(
                [test_daemon.AIRLOCKD, "--state-dir", os.path.join(tmp, "state"),
                 "--socket", os.path.join(tmp, "s.sock")] + args,
                capture_output=True, timeout=WAIT,
                env=dict(os.environ, **(env or {})))
        for value in ("9100", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536",
                      "localhost:9100", "::1:9100", "[::1]", "[::1]9100",
                      "1.2.3.4.5:80", ""):
            p = start(["--metrics-listen", value])
            check_eq(p.returncode, 2, f"--metrics-listen {value!r} exit status")
            check(b"--metrics-listen" in p.stderr,
                  f"{value!r}: not named: {p.stderr!r}")
        for value in ("-1", "65536", "9100x", "http"):
            p = start([], {"METRICS_PORT": value})
            check_eq(p.returncode, 2, f"METRICS_PORT={value!r} exit status")
            check(b"METRICS_PORT" in p.stderr, f"{value!r}: not named")
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            p = start(["--metrics-listen", f"127.0.0.1:{port}"],
                      {"METRICS_PORT": "9"})
            check_eq(p.returncode, 1, "taken port exit status")
            check(b"--metrics-listen" in p.stderr and
                  f"127.0.0.1:{port}".encode() in p.stderr,
                  f"taken port: {p.stderr[-300:]!r}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@test("configuration: METRICS_PORT alone serves on 127.0.0.1; [::1]:PORT serves IPv6")
def t_port_env():
    port = free_port()
    d = Daemon(env={"METRICS_PORT": str(port)})
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    c.request("GET", "/ready")
    check_eq(c.getresponse().status, 200, "/ready on METRICS_PORT")
    c.close()
    check(any(f"127.0.0.1:{port}" in l for l in d.log), "address not logged")
    d.stop()
    if not socket.has_ipv6:
        raise Skip("no IPv6")
    port = free_port()
    d = Daemon(args=["--metrics-listen", f"[::1]:{port}"])
    c = http.client.HTTPConnection("::1", port, timeout=WAIT)
    c.request("GET", "/healthz")
    check_eq(c.getresponse().status, 200, "/healthz on [::1]")
    c.close()


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@test("alerts: docs/alerts.yml passes promtool check rules and its unit tests (each alert fires and stays quiet)", root=False)
def t_alert_rules():
    require_promtool()
    status, out, err = harness.run_logged(
        ["promtool", "check", "rules", os.path.join(ROOT, "docs/alerts.yml")], WAIT)
    check_eq(status, 0, "promtool check rules")
    found = re.search(rb"SUCCESS: (\d+) rules found", out + err)
    check(found and int(found.group(1)) >= 8, "fewer than 8 rules")
    status, out, err = harness.run_logged(
        ["promtool", "test", "rules", "alerts_test.yml"], WAIT,
        cwd=os.path.join(ROOT, "tests/prometheus"))
    check_eq(status, 0, "promtool test rules")
    # every rule of the file is exercised by the test file
    with open(os.path.join(ROOT, "docs/alerts.yml")) as f:
        names = re.findall(r"^\s*- alert: (\w+)", f.read(), re.M)
    with open(os.path.join(ROOT, "tests/prometheus/alerts_test.yml")) as f:
        tests = f.read()
    for name in names:
        check(f'alertname="{name}", alertstate="firing"' in tests or
              f"alertname: {name}" in tests, f"alert {name} is not tested")
    note(f"{len(names)} alerts, each tested")


# ================================================================== runner

def main(argv):
    return harness.main(argv, test_daemon.configure,
                        report=test_daemon.report_failure,
                        after_test=test_daemon.stop_daemons,
                        root_reason="airlockd builds jails only as root")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
