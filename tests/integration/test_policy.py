#!/usr/bin/env python3
"""Integration tests for policies: the shipped ones (policy/policies/) run
real modules, each one's rules are the ones enforced (strict denies what
default allows, and the verdict names the syscall), overrides give a
derived hash, `airlock policy check|show|hash|list` do what they say, a
policy's binds are in the jail as promised, and a bad --policy is a
setup error that says why.

    python3 tests/integration/test_policy.py BUILD_DIR [WORD...]

BUILD_DIR holds the airlock under test (build or build-asan). The probe is
always the static build/probe of this repository: it is built only there.
Extra WORDs select the tests whose names contain any of them.

Output: one line per test, "ok - NAME", "not ok - NAME" followed by indented
details, or "skip - NAME: reason"; then "N passed, N failed, N skipped".
Exit status 1 if any test failed. With CI=true in the environment a skip
counts as a failure (CI must not go green by running nothing), except for
the one test whose runtime is not there at all (Node.js): that skip says so.

airlock runs with the repository as its working directory: the fixtures
under tests/policies/ are named by relative paths, as a user would, and
those paths are part of the messages checked.

Python 3 standard library only; the framework is the one of test_jail.py.
"""

import os
import re
import shutil
import sys
import tempfile

import harness
from harness import LOG, Failure, Skip, check, check_eq, excerpt, note, test

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROBE = os.path.join(REPO, "build", "probe")
MODULES = os.path.join(REPO, "tests", "modules")
SHIPPED = os.path.join(REPO, "policy", "policies")
SHIPPED_NAMES = ["default", "node", "python", "strict"]
NODE = "/usr/bin/node"

AIRLOCK = None  # set from argv in main()

# Seconds a single airlock invocation may take before the suite gives up
# on it: well past the longest policy timeout used here (node, 10 s).
RUN_TIMEOUT = 30

HASH_RE = re.compile(r"sha256:[0-9a-f]{64}")


# --------------------------------------------------------------- framework

class SkipEvenInCI(Skip):
    """Not a missing kernel feature or privilege but a runtime that is not
    installed at all: CI=true does not turn this one into a failure, and the
    reason says what is missing."""

    ci_exempt = True


# ----------------------------------------------------------------- helpers

def run_airlock(args, timeout=RUN_TIMEOUT, env=None):
    """Run `airlock ARGS` in the repository; returns (status, stdout bytes,
    stderr bytes)."""
    return harness.run_logged([AIRLOCK] + list(args), timeout, env=env,
                              cwd=REPO)


parse_result = harness.parse_result


def run_json(args, **kw):
    """`airlock run --json ARGS` → result dict."""
    status, out, _ = run_airlock(["run", "--json"] + list(args), **kw)
    return parse_result(status, out)


def probe(policy, *args, opts=()):
    """The probe under --policy POLICY → result dict."""
    return run_json(["--policy", policy] + list(opts) + ["--", PROBE]
                    + [str(a) for a in args])


def expect(result, verdict, exit_status=None):
    check_eq(result.get("verdict"), verdict, "verdict")
    if exit_status is not None:
        check_eq(result.get("exit_status"), exit_status, "exit_status")


def expect_violation(result, syscall):
    """Killed by the filter, and the verdict names the call."""
    expect(result, "seccomp_violation", 159)
    check_eq(result.get("syscall"), syscall, "syscall")
    check_eq(result.get("signal"), "SIGSYS", "signal")


def need_file(path):
    if not os.path.exists(path):
        raise Skip(f"{path} is missing (run make)")


def policy_hash(what):
    """`airlock policy hash WHAT` → "sha256:..."."""
    status, out, err = run_airlock(["policy", "hash", what])
    check_eq(status, 0, f"exit status of airlock policy hash {what} "
                        f"(stderr {excerpt(err)})")
    text = out.decode()
    check(HASH_RE.fullmatch(text.rstrip("\n")) and text.endswith("\n"),
          f"airlock policy hash {what} printed {excerpt(out)}")
    return text.rstrip("\n")


