/*
 * Unit tests for policy files (policy/parse.c, canonical.c, lookup.c):
 *
 *   - every key of the parser's table, read from tests/policies/all-keys.policy
 *     and checked through the public getters;
 *   - every error class, one fixture each in tests/policies/bad/, with the
 *     exact message ("FILE:LINE: [section] key: what was expected"), through
 *     policy_load(), policy_parse_file() and policy_parse_string() alike; a
 *     failed parse returns no policy (the ASan build checks it leaks
 *     nothing) and leaves nothing behind that changes the next parse;
 *   - the hash: the default written differently hashes the same, each
 *     one-value change (tests/policies/variants/) hashes differently, and
 *     the canonical text parses back to the same hash;
 *   - the shipped policies (policy/policies/) and the search path.
 *
 * Run from the repository root: the fixtures are named by relative paths,
 * and those paths are part of the messages checked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)

#define FIXTURES "tests/policies/"
#define BAD FIXTURES "bad/"

/* ---------------------------------------------------------------- helpers */

/* The whole file as a NUL-terminated string; caller frees. */
static char *read_text(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		fail_msg("cannot open %s: %s (run from the repository root)",
			 path, strerror(errno));
	char *text = NULL;
	size_t cap = 0, len = 0;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			text = realloc(text, cap);
			assert_non_null(text);
		}
		size_t n = fread(text + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	assert_false(ferror(f));
	fclose(f);
	text[len] = '\0';
	return text;
}

/* policy_load() that must succeed; the message shows why it did not. */
static struct al_policy *load_ok(const char *what)
{
	struct al_error err = { 0 };
	struct al_policy *p = policy_load(what, &err);
	if (!p)
		fail_msg("policy_load(\"%s\") failed: %s", what, err.msg);
	return p;
}

static struct al_policy *parse_ok(const char *text, const char *filename)
{
	struct al_error err = { 0 };
	struct al_policy *p = policy_parse_string(text, filename, NULL, &err);
	if (!p)
		fail_msg("policy_parse_string(%s) failed: %s", filename,
			 err.msg);
	return p;
}

static void hash_ok(const struct al_policy *p, char out[POLICY_HASH_LEN])
{
	struct al_error err = { 0 };
	if (policy_hash(p, out, &err) < 0)
		fail_msg("policy_hash failed: %s", err.msg);
	assert_int_equal(strlen(out), POLICY_HASH_LEN - 1);
	assert_memory_equal(out, "sha256:", 7);
}

static void default_hash(char out[POLICY_HASH_LEN])
{
	struct al_error err = { 0 };
	struct al_policy *p = policy_new_default(&err);
	assert_non_null(p);
	hash_ok(p, out);
	policy_free(p);
}

static const struct policy_syscall *find_syscall(const struct al_policy *p,
						 const char *name)
{
	for (size_t i = 0; i < policy_syscall_count(p); i++)
		if (strcmp(policy_syscall_at(p, i)->name, name) == 0)
			return policy_syscall_at(p, i);
	return NULL;
}

static size_t count_action(const struct al_policy *p,
			   enum policy_sys_action action)
{
	size_t n = 0;
	for (size_t i = 0; i < policy_syscall_count(p); i++)
		n += policy_syscall_at(p, i)->action == action;
	return n;
}

static size_t env_count(const struct al_policy *p)
{
	size_t n = 0;
	while (policy_environ(p)[n])
		n++;
	return n;
}

