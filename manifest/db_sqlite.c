/*
 * The SQLite backend, the embedded default: STATE_DIR/manifest.db, its
 * settings, and what only SQLite has (PRAGMAs, the backup API).
 *
 * Settings, and why:
 *   journal_mode=WAL   readers never block the writer nor it them, and a
 *                      commit is one append to the log;
 *   synchronous=FULL   every commit that changes a module's state or moves
 *                      a file is fsynced. NORMAL would survive a process
 *                      crash too, but after a power loss it may drop the
 *                      last commits, and those include the move journal: a
 *                      file already renamed (and its directory fsynced)
 *                      behind a row that forgot the move would break
 *                      "files and rows agree". Run records alone are
 *                      written with NORMAL (db_sync_light): they
 *                      survive any crash of the process, and a power loss
 *                      can only drop the runs since the last fsync (the
 *                      next state change's or checkpoint's), which touches
 *                      no file and no module state. It took two fsyncs out
 *                      of every run the supervisor records, each of which
 *                      stalled its event loop;
 *   foreign_keys=ON    runs cannot outlive their module row;
 *   busy_timeout       a reader that meets a checkpoint or a WAL recovery
 *                      waits (up to 5 s) instead of failing;
 *   persistent WAL     the -wal and -shm files stay after close, so a
 *                      reader can open the database on a read-only file
 *                      system or without write access to the directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest/internal.h"

#define BUSY_TIMEOUT_MS 5000
#define DB_NAME "manifest.db"
#define APPLICATION_ID 1095912523 /* 'ARLK', set by migration 1 */

/* manifest/schema_sql.S: schema.sql, NUL-terminated. */
extern const char manifest_schema_sql[];

#define DB(m) ((sqlite3 *)(m)->db)

struct sq_stmt {
	struct db_stmt base;
	sqlite3_stmt *s;
};

#define SQ(st) (((struct sq_stmt *)(st))->s)

/* ------------------------------------------------------------ statements */

static struct db_stmt *sq_prepare(struct manifest *m, const char *sql)
{
	struct sq_stmt *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	if (sqlite3_prepare_v3(DB(m), sql, -1, SQLITE_PREPARE_PERSISTENT,
			       &st->s, NULL) != SQLITE_OK) {
		free(st);
		return NULL;
	}
	st->base.m = m;
	return &st->base;
}

static void sq_finalize(struct db_stmt *s)
{
	sqlite3_finalize(SQ(s));
	free(s);
}

static void sq_reset(struct db_stmt *s)
{
	sqlite3_reset(SQ(s));
	sqlite3_clear_bindings(SQ(s));
}

static int ok(int rc)
{
	return rc == SQLITE_OK ? 0 : -1;
}

static int sq_bind_null(struct db_stmt *s, int idx)
{
	return ok(sqlite3_bind_null(SQ(s), idx));
}

static int sq_bind_int64(struct db_stmt *s, int idx, int64_t v)
{
	return ok(sqlite3_bind_int64(SQ(s), idx, v));
}

static int sq_bind_double(struct db_stmt *s, int idx, double v)
{
	return ok(sqlite3_bind_double(SQ(s), idx, v));
}

static int sq_bind_text(struct db_stmt *s, int idx, const char *text)
{
	/* copied: callers bind buffers that end before the step */
	return ok(sqlite3_bind_text(SQ(s), idx, text, -1, SQLITE_TRANSIENT));
}

static int sq_bind_blob(struct db_stmt *s, int idx, const void *data,
			size_t len)
{
	return ok(sqlite3_bind_blob64(SQ(s), idx, data, len, SQLITE_TRANSIENT));
}

static int sq_step(struct db_stmt *s)
{
	int rc = sqlite3_step(SQ(s));

	if (rc == SQLITE_ROW)
		return DB_ROW;
	return rc == SQLITE_DONE ? DB_DONE : -1;
}

static bool sq_column_null(struct db_stmt *s, int col)
{
	return sqlite3_column_type(SQ(s), col) == SQLITE_NULL;
}

static int64_t sq_column_int64(struct db_stmt *s, int col)
{
	return sqlite3_column_int64(SQ(s), col);
}

static double sq_column_double(struct db_stmt *s, int col)
{
	return sqlite3_column_double(SQ(s), col);
}

static const char *sq_column_text(struct db_stmt *s, int col)
{
	return (const char *)sqlite3_column_text(SQ(s), col);
}

