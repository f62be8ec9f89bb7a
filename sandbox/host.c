/*
 * The host: what this kernel offers, probed once per process.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandbox/internal.h"

struct sandbox_host *sandbox_host_new(struct al_error *err)
{
	if (geteuid() != 0) {
		al_error_set(err, EPERM,
			     "airlock needs root to build a jail (namespaces, "
			     "cgroup limits, seccomp); run it as root or "
			     "through airlockd. Rootless mode is not "
			     "available yet.");
		return NULL;
	}
	struct sandbox_host *host = calloc(1, sizeof(*host));
	if (!host) {
		al_error_sys(err, ENOMEM, "sandbox");
		return NULL;
	}
	host->root = true;
	host->dev_null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (host->dev_null_fd < 0) {
		al_error_sys(err, errno, "sandbox: open /dev/null");
		free(host);
		return NULL;
	}
	if (cgroup_backend_open(&host->cgroup, err) < 0) {
		close(host->dev_null_fd);
		free(host);
		return NULL;
	}
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
