/*
 * The policy object: defaults from DESIGN.md, validated overrides, the
 * canonical text and its hash.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/internal.h"

#define MiB (1024ull * 1024ull)
#define TiB (1024ull * 1024ull * MiB)
#define SECOND_US 1000000ull

/* Bounds on overrides: below the minimum nothing useful can run, above
 * the maximum the number is a typo rather than a limit. */
#define MEMORY_MIN (4 * MiB)
#define MEMORY_MAX (1 * TiB)
#define TIMEOUT_MIN_US 1000ull
#define TIMEOUT_MAX_US (24ull * 3600ull * SECOND_US)
#define PIDS_MAX 65536ull

#define JAIL_PATH "/usr/local/bin:/usr/bin:/bin"

struct al_policy {
	char name[64];
	char hostname[64];
	struct policy_limits limits;
	char **env; /* NULL-terminated, heap strings */
	size_t n_env;
	struct policy_syscall *sys; /* names borrow the static tables */
	size_t n_sys;
};

static const char *const default_env[] = {
	"PATH=" JAIL_PATH, "HOME=/tmp", "TMPDIR=/tmp", "LANG=C.UTF-8",
	"USER=sandbox", NULL,
};

/* The groups the default policy allows. */
static const char *const default_groups[] = {
	"@basic-io", "@file-system", "@memory", "@process", "@credentials",
	"@signal", "@time", "@event", "@network", NULL,
};

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

static int add_syscall(struct al_policy *p, const char *name,
		       enum policy_sys_action action, int errnum,
		       struct al_error *err)
{
	for (size_t i = 0; i < p->n_sys; i++)
		if (strcmp(p->sys[i].name, name) == 0)
			return 0;
	struct policy_syscall *grown =
		realloc(p->sys, (p->n_sys + 1) * sizeof(*grown));
	if (!grown)
		return al_error_sys(err, ENOMEM, "policy: syscall list");
	p->sys = grown;
	p->sys[p->n_sys++] = (struct policy_syscall){ name, action, errnum };
	return 0;
}

static int add_defaults(struct al_policy *p, struct al_error *err)
{
	for (size_t g = 0; default_groups[g]; g++) {
		const struct policy_group *group =
			policy_group_find(default_groups[g]);
		if (!group)
			return al_error_set(err, EINVAL,
					    "policy: unknown group %s",
					    default_groups[g]);
		for (size_t i = 0; group->syscalls[i]; i++)
			if (add_syscall(p, group->syscalls[i], POLICY_SYS_ALLOW,
					0, err) < 0)
				return -1;
	}
	for (size_t i = 0; i < policy_default_errno_count(); i++) {
		const struct policy_syscall *s = policy_default_errno_at(i);
		if (add_syscall(p, s->name, s->action, s->errnum, err) < 0)
			return -1;
	}
	for (size_t i = 0; default_env[i]; i++) {
		char **grown = realloc(p->env, (p->n_env + 2) * sizeof(*grown));
		if (!grown)
			return al_error_sys(err, ENOMEM, "policy: environment");
		p->env = grown;
		p->env[p->n_env] = strdup(default_env[i]);
		if (!p->env[p->n_env])
			return al_error_sys(err, ENOMEM, "policy: environment");
		p->env[++p->n_env] = NULL;
	}
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
	free(p->sys);
	free(p);
}

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

int policy_set_net(struct al_policy *p, const char *value,
		   struct al_error *err)
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

const char *policy_name(const struct al_policy *p)
{
	return p->name;
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

const char *policy_net_name(enum policy_net net)
{
	return net == POLICY_NET_LOOPBACK ? "loopback" : "none";
}

const char *policy_limits_mode_name(enum policy_limits_mode mode)
{
	return mode == POLICY_LIMITS_BEST_EFFORT ? "best-effort" : "required";
}
