/*
 * Learned seccomp policies in the supervisor ([runtime] seccomp = learned,
 * docs/learning.md).
 *
 * A module's validation run learns the syscalls the module makes (the
 * sandbox's BPF learner, loaded at the first such validation and kept);
 * the set is stored with the module before it becomes active. Every
 * runtime run of the module then gets a policy of its own: the policy's
 * rules with the allow-list cut down to that set, so a call outside it is
 * a seccomp_violation naming the call, archived if archive_on says so.
 * That policy and its compiled filter are kept with the policy they were
 * cut from (a few milliseconds of libseccomp saved on every later exec);
 * a module's set never changes once it is active, and a policy reload
 * makes a new policy object with an empty cache.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/internal.h"

static bool in_set(const char *name, void *arg)
{
	struct sandbox_syscalls *set = arg;
	struct sandbox_syscalls one = { { 0 } };
	if (sandbox_syscalls_add_name(&one, name, NULL) < 0)
		return false;
	for (size_t w = 0; w < SANDBOX_SYSCALL_MAX / 64; w++)
		if (one.words[w] & set->words[w])
			return true;
	return false;
}

static int learner_get(struct supervisor *s, struct sandbox_learner **out,
		       struct al_error *err)
{
	if (!s->learner) {
		s->learner = sandbox_learner_new(err);
		if (!s->learner)
			return al_error_prefix(err, "policy says seccomp = "
						    "learned");
		LOG(LOG_INFO, NULL, 0, "syscall learner loaded (%.1f ms)",
		    sandbox_learner_load_ms(s->learner));
	}
	*out = s->learner;
	return 0;
}

/* The module's own policy: its rules, the allow-list its validation run
 * learned, into *policy and *filter (the caller's). */
static int build_learned(struct supervisor *s, const struct job *job,
			 struct al_policy **policy,
			 struct sandbox_filter **filter, struct al_error *err)
{
	char *names = NULL;
	struct sandbox_syscalls set;
	if (manifest_get_syscalls(s->m, job->mod.id, &names, err) < 0)
		return -1;
	if (!names)
		return al_error_set(err, ENOENT,
				    "module %s version %lld has no learned "
				    "syscalls (validated before its policy "
				    "said seccomp = learned); submit it again",
				    job->mod.name, (long long)job->mod.version);
	int rc = sandbox_syscalls_parse(names, &set, err);
	free(names);
	if (rc < 0)
		return al_error_prefix(err, "module %s: learned syscalls",
				       job->mod.name);
	sandbox_learn_floor(&set);
	*policy = policy_restrict(job->pol->policy, in_set, &set, err);
	if (!*policy)
		return -1;
	*filter = sandbox_filter_compile(*policy, err);
	if (!*filter) {
		policy_free(*policy);
		*policy = NULL;
		return -1;
	}
	LOG(LOG_INFO, job->log_id, job->run_id,
	    "%s version %lld: learned policy compiled (%zu syscalls allowed, "
	    "%zu instructions)",
	    job->mod.name, (long long)job->mod.version,
	    policy_syscall_count(*policy),
	    sandbox_filter_instructions(*filter));
	return 0;
}

static struct learned_entry *cache_find(struct sup_policy *pol, int64_t id)
{
	for (size_t i = 0; i < LEARNED_CACHE_MAX; i++)
		if (pol->learned[i].module_id == id)
			return &pol->learned[i];
	return NULL;
}

/* A free slot, else the least recently used one no job holds (emptied),
 * else NULL. */
static struct learned_entry *cache_slot(struct sup_policy *pol)
{
	struct learned_entry *best = NULL;
	for (size_t i = 0; i < LEARNED_CACHE_MAX; i++) {
		struct learned_entry *e = &pol->learned[i];
		if (e->module_id == 0)
			return e;
		if (e->refs == 0 && (!best || e->last_used < best->last_used))
			best = e;
	}
	if (best) {
		sandbox_filter_free(best->filter);
		policy_free(best->policy);
		*best = (struct learned_entry){ 0 };
	}
	return best;
}

static int restrict_to_learned(struct supervisor *s, struct job *job,
			       struct sandbox_spec *spec, struct al_error *err)
{
	struct sup_policy *pol = job->pol;
	struct learned_entry *e = cache_find(pol, job->mod.id);

	if (!e) {
		struct al_policy *policy = NULL;
		struct sandbox_filter *filter = NULL;
		if (build_learned(s, job, &policy, &filter, err) < 0)
			return -1;
		e = cache_slot(pol);
		if (!e) { /* every slot is running: this job keeps its own */
			job->own_policy = policy;
			job->own_filter = filter;
			spec->policy = policy;
			spec->filter = filter;
			return 0;
		}
		*e = (struct learned_entry){ .module_id = job->mod.id,
					     .policy = policy,
					     .filter = filter };
	}
	e->refs++;
	e->last_used = ++pol->learned_clock;
	job->learned = e;
	spec->policy = e->policy;
	spec->filter = e->filter;
	return 0;
}

int learned_prepare(struct supervisor *s, struct job *job,
		    struct sandbox_spec *spec, struct al_error *err)
{
	if (!policy_seccomp_learned(job->pol->policy))
		return 0;
	if (job->kind == JOB_VALIDATE)
		return learner_get(s, &spec->learner, err);
	return restrict_to_learned(s, job, spec, err);
}

int learned_store(struct supervisor *s, const struct job *job,
		  const struct sandbox_result *r, struct al_error *err)
{
	if (job->kind != JOB_VALIDATE ||
	    !policy_seccomp_learned(job->pol->policy))
		return 0;
	if (!r->learned)
		return al_error_set(err, EIO,
				    "the validation run learned no "
				    "syscalls");
	char *names = sandbox_syscalls_join(&r->syscalls);
	if (!names)
		return al_error_sys(err, ENOMEM, "learned syscalls");
	int rc = manifest_set_syscalls(s->m, job->mod.id, names, err);
	if (rc == 0)
		LOG(LOG_INFO, job->log_id, job->run_id,
		    "%s version %lld: learned %zu syscalls", job->mod.name,
		    (long long)job->mod.version,
		    sandbox_syscalls_count(&r->syscalls));
	free(names);
	return rc;
}

void learned_job_free(struct job *job)
{
	if (job->learned)
		job->learned->refs--;
	job->learned = NULL;
	sandbox_filter_free(job->own_filter);
	policy_free(job->own_policy);
	job->own_filter = NULL;
	job->own_policy = NULL;
}

void learned_cache_free(struct sup_policy *pol)
{
	for (size_t i = 0; i < LEARNED_CACHE_MAX; i++) {
		sandbox_filter_free(pol->learned[i].filter);
		policy_free(pol->learned[i].policy);
		pol->learned[i] = (struct learned_entry){ 0 };
	}
}
