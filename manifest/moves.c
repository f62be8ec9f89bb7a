/*
 * The move journal: how a state change that moves a file stays all-or-
 * nothing across a crash.
 *
 *   1. commit the intent: one `moves` row per module that changes;
 *   2. move the files (store_place(): rename, link or unlink, then fsync
 *      of the directories);
 *   3. commit the new states, their events and the journal's removal in
 *      one transaction.
 *
 * A crash before 1 changed nothing. A crash after 1 leaves journal rows
 * behind, and the next read-write open (moves_repair()) does 2 and 3
 * again: store_place() finds the files wherever the crash left them and
 * only finishes the job. The journal itself is the row that says a file
 * may be deleted, so nothing is deleted without one.
 *
 * Submissions are journaled too ("stage", before the file is written). One
 * that a crash interrupted is rolled back instead: its submitter never got
 * an answer, and there is no row yet to carry it forward.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manifest/internal.h"

/* A journal row, as loaded. */
struct journal {
	int64_t id;
	bool stage;
	bool delete;
	int64_t module_id;
	char sha256[MANIFEST_SHA256_HEX + 1];
	int from; /* a state; -1 for a stage */
	int to;   /* a state, or MOVE_DELETE; -1 for a stage */
	char reason[MANIFEST_REASON_MAX + 1];
	enum manifest_cause cause; /* to archived: why */
};

/* Rows whose journaled move counts as done: the state they are going to. */
static const char SQL_NEEDED[] = "SELECT EXISTS (SELECT 1 FROM modules m"
				 " LEFT JOIN moves v ON v.module_id = m.id"
				 " WHERE m.sha256 = ?1 AND CASE"
				 "  WHEN v.id IS NULL THEN m.state"
				 "  WHEN v.op = 'delete' THEN 'deleted'"
				 "  ELSE v.to_state END IN (?2, ?3))";

int moves_needed(struct manifest *m, enum store_dir d, const char *sha256,
		 struct al_error *err)
{
	static const char *const states[STORE_DIRS][2] = {
		[STORE_STAGING] = { "staged", "validating" },
		[STORE_MODULES] = { "active", "active" },
		[STORE_ARCHIVE] = { "archived", "archived" },
	};
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_NEEDED, err);

	if (s == NULL)
		return -1;
	if (d == STORE_NONE)
		return 0;
	db_bind_text(s, 1, sha256);
	db_bind_text(s, 2, states[d][0]);
	db_bind_text(s, 3, states[d][1]);
	if (db_step(s) != DB_ROW)
		return db_error(m, err, "which rows use %s", sha256);
	return (int)db_column_int64(s, 0);
}

static const char SQL_JOURNAL_ADD[] =
	"INSERT INTO moves (op, module_id, sha256, from_state, to_state,"
	" reason, created_ms, host, archive_cause)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id";

/* `mv` NULL: a submission, of which only the content is known yet. */
static int journal_insert(struct manifest *m, const struct move *mv,
			  const char *sha256, int64_t *id, struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_JOURNAL_ADD, err);

	if (s == NULL)
		return -1;
	if (mv == NULL) {
		db_bind_text(s, 1, "stage");
	} else {
		db_bind_text(s, 1,
			     mv->to == MOVE_DELETE ? "delete" : "transition");
		db_bind_int64(s, 2, mv->module_id);
		db_bind_text(s, 4, manifest_state_name(mv->from));
		if (mv->to != MOVE_DELETE)
			db_bind_text(s, 5, manifest_state_name(mv->to));
		db_bind_text(s, 6, mv->reason);
		if (mv->to == MANIFEST_ARCHIVED)
			db_bind_text(s, 9,
				     manifest_cause_name(
					     mv->cause != MANIFEST_CAUSE_NONE
						     ? mv->cause
						     : MANIFEST_CAUSE_BY_HAND));
	}
	db_bind_text(s, 3, sha256);
	db_bind_int64(s, 7, manifest_now_ms());
	db_bind_text(s, 8, m->host);
	int64_t new_id;
	if (db_insert_id(m, s, "journal a move", &new_id, err) < 0)
		return -1;
	if (id != NULL)
		*id = new_id;
	return 0;
}

static const char SQL_JOURNAL_LOAD[] =
	"SELECT id, op, module_id, sha256, from_state, to_state, reason,"
	" archive_cause FROM moves WHERE host IN (?1, '') ORDER BY id";

