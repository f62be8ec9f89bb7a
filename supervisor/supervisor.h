/*
 * supervisor: airlockd, the daemon that receives modules over a Unix
 * socket, validates them in a jail, registers them in the manifest, runs
 * them on demand and archives the ones that crash. Protocol reference:
 * docs/protocol.md; theory of operation: the top of supervisor/loop.c.
 *
 * Two halves share this header:
 *
 *   the protocol codec (json.c, protocol.c), pure code that the daemon and
 *   the `airlock` client both use:
 *
 *     struct json_doc *doc = json_parse(line, len, &limits, &err);
 *     struct proto_request req;
 *     proto_request_decode(doc, &req, &err);   // borrows from doc
 *     ... proto_response_error(&jb, req.id, PROTO_E_NOT_FOUND, "...");
 *     json_doc_free(doc);
 *
 *   the daemon (everything else in supervisor/, linked into airlockd only):
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

/* ============================================================ JSON parser */

/*
 * A small, bounded JSON parser for protocol lines. The whole text is parsed
 * at once into a fixed number of nodes; strings are unescaped into one
 * arena no larger than the input. Anything past the limits (nodes, depth,
 * string length) is an error, never a reallocation, so a hostile line
 * costs at most O(len) memory.
 */
enum json_type {
	JSON_NULL,
	JSON_BOOL,
	JSON_INT,    /* an integer that fits int64 */
	JSON_NUMBER, /* any other number (fraction or exponent) */
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

struct json_node {
	enum json_type type;
	uint32_t parent;  /* index; the root's is itself */
	uint32_t next;    /* next sibling, or 0 for none */
	uint32_t child;   /* first child (arrays, objects), or 0 */
	uint32_t count;   /* members or elements */
	const char *key;  /* the member's name inside an object, else NULL */
	size_t key_len;
	const char *str;  /* JSON_STRING: NUL-terminated, may contain NUL */
	size_t len;
	int64_t i;        /* JSON_INT, JSON_BOOL */
	double d;         /* JSON_INT, JSON_NUMBER */
};

struct json_limits {
	uint32_t max_nodes; /* 0: 4096 */
	uint32_t max_depth; /* 0: 16 */
};

struct json_doc;

/* Parse `len` bytes (one complete JSON value, whitespace around it
 * allowed); the text is borrowed for the call only. Caller frees. */
struct json_doc *json_parse(const char *text, size_t len,
			    const struct json_limits *limits,
			    struct al_error *err);
void json_doc_free(struct json_doc *doc);
/* The root node; borrowed from the document. */
const struct json_node *json_root(const struct json_doc *doc);
/* A member of an object by name, or NULL. */
const struct json_node *json_get(const struct json_doc *doc,
				 const struct json_node *obj, const char *key);
/* The first child, the next sibling (NULL at the end). */
const struct json_node *json_first(const struct json_doc *doc,
				   const struct json_node *n);
const struct json_node *json_next(const struct json_doc *doc,
				  const struct json_node *n);
/* Convenience: a string member's value, or `dflt`. */
const char *json_get_str(const struct json_doc *doc,
			 const struct json_node *obj, const char *key,
			 const char *dflt);
const char *json_type_name(enum json_type t);

/* ================================================================ base64 */

/* Standard alphabet with '=' padding; whitespace is not allowed. The
 * output holds at most len/4*3 bytes. Returns the decoded length, or -1
 * (with err) on any invalid character or padding. */
ssize_t base64_decode(const char *in, size_t len, unsigned char *out,
		      struct al_error *err);
/* Caller frees; NULL on allocation failure. */
char *base64_encode(const void *in, size_t len);

/* ============================================================= protocol */

/* Error codes of docs/protocol.md; their names are stable. */
enum proto_error {
	PROTO_E_BAD_REQUEST,
	PROTO_E_TOO_LARGE,
	PROTO_E_UNKNOWN_OP,
	PROTO_E_UNAUTHORIZED,
	PROTO_E_RATE_LIMITED,
	PROTO_E_OVERLOADED,
	PROTO_E_NOT_FOUND,
	PROTO_E_ARCHIVED,
	PROTO_E_REJECTED, /* submit: validation failed; the result comes too */
	PROTO_E_CONFLICT,
	PROTO_E_BAD_POLICY,
	PROTO_E_SHUTTING_DOWN,
	PROTO_E_INTERNAL,
	PROTO_E_CANCELLED, /* a queued run removed by an admin's cancel */
	PROTO_E_STORAGE_FULL, /* submit: storage quota or free-space floor */
	PROTO_E_INTERRUPTED, /* killed at the end of the shutdown grace */
	PROTO_E_COUNT,
};

const char *proto_error_name(enum proto_error e);

/* Caller roles, weakest first. */
enum proto_role {
	PROTO_ROLE_NONE,
	PROTO_ROLE_CLIENT, /* submit, exec, status, list, show, runs, health,
			      events, subscribe, quota_show */
	PROTO_ROLE_ADMIN,  /* also archive, restore, cancel, quota_reset */
};

#define PROTO_MAX_ARGS 256
#define PROTO_OP_MAX 31
#define PROTO_ID_MAX 64
#define PROTO_CATCH_UP_MAX 100 /* subscribe: earlier events sent first */
/* json_limits of a request line (airlockd, tests/fuzz/fuzz_request.c) */
#define PROTO_REQUEST_MAX_NODES 2048
#define PROTO_REQUEST_MAX_DEPTH 8

/* One request, decoded. Every pointer is borrowed from the json_doc it was
 * decoded from; absent members are NULL / 0 / false. */
struct proto_request {
	const char *op;
	const char *id;      /* the client's request id, echoed back */
	const char *name;    /* module name */
	const char *policy;  /* policy name for submit */
	const char *content; /* base64 module content (submit) */
	size_t content_len;
	bool content_fd;     /* submit: the content is the passed fd's */
	const char *stdin_data; /* text given to the module's stdin */
	size_t stdin_len;
	const char *reason;  /* archive */
	const char *args[PROTO_MAX_ARGS + 1]; /* exec: NULL-terminated */
	size_t nargs;
	const char *validate_args[PROTO_MAX_ARGS + 1]; /* submit */
	size_t nvalidate_args;
	int64_t run;     /* cancel, show a run */
	int64_t version; /* show, runs */
	int64_t limit;   /* list, runs, events, subscribe */
	bool has_run;
	int64_t uid;     /* quota_show, quota_reset */
	bool has_uid;
	int64_t after;   /* events, subscribe: feed rows after this id */
	const char *since; /* events, subscribe: a time or an age ("1h") */
	const char *group; /* submit: the group that shares a new module */
};

/*
 * Check a parsed line against the request table (member names, their
 * types and bounds) and fill `req`. Unknown members, wrong types, over-long
 * strings and arrays are errors (err says which member). `req->id` is
 * filled before any other check so an error can still echo it.
 */
int proto_request_decode(const struct json_doc *doc,
			 struct proto_request *req, struct al_error *err);

/* Start a response object {"ok":true,"id":...; the caller adds members and
 * closes it with json_object_close(). */
void proto_response_ok(struct json_buf *jb, const char *id);
/* A whole error response {"ok":false,"id":...,"error":{"code","message"}};
 * retry_after_ms > 0 adds that member to "error" (rate_limited). */
void proto_response_error(struct json_buf *jb, const char *id,
			  enum proto_error code, const char *message,
			  int64_t retry_after_ms);

/* One feed row (manifest_feed()) as the object `events` and `subscribe`
 * send: id, time, kind, and module, version, run, uid, verdict, detail
 * when it has them (docs/protocol.md). */
struct manifest_feed_event;
void proto_event_json(struct json_buf *jb,
		      const struct manifest_feed_event *ev);

/* ================================================================ report */

/*
 * What `airlock status` shows that the manifest alone knows (report.c):
 * airlockd's status op and the client, when the daemon is down, write the
 * same members, so one printer serves both.
 */
struct manifest;

/* The quota windows: the hour, and the day starting at `reset_hour` UTC,
 * that `now_ms` (epoch) falls in, as their first millisecond; each ends
 * AL_HOUR_MS or AL_DAY_MS later. The one place that arithmetic lives. */
int64_t report_hour_start(int64_t now_ms);
int64_t report_day_start(int64_t now_ms, unsigned reset_hour);

/* Members "modules" (count by state), "runs_recorded", "runs_running",
 * "runs_by_verdict" (runs that ended since `since_ms`) and
 * "recent_archives" (the last 5 archive events with their reasons) into
 * an open object; the archives only of modules `viewer` may see (NULL:
 * every one). */
struct manifest_viewer;
int report_manifest_json(struct json_buf *jb, struct manifest *m,
			 int64_t since_ms,
			 const struct manifest_viewer *viewer,
			 struct al_error *err);

/* Quota limits as configured (0: none); known false when the daemon is
 * not there to say. */
struct report_limits {
	bool known;
	unsigned per_hour, per_day, reset_hour;
};
/* One element of "quotas": uid, used and left in each window. */
void report_quota_json(struct json_buf *jb, uint32_t uid, uint64_t hour,
		       uint64_t day, const struct report_limits *l);

/* ============================================================= daemon */

#define SUPERVISOR_DEFAULT_SOCKET "/run/airlock/airlock.sock"

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
	uint64_t store_max_per_uid;       /* bytes (1 GiB) */
	unsigned store_versions_per_uid;  /* versions with a file (1000) */
	uint64_t store_free_min;          /* bytes (256 MiB) */
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
	const char *prom_api_key;   /* PROM_API_KEY, borrowed, or NULL */
	const char *database_url;   /* DATABASE_URL, borrowed, or NULL;
				       secret (a password): never print it */
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
	SET_MIB,    /* MiB: --flag takes a size in whole MiB, the variable MiB */
	SET_SIZE,   /* bytes: a size */
	SET_LEVEL,  /* int: debug 0, info 1, warn 2, error 3 */
	SET_BOOL,   /* --flag alone sets it; the variable: true/false/1/0 */
	SET_UIDS,   /* a repeatable flag: users (names or numbers) into a list */
	SET_GIDS,   /* groups, the same */
	SET_CONFIG, /* --config FILE: read before the rest */
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
int supervisor_config_from_file(struct supervisor_config *cfg,
				const char *path, struct al_error *err);
/* The path given to --config in argv, or NULL. */
const char *supervisor_config_file_arg(int argc, char **argv);
void supervisor_config_release(struct supervisor_config *cfg);
/* The whole chain: defaults, environment, --config file, flags, checks.
 * 0, 1 for --help, -1 with err (nothing to release then). */
int supervisor_config_load(struct supervisor_config *cfg, int argc,
			   char **argv, struct al_error *err);
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
