/*
 * manifest/: what the files of this folder share. Private: nothing outside
 * manifest/ includes it.
 *
 *   db.c         open/close, pragmas, the writer's lock, statements, errors
 *   schema.c     numbered migrations from schema.sql (embedded by schema_sql.S)
 *   store.c      the content-addressed files: write, place, hash
 *   moves.c      the move journal: intent, file moves, commit, repair
 *   modules.c    submissions and the state machine
 *   queries.c    module and event queries, snapshots, statistics
 *   runs.c       runs: begin, finish, record, query
 *   retention.c  deleting what is old
 *   check.c      integrity and files against rows; backup
 *   time.c       timestamps in and out
 */
#ifndef AIRLOCK_MANIFEST_INTERNAL_H
#define AIRLOCK_MANIFEST_INTERNAL_H

#include <sqlite3.h>

#include "manifest/manifest.h"

/* The three directories of the store, and "no file" (a rejected or
 * deleted module). */
enum store_dir {
	STORE_NONE = -1,
	STORE_STAGING,
	STORE_MODULES,
	STORE_ARCHIVE,
	STORE_DIRS,
};

/* Prepared statements live as long as the handle: one per SQL text. */
#define DB_STMT_CACHE 96

struct manifest {
	sqlite3 *db;
	enum manifest_mode mode;
	char *state_dir;
	char *db_path;
	int dir_fd;               /* the state directory; a writer flocks it */
	int store_fd[STORE_DIRS]; /* -1 when missing (read-only handles) */
	int schema;                 /* PRAGMA user_version once open */
	bool in_snapshot;
	/* Set when a file move failed half-way and could not be finished:
	 * later writes are refused until a reopen repairs it. */
	char broken[AL_ERROR_MAX];
	size_t nstmts;
	struct {
		const char *sql; /* the address identifies the statement */
		sqlite3_stmt *stmt;
	} stmts[DB_STMT_CACHE];
};

/* ------------------------------------------------------------------ db.c */

/*
 * The prepared statement for `sql`, which must be a string with static
 * storage (its address is the cache key). Borrowed from the handle; reset
 * it after use, which _cleanup_stmt_ does.
 */
sqlite3_stmt *db_stmt(struct manifest *m, const char *sql,
		      struct al_error *err);
void db_stmt_resetp(sqlite3_stmt **stmt);
#define _cleanup_stmt_ __attribute__((cleanup(db_stmt_resetp)))

/* "<what>: <sqlite3_errmsg>", with errnum from the failure where there is
 * one (ENOSPC for a full disk, the OS error of an I/O error). */
