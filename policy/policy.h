/*
 * policy: what one run of a module is allowed to do.
 *
 * Lifecycle:
 *
 *   struct al_policy *p = policy_load("strict", &err); // a name or a path
 *   struct al_policy *p = policy_new_default(&err);   // the design's defaults
 *   policy_set_memory(p, "128M", &err);                // command-line overrides
 *   policy_hash(p, hash, &err);                        // identity of the rules
 *   ... sandbox_start() reads it through the getters below ...
 *   policy_free(p);
 *
 * The policy is the single place every limit comes from: the jail reads
 * nothing from the environment or the command line by itself. An override
 * produces a derived policy whose canonical form, and so whose hash, differs
 * from the one it came from.
 */
#ifndef AIRLOCK_POLICY_H
#define AIRLOCK_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "common/common.h"

struct al_policy;

enum policy_net {
	POLICY_NET_NONE,     /* a network namespace with nothing up */
	POLICY_NET_LOOPBACK, /* a network namespace with only `lo` up */
};

/* Whether the cgroup limits (memory, pids, CPU quota) must be in force.
 * Without root and without a delegated cgroup they cannot be: "required"
 * refuses to run, "best-effort" runs and says which were not applied. */
enum policy_limits_mode {
	POLICY_LIMITS_REQUIRED,
	POLICY_LIMITS_BEST_EFFORT,
};

/* Numeric limits and identity; every field has a docs/design.md default. */
struct policy_limits {
	uint64_t memory_bytes;    /* cgroup memory limit, swap excluded */
	uint64_t timeout_us;      /* wall clock, enforced by the parent */
	uint64_t cpu_time_us;     /* CPU time of each process (RLIMIT_CPU) */
	uint64_t cpu_quota_milli; /* cgroup CPU bandwidth; 0 = no quota */
	uint64_t pids;            /* cgroup pids limit */
	uint64_t stdout_max;      /* bytes captured; the rest is dropped */
	uint64_t stderr_max;
	uint64_t tmp_bytes;   /* size of the private /tmp */
	uint64_t fsize_bytes; /* RLIMIT_FSIZE */
	uint64_t nofile;      /* RLIMIT_NOFILE */
	uint64_t as_bytes;    /* RLIMIT_AS; 0 = not set */
	uint32_t uid;         /* identity inside the jail; never 0 */
	uint32_t gid;
	enum policy_net net;
	enum policy_limits_mode limits_mode;
	bool terminal; /* a private /dev/pts for the run's own ptys */
};

/* How the seccomp filter treats one syscall named by the policy. */
enum policy_sys_action {
	POLICY_SYS_ALLOW,
	POLICY_SYS_ERRNO, /* fail with `errnum`: for calls runtimes probe */
};

struct policy_syscall {
	const char *name;
	enum policy_sys_action action;
	int errnum;
};

/* An extra bind mount: a host path shown at `jail` inside. */
struct policy_bind {
	char *host;
	char *jail;
	bool writable;
};

/* The default policy. Caller frees with policy_free(). */
struct al_policy *policy_new_default(struct al_error *err);
void policy_free(struct al_policy *p);

/*
 * A policy file (format: docs/policy.md). `filename` is used in messages
 * ("strict.policy:12: [limits] memory: ..."), `name` is the policy's name
 * unless the file sets one. Every error stops the parse: the message names
 * the file, the line and the key and says what was expected.
 */
struct al_policy *policy_parse_file(FILE *f, const char *filename,
				    const char *name, struct al_error *err);
struct al_policy *policy_parse_string(const char *text, const char *filename,
				      const char *name, struct al_error *err);

/*
 * By name or path: anything with a '/' or ending in ".policy" is a path;
 * a bare NAME is NAME.policy in the search path (policy_search_path()),
 * and "default" is built in when no file of that name is found.
 */
struct al_policy *policy_load(const char *name_or_path, struct al_error *err);
/* The directories searched for policy names, ':'-separated:
 * $AIRLOCK_POLICY_PATH if set, else the installed policy directory, the
 * state directory's policies/ and the source tree next to the binary. */
/* The state directory is policy_set_state_dir()'s (airlockd passes its
 * --state-dir; copied), else $AIRLOCK_STATE_DIR, else /var/lib/airlock. */
