/*
 * The PostgreSQL backend (DATABASE_URL=postgresql://...), with libpq.
 *
 * The statements are the same SQL as SQLite's: ?N parameters are sent as
 * $N, each value as text with the type its binding gives it (int8, float8,
 * text, bytea; NULL leaves the server to infer it), by PQexecParams, and
 * rows come back as text. The schema is schema_pg.sql, the same numbered
 * migrations in PostgreSQL's dialect; its version is the airlock_schema
 * row.
 *
 * The fleet (docs/operations.md, "Fleet"): several airlockd, each with
 * its own state directory and host name, write one database. A read-write
 * handle holds a session advisory lock keyed by its host name for as long
 * as it is open, so a second airlockd of the same name is refused as a
 * second one on the same state directory is: the repair at open and the
 * "running runs of a dead writer are interrupted" rule touch only the
 * rows of the opening host. Module content is kept in the database too
 * (the contents table); each host's state directory is its copy.
 *
 * Every commit is durable (synchronous_commit as the server says; the
 * light commits of run records are SQLite's alone). A URL's password is
 * never put into a message: the handle names the server by the URL with
 * its password cut out (manifest_url_redact()), and libpq's own messages
 * about a URL are left out when it holds one.
 */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/internal.h"

#define APPLICATION_ID 1095912523 /* 'ARLK' */
/* A writer's advisory lock: the application id and its host's name. */
#define WRITER_LOCK_KEY "1095912523"
/* How long a new writer waits for the lock of one that just died (the
 * server drops it when it sees the connection close). */
#define WRITER_LOCK_WAIT "2s"
#define CONNECT_TIMEOUT_S "10"
/* Again after a loss (the handle has a schema already): a reconnection
 * runs on airlockd's loop, which must not stall long on a server out of
 * reach; the next try comes soon. libpq's least. */
#define RECONNECT_TIMEOUT_S "2"
#define PARAMS_MAX 32

/* Type OIDs of the builtin types (pg_type.dat): stable across releases. */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25
#define OID_FLOAT8 701

/* manifest/schema_sql.S: schema_pg.sql, NUL-terminated. */
extern const char manifest_schema_pg_sql[];

struct pg_conn {
	PGconn *c;
	char msg[512];    /* the last failure */
	char sqlstate[6]; /* its SQLSTATE, or "" */
};

struct pg_stmt {
	struct db_stmt base;
	char *sql; /* with $N */
	int nparams;
	char *values[PARAMS_MAX];
	int lengths[PARAMS_MAX];
	int formats[PARAMS_MAX];
	Oid types[PARAMS_MAX];
	/* a number the text never uses still goes out (the statements share
	 * their numbering), typed text: the server cannot infer it */
	bool used[PARAMS_MAX];
	PGresult *res;
	int row, nrows;
	int64_t changes;
	unsigned char *blob; /* the last bytea column decoded */
};

/*
 * libpq is loaded when a DATABASE_URL first names a server, not linked:
 * with its own dependencies (OpenSSL, Kerberos, LDAP) it put ~5 MiB of
 * library pages into every airlockd's resident set, SQLite or not
 * (docs/benchmarks.md, "Supervisor memory"). The header still gives every
 * function its type; pq_load() fills one pointer per function used here.
 */
#define PQ_FUNCTIONS(X)                                                        \
	X(PQclear, pq_clear)                                                   \
	X(PQcmdTuples, pq_cmdTuples)                                           \
	X(PQconnectdbParams, pq_connectdbParams)                               \
	X(PQconninfoFree, pq_conninfoFree)                                     \
	X(PQconninfoParse, pq_conninfoParse)                                   \
	X(PQerrorMessage, pq_errorMessage)                                     \
	X(PQexec, pq_exec)                                                     \
	X(PQexecParams, pq_execParams)                                         \
	X(PQfinish, pq_finish)                                                 \
	X(PQfreemem, pq_freemem)                                               \
	X(PQftype, pq_ftype)                                                   \
	X(PQgetisnull, pq_getisnull)                                           \
	X(PQgetvalue, pq_getvalue)                                             \
	X(PQnfields, pq_nfields)                                               \
	X(PQntuples, pq_ntuples)                                               \
	X(PQresultErrorField, pq_resultErrorField)                             \
	X(PQresultStatus, pq_resultStatus)                                     \
	X(PQsetNoticeProcessor, pq_setNoticeProcessor)                         \
	X(PQstatus, pq_status)                                                 \
	X(PQtransactionStatus, pq_transactionStatus)

