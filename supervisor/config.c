/*
 * airlockd's configuration, in three layers (DESIGN.md, "Configuration"):
 * built-in defaults, then the environment variables operators already
 * use, then command-line flags. Every value is checked here, before the
 * daemon touches anything: a bad one is an error naming the variable or
 * flag and the form expected, and airlockd exits 2.
 *
 * Touches the system only to look up user and group names and, in
 * supervisor_config_check(), to resolve the state directory and load the
 * "default" policy once to try SANDBOX_MEM_MB / SANDBOX_TIMEOUT_MS on it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest/manifest.h"
#include "policy/policy.h"
#include "supervisor/supervisor.h"

void supervisor_config_defaults(struct supervisor_config *cfg)
{
	*cfg = (struct supervisor_config){
		.state_dir = "/var/lib/airlock",
		.socket_path = SUPERVISOR_DEFAULT_SOCKET,
		.max_active = 5,
		.queue_max = 64,
		.tick_ms = 30000,
		.retention_days = 30,
		.idle_timeout_ms = 60000,
		.max_request = 16u << 20,
		.max_connections = 1024,
		.max_connections_per_uid = 64,
		.admin_connections = 8,
		.queue_max_per_uid = 16,
		.max_buffered = 512u << 20,
		.max_buffered_per_uid = 64u << 20,
		.store_max_per_uid = 1ull << 30,
		.store_versions_per_uid = 1000,
		.store_free_min = 256u << 20,
		.shutdown_grace_ms = 30000,
		.log_level = 1,
		.metrics_port = 9100,
	};
}

void supervisor_config_usage(FILE *f)
{
	fprintf(f,
		"usage: airlockd [OPTIONS]\n"
		"\n"
		"  --state-dir DIR        state directory (default "
		"/var/lib/airlock;\n"
		"                         AIRLOCK_STATE_DIR)\n"
		"  --socket PATH          listening socket (default " SUPERVISOR_DEFAULT_SOCKET
		";\n"
		"                         AIRLOCK_SOCKET)\n"
		"  --socket-group GROUP   group owning the socket (mode 0660)\n"
		"  --allow-uid UID|USER   a client uid (repeatable)\n"
		"  --allow-group GROUP    a client group (repeatable)\n"
		"  --admin-group GROUP    an admin group (repeatable); uid 0 is\n"
		"                         always admin\n"
		"  --max-active N         concurrent runs (MAX_ACTIVE_GENERATIONS, 5)\n"
		"  --queue-max N          runs waiting beyond those (64)\n"
		"  --quota-per-hour N     runs per uid per hour (0: no quota)\n"
		"  --quota-per-day N      runs per uid per day (0: no quota)\n"
		"  --quota-reset-hour H   hour (UTC) the daily quota resets\n"
		"                         (QUOTA_RESET_HOUR, 0)\n"
		"  --default-memory SIZE  memory of the default policy\n"
		"                         (SANDBOX_MEM_MB; the policy's 64M)\n"
		"  --default-timeout DUR  timeout of the default policy\n"
		"                         (SANDBOX_TIMEOUT_MS; the policy's 3s)\n"
		"  --retention-days N     keep archived modules and runs N days\n"
		"                         (ARCHIVE_RETENTION_DAYS, 30; 0: forever)\n"
		"  --idle-timeout DUR     close silent connections (60s)\n"
		"  --max-request SIZE     largest request line (16M)\n"
		"  --max-connections N    (1024)\n"
		"  --max-connections-per-uid N  one client uid's (64)\n"
		"  --admin-connections N  of those, kept for admins (8)\n"
		"  --queue-max-per-uid N  runs one client uid may have queued (16)\n"
		"  --max-buffered SIZE    request, answer and stdin bytes held\n"
		"                         for all clients (512M)\n"
		"  --max-buffered-per-uid SIZE  for one client uid (64M)\n"
		"  --store-max-per-uid SIZE  module bytes one uid may keep (1G)\n"
		"  --store-versions-per-uid N  versions one uid may keep (1000)\n"
		"  --store-free-min SIZE  no submit below this free space (256M)\n"
		"  --shutdown-grace DUR   SIGTERM: time runs get to finish (30s)\n"
		"  --tick DUR             ticker period (SYSTEM_TICK_MS, 30s)\n"
		"  --log-level LEVEL      debug, info, warn or error (LOG_LEVEL, "
		"info)\n"
		"  --log-pretty           indented log lines (LOG_PRETTY, false)\n"
		"  --metrics-listen ADDR:PORT\n"
		"                         HTTP for /metrics, /healthz, /ready\n"
		"                         (127.0.0.1:METRICS_PORT, 9100; [::1]:PORT\n"
		"                         for IPv6; METRICS_PORT=0: no HTTP)\n"
		"  --config FILE          NAME=VALUE lines of the variables above;\n"
		"                         over the environment, under the flags;\n"
		"                         SIGHUP reads it again\n");
}

/* ---------------------------------------------------------- environment */