static const void *sq_column_blob(struct db_stmt *s, int col, size_t *len)
{
	const void *blob = sqlite3_column_blob(SQ(s), col);

	*len = (size_t)sqlite3_column_bytes(SQ(s), col);
	return blob;
}

static int64_t sq_changes(struct db_stmt *s)
{
	return sqlite3_changes64(DB(s->m));
}

static int sq_exec_script(struct manifest *m, const char *sql, size_t len,
			  struct al_error *err)
{
	const char *p = sql, *end = sql + len, *tail;
	sqlite3_stmt *s;
	int rc;

	while (p < end) {
		if (sqlite3_prepare_v2(DB(m), p, (int)(end - p), &s, &tail) !=
		    SQLITE_OK)
			return db_error(m, err, "prepare");
		if (s == NULL) /* only comments and blanks were left */
			break;
		while ((rc = sqlite3_step(s)) == SQLITE_ROW)
			;
		sqlite3_finalize(s);
		if (rc != SQLITE_DONE)
			return db_error(m, err, "run");
		p = tail;
	}
	return 0;
}

static const char *sq_errmsg(struct manifest *m)
{
	return sqlite3_errmsg(DB(m));
}

static int sq_errnum(struct manifest *m)
{
	switch (sqlite3_errcode(DB(m)) & 0xff) {
	case SQLITE_FULL: return ENOSPC;
	case SQLITE_READONLY: return EROFS;
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return EBUSY;
	case SQLITE_NOMEM: return ENOMEM;
	case SQLITE_PERM: return EPERM;
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN: return sqlite3_system_errno(DB(m));
	default: return 0;
	}
}

static bool sq_in_transaction(struct manifest *m)
{
	return !sqlite3_get_autocommit(DB(m));
}

static int sq_sync_light(struct manifest *m, bool light, struct al_error *err)
{
	/* only between transactions: inside one the setting cannot change */
	if (!sqlite3_get_autocommit(DB(m)))
		return 0;
	return db_exec(m,
		       light ? "PRAGMA synchronous = NORMAL"
			     : "PRAGMA synchronous = FULL",
		       err);
}

/* --------------------------------------------------------------- open */

static int create_db_file(struct manifest *m, struct al_error *err)
{
	int fd = openat(m->dir_fd, DB_NAME,
			O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);

	if (fd < 0)
		return al_error_sys(err, errno, "%s", m->db_path);
	close(fd);
	if (fsync(m->dir_fd) < 0)
		return al_error_sys(err, errno, "fsync %s", m->state_dir);
	return 0;
}
static int open_file(struct manifest *m, struct al_error *err)
{
	int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;

	flags |= m->mode == MANIFEST_READ_WRITE ? SQLITE_OPEN_READWRITE
						: SQLITE_OPEN_READONLY;
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(m->db_path, &db, flags, NULL);

	m->db = db; /* even a failed open has one, for its message */
	if (rc != SQLITE_OK)
		return db_error(m, err, "%s", m->db_path);
	if (m->mode == MANIFEST_READ_WRITE &&
	    sqlite3_db_readonly(DB(m), "main") == 1)
		return al_error_set(err, EROFS,
				    "%s: cannot be opened for "
				    "writing",
				    m->db_path);
	if (sqlite3_busy_timeout(DB(m), BUSY_TIMEOUT_MS) != SQLITE_OK)
		return db_error(m, err, "%s: busy timeout", m->db_path);
	return 0;
}
static int sq_writer_settings(struct manifest *m, struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = NULL;
	const unsigned char *mode;
	int persist = 1;

	s = db_stmt(m, "PRAGMA journal_mode = WAL", err);
	if (s == NULL)
		return -1;
	if (db_step(s) != DB_ROW)
		return db_error(m, err, "%s: journal_mode", m->db_path);
	mode = (const unsigned char *)db_column_text(s, 0);
	if (mode == NULL || strcmp((const char *)mode, "wal") != 0)
		return al_error_set(err, 0,
				    "%s: cannot use WAL (journal mode "
				    "stays \"%s\")",
				    m->db_path, mode ? (const char *)mode : "");
	if (db_exec(m, "PRAGMA synchronous = FULL", err) < 0 ||
	    db_exec(m, "PRAGMA journal_size_limit = 4194304", err) < 0)
		return -1;
	if (sqlite3_file_control(DB(m), "main", SQLITE_FCNTL_PERSIST_WAL,
				 &persist) != SQLITE_OK)
		return db_error(m, err, "%s: persistent WAL", m->db_path);
	return 0;
}

