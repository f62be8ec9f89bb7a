/*
 * cgroups: the backend choice and the file helpers both backends use.
 *
 * Hosts differ: some mount the memory controller on cgroup v1 (this
 * project's CI machines do), many production hosts are pure cgroup v2, and
 * hybrid hosts have both. The backend is chosen once, at start, by where
 * the memory controller lives; a host with neither is refused with a
 * message, never run without limits.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/internal.h"

void cgroup_run_init(struct cgroup_run *cg)
{
	memset(cg, 0, sizeof(*cg));
	for (int i = 0; i < CGROUP_MAX_DIRS; i++)
		cg->dir_fd[i] = cg->procs_fd[i] = -1;
}

void cgroup_run_close(struct cgroup_run *cg)
{
	for (int i = 0; i < CGROUP_MAX_DIRS; i++) {
		al_closep(&cg->dir_fd[i]);
		al_closep(&cg->procs_fd[i]);
	}
}

int cgroup_write(int dir_fd, const char *file, const char *value,
		 struct al_error *err)
{
	int fd = openat(dir_fd, file, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return al_error_sys(err, errno, "cgroup: open %s", file);
	size_t len = strlen(value);
	ssize_t n = write(fd, value, len);
	int saved = errno;
	close(fd);
	if (n != (ssize_t)len)
		return al_error_sys(err, n < 0 ? saved : EIO,
				    "cgroup: write \"%s\" to %s", value, file);
	return 0;
}

int cgroup_write_u64(int dir_fd, const char *file, uint64_t value,
		     struct al_error *err)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)value);
	return cgroup_write(dir_fd, file, buf, err);
}

int cgroup_read(int dir_fd, const char *file, char *buf, size_t len)
{
	int fd = openat(dir_fd, file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t used = 0;
	while (used + 1 < len) {
		ssize_t n = read(fd, buf + used, len - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	buf[used] = '\0';
	close(fd);
	return 0;
}

int cgroup_read_u64(int dir_fd, const char *file, uint64_t *out)
{
	char buf[64];
	if (cgroup_read(dir_fd, file, buf, sizeof(buf)) < 0)
		return -1;
	if (strncmp(buf, "max", 3) == 0) {
		*out = UINT64_MAX;
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(buf, &end, 10);
	if (errno || end == buf) {
		errno = EINVAL;
		return -1;
	}
	*out = v;
	return 0;
}

int cgroup_read_key(int dir_fd, const char *file, const char *key,
		    uint64_t *out)
{
	char buf[4096];
	if (cgroup_read(dir_fd, file, buf, sizeof(buf)) < 0)
		return -1;
	size_t klen = strlen(key);
	for (char *line = buf; line && *line;) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
			*out = strtoull(line + klen + 1, NULL, 10);
			return 0;
		}
		line = next;
	}
	errno = ENOENT;
	return -1;
}

int cgroup_set_checked(int dir_fd, const char *dir, const char *file,
		       uint64_t value, struct al_error *err)
{
	uint64_t back = 0;
	if (cgroup_write_u64(dir_fd, file, value, err) < 0)
		return al_error_prefix(err, "%s", dir);
	if (cgroup_read_u64(dir_fd, file, &back) < 0)
		return al_error_sys(err, errno, "cgroup: read back %s/%s", dir,
				    file);
	if (back != value)
		return al_error_set(err, EIO,
				    "cgroup: %s/%s is %llu after writing %llu; "
				    "refusing to run with a limit that did "
				    "not take",
				    dir, file, (unsigned long long)back,
				    (unsigned long long)value);
	return 0;
}

/*
 * Every process of the run is gone before this is called (the pid
 * namespace's init is reaped only after all of them), so EBUSY is a brief
 * race with the kernel's own bookkeeping, not a live process.
 */
