/*
 * Private to sandbox/: the pieces the parent and the jail's init share.
 *
 * Theory of operation
 * -------------------
 * Three processes take part in a run:
 *
 *   parent   the caller (airlock run, or airlockd's event loop); root. It
 *            creates the run's cgroup, the pipes and a SOCK_SEQPACKET sync
 *            socket, then clone3()s the jail's init into new pid, mount,
 *            network, ipc and uts namespaces, with a pidfd.
 *   init     pid 1 of the new pid namespace (child.c). It joins the cgroup,
 *            enters a new cgroup namespace, builds the root (mount.c), sets
 *            hostname, loopback and rlimits, drops every privilege
 *            (privs.c), loads the precompiled seccomp filter with a
 *            user-notification listener (seccomp.c) and passes the listener
 *            to the parent over the sync socket. Then it vforks the module
 *            and reaps everything until the module exits, reports the
 *            module's wait status and exits; the kernel then kills whatever
 *            is left in the namespace. Being pid 1, it cannot be signalled
 *            from inside the jail. As root it is cloned with CLONE_VM |
 *            CLONE_VFORK (spawn.c says why) and, once the filter is in,
 *            execs the airlock-init helper (init/init.c), which does the
 *            vfork, the reaping and the report.
 *   module   execve()d by init's vfork child, in a new session, with the
 *            policy's environment and only fds 0, 1, 2.
 *
 * Every failure in init before execve is written to the sync socket as a
 * message (step, errno, text) and init exits: there is never a run with
 * half a jail. The parent watches one epoll fd per run that holds the
 * pidfd, a timerfd for the deadline, the output pipes, the sync socket and
 * the seccomp listener (run.c).
 */
#ifndef AIRLOCK_SANDBOX_INTERNAL_H
#define AIRLOCK_SANDBOX_INTERNAL_H

#include <linux/filter.h>
#include <stdio.h>
#include <time.h>
#include <sys/types.h>

#include "sandbox/jail_msg.h"
#include "sandbox/sandbox.h"

/* ---------------------------------------------------------------- cgroups */

#define CGROUP_MAX_DIRS 4

/* One run's cgroup: a directory per hierarchy (v1) or one (v2). */
struct cgroup_run {
	int dir_fd[CGROUP_MAX_DIRS];
	int procs_fd[CGROUP_MAX_DIRS]; /* init writes "0" into each */
	char path[CGROUP_MAX_DIRS][512];
	int n;
};

struct cgroup_stats {
	uint64_t cpu_ns;
	uint64_t peak_memory;
	bool peak_known;
	uint64_t oom_kills;
	uint64_t pids_max_hits;
};

struct cgroup_backend;

struct cgroup_ops {
	const char *mode;
	int (*create)(struct cgroup_backend *b, const char *name,
		      const struct policy_limits *limits, struct cgroup_run *cg,
		      struct al_error *err);
	int (*stats)(struct cgroup_backend *b, struct cgroup_run *cg,
		     struct cgroup_stats *st);
	/* Remove the directories; processes must be gone already. */
	void (*destroy)(struct cgroup_backend *b, struct cgroup_run *cg);
	void (*free)(struct cgroup_backend *b);
	/* The directories run cgroups are made in (one per hierarchy); fds
	 * and paths are borrowed. Returns how many. */
	int (*bases)(struct cgroup_backend *b, const int **fds,
		     const char *const **paths);
	/* One line for people (airlock doctor): where runs go and with
	 * which controllers; snprintf's return. */
	int (*describe)(struct cgroup_backend *b, char *buf, size_t len);
};

struct cgroup_backend {
	const struct cgroup_ops *ops;
	void *state;
};

int cgroup_backend_open(struct cgroup_backend *b, struct al_error *err);
extern const struct cgroup_ops cgroup_v1_ops;
extern const struct cgroup_ops cgroup_v2_ops;
extern const struct cgroup_ops cgroup_v2_systemd_ops;
int cgroup_v1_open(struct cgroup_backend *b, struct al_error *err);
int cgroup_v2_open(struct cgroup_backend *b, const char *mount,
		   struct al_error *err);
