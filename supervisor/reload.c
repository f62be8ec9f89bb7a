/*
 * SIGHUP: read the configuration again (environment, --config file, the
 * same flags) and the policies, without dropping a connection or a run.
 *
 * What a running daemon can take over in place: admission (max active,
 * queue, quotas), timeouts and bounds of connections, the ticker period,
 * retention, who may connect, logging, and the default policy's memory and
 * timeout (applied as policies are loaded again). What it cannot: where it
 * listens and keeps its state, and the metrics endpoint's key — a change
 * there is logged as needing a restart and the running value stays.
 * A configuration that does not load changes nothing at all.
 */
#include <errno.h>
#include <string.h>
#include <sys/timerfd.h>

#include "supervisor/internal.h"

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Log, as one line, the settings a restart is needed for. */
static void warn_fixed(const struct supervisor_config *cur,
		       const struct supervisor_config *next)
{
	char names[256] = "";
	struct {
		const char *name;
		bool changed;
	} fixed[] = {
		{ "state directory",
		  !same_str(cur->state_dir, next->state_dir) },
		{ "socket", !same_str(cur->socket_path, next->socket_path) },
		{ "socket group",
		  !same_str(cur->socket_group, next->socket_group) },
		{ "METRICS_PORT", cur->metrics_port != next->metrics_port },
		{ "--metrics-listen",
		  !same_str(cur->metrics_listen, next->metrics_listen) },
		{ "PROM_API_KEY",
		  !same_str(cur->prom_api_key, next->prom_api_key) },
		{ "DATABASE_URL",
		  !same_str(cur->database_url, next->database_url) },
		{ "AIRLOCK_UID_RANGE",
		  cur->uid_range.base != next->uid_range.base ||
			  cur->uid_range.count != next->uid_range.count },
	};
	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
		if (fixed[i].changed) {
			size_t n = strlen(names);
			snprintf(names + n, sizeof(names) - n, "%s%s",
				 n ? ", " : "", fixed[i].name);
		}
	if (names[0])
		LOG(LOG_WARN, NULL, 0,
		    "reload: %s changed; restart airlockd to apply (the "
		    "running values stay)",
		    names);
}

static void rearm_ticker(struct supervisor *s)
{
	struct itimerspec its = { 0 };
	its.it_interval.tv_sec = (time_t)(s->cfg.tick_ms / 1000);
	its.it_interval.tv_nsec = (long)(s->cfg.tick_ms % 1000) * 1000000;
	its.it_value = its.it_interval;
	if (timerfd_settime(s->tick.fd, 0, &its, NULL) < 0)
		LOG(LOG_WARN, NULL, 0, "reload: ticker: %s", strerror(errno));
}

/* Take over what can change in place; strings are not among them, so
 * nothing of next's file text is kept. */
static void take_over(struct supervisor *s,
		      const struct supervisor_config *next)
{
	struct supervisor_config *cur = &s->cfg;
	bool tick_changed = cur->tick_ms != next->tick_ms;

	cur->max_active = next->max_active;
	cur->queue_max = next->queue_max;
	cur->quota_per_hour = next->quota_per_hour;
	cur->quota_per_day = next->quota_per_day;
	cur->quota_reset_hour = next->quota_reset_hour;
	cur->tick_ms = next->tick_ms;
	cur->retention_days = next->retention_days;
	cur->idle_timeout_ms = next->idle_timeout_ms;
	cur->max_request = next->max_request;
	cur->max_connections = next->max_connections;
	cur->shutdown_grace_ms = next->shutdown_grace_ms;
	memcpy(cur->client_uids, next->client_uids, sizeof(cur->client_uids));
	cur->n_client_uids = next->n_client_uids;
	memcpy(cur->client_gids, next->client_gids, sizeof(cur->client_gids));
	cur->n_client_gids = next->n_client_gids;
	memcpy(cur->admin_gids, next->admin_gids, sizeof(cur->admin_gids));
	cur->n_admin_gids = next->n_admin_gids;
	cur->log_level = next->log_level;
	cur->log_pretty = next->log_pretty;
	cur->default_memory_mb = next->default_memory_mb;
	cur->default_timeout_ms = next->default_timeout_ms;
	log_setup(cur->log_level, cur->log_pretty);
	if (tick_changed)
		rearm_ticker(s);
}

void supervisor_reload(struct supervisor *s)
{
	struct supervisor_config next;
	struct al_error err = { 0 };
	int rc = supervisor_config_load(&next, s->cfg.argc, s->cfg.argv, &err);

	if (rc != 0) {
		LOG(LOG_ERROR, NULL, 0,
		    "reload: %s; the configuration is unchanged",
		    rc < 0 ? err.msg : "--help on the command line");
		if (rc > 0)
			supervisor_config_release(&next);
	} else {
		warn_fixed(&s->cfg, &next);
		take_over(s, &next);
		supervisor_config_release(&next);
		LOG(LOG_INFO, NULL, 0,
		    "reload: configuration read again%s%s (max active %u, "
		    "queue %u, quota %u/hour %u/day)",
		    s->cfg.config_path ? " from " : "",
		    s->cfg.config_path ? s->cfg.config_path : "",
		    s->cfg.max_active, s->cfg.queue_max, s->cfg.quota_per_hour,
		    s->cfg.quota_per_day);
	}
	sup_policy_reload_all(s);
	if (preflight_policies(s, &err) < 0)
		LOG(LOG_ERROR, NULL, 0, "reload: %s", err.msg);
	runs_start_queued(s);
}
