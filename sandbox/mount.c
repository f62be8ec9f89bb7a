/*
 * The jail's root filesystem, built by init in its own mount namespace.
 *
 * A fresh tmpfs is assembled at STAGE (over /tmp, in the child's namespace
 * only), filled with read-only binds of the system directories, the few
 * /etc files the loader and interpreters read, the module, a fresh /proc, a
 * minimal /dev and a private /tmp; then pivot_root makes it "/", the old
 * root is detached, and the new root itself becomes read-only. The module,
 * which may well live in the host's /tmp, is opened before the stage is
 * mounted over it and bound through /proc/self/fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/internal.h"

#define STAGE "/tmp"

/* Read-only and nosuid/nodev, on a mount and every mount below it. */
#define ATTR_RO (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)

/* System directories: the module's programs and libraries. Merged-usr
 * hosts have /bin, /lib, ... as symlinks into /usr; they stay symlinks. */
static const char *const system_dirs[] = {
	"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", NULL,
};

/* What the dynamic loader and interpreters read from /etc; nothing that
 * names a user, a host or a secret. */
/* clang-format off */
static const char *const etc_entries[] = {
	"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
	"/etc/nsswitch.conf", "/etc/localtime", "/etc/alternatives",
	/* service and protocol names: getservbyname, getaddrinfo("http") */
	"/etc/services", "/etc/protocols", NULL,
};
/* clang-format on */

static const char *const dev_nodes[] = {
	"null", "zero", "full", "random", "urandom", NULL,
};

static void stage_path(const struct jail_plan *plan, char *buf, size_t len,
		       const char *path)
{
	if (snprintf(buf, len, STAGE "%s", path) >= (int)len)
		jail_fail(plan, ENAMETOOLONG, "mount: path too long: %s", path);
}

static void set_attr(const struct jail_plan *plan, const char *target,
		     uint64_t attr, unsigned int flags)
{
	struct mount_attr ma = { .attr_set = attr };
	if (mount_setattr(AT_FDCWD, target, flags, &ma, sizeof(ma)) < 0)
		jail_fail(plan, errno,
			  "mount: make %s read-only (mount_setattr needs "
			  "Linux 5.12 or later)",
			  target);
}

static void bind_ro(const struct jail_plan *plan, const char *source,
		    const char *target)
{
	if (mount(source, target, NULL, MS_BIND | MS_REC, NULL) < 0)
		jail_fail(plan, errno, "mount: bind %s", source);
	set_attr(plan, target, ATTR_RO, AT_RECURSIVE);
}

static void make_file(const struct jail_plan *plan, const char *path,
		      const char *content, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		jail_fail(plan, errno, "mount: create %s", path);
	size_t len = content ? strlen(content) : 0;
	if (len && write(fd, content, len) != (ssize_t)len)
		jail_fail(plan, errno, "mount: write %s", path);
	close(fd);
}

static void make_dir(const struct jail_plan *plan, const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		jail_fail(plan, errno, "mount: mkdir %s", path);
}

static void copy_symlink(const struct jail_plan *plan, const char *host,
			 const char *target)
{
	char link[PATH_MAX];
	ssize_t n = readlink(host, link, sizeof(link) - 1);
	if (n < 0)
		jail_fail(plan, errno, "mount: readlink %s", host);
	link[n] = '\0';
	if (symlink(link, target) < 0)
		jail_fail(plan, errno, "mount: symlink %s", target);
}

/* Reproduce a host file, directory or symlink at the same path inside. */
static void mirror(const struct jail_plan *plan, const char *host)
{
	char target[PLAN_PATH_MAX];
	struct stat st;
	if (lstat(host, &st) < 0)
		return; /* absent on this host: nothing to hide or show */
	stage_path(plan, target, sizeof(target), host);
	if (S_ISLNK(st.st_mode)) {
		copy_symlink(plan, host, target);
	} else if (S_ISDIR(st.st_mode)) {
		make_dir(plan, target);
		bind_ro(plan, host, target);
	} else if (S_ISREG(st.st_mode)) {
		make_file(plan, target, NULL, 0644);
		bind_ro(plan, host, target);
	}
}

