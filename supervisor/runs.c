/*
 * Runs: admission (the uid's quota, quota.c; at most max_active jails and
 * a bounded queue), starting jails, and what a run's end means: record the verdict, move
 * the module (validation: active or rejected; runtime: to
 * archive/ on a verdict the policy's archive_on lists, once the policy's
 * crash budget is spent), answer the client if it is still there.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor/internal.h"

/* ----------------------------------------------------------- admission */

int runs_admit(struct supervisor *s, uid_t uid, char *msg, size_t len,
	       int64_t *retry_after_ms)
{
	struct quota *q;
	int rc = quota_admit(s, uid, &q, msg, len, retry_after_ms);

	if (rc)
		return rc;
	if (s->nactive >= s->cfg.max_active && s->nqueued >= s->cfg.queue_max) {
		s->counters[C_OVERLOADED]++;
		snprintf(msg, len, "%u runs running and %u queued; try later",
			 s->nactive, s->nqueued);
		return PROTO_E_OVERLOADED;
	}
	quota_charge(q);
	return 0;
}

/* ----------------------------------------------------------- lifecycle */

void job_free(struct job *job)
{
	if (!job)
		return;
	if (job->run)
		sandbox_run_free(job->run);
	if (job->args)
		for (char **a = job->args; *a; a++)
			free(*a);
	free(job->args);
	policy_run_clear(&job->opts);
	al_closep(&job->stdin_fd);
	learned_job_free(job);
	build_state_free(&job->build);
	free(job);
}

/*
 * Pins. A jail's init opens the module file again by its path, in its own
 * mount namespace (sandbox/mount.c says why), a few milliseconds after
 * airlockd checked it; an archive, restore or rollback meanwhile renames
 * modules/<sha256> away and the run would fail to start. So a run's file
 * is hard-linked as STATE/running/<run id> before its jail is built, a
 * name no state change moves, and unlinked when the job ends.
 */
