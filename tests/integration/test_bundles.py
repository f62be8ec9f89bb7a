#!/usr/bin/env python3
"""Integration tests for bundles (issue 14, item 4): a module that is a tar
archive (plain, gzip, zstd) with an entry point, unpacked once at submit
into STATE/bundles/<sha256>/, mounted read-only at /bundle as the run's
working directory. Hostile archives sent through the socket must be
refused with a message naming the entry and the rule, record nothing,
leave no file in the state directory and keep the daemon serving.

    python3 tests/integration/test_bundles.py BUILD_DIR [WORD...]

Python 3 standard library only (archives are built with tarfile).
"""

import base64
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile

import harness
from harness import Failure, check, check_eq, note, test

import test_daemon
from test_daemon import Daemon, expect_error, wait_for, WAIT

del harness.TESTS[:]

MAIN_PY = b"""#!/usr/bin/python3
import os, sys
from pkg import helper
print("helper", helper.ANSWER, "cwd", os.getcwd(), "args", sys.argv[1:])
try:
    open("written-by-the-module", "w")
    print("bundle writable")
except OSError as e:
    print("bundle read-only", e.errno)
"""
HELPER_PY = b"ANSWER = 42\n"


def member(name, data=b"", mode=0o644, kind=tarfile.REGTYPE, link=""):
    return (name, data, mode, kind, link)


def tar_bytes(members, compression=""):
    """A tar archive of (name, data, mode, type, linkname) tuples; the
    names are written as given (tarfile does not clean them)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:" + compression,
                      format=tarfile.PAX_FORMAT) as t:
        for name, data, mode, kind, link in members:
            ti = tarfile.TarInfo(name)
            ti.type = kind
            ti.mode = mode
            ti.linkname = link
            ti.mtime = 1700000000
            if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                ti.devmajor, ti.devminor = 1, 3
            if kind == tarfile.REGTYPE:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            else:
                t.addfile(ti)
    return buf.getvalue()


def python_bundle(compression="gz"):
    return tar_bytes([
        member("main.py", MAIN_PY, 0o755),
        member("pkg/__init__.py", b""),
        member("pkg/helper.py", HELPER_PY),
    ], compression)


def zstd_of(data):
    """zstd compression through the zstd command (tarfile has none)."""
    zstd = shutil.which("zstd")
    if not zstd:
        return None
    return subprocess.run([zstd, "-q", "-c"], input=data, check=True,
                          capture_output=True, timeout=WAIT).stdout


def submit_bundle(d, name, archive, entry="main.py", **extra):
    req = {"op": "submit", "name": name, "kind": "bundle", "entry": entry,
           "content": base64.b64encode(archive).decode()}
    req.update(extra)
    return d.request(req)


def state_files(d):
    """Every file and directory under the state directory but the
    database's own files."""
    out = []
    for top, dirs, files in os.walk(d.state):
        rel = os.path.relpath(top, d.state)
        for n in dirs + files:
            p = os.path.normpath(os.path.join(rel, n))
            if not p.startswith("manifest.db"):
                out.append(p)
    return sorted(out)


def module_names(d):
    r = d.request({"op": "list"})
    check(r.get("ok"), f"list: {r}")
    return sorted(m["name"] + ":" + m["state"] for m in r["modules"])


def stdout_of(r):
    return r.get("result", {}).get("stdout", "")


# ===================================================================== tests

@test("bundles: a python package bundle (tar.gz) is validated, runs its entry with /bundle as cwd, imports its helper, cannot write its tree")
def t_python_bundle():
    d = Daemon()
    archive = python_bundle("gz")
    r = submit_bundle(d, "pyapp", archive, policy="python",
                      validate_args=["v"])
    check(r.get("ok"), f"submit: {r}")
    mod = r["module"]
    check_eq(mod["state"], "active", "state")
    check_eq(mod["kind"], "bundle", "kind")
    check_eq(mod["entry"], "main.py", "entry")
    check_eq(mod["interpreter"], "python3", "interpreter of the entry")
    sha = hashlib.sha256(archive).hexdigest()
    check_eq(mod["sha256"], sha, "the module's hash is the archive's")
    out = stdout_of(r)
    check("helper 42 cwd /bundle args ['v']" in out, f"validation output: {out!r}")
    check("bundle read-only 30" in out, f"the tree was writable: {out!r}")
    # the archive is the module file; the tree sits in bundles/<sha256>
    check(os.path.isfile(os.path.join(d.state, "modules", sha)), "no modules/<sha256>")
    tree = os.path.join(d.state, "bundles", sha)
    check(os.path.isfile(os.path.join(tree, "pkg", "helper.py")), "no unpacked tree")
    check_eq(oct(os.stat(os.path.join(tree, "main.py")).st_mode & 0o7777), "0o555",
             "the entry's mode in the store")
    r = d.request({"op": "exec", "name": "pyapp", "args": ["x", "y"]})
    check(r.get("ok"), f"exec: {r}")
    check("helper 42 cwd /bundle args ['x', 'y']" in stdout_of(r), f"exec: {stdout_of(r)!r}")
    check(not os.path.exists(os.path.join(tree, "written-by-the-module")),
          "the module wrote into the store")