/* The value of NAME in the policy's environment, NULL when unset. */
static const char *env_get(const struct al_policy *p, const char *name)
{
	size_t n = strlen(name);
	for (char *const *e = policy_environ(p); *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

/* ------------------------------------------------------- every key, parsed */

static void test_all_keys(void **state)
{
	(void)state;
	struct al_policy *p = load_ok(FIXTURES "all-keys.policy");

	/* [policy]: the file's name wins over the file name */
	assert_string_equal(policy_name(p), "everything");
	assert_string_equal(policy_description(p),
			    "sets every key of the policy file format");

	/* [limits], [network], [filesystem] tmp_size, [identity] ids */
	const struct policy_limits *l = policy_limits(p);
	assert_int_equal(l->memory_bytes, 96 * MiB);
	assert_int_equal(l->timeout_us, 5000000);
	assert_int_equal(l->cpu_time_us, 2000000); /* set: not the timeout */
	assert_int_equal(l->cpu_quota_milli, 1500);
	assert_int_equal(l->pids, 20);
	assert_int_equal(l->stdout_max, 512 * KiB);
	assert_int_equal(l->stderr_max, 128 * KiB);
	assert_int_equal(l->fsize_bytes, 8 * MiB);
	assert_int_equal(l->nofile, 128);
	assert_int_equal(l->as_bytes, 2 * GiB);
	assert_int_equal(l->limits_mode, POLICY_LIMITS_BEST_EFFORT);
	assert_int_equal(l->net, POLICY_NET_NONE);
	assert_int_equal(l->tmp_bytes, 24 * MiB);
	assert_true(l->terminal);
	assert_int_equal(l->uid, 1000);
	assert_int_equal(l->gid, 1001);
	assert_string_equal(policy_hostname(p), "box-1.test");

	/* bind_ro, bind_rw: in file order; no ":JAIL" means the same path */
	assert_int_equal(policy_bind_count(p), 3);
	const struct policy_bind *b = policy_bind_at(p, 0);
	assert_string_equal(b->host, "/srv/in");
	assert_string_equal(b->jail, "/data/in");
	assert_false(b->writable);
	b = policy_bind_at(p, 1);
	assert_string_equal(b->host, "/srv/ref");
	assert_string_equal(b->jail, "/srv/ref");
	assert_false(b->writable);
	b = policy_bind_at(p, 2);
	assert_string_equal(b->host, "/srv/out");
	assert_string_equal(b->jail, "/data/out");
	assert_true(b->writable);
	assert_null(policy_bind_at(p, 3));

	/* [environment]: FOO added, PATH replaced, the other defaults kept */
	assert_int_equal(env_count(p), 6);
	assert_string_equal(env_get(p, "FOO"), "bar baz");
	assert_string_equal(env_get(p, "PATH"), "/opt/bin:/usr/bin");
	assert_string_equal(policy_path(p), "/opt/bin:/usr/bin");
	assert_string_equal(env_get(p, "HOME"), "/tmp");
	assert_string_equal(env_get(p, "TMPDIR"), "/tmp");
	assert_string_equal(env_get(p, "LANG"), "C.UTF-8");
	assert_string_equal(env_get(p, "USER"), "sandbox");

	/* [seccomp] allow replaces the default allow-list (and repeats add
	 * up, "!" takes out); so does the errno list: io_uring_* are gone */
	static const char *const allowed[] = { "read", "write", "exit_group",
					       "brk", "mmap" };
	for (size_t i = 0; i < ARRAY_SIZE(allowed); i++) {
		const struct policy_syscall *s = find_syscall(p, allowed[i]);
		if (!s || s->action != POLICY_SYS_ALLOW)
			fail_msg("%s is not allowed", allowed[i]);
	}
	assert_int_equal(count_action(p, POLICY_SYS_ALLOW), 5);
	assert_null(find_syscall(p, "close"));
	assert_null(find_syscall(p, "openat"));
	assert_null(find_syscall(p, "socket"));
	const struct policy_syscall *s = find_syscall(p, "clone3");
	assert_non_null(s);
	assert_int_equal(s->action, POLICY_SYS_ERRNO);
	assert_int_equal(s->errnum, EPERM);
	s = find_syscall(p, "ptrace");
	assert_non_null(s);
	assert_int_equal(s->action, POLICY_SYS_ERRNO);
	assert_int_equal(s->errnum, EACCES);
	assert_null(find_syscall(p, "io_uring_setup"));
	assert_int_equal(count_action(p, POLICY_SYS_ERRNO), 2);
	assert_int_equal(policy_syscall_count(p), 7);

	/* [runtime] */
	assert_true(policy_archives(p, AL_VERDICT_TIMEOUT));
	assert_true(policy_archives(p, AL_VERDICT_MEMORY_LIMIT));
	assert_false(policy_archives(p, AL_VERDICT_CRASHED));
	assert_false(policy_archives(p, AL_VERDICT_SECCOMP_VIOLATION));
	assert_false(policy_archives(p, AL_VERDICT_EXIT_NONZERO));
	assert_false(policy_archives(p, AL_VERDICT_OK));
	assert_false(policy_archives(p, AL_VERDICT_SETUP_ERROR));
	assert_int_equal(policy_crash_budget(p), 5);
	assert_true(policy_seccomp_learned(p));
	/* sorted, each name once */
	assert_int_equal(policy_request_env_count(p), 2);
	assert_string_equal(policy_request_env_at(p, 0), "LOG_LEVEL");
	assert_string_equal(policy_request_env_at(p, 1), "SEED");
	assert_null(policy_request_env_at(p, 2));

	/* [build] */
	assert_string_equal(policy_build_command(p), "cc -O2 -o main main.c");
	assert_int_equal(policy_build_timeout_us(p), 90000000);
	assert_int_equal(policy_build_memory_bytes(p), GiB);

	policy_free(p);
}

/* Without cpu_time, the CPU-time limit follows the timeout. */
static void test_cpu_time_follows_timeout(void **state)
{
	(void)state;
	struct al_policy *p = parse_ok("[limits]\ntimeout = 750ms\n", "t");
	assert_int_equal(policy_limits(p)->timeout_us, 750000);
	assert_int_equal(policy_limits(p)->cpu_time_us, 750000);
	policy_free(p);
	/* ... in either order */
	p = parse_ok("[limits]\ncpu_time = 1s\ntimeout = 4s\n", "t");
	assert_int_equal(policy_limits(p)->timeout_us, 4000000);
	assert_int_equal(policy_limits(p)->cpu_time_us, 1000000);
	policy_free(p);
}

/* The name comes from the file name unless the file sets one; an
 * unusable name is refused. */
static void test_name(void **state)
{
	(void)state;
	struct al_error err = { 0 };
	struct al_policy *p = policy_parse_string("[limits]\npids = 9\n", "x",
						  "given", &err);
	assert_non_null(p);
	assert_string_equal(policy_name(p), "given");
	policy_free(p);
	p = policy_parse_string("[policy]\nname = inner\n", "x", "given", &err);
	assert_non_null(p);
	assert_string_equal(policy_name(p), "inner");
	policy_free(p);
	p = policy_parse_string("", "x.policy", "bad name", &err);
	assert_null(p);
	assert_string_equal(err.msg,
			    "x.policy: invalid name \"bad name\": expected "
			    "letters, digits, '-', '_' or '.', at most 63");
}

/* A line well below the 4093-character limit is read whole. */
/* version_command: kept single-spaced, split into words, not hashed. */
static void test_version_command(void **state)
{
	(void)state;
	struct al_policy *p = parse_ok("[policy]\nversion_command =  python3"
				       "   --version  # a comment\n",
				       "v");
	struct al_policy *plain = parse_ok("[policy]\n", "v");
	char buf[POLICY_VERSION_COMMAND_MAX + 1], *argv[9];
	char h1[POLICY_HASH_LEN], h2[POLICY_HASH_LEN];
	struct al_error err = { 0 };

	assert_string_equal(policy_version_command(p), "python3 --version");
	assert_int_equal(policy_version_argv(p, buf, argv), 2);
	assert_string_equal(argv[0], "python3");
	assert_string_equal(argv[1], "--version");
	assert_null(argv[2]);
	assert_string_equal(policy_version_command(plain), "");
	assert_int_equal(policy_version_argv(plain, buf, argv), 0);
	assert_null(argv[0]);
	/* no rule: the hash is the one without it */
	assert_int_equal(policy_hash(p, h1, &err), 0);
	assert_int_equal(policy_hash(plain, h2, &err), 0);
	assert_string_equal(h1, h2);
	policy_free(p);
	/* an absolute program and eight words are fine */
	p = parse_ok("[policy]\nversion_command = /usr/bin/env -i a=1 b:2 c,3 "
		     "d@4 %5 e+6\n",
		     "v");
	assert_int_equal(policy_version_argv(p, buf, argv), 8);
	assert_string_equal(argv[0], "/usr/bin/env");
	assert_string_equal(argv[7], "e+6");
	policy_free(p);
	policy_free(plain);
	/* the shipped interpreters have one */
	p = load_ok("policy/policies/python.policy");
	assert_string_equal(policy_version_command(p), "python3 --version");
	policy_free(p);
}

static void test_long_line(void **state)
{
	(void)state;
	struct al_policy *p = load_ok(FIXTURES "long-line.policy");
	assert_int_equal(count_action(p, POLICY_SYS_ALLOW), 27);
	assert_non_null(find_syscall(p, "clock_gettime"));
	policy_free(p);

	/* an environment value of 1000 characters, the limit being 1024 */
	char text[1100];
	snprintf(text, sizeof(text), "[environment]\nLONG = %01000d\n", 7);
	p = parse_ok(text, "long-value");
	assert_int_equal(strlen(env_get(p, "LONG")), 1000);
	policy_free(p);
}

/* --------------------------------------------------------- every error */

struct bad_file {
	const char *file; /* under tests/policies/bad/ */
	const char *msg;  /* the whole message */
};

#define SYNTAX                                                                 \
	"syntax error: expected \"key = value\", \"[section]\" or a comment "  \
	"(lines are at most 4093 characters)"
#define SECTIONS                                                               \
	"unknown section; expected [policy], [limits], [network], "            \
	"[filesystem], [identity], [environment], [seccomp], [runtime] or [build]"
#define DUPLICATE                                                              \
	"duplicate key: each setting appears once (only list keys may repeat)"
#define SIZE_FORM "a number with an optional unit K, M, G or T (e.g. 64M)"
#define DURATION_FORM "a number with a unit us, ms, s, m or h (e.g. 200ms, 3s)"
#define BAD_BIND                                                               \
	"expected HOST[:JAIL] with absolute paths without . or .. parts"

#define VERSION_PROGRAM                                                        \
	"expected a program name (letters, digits, '.', '_', '+', '-') or "    \
	"an absolute path"
#define VERSION_ARGUMENT                                                       \
	"only letters, digits and - . _ + = : , / @ % in an argument (it "     \
	"runs without a shell: no quotes, no $, no pipes)"

static const struct bad_file bad_files[] = {
	/* structure */
	{ "unknown-section.policy",
	  BAD "unknown-section.policy:3: [limit] memory: " SECTIONS },
	{ "no-section.policy",
	  BAD "no-section.policy:2: [] memory: " SECTIONS },
	{ "unknown-key.policy",
	  BAD "unknown-key.policy:3: [limits] memroy: unknown key" },
	{ "duplicate-key.policy",
	  BAD "duplicate-key.policy:5: [limits] memory: " DUPLICATE },
	{ "duplicate-env.policy",
	  BAD "duplicate-env.policy:5: [environment] FOO: " DUPLICATE },
	{ "syntax-error.policy", BAD "syntax-error.policy:4: " SYNTAX },
	/* line 2 is the long one: it must be refused there, whole, not cut
	 * up into a (valid) first part and a line 3 */
	{ "line-too-long.policy", BAD
	  "line-too-long.policy:2: line too long: at most 4093 characters" },
	{ "empty-list.policy",
	  BAD "empty-list.policy:2: [seccomp] allow: empty list" },
	/* [policy] */
	{ "bad-name.policy",
	  BAD "bad-name.policy:2: [policy] name: invalid name \"my policy\": "
	      "expected letters, digits, '-', '_' or '.', at most 63" },
	{ "description-too-long.policy",
	  BAD "description-too-long.policy:2: [policy] description: too long: "
	      "at most 255 characters" },
	/* [limits] */
	{ "bad-size.policy",
	  BAD "bad-size.policy:2: [limits] memory: invalid size \"64Q\": "
	      "expected " SIZE_FORM },
	{ "memory-too-small.policy",
	  BAD "memory-too-small.policy:2: [limits] memory: 1M is out of "
	      "range: expected from 4 MiB to 1 TiB" },
	{ "bad-duration.policy",
	  BAD "bad-duration.policy:2: [limits] timeout: invalid duration "
	      "\"3 seconds\": expected " DURATION_FORM },
	{ "timeout-zero.policy",
	  BAD "timeout-zero.policy:2: [limits] timeout: 0 is out of range: "
	      "expected from 1ms to 24h" },
	{ "bad-cpu-time.policy",
	  BAD "bad-cpu-time.policy:2: [limits] cpu_time: 25h is out of range: "
	      "expected from 1ms to 24h" },
	{ "bad-cpus.policy",
	  BAD "bad-cpus.policy:2: [limits] cpus: invalid value \"two\": "
	      "expected a number of CPUs from 0.01 to 1024 (e.g. 0.5)" },
	{ "pids-zero.policy",
	  BAD "pids-zero.policy:2: [limits] pids: invalid number \"0\": "
	      "expected an integer from 1 to 65536" },
	{ "stdout-max-too-large.policy",
	  BAD "stdout-max-too-large.policy:2: [limits] stdout_max: 2G is out "
	      "of range: expected from 0 B to 1 GiB" },
	{ "stderr-max-negative.policy",
	  BAD "stderr-max-negative.policy:2: [limits] stderr_max: invalid "
	      "size \"-1\": expected " SIZE_FORM },
	{ "file-size-too-small.policy",
	  BAD "file-size-too-small.policy:2: [limits] file_size: 1K is out of "
	      "range: expected from 4 KiB to 1 TiB" },
	{ "open-files-too-few.policy",
	  BAD "open-files-too-few.policy:2: [limits] open_files: invalid "
	      "number \"3\": expected an integer from 16 to 65536" },
	{ "bad-address-space.policy",
	  BAD "bad-address-space.policy:2: [limits] address_space: 8M is out "
	      "of range: expected from 16 MiB to 1 TiB" },
	{ "bad-enforce.policy",
	  BAD "bad-enforce.policy:2: [limits] enforce: invalid value "
	      "\"sometimes\": expected required or best-effort" },
	/* [network] */
	{ "bad-net.policy",
	  BAD "bad-net.policy:2: [network] mode: invalid value \"internet\": "
	      "expected none or loopback" },
	/* [filesystem] */
	{ "bad-terminal.policy",
	  BAD "bad-terminal.policy:3: [filesystem] terminal: invalid value "
	      "\"true\": expected yes or no" },
	{ "tmp-larger-than-memory.policy",
	  BAD "tmp-larger-than-memory.policy: [filesystem] tmp_size: 32 MiB is "
	      "larger than [limits] memory (16 MiB): files in /tmp count "
	      "against the memory limit" },
	{ "bad-bind-relative.policy",
	  BAD "bad-bind-relative.policy:2: [filesystem] bind_ro: invalid bind "
	      "\"data:/data\": " BAD_BIND },
	{ "bind-over-usr.policy",
	  BAD "bind-over-usr.policy:2: [filesystem] bind_ro: cannot bind over "
	      "/usr/lib: the jail's own directories (/, /usr, /bin, /lib*, "
	      "/etc, /proc, /dev, /tmp, /module) are not bind targets" },
	/* "/." is "/": a "." part, which the message says is refused */
	{ "bind-over-root-dot.policy",
	  BAD "bind-over-root-dot.policy:3: [filesystem] bind_ro: invalid bind "
	      "\"/srv/root:/.\": " BAD_BIND },
	/* [identity] */
	{ "uid-zero.policy",
	  BAD "uid-zero.policy:3: [identity] uid: invalid number \"0\": "
	      "expected an integer from 1 to 4294967294" },
	{ "gid-too-large.policy",
	  BAD "gid-too-large.policy:3: [identity] gid: invalid number "
	      "\"4294967295\": expected an integer from 1 to 4294967294" },
	{ "bad-hostname.policy", BAD
	  "bad-hostname.policy:2: [identity] hostname: invalid hostname "
	  "\"my_host\": expected letters, digits, '-' and '.', at most 63" },
	/* [environment] */
	{ "bad-env-name.policy",
	  BAD "bad-env-name.policy:3: [environment] 1FOO: invalid variable "
	      "name: expected letters, digits and '_', not starting with a "
	      "digit" },
	{ "env-value-too-long.policy",
	  BAD "env-value-too-long.policy:2: [environment] BIG: value too long: "
	      "at most 1024 characters" },
	/* [seccomp] */
	{ "bad-default-action.policy",
	  BAD "bad-default-action.policy:2: [seccomp] default: invalid value "
	      "\"allow\": expected kill (a denied call ends the run as "
	      "seccomp_violation)" },
	{ "unknown-syscall.policy",
	  BAD "unknown-syscall.policy:2: [seccomp] allow: unknown syscall "
	      "\"frobnicate\" (not a syscall of this architecture known to "
	      "libseccomp)" },
	{ "unknown-group.policy",
	  BAD "unknown-group.policy:2: [seccomp] allow: unknown syscall group "
	      "\"@nosuch\"" },
	{ "bad-errno-entry.policy",
	  BAD "bad-errno-entry.policy:2: [seccomp] errno: invalid entry "
	      "\"clone3\": expected SYSCALL:ERRNO (e.g. clone3:ENOSYS)" },
	{ "unknown-errno.policy", BAD
	  "unknown-errno.policy:2: [seccomp] errno: unknown errno \"EFOO\": "
	  "expected EPERM, EACCES, ENOSYS, EINVAL, ENOENT, EOPNOTSUPP or "
	  "EAFNOSUPPORT" },
	{ "allow-and-errno-conflict.policy",
	  BAD "allow-and-errno-conflict.policy: [seccomp] errno: read is both "
	      "in allow and in errno: choose one" },
	/* [runtime] */
	{ "bad-archive-verdict.policy",
	  BAD "bad-archive-verdict.policy:2: [runtime] archive_on: unknown "
	      "verdict \"exploded\": expected crashed, timeout, memory_limit, "
	      "seccomp_violation or exit_nonzero" },
	{ "archive-on-ok.policy",
	  BAD "archive-on-ok.policy:2: [runtime] archive_on: ok cannot archive "
	      "a module: it is a success" },
	{ "setup-error-archived.policy", BAD
	  "setup-error-archived.policy:2: [runtime] archive_on: setup_error "
	  "cannot archive a module: it is the supervisor's failure, not "
	  "the module's" },
	{ "build-failed-archived.policy", BAD
	  "build-failed-archived.policy:2: [runtime] archive_on: build_failed "
	  "cannot archive a module: a build fails at validation, before the "
	  "module is active" },
	{ "bad-build-memory.policy",
	  BAD "bad-build-memory.policy:2: [build] memory: 1k is out of range: "
	      "expected from 4 MiB to 1 TiB" },
	{ "bad-build-command.policy",
	  BAD "bad-build-command.policy:2: [build] command: only printable "
	      "ASCII (it runs as sh -c COMMAND)" },
	{ "bad-runtime-seccomp.policy",
	  BAD "bad-runtime-seccomp.policy:2: [runtime] seccomp: expected "
	      "policy (the allow-list above) or learned (what the validation "
	      "run made)" },
	{ "bad-request-env.policy",
	  BAD "bad-request-env.policy:2: [runtime] request_env: invalid "
	      "variable name \"1BAD\": expected letters, digits and '_', not "
	      "starting with a digit, at most 63 characters" },
	{ "request-env-none-in-list.policy",
	  BAD "request-env-none-in-list.policy:2: [runtime] request_env: none "
	      "stands alone: it means no names" },
	{ "crash-budget-zero.policy",
	  BAD "crash-budget-zero.policy:2: [runtime] crash_budget: invalid "
	      "number \"0\": expected an integer from 1 to 1000000" },
	/* [policy] version_command: words run without a shell */
	{ "version-command-empty.policy",
	  BAD "version-command-empty.policy:2: [policy] version_command: "
	      "empty: give a command that prints the version, e.g. python3 "
	      "--version" },
	{ "version-command-long.policy",
	  BAD "version-command-long.policy:2: [policy] version_command: too "
	      "long: at most 255 characters" },
	{ "version-command-words.policy",
	  BAD "version-command-words.policy:2: [policy] version_command: more "
	      "than 8 words" },
	{ "version-command-relative.policy",
	  BAD "version-command-relative.policy:2: [policy] version_command: "
	      "\"../bin/python3\": " VERSION_PROGRAM },
	{ "version-command-dotdot.policy",
	  BAD "version-command-dotdot.policy:2: [policy] version_command: "
	      "\"/usr/../bin/python3\": " VERSION_PROGRAM },
	{ "version-command-shell.policy",
	  BAD "version-command-shell.policy:2: [policy] version_command: "
	      "\"--version;\": " VERSION_ARGUMENT },
	{ "version-command-quote.policy",
	  BAD "version-command-quote.policy:2: [policy] version_command: "
	      "\"\"--version\"\": " VERSION_ARGUMENT },
};

#define N_BAD ARRAY_SIZE(bad_files)

static void expect_refused(struct al_policy *p, const struct al_error *err,
			   const char *want, const char *how)
{
	if (p) {
		policy_free(p);
		fail_msg("%s accepted a bad policy (want: %s)", how, want);
	}
	if (strcmp(err->msg, want) != 0)
		print_error("%s: message differs\n", how);
	assert_string_equal(err->msg, want);
	assert_int_equal(err->errnum, EINVAL);
}

/* One fixture, three ways in: the same refusal, the same message. */
static void test_bad_file(void **state)
{
	const struct bad_file *bad = *state;
	char path[256];
	snprintf(path, sizeof(path), BAD "%s", bad->file);

	struct al_error err = { 0 };
	expect_refused(policy_load(path, &err), &err, bad->msg, "policy_load");

	char *text = read_text(path);
	struct al_error err2 = { 0 };
	struct al_policy *p = policy_parse_string(text, path, NULL, &err2);
	free(text);
	expect_refused(p, &err2, bad->msg, "policy_parse_string");

	FILE *f = fopen(path, "re");
	assert_non_null(f);
	struct al_error err3 = { 0 };
	p = policy_parse_file(f, path, "named", &err3);
	fclose(f);
	expect_refused(p, &err3, bad->msg, "policy_parse_file");
}

/* Every fixture in bad/ is in the table and the other way round. */
static void test_bad_files_listed(void **state)
{
	(void)state;
	glob_t g;
	assert_int_equal(glob(BAD "*.policy", 0, NULL, &g), 0);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		const char *base = g.gl_pathv[i] + strlen(BAD);
		bool found = false;
		for (size_t j = 0; j < N_BAD; j++)
			found |= strcmp(bad_files[j].file, base) == 0;
		if (!found)
			fail_msg("%s has no expected message in bad_files[]",
				 g.gl_pathv[i]);
	}
	assert_int_equal(g.gl_pathc, N_BAD);
	globfree(&g);
}

static void test_missing_file(void **state)
{
	(void)state;
	struct al_error err = { 0 };
	assert_null(policy_load(BAD "no-such-file.policy", &err));
	assert_string_equal(err.msg, "policy " BAD "no-such-file.policy: "
				     "No such file or directory");
	assert_int_equal(err.errnum, ENOENT);
	/* a bare name with a '.' is neither a name nor a path */
	assert_null(policy_load("strict.v2", &err));
	assert_string_equal(err.msg, "invalid policy name \"strict.v2\"");
}

/* A failed parse leaves nothing that changes the next one: a good file
 * parses to the same hash before and after every bad one. */
static void test_nothing_else_changed(void **state)
{
	(void)state;
	char before[POLICY_HASH_LEN], after[POLICY_HASH_LEN];
	struct al_policy *p = load_ok(FIXTURES "all-keys.policy");
	hash_ok(p, before);
	policy_free(p);
	for (size_t i = 0; i < N_BAD; i++) {
		char path[256];
		struct al_error err = { 0 };
		snprintf(path, sizeof(path), BAD "%s", bad_files[i].file);
		p = policy_load(path, &err);
		policy_free(p); /* NULL unless test_bad_file fails too */
		p = load_ok(FIXTURES "all-keys.policy");
		hash_ok(p, after);
		policy_free(p);
		if (strcmp(before, after) != 0)
			fail_msg("after %s: %s instead of %s", path, after,
				 before);
	}
	/* err == NULL is allowed: the caller does not want the message */
	assert_null(
		policy_parse_string("[limits]\nmemory = 1\n", "x", NULL, NULL));
}

/* ------------------------------------------------------------ the hash */

static void test_reformatted_default(void **state)
{
	(void)state;
	char want[POLICY_HASH_LEN], got[POLICY_HASH_LEN];
	default_hash(want);
	struct al_policy *p = load_ok(FIXTURES "reformatted-default.policy");
	hash_ok(p, got);
	if (strcmp(want, got) != 0) {
		struct al_error err = { 0 };
		char *text = policy_canonical(p, &err);
		print_error("canonical text of the reformatted file:\n%s\n",
			    text ? text : err.msg);
		free(text);
	}
	policy_free(p);
	assert_string_equal(got, want);
}

/* clang-format off */
static const char *const variants[] = {
	"memory-65M",	   "syscall-removed", "env-changed",
	"bind-added",	   "archive-changed", "net-none",
};
/* clang-format on */

#define N_VARIANTS ARRAY_SIZE(variants)

/* Each one-value change gives a hash of its own. */
static void test_variants_differ(void **state)
{
	(void)state;
	char hashes[N_VARIANTS + 1][POLICY_HASH_LEN];
	default_hash(hashes[0]);
	for (size_t i = 0; i < N_VARIANTS; i++) {
		char path[256];
		snprintf(path, sizeof(path), FIXTURES "variants/%s.policy",
			 variants[i]);
		struct al_policy *p = load_ok(path);
		hash_ok(p, hashes[i + 1]);
		policy_free(p);
		for (size_t j = 0; j <= i; j++)
			if (strcmp(hashes[i + 1], hashes[j]) == 0)
				fail_msg("%s hashes like %s", variants[i],
					 j ? variants[j - 1] : "the default");
	}
}

/* The canonical text is a policy file meaning the same: parsed back, it
 * gives the same hash and the same text. Says what differs and returns
 * false otherwise, having freed what it made, so that callers free theirs
 * and go on to the next policy before failing. */
static bool round_trips(const struct al_policy *p, const char *what)
{
	struct al_error err = { 0 };
	char *text = policy_canonical(p, &err);
	if (!text) {
		print_error("%s: policy_canonical failed: %s\n", what, err.msg);
		return false;
	}
	struct al_policy *back = policy_parse_string(text, "canonical", NULL,
						     &err);
	if (!back) {
		print_error("%s: the canonical text does not parse: %s\n", what,
			    err.msg);
		free(text);
		return false;
	}
	char *again = policy_canonical(back, &err);
	char a[POLICY_HASH_LEN] = "", b[POLICY_HASH_LEN] = "";
	bool same = again && policy_hash(p, a, &err) == 0 &&
		    policy_hash(back, b, &err) == 0 && strcmp(a, b) == 0 &&
		    strcmp(text, again) == 0;
	if (!same)
		print_error("%s: %s before the round trip, %s after; "
			    "before:\n%s\nafter:\n%s\n",
			    what, a, b, text, again ? again : err.msg);
	free(text);
	free(again);
	policy_free(back);
	return same;
}

/* Load each file and check it round-trips; fail after trying them all. */
static void expect_files_round_trip(const char *const *files, size_t n)
{
	size_t failed = 0;
	for (size_t i = 0; i < n; i++) {
		struct al_error err = { 0 };
		struct al_policy *p = policy_load(files[i], &err);
		if (!p) {
			print_error("%s: %s\n", files[i], err.msg);
			failed++;
			continue;
		}
		failed += !round_trips(p, files[i]);
		policy_free(p);
	}
	if (failed)
		fail_msg("%zu of %zu policies do not round-trip", failed, n);
}

/* The same for a policy given as text. */
static void expect_text_round_trips(const char *text, const char *what)
{
	struct al_policy *p = parse_ok(text, what);
	bool ok = round_trips(p, what);
	policy_free(p);
	if (!ok)
		fail_msg("%s does not round-trip", what);
}

static void test_round_trip_default(void **state)
{
	(void)state;
	struct al_error err = { 0 };
	struct al_policy *p = policy_new_default(&err);
	assert_non_null(p);
	bool ok = round_trips(p, "built-in default");
	policy_free(p);
	assert_true(ok);
}

/* The fixtures that parse: every one of them round-trips too. */
static void test_round_trip_fixtures(void **state)
{
	(void)state;
	const char *files[4 + N_VARIANTS] = {
		FIXTURES "all-keys.policy",
		FIXTURES "reformatted-default.policy",
		FIXTURES "long-line.policy",
		FIXTURES "lookup-dir/mine.policy",
	};
	char paths[N_VARIANTS][256];
	for (size_t i = 0; i < N_VARIANTS; i++) {
		snprintf(paths[i], sizeof(paths[i]),
			 FIXTURES "variants/%s.policy", variants[i]);
		files[4 + i] = paths[i];
	}
	expect_files_round_trip(files, 4 + N_VARIANTS);
}

/* A policy without one of the default's errno entries is still a policy:
 * its canonical text must say the entry is gone. */
static void test_round_trip_errno_removed(void **state)
{
	(void)state;
	expect_text_round_trips(
		"[seccomp]\nallow = @basic-io @memory !clone3\n",
		"allow = @basic-io @memory !clone3");
}

/* So is a policy that allows no syscall at all. */
static void test_round_trip_nothing_allowed(void **state)
{
	(void)state;
	expect_text_round_trips("[seccomp]\nallow = read\nallow = !read\n",
				"allow = read, then allow = !read");
}

/* Found by tests/fuzz: a value that starts with a comment character
 * ("NAME =#x": no space before the '#', so libinih passes it on) could not
 * be written back in the canonical form, where " #" starts a comment: it
 * is refused, with the line and key, instead of changing meaning. */
static void test_round_trip_env_comment_char(void **state)
{
	(void)state;
	static const char *const texts[] = {
		"[environment]\nCOLOR =#ff0000\n",
		"[environment]\nSEP=;\n",
		"[policy]\ndescription =#x\n",
	};
	static const char *const want[] = {
		"comment-char:2: [environment] COLOR: a value may not start "
		"with '#' or ';' (they begin comments)",
		"comment-char:2: [environment] SEP: a value may not start "
		"with '#' or ';' (they begin comments)",
		"comment-char:2: [policy] description: a value may not start "
		"with '#' or ';' (they begin comments)",
	};
	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		struct al_error err = { 0 };
		assert_null(policy_parse_string(texts[i], "comment-char", NULL,
						&err));
		assert_string_equal(err.msg, want[i]);
	}
}

