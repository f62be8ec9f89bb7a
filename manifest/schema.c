/*
 * The schema: is this file a manifest we can read, and the migrations that
 * bring it up to date.
 *
 * Each backend has its schema in its own dialect, the same numbered blocks
 * making the same tables: manifest/schema.sql (SQLite) and
 * manifest/schema_pg.sql (PostgreSQL), embedded into the binary by
 * schema_sql.S and split at their "-- @migration N" lines. Block N runs in
 * its own transaction and ends by setting the schema version to N (SQLite:
 * PRAGMA user_version; PostgreSQL: the airlock_schema row); a crash inside
 * a block rolls it back whole (DDL is transactional in both), and the next
 * open starts that block again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/internal.h"

#define MIGRATION_MARK "-- @migration "
#define APPLICATION_ID 1095912523 /* 'ARLK', set by migration 1 */

struct migration {
	int number;
	const char *text; /* after the marker line, up to the next marker */
	size_t len;
};

/* The marker at the start of a line of `text`, at or after `from`; NULL at
 * the end. */
static const char *find_marker(const char *text, const char *from)
{
	const char *p = from;

	while ((p = strstr(p, MIGRATION_MARK)) != NULL) {
		if (p == text || p[-1] == '\n')
			return p;
		p += strlen(MIGRATION_MARK);
	}
	return NULL;
}

/* The migration at or after *cursor; false when there is none. */
static bool next_migration(const char *text, const char **cursor,
			   struct migration *out)
{
	const char *mark = find_marker(text, *cursor), *next;
	char *end;

	if (mark == NULL)
		return false;
	out->number = (int)strtol(mark + strlen(MIGRATION_MARK), &end, 10);
	out->text = strchr(end, '\n');
	out->text = out->text ? out->text + 1 : end + strlen(end);
	next = find_marker(text, out->text);
	out->len = (size_t)((next ? next : out->text + strlen(out->text)) -
			    out->text);
	*cursor = out->text;
	return true;
}

static int latest_of(const char *text)
{
	const char *cursor = text;
	struct migration mig;
	int latest = 0;

	while (next_migration(text, &cursor, &mig))
		latest = mig.number;
	return latest;
}

/* Every backend's schema has the same blocks (a unit test holds them to
 * it): SQLite's numbers them for all. */
int manifest_schema_latest(void)
{
	return latest_of(db_sqlite_ops.schema_sql);
}

static int apply(struct manifest *m, const struct migration *mig,
		 struct al_error *err)
{
	int64_t version;

	if (db_begin(m, err) < 0)
		return -1;
	if (m->ops->exec_script(m, mig->text, mig->len, err) < 0 ||
	    m->ops->schema_version(m, &version, err) < 0) {
		al_error_prefix(err, "migration %d", mig->number);
		goto fail;
	}
	if (version != mig->number) {
		al_error_set(err, 0,
			     "migration %d left the schema version at "
			     "%lld (a block must end by setting its "
			     "own number)",
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
	const char *text = m->ops->schema_sql, *cursor = text;
	struct migration mig;

	while (next_migration(text, &cursor, &mig)) {
		if (mig.number <= m->schema)
			continue;
		if (mig.number != m->schema + 1)
			return al_error_set(err, 0,
					    "%s schema: migration %d "
					    "follows %d",
					    m->ops->name, mig.number,
					    m->schema);
		if (apply(m, &mig, err) < 0)
			return al_error_prefix(err, "%s: upgrade to schema %d",
					       m->where, mig.number);
	}
	return 0;
}

int schema_open(struct manifest *m, struct al_error *err)
{
	int64_t app_id, version, objects;
	int latest = manifest_schema_latest();

	if (m->ops->schema_header(m, &app_id, &version, &objects, err) < 0)
		return -1;
	if (app_id != APPLICATION_ID &&
	    !(app_id == 0 && version == 0 && objects == 0))
		return al_error_set(err, EINVAL,
				    "%s: not an airlock manifest "
				    "(application_id %lld, %lld schema "
				    "objects: another program's database?)",
				    m->where, (long long)app_id,
				    (long long)objects);
	if (version > latest)
		return al_error_set(err, EINVAL,
				    "%s: created by a newer airlock (schema "
				    "%lld, this one knows %d)",
				    m->where, (long long)version, latest);
	m->schema = (int)version;
	if (m->mode == MANIFEST_READ_WRITE)
		return 0; /* schema_migrate() follows */
	if (version == 0)
		return al_error_set(err, ENOENT,
				    "%s: empty, never initialized (the "
				    "supervisor does that on its first start)",
				    m->where);
	if (version < latest)
		return al_error_set(err, EINVAL,
				    "%s: schema %lld is older than this "
				    "airlock's %d; the next read-write open "
				    "(the supervisor's start) upgrades it",
				    m->where, (long long)version, latest);
	return 0;
}

int manifest_write_check(struct manifest *m, struct al_error *err)
{
	if (db_writable(m, err) < 0 || m->ops->write_check(m, err) < 0)
		return al_error_prefix(err, "manifest: write check");
	return 0;
}
