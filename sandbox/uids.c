/*
 * Host ids for runs: each concurrent run as root gets a uid (and the same
 * gid) of its own from a range, in the spirit of isolate's box uids.
 *
 * Why: the kernel keeps many limits per user, not per process or per
 * namespace: inotify instances and watches, pending signals and POSIX
 * timers (RLIMIT_SIGPENDING), pipe buffer pages (pipe-user-pages-soft),
 * POSIX message queue bytes. Runs that share one host uid share each of
 * them, so one module can use a counter up and starve every other run (and
 * whatever else on the host is that uid; 65534 is also `nobody`).
 *
 * Allocation has to hold across processes: airlockd and any number of
 * `airlock run`/`validate` processes take ids from the same range at once.
 * Each id has a lock file, /run/airlock/uids/ID, and a run holds the id as
 * long as it holds flock(LOCK_EX) on its own open of that file. Why files
 * and flock: the kernel drops the lock when the holder dies, SIGKILL
 * included, so a killed `airlock run` leaks nothing; two opens in one
 * process conflict too, so airlockd's concurrent runs need no table of
 * their own; and `ls`/`fuser` show who holds what. (One file with a byte
 * per id under OFD locks would do the same with one inode, but needs the
 * in-process bookkeeping flock gives for free.) Only ids runs have used
 * get a file: the lowest free id is taken, so there are about as many
 * files as the most runs there ever were at once.
 *
 * A holder that ended cleanly empties its file; one that was killed left
 * its pid there. Its jail dies with it (PR_SET_PDEATHSIG), but not in the
 * same instant, so an id whose file is not empty is taken only once no
 * process on the host has that uid any more.
 *
 * The ids of host accounts are never used: a run as an account's uid could
 * signal that account's processes and use its files; as a subordinate id
 * of a user's (/etc/subuid), that user's containers could reach the run.
 * /etc/passwd, /etc/group, /etc/subuid and /etc/subgid are read (as files:
 * the CLI is static and calls no NSS) at start and again whenever one of
 * them changed, and those ids are skipped.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/internal.h"

#define UID_LOCK_TOP "/run/airlock"
#define UID_LOCK_DIR "uids"

static const char *const account_files[UID_ACCOUNT_FILES] = {
	"/etc/passwd",
	"/etc/group",
	"/etc/subuid",
	"/etc/subgid",
};

/* ------------------------------------------------------------------ pure */

