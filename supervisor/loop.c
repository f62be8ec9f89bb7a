/*
 * airlockd: theory of operation.
 *
 * Processes. One airlockd process (root), single-threaded, and for each
 * run in progress one jail: the jail's init (pid 1 of a fresh pid
 * namespace, PR_SET_PDEATHSIG=SIGKILL, so it dies with us) and the module
 * under it, both in a run cgroup run-<airlockd pid>-<n>. Nothing else is
 * forked: no thread or process per client or per run.
 *
 * File descriptors, all in one epoll set (data.ptr -> struct source):
 *   listen   the SOCK_STREAM unix socket (0660), accept4 non-blocking;
 *   signal   a signalfd for SIGTERM, SIGINT (stop) and SIGHUP (reload);
 *            those are blocked, SIGPIPE ignored;
 *   tick     a timerfd every SYSTEM_TICK_MS: retention, stale cgroups,
 *            the health self-check (health.c: the manifest answers, the
 *            socket file is still ours) and stray staging/ files
 *            (sweep.c, also at start);
 *   conn     one per client: bounded input buffer cut into NDJSON lines,
 *            bounded output buffer; EPOLLOUT only while output waits;
 *   job      one per run in progress: sandbox_run_fd(), the run's own
 *            epoll fd (pidfd, deadline timerfd, output pipes, seccomp
 *            listener) nested in ours; sandbox_run_step() never blocks;
 *   http     libmicrohttpd's epoll fd (its TCP listener and connections
 *            for /metrics, /healthz, /ready; http.c), nested likewise
 *            and run without blocking; absent when METRICS_PORT=0.
 * The epoll_wait timeout is the nearest idle-connection deadline (or the
 * shutdown deadline, or when libmicrohttpd asks to run), so nothing here
 * sleeps or polls.
 *
 * Privilege. airlockd keeps root: it builds jails, owns the state
 * directory (manifest.db, modules/, archive/, staging/) and the only
 * read-write manifest handle (an exclusive flock). Clients are identified
 * by SO_PEERCRED at accept time: uid 0 and the admin groups are admins,
 * the configured uids and groups are clients, everyone else is answered
 * "unauthorized" and dropped. Nothing a client writes names its identity.
 *
 * A request: conn.c frames a line, ops.c parses it (json.c, protocol.c),
 * checks the op's role in the dispatch table and answers at once, except
 * submit and exec, which become jobs: runs.c admits them (per-uid hourly
 * and daily quotas, quota.c; at most MAX_ACTIVE_GENERATIONS running, a
 * bounded queue), starts them (policies from policy_cache.c), and on the run's end records the verdict,
 * moves the module (validating -> active|rejected, or active -> archived
 * on a verdict the policy's archive_on lists) and answers the client if
 * it is still there.
 *
 * Crash safety lives in the manifest: opening it read-write marks runs a
 * crash left "running" as "interrupted" and finishes half-done moves;
 * start-up then rejects modules left mid-validation and removes the run
 * cgroups of dead airlockd processes. Then readiness: the "ready" log
 * line and, under systemd, READY=1 to NOTIFY_SOCKET (notify.c; STOPPING=1
 * when a stop begins). SIGTERM: stop accepting, answer
 * queued jobs "shutting_down", let running jails finish for up to 30 s,
 * kill the rest (the next start marks them interrupted), exit 0.
 */
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "supervisor/internal.h"

int loop_watch(struct supervisor *s, struct source *src, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = src };
	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, src->fd, &ev);
}

int loop_modify(struct supervisor *s, struct source *src, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = src };
	return epoll_ctl(s->epfd, EPOLL_CTL_MOD, src->fd, &ev);
}

static int signals_open(struct supervisor *s, struct al_error *err)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return al_error_sys(err, errno, "sigprocmask");
	/* a client that went away must not kill us; send() says EPIPE */
	signal(SIGPIPE, SIG_IGN);
	s->signal.kind = SRC_SIGNAL;
	s->signal.fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s->signal.fd < 0)
		return al_error_sys(err, errno, "signalfd");
	if (loop_watch(s, &s->signal, EPOLLIN) < 0)
		return al_error_sys(err, errno, "epoll_ctl");
	return 0;
}

