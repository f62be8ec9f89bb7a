#!/usr/bin/env python3
"""Throughput through airlockd, side by side with bubblewrap.

    python3 bench/daemon_bench.py BUILD_DIR [RUNS_PER_CLIENT]

Starts BUILD_DIR/airlockd on a temporary state directory, registers a copy
of /bin/true as a module, then has 1 and 2 concurrent clients (one
connection each) exec it RUNS_PER_CLIENT times; the same number of
`bwrap ... /bin/true` runs by 1 and 2 concurrent callers runs in between,
so the rows see the same machine. Prints runs/second and per-run median.
Every exec is a full jail (the default policy) and a row in the manifest.
"""

import base64
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location(
    "client", os.path.join(REPO, "docs", "client.py"))
client = importlib.util.module_from_spec(spec)
spec.loader.exec_module(client)

BWRAP = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
         "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib",
         "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin",
         "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "/bin/true"]


def start_daemon(build, state, sock, max_active=4, env=None):
    proc = subprocess.Popen(
        [os.path.join(build, "airlockd"), "--state-dir", state, "--socket",
         sock, "--max-active", str(max_active), "--quota-per-hour", "0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, env=env)
    # the daemon says when it is ready: read until that line
    for line in proc.stderr:
        if b'"msg":"ready' in line:
            break
    else:
        raise SystemExit("airlockd exited before it was ready")
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    return proc


def exec_loop(sock, runs, times):
    conn = client.Airlock(sock)
    try:
        for _ in range(runs):
            t0 = time.monotonic()
            answer = conn.request(op="exec", name="true", args=[])
            times.append(time.monotonic() - t0)
            if not answer.get("ok") or answer["result"]["verdict"] != "ok":
                raise SystemExit(f"exec failed: {answer}")
    finally:
        conn.close()


def bwrap_loop(runs, times):
    for _ in range(runs):
        t0 = time.monotonic()
        subprocess.run(BWRAP, check=True)
        times.append(time.monotonic() - t0)


def measure(label, fn, clients, runs, out=print):
    times = []
    threads = [threading.Thread(target=fn, args=(runs, times))
               for _ in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    rate = clients * runs / elapsed
    out(f"  {label:<26} {rate:8.1f} runs/s   median "
        f"{statistics.median(times) * 1000:6.2f} ms per run")
    return rate


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    work = tempfile.mkdtemp(prefix="airlock-bench-")
    state, sock = os.path.join(work, "state"), os.path.join(work, "sock")
    daemon = start_daemon(build, state, sock)
    try:
        conn = client.Airlock(sock)
        with open("/bin/true", "rb") as f:
            content = base64.b64encode(f.read()).decode("ascii")
        answer = conn.request(op="submit", name="true", content=content)
        conn.close()
        if not answer.get("ok"):
            raise SystemExit(f"submit failed: {answer}")
        daemon_exec = lambda n, t: exec_loop(sock, n, t)  # noqa: E731
        have_bwrap = shutil.which("bwrap") is not None
        print(f"daemon throughput: {runs} runs per client, /bin/true as a "
              f"registered module, default policy, max 4 active jails")
        rates = {}
        for clients in (1, 2):
            rates[("airlockd", clients)] = measure(
                f"airlock exec, {clients} client(s)", daemon_exec, clients,
                runs)
            if have_bwrap:
                rates[("bwrap", clients)] = measure(
                    f"bwrap, {clients} caller(s)", bwrap_loop, clients, runs)
        if have_bwrap:
            print(f"  ratio with 2 concurrent callers: airlockd / bwrap = "
                  f"{rates[('airlockd', 2)] / rates[('bwrap', 2)]:.2f}")
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