/*
 * Where the variables come from: the process environment, or a --config
 * file holding the same names. The file's lookups remember the line of the
 * last variable found, which is the one any error is about.
 */
#define CONFIG_FILE_MAX (64u << 10)
#define CONFIG_VARS_MAX 64

struct file_var {
	char *name;
	char *value;
	unsigned line;
};

struct var_source {
	const char *file; /* NULL: the environment */
	struct file_var vars[CONFIG_VARS_MAX];
	size_t n;
	unsigned last_line;
};

static const char *var_get(struct var_source *src, const char *name)
{
	if (!src->file)
		return getenv(name);
	for (size_t i = 0; i < src->n; i++)
		if (strcmp(src->vars[i].name, name) == 0) {
			src->last_line = src->vars[i].line;
			return src->vars[i].value;
		}
	return NULL;
}

/* 1 and *out set, 0 when unset or empty, -1 with err naming `name`. */
static int env_uint(struct var_source *src, const char *name, uint64_t min,
		    uint64_t max, uint64_t *out, struct al_error *err)
{
	const char *v = var_get(src, name);
	if (!v || !*v)
		return 0;
	if (parse_uint(v, min, max, out, err) < 0)
		return al_error_prefix(err, "%s", name);
	return 1;
}

static int parse_level(const char *name, const char *v, int *out,
		       struct al_error *err)
{
	static const char *const levels[] = { "debug", "info", "warn",
					      "error" };
	for (size_t i = 0; i < 4; i++)
		if (strcasecmp(v, levels[i]) == 0) {
			*out = (int)i;
			return 0;
		}
	return al_error_set(err, EINVAL,
			    "%s: \"%.64s\": expected debug, info, warn or error",
			    name, v);
}

/* One unsigned variable into a field of any unsigned width. */
#define ENV_UINT(name, min, max, field)                                        \
	do {                                                                   \
		uint64_t v_;                                                   \
		int rc_ = env_uint(src, name, min, max, &v_, err);                  \
		if (rc_ < 0)                                                   \
			return -1;                                             \
		if (rc_)                                                       \
			(field) = v_;                                          \
	} while (0)

/* The names a --config file may set: those of DESIGN.md. */
static const char *const known_vars[] = {
	"AIRLOCK_STATE_DIR", "AIRLOCK_SOCKET", "MAX_ACTIVE_GENERATIONS",
	"SYSTEM_TICK_MS", "ARCHIVE_RETENTION_DAYS", "SANDBOX_MEM_MB",
	"SANDBOX_TIMEOUT_MS", "QUOTA_RESET_HOUR", "METRICS_PORT",
	"LOG_LEVEL", "LOG_PRETTY", "PROM_API_KEY", "DATABASE_URL",
};

static int apply_vars(struct supervisor_config *cfg, struct var_source *src,
		      struct al_error *err)
{
	const char *s;