/* How the v2 backend gets a cgroup it may build run cgroups under, and
 * the facts that decide it (cgroup_v2.c explains each way). */
enum cgroup_v2_way {
	CGROUP_V2_DELEGATED,
	CGROUP_V2_SYSTEMD,
	CGROUP_V2_UNDER_ROOT,
};
struct cgroup_v2_facts {
	bool systemd;   /* systemd manages the tree (/run/systemd/system) */
	bool root_user; /* euid 0 */
	bool delegated; /* our cgroup was delegated to us */
	bool alone;     /* and holds no other process */
};
/* NULL and *way set, or why no way fits. Pure. */
const char *cgroup_v2_choose(const struct cgroup_v2_facts *f,
			     enum cgroup_v2_way *way);
/* cgroup_systemd.c: ask the system manager (root) or the caller's user
 * manager for the transient scope `name` holding this process, with
 * Delegate=yes, in `slice` (NULL: the default), and wait until it has
 * started; `via` gets the socket that answered. */
int cgroup_systemd_start_scope(const char *name, const char *slice, char *via,
			       size_t via_len, struct al_error *err);
struct dbus_conn;
/* Whether the manager's unit `unit` (a .service or .scope name) has
 * Delegate=yes: for systemd older than 251, which does not mark delegated
 * cgroups with trusted.delegate. */
int cgroup_systemd_unit_delegated(const char *unit, bool *delegated,
				  struct al_error *err);
/* Just the StartTransientUnit call for `name` holding `pid` (no wait):
 * the unit tests send it to a real bus. */
int cgroup_systemd_call_start(struct dbus_conn *c, const char *name,
			      const char *slice, pid_t pid,
			      struct al_error *err);
/* The slice of the caller's unit that `own` (a path in the v2 hierarchy)
 * lies in and the chosen manager owns, copied into out; NULL if none.
 * Pure. */
const char *cgroup_systemd_slice(const char *own, bool user, char *out,
				 size_t len);
void cgroup_run_init(struct cgroup_run *cg);
void cgroup_run_close(struct cgroup_run *cg);

/* Small file helpers shared by the backends. */
int cgroup_write(int dir_fd, const char *file, const char *value,
		 struct al_error *err);
int cgroup_write_u64(int dir_fd, const char *file, uint64_t value,
		     struct al_error *err);
/* Read a file into buf (NUL-terminated); -1 with errno on failure. */
int cgroup_read(int dir_fd, const char *file, char *buf, size_t len);
int cgroup_read_u64(int dir_fd, const char *file, uint64_t *out);
/* The value of `key` in a flat-keyed file ("oom_kill 3"). */
int cgroup_read_key(int dir_fd, const char *file, const char *key,
		    uint64_t *out);
/* Write, then read back and compare: a limit that did not take is an
 * error, never a run with less isolation. */
int cgroup_set_checked(int dir_fd, const char *dir, const char *file,
		       uint64_t value, struct al_error *err);
int cgroup_remove_dir(const char *path);
/* A process's start time (clock ticks since boot, /proc/PID/stat field
 * 22), or 0 when it is gone: with the pid, it names one process for good,
 * since a reused pid gets a later start time. */
unsigned long long cgroup_process_start(pid_t pid);
/* The next run cgroup's name: run-<pid>-<start>-<n>, which says which
 * live process owns it (sandbox_host_sweep). */
void cgroup_run_name(struct sandbox_host *host, char *buf, size_t len);
/* cgroup_parse.c: where the v1 hierarchy of `controller` is mounted, from
 * the text of /proc/self/mountinfo, and this process's cgroup in it, from
 * the text of /proc/self/cgroup. -1 when not found (or it does not fit). */
int cgroup_v1_mount_of(const char *mountinfo, const char *controller, char *out,
		       size_t len);
int cgroup_v1_path_of(const char *proc_cgroup, const char *controller,
		      char *out, size_t len);
