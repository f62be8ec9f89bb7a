/*
 * manifest: airlock's memory. Which modules exist and in which state, every
 * run with its verdict and usage, and an append-only trail of every state
 * change, in SQLite (WAL); the module files beside it in a content-addressed
 * store. Format and states: docs/manifest.md.
 *
 * Lifecycle:
 *
 *   struct manifest *m =
 *           manifest_open(state_dir, MANIFEST_READ_WRITE, &err);
 *           // creates the layout, migrates the schema, finishes or rolls
 *           // back a file move a crash interrupted, marks runs a crash
 *           // left "running" as "interrupted"
 *
 *   manifest_stage(m, &submission, &mod, &err);          // staging/<sha256>
 *   manifest_set_state(m, mod.id, MANIFEST_VALIDATING, NULL, &err);
 *   manifest_module_path(m, &mod, path, sizeof(path), &err); // validate it
 *   manifest_run_record(m, &start, &result, &run_id, &err);
 *   manifest_set_state(m, mod.id, MANIFEST_ACTIVE, "validated", &err);
 *                                                        // modules/<sha256>
 *   manifest_active_path(m, "name", &mod, path, sizeof(path), &err);
 *   manifest_run_begin(m, &start, &run_id, &err);        // a run: "running"
 *   manifest_run_finish(m, run_id, &result, &err);       // its verdict
 *   manifest_archive(m, "name", "crashed 3 times", &err); // archive/<sha256>
 *   manifest_restore(m, "name", 0, &err);                // modules/<sha256>
 *   manifest_rollback(m, "name", uid, &mod, &err);  // the good one before
 *   manifest_retention(m, 30, now_ms, &removed, &err);   // the ticker
 *   manifest_close(m);
 *
 *   m = manifest_open(state_dir, MANIFEST_READ_ONLY, &err);  // operators
 *   manifest_list(m, &filter, fn, arg, &err);
 *   manifest_runs(m, &filter, fn, arg, &err);
 *   manifest_check(m, fn, arg, &err);
 *   manifest_backup(m, "/backup/manifest.db", &err);
 *
 * Module states and the only transitions allowed:
 *
 *   staged -> validating -> active | rejected
 *   active -> archived      (automatic, or by hand, or a rollback)
 *   archived -> active      (restore, rollback)
 *
 * Every state change is one transaction that also appends its event. A
 * change that moves a file records its intent first, moves with rename(2)
 * (or link(2) when another row still needs the file where it was), fsyncs
 * the directories and then commits, so files and rows agree whatever
 * instant the process dies at.
 *
 * One writer at a time: a read-write handle holds an exclusive flock(2) on
 * the state directory for its lifetime. Readers (read-only handles, any
 * number, in any process) never wait for the writer and never see half a
 * change. A handle is used by one thread at a time.
 *
 * Every fallible function returns -1 (or NULL) and fills `err` with what
 * failed, in words: "manifest: archive module \"foo\": it is rejected, only
 * an active module can be archived".
 */
#ifndef AIRLOCK_MANIFEST_H
#define AIRLOCK_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

struct manifest;

enum manifest_mode {
	MANIFEST_READ_ONLY,  /* queries, check, backup; never writes */
	MANIFEST_READ_WRITE, /* the supervisor: one at a time */
};

enum manifest_state {
	MANIFEST_STAGED,
	MANIFEST_VALIDATING,
	MANIFEST_ACTIVE,
	MANIFEST_REJECTED,
	MANIFEST_ARCHIVED,
	MANIFEST_STATE_COUNT,
};

/* Bounds of the text fields (bytes, without the NUL). */
#define MANIFEST_NAME_MAX 128 /* [A-Za-z0-9][A-Za-z0-9._-]* */
#define MANIFEST_POLICY_NAME_MAX 128
#define MANIFEST_HASH_MAX 71 /* "sha256:" + 64 hex */
#define MANIFEST_INTERPRETER_MAX 255
#define MANIFEST_ENTRY_MAX 1023  /* a bundle's entry point, a relative path */
#define MANIFEST_BUILD_MAX 1023  /* a bundle's build command */
#define MANIFEST_REASON_MAX 1023 /* longer reasons are cut */
#define MANIFEST_VERDICT_MAX 31
#define MANIFEST_SYSCALL_MAX 63
#define MANIFEST_EXCERPT_MAX 1024 /* the last bytes of stderr */
#define MANIFEST_SHA256_HEX 64
#define MANIFEST_TIME_MAX 32 /* "2024-05-01T12:00:00.123Z" */

/* The state directory when neither --state-dir nor AIRLOCK_STATE_DIR
 * says otherwise. */
#define MANIFEST_DEFAULT_STATE_DIR "/var/lib/airlock"

