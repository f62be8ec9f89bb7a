/*
 * airlock doctor [--json] [--state-dir DIR]: does this host have what
 * airlock needs? Each check says pass, warn or fail, why, and what to do.
 * Exit status 1 when a required check fails, else 0.
 *
 * The checks try the real thing where it is cheap and safe (a pidfd, a
 * seccomp listener in a throw-away child, the sandbox's own host probe,
 * unshare(CLONE_NEWUSER) in a child) and read the sysctls that explain a
 * refusal, rather than guessing from version numbers alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/filter.h>
#include <linux/magic.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "tools/cli.h"

enum level { PASS, WARN, FAIL };

struct doctor {
	bool json;
	bool root;
	struct json_buf jb;
	unsigned failed, warned;
};

static void report(struct doctor *d, const char *name, bool required,
		   enum level lv, const char *fix, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static void report(struct doctor *d, const char *name, bool required,
		   enum level lv, const char *fix, const char *fmt, ...)
{
	static const char *const names[] = { "pass", "warn", "fail" };
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	/* a check nothing depends on warns at worst */
	if (lv == FAIL && !required)
		lv = WARN;
	d->failed += lv == FAIL;
	d->warned += lv == WARN;
	if (d->json) {
		json_object_open(&d->jb);
		json_kv_string(&d->jb, "check", name);
		json_kv_string(&d->jb, "status", names[lv]);
		json_kv_bool(&d->jb, "required", required);
		json_kv_string(&d->jb, "detail", detail);
		json_kv_string(&d->jb, "fix", lv == PASS ? NULL : fix);
		json_object_close(&d->jb);
		return;
	}
	printf("  %-4s  %-22s %s\n",
	       lv == PASS   ? "PASS"
	       : lv == WARN ? "WARN"
			    : "FAIL",
	       name, detail);
	if (lv != PASS && fix)
		printf("        %-22s fix: %s\n", "", fix);
}

/* The first line of a small file, or "" when it cannot be read. */
static void read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");

	buf[0] = '\0';
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

static void check_root(struct doctor *d)
{
	if (d->root)
		report(d, "root", true, PASS, NULL, "running as root");
	else
		report(d, "root", false, FAIL,
		       "run airlockd as root (systemd does); airlock run works "
		       "rootless only under best-effort policies or a "
		       "delegated cgroup",
		       "uid %u: airlockd cannot run; airlock run builds jails "
		       "in a user namespace",
		       (unsigned)geteuid());
}

static void check_kernel(struct doctor *d)
{
	struct utsname u;
	int major = 0, minor = 0;

	if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2) {
		report(d, "kernel", true, FAIL, NULL,
		       "cannot read the release");
		return;
	}
	int v = major * 1000 + minor;
	if (v < 5003)
		report(d, "kernel", true, FAIL,
		       "upgrade to Linux 5.14 or later",
		       "%s: pidfd_open needs 5.3 or later", u.release);
	else if (v < 5014)
		report(d, "kernel", true, WARN,
		       "upgrade to Linux 5.14 or later",
		       "%s: works, but cgroup.kill (5.14) and memory.peak "
		       "(5.19) are missing",
		       u.release);
	else
		report(d, "kernel", true, PASS, NULL, "Linux %s", u.release);
}

/* What to do when no cgroup driver works here, by what the host is. */
static const char *cgroup_fix(bool root)
{
	struct statfs fs;
	bool v2 = statfs("/sys/fs/cgroup", &fs) == 0 &&
		  fs.f_type == CGROUP2_SUPER_MAGIC;
	bool systemd = access("/run/systemd/system", F_OK) == 0;
	if (!v2)
		return "mount the memory and pids controllers (cgroup v1), or "
		       "boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1)";
	if (systemd && root)
		return "airlock asks systemd for a delegated scope: check that "
		       "systemd answers (systemctl status), or run airlock in a "
		       "unit with Delegate=yes (systemd-run --scope -p "
		       "Delegate=yes airlock ...)";
	if (systemd)
		return "airlock asks this user's systemd manager for a delegated "
		       "scope: let it run (loginctl enable-linger USER, "
		       "XDG_RUNTIME_DIR set), or run under systemd-run --user "
		       "--scope -p Delegate=yes airlock ...";
	if (root)
		return "enable memory and pids in /sys/fs/cgroup/"
		       "cgroup.subtree_control";
	return "have root delegate a cgroup v2 subtree to this user (chown "
	       "it) and run airlock alone in it";
}