/* Whether a v2 directory lists `name` in its cgroup.controllers. */
bool cgroup_has_controller(const char *dir, const char *name);

/* ------------------------------------------------------------------ D-Bus */

/* dbus.c: the messages the systemd driver sends and reads (it says why
 * not sd-bus). Little-endian, basic types, bounded. */
#define DBUS_MAX_MESSAGE (1 << 20)
#define DBUS_TIMEOUT_S 10
enum {
	DBUS_METHOD_CALL = 1,
	DBUS_METHOD_RETURN = 2,
	DBUS_ERROR = 3,
	DBUS_SIGNAL = 4,
};
enum {
	DBUS_FIELD_PATH = 1,
	DBUS_FIELD_INTERFACE = 2,
	DBUS_FIELD_MEMBER = 3,
	DBUS_FIELD_ERROR_NAME = 4,
	DBUS_FIELD_REPLY_SERIAL = 5,
	DBUS_FIELD_DESTINATION = 6,
	DBUS_FIELD_SENDER = 7,
	DBUS_FIELD_SIGNATURE = 8,
};

/* A message being written; `failed` once it would pass DBUS_MAX_MESSAGE
 * or memory ran out (every writer checks it, so callers check once). */
struct dbus_buf {
	unsigned char *data;
	size_t len, cap;
	bool failed;
};
struct dbus_array {
	size_t len_at, start;
};
struct dbus_call {
	const char *destination; /* NULL on a direct connection */
	const char *path, *interface, *member;
	const char *signature; /* of the body; NULL or "" for none */
};
/* A message read: every pointer borrows the buffer it was parsed from. */
struct dbus_msg {
	uint8_t type;
	uint32_t serial, reply_serial;
	const char *path, *interface, *member, *error_name, *signature;
	const unsigned char *body;
	size_t body_len, body_offset;
};
/* A cursor over received bytes; positions count from the message start,
 * which is what D-Bus alignment is relative to. */
struct dbus_rd {
	const unsigned char *p;
	size_t len, pos;
};

void dbus_buf_free(struct dbus_buf *b);
void dbus_buf_align(struct dbus_buf *b, size_t to);
void dbus_buf_u8(struct dbus_buf *b, uint8_t v);
void dbus_buf_u32(struct dbus_buf *b, uint32_t v);
void dbus_buf_string(struct dbus_buf *b, const char *s);
void dbus_buf_signature(struct dbus_buf *b, const char *sig);
struct dbus_array dbus_buf_array_open(struct dbus_buf *b, size_t elem_align);
void dbus_buf_array_close(struct dbus_buf *b, struct dbus_array a);
/* Start a method call (header); returns where the body starts. */
size_t dbus_msg_begin(struct dbus_buf *b, uint32_t serial,
		      const struct dbus_call *c);
/* Fill in the body length; -1 when the message could not be written. */
int dbus_msg_end(struct dbus_buf *b, size_t body_start);
/* The whole message's length from its first 16 bytes, 0 when it is not
 * one this code reads (big-endian, wrong version, over the bound). */
size_t dbus_msg_size(const unsigned char *hdr, size_t len);
/* Parse one whole message of exactly `len` bytes; -1 when malformed. */
int dbus_msg_parse(const unsigned char *buf, size_t len, struct dbus_msg *m);
struct dbus_rd dbus_msg_body(const struct dbus_msg *m,
			     const unsigned char *buf);
int dbus_rd_u8(struct dbus_rd *r, uint8_t *out);
int dbus_rd_u32(struct dbus_rd *r, uint32_t *out);
int dbus_rd_string(struct dbus_rd *r, const char **out);
int dbus_rd_signature(struct dbus_rd *r, const char **out);

struct dbus_conn {
	int fd;
	bool direct; /* systemd's private socket: no bus daemon, no Hello */
	uint32_t serial;
	char address[108];
	unsigned char *in; /* the last message read */
	size_t in_len;
	struct dbus_buf out;
	/* signals that arrive while a call waits for its reply */
	void (*on_signal)(struct dbus_conn *c, const struct dbus_msg *m,
			  void *arg);
	void *on_signal_arg;
};
/* Connect to the socket at `path`, authenticate as our uid and, on a bus,
 * say Hello. Replies wait at most DBUS_TIMEOUT_S. */
