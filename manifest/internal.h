/*
 * manifest/: what the files of this folder share. Private: nothing outside
 * manifest/ includes it.
 *
 *   db.c         open/close, the layout, the writer's lock, statements and
 *                errors over the backend table
 *   db_sqlite.c  the SQLite backend (the embedded default): the file, WAL,
 *                pragmas, integrity check, backup
 *   db_pg.c      the PostgreSQL backend (libpq, DATABASE_URL): linked into
 *                airlockd, airlock-pg and the tests, not the static CLI
 *   schema.c     numbered migrations from schema.sql (embedded by schema_sql.S)
 *   store.c      the content-addressed files: write, place, hash
 *   moves.c      the move journal: intent, file moves, commit, repair
 *   modules.c    submissions and the state machine
 *   queries.c    module and event queries, snapshots, statistics
 *   runs.c       runs: begin, finish, record, query
 *   output.c     what a run printed, kept for result/wait (zlib)
 *   retention.c  deleting what is old
 *   check.c      integrity and files against rows; backup
 *   time.c       timestamps in and out
 */
#ifndef AIRLOCK_MANIFEST_INTERNAL_H
#define AIRLOCK_MANIFEST_INTERNAL_H

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

/* What db_step() says. */
#define DB_ROW 1
#define DB_DONE 0

/*
 * A prepared statement of the open backend. Each backend's own statement
 * begins with this; the statements of one handle belong to it.
 */
struct db_stmt {
	struct manifest *m;
};

/*
 * A manifest backend: the few things SQL text cannot say the same way in
 * every dialect. One table per backend, chosen by manifest_open_at() from
 * the URL; everything above db.c speaks through it and never asks which
 * backend it has. SQL written for the manifest uses ?N parameters (the
 * PostgreSQL backend numbers them $N) and what both dialects accept; the
 * schema is one file of numbered migrations per dialect.
 */
struct db_ops {
	const char *name;       /* "sqlite", "postgresql" */
	const char *schema_sql; /* the migrations in this dialect */
	/* several hosts may write it (a server): content is kept in it */
	bool shared;
	/* Connect (m->mode says how); m->where names it in messages. */
	int (*connect)(struct manifest *m, struct al_error *err);
	/* The writer's settings, after the schema check, before the
	 * migrations. */
	int (*writer_settings)(struct manifest *m, struct al_error *err);
	void (*disconnect)(struct manifest *m);

	struct db_stmt *(*prepare)(struct manifest *m, const char *sql);
	void (*finalize)(struct db_stmt *s);
	void (*reset)(struct db_stmt *s); /* results and bindings go */
	int (*bind_null)(struct db_stmt *s, int idx);
	int (*bind_int64)(struct db_stmt *s, int idx, int64_t v);
	int (*bind_double)(struct db_stmt *s, int idx, double v);
	int (*bind_text)(struct db_stmt *s, int idx, const char *text);
	int (*bind_blob)(struct db_stmt *s, int idx, const void *data,
			 size_t len);
	int (*step)(struct db_stmt *s); /* DB_ROW, DB_DONE, or -1 */
	bool (*column_null)(struct db_stmt *s, int col);
	int64_t (*column_int64)(struct db_stmt *s, int col);
	double (*column_double)(struct db_stmt *s, int col);
	const char *(*column_text)(struct db_stmt *s, int col); /* or NULL */
	const void *(*column_blob)(struct db_stmt *s, int col, size_t *len);
	/* Rows the last step of `s` changed. */
	int64_t (*changes)(struct db_stmt *s);

	/* Several statements of static SQL, no rows (a migration block). */
	int (*exec_script)(struct manifest *m, const char *sql, size_t len,
			   struct al_error *err);
	/* The last failure, in words, and as an errno where one fits. */
	const char *(*errmsg)(struct manifest *m);
	int (*errnum)(struct manifest *m);
	bool (*in_transaction)(struct manifest *m);
	const char *sql_begin;    /* a write transaction */
	const char *sql_snapshot; /* a read-only snapshot */
	/* synchronous=NORMAL for one run record (db_sqlite.c says why) */
	int (*sync_light)(struct manifest *m, bool light, struct al_error *err);