#define PQ_POINTER(fn, ptr) static __typeof__(fn) *ptr;
PQ_FUNCTIONS(PQ_POINTER)

#define PQ_LIBRARY "libpq.so.5"

#define PQ_SYMBOL(fn, ptr) { #fn, (void **)&ptr },
static const struct al_dl_symbol pq_symbols[] = { PQ_FUNCTIONS(PQ_SYMBOL) };
static struct al_dl_library pq_library = AL_DL_LIBRARY(PQ_LIBRARY, pq_symbols);

static int pq_load(struct al_error *err)
{
	if (al_dl_ensure(&pq_library) < 0)
		return al_error_set(err, ENOENT,
				    "DATABASE_URL names a PostgreSQL server, "
				    "but libpq cannot be loaded (%s); install "
				    "Debian's libpq5 package",
				    pq_library.failure);
	return 0;
}

#define CONN(m) ((struct pg_conn *)(m)->db)
#define ST(s) ((struct pg_stmt *)(s))

static void remember(struct manifest *m, const PGresult *res)
{
	struct pg_conn *pc = CONN(m);
	const char *primary = res ? pq_resultErrorField(res,
							PG_DIAG_MESSAGE_PRIMARY)
				  : NULL;
	const char *state = res ? pq_resultErrorField(res, PG_DIAG_SQLSTATE)
				: NULL;
	const char *text = primary ? primary : pq_errorMessage(pc->c);

	snprintf(pc->msg, sizeof(pc->msg), "%s", text ? text : "");
	pc->msg[strcspn(pc->msg, "\n")] = '\0';
	snprintf(pc->sqlstate, sizeof(pc->sqlstate), "%s", state ? state : "");
}

/* ------------------------------------------------------------ statements */

/* ?N -> $N outside quoted text; the number of the highest, and which
 * numbers the text uses. */
static char *translate(const char *sql, int *nparams, bool used[PARAMS_MAX])
{
	char *out = malloc(strlen(sql) + 1), *w = out;
	char quote = 0;

	*nparams = 0;
	if (out == NULL)
		return NULL;
	for (const char *p = sql; *p != '\0'; p++) {
		if (quote != 0) {
			if (*p == quote)
				quote = 0;
		} else if (*p == '\'' || *p == '"') {
			quote = *p;
		} else if (*p == '?' && p[1] >= '0' && p[1] <= '9') {
			int n = atoi(p + 1);
			if (n > *nparams)
				*nparams = n;
			if (n >= 1 && n <= PARAMS_MAX)
				used[n - 1] = true;
			*w++ = '$';
			continue;
		}
		*w++ = *p;
	}
	*w = '\0';
	return out;
}

static struct db_stmt *pg_prepare(struct manifest *m, const char *sql)
{
	struct pg_stmt *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	st->sql = translate(sql, &st->nparams, st->used);
	if (st->sql == NULL || st->nparams > PARAMS_MAX) {
		snprintf(CONN(m)->msg, sizeof(CONN(m)->msg),
			 st->sql ? "more than %d parameters" : "out of memory",
			 PARAMS_MAX);
		free(st->sql);
		free(st);
		return NULL;
	}
	st->base.m = m;
	for (int i = 0; i < PARAMS_MAX; i++)
		st->types[i] = st->used[i] ? 0 : OID_TEXT;
	return &st->base;
}