/* A command-line override makes a derived policy; its canonical text is
 * recorded as what the run was held to, so it must be a policy file too:
 * either the override is refused, or the text parses back. */
static void test_round_trip_override(void **state)
{
	(void)state;
	struct al_error err = { 0 };
	struct al_policy *p = policy_new_default(&err);
	assert_non_null(p);
	/* below the default's 16M /tmp, which a file may not do */
	bool ok = policy_set_memory(p, "8M", &err) < 0 ||
		  round_trips(p, "the default with --memory 8M");
	policy_free(p);
	assert_true(ok);
}

/* ------------------------------------------------------ shipped policies */

static void test_shipped_load(void **state)
{
	(void)state;
	static const char *const names[] = { "default", "node", "python",
					     "strict" };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		char path[256];
		snprintf(path, sizeof(path), "policy/policies/%s.policy",
			 names[i]);
		struct al_policy *p = load_ok(path);
		bool named = strcmp(policy_name(p), names[i]) == 0;
		bool described = *policy_description(p) != '\0';
		policy_free(p);
		assert_true(named);
		assert_true(described);
	}
	/* and whatever else is shipped */
	glob_t g;
	size_t failed = 0;
	assert_int_equal(glob("policy/policies/*.policy", 0, NULL, &g), 0);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		struct al_error err = { 0 };
		struct al_policy *p = policy_load(g.gl_pathv[i], &err);
		if (!p) {
			print_error("%s\n", err.msg);
			failed++;
		}
		policy_free(p);
	}
	globfree(&g);
	assert_int_equal(failed, 0);
}

