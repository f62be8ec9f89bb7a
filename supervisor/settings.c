/*
 * airlockd's settings: one table row each (flag, environment variable,
 * kind, bounds, default, help), as policy/parse.c has for policy keys.
 * From it come the built-in defaults, the --help text, the names a
 * --config file may set, the environment reader and the option parsing;
 * tests/unit/test_settings.c holds docs/man/airlockd.8 to it.
 *
 * A new setting is a field in struct supervisor_config (supervisor.h), a
 * row below, and its entry in airlockd(8): under OPTIONS for a flag,
 * under ENVIRONMENT for a variable, with the same default.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sandbox/sandbox.h"
#include "supervisor/supervisor.h"

#define FIELD(f)                                                               \
	offsetof(struct supervisor_config, f),                                 \
		sizeof(((struct supervisor_config *)0)->f)
#define LIST(f, n)                                                             \
	FIELD(f), .count_offset = offsetof(struct supervisor_config, n)
#define MiB (UINT64_C(1) << 20)

/* clang-format off */
const struct supervisor_setting supervisor_settings[] = {
	{ "state-dir", "AIRLOCK_STATE_DIR", SET_STRING, FIELD(state_dir),
	  .arg = "DIR", .def = "/var/lib/airlock", .help = "state directory" },
	{ "socket", "AIRLOCK_SOCKET", SET_STRING, FIELD(socket_path),
	  .arg = "PATH", .def = SUPERVISOR_DEFAULT_SOCKET,
	  .help = "listening socket" },
	{ "socket-group", NULL, SET_STRING, FIELD(socket_group),
	  .arg = "GROUP", .help = "group owning the socket (mode 0660)" },
	{ "allow-uid", NULL, SET_UIDS, LIST(client_uids, n_client_uids),
	  .arg = "UID|USER", .help = "a client uid (repeatable, up to 32)" },
	{ "allow-group", NULL, SET_GIDS, LIST(client_gids, n_client_gids),
	  .arg = "GROUP", .help = "a client group (repeatable, up to 32)" },
	{ "admin-group", NULL, SET_GIDS, LIST(admin_gids, n_admin_gids),
	  .arg = "GROUP",
	  .help = "an admin group (repeatable, up to 32); uid 0 is always "
		  "admin" },
	{ "max-active", "MAX_ACTIVE_GENERATIONS", SET_UINT, FIELD(max_active),
	  1, 4096, .arg = "N", .def = "5", .help = "concurrent runs" },
	{ "queue-max", NULL, SET_UINT, FIELD(queue_max), 0, 65536, .arg = "N",
	  .def = "64", .help = "runs waiting beyond those" },
	{ "quota-per-hour", NULL, SET_UINT, FIELD(quota_per_hour), 0,
	  UINT32_MAX, .arg = "N", .def = "0",
	  .help = "runs per uid per hour; 0: no quota" },
	{ "quota-per-day", NULL, SET_UINT, FIELD(quota_per_day), 0, UINT32_MAX,
	  .arg = "N", .def = "0", .help = "runs per uid per day; 0: no quota" },
	{ "quota-reset-hour", "QUOTA_RESET_HOUR", SET_UINT,
	  FIELD(quota_reset_hour), 0, 23, .arg = "H", .def = "0",
	  .help = "hour (UTC) the daily quota resets" },
	/* the policy's own bounds: 4M to 1T, 1ms to 24h; unset (0) leaves
	 * the default policy's values */
	{ "default-memory", "SANDBOX_MEM_MB", SET_MIB, FIELD(default_memory_mb),
	  4, 1u << 20, .arg = "SIZE",
	  .range = "expected whole megabytes from 4M to 1T",
	  .help = "memory of the default policy; unset: the policy's 64M" },
	{ "default-timeout", "SANDBOX_TIMEOUT_MS", SET_MS,
	  FIELD(default_timeout_ms), 1, AL_DAY_MS, .arg = "DUR",
	  .range = "from 1ms to 24h",
	  .help = "timeout of the default policy; unset: the policy's 3s" },
	{ "retention-days", "ARCHIVE_RETENTION_DAYS", SET_UINT,
	  FIELD(retention_days), 0, 36500, .arg = "N", .def = "30",
	  .help = "keep archived modules and runs N days; 0: forever" },
	{ "idle-timeout", NULL, SET_MS, FIELD(idle_timeout_ms), 100,
	  UINT64_MAX, .arg = "DUR", .def = "60s", .range = "at least 100ms",
	  .help = "close silent connections" },
	{ "max-request", NULL, SET_SIZE, FIELD(max_request), 1024, 1u << 30,
	  .arg = "SIZE", .def = "16M", .range = "between 1K and 1G",
	  .help = "largest request line" },
	{ "max-connections", NULL, SET_UINT, FIELD(max_connections), 1, 65536,
	  .arg = "N", .def = "1024", .help = "connections served at once" },
	{ "max-connections-per-uid", NULL, SET_UINT,
	  FIELD(max_connections_per_uid), 1, 65536, .arg = "N", .def = "64",
	  .help = "one client uid's" },
	{ "admin-connections", NULL, SET_UINT, FIELD(admin_connections), 0,
	  65535, .arg = "N", .def = "8",
	  .help = "of those, kept for admins" },
	{ "queue-max-per-uid", NULL, SET_UINT, FIELD(queue_max_per_uid), 1,
	  65536, .arg = "N", .def = "16",
	  .help = "runs one client uid may have queued" },
	/* a buffer budget: at least what one exec answer may take (two
	 * captured streams of 1 MiB, up to six bytes each once escaped) */
	{ "max-buffered", NULL, SET_SIZE, FIELD(max_buffered), 16 * MiB,
	  64ull << 30, .arg = "SIZE", .def = "512M",
	  .range = "between 16M and 64G",
	  .help = "request, answer and stdin bytes held for all clients" },
	{ "max-buffered-per-uid", NULL, SET_SIZE, FIELD(max_buffered_per_uid),
	  16 * MiB, 64ull << 30, .arg = "SIZE", .def = "64M",
	  .range = "between 16M and 64G", .help = "for one client uid" },
	{ "store-max-per-uid", NULL, SET_SIZE, FIELD(store_max_per_uid), 1024,
	  UINT64_MAX, .arg = "SIZE", .def = "1G", .range = "out of range",
	  .help = "module bytes one uid may keep" },
	{ "store-versions-per-uid", NULL, SET_UINT,
	  FIELD(store_versions_per_uid), 1, UINT32_MAX, .arg = "N",
	  .def = "1000", .help = "versions one uid may keep" },
	{ "store-free-min", NULL, SET_SIZE, FIELD(store_free_min), 0,
	  UINT64_MAX, .arg = "SIZE", .def = "256M", .range = "out of range",
	  .help = "no submit below this free space" },
	/* an answer of `result` carries each kept stream twice (as text
	 * and as base64): config.c checks it fits one uid's buffers */
	{ "output-keep", NULL, SET_SIZE, FIELD(output_keep), 0, 4 * MiB,
	  .arg = "SIZE", .def = "1M", .range = "between 0 and 4M",
	  .help = "bytes of each stream a run keeps for result" },
	{ "bundle-max-entries", NULL, SET_UINT, FIELD(bundle_max_entries), 1,
	  1u << 20, .arg = "N", .def = "4096",
	  .help = "files and directories in one bundle's tree" },
	{ "bundle-max-bytes", NULL, SET_SIZE, FIELD(bundle_max_bytes), 1024,
	  64ull << 30, .arg = "SIZE", .def = "256M",
	  .range = "between 1K and 64G",
	  .help = "bytes one bundle unpacks to" },
	{ "build-timeout", NULL, SET_MS, FIELD(build_timeout_ms), 1, AL_DAY_MS,
	  .arg = "DUR", .def = "60s", .range = "from 1ms to 24h",
	  .help = "a bundle's build step, wall clock" },
	{ "build-memory", NULL, SET_MIB, FIELD(build_memory_mb), 4, 1u << 20,
	  .arg = "SIZE", .def = "512M",
	  .range = "expected whole megabytes from 4M to 1T",
	  .help = "a bundle's build step, memory" },
	{ "uid-range", "AIRLOCK_UID_RANGE", SET_UID_RANGE, FIELD(uid_range),
	  .arg = "BASE:COUNT", .def = SANDBOX_UID_RANGE_DEFAULT,
	  .help = "host uids for runs, one each, or none" },
	{ "shutdown-grace", NULL, SET_MS, FIELD(shutdown_grace_ms), 0,
	  UINT64_MAX, .arg = "DUR", .def = "30s",
	  .help = "SIGTERM: time runs get to finish" },
	{ "tick", "SYSTEM_TICK_MS", SET_MS, FIELD(tick_ms), 100, AL_DAY_MS,
	  .arg = "DUR", .def = "30s", .range = "from 100ms to 24h",
	  .help = "ticker period" },
	{ "log-level", "LOG_LEVEL", SET_LEVEL, FIELD(log_level),
	  .arg = "LEVEL", .def = "info",
	  .help = "debug, info, warn or error" },
	{ "log-pretty", "LOG_PRETTY", SET_BOOL, FIELD(log_pretty),
	  .def = "false", .help = "indented log lines" },
	{ "metrics-listen", NULL, SET_STRING, FIELD(metrics_listen),
	  .arg = "ADDR:PORT",
	  .help = "HTTP for /metrics, /healthz, /ready (127.0.0.1:"
		  "METRICS_PORT; [::1]:PORT for IPv6)" },
	{ NULL, "METRICS_PORT", SET_UINT, FIELD(metrics_port), 0, 65535,
	  .def = "9100",
	  .help = "port of the HTTP endpoint on 127.0.0.1; 0: no HTTP" },
	{ NULL, "PROM_API_KEY", SET_STRING, FIELD(prom_api_key),
	  .help = "the key GET /metrics requires (x-api-key)" },
	{ NULL, "DATABASE_URL", SET_STRING, FIELD(database_url),
	  .help = "the manifest: the SQLite file in the state directory, or "
		  "postgresql://..." },
	{ "host-name", "AIRLOCK_HOST", SET_STRING, FIELD(host_name),
	  .arg = "NAME",
	  .help = "this host among those sharing a database (the host "
		  "name)" },
	{ "host-lease", NULL, SET_MS, FIELD(host_lease_ms), 1000, AL_DAY_MS,
	  .arg = "DUR", .def = "90s", .range = "from 1s to 24h",
	  .help = "a host silent this long has its runs interrupted" },
	{ "config", NULL, SET_CONFIG, FIELD(config_path), .arg = "FILE",
	  .help = "NAME=VALUE lines of the variables; over the environment, "
		  "under the flags; SIGHUP reads it again" },
};
/* clang-format on */

