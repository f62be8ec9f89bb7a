/*
 * supervisor: the protocol codec of airlockd's socket, the one part of
 * supervisor/ that the airlock client links too (protocol.c, report.c;
 * docs/protocol.md is the reference). Pure code: no daemon state.
 *
 *     struct json_doc *doc = json_parse(line, len, &limits, &err);
 *     struct proto_request req;
 *     proto_request_decode(doc, &req, &err);   // borrows from doc
 *     ... proto_response_error(&jb, req.id, PROTO_E_NOT_FOUND, "...");
 *     json_doc_free(doc);
 *
 * The JSON reader and base64 it builds on are in common/common.h.
 */
#ifndef AIRLOCK_SUPERVISOR_PROTOCOL_H
#define AIRLOCK_SUPERVISOR_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/* Where airlockd listens unless told otherwise, and where clients look. */
#define SUPERVISOR_DEFAULT_SOCKET "/run/airlock/airlock.sock"

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
	PROTO_E_CANCELLED,    /* a queued run removed by an admin's cancel */
	PROTO_E_STORAGE_FULL, /* submit: storage quota or free-space floor */
	PROTO_E_INTERRUPTED,  /* killed at the end of the shutdown grace */
	PROTO_E_NOT_FINISHED, /* wait, result: the run has not ended yet */
	PROTO_E_UNAVAILABLE,  /* the manifest's server is out of reach */
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
/* exec's per-run options (docs/protocol.md, "Per-run options"); the
 * environment's bounds are policy.h's POLICY_REQUEST_ENV_* */
#define PROTO_MAX_ENV 64
#define PROTO_ENV_VALUE_MAX 4096
#define PROTO_CWD_MAX 4096
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
	bool content_fd;        /* submit: the content is the passed fd's */
	const char *stdin_data; /* text given to the module's stdin */
	size_t stdin_len;
	const char *reason;                   /* archive */
	const char *args[PROTO_MAX_ARGS + 1]; /* exec: NULL-terminated */
	size_t nargs;
	const char *validate_args[PROTO_MAX_ARGS + 1]; /* submit */
	size_t nvalidate_args;
	int64_t run;     /* cancel, wait, result, show a run */
	int64_t version; /* show, runs, restore */
	bool has_version;
	int64_t limit; /* list, runs, events, subscribe */
	bool has_run;
	int64_t uid; /* quota_show, quota_reset */
	bool has_uid;
	int64_t after;     /* events, subscribe: feed rows after this id */
	const char *since; /* events, subscribe: a time or an age ("1h") */
	const char *group; /* submit: the group that shares a new module */
	bool wait;         /* exec: false answers the run id at once */
	bool has_wait;
	/* exec: the run's timeout, held to the policy; wait: how long to
	 * wait. A duration with its unit ("2s"). */
	const char *timeout;
	/* exec: per-run options, held to the module's policy
	 * (policy_tighten()); NULL / absent: the policy's */
	const char *memory; /* a size, "64M" */
	int64_t pids;
	bool has_pids;
	const char *env_names[PROTO_MAX_ENV];  /* "env": checked names, */
	const char *env_values[PROTO_MAX_ENV]; /* each given once */
	size_t nenv;
	bool has_env;
	const char *cwd;   /* absolute, normalized (policy_cwd_check()) */
	const char *kind;  /* submit: "file" (the default) or "bundle" */
	const char *entry; /* submit, a bundle: the path it runs */
	const char *build; /* submit, a bundle: its build command */
};

/* Whether the request carries any of exec's per-run options. */
bool proto_request_has_run_options(const struct proto_request *req);

/*
 * Check a parsed line against the request table (member names, their
 * types and bounds) and fill `req`. Unknown members, wrong types, over-long
 * strings and arrays are errors (err says which member). `req->id` is
 * filled before any other check so an error can still echo it.
 */
int proto_request_decode(const struct json_doc *doc, struct proto_request *req,
			 struct al_error *err);

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

/* One entry of the `languages` answer (docs/protocol.md): airlockd's and
 * `airlock languages` run without a daemon write the same object. All
 * borrowed; NULL is null. status: "ok" (version says it), "none" (the
 * policy has no version_command), "not_installed", "timeout", "failed",
 * "error" (the policy does not load); detail says why when not ok. */
struct proto_language {
	const char *policy;
	const char *description;
	const char *command;     /* version_command */
	const char *interpreter; /* its program */
	const char *status;
	const char *version;
	const char *detail;
};
void proto_language_json(struct json_buf *jb, const struct proto_language *l);

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
			 int64_t since_ms, const struct manifest_viewer *viewer,
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

#endif
