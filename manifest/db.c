/*
 * Opening the manifest: the state directory, the writer's lock, the
 * backend's connection (db_sqlite.c, db_pg.c); and the statement and error
 * helpers the other files use, which call the backend through its table.
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

#define DB_NAME "manifest.db"

/* ------------------------------------------------------------ statements */

struct db_stmt *db_stmt(struct manifest *m, const char *sql,
			struct al_error *err)
{
	struct db_stmt *s;

	if (m->unavailable[0] != '\0') {
		al_error_set(err, ENOTCONN, "%s is unreachable (%s)", m->where,
			     m->unavailable);
		return NULL;
	}
	for (size_t i = 0; i < m->nstmts; i++)
		if (m->stmts[i].sql == sql)
			return m->stmts[i].stmt;
	if (m->nstmts == DB_STMT_CACHE) {
		al_error_set(err, 0,
			     "statement cache full (%d): raise "
			     "DB_STMT_CACHE",
			     DB_STMT_CACHE);
		return NULL;
	}
	s = m->ops->prepare(m, sql);
	if (s == NULL) {
		db_error(m, err, "prepare \"%.40s...\"", sql);
		return NULL;
	}
	m->stmts[m->nstmts].sql = sql;
	m->stmts[m->nstmts].stmt = s;
	m->nstmts++;
	return s;
}

/* A reset statement no longer holds the read transaction it was in. */
void db_stmt_resetp(struct db_stmt **stmt)
{
	int saved = errno;

	if (*stmt != NULL)
		(*stmt)->m->ops->reset(*stmt);
	errno = saved;
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
	/* the server went away: say so once, and refuse the rest at once
	 * (db_stmt) rather than let each statement find it out */
	if (m->ops->lost != NULL && m->ops->lost(m)) {
		if (m->unavailable[0] == '\0') {
			text_cut(m->ops->errmsg(m), sizeof(m->unavailable) - 1,
				 m->unavailable);
			if (m->unavailable[0] == '\0')
				snprintf(m->unavailable, sizeof(m->unavailable),
					 "the connection was lost");
		}
		return al_error_set(err, ENOTCONN, "%s: %s is unreachable (%s)",
				    what, m->where, m->unavailable);
	}
	return al_error_set(err, m->ops->errnum(m), "%s: %s", what,
			    m->ops->errmsg(m));
}

int db_step(struct db_stmt *s)
{
	return s->m->ops->step(s);
}

void db_bind_null(struct db_stmt *s, int idx)
{
	(void)s->m->ops->bind_null(s, idx);
}

void db_bind_int64(struct db_stmt *s, int idx, int64_t v)
{
	(void)s->m->ops->bind_int64(s, idx, v);
}

void db_bind_double(struct db_stmt *s, int idx, double v)
{
	(void)s->m->ops->bind_double(s, idx, v);
}

void db_bind_blob(struct db_stmt *s, int idx, const void *data, size_t len)
{
	(void)s->m->ops->bind_blob(s, idx, data, len);
}

bool db_column_null(struct db_stmt *s, int col)
{
	return s->m->ops->column_null(s, col);
}

int64_t db_column_int64(struct db_stmt *s, int col)
{
	return s->m->ops->column_int64(s, col);
}

double db_column_double(struct db_stmt *s, int col)
{
	return s->m->ops->column_double(s, col);
}

const char *db_column_text(struct db_stmt *s, int col)
{
	return s->m->ops->column_text(s, col);
}

const void *db_column_blob(struct db_stmt *s, int col, size_t *len)
{
	return s->m->ops->column_blob(s, col, len);
}

int64_t db_changes(struct db_stmt *s)
{
	return s->m->ops->changes(s);
}

int db_step_done(struct manifest *m, struct db_stmt *s, const char *what,
		 struct al_error *err)
{
	if (db_step(s) < 0)
		return db_error(m, err, "%s", what);
	return 0;
}

int db_exec(struct manifest *m, const char *sql, struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, sql, err);

	if (s == NULL)
		return -1;
	return db_step_done(m, s, sql, err);
}

int db_query_int(struct manifest *m, const char *sql, int64_t *out,
		 struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, sql, err);

	if (s == NULL)
		return -1;
	if (db_step(s) != DB_ROW)
		return db_error(m, err, "%s", sql);
	*out = db_column_int64(s, 0);
	return 0;
}

