/*
 * The parent's side of a run: prepare, clone, watch, finish.
 *
 * One epoll fd per run holds the pidfd of the jail's init, the sync socket,
 * a timerfd for the deadline, the two output pipes and, once init passed
 * it, the seccomp listener. sandbox_run_step() handles what is ready and
 * never blocks, so a caller's own event loop can watch many runs through
 * their single fds.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/run_internal.h"

static double ms_since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) * 1e3 +
	       (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

void capture_init(struct capture *c, uint64_t max)
{
	*c = (struct capture){ .fd = -1, .max = max };
}

int run_watch(struct sandbox_run *run, int fd, enum watch_tag tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };
	return epoll_ctl(run->epfd, EPOLL_CTL_ADD, fd, &ev);
}

void run_unwatch(struct sandbox_run *run, int *fd)
{
	if (*fd < 0)
		return;
	(void)epoll_ctl(run->epfd, EPOLL_CTL_DEL, *fd, NULL);
	al_closep(fd);
}

void run_kill_init(struct sandbox_run *run)
{
	if (run->pidfd >= 0 && !run->reaped)
		(void)syscall(SYS_pidfd_send_signal, run->pidfd, SIGKILL, NULL,
			      0);
}

void run_fail(struct sandbox_run *run, const char *msg)
{
	if (!run->vin.setup_failed)
		snprintf(run->result.error, sizeof(run->result.error), "%s",
			 msg);
	run->vin.setup_failed = true;
	run_kill_init(run);
}

/* ------------------------------------------------------------ output */

/* Keep up to `max` bytes; read and drop the rest so the module never
 * blocks on a full pipe and the caller's memory stays bounded. */
static void capture_read(struct sandbox_run *run, struct capture *c)
{
	static char sink[65536];
	for (;;) {
		char *dst = sink;
		size_t room = sizeof(sink);
		if (c->len < c->max) {
			if (c->cap - c->len < 4096 && c->cap < c->max + 1) {
				size_t ncap = c->cap ? c->cap * 2 : 16384;
				if (ncap > c->max + 1)
					ncap = c->max + 1;
				char *grown = realloc(c->buf, ncap);
				if (!grown) {
					c->truncated = true;
					c->max = c->len;
					continue;
				}
				c->buf = grown;
				c->cap = ncap;
			}
			dst = c->buf + c->len;
			room = c->cap - 1 - c->len;
			if (room > c->max - c->len)
				room = c->max - c->len;
		}
		ssize_t n = read(c->fd, dst, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			run_unwatch(run, &c->fd);
			return;
		}
		if (dst == sink)
			c->truncated = true;
		else
			c->len += (size_t)n;
	}
}

/* ----------------------------------------------------------- messages */

static int recv_msg(int fd, struct jail_msg *m, int *passed_fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	*passed_fd = -1;
	ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n <= 0)
		return n == 0 ? 0 : -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
		memcpy(passed_fd, CMSG_DATA(c), sizeof(int));
	if ((size_t)n != sizeof(*m)) {
		al_closep(passed_fd);
		errno = EPROTO;
		return -1;
	}
	m->text[sizeof(m->text) - 1] = '\0';
	return 1;
}

/* The filter is in once the listener arrives; read back from the kernel
 * that init runs in seccomp filter mode with no_new_privs and, with a
 * uid of its own, as that uid and gid on the host. */
