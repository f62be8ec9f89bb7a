/*
 * What crashes leave behind, removed at start-up and on every tick.
 *
 * Leftover run cgroups: when an airlock process dies without cleaning up
 * (airlockd SIGKILLed), its jails die with it (PR_SET_PDEATHSIG) but their
 * cgroup directories stay. The sandbox knows how it names them and removes
 * those of dead owners (sandbox_host_sweep); this logs what it did.
 *
 * Leftover staging files: a submission cut short between writing its file
 * and committing its row, or whose undo failed, leaves a file in staging/
 * that nothing refers to (manifest_staging_sweep). Only files older than a
 * minute go, so nothing a writer is still working on is touched.
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

#define STAGING_MIN_AGE_MS 60000

static void report_staging(const char *path, void *arg)
{
	(void)arg;
	LOG(LOG_INFO, NULL, 0, "removed leftover %s (no module refers to it)",
	    path);
}

void sweep_staging(struct supervisor *s)
{
	struct al_error err = { 0 };
	if (manifest_staging_sweep(s->m, STAGING_MIN_AGE_MS, report_staging,
				   NULL, &err) < 0)
		LOG(LOG_WARN, NULL, 0, "%s", err.msg);
}