/* The sandbox's own probe: what airlock run and airlockd will use (with
 * systemd, that includes asking it for a scope, which lives as long as
 * this command). */
static void check_cgroup(struct doctor *d)
{
	struct al_error err = { 0 };
	struct sandbox_host *host = sandbox_host_new(&err);
	char detail[AL_ERROR_MAX];

	if (!host) {
		report(d, "cgroup", d->root, FAIL, cgroup_fix(d->root), "%s",
		       err.msg);
		return;
	}
	const char *mode = sandbox_host_cgroup_mode(host);
	sandbox_host_cgroup_detail(host, detail, sizeof(detail));
	if (strcmp(mode, "none") == 0)
		report(d, "cgroup", d->root, FAIL, cgroup_fix(d->root),
		       "none usable without root, so only best-effort policies "
		       "run: %s",
		       detail);
	else
		report(d, "cgroup", true, PASS, NULL, "driver %s: %s", mode,
		       detail);
	sandbox_host_free(host);
}

/* unshare(CLONE_NEWUSER) in a child, with the sysctls that explain a no. */
static void check_userns(struct doctor *d)
{
	char clone[16], max[32], aa[16];
	pid_t pid;
	int status = 0;

	read_line("/proc/sys/kernel/unprivileged_userns_clone", clone,
		  sizeof(clone));
	read_line("/proc/sys/user/max_user_namespaces", max, sizeof(max));
	read_line("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", aa,
		  sizeof(aa));
	pid = fork();
	if (pid == 0)
		_exit(unshare(CLONE_NEWUSER) == 0 ? 0 : 1);
	bool works = pid > 0 && waitpid(pid, &status, 0) == pid &&
		     WIFEXITED(status) && WEXITSTATUS(status) == 0;
	bool restricted = strcmp(clone, "0") == 0 || strcmp(max, "0") == 0 ||
			  strcmp(aa, "1") == 0;
	char sysctls[160];
	snprintf(sysctls, sizeof(sysctls),
		 "kernel.unprivileged_userns_clone=%s "
		 "user.max_user_namespaces=%s "
		 "apparmor_restrict_unprivileged_userns=%s",
		 clone[0] ? clone : "-", max[0] ? max : "-", aa[0] ? aa : "-");
	if (!works)
		report(d, "user namespaces", !d->root, FAIL,
		       "sysctl kernel.unprivileged_userns_clone=1, "
		       "user.max_user_namespaces=10000, "
		       "kernel.apparmor_restrict_unprivileged_userns=0",
		       "cannot create one (%s)", sysctls);
	else if (restricted && !d->root)
		report(d, "user namespaces", true, WARN,
		       "check the sysctls named", "created one, but %s",
		       sysctls);
	else
		report(d, "user namespaces", !d->root, PASS, NULL, "%s (%s)",
		       d->root ? "available; root jails do not need them"
			       : "available to this user",
		       sysctls);
}

/* A listener for an allow-everything filter, in a child that then exits:
 * what every jail's seccomp setup asks of the kernel. */
