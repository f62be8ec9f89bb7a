/*
 * sandbox: the jail that runs one untrusted module.
 *
 * Lifecycle:
 *
 *   struct sandbox_host *host = sandbox_host_new(&err);   // once a process:
 *                                                          // kernel facts, cgroups
 *   struct sandbox_filter *filter =
 *           sandbox_filter_compile(policy, &err);          // once a policy
 *
 *   struct sandbox_spec spec = { .policy = policy, .filter = filter,
 *                                .program = "/path/to/module", ... };
 *   struct sandbox_run *run;
 *   sandbox_start(host, &spec, &run, &err);                // clone, jail, exec
 *   while (!sandbox_run_step(run))                         // event loop:
 *           poll sandbox_run_fd(run) for POLLIN;           // one fd per run
 *   const struct sandbox_result *r = sandbox_run_result(run);
 *   sandbox_run_free(run);
 *
 *   sandbox_run(host, &spec, &result, &err);               // blocking form
 *
 *   struct sandbox_learner *l = sandbox_learner_new(&err); // optional, once a
 *   spec.learner = l;                                      // process (BPF):
 *   ... r->learned, r->syscalls                            // what it called
 *
 * Everything the jail does is fixed by the policy; a run either gets every
 * isolation the policy asks for or fails with a setup error that says what
 * was missing. Nothing is ever run with less.
 */
#ifndef AIRLOCK_SANDBOX_H
#define AIRLOCK_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "policy/policy.h"

struct sandbox_host;
struct sandbox_filter;
struct sandbox_run;
struct sandbox_learner;

/* A set of syscall numbers of this architecture (x86-64: all below 512). */
#define SANDBOX_SYSCALL_MAX 512
struct sandbox_syscalls {
	uint64_t words[SANDBOX_SYSCALL_MAX / 64];
};

/* What to run. Everything is borrowed for the duration of sandbox_start(). */
struct sandbox_spec {
	const struct al_policy *policy;
	const struct sandbox_filter *filter; /* compiled from `policy` */
	/* A host path (contains '/'): bound read-only into the jail and run;
	 * or a bare name looked up on the jail's PATH. */
	const char *program;
	/* For a host path: the module's file name inside the jail
	 * (/module/NAME, its $0 and what tracebacks show), sanitized to
	 * [A-Za-z0-9._-]; NULL: the host file's own name. */
	const char *program_name;
	char *const
		*args; /* arguments after argv[0]; NULL-terminated or NULL */
	/* A bundle: a host directory bound at /bundle, the module's working
	 * directory, read-only unless `workdir_writable` (a build step).
	 * With `entry` (a relative path inside it, checked on the host) the
	 * run executes /bundle/ENTRY; without, `program` is a bare name on
	 * the jail's PATH (a build step's sh). NULL for one file. */
	const char *workdir;
	const char *entry;
	bool workdir_writable;
	/* The module's standard streams: an fd of the caller's (duplicated
	 * into the jail), or -1: stdin from /dev/null, stdout and stderr
	 * captured into bounded buffers. */
	int stdin_fd;
	int stdout_fd;
	int stderr_fd;
	/* Record the syscalls the module makes (sandbox_learner_new());
	 * NULL for an ordinary run, which never touches BPF. */
	struct sandbox_learner *learner;
	/* This run's own settings, where a request tightened the policy
	 * (policy_tighten()): NULL takes the policy's limits, its
	 * environment, and /tmp as the working directory. cwd is entered
	 * after the jail's uid is taken: a directory the module could not
	 * enter itself is a setup error. */
	const struct policy_limits *limits;
	char *const *envp;
	const char *cwd;
};

