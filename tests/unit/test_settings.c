/*
 * airlockd's settings table (supervisor/settings.c) against its manual,
 * docs/man/airlockd.8: OPTIONS has an entry for exactly the table's
 * flags, ENVIRONMENT one for exactly its variables (and the few the
 * daemon reads that are not settings), each saying the table's default.
 * Also: every default parses, and the table gives what the daemon always
 * had (spot checks of supervisor_config_defaults()).
 *
 * Run from the top of the tree (tests/run.sh does), or with AIRLOCK_MAN
 * naming the page.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "supervisor/supervisor.h"

/* Variables airlockd(8) documents that are read elsewhere, not settings. */
static const char *const not_settings[] = { "NOTIFY_SOCKET",
					    "AIRLOCK_POLICY_PATH" };

#define ENTRIES_MAX 128

struct entry {
	char name[64];   /* "max-active" or "MAX_ACTIVE_GENERATIONS" */
	char head[512];  /* the line after .TP, de-roffed */
	char text[2048]; /* the whole entry, de-roffed, one line */
	bool env;
};

struct page {
	struct entry e[ENTRIES_MAX];
	size_t n;
};

/* Roff to plain words: requests, quotes, font escapes and \- go. */
static void deroff(const char *in, char *out, size_t len)
{
	size_t o = 0;
	const char *p = in;

	if (*p == '.') { /* ".B ", ".BR ", ".BI ", ".RB ", ".IR " */
		while (*p && *p != ' ')
			p++;
		while (*p == ' ')
			p++;
	}
	while (*p && o + 1 < len) {
		if (p[0] == '\\' && p[1] == '-') {
			out[o++] = '-';
			p += 2;
		} else if (p[0] == '\\' && p[1] == 'f' && p[2]) {
			p += 3;
		} else if (p[0] == '\\' && p[1] == 'c') {
			p += 2;
		} else if (*p == '"') {
			p++;
		} else {
			out[o++] = *p++;
		}
	}
	out[o] = '\0';
}

/* The entry's name: the flag after "--", or the variable (upper case). */
static void entry_name(const char *head, bool env, char *out, size_t len)
{
	const char *p = env ? head : strstr(head, "--");
	size_t o = 0;

	if (!p) {
		out[0] = '\0';
		return;
	}
	if (!env)
		p += 2;
	while (*p && o + 1 < len &&
	       ((*p >= 'a' && *p <= 'z') || *p == '-' ||
		(env && ((*p >= 'A' && *p <= 'Z') || *p == '_'))))
		out[o++] = *p++;
	out[o] = '\0';
}

static void append(char *buf, size_t len, const char *s)
{
	size_t n = strlen(buf);
	snprintf(buf + n, len - n, "%s%s", n ? " " : "", s);
}

/* The .TP entries of OPTIONS and ENVIRONMENT, from a page's text. */
static void page_parse(char *text, struct page *pg)
{
	enum { OTHER, OPTIONS, ENVIRONMENT } sect = OTHER;
	struct entry *cur = NULL;
	bool want_head = false;

	pg->n = 0;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char plain[512];
		if (strncmp(line, ".SH ", 4) == 0) {
			sect = strcmp(line + 4, "OPTIONS") == 0 ? OPTIONS
			       : strcmp(line + 4, "ENVIRONMENT") == 0
				       ? ENVIRONMENT
				       : OTHER;
			cur = NULL;
			continue;
		}
		if (sect == OTHER)
			continue;
		if (strcmp(line, ".TP") == 0) {
			want_head = true;
			cur = NULL;
			continue;
		}
		if (strncmp(line, ".PP", 3) == 0) {
			cur = NULL;
			continue;
		}
		deroff(line, plain, sizeof(plain));
		if (want_head) {
			want_head = false;
			assert_true(pg->n < ENTRIES_MAX);
			cur = &pg->e[pg->n++];
			memset(cur, 0, sizeof(*cur));
			cur->env = sect == ENVIRONMENT;
			snprintf(cur->head, sizeof(cur->head), "%s", plain);
			entry_name(plain, cur->env, cur->name,
				   sizeof(cur->name));
		}
		if (cur)
			append(cur->text, sizeof(cur->text), plain);
	}
}

static const struct entry *page_find(const struct page *pg, const char *name,
				     bool env)
{
	for (size_t i = 0; i < pg->n; i++)
		if (pg->e[i].env == env && strcmp(pg->e[i].name, name) == 0)
			return &pg->e[i];
	return NULL;
}

