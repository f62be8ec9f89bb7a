/*
 * The Prometheus text exposition format (version 0.0.4) of one snapshot of
 * the daemon's counters: every family with its # HELP and # TYPE lines,
 * every label set that can exist written out (zeros included), so a rate()
 * over a verdict that has not happened yet is 0 rather than absent.
 *
 * Pure: no daemon state, no system calls but the FILE * it writes to, so
 * tests/unit/test_metrics.c feeds it snapshots. Names: docs/design.md,
 * "Metrics"; meanings: docs/metrics.md.
 */
#include <stdio.h>
#include <string.h>

#include "supervisor/internal.h"

/* Upper bounds of airlock_run_duration_seconds, in seconds: a trivial
 * module ends in a few ms, the default policy stops one at 3 s, a
 * policy's timeout rarely exceeds 30 s. */
/* clang-format off */
static const double bounds[METRICS_BUCKETS] = {
	0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2,
	0.5,   1,     2,     5,	   10,	 20,   30,
};
/* clang-format on */

void metrics_observe(struct metrics_histogram *h, double seconds)
{
	size_t i = 0;

	if (!(seconds >= 0))
		seconds = 0; /* NaN or a clock step: count it, in the first */
	while (i < METRICS_BUCKETS && seconds > bounds[i])
		i++;
	if (i < METRICS_BUCKETS)
		h->le[i]++;
	else
		h->inf++;
	h->count++;
	h->sum += seconds;
}

bool metrics_key_equal(const char *given, const char *want)
{
	size_t n = strlen(want), g = strlen(given);
	unsigned char diff = g != n;

	/* every byte of `want` is compared whatever differs first; bytes
	 * past the end of `given` are compared with its NUL */
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(want[i] ^ given[i < g ? i : g]);
	return diff == 0;
}

static void family(FILE *f, const char *name, const char *type,
		   const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(FILE *f, const char *name, const char *help, double v)
{
	family(f, name, "gauge", help);
	fprintf(f, "%s %.15g\n", name, v);
}

static void counter(FILE *f, const char *name, const char *help, uint64_t v)
{
	family(f, name, "counter", help);
	fprintf(f, "%s %llu\n", name, (unsigned long long)v);
}

/* A label value: backslash, double quote and newline escaped. */
static void label_value(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void histogram(FILE *f, const struct metrics_histogram *h)
{
	static const char name[] = "airlock_run_duration_seconds";
	uint64_t cumulative = 0;

	family(f, name, "histogram",
	       "Wall-clock time of finished runs (validations and execs), "
	       "from the jail's start to its end.");
	for (size_t i = 0; i < METRICS_BUCKETS; i++) {
		cumulative += h ? h->le[i] : 0;
		fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i],
			(unsigned long long)cumulative);
	}
	fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name,
		(unsigned long long)(h ? h->count : 0));
	fprintf(f, "%s_sum %.15g\n%s_count %llu\n", name, h ? h->sum : 0.0,
		name, (unsigned long long)(h ? h->count : 0));
}

static void quotas(FILE *f, const struct metrics_snapshot *m)
{
	static const char *const windows[] = { "hour", "day" };
	unsigned limit[] = { m->quota_per_hour, m->quota_per_day };

	family(f, "airlock_quota_limit", "gauge",
	       "Runs one uid may start per window (only windows with a "
	       "quota).");
	for (size_t w = 0; w < 2; w++)
		if (limit[w])
			fprintf(f, "airlock_quota_limit{window=\"%s\"} %u\n",
				windows[w], limit[w]);
	family(f, "airlock_quota_remaining", "gauge",
	       "Runs a uid may still start in the current window (uids seen "
	       "since the daemon started).");
	for (size_t i = 0; i < m->nquotas; i++) {
		int64_t left[] = { m->quotas[i].hour_left,
				   m->quotas[i].day_left };
		for (size_t w = 0; w < 2; w++)
			if (left[w] >= 0)
				fprintf(f,
					"airlock_quota_remaining{uid=\"%u\","
					"window=\"%s\"} %lld\n",
					(unsigned)m->quotas[i].uid, windows[w],
					(long long)left[w]);
	}
}