	if ((s = var_get(src, "AIRLOCK_STATE_DIR")) && *s)
		cfg->state_dir = s;
	if ((s = var_get(src, "AIRLOCK_SOCKET")) && *s)
		cfg->socket_path = s;
	ENV_UINT("MAX_ACTIVE_GENERATIONS", 1, 4096, cfg->max_active);
	ENV_UINT("SYSTEM_TICK_MS", 100, 86400000, cfg->tick_ms);
	ENV_UINT("ARCHIVE_RETENTION_DAYS", 0, 36500, cfg->retention_days);
	/* the policy's own bounds: 4M to 1T, 1ms to 24h */
	ENV_UINT("SANDBOX_MEM_MB", 4, 1u << 20, cfg->default_memory_mb);
	ENV_UINT("SANDBOX_TIMEOUT_MS", 1, 86400000, cfg->default_timeout_ms);
	ENV_UINT("QUOTA_RESET_HOUR", 0, 23, cfg->quota_reset_hour);
	ENV_UINT("METRICS_PORT", 0, 65535, cfg->metrics_port);
	if ((s = var_get(src, "LOG_LEVEL")) && *s &&
	    parse_level("LOG_LEVEL", s, &cfg->log_level, err) < 0)
		return -1;
	if ((s = var_get(src, "LOG_PRETTY")) && *s) {
		if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
			cfg->log_pretty = true;
		else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
			cfg->log_pretty = false;
		else
			return al_error_set(err, EINVAL,
					    "LOG_PRETTY: \"%.64s\": expected "
					    "true or false",
					    s);
	}
	if ((s = var_get(src, "PROM_API_KEY")) && *s)
		cfg->prom_api_key = s;
	if ((s = var_get(src, "DATABASE_URL")) && *s)
		cfg->database_url = s;
	return 0;
}

int supervisor_config_from_env(struct supervisor_config *cfg,
			       struct al_error *err)
{
	struct var_source env = { 0 };
	return apply_vars(cfg, &env, err);
}

/* ------------------------------------------------------------ the file */

static bool known_var(const char *name)
{
	for (size_t i = 0; i < sizeof(known_vars) / sizeof(known_vars[0]); i++)
		if (strcmp(known_vars[i], name) == 0)
			return true;
	return false;
}

/* Read the whole file, refusing what an operator would not mean: not a
 * regular file, writable by others than its owner, owned by someone else
 * than root or us, or too large to be a configuration. */
static char *read_config(const char *path, struct al_error *err)
{
	struct stat st;
	char *text = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		al_error_sys(err, errno, "--config %s", path);
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		al_error_sys(err, errno, "--config %s", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		al_error_set(err, EINVAL, "--config %s: not a regular file",
			     path);
		goto out;
	}
	if ((st.st_mode & 022) || (st.st_uid != 0 && st.st_uid != geteuid())) {
		al_error_set(err, EPERM,
			     "--config %s: must be owned by root and writable "
			     "by its owner only (chown root %s; chmod go-w %s)",
			     path, path, path);
		goto out;
	}
	if (st.st_size > CONFIG_FILE_MAX) {
		al_error_set(err, EFBIG, "--config %s: larger than %u bytes",
			     path, CONFIG_FILE_MAX);
		goto out;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		al_error_sys(err, ENOMEM, "--config %s", path);
		goto out;
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			al_error_sys(err, n < 0 ? errno : EIO, "--config %s",
				     path);
			free(text);
			text = NULL;
			goto out;
		}
		got += (size_t)n;
	}
	text[got] = '\0';
	if (strlen(text) != got) {
		al_error_set(err, EINVAL, "--config %s: contains a NUL byte",
			     path);
		free(text);
		text = NULL;
	}
out:
	close(fd);
	return text;
}

static char *trim(char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	char *end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t' ||
			   end[-1] == '\r'))
		*--end = '\0';
	return p;
}