def expect_policy(result, name, policy_hash_of=None):
    """The result names the policy and carries its hash."""
    check_eq(result.get("policy"), name, "policy")
    got = result.get("policy_hash") or ""
    check(HASH_RE.fullmatch(got), f"policy_hash {got!r} is not sha256:<64 hex>")
    check_eq(got, policy_hash(policy_hash_of or name),
             f"policy_hash vs airlock policy hash {policy_hash_of or name}")
    note(f"{name}: {got}")


def write_policy(directory, name, text):
    path = os.path.join(directory, name + ".policy")
    with open(path, "w") as f:
        f.write(text)
    return path


def require_contained(policy):
    """Before a fork bomb: the jail has its own pid namespace and is not
    root; otherwise fail without unleashing anything."""
    r = probe(policy, "pids")
    check(r.get("stdout") == "pids: ok 1 2\n",
          f"not run: the jail sees host processes ({excerpt(r.get('stdout'))})")
    r = probe(policy, "ids")
    m = re.match(r"ids: ok uid=(\d+),(\d+),(\d+) ", r.get("stdout") or "")
    check(m and "0" not in m.groups(),
          f"not run: the jail runs as root ({excerpt(r.get('stdout'))})")
    LOG.runs.clear()


# ================================================================== tests

# --- 1. each shipped policy runs a real module ------------------------------

@test("default: a shell module runs, named and hashed")
def t_default_shell():
    r = run_json(["--policy", "default", "--", os.path.join(MODULES, "hello.sh")])
    expect(r, "ok", 0)
    check_eq(r.get("stdout"), "hello, nobody\n", "stdout")
    expect_policy(r, "default")


@test("default: no --policy is the default policy")
def t_default_implicit():
    r = run_json(["--", "/bin/true"])
    expect(r, "ok", 0)
    expect_policy(r, "default")


@test("strict: the probe and /bin/true run")
def t_strict_runs():
    r = probe("strict", "echo", "hi")
    expect(r, "ok", 0)
    check_eq(r.get("stdout"), "hi\n", "stdout")
    expect_policy(r, "strict")
    r = run_json(["--policy", "strict", "--", "/bin/true"])
    expect(r, "ok", 0)
    check_eq(r.get("policy"), "strict", "policy")


@test("python: a Python module runs, named and hashed")
def t_python_module():
    r = run_json(["--policy", "python", "--", os.path.join(MODULES, "hello.py")])
    expect(r, "ok", 0)
    check_eq(r.get("stdout"), "sum=15 python=3\n", "stdout")
    check_eq(r.get("stderr"), "", "stderr")
    expect_policy(r, "python")


@test("node: a Node.js script runs, named and hashed")
def t_node_module():
    # Node is a runtime, not a kernel feature: where it is not installed
    # there is nothing to test, even under CI. Where it is installed, a
    # failure to run is a failure, under CI or not.
    if not os.path.exists(NODE):
        raise SkipEvenInCI(f"{NODE} is not installed (apt-get install nodejs)")
    r = run_json(["--policy", "node", "--", NODE, "-e", "console.log(6*7)"])
    expect(r, "ok", 0)
    check_eq(r.get("stdout"), "42\n", "stdout")
    expect_policy(r, "node")


# --- 2. strict denies what default allows, and names the call -----------

@test("netlink socket: default allows, strict kills naming socket")
def t_socket_netlink():
    r = probe("default", "syscall", "socket-netlink")
    expect(r, "ok", 0)
    check_eq(r.get("stdout"), "syscall socket-netlink: ok\n", "stdout under default")
    r = probe("strict", "syscall", "socket-netlink")
    expect_violation(r, "socket")
    expect_policy(r, "strict")


@test("memfd_create: default allows, strict kills naming memfd_create")
def t_memfd():
    r = probe("default", "syscall", "memfd_create")
    expect(r, "ok", 0)
    check_eq(r.get("stdout"), "syscall memfd_create: ok\n", "stdout under default")
    r = probe("strict", "syscall", "memfd_create")
    expect_violation(r, "memfd_create")


@test("network: default has loopback, strict kills naming socket")
def t_net():
    r = probe("default", "net")
    expect(r, "ok", 0)
    check_eq(r.get("stdout"), "net: ok lo:up\n", "probe net under default")
    r = probe("strict", "net")
    expect_violation(r, "socket")


