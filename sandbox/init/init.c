/*
 * airlock-init: the last stage of a jail's init, as a program of its own.
 *
 *   airlock-init SYNC_FD PATH NAME ARGV0 [ARGS...]     (environ: the module's)
 *
 * The parent creates the jail's init with clone(CLONE_VM | CLONE_VFORK): no
 * copy of the caller's address space, no copy-on-write faults afterwards in
 * either process (for airlockd, with its heap and SQLite cache, those were
 * most of the cost of a run). Sharing the caller's memory is only safe
 * while the caller is suspended, so once the jail is built, privileges
 * dropped and the filter loaded (child.c), init execs this program, and the
 * caller resumes. What is left for init to do is what this file does:
 * vfork and execve the module in a new session, say so over the sync socket
 * (jail_msg.h), reap every process of the pid namespace until the module
 * exits, report its wait status, exit.
 *
 * It runs under the module's seccomp filter, so it is built without libc
 * (no start-up code whose syscalls a strict policy might deny) and makes
 * only the calls the filter always allows (seccomp.c: init_needs): vfork,
 * setsid, close, execve, wait4, sendmsg, exit, exit_group. It is installed
 * readable by root only: a program its user may not read runs non-dumpable,
 * so the module (the same uid) cannot ptrace it or read its memory. The
 * parent checks that mode before it uses the helper (host.c).
 *
 * x86-64 only (inline syscalls); elsewhere airlock keeps the fork path.
 */
#include <asm/unistd.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "sandbox/jail_msg.h"

#define WALL 0x40000000 /* __WALL: reap children of any kind */

/* gcc may emit calls to these for struct copies and zeroing */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);

void *memset(void *dst, int c, size_t n)
{
	volatile unsigned char *d = dst;
	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
	volatile unsigned char *d = dst;
	const unsigned char *s = src;
	while (n--)
		*d++ = *s++;
	return dst;
}

static long sys(long nr, long a, long b, long c, long d)
{
	register long r10 __asm__("r10") = d;
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
			 : "rcx", "r11", "memory");
	return ret;
}

__attribute__((noreturn)) static void exit_group(int code)
{
	for (;;)
		sys(__NR_exit_group, code, 0, 0, 0);
}

/*
 * vfork, and in the child: close the sync socket (ours survives our own
 * exec, the module must not inherit it), setsid, execve; on failure store
 * -errno in *err (the memory is shared until the exec) and exit. All in
 * one asm block: the vfork child runs on the parent's stack, so it must
 * not touch the stack at all, which compiled C cannot promise.
 */
static long spawn(int sync_fd, const char *path, char *const *argv,
		  char *const *envp, volatile int *err)
{
	register long rbx __asm__("rbx") = sync_fd;
	register long r12 __asm__("r12") = (long)path;
	register long r13 __asm__("r13") = (long)argv;
	register long r14 __asm__("r14") = (long)envp;
	register long r15 __asm__("r15") = (long)err;
	long ret;
	__asm__ volatile("mov %[vfork], %%eax\n\t"
			 "syscall\n\t"
			 "test %%rax, %%rax\n\t"
			 "jnz 1f\n\t"
			 "mov %%rbx, %%rdi\n\t"
			 "mov %[close], %%eax\n\t"
			 "syscall\n\t"
			 "mov %[setsid], %%eax\n\t"
			 "syscall\n\t"
			 "mov %%r12, %%rdi\n\t"
			 "mov %%r13, %%rsi\n\t"
			 "mov %%r14, %%rdx\n\t"
			 "mov %[execve], %%eax\n\t"
			 "syscall\n\t"
			 "neg %%eax\n\t"
			 "mov %%eax, (%%r15)\n\t"
			 "mov $127, %%edi\n\t"
			 "mov %[exit], %%eax\n\t"
			 "syscall\n\t"
			 "1:"
			 : "=a"(ret)
			 : "r"(rbx), "r"(r12), "r"(r13), "r"(r14), "r"(r15),
			   [vfork] "i"(__NR_vfork), [close] "i"(__NR_close),
			   [setsid] "i"(__NR_setsid),
			   [execve] "i"(__NR_execve), [exit] "i"(__NR_exit)
			 : "rcx", "r11", "rdi", "rsi", "rdx", "memory");
	return ret;
}

static void send_msg(int fd, struct jail_msg *m)
{
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	/* If this fails the parent is gone; exiting is all that is left. */
	if (sys(__NR_sendmsg, fd, (long)&mh, MSG_NOSIGNAL, 0) !=
	    (long)sizeof(*m))
		exit_group(1);
}

static int parse_fd(const char *s)
{
	int v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > 100000)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

__attribute__((noreturn, used)) void init_start(long *sp);

__attribute__((noreturn, used)) void init_start(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	if (argc < 5)
		exit_group(1);
	int sync_fd = parse_fd(argv[1]);
	if (sync_fd < 3)
		exit_group(1);

	struct jail_msg m = { 0 };
	volatile int exec_err = 0;
	long pid = spawn(sync_fd, argv[2], argv + 4, envp, &exec_err);
	if (pid < 0) {
		m.type = JAIL_MSG_ERROR;
		m.errnum = (int)-pid;
		memcpy(m.text, "vfork", 6);
		send_msg(sync_fd, &m);
		exit_group(1);
	}
	if (exec_err) {
		m.type = JAIL_MSG_EXEC_FAILED;
		m.errnum = exec_err;
		size_t i = 0;
		for (; argv[3][i] && i < 400; i++)
			m.text[i] = argv[3][i];
		m.text[i] = '\0';
		send_msg(sync_fd, &m);
		exit_group(1);
	}
	m.type = JAIL_MSG_STARTED;
	send_msg(sync_fd, &m);
	/* As pid 1, reap every orphan until the module itself exits; then
	 * the kernel kills whatever is left of the run. No signal handlers,
	 * so no EINTR. */
	for (;;) {
		int status = 0;
		long done = sys(__NR_wait4, -1, (long)&status, WALL, 0);
		if (done == pid) {
			m.type = JAIL_MSG_EXITED;
			m.value = status;
			send_msg(sync_fd, &m);
			exit_group(0);
		}
		if (done < 0)
			exit_group(1);
	}
}

__asm__(".globl _start\n"
	"_start:\n\t"
	"xor %ebp, %ebp\n\t"
	"mov %rsp, %rdi\n\t"
	"and $-16, %rsp\n\t"
	"call init_start\n\t"
	"hlt\n");
