/*
 * Starting a run: check the module on the host, create the cgroup, the
 * pipes and the sync socket, clone3() the jail's init into its namespaces.
 *
 * A run that cannot start still comes back as a run: finished at once, with
 * a setup_error result saying why (exit 125, or 126/127 for a module that
 * is not executable or not there). Callers handle one shape of outcome.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/run_internal.h"

#define JAIL_NAMESPACES                                                        \
	(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC |            \
	 CLONE_NEWUTS)

static void setup_fail(struct sandbox_run *run, int exit_status,
		       const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void setup_fail(struct sandbox_run *run, int exit_status,
		       const char *fmt, ...)
{
	char msg[AL_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sandbox_result_setup_error(&run->result, exit_status, msg);
	run->finished = true;
}

/* Open the module on the host and decide what it is before any jail is
 * built: a missing module is 127, anything not executable 126. */
static int open_module(struct sandbox_run *run, const char *program)
{
	struct stat st;
	int fd = open(program, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		bool dangling = errno == ENOENT && lstat(program, &st) == 0;
		setup_fail(run, errno == ENOENT ? 127 : 126, "module %s: %s%s",
			   program, strerror(errno),
			   dangling ? " (a symbolic link to nothing)" : "");
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    !(st.st_mode & 0111)) {
		setup_fail(run, 126, "module %s: %s", program,
			   S_ISDIR(st.st_mode) ? "is a directory"
			   : !S_ISREG(st.st_mode)
				   ? "is not a regular file"
				   : "is not executable (no x bit)");
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * A bundle's directory and its entry point, checked on the host: the
 * entry is looked up beneath the directory only, never through a link
 * (the store's trees hold none), and must be an executable file.
 */
static int open_workdir(struct sandbox_run *run, const char *dir,
			const char *entry)
{
	struct open_how how = {
		.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS,
	};
	struct stat st;
	int fd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		setup_fail(run, errno == ENOENT ? 127 : 126, "bundle %s: %s",
			   dir, strerror(errno));
		return -1;
	}
	if (!entry)
		return fd;
	int efd = (int)syscall(SYS_openat2, fd, entry, &how, sizeof(how));
	if (efd < 0 || fstat(efd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    !(st.st_mode & 0111)) {
		int e = efd < 0 ? errno : 0;
		setup_fail(run, e == ENOENT ? 127 : 126, "bundle entry %s: %s",
			   entry,
			   e                      ? strerror(e)
			   : !S_ISREG(st.st_mode) ? "is not a regular file"
						  : "is not executable (no x "
						    "bit in the archive)");
		if (efd >= 0)
			close(efd);
		close(fd);
		return -1;
	}
	close(efd);
	return fd;
}

/*
 * The module's argv, and the program name, copied into one block the run
 * owns: init overwrites whatever of the caller's memory held its own
 * command line (child.c), where a CLI's arguments usually live.
 */
static int build_argv(struct sandbox_run *run, const char *argv0,
		      const char *program, char *const *args)
{
	size_t n = 0, bytes = strlen(argv0) + strlen(program) + 2;
	while (args && args[n])
		bytes += strlen(args[n++]) + 1;
	run->argv = calloc(1, (n + 2) * sizeof(char *) + bytes);
	if (!run->argv)
		return -1;
	char *strings = (char *)(run->argv + n + 2);
	run->argv[0] = strings;
	strings = stpcpy(strings, argv0) + 1;
	for (size_t i = 0; i < n; i++) {
		run->argv[i + 1] = strings;
		strings = stpcpy(strings, args[i]) + 1;
	}
	run->program = strcpy(strings, program);
	return 0;
}

/* The helper's command line (sandbox/init/init.c): SYNC_FD PATH NAME and
 * the module's argv; PATH ([2]) is filled in by init once it resolved it. */
static char **build_init_argv(struct sandbox_run *run, int sync_fd,
			      const char *name)
{
	size_t n = 0;
	while (run->argv[n])
		n++;
	char **v = calloc(n + 5, sizeof(char *));
	if (!v)
		return NULL;
	snprintf(run->init_sync_text, sizeof(run->init_sync_text), "%d",
		 sync_fd);
	v[0] = "airlock-init";
	v[1] = run->init_sync_text;
	v[2] = NULL;
	v[3] = (char *)name;
	for (size_t i = 0; i < n; i++)
		v[4 + i] = run->argv[i];
	return v;
}

static int make_capture(struct sandbox_run *run, struct capture *c,
			int *child_end)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	c->fd = fds[0];
	*child_end = fds[1];
	return 0;
}

/* The fds the plan passes must not sit on 0, 1 or 2, which init is about
 * to overwrite with the module's stdio. */
static int above_stdio(int fd)
{
	if (fd < 0 || fd > 2)
		return fd;
	int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return moved;
}

static int init_entry(void *plan)
{
	jail_init_main(plan);
}

/*
 * With the airlock-init helper: clone(CLONE_VM | CLONE_VFORK), as
 * posix_spawn does. No page tables are copied and, above all, no page of
 * the caller is left copy-on-write: after a fork every page the caller
 * (airlockd: heap, SQLite's cache) or init writes costs a fault, a copy
 * and a TLB flush on this VM, most of a daemon run's CPU (perf, see
 * docs/benchmarks.md). The caller is suspended until init execs the
 * helper or exits; every signal stays blocked meanwhile, so no handler of
 * the caller's runs in init on the shared memory.
 */
static pid_t clone_jail_vm(struct sandbox_host *host, struct jail_plan *plan,
			   int *pidfd)
{
	void *stack = host_clone_stack(host);
	if (!stack)
		return -1;
	sigset_t all, old;
	sigfillset(&all);
	if (sigprocmask(SIG_SETMASK, &all, &old) < 0)
		return -1;
	pid_t pid = clone(init_entry, stack,
			  JAIL_NAMESPACES | CLONE_VM | CLONE_VFORK |
				  CLONE_PIDFD | SIGCHLD,
			  plan, pidfd);
	int saved = errno;
	(void)sigprocmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return pid;
}

static pid_t clone_jail(int *pidfd, bool userns)
{
	struct clone_args args = {
		.flags = JAIL_NAMESPACES | CLONE_PIDFD |
			 (userns ? CLONE_NEWUSER : 0),
		.pidfd = (uint64_t)(uintptr_t)pidfd,
		.exit_signal = SIGCHLD,
	};
	/* no glibc wrapper for clone3 in Debian 12 */
	return (pid_t)syscall(SYS_clone3, &args, sizeof(args));
}

static int prepare_io(struct sandbox_run *run, const struct sandbox_spec *spec,
		      int child_stdio[3], int sync[2])
{
	child_stdio[0] = spec->stdin_fd >= 0 ? spec->stdin_fd
					     : run->host->dev_null_fd;
	child_stdio[1] = spec->stdout_fd;
	child_stdio[2] = spec->stderr_fd;
	if (spec->stdout_fd < 0 &&
	    make_capture(run, &run->out, &child_stdio[1]) < 0)
		return -1;
	if (spec->stderr_fd < 0 &&
	    make_capture(run, &run->err, &child_stdio[2]) < 0)
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sync) < 0)
		return -1;
	sync[0] = above_stdio(sync[0]);
	sync[1] = above_stdio(sync[1]);
	if (sync[0] < 0 || sync[1] < 0)
		return -1;
	run->epfd = epoll_create1(EPOLL_CLOEXEC);
	run->timer_fd = timerfd_create(CLOCK_MONOTONIC,
				       TFD_CLOEXEC | TFD_NONBLOCK);
	return run->epfd < 0 || run->timer_fd < 0 ? -1 : 0;
}

