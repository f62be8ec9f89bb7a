/* Unit tests: the Prometheus rendering of supervisor/metrics.c (fed
 * snapshots), the duration histogram, the constant-time key comparison,
 * and the --metrics-listen / METRICS_PORT address parsing of config.c. */
#include <arpa/inet.h>
#include <getopt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "supervisor/internal.h"

static char *render(const struct metrics_snapshot *m)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_int_equal(metrics_render(f, m), 0);
	assert_int_equal(fclose(f), 0);
	return text;
}

static void expect_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return;
	fail_msg("no line \"%s\" in:\n%s", line, text);
}

static void strip_suffix(char *name, const char *sfx)
{
	size_t n = strlen(name), k = strlen(sfx);
	if (n > k && strcmp(name + n - k, sfx) == 0)
		name[n - k] = '\0';
}

static void test_render(void **state)
{
	struct metrics_histogram h = { 0 };
	struct metrics_quota q[] = {
		{ .uid = 1000, .hour_left = 3, .day_left = -1 }
	};
	struct metrics_snapshot m = {
		.version = "1.\"2\\\n",
		.start_time_s = 1700000000.5,
		.active = 2,
		.max_active = 5,
		.queued = 1,
		.connections = 4,
		.healthy = true,
		.ready = true,
		.have_modules = true,
		.timeouts = 7,
		.validation_failures = 8,
		.auto_archives = 9,
		.rate_limit_hits = 10,
		.overloaded = 11,
		.durations = &h,
		.quota_per_hour = 5,
		.quotas = q,
		.nquotas = 1,
	};
	m.modules[MANIFEST_ACTIVE] = 3;
	m.verdicts[AL_VERDICT_OK] = 12;
	m.verdicts[AL_VERDICT_TIMEOUT] = 7;
	metrics_observe(&h, 0.0004);
	metrics_observe(&h, 0.001); /* on a bound: that bucket */
	metrics_observe(&h, 0.003);
	metrics_observe(&h, 31);
	char *t = render(&m);
	expect_line(t, "airlock_build_info{version=\"1.\\\"2\\\\\\n\"} 1");
	expect_line(t, "airlock_start_time_seconds 1700000000.5");
	expect_line(t, "airlock_active_runs 2");
	expect_line(t, "airlock_queue_depth 1");
	expect_line(t, "airlock_registry_modules{state=\"active\"} 3");
	expect_line(t, "airlock_registry_modules{state=\"archived\"} 0");
	expect_line(t, "airlock_runs_total{verdict=\"ok\"} 12");
	expect_line(t, "airlock_runs_total{verdict=\"timeout\"} 7");
	expect_line(t, "airlock_runs_total{verdict=\"setup_error\"} 0");
	expect_line(t, "airlock_sandbox_timeouts_total 7");
	expect_line(t, "airlock_validation_failures_total 8");
	expect_line(t, "airlock_auto_archives_total 9");
	expect_line(t, "airlock_rate_limit_hits_total 10");
	expect_line(t, "airlock_quota_limit{window=\"hour\"} 5");
	expect_line(t,
		    "airlock_quota_remaining{uid=\"1000\",window=\"hour\"} 3");
	assert_null(strstr(t, "window=\"day\""));
	expect_line(t, "airlock_run_duration_seconds_bucket{le=\"0.001\"} 2");
	expect_line(t, "airlock_run_duration_seconds_bucket{le=\"0.002\"} 2");
	expect_line(t, "airlock_run_duration_seconds_bucket{le=\"0.005\"} 3");
	expect_line(t, "airlock_run_duration_seconds_bucket{le=\"30\"} 3");
	expect_line(t, "airlock_run_duration_seconds_bucket{le=\"+Inf\"} 4");
	expect_line(t, "airlock_run_duration_seconds_count 4");
	expect_line(t, "# TYPE airlock_run_duration_seconds histogram");
	expect_line(t, "# TYPE airlock_runs_total counter");
	/* every sample's family has HELP and TYPE */
	for (char *line = t; *line;) {
		char *end = strchr(line, '\n');
		assert_non_null(end);
		if (*line != '#') {
			char name[128], want[160];
			size_t n = strcspn(line, "{ ");
			assert_true(n < sizeof(name));
			memcpy(name, line, n);
			name[n] = '\0';
			strip_suffix(name, "_bucket");
			strip_suffix(name, "_sum");
			strip_suffix(name, "_count");
			snprintf(want, sizeof(want), "# HELP %s ", name);
			if (!strstr(t, want))
				fail_msg("no HELP for %s", name);
			snprintf(want, sizeof(want), "# TYPE %s ", name);
			if (!strstr(t, want))
				fail_msg("no TYPE for %s", name);
		}
		line = end + 1;
	}
	free(t);
}

