/* Shared by the learner's BPF program and its loader (sandbox/learn.c). */
#ifndef AIRLOCK_SANDBOX_BPF_LEARN_H
#define AIRLOCK_SANDBOX_BPF_LEARN_H

#define LEARN_MAX_SYSCALL 512 /* x86-64 numbers are below 512 */
#define LEARN_WORDS (LEARN_MAX_SYSCALL / 64)
#define LEARN_MAX_JAILS 4096 /* concurrent learning runs */

struct learn_bits {
	unsigned long long words[LEARN_WORDS];
};

#endif
