#!/usr/bin/env python3
"""The include graph against the floors of docs/design.md ("Layout"):

    common  <-  policy  <-  sandbox  <-  supervisor  <-  tools
    common  <-  manifest  <-  supervisor, tools

A part includes its own headers and the public header of a part below it
(common/common.h, policy/policy.h, manifest/manifest.h, sandbox/sandbox.h,
and of supervisor/ the protocol codec, protocol.h: the CLI links the codec,
never the daemon, so supervisor.h is the daemon's own), never another
part's private header (internal.h, run_internal.h, jail_msg.h, cli.h, ...)
and never a part above it. bench/ and tests/ may use any public
header. The check reads #include "..." lines of every .c, .h and .S file.

    python3 tests/integration/test_layering.py BUILD_DIR [WORD...]

BUILD_DIR is accepted for tests/run.sh's sake and not used.

Python 3 standard library only.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

import harness
from harness import check, check_eq, note, test

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# part -> the parts whose public headers it may include (besides its own)
MAY_INCLUDE = {
    "common": set(),
    "policy": {"common"},
    "manifest": {"common"},
    "sandbox": {"common", "policy"},
    "supervisor": {"common", "policy", "manifest", "sandbox"},
    "tools": {"common", "policy", "manifest", "sandbox", "supervisor"},
    # the benchmarks: any public header (unit tests are white-box: they
    # may reach a part's internals, and are not checked)
    "bench": {"common", "policy", "manifest", "sandbox", "supervisor"},
}
PARTS = ("common", "policy", "manifest", "sandbox", "supervisor", "tools")
# each part's public headers: the one a part below may see
PUBLIC = {
    "common": {"common/common.h"},
    "policy": {"policy/policy.h"},
    "manifest": {"manifest/manifest.h"},
    "sandbox": {"sandbox/sandbox.h"},
    "supervisor": {"supervisor/protocol.h"},
    "tools": set(),
}
INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]+"([^"]+)"', re.M)


def sources(root):
    for top in MAY_INCLUDE:
        base = os.path.join(root, top)
        for d, dirs, files in os.walk(base):
            dirs[:] = [x for x in dirs if not x.startswith(".")]
            for f in files:
                if f.endswith((".c", ".h", ".S")):
                    yield os.path.relpath(os.path.join(d, f), root)


def violations(root):
    """Every include that breaks the rules, as 'FILE:LINE: why'."""
    found = []
    for rel in sorted(sources(root)):
        part = rel.split(os.sep)[0]
        with open(os.path.join(root, rel), errors="replace") as f:
            text = f.read()
        for m in INCLUDE.finditer(text):
            inc = m.group(1)
            target = inc.split("/")[0]
            if target not in PARTS:
                continue  # generated (vmlinux.h, *.skel.h) or local
            line = text.count("\n", 0, m.start()) + 1
            where = f"{rel}:{line}: {inc}"
            if target == part:
                continue  # a part's own headers, private ones included
            if target not in MAY_INCLUDE[part]:
                found.append(f"{where}: {part}/ may not include {target}/ "
                             f"(docs/design.md: {part} is not above {target})")
            elif inc not in PUBLIC[target]:
                found.append(f"{where}: a private header of {target}/ "
                             f"(only {', '.join(sorted(PUBLIC[target]))} is for other parts)")
    return found


@test("the include graph keeps to the floors: no part includes a part above it or a private header",
      root=False)
def t_tree():
    bad = violations(ROOT)
    check(not bad, "include rules broken:\n" + "\n".join(bad))
    note(f"{sum(1 for _ in sources(ROOT))} files read")


@test("the layering check refuses a bad include (a temporary tree with four)", root=False)
def t_refuses():
    tmp = tempfile.mkdtemp(prefix="airlock-layering-")
    try:
        def put(rel, text):
            path = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        put("common/common.h", "/* ok */\n")
        put("policy/policy.h", '#include "common/common.h"\n')
        put("policy/internal.h", '#include "policy/policy.h"\n')
        put("sandbox/ok.c", '#include "policy/policy.h"\n#include "sandbox/internal.h"\n')
        check_eq(violations(tmp), [], "a tree that keeps the rules")
        # a floor going the wrong way, a private header across parts, and
        # the CLI reaching past the daemon's codec
        put("manifest/bad.c", '#include "common/common.h"\n#include "sandbox/sandbox.h"\n')
        put("sandbox/bad.c", '\n#include "policy/internal.h"\n')
        put("tools/bad.c", '#include "supervisor/internal.h"\n')
        # the daemon's header: the CLI has no business with airlockd's state
        put("tools/daemon.c", '#include "supervisor/protocol.h"\n'
            '#include "supervisor/supervisor.h"\n')
        bad = violations(tmp)
        check_eq(len(bad), 4, f"violations found: {bad}")
        check(bad[0].startswith("manifest/bad.c:2: sandbox/sandbox.h: manifest/ may not include"),
              bad[0])
        check(bad[1].startswith("sandbox/bad.c:2: policy/internal.h: a private header"), bad[1])
        check(bad[2].startswith("tools/bad.c:1: supervisor/internal.h: a private header"), bad[2])
        check(bad[3].startswith("tools/daemon.c:2: supervisor/supervisor.h: a private header"),
              bad[3])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def format_check(files):
    """make format-check over FILES: (exit status, its output)."""
    r = subprocess.run(["make", "-s", "-C", ROOT, "format-check", "FORMAT_SRC=" + " ".join(files)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return r.returncode, r.stdout


@test("format-check passes the tree and refuses a misformatted file", root=False)
def t_format():
    if shutil.which("clang-format") is None:
        check(os.environ.get("CI") != "true", "clang-format is missing (tools/install-deps.sh)")
        return
    tmp = tempfile.mkdtemp(prefix="airlock-format-")
    try:
        good = os.path.join(tmp, "good.c")
        bad = os.path.join(tmp, "bad.c")
        # .clang-format is found from the file's directory up: give the
        # temporary files the tree's own
        shutil.copy(os.path.join(ROOT, ".clang-format"), tmp)
        with open(good, "w") as f:
            f.write("static int one(void)\n{\n\treturn 1;\n}\n")
        with open(bad, "w") as f:
            f.write("static int one(void) {\n  return 1;\n}\n")
        rc, out = format_check([good])
        check_eq(rc, 0, "a formatted file: " + out)
        rc, out = format_check([good, bad])
        check(rc != 0, "a misformatted file passed: " + out)
        check(bad + ": " in out and "lines differ" in out, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def configure(build_dir):
    return []


if __name__ == "__main__":
    sys.exit(harness.main(sys.argv, configure))