struct sandbox_result {
	enum al_verdict verdict;
	int exit_status;  /* what `airlock run` exits with (docs/design.md) */
	int exit_code;    /* the module's own, or -1 when it did not exit */
	int signal;       /* the signal that ended it, or 0 */
	char syscall[64]; /* the denied call, for seccomp_violation */
	double wall_ms;
	double cpu_ms;
	uint64_t peak_memory_bytes;
	uint64_t oom_kills;
	uint64_t pids_limit_hits;
	/* rootless under a best-effort policy: no cgroup, so no memory, pids
	 * or CPU-quota limit, and usage comes from rusage instead */
	bool cgroup_limits_missing;
	char *stdout_data; /* captured output (NUL-terminated), or NULL */
	size_t stdout_len;
	bool stdout_truncated;
	char *stderr_data;
	size_t stderr_len;
	bool stderr_truncated;
	char error[AL_ERROR_MAX]; /* setup_error: what failed and what to do */
	/* learning runs: the syscalls the module's processes made (not the
	 * launcher's own setup), whatever the verdict */
	bool learned;
	struct sandbox_syscalls syscalls;
	/* the uid and gid the module's processes had on the host: the run's
	 * own from the host's range (root), the policy's (root, range
	 * "none"), or the caller's (rootless) */
	uint32_t host_uid;
	uint32_t host_gid;
	/* the limits the run was held to: the spec's, else the policy's
	 * (limits_known false when the run failed before it had them) */
	bool limits_known;
	struct policy_limits limits;
};

/* ------------------------------------------------------------------ host */

/* Probe the kernel once: cgroup version and controllers, privileges.
 * Fails with a message saying what is missing. Caller frees. */
struct sandbox_host *sandbox_host_new(struct al_error *err);
void sandbox_host_free(struct sandbox_host *host);
/*
 * Remove the run cgroups that airlock processes left behind when they died
 * without cleaning up (a SIGKILLed supervisor or CLI): whatever is still in
 * one is killed, then the directory goes. Cgroups of live owners, this
 * process's included, are left alone, so a supervisor may call this at
 * start and on every tick. Calls fn (if not NULL) for each cgroup removed
 * or that could not be; returns how many were removed.
 */
int sandbox_host_sweep(struct sandbox_host *host,
		       void (*fn)(const char *path, int killed, int errnum,
				  void *arg),
		       void *arg);
/*
 * Whether runs under `policy` can start on this host, without running one:
 * the kernel offers seccomp user notifications, a cgroup with the policy's
 * limits can be made (and is removed again), and its filter compiles.
 * A supervisor checks its policies at start so that a host lacking a
 * feature is refused up front, with err saying what is missing.
 */
int sandbox_host_check(struct sandbox_host *host,
		       const struct al_policy *policy, struct al_error *err);
/* Which cgroup driver carries the limits: "v1" (cgroupfs), "v2" (a
 * delegated cgroup, or root's own under the root where no systemd runs),
 * "v2 systemd" (a transient scope asked of systemd), "none". */
const char *sandbox_host_cgroup_mode(const struct sandbox_host *host);
/* One line for people: where run cgroups go and with which controllers
 * (or why there is no cgroup); written into buf, which is returned. */
const char *sandbox_host_cgroup_detail(const struct sandbox_host *host,
				       char *buf, size_t len);
/*
 * The host ids of runs (uids.c). As root each run gets a uid of its own
 * from a range, equal to its gid, held for the run by a lock under
 * /run/airlock/uids that every airlock process on the host honours; ids
 * that a host account has (/etc/passwd, /etc/group, /etc/subuid,
 * /etc/subgid) are skipped. Inside, a user namespace shows that id as the
 * policy's uid and gid. count 0 ("none"): every run is the policy's uid
 * and gid on the host, shared by all runs. Rootless runs are the caller's
 * uid, whatever the range.
 */
struct sandbox_uid_range {
	uint32_t base;
	uint32_t count;
};
/* Above systemd's container range (524288-1879048191) and below 2^31. */
#define SANDBOX_UID_RANGE_DEFAULT "1879048192:65536"
/* "BASE:COUNT" or "none"; err says what is wrong with text. Pure. */
int sandbox_uid_range_parse(const char *text, struct sandbox_uid_range *out,
			    struct al_error *err);
/* Use `range` for this host's runs (the default is
 * SANDBOX_UID_RANGE_DEFAULT). Reads the account files now: fails when
 * no id of the range is free of host accounts. */
int sandbox_host_set_uid_range(struct sandbox_host *host,
			       const struct sandbox_uid_range *range,
			       struct al_error *err);
/* One line for people: the range and how many of its ids host accounts
 * hold, "none (...)" or the caller's uid (rootless); into buf. */
const char *sandbox_host_uid_detail(struct sandbox_host *host, char *buf,
				    size_t len);