int db_insert_id(struct manifest *m, struct db_stmt *s, const char *what,
		 int64_t *id, struct al_error *err)
{
	int rc = db_step(s);

	if (rc < 0)
		return db_error(m, err, "%s", what);
	*id = rc == DB_ROW ? db_column_int64(s, 0) : 0;
	/* SQLite finishes the insert on the step after the row */
	if (rc == DB_ROW && db_step(s) < 0)
		return db_error(m, err, "%s", what);
	return 0;
}

int db_begin(struct manifest *m, struct al_error *err)
{
	return db_exec(m, m->ops->sql_begin, err);
}

int db_begin_snapshot(struct manifest *m, struct al_error *err)
{
	return db_exec(m, m->ops->sql_snapshot, err);
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
	/* After some errors (a full disk, I/O) the backend has rolled back
	 * already; a second ROLLBACK would only fail. A lost connection took
	 * its transaction with it. */
	if (m->unavailable[0] == '\0' && m->db != NULL &&
	    m->ops->in_transaction(m))
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

int db_bind_viewer(struct db_stmt *s, int idx, const struct manifest_viewer *v)
{
	char gids[MANIFEST_VIEWER_GROUPS * 11 + 2] = ",";
	size_t used = 1;

	if (v == NULL)
		return 0; /* both NULL: every row */
	for (size_t i = 0; i < v->ngids && i < MANIFEST_VIEWER_GROUPS; i++)
		used += (size_t)snprintf(gids + used, sizeof(gids) - used,
					 "%u,", v->gids[i]);
	if (s->m->ops->bind_int64(s, idx, v->uid) < 0)
		return -1;
	return s->m->ops->bind_text(s, idx + 1, gids);
}

int db_bind_text(struct db_stmt *s, int idx, const char *text)
{
	if (text == NULL)
		return s->m->ops->bind_null(s, idx);
	return s->m->ops->bind_text(s, idx, text);
}

void db_column_copy(struct db_stmt *s, int col, char *buf, size_t len)
{
	const char *text = db_column_text(s, col);

	if (len == 0)
		return;
	if (text == NULL) {
		buf[0] = '\0';
		return;
	}
	text_cut(text, len - 1, buf);
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
		if (fstatat(m->dir_fd, files[i], &st, AT_SYMLINK_NOFOLLOW) <
		    0) {
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
	/* EROFS or EACCES here reads better than the backend's later */
	if (faccessat(m->dir_fd, ".", W_OK, AT_EACCESS) < 0)
		return al_error_sys(err, errno,
				    "state directory %s is not writable",
				    m->state_dir);
	if (take_writer_lock(m, err) < 0 || store_open(m, true, err) < 0)
		return -1;
	if (check_owned(m, err) < 0)
		return al_error_prefix(err, "state directory %s refused",
				       m->state_dir);
	if (m->ops->connect(m, err) < 0)
		return -1;
	/* the schema check comes first: it is what tells a corrupt or
	 * foreign database, before any setting tries to write to it; the
	 * migrations come after the settings, to run under them */
	if (schema_open(m, err) < 0 || m->ops->writer_settings(m, err) < 0 ||
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
	m->dir_fd = open(m->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m->dir_fd < 0)
		return al_error_sys(err, errno, "state directory %s",
				    m->state_dir);
	if (store_open(m, false, err) < 0 || m->ops->connect(m, err) < 0)
		return -1;
	return schema_open(m, err);
}

/* The backend a URL names: NULL (or "") is the state directory's SQLite
 * file; the caller (supervisor/config.c) has turned a sqlite: URL that
 * names it into NULL already. */
static const struct db_ops *backend_of(const char *url, struct al_error *err)
{
	if (url == NULL || *url == '\0')
		return &db_sqlite_ops;
	if (!manifest_url_is_server(url)) {
		al_error_set(err, EINVAL,
			     "DATABASE_URL: an unknown kind of database "
			     "(expected postgresql://HOST/DATABASE, or the "
			     "state directory's SQLite file)");
		return NULL;
	}
	if (&db_pg_ops == NULL) {
		al_error_set(err, ENOTSUP,
			     "DATABASE_URL names a PostgreSQL server, and this "
			     "program was built without PostgreSQL (libpq)");
		return NULL;
	}
	return &db_pg_ops;
}

static int describe(struct manifest *m, const char *url, struct al_error *err)
{
	char where[512];

	if (m->ops == &db_sqlite_ops) {
		if (asprintf(&m->db_path, "%s/%s", m->state_dir, DB_NAME) < 0) {
			m->db_path = NULL;
			return al_error_sys(err, ENOMEM, "open %s",
					    m->state_dir);
		}
		m->where = strdup(m->db_path);
	} else {
		manifest_url_redact(url, where, sizeof(where));
		m->url = strdup(url);
		m->where = strdup(where);
		if (m->url == NULL)
			return al_error_sys(err, ENOMEM, "open %s", where);
	}
	if (m->where == NULL)
		return al_error_sys(err, ENOMEM, "open %s", m->state_dir);
	return 0;
}

struct manifest *manifest_open_host(const char *state_dir, const char *url,
				    const char *host, enum manifest_mode mode,
				    struct al_error *err)
{
	struct manifest *m = calloc(1, sizeof(*m));
	int rc;

	if (m == NULL) {
		al_error_sys(err, ENOMEM, "manifest: open %s", state_dir);
		return NULL;
	}
	if (host == NULL)
		manifest_host_default(m->host);
	else if (manifest_host_check(host, err) < 0) {
		free(m);
		return NULL;
	} else
		snprintf(m->host, sizeof(m->host), "%s", host);
	m->mode = mode;
	m->dir_fd = -1;
	for (int d = 0; d < STORE_DIRS; d++)
		m->store_fd[d] = -1;
	m->ops = backend_of(url, err);
	m->state_dir = strdup(state_dir);
	if (m->ops == NULL) {
		rc = -1;
	} else if (m->state_dir == NULL) {
		rc = al_error_sys(err, ENOMEM, "open %s", state_dir);
	} else {
		rc = describe(m, url, err);
		if (rc == 0)
			rc = mode == MANIFEST_READ_WRITE
				     ? open_read_write(m, err)
				     : open_read_only(m, err);
	}
	if (rc < 0) {
		al_error_prefix(err, "manifest");
		manifest_close(m);
		return NULL;
	}
	return m;
}

struct manifest *manifest_open_at(const char *state_dir, const char *url,
				  enum manifest_mode mode, struct al_error *err)
{
	return manifest_open_host(state_dir, url, NULL, mode, err);
}

struct manifest *manifest_open(const char *state_dir, enum manifest_mode mode,
			       struct al_error *err)
{
	return manifest_open_at(state_dir, NULL, mode, err);
}

void manifest_close(struct manifest *m)
{
	if (m == NULL)
		return;
	if (m->db != NULL) {
		if (m->in_snapshot)
			db_rollback(m);
		for (size_t i = 0; i < m->nstmts; i++)
			m->ops->finalize(m->stmts[i].stmt);
		m->ops->disconnect(m);
	}
	store_close(m);
	if (m->dir_fd >= 0)
		close(m->dir_fd); /* drops the writer's lock */
	free(m->state_dir);
	free(m->db_path);
	if (m->url != NULL)
		explicit_bzero(m->url, strlen(m->url));
	free(m->url);
	free(m->where);
	free(m);
}

const char *manifest_state_dir(const struct manifest *m)
{
	return m->state_dir;
}

const char *manifest_backend(const struct manifest *m)
{
	return m->ops->name;
}

const char *manifest_where(const struct manifest *m)
{
	return m->where;
}

int manifest_schema_version(const struct manifest *m)
{
	return m->schema;
}

const char *manifest_unavailable(const struct manifest *m)
{
	return m->unavailable[0] != '\0' ? m->unavailable : NULL;
}

/* The session is new: what the handle knew of the old one's state goes,
 * and the database must still be the one this handle opened. */
static int reconnect(struct manifest *m, struct al_error *err)
{
	int64_t version = 0;

	m->in_snapshot = false;
	m->ops->disconnect(m);
	if (m->ops->connect(m, err) < 0 ||
	    m->ops->schema_version(m, &version, err) < 0)
		return -1;
	if (version != m->schema)
		return al_error_set(err, EPROTO,
				    "%s: its schema is version %lld now, this "
				    "handle opened version %d: restart the "
				    "program",
				    m->where, (long long)version, m->schema);
	/* a move the loss cut short (m->broken): the journal says how far
	 * it got, as at an open; only this writer moves this host's files */
	if (m->mode == MANIFEST_READ_WRITE && m->broken[0] != '\0') {
		if (moves_repair(m, err) < 0)
			return al_error_prefix(err, "repair");
		m->broken[0] = '\0';
	}
	return 0;
}

int manifest_reconnect(struct manifest *m, struct al_error *err)
{
	struct al_error local = { 0 };

	if (m->unavailable[0] == '\0')
		return 0;
	m->unavailable[0] = '\0';
	if (reconnect(m, &local) == 0)
		return 0;
	/* unavailable still, now for the reason this attempt gave (a lost
	 * connection's db_error() set it already) */
	size_t n = strlen(m->where);
	const char *why = local.msg;
	/* the handle's messages name the server already */
	if (strncmp(why, m->where, n) == 0 && strncmp(why + n, ": ", 2) == 0)
		why += n + 2;
	if (m->unavailable[0] == '\0')
		text_cut(why, sizeof(m->unavailable) - 1, m->unavailable);
	return al_error_set(err, local.errnum ? local.errnum : ENOTCONN,
			    "manifest: reconnect: %s", local.msg);
}

int db_sync_light(struct manifest *m, bool light, struct al_error *err)
{
	return m->ops->sync_light(m, light, err);
}

/* ------------------------------------------------------------------ URLs */

bool manifest_url_is_server(const char *url)
{
	return url != NULL && (strncmp(url, "postgresql://", 13) == 0 ||
			       strncmp(url, "postgres://", 11) == 0);
}

bool manifest_url_supported(const char *url)
{
	return !manifest_url_is_server(url) || &db_pg_ops != NULL;
}

/* Copy [from, to) into buf at *used, bounded. */
static void put(char *buf, size_t len, size_t *used, const char *from, size_t n)
{
	if (*used + 1 >= len)
		return;
	if (n > len - 1 - *used)
		n = len - 1 - *used;
	memcpy(buf + *used, from, n);
	*used += n;
	buf[*used] = '\0';
}

/*
 * Without libpq (the static CLI has none): the password of the userinfo
 * ("user:secret@") and every password= parameter become "***". Anything
 * that is not a server URL is shown as "(not a server URL)", never
 * quoted: it may be a password pasted into the wrong variable.
 */
void manifest_url_redact(const char *url, char *buf, size_t len)
{
	const char *p, *auth_end, *at, *colon;
	size_t used = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (!manifest_url_is_server(url)) {
		put(buf, len, &used, "(not a server URL)", 18);
		return;
	}
	p = strstr(url, "://") + 3;
	put(buf, len, &used, url, (size_t)(p - url));
	auth_end = p + strcspn(p, "/?");
	at = memrchr(p, '@', (size_t)(auth_end - p));
	if (at != NULL) {
		colon = memchr(p, ':', (size_t)(at - p));
		put(buf, len, &used, p, (size_t)((colon ? colon : at) - p));
		if (colon != NULL)
			put(buf, len, &used, ":***", 4);
		p = at;
	}
	while (*p != '\0') {
		size_t n = strcspn(p, "?&");
		bool secret = (p[0] == '?' || p[0] == '&') &&
			      strncmp(p + 1, "password=", 9) == 0;

		if (p[0] == '?' || p[0] == '&')
			n = 1 + strcspn(p + 1, "&");
		if (secret) {
			put(buf, len, &used, p, 10);
			put(buf, len, &used, "***", 3);
		} else {
			put(buf, len, &used, p, n);
		}
		p += n;
	}
}

int manifest_url_check(const char *url, struct al_error *err)
{
	if (!manifest_url_is_server(url))
		return al_error_set(err, EINVAL,
				    "DATABASE_URL: an unknown kind of database "
				    "(expected postgresql://HOST/DATABASE or "
				    "postgres://..., or the state directory's "
				    "SQLite file)");
	if (&db_pg_ops == NULL)
		return al_error_set(err, ENOTSUP,
				    "DATABASE_URL names a PostgreSQL server, "
				    "and this program was built without "
				    "PostgreSQL (libpq)");
	return db_pg_ops.url_check(url, err);
}