def maps_libarchive(pid):
    with open(f"/proc/{pid}/maps") as f:
        return any("/libarchive.so" in line for line in f)


@test("bundles: libarchive is loaded at the first bundle, not by an airlockd that has none")
def t_libarchive_loaded():
    # linked, libarchive and its libxml2, ICU and libstdc++ put ~3 MiB
    # into every idle airlockd's resident set
    d = Daemon()
    check(not maps_libarchive(d.proc.pid), "an idle airlockd has libarchive mapped")
    check(d.submit("plain", b"#!/bin/sh\necho plain\n").get("ok"), "submit of a script")
    check(not maps_libarchive(d.proc.pid), "a script's submit mapped libarchive")
    r = submit_bundle(d, "pyapp", python_bundle("gz"), policy="python")
    check(r.get("ok"), f"submit of a bundle: {r}")
    check(maps_libarchive(d.proc.pid), "a bundle was unpacked without libarchive mapped")


@test("bundles: plain tar and tar.zst unpack too; the CLI submits a bundle with --entry")
def t_formats_and_cli():
    d = Daemon()
    r = submit_bundle(d, "plain", python_bundle(""), policy="python")
    check(r.get("ok") and r["module"]["state"] == "active", f"plain tar: {r}")
    z = zstd_of(python_bundle(""))
    if z is None:
        raise Failure("zstd is not installed (tools/install-deps.sh adds it)")
    r = submit_bundle(d, "zst", z, policy="python")
    check(r.get("ok") and r["module"]["state"] == "active", f"tar.zst: {r}")
    tmp = tempfile.mkdtemp(prefix="airlock-bundle-")
    try:
        path = os.path.join(tmp, "app.tar.gz")
        with open(path, "wb") as f:
            f.write(python_bundle("gz"))
        status, out, err = d.airlock("submit", path, "--name", "cliapp",
                                     "--policy", "python", "--entry", "main.py",
                                     "--json")
        check_eq(status, 0, f"airlock submit --entry (stderr {err!r})")
        check('"kind":"bundle"' in out and '"entry":"main.py"' in out, out[:400])
        status, out, err = d.airlock("exec", "cliapp")
        check_eq(status, 0, f"airlock exec (stderr {err!r})")
        check("helper 42 cwd /bundle" in out, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@test("bundles: archive and restore move the archive; the tree stays; exec follows the state")
def t_archive_restore():
    d = Daemon()
    archive = python_bundle("gz")
    sha = hashlib.sha256(archive).hexdigest()
    r = submit_bundle(d, "arc", archive, policy="python")
    check(r.get("ok"), f"submit: {r}")
    r = d.request({"op": "archive", "name": "arc", "reason": "test"})
    check(r.get("ok"), f"archive: {r}")
    check(os.path.isfile(os.path.join(d.state, "archive", sha)), "no archive/<sha256>")
    check(not os.path.exists(os.path.join(d.state, "modules", sha)), "modules/<sha256> stayed")
    expect_error(d.request({"op": "exec", "name": "arc"}), "archived")
    # an archived module keeps its tree through a sweep: a rejected
    # bundle's sweep (which removes that one's tree) leaves it alone
    bad = tar_bytes([member("run.sh", b"#!/bin/sh\nexit 3\n", 0o755)])
    expect_error(submit_bundle(d, "bad", bad, entry="run.sh"), "rejected")
    wait_for(lambda: not os.path.exists(os.path.join(
        d.state, "bundles", hashlib.sha256(bad).hexdigest())), "a sweep")
    check(os.path.isdir(os.path.join(d.state, "bundles", sha)),
          "the tree of an archived bundle went")
    r = d.request({"op": "restore", "name": "arc"})
    check(r.get("ok"), f"restore: {r}")
    r = d.request({"op": "exec", "name": "arc"})
    check(r.get("ok") and "helper 42" in stdout_of(r), f"exec after restore: {r}")


@test("bundles: a bundle whose validation fails is rejected and its tree removed")
def t_rejected_tree_removed():
    d = Daemon()
    archive = tar_bytes([member("run.sh", b"#!/bin/sh\necho no >&2\nexit 3\n", 0o755)], "gz")
    sha = hashlib.sha256(archive).hexdigest()
    r = submit_bundle(d, "bad", archive, entry="run.sh")
    expect_error(r, "rejected")
    wait_for(lambda: not os.path.exists(os.path.join(d.state, "bundles", sha)),
             "the rejected bundle's tree to go")
    check_eq(os.listdir(os.path.join(d.state, "staging")), [], "staging/")


def bomb(size=300 << 20):
    """A tar.gz of one file of `size` zero bytes: a few hundred KiB."""
    class Zeros(io.RawIOBase):
        def __init__(self, n):
            self.left = n

        def readable(self):
            return True

        def readinto(self, b):
            n = min(len(b), self.left)
            b[:n] = bytes(n)
            self.left -= n
            return n

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as t:
        ti = tarfile.TarInfo("zeros")
        ti.size = size
        t.addfile(ti, io.BufferedReader(Zeros(size)))
    return buf.getvalue()


def many(n=10000):
    return tar_bytes([member("main.sh", b"#!/bin/sh\necho hi\n", 0o755)] +
                     [member(f"f{i}", b"x") for i in range(n)], "gz")


def zip_bytes():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("main.sh", "#!/bin/sh\necho hi\n")
    return buf.getvalue()


GOOD_SH = member("main.sh", b"#!/bin/sh\necho hi\n", 0o755)
HOSTILE = [
    ("../ escape", lambda: tar_bytes([GOOD_SH, member("../evil", b"x")]),
     "main.sh", "bad_request", ['"../evil"', '".."']),
    ("a/../../ escape", lambda: tar_bytes([GOOD_SH, member("a/../../evil", b"x")], "gz"),
     "main.sh", "bad_request", ['"a/../../evil"']),
    ("absolute name", lambda: tar_bytes([GOOD_SH, member("/tmp/evil", b"x")]),
     "main.sh", "bad_request", ['"/tmp/evil"', "absolute"]),
    ("symlink escaping", lambda: tar_bytes([GOOD_SH, member("up", kind=tarfile.SYMTYPE, link="../../.."),
                                            member("up/etc/x", b"x")]),
     "main.sh", "bad_request", ['"up"', "symbolic link"]),
    ("hardlink", lambda: tar_bytes([GOOD_SH, member("h", kind=tarfile.LNKTYPE, link="/etc/shadow")]),
     "main.sh", "bad_request", ['"h"', "hard link"]),
    ("device node", lambda: tar_bytes([GOOD_SH, member("null", kind=tarfile.CHRTYPE, mode=0o666)]),
     "main.sh", "bad_request", ['"null"', "character device"]),
    ("fifo", lambda: tar_bytes([GOOD_SH, member("p", kind=tarfile.FIFOTYPE)]),
     "main.sh", "bad_request", ['"p"', "FIFO"]),
    ("setuid", lambda: tar_bytes([member("main.sh", b"#!/bin/sh\n", 0o4755)]),
     "main.sh", "bad_request", ['"main.sh"', "setuid"]),
    ("10,000 entries", many, "main.sh", "too_large", ["more than 4096 entries"]),
    ("gzip bomb", bomb, "zeros", "too_large", ['"zeros"', "--bundle-max-bytes"]),
    ("zip archive", zip_bytes, "main.sh", "bad_request", ["zip", "only tar"]),
    ("not an archive", lambda: b"#!/bin/sh\necho hi\n" * 40, "main.sh", "bad_request",
     ["not a"]),
    ("entry missing", lambda: tar_bytes([GOOD_SH]), "nope.sh", "bad_request",
     ['"nope.sh"', "no such file"]),
    ("entry not executable", lambda: tar_bytes([member("main.sh", b"#!/bin/sh\n", 0o644)]),
     "main.sh", "bad_request", ["not executable", "chmod +x"]),
    ("entry with ..", lambda: tar_bytes([GOOD_SH]), "../main.sh", "bad_request",
     ["relative path"]),
    ("entry a directory", lambda: tar_bytes([GOOD_SH, member("d/x", b"x")]), "d",
     "bad_request", ["directory"]),
]


@test("bundles: hostile archives through the socket: a clear error naming the entry and rule, nothing recorded, no file left, daemon alive")
def t_hostile_archives():
    d = Daemon()
    before = state_files(d)
    for what, make, entry, code, words in HOSTILE:
        archive = make()
        r = submit_bundle(d, "hostile", archive, entry=entry)
        expect_error(r, code)
        msg = r["error"]["message"]
        for w in words:
            check(w in msg, f"{what}: {w!r} not in {msg!r}")
        check_eq(module_names(d), [], f"{what}: modules recorded")
        check_eq(state_files(d), before, f"{what}: files in the state directory")
        note(f"{what}: {msg}")
    # the daemon still serves: a good bundle goes through
    r = submit_bundle(d, "fine", tar_bytes([GOOD_SH], "gz"), entry="main.sh")
    check(r.get("ok") and stdout_of(r) == "hi\n", f"a good bundle after them: {r}")


@test("bundles: bad kind and entry members are refused and change nothing")
def t_bad_members():
    d = Daemon()
    archive = tar_bytes([GOOD_SH])
    content = base64.b64encode(archive).decode()
    cases = [
        ({"kind": "tarball", "entry": "main.sh"}, "kind"),
        ({"kind": "bundle"}, "needs \"entry\""),
        ({"entry": "main.sh"}, "\"entry\" is for"),
        ({"kind": "bundle", "entry": ""}, "entry"),
        ({"kind": "bundle", "entry": "/main.sh"}, "relative path"),
        ({"kind": "bundle", "entry": "a//b"}, "relative path"),
        ({"kind": "bundle", "entry": "x" * 2000}, "too long"),
        ({"kind": 3, "entry": "main.sh"}, "expected a string"),
    ]
    for extra, word in cases:
        req = {"op": "submit", "name": "m", "content": content}
        req.update(extra)
        r = d.request(req)
        expect_error(r, "bad_request")
        check(word in r["error"]["message"], f"{extra}: {r['error']['message']!r}")
    check_eq(module_names(d), [], "modules recorded")
    check_eq(os.listdir(os.path.join(d.state, "bundles")), [], "bundles/")


# ================================================================ the build

HELLO_C = b"""#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	char cwd[256];
	printf("hello from C, %d args, cwd %s\\n", argc - 1,
	       getcwd(cwd, sizeof(cwd)) ? cwd : "?");
	return 0;
}
"""
BROKEN_C = b"int main(void) { return undeclared_thing; }\n"
CC = "cc -O2 -o main main.c"


def c_bundle(source=HELLO_C):
    return tar_bytes([member("main.c", source)], "gz")


def bundle_dir(d):
    return sorted(os.listdir(os.path.join(d.state, "bundles")))


@test("bundles: a C bundle built with cc at validation runs; the build's log is in the answer; exec runs the built tree")
def t_c_build():
    d = Daemon()
    archive = c_bundle()
    sha = hashlib.sha256(archive).hexdigest()
    r = submit_bundle(d, "hello-c", archive, entry="main", policy="c", build=CC)
    check(r.get("ok"), f"submit: {r}")
    check_eq(r["module"]["state"], "active", "state")
    check_eq(r["module"]["build"], CC, "the module's build command")
    check_eq(r["build"]["verdict"], "ok", "the build's verdict")
    check(r.get("build_run") and r["build_run"] != r["run"], f"build run: {r.get('build_run')}")
    check("hello from C, 0 args, cwd /bundle" in stdout_of(r), f"validation: {stdout_of(r)!r}")
    names = bundle_dir(d)
    built = [n for n in names if n.startswith(sha + ".b")]
    check(len(built) == 1 and sha in names, f"bundles/: {names}")
    st = os.stat(os.path.join(d.state, "bundles", built[0], "main"))
    check_eq((st.st_uid, oct(st.st_mode & 0o7777)), (0, "0o555"), "the built program's owner and mode")
    r = d.request({"op": "exec", "name": "hello-c", "args": ["a", "b"]})
    check(r.get("ok") and "hello from C, 2 args, cwd /bundle" in stdout_of(r), f"exec: {r}")
    # the build ran once: exec did not build again, no copy is left
    check(not any(n.startswith(".build-") for n in bundle_dir(d)), f"bundles/: {bundle_dir(d)}")
    r = d.request({"op": "runs", "name": "hello-c"})
    check(r.get("ok"), f"runs: {r}")
    check_eq(len(r["runs"]), 3, "runs: the build, the validation, the exec")


def expect_build_failed(d, r, words, alone=True):
    """A build_failed rejection; `alone`: no other module keeps files, so
    bundles/ and modules/ must end up empty (else: no build copy left)."""
    expect_error(r, "rejected")
    msg = r["error"]["message"]
    check("build_failed" in msg, f"reason: {msg!r}")
    check_eq(r["result"]["verdict"], "build_failed", "the result's verdict")
    for w in words:
        check(w in msg or w in r["result"].get("stderr", ""), f"{w!r} not in {msg!r} nor the build's stderr")
    check_eq(r["module"]["state"], "rejected", "state")
    expect_error(d.request({"op": "exec", "name": r["module"]["name"]}), "not_found")
    check_eq(os.listdir(os.path.join(d.state, "staging")), [], "staging/")
    if not alone:
        check(not any(n.startswith(".build-") for n in bundle_dir(d)),
              f"a build copy left: {bundle_dir(d)}")
        return
    wait_for(lambda: bundle_dir(d) == [], f"bundles/ to empty ({bundle_dir(d)})")
    check_eq(os.listdir(os.path.join(d.state, "modules")), [], "modules/")


@test("bundles: a compile error is build_failed with the compiler's message, not a crash; nothing activated or left")
def t_compile_error():
    d = Daemon()
    r = submit_bundle(d, "broken-c", c_bundle(BROKEN_C), entry="main", policy="c", build=CC)
    expect_build_failed(d, r, ["exited 1", "undeclared_thing"])
    r = d.request({"op": "runs", "name": "broken-c"})
    check_eq([x["verdict"] for x in r["runs"]], ["build_failed"], "its runs")
    check("undeclared_thing" in r["runs"][0]["stderr_excerpt"], "the build log in the run's excerpt")


@test("bundles: a build that times out is build_failed with the reason; nothing activated, no copy left")
def t_build_timeout():
    d = Daemon(args=["--build-timeout", "1s"])
    t0 = time.monotonic()
    r = submit_bundle(d, "slow", c_bundle(), entry="main", policy="c", build="sleep 60")
    check(time.monotonic() - t0 < 20, "the build was not stopped at its timeout")
    expect_build_failed(d, r, ["timeout", "the build's limit: 1000 ms"])


@test("bundles: a build's output is held to the bundle rules: a FIFO, a missing entry, too many files")
def t_build_output_rules():
    d = Daemon(args=["--bundle-max-entries", "50"])
    r = submit_bundle(d, "fifo", c_bundle(), entry="main", policy="c",
                      build=CC + " && mkfifo pipe")
    expect_build_failed(d, r, ["a FIFO at pipe"])
    r = submit_bundle(d, "noentry", c_bundle(), entry="main", policy="c", build="true")
    expect_build_failed(d, r, ['entry "main": no such file'])
    r = submit_bundle(d, "many", c_bundle(), entry="main", policy="c",
                      build=CC + " && for i in $(seq 100); do : > f$i; done")
    expect_build_failed(d, r, ["--bundle-max-entries"])
    # and a good one still builds afterwards
    r = submit_bundle(d, "fine", c_bundle(), entry="main", policy="c", build=CC)
    check(r.get("ok"), f"a good build after them: {r}")


CBUILD_POLICY = """[policy]
description = the c policy with a build step of its own
[limits]
memory = 512M
timeout = 20s
pids = 128
[filesystem]
tmp_size = 128M
[seccomp]
default = kill
allow = @basic-io @file-system @memory @process @credentials @signal @time
allow = @event @network @ipc
[build]
command = cc -O2 -o main main.c
timeout = 2s
"""


@test("bundles: a policy's [build] gives the command and the build's timeout when the submit has none")
def t_policy_build_section():
    pdir = tempfile.mkdtemp(prefix="airlock-policies-")
    try:
        os.chmod(pdir, 0o755)
        path = os.path.join(pdir, "cbuild.policy")
        with open(path, "w") as f:
            f.write(CBUILD_POLICY)
        os.chmod(path, 0o644)
        d = Daemon(env={"AIRLOCK_POLICY_PATH": pdir})
        r = submit_bundle(d, "pol-c", c_bundle(), entry="main", policy="cbuild")
        check(r.get("ok"), f"submit: {r}")
        check_eq(r["module"]["build"], "cc -O2 -o main main.c", "the policy's command, recorded")
        check("hello from C" in stdout_of(r), stdout_of(r))
        # the request's command wins; the policy's 2s timeout holds it
        r = submit_bundle(d, "pol-slow", c_bundle(), entry="main", policy="cbuild",
                          build="sleep 60")
        expect_build_failed(d, r, ["timeout", "the build's limit: 2000 ms"],
                            alone=False)
    finally:
        shutil.rmtree(pdir, ignore_errors=True)


# ================================================================== runner

def main(argv):
    return harness.main(argv, test_daemon.configure,
                        report=test_daemon.report_failure,
                        after_test=test_daemon.stop_daemons,
                        root_reason="airlockd builds jails only as root")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
