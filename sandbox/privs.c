/*
 * Privileges inside the jail: rlimits, the network namespace's loopback,
 * identity and capabilities, and the read-back that proves they took.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/securebits.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox/internal.h"

static void set_rlimit2(const struct jail_plan *plan, int resource,
			const char *name, uint64_t soft, uint64_t hard)
{
	struct rlimit rl = { .rlim_cur = soft, .rlim_max = hard };
	if (setrlimit(resource, &rl) < 0)
		jail_fail(plan, errno, "rlimit: set %s to %llu", name,
			  (unsigned long long)soft);
}

static void set_rlimit(const struct jail_plan *plan, int resource,
		       const char *name, uint64_t value)
{
	struct rlimit rl = { .rlim_cur = value, .rlim_max = value };
	if (setrlimit(resource, &rl) < 0)
		jail_fail(plan, errno, "rlimit: set %s to %llu", name,
			  (unsigned long long)value);
}

void jail_set_rlimits(const struct jail_plan *plan)
{
	const struct policy_limits *l = plan->limits;
	/* core dumps would write module memory to disk */
	set_rlimit(plan, RLIMIT_CORE, "core", 0);
	set_rlimit(plan, RLIMIT_NOFILE, "open files", l->nofile);
	set_rlimit(plan, RLIMIT_FSIZE, "file size", l->fsize_bytes);
	/* whole seconds, rounded up: the wall clock deadline is the precise
	 * one, this stops a multi-threaded module burning several cores. The
	 * soft limit sends SIGXCPU (a timeout verdict); the hard one, a second
	 * later, SIGKILLs a module that ignores it. Equal limits would skip
	 * SIGXCPU and leave a bare SIGKILL. */
	uint64_t cpu_s = (l->cpu_time_us + 999999) / 1000000;
	set_rlimit2(plan, RLIMIT_CPU, "cpu time", cpu_s, cpu_s + 1);
	if (l->as_bytes)
		set_rlimit(plan, RLIMIT_AS, "address space", l->as_bytes);
	/* locked memory escapes the cgroup's reclaim */
	set_rlimit(plan, RLIMIT_MEMLOCK, "locked memory", 0);
	/* sched_setscheduler and setpriority are allowed: with these at 0 and
	 * no CAP_SYS_NICE they cannot raise a thread above the host's */
	set_rlimit(plan, RLIMIT_RTPRIO, "realtime priority", 0);
	set_rlimit(plan, RLIMIT_NICE, "nice ceiling", 0);
}

void jail_setup_network(const struct jail_plan *plan)
{
	if (plan->limits->net != POLICY_NET_LOOPBACK)
		return;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		jail_fail(plan, errno, "network: socket");
	struct ifreq ifr = { 0 };
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		jail_fail(plan, errno, "network: read flags of lo");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		jail_fail(plan, errno, "network: bring lo up");
	close(fd);
}

static void drop_capabilities(const struct jail_plan *plan)
{
	/* The bounding set first, while CAP_SETPCAP is still held: a cap
	 * left there could come back through a file capability. */
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
		if (cap_drop_bound((cap_value_t)cap) < 0 && errno != EINVAL)
			jail_fail(plan, errno,
				  "capabilities: drop %d from the bounding set",
				  cap);
	/* ambient capabilities survive execve of unprivileged programs */
	if (cap_reset_ambient() < 0)
		jail_fail(plan, errno, "capabilities: clear the ambient set");
}

static void clear_capability_sets(const struct jail_plan *plan)
{
	cap_t empty = cap_init();
	if (!empty)
		jail_fail(plan, errno, "capabilities: cap_init");
	if (cap_set_proc(empty) < 0)
		jail_fail(plan, errno, "capabilities: clear all sets");
	cap_free(empty);
}

static void write_self(const struct jail_plan *plan, const char *file,
		       const char *text)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/%s", file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		jail_fail(plan, errno, "identity: open %s", path);
	ssize_t n = write(fd, text, strlen(text));
	int saved = errno;
	close(fd);
	if (n != (ssize_t)strlen(text))
		jail_fail(plan, n < 0 ? saved : EIO, "identity: write %s",
			  path);
}