/* ----------------------------------------------------------- open/close */

/*
 * Open the manifest of `state_dir` (borrowed; copied).
 *
 * Read-write: creates the state directory (0750) and staging/ (0700),
 * modules/ and archive/ (0750) as needed, and manifest.db (0640); takes the
 * writer's lock, or fails saying another process holds it; applies the
 * migrations; repairs what a crash left half-done. Fails on a read-only
 * state directory.
 *
 * Read-only: opens manifest.db read-only (never `immutable`: a writer may
 * be working); fails when there is none, or when its schema is not this
 * airlock's (older: a read-write open upgrades it; newer: refused).
 *
 * A corrupt or foreign file is refused with a message naming it. Caller
 * closes with manifest_close().
 */
struct manifest *manifest_open(const char *state_dir, enum manifest_mode mode,
			       struct al_error *err);
/* Releases everything; NULL is fine. */
void manifest_close(struct manifest *m);

/*
 * The same with the database named by `url` (DATABASE_URL, borrowed):
 * NULL or "" is the state directory's SQLite file; postgresql://... or
 * postgres://... a PostgreSQL server (libpq's URI, with its parameters:
 * sslmode, passfile, connect_timeout...; a password from the URL, a
 * password file or PGPASSFILE). The module files stay in the state
 * directory either way. On a server, a read-write handle is the one
 * writer of that database (an advisory lock, held while it is open).
 * Messages name the server by manifest_url_redact(), never with its
 * password.
 */
struct manifest *manifest_open_at(const char *state_dir, const char *url,
				  enum manifest_mode mode,
				  struct al_error *err);

/*
 * The same as the host named `host` (AIRLOCK_HOST; NULL: this machine's
 * host name). On a server, several hosts may write one database (the
 * fleet, docs/operations.md): each one's lock is its own name's, so a
 * second airlockd of the same name is refused; a read-write open repairs
 * and interrupts only what its own host left. Module content goes into the
 * database too, and a host that lacks a module's file fetches it from
 * there (checked against its SHA-256).
 */
#define MANIFEST_HOST_MAX 63
struct manifest *manifest_open_host(const char *state_dir, const char *url,
				    const char *host, enum manifest_mode mode,
				    struct al_error *err);
/* A host name: 1 to 63 of [A-Za-z0-9._-], starting with a letter or a
 * digit. */
int manifest_host_check(const char *name, struct al_error *err);
/* This machine's host name cut to the first invalid character (the
 * domain's dot stays), or "localhost". */
void manifest_host_default(char out[MANIFEST_HOST_MAX + 1]);
/* The handle's host name. Borrowed. */
const char *manifest_host(const struct manifest *m);
/* Whether several hosts may share the database (a server): then content
 * is kept in it, and hosts heartbeat. */
bool manifest_is_shared(const struct manifest *m);

/* "sqlite" or "postgresql". */
const char *manifest_backend(const struct manifest *m);
/* The database as messages and `status` name it: the SQLite file's path,
 * or the server's URL without its password. Borrowed. */
const char *manifest_where(const struct manifest *m);

/*
 * A server's manifest can go away under a running airlockd (the server
 * restarts, the network parts). The statement that finds the connection
 * lost fails with errnum ENOTCONN, and so does every later one, at once,
 * until manifest_reconnect() succeeds; an SQLite manifest never is
 * unavailable.
 */
/* Why the manifest is unreachable (the server's message), or NULL when it
 * answers. Borrowed from the handle. */
const char *manifest_unavailable(const struct manifest *m);
/* Connect again after a loss: a new connection with the same session
 * settings, the writer's lock taken again, the schema version checked
 * against the one opened, a move the loss cut short finished. 0 when the
 * manifest answers again (or never stopped); -1 and still unavailable
 * otherwise. */
int manifest_reconnect(struct manifest *m, struct al_error *err);

/* Whether `url` names a database server (postgresql://, postgres://). */
bool manifest_url_is_server(const char *url);
/* Whether this program can open it (the static CLI has no libpq). */
bool manifest_url_supported(const char *url);
/* A server URL checked without connecting: libpq parses it and it names
 * a host (postgresql://HOST/... or ?host=/socket/dir). The message never
 * quotes the URL: it may hold a password. */
int manifest_url_check(const char *url, struct al_error *err);
/* `url` with its password (user:PASSWORD@, password=) as "***"; what is
 * not a server URL at all as "(not a server URL)". */
void manifest_url_redact(const char *url, char *buf, size_t len);

/* Borrowed from the handle. */
const char *manifest_state_dir(const struct manifest *m);
/* The schema version of the open database, and the one this code knows. */
int manifest_schema_version(const struct manifest *m);
int manifest_schema_latest(void);