	/* Who made this database: the application id (0 with no objects
	 * at all: a new one), the schema version, how many objects. */
	int (*schema_header)(struct manifest *m, int64_t *app_id,
			     int64_t *version, int64_t *objects,
			     struct al_error *err);
	/* The version a migration block left, inside its transaction. */
	int (*schema_version)(struct manifest *m, int64_t *version,
			      struct al_error *err);
	/* A write that reaches the disk and changes nothing. */
	int (*write_check)(struct manifest *m, struct al_error *err);
	/* A number that moves with every commit that may move a file. */
	int (*data_version)(struct manifest *m, int64_t *out,
			    struct al_error *err);
	/* The database's own consistency: each finding to fn. */
	int (*integrity)(struct manifest *m,
			 void (*fn)(const char *message, void *arg), void *arg,
			 struct al_error *err);
	int (*backup)(struct manifest *m, const char *path,
		      struct al_error *err);
	/* Is `url` one this backend can connect to (parsed, not tried)? */
	int (*url_check)(const char *url, struct al_error *err);
	/* Did the last failure lose the connection (the server restarted or
	 * is out of reach)? NULL: a backend that cannot lose one (SQLite). */
	bool (*lost)(struct manifest *m);
};

extern const struct db_ops db_sqlite_ops;
/* Weak: present only in the binaries that link db_pg.c (the Makefile
 * says which); NULL elsewhere. */
extern const struct db_ops db_pg_ops __attribute__((weak));

struct manifest {
	const struct db_ops *ops;
	void *db; /* the backend's connection */
	enum manifest_mode mode;
	char *state_dir;
	char *db_path; /* the SQLite file; NULL for a server */
	char *url;     /* a server's URL: secret (may hold a password) */
	char *where;   /* what messages call the database: the file, or the
			  URL without its password */
	/* this writer's name among the hosts of the database (AIRLOCK_HOST):
	 * its runs and journal rows carry it */
	char host[MANIFEST_HOST_MAX + 1];
	int dir_fd;               /* the state directory; a writer flocks it */
	int store_fd[STORE_DIRS]; /* -1 when missing (read-only handles) */
	int schema;               /* the schema version once open */
	bool in_snapshot;
	/* Set when a file move failed half-way and could not be finished:
	 * later writes are refused until a reopen repairs it. */
	char broken[AL_ERROR_MAX];
	/* Set when the connection to the server was lost, to the server's
	 * message: statements fail at once until manifest_reconnect(). */
	char unavailable[AL_ERROR_MAX / 2];
	size_t nstmts;
	struct {
		const char *sql; /* the address identifies the statement */
		struct db_stmt *stmt;
	} stmts[DB_STMT_CACHE];
};

/* ------------------------------------------------------------------ db.c */

/*
 * The prepared statement for `sql`, which must be a string with static
 * storage (its address is the cache key). Borrowed from the handle; reset
 * it after use, which _cleanup_stmt_ does.
 */
struct db_stmt *db_stmt(struct manifest *m, const char *sql,
			struct al_error *err);
void db_stmt_resetp(struct db_stmt **stmt);
#define _cleanup_stmt_ __attribute__((cleanup(db_stmt_resetp)))

/* "<what>: <the backend's message>", with errnum from the failure where
 * there is one (ENOSPC for a full disk, the OS error of an I/O error). */