int dbus_conn_open(struct dbus_conn *c, const char *path, bool direct,
		   struct al_error *err);
void dbus_conn_close(struct dbus_conn *c);
int dbus_conn_send(struct dbus_conn *c, const struct dbus_call *call,
		   void (*body)(struct dbus_buf *, const void *),
		   const void *arg, uint32_t *serial, struct al_error *err);
/* Read the next message into c->in and parse it into m. */
int dbus_conn_read(struct dbus_conn *c, struct dbus_msg *m,
		   struct al_error *err);
/* Send, then wait for the reply (signals meanwhile go to on_signal); an
 * error reply becomes err with its name and text. */
int dbus_conn_call(struct dbus_conn *c, const struct dbus_call *call,
		   void (*body)(struct dbus_buf *, const void *),
		   const void *arg, struct dbus_msg *reply,
		   struct al_error *err);

/* ------------------------------------------------------------------- uids */

/* Ids [lo, hi] that a host account holds. */
struct uid_span {
	uint32_t lo, hi;
};

/* What a file looked like when it was last read: re-read when it changed. */
struct uid_file_seen {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	bool present;
};

#define UID_ACCOUNT_FILES 4

/* uids.c: the host ids runs are given (sandbox_uid_range in sandbox.h). */
struct uid_pool {
	uint32_t base, count; /* count 0: none */
	int dir_fd;           /* /run/airlock/uids, opened at the first run */
	struct uid_span *excluded;
	size_t n_excluded, cap_excluded;
	bool accounts_read; /* excluded is what the files below said */
	struct uid_file_seen seen[UID_ACCOUNT_FILES];
};

void uid_pool_init(struct uid_pool *p);
void uid_pool_free(struct uid_pool *p);
/* Take a free id: *id gets it, *lock_fd the lock that holds it until
 * uid_pool_release(). Fails when every id is taken or held by accounts. */
int uid_pool_acquire(struct uid_pool *p, uint32_t *id, int *lock_fd,
		     struct al_error *err);
/* Give the id back (the run's processes must all be gone); -1 is a no-op. */
void uid_pool_release(int *lock_fd);
/* Pure: add to the pool's exclusions the ids one account file names that
 * fall in the pool's range. `fields` lists the 1-based ':' fields that
 * hold an id (passwd: 3 and 4; group: 3); `span` (0 for none) is the field
 * of a count after the first id field (subuid: START:COUNT in 2, 3). */
int uid_accounts_parse(struct uid_pool *p, FILE *f, const int *fields,
		       size_t n_fields, int span);
bool uid_pool_excluded(const struct uid_pool *p, uint32_t id);

/* ------------------------------------------------------------------- host */

struct sandbox_host {
	struct cgroup_backend cgroup;    /* ops NULL: no cgroup (rootless) */
	char cgroup_error[AL_ERROR_MAX]; /* why, when ops is NULL */
	bool root;
	uid_t uid; /* the caller's, mapped to the jail's user when rootless */
	gid_t gid;
	unsigned long run_counter;
	unsigned long long start_time; /* this process's (run cgroup names) */
	int dev_null_fd;
	/* O_PATH of the airlock-init helper, or -1: jails are then forked
	 * (spawn.c says why the helper is faster) */
	int init_fd;
	void *clone_stack; /* init's stack under CLONE_VM, made on first use */
	size_t clone_stack_size;
	struct uid_pool uids; /* root: the runs' host ids */
};

/* host.c: init's stack for a CLONE_VM clone (one at a time: the caller is
 * suspended until init execs); NULL with errno on failure. Top of stack. */
void *host_clone_stack(struct sandbox_host *host);
/* May this run use the airlock-init helper (host.c)? */
bool host_helper_usable(const struct sandbox_host *host);

