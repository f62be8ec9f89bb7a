/*
 * The schema: is this file a manifest we can read, and the migrations that
 * bring it up to date.
 *
 * manifest/schema.sql is embedded into the binary by schema_sql.S and split at
 * its "-- @migration N" lines. Block N runs in its own transaction and ends
 * by setting PRAGMA user_version to N; a crash inside a block rolls it back
 * whole, and the next open starts that block again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/internal.h"

/* schema_sql.S: the text of schema.sql, NUL-terminated. */
extern const char manifest_schema_sql[];

#define MIGRATION_MARK "-- @migration "
#define APPLICATION_ID 1095912523 /* 'ARLK', set by migration 1 */

struct migration {
	int number;
	const char *text; /* after the marker line, up to the next marker */
	size_t len;
};

/* The marker at the start of a line, at or after `from`; NULL at the end. */
static const char *find_marker(const char *from)
{
	const char *p = from;

	while ((p = strstr(p, MIGRATION_MARK)) != NULL) {
		if (p == manifest_schema_sql || p[-1] == '\n')
			return p;
		p += strlen(MIGRATION_MARK);
	}
	return NULL;
}

/* The migration at or after *cursor; false when there is none. */
static bool next_migration(const char **cursor, struct migration *out)
{
	const char *mark = find_marker(*cursor), *next;
	char *end;

	if (mark == NULL)
		return false;
	out->number = (int)strtol(mark + strlen(MIGRATION_MARK), &end, 10);
	out->text = strchr(end, '\n');
	out->text = out->text ? out->text + 1 : end + strlen(end);
	next = find_marker(out->text);
	out->len = (size_t)((next ? next : out->text + strlen(out->text)) -
			    out->text);
	*cursor = out->text;
	return true;
}

int manifest_schema_latest(void)
{
	const char *cursor = manifest_schema_sql;
	struct migration mig;
	int latest = 0;

	while (next_migration(&cursor, &mig))
		latest = mig.number;
	return latest;
}

/* Every statement of one block, prepared one after the other. */
static int run_block(struct manifest *m, const struct migration *mig,
		     struct al_error *err)
{
	const char *p = mig->text, *end = mig->text + mig->len, *tail;
	sqlite3_stmt *s;
	int rc;

	while (p < end) {
		if (sqlite3_prepare_v2(m->db, p, (int)(end - p), &s, &tail) !=
		    SQLITE_OK)
			return db_error(m, err, "migration %d", mig->number);
		if (s == NULL) /* only comments and blanks were left */
			break;
		while ((rc = sqlite3_step(s)) == SQLITE_ROW)
			;
		sqlite3_finalize(s);
		if (rc != SQLITE_DONE)
			return db_error(m, err, "migration %d", mig->number);
		p = tail;
	}
	return 0;
}

static int apply(struct manifest *m, const struct migration *mig,
		 struct al_error *err)
{
	int64_t version;

	if (db_begin(m, err) < 0)
		return -1;
	if (run_block(m, mig, err) < 0 ||
	    db_query_int(m, "PRAGMA user_version", &version, err) < 0)
		goto fail;
	if (version != mig->number) {
		al_error_set(err, 0, "migration %d left user_version at %lld "
				     "(schema.sql: a block must end by setting "
				     "its own number)",
			     mig->number, (long long)version);
		goto fail;
	}
	if (db_commit(m, err) < 0)
		return -1;
	m->schema = mig->number;
	return 0;
fail:
	db_rollback(m);
	return -1;
}

int schema_migrate(struct manifest *m, struct al_error *err)
{
	const char *cursor = manifest_schema_sql;
	struct migration mig;

	while (next_migration(&cursor, &mig)) {
		if (mig.number <= m->schema)
			continue;
		if (mig.number != m->schema + 1)
			return al_error_set(err, 0, "schema.sql: migration %d "
						    "follows %d",
					    mig.number, m->schema);
		if (apply(m, &mig, err) < 0)
			return al_error_prefix(err, "%s: upgrade to schema %d",
					       m->db_path, mig.number);
	}
	return 0;
}

/* The first read of the file: where a corrupt one shows. */
static int read_header(struct manifest *m, int64_t *app_id, int64_t *version,
		       int64_t *objects, struct al_error *err)
{
	int code;

	if (db_query_int(m, "PRAGMA application_id", app_id, err) == 0 &&
	    db_query_int(m, "PRAGMA user_version", version, err) == 0 &&
	    db_query_int(m, "SELECT count(*) FROM sqlite_schema", objects,
			 err) == 0)
		return 0;
	code = sqlite3_errcode(m->db) & 0xff;
	if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT)
		return al_error_set(err, EILSEQ,
				    "%s: not a usable SQLite database (%s): "
				    "the file is corrupt or is something "
				    "else; move it aside and restore a backup "
				    "(airlock manifest backup)",
				    m->db_path, sqlite3_errmsg(m->db));
	return al_error_prefix(err, "%s", m->db_path);
}

int schema_open(struct manifest *m, struct al_error *err)
{
	int64_t app_id, version, objects;
	int latest = manifest_schema_latest();

	if (read_header(m, &app_id, &version, &objects, err) < 0)
		return -1;
	if (app_id != APPLICATION_ID &&
	    !(app_id == 0 && version == 0 && objects == 0))
		return al_error_set(err, EINVAL,
				    "%s: not an airlock manifest "
				    "(application_id %lld, %lld schema "
				    "objects: another program's database?)",
				    m->db_path, (long long)app_id,
				    (long long)objects);
	if (version > latest)
		return al_error_set(err, EINVAL,
				    "%s: created by a newer airlock (schema "
				    "%lld, this one knows %d)",
				    m->db_path, (long long)version, latest);
	m->schema = (int)version;
	if (m->mode == MANIFEST_READ_WRITE)
		return 0; /* schema_migrate() follows */
	if (version == 0)
		return al_error_set(err, ENOENT,
				    "%s: empty, never initialized (the "
				    "supervisor does that on its first start)",
				    m->db_path);
	if (version < latest)
		return al_error_set(err, EINVAL,
				    "%s: schema %lld is older than this "
				    "airlock's %d; the next read-write open "
				    "(the supervisor's start) upgrades it",
				    m->db_path, (long long)version, latest);
	return 0;
}

int manifest_write_check(struct manifest *m, struct al_error *err)
{
	char sql[64];

	/* Setting the id always dirties the header page, even to its own
	 * value, so the commit writes a frame; an empty transaction would
	 * write nothing and prove nothing. */
	snprintf(sql, sizeof(sql), "PRAGMA application_id = %d",
		 APPLICATION_ID);
	if (db_writable(m, err) < 0 || db_begin(m, err) < 0)
		return al_error_prefix(err, "manifest: write check");
	if (db_exec(m, sql, err) < 0) {
		db_rollback(m);
		return al_error_prefix(err, "manifest: write check");
	}
	if (db_commit(m, err) < 0)
		return al_error_prefix(err, "manifest: write check");
	return 0;
}