static int arm_deadline(struct sandbox_run *run, uint64_t timeout_us)
{
	struct itimerspec its = {
		.it_value = { .tv_sec = (time_t)(timeout_us / 1000000),
			      .tv_nsec = (long)(timeout_us % 1000000) * 1000 },
	};
	if (timerfd_settime(run->timer_fd, 0, &its, NULL) < 0)
		return -1;
	if (run_watch(run, run->pidfd, TAG_PID) < 0 ||
	    run_watch(run, run->sync_fd, TAG_SYNC) < 0 ||
	    run_watch(run, run->timer_fd, TAG_TIMER) < 0)
		return -1;
	if (run->out.fd >= 0 && run_watch(run, run->out.fd, TAG_OUT) < 0)
		return -1;
	if (run->err.fd >= 0 && run_watch(run, run->err.fd, TAG_ERR) < 0)
		return -1;
	return 0;
}

static void close_child_ends(const struct sandbox_spec *spec,
			     int child_stdio[3], int *sync_child)
{
	if (spec->stdout_fd < 0)
		al_closep(&child_stdio[1]);
	if (spec->stderr_fd < 0)
		al_closep(&child_stdio[2]);
	al_closep(sync_child);
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	int saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/*
 * Rootless: map the caller's uid and gid (and nothing else) to the jail's
 * user inside the new user namespace, then let init go on. setgroups is
 * denied first, as the kernel requires of an unprivileged writer; the
 * caller's supplementary groups stay what they are on the host, and inside
 * show as the overflow group.
 */
static int map_ids(struct sandbox_run *run, const struct policy_limits *l)
{
	char path[64], map[64];
	snprintf(path, sizeof(path), "/proc/%d/uid_map", run->pid);
	snprintf(map, sizeof(map), "%u %u 1\n", l->uid, run->host->uid);
	if (write_file(path, map) < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/setgroups", run->pid);
	if (write_file(path, "deny") < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/gid_map", run->pid);
	snprintf(map, sizeof(map), "%u %u 1\n", l->gid, run->host->gid);
	if (write_file(path, map) < 0)
		return -1;
	char go = 1;
	return send(run->sync_fd, &go, 1, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

/* No cgroup to hold the limits: refuse unless the policy accepts that. */
static bool cgroup_available(struct sandbox_run *run,
			     const struct policy_limits *limits)
{
	if (run->host->cgroup.ops)
		return true;
	if (limits->limits_mode == POLICY_LIMITS_BEST_EFFORT) {
		run->result.cgroup_limits_missing = true;
		return true;
	}
	setup_fail(run, 125,
		   "the memory, pids and CPU limits need a cgroup, and this "
		   "user has none (%s); run as root, delegate a cgroup v2 "
		   "subtree to this user, or accept running without these "
		   "limits with --limits best-effort",
		   run->host->cgroup_error);
	return false;
}

/* Who the run is on the host: a uid of its own from the range (root), the
 * policy's (root, range none) or the caller's (rootless). */
static int choose_host_ids(struct sandbox_run *run,
			   const struct policy_limits *limits)
{
	struct sandbox_host *host = run->host;
	struct al_error err = { 0 };
	struct sandbox_result *r = &run->result;
	if (!host->root) {
		r->host_uid = host->uid;
		r->host_gid = host->gid;
	} else if (host->uids.count == 0) {
		r->host_uid = limits->uid;
		r->host_gid = limits->gid;
	} else if (uid_pool_acquire(&host->uids, &r->host_uid,
				    &run->uid_lock_fd, &err) < 0) {
		setup_fail(run, 125, "%s", err.msg);
		return -1;
	} else {
		r->host_gid = r->host_uid;
	}
	return 0;
}

static void launch(struct sandbox_run *run, const struct sandbox_spec *spec,
		   int module_fd)
{
	struct sandbox_host *host = run->host;
	/* the run's own copy: what the jail is held to and what its result
	 * says it was held to */
	const struct policy_limits *limits = &run->result.limits;
	struct al_error err = { 0 };
	int child_stdio[3] = { -1, -1, -1 }, sync[2] = { -1, -1 };
	char name[64];

	cgroup_run_name(host, name, sizeof(name));
	if (!cgroup_available(run, limits) || choose_host_ids(run, limits) < 0)
		goto out;
	if (host->cgroup.ops &&
	    host->cgroup.ops->create(&host->cgroup, name, limits, &run->cg,
				     &err) < 0) {
		setup_fail(run, 125, "%s", err.msg);
		goto out;
	}
	if (prepare_io(run, spec, child_stdio, sync) < 0) {
		setup_fail(run, 125, "jail setup: %s", strerror(errno));
		goto out;
	}
	struct jail_plan plan = {
		.policy = spec->policy,
		.limits = limits,
		.filter = spec->filter,
		.sync_fd = sync[1],
		.stdio = { child_stdio[0], child_stdio[1], child_stdio[2] },
		.module_fd = module_fd,
		.module_host_path = spec->workdir ? spec->workdir
						  : run->program,
		.module_is_dir = spec->workdir != NULL,
		.module_writable = spec->workdir && spec->workdir_writable,
		.program = run->program,
		.argv = run->argv,
		.envp = spec->envp ? spec->envp : policy_environ(spec->policy),
		.cwd = spec->cwd,
		.cgroup = &run->cg,
		.userns = !host->root,
		.run_ids = run->uid_lock_fd >= 0,
		.run_uid = run->result.host_uid,
		.run_gid = run->result.host_gid,
		.learn = spec->learner != NULL,
		.init_fd = -1,
	};
	struct stat st;
	if (module_fd >= 0 && fstat(module_fd, &st) == 0) {
		plan.module_dev = st.st_dev;
		plan.module_ino = st.st_ino;
	}
	snprintf(plan.module_jail_path, sizeof(plan.module_jail_path), "%s",
		 run->module_path);
	/* a learning run stays forked: init waits for the parent to register
	 * the jail with the learner, which a suspended parent cannot do */
	if (host_helper_usable(host) && !spec->learner) {
		/* strings the run owns: the array outlives this frame */
		run->init_argv = build_init_argv(run, plan.sync_fd,
						 run->module_path[0]
							 ? run->module_path
							 : run->program);
		if (!run->init_argv) {
			setup_fail(run, 125, "jail setup: out of memory");
			goto out;
		}
		plan.init_fd = host->init_fd;
		plan.init_argv = run->init_argv;
	}
	clock_gettime(CLOCK_MONOTONIC, &run->t0);
	if (plan.init_fd >= 0) {
		run->pid = clone_jail_vm(host, &plan, &run->pidfd);
	} else {
		run->pid = clone_jail(&run->pidfd, !host->root);
		if (run->pid == 0)
			jail_init_main(&plan);
	}
	if (run->pid < 0) {
		setup_fail(
			run, 125,
			"jail setup: clone3 into new namespaces: %s%s",
			strerror(errno),
			errno == EPERM || errno == ENOSPC
				? " (run as root, or allow unprivileged user "
				  "namespaces: sysctl user.max_user_namespaces)"
				: "");
		goto out;
	}
	run->sync_fd = steal_fd(&sync[0]);
	/* the parent keeps no write end: EOF on the pipes means the run is
	 * gone, not that we still hold a copy */
	close_child_ends(spec, child_stdio, &sync[1]);
	if (spec->learner && learn_run_begin(run, spec->learner) == 0 &&
	    host->root && send(run->sync_fd, "", 1, MSG_NOSIGNAL) != 1)
		run_fail(run, "jail setup: cannot release the jail's init");
	if (!host->root && map_ids(run, limits) < 0) {
		char msg[256];
		snprintf(msg, sizeof(msg),
			 "jail setup: map the caller's uid and gid into the "
			 "user namespace: %s",
			 strerror(errno));
		run_fail(run, msg);
	}
	if (arm_deadline(run, limits->timeout_us) < 0)
		run_fail(run, "jail setup: cannot watch the run");
out:
	close_child_ends(spec, child_stdio, &sync[1]);
	al_closep(&sync[0]);
	if (run->pid <= 0)
		uid_pool_release(&run->uid_lock_fd);
}

/* /module/NAME inside the jail, NAME the spec's program_name or the host
 * file's own name, as tracebacks and $0 show it. Sanitized: anything but
 * [A-Za-z0-9._-] becomes '_', and a name that would be empty, "." or ".."
 * (or start with '.', hidden) is prefixed, so it is always one plain file
 * name under /module. */
static void jail_module_path(struct sandbox_run *run,
			     const struct sandbox_spec *spec)
{
	const char *name = spec->program_name;
	char clean[128];
	size_t n = 0;

	if (!name || !*name)
		name = strrchr(spec->program, '/') + 1;
	for (; *name && n + 1 < sizeof(clean); name++) {
		char c = *name;
		bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || c == '.' || c == '_' ||
			     c == '-';
		clean[n++] = plain ? c : '_';
	}
	clean[n] = '\0';
	snprintf(run->module_path, sizeof(run->module_path), "/module/%s%s",
		 n == 0 || clean[0] == '.' ? "module" : "", clean);
}

int sandbox_start(struct sandbox_host *host, const struct sandbox_spec *spec,
		  struct sandbox_run **out, struct al_error *err)
{
	struct sandbox_run *run = calloc(1, sizeof(*run));
	if (!run)
		return al_error_sys(err, ENOMEM, "sandbox: start");
	run->host = host;
	run->epfd = run->pidfd = run->sync_fd = run->timer_fd = -1;
	run->notify_fd = run->uid_lock_fd = -1;
	cgroup_run_init(&run->cg);
	run->result.limits = spec->limits ? *spec->limits
					  : *policy_limits(spec->policy);
	run->result.limits_known = true;
	capture_init(&run->out, run->result.limits.stdout_max);
	capture_init(&run->err, run->result.limits.stderr_max);
	*out = run;

	int module_fd = -1;
	const char *argv0 = spec->program;
	if (!spec->program || !spec->program[0]) {
		setup_fail(run, 127, "no module given");
		return 0;
	}
	if (spec->workdir) {
		module_fd = above_stdio(
			open_workdir(run, spec->workdir, spec->entry));
		if (module_fd < 0)
			return 0;
		if (spec->entry) {
			snprintf(run->module_path, sizeof(run->module_path),
				 BUNDLE_JAIL_DIR "/%s", spec->entry);
			argv0 = run->module_path;
		}
	} else if (strchr(spec->program, '/')) {
		module_fd = above_stdio(open_module(run, spec->program));
		if (module_fd < 0)
			return 0;
		jail_module_path(run, spec);
		argv0 = run->module_path;
	}
	if (build_argv(run, argv0, spec->program, spec->args) < 0)
		setup_fail(run, 125, "jail setup: out of memory");
	else
		launch(run, spec, module_fd);
	al_closep(&module_fd);
	return 0;
}

int sandbox_run_fd(const struct sandbox_run *run)
{
	return run->epfd;
}

const struct sandbox_result *sandbox_run_result(const struct sandbox_run *run)
{
	return &run->result;
}

int sandbox_run_pid(const struct sandbox_run *run)
{
	return run->pid;
}

uint32_t sandbox_run_host_uid(const struct sandbox_run *run)
{
	return run->result.host_uid;
}

void sandbox_run_cancel(struct sandbox_run *run, const char *why)
{
	char msg[256];
	if (run->finished)
		return;
	snprintf(msg, sizeof(msg), "cancelled: %s", why);
	run_fail(run, msg);
}

void sandbox_result_release(struct sandbox_result *r)
{
	free(r->stdout_data);
	free(r->stderr_data);
	r->stdout_data = r->stderr_data = NULL;
}

void sandbox_run_free(struct sandbox_run *run)
{
	if (!run)
		return;
	if (run->pidfd >= 0 && !run->reaped) {
		run_kill_init(run);
		siginfo_t si;
		(void)waitid(P_PIDFD, (id_t)run->pidfd, &si, WEXITED | __WALL);
	}
	learn_run_end(run);
	uid_pool_release(&run->uid_lock_fd);
	if (run->cg.n > 0)
		run->host->cgroup.ops->destroy(&run->host->cgroup, &run->cg);
	cgroup_run_close(&run->cg);
	al_closep(&run->out.fd);
	al_closep(&run->err.fd);
	al_closep(&run->notify_fd);
	al_closep(&run->timer_fd);
	al_closep(&run->sync_fd);
	al_closep(&run->pidfd);
	al_closep(&run->epfd);
	free(run->out.buf);
	free(run->err.buf);
	sandbox_result_release(&run->result);
	free(run->argv);
	free(run->init_argv);
	free(run);
}

int sandbox_run(struct sandbox_host *host, const struct sandbox_spec *spec,
		struct sandbox_result *result)
{
	struct sandbox_run *run = NULL;
	struct al_error err = { 0 };
	memset(result, 0, sizeof(*result));
	if (sandbox_start(host, spec, &run, &err) < 0) {
		sandbox_result_setup_error(result, 125, err.msg);
		return 0;
	}
	/* a failing poll cancels the run (kills it), which still ends in a
	 * reaped init and a result */
	while (!sandbox_run_step(run)) {
		struct pollfd pfd = { .fd = sandbox_run_fd(run),
				      .events = POLLIN };
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			sandbox_run_cancel(run, strerror(errno));
	}
	sandbox_run_take_result(run, result);
	sandbox_run_free(run);
	return 0;
}

void sandbox_run_take_result(struct sandbox_run *run,
			     struct sandbox_result *out)
{
	*out = run->result;
	run->result.stdout_data = run->result.stderr_data = NULL;
}
