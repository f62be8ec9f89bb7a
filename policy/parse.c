/*
 * Policy files: INI syntax read by libinih, every value validated here.
 *
 * The syntax (sections, `key = value`, `#` and `;` comments) is libinih's;
 * what the keys mean, which values are allowed and how lists combine is
 * this file's, in one table (`keys`). The first error stops the parse and
 * becomes one message: "FILE:LINE: [section] key: what was expected".
 *
 * Scalar keys may appear once. List keys (allow, errno, bind_ro, bind_rw)
 * may repeat; their values add up in order. The first allow (or errno) of
 * a file replaces the default list; "none" is the empty list.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "policy/internal.h"

#define MAX_LINE 4096
#define MAX_BINDS 32
#define PATH_MAX_POLICY 1024

struct parse_state {
	struct al_policy *p;
	struct al_error *err;
	char section[64];
	char key[64];
	bool failed;
	bool seen_allow;
	bool seen_errno;
	/* errno entries are applied after the whole file, so that they win
	 * over a group in allow whatever the order of the lines */
	struct {
		char name[64];
		int errnum;
	} errnos[64];
	int n_errnos;
	bool cpu_time_set;
	bool tmp_size_set;
	uint64_t seen;   /* bit per scalar key, by table index */
	char *allowed;   /* " name name " of the file's allow tokens */
	char *env_names; /* " NAME NAME " set in [environment] */
};

typedef int (*setter_fn)(struct parse_state *st, const char *value);

struct key {
	const char *section;
	const char *name; /* NULL: any name (the [environment] section) */
	bool list;
	setter_fn set;
};