static int ticker_open(struct supervisor *s, struct al_error *err)
{
	struct itimerspec its = { 0 };

	s->tick.kind = SRC_TICK;
	s->tick.fd = timerfd_create(CLOCK_MONOTONIC,
				    TFD_CLOEXEC | TFD_NONBLOCK);
	if (s->tick.fd < 0)
		return al_error_sys(err, errno, "timerfd_create");
	its.it_interval.tv_sec = (time_t)(s->cfg.tick_ms / 1000);
	its.it_interval.tv_nsec = (long)(s->cfg.tick_ms % 1000) * 1000000;
	its.it_value = its.it_interval;
	if (timerfd_settime(s->tick.fd, 0, &its, NULL) < 0)
		return al_error_sys(err, errno, "timerfd_settime");
	if (loop_watch(s, &s->tick, EPOLLIN) < 0)
		return al_error_sys(err, errno, "epoll_ctl");
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag,
		      struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0)
		LOG(LOG_WARN, NULL, 0, "remove %s: %s", path, strerror(errno));
	return 0;
}

/* Depth first, never following a link out of the tree. */
static void remove_made_tree(const char *dir)
{
	(void)nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

struct supervisor *supervisor_new(const struct supervisor_config *cfg,
				  struct al_error *err)
{
	struct supervisor *s = calloc(1, sizeof(*s));
	struct stat st;
	bool made_state = false;

	if (!s) {
		al_error_sys(err, ENOMEM, "airlockd");
		return NULL;
	}
	s->cfg = *cfg;
	s->epfd = s->listen.fd = s->signal.fd = s->tick.fd = -1;
	s->bundles_fd = -1;
	s->pins_fd = -1;
	s->pending_fd = -1;
	s->started_ms = now_ms();
	s->started_unix_ms = manifest_now_ms();
	log_setup(cfg->log_level, cfg->log_pretty);
	if (geteuid() != 0) {
		al_error_set(err, EPERM,
			     "airlockd must run as root: it builds jails with "
			     "real privilege and owns the state directory");
		goto fail;
	}
	s->host = sandbox_host_new(err);
	if (!s->host) {
		al_error_prefix(err, "sandbox host");
		goto fail;
	}
	struct sandbox_uid_range uids = { cfg->uid_range.base,
					  cfg->uid_range.count };
	if (sandbox_host_set_uid_range(s->host, &uids, err) < 0) {
		al_error_prefix(err, "AIRLOCK_UID_RANGE");
		goto fail;
	}
	if (preflight_policies(s, err) < 0 || http_check_address(cfg, err) < 0)
		goto fail;
	made_state = stat(cfg->state_dir, &st) < 0 && errno == ENOENT;
	char sock_dir[PATH_MAX];
	snprintf(sock_dir, sizeof(sock_dir), "%s", cfg->socket_path);
	char *slash = strrchr(sock_dir, '/');
	if (slash && slash != sock_dir)
		*slash = '\0';
	bool made_sock_dir = slash && slash != sock_dir &&
			     stat(sock_dir, &st) < 0 && errno == ENOENT;
	s->m = manifest_open_host(cfg->state_dir,
				  supervisor_config_server_url(cfg),
				  cfg->host_name, MANIFEST_READ_WRITE, err);
	if (!s->m)
		goto fail;
	/* before anything else writes: a previous airlockd's run records */
	if (outage_open(s, err) < 0)
		goto fail;
	runs_repair(s);
	fleet_beat(s);
	sweep_stale_cgroups(s);
	sweep_staging(s);
	if (runs_pins_open(s, err) < 0 || bundle_store_open(s, err) < 0)
		goto fail;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0) {
		al_error_sys(err, errno, "epoll_create1");
		goto fail;
	}
	if (signals_open(s, err) < 0 || ticker_open(s, err) < 0 ||
	    server_listen(s, err) < 0 || http_start(s, err) < 0) {
		supervisor_free(s); /* closes and unlinks the socket */
		if (made_sock_dir)
			(void)rmdir(sock_dir);
		s = NULL;
		goto fail;
	}
	return s;
fail:
	supervisor_free(s);
	/* a start that failed leaves no state directory behind that it made
	 * itself (one that was there before is never touched) */
	if (made_state)
		remove_made_tree(cfg->state_dir);
	return NULL;
}

