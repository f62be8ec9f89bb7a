/* Private to policy/: the object itself, its mutators, the syscall groups. */
#ifndef AIRLOCK_POLICY_INTERNAL_H
#define AIRLOCK_POLICY_INTERNAL_H

#include "policy/policy.h"

#define MiB (1024ull * 1024ull)
#define TiB (1024ull * 1024ull * MiB)
#define SECOND_US 1000000ull

/* Bounds on limits: below the minimum nothing useful can run, above the
 * maximum the number is a typo rather than a limit. */
#define MEMORY_MIN (4 * MiB)
#define MEMORY_MAX (1 * TiB)
#define TIMEOUT_MIN_US 1000ull
#define TIMEOUT_MAX_US (24ull * 3600ull * SECOND_US)
#define PIDS_MAX 65536ull

struct al_policy {
	char name[64];
	char description[256];
	char version_command[POLICY_VERSION_COMMAND_MAX + 1]; /* "" none */
	char hostname[64];
	struct policy_limits limits;
	char **env; /* NULL-terminated "NAME=value", heap strings */
	size_t n_env;
	struct policy_syscall *sys; /* names are heap copies */
	size_t n_sys;
	struct policy_bind *binds;
	size_t n_binds;
	unsigned archive_on; /* bit per enum al_verdict */
	uint64_t crash_budget;
	bool seccomp_learned; /* [runtime] seccomp = learned */
	/* [runtime] request_env: the names an exec request may set, sorted,
	 * each once (heap strings) */
	char **request_env;
	size_t n_request_env;
	/* [build]: a bundle's build step; "" and 0 when not set (the
	 * daemon's defaults) */
	char build_command[1024];
	uint64_t build_timeout_us;
	uint64_t build_memory_bytes;
	char *file; /* the file it was read from; NULL if none */
	uid_t file_owner;
};

int policy_sys_add(struct al_policy *p, const char *name,
		   enum policy_sys_action action, int errnum,
		   struct al_error *err);
void policy_sys_remove(struct al_policy *p, const char *name);
void policy_sys_clear(struct al_policy *p);
/* Add (or with remove, take out) every syscall of "@group". */
int policy_group_apply(struct al_policy *p, const char *group, bool remove,
		       struct al_error *err);
int policy_env_set(struct al_policy *p, const char *name, const char *value,
		   struct al_error *err);
/* Where the policy came from (file may be NULL); -1 when out of memory. */
int policy_set_file(struct al_policy *p, const char *file, uid_t owner);
/* Add a name to [runtime] request_env (kept sorted, each once); -1 when
 * out of memory. The caller checked the name (policy_env_name_valid()). */
int policy_request_env_add(struct al_policy *p, const char *name,
			   struct al_error *err);
void policy_request_env_clear(struct al_policy *p);
int policy_bind_add(struct al_policy *p, const char *host, const char *jail,
		    bool writable, struct al_error *err);

struct policy_group {
	const char *name;
	const char *const *syscalls; /* NULL-terminated */
};

const struct policy_group *policy_group_find(const char *name);
size_t policy_group_count(void);
const struct policy_group *policy_group_at(size_t i);
size_t policy_default_errno_count(void);
const struct policy_syscall *policy_default_errno_at(size_t i);

#endif
