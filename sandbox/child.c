/*
 * The jail's init: pid 1 of the run's pid namespace.
 *
 * jail_init_main() reads like the script it is: each step either succeeds
 * or reports to the parent and exits, so the module is never started in a
 * jail that is missing a piece. The order matters and is fixed:
 *
 *   cgroup → cgroup namespace → stdio → close every other fd → root
 *   filesystem (+ read-back) → hostname → loopback → rlimits → new session
 *   → identity and capabilities (+ read-back) → find the program → seccomp
 *   (listener to the parent) → vfork + execve → reap until the module
 *   exits → report its status.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/internal.h"

static void send_msg(int fd, const struct jail_msg *m, int pass_fd)
{
	struct iovec iov = { .iov_base = (void *)m, .iov_len = sizeof(*m) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (pass_fd >= 0) {
		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = sizeof(control.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
	}
	/* If this fails the parent is gone; exiting is all that is left. */
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) != (ssize_t)sizeof(*m))
		_exit(1);
}

static void send_simple(int fd, int type, int errnum, int value)
{
	struct jail_msg m = { .type = type, .errnum = errnum, .value = value };
	send_msg(fd, &m, -1);
}

void jail_fail(const struct jail_plan *plan, int errnum, const char *fmt, ...)
{
	struct jail_msg m = { .type = JAIL_MSG_ERROR, .errnum = errnum };
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m.text, sizeof(m.text), fmt, ap);
	va_end(ap);
	send_msg(plan->sync_fd, &m, -1);
	_exit(1);
}

/* Dispositions and the signal mask survive execve; the caller's (an
 * ignored SIGPIPE, signals blocked for a signalfd) are not the module's. */
static void reset_signals(const struct jail_plan *plan)
{
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)signal(sig, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		jail_fail(plan, errno, "signals: clear the mask");
}

/* Rootless: nothing privileged can work until the parent has written
 * the uid and gid maps of the new user namespace. Learning: the module
 * must not start before the parent registered the jail with the learner. */
static void wait_for_id_maps(const struct jail_plan *plan)
{
	char go;
	if (!plan->userns && !plan->learn)
		return;
	if (recv(plan->sync_fd, &go, 1, 0) != 1)
		_exit(1); /* parent gone, or it reported the failure itself */
}

static void join_cgroup(const struct jail_plan *plan)
{
	for (int i = 0; i < plan->cgroup->n; i++)
		if (write(plan->cgroup->procs_fd[i], "0", 1) != 1)
			jail_fail(plan, errno, "cgroup: join %s",
				  plan->cgroup->path[i]);
	/* The jail sees its own cgroup as "/", not the host's tree. */
	if (unshare(CLONE_NEWCGROUP) < 0)
		jail_fail(plan, errno, "cgroup namespace");
}

/* Move the three stdio fds into place; any of them may already sit on
 * 0, 1 or 2 in another role, so each is first copied out of the way. */
static void setup_stdio(const struct jail_plan *plan)
{
	int high[3];
	for (int i = 0; i < 3; i++) {
		high[i] = fcntl(plan->stdio[i], F_DUPFD_CLOEXEC, 10);
		if (high[i] < 0)
			jail_fail(plan, errno, "stdio: duplicate fd %d",
				  plan->stdio[i]);
	}
	for (int i = 0; i < 3; i++)
		if (dup2(high[i], i) < 0)
			jail_fail(plan, errno, "stdio: dup2 to %d", i);
	for (int i = 0; i < 3; i++)
		close(high[i]);
}

/*
 * init is a copy of the caller, command line included, and the module can
 * read /proc/1/cmdline. Overwrite the caller's argument and environment
 * strings in init's own (copy-on-write) memory with a fixed name, so
 * neither the caller's argv nor its path shows through. (Changing the
 * ranges with PR_SET_MM would need CAP_SYS_RESOURCE, which containers
 * often drop; init's memory itself is unreadable once it changes uid.)
 */
