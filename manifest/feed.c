/*
 * The feed (schema migration 3): what operators watch happen, read back
 * in id order; the supervisor's own entries; and the per-uid run counts
 * quotas are derived from.
 *
 * Quotas are counted from the runs table rather than kept in the
 * supervisor's memory only: a restart must not hand every client a fresh
 * quota, and the rows are already written (in the transaction of each
 * run's start) so counting them costs no extra write. A reset is a feed
 * row; runs before a uid's last reset do not count.
 */
#include <errno.h>
#include <string.h>

#include "manifest/internal.h"

static const char SQL_FEED[] =
	"SELECT f.id, f.time_ms, f.kind, f.module_id, f.module_name,"
	" f.module_version, f.run_id, f.uid, f.verdict, f.detail,"
	" f.owner_uid, f.owner_gid FROM ("
	"  SELECT feed.*, mo.owner_uid AS owner_uid,"
	"  mo.owner_gid AS owner_gid FROM feed"
	"  LEFT JOIN modules mo ON mo.id = feed.module_id"
	"  WHERE feed.id > ?1 AND feed.time_ms >= ?2"
	"  AND (CAST(?3 AS TEXT) IS NULL OR feed.kind = ?3)"
	"  AND (CAST(?5 AS BIGINT) IS NULL"
	"   OR (feed.module_id IS NULL AND (feed.uid IS NULL OR feed.uid = ?5))"
	"   OR (mo.id IS NOT NULL AND " VIEWER_SEES(
		"?5", "?6", "mo.owner_uid",
		"mo.owner_gid") "))"
				"  ORDER BY feed.id DESC LIMIT ?4) f"
				" ORDER BY f.id";

static void feed_from_row(struct db_stmt *s, struct manifest_feed_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->id = db_column_int64(s, 0);
	ev->time_ms = db_column_int64(s, 1);
	db_column_copy(s, 2, ev->kind, sizeof(ev->kind));
	ev->module_id = db_column_int64(s, 3);
	db_column_copy(s, 4, ev->module_name, sizeof(ev->module_name));
	ev->module_version = db_column_int64(s, 5);
	ev->run_id = db_column_int64(s, 6);
	ev->has_uid = !db_column_null(s, 7);
	ev->uid = (uint32_t)db_column_int64(s, 7);
	db_column_copy(s, 8, ev->verdict, sizeof(ev->verdict));
	db_column_copy(s, 9, ev->detail, sizeof(ev->detail));
	ev->has_owner = !db_column_null(s, 10);
	ev->owner_uid = (uint32_t)db_column_int64(s, 10);
	ev->owner_gid = db_column_null(s, 11) ? -1 : db_column_int64(s, 11);
}

int manifest_feed(struct manifest *m, const struct manifest_feed_filter *f,
		  manifest_feed_fn fn, void *arg, struct al_error *err)
{
	static const struct manifest_feed_filter all = { 0 };
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_FEED, err);
	struct manifest_feed_event ev;
	int rc, count = 0;

	if (s == NULL)
		return al_error_prefix(err, "manifest: feed");
	if (f == NULL)
		f = &all;
	db_bind_int64(s, 1, f->after_id);
	db_bind_int64(s, 2, f->since_ms);
	db_bind_text(s, 3, f->kind);
	db_bind_int64(s, 4, f->limit == 0 ? INT64_MAX : (int64_t)f->limit);
	if (db_bind_viewer(s, 5, f->viewer) < 0)
		return db_error(m, err, "manifest: feed");
	while ((rc = db_step(s)) == DB_ROW) {
		feed_from_row(s, &ev);
		count++;
		if (fn != NULL && fn(&ev, arg) != 0)
			return count;
	}
	if (rc != DB_DONE)
		return db_error(m, err, "manifest: feed");
	return count;
}

static const char *const daemon_kinds[] = {
	"rate_limited", "quota_reset", "policy_reload", "started", "stopped",
};

