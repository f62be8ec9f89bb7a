#!/usr/bin/env python3
"""Real programs run unchanged: the short form of `make compat`.

    python3 tests/integration/test_compat.py BUILD_DIR [WORD...]

Each runtime program of tests/compat/programs/ runs under its shipped
policy (python, node, shell, c, compile-then-run) and must end `ok`; then
a handful of CPython's own regression test modules run bare and under the
`python` policy, and any case that fails only in the jail must be a
deliberate denial listed (with its reason) in tests/compat/denials.txt.
The full list is `make compat` (tests/compat/compat.py).

Python 3 standard library only.
"""

import os
import shutil
import sys
import tempfile

import harness
from harness import Skip, check, note, test

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "compat"))
import compat  # noqa: E402  (tests/compat/compat.py)

AIRLOCK = None  # set from argv in main()


def _program_test(policy, program):
    def run():
        if program.startswith("node") and not os.path.exists("/usr/bin/node"):
            raise Skip("node is not installed (tools/install-deps.sh)")
        out = tempfile.mkdtemp(prefix="airlock-compat-c-")
        try:
            text, ok = compat.run_program(AIRLOCK, policy, program, out)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        check(ok, f"{program} under {policy}: {text}")
    return run


for _policy, _program in compat.PROGRAM_RUNS:
    test(f"program {_program} under {_policy}: ok")(_program_test(_policy, _program))


@test("cpython short list: every jailed-only failure is a listed deliberate denial")
def t_cpython_short():
    if not os.path.isdir(compat.TESTSUITE):
        raise Skip(f"{compat.TESTSUITE} is missing: install libpython3.11-testsuite "
                   "(tools/install-deps.sh)")
    denials = compat.load_denials()
    unexpected = []
    for module in compat.SHORT_MODULES:
        bare = compat.run_bare(module)
        jailed = compat.run_jailed(AIRLOCK, module)
        check(bare.cases > 0, f"{module}: no cases ran bare (is the test suite complete?)")
        note(f"{module}: {bare.cases} cases, passed bare {bare.passed}, jailed {jailed.passed}")
        for case, cause, ok in compat.compare(module, bare, jailed, denials):
            note(f"  {case}: {cause}" + (" [deliberate]" if ok else ""))
            if not ok:
                unexpected.append(f"{module} {case}: {cause}")
    check(not unexpected, "jailed-only failures not in tests/compat/denials.txt:\n" +
          "\n".join(unexpected))


@test("denials.txt: every entry has its reason in a comment above it", root=False)
def t_denials_commented():
    with open(compat.DENIALS) as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        if line.strip() and not line.startswith("#"):
            check(i > 0 and lines[i - 1].startswith("#"),
                  f"denials.txt:{i + 1}: {line!r} has no comment giving its reason")
            check(len(line.split("#")[0].split()) == 2,
                  f"denials.txt:{i + 1}: expected MODULE CASE-PREFIX")


def configure(build_dir):
    global AIRLOCK
    AIRLOCK = os.path.join(os.path.abspath(build_dir), "airlock")
    return [AIRLOCK]


if __name__ == "__main__":
    sys.exit(harness.main(sys.argv, configure))
