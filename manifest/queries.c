/*
 * Reading: module lists, events, statistics, and snapshots that hold one
 * view of the database across several of them.
 *
 * Every query is one prepared statement with optional filters written as
 * "(CAST(?N AS TEXT) IS NULL OR column = ?N)" (the cast tells a server the
 * parameter's type): no SQL is ever assembled from input.
 * A callback must not run the same query on the same handle (the statement
 * is in use); any other is fine.
 */
#include <errno.h>
#include <string.h>

#include "manifest/internal.h"

static const char SQL_LIST[] =
	"SELECT " MODULE_COLUMNS " FROM modules"
	" WHERE (CAST(?1 AS TEXT) IS NULL OR name = ?1)"
	" AND (CAST(?2 AS TEXT) IS NULL OR state = ?2)"
	" AND " VIEWER_SEES("?3", "?4", "owner_uid",
			    "owner_gid") " ORDER BY name, version";

/* A version's runs: how many, by verdict; and its last. */
static const char SQL_VERSION_VERDICTS[] =
	"SELECT verdict, count(*) FROM runs WHERE module_id = ?1"
	" GROUP BY verdict ORDER BY verdict";
static const char SQL_VERSION_LAST_RUN[] =
	"SELECT verdict, started_ms FROM runs WHERE module_id = ?1"
	" ORDER BY id DESC LIMIT 1";

static int version_runs(struct manifest *m, struct manifest_module *mod,
			struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *v = db_stmt(m, SQL_VERSION_VERDICTS,
						   err);
	_cleanup_stmt_ struct db_stmt *last = db_stmt(m, SQL_VERSION_LAST_RUN,
						      err);
	int rc;

	if (v == NULL || last == NULL)
		return -1;
	mod->has_runs = true;
	db_bind_int64(v, 1, mod->id);
	while ((rc = db_step(v)) == DB_ROW) {
		uint64_t n = (uint64_t)db_column_int64(v, 1);
		mod->runs += n;
		/* the CHECK on runs.verdict lists no more names than this */
		if (mod->nverdicts == MANIFEST_VERDICTS)
			continue;
		struct manifest_verdict_count *c =
			&mod->verdicts[mod->nverdicts++];
		db_column_copy(v, 0, c->verdict, sizeof(c->verdict));
		c->count = n;
	}
	if (rc != DB_DONE)
		return db_error(m, err, "runs of version %lld",
				(long long)mod->version);
	db_bind_int64(last, 1, mod->id);
	rc = db_step(last);
	if (rc == DB_ROW) {
		db_column_copy(last, 0, mod->last_verdict,
			       sizeof(mod->last_verdict));
		mod->last_run_ms = db_column_int64(last, 1);
	} else if (rc != DB_DONE) {
		return db_error(m, err, "last run of version %lld",
				(long long)mod->version);
	}
	return 0;
}

int manifest_list(struct manifest *m, const struct manifest_module_filter *f,
		  manifest_module_fn fn, void *arg, struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_LIST, err);
	struct manifest_module mod;
	int rc, count = 0;

	if (s == NULL)
		return al_error_prefix(err, "manifest: list modules");
	if (f != NULL) {
		db_bind_text(s, 1, f->name);
		if (f->by_state)
			db_bind_text(s, 2, manifest_state_name(f->state));
		if (db_bind_viewer(s, 3, f->viewer) < 0)
			return db_error(m, err, "manifest: list modules");
	}
	while ((rc = db_step(s)) == DB_ROW) {
		module_from_row(s, &mod);
		if (f != NULL && f->with_runs && version_runs(m, &mod, err) < 0)
			return al_error_prefix(err, "manifest: list modules");
		count++;
		if (fn != NULL && fn(&mod, arg) != 0)
			return count;
	}
	if (rc != DB_DONE)
		return db_error(m, err, "manifest: list modules");
	return count;
}

static const char SQL_STORAGE[] =
	"SELECT * FROM ("
	" SELECT ?1 AS uid, coalesce(sum(size), 0), count(*) FROM modules"
	" WHERE ?1 >= 0 AND submitted_uid = ?1 AND state <> 'rejected'"
	" UNION ALL"
	" SELECT submitted_uid, sum(size), count(*) FROM modules"
	" WHERE ?1 < 0 AND state <> 'rejected'"
	" GROUP BY submitted_uid) AS s ORDER BY uid";

int manifest_storage_use(struct manifest *m, int64_t uid,
			 manifest_storage_fn fn, void *arg,
			 struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_STORAGE, err);
	struct manifest_storage st;
	int rc, count = 0;

	if (s == NULL)
		return al_error_prefix(err, "manifest: storage");
	db_bind_int64(s, 1, uid);
	while ((rc = db_step(s)) == DB_ROW) {
		/* the first half answers once even for a uid with no rows */
		if (db_column_int64(s, 0) < 0)
			continue;
		st.uid = (uint32_t)db_column_int64(s, 0);
		st.bytes = (uint64_t)db_column_int64(s, 1);
		st.versions = (uint64_t)db_column_int64(s, 2);
		count++;
		if (fn != NULL && fn(&st, arg) != 0)
			return count;
	}
	if (rc != DB_DONE)
		return db_error(m, err, "manifest: storage");
	return count;
}

