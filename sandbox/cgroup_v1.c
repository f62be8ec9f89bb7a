/*
 * cgroup v1 backend: one directory per hierarchy (memory, pids, cpuacct,
 * and cpu when a CPU quota is asked for).
 *
 * Where each controller is mounted and which cgroup this process is in
 * come from /proc/self/mountinfo and /proc/self/cgroup (cgroup_parse.c),
 * with libcgroup as the fallback; the per-run work is a handful of
 * openat/write/read calls done directly, because it sits on the start-up
 * path of every run and libcgroup allocates and re-reads /proc for each.
 *
 * Run cgroups live in <mount>/<our cgroup>/airlock/<run>: below the cgroup
 * the caller was put in, so a supervisor confined by its service manager
 * stays confined together with its jails.
 */
#include <errno.h>
#include <fcntl.h>
#include <libcgroup.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/internal.h"

enum { V1_MEMORY, V1_PIDS, V1_CPUACCT, V1_CPU, V1_COUNT };

static const char *const v1_names[V1_COUNT] = { "memory", "pids", "cpuacct",
						"cpu" };

struct v1_state {
	char base[V1_COUNT][512]; /* .../airlock, per controller */
	int base_fd[V1_COUNT];
	bool have[V1_COUNT];
	bool memsw;    /* memory.memsw.* exists: swap can be limited */
	bool kmem_tcp; /* memory.kmem.tcp.* exists: socket buffers too */
	const char *base_paths[V1_COUNT]; /* distinct bases, for sweeping */
	int base_fds[V1_COUNT];
	int n_bases;
};

