/*
 * airlockd --state-dir DIR --socket PATH [OPTIONS]
 *
 * The supervisor in the foreground (systemd style), logging JSON lines to
 * stderr. Environment (DESIGN.md, "Configuration"): MAX_ACTIVE_GENERATIONS,
 * SYSTEM_TICK_MS, ARCHIVE_RETENTION_DAYS, LOG_LEVEL, LOG_PRETTY; flags
 * override them. Under systemd (Type=notify) it sends READY=1 and
 * STOPPING=1 to NOTIFY_SOCKET.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/supervisor.h"

#define EXIT_USAGE 2

static void usage(FILE *f)
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
		"  --idle-timeout DUR     close silent connections (60s)\n"
		"  --max-request SIZE     largest request line (16M)\n"
		"  --max-connections N    (1024)\n"
		"  --shutdown-grace DUR   SIGTERM: time runs get to finish (30s)\n"
		"  --tick DUR             ticker period (SYSTEM_TICK_MS, 30s)\n");
}

static int env_uint(const char *name, uint64_t min, uint64_t max,
		    uint64_t *out, struct al_error *err)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return 0;
	if (parse_uint(v, min, max, out, err) < 0)
		return al_error_prefix(err, "%s", name);
	return 1;
}

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
		.shutdown_grace_ms = 30000,
		.log_level = 1,
	};
}

int supervisor_config_from_env(struct supervisor_config *cfg,
			       struct al_error *err)
{
	static const char *const levels[] = { "debug", "info", "warn",
					      "error" };
	uint64_t v;
	int rc;
	const char *s;

	if ((s = getenv("AIRLOCK_STATE_DIR")) && *s)
		cfg->state_dir = s;
	if ((s = getenv("AIRLOCK_SOCKET")) && *s)
		cfg->socket_path = s;
	if ((rc = env_uint("MAX_ACTIVE_GENERATIONS", 1, 4096, &v, err)) < 0)
		return -1;
	if (rc)
		cfg->max_active = (unsigned)v;
	if ((rc = env_uint("SYSTEM_TICK_MS", 100, 86400000, &v, err)) < 0)
		return -1;
	if (rc)
		cfg->tick_ms = v;
	if ((rc = env_uint("ARCHIVE_RETENTION_DAYS", 0, 36500, &v, err)) < 0)
		return -1;
	if (rc)
		cfg->retention_days = (unsigned)v;
	if ((s = getenv("LOG_LEVEL")) && *s) {
		size_t i;
		for (i = 0; i < 4; i++)
			if (strcasecmp(s, levels[i]) == 0)
				break;
		if (i == 4)
			return al_error_set(err, EINVAL,
					    "LOG_LEVEL: \"%s\": expected debug, "
					    "info, warn or error",
					    s);
		cfg->log_level = (int)i;
	}
	if ((s = getenv("LOG_PRETTY")) && *s) {
		if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
			cfg->log_pretty = true;
		else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
			cfg->log_pretty = false;
		else
			return al_error_set(err, EINVAL,
					    "LOG_PRETTY: \"%s\": expected true "
					    "or false",
					    s);
	}
	return 0;
}

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

static int parse_args(int argc, char **argv, struct supervisor_config *cfg,
		      struct al_error *err)
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
		{ "idle-timeout", required_argument, NULL, 'i' },
		{ "max-request", required_argument, NULL, 'r' },
		{ "max-connections", required_argument, NULL, 'c' },
		{ "shutdown-grace", required_argument, NULL, 'S' },
		{ "tick", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t size;
	int c, rc = 0;

	opterr = 0;
	while (rc == 0 &&
	       (c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		const char *opt = optind > 0 ? argv[optind - 1] : "?";
		switch (c) {
		case 'd': cfg->state_dir = optarg; break;
		case 's': cfg->socket_path = optarg; break;
		case 'g': cfg->socket_group = optarg; break;
		case 'u':
			rc = add_id(opt, optarg, false, cfg->client_uids,
				    &cfg->n_client_uids, err);
			break;
		case 'G':
			rc = add_id(opt, optarg, true, cfg->client_gids,
				    &cfg->n_client_gids, err);
			break;
		case 'A':
			rc = add_id(opt, optarg, true, cfg->admin_gids,
				    &cfg->n_admin_gids, err);
			break;
		case 'a': rc = count(opt, optarg, 1, 4096, &cfg->max_active, err); break;
		case 'q': rc = count(opt, optarg, 0, 65536, &cfg->queue_max, err); break;
		case 'Q': rc = count(opt, optarg, 0, UINT32_MAX, &cfg->quota_per_hour, err); break;
		case 'c': rc = count(opt, optarg, 1, 65536, &cfg->max_connections, err); break;
		case 'i': rc = duration_ms(opt, optarg, &cfg->idle_timeout_ms, err); break;
		case 'S': rc = duration_ms(opt, optarg, &cfg->shutdown_grace_ms, err); break;
		case 't': rc = duration_ms(opt, optarg, &cfg->tick_ms, err); break;
		case 'r':
			if ((rc = parse_size(optarg, &size, err)) == 0) {
				if (size < 1024 || size > (1u << 30))
					rc = al_error_set(err, EINVAL, "%s: between 1K and 1G", opt);
				cfg->max_request = (size_t)size;
			}
			break;
		case 'h': usage(stdout); exit(0);
		case ':': return al_error_set(err, EINVAL, "%s needs a value", opt);
		default: return al_error_set(err, EINVAL, "unknown option %s", opt);
		}
	}
	if (rc == 0 && optind < argc)
		return al_error_set(err, EINVAL, "unexpected argument %s",
				    argv[optind]);
	if (rc == 0 && (cfg->tick_ms < 100 || cfg->idle_timeout_ms < 100))
		return al_error_set(err, EINVAL,
				    "--tick and --idle-timeout: at least 100ms");
	return rc;
}

int main(int argc, char **argv)
{
	struct supervisor_config cfg;
	struct al_error err = { 0 };

	supervisor_config_defaults(&cfg);
	if (supervisor_config_from_env(&cfg, &err) < 0 ||
	    parse_args(argc, argv, &cfg, &err) < 0) {
		fprintf(stderr, "airlockd: %s\n(airlockd --help)\n", err.msg);
		return EXIT_USAGE;
	}
	struct supervisor *s = supervisor_new(&cfg, &err);
	if (!s) {
		fprintf(stderr, "airlockd: %s\n", err.msg);
		return 1;
	}
	int rc = supervisor_run(s, &err);
	if (rc < 0)
		fprintf(stderr, "airlockd: %s\n", err.msg);
	supervisor_free(s);
	return rc < 0 ? 1 : 0;
}