@test("fork bomb: strict kills the first clone, default times out")
def t_forkbomb():
    r = probe("strict", "forkbomb", opts=["--timeout", "1s"])
    expect_violation(r, "clone")
    require_contained("default")
    r = probe("default", "forkbomb", opts=["--timeout", "1s"])
    expect(r, "timeout", 124)
    note(f"default: pids_limit_hits={r.get('pids_limit_hits')}")


# --- 3. overrides ------------------------------------------------------------

@test("override: --memory gives a derived hash, without it the policy's")
def t_override_hash():
    strict = policy_hash("strict")
    r = run_json(["--policy", "strict", "--memory", "48M", "--", "/bin/true"])
    expect(r, "ok", 0)
    check_eq(r.get("policy"), "strict", "policy")
    derived = r.get("policy_hash")
    check(HASH_RE.fullmatch(derived or ""), f"policy_hash {derived!r}")
    check(derived != strict, f"--memory 48M left the hash at strict's {strict}")
    note(f"strict {strict}, with --memory 48M {derived}")
    r = run_json(["--policy", "strict", "--", "/bin/true"])
    expect(r, "ok", 0)
    check_eq(r.get("policy_hash"), strict, "policy_hash without the override")
    # the same override twice: the same derived policy
    r = run_json(["--policy", "strict", "--memory", "48M", "--", "/bin/true"])
    check_eq(r.get("policy_hash"), derived, "policy_hash of the same override")


# --- 4. airlock policy ... -------------------------------------------------

@test("policy check: every shipped file is valid", root=False)
def t_check_shipped():
    files = sorted(f for f in os.listdir(SHIPPED) if f.endswith(".policy"))
    for name in SHIPPED_NAMES:
        check(f"{name}.policy" in files, f"{name}.policy is not in {SHIPPED}")
    paths = [os.path.join("policy", "policies", f) for f in files]
    status, out, err = run_airlock(["policy", "check"] + paths)
    check_eq(status, 0, "exit status")
    check_eq(err, b"", "stderr")
    lines = out.decode().splitlines()
    check_eq(len(lines), len(paths), "lines printed")
    for path, line in zip(paths, lines):
        name = os.path.basename(path)[:-len(".policy")]
        check(re.fullmatch(re.escape(path) + rf": ok \({re.escape(name)}, sha256:[0-9a-f]{{64}}\)",
                           line), f"unexpected line {line!r}")


@test("policy check: a bad file exits 1 with the exact error", root=False)
def t_check_bad():
    bad = "tests/policies/bad/unknown-key.policy"
    status, out, err = run_airlock(["policy", "check", bad])
    check_eq(status, 1, "exit status")
    check_eq(out, b"", "stdout")
    check_eq(err.decode(), f"{bad}:3: [limits] memroy: unknown key\n", "stderr")
    # next to a good one: the good one is reported ok, the status is still 1
    good = "policy/policies/strict.policy"
    status, out, err = run_airlock(["policy", "check", good, bad])
    check_eq(status, 1, "exit status with one good and one bad file")
    check(out.decode().startswith(f"{good}: ok (strict, sha256:"),
          f"stdout {excerpt(out)}")
    check_eq(err.decode(), f"{bad}:3: [limits] memroy: unknown key\n", "stderr")


@test("policy show: the canonical text hashes like the policy", root=False)
def t_show_round_trip():
    with tempfile.TemporaryDirectory() as d:
        for name in SHIPPED_NAMES:
            status, out, err = run_airlock(["policy", "show", name])
            check_eq(status, 0, f"exit status of policy show {name} (stderr {excerpt(err)})")
            path = os.path.join(d, f"shown-{name}.policy")
            with open(path, "wb") as f:
                f.write(out)
            check_eq(policy_hash(path), policy_hash(name),
                     f"hash of `airlock policy show {name}` parsed back")


