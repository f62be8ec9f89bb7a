/*
 * manifest_check(): is the database sound, and do files and rows agree?
 * manifest_backup(): an online copy of the database.
 *
 * The check reads the rows and the move journal in one snapshot, then lists
 * staging/, modules/ and archive/. A writer may commit between the two (a
 * daemon at work); the check then sees PRAGMA data_version move and starts
 * again (the backend's data version), so a move in progress is never reported as a problem (when every
 * attempt saw a commit, it fails with EAGAIN rather than guess). It reports
 * and never repairs: deleting a stray file or forgetting a row is a
 * decision for a person.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest/internal.h"

#define CHECK_ATTEMPTS 10
#define CHECK_BACKOFF_US 5000 /* times the attempt: a writer moves on */
#define MESSAGE_MAX 512

/* A file some row wants: in `dir`, or (a journaled move) in `alt`. */
struct want {
	char sha256[MANIFEST_SHA256_HEX + 1];
	enum store_dir dir;
	enum store_dir alt;
	int64_t module_id;
	char name[MANIFEST_NAME_MAX + 1];
	int64_t version;
	enum manifest_state state;
	uint64_t size;
	bool optional; /* moving to or from "no file": either way is fine */
	bool found;
};

struct found {
	const char *kind;
	char *path;
	int64_t module_id;
	char *message;
};

struct check {
	struct manifest *m;
	struct want *wants;
	size_t nwants;
	char (*temps)[MANIFEST_SHA256_HEX + 1]; /* journaled submissions */
	size_t ntemps;
	struct found *found;
	size_t nfound;
	bool oom;
};

static void check_reset(struct check *c)
{
	for (size_t i = 0; i < c->nfound; i++) {
		free(c->found[i].path);
		free(c->found[i].message);
	}
	free(c->found);
	free(c->wants);
	free(c->temps);
	c->found = NULL;
	c->wants = NULL;
	c->temps = NULL;
	c->nfound = c->nwants = c->ntemps = 0;
}

static void problem(struct check *c, const char *kind, const char *path,
		    int64_t module_id, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void problem(struct check *c, const char *kind, const char *path,
		    int64_t module_id, const char *fmt, ...)
{
	struct found *grown;
	char message[MESSAGE_MAX];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(message, sizeof(message), fmt, ap) < 0)
		message[0] = '\0';
	va_end(ap);
	grown = realloc(c->found, (c->nfound + 1) * sizeof(*grown));
	if (grown == NULL) {
		c->oom = true;
		return;
	}
	c->found = grown;
	grown = &c->found[c->nfound++];
	grown->kind = kind;
	grown->path = path ? strdup(path) : NULL;
	grown->module_id = module_id;
	grown->message = strdup(message);
	if ((path && !grown->path) || !grown->message)
		c->oom = true;
}

/* ------------------------------------------------------------ database */

static void integrity_problem(const char *message, void *arg)
{
	problem(arg, "integrity", NULL, 0, "%s", message);
}

static int by_sha256(const void *a, const void *b)
{
	return strcmp(((const struct want *)a)->sha256,
		      ((const struct want *)b)->sha256);
}

static int add_want(struct check *c, const struct want *w)
{
	struct want *grown = realloc(c->wants, (c->nwants + 1) * sizeof(*w));

	if (grown == NULL)
		return -1;
	c->wants = grown;
	c->wants[c->nwants++] = *w;
	return 0;
}

static const char SQL_CHECK_ROWS[] =
	"SELECT m.id, m.name, m.version, m.sha256, m.size, m.state,"
	" v.from_state, v.op, v.to_state"
	" FROM modules m LEFT JOIN moves v ON v.module_id = m.id";

