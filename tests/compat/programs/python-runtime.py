#!/usr/bin/env python3
"""What generated Python does: asyncio with subprocesses, multiprocessing
pools and queues, threads, concurrent.futures, sqlite3, numpy, a loopback
HTTP server, uuid/platform/socket lookups, files in the working directory,
a descriptor number in the hundreds."""
import asyncio
import concurrent.futures
import http.server
import json
import multiprocessing
import os
import platform
import socket
import sqlite3
import threading
import urllib.request
import uuid

import numpy


def square(x):
    return x * x


async def child_output():
    proc = await asyncio.create_subprocess_exec(
        "echo", "hi", stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    r, w = socket.socketpair()
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(w, b"x")
    got = await loop.sock_recv(r, 1)
    return out.strip().decode() + got.decode()


def serve_once():
    srv = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=srv.handle_request, daemon=True).start()
    with urllib.request.urlopen(f"http://127.0.0.1:{srv.server_port}/") as r:
        return r.status


if __name__ == "__main__":
    assert asyncio.run(child_output()) == "hix"
    with multiprocessing.Pool(2) as pool:
        assert pool.map(square, range(10)) == [x * x for x in range(10)]
    q = multiprocessing.Queue()
    p = multiprocessing.Process(target=q.put, args=(7,))
    p.start()
    assert q.get(timeout=10) == 7
    p.join()
    with concurrent.futures.ProcessPoolExecutor(2) as ex:
        assert list(ex.map(square, [3, 4])) == [9, 16]
    threads = [threading.Thread(target=square, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    db = sqlite3.connect("results.db")
    db.execute("create table t (x)")
    db.executemany("insert into t values (?)", [(i,) for i in range(100)])
    assert db.execute("select sum(x) from t").fetchone()[0] == 4950
    a = numpy.arange(12.0).reshape(3, 4)
    assert float((a @ a.T).trace()) == 1.0 * sum(x * x for x in range(12))
    assert serve_once() == 200
    uuid.uuid1(), uuid.uuid4(), platform.platform(), socket.gethostname()
    socket.getaddrinfo("localhost", 80)
    os.mkfifo("fifo")
    # a program holding several hundred descriptors (pipes of a pool, a
    # test runner's files): fd 600 is within the usual soft limit of 1024
    os.dup2(0, 600)
    os.close(600)
    with open("results.json", "w") as f:
        json.dump({"ok": True}, f)
    print("ok")