static void pg_reset(struct db_stmt *s)
{
	struct pg_stmt *st = ST(s);

	pq_clear(st->res);
	st->res = NULL;
	st->row = st->nrows = 0;
	st->changes = 0;
	free(st->blob);
	st->blob = NULL;
	for (int i = 0; i < PARAMS_MAX; i++) {
		free(st->values[i]);
		st->values[i] = NULL;
		st->lengths[i] = st->formats[i] = 0;
		st->types[i] = st->used[i] ? 0 : OID_TEXT;
	}
}

static void pg_finalize(struct db_stmt *s)
{
	pg_reset(s);
	free(ST(s)->sql);
	free(s);
}

static int bind(struct db_stmt *s, int idx, Oid type, char *value, int len,
		int format)
{
	struct pg_stmt *st = ST(s);

	if (idx < 1 || idx > PARAMS_MAX) {
		free(value);
		return -1;
	}
	free(st->values[idx - 1]);
	st->values[idx - 1] = value;
	st->types[idx - 1] = type;
	st->lengths[idx - 1] = len;
	st->formats[idx - 1] = format;
	return 0;
}

static int pg_bind_null(struct db_stmt *s, int idx)
{
	bool used = idx < 1 || idx > PARAMS_MAX || ST(s)->used[idx - 1];

	return bind(s, idx, used ? 0 : OID_TEXT, NULL, 0, 0);
}

static int pg_bind_int64(struct db_stmt *s, int idx, int64_t v)
{
	char *text;

	if (asprintf(&text, "%" PRId64, v) < 0)
		return -1;
	return bind(s, idx, OID_INT8, text, 0, 0);
}

static int pg_bind_double(struct db_stmt *s, int idx, double v)
{
	char *text;

	if (asprintf(&text, "%.17g", v) < 0)
		return -1;
	return bind(s, idx, OID_FLOAT8, text, 0, 0);
}

static int pg_bind_text(struct db_stmt *s, int idx, const char *text)
{
	char *copy = strdup(text);

	return copy ? bind(s, idx, OID_TEXT, copy, 0, 0) : -1;
}

/* Raw bytes, in the binary format (which for bytea is the bytes). */
static int pg_bind_blob(struct db_stmt *s, int idx, const void *data,
			size_t len)
{
	char *copy = malloc(len ? len : 1);

	if (copy == NULL || len > INT32_MAX) {
		free(copy);
		return -1;
	}
	memcpy(copy, data, len);
	return bind(s, idx, OID_BYTEA, copy, (int)len, 1);
}

static int pg_step(struct db_stmt *s)
{
	struct pg_stmt *st = ST(s);
	struct manifest *m = s->m;

	if (st->res == NULL) {
		/* a failure's SQLSTATE says nothing of the statements after
		 * it (pg_lost() reads it) */
		CONN(m)->sqlstate[0] = '\0';
		st->res = pq_execParams(CONN(m)->c, st->sql, st->nparams,
					st->types,
					(const char *const *)st->values,
					st->lengths, st->formats, 0);
		ExecStatusType status = st->res ? pq_resultStatus(st->res)
						: PGRES_FATAL_ERROR;
		if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
			remember(m, st->res);
			pq_clear(st->res);
			st->res = NULL;
			return -1;
		}
		st->changes = strtoll(pq_cmdTuples(st->res), NULL, 10);
		st->nrows = status == PGRES_TUPLES_OK ? pq_ntuples(st->res) : 0;
		st->row = -1;
	}
	if (st->row + 1 < st->nrows) {
		st->row++;
		return DB_ROW;
	}
	st->row = st->nrows;
	return DB_DONE;
}

static bool in_row(struct pg_stmt *st, int col)
{
	return st->res != NULL && st->row >= 0 && st->row < st->nrows &&
	       col >= 0 && col < pq_nfields(st->res);
}

