/*
 * The status members the manifest alone can give (protocol.h,
 * "report"). Linked into airlockd and into the airlock client, which
 * shows them itself when the daemon is down.
 */
#include <stdio.h>
#include <string.h>

#include "manifest/manifest.h"
#include "supervisor/protocol.h"

int64_t report_hour_start(int64_t now_ms)
{
	return now_ms / AL_HOUR_MS * AL_HOUR_MS;
}

int64_t report_day_start(int64_t now_ms, unsigned reset_hour)
{
	int64_t shift = (int64_t)reset_hour * AL_HOUR_MS;
	return (now_ms - shift) / AL_DAY_MS * AL_DAY_MS + shift;
}

static int archive_one(const struct manifest_feed_event *ev, void *arg)
{
	struct json_buf *jb = arg;
	char t[MANIFEST_TIME_MAX];

	manifest_time_format(ev->time_ms, false, t);
	json_object_open(jb);
	json_kv_string(jb, "time", t);
	json_kv_string(jb, "module", ev->module_name);
	json_kv_int(jb, "version", ev->module_version);
	json_kv_string(jb, "reason", ev->detail);
	json_object_close(jb);
	return 0;
}

int report_manifest_json(struct json_buf *jb, struct manifest *m,
			 int64_t since_ms, const struct manifest_viewer *viewer,
			 struct al_error *err)
{
	struct manifest_stats st;
	struct manifest_verdict_count v[16];
	/* module names: a client's own only (docs/protocol.md, Tenants) */
	struct manifest_feed_filter archives = { .kind = "archived",
						 .limit = 5,
						 .viewer = viewer };
	size_t nv;

	/* counts too: a client's own modules and their runs */
	if (manifest_stats(m, viewer, &st, err) < 0 ||
	    manifest_verdict_counts(m, since_ms, viewer, v, 16, &nv, err) < 0)
		return -1;
	json_key(jb, "modules");
	json_object_open(jb);
	for (int i = 0; i < MANIFEST_STATE_COUNT; i++)
		json_kv_uint(jb, manifest_state_name(i), st.modules[i]);
	json_object_close(jb);
	json_kv_uint(jb, "runs_recorded", st.runs);
	json_kv_uint(jb, "runs_running", st.runs_running);
	json_key(jb, "runs_by_verdict");
	json_object_open(jb);
	for (size_t i = 0; i < nv; i++)
		json_kv_uint(jb, v[i].verdict, v[i].count);
	json_object_close(jb);
	json_key(jb, "recent_archives");
	json_array_open(jb);
	if (manifest_feed(m, &archives, archive_one, jb, err) < 0)
		return -1;
	json_array_close(jb);
	return 0;
}

static void window(struct json_buf *jb, const char *used_key,
		   const char *limit_key, const char *left_key, uint64_t used,
		   bool known, unsigned limit)
{
	json_kv_uint(jb, used_key, used);
	if (known && limit) {
		json_kv_uint(jb, limit_key, limit);
		json_kv_uint(jb, left_key, used < limit ? limit - used : 0);
	} else {
		json_kv_null(jb, limit_key);
		json_kv_null(jb, left_key);
	}
}

void report_quota_json(struct json_buf *jb, uint32_t uid, uint64_t hour,
		       uint64_t day, const struct report_limits *l)
{
	json_object_open(jb);
	json_kv_uint(jb, "uid", uid);
	window(jb, "hour_used", "per_hour", "hour_left", hour, l->known,
	       l->per_hour);
	window(jb, "day_used", "per_day", "day_left", day, l->known,
	       l->per_day);
	json_object_close(jb);
}
