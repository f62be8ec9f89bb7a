/*
 * airlock policy learn: the pure part, private to tools/.
 *
 * learn_policy.c writes the learned policy file from a base policy and the
 * syscalls the learning runs made; cmd_learn.c runs the jails. Unit tests
 * (tests/unit/test_learn.c) feed the writer sets made by hand.
 */
#ifndef AIRLOCK_TOOLS_LEARN_H
#define AIRLOCK_TOOLS_LEARN_H

#include <stdio.h>

#include "policy/policy.h"
#include "sandbox/sandbox.h"

struct learned {
	const struct al_policy *base; /* borrowed */
	struct sandbox_syscalls set;  /* every syscall some run made */
	/* the first run that made each syscall (borrowed names), or NULL */
	const char *first_seen[SANDBOX_SYSCALL_MAX];
	char *const *runs; /* the runs' names in order; borrowed */
	size_t nruns;
};

/* Merge one run's set into `l`; returns how many syscalls were new. */
size_t learned_add(struct learned *l, const struct sandbox_syscalls *set,
		   const char *run);

/*
 * The policy file: the base's rules in canonical form, named
 * "<base>-learned", with the seccomp allow-list replaced by the learned
 * set plus what starting and ending the module needs (execve, exit,
 * exit_group), one syscall a line with a comment naming the run that
 * first made it. Calls the base fails with an errno stay in its errno
 * list. The text parses with policy_parse_*() (docs/policy.md).
 */
int learned_write(FILE *f, const struct learned *l, struct al_error *err);

#endif