static bool pg_column_null(struct db_stmt *s, int col)
{
	struct pg_stmt *st = ST(s);

	return !in_row(st, col) || pq_getisnull(st->res, st->row, col);
}

static int64_t pg_column_int64(struct db_stmt *s, int col)
{
	struct pg_stmt *st = ST(s);
	const char *v;

	if (pg_column_null(s, col))
		return 0;
	v = pq_getvalue(st->res, st->row, col);
	if (pq_ftype(st->res, col) == OID_BOOL)
		return v[0] == 't';
	return strtoll(v, NULL, 10);
}

static double pg_column_double(struct db_stmt *s, int col)
{
	struct pg_stmt *st = ST(s);

	if (pg_column_null(s, col))
		return 0.0;
	return strtod(pq_getvalue(st->res, st->row, col), NULL);
}

static const char *pg_column_text(struct db_stmt *s, int col)
{
	struct pg_stmt *st = ST(s);

	if (pg_column_null(s, col))
		return NULL;
	return pq_getvalue(st->res, st->row, col);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* bytea's text output, "\x" and hex digits (bytea_output = hex, the
 * default since 9.0; the connection sets it). */
static const void *pg_column_blob(struct db_stmt *s, int col, size_t *len)
{
	struct pg_stmt *st = ST(s);
	const char *v = pg_column_text(s, col);
	size_t n;

	*len = 0;
	if (v == NULL || strncmp(v, "\\x", 2) != 0)
		return NULL;
	v += 2;
	n = strlen(v) / 2;
	free(st->blob);
	st->blob = malloc(n ? n : 1);
	if (st->blob == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_digit(v[2 * i]), lo = hex_digit(v[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return NULL;
		st->blob[i] = (unsigned char)(hi << 4 | lo);
	}
	*len = n;
	return st->blob;
}

static int64_t pg_changes(struct db_stmt *s)
{
	return ST(s)->changes;
}

/* PQexec runs every statement of the text (and a PL/pgSQL body whole). */
static int pg_exec_script(struct manifest *m, const char *sql, size_t len,
			  struct al_error *err)
{
	_cleanup_free_ char *text = strndup(sql, len);
	PGresult *res;
	ExecStatusType status;

	if (text == NULL)
		return al_error_sys(err, ENOMEM, "run");
	res = pq_exec(CONN(m)->c, text);
	status = res ? pq_resultStatus(res) : PGRES_FATAL_ERROR;
	if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
		remember(m, res);
		pq_clear(res);
		return db_error(m, err, "run");
	}
	pq_clear(res);
	return 0;
}

static const char *pg_errmsg(struct manifest *m)
{
	return CONN(m)->msg;
}

static int pg_errnum(struct manifest *m)
{
	const char *st = CONN(m)->sqlstate;

	if (pq_status(CONN(m)->c) != CONNECTION_OK)
		return ENOTCONN;
	if (strcmp(st, "53100") == 0)
		return ENOSPC;
	if (strncmp(st, "53", 2) == 0)
		return ENOMEM;
	if (strcmp(st, "25006") == 0)
		return EROFS;
	if (strcmp(st, "55P03") == 0 || strncmp(st, "40", 2) == 0)
		return EBUSY;
	if (strcmp(st, "42501") == 0)
		return EACCES;
	if (strncmp(st, "08", 2) == 0 || strncmp(st, "57P", 3) == 0)
		return ECONNRESET;
	return 0;
}

/* The connection is gone (libpq says so), or the server said it is going:
 * connection exceptions (class 08), and an administrator's shutdown,
 * a crash shutdown, a server not accepting yet (57P01, 57P02, 57P03). */
static bool pg_lost(struct manifest *m)
{
	const char *st = CONN(m)->sqlstate;

	return pq_status(CONN(m)->c) == CONNECTION_BAD ||
	       strncmp(st, "08", 2) == 0 || strcmp(st, "57P01") == 0 ||
	       strcmp(st, "57P02") == 0 || strcmp(st, "57P03") == 0;
}

static bool pg_in_transaction(struct manifest *m)
{
	PGTransactionStatusType t = pq_transactionStatus(CONN(m)->c);

	return t == PQTRANS_INTRANS || t == PQTRANS_INERROR ||
	       t == PQTRANS_ACTIVE;
}

static int pg_sync_light(struct manifest *m, bool light, struct al_error *err)
{
	return 0; /* every commit is durable */
}

/* --------------------------------------------------------------- open */

/* NOTICEs (a migration's "does not exist, skipping") are not errors and
 * have no stderr of their own to go to. */
static void quiet(void *arg, const char *message)
{
}

static int exec_text(struct manifest *m, const char *sql, struct al_error *err)
{
	return pg_exec_script(m, sql, strlen(sql), err);
}

static int session_settings(struct manifest *m, struct al_error *err)
{
	/* the text forms the column readers parse */
	if (exec_text(m, "SET bytea_output = 'hex'", err) < 0 ||
	    exec_text(m, "SET client_encoding = 'UTF8'", err) < 0)
		return -1;
	if (m->mode == MANIFEST_READ_ONLY)
		return exec_text(m, "SET default_transaction_read_only = on",
				 err);
	return 0;
}

/* One writer per database: a session lock the server drops with the
 * connection, however the writer ends. */
static int take_writer_lock(struct manifest *m, struct al_error *err)
{
	struct al_error local = { 0 };
	char sql[160];

	if (exec_text(m, "SET lock_timeout = '" WRITER_LOCK_WAIT "'", err) < 0)
		return -1;
	/* the name is checked (manifest_host_check): letters, digits, . - _ */
	snprintf(sql, sizeof(sql),
		 "SELECT pg_advisory_lock(" WRITER_LOCK_KEY ", hashtext('%s'))",
		 m->host);
	if (exec_text(m, sql, &local) < 0) {
		if (strcmp(CONN(m)->sqlstate, "55P03") == 0)
			return al_error_set(err, EBUSY,
					    "%s: another process (airlockd?) "
					    "is the writer of this database "
					    "as host \"%s\"; give each host "
					    "its own AIRLOCK_HOST",
					    m->where, m->host);
		return al_error_set(err, local.errnum, "%s", local.msg);
	}
	return exec_text(m, "RESET lock_timeout", err);
}

static int pg_url_check(const char *url, struct al_error *err);

static int pg_connect(struct manifest *m, struct al_error *err)
{
	static const char *const keys[] = { "connect_timeout",
					    "fallback_application_name",
					    "dbname", NULL };
	const char *values[] = { m->schema ? RECONNECT_TIMEOUT_S
					   : CONNECT_TIMEOUT_S,
				 m->mode == MANIFEST_READ_WRITE ? "airlockd"
								: "airlock",
				 m->url, NULL };
	struct pg_conn *pc;

	/* libpq's own words on a bad URL may quote its password */
	if (pg_url_check(m->url, err) < 0)
		return -1;
	pc = calloc(1, sizeof(*pc));
	if (pc == NULL)
		return al_error_sys(err, ENOMEM, "%s", m->where);
	m->db = pc;
	/* later keywords win: the URL's own connect_timeout overrides */
	pc->c = pq_connectdbParams(keys, values, 1);
	if (pc->c == NULL)
		return al_error_sys(err, ENOMEM, "%s", m->where);
	if (pq_status(pc->c) != CONNECTION_OK) {
		remember(m, NULL);
		return al_error_set(err, ECONNREFUSED, "%s: cannot connect: %s",
				    m->where, pc->msg);
	}
	pq_setNoticeProcessor(pc->c, quiet, NULL);
	if (session_settings(m, err) < 0)
		return al_error_prefix(err, "%s", m->where);
	if (m->mode == MANIFEST_READ_WRITE && take_writer_lock(m, err) < 0)
		return -1;
	return 0;
}

static int pg_writer_settings(struct manifest *m, struct al_error *err)
{
	return 0; /* the server's own; the lock is taken at connect */
}

static void pg_disconnect(struct manifest *m)
{
	struct pg_conn *pc = CONN(m);

	if (pc != NULL)
		pq_finish(pc->c); /* drops the writer's lock */
	free(pc);
	m->db = NULL;
}

/* ------------------------------------------------------------ schema */

static const char SQL_HAS_SCHEMA[] =
	"SELECT to_regclass('airlock_schema') IS NOT NULL";
static const char SQL_OBJECTS[] =
	"SELECT count(*) FROM pg_class c"
	" JOIN pg_namespace n ON n.oid = c.relnamespace"
	" WHERE n.nspname = current_schema()"
	" AND c.relkind IN ('r', 'v', 'm', 'S', 'p', 'f')";
static const char SQL_APP_ID[] = "SELECT application_id FROM airlock_schema";
static const char SQL_VERSION[] = "SELECT version FROM airlock_schema";

static int pg_schema_header(struct manifest *m, int64_t *app_id,
			    int64_t *version, int64_t *objects,
			    struct al_error *err)
{
	int64_t has;

	*app_id = *version = 0;
	if (db_query_int(m, SQL_HAS_SCHEMA, &has, err) < 0 ||
	    db_query_int(m, SQL_OBJECTS, objects, err) < 0)
		return al_error_prefix(err, "%s", m->where);
	if (!has)
		return 0;
	if (db_query_int(m, SQL_APP_ID, app_id, err) < 0 ||
	    db_query_int(m, SQL_VERSION, version, err) < 0)
		return al_error_prefix(err, "%s", m->where);
	return 0;
}

static int pg_schema_version(struct manifest *m, int64_t *version,
			     struct al_error *err)
{
	return db_query_int(m, SQL_VERSION, version, err);
}

static int pg_write_check(struct manifest *m, struct al_error *err)
{
	if (db_begin(m, err) < 0)
		return -1;
	if (db_exec(m,
		    "UPDATE airlock_schema SET application_id = application_id",
		    err) < 0) {
		db_rollback(m);
		return -1;
	}
	return db_commit(m, err);
}

/* A commit that moves a file commits journal rows (ids only grow) or
 * clears them with their events: the newest event, the newest journal
 * row and the journal's length, as the caller's snapshot sees them, move
 * with every such commit. (Sequences would not do: they move when a row
 * is inserted, before its commit is visible.) */
static int pg_data_version(struct manifest *m, int64_t *out,
			   struct al_error *err)
{
	return db_query_int(m,
			    "SELECT coalesce((SELECT max(id) FROM events), 0)"
			    " * 1000003 +"
			    " coalesce((SELECT max(id) FROM moves), 0) * 7 +"
			    " (SELECT count(*) FROM moves)",
			    out, err);
}

/* The server keeps its pages sound; what is left to check is what the
 * schema says: constraints in force, and no row its foreign key lost. */
static const char SQL_INTEGRITY[] =
	"SELECT conrelid::regclass || ': constraint ' || conname ||"
	" ' is not validated' FROM pg_constraint"
	" WHERE NOT convalidated AND connamespace = current_schema()::regnamespace"
	" UNION ALL"
	" SELECT 'runs row ' || r.id || ' refers to a missing modules row'"
	" FROM runs r LEFT JOIN modules m ON m.id = r.module_id"
	" WHERE m.id IS NULL"
	" UNION ALL"
	" SELECT 'moves row ' || v.id || ' refers to a missing modules row'"
	" FROM moves v LEFT JOIN modules m ON m.id = v.module_id"
	" WHERE v.module_id IS NOT NULL AND m.id IS NULL";

static int pg_integrity(struct manifest *m,
			void (*fn)(const char *message, void *arg), void *arg,
			struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_INTEGRITY, err);
	int rc;

	if (s == NULL)
		return -1;
	while ((rc = db_step(s)) == DB_ROW)
		fn(db_column_text(s, 0), arg);
	if (rc < 0)
		return db_error(m, err, "integrity");
	return 0;
}

