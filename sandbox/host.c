/*
 * The host: what this kernel offers, probed once per process.
 *
 * As root the jail is built with real privilege and the cgroup limits are
 * mandatory: a host without a usable memory controller is refused. Without
 * root the jail is built inside a user namespace (the caller's uid mapped to
 * the jail's), and cgroups are used only if this user was delegated a
 * subtree; otherwise the run proceeds only under a policy whose limits are
 * "best-effort", and its result says which limits were not applied.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/internal.h"

#ifndef AIRLOCK_LIBEXEC_DIR
#define AIRLOCK_LIBEXEC_DIR "/usr/local/libexec/airlock"
#endif

/*
 * The airlock-init helper (sandbox/init/init.c), if it can be trusted: a
 * regular file owned by root that nobody else may read or write but
 * anybody may execute. Unreadable to the jail's user is what keeps the
 * exec'd init non-dumpable; anything else and jails are forked instead.
 * Looked for beside this program (a build tree), then where make install
 * puts it.
 */
static int open_init_helper(void)
{
#ifdef __SANITIZE_ADDRESS__
	/* ASan cannot follow init onto its own stack under CLONE_VM (it
	 * warns into the module's stderr): sanitizer builds fork */
	return -1;
#endif
	char self[PATH_MAX], path[PATH_MAX + 32];
	const char *dirs[2] = { NULL, AIRLOCK_LIBEXEC_DIR };
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		dirs[0] = dirname(self);
	}
	for (size_t i = 0; i < 2; i++) {
		if (!dirs[i])
			continue;
		snprintf(path, sizeof(path), "%s/airlock-init", dirs[i]);
		int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;
		if (fd < 0)
			continue;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    st.st_uid == 0 && (st.st_mode & 0066) == 0 &&
		    (st.st_mode & 0001))
			return fd;
		close(fd);
	}
	return -1;
}

/*
 * The helper runs non-dumpable only because the kernel gives a program its
 * user may not read the fs.suid_dumpable setting at exec: 0 (or 2, dumps
 * for root only) keeps the module out of its memory, 1 ("debug") would
 * not. Read at each run, since an administrator may change it; with 1,
 * jails are forked and init makes itself non-dumpable (privs.c).
 */
bool host_helper_usable(const struct sandbox_host *host)
{
	char value[8] = "";
	if (host->init_fd < 0)
		return false;
	int fd = open("/proc/sys/fs/suid_dumpable", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, value, sizeof(value) - 1);
	if (fd >= 0)
		close(fd);
	return n > 0 && value[0] != '1';
}

void *host_clone_stack(struct sandbox_host *host)
{
	/* init's deepest frames are mount.c's path buffers: a few pages;
	 * the rest is never touched, so never backed by memory */
	const size_t size = 1 << 20, guard = 4096;
	if (!host->clone_stack) {
		void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		if (mprotect(p, guard, PROT_NONE) < 0) {
			munmap(p, size);
			return NULL;
		}
		host->clone_stack = p;
		host->clone_stack_size = size;
	}
	return (char *)host->clone_stack + host->clone_stack_size;
}

struct sandbox_host *sandbox_host_new(struct al_error *err)
{
	struct sandbox_host *host = calloc(1, sizeof(*host));
	if (!host) {
		al_error_sys(err, ENOMEM, "sandbox");
		return NULL;
	}
	uid_pool_init(&host->uids);
	host->root = geteuid() == 0;
	host->uid = geteuid();
	host->gid = getegid();
	host->start_time = cgroup_process_start(getpid());
	/* rootless runs stay forked: the parent writes the user namespace's
	 * id maps while init waits, which a suspended parent cannot */
	host->init_fd = host->root ? open_init_helper() : -1;
	host->dev_null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (host->dev_null_fd < 0) {
		al_error_sys(err, errno, "sandbox: open /dev/null");
		al_closep(&host->init_fd);
		free(host);
		return NULL;
	}
	struct al_error cg_err = { 0 };
	if (cgroup_backend_open(&host->cgroup, &cg_err) == 0)
		return host;
	host->cgroup.ops = NULL;
	if (host->root) {
		al_error_set(err, cg_err.errnum, "%s", cg_err.msg);
		close(host->dev_null_fd);
		al_closep(&host->init_fd);
		free(host);
		return NULL;
	}
	snprintf(host->cgroup_error, sizeof(host->cgroup_error), "%s",
		 cg_err.msg);
	return host;
}

