/*
 * This host among the airlockd processes that share one database
 * (docs/operations.md, "Fleet"): its heartbeat, the lease after which
 * another host's running runs are interrupted, and the hosts as `status`
 * and /metrics show them. On SQLite there is one host, and the same code
 * keeps its one row.
 */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "common/common.h"
#include "supervisor/internal.h"

static void describe(struct supervisor *s, struct manifest_host *h)
{
	struct utsname u;

	memset(h, 0, sizeof(*h));
	snprintf(h->version, sizeof(h->version), "%s", AIRLOCK_VERSION);
	if (uname(&u) == 0)
		snprintf(h->kernel, sizeof(h->kernel), "%s", u.release);
	snprintf(h->isolation, sizeof(h->isolation), "cgroup %s, %s",
		 sandbox_host_cgroup_mode(s->host),
		 sandbox_host_privilege_mode(s->host));
	h->slots = s->cfg.max_active;
	h->active = s->nactive;
	h->started_ms = s->started_unix_ms;
}

void fleet_beat(struct supervisor *s)
{
	struct al_error err = { 0 };
	struct manifest_host h;
	unsigned lapsed = 0;

	describe(s, &h);
	if (manifest_host_beat(s->m, &h, &err) < 0) {
		LOG(LOG_WARN, NULL, 0, "%s", err.msg);
		return;
	}
	if (manifest_hosts_lapse(s->m, (int64_t)s->cfg.host_lease_ms,
				 manifest_now_ms(), &lapsed, &err) < 0)
		LOG(LOG_WARN, NULL, 0, "%s", err.msg);
	else if (lapsed)
		LOG(LOG_WARN, NULL, 0,
		    "%u running runs of hosts silent for over %llu ms marked "
		    "interrupted",
		    lapsed, (unsigned long long)s->cfg.host_lease_ms);
}

bool fleet_host_lapsed(const struct supervisor *s,
		       const struct manifest_host *h, int64_t now)
{
	return strcmp(h->name, manifest_host(s->m)) != 0 &&
	       h->heartbeat_ms < now - (int64_t)s->cfg.host_lease_ms;
}

struct hosts_ctx {
	struct supervisor *s;
	struct json_buf *jb;
	int64_t now;
};

static int host_json(const struct manifest_host *h, void *arg)
{
	struct hosts_ctx *x = arg;
	struct json_buf *jb = x->jb;

	json_object_open(jb);
	json_kv_string(jb, "name", h->name);
	json_kv_bool(jb, "this", strcmp(h->name, manifest_host(x->s->m)) == 0);
	json_kv_bool(jb, "lapsed", fleet_host_lapsed(x->s, h, x->now));
	json_kv_string(jb, "version", h->version);
	json_kv_string(jb, "kernel", h->kernel);
	json_kv_string(jb, "isolation", h->isolation);
	json_kv_uint(jb, "slots", h->slots);
	json_kv_uint(jb, "active_runs", h->active);
	json_kv_int(jb, "started_ms", h->started_ms);
	json_kv_int(jb, "heartbeat_ms", h->heartbeat_ms);
	json_kv_int(jb, "heartbeat_age_ms", x->now - h->heartbeat_ms);
	json_object_close(jb);
	return 0;
}

int fleet_hosts_json(struct supervisor *s, struct json_buf *jb,
		     struct al_error *err)
{
	struct hosts_ctx x = { s, jb, manifest_now_ms() };
	int rc;

	json_kv_string(jb, "host", manifest_host(s->m));
	json_kv_uint(jb, "host_lease_ms", s->cfg.host_lease_ms);
	json_key(jb, "hosts");
	json_array_open(jb);
	rc = manifest_hosts(s->m, host_json, &x, err);
	json_array_close(jb);
	return rc < 0 ? -1 : 0;
}

struct snapshot_ctx {
	struct supervisor *s;
	struct metrics_host *out;
	size_t n, max;
	int64_t now;
};

static int host_metrics(const struct manifest_host *h, void *arg)
{
	struct snapshot_ctx *x = arg;
	struct metrics_host *o;

	if (x->n == x->max)
		return 1;
	o = &x->out[x->n++];
	snprintf(o->name, sizeof(o->name), "%s", h->name);
	o->up = !fleet_host_lapsed(x->s, h, x->now);
	o->age_s = (double)(x->now - h->heartbeat_ms) / 1000.0;
	o->active = h->active;
	o->slots = h->slots;
	return 0;
}

size_t fleet_snapshot(struct supervisor *s, struct metrics_host *out,
		      size_t max)
{
	struct snapshot_ctx x = { s, out, 0, max, manifest_now_ms() };
	struct al_error err = { 0 };

	if (manifest_hosts(s->m, host_metrics, &x, &err) < 0)
		LOG(LOG_WARN, NULL, 0, "metrics: %s", err.msg);
	return x.n;
}