static void on_tick(struct supervisor *s)
{
	uint64_t expirations;
	struct al_error err = { 0 };
	struct manifest_removed removed = { 0 };

	if (read(s->tick.fd, &expirations, sizeof(expirations)) < 0)
		return;
	outage_tick(s);
	/* the chores all need the manifest: none would do more than fail */
	if (manifest_unavailable(s->m) != NULL) {
		sweep_stale_cgroups(s);
		health_check(s);
		return;
	}
	if (s->cfg.retention_days &&
	    manifest_retention(s->m, s->cfg.retention_days, manifest_now_ms(),
			       &removed, &err) < 0)
		LOG(LOG_WARN, NULL, 0, "retention: %s", err.msg);
	else if (removed.modules || removed.runs)
		LOG(LOG_INFO, NULL, 0,
		    "retention removed %llu modules, %llu runs",
		    (unsigned long long)removed.modules,
		    (unsigned long long)removed.runs);
	fleet_beat(s);
	sweep_stale_cgroups(s);
	sweep_staging(s);
	bundle_store_sweep(s);
	health_check(s);
	LOG(LOG_DEBUG, NULL, 0, "tick: %u running, %u queued, %u clients",
	    s->nactive, s->nqueued, s->nconns);
}

/* Tell systemd, if it started us; its failure is logged, not fatal. */
static void notify(const char *state)
{
	struct al_error err = { 0 };
	int rc = notify_systemd(state, &err);

	if (rc < 0)
		LOG(LOG_WARN, NULL, 0, "sd_notify %s: %s", state, err.msg);
	else if (rc > 0)
		LOG(LOG_DEBUG, NULL, 0, "sd_notify %s", state);
}

static void begin_stop(struct supervisor *s, int sig)
{
	if (s->stopping)
		return;
	notify("STOPPING=1");
	s->stopping = true;
	s->stop_deadline_ms = now_ms() + (int64_t)s->cfg.shutdown_grace_ms;
	LOG(LOG_INFO, NULL, 0,
	    "%s: stopping; %u runs may finish within %llu ms", strsignal(sig),
	    s->nactive, (unsigned long long)s->cfg.shutdown_grace_ms);
	/* the socket stays open while draining: "airlock status" must say
	 * so rather than "not running"; submit and exec are refused
	 * (shutting_down) and it is closed when the last run has ended */
	runs_drop_queue(s);
}

static void on_signal(struct supervisor *s)
{
	struct signalfd_siginfo si;

	while (read(s->signal.fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			LOG(LOG_INFO, NULL, 0, "SIGHUP: reloading");
			supervisor_reload(s);
			events_note(s, "policy_reload", -1, "SIGHUP");
		} else {
			begin_stop(s, (int)si.ssi_signo);
		}
	}
}

/* `http_ms`: when libmicrohttpd must run again (-1: only on activity). */
static int wait_timeout(struct supervisor *s, int64_t http_ms)
{
	int64_t now = now_ms(), next = http_ms < 0 ? -1 : now + http_ms;

	if (s->stopping && !s->grace_over)
		next = s->stop_deadline_ms;
	int64_t waiter = results_next_deadline(s);
	if (waiter >= 0 && (next < 0 || waiter < next))
		next = waiter;
	for (struct conn *c = s->conns; c; c = c->next) {
		if (c->pending)
			continue; /* waiting for a run is not idling */
		int64_t d = (int64_t)c->last_active_ms +
			    (int64_t)s->cfg.idle_timeout_ms;
		if (next < 0 || d < next)
			next = d;
	}
	if (next < 0)
		return -1;
	return next <= now ? 0 : (int)(next - now > 60000 ? 60000 : next - now);
}