void policy_set_state_dir(const char *dir);
const char *policy_search_path(char *buf, size_t len);
/* Call fn for each NAME.policy in the search path (first one of a name
 * wins); returns how many. */
int policy_list(void (*fn)(const char *name, const char *path, void *arg),
		void *arg);

/*
 * The daemon's lookup (a client's word, loaded as root): `name` must pass
 * policy_name_valid(); it is looked up in policy_trusted_search_path()
 * only (no source tree), and the file found, with every directory above
 * it, must be root-owned and not group/other-writable (al_path_trusted()).
 * "default" is built in when no file of that name exists.
 */
struct al_policy *policy_load_trusted(const char *name, struct al_error *err);
/* $AIRLOCK_POLICY_PATH if set, else the installed and state policy
 * directories: policy_search_path() without the source tree. */
const char *policy_trusted_search_path(char *buf, size_t len);
int policy_list_trusted(void (*fn)(const char *name, const char *path,
				   void *arg),
			void *arg);
/* Letters, digits, '-' and '_', 1 to 63, not starting with '-'. */
bool policy_name_valid(const char *name);

/* Overrides from strings as a user types them ("128M", "2s", "none"); on
 * error the policy is unchanged and err names the setting. */
int policy_set_memory(struct al_policy *p, const char *value,
		      struct al_error *err);
int policy_set_timeout(struct al_policy *p, const char *value,
		       struct al_error *err);
int policy_set_pids(struct al_policy *p, const char *value,
		    struct al_error *err);
int policy_set_net(struct al_policy *p, const char *value,
		   struct al_error *err);
int policy_set_limits_mode(struct al_policy *p, const char *value,
			   struct al_error *err);

/* [policy] version_command: a command that prints the interpreter's
 * version (`python3 --version`), run inside the policy's jail by `airlock
 * languages`. Like the description it is no rule: not in the hash. */
#define POLICY_VERSION_COMMAND_MAX 255
#define POLICY_VERSION_ARGS_MAX 8 /* words, the program included */

/* Getters: the returned pointers are borrowed from the policy. */
const char *policy_name(const struct al_policy *p);
const char *policy_description(const struct al_policy *p);
/* The version command as written, "" when the policy has none. */
const char *policy_version_command(const struct al_policy *p);
/* Its words split into `buf` (copied): argv[0] the program (a bare name
 * looked up on the jail's PATH, or an absolute path), then its arguments,
 * NULL-terminated. Returns how many words, 0 when there is none. */
int policy_version_argv(const struct al_policy *p,
			char buf[POLICY_VERSION_COMMAND_MAX + 1],
			char *argv[POLICY_VERSION_ARGS_MAX + 1]);
const struct policy_limits *policy_limits(const struct al_policy *p);
const char *policy_hostname(const struct al_policy *p);
/* NULL-terminated "NAME=value" list for the module's environment. */
char *const *policy_environ(const struct al_policy *p);
/* The module's PATH (also in the environment), used to find bare names. */
const char *policy_path(const struct al_policy *p);
size_t policy_bind_count(const struct al_policy *p);
const struct policy_bind *policy_bind_at(const struct al_policy *p, size_t i);
/* The file the policy was read from (NULL for the built-in default) and
 * its owner (0 without a file). The owner may bind paths through its own
 * directories: it wrote the bind list anyway (docs/jail.md, "Binds"). */
const char *policy_file(const struct al_policy *p);
uid_t policy_file_owner(const struct al_policy *p);
/* Runtime rules for the supervisor: which verdicts archive a module, after
 * how many of them. */
bool policy_archives(const struct al_policy *p, enum al_verdict v);
uint64_t policy_crash_budget(const struct al_policy *p);
/* [build]: the build step of a bundle submitted under this policy without
 * a command of its own ("" when none), and its limits (0: the daemon's
 * --build-timeout and --build-memory). */
const char *policy_build_command(const struct al_policy *p);
uint64_t policy_build_timeout_us(const struct al_policy *p);
uint64_t policy_build_memory_bytes(const struct al_policy *p);
/* [runtime] seccomp = learned: a supervisor learns the module's syscalls
 * in its validation run and holds every later run to exactly those
 * (docs/learning.md). The allow-list then bounds the validation run. */
bool policy_seccomp_learned(const struct al_policy *p);
/* A copy of `p` whose allow-list keeps only the syscalls keep() accepts;
 * errno entries stay, and the copy is no longer "learned": its list is
 * final. Caller frees. */