static void build_etc(const struct jail_plan *plan)
{
	char buf[512];
	const struct policy_limits *l = plan->limits;
	make_dir(plan, STAGE "/etc");
	for (size_t i = 0; etc_entries[i]; i++)
		mirror(plan, etc_entries[i]);
	/* A passwd and group that know only the jail's user: shells and
	 * interpreters look the current user up, and the host's list of
	 * accounts is none of the module's business. */
	snprintf(buf, sizeof(buf),
		 "root:x:0:0:root:/root:/usr/sbin/nologin\n"
		 "sandbox:x:%u:%u:sandbox:/tmp:/usr/sbin/nologin\n",
		 l->uid, l->gid);
	make_file(plan, STAGE "/etc/passwd", buf, 0644);
	snprintf(buf, sizeof(buf), "root:x:0:\nsandbox:x:%u:\n", l->gid);
	make_file(plan, STAGE "/etc/group", buf, 0644);
	snprintf(buf, sizeof(buf), "127.0.0.1 localhost %s\n::1 localhost\n",
		 policy_hostname(plan->policy));
	make_file(plan, STAGE "/etc/hosts", buf, 0644);
}

/*
 * POSIX shared memory and named semaphores (shm_open, sem_open: what
 * multiprocessing's locks and queues are made of) live in /dev/shm. The
 * run gets a private tmpfs there, the size of its /tmp: the host's
 * /dev/shm, where other programs keep theirs, is never shown, and its
 * pages are charged to the run's memory cgroup like /tmp's, so the two
 * together cannot exceed the memory limit. noexec: a segment is data.
 */
