#!/usr/bin/env python3
"""An example airlockd client, Python 3 standard library only.

    python3 docs/client.py [--socket PATH] FILE [ARG...]

Submits FILE as a module (named after the file), waits for its validation
run, then execs it with ARGs and prints the result. The file itself is
passed to airlockd as an open descriptor (SCM_RIGHTS): nothing is encoded
and airlockd reads exactly the file the client opened; --base64 sends the
content inline instead (for clients that cannot pass descriptors). The socket is --socket,
else $AIRLOCK_SOCKET, else /run/airlock/airlock.sock. The protocol is
docs/protocol.md: one JSON object per line each way.

Exit status: 0 if the module ran and exited 0; 1 if the daemon refused a
request (the error is printed); the module's verdict line shows the rest.
"""

import argparse
import base64
import json
import os
import socket
import sys


class Airlock:
    """One connection to airlockd. request() sends a line and reads the
    answer with the same "id" (answers may come out of order)."""

    def __init__(self, path, timeout=120):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 0

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("airlockd closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def request(self, fd=None, **req):
        """Send one request; fd, if given, travels with its first byte."""
        self.next_id += 1
        req["id"] = str(self.next_id)
        line = json.dumps(req).encode() + b"\n"
        if fd is None:
            self.sock.sendall(line)
        else:
            sent = socket.send_fds(self.sock, [line], [fd])
            self.sock.sendall(line[sent:])
        while True:
            answer = self._line()
            if answer.get("id") == req["id"]:
                return answer


def show(what, answer):
    """Print one answer in a line or two; True if it is ok."""
    if not answer.get("ok"):
        err = answer.get("error", {})
        print(f"{what}: {err.get('code')}: {err.get('message')}")
    module = answer.get("module")
    if module:
        print(f"{what}: {module['name']} version {module['version']}: "
              f"{module['state']}")
    result = answer.get("result")
    if result:
        print(f"{what}: run {answer.get('run')}: verdict {result['verdict']}, "
              f"exit status {result['exit_status']}, "
              f"{result['wall_ms']:.1f} ms")
    return bool(answer.get("ok"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--socket", default=os.environ.get(
        "AIRLOCK_SOCKET", "/run/airlock/airlock.sock"))
    ap.add_argument("--base64", action="store_true",
                    help="send the content inline instead of the open file")
    ap.add_argument("file")
    ap.add_argument("args", nargs="*")
    opts = ap.parse_args()
    name = os.path.basename(opts.file)

    conn = Airlock(opts.socket)
    try:
        # submit answers once the validation run has ended
        with open(opts.file, "rb") as f:
            if opts.base64:
                content = base64.b64encode(f.read()).decode("ascii")
                answer = conn.request(op="submit", name=name,
                                      content=content)
            else:
                answer = conn.request(fd=f.fileno(), op="submit", name=name,
                                      content_fd=True)
        if not show("submit", answer):
            return 1
        answer = conn.request(op="exec", name=name, args=opts.args)
        if not show("exec", answer):
            return 1
    finally:
        conn.close()
    result = answer["result"]
    sys.stdout.write(result.get("stdout") or "")
    sys.stderr.write(result.get("stderr") or "")
    return 0 if result["exit_status"] == 0 else result["exit_status"]


if __name__ == "__main__":
    sys.exit(main())