@test("policy list: the shipped policies", root=False)
def t_list():
    status, out, err = run_airlock(["policy", "list"])
    check_eq(status, 0, "exit status")
    lines = out.decode().splitlines()
    check(lines and lines[0].split() == ["NAME", "HASH", "FILE"],
          f"no header line: {excerpt(out)}")
    listed = {}
    for line in lines[1:]:
        fields = line.split()
        if len(fields) >= 3:
            listed[fields[0]] = fields
    for name in SHIPPED_NAMES:
        check(name in listed, f"{name} is not listed: {excerpt(out)}")
        fields = listed[name]
        check(re.fullmatch(r"[0-9a-f]{16}", fields[1]),
              f"{name}: hash column {fields[1]!r}")
        check(policy_hash(name).startswith("sha256:" + fields[1]),
              f"{name}: listed hash {fields[1]} is not the start of its hash")
    others = sorted(set(listed) - set(SHIPPED_NAMES))
    if others:
        note(f"also listed (installed elsewhere): {others}")


# --- 5. a policy's binds ------------------------------------------------------

@test("binds: bind_ro readable not writable, bind_rw written through")
def t_binds():
    with tempfile.TemporaryDirectory() as d:
        src_in = os.path.join(d, "in")
        src_out = os.path.join(d, "out")
        os.mkdir(src_in)
        os.mkdir(src_out)
        os.chmod(d, 0o755)
        os.chmod(src_in, 0o755)  # the jail runs as 65534: it must see in
        os.chmod(src_out, 0o777)  # ... and be able to write here
        with open(os.path.join(src_in, "file"), "w") as f:
            f.write("from the host\n")
        os.chmod(os.path.join(src_in, "file"), 0o644)
        path = write_policy(d, "binds", "[filesystem]\n"
                            f"bind_ro = {src_in}:/data/in\n"
                            f"bind_rw = {src_out}:/data/out\n")
        script = ("cat /data/in/file; "
                  "if echo x > /data/in/new; then echo in-written; fi; "
                  "echo written-in-jail > /data/out/file && echo out-written")
        r = run_json(["--policy", path, "--", "sh", "-c", script])
        expect(r, "ok", 0)
        check_eq(r.get("policy"), "binds", "policy")
        check_eq(r.get("stdout"), "from the host\nout-written\n", "stdout")
        check("Read-only file system" in (r.get("stderr") or ""),
              f"writing /data/in did not fail with EROFS: stderr {excerpt(r.get('stderr'))}")
        check(not os.path.exists(os.path.join(src_in, "new")),
              "a file written to the read-only bind appeared on the host")
        out_file = os.path.join(src_out, "file")
        check(os.path.exists(out_file), "the file written to /data/out is not on the host")
        with open(out_file) as f:
            check_eq(f.read(), "written-in-jail\n", "host copy of /data/out/file")
        note(f"written as uid {os.stat(out_file).st_uid}")


@test("binds: a missing bind source is a setup error naming it")
def t_bind_missing():
    with tempfile.TemporaryDirectory() as d:
        missing = os.path.join(d, "not-there")
        path = write_policy(d, "missing", f"[filesystem]\nbind_ro = {missing}:/data/in\n")
        r = run_json(["--policy", path, "--", "/bin/true"])
        expect(r, "setup_error", 125)
        error = r.get("error") or ""
        check(missing in error, f"error {error!r} does not name {missing}")
        note(f"error: {error}")


# An unprivileged uid with no account: the owner of a directory on a bind
# path, who tries to make root's bind show a file only root may read.
BIND_USER = 12345


class BindTree:
    """DIR (root's, 0755) holding secret/file (in a 0700 root directory),
    home/ and home/data/file owned by BIND_USER, and open/ (root's, 0777,
    not sticky) with open/data/file."""

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="airlock-binds-")
        os.chmod(self.dir, 0o755)
        self.secret = self.make("secret/file", "root only\n")
        os.chmod(os.path.dirname(self.secret), 0o700)
        self.data = os.path.dirname(self.make("home/data/file", "shared\n"))
        for path in (self.data, os.path.dirname(self.data)):
            os.chown(path, BIND_USER, BIND_USER)
        self.open_data = os.path.dirname(self.make("open/data/file", "open\n"))
        os.chmod(os.path.dirname(self.open_data), 0o777)
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)

    def make(self, rel, text):
        path = os.path.join(self.dir, rel)
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        return path

    def swap_for_symlink(self):
        """What BIND_USER can do in their own directory: data/file becomes
        a link to the file in the directory only root may enter (itself
        readable: its directory is what protects it)."""
        link = os.path.join(self.data, "file")
        os.unlink(link)
        os.symlink(self.secret, link)
        os.lchown(link, BIND_USER, BIND_USER)


