/* Private to sandbox/: the run object shared by spawn.c and run.c. */
#ifndef AIRLOCK_SANDBOX_RUN_INTERNAL_H
#define AIRLOCK_SANDBOX_RUN_INTERNAL_H

#include <sys/resource.h>
#include <time.h>

#include "sandbox/internal.h"

enum watch_tag { TAG_PID, TAG_SYNC, TAG_TIMER, TAG_OUT, TAG_ERR, TAG_NOTIFY };

struct capture {
	int fd;
	char *buf;
	size_t len, cap, max;
	bool truncated;
};

struct sandbox_run {
	struct sandbox_host *host;
	struct sandbox_result result;
	struct verdict_input vin;
	struct cgroup_run cg;
	struct capture out, err;
	int epfd, pidfd, sync_fd, timer_fd, notify_fd;
	int uid_lock_fd; /* holds result.host_uid for this run (uids.c) */
	pid_t pid;
	bool started, finished, reaped;
	struct timespec t0;
	struct rusage rusage;
	/* no cgroup: what the processes alive at the deadline had used */
	double live_cpu_ms;
	uint64_t live_peak_bytes;
	uint64_t cpu_limit_us;
	char **argv;      /* argv and program: one allocation */
	char **init_argv; /* the helper's, pointing into argv; or NULL */
	char init_sync_text[16];
	const char *program;
	char module_path[PLAN_PATH_MAX];
	struct sandbox_learner *learner; /* while registered (learn.c) */
	uint32_t learn_key;
};

void capture_init(struct capture *c, uint64_t max);
/* run.c: add fd to the run's own epoll set, tagged; take it out and
 * close it. */
int run_watch(struct sandbox_run *run, int fd, enum watch_tag tag);
void run_unwatch(struct sandbox_run *run, int *fd);
/* SIGKILL the jail's init (the whole pid namespace ends with it). */
void run_kill_init(struct sandbox_run *run);
/* Mark the run as a setup error and kill what was started. */
void run_fail(struct sandbox_run *run, const char *msg);
/* Learning runs (learn.c): register the jail right after clone, before
 * init may go on (fails the run on error); collect and unregister once
 * init is reaped (also safe on a run that never registered). */
int learn_run_begin(struct sandbox_run *run, struct sandbox_learner *l);
void learn_run_end(struct sandbox_run *run);

#endif