static int sq_connect(struct manifest *m, struct al_error *err)
{
	struct stat st;

	if (m->mode == MANIFEST_READ_WRITE)
		return create_db_file(m, err) < 0 || open_file(m, err) < 0 ||
				       db_exec(m, "PRAGMA foreign_keys = ON",
					       err) < 0
			       ? -1
			       : 0;
	if (fstatat(m->dir_fd, DB_NAME, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return al_error_set(err, ENOENT,
					    "%s: no manifest here yet (the "
					    "supervisor creates it on its "
					    "first start)",
					    m->db_path);
		return al_error_sys(err, errno, "%s", m->db_path);
	}
	if (!S_ISREG(st.st_mode))
		return al_error_set(err, EINVAL, "%s: not a regular file",
				    m->db_path);
	if (open_file(m, err) < 0 ||
	    db_exec(m, "PRAGMA foreign_keys = ON", err) < 0)
		return -1;
	return 0;
}

static void sq_disconnect(struct manifest *m)
{
	/* the last connection checkpoints the WAL into the file */
	sqlite3_close(DB(m));
	m->db = NULL;
}

/* ------------------------------------------------------------ schema */

/* The first read of the file: where a corrupt one shows. */
static int sq_schema_header(struct manifest *m, int64_t *app_id,
			    int64_t *version, int64_t *objects,
			    struct al_error *err)
{
	int code;

	if (db_query_int(m, "PRAGMA application_id", app_id, err) == 0 &&
	    db_query_int(m, "PRAGMA user_version", version, err) == 0 &&
	    db_query_int(m, "SELECT count(*) FROM sqlite_schema", objects,
			 err) == 0)
		return 0;
	code = sqlite3_errcode(DB(m)) & 0xff;
	if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT)
		return al_error_set(err, EILSEQ,
				    "%s: not a usable SQLite database (%s): "
				    "the file is corrupt or is something "
				    "else; move it aside and restore a backup "
				    "(airlock manifest backup)",
				    m->db_path, sqlite3_errmsg(DB(m)));
	return al_error_prefix(err, "%s", m->db_path);
}

static int sq_schema_version(struct manifest *m, int64_t *version,
			     struct al_error *err)
{
	return db_query_int(m, "PRAGMA user_version", version, err);
}

static int sq_write_check(struct manifest *m, struct al_error *err)
{
	char sql[64];

	/* Setting the id always dirties the header page, even to its own
	 * value, so the commit writes a frame; an empty transaction would
	 * write nothing and prove nothing. */
	snprintf(sql, sizeof(sql), "PRAGMA application_id = %d",
		 APPLICATION_ID);
	if (db_begin(m, err) < 0)
		return -1;
	if (sq_exec_script(m, sql, strlen(sql), err) < 0) {
		db_rollback(m);
		return -1;
	}
	return db_commit(m, err);
}

static int sq_data_version(struct manifest *m, int64_t *out,
			   struct al_error *err)
{
	return db_query_int(m, "PRAGMA data_version", out, err);
}

static int pragma_rows(struct manifest *m, const char *sql, bool fk,
		       void (*fn)(const char *message, void *arg), void *arg,
		       struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, sql, err);
	char message[512];
	int rc;

	if (s == NULL)
		return -1;
	while ((rc = db_step(s)) == DB_ROW) {
		const char *text = db_column_text(s, 0);
		if (!fk && text != NULL && strcmp(text, "ok") == 0)
			continue;
		if (fk)
			snprintf(message, sizeof(message),
				 "%s row %lld refers to a missing %s row",
				 text ? text : "?",
				 (long long)db_column_int64(s, 1),
				 db_column_text(s, 2) ? db_column_text(s, 2)
						      : "?");
		else
			snprintf(message, sizeof(message), "%s",
				 text ? text : "?");
		fn(message, arg);
	}
	if (rc < 0)
		return db_error(m, err, "%s", sql);
	return 0;
}

static int sq_integrity(struct manifest *m,
			void (*fn)(const char *message, void *arg), void *arg,
			struct al_error *err)
{
	if (pragma_rows(m, "PRAGMA integrity_check", false, fn, arg, err) < 0)
		return -1;
	return pragma_rows(m, "PRAGMA foreign_key_check", true, fn, arg, err);
}

/* --------------------------------------------------------------- backup */