/* One NAME=VALUE line into src; text is modified in place. */
static int parse_line(struct var_source *src, char *line, unsigned lineno,
		      struct al_error *err)
{
	char *p = trim(line);
	if (!*p || *p == '#')
		return 0;
	char *eq = strchr(p, '=');
	if (!eq)
		return al_error_set(err, EINVAL,
				    "%s:%u: expected NAME=VALUE", src->file,
				    lineno);
	*eq = '\0';
	char *name = trim(p), *value = trim(eq + 1);
	if (!known_var(name))
		return al_error_set(err, EINVAL,
				    "%s:%u: unknown variable \"%.64s\" (airlockd(8) "
				    "lists those a configuration file may set)",
				    src->file, lineno, name);
	size_t n = strlen(value);
	if (n >= 2 && (value[0] == '"' || value[0] == '\'') &&
	    value[n - 1] == value[0]) {
		value[n - 1] = '\0';
		value++;
	}
	for (size_t i = 0; i < src->n; i++)
		if (strcmp(src->vars[i].name, name) == 0)
			return al_error_set(err, EINVAL,
					    "%s:%u: %s is already set on line "
					    "%u",
					    src->file, lineno, name,
					    src->vars[i].line);
	if (src->n >= CONFIG_VARS_MAX)
		return al_error_set(err, E2BIG, "%s:%u: too many variables",
				    src->file, lineno);
	src->vars[src->n++] = (struct file_var){ name, value, lineno };
	return 0;
}

int supervisor_config_from_file(struct supervisor_config *cfg,
				const char *path, struct al_error *err)
{
	struct var_source src = { .file = path };
	char *text = read_config(path, err);
	unsigned lineno = 0;

	if (!text)
		return -1;
	for (char *line = text, *next; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (parse_line(&src, line, ++lineno, err) < 0)
			goto fail;
	}
	if (apply_vars(cfg, &src, err) < 0) {
		al_error_prefix(err, "%s:%u", path, src.last_line);
		goto fail;
	}
	free(cfg->config_text);
	cfg->config_text = text;
	cfg->config_path = path;
	return 0;
fail:
	free(text);
	return -1;
}

/* --config FILE (or --config=FILE), found before the other flags are
 * read so that they override what the file says. */
const char *supervisor_config_file_arg(int argc, char **argv)
{
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			path = argv[i] + 9;
	}
	return path;
}

int supervisor_config_load(struct supervisor_config *cfg, int argc,
			   char **argv, struct al_error *err)
{
	const char *file = supervisor_config_file_arg(argc, argv);
	int rc;

	supervisor_config_defaults(cfg);
	cfg->argc = argc;
	cfg->argv = argv;
	if (supervisor_config_from_env(cfg, err) < 0 ||
	    (file && supervisor_config_from_file(cfg, file, err) < 0) ||
	    (rc = supervisor_config_from_args(cfg, argc, argv, err)) < 0)
		goto fail;
	if (rc == 1)
		return 1;
	if (supervisor_config_check(cfg, err) < 0)
		goto fail;
	return 0;
fail:
	supervisor_config_release(cfg);
	return -1;
}

void supervisor_config_release(struct supervisor_config *cfg)
{
	free(cfg->config_text);
	cfg->config_text = NULL;
}

/* ------------------------------------------------------------- flags */

