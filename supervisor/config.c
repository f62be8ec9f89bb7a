/*
 * airlockd's configuration, in three layers (docs/design.md,
 * "Configuration"): built-in defaults, then the environment variables
 * operators already use, then command-line flags; what each setting is,
 * its bounds and default, is its row in settings.c. This file reads the
 * --config file and checks what needs the whole picture. Every value is checked here, before the
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
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest/manifest.h"
#include "policy/policy.h"
#include "sandbox/sandbox.h"
#include "supervisor/supervisor.h"

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

static const char *var_lookup(const char *name, void *arg)
{
	return var_get(arg, name);
}

static int apply_vars(struct supervisor_config *cfg, struct var_source *src,
		      struct al_error *err)
{
	return supervisor_settings_apply_vars(cfg, var_lookup, src, err);
}

int supervisor_config_from_env(struct supervisor_config *cfg,
			       struct al_error *err)
{
	struct var_source env = { 0 };
	return apply_vars(cfg, &env, err);
}

/* ------------------------------------------------------------ the file */

/* Read the whole file, refusing what an operator would not mean: not a
 * regular file, writable by others than its owner, owned by someone else
 * than root or us, or too large to be a configuration. */
static char *read_config(const char *path, struct al_error *err)
{
	struct stat st;
	char *text = NULL;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

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
	return text;
}

static char *trim(char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	char *end = p + strlen(p);
	while (end > p &&
	       (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
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
		return al_error_set(err, EINVAL, "%s:%u: expected NAME=VALUE",
				    src->file, lineno);
	*eq = '\0';
	char *name = trim(p), *value = trim(eq + 1);
	if (!supervisor_setting_var(name))
		return al_error_set(
			err, EINVAL,
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

int supervisor_config_from_file(struct supervisor_config *cfg, const char *path,
				struct al_error *err)
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

int supervisor_config_load(struct supervisor_config *cfg, int argc, char **argv,
			   struct al_error *err)
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
static int metrics_address(struct supervisor_config *cfg, struct al_error *err)
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
	int rc = supervisor_settings_apply_args(cfg, argc, argv, err);

	if (rc != 0)
		return rc;
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
		int m = path[0] == '/' ? snprintf(got, sizeof(got), "%s", path)
				       : snprintf(got, sizeof(got), "%s/%s",
						  base, path);
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
	return al_error_set(
		err, EINVAL,
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
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
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
	if (cfg->host_name && manifest_host_check(cfg->host_name, err) < 0)
		return al_error_prefix(err, "AIRLOCK_HOST");
	if (cfg->host_lease_ms < 2 * cfg->tick_ms)
		return al_error_set(err, EINVAL,
				    "--host-lease (%llu ms) must be at least "
				    "two ticks (--tick %llu ms): a host beats "
				    "once a tick",
				    (unsigned long long)cfg->host_lease_ms,
				    (unsigned long long)cfg->tick_ms);
	/* a `result` answer: each kept stream as text (up to six bytes a
	 * byte once escaped) and as base64, both streams, in one uid's
	 * buffers */
	if (cfg->output_keep * 15 > cfg->max_buffered_per_uid)
		return al_error_set(err, EINVAL,
				    "--output-keep: %llu bytes per stream "
				    "need --max-buffered-per-uid of at least "
				    "15 times that (a result answer holds "
				    "each stream as text and as base64)",
				    (unsigned long long)cfg->output_keep);
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
