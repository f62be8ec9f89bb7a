/*
 * Per-run options of an exec request, held to the run's policy: a request
 * may ask for less time, memory or processes than the policy allows, never
 * more; it may set only the environment names the policy's [runtime]
 * request_env lists; and it may start the module in another directory.
 * Nothing is clamped: a value out of bounds is refused, naming the option,
 * the value and the bound, and the caller runs nothing. Pure code.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/internal.h"

/* "5s", "200ms", "1500us": the policy's value the way a person writes it */
static void show_duration(uint64_t us, char *buf, size_t len)
{
	if (us % SECOND_US == 0)
		snprintf(buf, len, "%" PRIu64 "s", (uint64_t)(us / SECOND_US));
	else if (us % 1000 == 0)
		snprintf(buf, len, "%" PRIu64 "ms", us / 1000);
	else
		snprintf(buf, len, "%" PRIu64 "us", us);
}

static void show_count(uint64_t n, char *buf, size_t len)
{
	snprintf(buf, len, "%" PRIu64, n);
}

/*
 * Whether `want` (written `asked`, as the request gave it) lies within
 * [floor, ceiling]; the messages show the bounds with `show`. Above the
 * ceiling is asking for more than the policy grants (EPERM); below the
 * floor no run could work (EINVAL).
 */
static int within(const char *option, const char *asked, uint64_t want,
		  uint64_t floor, uint64_t ceiling,
		  void (*show)(uint64_t, char *, size_t), struct al_error *err)
{
	char bound[32];

	if (want > ceiling) {
		show(ceiling, bound, sizeof(bound));
		return al_error_set(err, EPERM,
				    "%s %.32s is above the policy's %s %s; a "
				    "request may only lower it",
				    option, asked, option, bound);
	}
	if (want < floor) {
		show(floor, bound, sizeof(bound));
		return al_error_set(err, EINVAL,
				    "%s %.32s is below the least a run can "
				    "have, %s",
				    option, asked, bound);
	}
	return 0;
}

static int tighten_timeout(const char *asked, struct policy_limits *l,
			   struct al_error *err)
{
	uint64_t us;

	if (parse_duration_us(asked, &us, err) < 0)
		return al_error_prefix(err, "timeout");
	if (within("timeout", asked, us, TIMEOUT_MIN_US, l->timeout_us,
		   show_duration, err) < 0)
		return -1;
	l->timeout_us = us;
	/* the CPU-time limit is the wall clock's unless the policy set it
	 * lower: a run cut to 1s has no use for 3s of CPU per process */
	if (l->cpu_time_us > us)
		l->cpu_time_us = us;
	return 0;
}

static int tighten_memory(const char *asked, struct policy_limits *l,
			  struct al_error *err)
{
	uint64_t bytes;

	if (parse_size(asked, &bytes, err) < 0)
		return al_error_prefix(err, "memory");
	if (within("memory", asked, bytes, MEMORY_MIN, l->memory_bytes,
		   format_size, err) < 0)
		return -1;
	l->memory_bytes = bytes;
	return 0;
}

static int tighten_pids(uint64_t n, struct policy_limits *l,
			struct al_error *err)
{
	char asked[32];

	show_count(n, asked, sizeof(asked));
	if (within("pids", asked, n, 1, l->pids, show_count, err) < 0)
		return -1;
	l->pids = n;
	return 0;
}

static int tighten_limits(const struct al_policy *p,
			  const struct policy_request *req,
			  struct policy_limits *l, struct al_error *err)
{
	*l = p->limits;
	if (req->timeout && tighten_timeout(req->timeout, l, err) < 0)
		return -1;
	if (req->memory && tighten_memory(req->memory, l, err) < 0)
		return -1;
	if (req->has_pids && tighten_pids(req->pids, l, err) < 0)
		return -1;
	return 0;
}

static bool env_listed(const struct al_policy *p, const char *name)
{
	for (size_t i = 0; i < p->n_request_env; i++)
		if (strcmp(p->request_env[i], name) == 0)
			return true;
	return false;
}

/* The allowed names in one line for the refusal ("A, B and C" or "none"),
 * so a client learns what it may set without reading the policy file. */