int db_error(struct manifest *m, struct al_error *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The statement calls, through the handle's backend. Binding to a
 * statement cannot fail but for memory, which db_step() then reports. */
int db_step(struct db_stmt *s);
void db_bind_null(struct db_stmt *s, int idx);
void db_bind_int64(struct db_stmt *s, int idx, int64_t v);
void db_bind_double(struct db_stmt *s, int idx, double v);
void db_bind_blob(struct db_stmt *s, int idx, const void *data, size_t len);
bool db_column_null(struct db_stmt *s, int col);
int64_t db_column_int64(struct db_stmt *s, int col);
double db_column_double(struct db_stmt *s, int col);
const char *db_column_text(struct db_stmt *s, int col);
const void *db_column_blob(struct db_stmt *s, int col, size_t *len);
int64_t db_changes(struct db_stmt *s);

/* Step a statement that returns no rows. */
int db_step_done(struct manifest *m, struct db_stmt *s, const char *what,
		 struct al_error *err);
/* Run one statement of static SQL that returns no rows. */
int db_exec(struct manifest *m, const char *sql, struct al_error *err);
/* synchronous=NORMAL (light) for a run record's commit, FULL again after
 * it (db_sqlite.c says why); nothing inside an open transaction. */
int db_sync_light(struct manifest *m, bool light, struct al_error *err);
/* One integer from a statement of static SQL (a count). */
int db_query_int(struct manifest *m, const char *sql, int64_t *out,
		 struct al_error *err);
/* Step an INSERT ... RETURNING id: *id is the new row's, 0 when the
 * statement inserted nothing (its WHERE said no). */
int db_insert_id(struct manifest *m, struct db_stmt *s, const char *what,
		 int64_t *id, struct al_error *err);

/* A write transaction (SQLite: BEGIN IMMEDIATE, the writer's lock from
 * the start, so a commit never waits on a reader), COMMIT, ROLLBACK (only
 * if a transaction is open), and a read-only snapshot. */
int db_begin(struct manifest *m, struct al_error *err);
int db_commit(struct manifest *m, struct al_error *err);
void db_rollback(struct manifest *m);
int db_begin_snapshot(struct manifest *m, struct al_error *err);

/* Fails unless the handle may write now: read-write, not broken, not in a
 * snapshot. */
int db_writable(struct manifest *m, struct al_error *err);

/* Bind a string or NULL. */
int db_bind_text(struct db_stmt *s, int idx, const char *text);
/* A viewer as two parameters: idx its uid (NULL: no viewer, every row),
 * idx + 1 its groups as ",g1,g2," for the VIEWER_SEES() test. */
int db_bind_viewer(struct db_stmt *s, int idx, const struct manifest_viewer *v);
/* SQL: may viewer ?U (groups ?G) see rows of a module whose owner columns
 * are OWNER_UID and OWNER_GID? (instr() is SQLite's; the PostgreSQL
 * schema defines it. A parameter tested for NULL says its type: a server
 * cannot infer it from IS NULL.) */
#define VIEWER_SEES(U, G, OWNER_UID, OWNER_GID)                                \
	"(CAST(" U " AS BIGINT) IS NULL OR " OWNER_UID " = " U                 \
	" OR instr(CAST(" G " AS TEXT), ',' || " OWNER_GID " || ',') > 0)"
/* Copy a text column into buf (cut to fit; "" for NULL). */
void db_column_copy(struct db_stmt *s, int col, char *buf, size_t len);

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
/* On a shared database: the content into the contents table (once per
 * SHA-256), in the caller's transaction. */
int store_share(struct manifest *m, const char *sha256, const void *content,
		size_t len, struct al_error *err);
/* A copy of `sha256` in <to>/: there already, linked from another
 * directory, or (shared database) fetched from the contents table and
 * checked. ENOENT when there is none anywhere. */
int store_ensure(struct manifest *m, const char *sha256, enum store_dir to,
		 struct al_error *err);
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
 * MOVE_DELETE); `cause` says why when `to` is archived. Everything
 * borrowed. */
struct move {
	int64_t module_id;
	const char *sha256;
	enum manifest_state from;
	int to;
	const char *reason;
	enum manifest_cause cause;
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
	"id, name, version, sha256, size, interpreter, policy_name, "          \
	"policy_hash, state, state_reason, submitted_uid, created_ms, "        \
	"updated_ms, owner_uid, owner_gid, entry, build, archive_cause"
void module_from_row(struct db_stmt *s, struct manifest_module *out);
/* Module `id` without the "manifest: " prefix; ENOENT when unknown. */
int module_get(struct manifest *m, int64_t id, struct manifest_module *out,
	       struct al_error *err);

/* ---------------------------------------------------------------- runs.c */

/* At a writer's open: runs a dead writer left "running" -> "interrupted". */
int runs_mark_interrupted(struct manifest *m, struct al_error *err);

#endif