/* Which file each row needs where, a journaled move allowing both ends. */
static int load_wants(struct check *c, struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(c->m, SQL_CHECK_ROWS, err);
	char text[16];
	int rc;

	if (s == NULL)
		return -1;
	while ((rc = db_step(s)) == DB_ROW) {
		struct want w = { .found = false };
		bool moving = !db_column_null(s, 6);

		w.module_id = db_column_int64(s, 0);
		db_column_copy(s, 1, w.name, sizeof(w.name));
		w.version = db_column_int64(s, 2);
		db_column_copy(s, 3, w.sha256, sizeof(w.sha256));
		w.size = (uint64_t)db_column_int64(s, 4);
		db_column_copy(s, 5, text, sizeof(text));
		w.state = (enum manifest_state)manifest_state_parse(text);
		w.dir = w.alt = store_dir_of(w.state);
		if (moving) {
			db_column_copy(s, 8, text, sizeof(text));
			w.alt = manifest_state_parse(text) < 0
					? STORE_NONE
					: store_dir_of(
						  manifest_state_parse(text));
		}
		/* a rejected module needs no file; one going to or from
		 * "no file" (rejection, retention) may have it or not */
		if (w.dir == STORE_NONE && w.alt == STORE_NONE)
			continue;
		if (w.dir == STORE_NONE || w.alt == STORE_NONE) {
			w.optional = true;
			w.dir = w.alt = w.dir == STORE_NONE ? w.alt : w.dir;
		}
		if (add_want(c, &w) < 0)
			return al_error_sys(err, ENOMEM, "check");
	}
	if (rc != DB_DONE)
		return db_error(c->m, err, "read the modules");
	if (c->nwants > 0)
		qsort(c->wants, c->nwants, sizeof(*c->wants), by_sha256);
	return 0;
}

static const char SQL_CHECK_TEMPS[] =
	"SELECT sha256 FROM moves WHERE op = 'stage'";

static int load_temps(struct check *c, struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(c->m, SQL_CHECK_TEMPS, err);
	int rc;

	if (s == NULL)
		return -1;
	while ((rc = db_step(s)) == DB_ROW) {
		void *grown = realloc(c->temps,
				      (c->ntemps + 1) * sizeof(*c->temps));
		if (grown == NULL)
			return al_error_sys(err, ENOMEM, "check");
		c->temps = grown;
		db_column_copy(s, 0, c->temps[c->ntemps++], sizeof(*c->temps));
	}
	if (rc != DB_DONE)
		return db_error(c->m, err, "read the journal");
	return 0;
}

/* --------------------------------------------------------------- files */

/* The first want (sorted by content) for content `name`, or nwants. */
static size_t wants_from(const struct check *c, const char *name)
{
	size_t lo = 0, hi = c->nwants;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(c->wants[mid].sha256, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* A file some row wants in `d`: hash it once, mark every such row. */
static void check_file(struct check *c, enum store_dir d, int dir_fd,
		       const char *name, bool *wanted)
{
	char path[512], sha[MANIFEST_SHA256_HEX + 1];
	const struct want *first = NULL;
	struct stat st;
	uint64_t size;
	int fd;

	*wanted = false;
	for (size_t i = wants_from(c, name); i < c->nwants; i++) {
		struct want *w = &c->wants[i];
		if (strcmp(w->sha256, name) != 0)
			break;
		if (w->dir == d || w->alt == d) {
			w->found = true;
			*wanted = true;
			if (first == NULL)
				first = w;
		}
	}
	if (first == NULL)
		return;
	snprintf(path, sizeof(path), "%s/%s", store_dir_name(d), name);
	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode)) {
		problem(c, "corrupt", path, first->module_id,
			"%s is not a regular file", path);
		return;
	}
	fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || sha256_fd(fd, sha, &size) < 0) {
		problem(c, "corrupt", path, first->module_id,
			"%s cannot be read: %s", path, strerror(errno));
	} else if (strcmp(sha, name) != 0) {
		problem(c, "corrupt", path, first->module_id,
			"%s holds content with SHA-256 %s, not what its name "
			"says",
			path, sha);
	} else if (size != first->size) {
		problem(c, "corrupt", path, first->module_id,
			"%s has %llu bytes, the row of \"%s\" version %lld "
			"says %llu",
			path, (unsigned long long)size, first->name,
			(long long)first->version,
			(unsigned long long)first->size);
	}
	if (fd >= 0)
		close(fd);
}

