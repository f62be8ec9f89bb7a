/*
 * The named groups of syscalls that policies are built from, and the
 * default allow-list made of them.
 *
 * A syscall not listed here is outside every shipped policy: the filter's
 * default action stops the process and the supervisor names the call. The
 * groups are sized for shells, Python, Node and static C programs; calls
 * that only widen the kernel's attack surface or reach outside the jail
 * (ptrace, mount, namespaces, keyrings, bpf, perf, modules, kexec, handles,
 * userfaultfd, process_vm_*) are in no group on purpose.
 */
#include <errno.h>
#include <string.h>

#include "policy/internal.h"

/* clang-format off */
static const char *const group_basic_io[] = {
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv",
	"pwritev", "preadv2", "pwritev2", "close", "close_range", "lseek",
	"dup", "dup2", "dup3", "fcntl",
	/* ioctl but TIOCSETD, TIOCSTI and TIOCLINUX, which fail with EPERM
	 * under every policy (sandbox/seccomp.c) */
	"ioctl", "pipe", "pipe2", "sendfile", "splice", "tee",
	"copy_file_range", "fsync", "fdatasync", "sync_file_range",
	"fadvise64", "readahead",
	/* sync, syncfs: write back dirty pages (the host's too, for sync).
	 * No data crosses and nothing changes but when the host's writeback
	 * happens; os.sync(), coreutils' sync and test_posix call them, and
	 * container runtimes allow them. */
	"sync", "syncfs", NULL,
};
/* clang-format on */

/* clang-format off */
static const char *const group_file_system[] = {
	"open", "openat", "creat", "stat", "fstat", "lstat", "newfstatat",
	"statx", "fstatfs", "statfs", "access", "faccessat", "faccessat2",
	"getdents", "getdents64", "getcwd", "chdir", "fchdir", "rename",
	"renameat", "renameat2", "mkdir", "mkdirat", "rmdir", "link", "linkat",
	"unlink", "unlinkat", "symlink", "symlinkat", "readlink", "readlinkat",
	"chmod", "fchmod", "fchmodat", "chown", "fchown", "lchown", "fchownat",
	"truncate", "ftruncate", "fallocate", "umask", "utime", "utimes",
	"utimensat", "futimesat", "flock", "getxattr", "lgetxattr",
	"fgetxattr", "listxattr", "llistxattr", "flistxattr", "inotify_init",
	"inotify_init1", "inotify_add_watch", "inotify_rm_watch",
	"memfd_create",
	/* xattr writes: user.* on the jail's own tmpfs (cp -a, install,
	 * rsync); trusted.* and security.* need CAP_SYS_ADMIN or CAP_SETFCAP,
	 * which the jail does not have, and every other mount is read-only. */
	"setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr",
	"fremovexattr",
	/* mknod: FIFOs and sockets (os.mkfifo, mkfifo). A device node needs
	 * CAP_MKNOD, and /tmp is nodev, so no device can be made or opened. */
	"mknod", "mknodat", "fchmodat2", NULL,
};
/* clang-format on */

/* clang-format off */
static const char *const group_memory[] = {
	"mmap", "munmap", "mprotect", "mremap", "madvise", "brk", "msync",
	"mincore", "membarrier", "pkey_alloc", "pkey_free", "pkey_mprotect", "get_mempolicy",
	"set_mempolicy", "mbind",
	/* locking pages: RLIMIT_MEMLOCK is 0 in the jail (privs.c), so these
	 * fail with EPERM instead of pinning memory past the cgroup's reclaim;
	 * allowed so that a runtime probing them gets an error, not a kill */
	"mlock", "mlock2", "munlock", "mlockall", "munlockall", NULL,
};
/* clang-format on */

/* clang-format off */
static const char *const group_process[] = {
	/* clone is allowed only without namespace flags (sandbox/seccomp.c);
	 * it is listed here so that policies can name it. */
	"clone", "fork", "vfork", "execve", "execveat", "exit", "exit_group",
	"wait4", "waitid", "kill", "tgkill", "tkill", "getpid", "getppid",
	"gettid", "getpgrp", "getpgid", "setpgid", "getsid", "setsid", "prctl",
	"arch_prctl", "set_tid_address", "set_robust_list", "get_robust_list",
	"rseq", "getrlimit", "setrlimit", "prlimit64", "getrusage",
	"sched_yield", "sched_getaffinity", "sched_setaffinity",
	"sched_getparam", "sched_getscheduler", "sched_get_priority_max",
	"sched_get_priority_min", "sched_rr_get_interval", "getpriority",
	"setpriority", "getcpu",
	/* Realtime and higher priorities need CAP_SYS_NICE or a non-zero
	 * RLIMIT_RTPRIO / RLIMIT_NICE, and the jail has neither (privs.c sets
	 * both to 0): a module can only lower its own threads' standing. */
	"sched_setparam", "sched_setscheduler", "sched_getattr",
	"sched_setattr", "ioprio_get", "ioprio_set",
	/* pidfd_open, pidfd_send_signal: a pid as an fd (asyncio's child
	 * watcher, subprocess). Only the run's pid namespace can be named,
	 * and signalling keeps kill()'s permission checks. */
	"pidfd_open", "pidfd_send_signal",
	/* restart_syscall: the kernel's own way back into a sleep that a
	 * stop (SIGSTOP, then SIGCONT) interrupted; without it every stopped
	 * and continued program dies. It only resumes what was running. */
	"restart_syscall",
	/* seccomp: its queries (SECCOMP_GET_ACTION_AVAIL, _NOTIF_SIZES) and
	 * the probe libseccomp makes before loading a filter. Installing a
	 * filter fails with EINVAL under every policy, this one's prctl
	 * (PR_SET_SECCOMP) too (sandbox/seccomp.c says why). */
	"seccomp", NULL,
};
/* clang-format on */

