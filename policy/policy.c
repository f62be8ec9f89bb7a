/*
 * The policy object: defaults from docs/design.md, the mutators the file parser
 * and the command line use, and the getters the jail reads.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/internal.h"

#define JAIL_PATH "/usr/local/bin:/usr/bin:/bin"

/* clang-format off */
static const char *const default_env[][2] = {
	{ "PATH", JAIL_PATH }, { "HOME", "/tmp" },     { "TMPDIR", "/tmp" },
	{ "LANG", "C.UTF-8" }, { "USER", "sandbox" },
};
/* clang-format on */

/* The groups the default policy allows. */
/* clang-format off */
static const char *const default_groups[] = {
	"@basic-io", "@file-system", "@memory", "@process", "@credentials",
	"@signal", "@time", "@event", "@network", "@ipc", NULL,
};
/* clang-format on */

static void default_limits(struct policy_limits *l)
{
	*l = (struct policy_limits){
		.memory_bytes = 64 * MiB,
		.timeout_us = 3 * SECOND_US,
		.cpu_time_us = 3 * SECOND_US,
		.cpu_quota_milli = 0,
		.pids = 64,
		.stdout_max = 1 * MiB,
		.stderr_max = 1 * MiB,
		.tmp_bytes = 16 * MiB,
		.fsize_bytes = 16 * MiB,
		.nofile = 256,
		.as_bytes = 0,
		.uid = 65534,
		.gid = 65534,
		.net = POLICY_NET_LOOPBACK,
		.limits_mode = POLICY_LIMITS_REQUIRED,
	};
}

int policy_sys_add(struct al_policy *p, const char *name,
		   enum policy_sys_action action, int errnum,
		   struct al_error *err)
{
	for (size_t i = 0; i < p->n_sys; i++) {
		if (strcmp(p->sys[i].name, name) == 0) {
			p->sys[i].action = action;
			p->sys[i].errnum = errnum;
			return 0;
		}
	}
	struct policy_syscall *grown = realloc(p->sys,
					       (p->n_sys + 1) * sizeof(*grown));
	if (!grown)
		return al_error_sys(err, ENOMEM, "policy: syscall list");
	p->sys = grown;
	char *copy = strdup(name);
	if (!copy)
		return al_error_sys(err, ENOMEM, "policy: syscall list");
	p->sys[p->n_sys++] = (struct policy_syscall){ copy, action, errnum };
	return 0;
}

void policy_sys_remove(struct al_policy *p, const char *name)
{
	for (size_t i = 0; i < p->n_sys; i++) {
		if (strcmp(p->sys[i].name, name) != 0)
			continue;
		free((char *)p->sys[i].name);
		p->sys[i] = p->sys[--p->n_sys];
		return;
	}
}

void policy_sys_clear(struct al_policy *p)
{
	for (size_t i = 0; i < p->n_sys; i++)
		free((char *)p->sys[i].name);
	p->n_sys = 0;
}

int policy_group_apply(struct al_policy *p, const char *group, bool remove,
		       struct al_error *err)
{
	const struct policy_group *g = policy_group_find(group);
	if (!g)
		return al_error_set(err, EINVAL, "unknown syscall group \"%s\"",
				    group);
	for (size_t i = 0; g->syscalls[i]; i++) {
		if (remove)
			policy_sys_remove(p, g->syscalls[i]);
		else if (policy_sys_add(p, g->syscalls[i], POLICY_SYS_ALLOW, 0,
					err) < 0)
			return -1;
	}
	return 0;
}