const size_t supervisor_settings_count = ARRAY_SIZE(supervisor_settings);

/* ------------------------------------------------------------ values */

static void *field(struct supervisor_config *cfg,
		   const struct supervisor_setting *s)
{
	return (char *)cfg + s->offset;
}

static void store_uint(void *p, size_t size, uint64_t v)
{
	switch (size) {
	case sizeof(uint8_t): *(uint8_t *)p = (uint8_t)v; break;
	case sizeof(uint16_t): *(uint16_t *)p = (uint16_t)v; break;
	case sizeof(uint32_t): *(uint32_t *)p = (uint32_t)v; break;
	default: *(uint64_t *)p = v; break;
	}
}

static uint64_t load_uint(const void *p, size_t size)
{
	switch (size) {
	case sizeof(uint8_t): return *(const uint8_t *)p;
	case sizeof(uint16_t): return *(const uint16_t *)p;
	case sizeof(uint32_t): return *(const uint32_t *)p;
	default: return *(const uint64_t *)p;
	}
}

static int parse_level(const char *name, const char *v, int *out,
		       struct al_error *err)
{
	static const char *const levels[] = { "debug", "info", "warn",
					      "error" };
	for (size_t i = 0; i < ARRAY_SIZE(levels); i++)
		if (strcasecmp(v, levels[i]) == 0) {
			*out = (int)i;
			return 0;
		}
	return al_error_set(
		err, EINVAL,
		"%s: \"%.64s\": expected debug, info, warn or error", name, v);
}