int manifest_feed_add(struct manifest *m, const char *kind, int64_t uid,
		      const char *detail, int64_t *id, struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = NULL;
	char cut[MANIFEST_REASON_MAX + 1];
	bool known = false;

	for (size_t i = 0; kind != NULL && i < ARRAY_SIZE(daemon_kinds); i++)
		known |= strcmp(kind, daemon_kinds[i]) == 0;
	if (!known)
		return al_error_set(err, EINVAL,
				    "manifest: feed: \"%s\" is not an event "
				    "the supervisor adds",
				    kind ? kind : "(null)");
	if (db_writable(m, err) < 0)
		return al_error_prefix(err, "manifest: feed");
	s = db_stmt(m,
		    "INSERT INTO feed (time_ms, kind, uid, detail)"
		    " VALUES (?1, ?2, ?3, ?4) RETURNING id",
		    err);
	if (s == NULL)
		return al_error_prefix(err, "manifest: feed");
	db_bind_int64(s, 1, manifest_now_ms());
	db_bind_text(s, 2, kind);
	if (uid >= 0)
		db_bind_int64(s, 3, uid);
	db_bind_text(s, 4, text_cut(detail, MANIFEST_REASON_MAX, cut));
	int64_t new_id;
	if (db_insert_id(m, s, "manifest: feed: add an event", &new_id, err) <
	    0)
		return -1;
	if (id != NULL)
		*id = new_id;
	return 0;
}

/* ?1 uid (-1: all), ?2 day start, ?3 hour start. A run started in the
 * millisecond of a reset is taken as before it. */
static const char SQL_USAGE[] =
	"SELECT r.requested_uid,"
	" sum(CASE WHEN r.started_ms >= ?3 THEN 1 ELSE 0 END), count(*),"
	" coalesce(q.t, 0)"
	" FROM runs r LEFT JOIN (SELECT uid, max(time_ms) AS t FROM feed"
	"  WHERE kind = 'quota_reset' GROUP BY uid) q"
	"  ON q.uid = r.requested_uid"
	" WHERE r.started_ms >= ?2 AND r.started_ms > coalesce(q.t, -1)"
	" AND (?1 < 0 OR r.requested_uid = ?1)"
	" GROUP BY r.requested_uid, q.t ORDER BY r.requested_uid";

int manifest_usage(struct manifest *m, int64_t uid, int64_t day_ms,
		   int64_t hour_ms, manifest_usage_fn fn, void *arg,
		   struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_USAGE, err);
	struct manifest_usage u;
	int rc, count = 0;

	if (s == NULL)
		return al_error_prefix(err, "manifest: quota usage");
	db_bind_int64(s, 1, uid);
	db_bind_int64(s, 2, day_ms);
	db_bind_int64(s, 3, hour_ms);
	while ((rc = db_step(s)) == DB_ROW) {
		u.uid = (uint32_t)db_column_int64(s, 0);
		u.hour = (uint64_t)db_column_int64(s, 1);
		u.day = (uint64_t)db_column_int64(s, 2);
		u.reset_ms = db_column_int64(s, 3);
		count++;
		if (fn != NULL && fn(&u, arg) != 0)
			return count;
	}
	if (rc != DB_DONE)
		return db_error(m, err, "manifest: quota usage");
	return count;
}

int manifest_verdict_counts(struct manifest *m, int64_t since_ms,
			    const struct manifest_viewer *viewer,
			    struct manifest_verdict_count *out, size_t max,
			    size_t *n, struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(
		m,
		"SELECT r.verdict, count(*)"
		" FROM runs r JOIN modules m ON m.id = r.module_id"
		" WHERE r.verdict <> 'running' AND r.ended_ms >= ?1"
		" AND " VIEWER_SEES(
			"?2", "?3", "m.owner_uid",
			"m.owner_gid") " GROUP BY r.verdict ORDER BY r.verdict",
		err);
	int rc;

	*n = 0;
	if (s == NULL)
		return al_error_prefix(err, "manifest: verdict counts");
	db_bind_int64(s, 1, since_ms);
	if (db_bind_viewer(s, 2, viewer) < 0)
		return db_error(m, err, "manifest: verdict counts");
	while ((rc = db_step(s)) == DB_ROW) {
		if (*n == max)
			continue;
		db_column_copy(s, 0, out[*n].verdict, sizeof(out[*n].verdict));
		out[*n].count = (uint64_t)db_column_int64(s, 1);
		(*n)++;
	}
	if (rc != DB_DONE)
		return db_error(m, err, "manifest: verdict counts");
	return 0;
}