static int fail(struct parse_state *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct parse_state *st, const char *fmt, ...)
{
	char msg[AL_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	al_error_set(st->err, EINVAL, "%s", msg);
	st->failed = true;
	return -1;
}

/* A parse_* error from common/ already says what was expected. */
static int fail_from(struct parse_state *st, struct al_error *sub)
{
	return fail(st, "%s", sub->msg);
}

/* --------------------------------------------------------------- values */

static int get_size(struct parse_state *st, const char *v, uint64_t min,
		    uint64_t max, uint64_t *out)
{
	struct al_error sub = { 0 };
	uint64_t n;
	if (parse_size(v, &n, &sub) < 0)
		return fail_from(st, &sub);
	if (n < min || n > max) {
		char lo[32], hi[32];
		format_size(min, lo, sizeof(lo));
		format_size(max, hi, sizeof(hi));
		return fail(st, "%s is out of range: expected from %s to %s", v,
			    lo, hi);
	}
	*out = n;
	return 0;
}

static int get_duration(struct parse_state *st, const char *v, uint64_t *out)
{
	struct al_error sub = { 0 };
	uint64_t us;
	if (parse_duration_us(v, &us, &sub) < 0)
		return fail_from(st, &sub);
	if (us < TIMEOUT_MIN_US || us > TIMEOUT_MAX_US)
		return fail(st, "%s is out of range: expected from 1ms to 24h",
			    v);
	*out = us;
	return 0;
}

static int get_uint(struct parse_state *st, const char *v, uint64_t min,
		    uint64_t max, uint64_t *out)
{
	struct al_error sub = { 0 };
	if (parse_uint(v, min, max, out, &sub) < 0)
		return fail_from(st, &sub);
	return 0;
}

static bool is_word(const char *s, const char *extra, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
			return false;
	return true;
}

/* Split a list value on spaces and commas, calling fn for each token. */
static int each_token(struct parse_state *st, const char *value,
		      int (*fn)(struct parse_state *, const char *))
{
	char buf[MAX_LINE];
	snprintf(buf, sizeof(buf), "%s", value);
	char *save = NULL;
	int count = 0;
	for (char *t = strtok_r(buf, " \t,", &save); t;
	     t = strtok_r(NULL, " \t,", &save), count++)
		if (fn(st, t) < 0)
			return -1;
	return count ? 0 : fail(st, "empty list");
}

/* ------------------------------------------------------------- [policy] */

static int set_name(struct parse_state *st, const char *v)
{
	if (!is_word(v, "-_.", sizeof(st->p->name) - 1) || v[0] == '.')
		return fail(st,
			    "invalid name \"%s\": expected letters, digits, "
			    "'-', '_' or '.', at most 63",
			    v);
	snprintf(st->p->name, sizeof(st->p->name), "%s", v);
	return 0;
}

static int plain_value(struct parse_state *st, const char *v);

static int set_description(struct parse_state *st, const char *v)
{
	if (plain_value(st, v) < 0)
		return -1;
	if (strlen(v) >= sizeof(st->p->description))
		return fail(st, "too long: at most 255 characters");
	snprintf(st->p->description, sizeof(st->p->description), "%s", v);
	return 0;
}

/* A program a version command may name: a bare name found on the jail's
 * PATH, or an absolute path without "..". */
static bool version_program_ok(const char *w)
{
	if (w[0] == '/')
		return strstr(w, "/..") == NULL && is_word(w + 1, "/._+-", 254);
	return w[0] != '-' && w[0] != '.' && is_word(w, "._+-", 64);
}

/* Words of known characters, single spaces: run as it is, no shell. */
static int set_version_command(struct parse_state *st, const char *v)
{
	char buf[POLICY_VERSION_COMMAND_MAX + 1], *save = NULL;
	int words = 0;

	if (plain_value(st, v) < 0)
		return -1;
	if (v[0] == '\0')
		return fail(st, "empty: give a command that prints the "
				"version, e.g. python3 --version");
	if (strlen(v) > POLICY_VERSION_COMMAND_MAX)
		return fail(st, "too long: at most %d characters",
			    POLICY_VERSION_COMMAND_MAX);
	snprintf(buf, sizeof(buf), "%s", v);
	for (char *w = strtok_r(buf, " ", &save); w;
	     w = strtok_r(NULL, " ", &save)) {
		if (++words > POLICY_VERSION_ARGS_MAX)
			return fail(st, "more than %d words",
				    POLICY_VERSION_ARGS_MAX);
		if (words == 1 && !version_program_ok(w))
			return fail(st,
				    "\"%.64s\": expected a program name "
				    "(letters, digits, '.', '_', '+', '-') or "
				    "an absolute path",
				    w);
		if (!is_word(w, "-._+=:,/@%", POLICY_VERSION_COMMAND_MAX))
			return fail(st,
				    "\"%.64s\": only letters, digits and "
				    "- . _ + = : , / @ %% in an argument (it "
				    "runs without a shell: no quotes, no "
				    "$, no pipes)",
				    w);
	}
	/* kept single-spaced, as policy_version_argv() splits it */
	size_t w = 0;
	for (size_t i = 0; v[i]; i++)
		if (v[i] != ' ' ||
		    (w > 0 && st->p->version_command[w - 1] != ' '))
			st->p->version_command[w++] = v[i];
	while (w > 0 && st->p->version_command[w - 1] == ' ')
		w--;
	st->p->version_command[w] = '\0';
	return 0;
}

/* ------------------------------------------------------------- [limits] */

static int set_memory(struct parse_state *st, const char *v)
{
	return get_size(st, v, MEMORY_MIN, MEMORY_MAX,
			&st->p->limits.memory_bytes);
}

static int set_timeout(struct parse_state *st, const char *v)
{
	if (get_duration(st, v, &st->p->limits.timeout_us) < 0)
		return -1;
	if (!st->cpu_time_set)
		st->p->limits.cpu_time_us = st->p->limits.timeout_us;
	return 0;
}

static int set_cpu_time(struct parse_state *st, const char *v)
{
	st->cpu_time_set = true;
	return get_duration(st, v, &st->p->limits.cpu_time_us);
}

/* "0.5", "2", "1.25": CPUs of bandwidth, into thousandths. */
static int set_cpus(struct parse_state *st, const char *v)
{
	/* plain decimals only: strtod would also take hex, exponents, inf */
	size_t digits = strspn(v, "0123456789");
	bool plain = digits > 0 && (v[digits] == '\0' ||
				    (v[digits] == '.' && v[digits + 1] &&
				     strspn(v + digits + 1, "0123456789") ==
					     strlen(v + digits + 1)));
	char *end;
	errno = 0;
	double cpus = plain ? strtod(v, &end) : 0;
	if (!plain || errno || !(cpus >= 0.01 && cpus <= 1024))
		return fail(st,
			    "invalid value \"%s\": expected a number of "
			    "CPUs from 0.01 to 1024 (e.g. 0.5)",
			    v);
	st->p->limits.cpu_quota_milli = (uint64_t)(cpus * 1000 + 0.5);
	return 0;
}

static int set_pids(struct parse_state *st, const char *v)
{
	return get_uint(st, v, 1, PIDS_MAX, &st->p->limits.pids);
}

static int set_stdout_max(struct parse_state *st, const char *v)
{
	return get_size(st, v, 0, 1024 * MiB, &st->p->limits.stdout_max);
}

static int set_stderr_max(struct parse_state *st, const char *v)
{
	return get_size(st, v, 0, 1024 * MiB, &st->p->limits.stderr_max);
}

static int set_file_size(struct parse_state *st, const char *v)
{
	return get_size(st, v, 4096, 1 * TiB, &st->p->limits.fsize_bytes);
}

static int set_open_files(struct parse_state *st, const char *v)
{
	return get_uint(st, v, 16, 65536, &st->p->limits.nofile);
}

static int set_address_space(struct parse_state *st, const char *v)
{
	if (strcmp(v, "unlimited") == 0) {
		st->p->limits.as_bytes = 0;
		return 0;
	}
	return get_size(st, v, 16 * MiB, 1 * TiB, &st->p->limits.as_bytes);
}

static int set_enforce(struct parse_state *st, const char *v)
{
	if (strcmp(v, "required") == 0)
		st->p->limits.limits_mode = POLICY_LIMITS_REQUIRED;
	else if (strcmp(v, "best-effort") == 0)
		st->p->limits.limits_mode = POLICY_LIMITS_BEST_EFFORT;
	else
		return fail(st,
			    "invalid value \"%s\": expected required or "
			    "best-effort",
			    v);
	return 0;
}

/* ------------------------------------------------------------ [network] */

static int set_net(struct parse_state *st, const char *v)
{
	if (strcmp(v, "none") == 0)
		st->p->limits.net = POLICY_NET_NONE;
	else if (strcmp(v, "loopback") == 0)
		st->p->limits.net = POLICY_NET_LOOPBACK;
	else
		return fail(st,
			    "invalid value \"%s\": expected none or "
			    "loopback",
			    v);
	return 0;
}

/* --------------------------------------------------------- [filesystem] */

static int set_tmp_size(struct parse_state *st, const char *v)
{
	st->tmp_size_set = true;
	return get_size(st, v, 1 * MiB, 1 * TiB, &st->p->limits.tmp_bytes);
}

static int set_terminal(struct parse_state *st, const char *v)
{
	if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0)
		return fail(st, "invalid value \"%s\": expected yes or no", v);
	st->p->limits.terminal = strcmp(v, "yes") == 0;
	return 0;
}