struct al_policy *policy_restrict(const struct al_policy *p,
				  bool (*keep)(const char *name, void *arg),
				  void *arg, struct al_error *err);
/* [runtime] request_env: the environment names an exec request may set
 * (sorted, each once; none by default). */
size_t policy_request_env_count(const struct al_policy *p);
const char *policy_request_env_at(const struct al_policy *p, size_t i);
/* A plain environment name: letters, digits and '_', not starting with a
 * digit, at most POLICY_ENV_NAME_MAX bytes. */
#define POLICY_ENV_NAME_MAX 63
bool policy_env_name_valid(const char *name);
size_t policy_syscall_count(const struct al_policy *p);
const struct policy_syscall *policy_syscall_at(const struct al_policy *p,
					       size_t i);

/* --------------------------------------------------- per-run options */

/*
 * What one exec request asks of its run (docs/protocol.md, "Per-run
 * options"): it may lower the policy's limits, never raise them; set the
 * environment names the policy's [runtime] request_env lists; and start
 * the module in another directory of the jail. Everything is borrowed for
 * the call; NULL / false / 0 members ask for nothing.
 */
#define POLICY_REQUEST_ENV_MAX 64         /* names listed, or set at once */
#define POLICY_REQUEST_ENV_VALUE_MAX 4096 /* bytes of one value */
#define POLICY_CWD_MAX 4096               /* bytes of the cwd path */

struct policy_request {
	const char *timeout; /* a duration as typed: "2s", "500ms" */
	const char *memory;  /* a size as typed: "64M" */
	bool has_pids;
	uint64_t pids;
	const char *const *env_names; /* n_env names and their values */
	const char *const *env_values;
	size_t n_env;
	const char *cwd; /* an absolute path inside the jail */
	/* airlock run: its caller chose the policy and may set any plain
	 * name; never set for a client of airlockd */
	bool any_env_name;
};

/* The run's own settings, filled by policy_tighten(); caller frees with
 * policy_run_clear(). */
struct policy_run {
	struct policy_limits limits; /* the policy's, lowered where asked */
	char **envp; /* NULL-terminated "NAME=value": the policy's environment
			with the request's names set; NULL: the policy's own */
	char *cwd;   /* NULL: the jail's default (/tmp) */
};

/*
 * Hold `req` to `p`. A limit must parse (parse_duration_us, parse_size:
 * a bare number is refused) and lie between the least a run can have and
 * the policy's own value; a lower timeout lowers the CPU-time limit with
 * it. An env name must be a plain name (policy_env_name_valid()) that the
 * policy's request_env lists (any plain name with any_env_name), given
 * once, its value at most POLICY_REQUEST_ENV_VALUE_MAX bytes;
 * names the policy itself sets (PATH, HOME) are no exception. cwd must be
 * absolute, normalized (no "", "." or ".." parts, no trailing '/') and
 * free of control characters; whether the jail has it is the jail's to
 * say. Nothing is clamped: on error `out` is left empty and err names
 * the option, the value asked and the bound ("timeout 10s is above the
 * policy's timeout 5s; a request may only lower it"): errnum EPERM when
 * the request asks for more than the policy allows, EINVAL when it is
 * malformed, ENOMEM. Pure code.
 */
int policy_tighten(const struct al_policy *p, const struct policy_request *req,
		   struct policy_run *out, struct al_error *err);
void policy_run_clear(struct policy_run *run);
/* The cwd rule of policy_tighten() alone, for a codec that checks a
 * request before any policy is known (EINVAL, err says what is wrong). */
int policy_cwd_check(const char *cwd, struct al_error *err);

/*
 * The canonical text (defaults filled in, one `key = value` per line in a
 * fixed order, lists sorted) and its SHA-256 as "sha256:<64 hex>". Both
 * change with any change of meaning and with nothing else.
 */
char *policy_canonical(const struct al_policy *p, struct al_error *err);
#define POLICY_HASH_LEN (7 + 64 + 1)
int policy_hash(const struct al_policy *p, char out[POLICY_HASH_LEN],
		struct al_error *err);

const char *policy_net_name(enum policy_net net);
const char *policy_limits_mode_name(enum policy_limits_mode mode);

#endif