static void test_render_empty(void **state)
{
	struct metrics_snapshot m = { .version = "0" };
	char *t = render(&m);
	/* no manifest answer: the family is there, without samples */
	assert_non_null(strstr(t, "# TYPE airlock_registry_modules gauge"));
	assert_null(strstr(t, "airlock_registry_modules{"));
	expect_line(t, "airlock_run_duration_seconds_count 0");
	expect_line(t, "airlock_runs_total{verdict=\"crashed\"} 0");
	free(t);
}

static void test_key_equal(void **state)
{
	assert_true(metrics_key_equal("0123456789abcdef", "0123456789abcdef"));
	assert_false(metrics_key_equal("0123456789abcdeF", "0123456789abcdef"));
	assert_false(metrics_key_equal("0123456789abcde", "0123456789abcdef"));
	assert_false(
		metrics_key_equal("0123456789abcdefg", "0123456789abcdef"));
	assert_false(metrics_key_equal("", "0123456789abcdef"));
}

static void test_listen(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char buf[64];
	struct al_error err = { 0 };

	assert_int_equal(supervisor_parse_listen("X", "127.0.0.1:9100", &ss,
						 &len, &err),
			 0);
	assert_int_equal(ss.ss_family, AF_INET);
	supervisor_format_listen(&ss, buf, sizeof(buf));
	assert_string_equal(buf, "127.0.0.1:9100");
	assert_int_equal(supervisor_parse_listen("X", "[::1]:65535", &ss, &len,
						 &err),
			 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	supervisor_format_listen(&ss, buf, sizeof(buf));
	assert_string_equal(buf, "[::1]:65535");
	/* clang-format off */
	static const char *const bad[] = {
		"127.0.0.1",	  "127.0.0.1:",
		"127.0.0.1:0",	  "127.0.0.1:65536",
		"localhost:80",	  "::1:80",
		"[::1]",	  "[::1]80",
		"[127.0.0.1]:80", ":80",
		"1.2.3.4:80x",	  "[::1:80",
	};
	/* clang-format on */
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(&err, 0, sizeof(err));
		if (supervisor_parse_listen("--metrics-listen", bad[i], &ss,
					    &len, &err) == 0)
			fail_msg("accepted %s", bad[i]);
		assert_non_null(strstr(err.msg, "--metrics-listen"));
	}
}

static void test_config(void **state)
{
	struct supervisor_config cfg;
	struct al_error err = { 0 };
	char *none[] = { "airlockd", NULL };
	char *flag[] = { "airlockd", "--metrics-listen", "[::]:9200", NULL };

	supervisor_config_defaults(&cfg);
	optind = 0;
	assert_int_equal(supervisor_config_from_args(&cfg, 1, none, &err), 0);
	assert_int_equal(cfg.metrics_addr_len, sizeof(struct sockaddr_in));
	assert_int_equal(ntohs(((struct sockaddr_in *)&cfg.metrics_addr)
				       ->sin_port),
			 9100);
	cfg.metrics_port = 0; /* METRICS_PORT=0 */
	optind = 0;
	assert_int_equal(supervisor_config_from_args(&cfg, 1, none, &err), 0);
	assert_int_equal(cfg.metrics_addr_len, 0);
	optind = 0; /* the flag wins over METRICS_PORT=0 */
	assert_int_equal(supervisor_config_from_args(&cfg, 3, flag, &err), 0);
	assert_int_equal(cfg.metrics_addr_len, sizeof(struct sockaddr_in6));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_render_empty),
		cmocka_unit_test(test_key_equal),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