/* A journaled submission's temp file, or its file before its row. */
static bool is_journaled_stage(const struct check *c, const char *name)
{
	char tmp[80];

	for (size_t i = 0; i < c->ntemps; i++) {
		store_temp_name(c->temps[i], tmp);
		if (strcmp(tmp, name) == 0 || strcmp(c->temps[i], name) == 0)
			return true;
	}
	return false;
}

/* On a shared database a state directory is one host's copy: another
 * host's state change leaves this one's file where it was until it is
 * used again (store_ensure()). Content some row has is not a stray. */
static bool wanted_anywhere(const struct check *c, const char *name)
{
	size_t i = wants_from(c, name);

	return i < c->nwants && strcmp(c->wants[i].sha256, name) == 0;
}

static int scan_dir(struct check *c, enum store_dir d, struct al_error *err)
{
	int fd;
	DIR *dir;
	struct dirent *e;
	char path[512];
	bool wanted;

	if (c->m->store_fd[d] < 0) {
		problem(c, "layout", store_dir_name(d), 0,
			"%s/ is missing from %s", store_dir_name(d),
			c->m->state_dir);
		return 0;
	}
	/* a fresh fd: its own offset, and closedir() may have it */
	fd = openat(c->m->store_fd[d], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		al_error_sys(err, errno, "read %s/", store_dir_name(d));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((errno = 0, e = readdir(dir)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		check_file(c, d, fd, e->d_name, &wanted);
		if (wanted ||
		    (d == STORE_STAGING && is_journaled_stage(c, e->d_name)) ||
		    (c->m->ops->shared && wanted_anywhere(c, e->d_name)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", store_dir_name(d),
			 e->d_name);
		problem(c, "stray", path, 0,
			"%s belongs to no module row; it is left alone (remove "
			"it by hand once you know where it came from)",
			path);
	}
	if (errno != 0) {
		al_error_sys(err, errno, "read %s/", store_dir_name(d));
		closedir(dir);
		return -1;
	}
	closedir(dir);
	return 0;
}

static void report_missing(struct check *c)
{
	char path[128];

	/* a shared database's content is fetched from it on first use */
	if (c->m->ops->shared)
		return;
	for (size_t i = 0; i < c->nwants; i++) {
		const struct want *w = &c->wants[i];
		if (w->found || w->optional || c->m->store_fd[w->dir] < 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", store_dir_name(w->dir),
			 w->sha256);
		problem(c, "missing", path, w->module_id,
			"module \"%s\" version %lld (%s) has no file %s",
			w->name, (long long)w->version,
			manifest_state_name(w->state), path);
	}
}

/* ---------------------------------------------------------------- check */

/* One pass; *stable is false when a writer committed meanwhile. */
static int check_once(struct check *c, bool *stable, struct al_error *err)
{
	struct manifest *m = c->m;
	int64_t before, after;
	bool own = !m->in_snapshot;

	if (own && db_begin_snapshot(m, err) < 0)
		return -1;
	if (m->ops->data_version(m, &before, err) < 0 ||
	    m->ops->integrity(m, integrity_problem, c, err) < 0 ||
	    load_wants(c, err) < 0 || load_temps(c, err) < 0) {
		if (own)
			db_rollback(m);
		return -1;
	}
	if (own)
		db_rollback(m); /* a read: ending it is all there is */
	for (int d = 0; d < STORE_DIRS; d++)
		if (scan_dir(c, d, err) < 0)
			return -1;
	report_missing(c);
	if (m->ops->data_version(m, &after, err) < 0)
		return -1;
	*stable = !own || before == after;
	return 0;
}

int manifest_check(struct manifest *m, manifest_problem_fn fn, void *arg,
		   struct al_error *err)
{
	struct check c = { .m = m };
	bool stable = false;
	int count;

	for (int i = 0; i < CHECK_ATTEMPTS && !stable; i++) {
		if (i > 0)
			usleep((useconds_t)(i * CHECK_BACKOFF_US));
		check_reset(&c);
		if (check_once(&c, &stable, err) < 0) {
			check_reset(&c);
			return al_error_prefix(err, "manifest: check %s",
					       m->state_dir);
		}
		if (c.nfound == 0)
			break; /* nothing wrong, moving or not */
	}
	if (c.oom) {
		check_reset(&c);
		return al_error_sys(err, ENOMEM, "manifest: check %s",
				    m->state_dir);
	}
	/* Problems seen while a writer kept committing may be moves in
	 * flight: never report them as problems, say the check could not
	 * get a still view instead. */
	if (!stable && c.nfound > 0) {
		check_reset(&c);
		return al_error_set(err, EAGAIN,
				    "manifest: check %s: the manifest changed "
				    "on every one of %d attempts; run the "
				    "check again",
				    m->state_dir, CHECK_ATTEMPTS);
	}
	for (size_t i = 0; fn != NULL && i < c.nfound; i++) {
		struct manifest_problem p = {
			.kind = c.found[i].kind,
			.path = c.found[i].path,
			.module_id = c.found[i].module_id,
			.message = c.found[i].message,
		};
		fn(&p, arg);
	}
	count = (int)c.nfound;
	check_reset(&c);
	return count;
}

/* -------------------------------------------------------- staging sweep */

/* Whether some row or journaled move wants staging/<name>. */
static bool staging_wanted(const struct check *c, const char *name)
{
	for (size_t i = wants_from(c, name); i < c->nwants; i++) {
		const struct want *w = &c->wants[i];
		if (strcmp(w->sha256, name) != 0)
			break;
		if (w->dir == STORE_STAGING || w->alt == STORE_STAGING)
			return true;
	}
	return is_journaled_stage(c, name);
}

static int sweep_staging(struct check *c, int64_t min_age_ms,
			 void (*fn)(const char *path, void *arg), void *arg,
			 struct al_error *err)
{
	int dir_fd = c->m->store_fd[STORE_STAGING], removed = 0;
	int64_t now = manifest_now_ms();
	struct dirent *e;
	struct stat st;
	char path[512];

	if (dir_fd < 0)
		return 0;
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd < 0 ? NULL : fdopendir(fd);
	if (dir == NULL) {
		al_error_sys(err, errno, "read staging/");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((e = readdir(dir)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 ||
		    strcmp(e->d_name, "..") == 0 ||
		    staging_wanted(c, e->d_name) ||
		    fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    S_ISDIR(st.st_mode))
			continue;
		/* young files may belong to a submission being written by a
		 * writer this view does not know of yet */
		if (now - (int64_t)st.st_mtime * 1000 < min_age_ms)
			continue;
		snprintf(path, sizeof(path), "staging/%s", e->d_name);
		if (unlinkat(dir_fd, e->d_name, 0) < 0) {
			if (errno == ENOENT)
				continue;
			al_error_sys(err, errno, "remove %s", path);
			closedir(dir);
			return -1;
		}
		removed++;
		if (fn != NULL)
			fn(path, arg);
	}
	closedir(dir);
	if (removed > 0 && fsync(dir_fd) < 0)
		return al_error_sys(err, errno, "fsync staging/");
	return removed;
}

int manifest_staging_sweep(struct manifest *m, int64_t min_age_ms,
			   void (*fn)(const char *path, void *arg), void *arg,
			   struct al_error *err)
{
	struct check c = { .m = m };
	bool own = !m->in_snapshot;
	int rc = -1;

	if (own && db_begin_snapshot(m, err) < 0)
		goto out;
	if (load_wants(&c, err) < 0 || load_temps(&c, err) < 0) {
		if (own)
			db_rollback(m);
		goto out;
	}
	if (own)
		db_rollback(m);
	rc = sweep_staging(&c, min_age_ms, fn, arg, err);
out:
	check_reset(&c);
	if (rc < 0)
		al_error_prefix(err, "manifest: sweep %s/staging",
				m->state_dir);
	return rc;
}

/* --------------------------------------------------------------- backup */

int manifest_backup(struct manifest *m, const char *path, struct al_error *err)
{
	if (m->ops->backup(m, path, err) < 0)
		return al_error_prefix(err, "manifest: backup to %s", path);
	return 0;
}