/* Targets inside the jail that belong to the jail itself. */
static bool reserved_target(const char *jail)
{
	/* clang-format off */
	static const char *const reserved[] = {
		"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32",
		"/libx32", "/etc", "/proc", "/dev", "/tmp", "/module", "/sys",
	};
	/* clang-format on */
	if (strcmp(jail, "/") == 0)
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(reserved); i++) {
		size_t n = strlen(reserved[i]);
		if (strncmp(jail, reserved[i], n) == 0 &&
		    (jail[n] == '\0' || jail[n] == '/'))
			return true;
	}
	return false;
}

/* Absolute, and every component a real name: no empty ("//", a trailing
 * "/"), "." or ".." components that would make two spellings of one path
 * (or a way past the reserved-target check). "/" alone is clean. */
static bool clean_path(const char *path)
{
	size_t len = strlen(path);
	if (path[0] != '/' || len >= PATH_MAX_POLICY)
		return false;
	if (len == 1)
		return true;
	for (const char *c = path + 1;;) {
		const char *slash = strchr(c, '/');
		size_t n = slash ? (size_t)(slash - c) : strlen(c);
		if (n == 0 || (n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (!slash)
			return true;
		c = slash + 1;
	}
}

static int add_bind(struct parse_state *st, const char *token, bool writable)
{
	char host[PATH_MAX_POLICY], jail[PATH_MAX_POLICY];
	const char *colon = strchr(token, ':');
	size_t hlen = colon ? (size_t)(colon - token) : strlen(token);
	if (hlen >= sizeof(host))
		return fail(st, "path too long: %.64s...", token);
	memcpy(host, token, hlen);
	host[hlen] = '\0';
	snprintf(jail, sizeof(jail), "%s", colon ? colon + 1 : host);
	if (!clean_path(host) || !clean_path(jail))
		return fail(st,
			    "invalid bind \"%s\": expected HOST[:JAIL] with "
			    "absolute paths without . or .. parts",
			    token);
	if (reserved_target(jail))
		return fail(st,
			    "cannot bind over %s: the jail's own "
			    "directories (/, /usr, /bin, /lib*, /etc, /proc, "
			    "/dev, /tmp, /module) are not bind targets",
			    jail);
	if (st->p->n_binds >= MAX_BINDS)
		return fail(st, "too many binds: at most %d", MAX_BINDS);
	return policy_bind_add(st->p, host, jail, writable, st->err) < 0
		       ? fail(st, "out of memory")
		       : 0;
}

static int add_bind_ro(struct parse_state *st, const char *token)
{
	return add_bind(st, token, false);
}

static int add_bind_rw(struct parse_state *st, const char *token)
{
	return add_bind(st, token, true);
}

static int set_bind_ro(struct parse_state *st, const char *v)
{
	return each_token(st, v, add_bind_ro);
}

static int set_bind_rw(struct parse_state *st, const char *v)
{
	return each_token(st, v, add_bind_rw);
}

/* ----------------------------------------------------------- [identity] */

static int set_id(struct parse_state *st, const char *v, uint32_t *out)
{
	uint64_t id;
	/* 0 is root; 4294967295 is (uid_t)-1, "no change" to the kernel */
	if (get_uint(st, v, 1, 4294967294ull, &id) < 0)
		return -1;
	*out = (uint32_t)id;
	return 0;
}

static int set_uid(struct parse_state *st, const char *v)
{
	return set_id(st, v, &st->p->limits.uid);
}

static int set_gid(struct parse_state *st, const char *v)
{
	return set_id(st, v, &st->p->limits.gid);
}

static int set_hostname(struct parse_state *st, const char *v)
{
	if (!is_word(v, "-.", 63) || v[0] == '-' || v[0] == '.')
		return fail(st,
			    "invalid hostname \"%s\": expected letters, "
			    "digits, '-' and '.', at most 63",
			    v);
	snprintf(st->p->hostname, sizeof(st->p->hostname), "%s", v);
	return 0;
}

/* -------------------------------------------------------- [environment] */

/* libinih reads " #..." and " ;..." as comments, so a value that starts
 * with either could not be written back: refuse it rather than let its
 * canonical form mean something else. */
static int plain_value(struct parse_state *st, const char *v)
{
	if (v[0] == '#' || v[0] == ';')
		return fail(st, "a value may not start with '#' or ';' (they "
				"begin comments)");
	return 0;
}

static int set_env(struct parse_state *st, const char *v)
{
	if (plain_value(st, v) < 0)
		return -1;
	const char *name = st->key;
	if (!policy_env_name_valid(name))
		return fail(st, "invalid variable name: expected letters, "
				"digits and '_', not starting with a digit");
	if (strlen(v) > 1024)
		return fail(st, "value too long: at most 1024 characters");
	return policy_env_set(st->p, name, v, st->err) < 0
		       ? fail(st, "out of memory")
		       : 0;
}

/* ------------------------------------------------------------ [seccomp] */

static int known_syscall(struct parse_state *st, const char *name)
{
	if (seccomp_syscall_resolve_name(name) == __NR_SCMP_ERROR)
		return fail(st,
			    "unknown syscall \"%s\" (not a syscall of this "
			    "architecture known to libseccomp)",
			    name);
	return 0;
}

/* Remember a name in a " a b c " set, to find names in both lists. */
static int remember(struct parse_state *st, char **set, const char *name)
{
	size_t old = *set ? strlen(*set) : 0;
	char *grown = realloc(*set, old + strlen(name) + 3);
	if (!grown)
		return fail(st, "out of memory");
	snprintf(grown + old, strlen(name) + 3, "%s%s ", old ? "" : " ", name);
	*set = grown;
	return 0;
}

static bool in_set(const char *set, const char *name)
{
	char pattern[80];
	snprintf(pattern, sizeof(pattern), " %s ", name);
	return set && strstr(set, pattern);
}

static int allow_token(struct parse_state *st, const char *t)
{
	bool remove = t[0] == '!';
	const char *name = t + remove;
	if (name[0] == '@') {
		struct al_error sub = { 0 };
		if (policy_group_apply(st->p, name, remove, &sub) < 0)
			return fail_from(st, &sub);
		return 0;
	}
	if (known_syscall(st, name) < 0)
		return -1;
	if (remove) {
		policy_sys_remove(st->p, name);
		return 0;
	}
	if (remember(st, &st->allowed, name) < 0)
		return -1;
	return policy_sys_add(st->p, name, POLICY_SYS_ALLOW, 0, st->err) < 0
		       ? fail(st, "out of memory")
		       : 0;
}

static int set_allow(struct parse_state *st, const char *v)
{
	bool none = strcmp(v, "none") == 0;
	/* the file's allow-list replaces the default one; errno entries
	 * (clone3, io_uring_*) stay unless the file changes them */
	if (!st->seen_allow) {
		st->seen_allow = true;
		for (size_t i = policy_syscall_count(st->p); i-- > 0;) {
			const struct policy_syscall *s =
				policy_syscall_at(st->p, i);
			if (s->action == POLICY_SYS_ALLOW)
				policy_sys_remove(st->p, s->name);
		}
	}
	return none ? 0 : each_token(st, v, allow_token);
}

static const struct {
	const char *name;
	int value;
	/* clang-format off */
} errno_names[] = {
	{ "EPERM", EPERM },   { "EACCES", EACCES },
	{ "ENOSYS", ENOSYS }, { "EINVAL", EINVAL },
	{ "ENOENT", ENOENT }, { "EOPNOTSUPP", EOPNOTSUPP },
	{ "EAFNOSUPPORT", EAFNOSUPPORT },
};
/* clang-format on */

static int errno_token(struct parse_state *st, const char *t)
{
	char name[64];
	const char *colon = strchr(t, ':');
	if (!colon || (size_t)(colon - t) >= sizeof(name))
		return fail(st,
			    "invalid entry \"%s\": expected SYSCALL:ERRNO "
			    "(e.g. clone3:ENOSYS)",
			    t);
	memcpy(name, t, (size_t)(colon - t));
	name[colon - t] = '\0';
	if (known_syscall(st, name) < 0)
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(errno_names); i++) {
		if (strcmp(colon + 1, errno_names[i].name) != 0)
			continue;
		if (st->n_errnos >= (int)ARRAY_SIZE(st->errnos))
			return fail(st, "too many entries: at most 64");
		snprintf(st->errnos[st->n_errnos].name,
			 sizeof(st->errnos[0].name), "%s", name);
		st->errnos[st->n_errnos++].errnum = errno_names[i].value;
		return 0;
	}
	return fail(st,
		    "unknown errno \"%s\": expected EPERM, EACCES, "
		    "ENOSYS, EINVAL, ENOENT, EOPNOTSUPP or EAFNOSUPPORT",
		    colon + 1);
}

/* The file's errno list replaces the default one (as allow does);
 * "none" leaves it empty. */
static int set_errno(struct parse_state *st, const char *v)
{
	st->seen_errno = true;
	if (strcmp(v, "none") == 0)
		return 0;
	return each_token(st, v, errno_token);
}

static int apply_errnos(struct parse_state *st)
{
	if (st->seen_errno)
		for (size_t i = policy_syscall_count(st->p); i-- > 0;) {
			const struct policy_syscall *s =
				policy_syscall_at(st->p, i);
			if (s->action == POLICY_SYS_ERRNO)
				policy_sys_remove(st->p, s->name);
		}
	snprintf(st->section, sizeof(st->section), "seccomp");
	snprintf(st->key, sizeof(st->key), "errno");
	for (int i = 0; i < st->n_errnos; i++) {
		const char *name = st->errnos[i].name;
		if (in_set(st->allowed, name))
			return fail(st,
				    "%s is both in allow and in errno: "
				    "choose one",
				    name);
		if (policy_sys_add(st->p, name, POLICY_SYS_ERRNO,
				   st->errnos[i].errnum, st->err) < 0)
			return fail(st, "out of memory");
	}
	return 0;
}

static int set_default_action(struct parse_state *st, const char *v)
{
	if (strcmp(v, "kill") != 0)
		return fail(st,
			    "invalid value \"%s\": expected kill (a denied "
			    "call ends the run as seccomp_violation)",
			    v);
	return 0;
}

/* ------------------------------------------------------------ [runtime] */

static int archive_token(struct parse_state *st, const char *t)
{
	int v = al_verdict_parse(t);
	if (v < 0)
		return fail(st,
			    "unknown verdict \"%s\": expected crashed, "
			    "timeout, memory_limit, seccomp_violation or "
			    "exit_nonzero",
			    t);
	if (v == AL_VERDICT_OK || v == AL_VERDICT_SETUP_ERROR ||
	    v == AL_VERDICT_BUILD_FAILED)
		return fail(st, "%s cannot archive a module: %s", t,
			    v == AL_VERDICT_OK ? "it is a success"
			    : v == AL_VERDICT_BUILD_FAILED
				    ? "a build fails at validation, before "
				      "the module is active"
				    : "it is the supervisor's failure, not the "
				      "module's");
	st->p->archive_on |= 1u << v;
	return 0;
}

static int set_archive_on(struct parse_state *st, const char *v)
{
	st->p->archive_on = 0;
	if (strcmp(v, "none") == 0)
		return 0;
	return each_token(st, v, archive_token);
}

static int set_crash_budget(struct parse_state *st, const char *v)
{
	return get_uint(st, v, 1, 1000000, &st->p->crash_budget);
}

static int set_runtime_seccomp(struct parse_state *st, const char *v)
{
	if (strcmp(v, "policy") != 0 && strcmp(v, "learned") != 0)
		return fail(st, "expected policy (the allow-list above) or "
				"learned (what the validation run made)");
	st->p->seccomp_learned = strcmp(v, "learned") == 0;
	return 0;
}

static int request_env_token(struct parse_state *st, const char *t)
{
	/* it would be a name here, and the canonical form would read it as
	 * the empty list */
	if (strcmp(t, "none") == 0)
		return fail(st, "none stands alone: it means no names");
	if (!policy_env_name_valid(t))
		return fail(st,
			    "invalid variable name \"%s\": expected letters, "
			    "digits and '_', not starting with a digit, at "
			    "most %d characters",
			    t, POLICY_ENV_NAME_MAX);
	if (policy_request_env_count(st->p) >= POLICY_REQUEST_ENV_MAX)
		return fail(st, "too many names: at most %d",
			    POLICY_REQUEST_ENV_MAX);
	return policy_request_env_add(st->p, t, st->err) < 0
		       ? fail(st, "out of memory")
		       : 0;
}

/* The names an exec request may set in the module's environment; none
 * unless listed, so a policy without the key gives requests no say. */
static int set_request_env(struct parse_state *st, const char *v)
{
	policy_request_env_clear(st->p);
	if (strcmp(v, "none") == 0)
		return 0;
	return each_token(st, v, request_env_token);
}

/* -------------------------------------------------------------- [build] */

static int set_build_command(struct parse_state *st, const char *v)
{
	if (plain_value(st, v) < 0)
		return -1;
	if (!v[0] || strlen(v) >= sizeof(st->p->build_command))
		return fail(st, "expected a command of 1 to %zu characters",
			    sizeof(st->p->build_command) - 1);
	for (const char *c = v; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			return fail(st, "only printable ASCII (it runs as "
					"sh -c COMMAND)");
	snprintf(st->p->build_command, sizeof(st->p->build_command), "%s", v);
	return 0;
}

static int set_build_timeout(struct parse_state *st, const char *v)
{
	return get_duration(st, v, &st->p->build_timeout_us);
}

static int set_build_memory(struct parse_state *st, const char *v)
{
	return get_size(st, v, MEMORY_MIN, MEMORY_MAX,
			&st->p->build_memory_bytes);
}

/* ---------------------------------------------------------------- table */

static const struct key keys[] = {
	{ "policy", "name", false, set_name },
	{ "policy", "description", false, set_description },
	{ "policy", "version_command", false, set_version_command },
	{ "limits", "memory", false, set_memory },
	{ "limits", "timeout", false, set_timeout },
	{ "limits", "cpu_time", false, set_cpu_time },
	{ "limits", "cpus", false, set_cpus },
	{ "limits", "pids", false, set_pids },
	{ "limits", "stdout_max", false, set_stdout_max },
	{ "limits", "stderr_max", false, set_stderr_max },
	{ "limits", "file_size", false, set_file_size },
	{ "limits", "open_files", false, set_open_files },
	{ "limits", "address_space", false, set_address_space },
	{ "limits", "enforce", false, set_enforce },
	{ "network", "mode", false, set_net },
	{ "filesystem", "tmp_size", false, set_tmp_size },
	{ "filesystem", "terminal", false, set_terminal },
	{ "filesystem", "bind_ro", true, set_bind_ro },
	{ "filesystem", "bind_rw", true, set_bind_rw },
	{ "identity", "uid", false, set_uid },
	{ "identity", "gid", false, set_gid },
	{ "identity", "hostname", false, set_hostname },
	{ "environment", NULL, false, set_env },
	{ "seccomp", "default", false, set_default_action },
	{ "seccomp", "allow", true, set_allow },
	{ "seccomp", "errno", true, set_errno },
	{ "runtime", "archive_on", false, set_archive_on },
	{ "runtime", "crash_budget", false, set_crash_budget },
	{ "runtime", "seccomp", false, set_runtime_seccomp },
	{ "runtime", "request_env", false, set_request_env },
	{ "build", "command", false, set_build_command },
	{ "build", "timeout", false, set_build_timeout },
	{ "build", "memory", false, set_build_memory },
};

#define N_KEYS ARRAY_SIZE(keys)
_Static_assert(N_KEYS <= 64, "parse_state.seen has a bit per key");

static bool known_section(const char *section)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (strcmp(keys[i].section, section) == 0)
			return true;
	return false;
}

/* The environment section allows any name: remember each one seen. */
static bool env_seen(struct parse_state *st, const char *name)
{
	if (in_set(st->env_names, name))
		return true;
	remember(st, &st->env_names, name);
	return false;
}

static int handler(void *user, const char *section, const char *name,
		   const char *value)
{
	struct parse_state *st = user;
	snprintf(st->section, sizeof(st->section), "%s", section);
	snprintf(st->key, sizeof(st->key), "%s", name);
	if (!known_section(section)) {
		fail(st, "unknown section; expected [policy], [limits], "
			 "[network], [filesystem], [identity], "
			 "[environment], [seccomp], [runtime] or [build]");
		return 0;
	}
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct key *k = &keys[i];
		if (strcmp(k->section, section) != 0 ||
		    (k->name && strcmp(k->name, name) != 0))
			continue;
		bool dup = k->name ? (st->seen & (UINT64_C(1) << i)) != 0
				   : env_seen(st, name);
		if (!k->list && dup) {
			fail(st, "duplicate key: each setting appears once "
				 "(only list keys may repeat)");
			return 0;
		}
		st->seen |= UINT64_C(1) << i;
		return k->set(st, value) < 0 ? 0 : 1;
	}
	fail(st, "unknown key");
	return 0;
}

