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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandbox/internal.h"

struct sandbox_host *sandbox_host_new(struct al_error *err)
{
	struct sandbox_host *host = calloc(1, sizeof(*host));
	if (!host) {
		al_error_sys(err, ENOMEM, "sandbox");
		return NULL;
	}
	host->root = geteuid() == 0;
	host->uid = geteuid();
	host->gid = getegid();
	host->start_time = cgroup_process_start(getpid());
	host->dev_null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (host->dev_null_fd < 0) {
		al_error_sys(err, errno, "sandbox: open /dev/null");
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
		return al_error_sys(err, saved,
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
			const struct policy_limits *limits, struct al_error *err)
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

const char *sandbox_host_privilege_mode(const struct sandbox_host *host)
{
	return host->root ? "root" : "user-namespace";
}