static int add_id(const char *opt, const char *v, bool group, uint32_t *list,
		  size_t *n, struct al_error *err)
{
	uint64_t id;

	if (*n >= 32)
		return al_error_set(err, E2BIG, "%s: at most 32", opt);
	if (parse_uint(v, 0, UINT32_MAX - 1, &id, NULL) == 0) {
		list[(*n)++] = (uint32_t)id;
		return 0;
	}
	if (group) {
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

static int duration_ms(const char *opt, const char *v, uint64_t *out,
		       struct al_error *err)
{
	uint64_t us;
	if (parse_duration_us(v, &us, err) < 0)
		return al_error_prefix(err, "%s", opt);
	*out = us / 1000;
	return 0;
}

static int count(const char *opt, const char *v, uint64_t min, uint64_t max,
		 unsigned *out, struct al_error *err)
{
	uint64_t n;
	if (parse_uint(v, min, max, &n, err) < 0)
		return al_error_prefix(err, "%s", opt);
	*out = (unsigned)n;
	return 0;
}

/* --default-memory SIZE: whole MiB, as SANDBOX_MEM_MB holds. */
static int memory_mb(const char *opt, const char *v, uint64_t *out,
		     struct al_error *err)
{
	uint64_t bytes;
	if (parse_size(v, &bytes, err) < 0)
		return al_error_prefix(err, "%s", opt);
	if (bytes % (1u << 20) || bytes < (4u << 20) ||
	    bytes > ((uint64_t)1 << 40))
		return al_error_set(err, EINVAL,
				    "%s: %s: expected whole megabytes from 4M "
				    "to 1T",
				    opt, v);
	*out = bytes >> 20;
	return 0;
}

enum {
	OPT_QUOTA_DAY = 256,
	OPT_RESET_HOUR,
	OPT_MEMORY,
	OPT_TIMEOUT,
	OPT_RETENTION,
	OPT_LOG_LEVEL,
	OPT_LOG_PRETTY,
	OPT_CONFIG,
	OPT_METRICS_LISTEN,
	OPT_CONN_PER_UID,
	OPT_ADMIN_CONNS,
	OPT_QUEUE_PER_UID,
	OPT_MAX_BUFFERED,
	OPT_MAX_BUFFERED_UID,
	OPT_STORE_MAX,
	OPT_STORE_VERSIONS,
	OPT_STORE_FREE,
};

static int size_in(const char *opt, const char *v, uint64_t min, uint64_t max,
		   uint64_t *out, struct al_error *err)
{
	uint64_t n;

	if (parse_size(v, &n, err) < 0)
		return al_error_prefix(err, "%s", opt);
	if (n < min || n > max)
		return al_error_set(err, EINVAL, "%s: out of range", opt);
	*out = n;
	return 0;
}

/* A buffer budget: at least what one exec answer may take (two captured
 * streams of 1 MiB, up to six bytes each once escaped to JSON). */
static int bytes(const char *opt, const char *v, size_t *out,
		 struct al_error *err)
{
	uint64_t n;

	if (parse_size(v, &n, err) < 0)
		return al_error_prefix(err, "%s", opt);
	if (n < (16u << 20) || n > (64ull << 30))
		return al_error_set(err, EINVAL, "%s: between 16M and 64G",
				    opt);
	*out = (size_t)n;
	return 0;
}

static int one_option(int c, const char *opt, struct supervisor_config *cfg,
		      struct al_error *err)
{
	uint64_t v;

	switch (c) {
	case 'd': cfg->state_dir = optarg; return 0;
	case 's': cfg->socket_path = optarg; return 0;
	case 'g': cfg->socket_group = optarg; return 0;
	case 'u':
		return add_id(opt, optarg, false, cfg->client_uids,
			      &cfg->n_client_uids, err);
	case 'G':
		return add_id(opt, optarg, true, cfg->client_gids,
			      &cfg->n_client_gids, err);
	case 'A':
		return add_id(opt, optarg, true, cfg->admin_gids,
			      &cfg->n_admin_gids, err);
	case 'a': return count(opt, optarg, 1, 4096, &cfg->max_active, err);
	case 'q': return count(opt, optarg, 0, 65536, &cfg->queue_max, err);
	case 'Q': return count(opt, optarg, 0, UINT32_MAX, &cfg->quota_per_hour, err);
	case OPT_QUOTA_DAY: return count(opt, optarg, 0, UINT32_MAX, &cfg->quota_per_day, err);
	case OPT_RESET_HOUR: return count(opt, optarg, 0, 23, &cfg->quota_reset_hour, err);
	case OPT_RETENTION: return count(opt, optarg, 0, 36500, &cfg->retention_days, err);
	case 'c': return count(opt, optarg, 1, 65536, &cfg->max_connections, err);
	case OPT_CONN_PER_UID:
		return count(opt, optarg, 1, 65536,
			     &cfg->max_connections_per_uid, err);
	case OPT_ADMIN_CONNS:
		return count(opt, optarg, 0, 65535, &cfg->admin_connections,
			     err);
	case OPT_QUEUE_PER_UID:
		return count(opt, optarg, 1, 65536, &cfg->queue_max_per_uid,
			     err);
	case OPT_MAX_BUFFERED:
		return bytes(opt, optarg, &cfg->max_buffered, err);
	case OPT_MAX_BUFFERED_UID:
		return bytes(opt, optarg, &cfg->max_buffered_per_uid, err);
	case OPT_STORE_MAX:
		return size_in(opt, optarg, 1024, UINT64_MAX,
			       &cfg->store_max_per_uid, err);
	case OPT_STORE_VERSIONS:
		return count(opt, optarg, 1, UINT32_MAX,
			     &cfg->store_versions_per_uid, err);
	case OPT_STORE_FREE:
		return size_in(opt, optarg, 0, UINT64_MAX, &cfg->store_free_min,
			       err);
	case 'i': return duration_ms(opt, optarg, &cfg->idle_timeout_ms, err);
	case 'S': return duration_ms(opt, optarg, &cfg->shutdown_grace_ms, err);
	case 't': return duration_ms(opt, optarg, &cfg->tick_ms, err);
	case OPT_MEMORY: return memory_mb(opt, optarg, &cfg->default_memory_mb, err);
	case OPT_TIMEOUT:
		if (duration_ms(opt, optarg, &v, err) < 0)
			return -1;
		if (v < 1 || v > 86400000)
			return al_error_set(err, EINVAL,
					    "%s: from 1ms to 24h", opt);
		cfg->default_timeout_ms = v;
		return 0;
	case OPT_LOG_LEVEL: return parse_level(opt, optarg, &cfg->log_level, err);
	case OPT_LOG_PRETTY: cfg->log_pretty = true; return 0;
	case OPT_CONFIG: return 0; /* read before the flags: config_file_arg */
	case OPT_METRICS_LISTEN: cfg->metrics_listen = optarg; return 0;
	case 'r':
		if (parse_size(optarg, &v, err) < 0)
			return al_error_prefix(err, "%s", opt);
		if (v < 1024 || v > (1u << 30))
			return al_error_set(err, EINVAL,
					    "%s: between 1K and 1G", opt);
		cfg->max_request = (size_t)v;
		return 0;
	case ':': return al_error_set(err, EINVAL, "%s needs a value", opt);
	default: return al_error_set(err, EINVAL, "unknown option %s", opt);
	}
}

int supervisor_parse_listen(const char *what, const char *v,
			    struct sockaddr_storage *out, socklen_t *len,
			    struct al_error *err)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *end = NULL;
	uint64_t port;
	bool v6 = v[0] == '[';

	memset(out, 0, sizeof(*out));
	if (v6) {
		end = strchr(v, ']');
		colon = end && end[1] == ':' ? end + 1 : NULL;
	} else {
		colon = strrchr(v, ':');
		end = colon;
	}
	if (!colon || !colon[1] || (size_t)(end - v) - v6 >= sizeof(host))
		goto bad;
	memcpy(host, v + v6, (size_t)(end - v) - v6);
	host[(end - v) - v6] = '\0';
	if (parse_uint(colon + 1, 1, 65535, &port, NULL) < 0)
		goto bad;
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			goto bad;
		*len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)out;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			goto bad;
		*len = sizeof(*a);
	}
	return 0;
