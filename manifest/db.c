/*
 * Opening the manifest: the state directory, the writer's lock, the SQLite
 * connection and its settings; and the statement and error helpers the
 * other files use.
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
 *                      written with NORMAL (db_run_commit_light): they
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
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest/internal.h"

#define BUSY_TIMEOUT_MS 5000
#define DB_NAME "manifest.db"

/* ------------------------------------------------------------ statements */

sqlite3_stmt *db_stmt(struct manifest *m, const char *sql,
		      struct al_error *err)
{
	sqlite3_stmt *s = NULL;

	for (size_t i = 0; i < m->nstmts; i++)
		if (m->stmts[i].sql == sql)
			return m->stmts[i].stmt;
	if (m->nstmts == DB_STMT_CACHE) {
		al_error_set(err, 0, "statement cache full (%d): raise "
				     "DB_STMT_CACHE", DB_STMT_CACHE);
		return NULL;
	}
	if (sqlite3_prepare_v3(m->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s,
			       NULL) != SQLITE_OK) {
		db_error(m, err, "prepare \"%.40s...\"", sql);
		return NULL;
	}
	m->stmts[m->nstmts].sql = sql;
	m->stmts[m->nstmts].stmt = s;
	m->nstmts++;
	return s;
}

/* A reset statement no longer holds the read transaction it was in. */
void db_stmt_resetp(sqlite3_stmt **stmt)
{
	int saved = errno;

	if (*stmt != NULL) {
		sqlite3_reset(*stmt);
		sqlite3_clear_bindings(*stmt);
	}
	errno = saved;
}

static int errnum_of(struct manifest *m)
{
	switch (sqlite3_errcode(m->db) & 0xff) {
	case SQLITE_FULL: return ENOSPC;
	case SQLITE_READONLY: return EROFS;
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return EBUSY;
	case SQLITE_NOMEM: return ENOMEM;
	case SQLITE_PERM: return EPERM;
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN: return sqlite3_system_errno(m->db);
	default: return 0;
	}
}

int db_error(struct manifest *m, struct al_error *err, const char *fmt, ...)
{
	char what[AL_ERROR_MAX / 2];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(what, sizeof(what), fmt, ap) < 0)
		what[0] = '\0';
	va_end(ap);
	if (m->db == NULL)
		return al_error_set(err, ENOMEM, "%s: out of memory", what);
	return al_error_set(err, errnum_of(m), "%s: %s", what,
			    sqlite3_errmsg(m->db));
}

int db_step_done(struct manifest *m, sqlite3_stmt *s, const char *what,
		 struct al_error *err)
{
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return db_error(m, err, "%s", what);
	return 0;
}

int db_exec(struct manifest *m, const char *sql, struct al_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(m, sql, err);

	if (s == NULL)
		return -1;
	return db_step_done(m, s, sql, err);
}

int db_query_int(struct manifest *m, const char *sql, int64_t *out,
		 struct al_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = db_stmt(m, sql, err);

	if (s == NULL)
		return -1;
	if (sqlite3_step(s) != SQLITE_ROW)
		return db_error(m, err, "%s", sql);
	*out = sqlite3_column_int64(s, 0);
	return 0;
}

int db_begin(struct manifest *m, struct al_error *err)
{
	return db_exec(m, "BEGIN IMMEDIATE", err);
}

int db_commit(struct manifest *m, struct al_error *err)
{
	if (db_exec(m, "COMMIT", err) < 0) {
		db_rollback(m);
		return -1;
	}
	return 0;
}

void db_rollback(struct manifest *m)
{
	/* After some errors (a full disk, I/O) SQLite has rolled back
	 * already; a second ROLLBACK would only fail. */
	if (!sqlite3_get_autocommit(m->db))
		(void)db_exec(m, "ROLLBACK", NULL);
}

int db_writable(struct manifest *m, struct al_error *err)
{
	if (m->mode != MANIFEST_READ_WRITE)
		return al_error_set(err, EROFS,
				    "the manifest is open read-only");
	if (m->in_snapshot)
		return al_error_set(err, EINVAL,
				    "a snapshot is open: end it before "
				    "writing");
	if (m->broken[0] != '\0')
		return al_error_set(err, EIO,
				    "refused after an earlier failure (%s); "
				    "reopen the manifest to repair it",
				    m->broken);
	return 0;
}

int db_bind_viewer(sqlite3_stmt *s, int idx, const struct manifest_viewer *v)
{
	char gids[MANIFEST_VIEWER_GROUPS * 11 + 2] = ",";
	size_t used = 1;

	if (v == NULL)
		return 0; /* both NULL: every row */
	for (size_t i = 0; i < v->ngids && i < MANIFEST_VIEWER_GROUPS; i++)
		used += (size_t)snprintf(gids + used, sizeof(gids) - used,
					 "%u,", v->gids[i]);
	if (sqlite3_bind_int64(s, idx, v->uid) != SQLITE_OK)
		return -1;
	return sqlite3_bind_text(s, idx + 1, gids, -1, SQLITE_TRANSIENT) ==
			       SQLITE_OK
		       ? 0
		       : -1;
}