static void hide_caller_identity(const struct jail_plan *plan)
{
	static const char name[] = "airlock-init";
	char stat[2048];
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, stat, sizeof(stat) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		jail_fail(plan, errno, "read /proc/self/stat");
	stat[n] = '\0';
	/* fields 48-51 (arg_start arg_end env_start env_end), counted from
	 * the state field (3) after the command name's closing ')' */
	char *p = strrchr(stat, ')');
	unsigned long range[4];
	for (int field = 2; p && field < 51; field++) {
		p = strchr(p + 1, ' ');
		if (p && field >= 47)
			range[field - 47] = strtoul(p + 1, NULL, 10);
	}
	if (!p || range[0] >= range[1] || range[2] > range[3])
		jail_fail(plan, EIO, "unreadable /proc/self/stat");
	memset((void *)range[2], 0, range[3] - range[2]);
	memset((void *)range[0], 0, range[1] - range[0]);
	memcpy((void *)range[0], name,
	       range[1] - range[0] < sizeof(name) ? range[1] - range[0] - 1
						  : sizeof(name));
	if (prctl(PR_SET_NAME, name, 0, 0, 0) < 0)
		jail_fail(plan, errno, "prctl(PR_SET_NAME)");
}

/* The working directory a request asked for, entered as the jail's user
 * (after the drop): root's chdir would pass where the module itself could
 * not, and the path is resolved inside the jail's root, where nothing of
 * the host is left. A directory that is not there is our setup error,
 * said with the path, never a verdict of the module. */
static void enter_cwd(const struct jail_plan *plan)
{
	if (plan->cwd && chdir(plan->cwd) < 0)
		jail_fail(plan, errno,
			  "cwd %.256s: the module cannot start there (it must "
			  "be a directory inside the jail that the jail's "
			  "user may enter)",
			  plan->cwd);
}

static char resolved[PLAN_PATH_MAX];

/*
 * Find the program as the jail's user, before the filter is in, so the
 * parent can tell "not found" (127) from "not executable" (126).
 */
static int find_program(const struct jail_plan *plan)
{
	if (plan->module_jail_path[0]) {
		snprintf(resolved, sizeof(resolved), "%s",
			 plan->module_jail_path);
		return access(resolved, X_OK) == 0 ? 0 : errno;
	}
	const char *path = policy_path(plan->policy);
	int first_error = ENOENT;
	while (*path) {
		size_t len = strcspn(path, ":");
		snprintf(resolved, sizeof(resolved), "%.*s/%s", (int)len, path,
			 plan->program);
		struct stat st;
		if (len && stat(resolved, &st) == 0) {
			if (S_ISREG(st.st_mode) && access(resolved, X_OK) == 0)
				return 0;
			first_error = EACCES;
		}
		path += len + (path[len] == ':');
	}
	return first_error;
}

/* Close every fd but 0-2, the sync socket and (for exec'ing the helper)
 * init_fd: the ranges between them, in order. */
static void close_other_fds(const struct jail_plan *plan)
{
	int keep[2] = { plan->sync_fd, plan->init_fd };
	if (keep[1] >= 0 && keep[1] < keep[0]) {
		keep[0] = plan->init_fd;
		keep[1] = plan->sync_fd;
	}
	unsigned int from = 3;
	for (int i = 0; i < 2; i++) {
		if (keep[i] < 3)
			continue;
		if ((unsigned int)keep[i] > from &&
		    syscall(SYS_close_range, from, keep[i] - 1, 0) < 0)
			jail_fail(plan, errno, "close_range");
		from = (unsigned int)keep[i] + 1;
	}
	if (syscall(SYS_close_range, from, ~0U, 0) < 0)
		jail_fail(plan, errno, "close_range");
}

static void report_exec_failure(const struct jail_plan *plan, int errnum)
{
	struct jail_msg m = { .type = JAIL_MSG_EXEC_FAILED, .errnum = errnum };
	snprintf(m.text, sizeof(m.text), "%.400s",
		 plan->module_jail_path[0] ? plan->module_jail_path
					   : plan->program);
	send_msg(plan->sync_fd, &m, -1);
	_exit(1);
}

