/*
 * supervisor: airlockd, the daemon that receives modules over a Unix
 * socket, validates them in a jail, registers them in the manifest, runs
 * them on demand and archives the ones that crash. Protocol reference:
 * docs/protocol.md; theory of operation: the top of supervisor/loop.c.
 *
 * This is the daemon's header, linked into airlockd only. The protocol
 * codec it speaks, which the airlock client links too, is
 * supervisor/protocol.h (included here).
 *
 *     struct supervisor_config cfg;
 *     supervisor_config_defaults(&cfg);
 *     supervisor_config_from_env(&cfg, &err);  // MAX_ACTIVE_GENERATIONS...
 *     supervisor_config_from_args(&cfg, argc, argv, &err); // flags win
 *     supervisor_config_check(&cfg, &err);     // DATABASE_URL, policy
 *     struct supervisor *s = supervisor_new(&cfg, &err); // socket, manifest
 *     supervisor_run(s, &err);                 // until SIGTERM/SIGINT
 *     supervisor_free(s);
 */
#ifndef AIRLOCK_SUPERVISOR_H
#define AIRLOCK_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "common/common.h"
#include "supervisor/protocol.h"

/* ============================================================= daemon */

struct supervisor_config {
	const char *state_dir;     /* borrowed */
	const char *socket_path;   /* borrowed */
	const char *socket_group;  /* group owning the socket, or NULL */
	unsigned max_active;       /* MAX_ACTIVE_GENERATIONS (5) */
	unsigned queue_max;        /* waiting runs beyond that (64) */
	unsigned quota_per_hour;   /* runs per uid per hour; 0: none */
	unsigned quota_per_day;    /* runs per uid per day; 0: none */
	unsigned quota_reset_hour; /* QUOTA_RESET_HOUR: the day starts (UTC) */
	uint64_t tick_ms;          /* SYSTEM_TICK_MS (30000) */
	unsigned retention_days;   /* ARCHIVE_RETENTION_DAYS (30) */
	uint64_t idle_timeout_ms;  /* a silent connection is closed (60000) */
	size_t max_request;        /* bytes in one request line (16 MiB) */
	unsigned max_connections;  /* (1024) */
	/* one client uid's share (bounds.c; admins are exempt but for the
	 * global byte budget) */
	unsigned max_connections_per_uid; /* (64) */
	unsigned admin_connections;       /* of max_connections (8) */
	unsigned queue_max_per_uid;       /* runs waiting (16) */
	size_t max_buffered;              /* all clients' bytes (512 MiB) */
	size_t max_buffered_per_uid;      /* one uid's (64 MiB) */
	/* storage.c: what one submitting uid may keep stored, and the free
	 * space below which no submit is taken */
	uint64_t store_max_per_uid;      /* bytes (1 GiB) */
	unsigned store_versions_per_uid; /* versions with a file (1000) */
	uint64_t store_free_min;         /* bytes (256 MiB) */
	/* runs.c: of each stream, the bytes the manifest keeps for the
	 * `result` and `wait` ops */
	uint64_t output_keep; /* (1 MiB) */
	/* bundle.c: one bundle's unpacked tree at most */
	unsigned bundle_max_entries; /* files and directories (4096) */
	uint64_t bundle_max_bytes;   /* content bytes (256 MiB) */
	/* build.c: a bundle's build step */
	uint64_t build_timeout_ms;  /* (60 s) */
	uint64_t build_memory_mb;   /* (512 MiB) */
	uint64_t shutdown_grace_ms; /* SIGTERM: runs may finish (30000) */
	/* who may connect: uid 0 is always admin; up to 32 of each */
	uid_t client_uids[32];
	size_t n_client_uids;
	gid_t client_gids[32];
	size_t n_client_gids;
	gid_t admin_gids[32];
	size_t n_admin_gids;
	int log_level;   /* LOG_LEVEL: 0 debug, 1 info, 2 warn, 3 error */
	bool log_pretty; /* LOG_PRETTY */
	/* SANDBOX_MEM_MB, SANDBOX_TIMEOUT_MS: override the policy named
	 * "default" only; 0 leaves its own value (64M, 3s as shipped) */
	uint64_t default_memory_mb;
	uint64_t default_timeout_ms;
	/* HTTP (docs/metrics.md): METRICS_PORT (9100; 0: no HTTP) on
	 * 127.0.0.1 unless --metrics-listen ADDR:PORT names the address;
	 * supervisor_config_from_args() resolves the two into metrics_addr */
	unsigned metrics_port;
	const char *metrics_listen; /* the flag's value, borrowed, or NULL */
	struct sockaddr_storage metrics_addr;
	socklen_t metrics_addr_len; /* 0: HTTP off */
	/* AIRLOCK_UID_RANGE / --uid-range: the host ids runs get, one each
	 * (sandbox/uids.c); uid_count 0: none, the policy's own uid */
	struct supervisor_uid_range {
		uint32_t base, count;
	} uid_range;
	const char *prom_api_key; /* PROM_API_KEY, borrowed, or NULL */
	const char *database_url; /* DATABASE_URL, borrowed, or NULL;
				       secret (a password): never print it */
	/* AIRLOCK_HOST / --host-name: this host's name in the manifest (NULL:
	 * the machine's); a host silent for --host-lease has its running
	 * runs interrupted by the others (docs/operations.md, "Fleet") */
	const char *host_name;
	uint64_t host_lease_ms;
	/* --config FILE: its text owns the strings taken from it */
	const char *config_path;
	char *config_text;
	/* the command line, read again on SIGHUP (borrowed from main) */
	int argc;
	char **argv;
};