static int add_id(const struct supervisor_setting *s, const char *opt,
		  const char *v, struct supervisor_config *cfg,
		  struct al_error *err)
{
	uint32_t *list = field(cfg, s);
	size_t *n = (size_t *)((char *)cfg + s->count_offset);
	uint64_t id;

	if (*n >= s->size / sizeof(*list))
		return al_error_set(err, E2BIG, "%s: at most %zu", opt,
				    s->size / sizeof(*list));
	if (parse_uint(v, 0, UINT32_MAX - 1, &id, NULL) == 0) {
		list[(*n)++] = (uint32_t)id;
		return 0;
	}
	if (s->kind == SET_GIDS) {
		struct group *g = getgrnam(v);
		if (!g)
			return al_error_set(err, ENOENT, "%s: no group %s", opt,
					    v);
		list[(*n)++] = g->gr_gid;
	} else {
		struct passwd *pw = getpwnam(v);
		if (!pw)
			return al_error_set(err, ENOENT, "%s: no user %s", opt,
					    v);
		list[(*n)++] = pw->pw_uid;
	}
	return 0;
}

/* BASE:COUNT or none (sandbox/uids.c says what each may be). */
static int uid_range(const char *name, const char *v,
		     struct supervisor_uid_range *out, struct al_error *err)
{
	struct sandbox_uid_range r;