static void dispatch(struct supervisor *s, struct epoll_event *ev)
{
	struct source *src = ev->data.ptr;

	switch (src->kind) {
	case SRC_LISTEN: server_accept(s); break;
	case SRC_SIGNAL: on_signal(s); break;
	case SRC_TICK: on_tick(s); break;
	case SRC_CONN: conn_handle(s, (struct conn *)src, ev->events); break;
	case SRC_JOB: runs_handle(s, (struct job *)src); break;
	case SRC_LANG: languages_handle(s, (struct lang_probe *)src); break;
	case SRC_HTTP:
		break; /* run once per turn, after the others: see below */
	}
}

int supervisor_run(struct supervisor *s, struct al_error *err)
{
	struct epoll_event events[64];

	LOG(LOG_INFO, NULL, 0,
	    "ready: socket %s, state %s, cgroup %s, %u concurrent runs",
	    s->cfg.socket_path, s->cfg.state_dir,
	    sandbox_host_cgroup_mode(s->host), s->cfg.max_active);
	health_check(s);
	s->ready = true;
	events_note(s, "started", -1, "airlockd %s, pid %d", AIRLOCK_VERSION,
		    (int)getpid());
	notify("READY=1");
	while (!(s->stopping && s->nactive == 0)) {
		int64_t http_ms = http_timeout_ms(s);
		int n = epoll_wait(s->epfd, events, 64,
				   wait_timeout(s, http_ms));
		if (n < 0 && errno != EINTR)
			return al_error_sys(err, errno, "epoll_wait");
		/* libmicrohttpd asks to run whenever its fd is readable and
		 * after any wait it gave a timeout for (it may hold data it
		 * read already, or a connection may have timed out); each
		 * tick runs it too, so no wake-up it failed to ask for can
		 * leave it idle for longer than a tick */
		bool http_due = http_ms >= 0;
		/* an event's handler may free another event's source only
		 * through conn_close(), which defers the free to the sweep */
		for (int i = 0; i < n; i++) {
			struct source *src = events[i].data.ptr;
			http_due |= src->kind == SRC_HTTP ||
				    src->kind == SRC_TICK;
			dispatch(s, &events[i]);
		}
		if (http_due)
			http_run(s);
		results_expire(s);
		events_publish(s);
		conn_sweep_idle(s);
		/* once: the killed runs end through their own fds, so the
		 * loop then waits for those, not spinning on a past deadline */
		if (s->stopping && !s->grace_over &&
		    now_ms() >= s->stop_deadline_ms && s->nactive) {
			LOG(LOG_WARN, NULL, 0,
			    "grace period over: killing %u runs", s->nactive);
			runs_cancel_all(s, "airlockd shutting down");
			s->grace_over = true;
		}
	}
	results_stop(s);
	events_note(s, "stopped", -1, "pid %d", (int)getpid());
	events_publish(s);
	LOG(LOG_INFO, NULL, 0, "stopped");
	return 0;
}

void supervisor_free(struct supervisor *s)
{
	if (!s)
		return;
	runs_free_all(s);
	languages_free_all(s);
	while (s->conns)
		conn_close(s, s->conns);
	conn_sweep_idle(s);
	sup_policy_free_all(s);
	http_stop(s);
	if (s->listen.fd >= 0) {
		al_closep(&s->listen.fd);
		server_unlink(s);
	}
	al_closep(&s->signal.fd);
	al_closep(&s->tick.fd);
	al_closep(&s->epfd);
	al_closep(&s->bundles_fd);
	al_closep(&s->pins_fd);
	outage_free(s);
	manifest_close(s->m);
	sandbox_learner_free(s->learner);
	sandbox_host_free(s->host);
	free(s->uses);
	free(s);
}