/* clang-format off */
static const char *const group_credentials[] = {
	/* Without capabilities these can only shuffle the jail's own ids. */
	"getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid",
	"getgroups", "setuid", "setgid", "setreuid", "setregid", "setresuid",
	"setresgid", "setfsuid", "setfsgid", "capget",
	/* setgroups needs CAP_SETGID (EPERM here); capset can only lower the
	 * sets, which are empty already. test_posix and test_os probe both. */
	"setgroups", "capset", NULL,
};
/* clang-format on */

/* clang-format off */
static const char *const group_signal[] = {
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend",
	"rt_sigpending", "rt_sigtimedwait", "rt_sigqueueinfo",
	"rt_tgsigqueueinfo", "sigaltstack", "signalfd", "signalfd4", "pause",
	"alarm", NULL,
};
/* clang-format on */

/* clang-format off */
static const char *const group_time[] = {
	"nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres",
	"gettimeofday", "time", "getitimer", "setitimer", "timer_create",
	"timer_settime", "timer_gettime", "timer_getoverrun", "timer_delete",
	"timerfd_create", "timerfd_settime", "timerfd_gettime", "times",
	"sysinfo", "uname", "getrandom", NULL,
};
/* clang-format on */

/* clang-format off */
static const char *const group_event[] = {
	"futex", "select", "pselect6", "poll", "ppoll", "epoll_create",
	"epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
	"epoll_pwait2", "eventfd", "eventfd2",
	/* futex_waitv: several futexes at once (Wine, newer runtimes); the
	 * same process-local words futex already reaches */
	"futex_waitv", NULL,
};
/* clang-format on */

/* clang-format off */
static const char *const group_network[] = {
	/* socket is allowed only for unix, inet, inet6 and netlink
	 * (sandbox/seccomp.c): AF_PACKET, AF_ALG and the rest are kernel
	 * attack surface a module does not need. */
	"socket", "socketpair", "connect", "accept", "accept4", "bind",
	"listen", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg",
	"recvmmsg", "shutdown", "getsockname", "getpeername", "setsockopt",
	"getsockopt", NULL,
};
/* clang-format on */

/*
 * System V IPC and POSIX message queues. Every object lives in the run's
 * private ipc namespace (CLONE_NEWIPC): the host's segments, semaphores
 * and queues do not exist in it, and the namespace and everything in it
 * go with the run. Shared memory pages are charged to the memory cgroup
 * of the process that touches them, so the memory limit holds.
 * multiprocessing, PostgreSQL-style shared buffers and test_posix use them.
 */
/* clang-format off */
static const char *const group_ipc[] = {
	"shmget", "shmat", "shmdt", "shmctl", "semget", "semop",
	"semtimedop", "semctl", "msgget", "msgsnd", "msgrcv", "msgctl",
	"mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
	"mq_notify", "mq_getsetattr", NULL,
};
/* clang-format on */

static const struct policy_group groups[] = {
	{ "@basic-io", group_basic_io },
	{ "@file-system", group_file_system },
	{ "@memory", group_memory },
	{ "@process", group_process },
	{ "@credentials", group_credentials },
	{ "@signal", group_signal },
	{ "@time", group_time },
	{ "@event", group_event },
	{ "@network", group_network },
	{ "@ipc", group_ipc },
};

/*
 * Calls that runtimes probe and fall back from: failing them keeps the
 * program working while the call itself stays out of reach.
 *   clone3: its flags live in memory seccomp cannot read; ENOSYS makes
 *           glibc fall back to clone, whose flags the filter checks.
 *   io_uring_*: a large kernel attack surface; libuv falls back to threads.
 */
static const struct policy_syscall default_errno[] = {
	{ "clone3", POLICY_SYS_ERRNO, ENOSYS },
	{ "io_uring_setup", POLICY_SYS_ERRNO, ENOSYS },
	{ "io_uring_enter", POLICY_SYS_ERRNO, ENOSYS },
	{ "io_uring_register", POLICY_SYS_ERRNO, ENOSYS },
};

const struct policy_group *policy_group_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(groups); i++)
		if (strcmp(groups[i].name, name) == 0)
			return &groups[i];
	return NULL;
}

size_t policy_group_count(void)
{
	return ARRAY_SIZE(groups);
}

const struct policy_group *policy_group_at(size_t i)
{
	return i < policy_group_count() ? &groups[i] : NULL;
}

size_t policy_default_errno_count(void)
{
	return ARRAY_SIZE(default_errno);
}

const struct policy_syscall *policy_default_errno_at(size_t i)
{
	return i < policy_default_errno_count() ? &default_errno[i] : NULL;
}