void sandbox_host_free(struct sandbox_host *host)
{
	if (!host)
		return;
	if (host->cgroup.ops)
		host->cgroup.ops->free(&host->cgroup);
	al_closep(&host->dev_null_fd);
	al_closep(&host->init_fd);
	uid_pool_free(&host->uids);
	if (host->clone_stack)
		munmap(host->clone_stack, host->clone_stack_size);
	free(host);
}

/* The jail's filter answers every call it denies with a user notification
 * (SECCOMP_RET_USER_NOTIF): without it no run can start. */
static int check_seccomp_notify(struct al_error *err)
{
	char buf[256] = "";
	int fd = open("/proc/sys/kernel/seccomp/actions_avail",
		      O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	int saved = errno;
	al_closep(&fd);
	if (n < 0)
		return al_error_sys(
			err, saved,
			"seccomp: read "
			"/proc/sys/kernel/seccomp/actions_avail "
			"(a kernel built without seccomp filters?)");
	buf[n] = '\0';
	for (char *save = NULL, *w = strtok_r(buf, " \n", &save); w;
	     w = strtok_r(NULL, " \n", &save))
		if (strcmp(w, "user_notif") == 0)
			return 0;
	return al_error_set(err, ENOSYS,
			    "seccomp: this kernel offers no user notifications "
			    "(actions_avail lacks user_notif); airlock needs "
			    "Linux 5.5 or later");
}

/* Make, then remove, a cgroup with the policy's limits: the backend reads
 * back every limit it writes, so a missing controller or a limit the
 * kernel refuses shows here rather than at the first run. */
static int check_cgroup(struct sandbox_host *host,
			const struct policy_limits *limits,
			struct al_error *err)
{
	if (!host->cgroup.ops) {
		if (limits->limits_mode == POLICY_LIMITS_BEST_EFFORT)
			return 0;
		return al_error_set(err, ENOENT,
				    "its memory, pids and CPU limits need a "
				    "cgroup and there is none (%s)",
				    host->cgroup_error);
	}
	struct cgroup_run cg;
	char name[64];
	cgroup_run_init(&cg);
	cgroup_run_name(host, name, sizeof(name));
	int rc = host->cgroup.ops->create(&host->cgroup, name, limits, &cg,
					  err);
	if (rc == 0)
		host->cgroup.ops->destroy(&host->cgroup, &cg);
	cgroup_run_close(&cg);
	return rc;
}

int sandbox_host_check(struct sandbox_host *host,
		       const struct al_policy *policy, struct al_error *err)
{
	if (check_seccomp_notify(err) < 0 ||
	    check_cgroup(host, policy_limits(policy), err) < 0)
		return -1;
	struct sandbox_filter *filter = sandbox_filter_compile(policy, err);
	if (!filter)
		return -1;
	sandbox_filter_free(filter);
	return 0;
}

const char *sandbox_host_cgroup_mode(const struct sandbox_host *host)
{
	return host->cgroup.ops ? host->cgroup.ops->mode : "none";
}

const char *sandbox_host_cgroup_detail(const struct sandbox_host *host,
				       char *buf, size_t len)
{
	if (!host->cgroup.ops)
		snprintf(buf, len, "%s", host->cgroup_error);
	else
		host->cgroup.ops
			->describe((struct cgroup_backend *)&host->cgroup, buf,
				   len);
	return buf;
}

const char *sandbox_host_privilege_mode(const struct sandbox_host *host)
{
	return host->root ? "root" : "user-namespace";
}

const char *sandbox_host_launch_mode(const struct sandbox_host *host)
{
	return host_helper_usable(host) ? "clone-vm (airlock-init helper)"
					: "fork";
}