/* Whether the jail runs as real root or inside a user namespace. */
const char *sandbox_host_privilege_mode(const struct sandbox_host *host);
/* How init is created: "clone-vm (airlock-init helper)" or "fork". */
const char *sandbox_host_launch_mode(const struct sandbox_host *host);

/* ---------------------------------------------------------------- filter */

/* Build the policy's seccomp program once (libseccomp, in the parent);
 * each run only loads it. Caller frees. */
struct sandbox_filter *sandbox_filter_compile(const struct al_policy *policy,
					      struct al_error *err);
/* The same, through a root-only cache of compiled programs shared by
 * processes (filter_cache.c): for short-lived callers such as the CLI.
 * Without root, or with an untrusted cache, it just compiles. */
struct sandbox_filter *
sandbox_filter_compile_cached(const struct al_policy *policy,
			      struct al_error *err);
void sandbox_filter_free(struct sandbox_filter *filter);
size_t sandbox_filter_instructions(const struct sandbox_filter *filter);

/* ------------------------------------------------------------------- run */

/* Start one run. On success *out owns the child; on failure nothing is
 * left behind (no process, no cgroup) and err says why. */
int sandbox_start(struct sandbox_host *host, const struct sandbox_spec *spec,
		  struct sandbox_run **out, struct al_error *err);
/* The one fd to watch for POLLIN/EPOLLIN; owned by the run. */
int sandbox_run_fd(const struct sandbox_run *run);
/* Handle whatever is ready without blocking; true once the run is over
 * and its result final. */
bool sandbox_run_step(struct sandbox_run *run);
/* Kill the run now (for example on shutdown); its verdict stays what the
 * module earned so far or becomes a setup error "cancelled". */
void sandbox_run_cancel(struct sandbox_run *run, const char *why);
/* Valid after sandbox_run_step() returned true; borrowed from the run. */
const struct sandbox_result *sandbox_run_result(const struct sandbox_run *run);
/* Move the finished run's result (its output buffers included) into *out;
 * the caller releases it with sandbox_result_release(). */
void sandbox_run_take_result(struct sandbox_run *run,
			     struct sandbox_result *out);
/* The host pid of the jail's init, for status displays. */
int sandbox_run_pid(const struct sandbox_run *run);
/* The host uid the run's processes have (sandbox_result.host_uid). */
uint32_t sandbox_run_host_uid(const struct sandbox_run *run);
/* For status displays while it runs: milliseconds since it started, and
 * the most memory its cgroup has used so far (0 when unknown: no cgroup,
 * or a kernel without memory.peak / max_usage_in_bytes). */
void sandbox_run_usage(struct sandbox_run *run, double *elapsed_ms,
		       uint64_t *memory_bytes);
/* Kills what is left, removes the cgroup, frees everything. */
void sandbox_run_free(struct sandbox_run *run);

/* Blocking form: start, wait, fill *result (caller frees with
 * sandbox_result_release). Returns 0 when there is a result, including a
 * setup_error result; the result's verdict tells the rest. */
int sandbox_run(struct sandbox_host *host, const struct sandbox_spec *spec,
		struct sandbox_result *result);
void sandbox_result_release(struct sandbox_result *result);

/* -------------------------------------------------------- version probes */

/*
 * A policy's version_command run in that policy's jail (airlock
 * languages, docs/policy.md): at most SANDBOX_PROBE_TIMEOUT_MS of wall
 * time, whatever the policy allows, and the first line of its output.
 *
 *   sandbox_probe_start(host, policy, &probe, &err);  // policy borrowed
 *   while (!sandbox_probe_step(probe)) poll(sandbox_probe_fd(probe));
 *   status = sandbox_probe_result(probe, text);
 *   sandbox_probe_free(probe);                        // kills what is left
 */
#define SANDBOX_PROBE_TIMEOUT_MS 5000u
#define SANDBOX_VERSION_MAX 127

enum sandbox_version {
	SANDBOX_VERSION_OK,      /* text: the version line */
	SANDBOX_VERSION_MISSING, /* the program is not in the jail */
	SANDBOX_VERSION_TIMEOUT, /* cut off */
	SANDBOX_VERSION_FAILED,  /* text: the verdict and why */
};

