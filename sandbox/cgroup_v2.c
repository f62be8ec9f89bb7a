/*
 * cgroup v2 backend: one directory per run on the unified hierarchy.
 *
 * libcgroup 2.0 cannot parse the "0::/path" line of /proc/self/cgroup and
 * enables controllers in every ancestor, so this backend reads
 * /proc/self/cgroup and writes the control files itself.
 *
 * Where the run cgroups go (cgroup_v2_choose decides, from facts read
 * here):
 *   - this process is alone in a cgroup delegated to it (airlockd.service
 *     has Delegate=yes; `systemd-run --scope -p Delegate=yes airlock …`):
 *     it moves itself into the leaf <own>/airlock-self, since v2 forbids
 *     processes in a cgroup whose controllers are given to children, and
 *     the runs go under <own>/airlock;
 *   - systemd runs the host and we are not alone in a delegated unit (a
 *     login shell, sudo, a CI step): a transient scope of our own, asked of
 *     systemd (cgroup_systemd.c), then as above inside it;
 *   - no systemd, root: <hierarchy root>/airlock, shared by every airlock
 *     process of the host (run cgroup names say whose, for the sweep);
 *     nothing is moved.
 * A cgroup that is not ours is never written to: no moving ourselves into
 * a unit systemd did not delegate, nothing created there.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "sandbox/internal.h"

struct v2_state {
	char own[512]; /* the cgroup run cgroups are made under the parent of */
	char base[512];                /* <own>/airlock, or <root>/airlock */
	char via[108];                 /* the systemd socket asked, or "" */
	char asked[AL_ERROR_MAX + 64]; /* why asking systemd failed, or "" */
	int base_fd;
	const char *base_path;
	bool have_cpu;
	enum cgroup_v2_way way;
};

