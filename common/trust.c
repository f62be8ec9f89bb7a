/*
 * Trusted paths, in the spirit of sshd's StrictModes: a file the daemon
 * acts on as root (a policy, the state directory) must be one that only
 * root could have put there. Otherwise a local user who can write the
 * file, or rename entries in any directory above it, decides what root
 * does: a planted policy that binds /etc/shadow, a swapped module.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"

/* Owned by root (or by the daemon's own uid, for an unprivileged test
 * daemon), and not writable by group or other. A root-owned sticky
 * directory (/tmp) is accepted as an ancestor only: others may add
 * entries there but not rename or remove root's. */
static int check_one(const char *path, const struct stat *st, bool leaf,
		     uid_t self, struct al_error *err)
{
	if (st->st_uid != 0 && st->st_uid != self)
		return al_error_set(err, EPERM,
				    "%s is owned by uid %u, not root: "
				    "chown root it (or move it under a "
				    "root-owned directory)",
				    path, (unsigned)st->st_uid);
	if (!(st->st_mode & (S_IWGRP | S_IWOTH)))
		return 0;
	if (!leaf && S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX))
		return 0;
	return al_error_set(err, EPERM,
			    "%s is writable by %s (mode %04o): "
			    "chmod go-w it",
			    path,
			    (st->st_mode & S_IWOTH) ? "everyone" : "its group",
			    (unsigned)(st->st_mode & 07777));
}

int al_stat_trusted(const char *what, const struct stat *st, uid_t self,
		    struct al_error *err)
{
	return check_one(what, st, true, self, err);
}

int al_path_trusted(const char *path, uid_t self, struct al_error *err)
{
	char real[PATH_MAX];
	struct stat st;

	if (!realpath(path, real))
		return al_error_sys(err, errno, "%s", path);
	/* the leaf, then every directory above it up to / */
	if (lstat(real, &st) < 0)
		return al_error_sys(err, errno, "%s", real);
	if (check_one(real, &st, true, self, err) < 0)
		return -1;
	for (char *slash = strrchr(real, '/'); slash;
	     slash = strrchr(real, '/')) {
		if (slash == real) {
			slash[1] = '\0';
			if (lstat(real, &st) < 0)
				return al_error_sys(err, errno, "%s", real);
			return check_one(real, &st, false, self, err);
		}
		*slash = '\0';
		if (lstat(real, &st) < 0)
			return al_error_sys(err, errno, "%s", real);
		if (check_one(real, &st, false, self, err) < 0)
			return -1;
	}
	return 0;
}