int policy_env_set(struct al_policy *p, const char *name, const char *value,
		   struct al_error *err)
{
	size_t nlen = strlen(name);
	char *entry = malloc(nlen + strlen(value) + 2);
	if (!entry)
		return al_error_sys(err, ENOMEM, "policy: environment");
	sprintf(entry, "%s=%s", name, value);
	for (size_t i = 0; i < p->n_env; i++) {
		if (strncmp(p->env[i], name, nlen) == 0 &&
		    p->env[i][nlen] == '=') {
			free(p->env[i]);
			p->env[i] = entry;
			return 0;
		}
	}
	char **grown = realloc(p->env, (p->n_env + 2) * sizeof(*grown));
	if (!grown) {
		free(entry);
		return al_error_sys(err, ENOMEM, "policy: environment");
	}
	p->env = grown;
	p->env[p->n_env++] = entry;
	p->env[p->n_env] = NULL;
	return 0;
}

int policy_bind_add(struct al_policy *p, const char *host, const char *jail,
		    bool writable, struct al_error *err)
{
	struct policy_bind *grown = realloc(p->binds,
					    (p->n_binds + 1) * sizeof(*grown));
	if (!grown)
		return al_error_sys(err, ENOMEM, "policy: binds");
	p->binds = grown;
	struct policy_bind *b = &p->binds[p->n_binds];
	b->host = strdup(host);
	b->jail = strdup(jail);
	b->writable = writable;
	if (!b->host || !b->jail) {
		free(b->host);
		free(b->jail);
		return al_error_sys(err, ENOMEM, "policy: binds");
	}
	p->n_binds++;
	return 0;
}