bad:
	return al_error_set(err, EINVAL,
			    "%s: \"%.64s\": expected ADDR:PORT with a numeric "
			    "address, such as 127.0.0.1:9100 or [::1]:9100, "
			    "and a port from 1 to 65535",
			    what, v);
}

void supervisor_format_listen(const struct sockaddr_storage *ss, char *buf,
			      size_t size)
{
	char host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(buf, size, "[%s]:%u", host, ntohs(a->sin6_port));
	} else {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(buf, size, "%s:%u", host, ntohs(a->sin_port));
	}
}

/* The flag names the whole address; otherwise METRICS_PORT on loopback
 * (an endpoint that answers anyone on the network must be asked for). */
static int metrics_address(struct supervisor_config *cfg,
			   struct al_error *err)
{
	char v[32];

	cfg->metrics_addr_len = 0;
	if (cfg->metrics_listen)
		return supervisor_parse_listen("--metrics-listen",
					       cfg->metrics_listen,
					       &cfg->metrics_addr,
					       &cfg->metrics_addr_len, err);
	if (!cfg->metrics_port)
		return 0;
	snprintf(v, sizeof(v), "127.0.0.1:%u", cfg->metrics_port);
	return supervisor_parse_listen("METRICS_PORT", v, &cfg->metrics_addr,
				       &cfg->metrics_addr_len, err);
}