/* The whole journal; *rows is the caller's to free. */
static int journal_load(struct manifest *m, struct journal **rows, size_t *n,
			struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_JOURNAL_LOAD, err);
	struct journal *list = NULL, *grown;
	size_t count = 0;
	int rc;

	*rows = NULL;
	*n = 0;
	if (s == NULL)
		return -1;
	/* another host's rows are about its own files */
	db_bind_text(s, 1, m->host);
	while ((rc = db_step(s)) == DB_ROW) {
		char text[16];
		struct journal *j;

		grown = realloc(list, (count + 1) * sizeof(*list));
		if (grown == NULL) {
			free(list);
			return al_error_sys(err, ENOMEM, "load the journal");
		}
		list = grown;
		j = &list[count++];
		memset(j, 0, sizeof(*j));
		j->id = db_column_int64(s, 0);
		db_column_copy(s, 1, text, sizeof(text));
		j->stage = strcmp(text, "stage") == 0;
		j->delete = strcmp(text, "delete") == 0;
		j->module_id = db_column_int64(s, 2);
		db_column_copy(s, 3, j->sha256, sizeof(j->sha256));
		db_column_copy(s, 4, text, sizeof(text));
		j->from = manifest_state_parse(text);
		db_column_copy(s, 5, text, sizeof(text));
		j->to = j->delete ? MOVE_DELETE : manifest_state_parse(text);
		db_column_copy(s, 6, j->reason, sizeof(j->reason));
		j->cause = manifest_cause_parse(db_column_text(s, 7));
		if (!j->stage && (j->from < 0 || j->to < 0)) {
			int64_t bad = j->id;
			free(list);
			return al_error_set(err, EINVAL,
					    "journal row %lld names an unknown "
					    "state",
					    (long long)bad);
		}
	}
	if (rc != DB_DONE) {
		free(list);
		return db_error(m, err, "load the journal");
	}
	*rows = list;
	*n = count;
	return 0;
}

static const char SQL_JOURNAL_DROP[] = "DELETE FROM moves WHERE id = ?1";
static const char SQL_MODULE_MOVE[] =
	"UPDATE modules SET state = ?2, state_reason = ?3, updated_ms = ?4,"
	" archive_cause = ?5 WHERE id = ?1";
static const char SQL_MODULE_DELETE[] = "DELETE FROM modules WHERE id = ?1";

static int exec_id(struct manifest *m, const char *sql, int64_t id,
		   const char *what, struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, sql, err);

	if (s == NULL)
		return -1;
	db_bind_int64(s, 1, id);
	return db_step_done(m, s, what, err);
}

/* Step 3 for one journal row: inside the caller's transaction. */
static int journal_commit_one(struct manifest *m, const struct journal *j,
			      bool repaired, int64_t now, struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = NULL;
	struct manifest_module mod;
	char joined[MANIFEST_REASON_MAX + 64], reason[MANIFEST_REASON_MAX + 1];
	const char *to = j->delete ? "deleted" : manifest_state_name(j->to);

	if (module_get(m, j->module_id, &mod, err) < 0)
		return -1;
	if ((int)mod.state != j->from)
		return al_error_set(err, EINVAL,
				    "journal row %lld: module %lld is %s, not "
				    "%s",
				    (long long)j->id, (long long)j->module_id,
				    manifest_state_name(mod.state),
				    manifest_state_name(j->from));
	snprintf(joined, sizeof(joined), "%s%s%s", j->reason,
		 repaired && j->reason[0] ? " " : "",
		 repaired ? "(finished at open after an interruption)" : "");
	text_cut(joined, MANIFEST_REASON_MAX, reason);
	if (event_append(m, &mod, manifest_state_name(mod.state), to, reason,
			 now, err) < 0 ||
	    exec_id(m, SQL_JOURNAL_DROP, j->id, "clear the journal", err) < 0)
		return -1;
	if (j->delete)
		return exec_id(m, SQL_MODULE_DELETE, mod.id, "delete a module",
			       err);
	s = db_stmt(m, SQL_MODULE_MOVE, err);
	if (s == NULL)
		return -1;
	db_bind_int64(s, 1, mod.id);
	db_bind_text(s, 2, to);
	db_bind_text(s, 3, reason[0] ? reason : NULL);
	db_bind_int64(s, 4, now);
	/* only an archived row has a cause; one restored loses it */
	if (j->to == MANIFEST_ARCHIVED)
		db_bind_text(s, 5,
			     manifest_cause_name(
				     j->cause != MANIFEST_CAUSE_NONE
					     ? j->cause
					     : MANIFEST_CAUSE_BY_HAND));
	return db_step_done(m, s, "change a module's state", err);
}

