/*
 * cgroup v2 backend: one directory per run on the unified hierarchy.
 *
 * libcgroup 2.0 cannot parse the "0::/path" line of /proc/self/cgroup and
 * enables controllers in every ancestor, so this backend reads
 * /proc/self/cgroup and writes the control files itself.
 *
 * v2 forbids processes in a cgroup whose controllers are delegated to its
 * children ("no internal processes"). When this process sits in the cgroup
 * it wants to delegate from, it first moves itself into a leaf
 * "<own>/airlock-self", then enables memory, pids and cpu for
 * "<own>/airlock", under which each run gets "<own>/airlock/<run>".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/internal.h"

struct v2_state {
	char own[512];  /* the cgroup this process was started in */
	char base[512]; /* <own>/airlock */
	int base_fd;
	const char *base_path;
	bool have_cpu;
	bool have_swap;
};

static int read_own_cgroup(const char *mount, char *out, size_t len,
			   struct al_error *err)
{
	char buf[4096];
	int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return al_error_sys(err, errno, "cgroup v2: open /proc/self/cgroup");
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return al_error_sys(err, errno, "cgroup v2: read /proc/self/cgroup");
	buf[n] = '\0';
	for (char *line = buf; line && *line;) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strncmp(line, "0::", 3) == 0) {
			const char *rel = line + 3;
			snprintf(out, len, "%s%s", mount,
				 strcmp(rel, "/") == 0 ? "" : rel);
			return 0;
		}
		line = next;
	}
	return al_error_set(err, ENOENT,
			    "cgroup v2: /proc/self/cgroup has no unified "
			    "(0::) entry");
}

/* Enable the controllers we need for the children of `dir`. */
static int delegate(const char *dir, bool cpu, struct al_error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return al_error_sys(err, errno, "cgroup v2: open %s", dir);
	int rc = cgroup_write(fd, "cgroup.subtree_control",
			      cpu ? "+memory +pids +cpu" : "+memory +pids",
			      err);
	close(fd);
	if (rc < 0)
		return al_error_prefix(err, "%s", dir);
	return 0;
}

