/*
 * Storage quotas (docs/protocol.md, "Bounds per client uid"): what one
 * submitter may keep in the state directory, and the free space below
 * which nobody may add to it.
 *
 * Threat: a client filling the disk. Six 12 MiB modules were stored in
 * 0.7 s, each kept for the retention period as a superseded version;
 * enough of that stops the manifest from taking writes for every tenant.
 * A submit is refused `storage_full` when the caller's stored bytes or
 * versions (every version with a file: all states but rejected) would
 * pass --store-max-per-uid or --store-versions-per-uid, or when the state
 * directory's file system would be left with less than --store-free-min
 * free. Admins are held to the free-space floor only.
 */
#include <stdio.h>
#include <sys/statvfs.h>

#include "supervisor/internal.h"

static int take(const struct manifest_storage *st, void *arg)
{
	*(struct manifest_storage *)arg = *st;
	return 0;
}

uint64_t storage_free_bytes(const struct supervisor *s)
{
	struct statvfs vfs;

	if (statvfs(s->cfg.state_dir, &vfs) < 0)
		return UINT64_MAX; /* unknown: the write itself will say */
	return (uint64_t)vfs.f_bavail * vfs.f_frsize;
}

int storage_admit(struct supervisor *s, const struct conn *c, size_t len,
		  char *msg, size_t mlen)
{
	const struct supervisor_config *cfg = &s->cfg;
	struct manifest_storage st = { .uid = c->uid };
	struct al_error err = { 0 };
	uint64_t free_bytes = storage_free_bytes(s);

	if (free_bytes < cfg->store_free_min + len) {
		snprintf(msg, mlen,
			 "the state directory has %llu bytes free, and "
			 "submissions stop at %llu (--store-free-min): an "
			 "operator must free space",
			 (unsigned long long)free_bytes,
			 (unsigned long long)cfg->store_free_min);
		return PROTO_E_STORAGE_FULL;
	}
	if (c->role == PROTO_ROLE_ADMIN)
		return 0;
	if (manifest_storage_use(s->m, c->uid, take, &st, &err) < 0) {
		snprintf(msg, mlen, "%s", err.msg);
		return PROTO_E_INTERNAL;
	}
	if (st.versions + 1 > cfg->store_versions_per_uid) {
		snprintf(msg, mlen,
			 "uid %u keeps %llu stored versions, the most it may "
			 "(--store-versions-per-uid): archived and superseded "
			 "versions count until retention removes them",
			 c->uid, (unsigned long long)st.versions);
		return PROTO_E_STORAGE_FULL;
	}
	if (st.bytes + len > cfg->store_max_per_uid) {
		snprintf(msg, mlen,
			 "uid %u keeps %llu bytes of modules; %zu more would "
			 "pass its %llu (--store-max-per-uid)",
			 c->uid, (unsigned long long)st.bytes, len,
			 (unsigned long long)cfg->store_max_per_uid);
		return PROTO_E_STORAGE_FULL;
	}
	return 0;
}

static int one_json(const struct manifest_storage *st, void *arg)
{
	struct json_buf *jb = arg;

	json_object_open(jb);
	json_kv_uint(jb, "uid", st->uid);
	json_kv_uint(jb, "bytes", st->bytes);
	json_kv_uint(jb, "versions", st->versions);
	json_object_close(jb);
	return 0;
}

int storage_json(struct supervisor *s, struct json_buf *jb,
		 const struct conn *c, struct al_error *err)
{
	const struct supervisor_config *cfg = &s->cfg;

	json_key(jb, "storage");
	json_object_open(jb);
	json_kv_uint(jb, "free_bytes", storage_free_bytes(s));
	json_kv_uint(jb, "free_min", cfg->store_free_min);
	json_kv_uint(jb, "max_bytes_per_uid", cfg->store_max_per_uid);
	json_kv_uint(jb, "max_versions_per_uid", cfg->store_versions_per_uid);
	json_key(jb, "uids");
	json_array_open(jb);
	/* a client's own line only, as for quotas */
	int64_t uid = c->role == PROTO_ROLE_ADMIN ? -1 : (int64_t)c->uid;
	if (manifest_storage_use(s->m, uid, one_json, jb, err) < 0)
		return -1;
	json_array_close(jb);
	json_object_close(jb);
	return 0;
}

struct collect {
	struct metrics_storage *out;
	size_t n, max;
};

static int collect_one(const struct manifest_storage *st, void *arg)
{
	struct collect *c = arg;

	if (c->n == c->max)
		return 1;
	c->out[c->n++] = (struct metrics_storage){ .uid = st->uid,
						   .bytes = st->bytes,
						   .versions = st->versions };
	return 0;
}

size_t storage_snapshot(struct supervisor *s, struct metrics_storage *out,
			size_t max)
{
	struct collect c = { .out = out, .max = max };
	struct al_error err = { 0 };

	if (manifest_storage_use(s->m, -1, collect_one, &c, &err) < 0)
		LOG(LOG_WARN, NULL, 0, "metrics: %s", err.msg);
	return c.n;
}