int db_bind_text(sqlite3_stmt *s, int idx, const char *text)
{
	if (text == NULL)
		return sqlite3_bind_null(s, idx);
	return sqlite3_bind_text(s, idx, text, -1, SQLITE_STATIC);
}

void db_column_copy(sqlite3_stmt *s, int col, char *buf, size_t len)
{
	const unsigned char *text = sqlite3_column_text(s, col);

	if (len == 0)
		return;
	if (text == NULL) {
		buf[0] = '\0';
		return;
	}
	text_cut((const char *)text, len - 1, buf);
}

const char *text_cut(const char *s, size_t max, char *buf)
{
	size_t n;

	if (s == NULL)
		return NULL;
	n = strnlen(s, max + 1);
	if (n > max) {
		n = max;
		/* back off over continuation bytes 10xxxxxx to a lead byte */
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
	return buf;
}

/* ------------------------------------------------------------------ open */

/* mkdir -p: the last component gets `mode`, parents 0755. */
static int make_dirs(const char *path, mode_t mode, struct al_error *err)
{
	_cleanup_free_ char *copy = strdup(path);
	char *slash;

	if (copy == NULL)
		return al_error_sys(err, ENOMEM, "%s", path);
	if (mkdir(path, mode) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return al_error_sys(err, errno, "create %s", path);
	slash = strrchr(copy, '/');
	if (slash == NULL || slash == copy)
		return al_error_sys(err, ENOENT, "create %s", path);
	*slash = '\0';
	if (make_dirs(copy, 0755, err) < 0)
		return -1;
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return al_error_sys(err, errno, "create %s", path);
	return 0;
}

/* Only one writer: the repair at open must never run beside a live writer's
 * half-done move. The kernel drops the lock when the process dies. */
static int take_writer_lock(struct manifest *m, struct al_error *err)
{
	if (flock(m->dir_fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno == EWOULDBLOCK)
		return al_error_set(err, EBUSY,
				    "another process (airlockd?) has %s open "
				    "read-write; there is one writer at a time",
				    m->state_dir);
	return al_error_sys(err, errno, "lock %s", m->state_dir);
}

/* manifest.db created by us first, so that it (and the -wal and -shm
 * SQLite gives the same mode) is 0640, not the umask's choice. */
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

static int db_connect(struct manifest *m, struct al_error *err)
{
	int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;

	flags |= m->mode == MANIFEST_READ_WRITE ? SQLITE_OPEN_READWRITE
						: SQLITE_OPEN_READONLY;
	if (sqlite3_open_v2(m->db_path, &m->db, flags, NULL) != SQLITE_OK)
		return db_error(m, err, "%s", m->db_path);
	if (m->mode == MANIFEST_READ_WRITE &&
	    sqlite3_db_readonly(m->db, "main") == 1)
		return al_error_set(err, EROFS, "%s: cannot be opened for "
						"writing", m->db_path);
	if (sqlite3_busy_timeout(m->db, BUSY_TIMEOUT_MS) != SQLITE_OK)
		return db_error(m, err, "%s: busy timeout", m->db_path);
	return 0;
}

/* The writer's settings (the journal mode is stored in the file; readers
 * find it there). */
static int writer_settings(struct manifest *m, struct al_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *s = NULL;
	const unsigned char *mode;
	int persist = 1;

	s = db_stmt(m, "PRAGMA journal_mode = WAL", err);
	if (s == NULL)
		return -1;
	if (sqlite3_step(s) != SQLITE_ROW)
		return db_error(m, err, "%s: journal_mode", m->db_path);
	mode = sqlite3_column_text(s, 0);
	if (mode == NULL || strcmp((const char *)mode, "wal") != 0)
		return al_error_set(err, 0, "%s: cannot use WAL (journal mode "
					    "stays \"%s\")",
				    m->db_path, mode ? (const char *)mode : "");
	if (db_exec(m, "PRAGMA synchronous = FULL", err) < 0 ||
	    db_exec(m, "PRAGMA journal_size_limit = 4194304", err) < 0)
		return -1;
	if (sqlite3_file_control(m->db, "main", SQLITE_FCNTL_PERSIST_WAL,
				 &persist) != SQLITE_OK)
		return db_error(m, err, "%s: persistent WAL", m->db_path);
	return 0;
}

/*
 * The writer acts as root on what the state directory holds: a directory
 * another user created (or may write), or a subdirectory or database file
 * of theirs, would let them read every module and swap in a trojan. Every
 * part must be root's (or the writer's own uid's) and not group/other-
 * writable, checked after the directories are made (so a pre-created one
 * is caught) and before anything is read from them.
 */
static int check_owned(struct manifest *m, struct al_error *err)
{
	static const char *const files[] = { DB_NAME, DB_NAME "-wal",
					     DB_NAME "-shm" };
	struct stat st;
	char what[PATH_MAX + 16];

	for (int d = 0; d < STORE_DIRS; d++) {
		snprintf(what, sizeof(what), "%s/%s", m->state_dir,
			 store_dir_name(d));
		if (fstat(m->store_fd[d], &st) < 0)
			return al_error_sys(err, errno, "%s", what);
		if (al_stat_trusted(what, &st, geteuid(), err) < 0)
			return -1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(what, sizeof(what), "%s/%s", m->state_dir, files[i]);
		if (fstatat(m->dir_fd, files[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			return al_error_sys(err, errno, "%s", what);
		}
		if (al_stat_trusted(what, &st, geteuid(), err) < 0)
			return -1;
	}
	return 0;
}

static int open_read_write(struct manifest *m, struct al_error *err)
{
	if (make_dirs(m->state_dir, 0750, err) < 0)
		return -1;
	if (al_path_trusted(m->state_dir, geteuid(), err) < 0)
		return al_error_prefix(err, "state directory %s refused",
				       m->state_dir);
	m->dir_fd = open(m->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m->dir_fd < 0)
		return al_error_sys(err, errno, "%s", m->state_dir);
	/* EROFS or EACCES here reads better than SQLite's message later */
	if (faccessat(m->dir_fd, ".", W_OK, AT_EACCESS) < 0)
		return al_error_sys(err, errno,
				    "state directory %s is not writable",
				    m->state_dir);
	if (take_writer_lock(m, err) < 0 || store_open(m, true, err) < 0)
		return -1;
	if (check_owned(m, err) < 0)
		return al_error_prefix(err, "state directory %s refused",
				       m->state_dir);
	if (create_db_file(m, err) < 0 || db_connect(m, err) < 0 ||
	    db_exec(m, "PRAGMA foreign_keys = ON", err) < 0)
		return -1;
	/* the schema check comes first: it is what tells a corrupt or
	 * foreign file, before any setting tries to write to it; the
	 * migrations come after the settings, to run in WAL and FULL */
	if (schema_open(m, err) < 0 || writer_settings(m, err) < 0 ||
	    schema_migrate(m, err) < 0)
		return -1;
	if (moves_repair(m, err) < 0)
		return al_error_prefix(err, "repair");
	if (runs_mark_interrupted(m, err) < 0)
		return -1;
	return 0;
}

static int open_read_only(struct manifest *m, struct al_error *err)
{
	struct stat st;

	m->dir_fd = open(m->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m->dir_fd < 0)
		return al_error_sys(err, errno, "state directory %s",
				    m->state_dir);
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
	if (store_open(m, false, err) < 0 || db_connect(m, err) < 0 ||
	    db_exec(m, "PRAGMA foreign_keys = ON", err) < 0)
		return -1;
	return schema_open(m, err);
}

struct manifest *manifest_open(const char *state_dir, enum manifest_mode mode,
			       struct al_error *err)
{
	struct manifest *m = calloc(1, sizeof(*m));
	int rc;

	if (m == NULL) {
		al_error_sys(err, ENOMEM, "manifest: open %s", state_dir);
		return NULL;
	}
	m->mode = mode;
	m->dir_fd = -1;
	for (int d = 0; d < STORE_DIRS; d++)
		m->store_fd[d] = -1;
	m->state_dir = strdup(state_dir);
	if (m->state_dir == NULL ||
	    asprintf(&m->db_path, "%s/%s", state_dir, DB_NAME) < 0) {
		m->db_path = NULL;
		al_error_sys(err, ENOMEM, "manifest: open %s", state_dir);
		manifest_close(m);
		return NULL;
	}
	rc = mode == MANIFEST_READ_WRITE ? open_read_write(m, err)
					 : open_read_only(m, err);
	if (rc < 0) {
		al_error_prefix(err, "manifest");
		manifest_close(m);
		return NULL;
	}
	return m;
}

void manifest_close(struct manifest *m)
{
	if (m == NULL)
		return;
	if (m->db != NULL) {
		if (m->in_snapshot)
			db_rollback(m);
		for (size_t i = 0; i < m->nstmts; i++)
			sqlite3_finalize(m->stmts[i].stmt);
		/* the last connection checkpoints the WAL into the file */
		sqlite3_close(m->db);
	}
	store_close(m);
	if (m->dir_fd >= 0)
		close(m->dir_fd); /* drops the writer's lock */
	free(m->state_dir);
	free(m->db_path);
	free(m);
}

const char *manifest_state_dir(const struct manifest *m)
{
	return m->state_dir;
}

int manifest_schema_version(const struct manifest *m)
{
	return m->schema;
}

int db_sync_light(struct manifest *m, bool light, struct al_error *err)
{
	/* only between transactions: inside one the setting cannot change */
	if (!sqlite3_get_autocommit(m->db))
		return 0;
	return db_exec(m, light ? "PRAGMA synchronous = NORMAL" :
				  "PRAGMA synchronous = FULL",
		       err);
}