def bind_policy(directory, name, source, owner=0):
    path = write_policy(directory, name,
                        f"[filesystem]\nbind_ro = {source}:/data/in\n")
    os.chown(path, owner, owner)
    return path


def expect_bind_refused(r, policy, component, why):
    """setup_error naming the policy file, the key and the component."""
    expect(r, "setup_error", 125)
    check("root only" not in (r.get("stdout") or ""),
          "the root-only file was shown to the module")
    error = r.get("error") or ""
    for part in (policy, "bind_ro", component + " " + why):
        check(part in error, f"error {error!r} does not say {part!r}")
    note(f"error: {error}")


@test("binds: a path through another user's directory or a world-writable one is refused")
def t_bind_untrusted_dir():
    with BindTree() as t:
        # the source itself may be anyone's: it is what is shown
        policy = bind_policy(t.dir, "leaf", os.path.dirname(t.data))
        r = run_json(["--policy", policy, "--", "cat", "/data/in/data/file"])
        expect(r, "ok", 0)
        check_eq(r.get("stdout"), "shared\n", "the bound file")
        policy = bind_policy(t.dir, "theirs", t.data + "/file")
        r = run_json(["--policy", policy, "--", "cat", "/data/in"])
        expect_bind_refused(r, policy, os.path.dirname(t.data),
                            f"is owned by uid {BIND_USER}")
        t.swap_for_symlink()
        r = run_json(["--policy", policy, "--", "cat", "/data/in"])
        expect_bind_refused(r, policy, os.path.dirname(t.data),
                            f"is owned by uid {BIND_USER}")
        policy = bind_policy(t.dir, "open", t.open_data)
        r = run_json(["--policy", policy, "--", "cat", "/data/in/file"])
        expect_bind_refused(r, policy, os.path.dirname(t.open_data),
                            "is writable by everyone")


@test("binds: the policy's owner binds through their own directory, never through a symlink")
def t_bind_symlink_swap():
    with BindTree() as t:
        home = os.path.dirname(t.data)
        policy = bind_policy(home, "mine", t.data + "/file", owner=BIND_USER)
        r = run_json(["--policy", policy, "--", "cat", "/data/in"])
        expect(r, "ok", 0)
        check_eq(r.get("stdout"), "shared\n", "the bound file")
        t.swap_for_symlink()
        r = run_json(["--policy", policy, "--", "cat", "/data/in"])
        expect_bind_refused(r, policy, t.data + "/file", "is a symbolic link")


# --- 6. a bad --policy --------------------------------------------------------

@test("--policy nosuch: 125 naming it", root=False)
def t_policy_nosuch():
    r = run_json(["--policy", "nosuch", "--", "/bin/true"])
    expect(r, "setup_error", 125)
    error = r.get("error") or ""
    check('unknown policy "nosuch"' in error, f"error {error!r} does not name nosuch")
    status, out, err = run_airlock(["run", "--policy", "nosuch", "--", "/bin/true"])
    check_eq(status, 125, "exit status without --json")
    check_eq(out, b"", "stdout without --json")
    check(b'unknown policy "nosuch"' in err, f"stderr {excerpt(err)}")


@test("--policy FILE with an error: 125 with FILE:LINE", root=False)
def t_policy_bad_file():
    bad = "tests/policies/bad/unknown-key.policy"
    r = run_json(["--policy", bad, "--", "/bin/true"])
    expect(r, "setup_error", 125)
    check_eq(r.get("error"), f"--policy: {bad}:3: [limits] memroy: unknown key", "error")
    status, out, err = run_airlock(["run", "--policy", bad, "--", "/bin/true"])
    check_eq(status, 125, "exit status without --json")
    check(f"{bad}:3: [limits] memroy: unknown key".encode() in err,
          f"stderr {excerpt(err)}")


# ================================================================== runner

def configure(build_dir):
    global AIRLOCK
    AIRLOCK = os.path.abspath(os.path.join(build_dir, "airlock"))
    return (AIRLOCK, PROBE)


def main(argv):
    return harness.main(argv, configure)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
