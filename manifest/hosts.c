/*
 * Hosts: the airlockd processes that write one database (docs/operations.md,
 * "Fleet"). Each has a name (AIRLOCK_HOST), a row it rewrites every tick,
 * and the runs it started carry that name. When a host stops beating for
 * longer than the lease, whichever host notices first marks its running
 * runs interrupted: its jails died with it, or are past any deadline the
 * client waited for. A host that comes back cannot record them twice: a
 * run's end is written only while it is 'running'.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "manifest/internal.h"

int manifest_host_check(const char *name, struct al_error *err)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > MANIFEST_HOST_MAX)
		return al_error_set(err, EINVAL,
				    "host name: %zu bytes; give 1 to %d", n,
				    MANIFEST_HOST_MAX);
	if (!isalnum((unsigned char)name[0]))
		return al_error_set(err, EINVAL,
				    "host name must start with a letter or a "
				    "digit");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!isalnum(c) && c != '.' && c != '-' && c != '_')
			return al_error_set(err, EINVAL,
					    "host name: byte %zu (0x%02x) is "
					    "not one of A-Z a-z 0-9 . - _",
					    i + 1, c);
	}
	return 0;
}

void manifest_host_default(char out[MANIFEST_HOST_MAX + 1])
{
	char name[256] = "";
	size_t n = 0;

	if (gethostname(name, sizeof(name) - 1) < 0)
		name[0] = '\0';
	while (n < MANIFEST_HOST_MAX && name[n] != '\0' &&
	       (isalnum((unsigned char)name[n]) || name[n] == '.' ||
		name[n] == '-' || name[n] == '_'))
		n++;
	if (n == 0 || !isalnum((unsigned char)name[0]))
		snprintf(out, MANIFEST_HOST_MAX + 1, "localhost");
	else
		snprintf(out, MANIFEST_HOST_MAX + 1, "%.*s", (int)n, name);
}

const char *manifest_host(const struct manifest *m)
{
	return m->host;
}

bool manifest_is_shared(const struct manifest *m)
{
	return m->ops->shared;
}

static const char SQL_BEAT[] =
	"INSERT INTO hosts (name, version, kernel, isolation, slots, active,"
	" started_ms, heartbeat_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
	" ON CONFLICT (name) DO UPDATE SET version = excluded.version,"
	" kernel = excluded.kernel, isolation = excluded.isolation,"
	" slots = excluded.slots, active = excluded.active,"
	" started_ms = excluded.started_ms,"
	" heartbeat_ms = excluded.heartbeat_ms";

int manifest_host_beat(struct manifest *m, const struct manifest_host *h,
		       struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = NULL;
	int64_t now = manifest_now_ms();

	if (db_writable(m, err) < 0)
		return al_error_prefix(err, "manifest: heartbeat");
	s = db_stmt(m, SQL_BEAT, err);
	if (s == NULL)
		return al_error_prefix(err, "manifest: heartbeat");
	db_bind_text(s, 1, m->host);
	db_bind_text(s, 2, h->version);
	db_bind_text(s, 3, h->kernel);
	db_bind_text(s, 4, h->isolation);
	db_bind_int64(s, 5, h->slots);
	db_bind_int64(s, 6, h->active);
	db_bind_int64(s, 7, h->started_ms ? h->started_ms : now);
	db_bind_int64(s, 8, now);
	return db_step_done(m, s, "manifest: heartbeat of this host", err);
}

static const char SQL_LAPSE[] =
	"UPDATE runs SET verdict = 'interrupted', ended_ms = ?1"
	" WHERE verdict = 'running' AND host IN (SELECT name FROM hosts"
	" WHERE heartbeat_ms < ?2 AND name <> ?3)";

int manifest_hosts_lapse(struct manifest *m, int64_t lease_ms, int64_t now_ms,
			 unsigned *count, struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = NULL;

	*count = 0;
	if (db_writable(m, err) < 0)
		return al_error_prefix(err, "manifest: lapsed hosts");
	s = db_stmt(m, SQL_LAPSE, err);
	if (s == NULL)
		return al_error_prefix(err, "manifest: lapsed hosts");
	db_bind_int64(s, 1, now_ms);
	db_bind_int64(s, 2, now_ms - lease_ms);
	db_bind_text(s, 3, m->host);
	if (db_step_done(m, s, "manifest: interrupt the runs of lapsed hosts",
			 err) < 0)
		return -1;
	*count = (unsigned)db_changes(s);
	return 0;
}

static const char SQL_HOSTS[] =
	"SELECT name, version, kernel, isolation, slots, active, started_ms,"
	" heartbeat_ms FROM hosts ORDER BY name";

static void copy_text(struct db_stmt *s, int col, char *out, size_t len)
{
	const char *t = db_column_text(s, col);

	snprintf(out, len, "%s", t ? t : "");
}

int manifest_hosts(struct manifest *m, manifest_host_fn fn, void *arg,
		   struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_HOSTS, err);
	struct manifest_host h;
	int rc, count = 0;

	if (s == NULL)
		return al_error_prefix(err, "manifest: hosts");
	while ((rc = db_step(s)) == DB_ROW) {
		memset(&h, 0, sizeof(h));
		copy_text(s, 0, h.name, sizeof(h.name));
		copy_text(s, 1, h.version, sizeof(h.version));
		copy_text(s, 2, h.kernel, sizeof(h.kernel));
		copy_text(s, 3, h.isolation, sizeof(h.isolation));
		h.slots = (uint32_t)db_column_int64(s, 4);
		h.active = (uint32_t)db_column_int64(s, 5);
		h.started_ms = db_column_int64(s, 6);
		h.heartbeat_ms = db_column_int64(s, 7);
		count++;
		if (fn != NULL && fn(&h, arg) != 0)
			return count;
	}
	if (rc != DB_DONE)
		return db_error(m, err, "manifest: hosts");
	return count;
}