/*
 * supervisor/settings.c: every setting of airlockd is one row of
 * supervisor_settings[], from which the defaults, --help, the --config
 * whitelist, the environment reader and the flags come. A row has a flag
 * (--NAME), a variable, or both; its field in struct supervisor_config is
 * given by offset and size.
 */
enum supervisor_setting_kind {
	SET_STRING, /* borrowed const char * */
	SET_UINT,   /* an unsigned field of any width, in [min, max] */
	SET_MS,     /* milliseconds: --flag takes a duration, the variable ms */
	SET_MIB,   /* MiB: --flag takes a size in whole MiB, the variable MiB */
	SET_SIZE,  /* bytes: a size */
	SET_LEVEL, /* int: debug 0, info 1, warn 2, error 3 */
	SET_BOOL,  /* --flag alone sets it; the variable: true/false/1/0 */
	SET_UIDS,  /* a repeatable flag: users (names or numbers) into a list */
	SET_GIDS,  /* groups, the same */
	SET_CONFIG,    /* --config FILE: read before the rest */
	SET_UID_RANGE, /* struct supervisor_uid_range: BASE:COUNT or none */
};

struct supervisor_setting {
	const char *flag; /* "max-active" for --max-active; NULL: none */
	const char *var;  /* "MAX_ACTIVE_GENERATIONS"; NULL: none */
	enum supervisor_setting_kind kind;
	size_t offset, size; /* its field */
	uint64_t min, max;   /* numbers, in the field's unit */
	size_t count_offset; /* lists: the size_t counting the entries */
	const char *arg;     /* the flag's value in --help: "N", "SIZE" */
	const char *def;     /* the default, as the flag (else the variable)
			      * takes it; NULL: unset */
	const char *range;   /* what an out-of-range flag value is told */
	const char *help;    /* one line for --help */
};
extern const struct supervisor_setting supervisor_settings[];
extern const size_t supervisor_settings_count;
/* The row of variable `name`, or NULL (a --config file may set only
 * those). */
const struct supervisor_setting *supervisor_setting_var(const char *name);
/* The field's value in the variable's form ("30000" for SYSTEM_TICK_MS,
 * "info" for LOG_LEVEL); snprintf's return. */
int supervisor_setting_format(const struct supervisor_setting *s,
			      const struct supervisor_config *cfg, char *buf,
			      size_t len);
/* Every row's variable that get() returns non-empty, into cfg. */
int supervisor_settings_apply_vars(struct supervisor_config *cfg,
				   const char *(*get)(const char *name,
						      void *arg),
				   void *arg, struct al_error *err);
/* Every flag of argv into cfg: 0, 1 for --help, -1 with err. */
int supervisor_settings_apply_args(struct supervisor_config *cfg, int argc,
				   char **argv, struct al_error *err);

/* supervisor/config.c: defaults, then the environment, then flags, then
 * the checks that need the whole picture. Every error names the variable
 * or flag and the form expected; airlockd exits 2 on any. Strings are
 * borrowed from the environment and argv. */
void supervisor_config_defaults(struct supervisor_config *cfg);
/* The environment variables of docs/design.md, "Configuration". */
int supervisor_config_from_env(struct supervisor_config *cfg,
			       struct al_error *err);
/* --config FILE: the same variables as NAME=VALUE lines ('#' comments,
 * optional quotes), applied over the environment and under the flags. The
 * file must be a regular file writable only by root (or airlockd's user).
 * Errors name FILE:LINE. */
int supervisor_config_from_file(struct supervisor_config *cfg, const char *path,
				struct al_error *err);
/* The path given to --config in argv, or NULL. */
const char *supervisor_config_file_arg(int argc, char **argv);
void supervisor_config_release(struct supervisor_config *cfg);
/* The whole chain: defaults, environment, --config file, flags, checks.
 * 0, 1 for --help, -1 with err (nothing to release then). */
int supervisor_config_load(struct supervisor_config *cfg, int argc, char **argv,
			   struct al_error *err);
/* Flags override the environment. 0, 1 for --help, -1 with err. */
int supervisor_config_from_args(struct supervisor_config *cfg, int argc,
				char **argv, struct al_error *err);
void supervisor_config_usage(FILE *f);
/* "ADDR:PORT" (IPv4) or "[ADDR]:PORT" (IPv6), numeric only, port 1 to
 * 65535, into `out`; -1 with err (naming `what`) otherwise. */
int supervisor_parse_listen(const char *what, const char *v,
			    struct sockaddr_storage *out, socklen_t *len,
			    struct al_error *err);
/* The address in the form supervisor_parse_listen() reads. */
void supervisor_format_listen(const struct sockaddr_storage *ss, char *buf,
			      size_t size);
/* DATABASE_URL against the final state directory, PROM_API_KEY, and the
 * default-policy overrides tried on the "default" policy. */
int supervisor_config_check(const struct supervisor_config *cfg,
			    struct al_error *err);
/* DATABASE_URL when it names a server (the manifest's URL), else NULL:
 * the state directory's SQLite file. */
const char *supervisor_config_server_url(const struct supervisor_config *cfg);
struct al_policy;
/* SANDBOX_MEM_MB / SANDBOX_TIMEOUT_MS onto `p` (the "default" policy). */
int supervisor_config_apply_policy(const struct supervisor_config *cfg,
				   struct al_policy *p, struct al_error *err);

struct supervisor;

/* Probe the host, open the manifest read-write (repairing what a crash
 * left), sweep leftover run cgroups, bind the socket. Caller frees. */
struct supervisor *supervisor_new(const struct supervisor_config *cfg,
				  struct al_error *err);
/* Serve until SIGTERM or SIGINT and the grace period; 0 on a clean stop. */
int supervisor_run(struct supervisor *s, struct al_error *err);
/* Kills what still runs, removes the socket, closes everything. */
void supervisor_free(struct supervisor *s);

#endif
