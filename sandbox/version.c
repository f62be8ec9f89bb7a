/*
 * Version probes (airlock languages): a policy's version_command run in
 * that policy's own jail, so the version reported is the one a module
 * under the policy meets, not the host's. The run is an ordinary run with
 * two bounds of its own: at most SANDBOX_PROBE_TIMEOUT_MS of wall-clock
 * time (a command that hangs is cut off), and only the first line of its
 * output, cut to SANDBOX_VERSION_MAX bytes, is kept.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/internal.h"

struct sandbox_probe {
	struct al_policy *policy; /* the caller's, time-capped */
	struct sandbox_filter *filter;
	struct sandbox_run *run;
	char words[POLICY_VERSION_COMMAND_MAX + 1];
	char *argv[POLICY_VERSION_ARGS_MAX + 1];
	bool over;
	enum sandbox_version status;
	char text[SANDBOX_VERSION_MAX + 1];
};

static const char *const version_names[] = {
	[SANDBOX_VERSION_OK] = "ok",
	[SANDBOX_VERSION_MISSING] = "not_installed",
	[SANDBOX_VERSION_TIMEOUT] = "timeout",
	[SANDBOX_VERSION_FAILED] = "failed",
};

const char *sandbox_version_name(enum sandbox_version v)
{
	return (unsigned)v < ARRAY_SIZE(version_names) ? version_names[v]
						       : "failed";
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* The first line of `data` that has something printable, cut to fit;
 * other bytes become '?'. False when there is none. */
static bool first_line(const char *data, size_t len,
		       char out[SANDBOX_VERSION_MAX + 1])
{
	size_t i = 0;

	while (data && i < len) {
		size_t w = 0, end = i, last;
		while (end < len && data[end] != '\n')
			end++;
		/* without the blanks and the \r of a CRLF at either end */
		for (last = end; last > i && is_blank(data[last - 1]); last--)
			;
		while (i < last && is_blank(data[i]))
			i++;
		for (size_t k = i; k < last && w < SANDBOX_VERSION_MAX; k++) {
			unsigned char c = (unsigned char)data[k];
			out[w++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
		}
		out[w] = '\0';
		if (w > 0)
			return true;
		i = end + 1;
	}
	out[0] = '\0';
	return false;
}

enum sandbox_version sandbox_result_version(const struct sandbox_result *r,
					    char out[SANDBOX_VERSION_MAX + 1])
{
	/* 127: the jail has no such program (exec failed, or env and shells
	 * saying so); the interpreter is not installed for this policy */
	if (r->exit_status == 127) {
		snprintf(out, SANDBOX_VERSION_MAX + 1, "not installed");
		return SANDBOX_VERSION_MISSING;
	}
	if (r->verdict == AL_VERDICT_TIMEOUT) {
		snprintf(out, SANDBOX_VERSION_MAX + 1, "cut off after %.0f ms",
			 r->wall_ms);
		return SANDBOX_VERSION_TIMEOUT;
	}
	if (r->verdict == AL_VERDICT_OK &&
	    (first_line(r->stdout_data, r->stdout_len, out) ||
	     first_line(r->stderr_data, r->stderr_len, out)))
		return SANDBOX_VERSION_OK;
	char line[SANDBOX_VERSION_MAX + 1];
	if (r->verdict == AL_VERDICT_SETUP_ERROR)
		snprintf(line, sizeof(line), "%.127s", r->error);
	else if (!first_line(r->stderr_data, r->stderr_len, line))
		snprintf(line, sizeof(line), "exit status %d, no output",
			 r->exit_status);
	/* cut: the verdict's name is at most 17 bytes */
	snprintf(out, SANDBOX_VERSION_MAX + 1, "%.20s: %.100s",
		 al_verdict_name(r->verdict), line);
	return SANDBOX_VERSION_FAILED;
}

static bool keep_every_call(const char *name, void *arg)
{
	(void)name;
	(void)arg;
	return true;
}

/* The policy as the probe runs it: the same rules, the time capped. */
static struct al_policy *probe_policy(const struct al_policy *policy,
				      struct al_error *err)
{
	struct al_policy *p = policy_restrict(policy, keep_every_call, NULL,
					      err);
	char cap[32];

	if (p == NULL)
		return NULL;
	snprintf(cap, sizeof(cap), "%ums", SANDBOX_PROBE_TIMEOUT_MS);
	if (policy_limits(p)->timeout_us > SANDBOX_PROBE_TIMEOUT_MS * 1000ull &&
	    policy_set_timeout(p, cap, err) < 0) {
		policy_free(p);
		return NULL;
	}
	return p;
}

/* Over before it was watched: the status from the result. */
static void probe_finish(struct sandbox_probe *p)
{
	p->status = sandbox_result_version(sandbox_run_result(p->run), p->text);
	p->over = true;
}

int sandbox_probe_start(struct sandbox_host *host,
			const struct al_policy *policy,
			struct sandbox_probe **out, struct al_error *err)
{
	struct sandbox_probe *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (p == NULL)
		return al_error_sys(err, ENOMEM, "version probe");
	if (policy_version_argv(policy, p->words, p->argv) == 0) {
		free(p);
		return al_error_set(err, EINVAL,
				    "policy %s has no version_command",
				    policy_name(policy));
	}
	p->policy = probe_policy(policy, err);
	p->filter = p->policy ? sandbox_filter_compile(p->policy, err) : NULL;
	struct sandbox_spec spec = {
		.policy = p->policy,
		.filter = p->filter,
		.program = p->argv[0],
		.args = p->argv + 1,
		.stdin_fd = -1,
		.stdout_fd = -1,
		.stderr_fd = -1,
	};
	if (p->filter == NULL || sandbox_start(host, &spec, &p->run, err) < 0) {
		sandbox_probe_free(p);
		return al_error_prefix(err, "version probe of policy %s",
				       policy_name(policy));
	}
	if (sandbox_run_step(p->run))
		probe_finish(p);
	*out = p;
	return 0;
}

int sandbox_probe_fd(const struct sandbox_probe *p)
{
	return sandbox_run_fd(p->run);
}

bool sandbox_probe_step(struct sandbox_probe *p)
{
	if (!p->over && sandbox_run_step(p->run))
		probe_finish(p);
	return p->over;
}

enum sandbox_version sandbox_probe_result(const struct sandbox_probe *p,
					  char out[SANDBOX_VERSION_MAX + 1])
{
	snprintf(out, SANDBOX_VERSION_MAX + 1, "%s", p->text);
	return p->status;
}

void sandbox_probe_free(struct sandbox_probe *p)
{
	if (p == NULL)
		return;
	sandbox_run_free(p->run);
	sandbox_filter_free(p->filter);
	policy_free(p->policy);
	free(p);
}
