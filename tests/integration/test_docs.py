#!/usr/bin/env python3
"""The man pages (docs/man/*) against groff and against the code: each page
renders without a warning, airlock(1) names every command of tools/airlock.c's
command table, airlockd(8) every option and environment variable of
supervisor/settings.c's table (tests/unit/test_settings.c checks the defaults too), and the operations handbook's configuration table
every variable as well.

    python3 tests/integration/test_docs.py BUILD_DIR [WORD...]

BUILD_DIR is accepted for tests/run.sh's sake; the built airlock's --help
is compared too.

Python 3 standard library only.
"""

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile

import harness
from harness import Skip, check, check_eq, note, run_logged, test

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAN = os.path.join(ROOT, "docs/man")
BUILD = None


def read(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return f.read()


def plain(roff):
    """roff source as words: font escapes, \\- and \\& resolved."""
    text = re.sub(r"\\f(\[[^]]*\]|.)", "", roff)
    return text.replace("\\-", "-").replace("\\&", "").replace("\\e", "\\")


def groff_warnings(path):
    """What groff says on stderr while formatting the page, all warnings on."""
    if not shutil.which("groff"):
        raise Skip("groff is not installed (tools/install-deps.sh adds groff-base)")
    status, out, err = run_logged(["groff", "-man", "-Tutf8", "-ww", "-z", path],
                                  timeout=60)
    return status, err.decode()


def commands():
    """The command names of tools/airlock.c's table."""
    src = read("tools/airlock.c")
    table = src[src.index("commands[] = {"):src.index("};", src.index("commands[] = {"))]
    names = re.findall(r'\{\s*"([a-z][a-z-]*)"\s*,\s*cmd_', table)
    check(len(names) >= 10, f"too few commands found in tools/airlock.c: {names}")
    return names


# supervisor/settings.c: one row per setting, { "flag" or NULL, "VAR" or NULL, SET_...
SETTING_ROW = re.compile(r'\{\s*(NULL|"[a-z][a-z-]*")\s*,\s*(NULL|"[A-Z][A-Z0-9_]*")\s*,\s*SET_')


def setting_rows():
    rows = [(f.strip('"') if f != "NULL" else None, v.strip('"') if v != "NULL" else None)
            for f, v in SETTING_ROW.findall(read("supervisor/settings.c"))]
    check(len(rows) >= 20, f"too few settings found in supervisor/settings.c: {rows}")
    return rows


def daemon_options():
    return [f for f, _ in setting_rows() if f]


def daemon_variables():
    names = {v for _, v in setting_rows() if v}
    check(len(names) >= 10, f"too few variables found in supervisor/settings.c: {names}")
    return sorted(names)


# docs/design.md, "Configuration": the variables operators already use
DESIGN_VARIABLES = ["SANDBOX_MEM_MB", "SANDBOX_TIMEOUT_MS", "SYSTEM_TICK_MS",
                    "MAX_ACTIVE_GENERATIONS", "ARCHIVE_RETENTION_DAYS",
                    "METRICS_PORT", "PROM_API_KEY", "LOG_LEVEL", "LOG_PRETTY",
                    "QUOTA_RESET_HOUR", "DATABASE_URL"]


def section(roff, name):
    """The text of one .SH section of a page."""
    m = re.search(r"^\.SH \"?" + re.escape(name) + r"\"?\n(.*?)(?=^\.SH |\Z)",
                  roff, re.M | re.S)
    check(m, f"no section {name}")
    return plain(m.group(1))


# =================================================================== tests

@test("man pages render with groff -man -ww without a warning", root=False)
def t_render():
    pages = sorted(os.listdir(MAN))
    check_eq(pages, ["airlock.1", "airlock.policy.5", "airlockd.8"], "pages")
    for page in pages:
        status, err = groff_warnings(os.path.join(MAN, page))
        check_eq(status, 0, f"groff on {page}: exit status")
        check_eq(err, "", f"groff warnings on {page}")
    # the check can fail: a page with an unknown macro and a bad escape
    with tempfile.NamedTemporaryFile("w", suffix=".1") as bad:
        bad.write(".TH X 1\n.SH NAME\nx \\- y\n.XX unknown\n\\fQ\n")
        bad.flush()
        _, err = groff_warnings(bad.name)
        check(err, "groff -ww said nothing about a broken page")


@test("airlock(1) names every command of tools/airlock.c", root=False)
def t_airlock_commands():
    page = read("docs/man/airlock.1")
    synopsis = section(page, "SYNOPSIS")
    text = plain(page)
    missing = [c for c in commands()
               if not re.search(r"airlock\s+" + re.escape(c) + r"\b", synopsis)]
    check(not missing, f"not in airlock(1)'s SYNOPSIS: {missing}")
    # each is described too, beyond the synopsis
    body = text[text.index(".SH DESCRIPTION"):]
    undescribed = [c for c in commands()
                   if not re.search(r"airlock\s+" + re.escape(c) + r"\b", body)]
    check(not undescribed, f"in the SYNOPSIS only: {undescribed}")
    # and the built airlock's own usage lists the same commands
    status, out, _ = run_logged([os.path.join(BUILD, "airlock"), "--help"], timeout=30)
    check_eq(status, 0, "airlock --help exit status")
    listed = re.findall(r"^  ([a-z][a-z-]*) ", out.decode(), re.M)
    check_eq(sorted(listed), sorted(commands()), "commands in airlock --help")


@test("airlockd(8) names every option and variable of supervisor/settings.c", root=False)
def t_airlockd_config():
    page = read("docs/man/airlockd.8")
    options = section(page, "OPTIONS")
    env = section(page, "ENVIRONMENT")
    missing = [o for o in daemon_options()
               if not re.search(r"(^|[^-a-z])--" + re.escape(o) + r"\b", options, re.M)]
    check(not missing, f"options not in airlockd(8)'s OPTIONS: {missing}")
    missing = [v for v in sorted(set(daemon_variables()) | set(DESIGN_VARIABLES))
               if not re.search(r"\b" + v + r"\b", env)]
    check(not missing, f"variables not in airlockd(8)'s ENVIRONMENT: {missing}")
    # the metrics endpoint's option and the HTTP paths (issue 6)
    check("--metrics-listen" in options, "no --metrics-listen in OPTIONS")
    for path in ("/metrics", "/healthz", "/ready"):
        check(path in plain(page), f"airlockd(8) does not mention {path}")


@test("the handbook's configuration table has every variable, with a default", root=False)
def t_handbook_variables():
    text = read("docs/operations.md")
    m = re.search(r"^## Configuration\n(.*?)(?=^## )", text, re.M | re.S)
    check(m, "docs/operations.md has no '## Configuration' section")
    rows = {}
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 3 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells
    wanted = sorted(set(daemon_variables()) | set(DESIGN_VARIABLES))
    missing = [v for v in wanted if v not in rows]
    check(not missing, f"variables missing from the handbook's table: {missing}")
    empty = [v for v in wanted if not rows[v][1] or not rows[v][2]]
    check(not empty, f"rows without a default or a meaning: {empty}")


@test("the handbook's alert catalogue has every rule of docs/alerts.yml, expression verbatim",
      root=False)
def t_alert_catalogue():
    rules = re.findall(r"^\s*- alert: (\S+)\n\s*expr: (.+)$", read("docs/alerts.yml"), re.M)
    check(len(rules) >= 8, f"only {len(rules)} rules found in docs/alerts.yml")
    text = read("docs/operations.md")
    m = re.search(r"^## Alert catalogue\n(.*?)(?=^## )", text, re.M | re.S)
    check(m, "docs/operations.md has no '## Alert catalogue' section")
    rows = {}
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name = re.match(r"`(\w+)`", cells[0]) if line.startswith("|") else None
        if name:
            rows[name.group(1)] = cells
    for alert, expr in rules:
        check(alert in rows, f"{alert} is not in the handbook's alert catalogue")
        check_eq(rows[alert][1], f"`{expr.strip()}`", f"{alert}'s expression in the handbook")
        check(len(rows[alert]) >= 4 and rows[alert][2] and rows[alert][3],
              f"{alert}: no 'fires when' or 'what to do'")
    extra = set(rows) - {a for a, _ in rules}
    check(not extra, f"in the handbook but not in docs/alerts.yml: {extra}")


@functools.lru_cache(maxsize=None)
def help_options(command):
    """The --options `airlock COMMAND --help` names."""
    status, out, err = run_logged([os.path.join(BUILD, "airlock"), command, "--help"],
                                  timeout=30)
    check_eq(status, 0, f"airlock {command} --help exit status")
    return set(re.findall(r"--[a-z0-9][a-z0-9-]*", (out + err).decode()))


@test("the airlock commands the handbook and the alert rules show use options that exist",
      root=False)
def t_doc_commands():
    cmds = set(commands())
    spans = []
    text = read("docs/operations.md")
    spans += re.findall(r"```sh\n(.*?)```", text, re.S)
    spans += re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    # alerts.yml: folded descriptions, commands in backticks
    spans += re.findall(r"`([^`]+)`", re.sub(r"\n\s*", " ", read("docs/alerts.yml")))
    seen = 0
    for span in spans:
        for m in re.finditer(r"(?<![\w/-])airlock\s+([a-z][a-z-]*)([^`|;&)\n]*)", span):
            sub, rest = m.group(1), m.group(2)
            if sub not in cmds:
                continue
            known = help_options(sub)
            bad = [o for o in re.findall(r"(?<!\S)--[a-z0-9][a-z0-9-]*", rest)
                   if o not in known]
            check(not bad, f"`airlock {sub}{rest}`: airlock {sub} has no {bad}")
            seen += 1
    check(seen >= 40, f"only {seen} airlock commands found in the docs")
    note(f"{seen} airlock commands checked against their --help")


@test("docs/policy.md lists every syscall group with exactly the calls airlock expands it to",
      root=False)
def t_policy_groups():
    rows = re.findall(r"^\| `(@[a-z-]+)` \| `([a-z0-9_ ]+)` \|", read("docs/policy.md"), re.M)
    src = read("policy/syscalls.c")
    code_groups = re.findall(r'\{ "(@[a-z-]+)", group_', src)
    check_eq(sorted(g for g, _ in rows), sorted(code_groups), "groups in docs/policy.md")
    for group, calls in rows:
        with tempfile.NamedTemporaryFile("w", suffix=".policy") as f:
            f.write(f"[seccomp]\nallow = {group}\n")
            f.flush()
            status, out, _ = run_logged([os.path.join(BUILD, "airlock"), "policy", "show",
                                         f.name], timeout=30)
        check_eq(status, 0, f"airlock policy show for {group}")
        allow = re.search(r"^allow = (.*)$", out.decode(), re.M)
        check(allow, f"no allow line for {group}")
        check_eq(sorted(calls.split()), sorted(allow.group(1).split()),
                 f"the calls of {group} in docs/policy.md")
    note(f"{len(rows)} groups checked")


@test("the README's and handbook's airlockd commands name only groups something creates",
      root=False)
def t_groups_created():
    sysusers = re.findall(r"^g\s+(\S+)", read("tools/systemd/airlock.sysusers"), re.M)
    check(sysusers, "tools/systemd/airlock.sysusers creates no group")
    for doc in ("README.md", "docs/operations.md"):
        text = read(doc)
        made = set(sysusers) | set(re.findall(r"groupadd\s+(?:--system\s+)?([A-Za-z0-9_.-]+)", text))
        named = re.findall(r"--(?:allow|admin|socket)-group[ =]+([A-Za-z0-9_.-]+)",
                           text.replace("\\\n", " "))
        check(named, f"{doc} names no group")
        for group in named:
            check(group in made, f"{doc}: group {group} is named but nothing creates "
                                 f"it (sysusers: {sysusers}; groupadd in {doc}: {sorted(made)})")


def configure(build_dir):
    global BUILD
    BUILD = os.path.abspath(build_dir)
    return (os.path.join(BUILD, "airlock"),)


def main(argv):
    return harness.main(argv, configure)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