/*
 * Root with a uid range: become the run's own host uid and gid (uids.c says
 * why each run has its own), then show them inside as the policy's through
 * a user namespace of the run's. The namespace is made after the host ids
 * are taken, because the kernel charges a namespace's per-user counters to
 * its owner in the parent: made by root, every run's inotify instances and
 * pending signals would add up under root's. Capabilities are kept across
 * the change of uid (SECBIT_NO_SETUID_FIXUP) so that a host which refuses
 * unprivileged user namespaces still allows this one; the new namespace's
 * full set is dropped below like any other.
 */
static void enter_run_identity(const struct jail_plan *plan)
{
	const struct policy_limits *l = plan->limits;
	char map[64];
	if (setgroups(0, NULL) < 0)
		jail_fail(plan, errno, "identity: clear supplementary groups");
	if (setresgid(plan->run_gid, plan->run_gid, plan->run_gid) < 0)
		jail_fail(plan, errno, "identity: setresgid(%u)",
			  plan->run_gid);
	if (prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP, 0, 0, 0) < 0)
		jail_fail(plan, errno, "identity: keep capabilities");
	if (setresuid(plan->run_uid, plan->run_uid, plan->run_uid) < 0)
		jail_fail(plan, errno, "identity: setresuid(%u)",
			  plan->run_uid);
	if (unshare(CLONE_NEWUSER) < 0)
		jail_fail(plan, errno, "identity: user namespace");
	/* The change of uid made init non-dumpable, and the /proc/self files
	 * of a non-dumpable process belong to host root, whom the new
	 * namespace cannot name: dumpable again for the three writes. No
	 * process but init has the run's uid (the lock holds it, host
	 * accounts are skipped) and init is alone in its pid namespace, so
	 * nothing can attach meanwhile. */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
		jail_fail(plan, errno, "identity: prctl(PR_SET_DUMPABLE)");
	snprintf(map, sizeof(map), "%u %u 1\n", l->uid, plan->run_uid);
	write_self(plan, "uid_map", map);
	write_self(plan, "setgroups", "deny");
	snprintf(map, sizeof(map), "%u %u 1\n", l->gid, plan->run_gid);
	write_self(plan, "gid_map", map);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECUREBITS, 0, 0, 0, 0) < 0)
		jail_fail(plan, errno, "identity: non-dumpable, securebits");
}

void jail_drop_privileges(const struct jail_plan *plan)
{
	const struct policy_limits *l = plan->limits;
	if (l->uid == 0 || l->gid == 0)
		jail_fail(plan, EPERM, "identity: uid and gid 0 are refused");
	if (plan->run_ids)
		enter_run_identity(plan);
	drop_capabilities(plan);
	/* supplementary groups would keep the caller's group access (in a
	 * user namespace setgroups is denied: see map_ids in spawn.c; a
	 * run's own cleared them before making its namespace) */
	if (!plan->userns && !plan->run_ids && setgroups(0, NULL) < 0)
		jail_fail(plan, errno, "identity: clear supplementary groups");
	if (setresgid(l->gid, l->gid, l->gid) < 0)
		jail_fail(plan, errno, "identity: setresgid(%u)", l->gid);
	if (setresuid(l->uid, l->uid, l->uid) < 0)
		jail_fail(plan, errno, "identity: setresuid(%u)", l->uid);
	clear_capability_sets(plan);
	/* no setuid or file-capability execve can give any of it back */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		jail_fail(plan, errno, "prctl(PR_SET_NO_NEW_PRIVS)");
	/* init holds a copy of the caller's memory (airlock validate: every
	 * case's expected output; airlockd: its heap) and runs as the
	 * module's uid. A change of uid leaves it dumpable when none happens
	 * on the host (rootless: the caller's uid throughout) or when
	 * fs.suid_dumpable is 1; non-dumpable, the module may not open
	 * /proc/1/mem, environ, maps, fd/ or ptrace it. After the uid change,
	 * which resets the flag. The module's own execve sets its own. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		jail_fail(plan, errno, "prctl(PR_SET_DUMPABLE)");
	/* A change of credentials clears the parent-death signal: set it
	 * again, then make sure the parent did not die in between. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		jail_fail(plan, errno, "prctl(PR_SET_PDEATHSIG)");
	char probe;
	if (recv(plan->sync_fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
		_exit(1); /* parent gone: nobody to report to */
}

