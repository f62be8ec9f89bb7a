/*
 * The operations: one table that names each op, the role that may call
 * it, and its handler (openssh's mon_table). A line that does not parse,
 * an unknown op or a role too weak gets an error and changes nothing.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "supervisor/internal.h"

struct op_ctx {
	struct supervisor *s;
	struct conn *c;
	const struct proto_request *req;
	const char *rid; /* request id for logs: the client's or ours */
};

typedef void (*op_fn)(struct op_ctx *x);

static void reply_error(struct op_ctx *x, enum proto_error code,
			const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reply_error(struct op_ctx *x, enum proto_error code,
			const char *fmt, ...)
{
	char msg[AL_ERROR_MAX];
	va_list ap;
	struct json_buf jb;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	LOG(LOG_INFO, x->rid, 0, "%s %s: %s", x->req->op ? x->req->op : "?",
	    proto_error_name(code), msg);
	json_buf_init(&jb);
	proto_response_error(&jb, x->req->id, code, msg, 0);
	conn_send_jb(x->s, x->c, &jb);
}

static void reply_unavailable(struct op_ctx *x)
{
	char msg[AL_ERROR_MAX];

	outage_message(x->s, msg, sizeof(msg));
	reply_error(x, PROTO_E_UNAVAILABLE, "%s", msg);
}

/* A manifest error, mapped to the protocol's codes. */
static void reply_manifest_error(struct op_ctx *x, const struct al_error *err)
{
	enum proto_error code = PROTO_E_INTERNAL;
	if (err->errnum == ENOTCONN) {
		reply_unavailable(x);
		return;
	}
	if (err->errnum == ENOENT)
		code = PROTO_E_NOT_FOUND;
	else if (err->errnum == EINVAL || err->errnum == EEXIST ||
		 err->errnum == EPERM)
		code = PROTO_E_CONFLICT;
	reply_error(x, code, "%s", err->msg);
}

/* ----------------------------------------------------- queries (client) */

/* An ok answer whose member `key` is an array the caller then fills from
 * the manifest; array_reply_send() sends it, or the manifest's error when
 * filling it failed (rc < 0). */
static void array_reply_open(struct op_ctx *x, struct json_buf *jb,
			     const char *key)
{
	json_buf_init(jb);
	proto_response_ok(jb, x->req->id);
	json_key(jb, key);
	json_array_open(jb);
}

static void array_reply_send(struct op_ctx *x, struct json_buf *jb, int rc,
			     struct al_error *err)
{
	if (rc < 0) {
		json_buf_free(jb);
		reply_manifest_error(x, err);
		return;
	}
	json_array_close(jb);
	json_object_close(jb);
	conn_send_jb(x->s, x->c, jb);
}

static int list_one(const struct manifest_module *mod, void *arg)
{
	manifest_module_json(arg, mod);
	return 0;
}

static void op_list(struct op_ctx *x)
{
	struct manifest_viewer v;
	struct manifest_module_filter f = {
		.name = x->req->name,
		.viewer = tenant_viewer(x->c, &v),
	};
	struct al_error err = { 0 };
	struct json_buf jb;

	array_reply_open(x, &jb, "modules");
	array_reply_send(x, &jb,
			 manifest_list(x->s->m, &f, list_one, &jb, &err), &err);
}

static int runs_one(const struct manifest_run *r, void *arg)
{
	manifest_run_json(arg, r);
	return 0;
}

static void op_runs(struct op_ctx *x)
{
	struct manifest_viewer v;
	struct manifest_run_filter f = {
		.name = x->req->name,
		.limit = x->req->limit ? (size_t)x->req->limit : 50,
		.viewer = tenant_viewer(x->c, &v),
	};
	struct al_error err = { 0 };
	struct json_buf jb;

	array_reply_open(x, &jb, "runs");
	array_reply_send(x, &jb,
			 manifest_runs(x->s->m, &f, runs_one, &jb, &err), &err);
}

static void op_show(struct op_ctx *x)
{
	struct manifest_module mod;
	struct al_error err = { 0 };
	struct json_buf jb;

	if (!x->req->name) {
		reply_error(x, PROTO_E_BAD_REQUEST, "show needs \"name\"");
		return;
	}
	/* the owner first: which versions another's module has is not told
	 * either (the answer is the one for a name nobody uses) */
	if (tenant_find(x->s, x->c, x->req->name, &mod, &err) < 0 ||
	    (x->req->version &&
	     manifest_find(x->s->m, x->req->name, x->req->version, &mod, &err) <
		     0)) {
		reply_manifest_error(x, &err);
		return;
	}
	struct manifest_run_filter f = { .module_id = mod.id, .limit = 10 };
	struct manifest_module_filter vf = { .name = mod.name,
					     .with_runs = true };
	json_buf_init(&jb);
	proto_response_ok(&jb, x->req->id);
	json_key(&jb, "module");
	manifest_module_json(&jb, &mod);
	json_key(&jb, "runs");
	json_array_open(&jb);
	int rc = manifest_runs(x->s->m, &f, runs_one, &jb, &err);
	json_array_close(&jb);
	/* every version, its state, hash and runs: what rollback and
	 * restore --version choose from */
	json_key(&jb, "versions");
	json_array_open(&jb);
	if (rc < 0 || manifest_list(x->s->m, &vf, list_one, &jb, &err) < 0) {
		json_buf_free(&jb);
		reply_manifest_error(x, &err);
		return;
	}
	json_array_close(&jb);
	json_object_close(&jb);
	conn_send_jb(x->s, x->c, &jb);
}

/* What is running now: run id, module, who asked, for how long, memory;
 * a client sees its own runs and those of modules it owns. */
static void active_json(struct json_buf *jb, struct supervisor *s,
			const struct conn *c)
{
	json_key(jb, "active");
	json_array_open(jb);
	for (struct job *j = s->active; j; j = j->next) {
		if (j->uid != c->uid && !tenant_may(c, &j->mod))
			continue;
		double elapsed = 0;
		uint64_t memory = 0;
		if (j->run)
			sandbox_run_usage(j->run, &elapsed, &memory);
		json_object_open(jb);
		json_kv_int(jb, "run", j->run_id);
		json_kv_string(jb, "module", j->mod.name);
		json_kv_int(jb, "version", j->mod.version);
		json_kv_string(jb, "kind",
			       j->kind == JOB_VALIDATE ? "validate" : "exec");
		json_kv_uint(jb, "uid", j->uid);
		json_kv_int(jb, "elapsed_ms", (int64_t)elapsed);
		json_kv_uint(jb, "memory_bytes", memory);
		if (j->run && sandbox_run_host_uid(j->run))
			json_kv_uint(jb, "host_uid",
				     sandbox_run_host_uid(j->run));
		json_object_close(jb);
	}
	json_array_close(jb);
}

static void isolation_json(struct json_buf *jb, const struct supervisor *s)
{
	bool userns = strcmp(sandbox_host_privilege_mode(s->host), "root") != 0;
	struct statvfs vfs;

	json_kv_string(jb, "cgroup", sandbox_host_cgroup_mode(s->host));
	json_kv_string(jb, "privilege", sandbox_host_privilege_mode(s->host));
	json_kv_string(jb, "user_namespaces",
		       userns ? "the jail's only privilege"
			      : "not needed (root builds the jail)");
	json_kv_string(jb, "seccomp", "filter with user notification");
	char uids[AL_ERROR_MAX];
	json_kv_string(jb, "host_uids",
		       sandbox_host_uid_detail(s->host, uids, sizeof(uids)));
	if (statvfs(s->cfg.state_dir, &vfs) == 0) {
		json_kv_uint(jb, "state_dir_free_bytes",
			     (uint64_t)vfs.f_bavail * vfs.f_frsize);
		json_kv_uint(jb, "state_dir_size_bytes",
			     (uint64_t)vfs.f_blocks * vfs.f_frsize);
	}
}

/* Whose quota lines a caller sees: an admin what it asked (-1: all), a
 * client its own only. */
static int64_t quota_scope(const struct op_ctx *x, int64_t asked)
{
	return x->c->role == PROTO_ROLE_ADMIN ? asked : (int64_t)x->c->uid;
}

/* The daemon's own counters. */
static void status_counters(struct json_buf *jb, const struct supervisor *s)
{
	json_key(jb, "counters");
	json_object_open(jb);
	json_kv_uint(jb, "runs_total", s->counters[C_RUNS]);
	json_kv_uint(jb, "validation_failures_total",
		     s->counters[C_VALIDATION_FAILURES]);
	json_kv_uint(jb, "auto_archives_total", s->counters[C_AUTO_ARCHIVES]);
	json_kv_uint(jb, "rate_limit_hits_total",
		     s->counters[C_RATE_LIMIT_HITS]);
	json_kv_uint(jb, "overloaded_total", s->counters[C_OVERLOADED]);
	json_kv_uint(jb, "sandbox_timeouts_total", s->counters[C_TIMEOUTS]);
	json_object_close(jb);
}

/* The caller's quota use (what the manifest says of its past runs). */
static void status_quota(struct json_buf *jb, struct supervisor *s, uid_t uid)
{
	uint64_t hour, day;
	quota_usage(s, uid, &hour, &day);
	json_key(jb, "quota");
	json_object_open(jb);
	json_kv_uint(jb, "uid", uid);
	json_kv_uint(jb, "per_hour", s->cfg.quota_per_hour);
	json_kv_uint(jb, "used", hour);
	json_kv_uint(jb, "per_day", s->cfg.quota_per_day);
	json_kv_uint(jb, "used_today", day);
	json_kv_uint(jb, "reset_hour_utc", s->cfg.quota_reset_hour);
	json_object_close(jb);
}

/* What status says from the manifest: the hosts, its counts, the quotas
 * and storage it holds; -1 with err when a query fails. */
static int status_manifest(struct op_ctx *x, struct json_buf *jb,
			   int64_t started, struct al_error *err)
{
	struct supervisor *s = x->s;
	struct manifest_viewer v;

	if (fleet_hosts_json(s, jb, err) < 0 ||
	    report_manifest_json(jb, s->m, started, tenant_viewer(x->c, &v),
				 err) < 0)
		return -1;
	status_quota(jb, s, x->c->uid);
	if (quota_list_json(s, jb, quota_scope(x, -1), err) < 0 ||
	    storage_json(s, jb, x->c, err) < 0)
		return -1;
	return 0;
}

static void op_status(struct op_ctx *x)
{
	struct supervisor *s = x->s;
	struct al_error err = { 0 };
	struct json_buf jb;
	char t[MANIFEST_TIME_MAX], msg[AL_ERROR_MAX];
	/* the manifest's clock is the epoch; ours is monotonic */
	int64_t started = manifest_now_ms() - (now_ms() - s->started_ms);

	json_buf_init(&jb);
	proto_response_ok(&jb, x->req->id);
	json_kv_string(&jb, "version", AIRLOCK_VERSION);
	json_kv_int(&jb, "pid", getpid());
	json_kv_int(&jb, "uptime_ms", now_ms() - s->started_ms);
	manifest_time_format(started, false, t);
	json_kv_string(&jb, "started", t);
	json_kv_string(&jb, "state_dir", s->cfg.state_dir);
	/* the server's URL without its password (manifest_where()) */
	json_kv_string(&jb, "manifest_backend", manifest_backend(s->m));
	json_kv_string(&jb, "manifest_database", manifest_where(s->m));
	isolation_json(&jb, s);
	json_kv_bool(&jb, "stopping", s->stopping);
	json_kv_uint(&jb, "active_runs", s->nactive);
	json_kv_uint(&jb, "max_active", s->cfg.max_active);
	json_kv_uint(&jb, "queue_depth", s->nqueued);
	json_kv_uint(&jb, "queue_max", s->cfg.queue_max);
	json_kv_uint(&jb, "connections", s->nconns);
	json_kv_uint(&jb, "pending_records", outage_pending(s));
	active_json(&jb, s, x->c);
	/* out of reach: what this process knows, and why the rest is not
	 * here */
	if (!outage_available(s)) {
		outage_message(s, msg, sizeof(msg));
		json_kv_string(&jb, "manifest_unavailable", msg);
	} else if (status_manifest(x, &jb, started, &err) < 0) {
		json_buf_free(&jb);
		reply_manifest_error(x, &err);
		return;
	}
	status_counters(&jb, s);
	json_key(&jb, "health");
	json_object_open(&jb);
	health_json(&jb, s);
	json_object_close(&jb);
	json_object_close(&jb);
	conn_send_jb(s, x->c, &jb);
}

/* ------------------------------------------------------ events, quotas */

static bool since_of(struct op_ctx *x, int64_t *since_ms)
{
	struct al_error err = { 0 };

	*since_ms = 0;
	if (!x->req->since)
		return true;
	if (manifest_time_parse(x->req->since, manifest_now_ms(), since_ms,
				&err) == 0)
		return true;
	reply_error(x, PROTO_E_BAD_REQUEST, "since: %s", err.msg);
	return false;
}

static int event_one(const struct manifest_feed_event *ev, void *arg)
{
	proto_event_json(arg, ev);
	return 0;
}

/* Feed rows, oldest first: the newest "limit" (100; at most 10000)
 * after "after" and "since". */
static void op_events(struct op_ctx *x)
{
	struct manifest_viewer v;
	struct manifest_feed_filter f = {
		.after_id = x->req->after,
		.limit = x->req->limit ? (size_t)x->req->limit : 100,
		.viewer = tenant_viewer(x->c, &v),
	};
	struct al_error err = { 0 };
	struct json_buf jb;

	if (f.limit > 10000) {
		reply_error(x, PROTO_E_BAD_REQUEST, "limit: at most 10000");
		return;
	}
	if (!since_of(x, &f.since_ms))
		return;
	array_reply_open(x, &jb, "events");
	array_reply_send(x, &jb,
			 manifest_feed(x->s->m, &f, event_one, &jb, &err),
			 &err);
}

/* From now on this connection receives every feed row as a line
 * {"event": {...}}; first the earlier rows "after", "since" and "limit"
 * select (at most EVENTS_CATCH_UP). */
static void op_subscribe(struct op_ctx *x)
{
	struct al_error err = { 0 };
	struct json_buf jb;
	int64_t since;

	if (x->c->subscriber) {
		reply_error(x, PROTO_E_CONFLICT, "already subscribed");
		return;
	}
	if (x->req->limit > EVENTS_CATCH_UP) {
		reply_error(x, PROTO_E_BAD_REQUEST,
			    "limit: at most %d earlier events; ask \"events\" "
			    "for more",
			    EVENTS_CATCH_UP);
		return;
	}
	if (!since_of(x, &since))
		return;
	int64_t cursor = events_cursor_now(x->s); /* the others first */
	json_buf_init(&jb);
	proto_response_ok(&jb, x->req->id);
	json_kv_bool(&jb, "subscribed", true);
	json_kv_int(&jb, "cursor", cursor);
	json_object_close(&jb);
	conn_send_jb(x->s, x->c, &jb);
	if (x->c->src.fd < 0)
		return;
	LOG(LOG_INFO, x->rid, 0, "uid %u subscribed to events", x->c->uid);
	if (events_subscribe(x->s, x->c, x->req->after, since,
			     (size_t)x->req->limit, &err) < 0)
		LOG(LOG_WARN, x->rid, 0, "catch-up: %s", err.msg);
}

static void op_quota_show(struct op_ctx *x)
{
	struct supervisor *s = x->s;
	struct al_error err = { 0 };
	struct json_buf jb;
	int64_t now = manifest_now_ms();
	char t[MANIFEST_TIME_MAX];

	json_buf_init(&jb);
	proto_response_ok(&jb, x->req->id);
	json_kv_uint(&jb, "per_hour", s->cfg.quota_per_hour);
	json_kv_uint(&jb, "per_day", s->cfg.quota_per_day);
	json_kv_uint(&jb, "reset_hour_utc", s->cfg.quota_reset_hour);
	manifest_time_format(report_hour_start(now) + AL_HOUR_MS, false, t);
	json_kv_string(&jb, "hour_resets", t);
	manifest_time_format(report_day_start(now, s->cfg.quota_reset_hour) +
				     AL_DAY_MS,
			     false, t);
	json_kv_string(&jb, "day_resets", t);
	if (quota_list_json(s, &jb,
			    quota_scope(x, x->req->has_uid ? x->req->uid : -1),
			    &err) < 0) {
		json_buf_free(&jb);
		reply_manifest_error(x, &err);
		return;
	}
	json_object_close(&jb);
	conn_send_jb(s, x->c, &jb);
}

static void op_quota_reset(struct op_ctx *x)
{
	struct al_error err = { 0 };
	struct json_buf jb;

	if (!x->req->has_uid) {
		reply_error(x, PROTO_E_BAD_REQUEST,
			    "quota_reset needs \"uid\"");
		return;
	}
	if (quota_reset(x->s, (uint32_t)x->req->uid, x->c->uid, &err) < 0) {
		reply_manifest_error(x, &err);
		return;
	}
	json_buf_init(&jb);
	proto_response_ok(&jb, x->req->id);
	json_kv_bool(&jb, "reset", true);
	if (quota_list_json(x->s, &jb, x->req->uid, &err) < 0) {
		json_buf_free(&jb);
		reply_manifest_error(x, &err);
		return;
	}
	json_object_close(&jb);
	conn_send_jb(x->s, x->c, &jb);
}

/* The last self-check (run every tick), not a new one: a probe that
 * calls this often costs nothing. */
static void op_health(struct op_ctx *x)
{
	struct json_buf jb;

	json_buf_init(&jb);
	proto_response_ok(&jb, x->req->id);
	health_json(&jb, x->s);
	json_object_close(&jb);
	conn_send_jb(x->s, x->c, &jb);
}

/* ------------------------------------------------------ admin changes */

static void reply_with(struct op_ctx *x, const struct manifest_module *mod)
{
	struct json_buf jb;

	json_buf_init(&jb);
	proto_response_ok(&jb, x->req->id);
	json_key(&jb, "module");
	manifest_module_json(&jb, mod);
	json_object_close(&jb);
	conn_send_jb(x->s, x->c, &jb);
}

/* The latest version of `name` (archive: the one it archived, or a newer
 * rejected one). */
static void reply_module(struct op_ctx *x, const char *name)
{
	struct manifest_module mod;
	struct al_error err = { 0 };

	if (manifest_find(x->s->m, name, 0, &mod, &err) < 0) {
		reply_manifest_error(x, &err);
		return;
	}
	reply_with(x, &mod);
}

/* The version of `name` a restore or rollback made active. */
static void reply_active(struct op_ctx *x, const char *name)
{
	struct manifest_module mod;
	struct al_error err = { 0 };
	char path[PATH_MAX];

	if (manifest_active_path(x->s->m, name, &mod, path, sizeof(path),
				 &err) < 0) {
		reply_manifest_error(x, &err);
		return;
	}
	reply_with(x, &mod);
}

static void op_archive(struct op_ctx *x)
{
	struct al_error err = { 0 };
	char reason[MANIFEST_REASON_MAX + 1];

	struct manifest_module mod;

	if (!x->req->name) {
		reply_error(x, PROTO_E_BAD_REQUEST, "archive needs \"name\"");
		return;
	}
	if (tenant_find(x->s, x->c, x->req->name, &mod, &err) < 0) {
		reply_manifest_error(x, &err);
		return;
	}
	snprintf(reason, sizeof(reason), "archived by uid %u%s%s", x->c->uid,
		 x->req->reason ? ": " : "",
		 x->req->reason ? x->req->reason : "");
	if (manifest_archive(x->s->m, x->req->name, reason, &err) < 0) {
		reply_manifest_error(x, &err);
		return;
	}
	LOG(LOG_INFO, x->rid, 0, "%s archived by uid %u", x->req->name,
	    x->c->uid);
	reply_module(x, x->req->name);
}

/* restore's and rollback's "version": absent, or 1 or more. */
static bool version_ok(struct op_ctx *x)
{
	if (x->req->has_version && x->req->version < 1) {
		reply_error(x, PROTO_E_BAD_REQUEST,
			    "\"version\": expected a version number, 1 or "
			    "more (leave it out for the latest archived)");
		return false;
	}
	return true;
}

static void op_restore(struct op_ctx *x)
{
	struct al_error err = { 0 };

	struct manifest_module mod;

	if (!x->req->name) {
		reply_error(x, PROTO_E_BAD_REQUEST, "restore needs \"name\"");
		return;
	}
	if (!version_ok(x))
		return;
	if (tenant_find(x->s, x->c, x->req->name, &mod, &err) < 0) {
		reply_manifest_error(x, &err);
		return;
	}
	if (manifest_restore(x->s->m, x->req->name, x->req->version, &err) <
	    0) {
		reply_manifest_error(x, &err);
		return;
	}
	LOG(LOG_INFO, x->rid, 0, "%s restored by uid %u", x->req->name,
	    x->c->uid);
	reply_active(x, x->req->name);
}

static void op_rollback(struct op_ctx *x)
{
	struct al_error err = { 0 };
	struct manifest_module mod;

	if (!x->req->name) {
		reply_error(x, PROTO_E_BAD_REQUEST, "rollback needs \"name\"");
		return;
	}
	if (tenant_find(x->s, x->c, x->req->name, &mod, &err) < 0 ||
	    manifest_rollback(x->s->m, x->req->name, x->c->uid, &mod, &err) <
		    0) {
		reply_manifest_error(x, &err);
		return;
	}
	LOG(LOG_INFO, x->rid, 0, "%s rolled back to version %lld by uid %u",
	    x->req->name, (long long)mod.version, x->c->uid);
	reply_active(x, x->req->name);
}

/* What the host can run: each policy's interpreter and version, probed in
 * its jail (languages.c). */
static void op_languages(struct op_ctx *x)
{
	struct al_error err = { 0 };

	if (languages_request(x->s, x->c, x->req->id, &err) < 0)
		reply_error(x,
			    err.errnum == EAGAIN ? PROTO_E_OVERLOADED
						 : PROTO_E_INTERNAL,
			    "%s", err.msg);
}

/* "run": kill that running run. "name": remove that module's queued runs
 * (they have no run id yet), each answered "cancelled". */
static void op_cancel(struct op_ctx *x)
{
	char why[64];
	struct json_buf jb;
	unsigned queued = 0;

	if (x->req->has_run == !!x->req->name) {
		reply_error(x, PROTO_E_BAD_REQUEST,
			    "cancel needs \"run\" (a running run) or \"name\" "
			    "(that module's queued runs), not both");
		return;
	}
	snprintf(why, sizeof(why), "by uid %u", x->c->uid);
	if (x->req->name) {
		queued = runs_cancel_queued(x->s, x->req->name, why);
		if (!queued) {
			reply_error(x, PROTO_E_NOT_FOUND, "no queued run of %s",
				    x->req->name);
			return;
		}
	} else if (runs_cancel(x->s, x->req->run, why) < 0) {
		reply_error(x, PROTO_E_NOT_FOUND, "run %lld is not running",
			    (long long)x->req->run);
		return;
	}
	json_buf_init(&jb);
	proto_response_ok(&jb, x->req->id);
	if (x->req->name) {
		json_kv_string(&jb, "name", x->req->name);
		json_kv_uint(&jb, "queued_cancelled", queued);
	} else {
		json_kv_int(&jb, "run", x->req->run);
		json_kv_bool(&jb, "cancelled", true);
	}
	json_object_close(&jb);
	conn_send_jb(x->s, x->c, &jb);
}

/* ------------------------------------------------------- runs (client) */

static struct job *job_new(struct op_ctx *x, enum job_kind kind)
{
	struct job *job = calloc(1, sizeof(*job));

	if (!job)
		return NULL;
	job->src.kind = SRC_JOB;
	job->src.fd = -1;
	job->stdin_fd = -1;
	job->kind = kind;
	job->conn = x->c;
	job->uid = x->c->uid;
	if (x->req->id) {
		snprintf(job->req_id, sizeof(job->req_id), "%s", x->req->id);
		job->has_req_id = true;
	}
	snprintf(job->log_id, sizeof(job->log_id), "%s", x->rid);
	return job;
}

static int job_args(struct job *job, const char *const *args, size_t n)
{
	job->args = calloc(n + 1, sizeof(char *));
	if (!job->args)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!(job->args[i] = strdup(args[i])))
			return -1;
	return 0;
}