/* Every shipped policy round-trips through its canonical text. */
static void test_shipped_round_trip(void **state)
{
	(void)state;
	char paths[32][256];
	const char *files[32];
	glob_t g;
	assert_int_equal(glob("policy/policies/*.policy", 0, NULL, &g), 0);
	size_t n = g.gl_pathc < 32 ? g.gl_pathc : 32;
	for (size_t i = 0; i < n; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s", g.gl_pathv[i]);
		files[i] = paths[i];
	}
	globfree(&g);
	expect_files_round_trip(files, n);
}

static void test_shipped_default_is_built_in(void **state)
{
	(void)state;
	char want[POLICY_HASH_LEN], got[POLICY_HASH_LEN];
	default_hash(want);
	struct al_policy *p = load_ok("policy/policies/default.policy");
	hash_ok(p, got);
	assert_string_equal(got, want);
	policy_free(p);
}

/* The shipped policies differ from each other. */
static void test_shipped_distinct(void **state)
{
	(void)state;
	static const char *const names[] = { "default", "node", "python",
					     "strict" };
	char h[4][POLICY_HASH_LEN];
	for (size_t i = 0; i < 4; i++) {
		char path[256];
		snprintf(path, sizeof(path), "policy/policies/%s.policy",
			 names[i]);
		struct al_policy *p = load_ok(path);
		hash_ok(p, h[i]);
		policy_free(p);
		for (size_t j = 0; j < i; j++)
			if (strcmp(h[i], h[j]) == 0)
				fail_msg("%s hashes like %s", names[i],
					 names[j]);
	}
}

