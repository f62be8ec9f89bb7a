/* Private to policy/: the syscall group tables. */
#ifndef AIRLOCK_POLICY_INTERNAL_H
#define AIRLOCK_POLICY_INTERNAL_H

#include "policy/policy.h"

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