/* The newest `limit` (-1: all), returned oldest first. */
static const char SQL_EVENTS[] =
	"SELECT id, time_ms, module_id, module_name, module_version,"
	" from_state, to_state, reason FROM ("
	"  SELECT * FROM events WHERE (?1 = 0 OR module_id = ?1)"
	"  ORDER BY id DESC LIMIT ?2) AS e"
	" ORDER BY id";

int manifest_events(struct manifest *m, int64_t module_id, size_t limit,
		    manifest_event_fn fn, void *arg, struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_EVENTS, err);
	struct manifest_event ev;
	int rc, count = 0;

	if (s == NULL)
		return al_error_prefix(err, "manifest: events");
	db_bind_int64(s, 1, module_id);
	db_bind_int64(s, 2, limit == 0 ? INT64_MAX : (int64_t)limit);
	while ((rc = db_step(s)) == DB_ROW) {
		memset(&ev, 0, sizeof(ev));
		ev.id = db_column_int64(s, 0);
		ev.time_ms = db_column_int64(s, 1);
		ev.module_id = db_column_int64(s, 2);
		db_column_copy(s, 3, ev.module_name, sizeof(ev.module_name));
		ev.module_version = db_column_int64(s, 4);
		db_column_copy(s, 5, ev.from_state, sizeof(ev.from_state));
		db_column_copy(s, 6, ev.to_state, sizeof(ev.to_state));
		db_column_copy(s, 7, ev.reason, sizeof(ev.reason));
		count++;
		if (fn != NULL && fn(&ev, arg) != 0)
			return count;
	}
	if (rc != DB_DONE)
		return db_error(m, err, "manifest: events");
	return count;
}

/* A read-only transaction: SQLite's (deferred) takes the snapshot at its
 * first read and holds it (WAL keeps it readable) until the end;
 * PostgreSQL's is REPEATABLE READ. */
int manifest_snapshot_begin(struct manifest *m, struct al_error *err)
{
	if (m->in_snapshot)
		return al_error_set(err, EINVAL,
				    "manifest: a snapshot is already open");
	if (db_begin_snapshot(m, err) < 0)
		return al_error_prefix(err, "manifest: snapshot");
	m->in_snapshot = true;
	return 0;
}

void manifest_snapshot_end(struct manifest *m)
{
	if (!m->in_snapshot)
		return;
	db_rollback(m); /* nothing was written: ending is all it does */
	m->in_snapshot = false;
}

static const char SQL_STATS_MODULES[] =
	"SELECT state, count(*) FROM modules"
	" WHERE " VIEWER_SEES("?1", "?2", "owner_uid",
			      "owner_gid") " GROUP BY state";
/* everyone's runs without the join a tenant's count needs */
static const char SQL_STATS_RUNS_ALL[] =
	"SELECT count(*),"
	" coalesce(sum(CASE WHEN verdict = 'running' THEN 1 ELSE 0 END), 0)"
	" FROM runs";
static const char SQL_STATS_RUNS_SEEN[] =
	"SELECT count(*),"
	" coalesce(sum(CASE WHEN r.verdict = 'running' THEN 1 ELSE 0 END), 0)"
	" FROM runs r JOIN modules m ON m.id = r.module_id"
	" WHERE " VIEWER_SEES("?1", "?2", "m.owner_uid", "m.owner_gid");

int manifest_stats(struct manifest *m, const struct manifest_viewer *viewer,
		   struct manifest_stats *out, struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *mods = db_stmt(m, SQL_STATS_MODULES,
						      err);
	_cleanup_stmt_ struct db_stmt *runs =
		db_stmt(m, viewer ? SQL_STATS_RUNS_SEEN : SQL_STATS_RUNS_ALL,
			err);
	int64_t events;
	int rc;

	memset(out, 0, sizeof(*out));
	if (mods == NULL || runs == NULL)
		return al_error_prefix(err, "manifest: statistics");
	if (db_bind_viewer(mods, 1, viewer) < 0 ||
	    db_bind_viewer(runs, 1, viewer) < 0)
		return db_error(m, err, "manifest: statistics");
	while ((rc = db_step(mods)) == DB_ROW) {
		int st = manifest_state_parse(db_column_text(mods, 0));
		if (st >= 0)
			out->modules[st] = (uint64_t)db_column_int64(mods, 1);
	}
	if (rc != DB_DONE || db_step(runs) != DB_ROW)
		return db_error(m, err, "manifest: statistics");
	out->runs = (uint64_t)db_column_int64(runs, 0);
	out->runs_running = (uint64_t)db_column_int64(runs, 1);
	if (db_query_int(m, "SELECT count(*) FROM events", &events, err) < 0)
		return al_error_prefix(err, "manifest: statistics");
	out->events = (uint64_t)events;
	return 0;
}
