/*
 * Runs: a row per run of a module, written when it starts ("running") and
 * completed when it ends, or written once with both.
 *
 * Only a validating module (its validation run) or an active one runs; the
 * check is part of the INSERT itself, so it cannot race a state change. A
 * run the supervisor never finished because it died is "interrupted" by the
 * next read-write open.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "manifest/internal.h"

static int check_start(const struct manifest_run_start *s, struct al_error *err)
{
	if (s->policy_hash == NULL || strncmp(s->policy_hash, "sha256:", 7) ||
	    !is_sha256_hex(s->policy_hash + 7))
		return al_error_set(err, EINVAL,
				    "invalid policy hash: "
				    "expected sha256:<64 hex>");
	return 0;
}

static int check_result(const struct manifest_run_result *r,
			struct al_error *err)
{
	if (al_verdict_parse(r->verdict) < 0)
		return al_error_set(err, EINVAL,
				    "invalid verdict: expected ok, "
				    "exit_nonzero, crashed, timeout, "
				    "memory_limit, seccomp_violation or "
				    "setup_error");
	if (r->syscall != NULL && strlen(r->syscall) > MANIFEST_SYSCALL_MAX)
		return al_error_set(err, EINVAL, "syscall name too long");
	if (r->stderr_len > 0 && r->stderr_data == NULL)
		return al_error_set(err, EINVAL, "stderr_len without data");
	return 0;
}

/*
 * Parameters shared by the statements below:
 *   ?1 module  ?2 started  ?3 policy hash  ?4 uid
 *   ?5 ended  ?6 verdict  ?7 exit code  ?8 signal  ?9 syscall  ?10 wall
 *   ?11 cpu  ?12 peak  ?13 stdout cut  ?14 stderr cut  ?15 excerpt
 *   ?16 run id  ?17 timeout limit  ?18 memory limit  ?19 pids limit
 *   ?20 a replayed finish (1), which may replace "interrupted"
 */
static const char SQL_RUN_BEGIN[] =
	"INSERT INTO runs (module_id, started_ms, verdict, policy_hash,"
	" requested_uid, host, limit_timeout_ms, limit_memory_bytes,"
	" limit_pids)"
	" SELECT ?1, ?2, 'running', ?3, ?4, ?16, CAST(?17 AS BIGINT),"
	" CAST(?18 AS BIGINT), CAST(?19 AS BIGINT) FROM modules"
	" WHERE id = ?1 AND state IN ('validating', 'active')"
	" RETURNING id";

static const char SQL_RUN_RECORD[] =
	"INSERT INTO runs (module_id, started_ms, policy_hash, requested_uid,"
	" ended_ms, verdict, exit_code, signal, syscall, wall_ms, cpu_ms,"
	" peak_memory_bytes, stdout_truncated, stderr_truncated,"
	" stderr_excerpt, host, limit_timeout_ms, limit_memory_bytes,"
	" limit_pids)"
	" SELECT ?1, ?2, ?3, ?4, ?5, ?6, CAST(?7 AS INTEGER),"
	" CAST(?8 AS INTEGER), ?9, CAST(?10 AS DOUBLE PRECISION),"
	" CAST(?11 AS DOUBLE PRECISION), ?12, ?13, ?14, CAST(?15 AS BLOB),"
	" ?16, CAST(?17 AS BIGINT), CAST(?18 AS BIGINT), CAST(?19 AS BIGINT)"
	" FROM modules WHERE id = ?1 AND state IN ('validating', 'active')"
	" RETURNING id";

static const char SQL_RUN_FINISH[] =
	"UPDATE runs SET ended_ms = ?5, verdict = ?6, exit_code = ?7,"
	" signal = ?8, syscall = ?9, wall_ms = ?10, cpu_ms = ?11,"
	" peak_memory_bytes = ?12, stdout_truncated = ?13,"
	" stderr_truncated = ?14, stderr_excerpt = ?15"
	" WHERE id = ?16 AND (verdict = 'running'"
	" OR (?20 = 1 AND verdict = 'interrupted'))";