static void storage(FILE *f, const struct metrics_snapshot *m)
{
	gauge(f, "airlock_state_dir_free_bytes",
	      "Free space of the state directory's file system.",
	      (double)m->store_free_bytes);
	gauge(f, "airlock_store_free_min_bytes",
	      "Free space below which submissions are refused "
	      "(--store-free-min).",
	      (double)m->store_free_min);
	gauge(f, "airlock_store_limit_bytes",
	      "Module bytes one uid may keep stored (--store-max-per-uid).",
	      (double)m->store_max_per_uid);
	gauge(f, "airlock_store_limit_versions",
	      "Versions one uid may keep stored (--store-versions-per-uid).",
	      (double)m->store_versions_per_uid);
	static const struct {
		const char *name, *help;
		bool bytes;
	} per_uid[] = {
		{ "airlock_stored_bytes",
		  "Bytes of module versions with a file, by submitting uid.",
		  true },
		{ "airlock_stored_versions",
		  "Module versions with a file, by submitting uid.", false },
	};
	for (size_t k = 0; k < ARRAY_SIZE(per_uid); k++) {
		family(f, per_uid[k].name, "gauge", per_uid[k].help);
		for (size_t i = 0; i < m->nstorage; i++)
			fprintf(f, "%s{uid=\"%u\"} %llu\n", per_uid[k].name,
				(unsigned)m->storage[i].uid,
				(unsigned long long)(per_uid[k].bytes
							     ? m->storage[i]
								       .bytes
							     : m->storage[i]
								       .versions));
	}
}

static void hosts(FILE *f, const struct metrics_snapshot *m)
{
	static const char *const families[][2] = {
		{ "airlock_host_up",
		  "1 for this host and each host of the database whose "
		  "heartbeat is within --host-lease, else 0." },
		{ "airlock_host_heartbeat_age_seconds",
		  "Since each host of the database last said it is alive." },
		{ "airlock_host_active_runs",
		  "Jails each host ran at its last heartbeat." },
	};
	for (size_t k = 0; k < ARRAY_SIZE(families); k++) {
		family(f, families[k][0], "gauge", families[k][1]);
		for (size_t i = 0; i < m->nhosts; i++) {
			const struct metrics_host *h = &m->hosts[i];
			double v = k == 0   ? h->up
				   : k == 1 ? h->age_s
					    : h->active;
			fprintf(f, "%s{host=\"", families[k][0]);
			label_value(f, h->name);
			fprintf(f, "\"} %.15g\n", v);
		}
	}
}

int metrics_render(FILE *f, const struct metrics_snapshot *m)
{
	family(f, "airlock_build_info", "gauge",
	       "Always 1; the version of the running airlockd.");
	fputs("airlock_build_info{version=\"", f);
	label_value(f, m->version);
	fputs("\"} 1\n", f);
	gauge(f, "airlock_start_time_seconds",
	      "When airlockd started, in seconds since the Unix epoch.",
	      m->start_time_s);
	gauge(f, "airlock_healthy",
	      "1 when the last self-check passed (the manifest is writable, "
	      "the socket is ours), else 0.",
	      m->healthy);
	gauge(f, "airlock_ready",
	      "1 while airlockd accepts work, 0 while it drains on SIGTERM.",
	      m->ready);
	gauge(f, "airlock_manifest_up",
	      "1 while the manifest answers, 0 while its server is out of "
	      "reach (airlockd reconnects by itself).",
	      m->manifest_up);
	gauge(f, "airlock_manifest_pending_records",
	      "Run ends waiting for the manifest's server.",
	      m->pending_records);
	gauge(f, "airlock_active_runs", "Jails running now.", m->active);
	gauge(f, "airlock_max_active_runs",
	      "Concurrent runs allowed (MAX_ACTIVE_GENERATIONS).",
	      m->max_active);
	gauge(f, "airlock_queue_depth", "Runs waiting for a free slot.",
	      m->queued);
	gauge(f, "airlock_connections", "Clients connected to the socket.",
	      m->connections);
	family(f, "airlock_registry_modules", "gauge",
	       "Module versions in the manifest, by state.");
	for (int i = 0; m->have_modules && i < MANIFEST_STATE_COUNT; i++)
		fprintf(f, "airlock_registry_modules{state=\"%s\"} %llu\n",
			manifest_state_name(i),
			(unsigned long long)m->modules[i]);
	family(f, "airlock_runs_total", "counter",
	       "Runs ended since start (validations and execs), by verdict.");
	for (int v = 0; v < METRICS_VERDICTS; v++)
		fprintf(f, "airlock_runs_total{verdict=\"%s\"} %llu\n",
			al_verdict_name(v), (unsigned long long)m->verdicts[v]);
	counter(f, "airlock_sandbox_timeouts_total",
		"Runs stopped at their policy's time limit.", m->timeouts);
	counter(f, "airlock_validation_failures_total",
		"Submissions rejected by their validation run.",
		m->validation_failures);
	counter(f, "airlock_auto_archives_total",
		"Modules archived automatically after a failing run.",
		m->auto_archives);
	counter(f, "airlock_rate_limit_hits_total",
		"Runs refused because the caller's quota was spent.",
		m->rate_limit_hits);
	counter(f, "airlock_overloaded_total",
		"Runs refused because the run queue was full.", m->overloaded);
	quotas(f, m);
	storage(f, m);
	hosts(f, m);
	histogram(f, m->durations);
	return ferror(f) ? -1 : 0;
}