	if (sandbox_uid_range_parse(v, &r, err) < 0)
		return al_error_prefix(err, "%s", name);
	out->base = r.base;
	out->count = r.count;
	return 0;
}

/* A number as the flag takes it (a duration, a size): into the field's
 * unit, within the row's bounds. */
static int flag_number(const struct supervisor_setting *s, const char *opt,
		       const char *v, uint64_t *out, struct al_error *err)
{
	uint64_t n;

	switch (s->kind) {
	case SET_MS:
		if (parse_duration_us(v, &n, err) < 0)
			return al_error_prefix(err, "%s", opt);
		n /= 1000;
		break;
	case SET_MIB:
		if (parse_size(v, &n, err) < 0)
			return al_error_prefix(err, "%s", opt);
		if (n % MiB)
			return al_error_set(err, EINVAL, "%s: %s: %s", opt, v,
					    s->range);
		n /= MiB;
		if (n < s->min || n > s->max)
			return al_error_set(err, EINVAL, "%s: %s: %s", opt, v,
					    s->range);
		*out = n;
		return 0;
	case SET_SIZE:
		if (parse_size(v, &n, err) < 0)
			return al_error_prefix(err, "%s", opt);
		break;
	default:
		if (parse_uint(v, s->min, s->max, &n, err) < 0)
			return al_error_prefix(err, "%s", opt);
		break;
	}
	if (n < s->min || n > s->max)
		return al_error_set(err, EINVAL, "%s: %s", opt,
				    s->range ? s->range : "out of range");
	*out = n;
	return 0;
}

/*
 * One value of setting `s` into cfg. `name` is what messages call it (the
 * flag or the variable); `as_var`: the value is in the variable's form
 * (numbers plain, in the field's unit: SYSTEM_TICK_MS=30000), else in the
 * flag's (durations and sizes with units: --tick 30s). v is NULL for a
 * flag without a value (--log-pretty).
 */
static int setting_apply(const struct supervisor_setting *s, const char *name,
			 const char *v, bool as_var,
			 struct supervisor_config *cfg, struct al_error *err)
{
	uint64_t n;