static int job_stdin(struct job *job, const char *data, size_t len)
{
	if (!data)
		return 0;
	job->stdin_len = len; /* counted in the uid's buffered bytes */
	job->stdin_fd = memfd_create("airlock-stdin", MFD_CLOEXEC);
	if (job->stdin_fd < 0)
		return -1;
	for (size_t done = 0; done < len;) {
		ssize_t n = write(job->stdin_fd, data + done, len - done);
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return lseek(job->stdin_fd, 0, SEEK_SET) == 0 ? 0 : -1;
}

/* Quota and capacity first: a refused request changes nothing. */
static bool admitted(struct op_ctx *x)
{
	char msg[256];
	int64_t retry = 0;
	int code = bounds_admit(x->s, x->c, x->req->stdin_len, msg,
				sizeof(msg));

	if (code == 0)
		code = runs_admit(x->s, x->c->uid, msg, sizeof(msg), &retry);

	if (code == 0)
		return true;
	struct json_buf jb;
	LOG(LOG_INFO, x->rid, 0, "%s refused: %s", x->req->op, msg);
	json_buf_init(&jb);
	proto_response_error(&jb, x->req->id, code, msg, retry);
	conn_send_jb(x->s, x->c, &jb);
	return false;
}

/* "#!/usr/bin/env python3" -> "python3", "#!/bin/sh -e" -> "sh". */
static void interpreter_of(const unsigned char *content, size_t len, char *out,
			   size_t outlen)
{
	char line[256];
	size_t n = 0;

	out[0] = '\0';
	if (len < 3 || content[0] != '#' || content[1] != '!')
		return;
	for (size_t i = 2;
	     i < len && content[i] != '\n' && n + 1 < sizeof(line); i++)
		line[n++] = (char)content[i];
	line[n] = '\0';
	char *save = NULL, *word = strtok_r(line, " \t", &save);
	if (!word)
		return;
	const char *base = strrchr(word, '/') ? strrchr(word, '/') + 1 : word;
	if (strcmp(base, "env") == 0) {
		word = strtok_r(NULL, " \t", &save);
		base = word ? word : "";
	}
	for (const char *p = base; *p; p++)
		if (!(*p == '.' || *p == '-' || *p == '_' ||
		      (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z')))
			return;
	snprintf(out, outlen, "%s", base);
}

/* The module's bytes: base64 "content", or the fd passed with the line
 * ("content_fd"), bounded alike by what a request line can carry. */
static int submit_content(struct op_ctx *x, unsigned char **out, size_t *len)
{
	const struct proto_request *req = x->req;
	struct al_error err = { 0 };
	size_t max = x->s->cfg.max_request / 4 * 3;

	if (req->content_fd) {
		_cleanup_close_ int fd = x->c->line_fd;
		x->c->line_fd = -1;
		if (content_from_fd(fd, max, out, len, &err) == 0)
			return 0;
		reply_error(x,
			    err.errnum == E2BIG ? PROTO_E_TOO_LARGE
						: PROTO_E_BAD_REQUEST,
			    "%s", err.msg);
		return -1;
	}
	*out = malloc(req->content_len / 4 * 3 + 1);
	if (!*out) {
		reply_error(x, PROTO_E_INTERNAL, "out of memory");
		return -1;
	}
	ssize_t n = base64_decode(req->content, req->content_len, *out, &err);
	if (n < 0) {
		free(*out);
		*out = NULL;
		reply_error(x, PROTO_E_BAD_REQUEST, "content: %s", err.msg);
		return -1;
	}
	*len = (size_t)n;
	return 0;
}

/* A submit's "kind" and "entry": 1 for a bundle, 0 for one file, -1 when
 * refused (answered). */
static int submit_kind(struct op_ctx *x)
{
	const struct proto_request *req = x->req;
	bool bundle = req->kind && strcmp(req->kind, "bundle") == 0;

	if (req->kind && !bundle && strcmp(req->kind, "file") != 0) {
		reply_error(x, PROTO_E_BAD_REQUEST,
			    "kind: expected \"file\" or \"bundle\"");
		return -1;
	}
	if (bundle && !req->entry) {
		reply_error(x, PROTO_E_BAD_REQUEST,
			    "a bundle needs \"entry\": the path inside it "
			    "that a run executes (main.py, bin/run)");
		return -1;
	}
	if (!bundle && (req->entry || req->build)) {
		reply_error(x, PROTO_E_BAD_REQUEST,
			    "\"%s\" is for \"kind\": \"bundle\" only",
			    req->entry ? "entry" : "build");
		return -1;
	}
	for (const char *p = req->build; p && *p; p++)
		if (*p < 0x20 || *p >= 0x7f) {
			reply_error(x, PROTO_E_BAD_REQUEST,
				    "build: one line of printable ASCII, run "
				    "as sh -c (\"cc -O2 -o main main.c\")");
			return -1;
		}
	if (req->build && !req->build[0]) {
		reply_error(x, PROTO_E_BAD_REQUEST,
			    "build: an empty command (leave the member out "
			    "for no build step)");
		return -1;
	}
	return bundle;
}

/* A bundle's tree into the store (bundle_store.c) and its entry's
 * interpreter into interp; -1 when refused (answered). */
static int submit_bundle(struct op_ctx *x, const unsigned char *content,
			 size_t len, const char *build, char *interp,
			 size_t interp_len)
{
	struct al_error err = { 0 };
	unsigned char head[256];
	size_t head_len = sizeof(head);

	if (bundle_store_add(x->s, content, len, x->req->entry, build != NULL,
			     head, &head_len, &err) < 0) {
		LOG(LOG_INFO, x->rid, 0, "submit %s refused: %s", x->req->name,
		    err.msg);
		reply_error(x,
			    err.errnum == E2BIG ? PROTO_E_TOO_LARGE
			    : err.errnum == ENOMEM || err.errnum == EIO ||
					    err.errnum == ENOSPC
				    ? PROTO_E_INTERNAL
				    : PROTO_E_BAD_REQUEST,
			    "%s", err.msg);
		return -1;
	}
	interpreter_of(head, head_len, interp, interp_len);
	return 0;
}

/* The same content under the same policy as the name's active version
 * (and the caller one of its owners): answer that version as it is, with
 * "unchanged": true; no new version, no run, no quota spent. */
static bool answered_unchanged(struct op_ctx *x, const unsigned char *content,
			       size_t len, const struct sup_policy *pol,
			       const char *build)
{
	struct manifest_module mod;
	struct al_error err = { 0 };
	struct manifest_submission sub = {
		.name = x->req->name,
		.content = content,
		.len = len,
		.policy_name = pol->name,
		.policy_hash = pol->hash,
		.entry = x->req->entry,
		.build = build,
	};
	struct json_buf jb;

	if (manifest_find_same(x->s->m, &sub, &mod, &err) <= 0 ||
	    !tenant_may(x->c, &mod))
		return false; /* errors too: the ordinary path reports them */
	LOG(LOG_INFO, x->rid, 0,
	    "submit %s: the same as version %lld; unchanged", mod.name,
	    (long long)mod.version);
	json_buf_init(&jb);
	proto_response_ok(&jb, x->req->id);
	json_key(&jb, "module");
	manifest_module_json(&jb, &mod);
	json_kv_bool(&jb, "unchanged", true);
	json_kv_bool(&jb, "archived", false);
	json_object_close(&jb);
	conn_send_jb(x->s, x->c, &jb);
	return true;
}

static void op_submit(struct op_ctx *x)
{
	const struct proto_request *req = x->req;
	struct al_error err = { 0 };
	char interp[MANIFEST_INTERPRETER_MAX + 1];
	_cleanup_free_ unsigned char *content = NULL;
	size_t len;

	if (proto_request_has_run_options(req)) {
		reply_error(x, PROTO_E_BAD_REQUEST,
			    "submit takes no per-run options (timeout, memory, "
			    "pids, env, cwd): its validation run is held to "
			    "the policy as it is; give them to exec");
		return;
	}
	if (!req->name || (!req->content == !req->content_fd)) {
		reply_error(x, PROTO_E_BAD_REQUEST,
			    "submit needs \"name\" and either \"content\" "
			    "(base64) or \"content_fd\": true with a file "
			    "descriptor");
		return;
	}
	int bundle = submit_kind(x);
	if (bundle < 0 || submit_content(x, &content, &len) < 0)
		return;
	struct sup_policy *pol = sup_policy_get(x->s,
						req->policy ? req->policy
							    : "default",
						&err);
	if (!pol) {
		reply_error(x, PROTO_E_BAD_POLICY, "%s", err.msg);
		return;
	}
	/* a bundle's build step: the request's command, else its policy's
	 * [build] command, else none */
	const char *build = !bundle      ? NULL
			    : req->build ? req->build
			    : policy_build_command(pol->policy)[0]
				    ? policy_build_command(pol->policy)
				    : NULL;
	if (answered_unchanged(x, content, len, pol, build)) {
		sup_policy_put(x->s, pol);
		return;
	}
	char full[512];
	int code = storage_admit(x->s, x->c, len, full, sizeof(full));
	if (code) {
		sup_policy_put(x->s, pol);
		reply_error(x, code, "%s", full);
		return;
	}
	if (!admitted(x)) {
		sup_policy_put(x->s, pol);
		return;
	}
	if (!bundle)
		interpreter_of(content, len, interp, sizeof(interp));
	else if (submit_bundle(x, content, len, build, interp, sizeof(interp)) <
		 0) {
		sup_policy_put(x->s, pol);
		return;
	}
	struct manifest_submission sub = {
		.name = req->name,
		.content = content,
		.len = len,
		.uid = x->c->uid,
		.policy_name = pol->name,
		.policy_hash = pol->hash,
		.interpreter = interp[0] ? interp : NULL,
		.entry = req->entry,
		.build = build,
	};
	if (tenant_submit_owner(x->s, x->c, req->name, req->group, &sub, &err) <
	    0) {
		sup_policy_put(x->s, pol);
		reply_error(x,
			    err.errnum == EPERM ? PROTO_E_UNAUTHORIZED
			    : err.errnum == EINVAL || err.errnum == ENOENT
				    ? PROTO_E_BAD_REQUEST
				    : PROTO_E_INTERNAL,
			    "%s", err.msg);
		if (bundle)
			bundle_store_sweep(x->s);
		return;
	}
	struct job *job = job_new(x, JOB_VALIDATE);
	if (!job) {
		sup_policy_put(x->s, pol);
		reply_error(x, PROTO_E_INTERNAL, "out of memory");
		return;
	}
	job->pol = pol;
	if (job_args(job, req->validate_args, req->nvalidate_args) < 0 ||
	    job_stdin(job, req->stdin_data, req->stdin_len) < 0) {
		job_free(job);
		reply_error(x, PROTO_E_INTERNAL, "out of memory");
		return;
	}
	if (manifest_stage(x->s->m, &sub, &job->mod, &err) < 0 ||
	    manifest_set_state(x->s->m, job->mod.id, MANIFEST_VALIDATING,
			       "validation queued", &err) < 0 ||
	    manifest_get(x->s->m, job->mod.id, &job->mod, &err) < 0 ||
	    manifest_module_path(x->s->m, &job->mod, job->path,
				 sizeof(job->path), &err) < 0) {
		job_free(job);
		if (err.errnum == EINVAL)
			reply_error(x, PROTO_E_BAD_REQUEST, "%s", err.msg);
		else
			reply_manifest_error(x, &err);
		if (bundle)
			bundle_store_sweep(x->s);
		return;
	}
	LOG(LOG_INFO, x->rid, 0,
	    "submit %s version %lld (%zu bytes%s) by uid %u", job->mod.name,
	    (long long)job->mod.version, len,
	    req->content_fd ? ", from fd" : "", x->c->uid);
	x->c->pending++;
	runs_submit(x->s, job);
}

/* exec "wait": false: the run gets its id (its manifest row) now and is
 * answered at once; it goes on whatever becomes of this connection, and
 * `wait` or `result` answer its end (results.c). */
static void exec_detached(struct op_ctx *x, struct job *job)
{
	struct al_error err = { 0 };
	struct json_buf jb;

	if (runs_begin(x->s, job, &err) < 0) {
		sup_policy_put(x->s, job->pol);
		job_free(job);
		reply_manifest_error(x, &err);
		return;
	}
	job->conn = NULL; /* nobody to answer at the end */
	bool starts = !x->s->queue_head && x->s->nactive < x->s->cfg.max_active;
	LOG(LOG_INFO, x->rid, job->run_id, "exec %s detached (%s)",
	    job->mod.name, starts ? "starting" : "queued");
	json_buf_init(&jb);
	proto_response_ok(&jb, x->req->id);
	json_kv_int(&jb, "run", job->run_id);
	json_key(&jb, "module");
	manifest_module_json(&jb, &job->mod);
	json_kv_bool(&jb, "detached", true);
	json_kv_bool(&jb, "queued", !starts);
	json_object_close(&jb);
	conn_send_jb(x->s, x->c, &jb);
	runs_submit(x->s, job); /* may end it at once: job is gone then */
}

/* The request's per-run options held to the module's policy: the limits,
 * environment and cwd of this run, or a bad_request naming the option
 * (answered here). */
static int exec_options(struct op_ctx *x, const struct sup_policy *pol,
			struct policy_run *out)
{
	const struct proto_request *req = x->req;
	struct al_error err = { 0 };
	struct policy_request pr = {
		.timeout = req->timeout,
		.memory = req->memory,
		.has_pids = req->has_pids,
		.pids = (uint64_t)req->pids,
		.env_names = req->env_names,
		.env_values = req->env_values,
		.n_env = req->nenv,
		.cwd = req->cwd,
	};

	if (policy_tighten(pol->policy, &pr, out, &err) == 0)
		return 0;
	reply_error(x,
		    err.errnum == ENOMEM ? PROTO_E_INTERNAL
					 : PROTO_E_BAD_REQUEST,
		    "%s", err.msg);
	return -1;
}

static void op_exec(struct op_ctx *x)
{
	const struct proto_request *req = x->req;
	struct al_error err = { 0 };
	struct manifest_module mod;
	char path[PATH_MAX];

	if (!req->name) {
		reply_error(x, PROTO_E_BAD_REQUEST, "exec needs \"name\"");
		return;
	}
	if (tenant_find(x->s, x->c, req->name, &mod, &err) < 0) {
		reply_manifest_error(x, &err);
		return;
	}
	if (manifest_active_path(x->s->m, req->name, &mod, path, sizeof(path),
				 &err) < 0) {
		struct manifest_module latest;
		if (err.errnum == ENOENT &&
		    manifest_find(x->s->m, req->name, 0, &latest, &err) == 0) {
			if (latest.state == MANIFEST_ARCHIVED)
				reply_error(x, PROTO_E_ARCHIVED,
					    "%s is archived (%s); an operator "
					    "must restore it",
					    req->name, latest.reason);
			else
				reply_error(x, PROTO_E_NOT_FOUND,
					    "%s has no active version (latest "
					    "is %s)",
					    req->name,
					    manifest_state_name(latest.state));
			return;
		}
		reply_manifest_error(x, &err);
		return;
	}
	/* a bundle another host of the database took: unpack it here */
	if (mod.entry[0] && bundle_store_ensure(x->s, &mod, path, &err) < 0) {
		reply_manifest_error(x, &err);
		return;
	}
	struct sup_policy *pol = sup_policy_get(x->s, mod.policy_name, &err);
	if (!pol) {
		reply_error(x, PROTO_E_BAD_POLICY, "%s", err.msg);
		return;
	}
	/* before admission: a request the policy refuses costs no quota and
	 * leaves no run behind */
	struct policy_run opts;
	if (exec_options(x, pol, &opts) < 0) {
		sup_policy_put(x->s, pol);
		return;
	}
	if (!admitted(x)) {
		policy_run_clear(&opts);
		sup_policy_put(x->s, pol);
		return;
	}
	struct job *job = job_new(x, JOB_EXEC);
	if (!job) {
		policy_run_clear(&opts);
		sup_policy_put(x->s, pol);
		reply_error(x, PROTO_E_INTERNAL, "out of memory");
		return;
	}
	job->pol = pol;
	job->opts = opts;
	job->has_opts = true;
	job->mod = mod;
	/* an admin's run of another's module tells nothing about its owner's
	 * use: it does not count toward archive_on */
	job->owner_run = tenant_owns(x->c, mod.owner_uid, mod.owner_gid);
	snprintf(job->path, sizeof(job->path), "%s", path);
	if (job_args(job, req->args, req->nargs) < 0 ||
	    job_stdin(job, req->stdin_data, req->stdin_len) < 0) {
		job_free(job);
		reply_error(x, PROTO_E_INTERNAL, "out of memory");
		return;
	}
	if (req->has_wait && !req->wait) {
		exec_detached(x, job);
		return;
	}
	x->c->pending++;
	runs_submit(x->s, job);
}

static void op_wait(struct op_ctx *x)
{
	results_op_wait(x->s, x->c, x->req);
}

static void op_result(struct op_ctx *x)
{
	results_op_result(x->s, x->c, x->req);
}

/* ---------------------------------------------------------- dispatch */

static const struct op {
	const char *name;
	enum proto_role role; /* the weakest role allowed to call it */
	op_fn fn;
	/* answers with the manifest out of reach (what it can) */
	bool offline;
} ops[] = {
	{ "submit", PROTO_ROLE_CLIENT, op_submit, false },
	{ "exec", PROTO_ROLE_CLIENT, op_exec, false },
	{ "status", PROTO_ROLE_CLIENT, op_status, true },
	{ "health", PROTO_ROLE_CLIENT, op_health, true },
	{ "languages", PROTO_ROLE_CLIENT, op_languages, true },
	{ "list", PROTO_ROLE_CLIENT, op_list, false },
	{ "show", PROTO_ROLE_CLIENT, op_show, false },
	{ "runs", PROTO_ROLE_CLIENT, op_runs, false },
	/* the run's owners and admins: results.c asks tenant_may() */
	{ "wait", PROTO_ROLE_CLIENT, op_wait, false },
	{ "result", PROTO_ROLE_CLIENT, op_result, false },
	{ "events", PROTO_ROLE_CLIENT, op_events, false },
	{ "subscribe", PROTO_ROLE_CLIENT, op_subscribe, false },
	{ "quota_show", PROTO_ROLE_CLIENT, op_quota_show, false },
	{ "quota_reset", PROTO_ROLE_ADMIN, op_quota_reset, false },
	/* owners and admins: tenant_find() in the op */
	{ "archive", PROTO_ROLE_CLIENT, op_archive, false },
	{ "restore", PROTO_ROLE_CLIENT, op_restore, false },
	{ "rollback", PROTO_ROLE_CLIENT, op_rollback, false },
	{ "cancel", PROTO_ROLE_ADMIN, op_cancel, false },
};

void ops_dispatch(struct supervisor *s, struct conn *c, const char *line,
		  size_t len)
{
	static const struct json_limits limits = {
		.max_nodes = PROTO_REQUEST_MAX_NODES,
		.max_depth = PROTO_REQUEST_MAX_DEPTH,
	};
	struct proto_request req;
	struct al_error err = { 0 };
	char rid[32];
	struct op_ctx x = { .s = s, .c = c, .req = &req, .rid = rid };

	snprintf(rid, sizeof(rid), "%llu.%llu", (unsigned long long)c->serial,
		 (unsigned long long)c->requests);
	memset(&req, 0, sizeof(req));
	struct json_doc *doc = json_parse(line, len, &limits, &err);
	if (!doc || proto_request_decode(doc, &req, &err) < 0) {
		reply_error(&x, PROTO_E_BAD_REQUEST, "%s", err.msg);
		json_doc_free(doc);
		return;
	}
	const struct op *op = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
		if (strcmp(ops[i].name, req.op) == 0)
			op = &ops[i];
	bool takes_fd = op && op->fn == op_submit && req.content_fd;
	if (c->line_fd_error)
		reply_error(&x, PROTO_E_BAD_REQUEST, "%s", c->line_fd_error);
	else if (c->line_fd >= 0 && !takes_fd)
		reply_error(&x, PROTO_E_BAD_REQUEST,
			    "a file descriptor came with a request that does "
			    "not use one (only submit with \"content_fd\": "
			    "true does); closed");
	else if (c->line_fd < 0 && takes_fd)
		reply_error(&x, PROTO_E_BAD_REQUEST,
			    "\"content_fd\" is true but no file descriptor "
			    "came with the line");
	else if (!op)
		reply_error(&x, PROTO_E_UNKNOWN_OP, "unknown op \"%.32s\"",
			    req.op);
	else if (c->role < op->role)
		reply_error(&x, PROTO_E_UNAUTHORIZED,
			    "op \"%s\" needs the admin role; uid %u is a "
			    "client",
			    op->name, c->uid);
	else if (s->stopping && (op->fn == op_submit || op->fn == op_exec))
		reply_error(&x, PROTO_E_SHUTTING_DOWN,
			    "airlockd is shutting down");
	else if (!op->offline && !outage_available(s))
		reply_unavailable(&x);
	else
		op->fn(&x);
	json_doc_free(doc);
}
