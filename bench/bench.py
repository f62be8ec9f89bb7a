#!/usr/bin/env python3
"""make bench: airlock beside its peers, every figure of issue 8 in one run.

    python3 bench/bench.py BUILD_DIR [OUT_DIR]

1. Per-run latency, rows interleaved round by round (bench/launch.c):
     bare      /bin/true, posix_spawn + wait4
     unshare   the same namespaces as airlock (mount pid net ipc uts cgroup)
     bwrap     bubblewrap with a comparable jail
     run       airlock run -- /bin/true (default policy, everything on)
     exec      airlockd's exec of a registered /bin/true over a kept
               connection (a full jail, and a row in the manifest)
   min / median / p99 wall time, ratio of medians to bare, and CPU time.
2. Throughput with 1, 2 and 4 concurrent callers: airlockd against bwrap,
   and how each grows with callers (the machine's cores bound it).
3. Supervisor memory: idle RSS, RSS with N concurrent sleeping jails and
   the cost per jail; then 256 concurrent sleeping jails, all must be ok.
4. Timeout precision: 20 spinning modules with --timeout 200ms.

OUT_DIR (default BUILD_DIR/bench) receives latency.csv (every sample) and
summary.txt (the table as printed), which bench/chart.sh turns into a PNG.

Environment: ROUNDS (300), THROUGHPUT_RUNS (200), RSS_JAILS (64),
MANY_JAILS (256), TIMEOUT_RUNS (20).
"""

import base64
import importlib.util
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "daemon_bench", os.path.join(HERE, "daemon_bench.py"))
daemon_bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(daemon_bench)
client = daemon_bench.client

SLEEPER = b"#!/bin/sh\nsleep \"${1:-0}\"\n"
OUT = []


def say(line=""):
    print(line, flush=True)
    OUT.append(line)


def env_int(name, default):
    return int(os.environ.get(name, default))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def submit(sock, name, content):
    conn = client.Airlock(sock)
    try:
        answer = conn.request(op="submit", name=name,
                              content=base64.b64encode(content).decode())
    finally:
        conn.close()
    if not answer.get("ok"):
        raise SystemExit(f"submit {name} failed: {answer}")


# ------------------------------------------------------------------ latency

def latency(build, out_dir, sock, rounds):
    unshare = shutil.which("unshare")
    bwrap = shutil.which("bwrap")
    request = json.dumps({"op": "exec", "name": "true", "args": []},
                         separators=(",", ":"))
    rows = [
        ("bare", "/bin/true"),
        ("unshare", f"{unshare} --mount --pid --net --ipc --uts --cgroup "
                    "--fork /bin/true"),
        ("bwrap", " ".join([bwrap] + daemon_bench.BWRAP[1:])),
        ("airlock run", None),
        ("airlock exec", f"@{sock} {request}"),
    ]
    args = [os.path.join(build, "bench", "launch"), str(rounds)]
    for name, cmd in rows:
        if cmd is None:
            cmd = f"{os.path.join(build, 'airlock')} run -- /bin/true"
        args += [name.replace(" ", "_"), cmd]
    env = dict(os.environ, LAUNCH_CSV=os.path.join(out_dir, "latency.csv"))
    p = subprocess.run(args, env=env, capture_output=True, text=True,
                       check=True)
    say(f"per-run latency: {rounds} interleaved rounds of /bin/true "
        f"(wall ms; CPU ms of the run's processes; exec: airlockd's, mean)")
    for line in p.stdout.splitlines():
        say("  " + line.replace("airlock_run", "airlock run ")
            .replace("airlock_exec", "airlock exec"))


# --------------------------------------------------------------- throughput

def throughput(sock, runs):
    say()
    say(f"throughput: {runs} runs per caller, /bin/true")
    rates = {}
    for callers in (1, 2, 4):
        rates["airlockd", callers] = daemon_bench.measure(
            f"airlockd exec, {callers} caller(s)",
            lambda n, t: daemon_bench.exec_loop(sock, n, t), callers, runs,
            out=say)
        rates["bwrap", callers] = daemon_bench.measure(
            f"bwrap, {callers} caller(s)", daemon_bench.bwrap_loop, callers,
            runs, out=say)
    for callers in (2, 4):
        say(f"  {callers} callers: airlockd / bwrap = "
            f"{rates['airlockd', callers] / rates['bwrap', callers]:.2f}x; "
            f"airlockd {callers} / 1 caller = "
            f"{rates['airlockd', callers] / rates['airlockd', 1]:.2f}x, "
            f"bwrap {rates['bwrap', callers] / rates['bwrap', 1]:.2f}x")


# ------------------------------------------------------------------- memory