int cgroup_remove_dir(const char *path)
{
	for (int tries = 0; tries < 1000; tries++) {
		if (rmdir(path) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -1;
		sched_yield();
	}
	return -1;
}

static bool is_cgroup2(const char *path)
{
	struct statfs fs;
	return statfs(path, &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

bool cgroup_has_controller(const char *dir, const char *name)
{
	char buf[512];
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	int rc = cgroup_read(fd, "cgroup.controllers", buf, sizeof(buf));
	close(fd);
	if (rc < 0)
		return false;
	char *save = NULL;
	for (char *tok = strtok_r(buf, " \n", &save); tok;
	     tok = strtok_r(NULL, " \n", &save))
		if (strcmp(tok, name) == 0)
			return true;
	return false;
}

int cgroup_backend_open(struct cgroup_backend *b, struct al_error *err)
{
	if (is_cgroup2("/sys/fs/cgroup"))
		return cgroup_v2_open(b, "/sys/fs/cgroup", err);
	struct al_error v1_err = { 0 };
	if (cgroup_v1_open(b, &v1_err) == 0)
		return 0;
	if (is_cgroup2("/sys/fs/cgroup/unified") &&
	    cgroup_has_controller("/sys/fs/cgroup/unified", "memory"))
		return cgroup_v2_open(b, "/sys/fs/cgroup/unified", err);
	al_error_set(err, v1_err.errnum, "%s", v1_err.msg);
	if (v1_err.errnum == EACCES || v1_err.errnum == EPERM)
		return -1; /* the controller is there, just not ours */
	return al_error_prefix(
		err, "no usable memory cgroup controller (mount it on "
		     "cgroup v1, or boot with cgroup v2 and the "
		     "memory controller enabled)");
}

/* ------------------------------------------------------------- sweeping */

unsigned long long cgroup_process_start(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long long start = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	al_closep(&fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* the command name may hold spaces and ')': fields follow the last */
	char *p = strrchr(buf, ')');
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (p)
		start = strtoull(p + 1, NULL, 10);
	return start;
}

void cgroup_run_name(struct sandbox_host *host, char *buf, size_t len)
{
	snprintf(buf, len, "run-%d-%llu-%lu", getpid(), host->start_time,
		 ++host->run_counter);
}

/* Whether the process that made a run cgroup still lives: the pid in its
 * name with the start time in its name. Any program linking the sandbox
 * may own run cgroups, whatever its name. */
static bool owner_alive(const char *name)
{
	int pid;
	unsigned long long start;
	unsigned long n;
	int fields = sscanf(name, "run-%d-%llu-%lu", &pid, &start, &n);
	if (fields < 2 || pid <= 0)
		return true; /* not a run cgroup's name: not ours to remove */
	if (pid == getpid())
		return true;
	if (fields == 2) /* run-<pid>-<n>, named before start times were */
		return kill(pid, 0) == 0 || errno == EPERM;
	unsigned long long now = cgroup_process_start(pid);
	return now != 0 && now == start;
}

/* SIGKILL what is left in a stale run cgroup; its jail's init died with
 * its owner (PR_SET_PDEATHSIG), so normally nothing is. */
static int kill_members(int dir_fd)
{
	char buf[8192];
	int killed = 0;
	if (cgroup_read(dir_fd, "cgroup.procs", buf, sizeof(buf)) < 0)
		return 0;
	for (char *p = buf; *p;) {
		char *end;
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		if (pid > 1 && kill((pid_t)pid, SIGKILL) == 0)
			killed++;
		p = end + (*end == '\n');
	}
	return killed;
}

/* A stale cgroup's members were just SIGKILLed; under load they take a
 * while to exit and be reaped by whoever inherited them, and rmdir says
 * EBUSY until then. Wait for that, bounded, rather than leave the
 * directory to the next sweep. */
enum { SWEEP_WAIT_MS = 500 };

static int remove_stale_dir(const char *path, int killed)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (cgroup_remove_dir(path) == 0)
			return 0;
		if (errno != EBUSY || killed == 0)
			return -1;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long ms = (now.tv_sec - start.tv_sec) * 1000 +
			  (now.tv_nsec - start.tv_nsec) / 1000000;
		if (ms >= SWEEP_WAIT_MS) {
			errno = EBUSY;
			return -1;
		}
		struct timespec pause = { 0, 5 * 1000 * 1000 };
		nanosleep(&pause, NULL);
	}
}

static int sweep_base(int base_fd, const char *base,
		      void (*fn)(const char *, int, int, void *), void *arg)
{
	int removed = 0;
	/* a copy for the DIR stream to own, close-on-exec like every fd; it
	 * shares base_fd's offset, which the last sweep left at the end */
	int fd = fcntl(base_fd, F_DUPFD_CLOEXEC, 0);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		al_closep(&fd);
		return 0;
	}
	rewinddir(d);
	struct dirent *e;
	while ((e = readdir(d))) {
		char path[PATH_MAX];
		if (strncmp(e->d_name, "run-", 4) != 0 ||
		    owner_alive(e->d_name) ||
		    snprintf(path, sizeof(path), "%s/%s", base, e->d_name) >=
			    (int)sizeof(path))
			continue;
		int dir = openat(base_fd, e->d_name,
				 O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int killed = dir < 0 ? 0 : kill_members(dir);
		al_closep(&dir);
		int rc = remove_stale_dir(path, killed);
		if (rc == 0)
			removed++;
		if (fn)
			fn(path, killed, rc == 0 ? 0 : errno, arg);
	}
	closedir(d);
	return removed;
}

int sandbox_host_sweep(struct sandbox_host *host,
		       void (*fn)(const char *path, int killed, int errnum,
				  void *arg),
		       void *arg)
{
	const int *fds;
	const char *const *paths;
	if (!host->cgroup.ops)
		return 0;
	int n = host->cgroup.ops->bases(&host->cgroup, &fds, &paths);
	int removed = 0;
	for (int i = 0; i < n; i++)
		removed += sweep_base(fds[i], paths[i], fn, arg);
	return removed;
}