/* -------------------------------------------------------------------- filter */

struct sandbox_filter {
	struct sock_filter *insns;
	unsigned short len;
};

/* ------------------------------------------------------------------- plan */

#define PLAN_PATH_MAX 4096
#define BUNDLE_JAIL_DIR "/bundle"

/*
 * Everything init needs, prepared by the parent before clone so that the
 * child allocates nothing and resolves nothing the caller gave it by path.
 */
struct jail_plan {
	const struct al_policy *policy;
	const struct policy_limits *limits;
	const struct sandbox_filter *filter;
	int sync_fd;   /* init's end of the sync socket */
	int stdio[3];  /* become 0, 1, 2 */
	int module_fd; /* O_PATH of the host module, or -1 */
	const char *module_host_path;
	dev_t module_dev; /* what the parent checked, to detect */
	ino_t module_ino; /* a swap before init opens it again */
	char module_jail_path[PLAN_PATH_MAX]; /* where it appears inside */
	/* module_fd is a bundle's directory, bound at BUNDLE_JAIL_DIR and
	 * made the working directory; writable for a build step */
	bool module_is_dir;
	bool module_writable;
	const char *program; /* bare name when module_fd < 0 */
	char *const *argv;   /* argv for execve; argv[0] set */
	char *const *envp;
	const char *cwd; /* NULL: /tmp, where the root was entered */
	const struct cgroup_run *cgroup;
	bool userns; /* rootless: wait for the parent to write the id maps */
	/* root with a uid range: the run's host uid and gid, which init takes
	 * and shows as the policy's in a user namespace of its own (privs.c) */
	bool run_ids;
	uint32_t run_uid, run_gid;
	bool learn; /* wait until the parent registered the jail (learn.c) */
	/* Cloned with CLONE_VM | CLONE_VFORK: init shares the suspended
	 * caller's memory, so it writes nothing of the caller's, and ends by
	 * exec'ing the helper (init_fd) with init_argv, whose [2] it fills
	 * with the resolved program. -1 and NULL for a forked init. */
	int init_fd;
	char **init_argv;
};

/* child.c: runs in the clone()d child; never returns. */
__attribute__((noreturn)) void jail_init_main(const struct jail_plan *plan);

/* Report a setup failure to the parent and exit. */
__attribute__((noreturn)) void jail_fail(const struct jail_plan *plan,
					 int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* mount.c */
void jail_build_root(const struct jail_plan *plan);
void jail_verify_mounts(const struct jail_plan *plan);

/* privs.c */
void jail_set_rlimits(const struct jail_plan *plan);
void jail_drop_privileges(const struct jail_plan *plan);
void jail_verify_privileges(const struct jail_plan *plan);
void jail_setup_network(const struct jail_plan *plan);

/* seccomp.c */
/* The calls every compiled program allows init (NULL-terminated): part of
 * what a cached program depends on (filter_cache.c). */
const char *const *seccomp_init_calls(void);
/* Load the filter; returns the listener fd. */
int jail_load_filter(const struct jail_plan *plan);
/* Name of syscall `nr` for audit arch `arch`, into buf. */
void seccomp_syscall_name(uint32_t arch, int nr, char *buf, size_t len);

/* ---------------------------------------------------------------- verdict */

struct verdict_input {
	bool setup_failed;   /* init reported an error */
	int exec_errno;      /* init could not execve the module */
	bool timed_out;      /* the parent's deadline fired */
	bool seccomp_denied; /* a notification arrived from the filter */
	bool have_status;    /* init reported the module's wait status */
	int status;          /* that wait status */
	bool init_reaped;    /* the parent reaped init */
	int init_code;       /* init's siginfo si_code / si_status */
	int init_status;
	uint64_t oom_kills;
	bool cpu_limit_hit; /* the run used at least its CPU-time limit */
};

/* Pure: decide verdict, exit_code, signal and exit_status. */
void verdict_classify(const struct verdict_input *in, struct sandbox_result *r);

#endif
