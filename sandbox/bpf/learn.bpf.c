// SPDX-License-Identifier: GPL-2.0
/*
 * The learner: which syscalls the processes of a jail make.
 *
 * Attached to the BTF-typed raw tracepoint at syscall entry (tp_btf needs
 * no tracefs, unlike tp/raw_syscalls). The key of a jail is the inode of
 * its pid namespace, which the kernel gives every process of the run and
 * nothing else, so forks are counted without tracking pids. The parent
 * inserts a zeroed entry for each learning run before the run's module
 * starts and deletes it at teardown (pid namespace inodes are reused); a
 * syscall of any other process finds no entry and costs one hash lookup.
 *
 * The jail's init (pid 1 in the namespace) is the launcher itself: its
 * mounts, privilege drops and filter load are airlock's, not the module's,
 * and are left out.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "sandbox/bpf/learn.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LEARN_MAX_JAILS);
	__type(key, __u32);
	__type(value, struct learn_bits);
} jails SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(learn_sys_enter, struct pt_regs *regs, long id)
{
	/* typed pointers (tp_btf): plain loads the verifier guards, no
	 * helper calls, on the path every syscall of the host takes */
	struct task_struct *task = bpf_get_current_task_btf();
	struct pid *pid = task->thread_pid;
	unsigned int level = pid->level;
	struct upid up = {};

	/* a jail is always a new pid namespace below its launcher's: the
	 * host's own processes (level 0) stop here */
	if (level == 0)
		return 0;
	/* the task's own (innermost) pid namespace and its pid there */
	if (bpf_core_read(&up, sizeof(up), &pid->numbers[level & 63]) < 0)
		return 0;
	if (up.nr == 1)
		return 0;
	__u32 key = BPF_CORE_READ(up.ns, ns.inum);
	struct learn_bits *bits = bpf_map_lookup_elem(&jails, &key);
	if (!bits || id < 0 || id >= LEARN_MAX_SYSCALL)
		return 0;
	/* masked: the verifier proves the index in bounds from the mask,
	 * not from the comparison above */
	__sync_fetch_and_or(&bits->words[(id >> 6) & (LEARN_WORDS - 1)],
			    1ULL << (id & 63));
	return 0;
}