/* `want` is in `text` as a whole word: "default 5" is not in
 * "default 512M". */
static bool says(const char *text, const char *want)
{
	for (const char *p = text; (p = strstr(p, want)); p++) {
		char after = p[strlen(want)];
		if (!(after >= '0' && after <= '9') &&
		    !(after >= 'a' && after <= 'z') &&
		    !(after >= 'A' && after <= 'Z'))
			return true;
	}
	return false;
}

static char *read_page(void)
{
	const char *path = getenv("AIRLOCK_MAN");
	FILE *f = fopen(path ? path : "docs/man/airlockd.8", "r");
	static char buf[1 << 17];
	size_t n;

	if (!f)
		fail_msg("cannot open %s (run from the top of the tree)",
			 path ? path : "docs/man/airlockd.8");
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* Check a page's text against the table: the number of disagreements,
 * each printed. */
static int page_check(char *text)
{
	static struct page pg;
	struct supervisor_config cfg;
	int bad = 0;

	page_parse(text, &pg);
	supervisor_config_defaults(&cfg);
	for (size_t i = 0; i < supervisor_settings_count; i++) {
		const struct supervisor_setting *s = &supervisor_settings[i];
		char want[256], value[128];
		const struct entry *e;
		if (s->flag) {
			e = page_find(&pg, s->flag, false);
			snprintf(want, sizeof(want), "default %s", s->def);
			if (!e) {
				printf("# OPTIONS has no --%s\n", s->flag);
				bad++;
			} else if (s->def && !says(e->text, want)) {
				printf("# --%s: the page does not say \"%s\": "
				       "%s\n",
				       s->flag, want, e->text);
				bad++;
			}
		}
		if (s->var) {
			e = page_find(&pg, s->var, true);
			supervisor_setting_format(s, &cfg, value,
						  sizeof(value));
			snprintf(want, sizeof(want), "(%s)", value);
			if (!e) {
				printf("# ENVIRONMENT has no %s\n", s->var);
				bad++;
			} else if (s->def && !strstr(e->head, want)) {
				printf("# %s: the page does not say \"%s\": "
				       "%s\n",
				       s->var, want, e->head);
				bad++;
			}
		}
	}
	/* and nothing the table does not have */
	for (size_t k = 0; k < pg.n; k++) {
		const struct entry *e = &pg.e[k];
		bool known = !e->env && strcmp(e->name, "help") == 0;
		for (size_t i = 0; i < supervisor_settings_count; i++) {
			const char *n = e->env ? supervisor_settings[i].var
					       : supervisor_settings[i].flag;
			known |= n && strcmp(n, e->name) == 0;
		}
		for (size_t i = 0; e->env && i < ARRAY_SIZE(not_settings); i++)
			known |= strcmp(not_settings[i], e->name) == 0;
		if (!known) {
			printf("# %s%s is in the page, not in the table\n",
			       e->env ? "" : "--", e->name);
			bad++;
		}
	}
	return bad;
}

static void page_matches_table(void **state)
{
	(void)state;
	assert_int_equal(page_check(read_page()), 0);
}

/* The check can fail: a page with a setting the table lacks, one
 * missing, and a wrong default each count. */
static void check_catches_drift(void **state)
{
	(void)state;
	char *page = strdup(read_page());
	size_t n = strlen(page);
	char *extra = malloc(n + 64);
	assert_non_null(page);
	assert_non_null(extra);
	int base = page_check(strcpy(extra, page));
	assert_int_equal(base, 0);

	/* an option the table does not know */
	char *opts = strstr(page, ".SH OPTIONS\n");
	assert_non_null(opts);
	size_t at = (size_t)(opts - page) + strlen(".SH OPTIONS\n");
	memcpy(extra, page, at);
	strcpy(extra + at, ".TP\n.BI \\-\\-no\\-such\\-flag \" N\"\nx\n");
	strcat(extra, page + at);
	assert_int_equal(page_check(extra), 1);

	/* a default that disagrees (--max-active's 5 said as 6) */
	strcpy(extra, page);
	char *d = strstr(extra, "(default 5;");
	assert_non_null(d);
	d[9] = '6';
	assert_int_equal(page_check(extra), 1);

	/* an entry gone: METRICS_PORT renamed in the page */
	strcpy(extra, page);
	char *m = strstr(extra, ".BR METRICS_PORT \" (9100)\"");
	assert_non_null(m);
	memcpy(m + 4, "METRICS_PORX", 12);
	assert_int_equal(page_check(extra), 2); /* one missing, one unknown */
	free(extra);
	free(page);
}

static void defaults_are_the_daemons(void **state)
{
	struct supervisor_config cfg;
	(void)state;

	supervisor_config_defaults(&cfg);
	assert_string_equal(cfg.state_dir, "/var/lib/airlock");
	assert_string_equal(cfg.socket_path, SUPERVISOR_DEFAULT_SOCKET);
	assert_int_equal(cfg.max_active, 5);
	assert_int_equal(cfg.queue_max, 64);
	assert_int_equal(cfg.tick_ms, 30000);
	assert_int_equal(cfg.retention_days, 30);
	assert_int_equal(cfg.idle_timeout_ms, 60000);
	assert_int_equal(cfg.max_request, 16u << 20);
	assert_int_equal(cfg.max_connections, 1024);
	assert_int_equal(cfg.max_connections_per_uid, 64);
	assert_int_equal(cfg.admin_connections, 8);
	assert_int_equal(cfg.queue_max_per_uid, 16);
	assert_int_equal(cfg.max_buffered, 512u << 20);
	assert_int_equal(cfg.max_buffered_per_uid, 64u << 20);
	assert_int_equal(cfg.store_max_per_uid, 1ull << 30);
	assert_int_equal(cfg.store_versions_per_uid, 1000);
	assert_int_equal(cfg.store_free_min, 256u << 20);
	assert_int_equal(cfg.shutdown_grace_ms, 30000);
	assert_int_equal(cfg.log_level, 1);
	assert_false(cfg.log_pretty);
	assert_int_equal(cfg.metrics_port, 9100);
	assert_int_equal(cfg.default_memory_mb, 0);
	assert_int_equal(cfg.default_timeout_ms, 0);
	assert_null(cfg.prom_api_key);
	assert_null(cfg.metrics_listen);
}

/* The flag and the variable of one setting take their own forms and the
 * same bounds; errors name what was given. */
static void flags_and_variables(void **state)
{
	struct supervisor_config cfg;
	struct al_error err = { 0 };
	(void)state;

	char *args[] = { "airlockd",         "--tick", "2s",
			 "--default-memory", "128M",   "--log-pretty",
			 "--allow-uid",      "1000",   NULL };
	supervisor_config_defaults(&cfg);
	assert_int_equal(supervisor_config_from_args(&cfg, 8, args, &err), 0);
	assert_int_equal(cfg.tick_ms, 2000);
	assert_int_equal(cfg.default_memory_mb, 128);
	assert_true(cfg.log_pretty);
	assert_int_equal(cfg.n_client_uids, 1);
	assert_int_equal(cfg.client_uids[0], 1000);

	char *low[] = { "airlockd", "--tick", "50ms", NULL };
	supervisor_config_defaults(&cfg);
	assert_int_equal(supervisor_config_from_args(&cfg, 3, low, &err), -1);
	assert_string_equal(err.msg, "--tick: from 100ms to 24h");

	char *odd[] = { "airlockd", "--default-memory", "1.5M", NULL };
	supervisor_config_defaults(&cfg);
	assert_int_equal(supervisor_config_from_args(&cfg, 3, odd, &err), -1);
	assert_non_null(strstr(err.msg, "--default-memory: 1.5M: expected "
					"whole megabytes"));

	char *unknown[] = { "airlockd", "--no-such", NULL };
	supervisor_config_defaults(&cfg);
	assert_int_equal(supervisor_config_from_args(&cfg, 2, unknown, &err),
			 -1);
	assert_string_equal(err.msg, "unknown option --no-such");

	setenv("SYSTEM_TICK_MS", "99", 1);
	supervisor_config_defaults(&cfg);
	assert_int_equal(supervisor_config_from_env(&cfg, &err), -1);
	assert_non_null(strstr(err.msg, "SYSTEM_TICK_MS: "));
	setenv("SYSTEM_TICK_MS", "250", 1);
	setenv("LOG_PRETTY", "1", 1);
	assert_int_equal(supervisor_config_from_env(&cfg, &err), 0);
	assert_int_equal(cfg.tick_ms, 250);
	assert_true(cfg.log_pretty);
	unsetenv("SYSTEM_TICK_MS");
	unsetenv("LOG_PRETTY");

	assert_non_null(supervisor_setting_var("DATABASE_URL"));
	assert_null(supervisor_setting_var("NOTIFY_SOCKET"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(page_matches_table),
		cmocka_unit_test(check_catches_drift),
		cmocka_unit_test(defaults_are_the_daemons),
		cmocka_unit_test(flags_and_variables),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