def sleeping_jails(sock, n, seconds, nconn=8):
    """Start n concurrent sleeping runs over a few connections (requests
    in flight side by side); returns [(connection, answers due)]."""
    conns = [[client.Airlock(sock, timeout=seconds + 300), 0]
             for _ in range(min(n, nconn))]
    for i in range(n):
        entry = conns[i % len(conns)]
        c = entry[0]
        c.next_id += 1
        req = {"op": "exec", "name": "sleeper", "args": [str(seconds)],
               "id": str(c.next_id)}
        c.sock.sendall(json.dumps(req).encode() + b"\n")
        entry[1] += 1
    return conns


def wait_active(sock, n, limit=120):
    conn = client.Airlock(sock)
    try:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            st = conn.request(op="status")
            if st.get("active_runs", 0) >= n:
                return True
            time.sleep(0.2)
        return False
    finally:
        conn.close()


def collect(conns):
    verdicts = {}
    for c, due in conns:
        for _ in range(due):
            try:
                answer = c._line()
                r = answer.get("result") or {}
                v = r.get("verdict") \
                    or (answer.get("error") or {}).get("code", "?")
                if v == "setup_error":
                    v += ": " + r.get("error", "")[:120]
            except (OSError, ValueError) as e:
                v = f"error: {e}"
            verdicts[v] = verdicts.get(v, 0) + 1
        c.close()
    return verdicts


def memory(daemon, sock, n, many):
    say()
    time.sleep(0.5)
    idle = rss_kib(daemon.pid)
    say(f"supervisor memory (VmRSS of airlockd):")
    say(f"  idle                      {idle:8d} KiB")
    conns = sleeping_jails(sock, n, 2 + n // 10)
    if not wait_active(sock, n):
        say(f"  {n} jails did not all start")
    busy = rss_kib(daemon.pid)
    verdicts = collect(conns)
    say(f"  {n:3d} sleeping jails         {busy:8d} KiB   "
        f"{(busy - idle) / n:6.1f} KiB per jail   verdicts {verdicts}")
    t0 = time.monotonic()
    conns = sleeping_jails(sock, many, 2 + many // 10)
    started = wait_active(sock, many)
    peak = rss_kib(daemon.pid)
    verdicts = collect(conns)
    ok = started and verdicts == {"ok": many}
    say(f"  {many:3d} sleeping jails         {peak:8d} KiB   "
        f"{(peak - idle) / many:6.1f} KiB per jail   verdicts {verdicts}   "
        f"{'all ok' if ok else 'FAILED'} in {time.monotonic() - t0:.1f} s")
    return ok


# ------------------------------------------------------------------ timeout

def timeout_precision(build, runs):
    say()
    walls, reported = [], []
    for _ in range(runs):
        t0 = time.monotonic()
        p = subprocess.run([os.path.join(build, "airlock"), "run", "--json",
                            "--timeout", "200ms", "--", "/bin/sh", "-c",
                            "while :; do :; done"],
                           capture_output=True, text=True)
        walls.append((time.monotonic() - t0) * 1000)
        r = json.loads(p.stdout)
        if r.get("verdict") != "timeout":
            say(f"  unexpected verdict {r.get('verdict')}")
        reported.append(r.get("wall_ms", 0))
    say(f"timeout precision: {runs} spinning modules, --timeout 200ms")
    say(f"  verdict's wall_ms         median {statistics.median(reported):7.1f} ms"
        f"   min {min(reported):7.1f}   max {max(reported):7.1f}")
    say(f"  whole airlock run         median {statistics.median(walls):7.1f} ms"
        f"   min {min(walls):7.1f}   max {max(walls):7.1f}")


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    out_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(build, "bench")
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="airlock-bench-")
    state, sock = os.path.join(work, "state"), os.path.join(work, "sock")
    many = env_int("MANY_JAILS", 256)
    # sleeping jails must outlive the time it takes to start them all
    daemon = daemon_bench.start_daemon(
        build, state, sock, max_active=max(many, 8),
        env=dict(os.environ, SANDBOX_TIMEOUT_MS="120000"))
    ok = True
    try:
        with open("/bin/true", "rb") as f:
            submit(sock, "true", f.read())
        submit(sock, "sleeper", SLEEPER)
        ver = subprocess.run([os.path.join(build, "airlock"), "version"],
                             capture_output=True, text=True).stdout
        say(f"airlock benchmark: {os.cpu_count()} CPUs, "
            f"{os.uname().release}, load {os.getloadavg()[0]:.1f}; "
            + ", ".join(ver.strip().splitlines()[1:]))
        say()
        latency(build, out_dir, sock, env_int("ROUNDS", 300))
        throughput(sock, env_int("THROUGHPUT_RUNS", 200))
        ok = memory(daemon, sock, env_int("RSS_JAILS", 64), many)
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    timeout_precision(build, env_int("TIMEOUT_RUNS", 20))
    with open(os.path.join(out_dir, "summary.txt"), "w") as f:
        f.write("\n".join(OUT) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