static int fsync_path(const char *path, int flags)
{
	_cleanup_close_ int fd = open(path, flags | O_CLOEXEC);

	if (fd < 0)
		return -1;
	return fsync(fd);
}

/* Copy every page in one step: one read transaction, one consistent
 * snapshot, and a writer is never held up (WAL). */
static int copy_db(struct manifest *m, const char *tmp, struct al_error *err)
{
	sqlite3 *dst = NULL;
	sqlite3_backup *b;
	int rc;

	if (sqlite3_open_v2(tmp, &dst,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		rc = al_error_set(err, 0, "open %s: %s", tmp,
				  dst ? sqlite3_errmsg(dst) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(dst, 5000);
	b = sqlite3_backup_init(dst, "main", DB(m), "main");
	if (b == NULL) {
		rc = al_error_set(err, 0, "%s", sqlite3_errmsg(dst));
		goto out;
	}
	do {
		rc = sqlite3_backup_step(b, -1);
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
			sqlite3_sleep(20);
	} while (rc == SQLITE_BUSY || rc == SQLITE_LOCKED || rc == SQLITE_OK);
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		rc = al_error_set(err, rc == SQLITE_FULL ? ENOSPC : 0, "%s",
				  sqlite3_errstr(rc));
		goto out;
	}
	/* one self-contained file: no -wal beside the copy */
	rc = sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL,
			  NULL) == SQLITE_OK
		     ? 0
		     : al_error_set(err, 0, "%s", sqlite3_errmsg(dst));
out:
	if (sqlite3_close(dst) != SQLITE_OK && rc == 0)
		rc = al_error_set(err, 0, "close %s", tmp);
	return rc;
}

static int sq_backup(struct manifest *m, const char *path, struct al_error *err)
{
	_cleanup_free_ char *tmp = NULL, *dir_copy = NULL;
	int fd;

	if (asprintf(&tmp, "%s.tmp-XXXXXX", path) < 0) {
		tmp = NULL;
		return al_error_sys(err, ENOMEM, "backup");
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return al_error_sys(err, errno, "create %s", tmp);
	if (fchmod(fd, 0640) < 0) {
		al_error_sys(err, errno, "chmod %s", tmp);
		close(fd);
		goto fail;
	}
	close(fd);
	if (copy_db(m, tmp, err) < 0)
		goto fail;
	if (fsync_path(tmp, O_RDONLY) < 0) {
		al_error_sys(err, errno, "fsync %s", tmp);
		goto fail;
	}
	if (rename(tmp, path) < 0) {
		al_error_sys(err, errno, "rename %s to %s", tmp, path);
		goto fail;
	}
	dir_copy = strdup(path);
	if (dir_copy == NULL ||
	    fsync_path(dirname(dir_copy), O_RDONLY | O_DIRECTORY) < 0)
		return al_error_sys(err, errno ? errno : ENOMEM,
				    "fsync the directory of %s", path);
	return 0;
fail:
	(void)unlink(tmp);
	return -1;
}

static int sq_url_check(const char *url, struct al_error *err)
{
	return 0; /* the caller has made it the state directory's file */
}

const struct db_ops db_sqlite_ops = {
	.name = "sqlite",
	.schema_sql = manifest_schema_sql,
	.connect = sq_connect,
	.writer_settings = sq_writer_settings,
	.disconnect = sq_disconnect,
	.prepare = sq_prepare,
	.finalize = sq_finalize,
	.reset = sq_reset,
	.bind_null = sq_bind_null,
	.bind_int64 = sq_bind_int64,
	.bind_double = sq_bind_double,
	.bind_text = sq_bind_text,
	.bind_blob = sq_bind_blob,
	.step = sq_step,
	.column_null = sq_column_null,
	.column_int64 = sq_column_int64,
	.column_double = sq_column_double,
	.column_text = sq_column_text,
	.column_blob = sq_column_blob,
	.changes = sq_changes,
	.exec_script = sq_exec_script,
	.errmsg = sq_errmsg,
	.errnum = sq_errnum,
	.in_transaction = sq_in_transaction,
	.sql_begin = "BEGIN IMMEDIATE",
	.sql_snapshot = "BEGIN DEFERRED",
	.sync_light = sq_sync_light,
	.schema_header = sq_schema_header,
	.schema_version = sq_schema_version,
	.write_check = sq_write_check,
	.data_version = sq_data_version,
	.integrity = sq_integrity,
	.backup = sq_backup,
	.url_check = sq_url_check,
};
