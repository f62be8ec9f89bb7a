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

const char *sandbox_host_cgroup_mode(const struct sandbox_host *host)
{
	return host->cgroup.ops ? host->cgroup.ops->mode : "none";
}

const char *sandbox_host_privilege_mode(const struct sandbox_host *host)
{
	return host->root ? "root" : "user-namespace";
}