static const char *init_confirmed(struct sandbox_run *run)
{
	char path[64], status[8192], ids[96];
	snprintf(path, sizeof(path), "/proc/%d/status", run->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return "cannot read the jail's /proc status";
	ssize_t n = read(fd, status, sizeof(status) - 1);
	close(fd);
	if (n <= 0)
		return "cannot read the jail's /proc status";
	status[n] = '\0';
	if (!strstr(status, "\nSeccomp:\t2\n") ||
	    !strstr(status, "\nNoNewPrivs:\t1\n"))
		return "the kernel does not report seccomp filter mode with "
		       "no_new_privs for the jail";
	const struct sandbox_result *r = &run->result;
	snprintf(ids, sizeof(ids),
		 "\nUid:\t%u\t%u\t%u\t%u\nGid:\t%u\t%u\t%u\t%u\n", r->host_uid,
		 r->host_uid, r->host_uid, r->host_uid, r->host_gid,
		 r->host_gid, r->host_gid, r->host_gid);
	if (run->uid_lock_fd >= 0 && !strstr(status, ids))
		return "the jail's init is not the run's host uid and gid";
	return NULL;
}

static void on_listener(struct sandbox_run *run, int fd)
{
	char msg[160];
	const char *why;
	if (fd < 0) {
		run_fail(run,
			 "jail setup: the seccomp listener did not arrive");
		return;
	}
	run->notify_fd = fd;
	if (run_watch(run, fd, TAG_NOTIFY) < 0) {
		run_fail(run, "jail setup: cannot watch the seccomp listener");
	} else if ((why = init_confirmed(run))) {
		snprintf(msg, sizeof(msg), "jail setup: %s", why);
		run_fail(run, msg);
	}
}

static void on_message(struct sandbox_run *run, const struct jail_msg *m,
		       int fd)
{
	struct sandbox_result *r = &run->result;
	switch (m->type) {
	case JAIL_MSG_ERROR:
		run->vin.setup_failed = true;
		snprintf(r->error, sizeof(r->error), "jail setup: %s%s%s",
			 m->text, m->errnum ? ": " : "",
			 m->errnum ? strerror(m->errnum) : "");
		break;
	case JAIL_MSG_LISTENER:
		on_listener(run, fd);
		fd = -1;
		break;
	case JAIL_MSG_EXEC_FAILED:
		run->vin.exec_errno = m->errnum ? m->errnum : ENOEXEC;
		snprintf(r->error, sizeof(r->error),
			 "cannot execute %s inside the jail: %s", m->text,
			 strerror(run->vin.exec_errno));
		break;
	case JAIL_MSG_STARTED: run->started = true; break;
	case JAIL_MSG_EXITED:
		run->vin.have_status = true;
		run->vin.status = m->value;
		break;
	default: run_fail(run, "jail setup: unknown message from the jail");
	}
	al_closep(&fd);
}

static void drain_sync(struct sandbox_run *run)
{
	while (run->sync_fd >= 0) {
		struct jail_msg m;
		int fd;
		int rc = recv_msg(run->sync_fd, &m, &fd);
		if (rc < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (rc <= 0) {
			run_unwatch(run, &run->sync_fd);
			return;
		}
		on_message(run, &m, fd);
	}
}

/* ------------------------------------------------------------ seccomp */

static void on_notification(struct sandbox_run *run)
{
	struct seccomp_notif req;
	/* zeroed before each receive, or the kernel answers EINVAL */
	memset(&req, 0, sizeof(req));
	if (ioctl(run->notify_fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
		if (errno != EINTR && errno != ENOENT)
			run_unwatch(run, &run->notify_fd);
		return;
	}
	if (run->vin.seccomp_denied || run->vin.setup_failed)
		return;
	char name[64];
	seccomp_syscall_name(req.data.arch, req.data.nr, name, sizeof(name));
	/* The module may trap before init's "started" message is read, so
	 * who made the call is told by its pid, not by the order of events:
	 * init's own denial is our bug, not the module's violation. */
	if ((pid_t)req.pid == run->pid) {
		char msg[160];
		snprintf(msg, sizeof(msg),
			 "jail setup: the jail's init made a call the filter "
			 "denies (%s)",
			 name);
		run_fail(run, msg);
		return;
	}
	snprintf(run->result.syscall, sizeof(run->result.syscall), "%s", name);
	run->vin.seccomp_denied = true;
	run_kill_init(run);
}

/* ------------------------------------------------- usage without cgroup */

/* One process's CPU (its own and its reaped children's, clock ticks) and
 * peak RSS (kB), from /proc; 0 when it is gone. */
static void proc_usage(pid_t pid, unsigned long long *ticks,
		       unsigned long long *hwm_kb)
{
	char path[64], buf[2048];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	al_closep(&fd);
	if (n > 0) {
		buf[n] = '\0';
		/* fields 14-17 (utime stime cutime cstime) follow the last ')' */
		char *p = strrchr(buf, ')');
		for (int field = 2; p && field < 14; field++)
			p = strchr(p + 1, ' ');
		unsigned long long v[4] = { 0 };
		if (p && sscanf(p + 1, "%llu %llu %llu %llu", &v[0], &v[1],
				&v[2], &v[3]) == 4)
			*ticks += v[0] + v[1] + v[2] + v[3];
	}
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	al_closep(&fd);
	char *hwm = n > 0 ? (buf[n] = '\0', strstr(buf, "VmHWM:")) : NULL;
	unsigned long long kb;
	if (hwm && sscanf(hwm + 6, "%llu", &kb) == 1 && kb > *hwm_kb)
		*hwm_kb = kb;
}

/*
 * Without a cgroup, the run's usage is init's rusage, which covers only
 * the processes init reaped. At the deadline the rest are killed with the
 * pid namespace and nobody reaps them, so their usage is read here, from
 * /proc, just before the kill: init's descendants, breadth first, through
 * each task's children list (bounded).
 */
static void sample_live_usage(struct sandbox_run *run)
{
	enum { MAX_PROCS = 4096 };
	pid_t *queue = malloc(MAX_PROCS * sizeof(*queue));
	if (!queue)
		return;
	size_t head = 0, tail = 0;
	queue[tail++] = run->pid;
	unsigned long long ticks = 0, hwm = 0;
	while (head < tail) {
		pid_t pid = queue[head++];
		if (pid != run->pid)
			proc_usage(pid, &ticks, &hwm);
		char path[64], buf[4096];
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children",
			 (int)pid, (int)pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		al_closep(&fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		for (char *p = buf, *end; tail < MAX_PROCS; p = end) {
			long child = strtol(p, &end, 10);
			if (end == p)
				break;
			if (child > 0)
				queue[tail++] = (pid_t)child;
		}
	}
	free(queue);
	long hz = sysconf(_SC_CLK_TCK);
	run->live_cpu_ms = hz > 0 ? (double)ticks * 1000.0 / (double)hz : 0;
	run->live_peak_bytes = hwm * 1024;
}

/* ------------------------------------------------------------- finish */

/* wait4 rather than waitid on the pidfd: its rusage covers init and every
 * process init reaped, which is the whole run, for hosts without cgroup
 * accounting (rootless). */
static void reap(struct sandbox_run *run)
{
	int status;
	/* Messages first: the listener's check reads init's /proc entry,
	 * which is gone once init is reaped. (Init clone'd with CLONE_VFORK
	 * lets the caller go only at its exec, so a quick module may be over
	 * before the caller looks at the socket.) */
	drain_sync(run);
	pid_t pid = wait4(run->pid, &status, WNOHANG | __WALL, &run->rusage);
	if (pid != run->pid)
		return;
	run->reaped = true;
	run->vin.init_reaped = true;
	run->vin.init_code = WIFEXITED(status) ? CLD_EXITED : CLD_KILLED;
	run->vin.init_status = WIFEXITED(status) ? WEXITSTATUS(status)
						 : WTERMSIG(status);
}

static double timeval_ms(const struct timeval *tv)
{
	return (double)tv->tv_sec * 1e3 + (double)tv->tv_usec / 1e3;
}

static char *steal_capture(struct capture *c, size_t *len, bool *truncated)
{
	*len = c->len;
	*truncated = c->truncated;
	if (!c->buf)
		return NULL;
	c->buf[c->len] = '\0';
	return steal_ptr(&c->buf);
}

static void finish(struct sandbox_run *run)
{
	struct sandbox_result *r = &run->result;
	drain_sync(run);
	/* init is reaped only after every process of its pid namespace is
	 * gone, so no writer is left: the pipes drain to EOF. */
	if (run->out.fd >= 0)
		capture_read(run, &run->out);
	if (run->err.fd >= 0)
		capture_read(run, &run->err);
	learn_run_end(run);
	/* init reaped: no process of the run is left to hold its uid */
	uid_pool_release(&run->uid_lock_fd);
	struct cgroup_stats st = { 0 };
	if (run->cg.n > 0) {
		run->host->cgroup.ops->stats(&run->host->cgroup, &run->cg, &st);
		run->host->cgroup.ops->destroy(&run->host->cgroup, &run->cg);
		cgroup_run_close(&run->cg);
		run->cg.n = 0;
	}
	run->vin.oom_kills = st.oom_kills;
	r->wall_ms = ms_since(&run->t0);
	r->cpu_ms = (double)st.cpu_ns / 1e6;
	r->peak_memory_bytes = st.peak_known ? st.peak_memory : 0;
	if (r->cgroup_limits_missing) {
		/* the largest single process, not the run's total */
		r->cpu_ms = timeval_ms(&run->rusage.ru_utime) +
			    timeval_ms(&run->rusage.ru_stime) +
			    run->live_cpu_ms;
		r->peak_memory_bytes = (uint64_t)run->rusage.ru_maxrss * 1024;
		if (run->live_peak_bytes > r->peak_memory_bytes)
			r->peak_memory_bytes = run->live_peak_bytes;
	}
	/* RLIMIT_CPU is per process, so only a run that used at least the
	 * limit can have hit it: a necessary condition, on the run's total */
	run->vin.cpu_limit_hit = r->cpu_ms * 1000.0 >=
				 (double)run->cpu_limit_us;
	r->oom_kills = st.oom_kills;
	r->pids_limit_hits = st.pids_max_hits;
	r->stdout_data = steal_capture(&run->out, &r->stdout_len,
				       &r->stdout_truncated);
	r->stderr_data = steal_capture(&run->err, &r->stderr_len,
				       &r->stderr_truncated);
	verdict_classify(&run->vin, r);
	run->finished = true;
}

bool sandbox_run_step(struct sandbox_run *run)
{
	if (run->finished)
		return true;
	struct epoll_event ev[8];
	int n = epoll_wait(run->epfd, ev, 8, 0);
	for (int i = 0; i < n; i++) {
		switch (ev[i].data.u32) {
		case TAG_SYNC: drain_sync(run); break;
		case TAG_OUT: capture_read(run, &run->out); break;
		case TAG_ERR: capture_read(run, &run->err); break;
		case TAG_NOTIFY:
			if (ev[i].events & EPOLLIN)
				on_notification(run);
			else
				run_unwatch(run, &run->notify_fd);
			break;
		case TAG_TIMER: {
			uint64_t ticks;
			if (read(run->timer_fd, &ticks, sizeof(ticks)) < 0)
				break;
			drain_sync(run); /* an exit that raced the timer */
			if (!run->vin.have_status) {
				run->vin.timed_out = true;
				if (run->cg.n == 0)
					sample_live_usage(run);
				run_kill_init(run);
			}
			run_unwatch(run, &run->timer_fd);
			break;
		}
		case TAG_PID: reap(run); break;
		}
	}
	if (run->reaped)
		finish(run);
	return run->finished;
}

void sandbox_run_usage(struct sandbox_run *run, double *elapsed_ms,
		       uint64_t *memory_bytes)
{
	struct cgroup_stats st = { 0 };

	*elapsed_ms = ms_since(&run->t0);
	*memory_bytes = 0;
	if (run->cg.n > 0 &&
	    run->host->cgroup.ops->stats(&run->host->cgroup, &run->cg, &st) ==
		    0 &&
	    st.peak_known)
		*memory_bytes = st.peak_memory;
}