static int add_defaults(struct al_policy *p, struct al_error *err)
{
	for (size_t g = 0; default_groups[g]; g++)
		if (policy_group_apply(p, default_groups[g], false, err) < 0)
			return -1;
	for (size_t i = 0; i < policy_default_errno_count(); i++) {
		const struct policy_syscall *s = policy_default_errno_at(i);
		if (policy_sys_add(p, s->name, s->action, s->errnum, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(default_env); i++)
		if (policy_env_set(p, default_env[i][0], default_env[i][1],
				   err) < 0)
			return -1;
	return 0;
}

struct al_policy *policy_new_default(struct al_error *err)
{
	struct al_policy *p = calloc(1, sizeof(*p));
	if (!p) {
		al_error_sys(err, ENOMEM, "policy");
		return NULL;
	}
	snprintf(p->name, sizeof(p->name), "default");
	snprintf(p->hostname, sizeof(p->hostname), "airlock");
	default_limits(&p->limits);
	p->archive_on = (1u << AL_VERDICT_CRASHED) |
			(1u << AL_VERDICT_SECCOMP_VIOLATION);
	p->crash_budget = 1;
	if (add_defaults(p, err) < 0) {
		policy_free(p);
		return NULL;
	}
	return p;
}

void policy_free(struct al_policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_env; i++)
		free(p->env[i]);
	free(p->env);
	policy_sys_clear(p);
	free(p->sys);
	for (size_t i = 0; i < p->n_binds; i++) {
		free(p->binds[i].host);
		free(p->binds[i].jail);
	}
	free(p->binds);
	policy_request_env_clear(p);
	free(p->file);
	free(p);
}

/* ------------------------------------------------- command-line overrides */

int policy_set_memory(struct al_policy *p, const char *value,
		      struct al_error *err)
{
	uint64_t bytes;
	if (parse_size(value, &bytes, err) < 0)
		return al_error_prefix(err, "memory");
	if (bytes < MEMORY_MIN || bytes > MEMORY_MAX)
		return al_error_set(err, ERANGE,
				    "memory: %s is out of range: expected "
				    "from 4M to 1T",
				    value);
	if (bytes < p->limits.tmp_bytes) {
		char tmp[32];
		format_size(p->limits.tmp_bytes, tmp, sizeof(tmp));
		return al_error_set(err, ERANGE,
				    "memory: %s is less than the policy's /tmp "
				    "(%s), which counts against the memory "
				    "limit; use a policy with a smaller "
				    "tmp_size",
				    value, tmp);
	}
	p->limits.memory_bytes = bytes;
	return 0;
}

int policy_set_timeout(struct al_policy *p, const char *value,
		       struct al_error *err)
{
	uint64_t us;
	if (parse_duration_us(value, &us, err) < 0)
		return al_error_prefix(err, "timeout");
	if (us < TIMEOUT_MIN_US || us > TIMEOUT_MAX_US)
		return al_error_set(err, ERANGE,
				    "timeout: %s is out of range: expected "
				    "from 1ms to 24h",
				    value);
	p->limits.timeout_us = us;
	p->limits.cpu_time_us = us;
	return 0;
}

int policy_set_pids(struct al_policy *p, const char *value,
		    struct al_error *err)
{
	uint64_t n;
	if (parse_uint(value, 1, PIDS_MAX, &n, err) < 0)
		return al_error_prefix(err, "pids");
	p->limits.pids = n;
	return 0;
}

int policy_set_net(struct al_policy *p, const char *value, struct al_error *err)
{
	if (strcmp(value, "none") == 0)
		p->limits.net = POLICY_NET_NONE;
	else if (strcmp(value, "loopback") == 0)
		p->limits.net = POLICY_NET_LOOPBACK;
	else
		return al_error_set(err, EINVAL,
				    "net: invalid value \"%s\": expected "
				    "none or loopback",
				    value);
	return 0;
}

int policy_set_limits_mode(struct al_policy *p, const char *value,
			   struct al_error *err)
{
	if (strcmp(value, "required") == 0)
		p->limits.limits_mode = POLICY_LIMITS_REQUIRED;
	else if (strcmp(value, "best-effort") == 0)
		p->limits.limits_mode = POLICY_LIMITS_BEST_EFFORT;
	else
		return al_error_set(err, EINVAL,
				    "limits: invalid value \"%s\": expected "
				    "required or best-effort",
				    value);
	return 0;
}

/* ---------------------------------------------------------------- getters */

const char *policy_name(const struct al_policy *p)
{
	return p->name;
}

const char *policy_description(const struct al_policy *p)
{
	return p->description;
}

const char *policy_version_command(const struct al_policy *p)
{
	return p->version_command;
}

int policy_version_argv(const struct al_policy *p,
			char buf[POLICY_VERSION_COMMAND_MAX + 1],
			char *argv[POLICY_VERSION_ARGS_MAX + 1])
{
	char *save = NULL;
	int n = 0;

	/* the parser left single-spaced words of known characters only */
	snprintf(buf, POLICY_VERSION_COMMAND_MAX + 1, "%s", p->version_command);
	for (char *w = strtok_r(buf, " ", &save);
	     w && n < POLICY_VERSION_ARGS_MAX; w = strtok_r(NULL, " ", &save))
		argv[n++] = w;
	argv[n] = NULL;
	return n;
}

const struct policy_limits *policy_limits(const struct al_policy *p)
{
	return &p->limits;
}

const char *policy_hostname(const struct al_policy *p)
{
	return p->hostname;
}

char *const *policy_environ(const struct al_policy *p)
{
	return p->env;
}

const char *policy_path(const struct al_policy *p)
{
	for (size_t i = 0; i < p->n_env; i++)
		if (strncmp(p->env[i], "PATH=", 5) == 0)
			return p->env[i] + 5;
	return JAIL_PATH;
}

size_t policy_syscall_count(const struct al_policy *p)
{
	return p->n_sys;
}

const struct policy_syscall *policy_syscall_at(const struct al_policy *p,
					       size_t i)
{
	return i < p->n_sys ? &p->sys[i] : NULL;
}

size_t policy_bind_count(const struct al_policy *p)
{
	return p->n_binds;
}

const struct policy_bind *policy_bind_at(const struct al_policy *p, size_t i)
{
	return i < p->n_binds ? &p->binds[i] : NULL;
}

int policy_set_file(struct al_policy *p, const char *file, uid_t owner)
{
	char *copy = file ? strdup(file) : NULL;
	if (file && !copy)
		return -1;
	free(p->file);
	p->file = copy;
	p->file_owner = owner;
	return 0;
}

const char *policy_file(const struct al_policy *p)
{
	return p->file;
}

uid_t policy_file_owner(const struct al_policy *p)
{
	return p->file ? p->file_owner : 0;
}

bool policy_archives(const struct al_policy *p, enum al_verdict v)
{
	return v < AL_VERDICT_COUNT && (p->archive_on & (1u << v));
}

const char *policy_build_command(const struct al_policy *p)
{
	return p->build_command;
}

uint64_t policy_build_timeout_us(const struct al_policy *p)
{
	return p->build_timeout_us;
}

uint64_t policy_build_memory_bytes(const struct al_policy *p)
{
	return p->build_memory_bytes;
}

uint64_t policy_crash_budget(const struct al_policy *p)
{
	return p->crash_budget;
}

bool policy_seccomp_learned(const struct al_policy *p)
{
	return p->seccomp_learned;
}

/* ASCII by hand: <ctype.h> follows the locale, and a client's bytes must
 * mean the same whatever airlockd's is. */
static bool env_name_char(char c, bool first)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
	       (!first && c >= '0' && c <= '9');
}