int supervisor_config_from_args(struct supervisor_config *cfg, int argc,
				char **argv, struct al_error *err)
{
	static const struct option longopts[] = {
		{ "state-dir", required_argument, NULL, 'd' },
		{ "socket", required_argument, NULL, 's' },
		{ "socket-group", required_argument, NULL, 'g' },
		{ "allow-uid", required_argument, NULL, 'u' },
		{ "allow-group", required_argument, NULL, 'G' },
		{ "admin-group", required_argument, NULL, 'A' },
		{ "max-active", required_argument, NULL, 'a' },
		{ "queue-max", required_argument, NULL, 'q' },
		{ "quota-per-hour", required_argument, NULL, 'Q' },
		{ "quota-per-day", required_argument, NULL, OPT_QUOTA_DAY },
		{ "quota-reset-hour", required_argument, NULL, OPT_RESET_HOUR },
		{ "default-memory", required_argument, NULL, OPT_MEMORY },
		{ "default-timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "retention-days", required_argument, NULL, OPT_RETENTION },
		{ "idle-timeout", required_argument, NULL, 'i' },
		{ "max-request", required_argument, NULL, 'r' },
		{ "max-connections", required_argument, NULL, 'c' },
		{ "max-connections-per-uid", required_argument, NULL,
		  OPT_CONN_PER_UID },
		{ "admin-connections", required_argument, NULL,
		  OPT_ADMIN_CONNS },
		{ "queue-max-per-uid", required_argument, NULL,
		  OPT_QUEUE_PER_UID },
		{ "max-buffered", required_argument, NULL, OPT_MAX_BUFFERED },
		{ "max-buffered-per-uid", required_argument, NULL,
		  OPT_MAX_BUFFERED_UID },
		{ "store-max-per-uid", required_argument, NULL, OPT_STORE_MAX },
		{ "store-versions-per-uid", required_argument, NULL,
		  OPT_STORE_VERSIONS },
		{ "store-free-min", required_argument, NULL, OPT_STORE_FREE },
		{ "shutdown-grace", required_argument, NULL, 'S' },
		{ "tick", required_argument, NULL, 't' },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "log-pretty", no_argument, NULL, OPT_LOG_PRETTY },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, idx;
	char name[40];

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
		if (one_option(c, opt, cfg, err) < 0)
			return -1;
	}
	if (optind < argc)
		return al_error_set(err, EINVAL, "unexpected argument %s",
				    argv[optind]);
	if (cfg->tick_ms < 100 || cfg->idle_timeout_ms < 100)
		return al_error_set(err, EINVAL,
				    "--tick and --idle-timeout: at least 100ms");
	if (cfg->admin_connections >= cfg->max_connections)
		return al_error_set(err, EINVAL,
				    "--admin-connections (%u) must be below "
				    "--max-connections (%u)",
				    cfg->admin_connections,
				    cfg->max_connections);
	if (cfg->max_buffered_per_uid > cfg->max_buffered)
		return al_error_set(err, EINVAL,
				    "--max-buffered-per-uid must not exceed "
				    "--max-buffered");
	return metrics_address(cfg, err);
}

/* ------------------------------------------------------------- checks */

/* DATABASE_URL names a PostgreSQL server (postgresql://, postgres://:
 * libpq's URL, checked here without connecting), or the manifest
 * airlockd uses anyway: STATE_DIR/manifest.db, as a path or sqlite:PATH /
 * sqlite://PATH; a relative path is taken inside the state directory.
 * The value is never quoted back: it may hold a password. */
static int check_database_url(const struct supervisor_config *cfg,
			      struct al_error *err)
{
	const char *url = cfg->database_url, *path = url;
	char want[PATH_MAX], got[PATH_MAX];