/* ------------------------------------------------------ whole-file checks */

static int check_conflicts(struct parse_state *st)
{
	const struct policy_limits *l = &st->p->limits;
	char a[32], b[32];
	snprintf(st->section, sizeof(st->section), "filesystem");
	snprintf(st->key, sizeof(st->key), "tmp_size");
	if (l->tmp_bytes > l->memory_bytes) {
		format_size(l->tmp_bytes, a, sizeof(a));
		format_size(l->memory_bytes, b, sizeof(b));
		return fail(st,
			    "%s is larger than [limits] memory (%s): "
			    "files in /tmp count against the memory limit",
			    a, b);
	}
	return apply_errnos(st);
}

static struct al_policy *finish(struct parse_state *st, int rc,
				const char *filename)
{
	if (rc == 0 && !st->failed && check_conflicts(st) == 0) {
		free(st->allowed);
		free(st->env_names);
		return st->p;
	}
	if (rc == -1)
		al_error_set(st->err, EIO, "%s: cannot read the file",
			     filename);
	else if (rc == -2)
		al_error_set(st->err, ENOMEM, "%s: out of memory", filename);
	else if (st->failed && rc > 0)
		al_error_prefix(st->err, "%s:%d: [%s] %s", filename, rc,
				st->section, st->key);
	else if (st->failed)
		al_error_prefix(st->err, "%s: [%s] %s", filename, st->section,
				st->key);
	else
		al_error_set(st->err, EINVAL,
			     "%s:%d: syntax error: expected \"key = value\", "
			     "\"[section]\" or a comment (lines are at most %d "
			     "characters)",
			     filename, rc, MAX_LINE - 3);
	free(st->allowed);
	free(st->env_names);
	policy_free(st->p);
	return NULL;
}