static void build_shm(const struct jail_plan *plan)
{
	char opts[128];
	snprintf(opts, sizeof(opts), "size=%llu,mode=1777,nr_inodes=4096",
		 (unsigned long long)plan->limits->tmp_bytes);
	if (mount("tmpfs", STAGE "/dev/shm", "tmpfs",
		  MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0)
		jail_fail(plan, errno, "mount: tmpfs on /dev/shm");
}

/*
 * [filesystem] terminal = yes: a devpts instance of the run's own
 * (newinstance), so openpty() and pty.spawn() work. The host's terminals
 * are in another instance and cannot be named or opened from here; the
 * ptys made here belong to the jail's uid, and TIOCSTI on one can only
 * push input into that pty itself. max bounds the run's share of the
 * kernel's pty table (the host's own instance keeps its reserve).
 */
static void build_pts(const struct jail_plan *plan)
{
	if (!plan->limits->terminal)
		return;
	if (mount("devpts", STAGE "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		  "newinstance,ptmxmode=0666,mode=0620,max=64") < 0)
		jail_fail(plan, errno, "mount: devpts on /dev/pts");
}

static void build_dev(const struct jail_plan *plan)
{
	char target[64], source[64];
	make_dir(plan, STAGE "/dev");
	/* no nodev here: the binds below are device nodes */
	if (mount("tmpfs", STAGE "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC,
		  "size=64k,mode=0755,nr_inodes=64") < 0)
		jail_fail(plan, errno, "mount: tmpfs on /dev");
	for (size_t i = 0; dev_nodes[i]; i++) {
		snprintf(source, sizeof(source), "/dev/%s", dev_nodes[i]);
		snprintf(target, sizeof(target), STAGE "/dev/%s", dev_nodes[i]);
		make_file(plan, target, NULL, 0666);
		if (mount(source, target, NULL, MS_BIND, NULL) < 0)
			jail_fail(plan, errno, "mount: bind %s", source);
		set_attr(plan, target, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
			 0);
	}
	static const char *const links[][2] = {
		{ "/proc/self/fd", STAGE "/dev/fd" },
		{ "/proc/self/fd/0", STAGE "/dev/stdin" },
		{ "/proc/self/fd/1", STAGE "/dev/stdout" },
		{ "/proc/self/fd/2", STAGE "/dev/stderr" },
	};
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
		if (symlink(links[i][0], links[i][1]) < 0)
			jail_fail(plan, errno, "mount: symlink %s",
				  links[i][1]);
	make_dir(plan, STAGE "/dev/shm");
	if (plan->limits->terminal) {
		make_dir(plan, STAGE "/dev/pts");
		if (symlink("pts/ptmx", STAGE "/dev/ptmx") < 0)
			jail_fail(plan, errno, "mount: symlink /dev/ptmx");
	}
	/* no new nodes or files: /dev is read-only once populated */
	set_attr(plan, STAGE "/dev",
		 MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, 0);
	build_shm(plan);
	build_pts(plan);
}

/*
 * The parent's fd belongs to the parent's mount namespace, which a bind
 * mount here may not take from; so init opens the path again in its own
 * copy of that namespace, before anything is mounted over it, and checks
 * it is the very file the parent checked.
 */
static int open_module(const struct jail_plan *plan)
{
	if (plan->module_fd < 0)
		return -1;
	struct stat st;
	int fd = open(plan->module_host_path, O_PATH | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		jail_fail(plan, errno, "mount: open the module again");
	if (st.st_dev != plan->module_dev || st.st_ino != plan->module_ino)
		jail_fail(plan, ESTALE,
			  "mount: the module was replaced while the jail was "
			  "being built");
	return fd;
}

/* A bundle's tree at /bundle: never set-id or devices; read-only but for
 * a build step, which writes its output there (its own copy). */
static void build_bundle(const struct jail_plan *plan, int fd)
{
	char source[64];
	make_dir(plan, STAGE BUNDLE_JAIL_DIR);
	snprintf(source, sizeof(source), "/proc/self/fd/%d", fd);
	if (mount(source, STAGE BUNDLE_JAIL_DIR, NULL, MS_BIND, NULL) < 0)
		jail_fail(plan, errno, "mount: bind the bundle");
	close(fd);
	set_attr(plan, STAGE BUNDLE_JAIL_DIR,
		 plan->module_writable ? MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
				       : ATTR_RO,
		 0);
}

static void build_module(const struct jail_plan *plan, int fd)
{
	char target[PLAN_PATH_MAX], source[64];
	if (fd < 0)
		return;
	if (plan->module_is_dir) {
		build_bundle(plan, fd);
		return;
	}
	make_dir(plan, STAGE "/module");
	stage_path(plan, target, sizeof(target), plan->module_jail_path);
	make_file(plan, target, NULL, 0755);
	snprintf(source, sizeof(source), "/proc/self/fd/%d", fd);
	if (mount(source, target, NULL, MS_BIND, NULL) < 0)
		jail_fail(plan, errno, "mount: bind the module");
	close(fd);
	set_attr(plan, target, ATTR_RO, 0);
}

/* mkdir -p inside the stage, for bind targets such as /data/in */
static void make_parents(const struct jail_plan *plan, char *path)
{
	for (char *p = path + strlen(STAGE) + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		make_dir(plan, path);
		*p = '/';
	}
}

#define MAX_BINDS 32

static void bind_fail(const struct jail_plan *plan, const struct policy_bind *b,
		      int errnum, const char *what, const char *component)
{
	const char *file = policy_file(plan->policy);
	jail_fail(plan, errnum, "mount: %s = %s (policy %s): %s %s",
		  b->writable ? "bind_rw" : "bind_ro", b->host,
		  file ? file : policy_name(plan->policy), component, what);
}

/*
 * A directory on a bind source's path decides what its name leads to: its
 * owner, or anyone who may write it, can rename an entry or put another
 * one there. So each must be owned by root or by the policy file's owner
 * (who wrote the bind list anyway), and not writable by group or others
 * unless sticky (/tmp: others add entries there, but cannot rename or
 * remove root's; the next component's owner is checked in turn). Rootless,
 * init resolves with the caller's own rights (the user namespace maps no
 * other uid, so ownership cannot be told apart either): nothing reached
 * is beyond what the caller can open anyway.
 */
static void check_dir(const struct jail_plan *plan, const struct policy_bind *b,
		      int fd, const char *component)
{
	struct stat st;
	char what[160];
	if (plan->userns)
		return;
	if (fstat(fd, &st) < 0)
		bind_fail(plan, b, errno, "cannot be read", component);
	uid_t owner = policy_file_owner(plan->policy);
	if (st.st_uid != 0 && st.st_uid != owner) {
		snprintf(what, sizeof(what),
			 "is owned by uid %u, not root or the policy file's "
			 "owner (uid %u): bind a path whose directories are "
			 "root's",
			 (unsigned)st.st_uid, (unsigned)owner);
		bind_fail(plan, b, EPERM, what, component);
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
		snprintf(what, sizeof(what),
			 "is writable by %s (mode %04o): chmod go-w it",
			 st.st_mode & S_IWOTH ? "everyone" : "its group",
			 (unsigned)(st.st_mode & 07777));
		bind_fail(plan, b, EPERM, what, component);
	}
}

/* One name in a directory, never through a symlink (openat2 on 5.6 and
 * later; the same, component by component, with O_NOFOLLOW before). */
static int open_component(int dirfd, const char *name)
{
	struct open_how how = {
		.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
			   RESOLVE_BENEATH,
	};
	int fd = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS)
		fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	return fd;
}

/*
 * Resolve a bind source as init (root, in a copy of the host's mounts)
 * without following any symlink: a user who owns a directory on the path
 * could otherwise swap the next component for a link to a file that only
 * root can reach. The walk holds each directory open while it checks it
 * and opens the next name in it, so what is checked is what is resolved;
 * the last descriptor is what gets mounted. The parser already refused
 * relative paths and "." or ".." components.
 */
static int open_bind_source(const struct jail_plan *plan,
			    const struct policy_bind *b)
{
	char path[PLAN_PATH_MAX];
	if (snprintf(path, sizeof(path), "%s", b->host) >= (int)sizeof(path))
		bind_fail(plan, b, ENAMETOOLONG, "is too long", "the path");
	int dir = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		bind_fail(plan, b, errno, "cannot be opened", "/");
	check_dir(plan, b, dir, "/");
	for (char *name = path + 1; *name;) {
		char *slash = strchr(name, '/');
		if (slash)
			*slash = '\0';
		int fd = open_component(dir, name);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0)
			bind_fail(plan, b, errno, "cannot be opened", path);
		close(dir);
		if (S_ISLNK(st.st_mode))
			bind_fail(plan, b, ELOOP,
				  "is a symbolic link: name the path it "
				  "leads to, if that is meant",
				  path);
		if (!slash)
			return fd;
		if (!S_ISDIR(st.st_mode))
			bind_fail(plan, b, ENOTDIR, "is not a directory", path);
		check_dir(plan, b, fd, path);
		*slash = '/';
		name = slash + 1;
		dir = fd;
	}
	return dir; /* the source is "/" itself */
}

/* Open every bind source before the stage covers the host's /tmp. */
static void open_binds(const struct jail_plan *plan, int fds[MAX_BINDS])
{
	size_t n = policy_bind_count(plan->policy);
	if (n > MAX_BINDS)
		jail_fail(plan, E2BIG, "mount: more than %d binds", MAX_BINDS);
	for (size_t i = 0; i < n; i++)
		fds[i] = open_bind_source(plan,
					  policy_bind_at(plan->policy, i));
}

/* The policy's extra binds: read-only ones with nosuid and nodev, like
 * the system directories; writable ones with nosuid and nodev only. */
static void build_binds(const struct jail_plan *plan, const int fds[MAX_BINDS])
{
	for (size_t i = 0; i < policy_bind_count(plan->policy); i++) {
		const struct policy_bind *b = policy_bind_at(plan->policy, i);
		char target[PLAN_PATH_MAX], source[64];
		struct stat st;
		stage_path(plan, target, sizeof(target), b->jail);
		make_parents(plan, target);
		if (fstat(fds[i], &st) < 0)
			jail_fail(plan, errno, "mount: bind source %s",
				  b->host);
		if (S_ISDIR(st.st_mode))
			make_dir(plan, target);
		else if (access(target, F_OK) != 0)
			make_file(plan, target, NULL, 0644);
		snprintf(source, sizeof(source), "/proc/self/fd/%d", fds[i]);
		if (mount(source, target, NULL, MS_BIND | MS_REC, NULL) < 0)
			jail_fail(plan, errno, "mount: bind %s", b->host);
		close(fds[i]);
		set_attr(plan, target,
			 b->writable ? MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
				     : ATTR_RO,
			 AT_RECURSIVE);
	}
}

/*
 * A new proc still shows the host itself: its boot command line, boot id,
 * kernel configuration and symbols, every lock, key and timer of the
 * machine, its disks, interrupts and loaded modules. Masked as container
 * runtimes mask them: files under an empty read-only /dev/null, directories
 * under an empty read-only tmpfs, and the kernel's tunables read-only. What
 * programs read (status, stat, cpuinfo, meminfo, self/) stays; the list is
 * in docs/jail.md, "What /proc shows".
 */
static const char *const proc_readonly[] = {
	"sys", "bus", "fs", "irq", NULL,
};

static const char *const proc_masked_dirs[] = {
	"acpi",
	"asound",
	"scsi",
	NULL,
};

/* clang-format off */
static const char *const proc_masked_files[] = {
	"cmdline", "sys/kernel/random/boot_id", "config.gz", "kallsyms",
	"kcore", "keys", "key-users", "locks", "timer_list", "timer_stats",
	"sched_debug", "latency_stats", "sysrq-trigger", "interrupts",
	"modules", "partitions", "diskstats", "swaps", NULL,
};
/* clang-format on */

static bool proc_entry(const struct jail_plan *plan, char *buf, size_t len,
		       const char *name)
{
	struct stat st;
	if (snprintf(buf, len, STAGE "/proc/%s", name) >= (int)len)
		jail_fail(plan, ENAMETOOLONG, "mount: path too long: %s", name);
	return lstat(buf, &st) ==
	       0; /* absent from this kernel: nothing shown */
}

static void mask_proc(const struct jail_plan *plan)
{
	char target[128];
	/* the tunables first: the boot id mask then lands on the new mount */
	for (size_t i = 0; proc_readonly[i]; i++)
		if (proc_entry(plan, target, sizeof(target),
			       proc_readonly[i])) {
			if (mount(target, target, NULL, MS_BIND | MS_REC,
				  NULL) < 0)
				jail_fail(plan, errno, "mount: bind %s",
					  target);
			set_attr(plan, target, ATTR_RO | MOUNT_ATTR_NOEXEC,
				 AT_RECURSIVE);
		}
	for (size_t i = 0; proc_masked_dirs[i]; i++)
		if (proc_entry(plan, target, sizeof(target),
			       proc_masked_dirs[i]) &&
		    mount("airlock", target, "tmpfs",
			  MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "size=4k,nr_inodes=2,mode=0555") < 0)
			jail_fail(plan, errno, "mount: mask %s", target);
	/* /dev/null reads as empty; a read-only bind of it takes no writes
	 * anywhere (nodev would make opening it fail instead) */
	for (size_t i = 0; proc_masked_files[i]; i++)
		if (proc_entry(plan, target, sizeof(target),
			       proc_masked_files[i])) {
			if (mount("/dev/null", target, NULL, MS_BIND, NULL) < 0)
				jail_fail(plan, errno, "mount: mask %s",
					  target);
			set_attr(plan, target,
				 MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
					 MOUNT_ATTR_NOEXEC,
				 0);
		}
}

static void build_tmp_and_proc(const struct jail_plan *plan)
{
	char opts[128];
	make_dir(plan, STAGE "/tmp");
	snprintf(opts, sizeof(opts), "size=%llu,mode=1777,nr_inodes=16384",
		 (unsigned long long)plan->limits->tmp_bytes);
	if (mount("tmpfs", STAGE "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts) <
	    0)
		jail_fail(plan, errno, "mount: tmpfs on /tmp");
	make_dir(plan, STAGE "/proc");
	/* A proc of the new pid namespace: the host's processes do not
	 * exist in it. */
	if (mount("proc", STAGE "/proc", "proc",
		  MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		jail_fail(plan, errno, "mount: proc");
	mask_proc(plan);
}

static void enter_root(const struct jail_plan *plan)
{
	if (chdir(STAGE) < 0)
		jail_fail(plan, errno, "mount: chdir to the new root");
	/* pivot_root(".", "."): the old root ends up stacked on the new one
	 * and is detached at once, so nothing of the host stays reachable. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		jail_fail(plan, errno, "mount: pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		jail_fail(plan, errno, "mount: detach the old root");
	/* Only /tmp (and /dev/shm) stay writable. */
	set_attr(plan, "/", ATTR_RO, 0);
	/* The module's working directory is the writable /tmp (also its
	 * HOME): a program that writes results.json or a test's scratch file
	 * next to itself must not fail on the read-only root. */
	if (chdir(plan->module_is_dir ? BUNDLE_JAIL_DIR : "/tmp") < 0)
		jail_fail(plan, errno, "mount: chdir to the working directory");
}

void jail_build_root(const struct jail_plan *plan)
{
	/* Nothing mounted from here on propagates back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		jail_fail(plan, errno, "mount: make / private");
	int module = open_module(plan);
	int binds[MAX_BINDS];
	open_binds(plan, binds);
	if (mount("airlock", STAGE, "tmpfs", MS_NOSUID | MS_NODEV,
		  "size=1m,mode=0755,nr_inodes=4096") < 0)
		jail_fail(plan, errno, "mount: tmpfs for the new root");
	for (size_t i = 0; system_dirs[i]; i++)
		mirror(plan, system_dirs[i]);
	build_etc(plan);
	build_module(plan, module);
	build_binds(plan, binds);
	build_dev(plan);
	build_tmp_and_proc(plan);
	enter_root(plan);
}

/* Mounts that may stay writable: the private /tmp and /dev/shm, /proc (its files have
 * their own permissions), the device nodes and the policy's writable
 * binds. Everything else is "ro". */
static bool may_be_writable(const struct jail_plan *plan, const char *mnt)
{
	if (strcmp(mnt, "/tmp") == 0 || strcmp(mnt, "/proc") == 0 ||
	    strcmp(mnt, "/dev/shm") == 0)
		return true;
	if (plan->limits->terminal && strcmp(mnt, "/dev/pts") == 0)
		return true;
	if (plan->module_writable && strcmp(mnt, BUNDLE_JAIL_DIR) == 0)
		return true;
	for (size_t i = 0; i < policy_bind_count(plan->policy); i++) {
		const struct policy_bind *b = policy_bind_at(plan->policy, i);
		size_t n = strlen(b->jail);
		if (b->writable && strncmp(mnt, b->jail, n) == 0 &&
		    (mnt[n] == '\0' || mnt[n] == '/'))
			return true;
	}
	for (size_t i = 0; dev_nodes[i]; i++)
		if (strncmp(mnt, "/dev/", 5) == 0 &&
		    strcmp(mnt + 5, dev_nodes[i]) == 0)
			return true;
	return false;
}

static bool has_option(const char *opts, const char *want)
{
	size_t n = strlen(want);
	for (const char *p = opts; p && *p;) {
		if (strncmp(p, want, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return true;
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return false;
}

static void verify_mount_line(const struct jail_plan *plan, char *line)
{
	char *field[6] = { 0 };
	char *save = NULL;
	char *tok = strtok_r(line, " ", &save);
	for (int i = 0; tok && i < 6; i++) {
		field[i] = tok;
		tok = strtok_r(NULL, " ", &save);
	}
	if (!field[5])
		jail_fail(plan, EIO, "verify: unreadable mountinfo line");
	const char *mnt = field[4], *opts = field[5];
	if (!has_option(opts, "nosuid"))
		jail_fail(plan, EPERM, "verify: %s is mounted without nosuid",
			  mnt);
	if (!may_be_writable(plan, mnt) && !has_option(opts, "ro"))
		jail_fail(plan, EPERM, "verify: %s is writable", mnt);
}

/*
 * Read back what the kernel says is mounted, instead of trusting that each
 * mount call did what it was asked: any writable or setuid-capable mount
 * other than the expected ones stops the run.
 */
void jail_verify_mounts(const struct jail_plan *plan)
{
	static char buf[65536];
	int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		jail_fail(plan, errno, "verify: open /proc/self/mountinfo");
	size_t used = 0;
	ssize_t n;
	while ((n = read(fd, buf + used, sizeof(buf) - 1 - used)) > 0)
		used += (size_t)n;
	close(fd);
	if (n < 0 || used == sizeof(buf) - 1)
		jail_fail(plan, n < 0 ? errno : EFBIG,
			  "verify: read /proc/self/mountinfo");
	buf[used] = '\0';
	bool saw_root = false;
	for (char *line = buf; *line;) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strstr(line, " / / "))
			saw_root = true;
		verify_mount_line(plan, line);
		if (!next)
			break;
		line = next;
	}
	if (!saw_root)
		jail_fail(plan, EIO, "verify: no root mount in mountinfo");
}
