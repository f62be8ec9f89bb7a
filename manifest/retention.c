/*
 * Retention (ARCHIVE_RETENTION_DAYS): what the supervisor's ticker deletes.
 *
 * An archived module archived before the cutoff goes with its runs and its
 * file in archive/; each deletion is a journaled move to "deleted" with an
 * event, so a crash in the middle is finished by the next open and the
 * trail says what went and why. Runs that started before the cutoff go in
 * one statement. Events stay: they are the audit trail. On a shared
 * database, content no module uses any more goes from the contents table
 * (another host's copy in its own archive/ goes at its own check).
 */
#include <errno.h>
#include <stdio.h>

#include "manifest/internal.h"

static const char SQL_EXPIRED_MODULE[] =
	"SELECT id, sha256 FROM modules"
	" WHERE state = 'archived' AND updated_ms < ?1 ORDER BY id LIMIT 1";

/* The next archived module past the cutoff; 0 when there is none. */
static int next_expired(struct manifest *m, int64_t cutoff, int64_t *id,
			char sha256[MANIFEST_SHA256_HEX + 1],
			struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_EXPIRED_MODULE, err);
	int rc;

	if (s == NULL)
		return -1;
	db_bind_int64(s, 1, cutoff);
	rc = db_step(s);
	if (rc == DB_DONE)
		return 0;
	if (rc != DB_ROW)
		return db_error(m, err, "find expired modules");
	*id = db_column_int64(s, 0);
	db_column_copy(s, 1, sha256, MANIFEST_SHA256_HEX + 1);
	return 1;
}

static const char SQL_EXPIRED_RUNS[] =
	"DELETE FROM runs WHERE started_ms < ?1 AND verdict != 'running'";

/* Content no module row uses any more (a server's contents table). */
static const char SQL_EXPIRED_CONTENTS[] =
	"DELETE FROM contents WHERE NOT EXISTS (SELECT 1 FROM modules"
	" WHERE modules.sha256 = contents.sha256)";

static int retention(struct manifest *m, unsigned days, int64_t now_ms,
		     struct manifest_removed *removed, struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *runs = NULL;
	int64_t cutoff = now_ms - (int64_t)days * AL_DAY_MS, id = 0;
	char sha256[MANIFEST_SHA256_HEX + 1], reason[96];
	int rc;

	if (db_writable(m, err) < 0)
		return -1;
	snprintf(reason, sizeof(reason),
		 "retention: archived more than %u days ago", days);
	while ((rc = next_expired(m, cutoff, &id, sha256, err)) == 1) {
		struct move mv = { id,          sha256, MANIFEST_ARCHIVED,
				   MOVE_DELETE, reason, MANIFEST_CAUSE_NONE };
		if (moves_apply(m, &mv, 1, err) < 0)
			return -1;
		removed->modules++;
	}
	if (rc < 0)
		return -1;
	runs = db_stmt(m, SQL_EXPIRED_RUNS, err);
	if (runs == NULL)
		return -1;
	db_bind_int64(runs, 1, cutoff);
	if (db_step_done(m, runs, "delete old runs", err) < 0)
		return -1;
	removed->runs += (uint64_t)db_changes(runs);
	if (m->ops->shared && removed->modules > 0) {
		_cleanup_stmt_ struct db_stmt *c = db_stmt(m,
							   SQL_EXPIRED_CONTENTS,
							   err);
		if (c == NULL ||
		    db_step_done(m, c, "delete unused content", err) < 0)
			return -1;
	}
	return 0;
}

int manifest_retention(struct manifest *m, unsigned days, int64_t now_ms,
		       struct manifest_removed *removed, struct al_error *err)
{
	struct manifest_removed local;

	if (removed == NULL)
		removed = &local;
	removed->modules = removed->runs = 0;
	if (retention(m, days, now_ms, removed, err) < 0)
		return al_error_prefix(err, "manifest: retention (%u days)",
				       days);
	return 0;
}