/* libinih's options are process-wide: set the ones this format needs
 * before each parse. */
static void configure_inih(void)
{
	ini_allow_multiline = false; /* no continuation lines: one per key */
	ini_stop_on_first_error = true;
	ini_use_stack = false;
	ini_max_line = MAX_LINE;
	/* grow the line buffer up to MAX_LINE: without it libinih cuts lines
	 * at its initial 200 bytes and reads the rest as the next line */
	ini_allow_realloc = true;
	ini_allow_no_value = false;
	ini_allow_inline_comments = true;
	ini_inline_comment_prefixes = (char *)"#;";
}

static bool start(struct parse_state *st, const char *filename,
		  const char *name, struct al_error *err)
{
	static struct al_error scratch;
	memset(st, 0, sizeof(*st));
	st->err = err ? err : &scratch;
	st->p = policy_new_default(st->err);
	if (!st->p)
		return false;
	if (name && set_name(st, name) < 0) {
		al_error_prefix(st->err, "%s", filename);
		policy_free(st->p);
		return false;
	}
	configure_inih();
	return true;
}

/*
 * Lines longer than libinih's buffer would reach the handler cut short
 * (and the rest as another line); a NUL would end the text early. Both are
 * refused here, with their line number, before libinih sees the text.
 */
static int check_lines(const char *text, size_t len, const char *filename,
		       struct al_error *err)
{
	int line = 1;
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && text[i] == '\0')
			return al_error_set(err, EINVAL,
					    "%s:%d: contains a NUL byte",
					    filename, line);
		if (i < len && text[i] != '\n')
			continue;
		if (i - start > MAX_LINE - 3)
			return al_error_set(err, EINVAL,
					    "%s:%d: line too long: at most %d "
					    "characters",
					    filename, line, MAX_LINE - 3);
		line++;
		start = i + 1;
	}
	return 0;
}