static int64_t clamp_int64(uint64_t v)
{
	return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

static void bind_start(struct db_stmt *s, const struct manifest_run_start *st,
		       int64_t started)
{
	db_bind_int64(s, 1, st->module_id);
	db_bind_int64(s, 2, started);
	db_bind_text(s, 3, st->policy_hash);
	db_bind_int64(s, 4, st->uid);
	/* unbound: NULL, a run whose limits nobody gave */
	if (st->limits.known) {
		db_bind_int64(s, 17, clamp_int64(st->limits.timeout_ms));
		db_bind_int64(s, 18, clamp_int64(st->limits.memory_bytes));
		db_bind_int64(s, 19, clamp_int64(st->limits.pids));
	}
}

static void bind_finite(struct db_stmt *s, int idx, double v)
{
	if (isfinite(v))
		db_bind_double(s, idx, v);
}

static void bind_result(struct db_stmt *s, const struct manifest_run_result *r,
			int64_t ended)
{
	size_t keep = r->stderr_len < MANIFEST_EXCERPT_MAX
			      ? r->stderr_len
			      : MANIFEST_EXCERPT_MAX;

	db_bind_int64(s, 5, ended);
	db_bind_text(s, 6, r->verdict);
	if (r->exit_code >= 0)
		db_bind_int64(s, 7, r->exit_code);
	if (r->signal > 0)
		db_bind_int64(s, 8, r->signal);
	if (r->syscall != NULL && r->syscall[0] != '\0')
		db_bind_text(s, 9, r->syscall);
	bind_finite(s, 10, r->wall_ms);
	bind_finite(s, 11, r->cpu_ms);
	db_bind_int64(s, 12, clamp_int64(r->peak_memory_bytes));
	db_bind_int64(s, 13, r->stdout_truncated);
	db_bind_int64(s, 14, r->stderr_truncated);
	/* the end of stderr: where a traceback or a panic message is */
	if (keep > 0)
		db_bind_blob(s, 15, r->stderr_data + r->stderr_len - keep,
			     keep);
}

/* Why module `id` cannot run. */
static int not_runnable(struct manifest *m, int64_t id, struct al_error *err)
{
	struct manifest_module mod;

	if (module_get(m, id, &mod, err) < 0)
		return -1;
	return al_error_set(err, EINVAL,
			    "module \"%s\" version %lld is %s; only a "
			    "validating or active module runs",
			    mod.name, (long long)mod.version,
			    manifest_state_name(mod.state));
}

static int insert(struct manifest *m, const char *sql,
		  const struct manifest_run_start *st,
		  const struct manifest_run_result *r, int64_t *run_id,
		  struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = NULL;
	int64_t now = manifest_now_ms(), started, ended;

	if (db_writable(m, err) < 0 || check_start(st, err) < 0 ||
	    (r != NULL && check_result(r, err) < 0))
		return -1;
	s = db_stmt(m, sql, err);
	if (s == NULL)
		return -1;
	ended = r != NULL && r->ended_ms ? r->ended_ms : now;
	started = st->started_ms;
	if (started == 0)
		started = r != NULL && isfinite(r->wall_ms) && r->wall_ms > 0
				  ? ended - (int64_t)(r->wall_ms + 0.5)
				  : now;
	bind_start(s, st, started);
	if (r != NULL)
		bind_result(s, r, ended);
	db_bind_text(s, 16, m->host);
	if (db_sync_light(m, true, err) < 0)
		return -1;
	int64_t id = 0;
	int rc = db_insert_id(m, s, "insert the run", &id, err);
	if (db_sync_light(m, false, rc < 0 ? NULL : err) < 0 || rc < 0)
		return -1;
	if (id == 0)
		return not_runnable(m, st->module_id, err);
	if (run_id != NULL)
		*run_id = id;
	return 0;
}

int manifest_run_begin(struct manifest *m, const struct manifest_run_start *s,
		       int64_t *run_id, struct al_error *err)
{
	if (insert(m, SQL_RUN_BEGIN, s, NULL, run_id, err) < 0)
		return al_error_prefix(err,
				       "manifest: begin a run of module "
				       "%lld",
				       (long long)s->module_id);
	return 0;
}

int manifest_run_record(struct manifest *m, const struct manifest_run_start *s,
			const struct manifest_run_result *r, int64_t *run_id,
			struct al_error *err)
{
	if (insert(m, SQL_RUN_RECORD, s, r, run_id, err) < 0)
		return al_error_prefix(err,
				       "manifest: record a run of module "
				       "%lld",
				       (long long)s->module_id);
	return 0;
}

static int finish(struct manifest *m, int64_t run_id,
		  const struct manifest_run_result *r, struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = NULL;
	struct manifest_run run;
	int64_t ended = r->ended_ms ? r->ended_ms : manifest_now_ms();

	if (db_writable(m, err) < 0 || check_result(r, err) < 0)
		return -1;
	s = db_stmt(m, SQL_RUN_FINISH, err);
	if (s == NULL)
		return -1;
	bind_result(s, r, ended);
	db_bind_int64(s, 16, run_id);
	db_bind_int64(s, 20, r->replay);
	if (db_sync_light(m, true, err) < 0)
		return -1;
	int rc = db_step_done(m, s, "update the run", err);
	if (db_sync_light(m, false, rc < 0 ? NULL : err) < 0 || rc < 0)
		return -1;
	if (db_changes(s) == 1)
		return 0;
	if (manifest_run_get(m, run_id, &run, err) < 0)
		return -1;
	/* this very finish committed before (its answer was lost): a retry
	 * carries the end time of its first try */
	if (r->ended_ms != 0 && strcmp(run.verdict, r->verdict) == 0 &&
	    run.ended_ms == ended)
		return 0;
	return al_error_set(err, EINVAL, "it is not running (verdict %s)",
			    run.verdict);
}

int manifest_run_finish(struct manifest *m, int64_t run_id,
			const struct manifest_run_result *r,
			struct al_error *err)
{
	if (finish(m, run_id, r, err) < 0)
		return al_error_prefix(err, "manifest: finish run %lld",
				       (long long)run_id);
	return 0;
}

int manifest_run_interrupt(struct manifest *m, int64_t run_id,
			   struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = NULL;
	struct manifest_run run;

	if (db_writable(m, err) < 0)
		goto fail;
	s = db_stmt(m,
		    "UPDATE runs SET verdict = 'interrupted', ended_ms = ?1"
		    " WHERE id = ?2 AND verdict = 'running'",
		    err);
	if (s == NULL)
		goto fail;
	db_bind_int64(s, 1, manifest_now_ms());
	db_bind_int64(s, 2, run_id);
	if (db_step_done(m, s, "mark the run interrupted", err) < 0)
		goto fail;
	if (db_changes(s) == 1)
		return 0;
	if (manifest_run_get(m, run_id, &run, err) < 0)
		goto fail;
	if (strcmp(run.verdict, "interrupted") == 0)
		return 0; /* a retry, or a later open's repair came first */
	al_error_set(err, EINVAL, "it is not running (verdict %s)",
		     run.verdict);
fail:
	return al_error_prefix(err, "manifest: interrupt run %lld",
			       (long long)run_id);
}

int runs_mark_interrupted(struct manifest *m, struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s =
		db_stmt(m,
			"UPDATE runs SET verdict = 'interrupted', ended_ms = ?1"
			" WHERE verdict = 'running' AND host IN (?2, '')",
			err);

	if (s == NULL)
		return -1;
	db_bind_int64(s, 1, manifest_now_ms());
	db_bind_text(s, 2, m->host);
	return db_step_done(m, s, "mark interrupted runs", err);
}

/* ---------------------------------------------------------------- queries */

#define RUN_COLUMNS                                                            \
	"r.id, r.module_id, m.name, m.version, r.started_ms, r.ended_ms,"      \
	" r.verdict, r.exit_code, r.signal, r.syscall, r.wall_ms, r.cpu_ms,"   \
	" r.peak_memory_bytes, r.stdout_truncated, r.stderr_truncated,"        \
	" r.policy_hash, r.requested_uid, r.stderr_excerpt,"                   \
	" r.limit_timeout_ms, r.limit_memory_bytes, r.limit_pids"

static void run_from_row(struct db_stmt *s, struct manifest_run *out)
{
	const void *blob;
	size_t n;

	memset(out, 0, sizeof(*out));
	out->id = db_column_int64(s, 0);
	out->module_id = db_column_int64(s, 1);
	db_column_copy(s, 2, out->module_name, sizeof(out->module_name));
	out->module_version = db_column_int64(s, 3);
	out->started_ms = db_column_int64(s, 4);
	out->ended_ms = db_column_int64(s, 5);
	db_column_copy(s, 6, out->verdict, sizeof(out->verdict));
	out->has_exit_code = !db_column_null(s, 7);
	out->exit_code = out->has_exit_code ? (int)db_column_int64(s, 7) : -1;
	out->signal = (int)db_column_int64(s, 8);
	db_column_copy(s, 9, out->syscall, sizeof(out->syscall));
	out->has_usage = !db_column_null(s, 10);
	out->wall_ms = db_column_double(s, 10);
	out->cpu_ms = db_column_double(s, 11);
	out->peak_memory_bytes = (uint64_t)db_column_int64(s, 12);
	out->stdout_truncated = (int)db_column_int64(s, 13) != 0;
	out->stderr_truncated = (int)db_column_int64(s, 14) != 0;
	db_column_copy(s, 15, out->policy_hash, sizeof(out->policy_hash));
	out->uid = (uint32_t)db_column_int64(s, 16);
	out->limits.known = !db_column_null(s, 18);
	out->limits.timeout_ms = (uint64_t)db_column_int64(s, 18);
	out->limits.memory_bytes = (uint64_t)db_column_int64(s, 19);
	out->limits.pids = (uint64_t)db_column_int64(s, 20);
	blob = db_column_blob(s, 17, &n);
	if (blob != NULL) {
		out->stderr_excerpt_len = n < sizeof(out->stderr_excerpt)
						  ? n
						  : sizeof(out->stderr_excerpt);
		memcpy(out->stderr_excerpt, blob, out->stderr_excerpt_len);
	}
}

static const char SQL_RUNS[] =
	"SELECT " RUN_COLUMNS
	" FROM runs r JOIN modules m ON m.id = r.module_id"
	" WHERE (CAST(?1 AS TEXT) IS NULL OR m.name = ?1)"
	" AND (?2 = 0 OR r.module_id = ?2) AND r.started_ms >= ?3"
	" AND (CAST(?4 AS TEXT) IS NULL OR r.verdict = ?4)"
	" AND " VIEWER_SEES("?6", "?7", "m.owner_uid",
			    "m.owner_gid") " ORDER BY r.id DESC LIMIT ?5";

int manifest_runs(struct manifest *m, const struct manifest_run_filter *f,
		  manifest_run_fn fn, void *arg, struct al_error *err)
{
	static const struct manifest_run_filter all = { 0 };
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_RUNS, err);
	struct manifest_run run;
	int rc, count = 0;

	if (s == NULL)
		return al_error_prefix(err, "manifest: runs");
	if (f == NULL)
		f = &all;
	db_bind_text(s, 1, f->name);
	db_bind_int64(s, 2, f->module_id);
	db_bind_int64(s, 3, f->since_ms);
	db_bind_text(s, 4, f->verdict);
	db_bind_int64(s, 5, f->limit == 0 ? INT64_MAX : (int64_t)f->limit);
	if (db_bind_viewer(s, 6, f->viewer) < 0)
		return db_error(m, err, "manifest: runs");
	while ((rc = db_step(s)) == DB_ROW) {
		run_from_row(s, &run);
		count++;
		if (fn != NULL && fn(&run, arg) != 0)
			return count;
	}
	if (rc != DB_DONE)
		return db_error(m, err, "manifest: runs");
	return count;
}

static const char SQL_RUN_BY_ID[] =
	"SELECT " RUN_COLUMNS
	" FROM runs r JOIN modules m ON m.id = r.module_id"
	" WHERE r.id = ?1";

int manifest_run_get(struct manifest *m, int64_t id, struct manifest_run *out,
		     struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_RUN_BY_ID, err);
	int rc;

	if (s == NULL)
		return al_error_prefix(err, "manifest: run %lld",
				       (long long)id);
	db_bind_int64(s, 1, id);
	rc = db_step(s);
	if (rc == DB_ROW) {
		run_from_row(s, out);
		return 0;
	}
	if (rc == DB_DONE)
		return al_error_set(err, ENOENT, "manifest: no run %lld",
				    (long long)id);
	return db_error(m, err, "manifest: run %lld", (long long)id);
}