int runs_pins_open(struct supervisor *s, struct al_error *err)
{
	_cleanup_close_ int state = open(s->cfg.state_dir,
					 O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *e;
	struct stat st;
	DIR *dir;

	if (state < 0)
		return al_error_sys(err, errno, "open %s", s->cfg.state_dir);
	if (mkdirat(state, "running", 0700) < 0 && errno != EEXIST)
		return al_error_sys(err, errno, "mkdir %s/running",
				    s->cfg.state_dir);
	s->pins_fd = openat(state, "running",
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s->pins_fd < 0 || fstat(s->pins_fd, &st) < 0)
		return al_error_sys(err, errno, "open %s/running",
				    s->cfg.state_dir);
	if (al_stat_trusted("running", &st, geteuid(), err) < 0)
		return al_error_prefix(err, "%s", s->cfg.state_dir);
	int fd = openat(s->pins_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return al_error_sys(err, errno, "read %s/running",
				    s->cfg.state_dir);
	}
	while ((e = readdir(dir)) != NULL)
		if (e->d_name[0] != '.')
			(void)unlinkat(s->pins_fd, e->d_name, 0);
	closedir(dir);
	return 0;
}

static void unpin(struct supervisor *s, struct job *job)
{
	if (job->pin[0] && unlinkat(s->pins_fd, job->pin, 0) < 0 &&
	    errno != ENOENT)
		LOG(LOG_WARN, job->log_id, job->run_id, "unlink running/%s: %s",
		    job->pin, strerror(errno));
	job->pin[0] = '\0';
}

static int pin(struct supervisor *s, struct job *job, struct al_error *err)
{
	unpin(s, job);
	snprintf(job->pin, sizeof(job->pin), "%lld", (long long)job->run_id);
	(void)unlinkat(s->pins_fd, job->pin, 0);
	if (linkat(AT_FDCWD, job->path, s->pins_fd, job->pin, 0) < 0) {
		job->pin[0] = '\0';
		return al_error_sys(err, errno, "link %s to running/",
				    job->path);
	}
	snprintf(job->path, sizeof(job->path), "%s/running/%s",
		 s->cfg.state_dir, job->pin);
	return 0;
}

static void job_release(struct supervisor *s, struct job *job)
{
	unpin(s, job);
	sup_policy_put(s, job->pol);
	job->pol = NULL;
	job_free(job);
}

static void answer_error(struct supervisor *s, struct job *job,
			 enum proto_error code, const char *msg)
{
	struct json_buf jb;
	/* conn_send_jb() may close the connection, which clears job->conn;
	 * the conn itself lives until the end of this loop turn */
	struct conn *c = job->conn;

	if (!c)
		return;
	json_buf_init(&jb);
	proto_response_error(&jb, job->has_req_id ? job->req_id : NULL, code,
			     msg, 0);
	conn_send_jb(s, c, &jb);
	conn_request_done(s, c);
}

static void finish_validation(struct supervisor *s, struct job *job,
			      const struct sandbox_result *r);
static void finish_exec(struct supervisor *s, struct job *job,
			const struct sandbox_result *r);
static void retire(struct supervisor *s, struct job *job);

/* A run that could not start: the same path as a finished setup_error. */
static void start_failed(struct supervisor *s, struct job *job, const char *msg)
{
	struct sandbox_result r = { .verdict = AL_VERDICT_SETUP_ERROR };

	sandbox_result_setup_error(&r, 125, msg);
	/* the limits it would have been held to, as a started run says */
	if (job->has_opts) {
		r.limits = job->opts.limits;
		r.limits_known = true;
	}
	if (job->kind == JOB_VALIDATE)
		finish_validation(s, job, &r);
	else
		finish_exec(s, job, &r);
}

/*
 * An exec queued before an archive, restore or rollback of its module
 * runs the version active when it starts, never one that left modules/:
 * the job takes that version (and its policy) or fails as exec does when
 * none is active.
 */
static int exec_current(struct supervisor *s, struct job *job,
			struct al_error *err)
{
	struct manifest_module now;
	char path[PATH_MAX];
	struct sup_policy *pol;

	if (job->kind != JOB_EXEC)
		return 0;
	if (manifest_get(s->m, job->mod.id, &now, err) < 0)
		return -1;
	if (now.state == MANIFEST_ACTIVE)
		return 0;
	if (manifest_active_path(s->m, job->mod.name, &now, path, sizeof(path),
				 err) < 0)
		return al_error_prefix(err,
				       "version %lld was archived while the "
				       "run waited in the queue",
				       (long long)job->mod.version);
	if (strcmp(now.policy_name, job->mod.policy_name) != 0) {
		pol = sup_policy_get(s, now.policy_name, err);
		if (pol == NULL)
			return -1;
		sup_policy_put(s, job->pol);
		job->pol = pol;
	}
	LOG(LOG_INFO, job->log_id, 0,
	    "%s version %lld left active while queued: running version %lld",
	    job->mod.name, (long long)job->mod.version, (long long)now.version);
	job->mod = now;
	snprintf(job->path, sizeof(job->path), "%s", path);
	return 0;
}

int runs_begin(struct supervisor *s, struct job *job, struct al_error *err)
{
	const struct policy_limits *l = job->has_opts
						? &job->opts.limits
						: policy_limits(
							  job->pol->policy);
	struct manifest_run_start rs = {
		.module_id = job->mod.id,
		.policy_hash = job->pol->hash,
		.uid = job->uid,
		.limits = { .known = true,
			    .timeout_ms = l->timeout_us / 1000,
			    .memory_bytes = l->memory_bytes,
			    .pids = l->pids },
	};

	return manifest_run_begin(s->m, &rs, &job->run_id, err);
}

static void launch(struct supervisor *s, struct job *job)
{
	struct al_error err = { 0 };
	struct sandbox_spec spec = {
		.policy = job->pol->policy,
		.filter = job->pol->filter,
		.program = job->path,
		.program_name = job->mod.name, /* not the store's <sha256> */
		.args = job->args,
		.stdin_fd = job->stdin_fd,
		.stdout_fd = -1,
		.stderr_fd = -1,
		.limits = job->has_opts ? &job->opts.limits : NULL,
		.envp = job->opts.envp,
		.cwd = job->opts.cwd,
	};
	char tree[PATH_MAX];

	/* a bundle: the archive (job->path) is what is verified, the tree
	 * unpacked from it (or built from that) what the jail mounts and
	 * runs the entry of; a build step first runs in a copy of it */
	if (job->mod.entry[0] && build_wanted(s, job)) {
		job->build.building = true;
	} else if (job->mod.entry[0] &&
		   bundle_tree_path(s, &job->mod, tree, sizeof(tree)) == 0) {
		spec.workdir = tree;
		spec.entry = job->mod.entry;
		spec.program = job->mod.entry;
	}

	s->nactive++;
	job->next = s->active;
	s->active = job;
	/* a detached run has its row since its admission */
	if (!job->run_id && runs_begin(s, job, &err) < 0) {
		LOG(LOG_ERROR, job->log_id, 0, "%s", err.msg);
		job->run_id = 0;
		if (err.errnum == ENOTCONN) { /* nothing ran: not a verdict */
			char msg[AL_ERROR_MAX];
			outage_message(s, msg, sizeof(msg));
			answer_error(s, job, PROTO_E_UNAVAILABLE, msg);
			retire(s, job);
			return;
		}
		start_failed(s, job, err.msg);
		return;
	}
	/* a module of one file: a name no state change moves (pins) */
	if (!job->mod.entry[0] && pin(s, job, &err) < 0) {
		LOG(LOG_ERROR, job->log_id, job->run_id, "start: %s", err.msg);
		start_failed(s, job, err.msg);
		return;
	}
	/* the file is what was validated, not a swapped-in trojan: the state
	 * directory is root's alone (manifest_open() checks), and this is the
	 * last look before the jail opens it */
	if (manifest_module_verify(job->path, &job->mod, &err) < 0) {
		LOG(LOG_ERROR, job->log_id, job->run_id, "start: %s", err.msg);
		start_failed(s, job, err.msg);
		return;
	}
	if (job->build.building) {
		if (build_prepare(s, job, &spec, &err) < 0) {
			LOG(LOG_WARN, job->log_id, job->run_id, "build: %s",
			    err.msg);
			start_failed(s, job, err.msg);
			return;
		}
	} else if (learned_prepare(s, job, &spec, &err) < 0) {
		LOG(LOG_WARN, job->log_id, job->run_id, "start: %s", err.msg);
		start_failed(s, job, err.msg);
		return;
	}
	if (sandbox_start(s->host, &spec, &job->run, &err) < 0) {
		LOG(LOG_WARN, job->log_id, job->run_id, "start: %s", err.msg);
		start_failed(s, job, err.msg);
		return;
	}
	if (sandbox_run_step(job->run)) {
		/* over before it began (the jail never opened: a setup error
		 * such as no free host uid): there is no fd to watch, so
		 * finish it here */
		const struct sandbox_result *r = sandbox_run_result(job->run);
		LOG(LOG_WARN, job->log_id, job->run_id, "start: %s", r->error);
		if (job->kind == JOB_VALIDATE)
			finish_validation(s, job, r);
		else
			finish_exec(s, job, r);
		return;
	}
	job->src.fd = sandbox_run_fd(job->run);
	if (loop_watch(s, &job->src, EPOLLIN) < 0) {
		sandbox_run_cancel(job->run, "epoll_ctl failed");
		LOG(LOG_ERROR, job->log_id, job->run_id, "epoll_ctl: %s",
		    strerror(errno));
	}
	LOG(LOG_INFO, job->log_id, job->run_id,
	    "%s %s version %lld started (pid %d; %u running, %u queued)",
	    job->build.building         ? "building"
	    : job->kind == JOB_VALIDATE ? "validating"
					: "running",
	    job->mod.name, (long long)job->mod.version,
	    sandbox_run_pid(job->run), s->nactive, s->nqueued);
}

static void start(struct supervisor *s, struct job *job)
{
	struct al_error err = { 0 };

	/* a detached run's row names its version since its admission */
	if (!job->run_id && exec_current(s, job, &err) < 0) {
		/* nothing ran: answered as an exec of it would be now */
		LOG(LOG_INFO, job->log_id, 0, "start: %s", err.msg);
		answer_error(s, job,
			     err.errnum == ENOENT ? PROTO_E_ARCHIVED
						  : PROTO_E_INTERNAL,
			     err.msg);
		job_release(s, job);
		return;
	}
	launch(s, job);
}

static void start_queued(struct supervisor *s)
{
	while (!s->stopping && s->queue_head &&
	       s->nactive < s->cfg.max_active) {
		struct job *job = s->queue_head;
		s->queue_head = job->next;
		if (!s->queue_head)
			s->queue_tail = NULL;
		s->nqueued--;
		job->next = NULL;
		start(s, job);
	}
}

void runs_start_queued(struct supervisor *s)
{
	start_queued(s);
}

void runs_submit(struct supervisor *s, struct job *job)
{
	job->next = NULL;
	if (s->queue_tail)
		s->queue_tail->next = job;
	else
		s->queue_head = job;
	s->queue_tail = job;
	s->nqueued++;
	start_queued(s);
}

/* Out of the active list, its fd no longer watched. */
static void unlist(struct supervisor *s, struct job *job)
{
	for (struct job **pp = &s->active; *pp; pp = &(*pp)->next)
		if (*pp == job) {
			*pp = job->next;
			s->nactive--;
			break;
		}
	if (job->src.fd >= 0)
		(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, job->src.fd, NULL);
	job->src.fd = -1;
}

/* Out of the active list; frees the job; its waiters hear of its end. */
static void retire(struct supervisor *s, struct job *job)
{
	int64_t run_id = job->run_id;

	unlist(s, job);
	job_release(s, job);
	if (run_id)
		results_ended(s, run_id);
}

/* Killed because the shutdown grace ran out: the module did nothing
 * wrong, the run was interrupted (as after a crash of ours). Recorded
 * "interrupted" and answered so, never as a verdict of the module. */
static bool interrupted(const struct supervisor *s, const struct job *job)
{
	return job->cancelled && s->stopping;
}

static void answer_interrupted(struct supervisor *s, struct job *job)
{
	char msg[192];

	snprintf(msg, sizeof(msg),
		 "run %lld was killed when airlockd stopped (its shutdown "
		 "grace of %llu ms ran out); recorded interrupted: run it "
		 "again",
		 (long long)job->run_id,
		 (unsigned long long)s->cfg.shutdown_grace_ms);
	answer_error(s, job, PROTO_E_INTERRUPTED, msg);
}

/* Run `run_id`'s end into the manifest: its result r, or (NULL)
 * interrupted. The verdict is ours: with the manifest's server out of
 * reach it waits for it (outage.c), it is not lost. */
static void write_end(struct supervisor *s, const char *log_id, int64_t run_id,
		      const struct manifest_run_result *r)
{
	struct al_error err = { 0 };

	if ((r ? manifest_run_finish(s->m, run_id, r, &err)
	       : manifest_run_interrupt(s->m, run_id, &err)) == 0)
		return;
	LOG(LOG_ERROR, log_id, run_id, "%s", err.msg);
	if (err.errnum == ENOTCONN)
		outage_keep_finish(s, run_id, r);
}

static void record(struct supervisor *s, struct job *job,
		   const struct sandbox_result *r)
{
	struct manifest_run_result mr = {
		.verdict = al_verdict_name(r->verdict),
		.exit_code = r->exit_code,
		.signal = r->signal,
		.syscall = r->syscall[0] ? r->syscall : NULL,
		.wall_ms = r->wall_ms,
		.cpu_ms = r->cpu_ms,
		.peak_memory_bytes = r->peak_memory_bytes,
		.stdout_truncated = r->stdout_truncated,
		.stderr_truncated = r->stderr_truncated,
		.stderr_data = r->stderr_data,
		.stderr_len = r->stderr_len,
		/* fixed now: a retry of this finish is the same finish */
		.ended_ms = manifest_now_ms(),
	};

	s->counters[C_RUNS]++;
	if ((unsigned)r->verdict < METRICS_VERDICTS)
		s->verdicts[r->verdict]++;
	metrics_observe(&s->durations, r->wall_ms / 1000.0);
	if (r->verdict == AL_VERDICT_TIMEOUT)
		s->counters[C_TIMEOUTS]++;
	if (job->run_id)
		write_end(s, job->log_id, job->run_id,
			  interrupted(s, job) ? NULL : &mr);
	LOG(LOG_INFO, job->log_id, job->run_id,
	    "%s version %lld: %s (exit status %d, %.1f ms)", job->mod.name,
	    (long long)job->mod.version, al_verdict_name(r->verdict),
	    r->exit_status, r->wall_ms);
}

static void answer(struct supervisor *s, struct job *job,
		   const struct sandbox_result *r, bool ok,
		   const char *error_code, const char *error_msg, bool archived)
{
	struct json_buf jb;
	struct conn *c = job->conn; /* see answer_error() */

	if (!c)
		return;
	json_buf_init(&jb);
	json_object_open(&jb);
	json_kv_bool(&jb, "ok", ok);
	if (job->has_req_id)
		json_kv_string(&jb, "id", job->req_id);
	if (!ok) {
		json_key(&jb, "error");
		json_object_open(&jb);
		json_kv_string(&jb, "code", error_code);
		json_kv_string(&jb, "message", error_msg);
		json_object_close(&jb);
	}
	json_kv_int(&jb, "run", job->run_id);
	json_key(&jb, "module");
	manifest_module_json(&jb, &job->mod);
	json_kv_bool(&jb, "archived", archived);
	json_key(&jb, "result");
	sandbox_result_write(&jb, r, job->pol->policy, s->host);
	if (job->build.has_result) {
		json_kv_int(&jb, "build_run", job->build.run_id);
		json_key(&jb, "build");
		sandbox_result_write(&jb, &job->build.result, job->build.policy,
				     s->host);
	}
	json_object_close(&jb);
	conn_send_jb(s, c, &jb);
	conn_request_done(s, c);
}

/* Why a build failed, in words, from the jail's verdict of its run. */
static void build_failure(const struct al_policy *lim, struct sandbox_result *b)
{
	char why[AL_ERROR_MAX];

	switch (b->verdict) {
	case AL_VERDICT_EXIT_NONZERO:
		snprintf(why, sizeof(why), "the command exited %d",
			 b->exit_code);
		break;
	case AL_VERDICT_TIMEOUT:
		snprintf(
			why, sizeof(why),
			"timeout: killed after %.0f ms (the build's limit: %llu "
			"ms, [build] timeout or --build-timeout)",
			b->wall_ms,
			(unsigned long long)(policy_limits(lim)->timeout_us /
					     1000));
		break;
	case AL_VERDICT_MEMORY_LIMIT:
		snprintf(
			why, sizeof(why),
			"memory_limit: killed at the build's %llu MiB ([build] "
			"memory or --build-memory)",
			(unsigned long long)(policy_limits(lim)->memory_bytes >>
					     20));
		break;
	case AL_VERDICT_CRASHED:
		snprintf(why, sizeof(why), "crashed: killed by signal %d",
			 b->signal);
		break;
	case AL_VERDICT_SECCOMP_VIOLATION:
		snprintf(why, sizeof(why),
			 "seccomp_violation: the policy denies %s", b->syscall);
		break;
	default: return; /* ok, setup_error (ours), build_failed (said) */
	}
	snprintf(b->error, sizeof(b->error), "%s", why);
	b->verdict = AL_VERDICT_BUILD_FAILED;
}

static void finish_validation(struct supervisor *s, struct job *job,
			      const struct sandbox_result *r);

/*
 * The build run is over: its output becomes the module's tree and the
 * validation run starts on it, in the slot the build held; or the module
 * is rejected with build_failed (setup_error when the failure was ours).
 */
static void build_done(struct supervisor *s, struct job *job,
		       const struct sandbox_result *r)
{
	struct sandbox_result *b = &job->build.result;
	struct al_error err = { 0 };

	job->build.building = false;
	if (job->run)
		sandbox_run_take_result(job->run, b);
	else
		*b = *r; /* start_failed's: no buffers */
	job->build.has_result = true;
	job->build.run_id = job->run_id;
	if (b->verdict == AL_VERDICT_OK && !interrupted(s, job) &&
	    build_finish(s, job, &err) < 0) {
		snprintf(b->error, sizeof(b->error), "%s", err.msg);
		b->verdict = AL_VERDICT_BUILD_FAILED;
	}
	if (job->build.policy)
		build_failure(job->build.policy, b);
	record(s, job, b);
	if (b->verdict != AL_VERDICT_OK || interrupted(s, job)) {
		build_discard(s, job);
		finish_validation(s, job, b);
		return;
	}
	LOG(LOG_INFO, job->log_id, job->run_id, "built %s version %lld",
	    job->mod.name, (long long)job->mod.version);
	sandbox_run_free(job->run);
	job->run = NULL;
	unlist(s, job);
	job->run_id = 0; /* the validation run is a run of its own */
	start(s, job);
}

static void finish_validation(struct supervisor *s, struct job *job,
			      const struct sandbox_result *r)
{
	struct al_error err = { 0 };
	char reason[256];
	bool ok = r->verdict == AL_VERDICT_OK;
	char learn_error[AL_ERROR_MAX] = "";

	if (job->build.building) {
		build_done(s, job, r);
		return;
	}
	/* a failed build was recorded by build_done(): r is its result */
	bool build_failed = job->build.has_result && r == &job->build.result;

	if (!build_failed)
		record(s, job, r);
	if (ok && learned_store(s, job, r, &err) < 0) {
		ok = false;
		snprintf(learn_error, sizeof(learn_error), "%s", err.msg);
		al_error_clear(&err);
	}
	if (learn_error[0])
		snprintf(reason, sizeof(reason),
			 "validation ok (run %lld), "
			 "but its syscalls were not stored: %.160s",
			 (long long)job->run_id, learn_error);
	else if (ok)
		snprintf(reason, sizeof(reason), "validated (run %lld)",
			 (long long)job->run_id);
	else
		snprintf(reason, sizeof(reason),
			 "validation %s (run %lld)%s%.160s",
			 al_verdict_name(r->verdict), (long long)job->run_id,
			 r->error[0] ? ": " : "", r->error);
	if (!ok)
		s->counters[C_VALIDATION_FAILURES]++;
	bool sweep = !ok && job->mod.entry[0];
	if (manifest_set_state(s->m, job->mod.id,
			       ok ? MANIFEST_ACTIVE : MANIFEST_REJECTED, reason,
			       &err) < 0 ||
	    manifest_get(s->m, job->mod.id, &job->mod, &err) < 0) {
		LOG(LOG_ERROR, job->log_id, job->run_id, "%s", err.msg);
		answer_error(s, job,
			     err.errnum == ENOTCONN ? PROTO_E_UNAVAILABLE
						    : PROTO_E_INTERNAL,
			     err.msg);
	} else if (interrupted(s, job)) {
		answer_interrupted(s, job);
	} else {
		results_keep(s, job->run_id, r, job->pol->policy, false);
		answer(s, job, r, ok, proto_error_name(PROTO_E_REJECTED),
		       reason, false);
	}
	retire(s, job);
	if (sweep) /* a rejected bundle's tree, unless another row needs it */
		bundle_store_sweep(s);
}

struct budget_count {
	const struct al_policy *policy;
	const struct manifest_module *mod;
	uint64_t n;
};

/* Only owners' runs spend the budget: the owner uid's, and any run of a
 * group-owned module (its members are owners too). */
static int count_archiving(const struct manifest_run *run, void *arg)
{
	struct budget_count *b = arg;
	if (run->uid != b->mod->owner_uid && b->mod->owner_gid < 0)
		return 0;
	int v = al_verdict_parse(run->verdict);
	if (v >= 0 && policy_archives(b->policy, v))
		b->n++;
	return 0;
}

/* The policy archives on this verdict and its budget is spent: count the
 * archiving verdicts since the module last became active. */
static bool should_archive(struct supervisor *s, struct job *job,
			   const struct sandbox_result *r)
{
	const struct al_policy *p = job->pol->policy;
	struct budget_count b = { .policy = p, .mod = &job->mod };
	struct manifest_run_filter f = { .module_id = job->mod.id,
					 .since_ms = job->mod.updated_ms };
	struct al_error err = { 0 };

	if (!job->owner_run || !policy_archives(p, r->verdict))
		return false;
	if (manifest_runs(s->m, &f, count_archiving, &b, &err) < 0) {
		LOG(LOG_ERROR, job->log_id, job->run_id, "%s", err.msg);
		return true; /* fail safe: stop running a crashing module */
	}
	return b.n >= policy_crash_budget(p);
}

static void finish_exec(struct supervisor *s, struct job *job,
			const struct sandbox_result *r)
{
	struct al_error err = { 0 };
	char reason[256];
	bool archived = false;

	record(s, job, r);
	if (should_archive(s, job, r)) {
		snprintf(reason, sizeof(reason),
			 "auto-archived: %s in run %lld",
			 al_verdict_name(r->verdict), (long long)job->run_id);
		if (manifest_auto_archive(s->m, job->mod.id, reason, &err) <
		    0) {
			LOG(LOG_ERROR, job->log_id, job->run_id, "archive: %s",
			    err.msg);
		} else {
			archived = true;
			s->counters[C_AUTO_ARCHIVES]++;
			LOG(LOG_WARN, job->log_id, job->run_id,
			    "%s version %lld %s", job->mod.name,
			    (long long)job->mod.version, reason);
			(void)manifest_get(s->m, job->mod.id, &job->mod, &err);
		}
	}
	if (interrupted(s, job)) {
		answer_interrupted(s, job);
	} else {
		results_keep(s, job->run_id, r, job->pol->policy, archived);
		answer(s, job, r, true, NULL, NULL, archived);
	}
	retire(s, job);
}

void runs_handle(struct supervisor *s, struct job *job)
{
	if (!job->run || !sandbox_run_step(job->run))
		return;
	const struct sandbox_result *r = sandbox_run_result(job->run);
	if (job->kind == JOB_VALIDATE)
		finish_validation(s, job, r);
	else
		finish_exec(s, job, r);
	start_queued(s);
}

int runs_cancel(struct supervisor *s, int64_t run_id, const char *why)
{
	for (struct job *j = s->active; j; j = j->next)
		if (j->run_id == run_id && j->run) {
			LOG(LOG_INFO, j->log_id, run_id, "cancel %s", why);
			j->cancelled = true;
			sandbox_run_cancel(j->run, why);
			return 0;
		}
	return -1;
}

void runs_forget_conn(struct supervisor *s, struct conn *c)
{
	for (struct job *j = s->active; j; j = j->next)
		if (j->conn == c)
			j->conn = NULL;
	for (struct job *j = s->queue_head; j; j = j->next)
		if (j->conn == c)
			j->conn = NULL;
}

/* A queued job that will never run: a validation's module is rejected
 * (it never got a verdict), the client answered, the job freed. */
static void drop_queued(struct supervisor *s, struct job *job,
			enum proto_error code, const char *msg)
{
	struct al_error err = { 0 };
	char reason[128];

	snprintf(reason, sizeof(reason), "validation never ran: %s", msg);
	if (job->kind == JOB_VALIDATE &&
	    manifest_set_state(s->m, job->mod.id, MANIFEST_REJECTED, reason,
			       &err) < 0)
		LOG(LOG_WARN, job->log_id, 0, "%s", err.msg);
	/* a detached run has a row: it ends interrupted, never started */
	int64_t run_id = job->run_id;
	if (run_id)
		write_end(s, job->log_id, run_id, NULL);
	answer_error(s, job, code, msg);
	job_release(s, job);
	if (run_id)
		results_ended(s, run_id);
}

void runs_drop_queue(struct supervisor *s)
{
	while (s->queue_head) {
		struct job *job = s->queue_head;
		s->queue_head = job->next;
		s->nqueued--;
		drop_queued(s, job, PROTO_E_SHUTTING_DOWN,
			    "airlockd is shutting down");
	}
	s->queue_tail = NULL;
}

unsigned runs_cancel_queued(struct supervisor *s, const char *name,
			    const char *why)
{
	char msg[128];
	unsigned n = 0;
	struct job *tail = NULL;

	snprintf(msg, sizeof(msg), "cancelled while queued %s", why);
	for (struct job **pp = &s->queue_head; *pp;) {
		struct job *job = *pp;
		if (strcmp(job->mod.name, name) != 0) {
			tail = job;
			pp = &job->next;
			continue;
		}
		*pp = job->next;
		s->nqueued--;
		n++;
		LOG(LOG_INFO, job->log_id, 0, "%s: %s", name, msg);
		drop_queued(s, job, PROTO_E_CANCELLED, msg);
	}
	s->queue_tail = tail;
	return n;
}

void runs_cancel_all(struct supervisor *s, const char *why)
{
	for (struct job *j = s->active; j; j = j->next)
		if (j->run && !j->cancelled) {
			j->cancelled = true;
			sandbox_run_cancel(j->run, why);
		}
}

void runs_free_all(struct supervisor *s)
{
	runs_drop_queue(s);
	while (s->active) {
		struct job *job = s->active;
		s->active = job->next;
		s->nactive--;
		job_release(s, job);
	}
}

struct leftovers {
	int64_t ids[64];
	size_t n;
};

static int collect(const struct manifest_module *mod, void *arg)
{
	struct leftovers *l = arg;
	l->ids[l->n++] = mod->id;
	return l->n == 64; /* stop; the next pass takes the rest */
}

static bool reject_leftover(struct supervisor *s, int64_t id,
			    enum manifest_state state)
{
	struct al_error err = { 0 };

	if (state == MANIFEST_STAGED &&
	    manifest_set_state(s->m, id, MANIFEST_VALIDATING, NULL, &err) < 0)
		LOG(LOG_WARN, NULL, 0, "repair: %s", err.msg);
	if (manifest_set_state(s->m, id, MANIFEST_REJECTED,
			       "validation interrupted by a supervisor stop",
			       &err) < 0) {
		LOG(LOG_WARN, NULL, 0, "repair: %s", err.msg);
		return false;
	}
	LOG(LOG_INFO, NULL, 0,
	    "module %lld: validation was interrupted; rejected", (long long)id);
	return true;
}

/* Modules a crash left staged or validating never got a verdict: reject
 * them (collected first, then changed: never change rows mid-listing). */
void runs_repair(struct supervisor *s)
{
	static const enum manifest_state states[] = { MANIFEST_STAGED,
						      MANIFEST_VALIDATING };
	struct al_error err = { 0 };

	for (size_t i = 0; i < 2; i++) {
		struct manifest_module_filter f = { .by_state = true,
						    .state = states[i] };
		struct leftovers l;
		size_t changed;
		do { /* until a pass finds fewer than a full batch or fails */
			l.n = changed = 0;
			if (manifest_list(s->m, &f, collect, &l, &err) < 0) {
				LOG(LOG_WARN, NULL, 0, "repair: %s", err.msg);
				break;
			}
			for (size_t k = 0; k < l.n; k++)
				changed += reject_leftover(s, l.ids[k],
							   states[i]);
		} while (l.n == 64 && changed);
	}
}