/* ---------------------------------------------------------------- hosts */

struct manifest_host {
	char name[MANIFEST_HOST_MAX + 1];
	char version[32];   /* airlock's */
	char kernel[65];    /* uname -r */
	char isolation[96]; /* "cgroup v2, root" and the like */
	uint32_t slots;     /* runs it takes at once */
	uint32_t active;    /* runs it had at the heartbeat */
	int64_t started_ms, heartbeat_ms;
};

/* The handle's host is alive: its row (h->name is ignored: the handle's
 * name is used) written with heartbeat_ms now, started_ms kept from the
 * first beat of this process (h->started_ms). */
int manifest_host_beat(struct manifest *m, const struct manifest_host *h,
		       struct al_error *err);
/* The running runs of every other host whose heartbeat is older than
 * `lease_ms` become 'interrupted' (never run again); *count is how many.
 * Several hosts doing it at once change each run once. */
int manifest_hosts_lapse(struct manifest *m, int64_t lease_ms, int64_t now_ms,
			 unsigned *count, struct al_error *err);
typedef int (*manifest_host_fn)(const struct manifest_host *h, void *arg);
/* Every host by name; returns how many, or -1. */
int manifest_hosts(struct manifest *m, manifest_host_fn fn, void *arg,
		   struct al_error *err);

/* -------------------------------------------------------------- modules */

const char *manifest_state_name(enum manifest_state s); /* "active" */
int manifest_state_parse(const char *name);             /* -1 when unknown */
bool manifest_transition_allowed(enum manifest_state from,
				 enum manifest_state to);

/* Why an archived version stopped being active (docs/manifest.md,
 * "Versions"): what makes it a good version to go back to or not. */
enum manifest_cause {
	MANIFEST_CAUSE_NONE,        /* not archived */
	MANIFEST_CAUSE_SUPERSEDED,  /* another version took its place */
	MANIFEST_CAUSE_BY_HAND,     /* archive by an owner or an operator */
	MANIFEST_CAUSE_AUTO,        /* the policy's archive_on: it crashed */
	MANIFEST_CAUSE_ROLLED_BACK, /* a rollback went back from it */
	MANIFEST_CAUSE_COUNT,
};

/* "superseded", "by_hand", "auto_archived", "rolled_back"; NULL for
 * none. */
const char *manifest_cause_name(enum manifest_cause c);
/* The cause of that name; NONE for NULL or an unknown one. */
enum manifest_cause manifest_cause_parse(const char *name);

/* How many runs ended with one verdict. */
struct manifest_verdict_count {
	char verdict[MANIFEST_VERDICT_MAX + 1];
	uint64_t count;
};

/* Verdicts a run can have: al_verdict's and "running", "interrupted". */
#define MANIFEST_VERDICTS 12

/* A module row. Every field is a copy: the struct owns nothing. */
struct manifest_module {
	int64_t id;
	char name[MANIFEST_NAME_MAX + 1];
	int64_t version; /* 1, 2, ... per name; never reused */
	char sha256[MANIFEST_SHA256_HEX + 1];
	uint64_t size;
	char interpreter[MANIFEST_INTERPRETER_MAX + 1]; /* "" when none */
	char policy_name[MANIFEST_POLICY_NAME_MAX + 1];
	char policy_hash[MANIFEST_HASH_MAX + 1];
	enum manifest_state state;
	char reason[MANIFEST_REASON_MAX + 1]; /* of the last change; "" */
	uint32_t submitted_uid;
	int64_t created_ms;
	int64_t updated_ms; /* the last state change */
	/* the name's owner (the submitter of its first version) and the
	 * group sharing it, or -1 (docs/protocol.md, "Tenants") */
	uint32_t owner_uid;
	int64_t owner_gid;
	/* a bundle's entry point, the path inside its tree that a run
	 * executes (schema 6); "" for a module of one file */
	char entry[MANIFEST_ENTRY_MAX + 1];
	/* its build step's command (sh -c), run once at validation; "" for
	 * none (schema 6) */
	char build[MANIFEST_BUILD_MAX + 1];
	enum manifest_cause cause; /* archived: why; else NONE */
	/* Filled by manifest_list() with `with_runs` only (has_runs): the
	 * version's runs, validation included, by verdict; the last one's
	 * verdict ("" when none) and start. */
	bool has_runs;
	uint64_t runs;
	size_t nverdicts;
	struct manifest_verdict_count verdicts[MANIFEST_VERDICTS];
	char last_verdict[MANIFEST_VERDICT_MAX + 1];
	int64_t last_run_ms;
};

