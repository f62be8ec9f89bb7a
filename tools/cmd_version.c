/*
 * airlock version: the version, and the isolation this host gives (the
 * cgroup driver, the privilege mode, how jails are launched, the
 * runs' host uid range). Also
 * `airlock run -V`.
 */
#include <stdio.h>

#include "sandbox/sandbox.h"
#include "tools/cli.h"

int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct al_error err = { 0 };
	printf("airlock %s\n", AIRLOCK_VERSION);
	struct sandbox_host *host = cli_sandbox_host(&err);
	char uids[AL_ERROR_MAX];
	if (!host) {
		printf("isolation: unavailable: %s\n", err.msg);
		return 0;
	}
	printf("cgroup: %s\nprivilege: %s\nseccomp: filter with user "
	       "notification\nlaunch: %s\nhost uids: %s\n",
	       sandbox_host_cgroup_mode(host),
	       sandbox_host_privilege_mode(host),
	       sandbox_host_launch_mode(host),
	       sandbox_host_uid_detail(host, uids, sizeof(uids)));
	sandbox_host_free(host);
	return 0;
}
