/*
 * Leftover run cgroups: a run cgroup is named run-<owner pid>-<n> under
 * <controller mount>/<our cgroup>/airlock (both backends). When its owner
 * died without cleaning up (airlockd SIGKILLed), the jail's init died with
 * it (PR_SET_PDEATHSIG) but the directory stays. At start-up and on every
 * tick we kill what is still inside such a cgroup and remove it.
 *
 * This reads the sandbox's naming from outside; it belongs in sandbox/ as
 * a sandbox_host_sweep() (asked for in the supervisor's report) and moves
 * there when that exists.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisor/internal.h"

#define MAX_BASES 16

/* Whether pid is a live airlock process (airlockd or airlock run). */
static bool owner_alive(pid_t pid)
{
	char link[64], exe[PATH_MAX];

	if (pid == getpid())
		return true;
	snprintf(link, sizeof(link), "/proc/%d/exe", pid);
	ssize_t n = readlink(link, exe, sizeof(exe) - 1);
	if (n < 0)
		return errno != ENOENT && errno != ESRCH ? true : false;
	exe[n] = '\0';
	const char *base = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
	return strncmp(base, "airlock", 7) == 0;
}

/* The cgroup mounts (v1 controllers and v2) joined with our own cgroup
 * path: where the sandbox makes its "airlock" directories. */
static size_t cgroup_bases(char bases[MAX_BASES][PATH_MAX])
{
	FILE *mi = fopen("/proc/self/mountinfo", "re");
	FILE *cg = fopen("/proc/self/cgroup", "re");
	char line[4096], own[4096];
	size_t n = 0;

	if (!mi || !cg)
		goto out;
	while (fgets(line, sizeof(line), mi) && n < MAX_BASES) {
		char root[PATH_MAX], mnt[PATH_MAX], fstype[64], super[1024];
		char *dash = strstr(line, " - ");
		if (!dash ||
		    sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2 ||
		    sscanf(dash + 3, "%63s %*s %1023s", fstype, super) != 2)
			continue;
		bool v2 = strcmp(fstype, "cgroup2") == 0;
		if (!v2 && strcmp(fstype, "cgroup") != 0)
			continue;
		rewind(cg);
		while (fgets(own, sizeof(own), cg) && n < MAX_BASES) {
			char *c1 = strchr(own, ':');
			char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
			if (!c2)
				continue;
			*c2 = '\0';
			own[strcspn(own, "\n")] = '\0';
			char *path = c2 + 1;
			path[strcspn(path, "\n")] = '\0';
			const char *ctrls = c1 + 1;
			bool match = v2 ? *ctrls == '\0'
					: *ctrls && strstr(super, ctrls);
			if (!match || strncmp(path, root, strlen(root)) != 0)
				continue;
			const char *rel = path + strlen(root);
			if (snprintf(bases[n], PATH_MAX, "%s/%s/airlock", mnt,
				     *rel == '/' ? rel + 1 : rel) < PATH_MAX)
				n++;
		}
	}
out:
	if (mi)
		fclose(mi);
	if (cg)
		fclose(cg);
	return n;
}

/* Kill everything in one stale cgroup and remove it; a cgroup whose
 * processes take time to die is removed on a later pass. */
static void sweep_one(const char *dir)
{
	char procs[PATH_MAX + 16];
	if (snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir) >=
	    (int)sizeof(procs))
		return;
	FILE *f = fopen(procs, "re");
	int pid, killed = 0;
	if (f) {
		while (fscanf(f, "%d", &pid) == 1)
			if (pid > 1 && kill(pid, SIGKILL) == 0)
				killed++;
		fclose(f);
	}
	if (rmdir(dir) == 0)
		LOG(LOG_INFO, NULL, 0, "removed leftover cgroup %s", dir);
	else if (errno != ENOENT)
		LOG(LOG_WARN, NULL, 0,
		    "leftover cgroup %s: %d processes killed, removal: %s",
		    dir, killed, strerror(errno));
}

void sweep_stale_cgroups(struct supervisor *s)
{
	static char bases[MAX_BASES][PATH_MAX];
	size_t n = cgroup_bases(bases);
	(void)s;

	for (size_t i = 0; i < n; i++) {
		DIR *d = opendir(bases[i]);
		struct dirent *e;
		if (!d)
			continue;
		while ((e = readdir(d))) {
			int owner;
			char path[PATH_MAX];
			if (sscanf(e->d_name, "run-%d-", &owner) != 1 ||
			    owner_alive(owner))
				continue;
			if (snprintf(path, sizeof(path), "%s/%s", bases[i],
				     e->d_name) >= (int)sizeof(path))
				continue;
			sweep_one(path);
		}
		closedir(d);
	}
}