/*
 * A good version, one a rollback may make active again: archived after
 * being active (only an active version can be archived), and archived
 * because another took its place or by hand, not by the policy's
 * archive_on (it crashed) nor by a rollback away from it. Never a
 * rejected, staged or validating one.
 */
bool manifest_module_good(const struct manifest_module *mod);

/* A tenant that sees only the rows of modules it owns: owner_uid is its
 * uid, or owner_gid one of its groups. Filters take a pointer; NULL
 * means every row (an admin, the CLI on the host). Borrowed. */
#define MANIFEST_VIEWER_GROUPS 64
struct manifest_viewer {
	uint32_t uid;
	const uint32_t *gids;
	size_t ngids; /* at most MANIFEST_VIEWER_GROUPS are looked at */
};

/* What a submission brings; everything borrowed for the call. */
struct manifest_submission {
	const char *name;
	const void *content;
	size_t len;
	uint32_t uid;            /* who submitted (SO_PEERCRED) */
	const char *policy_name; /* "default" */
	const char *policy_hash; /* "sha256:<64 hex>" */
	const char *interpreter; /* "python3", or NULL */
	/* the owner of a new name (an existing name keeps its own) */
	uint32_t owner_uid;
	int64_t owner_gid; /* -1: no group */
	/* a bundle: `content` is its archive, this the entry point inside
	 * it; NULL for a module of one file */
	const char *entry;
	/* a bundle's build command, or NULL */
	const char *build;
};

/*
 * A new version of `sub->name` (the highest version that name ever had,
 * plus one) in state "staged": the content goes to staging/<sha256> (temp
 * name, fsync, rename, directory fsync), then the row and its event are
 * committed. `out` (may be NULL) receives the new row.
 */
int manifest_stage(struct manifest *m, const struct manifest_submission *sub,
		   struct manifest_module *out, struct al_error *err);
/* 1 with *out filled when the name's active version already holds this
 * content (SHA-256 and size) under the same policy name and hash: a
 * resubmission that changes nothing; 0 when not; -1 with err. */
int manifest_find_same(struct manifest *m,
		       const struct manifest_submission *sub,
		       struct manifest_module *out, struct al_error *err);

/*
 * Move module `id` to `to` if the transition table allows it (an illegal
 * one is an error and changes nothing). `reason` (borrowed, may be NULL) is
 * stored with the row and the event. Files follow the state:
 *   validating -> active    staging/X -> modules/X; the name's active
 *                           version, if any, is archived ("superseded by
 *                           version N") in the same change
 *   validating -> rejected  staging/X is deleted once the move journal
 *                           says so (rejected code is not kept)
 *   active -> archived      modules/X -> archive/X
 *   archived -> active      archive/X -> modules/X; refused while another
 *                           version of the name is active
 */
int manifest_set_state(struct manifest *m, int64_t id, enum manifest_state to,
		       const char *reason, struct al_error *err);

/* The active version of `name` -> archived by hand, with `reason`
 * (borrowed). */
int manifest_archive(struct manifest *m, const char *name, const char *reason,
		     struct al_error *err);
/* Module `id` (active) -> archived by the policy's archive_on (it
 * crashed): never a good version after this (manifest_module_good()). */
int manifest_auto_archive(struct manifest *m, int64_t id, const char *reason,
			  struct al_error *err);
/*
 * `version` 0: the highest archived version of `name` -> active, refused
 * (EEXIST) while another version of it is active; whichever version that
 * is, good or not (an auto-archived one too: the operator asked).
 * `version` N: that version, which must be archived (EINVAL otherwise,
 * ENOENT when there is none); the active version, if any, is archived
 * ("superseded by the restore of version N") in the same change.
 */
int manifest_restore(struct manifest *m, const char *name, int64_t version,
		     struct al_error *err);
/*
 * Go back from the version of `name` that is active, or when none is,
 * from the one that was active last (the one archived last): the newest
 * good version (manifest_module_good()) older than it becomes active, and
 * the active one, if any, is archived with the reason "rolled back to vN
 * by uid U" (cause rolled_back). One change: both rows, their events and
 * the file moves. ENOENT when the name has no version; EINVAL, nothing
 * changed, when no version was ever active or none older is good. `out`
 * (may be NULL) receives the version now active.
 */
int manifest_rollback(struct manifest *m, const char *name, uint32_t uid,
		      struct manifest_module *out, struct al_error *err);

/* Module `id`; an unknown id is an error with errnum ENOENT. */
/*
 * The syscalls a module's validation run learned (policy `seccomp =
 * learned`): names joined by spaces. Set once, before the module becomes
 * active; *out is a heap string (caller frees), or NULL when the module
 * has no learned set.
 */
int manifest_set_syscalls(struct manifest *m, int64_t id, const char *names,
			  struct al_error *err);