static int read_own_cgroup(char *out, size_t len, struct al_error *err)
{
	char buf[4096];
	int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return al_error_sys(err, errno,
				    "cgroup v2: open /proc/self/cgroup");
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return al_error_sys(err, errno,
				    "cgroup v2: read /proc/self/cgroup");
	buf[n] = '\0';
	for (char *line = buf; line && *line;) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strncmp(line, "0::", 3) == 0) {
			snprintf(out, len, "%s", line + 3);
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

/* Only this process in `dir`: nobody else's cgroup gets restructured. */
static bool alone_in(const char *dir)
{
	char buf[64];
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	int rc = cgroup_read(fd, "cgroup.procs", buf, sizeof(buf));
	close(fd);
	char *end;
	long pid = rc < 0 ? 0 : strtol(buf, &end, 10);
	return pid == getpid() && (*end == '\n' || *end == '\0') &&
	       (*end == '\0' || end[1] == '\0');
}

/* Delegated to us: systemd marks a Delegate=yes unit's cgroup with the
 * trusted.delegate (root's units) or user.delegate (a user manager's)
 * attribute; without systemd, a cgroup we may restructure is one whose
 * control files we may write, which for root says nothing: without
 * systemd, root uses a cgroup of its own under the root instead. */
static bool delegated_to_us(const char *dir)
{
	char v[8] = "";
	if (getxattr(dir, "trusted.delegate", v, sizeof(v) - 1) > 0 &&
	    v[0] == '1')
		return true;
	memset(v, 0, sizeof(v));
	if (geteuid() != 0 &&
	    getxattr(dir, "user.delegate", v, sizeof(v) - 1) > 0 && v[0] == '1')
		return true;
	if (geteuid() == 0)
		return false; /* root may write anything: no sign at all */
	char procs[600], subtree[600];
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	snprintf(subtree, sizeof(subtree), "%s/cgroup.subtree_control", dir);
	return access(procs, W_OK) == 0 && access(subtree, W_OK) == 0;
}

/* systemd before 251 marks no delegated cgroup: ask it about our unit
 * (the last component of our cgroup). A systemd that does not answer
 * leaves the choice to the scope asked of it next, which then fails with
 * the reason. */
static bool asked_systemd(struct v2_state *st, const char *rel)
{
	const char *unit = strrchr(rel, '/');
	bool delegated = false;
	struct al_error err = { 0 };
	if (unit && unit[1] &&
	    cgroup_systemd_unit_delegated(unit + 1, &delegated, &err) < 0) {
		/* kept for describe(): the driver chosen then is not the one
		 * the unit's Delegate= asks for, and doctor should say why */
		snprintf(st->asked, sizeof(st->asked),
			 "systemd was asked whether %s is delegated and did "
			 "not answer: %s",
			 unit + 1, err.msg);
		return false;
	}
	return delegated;
}

const char *cgroup_v2_choose(const struct cgroup_v2_facts *f,
			     enum cgroup_v2_way *way)
{
	if (f->delegated && f->alone) {
		*way = CGROUP_V2_DELEGATED;
		return NULL;
	}
	if (f->systemd) {
		*way = CGROUP_V2_SYSTEMD;
		return NULL;
	}
	if (f->root_user) {
		*way = CGROUP_V2_UNDER_ROOT;
		return NULL;
	}
	return f->delegated ? "it holds other processes as well (run airlock "
			      "alone in it, or under a cgroup of its own)"
			    : "it is not delegated to this user (ask for a "
			      "delegated cgroup v2 subtree)";
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

static int need_controllers(const char *dir, const char *what,
			    struct al_error *err)
{
	if (cgroup_has_controller(dir, "memory") &&
	    cgroup_has_controller(dir, "pids"))
		return 0;
	return al_error_set(err, ENOENT,
			    "cgroup v2: the memory and pids controllers are "
			    "not available in %s (%s)",
			    dir, what);
}

/* Move into <own>/airlock-self, give <own>/airlock the controllers. */
static int use_delegated(struct v2_state *st, struct al_error *err)
{
	if (need_controllers(st->own,
			     "the unit must be delegated them: "
			     "Delegate=yes",
			     err) < 0)
		return -1;
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
	return 0;
}

static int start_systemd_scope(struct v2_state *st, const char *mount,
			       const char *rel, struct al_error *err)
{
	char name[96], slice_buf[256], now[512];
	snprintf(name, sizeof(name), "airlock-%d-%llu.scope", (int)getpid(),
		 cgroup_process_start(getpid()));
	const char *slice = cgroup_systemd_slice(rel, geteuid() != 0, slice_buf,
						 sizeof(slice_buf));
	if (cgroup_systemd_start_scope(name, slice, st->via, sizeof(st->via),
				       err) < 0)
		return al_error_prefix(
			err,
			"cgroup v2: %s%s is shared with other processes, so "
			"airlock asked systemd for a delegated scope of its "
			"own, which failed (or run airlock in a unit with "
			"Delegate=yes: systemd-run --scope -p Delegate=yes)",
			mount, rel);
	if (read_own_cgroup(now, sizeof(now), err) < 0)
		return -1;
	size_t nl = strlen(now), ml = strlen(name);
	if (nl <= ml || strcmp(now + nl - ml, name) != 0 ||
	    now[nl - ml - 1] != '/')
		return al_error_set(err, EIO,
				    "cgroup v2: systemd started %s but this "
				    "process is in %s",
				    name, now);
	snprintf(st->own, sizeof(st->own), "%s%s", mount, now);
	return use_delegated(st, err);
}

/* No systemd: root's runs go under <root>/airlock, nothing moved. Inside
 * a container whose cgroup namespace root holds its processes, that root
 * is the container's own cgroup, restructured as a delegated one. */
static int use_under_root(struct v2_state *st, const char *mount, bool alone,
			  struct al_error *err)
{
	if (need_controllers(mount,
			     "boot with the memory controller "
			     "enabled",
			     err) < 0)
		return -1;
	st->have_cpu = cgroup_has_controller(mount, "cpu");
	struct al_error first = { 0 };
	if (delegate(mount, st->have_cpu, &first) < 0) {
		if (first.errnum != EBUSY || !alone) {
			*err = first;
			return -1;
		}
		snprintf(st->own, sizeof(st->own), "%s", mount);
		return use_delegated(st, err);
	}
	snprintf(st->base, sizeof(st->base), "%s/airlock", mount);
	return 0;
}

static int v2_setup(struct v2_state *st, const char *mount,
		    struct al_error *err)
{
	char rel[512];
	if (read_own_cgroup(rel, sizeof(rel), err) < 0)
		return -1;
	if (snprintf(st->own, sizeof(st->own), "%s%s", mount,
		     strcmp(rel, "/") == 0 ? "" : rel) >= (int)sizeof(st->own))
		return al_error_set(err, ENAMETOOLONG,
				    "cgroup v2: path too long: %s", rel);
	struct cgroup_v2_facts f = {
		.systemd = access("/run/systemd/system", F_OK) == 0,
		.root_user = geteuid() == 0,
		.alone = alone_in(st->own),
	};
	f.delegated = strcmp(rel, "/") != 0 && delegated_to_us(st->own);
	if (!f.delegated && f.systemd && f.root_user && f.alone &&
	    strcmp(rel, "/") != 0)
		f.delegated = asked_systemd(st, rel);
	const char *why = cgroup_v2_choose(&f, &st->way);
	if (why)
		return al_error_set(err, EACCES, "cgroup v2: %s: %s", st->own,
				    why);
	int rc;
	switch (st->way) {
	case CGROUP_V2_DELEGATED: rc = use_delegated(st, err); break;
	case CGROUP_V2_SYSTEMD:
		rc = start_systemd_scope(st, mount, rel, err);
		break;
	default: rc = use_under_root(st, mount, f.alone, err); break;
	}
	if (rc < 0)
		return -1;
	if (mkdir(st->base, 0755) < 0 && errno != EEXIST)
		return al_error_sys(err, errno, "cgroup v2: create %s",
				    st->base);
	if (delegate(st->base, st->have_cpu, err) < 0)
		return -1;
	st->base_fd = open(st->base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->base_fd < 0)
		return al_error_sys(err, errno, "cgroup v2: open %s", st->base);
	if (faccessat(st->base_fd, ".", W_OK, AT_EACCESS) < 0)
		return al_error_sys(err, errno,
				    "cgroup v2: no write access to %s",
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
	if (st->way == CGROUP_V2_SYSTEMD)
		b->ops = &cgroup_v2_systemd_ops;
	return 0;
}

static int v2_create(struct cgroup_backend *b, const char *name,
		     const struct policy_limits *l, struct cgroup_run *cg,
		     struct al_error *err)
{
	struct v2_state *st = b->state;
	if (l->cpu_quota_milli && !st->have_cpu)
		return al_error_set(
			err, ENOENT,
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
	int fd = cg->dir_fd[0] = openat(st->base_fd, name,
					O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return al_error_sys(err, errno, "cgroup v2: open %s",
				    cg->path[0]);
	cg->procs_fd[0] = openat(fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
	if (cg->procs_fd[0] < 0)
		return al_error_sys(err, errno,
				    "cgroup v2: open %s/cgroup.procs",
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
	out->peak_known = cgroup_read_u64(fd, "memory.peak",
					  &out->peak_memory) == 0;
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

static int v2_describe(struct cgroup_backend *b, char *buf, size_t len)
{
	struct v2_state *st = b->state;
	char controllers[256] = "";
	(void)cgroup_read(st->base_fd, "cgroup.subtree_control", controllers,
			  sizeof(controllers));
	controllers[strcspn(controllers, "\n")] = '\0';
	static const char *const ways[] = {
		[CGROUP_V2_DELEGATED] = "a delegated cgroup of its own",
		[CGROUP_V2_SYSTEMD] = "a transient scope from systemd",
		[CGROUP_V2_UNDER_ROOT] = "its own cgroup under the root",
	};
	return snprintf(buf, len,
			"runs under %s (%s%s%s); controllers "
			"delegated to runs: %s%s%s",
			st->base, ways[st->way], st->via[0] ? " via " : "",
			st->via, controllers[0] ? controllers : "none",
			st->asked[0] ? "; " : "", st->asked);
}

#define V2_OPS(name, mode_name)                                                \
	const struct cgroup_ops name = {                                       \
		.bases = v2_bases,                                             \
		.mode = mode_name,                                             \
		.create = v2_create,                                           \
		.stats = v2_stats,                                             \
		.destroy = v2_destroy,                                         \
		.free = v2_free,                                               \
		.describe = v2_describe,                                       \
	}
V2_OPS(cgroup_v2_ops, "v2");
V2_OPS(cgroup_v2_systemd_ops, "v2 systemd");