static int pg_backup(struct manifest *m, const char *path, struct al_error *err)
{
	return al_error_set(err, ENOTSUP,
			    "the manifest is on a PostgreSQL server (%s): "
			    "back it up with pg_dump, and the state "
			    "directory's modules/ and archive/ with the "
			    "file system (docs/operations.md, \"PostgreSQL "
			    "manifest\")",
			    m->where);
}

/* ----------------------------------------------------------------- URL */

static bool has_password(const char *url)
{
	const char *p = strstr(url, "://"), *end, *at;

	if (strstr(url, "password=") != NULL)
		return true;
	if (p == NULL)
		return false;
	p += 3;
	end = p + strcspn(p, "/?");
	at = memrchr(p, '@', (size_t)(end - p));
	return at != NULL && memchr(p, ':', (size_t)(at - p)) != NULL;
}

static int pg_url_check(const char *url, struct al_error *err)
{
	char *why = NULL;
	PQconninfoOption *opts;
	bool host = false;

	if (pq_load(err) < 0)
		return -1;
	opts = pq_conninfoParse(url, &why);
	if (opts == NULL) {
		char detail[256] = "";
		/* libpq's reason may quote the URL, password and all */
		if (why != NULL && !has_password(url)) {
			why[strcspn(why, "\n")] = '\0';
			snprintf(detail, sizeof(detail), " (%s)", why);
		}
		pq_freemem(why);
		return al_error_set(err, EINVAL,
				    "DATABASE_URL: not a PostgreSQL URL libpq "
				    "accepts%s; expected postgresql://USER@"
				    "HOST:PORT/DATABASE?sslmode=...",
				    detail);
	}
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
		if ((strcmp(o->keyword, "host") == 0 ||
		     strcmp(o->keyword, "hostaddr") == 0) &&
		    o->val != NULL && o->val[0] != '\0')
			host = true;
	pq_conninfoFree(opts);
	if (!host)
		return al_error_set(err, EINVAL,
				    "DATABASE_URL: names no host: write "
				    "postgresql://HOST/DATABASE, or "
				    "postgresql:///DATABASE?host=/run/"
				    "postgresql for a Unix socket");
	return 0;
}