int manifest_get_syscalls(struct manifest *m, int64_t id, char **out,
			  struct al_error *err);
int manifest_get(struct manifest *m, int64_t id, struct manifest_module *out,
		 struct al_error *err);
/* `name` at `version`, or its latest version when `version` is 0; ENOENT
 * when there is none. */
int manifest_find(struct manifest *m, const char *name, int64_t version,
		  struct manifest_module *out, struct al_error *err);

/* Path of a module's file for its state (staging/, modules/ or archive/
 * under the state directory) into `buf`; a rejected module has none. */
int manifest_module_path(struct manifest *m, const struct manifest_module *mod,
			 char *buf, size_t len, struct al_error *err);
/* 0 if the file at `path` still holds what `mod` records (size and
 * SHA-256); EBADMSG with a message saying so otherwise. Run before each
 * start: nothing else re-checks a stored module's content. */
int manifest_module_verify(const char *path, const struct manifest_module *mod,
			   struct al_error *err);
/* 1 when a module row that keeps a file (any state but rejected) has
 * content `sha256`, 0 when none has; -1 with err. */
int manifest_content_used(struct manifest *m, const char *sha256,
			  struct al_error *err);
/* The file to execute for `name`: its active version. `mod` may be NULL.
 * ENOENT when no version is active. */
int manifest_active_path(struct manifest *m, const char *name,
			 struct manifest_module *mod, char *buf, size_t len,
			 struct al_error *err);

/* Filters: a zeroed struct selects everything. Borrowed for the call. */
struct manifest_module_filter {
	const char *name; /* every version of this name */
	bool by_state;
	enum manifest_state state;
	const struct manifest_viewer *viewer; /* NULL: every owner's */
	bool with_runs; /* fill each row's run counts (has_runs) */
};

/* Called once per row; the row is borrowed for the call. Return non-zero to
 * stop early. */
typedef int (*manifest_module_fn)(const struct manifest_module *mod, void *arg);

/* Modules by name, then version. Returns how many rows were visited, or
 * -1. */
int manifest_list(struct manifest *m, const struct manifest_module_filter *f,
		  manifest_module_fn fn, void *arg, struct al_error *err);

/* What one submitter keeps stored: versions with a file (every state but
 * rejected) and the sum of their sizes. */
struct manifest_storage {
	uint32_t uid;
	uint64_t bytes;
	uint64_t versions;
};
typedef int (*manifest_storage_fn)(const struct manifest_storage *st,
				   void *arg);
/* Per submitting uid (`uid` < 0: every uid that stores something, by
 * uid; else that one, reported even when it stores nothing). Returns how
 * many rows, or -1. */
int manifest_storage_use(struct manifest *m, int64_t uid,
			 manifest_storage_fn fn, void *arg,
			 struct al_error *err);

/* ----------------------------------------------------------------- runs */

/* The start of a run; borrowed for the call. */
/* The limits a run is held to (the result's "limits"). */
struct manifest_run_limits {
	bool known; /* false: not recorded (runs from before schema 6) */
	uint64_t timeout_ms;
	uint64_t memory_bytes;
	uint64_t pids;
};

struct manifest_run_start {
	int64_t module_id;       /* a validating or active module */
	const char *policy_hash; /* the policy that holds it */
	uint32_t uid;            /* who asked for the run */
	int64_t started_ms;      /* 0: now */
	/* the policy's limits, or lower where the request asked */
	struct manifest_run_limits limits;
};

/* What a run ended with (the sandbox's result as plain values); borrowed
 * for the call. */
struct manifest_run_result {
	const char *verdict; /* "ok", "exit_nonzero", "crashed", "timeout",
				"memory_limit", "seccomp_violation",
				"setup_error" */
	int exit_code;       /* -1 when it did not exit */
	int signal;          /* 0 when none */
	const char *syscall; /* the denied call, or NULL */
	double wall_ms;
	double cpu_ms;
	uint64_t peak_memory_bytes;
	bool stdout_truncated;
	bool stderr_truncated;
	const char *stderr_data; /* its last MANIFEST_EXCERPT_MAX bytes are */
	size_t stderr_len;       /* kept; any bytes */
	int64_t ended_ms;        /* 0: now */
	/* kept through an outage of the server and committed after it: it
	 * replaces the "interrupted" a later open or another host's lease
	 * put on the row in the meantime */
	bool replay;
};

/* A run that starts now: a row with verdict "running"; *run_id is its id. */
int manifest_run_begin(struct manifest *m, const struct manifest_run_start *s,
		       int64_t *run_id, struct al_error *err);
/* Its result; an error unless run `run_id` is running. A run that has
 * this verdict and this (given, not 0) end time already is success: a
 * retry whose first try committed but lost its answer records nothing
 * twice. */
