/*
 * Leftover run cgroups: when an airlock process dies without cleaning up
 * (airlockd SIGKILLed), its jails die with it (PR_SET_PDEATHSIG) but their
 * cgroup directories stay. The sandbox knows how it names them and removes
 * those of dead owners (sandbox_host_sweep); this logs what it did, at
 * start-up and on every tick.
 */
#include <string.h>

#include "supervisor/internal.h"

static void report(const char *path, int killed, int errnum, void *arg)
{
	(void)arg;
	if (errnum == 0)
		LOG(LOG_INFO, NULL, 0,
		    "removed leftover cgroup %s (%d processes killed)", path,
		    killed);
	else
		LOG(LOG_WARN, NULL, 0,
		    "leftover cgroup %s: %d processes killed, removal: %s",
		    path, killed, strerror(errnum));
}

void sweep_stale_cgroups(struct supervisor *s)
{
	sandbox_host_sweep(s->host, report, NULL);
}