/* Shared with the vfork child, which writes its execve errno here. */
static volatile int exec_errno;

/*
 * Cloned with CLONE_VM: the rest of init's work (vfork the module, reap,
 * report) is the helper's, a program of its own, so that the caller gets
 * its memory back now. The listener went to the parent already; the sync
 * socket outlives this exec (jail_init_main cleared its close-on-exec; the
 * helper closes it in the module's copy). execveat on the O_PATH fd: the
 * helper need not be inside the jail's root.
 */
__attribute__((noreturn)) static void exec_helper(const struct jail_plan *plan)
{
	plan->init_argv[2] = resolved;
	syscall(SYS_execveat, plan->init_fd, "", plan->init_argv, plan->envp,
		AT_EMPTY_PATH);
	jail_fail(plan, errno, "exec the jail's init helper (airlock-init)");
}

__attribute__((noreturn)) static void run_module(const struct jail_plan *plan)
{
	exec_errno = 0;
	pid_t pid = vfork();
	if (pid == 0) {
		/* its own session: no terminal, no signals to init's group */
		setsid();
		execve(resolved, plan->argv, plan->envp);
		exec_errno = errno;
		_exit(127);
	}
	if (pid < 0)
		jail_fail(plan, errno, "vfork");
	if (exec_errno)
		report_exec_failure(plan, exec_errno);
	send_simple(plan->sync_fd, JAIL_MSG_STARTED, 0, 0);
	/* As pid 1, reap every orphan until the module itself exits; then
	 * the kernel kills whatever is left of the run. */
	for (;;) {
		int status;
		pid_t done = wait4(-1, &status, __WALL, NULL);
		if (done == pid) {
			send_simple(plan->sync_fd, JAIL_MSG_EXITED, 0, status);
			_exit(0);
		}
		if (done < 0 && errno != EINTR)
			_exit(1);
	}
}

void jail_init_main(const struct jail_plan *plan)
{
	/* Tie the run to its parent: if the caller dies, so does the jail. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		jail_fail(plan, errno, "prctl(PR_SET_PDEATHSIG)");
	reset_signals(plan);
	/* Under CLONE_VM this memory is the caller's own; the helper's exec
	 * replaces init's image, caller's command line included. */
	if (plan->init_fd < 0)
		hide_caller_identity(plan);
	wait_for_id_maps(plan);
	join_cgroup(plan);
	setup_stdio(plan);
	/* Everything else the caller had open goes now, before the open-files
	 * rlimit: a supervisor with many runs holds many fds, and they are
	 * none of the jail's business. (The module and bind sources are
	 * opened again by path in the jail's own mount namespace.) */
	close_other_fds(plan);
	jail_build_root(plan);
	jail_verify_mounts(plan);
	const char *host = policy_hostname(plan->policy);
	if (sethostname(host, strlen(host)) < 0)
		jail_fail(plan, errno, "sethostname");
	jail_setup_network(plan);
	jail_set_rlimits(plan);
	if (setsid() < 0)
		jail_fail(plan, errno, "setsid");
	jail_drop_privileges(plan);
	jail_verify_privileges(plan);
	enter_cwd(plan);
	int exec_error = find_program(plan);
	if (exec_error)
		report_exec_failure(plan, exec_error);
	/* before the filter, which allows no fcntl of its own */
	if (plan->init_fd >= 0 && fcntl(plan->sync_fd, F_SETFD, 0) < 0)
		jail_fail(plan, errno, "init helper: keep the sync socket");
	int listener = jail_load_filter(plan);
	struct jail_msg m = { .type = JAIL_MSG_LISTENER };
	send_msg(plan->sync_fd, &m, listener);
	close(listener);
	if (plan->init_fd >= 0)
		exec_helper(plan);
	run_module(plan);
}