int manifest_run_finish(struct manifest *m, int64_t run_id,
			const struct manifest_run_result *r,
			struct al_error *err);
/* A running run the supervisor gave up on (killed at the end of its
 * shutdown grace): verdict "interrupted" now, not at the next open. An
 * error unless run `run_id` is running or interrupted already. */
int manifest_run_interrupt(struct manifest *m, int64_t run_id,
			   struct al_error *err);
/* Both at once, one transaction. `run_id` may be NULL. */
int manifest_run_record(struct manifest *m, const struct manifest_run_start *s,
			const struct manifest_run_result *r, int64_t *run_id,
			struct al_error *err);

/* A run row. Every field is a copy. */
struct manifest_run {
	int64_t id;
	int64_t module_id;
	char module_name[MANIFEST_NAME_MAX + 1];
	int64_t module_version;
	int64_t started_ms;
	int64_t ended_ms;                       /* 0 while running */
	char verdict[MANIFEST_VERDICT_MAX + 1]; /* also "running",
						   "interrupted" */
	bool has_exit_code;
	int exit_code;
	int signal; /* 0: none */
	char syscall[MANIFEST_SYSCALL_MAX + 1];
	bool has_usage; /* wall, cpu, peak: false while running */
	double wall_ms;
	double cpu_ms;
	uint64_t peak_memory_bytes;
	bool stdout_truncated;
	bool stderr_truncated;
	char policy_hash[MANIFEST_HASH_MAX + 1];
	uint32_t uid;
	struct manifest_run_limits limits;
	size_t stderr_excerpt_len; /* any bytes, not NUL-terminated text */
	char stderr_excerpt[MANIFEST_EXCERPT_MAX];
};

struct manifest_run_filter {
	const char *name;    /* runs of any version of this module */
	int64_t module_id;   /* runs of this version; 0: any */
	int64_t since_ms;    /* started at or after; 0: any time */
	const char *verdict; /* one verdict (or "running", "interrupted") */
	size_t limit;        /* at most this many, newest first; 0: all */
	const struct manifest_viewer *viewer; /* runs of modules it owns */
};

typedef int (*manifest_run_fn)(const struct manifest_run *run, void *arg);

/* Runs newest first. Returns how many rows were visited, or -1. */
int manifest_runs(struct manifest *m, const struct manifest_run_filter *f,
		  manifest_run_fn fn, void *arg, struct al_error *err);
/* Run `id`; ENOENT when unknown. */
int manifest_run_get(struct manifest *m, int64_t id, struct manifest_run *out,
		     struct al_error *err);

/* ----------------------------------------------------------- run output */

/*
 * What a run printed, kept for airlockd's `result` and `wait` answers
 * (docs/manifest.md, "Run output"): its result object and, of each
 * stream, the first `keep` bytes, zlib-compressed when that is smaller.
 * It goes with its run (retention, a deleted module).
 */
enum manifest_stream_kind { MANIFEST_STDOUT, MANIFEST_STDERR };

/* One stream going in; borrowed for the call. */
struct manifest_stream_in {
	const void *data; /* what the run captured (any bytes), or NULL */
	size_t len;
	bool truncated; /* the capture itself was cut */
	/* what the run captured, when `data` holds only its first `len`
	 * bytes (a spooled finish keeps no more); 0: len */
	uint64_t size;
};

struct manifest_output_in {
	/* the run's result object (JSON text), its stdout and stderr
	 * members null: the bytes are the streams' */
	const char *result;
	bool archived; /* the run archived its module */
	struct manifest_stream_in streams[2];
	size_t keep; /* at most this many bytes of each stream are kept */
};

/* One stream coming out. */
struct manifest_stream {
	unsigned char *data; /* the kept bytes (NUL-terminated); owned */
	size_t len;
	uint64_t size;   /* what the run captured: len when nothing was cut */
	bool truncated;  /* the capture or the keep bound cut it */
	bool compressed; /* how it was stored */
	size_t stored;   /* bytes in the database */
};

struct manifest_output {
	char *result; /* owned */
	bool archived;
	struct manifest_stream streams[2];
};

/* Keep run `run_id`'s output (once: EEXIST if it has some already;
 * ENOENT for no such run). */
int manifest_output_put(struct manifest *m, int64_t run_id,
			const struct manifest_output_in *in,
			struct al_error *err);
/* Run `run_id`'s output into *out (released with manifest_output_free);
 * ENOENT when none was kept (no such run, or it kept none). */
int manifest_output_get(struct manifest *m, int64_t run_id,
			struct manifest_output *out, struct al_error *err);
void manifest_output_free(struct manifest_output *out);

/* --------------------------------------------------------------- events */