static void env_allowed(const struct al_policy *p, char *buf, size_t len)
{
	size_t used = 0;

	if (!p->n_request_env) {
		snprintf(buf, len, "none");
		return;
	}
	buf[0] = '\0';
	for (size_t i = 0; i < p->n_request_env && used < len; i++) {
		int n = snprintf(buf + used, len - used, "%s%s", i ? " " : "",
				 p->request_env[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

static int env_check(const struct al_policy *p,
		     const struct policy_request *req, size_t i,
		     struct al_error *err)
{
	const char *name = req->env_names[i], *value = req->env_values[i];

	if (!policy_env_name_valid(name))
		return al_error_set(
			err, EINVAL,
			"env: \"%.64s\" is not a plain variable "
			"name (letters, digits and '_', not "
			"starting with a digit, at most %d characters)",
			name, POLICY_ENV_NAME_MAX);
	if (strlen(value) > POLICY_REQUEST_ENV_VALUE_MAX)
		return al_error_set(err, EINVAL,
				    "env: the value of %s is longer than %d "
				    "bytes",
				    name, POLICY_REQUEST_ENV_VALUE_MAX);
	for (size_t k = 0; k < i; k++)
		if (strcmp(req->env_names[k], name) == 0)
			return al_error_set(err, EINVAL,
					    "env: %s is given twice", name);
	if (!req->any_env_name && !env_listed(p, name)) {
		char allowed[512];
		env_allowed(p, allowed, sizeof(allowed));
		return al_error_set(err, EPERM,
				    "env %s is not a name the policy lets a "
				    "request set (its [runtime] request_env: "
				    "%s)",
				    name, allowed);
	}
	return 0;
}

static bool env_replaced(const char *entry, const struct policy_request *req)
{
	for (size_t k = 0; k < req->n_env; k++) {
		size_t len = strlen(req->env_names[k]);
		if (strncmp(entry, req->env_names[k], len) == 0 &&
		    entry[len] == '=')
			return true;
	}
	return false;
}

static void env_free(char **env)
{
	if (env)
		for (char **e = env; *e; e++)
			free(*e);
	free(env);
}

/* The policy's environment with the request's names set, in a list of
 * the run's own: the policy stays as it is for every other run. */
static int build_env(const struct al_policy *p,
		     const struct policy_request *req, char ***out,
		     struct al_error *err)
{
	char **env = calloc(p->n_env + req->n_env + 1, sizeof(*env));
	size_t n = 0;

	if (!env)
		return al_error_sys(err, ENOMEM, "env");
	for (size_t i = 0; i < p->n_env; i++)
		if (!env_replaced(p->env[i], req) &&
		    !(env[n++] = strdup(p->env[i])))
			goto oom;
	for (size_t k = 0; k < req->n_env; k++) {
		size_t len = strlen(req->env_names[k]) +
			     strlen(req->env_values[k]) + 2;
		if (!(env[n] = malloc(len)))
			goto oom;
		snprintf(env[n++], len, "%s=%s", req->env_names[k],
			 req->env_values[k]);
	}
	*out = env;
	return 0;
oom:
	env_free(env);
	return al_error_sys(err, ENOMEM, "env");
}

/* One part of a cwd path (between slashes) is a plain name: not empty,
 * not "." or "..", no control character. */
static bool cwd_part_plain(const char *s, size_t n)
{
	if (n == 0 || (n == 1 && s[0] == '.') ||
	    (n == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* Absolute and already normalized: the jail enters exactly this path, so
 * nothing about it is left to interpretation ("/tmp/../etc" is refused,
 * not resolved). */
int policy_cwd_check(const char *cwd, struct al_error *err)
{
	size_t len = strlen(cwd);

	if (len > POLICY_CWD_MAX)
		return al_error_set(err, EINVAL, "longer than %d bytes",
				    POLICY_CWD_MAX);
	if (cwd[0] != '/')
		return al_error_set(err, EINVAL,
				    "not an absolute path (give it as the jail "
				    "sees it, e.g. /tmp/work)");
	if (len == 1)
		return 0;
	for (const char *c = cwd + 1;;) {
		const char *end = strchrnul(c, '/');
		if (!cwd_part_plain(c, (size_t)(end - c)))
			return al_error_set(err, EINVAL,
					    "not a plain absolute path: no "
					    "empty, \".\" or \"..\" parts, no "
					    "trailing '/', no control "
					    "characters (the path is entered "
					    "as given, never resolved)");
		if (!*end)
			return 0;
		c = end + 1;
	}
}

static int check_request(const struct al_policy *p,
			 const struct policy_request *req,
			 struct policy_limits *l, struct al_error *err)
{
	if (tighten_limits(p, req, l, err) < 0)
		return -1;
	if (req->n_env > POLICY_REQUEST_ENV_MAX)
		return al_error_set(err, EINVAL, "env: %zu names; at most %d",
				    req->n_env, POLICY_REQUEST_ENV_MAX);
	for (size_t i = 0; i < req->n_env; i++)
		if (env_check(p, req, i, err) < 0)
			return -1;
	if (req->cwd && policy_cwd_check(req->cwd, err) < 0)
		return al_error_prefix(err, "cwd");
	return 0;
}

int policy_tighten(const struct al_policy *p, const struct policy_request *req,
		   struct policy_run *out, struct al_error *err)
{
	memset(out, 0, sizeof(*out));
	if (check_request(p, req, &out->limits, err) < 0)
		goto fail;
	if (req->n_env && build_env(p, req, &out->envp, err) < 0)
		goto fail;
	if (req->cwd && !(out->cwd = strdup(req->cwd))) {
		al_error_sys(err, ENOMEM, "cwd");
		goto fail;
	}
	return 0;
fail:
	policy_run_clear(out);
	return -1;
}

void policy_run_clear(struct policy_run *run)
{
	env_free(run->envp);
	free(run->cwd);
	memset(run, 0, sizeof(*run));
}