/* "CapEff:\t0000000000000000" → true when the hex value is zero. */
static bool field_is(const char *status, const char *key, const char *want)
{
	const char *p = strstr(status, key);
	if (!p)
		return false;
	p += strlen(key);
	while (*p == '\t' || *p == ' ')
		p++;
	return strncmp(p, want, strlen(want)) == 0;
}

static bool ids_nonzero(const char *status, const char *key)
{
	const char *p = strstr(status, key);
	if (!p)
		return false;
	p += strlen(key);
	for (int i = 0; i < 4; i++) {
		char *end;
		unsigned long v = strtoul(p, &end, 10);
		if (end == p || v == 0)
			return false;
		p = end;
	}
	return true;
}

/* A run's own namespace maps exactly one id, the policy's, to the run's
 * host uid (and gid): nothing else of the host can be named inside. */
static void verify_id_map(const struct jail_plan *plan)
{
	static const char *const files[] = { "/proc/self/uid_map",
					     "/proc/self/gid_map" };
	const uint32_t inside[] = { plan->limits->uid, plan->limits->gid };
	const uint32_t outside[] = { plan->run_uid, plan->run_gid };
	for (int i = 0; i < 2; i++) {
		char buf[256];
		unsigned long in, out, count;
		int used = 0;
		int fd = open(files[i], O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (fd >= 0)
			close(fd);
		if (n <= 0)
			jail_fail(plan, errno, "verify: read %s", files[i]);
		buf[n] = '\0';
		if (sscanf(buf, "%lu %lu %lu %n", &in, &out, &count, &used) !=
			    3 ||
		    buf[used] != '\0' || in != inside[i] || out != outside[i] ||
		    count != 1)
			jail_fail(plan, EPERM, "verify: %s is not \"%u %u 1\"",
				  files[i], inside[i], outside[i]);
	}
}

/*
 * Read back from the kernel what was asked for: an empty capability set in
 * all five sets, no uid or gid 0, no_new_privs. (The seccomp mode is read
 * by the parent once the filter is in: init's own status is filtered.)
 */
void jail_verify_privileges(const struct jail_plan *plan)
{
	char status[8192];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		jail_fail(plan, errno, "verify: open /proc/self/status");
	ssize_t n = read(fd, status, sizeof(status) - 1);
	close(fd);
	if (n <= 0)
		jail_fail(plan, errno, "verify: read /proc/self/status");
	status[n] = '\0';
	static const char *const sets[] = { "CapInh:", "CapPrm:", "CapEff:",
					    "CapBnd:", "CapAmb:" };
	for (size_t i = 0; i < ARRAY_SIZE(sets); i++)
		if (!field_is(status, sets[i], "0000000000000000"))
			jail_fail(plan, EPERM, "verify: %s is not empty",
				  sets[i]);
	if (!ids_nonzero(status, "\nUid:") || !ids_nonzero(status, "\nGid:"))
		jail_fail(plan, EPERM, "verify: uid or gid 0 inside the jail");
	if (!field_is(status, "NoNewPrivs:", "1"))
		jail_fail(plan, EPERM, "verify: no_new_privs is not set");
	if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
		jail_fail(plan, EPERM, "verify: init is still dumpable");
	if (!plan->userns && !field_is(status, "Groups:", "\n"))
		jail_fail(plan, EPERM, "verify: supplementary groups remain");
	if (plan->run_ids)
		verify_id_map(plan);
}