struct manifest_event {
	int64_t id;
	int64_t time_ms;
	int64_t module_id;
	char module_name[MANIFEST_NAME_MAX + 1];
	int64_t module_version;
	char from_state[16]; /* "" for the first event of a module */
	char to_state[16];   /* a state, or "deleted" */
	char reason[MANIFEST_REASON_MAX + 1];
};

typedef int (*manifest_event_fn)(const struct manifest_event *ev, void *arg);

/* Events of module `module_id` (0: of every module), oldest first, at most
 * `limit` of the newest (0: all). Returns how many, or -1. */
int manifest_events(struct manifest *m, int64_t module_id, size_t limit,
		    manifest_event_fn fn, void *arg, struct al_error *err);

/* ----------------------------------------------------------------- feed */

/*
 * The feed: everything an operator watches happen, oldest first, each row
 * with an id that only grows (docs/manifest.md, "The feed"). Module state
 * changes and finished runs enter it by themselves (in the transaction
 * that makes them); the supervisor adds what only it knows with
 * manifest_feed_add().
 *
 * Kinds: submitted, validating, validated, rejected, archived, restored,
 * deleted (module state changes; detail: the reason), run (a verdict; the
 * run's id, uid and verdict), rate_limited, quota_reset, policy_reload,
 * started, stopped (the supervisor's; uid and detail as it says).
 */
#define MANIFEST_KIND_MAX 15

struct manifest_feed_event {
	int64_t id;
	int64_t time_ms;
	char kind[MANIFEST_KIND_MAX + 1];
	int64_t module_id; /* 0 when no module is concerned */
	char module_name[MANIFEST_NAME_MAX + 1];
	int64_t module_version;
	int64_t run_id; /* 0 when no run is concerned */
	bool has_uid;
	uint32_t uid;
	char verdict[MANIFEST_VERDICT_MAX + 1]; /* kind "run"; else "" */
	char detail[MANIFEST_REASON_MAX + 1];
	/* the module's owner while the module row exists: has_owner */
	bool has_owner;
	uint32_t owner_uid;
	int64_t owner_gid; /* -1: none */
};

/* A zeroed filter selects everything. Borrowed for the call. */
struct manifest_feed_filter {
	int64_t after_id; /* rows with a larger id only */
	int64_t since_ms; /* at or after; 0: any time */
	const char *kind; /* one kind, or NULL */
	size_t limit;     /* the newest `limit` (0: all), still oldest first */
	/* rows of modules it owns, and rows of no module that name its uid
	 * or no uid (the daemon's own); NULL: every row */
	const struct manifest_viewer *viewer;
};

typedef int (*manifest_feed_fn)(const struct manifest_feed_event *ev,
				void *arg);

/* The feed's rows, oldest first. Returns how many, or -1. */
int manifest_feed(struct manifest *m, const struct manifest_feed_filter *f,
		  manifest_feed_fn fn, void *arg, struct al_error *err);
/* Append a supervisor event of `kind` (rate_limited, quota_reset,
 * policy_reload, started, stopped; any other is EINVAL) now; `uid` < 0:
 * none; `detail` may be NULL. `id` (may be NULL) gets the new row's id. */
int manifest_feed_add(struct manifest *m, const char *kind, int64_t uid,
		      const char *detail, int64_t *id, struct al_error *err);

/* What one uid ran in the current quota windows. */
struct manifest_usage {
	uint32_t uid;
	uint64_t hour;    /* runs started since hour_ms */
	uint64_t day;     /* runs started since day_ms */
	int64_t reset_ms; /* its last quota_reset, or 0: runs before it do
			     not count */
};

typedef int (*manifest_usage_fn)(const struct manifest_usage *u, void *arg);

/* Runs started per uid since `day_ms` and since `hour_ms` (hour_ms >=
 * day_ms), every kind of run (validations too), those started before the
 * uid's last quota reset left out. `uid` < 0: every uid with such runs,
 * by uid. Returns how many uids, or -1. */
int manifest_usage(struct manifest *m, int64_t uid, int64_t day_ms,
		   int64_t hour_ms, manifest_usage_fn fn, void *arg,
		   struct al_error *err);

/* How many runs ended at or after `since_ms` with each verdict (running
 * runs are not counted), of the modules `viewer` sees (NULL: all). Up to
 * `max` entries into `out`, their number into *n. */
int manifest_verdict_counts(struct manifest *m, int64_t since_ms,
			    const struct manifest_viewer *viewer,
			    struct manifest_verdict_count *out, size_t max,
			    size_t *n, struct al_error *err);

/* ---------------------------------------------------------- consistency */

/*
 * Hold one snapshot of the database across several queries (say, a module,
 * its runs and its events, as `airlock show` prints them): queries between
 * begin and end see the database as it was at the first of them. Only for
 * queries; end it before writing.
 */
