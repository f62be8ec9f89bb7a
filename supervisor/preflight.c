/*
 * Start-up pre-flight: every policy airlockd may be asked for is tried
 * against this host before the socket opens, so a kernel that lacks what a
 * policy needs (seccomp user notifications, a controller for its limits, a
 * syscall its filter names) stops the daemon with a message instead of
 * failing the first module submitted under that policy.
 *
 * A policy file that does not parse is only a warning: submits naming it
 * are refused with the parser's message, and the others still work.
 */
#include <errno.h>
#include <string.h>

#include "policy/policy.h"
#include "supervisor/internal.h"

struct preflight {
	struct supervisor *s;
	int failures;
	bool saw_default;
	struct al_error first; /* the first failure, for the caller */
};

static void check_one(const char *name, const char *path, void *arg)
{
	struct preflight *pf = arg;
	struct al_error err = { 0 };
	struct al_policy *p = policy_load_trusted(name, &err);

	if (strcmp(name, "default") == 0)
		pf->saw_default = true;
	if (!p) {
		LOG(LOG_WARN, NULL, 0, "policy \"%s\" cannot be used: %s", name,
		    err.msg);
		return;
	}
	if (strcmp(name, "default") == 0 &&
	    supervisor_config_apply_policy(&pf->s->cfg, p, &err) < 0)
		goto failed;
	if (sandbox_host_check(pf->s->host, p, &err) < 0)
		goto failed;
	LOG(LOG_DEBUG, NULL, 0, "policy \"%s\" (%s): this host can run it",
	    name, policy_path(p) ? policy_path(p) : "built in");
	policy_free(p);
	return;
failed:
	if (pf->failures++ == 0)
		al_error_set(&pf->first, err.errnum, "policy \"%s\" (%s): %s",
			     name, path ? path : "built in", err.msg);
	LOG(LOG_ERROR, NULL, 0,
	    "policy \"%s\" (%s): this host cannot run it: %s", name,
	    path ? path : "built in", err.msg);
	policy_free(p);
}

int preflight_policies(struct supervisor *s, struct al_error *err)
{
	struct preflight pf = { .s = s };

	if (policy_list_trusted(check_one, &pf) < 0)
		LOG(LOG_WARN, NULL, 0, "listing the policy path failed");
	if (!pf.saw_default)
		check_one("default", NULL, &pf);
	if (pf.failures == 0)
		return 0;
	return al_error_set(err, pf.first.errnum ? pf.first.errnum : EINVAL,
			    "%s%s; fix the host or remove the policy from the "
			    "policy path (airlock doctor, airlock policy list)",
			    pf.first.msg,
			    pf.failures > 1 ? " (and more: see the log)" : "");
}