	if (!url || !*url)
		return 0;
	if (manifest_url_is_server(url))
		return manifest_url_check(url, err);
	if (strncmp(path, "sqlite://", 9) == 0)
		path += 9;
	else if (strncmp(path, "sqlite:", 7) == 0)
		path += 7;
	else if (strstr(path, "://"))
		path = NULL; /* postgres://, mysql://, ... */
	if (path && *path) {
		char *dir = realpath(cfg->state_dir, NULL);
		const char *base = dir ? dir : cfg->state_dir;
		int n = snprintf(want, sizeof(want), "%s/manifest.db", base);
		int m = path[0] == '/' ?
				snprintf(got, sizeof(got), "%s", path) :
				snprintf(got, sizeof(got), "%s/%s", base, path);
		if (path[0] == '/') {
			/* resolve the directory part when it exists */
			char *slash = strrchr(got, '/');
			*slash = '\0';
			char *real = realpath(got[0] ? got : "/", NULL);
			*slash = '/';
			if (real) {
				m = snprintf(got, sizeof(got), "%s/%s", real,
					     slash + 1);
				free(real);
			}
		}
		free(dir);
		if (n > 0 && (size_t)n < sizeof(want) && m > 0 &&
		    (size_t)m < sizeof(got) && strcmp(want, got) == 0)
			return 0;
	}
	return al_error_set(err, EINVAL,
			    "DATABASE_URL: expected a PostgreSQL server "
			    "(postgresql://HOST/DATABASE) or the SQLite file in "
			    "the state directory (%s/manifest.db, or leave "
			    "DATABASE_URL unset)",
			    cfg->state_dir);
}

const char *supervisor_config_server_url(const struct supervisor_config *cfg)
{
	return manifest_url_is_server(cfg->database_url) ? cfg->database_url
							   : NULL;
}

/* Try the default-policy overrides on the policy they apply to, so a
 * value the policy refuses (memory below its /tmp) stops start-up. */
static int check_default_policy(const struct supervisor_config *cfg,
				struct al_error *err)
{
	if (!cfg->default_memory_mb && !cfg->default_timeout_ms)
		return 0;
	struct al_policy *p = policy_load_trusted("default", err);
	if (!p)
		return al_error_prefix(err, "policy \"default\"");
	int rc = supervisor_config_apply_policy(cfg, p, err);
	policy_free(p);
	return rc;
}

/* airlockd works from / (airlockd.c): a relative path would mean
 * something else after the chdir and on every SIGHUP reread. */
static int check_absolute(const struct supervisor_config *cfg,
			  struct al_error *err)
{
	const struct {
		const char *what, *path;
	} paths[] = {
		{ "--state-dir (AIRLOCK_STATE_DIR)", cfg->state_dir },
		{ "--socket (AIRLOCK_SOCKET)", cfg->socket_path },
		{ "--config", cfg->config_path },
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (paths[i].path && paths[i].path[0] != '/')
			return al_error_set(err, EINVAL,
					    "%s: \"%.256s\" is relative: give "
					    "an absolute path (airlockd works "
					    "from /)",
					    paths[i].what, paths[i].path);
	return 0;
}

int supervisor_config_check(const struct supervisor_config *cfg,
			    struct al_error *err)
{
	if (check_absolute(cfg, err) < 0)
		return -1;
	if (cfg->prom_api_key) {
		size_t n = strlen(cfg->prom_api_key);
		bool printable = true;
		for (size_t i = 0; i < n; i++)
			if (cfg->prom_api_key[i] <= ' ' ||
			    cfg->prom_api_key[i] > '~')
				printable = false;
		if (n < 16 || n > 256 || !printable)
			return al_error_set(err, EINVAL,
					    "PROM_API_KEY: expected 16 to 256 "
					    "printable characters without "
					    "spaces (or unset)");
	}
	if (check_database_url(cfg, err) < 0)
		return -1;
	return check_default_policy(cfg, err);
}

int supervisor_config_apply_policy(const struct supervisor_config *cfg,
				   struct al_policy *p, struct al_error *err)
{
	char v[32];

	if (cfg->default_memory_mb) {
		snprintf(v, sizeof(v), "%lluM",
			 (unsigned long long)cfg->default_memory_mb);
		if (policy_set_memory(p, v, err) < 0)
			return al_error_prefix(err, "SANDBOX_MEM_MB");
	}
	if (cfg->default_timeout_ms) {
		snprintf(v, sizeof(v), "%llums",
			 (unsigned long long)cfg->default_timeout_ms);
		if (policy_set_timeout(p, v, err) < 0)
			return al_error_prefix(err, "SANDBOX_TIMEOUT_MS");
	}
	return 0;
}