/* ---------------------------------------------------------- search path */

#define LOOKUP_DIR FIXTURES "lookup-dir"

static int lookup_setup(void **state)
{
	(void)state;
	return setenv("AIRLOCK_POLICY_PATH", LOOKUP_DIR, 1);
}

static int lookup_teardown(void **state)
{
	(void)state;
	return unsetenv("AIRLOCK_POLICY_PATH");
}

struct listing {
	int count;
	char names[8][64];
	char paths[8][256];
};

static void collect(const char *name, const char *path, void *arg)
{
	struct listing *l = arg;
	if (l->count < 8) {
		snprintf(l->names[l->count], sizeof(l->names[0]), "%s", name);
		snprintf(l->paths[l->count], sizeof(l->paths[0]), "%s", path);
	}
	l->count++;
}

static void test_lookup(void **state)
{
	(void)state;
	char buf[256];
	assert_string_equal(policy_search_path(buf, sizeof(buf)), LOOKUP_DIR);

	struct al_policy *p = load_ok("mine");
	assert_string_equal(policy_name(p), "mine");
	assert_int_equal(policy_limits(p)->memory_bytes, 32 * MiB);
	policy_free(p);

	struct al_error err = { 0 };
	assert_null(policy_load("nosuch", &err));
	if (!strstr(err.msg, "unknown policy \"nosuch\""))
		fail_msg("message: %s", err.msg);
	assert_non_null(strstr(err.msg, LOOKUP_DIR));
	assert_int_equal(err.errnum, ENOENT);

	/* no default.policy in the path: the built-in one */
	char want[POLICY_HASH_LEN], got[POLICY_HASH_LEN];
	default_hash(want);
	p = load_ok("default");
	assert_string_equal(policy_name(p), "default");
	hash_ok(p, got);
	assert_string_equal(got, want);
	policy_free(p);

	/* the shipped ones are not in this path */
	assert_null(policy_load("strict", &err));

	struct listing l = { 0 };
	assert_int_equal(policy_list(collect, &l), 1);
	assert_int_equal(l.count, 1);
	assert_string_equal(l.names[0], "mine");
	assert_string_equal(l.paths[0], LOOKUP_DIR "/mine.policy");
}