int db_error(struct manifest *m, struct al_error *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Step a statement that returns no rows. */
int db_step_done(struct manifest *m, sqlite3_stmt *s, const char *what,
		 struct al_error *err);
/* Run one statement of static SQL that returns no rows. */
int db_exec(struct manifest *m, const char *sql, struct al_error *err);
/* synchronous=NORMAL (light) for a run record's commit, FULL again after
 * it (db.c says why); nothing inside an open transaction. */
int db_sync_light(struct manifest *m, bool light, struct al_error *err);
/* One integer from a statement of static SQL (a PRAGMA, a count). */
int db_query_int(struct manifest *m, const char *sql, int64_t *out,
		 struct al_error *err);

/* BEGIN IMMEDIATE (the writer's lock from the start, so a commit never
 * waits on a reader), COMMIT, ROLLBACK (only if a transaction is open). */
int db_begin(struct manifest *m, struct al_error *err);
int db_commit(struct manifest *m, struct al_error *err);
void db_rollback(struct manifest *m);

/* Fails unless the handle may write now: read-write, not broken, not in a
 * snapshot. */
int db_writable(struct manifest *m, struct al_error *err);

/* Bind a string or NULL. */
int db_bind_text(sqlite3_stmt *s, int idx, const char *text);
/* A viewer as two parameters: idx its uid (NULL: no viewer, every row),
 * idx + 1 its groups as ",g1,g2," for the VIEWER_SEES() test. */
int db_bind_viewer(sqlite3_stmt *s, int idx, const struct manifest_viewer *v);
/* SQL: may viewer ?U (groups ?G) see rows of a module whose owner columns
 * are OWNER_UID and OWNER_GID? */
#define VIEWER_SEES(U, G, OWNER_UID, OWNER_GID)                               \
	"(" U " IS NULL OR " OWNER_UID " = " U " OR instr(" G ", ',' || "   \
	OWNER_GID " || ',') > 0)"
/* Copy a text column into buf (cut to fit; "" for NULL). */
void db_column_copy(sqlite3_stmt *s, int col, char *buf, size_t len);

/* Cut `s` to at most `max` bytes without splitting a UTF-8 sequence, into
 * buf (size max + 1). NULL stays NULL (returns NULL). */
const char *text_cut(const char *s, size_t max, char *buf);

/* -------------------------------------------------------------- schema.c */

/* The first read of the file: is it an airlock manifest this code can
 * read (a reader: of exactly this schema)? Sets m->schema. */
int schema_open(struct manifest *m, struct al_error *err);
/* A writer, after schema_open(): apply every migration the file lacks. */
int schema_migrate(struct manifest *m, struct al_error *err);

/* --------------------------------------------------------------- store.c */

const char *store_dir_name(enum store_dir d);
/* Where a module in state `s` keeps its file. */
enum store_dir store_dir_of(enum manifest_state s);

/* Open (a writer: create) staging/, modules/ and archive/. */
int store_open(struct manifest *m, bool create, struct al_error *err);
void store_close(struct manifest *m);

/* "staging/.<sha256>.tmp": where a submission is written first. */
void store_temp_name(const char *sha256, char buf[80]);

/* Content to staging/<sha256>: temp name, fsync, rename, fsync of the
 * directory. On failure the temp file is gone. */
int store_write(struct manifest *m, const char *sha256, const void *content,
		size_t len, struct al_error *err);
/* Remove a temp file a crash left (ENOENT is fine). */
int store_remove_temp(struct manifest *m, const char *sha256,
		      struct al_error *err);

/* Whether <dir>/<sha256> exists (an lstat that found something). */
bool store_has(struct manifest *m, enum store_dir d, const char *sha256);

/*
 * Make the files of content `sha256` follow a row from `from` to `to`:
 * put a copy in `to` (rename from `from`, or link when `from` must keep
 * its copy, or from any other copy), drop the copy in `from` when no row
 * needs it there. Which rows need what comes from moves_needed(): the
 * journal's pending moves count as done. Idempotent: a repair calls it
 * again. ENOENT (in err->errnum) when there is no copy anywhere.
 */
int store_place(struct manifest *m, const char *sha256, enum store_dir from,
		enum store_dir to, struct al_error *err);

/* SHA-256 of a buffer as 64 lowercase hex digits. */
void sha256_hex(const void *data, size_t len,
		char out[MANIFEST_SHA256_HEX + 1]);
/* SHA-256 and size of an open file. */
int sha256_fd(int fd, char out[MANIFEST_SHA256_HEX + 1], uint64_t *size);
bool is_sha256_hex(const char *s);

/* --------------------------------------------------------------- moves.c */

/* Not a state: a module row that retention deletes. */
#define MOVE_DELETE MANIFEST_STATE_COUNT

/* One row's move: module `module_id` from `from` to `to` (a state, or
 * MOVE_DELETE). Everything borrowed. */
struct move {
	int64_t module_id;
	const char *sha256;
	enum manifest_state from;
	int to;
	const char *reason;
};

/*
 * Journal `moves` (one commit), move the files, then commit the new states
 * with their events and clear the journal (a second commit). A failure
 * after the first commit that cannot be undone leaves the journal for the
 * next open to finish and marks the handle broken.
 */
int moves_apply(struct manifest *m, const struct move *moves, size_t n,
		struct al_error *err);

/* Journal a submission before its file is written, and drop it. */
int moves_stage_begin(struct manifest *m, const char *sha256, int64_t *id,
		      struct al_error *err);
/* Undo a submission that failed or a crash interrupted: its temp file,
 * staging/<sha256> unless a row needs it, then journal row `id`. */
int moves_stage_undo(struct manifest *m, int64_t id, const char *sha256,
		     struct al_error *err);
/* Whether some row (with the journal's pending moves counted as done)
 * needs content `sha256` in directory `d`. -1 on error. */
int moves_needed(struct manifest *m, enum store_dir d, const char *sha256,
		 struct al_error *err);

/* At a writer's open: finish every journaled transition and deletion,
 * roll back every journaled submission. */
int moves_repair(struct manifest *m, struct al_error *err);

/* ------------------------------------------------------------- modules.c */

/* Append an event for module `mod` going from `from` (NULL: it is new) to
 * `to` ("deleted" too). Inside the caller's transaction. */
int event_append(struct manifest *m, const struct manifest_module *mod,
		 const char *from, const char *to, const char *reason,
		 int64_t now_ms, struct al_error *err);

/* The columns every module query selects, in this order. */
#define MODULE_COLUMNS                                                         \
	"id, name, version, sha256, size, interpreter, policy_name, "         \
	"policy_hash, state, state_reason, submitted_uid, created_ms, "       \
	"updated_ms, owner_uid, owner_gid"
void module_from_row(sqlite3_stmt *s, struct manifest_module *out);
/* Module `id` without the "manifest: " prefix; ENOENT when unknown. */
int module_get(struct manifest *m, int64_t id, struct manifest_module *out,
	       struct al_error *err);

/* ---------------------------------------------------------------- runs.c */

/* At a writer's open: runs a dead writer left "running" -> "interrupted". */
int runs_mark_interrupted(struct manifest *m, struct al_error *err);

#endif