const struct db_ops db_pg_ops = {
	.name = "postgresql",
	.shared = true,
	.schema_sql = manifest_schema_pg_sql,
	.connect = pg_connect,
	.writer_settings = pg_writer_settings,
	.disconnect = pg_disconnect,
	.prepare = pg_prepare,
	.finalize = pg_finalize,
	.reset = pg_reset,
	.bind_null = pg_bind_null,
	.bind_int64 = pg_bind_int64,
	.bind_double = pg_bind_double,
	.bind_text = pg_bind_text,
	.bind_blob = pg_bind_blob,
	.step = pg_step,
	.column_null = pg_column_null,
	.column_int64 = pg_column_int64,
	.column_double = pg_column_double,
	.column_text = pg_column_text,
	.column_blob = pg_column_blob,
	.changes = pg_changes,
	.exec_script = pg_exec_script,
	.errmsg = pg_errmsg,
	.errnum = pg_errnum,
	.in_transaction = pg_in_transaction,
	.sql_begin = "BEGIN",
	.sql_snapshot = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
	.sync_light = pg_sync_light,
	.schema_header = pg_schema_header,
	.schema_version = pg_schema_version,
	.write_check = pg_write_check,
	.data_version = pg_data_version,
	.integrity = pg_integrity,
	.backup = pg_backup,
	.url_check = pg_url_check,
	.lost = pg_lost,
};