int manifest_snapshot_begin(struct manifest *m, struct al_error *err);
void manifest_snapshot_end(struct manifest *m);

struct manifest_stats {
	uint64_t modules[MANIFEST_STATE_COUNT];
	uint64_t runs;
	uint64_t runs_running;
	uint64_t events;
};
/* Modules by state and runs of the modules `viewer` sees (NULL: all);
 * events are always the whole feed's count. */
int manifest_stats(struct manifest *m, const struct manifest_viewer *viewer,
		   struct manifest_stats *out, struct al_error *err);
/* A real write, for health checks: one transaction that rewrites a header
 * field with its own value, so the commit reaches the disk (a WAL frame)
 * and fails as any state change would (read-only or full filesystem, I/O
 * error, a lock held elsewhere). Changes nothing. */
int manifest_write_check(struct manifest *m, struct al_error *err);

/* ------------------------------------------------------------ retention */

struct manifest_removed {
	uint64_t modules; /* archived modules, with their files and runs */
	uint64_t runs;    /* finished runs */
};

/*
 * Delete what is older than `days` before `now_ms`: archived modules
 * archived before then (the row, its runs and its file in archive/, each
 * deletion journaled and recorded as an event), and runs that started
 * before then. Events are kept. `removed` may be NULL.
 */
int manifest_retention(struct manifest *m, unsigned days, int64_t now_ms,
		       struct manifest_removed *removed, struct al_error *err);

/* --------------------------------------------------- backup and checking */

/*
 * An online copy of the database (SQLite's backup API) at `path`: written
 * beside it under a temporary name, fsynced, then renamed over `path`.
 * Works on a read-only handle and while a writer works.
 */
int manifest_backup(struct manifest *m, const char *path, struct al_error *err);

/* One thing manifest_check() found wrong. Borrowed for the callback. */
struct manifest_problem {
	const char *kind;    /* "integrity", "missing", "corrupt", "stray",
				"layout" (docs/manifest.md) */
	const char *path;    /* relative to the state directory, or NULL */
	int64_t module_id;   /* 0 when no row is concerned */
	const char *message; /* a sentence for people */
};

typedef void (*manifest_problem_fn)(const struct manifest_problem *p,
				    void *arg);

/*
 * PRAGMA integrity_check and foreign_key_check, then files against rows:
 * every module row's file where its state says, with the size and SHA-256
 * the row says; no file in staging/, modules/ or archive/ without a row.
 * Reports each problem to `fn` (may be NULL) and deletes nothing. A move in
 * progress (a writer at work) is not a problem. Returns the number of
 * problems, or -1 when the check itself could not run; errnum EAGAIN when
 * a writer committed during every attempt (run it again).
 */
int manifest_check(struct manifest *m, manifest_problem_fn fn, void *arg,
		   struct al_error *err);

/*
 * Remove from staging/ the files no module row and no journaled move wants
 * and that are at least min_age_ms old: temp files of submissions a crash
 * cut short, staged copies whose undo failed. For the manifest's one
 * writer (the supervisor), between its own transactions; fn (may be NULL)
 * hears of each file removed. Returns how many, or -1 with err.
 */
int manifest_staging_sweep(struct manifest *m, int64_t min_age_ms,
			   void (*fn)(const char *path, void *arg), void *arg,
			   struct al_error *err);

/* ----------------------------------------------------------------- JSON */

/*
 * The one JSON object of a module version and of a run (docs/manifest.md,
 * "JSON"), appended to `jb` as a value: airlockd's answers and the CLI's
 * --json views both write these. Borrow their arguments.
 */
void manifest_module_json(struct json_buf *jb,
			  const struct manifest_module *module);
void manifest_run_json(struct json_buf *jb, const struct manifest_run *run);
void manifest_event_json(struct json_buf *jb,
			 const struct manifest_event *event);

/* ----------------------------------------------------------------- time */

/* Milliseconds since the epoch, now. */
int64_t manifest_now_ms(void);
/* "2024-05-01T12:00:00.123Z" (UTC); with `millis` false, no fraction. */
void manifest_time_format(int64_t ms, bool millis, char buf[MANIFEST_TIME_MAX]);
/*
 * A point in time as an operator writes one: ISO 8601 in UTC
 * ("2024-05-01", "2024-05-01T12:00", "2024-05-01T12:00:00Z",
 * "2024-05-01T12:00:00.5Z", a "+02:00" offset), or an age before `now_ms`
 * ("90s", "30m", "2h", "7d").
 */
int manifest_time_parse(const char *s, int64_t now_ms, int64_t *out,
			struct al_error *err);

#endif