/* "ok", "not_installed", "timeout", "failed". */
const char *sandbox_version_name(enum sandbox_version v);
/* What a version command's finished run says, and its text: the first
 * non-empty line of stdout (else stderr), printable ASCII, cut. Pure. */
enum sandbox_version sandbox_result_version(const struct sandbox_result *r,
					    char out[SANDBOX_VERSION_MAX + 1]);

struct sandbox_probe;
/* EINVAL when the policy has no version_command; a start failure (no
 * free uid, no cgroup) is an error with nothing left behind. */
int sandbox_probe_start(struct sandbox_host *host,
			const struct al_policy *policy,
			struct sandbox_probe **out, struct al_error *err);
int sandbox_probe_fd(const struct sandbox_probe *p);
/* Handle what is ready without blocking; true once over. */
bool sandbox_probe_step(struct sandbox_probe *p);
/* Once over. */
enum sandbox_version sandbox_probe_result(const struct sandbox_probe *p,
					  char out[SANDBOX_VERSION_MAX + 1]);
void sandbox_probe_free(struct sandbox_probe *p);

/* -------------------------------------------------------------- learning */

/*
 * The learner: a BPF program (CO-RE, libbpf) on the syscall entry
 * tracepoint that records the syscalls of each learning run's jail, keyed
 * by the jail's pid namespace. Loading costs 50-90 ms (BTF and the
 * verifier), so a process loads it once and passes it in every spec that
 * should learn; it is attached only while a learning run is live, since
 * while attached every syscall on the host pays for one map lookup.
 * Fails with a message saying what is missing (root or CAP_BPF and
 * CAP_PERFMON; a kernel with BTF). Caller frees.
 */
struct sandbox_learner *sandbox_learner_new(struct al_error *err);
void sandbox_learner_free(struct sandbox_learner *learner);
/* Milliseconds the load took, and the last attach (for benchmarks). */
double sandbox_learner_load_ms(const struct sandbox_learner *learner);
double sandbox_learner_attach_ms(const struct sandbox_learner *learner);
/* Add the learned allow-list's floor to `set`: what any module needs
 * whether or not its learning run saw it, the exec that starts it (made
 * by init's vfork child, whose pre-exec calls are not learned when the
 * exec is the first thing it does) and the two ways to end. Both users of
 * a learned set (the supervisor's runtime policy, airlock learn's policy
 * file) add it. */
void sandbox_learn_floor(struct sandbox_syscalls *set);

/* Syscall sets: numbers outside 0..SANDBOX_SYSCALL_MAX-1 are ignored. */
void sandbox_syscalls_add(struct sandbox_syscalls *set, int nr);
bool sandbox_syscalls_has(const struct sandbox_syscalls *set, int nr);
size_t sandbox_syscalls_count(const struct sandbox_syscalls *set);
/* Add a syscall by name; -1 when the name is not a syscall here. */
int sandbox_syscalls_add_name(struct sandbox_syscalls *set, const char *name,
			      struct al_error *err);
/* The names, sorted: a NULL-terminated array in one allocation (caller
 * frees the array only). NULL when out of memory. */
char **sandbox_syscalls_names(const struct sandbox_syscalls *set);
/* The names sorted and joined by single spaces ("" for none), the form
 * the manifest stores; caller frees. And back: unknown names fail. */
char *sandbox_syscalls_join(const struct sandbox_syscalls *set);
int sandbox_syscalls_parse(const char *text, struct sandbox_syscalls *set,
			   struct al_error *err);

/* ---------------------------------------------------------------- verdict */

/* Fill a setup_error result (exit 125, or 126/127 given `exit_status`). */
void sandbox_result_setup_error(struct sandbox_result *result, int exit_status,
				const char *message);
/* The JSON object of docs/design.md for one result, appended to `jb` as a
 * value (an answer's "result" member); policy and host may be NULL (their
 * members are then left out). The one encoder of a result: the CLI, the
 * daemon and validate's report all use it. */
struct json_buf;
void sandbox_result_write(struct json_buf *jb,
			  const struct sandbox_result *result,
			  const struct al_policy *policy,
			  const struct sandbox_host *host);
/* The same object as a text of its own. Caller frees. */
char *sandbox_result_json(const struct sandbox_result *result,
			  const struct al_policy *policy,
			  const struct sandbox_host *host);

#endif