/* Step 3 for every transition and deletion in the journal. */
static int journal_commit(struct manifest *m, const struct journal *rows,
			  size_t n, bool repaired, struct al_error *err)
{
	int64_t now = manifest_now_ms();

	if (db_begin(m, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (rows[i].stage)
			continue;
		if (journal_commit_one(m, &rows[i], repaired, now, err) < 0) {
			db_rollback(m);
			return -1;
		}
	}
	return db_commit(m, err);
}

static enum store_dir target_dir(int to)
{
	return to == MOVE_DELETE ? STORE_NONE : store_dir_of(to);
}

int moves_apply(struct manifest *m, const struct move *moves, size_t n,
		struct al_error *err)
{
	struct journal *rows = NULL;
	size_t count = 0;
	struct al_error placed;
	int rc = -1;

	if (db_begin(m, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (journal_insert(m, &moves[i], moves[i].sha256, NULL, err) <
		    0) {
			db_rollback(m);
			return -1;
		}
	}
	if (db_commit(m, err) < 0)
		return -1;
	/* from here on the journal holds the change: a failure that leaves
	 * it there is finished by the next open, not undone */
	for (size_t i = 0; i < n; i++) {
		al_error_clear(&placed);
		if (store_place(m, moves[i].sha256, store_dir_of(moves[i].from),
				target_dir(moves[i].to), &placed) == 0)
			continue;
		/* a file already missing stays missing either way; the
		 * state still changes, and manifest_check() says so */
		if (placed.errnum != ENOENT || moves[i].to == MANIFEST_ACTIVE) {
			al_error_set(err, placed.errnum, "%s", placed.msg);
			goto broken;
		}
	}
	if (journal_load(m, &rows, &count, err) < 0 ||
	    journal_commit(m, rows, count, false, err) < 0)
		goto broken;
	rc = 0;
	goto out;
broken:
	snprintf(m->broken, sizeof(m->broken), "%s",
		 err != NULL ? err->msg : "a file move failed");
	al_error_prefix(err, "the move stays journaled and is finished when "
			     "the manifest is next opened read-write");
out:
	free(rows);
	return rc;
}

int moves_stage_begin(struct manifest *m, const char *sha256, int64_t *id,
		      struct al_error *err)
{
	if (db_begin(m, err) < 0)
		return -1;
	if (journal_insert(m, NULL, sha256, id, err) < 0) {
		db_rollback(m);
		return -1;
	}
	return db_commit(m, err);
}

/* Undo a submission: its temp file, and staging/<sha256> unless a row
 * needs that content there; then the journal row. */
int moves_stage_undo(struct manifest *m, int64_t id, const char *sha256,
		     struct al_error *err)
{
	int need;

	if (store_remove_temp(m, sha256, err) < 0)
		return -1;
	need = moves_needed(m, STORE_STAGING, sha256, err);
	if (need < 0)
		return -1;
	if (!need && unlinkat(m->store_fd[STORE_STAGING], sha256, 0) < 0 &&
	    errno != ENOENT)
		return al_error_sys(err, errno, "remove staging/%s", sha256);
	if (fsync(m->store_fd[STORE_STAGING]) < 0)
		return al_error_sys(err, errno, "fsync staging/");
	return exec_id(m, SQL_JOURNAL_DROP, id, "clear the journal", err);
}

int moves_repair(struct manifest *m, struct al_error *err)
{
	_cleanup_free_ struct journal *rows = NULL;
	struct al_error placed;
	size_t n;

	if (journal_load(m, &rows, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct journal *j = &rows[i];

		if (j->stage)
			continue;
		/* a missing file is finished as missing: the check says so */
		al_error_clear(&placed);
		if (store_place(m, j->sha256, store_dir_of(j->from),
				target_dir(j->to), &placed) < 0 &&
		    placed.errnum != ENOENT)
			return al_error_set(err, placed.errnum, "%s",
					    placed.msg);
	}
	if (journal_commit(m, rows, n, true, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (rows[i].stage &&
		    moves_stage_undo(m, rows[i].id, rows[i].sha256, err) < 0)
			return -1;
	return 0;
}
