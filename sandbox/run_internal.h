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
	pid_t pid;
	bool started, finished, reaped;
	struct timespec t0;
	struct rusage rusage;
	uint64_t cpu_limit_us;
	char **argv; /* argv and program: one allocation */
	char **init_argv; /* the helper's, pointing into argv; or NULL */
	char init_sync_text[16];
	const char *program;
	char module_path[PLAN_PATH_MAX];
};

void capture_init(struct capture *c, uint64_t max);
int watch(struct sandbox_run *run, int fd, enum watch_tag tag);
void unwatch(struct sandbox_run *run, int *fd);
void kill_init(struct sandbox_run *run);
/* Mark the run as a setup error and kill what was started. */
void fail_run(struct sandbox_run *run, const char *msg);

#endif