static int move_self_to_leaf(struct v2_state *st, struct al_error *err)
{
	char leaf[600];
	snprintf(leaf, sizeof(leaf), "%s/airlock-self", st->own);
	if (mkdir(leaf, 0755) < 0 && errno != EEXIST)
		return al_error_sys(err, errno, "cgroup v2: create %s", leaf);
	int fd = open(leaf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return al_error_sys(err, errno, "cgroup v2: open %s", leaf);
	int rc = cgroup_write(fd, "cgroup.procs", "0", err);
	close(fd);
	return rc;
}

static void v2_free(struct cgroup_backend *b)
{
	struct v2_state *st = b->state;
	if (!st)
		return;
	al_closep(&st->base_fd);
	free(st);
	b->state = NULL;
}

static int v2_setup(struct v2_state *st, const char *mount,
		    struct al_error *err)
{
	if (read_own_cgroup(mount, st->own, sizeof(st->own), err) < 0)
		return -1;
	if (!cgroup_has_controller(st->own, "memory") ||
	    !cgroup_has_controller(st->own, "pids"))
		return al_error_set(err, ENOENT,
				    "cgroup v2: the memory and pids controllers "
				    "are not delegated to %s (with systemd, "
				    "run under a unit with Delegate=yes)",
				    st->own);
	st->have_cpu = cgroup_has_controller(st->own, "cpu");
	struct al_error first = { 0 };
	if (delegate(st->own, st->have_cpu, &first) < 0) {
		if (first.errnum != EBUSY) {
			*err = first;
			return -1;
		}
		if (move_self_to_leaf(st, err) < 0 ||
		    delegate(st->own, st->have_cpu, err) < 0)
			return -1;
	}
	if (snprintf(st->base, sizeof(st->base), "%s/airlock", st->own) >=
	    (int)sizeof(st->base))
		return al_error_set(err, ENAMETOOLONG,
				    "cgroup v2: path too long under %s",
				    st->own);
	if (mkdir(st->base, 0755) < 0 && errno != EEXIST)
		return al_error_sys(err, errno, "cgroup v2: create %s",
				    st->base);
	if (delegate(st->base, st->have_cpu, err) < 0)
		return -1;
	st->base_fd = open(st->base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->base_fd < 0)
		return al_error_sys(err, errno, "cgroup v2: open %s", st->base);
	if (faccessat(st->base_fd, ".", W_OK, AT_EACCESS) < 0)
		return al_error_sys(err, errno, "cgroup v2: no write access to %s",
				    st->base);
	return 0;
}

int cgroup_v2_open(struct cgroup_backend *b, const char *mount,
		   struct al_error *err)
{
	struct v2_state *st = calloc(1, sizeof(*st));
	if (!st)
		return al_error_sys(err, ENOMEM, "cgroup v2");
	st->base_fd = -1;
	b->ops = &cgroup_v2_ops;
	b->state = st;
	if (v2_setup(st, mount, err) < 0) {
		v2_free(b);
		return -1;
	}
	return 0;
}

static int v2_create(struct cgroup_backend *b, const char *name,
		     const struct policy_limits *l, struct cgroup_run *cg,
		     struct al_error *err)
{
	struct v2_state *st = b->state;
	if (l->cpu_quota_milli && !st->have_cpu)
		return al_error_set(err, ENOENT,
				    "cgroup v2: the policy asks for a CPU quota "
				    "but the cpu controller is not delegated");
	if (snprintf(cg->path[0], sizeof(cg->path[0]), "%s/%s", st->base,
		     name) >= (int)sizeof(cg->path[0]))
		return al_error_set(err, ENAMETOOLONG,
				    "cgroup v2: path too long under %s",
				    st->base);
	if (mkdirat(st->base_fd, name, 0755) < 0)
		return al_error_sys(err, errno, "cgroup v2: create %s",
				    cg->path[0]);
	cg->n = 1;
	int fd = cg->dir_fd[0] =
		openat(st->base_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return al_error_sys(err, errno, "cgroup v2: open %s",
				    cg->path[0]);
	cg->procs_fd[0] = openat(fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
	if (cg->procs_fd[0] < 0)
		return al_error_sys(err, errno, "cgroup v2: open %s/cgroup.procs",
				    cg->path[0]);
	const char *dir = cg->path[0];
	if (cgroup_set_checked(fd, dir, "memory.max",
			       l->memory_bytes & ~4095ull, err) < 0)
		return -1;
	if (faccessat(fd, "memory.swap.max", W_OK, 0) == 0 &&
	    cgroup_set_checked(fd, dir, "memory.swap.max", 0, err) < 0)
		return -1;
	if (cgroup_set_checked(fd, dir, "pids.max", l->pids + 1, err) < 0)
		return -1;
	if (l->cpu_quota_milli) {
		char value[64];
		snprintf(value, sizeof(value), "%llu 100000",
			 (unsigned long long)l->cpu_quota_milli * 100);
		if (cgroup_write(fd, "cpu.max", value, err) < 0)
			return al_error_prefix(err, "%s", dir);
	}
	return 0;
}

static int v2_stats(struct cgroup_backend *b, struct cgroup_run *cg,
		    struct cgroup_stats *out)
{
	(void)b;
	memset(out, 0, sizeof(*out));
	if (cg->n < 1)
		return -1;
	int fd = cg->dir_fd[0];
	uint64_t usec = 0;
	if (cgroup_read_key(fd, "cpu.stat", "usage_usec", &usec) == 0)
		out->cpu_ns = usec * 1000;
	/* memory.peak exists from Linux 5.19 */
	out->peak_known =
		cgroup_read_u64(fd, "memory.peak", &out->peak_memory) == 0;
	(void)cgroup_read_key(fd, "memory.events", "oom_kill", &out->oom_kills);
	(void)cgroup_read_key(fd, "pids.events", "max", &out->pids_max_hits);
	return 0;
}

static void v2_destroy(struct cgroup_backend *b, struct cgroup_run *cg)
{
	(void)b;
	if (cg->n < 1)
		return;
	/* Nothing should be left; cgroup.kill makes sure (Linux 5.14+). */
	if (cg->dir_fd[0] >= 0)
		(void)cgroup_write(cg->dir_fd[0], "cgroup.kill", "1", NULL);
	(void)cgroup_remove_dir(cg->path[0]);
}

static int v2_bases(struct cgroup_backend *b, const int **fds,
		    const char *const **paths)
{
	struct v2_state *st = b->state;
	st->base_path = st->base;
	*fds = &st->base_fd;
	*paths = &st->base_path;
	return 1;
}

const struct cgroup_ops cgroup_v2_ops = {
	.bases = v2_bases,
	.mode = "v2",
	.create = v2_create,
	.stats = v2_stats,
	.destroy = v2_destroy,
	.free = v2_free,
};
