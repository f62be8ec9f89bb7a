/*
 * The daemon's policy cache: each policy a run names is loaded (from the
 * daemon's own trusted policy directories), hashed and compiled once, and
 * shared by every run under it, counted by references. A reload (SIGHUP)
 * marks every entry stale: a stale entry serves no new run and is freed
 * when its last run ends, so a run keeps the policy it started with.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/internal.h"

struct sup_policy *sup_policy_get(struct supervisor *s, const char *name,
				  struct al_error *err)
{
	for (struct sup_policy *p = s->policies; p; p = p->next)
		if (!p->stale && strcmp(p->name, name) == 0) {
			p->refs++;
			return p;
		}
	/* clients name shipped or installed policies, never host paths:
	 * policy_load_trusted() refuses anything but a plain name */
	if (strlen(name) > MANIFEST_POLICY_NAME_MAX ||
	    !policy_name_valid(name)) {
		al_error_set(err, EINVAL,
			     "policy \"%.64s\": give a policy name (letters, "
			     "digits, '-', '_'), not a path",
			     name);
		return NULL;
	}
	struct sup_policy *p = calloc(1, sizeof(*p));
	if (!p) {
		al_error_sys(err, ENOMEM, "policy");
		return NULL;
	}
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->policy = policy_load_trusted(name, err);
	/* SANDBOX_MEM_MB / SANDBOX_TIMEOUT_MS change the default policy
	 * only: a named policy's limits are what its author chose. Applied
	 * before hashing, so runs record the limits they ran under. */
	if (p->policy && strcmp(name, "default") == 0 &&
	    supervisor_config_apply_policy(&s->cfg, p->policy, err) < 0) {
		policy_free(p->policy);
		p->policy = NULL;
	}
	if (!p->policy || policy_hash(p->policy, p->hash, err) < 0 ||
	    !(p->filter = sandbox_filter_compile(p->policy, err))) {
		policy_free(p->policy);
		free(p);
		return NULL;
	}
	p->refs = 1;
	p->next = s->policies;
	s->policies = p;
	return p;
}

static void release(struct sup_policy *p)
{
	learned_cache_free(p);
	sandbox_filter_free(p->filter);
	policy_free(p->policy);
	free(p);
}

void sup_policy_put(struct supervisor *s, struct sup_policy *pol)
{
	if (!pol || --pol->refs || !pol->stale)
		return;
	for (struct sup_policy **pp = &s->policies; *pp; pp = &(*pp)->next)
		if (*pp == pol) {
			*pp = pol->next;
			break;
		}
	release(pol);
}

void sup_policy_reload_all(struct supervisor *s)
{
	for (struct sup_policy **pp = &s->policies; *pp;) {
		struct sup_policy *p = *pp;
		p->stale = true;
		if (p->refs == 0) {
			*pp = p->next;
			release(p);
		} else {
			pp = &p->next;
		}
	}
}

void sup_policy_free_all(struct supervisor *s)
{
	while (s->policies) {
		struct sup_policy *p = s->policies;
		s->policies = p->next;
		release(p);
	}
}
