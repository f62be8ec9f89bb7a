/*
 * The JSON records of the manifest's rows: a module version, a run and a
 * state-change event.
 * One encoder per record, called by airlockd's answers (list, show, runs,
 * submit, exec, archive, restore) and by the CLI's read-only views
 * (airlock list/show/runs --json), so the two cannot drift apart.
 * Members are documented in docs/manifest.md ("JSON") and only grow.
 */
#include "manifest/manifest.h"

/* An ISO 8601 time, or null for 0 (not yet). */
static void kv_time(struct json_buf *jb, const char *key, int64_t ms)
{
	char buf[MANIFEST_TIME_MAX];

	json_key(jb, key);
	if (ms == 0) {
		json_null(jb);
		return;
	}
	manifest_time_format(ms, true, buf);
	json_string(jb, buf);
}

/* "" is null: the optional text members. */
static void kv_text(struct json_buf *jb, const char *key, const char *s)
{
	json_kv_string(jb, key, s && *s ? s : NULL);
}

/* An integer, or null when it does not apply. */
static void kv_int_or_null(struct json_buf *jb, const char *key, bool has,
			   int64_t v)
{
	if (has)
		json_kv_int(jb, key, v);
	else
		json_kv_null(jb, key);
}

void manifest_module_json(struct json_buf *jb, const struct manifest_module *m)
{
	json_object_open(jb);
	json_kv_int(jb, "id", m->id);
	json_kv_string(jb, "name", m->name);
	json_kv_int(jb, "version", m->version);
	json_kv_string(jb, "state", manifest_state_name(m->state));
	kv_text(jb, "reason", m->reason);
	json_kv_string(jb, "sha256", m->sha256);
	json_kv_uint(jb, "size", m->size);
	kv_text(jb, "interpreter", m->interpreter);
	json_kv_string(jb, "kind", m->entry[0] ? "bundle" : "file");
	kv_text(jb, "entry", m->entry);
	kv_text(jb, "build", m->build);
	json_kv_string(jb, "policy", m->policy_name);
	json_kv_string(jb, "policy_hash", m->policy_hash);
	json_kv_uint(jb, "submitted_uid", m->submitted_uid);
	json_kv_uint(jb, "owner_uid", m->owner_uid);
	kv_int_or_null(jb, "owner_gid", m->owner_gid >= 0, m->owner_gid);
	kv_time(jb, "created", m->created_ms);
	kv_time(jb, "updated", m->updated_ms);
	json_kv_string(jb, "archive_cause", manifest_cause_name(m->cause));
	json_kv_bool(jb, "good", manifest_module_good(m));
	if (m->has_runs) {
		/* a version as `show` lists it: its runs at a glance */
		json_kv_uint(jb, "runs_total", m->runs);
		json_key(jb, "run_counts");
		json_object_open(jb);
		for (size_t i = 0; i < m->nverdicts; i++)
			json_kv_uint(jb, m->verdicts[i].verdict,
				     m->verdicts[i].count);
		json_object_close(jb);
		kv_text(jb, "last_verdict", m->last_verdict);
		kv_time(jb, "last_run", m->last_run_ms);
	}
	json_object_close(jb);
}

void manifest_run_json(struct json_buf *jb, const struct manifest_run *r)
{
	json_object_open(jb);
	json_kv_int(jb, "id", r->id);
	json_kv_string(jb, "module", r->module_name);
	json_kv_int(jb, "version", r->module_version);
	json_kv_int(jb, "module_id", r->module_id);
	kv_time(jb, "started", r->started_ms);
	kv_time(jb, "ended", r->ended_ms);
	json_kv_int(jb, "started_ms", r->started_ms);
	kv_int_or_null(jb, "ended_ms", r->ended_ms != 0, r->ended_ms);
	json_kv_string(jb, "verdict", r->verdict);
	kv_int_or_null(jb, "exit_code", r->has_exit_code, r->exit_code);
	/* the number, as the manifest stores it (a result object names it) */
	kv_int_or_null(jb, "signal", r->signal > 0, r->signal);
	kv_text(jb, "syscall", r->syscall);
	json_key(jb, "wall_ms");
	r->has_usage ? json_double(jb, r->wall_ms, 3) : json_null(jb);
	json_key(jb, "cpu_ms");
	r->has_usage ? json_double(jb, r->cpu_ms, 3) : json_null(jb);
	json_key(jb, "peak_memory_bytes");
	r->has_usage ? json_uint(jb, r->peak_memory_bytes) : json_null(jb);
	json_kv_bool(jb, "stdout_truncated", r->stdout_truncated);
	json_kv_bool(jb, "stderr_truncated", r->stderr_truncated);
	json_kv_string(jb, "policy_hash", r->policy_hash);
	/* the result's "limits", as the run was held to them */
	json_key(jb, "limits");
	if (r->limits.known) {
		json_object_open(jb);
		json_kv_uint(jb, "timeout_ms", r->limits.timeout_ms);
		json_kv_uint(jb, "memory_bytes", r->limits.memory_bytes);
		json_kv_uint(jb, "pids", r->limits.pids);
		json_object_close(jb);
	} else {
		json_null(jb);
	}
	json_kv_uint(jb, "uid", r->uid);
	json_key(jb, "stderr_excerpt");
	json_string_n(jb, r->stderr_excerpt, r->stderr_excerpt_len);
	json_object_close(jb);
}

void manifest_event_json(struct json_buf *jb, const struct manifest_event *e)
{
	json_object_open(jb);
	json_kv_int(jb, "id", e->id);
	kv_time(jb, "time", e->time_ms);
	json_kv_int(jb, "module_id", e->module_id);
	json_kv_string(jb, "module", e->module_name);
	json_kv_int(jb, "version", e->module_version);
	kv_text(jb, "from", e->from_state);
	json_kv_string(jb, "to", e->to_state);
	kv_text(jb, "reason", e->reason);
	json_object_close(jb);
}