static void check_seccomp(struct doctor *d)
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		struct sock_filter allow[] = {
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = { .len = 1, .filter = allow };
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			_exit(2);
		long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
				  SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
		_exit(fd >= 0 ? 0 : errno == EINVAL ? 3 : 4);
	}
	bool ok = pid > 0 && waitpid(pid, &status, 0) == pid &&
		  WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (ok)
		report(d, "seccomp user-notify", true, PASS, NULL,
		       "a filter with a listener loads");
	else
		report(d, "seccomp user-notify", true, FAIL,
		       "Linux 5.0 or later with CONFIG_SECCOMP_FILTER",
		       "a filter with a listener is refused (status %d)",
		       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void check_pidfd(struct doctor *d)
{
	long fd = syscall(SYS_pidfd_open, getpid(), 0);

	if (fd >= 0) {
		close((int)fd);
		report(d, "pidfd", true, PASS, NULL, "pidfd_open works");
	} else {
		report(d, "pidfd", true, FAIL, "Linux 5.3 or later",
		       "pidfd_open: %s", strerror(errno));
	}
}

/* The state directory: there (or creatable), not writable by others, on
 * a filesystem with room. */
static void check_state_dir(struct doctor *d, const char *dir)
{
	struct stat st;
	struct statvfs vfs;
	char parent[4096], fix[4200];

	if (stat(dir, &st) < 0) {
		snprintf(parent, sizeof(parent), "%s", dir);
		char *slash = strrchr(parent, '/');
		if (slash && slash != parent)
			*slash = '\0';
		else if (slash)
			parent[1] = '\0';
		bool creatable = errno == ENOENT && access(parent, W_OK) == 0;
		snprintf(fix, sizeof(fix), "install -d -m 0750 %s", dir);
		report(d, "state directory", true, creatable ? WARN : FAIL, fix,
		       "%s: %s%s", dir, strerror(errno),
		       creatable ? "; airlockd creates it at its first start"
				 : "");
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		report(d, "state directory", true, FAIL,
		       "point --state-dir at a directory",
		       "%s is not a directory", dir);
		return;
	}
	snprintf(fix, sizeof(fix), "chmod 0750 %s", dir);
	if (st.st_mode & S_IWOTH) {
		report(d, "state directory", true, FAIL, fix,
		       "%s is writable by everyone (mode %04o): anyone could "
		       "replace modules",
		       dir, st.st_mode & 07777);
		return;
	}
	if (d->root && st.st_uid != 0) {
		snprintf(fix, sizeof(fix), "chown root %s", dir);
		report(d, "state directory", true, FAIL, fix,
		       "%s belongs to uid %u, not root", dir,
		       (unsigned)st.st_uid);
		return;
	}
	if (st.st_mode & S_IWGRP) {
		report(d, "state directory", true, WARN, fix,
		       "%s is group-writable (mode %04o)", dir,
		       st.st_mode & 07777);
		return;
	}
	if (statvfs(dir, &vfs) == 0 &&
	    (uint64_t)vfs.f_bavail * vfs.f_frsize < (1ull << 30)) {
		report(d, "state directory", true, WARN,
		       "free space on its filesystem",
		       "%s: less than 1 GiB free", dir);
		return;
	}
	report(d, "state directory", true, PASS, NULL, "%s (mode %04o, uid %u)",
	       dir, st.st_mode & 07777, (unsigned)st.st_uid);
}

int cmd_doctor(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct doctor d = { .root = geteuid() == 0 };
	const char *state_dir = NULL;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hj", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': d.json = true; break;
		case 'd': state_dir = optarg; break;
		case 'h':
			printf("usage: airlock doctor [--json] [--state-dir DIR]"
			       "\n\nCheck this host for what airlock needs; "
			       "exit 1 when a required check fails.\n");
			return 0;
		default:
			fprintf(stderr, "airlock doctor: bad option %s\n",
				argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "airlock doctor: no arguments expected\n");
		return CLI_EXIT_USAGE;
	}
	state_dir = cli_state_dir(state_dir);
	json_buf_init(&d.jb);
	json_object_open(&d.jb);
	json_kv_string(&d.jb, "version", AIRLOCK_VERSION);
	json_key(&d.jb, "checks");
	json_array_open(&d.jb);
	if (!d.json)
		printf("airlock %s doctor\n", AIRLOCK_VERSION);
	fflush(stdout); /* the checks fork */
	check_root(&d);
	check_kernel(&d);
	check_cgroup(&d);
	check_userns(&d);
	check_seccomp(&d);
	check_pidfd(&d);
	check_state_dir(&d, state_dir);
	json_array_close(&d.jb);
	json_kv_bool(&d.jb, "ok", d.failed == 0);
	json_kv_uint(&d.jb, "failed", d.failed);
	json_kv_uint(&d.jb, "warnings", d.warned);
	json_object_close(&d.jb);
	if (d.json && !json_buf_failed(&d.jb))
		printf("%s\n", d.jb.data);
	else if (!d.json)
		printf("%s: %u required check%s failed, %u warning%s\n",
		       d.failed ? "NOT READY" : "ready", d.failed,
		       d.failed == 1 ? "" : "s", d.warned,
		       d.warned == 1 ? "" : "s");
	json_buf_free(&d.jb);
	return d.failed ? 1 : 0;
}