/* ----------------------------------------------------------------- main */

/* clang-format off */
#define TEST(f) { #f, f, NULL, NULL, NULL }
/* clang-format on */

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		TEST(test_all_keys),
		TEST(test_cpu_time_follows_timeout),
		TEST(test_name),
		TEST(test_long_line),
		TEST(test_bad_files_listed),
		TEST(test_version_command),
		TEST(test_missing_file),
		TEST(test_nothing_else_changed),
		TEST(test_reformatted_default),
		TEST(test_variants_differ),
		TEST(test_round_trip_default),
		TEST(test_round_trip_fixtures),
		TEST(test_round_trip_errno_removed),
		TEST(test_round_trip_nothing_allowed),
		TEST(test_round_trip_override),
		TEST(test_round_trip_env_comment_char),
		TEST(test_shipped_load),
		TEST(test_shipped_round_trip),
		TEST(test_shipped_default_is_built_in),
		TEST(test_shipped_distinct),
		cmocka_unit_test_setup_teardown(test_lookup, lookup_setup,
						lookup_teardown),
	};
	size_t n_fixed = ARRAY_SIZE(fixed);
	/* one test per bad fixture, named after it */
	struct CMUnitTest tests[ARRAY_SIZE(fixed) + N_BAD];
	memcpy(tests, fixed, sizeof(fixed));
	for (size_t i = 0; i < N_BAD; i++)
		tests[n_fixed + i] = (struct CMUnitTest){
			.name = bad_files[i].file,
			.test_func = test_bad_file,
			.initial_state = (void *)&bad_files[i],
		};
	return _cmocka_run_group_tests("test_policy_file", tests,
				       n_fixed + N_BAD, NULL, NULL);
}