static int parse_u32(const char *s, size_t len, uint32_t *out)
{
	char buf[16];
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (buf[i] < '0' || buf[i] > '9')
			return -1;
	unsigned long long v = strtoull(buf, NULL, 10);
	if (v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int sandbox_uid_range_parse(const char *text, struct sandbox_uid_range *out,
			    struct al_error *err)
{
	if (strcmp(text, "none") == 0) {
		*out = (struct sandbox_uid_range){ 0, 0 };
		return 0;
	}
	const char *colon = strchr(text, ':');
	uint32_t base, count;
	if (!colon || parse_u32(text, (size_t)(colon - text), &base) < 0 ||
	    parse_u32(colon + 1, strlen(colon + 1), &count) < 0)
		return al_error_set(err, EINVAL,
				    "uid range \"%s\": expected BASE:COUNT "
				    "(such as %s) or none",
				    text, SANDBOX_UID_RANGE_DEFAULT);
	/* 0 is root; the last id is (uid_t)-1, which setresuid reads as
	 * "no change"; 65535 is the 16-bit -1 */
	uint64_t last = (uint64_t)base + count - 1;
	if (base == 0 || count == 0 || last >= UINT32_MAX ||
	    (base <= 65535 && last >= 65535))
		return al_error_set(err, ERANGE,
				    "uid range \"%s\": BASE must be above 0, "
				    "COUNT at least 1, and the range must not "
				    "hold 65535 or 4294967295",
				    text);
	*out = (struct sandbox_uid_range){ base, count };
	return 0;
}

bool uid_pool_excluded(const struct uid_pool *p, uint32_t id)
{
	for (size_t i = 0; i < p->n_excluded; i++)
		if (id >= p->excluded[i].lo && id <= p->excluded[i].hi)
			return true;
	return false;
}

/* Add [lo, lo + n - 1], clipped to the range. */
static int exclude(struct uid_pool *p, uint32_t lo, uint64_t n)
{
	uint64_t hi = (uint64_t)lo + (n ? n - 1 : 0);
	uint64_t last = (uint64_t)p->base + p->count - 1;
	if (n == 0 || hi < p->base || lo > last)
		return 0;
	if (p->n_excluded == p->cap_excluded) {
		size_t cap = p->cap_excluded ? p->cap_excluded * 2 : 16;
		struct uid_span *grown = realloc(p->excluded,
						 cap * sizeof(*grown));
		if (!grown)
			return -1;
		p->excluded = grown;
		p->cap_excluded = cap;
	}
	p->excluded[p->n_excluded++] = (struct uid_span){
		.lo = lo < p->base ? p->base : lo,
		.hi = (uint32_t)(hi > last ? last : hi),
	};
	return 0;
}

/* The bounds of the 1-based field `n` of line; false when it has fewer. */
static bool field_at(const char *line, int n, const char **start, size_t *len)
{
	const char *p = line;
	for (int i = 1; i < n; i++) {
		p = strchr(p, ':');
		if (!p)
			return false;
		p++;
	}
	*start = p;
	*len = strcspn(p, ":\n");
	return true;
}

int uid_accounts_parse(struct uid_pool *p, FILE *f, const int *fields,
		       size_t n_fields, int span)
{
	char *line = NULL;
	size_t cap = 0;
	int rc = 0;
	while (rc == 0 && getline(&line, &cap, f) > 0) {
		const char *s;
		size_t len;
		uint32_t id, count;
		if (line[0] == '#')
			continue;
		for (size_t i = 0; rc == 0 && i < n_fields; i++) {
			/* a line that is not an entry names no id */
			if (!field_at(line, fields[i], &s, &len) ||
			    parse_u32(s, len, &id) < 0)
				continue;
			count = 1;
			if (span && (!field_at(line, span, &s, &len) ||
				     parse_u32(s, len, &count) < 0))
				continue;
			rc = exclude(p, id, count);
		}
	}
	free(line);
	return rc;
}

/* --------------------------------------------------------- account files */

static bool seen_same(const struct uid_file_seen *a,
		      const struct uid_file_seen *b)
{
	return a->present == b->present && a->dev == b->dev &&
	       a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static void seen_of(const char *path, struct uid_file_seen *s)
{
	struct stat st;
	*s = (struct uid_file_seen){ 0 };
	if (stat(path, &st) < 0)
		return;
	*s = (struct uid_file_seen){ .dev = st.st_dev,
				     .ino = st.st_ino,
				     .size = st.st_size,
				     .mtime = st.st_mtim,
				     .present = true };
}

static int read_accounts(struct uid_pool *p, size_t i, struct al_error *err)
{
	static const int passwd_ids[] = { 3, 4 }, group_ids[] = { 3 },
			 sub_ids[] = { 2 };
	FILE *f = fopen(account_files[i], "re");
	if (!f) {
		if (errno == ENOENT)
			return 0; /* no subuid file: no subordinate ids */
		return al_error_sys(err, errno, "uid range: read %s",
				    account_files[i]);
	}
	int rc = i == 0   ? uid_accounts_parse(p, f, passwd_ids, 2, 0)
		 : i == 1 ? uid_accounts_parse(p, f, group_ids, 1, 0)
			  : uid_accounts_parse(p, f, sub_ids, 1, 3);
	fclose(f);
	if (rc < 0)
		return al_error_sys(err, ENOMEM, "uid range: read %s",
				    account_files[i]);
	return 0;
}

/* Re-read the account files if any of them changed since the last time;
 * until they could be read, no id is handed out. */
static int refresh_accounts(struct uid_pool *p, struct al_error *err)
{
	struct uid_file_seen now[UID_ACCOUNT_FILES];
	bool changed = !p->accounts_read;
	for (size_t i = 0; i < UID_ACCOUNT_FILES; i++) {
		seen_of(account_files[i], &now[i]);
		changed |= !seen_same(&now[i], &p->seen[i]);
	}
	if (!changed)
		return 0;
	p->accounts_read = false;
	p->n_excluded = 0;
	for (size_t i = 0; i < UID_ACCOUNT_FILES; i++)
		if (read_accounts(p, i, err) < 0)
			return -1;
	memcpy(p->seen, now, sizeof(now));
	p->accounts_read = true;
	return 0;
}

static uint64_t free_of_accounts(const struct uid_pool *p)
{
	uint64_t n = 0;
	for (uint64_t i = 0; i < p->count; i++)
		n += !uid_pool_excluded(p, (uint32_t)(p->base + i));
	return n;
}

/* ------------------------------------------------------------------ pool */

void uid_pool_init(struct uid_pool *p)
{
	struct sandbox_uid_range def;
	*p = (struct uid_pool){ .dir_fd = -1 };
	if (sandbox_uid_range_parse(SANDBOX_UID_RANGE_DEFAULT, &def, NULL) ==
	    0) {
		p->base = def.base;
		p->count = def.count;
	}
}

void uid_pool_free(struct uid_pool *p)
{
	al_closep(&p->dir_fd);
	free(p->excluded);
	p->excluded = NULL;
	p->n_excluded = p->cap_excluded = 0;
}

int sandbox_host_set_uid_range(struct sandbox_host *host,
			       const struct sandbox_uid_range *range,
			       struct al_error *err)
{
	struct uid_pool *p = &host->uids;
	p->base = range->base;
	p->count = range->count;
	p->n_excluded = 0;
	p->accounts_read = false;
	if (!host->root || p->count == 0)
		return 0;
	if (refresh_accounts(p, err) < 0)
		return -1;
	if (free_of_accounts(p) == 0)
		return al_error_set(err, EEXIST,
				    "uid range %" PRIu32 ":%" PRIu32
				    ": every id in it belongs to a host "
				    "account (/etc/passwd, /etc/group, "
				    "/etc/subuid, /etc/subgid); choose a range "
				    "no account uses",
				    p->base, p->count);
	return 0;
}

const char *sandbox_host_uid_detail(struct sandbox_host *host, char *buf,
				    size_t len)
{
	struct uid_pool *p = &host->uids;
	struct al_error err = { 0 };
	if (!host->root)
		snprintf(buf, len,
			 "the caller's uid %u (rootless: a user namespace "
			 "maps only its creator's id)",
			 (unsigned)host->uid);
	else if (p->count == 0)
		snprintf(buf, len,
			 "none (every run is the policy's uid on the host)");
	else if (refresh_accounts(p, &err) < 0)
		snprintf(buf, len, "%" PRIu32 ":%" PRIu32 " (%s)", p->base,
			 p->count, err.msg);
	else
		snprintf(buf, len,
			 "%" PRIu32 ":%" PRIu32 " (%" PRIu64
			 " held by host accounts)",
			 p->base, p->count, p->count - free_of_accounts(p));
	return buf;
}

/* The lock directory: root's alone, or a local user could hold every id
 * (or swap a lock file for a link). */
static int open_lock_dir(struct uid_pool *p, struct al_error *err)
{
	static const char *const names[] = { UID_LOCK_TOP, UID_LOCK_DIR };
	if (p->dir_fd >= 0)
		return 0;
	int at = AT_FDCWD;
	for (size_t i = 0; i < 2; i++) {
		if (mkdirat(at, names[i], i ? 0700 : 0755) < 0 &&
		    errno != EEXIST)
			goto fail;
		int fd = openat(at, names[i],
				O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					O_CLOEXEC);
		if (at != AT_FDCWD)
			close(at);
		at = fd;
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0)
			goto fail;
		if (st.st_uid != 0 || (st.st_mode & 0022)) {
			close(fd);
			return al_error_set(err, EPERM,
					    "uid locks: %s%s%s is not root's "
					    "alone (owner %u, mode %04o): "
					    "chown root and chmod go-w it",
					    UID_LOCK_TOP, i ? "/" : "",
					    i ? UID_LOCK_DIR : "",
					    (unsigned)st.st_uid,
					    (unsigned)(st.st_mode & 07777));
		}
	}
	p->dir_fd = at;
	return 0;
fail:
	if (at != AT_FDCWD && at >= 0)
		close(at);
	return al_error_sys(err, errno, "uid locks: open %s/%s", UID_LOCK_TOP,
			    UID_LOCK_DIR);
}

/* Whether any process on the host has `uid` as one of its uids. */
static bool uid_in_use(uint32_t uid)
{
	DIR *d = opendir("/proc");
	if (!d)
		return true; /* cannot tell: do not reuse */
	bool found = false;
	struct dirent *e;
	char want[64];
	snprintf(want, sizeof(want), "\t%" PRIu32, uid);
	while (!found && (e = readdir(d))) {
		char path[300], status[4096];
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/status", e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, status, sizeof(status) - 1);
		al_closep(&fd);
		if (n <= 0)
			continue;
		status[n] = '\0';
		char *line = strstr(status, "\nUid:");
		if (!line)
			continue;
		line[strcspn(line + 1, "\n") + 1] = '\0';
		/* "Uid:\tR\tE\tS\tFS": any of them */
		for (char *hit = strstr(line, want); hit && !found;
		     hit = strstr(hit + 1, want)) {
			char end = hit[strlen(want)];
			found = end == '\t' || end == '\0';
		}
	}
	closedir(d);
	return found;
}

/* Lock one id's file: 1 taken (fd in *out), 0 busy, -1 error. */
static int try_id(struct uid_pool *p, uint32_t id, int *out,
		  struct al_error *err)
{
	char name[16];
	snprintf(name, sizeof(name), "%" PRIu32, id);
	int fd = openat(p->dir_fd, name,
			O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return al_error_sys(err, errno, "uid locks: open %s/%s/%s",
				    UID_LOCK_TOP, UID_LOCK_DIR, name);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int saved = errno;
		close(fd);
		if (saved == EWOULDBLOCK)
			return 0;
		return al_error_sys(err, saved, "uid locks: lock %s", name);
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0) {
		close(fd);
		return 0; /* not one of ours: leave the id alone */
	}
	if (st.st_size > 0 && uid_in_use(id)) {
		close(fd); /* a killed holder's jail is still going */
		return 0;
	}
	char pid[24];
	int len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
		int saved = errno;
		close(fd);
		return al_error_sys(err, saved, "uid locks: write %s", name);
	}
	*out = fd;
	return 1;
}

int uid_pool_acquire(struct uid_pool *p, uint32_t *id, int *lock_fd,
		     struct al_error *err)
{
	if (refresh_accounts(p, err) < 0 || open_lock_dir(p, err) < 0)
		return -1;
	uint64_t busy = 0;
	for (uint64_t i = 0; i < p->count; i++) {
		uint32_t cand = (uint32_t)(p->base + i);
		if (uid_pool_excluded(p, cand))
			continue;
		int rc = try_id(p, cand, lock_fd, err);
		if (rc < 0)
			return -1;
		if (rc == 1) {
			*id = cand;
			return 0;
		}
		busy++;
	}
	return al_error_set(err, EAGAIN,
			    "no free host uid: all %" PRIu64
			    " ids of the range %" PRIu32 ":%" PRIu32
			    " not held by host accounts are in use by other "
			    "runs; widen AIRLOCK_UID_RANGE",
			    busy, p->base, p->count);
}

void uid_pool_release(int *lock_fd)
{
	if (*lock_fd < 0)
		return;
	/* empty: a clean end, reusable at once (see the top of the file);
	 * left as it is, the next taker first checks no process has the id */
	if (ftruncate(*lock_fd, 0) < 0) {
		/* nothing to do about it here */
	}
	al_closep(lock_fd);
}