struct al_policy *policy_parse_string(const char *text, const char *filename,
				      const char *name, struct al_error *err)
{
	static struct al_error scratch;
	if (check_lines(text, strlen(text), filename, err ? err : &scratch) < 0)
		return NULL;
	struct parse_state st;
	if (!start(&st, filename, name, err))
		return NULL;
	return finish(&st, ini_parse_string(text, handler, &st), filename);
}

#define MAX_FILE (1024 * 1024)

struct al_policy *policy_parse_file(FILE *f, const char *filename,
				    const char *name, struct al_error *err)
{
	static struct al_error scratch;
	char *text = malloc(MAX_FILE + 1);
	if (!text) {
		al_error_sys(err, ENOMEM, "%s", filename);
		return NULL;
	}
	size_t len = fread(text, 1, MAX_FILE + 1, f);
	struct al_policy *p = NULL;
	if (ferror(f))
		al_error_sys(err, EIO, "%s: cannot read the file", filename);
	else if (len > MAX_FILE)
		al_error_set(err, EFBIG, "%s: too large: at most 1 MiB",
			     filename);
	else if (check_lines(text, len, filename, err ? err : &scratch) == 0) {
		text[len] = '\0';
		p = policy_parse_string(text, filename, name, err);
	}
	free(text);
	/* a memory stream has no owner: then the policy has no file either */
	struct stat st;
	if (p && fstat(fileno(f), &st) == 0 &&
	    policy_set_file(p, filename, st.st_uid) < 0) {
		al_error_sys(err, ENOMEM, "%s", filename);
		policy_free(p);
		p = NULL;
	}
	return p;
}