	switch (s->kind) {
	case SET_STRING: *(const char **)field(cfg, s) = v; return 0;
	case SET_CONFIG:
		return 0; /* read before the rest: supervisor_config_file_arg */
	case SET_UIDS:
	case SET_GIDS: return add_id(s, name, v, cfg, err);
	case SET_LEVEL: return parse_level(name, v, field(cfg, s), err);
	case SET_UID_RANGE: return uid_range(name, v, field(cfg, s), err);
	case SET_BOOL:
		if (!v || strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
			*(bool *)field(cfg, s) = true;
		else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
			*(bool *)field(cfg, s) = false;
		else
			return al_error_set(err, EINVAL,
					    "%s: \"%.64s\": expected true or "
					    "false",
					    name, v);
		return 0;
	case SET_UINT:
	case SET_MS:
	case SET_MIB:
	case SET_SIZE:
		if (as_var) {
			if (parse_uint(v, s->min, s->max, &n, err) < 0)
				return al_error_prefix(err, "%s", name);
		} else if (flag_number(s, name, v, &n, err) < 0) {
			return -1;
		}
		store_uint(field(cfg, s), s->size, n);
		return 0;
	}
	return al_error_set(err, EINVAL, "%s: no such kind of setting", name);
}

void supervisor_config_defaults(struct supervisor_config *cfg)
{
	*cfg = (struct supervisor_config){ 0 };
	for (size_t i = 0; i < supervisor_settings_count; i++) {
		const struct supervisor_setting *s = &supervisor_settings[i];
		struct al_error err = { 0 };
		if (s->def &&
		    setting_apply(s, s->flag ? s->flag : s->var, s->def,
				  s->flag == NULL, cfg, &err) < 0) {
			/* the table is wrong: test_settings.c catches it */
			fprintf(stderr, "airlockd: default of %s\n", err.msg);
			abort();
		}
	}
}

int supervisor_setting_format(const struct supervisor_setting *s,
			      const struct supervisor_config *cfg, char *buf,
			      size_t len)
{
	const void *p = (const char *)cfg + s->offset;
	static const char *const levels[] = { "debug", "info", "warn",
					      "error" };

	switch (s->kind) {
	case SET_STRING:
		return snprintf(buf, len, "%s",
				*(const char *const *)p
					? *(const char *const *)p
					: "");
	case SET_LEVEL: {
		int l = *(const int *)p;
		return snprintf(buf, len, "%s",
				l >= 0 && l < 4 ? levels[l] : "?");
	}
	case SET_BOOL:
		return snprintf(buf, len, "%s",
				*(const bool *)p ? "true" : "false");
	case SET_UID_RANGE: {
		const struct supervisor_uid_range *r = p;
		if (!r->count)
			return snprintf(buf, len, "none");
		return snprintf(buf, len, "%u:%u", r->base, r->count);
	}
	case SET_UINT:
	case SET_MS:
	case SET_MIB:
	case SET_SIZE:
		return snprintf(buf, len, "%llu",
				(unsigned long long)load_uint(p, s->size));
	default: return snprintf(buf, len, "%s", "");
	}
}

/* ------------------------------------------------------- environment */

int supervisor_settings_apply_vars(struct supervisor_config *cfg,
				   const char *(*get)(const char *name,
						      void *arg),
				   void *arg, struct al_error *err)
{
	for (size_t i = 0; i < supervisor_settings_count; i++) {
		const struct supervisor_setting *s = &supervisor_settings[i];
		const char *v = s->var ? get(s->var, arg) : NULL;
		if (v && *v && setting_apply(s, s->var, v, true, cfg, err) < 0)
			return -1;
	}
	return 0;
}

const struct supervisor_setting *supervisor_setting_var(const char *name)
{
	for (size_t i = 0; i < supervisor_settings_count; i++)
		if (supervisor_settings[i].var &&
		    strcmp(supervisor_settings[i].var, name) == 0)
			return &supervisor_settings[i];
	return NULL;
}

/* ------------------------------------------------------------- flags */

#define OPT_BASE 256

int supervisor_settings_apply_args(struct supervisor_config *cfg, int argc,
				   char **argv, struct al_error *err)
{
	static struct option longopts[ARRAY_SIZE(supervisor_settings) + 2];
	int c, idx;
	char name[40];

	if (!longopts[0].name) {
		size_t n = 0;
		for (size_t i = 0; i < supervisor_settings_count; i++) {
			const struct supervisor_setting *s =
				&supervisor_settings[i];
			if (!s->flag)
				continue;
			longopts[n++] = (struct option){
				s->flag,
				s->kind == SET_BOOL ? no_argument
						    : required_argument,
				NULL, OPT_BASE + (int)i
			};
		}
		longopts[n] = (struct option){ "help", no_argument, NULL, 'h' };
	}
	opterr = 0;
	optind = 0; /* a full rescan: SIGHUP reads the flags again */
	while ((idx = -1, c = getopt_long(argc, argv, ":h", longopts, &idx)) !=
	       -1) {
		/* errors name the flag, not its value */
		const char *opt = optind > 0 ? argv[optind - 1] : "?";
		if (idx >= 0 && c != ':' && c != '?') {
			snprintf(name, sizeof(name), "--%s",
				 longopts[idx].name);
			opt = name;
		}
		if (c == 'h')
			return 1;
		if (c == ':')
			return al_error_set(err, EINVAL, "%s needs a value",
					    opt);
		if (c < OPT_BASE ||
		    (size_t)(c - OPT_BASE) >= supervisor_settings_count)
			return al_error_set(err, EINVAL, "unknown option %s",
					    opt);
		if (setting_apply(&supervisor_settings[c - OPT_BASE], opt,
				  optarg, false, cfg, err) < 0)
			return -1;
	}
	if (optind < argc)
		return al_error_set(err, EINVAL, "unexpected argument %s",
				    argv[optind]);
	return 0;
}

/* ------------------------------------------------------------- usage */

#define USAGE_COLUMN 25
#define USAGE_WIDTH 79

/* `text` from column `col` on, wrapped at USAGE_WIDTH, continuation lines
 * at USAGE_COLUMN. */
static void usage_wrap(FILE *f, int col, const char *text)
{
	const char *p = text;

	while (*p) {
		const char *end = p;
		while (*end && *end != ' ')
			end++;
		int word = (int)(end - p);
		if (col > USAGE_COLUMN && col + 1 + word > USAGE_WIDTH) {
			fprintf(f, "\n%*s", USAGE_COLUMN, "");
			col = USAGE_COLUMN;
		} else if (col > USAGE_COLUMN) {
			fputc(' ', f);
			col++;
		}
		fprintf(f, "%.*s", word, p);
		col += word;
		p = *end ? end + 1 : end;
	}
	fputc('\n', f);
}

static void usage_row(FILE *f, const struct supervisor_setting *s,
		      bool var_only)
{
	char head[64], help[512];
	int n = var_only ? snprintf(head, sizeof(head), "  %s", s->var)
			 : snprintf(head, sizeof(head), "  --%s%s%s", s->flag,
				    s->arg ? " " : "", s->arg ? s->arg : "");
	int k = snprintf(help, sizeof(help), "%s", s->help);
	if (!var_only && (s->var || s->def))
		snprintf(help + k, sizeof(help) - (size_t)k, " (%s%s%s%s)",
			 s->var ? s->var : "", s->var && s->def ? "; " : "",
			 s->def ? "default " : "", s->def ? s->def : "");
	else if (var_only && s->def)
		snprintf(help + k, sizeof(help) - (size_t)k, " (default %s)",
			 s->def);
	fputs(head, f);
	if (n + 1 > USAGE_COLUMN) {
		fprintf(f, "\n%*s", USAGE_COLUMN, "");
	} else {
		fprintf(f, "%*s", USAGE_COLUMN - n, "");
	}
	usage_wrap(f, USAGE_COLUMN, help);
}

void supervisor_config_usage(FILE *f)
{
	fprintf(f, "usage: airlockd [OPTIONS]\n\n");
	for (size_t i = 0; i < supervisor_settings_count; i++)
		if (supervisor_settings[i].flag)
			usage_row(f, &supervisor_settings[i], false);
	fprintf(f, "\nenvironment only (also in a --config file):\n");
	for (size_t i = 0; i < supervisor_settings_count; i++)
		if (!supervisor_settings[i].flag)
			usage_row(f, &supervisor_settings[i], true);
	fprintf(f, "\nSizes take K, M, G, T; durations us, ms, s, m, h (a "
		   "plain number is\nmilliseconds). airlockd(8) says more.\n");
}