static int mkdir_p(const char *path)
{
	char tmp[512];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* The kernel's tables, read once per process (cgroup_parse.c). */
struct v1_tables {
	char mountinfo[65536];
	char cgroup[8192];
	bool read;
};

static bool read_text(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	size_t n = fread(buf, 1, len - 1, f);
	bool whole = feof(f) && !ferror(f);
	fclose(f);
	buf[n] = '\0';
	return whole;
}

/* libcgroup's answer, for layouts the plain parsers do not know. */
static int v1_find_libcgroup(int c, char *mount, char *current, size_t len,
			     struct al_error *err)
{
	static int init_rc = -1;
	char *m = NULL, *cur = NULL;
	if (init_rc != 0 && (init_rc = cgroup_init()) != 0)
		return al_error_set(err, ENOENT, "cgroup v1: %s",
				    cgroup_strerror(init_rc));
	int rc = cgroup_get_subsys_mount_point(v1_names[c], &m);
	if (rc == 0)
		rc = cgroup_get_current_controller_path(getpid(), v1_names[c],
							&cur);
	if (rc == 0 && m && cur) {
		snprintf(mount, len, "%s", m);
		snprintf(current, len, "%s", cur);
	}
	free(m);
	free(cur);
	if (rc != 0)
		return al_error_set(err, ENOENT,
				    "cgroup v1: the %s controller is not "
				    "mounted",
				    v1_names[c]);
	return 0;
}

static int v1_locate(struct v1_tables *t, int c, char *mount, char *current,
		     size_t len, struct al_error *err)
{
	if (!t->read)
		t->read = read_text("/proc/self/mountinfo", t->mountinfo,
				    sizeof(t->mountinfo)) &&
			  read_text("/proc/self/cgroup", t->cgroup,
				    sizeof(t->cgroup));
	/* AIRLOCK_CGROUP_DISCOVERY=libcgroup: a diagnostic switch (and the
	 * tests' way to exercise the fallback) */
	const char *how = getenv("AIRLOCK_CGROUP_DISCOVERY");
	bool fast = !how || strcmp(how, "libcgroup") != 0;
	if (fast && t->read &&
	    cgroup_v1_mount_of(t->mountinfo, v1_names[c], mount, len) == 0 &&
	    cgroup_v1_path_of(t->cgroup, v1_names[c], current, len) == 0)
		return 0;
	return v1_find_libcgroup(c, mount, current, len, err);
}

static int v1_find(struct v1_state *st, struct v1_tables *t, int c,
		   struct al_error *err)
{
	char mount[256], current[256];
	if (v1_locate(t, c, mount, current, sizeof(mount), err) < 0)
		return -1;
	int n = strcmp(current, "/") == 0
			? snprintf(st->base[c], sizeof(st->base[c]),
				   "%s/airlock", mount)
			: snprintf(st->base[c], sizeof(st->base[c]),
				   "%s%s%s/airlock", mount,
				   current[0] == '/' ? "" : "/", current);
	if (n >= (int)sizeof(st->base[c]))
		return al_error_set(err, ENAMETOOLONG,
				    "cgroup v1: path of the %s cgroup too long",
				    v1_names[c]);
	if (mkdir_p(st->base[c]) < 0)
		return al_error_sys(err, errno, "cgroup v1: create %s",
				    st->base[c]);
	st->base_fd[c] = open(st->base[c], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->base_fd[c] < 0)
		return al_error_sys(err, errno, "cgroup v1: open %s",
				    st->base[c]);
	/* run cgroups are created here: find out now, not on each run */
	if (faccessat(st->base_fd[c], ".", W_OK, AT_EACCESS) < 0)
		return al_error_sys(err, errno,
				    "cgroup v1: no write access to %s",
				    st->base[c]);
	st->have[c] = true;
	return 0;
}

static void v1_free(struct cgroup_backend *b)
{
	struct v1_state *st = b->state;
	if (!st)
		return;
	for (int c = 0; c < V1_COUNT; c++)
		al_closep(&st->base_fd[c]);
	free(st);
	b->state = NULL;
}

int cgroup_v1_open(struct cgroup_backend *b, struct al_error *err)
{
	struct v1_state *st = calloc(1, sizeof(*st));
	struct v1_tables *tables = calloc(1, sizeof(*tables));
	if (!st || !tables) {
		free(st);
		free(tables);
		return al_error_sys(err, ENOMEM, "cgroup v1");
	}
	for (int c = 0; c < V1_COUNT; c++)
		st->base_fd[c] = -1;
	b->ops = &cgroup_v1_ops;
	b->state = st;
	/* memory, pids and CPU accounting are required; the cpu controller
	 * only when a policy asks for a CPU quota (checked per run). */
	for (int c = 0; c < V1_COUNT; c++) {
		struct al_error sub = { 0 };
		if (v1_find(st, tables, c, &sub) == 0)
			continue;
		if (c == V1_CPU)
			continue;
		al_error_set(err, sub.errnum, "%s", sub.msg);
		free(tables);
		v1_free(b);
		return -1;
	}
	free(tables);
	st->memsw = faccessat(st->base_fd[V1_MEMORY],
			      "memory.memsw.limit_in_bytes", W_OK, 0) == 0;
	st->kmem_tcp = faccessat(st->base_fd[V1_MEMORY],
				 "memory.kmem.tcp.limit_in_bytes", W_OK,
				 0) == 0;
	return 0;
}

/* Create <base>/<name> in one hierarchy and open what the run needs. */
static int v1_mkdir(struct v1_state *st, int c, const char *name,
		    struct cgroup_run *cg, struct al_error *err)
{
	int i = cg->n;
	snprintf(cg->path[i], sizeof(cg->path[i]), "%s/%s", st->base[c], name);
	if (mkdirat(st->base_fd[c], name, 0755) < 0)
		return al_error_sys(err, errno, "cgroup v1: create %s",
				    cg->path[i]);
	cg->n++;
	cg->dir_fd[i] = openat(st->base_fd[c], name,
			       O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg->dir_fd[i] < 0)
		return al_error_sys(err, errno, "cgroup v1: open %s",
				    cg->path[i]);
	cg->procs_fd[i] = openat(cg->dir_fd[i], "cgroup.procs",
				 O_WRONLY | O_CLOEXEC);
	if (cg->procs_fd[i] < 0)
		return al_error_sys(err, errno,
				    "cgroup v1: open %s/cgroup.procs",
				    cg->path[i]);
	return i;
}

static int v1_limits(struct v1_state *st, int c, int i,
		     const struct policy_limits *l, struct cgroup_run *cg,
		     struct al_error *err)
{
	int fd = cg->dir_fd[i];
	const char *dir = cg->path[i];
	uint64_t mem = l->memory_bytes & ~4095ull; /* the kernel rounds */
	switch (c) {
	case V1_MEMORY:
		if (cgroup_set_checked(fd, dir, "memory.limit_in_bytes", mem,
				       err) < 0)
			return -1;
		/* v1 does not charge socket buffers to the memory limit: one
		 * process held 410 MiB of TCP buffers under a 64 MiB limit.
		 * Bound them by the same figure (v2 charges them already). */
		if (st->kmem_tcp &&
		    cgroup_set_checked(fd, dir,
				       "memory.kmem.tcp.limit_in_bytes", mem,
				       err) < 0)
			return -1;
		/* memsw = memory: no swap at all for the jail */
		if (st->memsw)
			return cgroup_set_checked(fd, dir,
						  "memory.memsw.limit_in_bytes",
						  mem, err);
		return cgroup_set_checked(fd, dir, "memory.swappiness", 0, err);
	case V1_PIDS:
		/* +1: the jail's own init counts against the limit */
		return cgroup_set_checked(fd, dir, "pids.max", l->pids + 1,
					  err);
	case V1_CPU:
		if (cgroup_set_checked(fd, dir, "cpu.cfs_period_us", 100000,
				       err) < 0)
			return -1;
		return cgroup_set_checked(fd, dir, "cpu.cfs_quota_us",
					  l->cpu_quota_milli * 100, err);
	default: return 0;
	}
}

static int v1_create(struct cgroup_backend *b, const char *name,
		     const struct policy_limits *limits, struct cgroup_run *cg,
		     struct al_error *err)
{
	struct v1_state *st = b->state;
	if (limits->cpu_quota_milli && !st->have[V1_CPU])
		return al_error_set(
			err, ENOENT,
			"cgroup v1: the policy asks for a CPU quota "
			"but the cpu controller is not mounted");
	for (int c = 0; c < V1_COUNT; c++) {
		if (!st->have[c])
			continue;
		if (c == V1_CPU && !limits->cpu_quota_milli)
			continue;
		/* cpu and cpuacct are often one hierarchy ("cpu,cpuacct") */
		if (c == V1_CPU && st->have[V1_CPUACCT] &&
		    strcmp(st->base[V1_CPU], st->base[V1_CPUACCT]) == 0) {
			int i = -1;
			for (int k = 0; k < cg->n; k++)
				if (strncmp(cg->path[k], st->base[V1_CPU],
					    strlen(st->base[V1_CPU])) == 0)
					i = k;
			if (i >= 0 && v1_limits(st, c, i, limits, cg, err) < 0)
				return -1;
			continue;
		}
		int i = v1_mkdir(st, c, name, cg, err);
		if (i < 0 || v1_limits(st, c, i, limits, cg, err) < 0)
			return -1;
	}
	return 0;
}

static int v1_index(struct v1_state *st, struct cgroup_run *cg, int c)
{
	size_t len = strlen(st->base[c]);
	for (int i = 0; i < cg->n; i++)
		if (strncmp(cg->path[i], st->base[c], len) == 0 &&
		    cg->path[i][len] == '/')
			return i;
	return -1;
}

static int v1_stats(struct cgroup_backend *b, struct cgroup_run *cg,
		    struct cgroup_stats *out)
{
	struct v1_state *st = b->state;
	int mem = v1_index(st, cg, V1_MEMORY);
	int pids = v1_index(st, cg, V1_PIDS);
	int acct = v1_index(st, cg, V1_CPUACCT);
	memset(out, 0, sizeof(*out));
	if (mem >= 0) {
		out->peak_known = cgroup_read_u64(cg->dir_fd[mem],
						  "memory.max_usage_in_bytes",
						  &out->peak_memory) == 0;
		/* failcnt stays 0 on an OOM kill here; oom_kill counts it */
		(void)cgroup_read_key(cg->dir_fd[mem], "memory.oom_control",
				      "oom_kill", &out->oom_kills);
	}
	if (pids >= 0)
		(void)cgroup_read_key(cg->dir_fd[pids], "pids.events", "max",
				      &out->pids_max_hits);
	if (acct >= 0)
		(void)cgroup_read_u64(cg->dir_fd[acct], "cpuacct.usage",
				      &out->cpu_ns);
	return 0;
}

static void v1_destroy(struct cgroup_backend *b, struct cgroup_run *cg)
{
	(void)b;
	for (int i = 0; i < cg->n; i++)
		(void)cgroup_remove_dir(cg->path[i]);
}

static int v1_bases(struct cgroup_backend *b, const int **fds,
		    const char *const **paths)
{
	struct v1_state *st = b->state;
	/* the arrays are compacted once: controllers that are not mounted
	 * (cpu) or share a hierarchy with another (cpu,cpuacct) drop out */
	if (!st->n_bases) {
		for (int c = 0; c < V1_COUNT; c++) {
			bool dup = false;
			for (int k = 0; k < st->n_bases; k++)
				dup |= strcmp(st->base_paths[k], st->base[c]) ==
				       0;
			if (!st->have[c] || dup)
				continue;
			st->base_paths[st->n_bases] = st->base[c];
			st->base_fds[st->n_bases++] = st->base_fd[c];
		}
	}
	*fds = st->base_fds;
	*paths = st->base_paths;
	return st->n_bases;
}

static int v1_describe(struct cgroup_backend *b, char *buf, size_t len)
{
	struct v1_state *st = b->state;
	int used = snprintf(buf, len, "runs under");
	for (int c = 0; c < V1_COUNT; c++)
		if (st->have[c] && used >= 0 && (size_t)used < len)
			used += snprintf(buf + used, len - (size_t)used,
					 " %s (%s)", st->base[c], v1_names[c]);
	return used;
}

const struct cgroup_ops cgroup_v1_ops = {
	.describe = v1_describe,
	.bases = v1_bases,
	.mode = "v1",
	.create = v1_create,
	.stats = v1_stats,
	.destroy = v1_destroy,
	.free = v1_free,
};