bool policy_env_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > POLICY_ENV_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!env_name_char(name[i], i == 0))
			return false;
	return true;
}

int policy_request_env_add(struct al_policy *p, const char *name,
			   struct al_error *err)
{
	size_t at = 0;
	while (at < p->n_request_env && strcmp(p->request_env[at], name) < 0)
		at++;
	if (at < p->n_request_env && strcmp(p->request_env[at], name) == 0)
		return 0;
	char **grown = realloc(p->request_env,
			       (p->n_request_env + 1) * sizeof(*grown));
	if (!grown)
		return al_error_sys(err, ENOMEM, "policy: request_env");
	p->request_env = grown;
	char *copy = strdup(name);
	if (!copy)
		return al_error_sys(err, ENOMEM, "policy: request_env");
	memmove(&grown[at + 1], &grown[at],
		(p->n_request_env - at) * sizeof(*grown));
	grown[at] = copy;
	p->n_request_env++;
	return 0;
}

void policy_request_env_clear(struct al_policy *p)
{
	for (size_t i = 0; i < p->n_request_env; i++)
		free(p->request_env[i]);
	free(p->request_env);
	p->request_env = NULL;
	p->n_request_env = 0;
}

size_t policy_request_env_count(const struct al_policy *p)
{
	return p->n_request_env;
}

const char *policy_request_env_at(const struct al_policy *p, size_t i)
{
	return i < p->n_request_env ? p->request_env[i] : NULL;
}

struct al_policy *policy_restrict(const struct al_policy *p,
				  bool (*keep)(const char *name, void *arg),
				  void *arg, struct al_error *err)
{
	/* the canonical form holds every rule, so parsing it back is a
	 * copy; name and description are not rules and are carried over */
	char *text = policy_canonical(p, err);
	if (!text)
		return NULL;
	struct al_policy *q = policy_parse_string(text, p->name, p->name, err);
	free(text);
	if (!q)
		return NULL;
	snprintf(q->description, sizeof(q->description), "%s", p->description);
	snprintf(q->version_command, sizeof(q->version_command), "%s",
		 p->version_command);
	if (policy_set_file(q, p->file, p->file_owner) < 0) {
		al_error_sys(err, ENOMEM, "policy");
		policy_free(q);
		return NULL;
	}
	for (size_t i = q->n_sys; i-- > 0;)
		if (q->sys[i].action == POLICY_SYS_ALLOW &&
		    !keep(q->sys[i].name, arg))
			policy_sys_remove(q, q->sys[i].name);
	q->seccomp_learned = false;
	return q;
}

const char *policy_net_name(enum policy_net net)
{
	return net == POLICY_NET_LOOPBACK ? "loopback" : "none";
}

const char *policy_limits_mode_name(enum policy_limits_mode mode)
{
	return mode == POLICY_LIMITS_BEST_EFFORT ? "best-effort" : "required";
}
