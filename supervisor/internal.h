/* supervisor/: private to the daemon's files; nothing else includes it. */
#ifndef AIRLOCK_SUPERVISOR_INTERNAL_H
#define AIRLOCK_SUPERVISOR_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>

#include "manifest/manifest.h"
#include "policy/policy.h"
#include "sandbox/sandbox.h"
#include "supervisor/supervisor.h"

/* What an epoll event's data.ptr points at: the first member of each
 * watched object. */
enum source_kind {
	SRC_LISTEN,
	SRC_SIGNAL,
	SRC_TICK,
	SRC_CONN,
	SRC_JOB,
	SRC_HTTP,
	SRC_LANG, /* languages.c: a version probe's jail */
};

struct source {
	enum source_kind kind;
	int fd;
};

/* ------------------------------------------------------------ logging */

enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_setup(int level, bool pretty);
/* One JSON line on stderr: time, level, function, request and run ids
 * (NULL / 0 when none), the message. */
void log_line(int level, const char *func, const char *req, int64_t run,
	      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define LOG(level, req, run, ...)                                              \
	log_line(level, __func__, req, run, __VA_ARGS__)

/* ------------------------------------------------------------ policies */

/* A module's learned rules and their compiled filter (learned.c), kept
 * with the policy they were cut from: compiled at the module's first exec
 * under that policy, loaded as they are by the next ones. */
struct learned_entry {
	int64_t module_id; /* 0: a free slot */
	struct al_policy *policy;
	struct sandbox_filter *filter;
	unsigned refs;      /* jobs using it now */
	uint64_t last_used; /* for reuse of the slot: least recent first */
};

#define LEARNED_CACHE_MAX 32

/* A loaded policy and its compiled filter, shared by the runs under it
 * (policy_cache.c). Reload (SIGHUP) marks every entry stale; a stale
 * entry is freed when its last run ends. */
struct sup_policy {
	char name[MANIFEST_POLICY_NAME_MAX + 1];
	struct al_policy *policy;
	struct sandbox_filter *filter;
	char hash[POLICY_HASH_LEN];
	unsigned refs;
	bool stale;
	struct learned_entry learned[LEARNED_CACHE_MAX];
	uint64_t learned_clock;
	struct sup_policy *next;
};

/* ---------------------------------------------------------- connections */

struct conn {
	struct source src;
	uint64_t serial; /* for request ids: "<serial>.<n>" */
	uint64_t requests;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	enum proto_role role;
	/* its gid and supplementary groups at connect (SO_PEERGROUPS): the
	 * groups through which it may own modules (tenants.c) */
	uint32_t groups[MANIFEST_VIEWER_GROUPS];
	size_t ngroups;
	char *in; /* bytes of the current request line */
	size_t in_len, in_cap;
	bool discarding; /* an over-long line: drop to its newline */
	int line_fd;     /* the fd passed with the line being read, or -1 */
	const char *line_fd_error; /* that line broke the fd rules: why */
	char *out;                 /* responses not yet written */
	size_t out_len, out_off, out_cap;
	bool closing;     /* close once `out` is written */
	bool read_eof;    /* the peer shut down its side */
	unsigned pending; /* requests answered later (runs) */
	uint64_t last_active_ms;
	bool subscriber; /* events.c streams the feed to it */
	size_t charged;  /* bytes of in + out counted for it (bounds.c) */
	struct conn *prev, *next;
};

/* -------------------------------------------------------------- runs */

enum job_kind { JOB_VALIDATE, JOB_EXEC };

/* A validation's build step (build.c). */
struct build_state {
	bool building;            /* the job's run now is the build */
	bool built;               /* the validation runs the built tree */
	struct al_policy *policy; /* the module's, with the build's limits */
	char *argv[3];            /* -c COMMAND */
	char dir_name[32];        /* bundles/.build-<id>, "" when none */
	char dir[PATH_MAX];
	bool has_result; /* the build's result, for the answer */
	struct sandbox_result result;
	int64_t run_id;
};
void build_state_free(struct build_state *b);

struct job {
	struct source src; /* fd: the run's sandbox_run_fd() once started */
	enum job_kind kind;
	struct conn *conn; /* NULL once the client went away */
	char req_id[PROTO_ID_MAX + 1];
	bool has_req_id;
	char log_id[32];
	uid_t uid;
	bool owner_run; /* exec by an owner: may count toward archive_on */
	struct manifest_module mod;
	struct sup_policy *pol;
	char path[PATH_MAX];
	char pin[24]; /* its name in STATE/running while it runs, or "" */
	char **args;  /* owned, NULL-terminated */
	/* exec: the run's limits, environment and cwd, the policy's as the
	 * request tightened them (policy_tighten()); owned */
	struct policy_run opts;
	bool has_opts;
	int stdin_fd;     /* a memfd with the request's stdin, or -1 */
	size_t stdin_len; /* its size: counted in the uid's buffered bytes */
	struct sandbox_run *run;
	int64_t run_id; /* a detached run has one from its admission */
	bool cancelled;
	/* runtime runs under seccomp = learned: the policy cut down to the
	 * module's learned syscalls and its filter (learned.c), from the
	 * policy's cache, or the job's own when every slot was in use */
	struct learned_entry *learned;
	struct al_policy *own_policy;
	struct sandbox_filter *own_filter;
	struct build_state build;
	struct job *next;
};

struct quota {
	uid_t uid;
	bool in_use;
	int64_t window; /* report_hour_start() of the hour it counts */
	unsigned used;  /* runs in that hour */
	int64_t day;    /* report_day_start() of the day it counts */
	unsigned day_used;
	int64_t refused_noted_ms; /* quota.c: the last rate_limited event */
	unsigned refused_unnoted; /* refusals since, not in the feed yet */
};

/* ------------------------------------------------------------- metrics */

/* Every verdict (common.h). */
#define METRICS_VERDICTS AL_VERDICT_COUNT
/* airlock_run_duration_seconds: upper bounds from 1 ms to 30 s, then +Inf */
#define METRICS_BUCKETS 15

struct metrics_histogram {
	uint64_t le[METRICS_BUCKETS]; /* per bucket, not yet cumulative */
	uint64_t inf;                 /* above the last bound */
	uint64_t count;
	double sum;
};

struct metrics_storage {
	uint32_t uid;
	uint64_t bytes, versions;
};

struct metrics_quota {
	uid_t uid;
	int64_t hour_left, day_left; /* -1: that window has no quota */
};

/* What one scrape shows, gathered by http.c from the daemon's own
 * counters (the same ones `status` reports), rendered by metrics.c. */
struct metrics_host {
	char name[MANIFEST_HOST_MAX + 1];
	bool up;      /* this host, or beating within the lease */
	double age_s; /* since its last heartbeat */
	unsigned active, slots;
};

struct metrics_snapshot {
	const char *version;
	double start_time_s; /* Unix time */
	unsigned active, max_active, queued, connections;
	bool healthy, ready;
	bool manifest_up;         /* its server answers (outage.c) */
	unsigned pending_records; /* run ends waiting for it */
	bool have_modules;        /* the manifest answered */
	uint64_t modules[MANIFEST_STATE_COUNT];
	uint64_t verdicts[METRICS_VERDICTS];
	uint64_t timeouts, validation_failures, auto_archives, rate_limit_hits,
		overloaded;
	const struct metrics_histogram *durations;
	unsigned quota_per_hour, quota_per_day; /* 0: none */
	const struct metrics_quota *quotas;
	size_t nquotas;
	/* storage.c: what each submitter keeps, and the state directory's
	 * free space against the floor */
	const struct metrics_storage *storage;
	size_t nstorage;
	uint64_t store_free_bytes, store_free_min;
	uint64_t store_max_per_uid, store_versions_per_uid;
	/* fleet.c: the hosts of the database, seen from this one */
	const struct metrics_host *hosts;
	size_t nhosts;
};

/* metrics.c: pure. The Prometheus text exposition format (0.0.4) of `m`
 * into `f`; -1 if a write failed. */
int metrics_render(FILE *f, const struct metrics_snapshot *m);
void metrics_observe(struct metrics_histogram *h, double seconds);
/* `given` equals `want`, in a time that depends on want's length only. */
bool metrics_key_equal(const char *given, const char *want);

/* -------------------------------------------------------------- daemon */

/* The last self-check (health.c): each message is "ok" or what failed. */
struct health {
	int64_t checked_ms; /* now_ms() of the check; 0: never */
	bool manifest_ok, socket_ok;
	char manifest[AL_ERROR_MAX];
	char socket[160];
};

/* bounds.c: one connected uid's share of the daemon */
struct tenant_use {
	uid_t uid;
	unsigned conns;
	size_t buffered; /* its connections' in + out buffers */
};

struct supervisor {
	struct supervisor_config cfg;
	struct sandbox_host *host;
	struct manifest *m;
	int epfd;
	struct source listen, signal, tick;
	struct conn *conns;
	struct conn *dead; /* closed during this loop turn; freed after it */
	unsigned nconns;
	uint64_t conn_serial;
	struct sup_policy *policies;
	struct sandbox_learner *learner; /* loaded at the first learning run */
	struct job *active, *queue_head, *queue_tail;
	unsigned nactive, nqueued;
	struct waiter *waiters; /* results.c: `wait`s for runs not ended */
	struct quota quotas[256];
	int64_t started_ms;
	bool stopping;            /* SIGTERM/SIGINT seen */
	int64_t stop_deadline_ms; /* then runs are killed */
	bool grace_over;          /* and they were: wait for their ends */
	bool socket_bound;        /* we created the socket file */
	dev_t socket_dev;         /* and which file it is */
	ino_t socket_ino;
	struct health health;
	uint64_t counters[8];
	uint64_t verdicts[METRICS_VERDICTS]; /* ended runs, by verdict */
	struct metrics_histogram durations;  /* their wall-clock times */
	int64_t started_unix_ms;
	bool ready;          /* start-up done, the loop turning */
	struct http *http;   /* NULL: HTTP off */
	int64_t feed_cursor; /* events.c: the last feed id streamed */
	/* bounds.c: what each connected uid holds, and the total */
	struct tenant_use *uses;
	size_t nuses, cap_uses;
	size_t buffered; /* connections' in + out buffers, all uids */
	int bundles_fd;  /* STATE/bundles (bundle_store.c) */
	int pins_fd;     /* STATE/running: runs' module files (runs.c) */
	/* languages.c: kept version answers (and probes running), and the
	 * requests waiting for them */
	struct lang_probe *lang_probes;
	struct lang_req *lang_reqs;
	uint64_t lang_clock;
	/* outage.c: the manifest's server out of reach, and the run
	 * records waiting for it (memory, and STATE/pending) */
	struct pending *pending;
	unsigned pending_files; /* spooled, of them */
	size_t pending_bytes;
	int pending_fd; /* STATE/pending */
	struct {
		bool down;        /* noticed (and logged) */
		int64_t since_ms; /* now_ms() then */
		int64_t next_ms;  /* the next reconnection's, at the earliest */
		int64_t delay_ms; /* the wait after a failed one */
	} outage;
};

enum counter {
	C_RUNS,
	C_VALIDATION_FAILURES,
	C_AUTO_ARCHIVES,
	C_RATE_LIMIT_HITS,
	C_OVERLOADED,
	C_TIMEOUTS,
};

/* The loop's clock: al_monotonic_ms() in whole milliseconds. */
static inline int64_t now_ms(void)
{
	return (int64_t)al_monotonic_ms();
}
/* loop.c: add src (its fd) to the loop's epoll set, or change the events
 * it waits for; epoll_ctl's result. */
int loop_watch(struct supervisor *s, struct source *src, uint32_t events);
int loop_modify(struct supervisor *s, struct source *src, uint32_t events);

/* server.c */
int server_listen(struct supervisor *s, struct al_error *err);
int server_backlog(void); /* listen(2) backlog: net.core.somaxconn */
void server_accept(struct supervisor *s);
void server_unlink(struct supervisor *s);

/* conn.c */
void conn_handle(struct supervisor *s, struct conn *c, uint32_t events);
/* Queue one response line (the text is copied; a newline is added). */
void conn_send(struct supervisor *s, struct conn *c, const char *line);
void conn_send_jb(struct supervisor *s, struct conn *c, struct json_buf *jb);
void conn_close(struct supervisor *s, struct conn *c);
void conn_sweep_idle(struct supervisor *s);
void conn_request_done(struct supervisor *s, struct conn *c);

/* content.c: the module from a client's fd (regular file or finished
 * pipe), at most `max` bytes: E2BIG past that, EAGAIN for a pipe not
 * finished, EINVAL for other kinds. Borrows fd; caller frees *out. */
int content_from_fd(int fd, size_t max, unsigned char **out, size_t *len,
		    struct al_error *err);

/* ops.c: one request line; c->line_fd and c->line_fd_error are the fd
 * that came with it (ops takes the fd it uses; conn closes the rest) */
void ops_dispatch(struct supervisor *s, struct conn *c, const char *line,
		  size_t len);

/* policy_cache.c: the policy of that name, loaded once and shared
 * (a reference the caller puts back); NULL with err for a name that is
 * not a plain policy name or a policy that does not load or compile. */
struct sup_policy *sup_policy_get(struct supervisor *s, const char *name,
				  struct al_error *err);
void sup_policy_put(struct supervisor *s, struct sup_policy *p);
/* SIGHUP: every entry stale, freed once no run holds it. */
void sup_policy_reload_all(struct supervisor *s);
void sup_policy_free_all(struct supervisor *s);

/* runs.c */
/* Whether `uid` may start a run now: 0, or a protocol error code with a
 * message (and for rate_limited, when to retry). */
int runs_admit(struct supervisor *s, uid_t uid, char *msg, size_t len,
	       int64_t *retry_after_ms);
/* The job's manifest row ("running"): job->run_id. At its start, or at
 * its admission for a detached run. */
int runs_begin(struct supervisor *s, struct job *job, struct al_error *err);
/* Take the job (owned from now on): start it or queue it. The caller has
 * called runs_admit() first. */
void runs_submit(struct supervisor *s, struct job *job);
/* Start queued jobs while there is room (after max_active grew). */
void runs_start_queued(struct supervisor *s);
void runs_handle(struct supervisor *s, struct job *job);
int runs_cancel(struct supervisor *s, int64_t run_id, const char *why);
void runs_forget_conn(struct supervisor *s, struct conn *c);
/* Remove every queued job of module `name`, answering each "cancelled"
 * (a queued validation's module is rejected). How many. */
unsigned runs_cancel_queued(struct supervisor *s, const char *name,
			    const char *why);
/* Answer every queued job "shutting_down" and drop it. */
void runs_drop_queue(struct supervisor *s);
/* Kill every running jail; each ends through runs_handle() as usual. */
void runs_cancel_all(struct supervisor *s, const char *why);
/* Free every job now (exit): sandbox_run_free() kills what is left. */
void runs_free_all(struct supervisor *s);
void job_free(struct job *job);
/* Startup repair: modules a crash left staged or validating. */
void runs_repair(struct supervisor *s);

/* languages.c: the languages op. Answers `c` now when every policy's
 * version is known, else once the probes it started (or shares) end;
 * EAGAIN when too many requests wait already. */
struct lang_probe;
int languages_request(struct supervisor *s, struct conn *c, const char *id,
		      struct al_error *err);
void languages_handle(struct supervisor *s, struct lang_probe *p);
void languages_forget_conn(struct supervisor *s, struct conn *c);
/* Exit: kill the probes still running, free everything. */
void languages_free_all(struct supervisor *s);

/* learned.c: policies with [runtime] seccomp = learned. Before a run
 * starts: a validation learns (spec->learner), a runtime run gets the
 * policy cut down to the module's stored set (spec->policy, ->filter,
 * owned by the job). After a successful validation: store the set. */
int learned_prepare(struct supervisor *s, struct job *job,
		    struct sandbox_spec *spec, struct al_error *err);
int learned_store(struct supervisor *s, const struct job *job,
		  const struct sandbox_result *r, struct al_error *err);
void learned_job_free(struct job *job);
/* Free a policy's cached learned rules (it is being released). */
void learned_cache_free(struct sup_policy *pol);

/* notify.c: send `state` ("READY=1", "STOPPING=1") to systemd's
 * NOTIFY_SOCKET. 1 sent, 0 not under systemd (unset), -1 with `err`. */
int notify_systemd(const char *state, struct al_error *err);

/* health.c: run the self-check into s->health; its members into an open
 * object ("healthy", "checked_ms_ago", "checks"). */
void health_check(struct supervisor *s);
void health_json(struct json_buf *jb, const struct supervisor *s);

/* preflight.c: try every policy in the policy path on this host
 * (sandbox_host_check); -1 with err naming the first that cannot run. */
int preflight_policies(struct supervisor *s, struct al_error *err);

/* reload.c: SIGHUP — configuration and policies read again in place. */
void supervisor_reload(struct supervisor *s);

/* http.c: /metrics, /healthz and /ready served by libmicrohttpd inside
 * our loop. Start binds the address of cfg.metrics_addr (nothing when
 * HTTP is off); run is called when its source is readable or its
 * timeout passed; timeout_ms is -1 (none) or the ms until it is due. */
/* Bind the metrics address once and let go, before anything is made: a
 * port in use stops start-up with a message naming it. */
int http_check_address(const struct supervisor_config *cfg,
		       struct al_error *err);
int http_start(struct supervisor *s, struct al_error *err);
void http_run(struct supervisor *s);
int64_t http_timeout_ms(struct supervisor *s);
void http_stop(struct supervisor *s);
/* events.c: the feed (manifest_feed) to `subscribe`rs. */
/* A supervisor event into the feed (manifest_feed_add); a failure is
 * logged, never the caller's problem. uid < 0: none. */
void events_note(struct supervisor *s, const char *kind, int64_t uid,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Stream feed rows written since the last call to every subscriber; a
 * subscriber whose output is past its bound is dropped. Called once per
 * loop turn: no query when nobody subscribed. */
void events_publish(struct supervisor *s);
/* Bring every subscriber up to date; the newest feed id (a new
 * subscriber's live stream starts after it). */
int64_t events_cursor_now(struct supervisor *s);
/* Make `c` a subscriber, first sending the rows up to s->feed_cursor that
 * `after`/`since`/`limit` select (limit at most EVENTS_CATCH_UP). Call
 * events_cursor_now() first and answer the request before. */
#define EVENTS_CATCH_UP PROTO_CATCH_UP_MAX
int events_subscribe(struct supervisor *s, struct conn *c, int64_t after,
		     int64_t since_ms, size_t limit, struct al_error *err);

/* quota.c: per-uid counts that survive a restart (derived from the
 * manifest's runs), resets, rate-limit events. */
/* Whether uid's quota lets it start a run now: 0 with *q its entry (NULL
 * when no quota is set), or PROTO_E_RATE_LIMITED with a message and when
 * to retry (the refusal is counted and, at most once per uid per
 * QUOTA_NOTE_MS, an event). */
#define QUOTA_NOTE_MS 10000
int quota_admit(struct supervisor *s, uid_t uid, struct quota **q, char *msg,
		size_t len, int64_t *retry_after_ms);
/* The run was admitted: one more in each window (q may be NULL). */
void quota_charge(struct quota *q);
/* What the table says uid used this hour and today (0 if not in it). */
unsigned quota_used_hour(struct supervisor *s, uid_t uid);
unsigned quota_used_today(struct supervisor *s, uid_t uid);
/* Forget what `uid` used in the current windows (admin); an event. */
int quota_reset(struct supervisor *s, uint32_t uid, uint32_t by,
		struct al_error *err);
/* What uid used now: (hour, day). */
void quota_usage(struct supervisor *s, uint32_t uid, uint64_t *hour,
		 uint64_t *day);
/* The "quotas" array member: `uid` < 0 every uid that used anything in
 * the current day window, else that one. */
int quota_list_json(struct supervisor *s, struct json_buf *jb, int64_t uid,
		    struct al_error *err);

/* tenants.c: who owns a module, who may see and change it. */
bool tenant_owns(const struct conn *c, uint32_t owner_uid, int64_t owner_gid);
/* an admin, or an owner of `mod` */
bool tenant_may(const struct conn *c, const struct manifest_module *mod);
/* NULL for an admin (every row), else `buf` filled with c's identity */
const struct manifest_viewer *tenant_viewer(const struct conn *c,
					    struct manifest_viewer *buf);
bool tenant_sees_event(const struct conn *c,
		       const struct manifest_feed_event *ev);
/* The latest version of `name` if c may see it; ENOENT (as for an unknown
 * name) otherwise. */
int tenant_find(struct supervisor *s, const struct conn *c, const char *name,
		struct manifest_module *mod, struct al_error *err);
/* Fill sub->owner_uid/owner_gid for a submit of `name` by c with the
 * request's "group" (or NULL); EPERM when the name is another owner's or
 * c is not in the group, EINVAL for a group on an existing name. */
int tenant_submit_owner(struct supervisor *s, const struct conn *c,
			const char *name, const char *group,
			struct manifest_submission *sub, struct al_error *err);

/* bounds.c: buffered bytes, connections and queue per uid. */
/* Would `more` bytes for c stay within its uid's and the daemon's budget
 * (connection buffers and queued stdin)? */
bool bounds_fits(struct supervisor *s, const struct conn *c, size_t more);
/* c's buffers now hold `now` bytes: the totals follow. */
void bounds_recharge(struct supervisor *s, struct conn *c, size_t now);
/* NULL if a new connection of uid/role may be kept, else why not */
const char *bounds_accept(struct supervisor *s, uid_t uid,
			  enum proto_role role);
void bounds_conn_opened(struct supervisor *s, uid_t uid);
void bounds_conn_closed(struct supervisor *s, struct conn *c);
/* New work (a run with stdin_len bytes of stdin) on c: 0, or an error
 * code with msg. */
int bounds_admit(struct supervisor *s, const struct conn *c, size_t stdin_len,
		 char *msg, size_t len);

/* storage.c: storage quotas per submitting uid and a free-space floor. */
uint64_t storage_free_bytes(const struct supervisor *s);
/* A submit of `len` bytes by c: 0, or an error code with msg. */
int storage_admit(struct supervisor *s, const struct conn *c, size_t len,
		  char *msg, size_t mlen);
/* "storage": the limits, free space and c's line (an admin: every uid) */
int storage_json(struct supervisor *s, struct json_buf *jb,
		 const struct conn *c, struct al_error *err);
size_t storage_snapshot(struct supervisor *s, struct metrics_storage *out,
			size_t max);

/* fleet.c: this host's heartbeat, and the runs of lapsed hosts
 * interrupted (at start and every tick) */
void fleet_beat(struct supervisor *s);
/* Another host silent for longer than the lease. */
bool fleet_host_lapsed(const struct supervisor *s,
		       const struct manifest_host *h, int64_t now);
/* Up to `max` hosts for /metrics; how many. */
size_t fleet_snapshot(struct supervisor *s, struct metrics_host *out,
		      size_t max);
/* "host", "host_lease_ms" and the "hosts" array into an open object. */
int fleet_hosts_json(struct supervisor *s, struct json_buf *jb,
		     struct al_error *err);
/* results.c: what a run leaves for `result` and `wait`, and the waiters
 * (the file says how). */
struct waiter;
/* Keep run_id's result (its stdout and stderr cut to --output-keep) in
 * the manifest; a failure is logged. Borrows everything. */
void results_keep(struct supervisor *s, int64_t run_id,
		  const struct sandbox_result *r,
		  const struct al_policy *policy, bool archived);
/* The ops (ops.c's table routes them here). */
void results_op_wait(struct supervisor *s, struct conn *c,
		     const struct proto_request *req);
void results_op_result(struct supervisor *s, struct conn *c,
		       const struct proto_request *req);
/* Run run_id has ended (its row says how): answer its waiters. */
void results_ended(struct supervisor *s, int64_t run_id);
/* Answer the waiters past their deadline "not_finished". */
void results_expire(struct supervisor *s);
/* The nearest waiter's deadline (now_ms() clock), or -1. */
int64_t results_next_deadline(const struct supervisor *s);
/* c is closing: drop its waiters unanswered. */
void results_forget_conn(struct supervisor *s, struct conn *c);
/* airlockd stops: answer every waiter left "shutting_down". */
void results_stop(struct supervisor *s);

/* sweep.c */
void sweep_stale_cgroups(struct supervisor *s);
void sweep_staging(struct supervisor *s);

/* ------------------------------------------------------------- bundles */

/* Bounds of one bundle's tree (--bundle-max-entries, --bundle-max-bytes). */
struct bundle_limits {
	uint64_t max_entries; /* files and directories, made on the way too */
	uint64_t max_bytes;   /* file content, unpacked */
};
struct bundle_stats {
	uint64_t entries;
	uint64_t bytes;
};
/* Deepest directory a bundle may have (also bounds the removal). */
#define BUNDLE_DEPTH_MAX 64
/*
 * Unpack the tar archive `data` (plain, gzip or zstd; borrowed) into the
 * empty directory `dirfd` (borrowed) under `lim` (bundle.c says what is
 * refused and why). On failure err names the entry and the rule, and
 * what was written stays in dirfd: the caller removes the directory
 * (bundle_remove). `stats` may be NULL.
 */
int bundle_unpack(const void *data, size_t len, int dirfd,
		  const struct bundle_limits *lim, struct bundle_stats *stats,
		  struct al_error *err);
/* Remove directory `name` of `parent` and everything in it, never
 * following a symlink; `depth` 0. A missing one is not an error. -1 with
 * errno when something stayed. */
int bundle_remove(int parent, const char *name, int depth);
/* An entry point as a submit names it: a relative path of plain
 * components (no "", ".", ".." nor a leading '/'), printable ASCII, at
 * most MANIFEST_ENTRY_MAX bytes. Pure. */
int bundle_entry_check(const char *entry, struct al_error *err);

/* pending.c: a run's end the manifest could not take (its server out of
 * reach), as STATE/pending/<run id> holds it (outage.c keeps them). */
#define PENDING_DIR "pending"
enum pending_finish { PENDING_NONE, PENDING_FINISH, PENDING_INTERRUPT };
struct pending_stream {
	unsigned char *data; /* the kept bytes; owned */
	size_t len;
	uint64_t size; /* what the run captured */
	bool truncated;
};
struct pending {
	struct pending *next;
	int64_t run_id;
	enum pending_finish finish; /* none: only the output waits */
	char verdict[32];
	int exit_code, signal;
	char syscall[MANIFEST_SYSCALL_MAX + 1];
	double wall_ms, cpu_ms;
	uint64_t peak_memory_bytes;
	bool stdout_truncated, stderr_truncated;
	int64_t ended_ms;
	unsigned char *excerpt; /* the end of stderr the row keeps; owned */
	size_t excerpt_len;
	bool has_output, archived;
	char *result; /* the kept result's JSON text; owned */
	size_t keep;
	struct pending_stream streams[2];
	size_t spooled; /* bytes of its file; 0: it has none */
};
/* Run `run_id`'s finish `r` (copied; NULL: none, or an interrupt the
 * caller sets); NULL when out of memory. */
struct pending *pending_new(int64_t run_id,
			    const struct manifest_run_result *r);
void pending_free(struct pending *p);
/* Copy the output a run keeps (at most in->keep bytes of each stream). */
int pending_set_output(struct pending *p, const struct manifest_output_in *in,
		       struct al_error *err);
void pending_drop_output(struct pending *p);
/* The file's text (one JSON object); caller frees; NULL: no memory. */
char *pending_encode(const struct pending *p);
/* A file's text back: -1 with err saying what is wrong (EBADMSG) on any
 * bad input; caller frees *out. */
int pending_decode(const char *text, size_t len, struct pending **out,
		   struct al_error *err);
/* The record as the manifest's calls take it (borrowed from p); the
 * finish is a replay (manifest_run_result.replay). */
void pending_result(const struct pending *p, struct manifest_run_result *r);
void pending_output(const struct pending *p, struct manifest_output_in *in);

/* outage.c. At start: make and open STATE/pending (s->pending_fd), load
 * what a previous airlockd left (a bad file set aside as .bad), commit. */
int outage_open(struct supervisor *s, struct al_error *err);
void outage_free(struct supervisor *s);
/* Keep run `run_id`'s end for later: its finish `r` (NULL: interrupted). */
void outage_keep_finish(struct supervisor *s, int64_t run_id,
			const struct manifest_run_result *r);
/* Keep its output for later when its finish waits or the manifest is
 * unreachable: true when taken (the caller writes nothing). */
bool outage_keep_output(struct supervisor *s, int64_t run_id,
			const struct manifest_output_in *in);
/* Does the manifest answer? When not, a reconnection is tried if its
 * backoff allows; after one succeeds the pending records commit. */
bool outage_available(struct supervisor *s);
/* The tick's turn: reconnect when due, commit what waits. */
void outage_tick(struct supervisor *s);
void outage_commit(struct supervisor *s);
/* How many run ends wait (spooled or in memory only). */
unsigned outage_pending(const struct supervisor *s);
/* The `unavailable` answer's message: the cause, and that it retries. */
void outage_message(const struct supervisor *s, char *buf, size_t len);

/* bundle_store.c: STATE/bundles/<sha256>/, the unpacked trees. */
/* runs.c, at start: make and open STATE/running (s->pins_fd), emptied:
 * a pin outlives no process. */
int runs_pins_open(struct supervisor *s, struct al_error *err);
/* At start: make and open bundles/ (s->bundles_fd), sweep it. */
int bundle_store_open(struct supervisor *s, struct al_error *err);
/* Unpack archive `data` into bundles/<its sha256> unless it is there, and
 * check `entry` in the tree (unless `built`: a build step makes it); its
 * first *head_len bytes into head (the count into *head_len). Nothing is
 * left on failure; err says why. */
int bundle_store_add(struct supervisor *s, const unsigned char *data,
		     size_t len, const char *entry, bool built,
		     unsigned char *head, size_t *head_len,
		     struct al_error *err);
/* STATE/bundles/<sha256> into buf; -1 when it does not fit. */
int bundle_store_path(const struct supervisor *s, const char *sha256, char *buf,
		      size_t len);
/* Remove the trees no module keeping a file needs, and leftover temps. */
void bundle_store_sweep(struct supervisor *s);
/* The tree of bundle `mod` (its archive at `archive`, checked against
 * the row) unpacked here if it is not yet: a bundle submitted on another
 * host of a shared database. A built bundle's tree is not remade here:
 * ENOENT, saying so. */
int bundle_store_ensure(struct supervisor *s, const struct manifest_module *mod,
			const char *archive, struct al_error *err);
/* `entry` in tree bundles/TREE, as bundle_store_add checks it. */
int bundle_store_check_entry(struct supervisor *s, const char *tree,
			     const char *entry, unsigned char *head,
			     size_t *head_len, struct al_error *err);

/* build.c: a bundle's build step (its own comment says how). */
/* The tree runs of `mod` use: bundles/<sha256>, or the built one. */
void build_tree_name(const struct manifest_module *mod, char *buf, size_t len);
int bundle_tree_path(const struct supervisor *s,
		     const struct manifest_module *mod, char *buf, size_t len);
/* A validation job whose bundle still needs its build (false when the
 * same recipe's output is already stored: then job->build.built). */
bool build_wanted(struct supervisor *s, struct job *job);
/* The writable copy, the build's policy; `spec` set to run the command. */
int build_prepare(struct supervisor *s, struct job *job,
		  struct sandbox_spec *spec, struct al_error *err);
/* After a build run that exited 0: seal and bound its output, check the
 * entry, store it under its name. err says why it is refused. */
int build_finish(struct supervisor *s, struct job *job, struct al_error *err);
/* Remove the job's copy, if any. */
void build_discard(struct supervisor *s, struct job *job);

#endif
