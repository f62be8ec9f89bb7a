/*
 * The manifest's server out of reach (docs/operations.md, "Fleet"): the
 * backend marks the manifest unavailable when a statement finds the
 * connection lost (manifest_unavailable()); from then on
 *
 *   - runs in flight finish and are answered (their verdict is ours);
 *     what their end would write waits as a pending record (pending.c),
 *     in memory and in STATE/pending/<run id>;
 *   - ops that need the manifest answer `unavailable`, /healthz 503;
 *   - the tick (and a request that needs the manifest) reconnects, at
 *     most every OUTAGE_DELAY_MIN_MS at first, the wait doubling to
 *     OUTAGE_DELAY_MAX_MS; once connected, the pending records commit.
 *
 * SQLite never becomes unavailable, so none of this runs on it but the
 * start-up's look into STATE/pending (empty).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor/internal.h"

#define OUTAGE_DELAY_MIN_MS 500
#define OUTAGE_DELAY_MAX_MS 5000
/* The spool's bounds: a run's record is small but for its output */
#define PENDING_FILES_MAX 1024
#define PENDING_BYTES_MAX (256u << 20)
/* A file larger than this was not written by us: output_keep is at most
 * 4 MiB a stream, base64 makes that 4/3 */
#define PENDING_FILE_MAX (16u << 20)

/* ----------------------------------------------------------- the spool */

static void file_name(int64_t run_id, char buf[32])
{
	snprintf(buf, 32, "%lld", (long long)run_id);
}

static void unspool(struct supervisor *s, struct pending *p)
{
	char name[32];

	if (!p->spooled)
		return;
	file_name(p->run_id, name);
	if (unlinkat(s->pending_fd, name, 0) < 0 && errno != ENOENT)
		LOG(LOG_WARN, NULL, p->run_id, "unlink %s/%s/%s: %s",
		    s->cfg.state_dir, PENDING_DIR, name, strerror(errno));
	s->pending_bytes -= p->spooled;
	s->pending_files--;
	p->spooled = 0;
}

static int write_all(int fd, const char *text, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, text, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		text += n;
		len -= (size_t)n;
	}
	return 0;
}

/* <run id> by way of .<run id>.tmp: a crash leaves the old file or the
 * new one whole, never half of one. */
static int write_file(struct supervisor *s, int64_t run_id, const char *text,
		      size_t len, struct al_error *err)
{
	char name[32], tmp[40];
	int fd;

	file_name(run_id, name);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	fd = openat(s->pending_fd, tmp,
		    O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		    0600);
	if (fd < 0)
		return al_error_sys(err, errno, "create %s/%s", PENDING_DIR,
				    tmp);
	if (write_all(fd, text, len) < 0 || fsync(fd) < 0) {
		al_error_sys(err, errno, "write %s/%s", PENDING_DIR, tmp);
		close(fd);
		(void)unlinkat(s->pending_fd, tmp, 0);
		return -1;
	}
	if (close(fd) < 0 ||
	    renameat(s->pending_fd, tmp, s->pending_fd, name) < 0 ||
	    fsync(s->pending_fd) < 0) {
		al_error_sys(err, errno, "rename %s/%s", PENDING_DIR, tmp);
		(void)unlinkat(s->pending_fd, tmp, 0);
		return -1;
	}
	return 0;
}

/* The record to its file (again, when it changed: the new text replaces
 * the old by rename, so a crash keeps one whole), within the bounds. */
static void spool(struct supervisor *s, struct pending *p)
{
	struct al_error err = { 0 };
	_cleanup_free_ char *text = pending_encode(p);
	size_t len = text ? strlen(text) : 0;
	/* what the spool holds besides this record's own file */
	size_t others = s->pending_bytes - p->spooled;
	unsigned files = s->pending_files - (p->spooled ? 1 : 0);

	if (text != NULL && p->has_output && others + len > PENDING_BYTES_MAX) {
		LOG(LOG_WARN, NULL, p->run_id,
		    "%s/%s holds %zu bytes already: this run's output is "
		    "not kept, its verdict is",
		    s->cfg.state_dir, PENDING_DIR, others);
		pending_drop_output(p);
		free(text);
		text = pending_encode(p);
		len = text ? strlen(text) : 0;
	}
	if (text == NULL)
		al_error_set(&err, ENOMEM, "out of memory");
	else if (files >= PENDING_FILES_MAX)
		al_error_set(&err, ENOSPC, "%u records wait already", files);
	else if (write_file(s, p->run_id, text, len, &err) == 0) {
		s->pending_bytes = others + len;
		s->pending_files = files + 1;
		p->spooled = len;
		return;
	}
	LOG(LOG_ERROR, NULL, p->run_id,
	    "%s/%s: %s; this run's record is kept in memory only%s (a "
	    "crash before the manifest is back loses it)",
	    s->cfg.state_dir, PENDING_DIR, err.msg,
	    p->spooled ? ", its file has it without the output" : "");
}

static struct pending *find(struct supervisor *s, int64_t run_id)
{
	for (struct pending *p = s->pending; p; p = p->next)
		if (p->run_id == run_id)
			return p;
	return NULL;
}

static void add(struct supervisor *s, struct pending *p)
{
	p->next = s->pending;
	s->pending = p;
}

static void forget(struct supervisor *s, struct pending *p)
{
	for (struct pending **pp = &s->pending; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	unspool(s, p);
	pending_free(p);
}

void outage_keep_finish(struct supervisor *s, int64_t run_id,
			const struct manifest_run_result *r)
{
	struct pending *p = pending_new(run_id, r);

	if (p == NULL) {
		LOG(LOG_ERROR, NULL, run_id,
		    "out of memory: the run's verdict is lost");
		return;
	}
	if (r == NULL)
		p->finish = PENDING_INTERRUPT;
	add(s, p);
	spool(s, p);
	LOG(LOG_WARN, NULL, run_id,
	    "the manifest is unreachable: the run's end (%s) waits in "
	    "%s/%s until it is back",
	    r ? r->verdict : "interrupted", s->cfg.state_dir, PENDING_DIR);
}

bool outage_keep_output(struct supervisor *s, int64_t run_id,
			const struct manifest_output_in *in)
{
	struct al_error err = { 0 };
	struct pending *p = find(s, run_id);

	if (p == NULL && manifest_unavailable(s->m) == NULL)
		return false;
	if (p == NULL) { /* its finish committed; only the output waits */
		p = pending_new(run_id, NULL);
		if (p == NULL) {
			LOG(LOG_ERROR, NULL, run_id,
			    "out of memory: the run's output is lost");
			return true;
		}
		add(s, p);
	}
	pending_drop_output(p);
	if (pending_set_output(p, in, &err) < 0) {
		LOG(LOG_ERROR, NULL, run_id, "%s: the output is lost", err.msg);
		pending_drop_output(p);
	}
	spool(s, p);
	return true;
}

/* ------------------------------------------------------------- commits */

static int commit_one(struct supervisor *s, const struct pending *p,
		      struct al_error *err)
{
	struct manifest_run_result r;
	struct manifest_output_in in;

	if (p->finish == PENDING_FINISH) {
		pending_result(p, &r);
		if (manifest_run_finish(s->m, p->run_id, &r, err) < 0)
			return -1;
	} else if (p->finish == PENDING_INTERRUPT &&
		   manifest_run_interrupt(s->m, p->run_id, err) < 0) {
		return -1;
	}
	if (!p->has_output)
		return 0;
	pending_output(p, &in);
	/* a retry whose first try committed: it is there */
	if (manifest_output_put(s->m, p->run_id, &in, err) < 0 &&
	    err->errnum != EEXIST)
		return -1;
	return 0;
}

/* A record the manifest refuses for good (its run is gone, or ended
 * otherwise): kept aside as <run id>.failed for an operator, not retried. */
static void set_aside(struct supervisor *s, struct pending *p, const char *why)
{
	char name[32], aside[48];

	file_name(p->run_id, name);
	snprintf(aside, sizeof(aside), "%s.failed", name);
	LOG(LOG_ERROR, NULL, p->run_id,
	    "the run's pending record cannot be committed (%s): kept as "
	    "%s/%s/%s",
	    why, s->cfg.state_dir, PENDING_DIR, aside);
	if (p->spooled &&
	    renameat(s->pending_fd, name, s->pending_fd, aside) == 0) {
		s->pending_bytes -= p->spooled;
		s->pending_files--;
		p->spooled = 0;
	}
	forget(s, p);
}

void outage_commit(struct supervisor *s)
{
	unsigned done = 0;

	while (s->pending != NULL && manifest_unavailable(s->m) == NULL) {
		struct pending *p = s->pending;
		struct al_error err = { 0 };
		if (commit_one(s, p, &err) == 0) {
			LOG(LOG_INFO, NULL, p->run_id,
			    "the run's pending end (%s) is in the manifest",
			    p->finish == PENDING_FINISH      ? p->verdict
			    : p->finish == PENDING_INTERRUPT ? "interrupted"
							     : "output");
			forget(s, p);
			done++;
		} else if (err.errnum == ENOTCONN) {
			LOG(LOG_WARN, NULL, p->run_id, "%s", err.msg);
			break;
		} else {
			set_aside(s, p, err.msg);
		}
	}
	if (done)
		LOG(LOG_INFO, NULL, 0, "%u pending run records committed",
		    done);
}

/* ------------------------------------------------------- at start-up */

/* One file a previous airlockd left: into the list, or set aside. */
static void load_one(struct supervisor *s, const char *name)
{
	struct al_error err = { 0 };
	_cleanup_close_ int fd = openat(s->pending_fd, name,
					O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_free_ char *text = NULL;
	struct pending *p = NULL;
	char bad[300];
	struct stat st;
	ssize_t n = 0;

	if (fd < 0 || fstat(fd, &st) < 0)
		al_error_sys(&err, errno, "open");
	else if (!S_ISREG(st.st_mode) || st.st_size > PENDING_FILE_MAX)
		al_error_set(&err, EBADMSG,
			     "not a regular file of at most %u bytes",
			     PENDING_FILE_MAX);
	else if ((text = malloc((size_t)st.st_size + 1)) == NULL)
		al_error_sys(&err, ENOMEM, "read");
	else if ((n = pread(fd, text, (size_t)st.st_size, 0)) != st.st_size)
		al_error_sys(&err, n < 0 ? errno : EIO, "read");
	else if (pending_decode(text, (size_t)n, &p, &err) == 0 &&
		 strtoll(name, NULL, 10) != p->run_id)
		al_error_set(&err, EBADMSG, "it records run %lld",
			     (long long)p->run_id);
	if (err.msg[0] == '\0') {
		p->spooled = (size_t)n;
		s->pending_bytes += p->spooled;
		s->pending_files++;
		add(s, p);
		return;
	}
	pending_free(p);
	snprintf(bad, sizeof(bad), "%s.bad", name);
	LOG(LOG_ERROR, NULL, 0, "%s/%s/%s: %s; set aside as %s",
	    s->cfg.state_dir, PENDING_DIR, name, err.msg, bad);
	if (renameat(s->pending_fd, name, s->pending_fd, bad) < 0)
		LOG(LOG_ERROR, NULL, 0, "rename %s/%s/%s: %s", s->cfg.state_dir,
		    PENDING_DIR, name, strerror(errno));
}

/* Whether `name` is a record's: a run id, digits only. Temp files of a
 * write a crash cut short start with a dot; set-aside ones have a dot. */
static bool record_name(const char *name)
{
	return name[0] >= '1' && name[0] <= '9' &&
	       strspn(name, "0123456789") == strlen(name) && strlen(name) < 20;
}

static int load(struct supervisor *s, struct al_error *err)
{
	int fd = openat(s->pending_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *e;
	DIR *dir;

	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return al_error_sys(err, errno, "read %s/%s", s->cfg.state_dir,
				    PENDING_DIR);
	}
	while ((e = readdir(dir)) != NULL) {
		if (e->d_name[0] == '.' && strstr(e->d_name, ".tmp") != NULL)
			(void)unlinkat(s->pending_fd, e->d_name, 0);
		else if (record_name(e->d_name))
			load_one(s, e->d_name);
	}
	closedir(dir);
	return 0;
}

int outage_open(struct supervisor *s, struct al_error *err)
{
	_cleanup_close_ int state = open(s->cfg.state_dir,
					 O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;

	if (state < 0)
		return al_error_sys(err, errno, "open %s", s->cfg.state_dir);
	if (mkdirat(state, PENDING_DIR, 0700) < 0 && errno != EEXIST)
		return al_error_sys(err, errno, "mkdir %s/%s", s->cfg.state_dir,
				    PENDING_DIR);
	s->pending_fd = openat(state, PENDING_DIR,
			       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s->pending_fd < 0 || fstat(s->pending_fd, &st) < 0)
		return al_error_sys(err, errno, "open %s/%s", s->cfg.state_dir,
				    PENDING_DIR);
	/* what it holds becomes rows: only root's may */
	if (al_stat_trusted(PENDING_DIR, &st, geteuid(), err) < 0)
		return al_error_prefix(err, "%s", s->cfg.state_dir);
	if (load(s, err) < 0)
		return -1;
	if (s->pending != NULL)
		LOG(LOG_INFO, NULL, 0,
		    "%u run records a previous airlockd could not commit",
		    s->pending_files);
	outage_commit(s);
	return 0;
}

void outage_free(struct supervisor *s)
{
	unsigned left;

	/* a last chance: the server may be back since the last tick */
	if (s->m != NULL && s->pending != NULL &&
	    manifest_unavailable(s->m) == NULL)
		outage_commit(s);
	left = outage_pending(s);
	if (left)
		LOG(LOG_WARN, NULL, 0,
		    "%u run ends still wait for the manifest: %u in %s/%s for "
		    "the next start%s",
		    left, s->pending_files, s->cfg.state_dir, PENDING_DIR,
		    left > s->pending_files ? ", the rest is lost" : "");
	while (s->pending != NULL) {
		struct pending *p = s->pending;
		s->pending = p->next;
		pending_free(p); /* its file stays for the next start */
	}
	al_closep(&s->pending_fd);
}

/* ------------------------------------------------------- reconnecting */

static void note_loss(struct supervisor *s)
{
	if (s->outage.down)
		return;
	s->outage.down = true;
	s->outage.since_ms = now_ms();
	s->outage.next_ms = now_ms();
	s->outage.delay_ms = OUTAGE_DELAY_MIN_MS;
	LOG(LOG_ERROR, NULL, 0,
	    "the manifest (%s) is unreachable: %s; runs in flight finish, "
	    "new ones are refused until a reconnection succeeds",
	    manifest_where(s->m), manifest_unavailable(s->m));
}

bool outage_available(struct supervisor *s)
{
	struct al_error err = { 0 };

	if (manifest_unavailable(s->m) == NULL)
		return true;
	note_loss(s);
	if (now_ms() < s->outage.next_ms)
		return false;
	if (manifest_reconnect(s->m, &err) < 0) {
		s->outage.next_ms = now_ms() + s->outage.delay_ms;
		LOG(LOG_WARN, NULL, 0, "%s; next try in %lld ms", err.msg,
		    (long long)s->outage.delay_ms);
		s->outage.delay_ms = s->outage.delay_ms * 2 >
						     OUTAGE_DELAY_MAX_MS
					     ? OUTAGE_DELAY_MAX_MS
					     : s->outage.delay_ms * 2;
		return false;
	}
	LOG(LOG_INFO, NULL, 0, "the manifest (%s) is back after %lld ms",
	    manifest_where(s->m), (long long)(now_ms() - s->outage.since_ms));
	s->outage.down = false;
	outage_commit(s);
	return manifest_unavailable(s->m) == NULL;
}

void outage_tick(struct supervisor *s)
{
	if (outage_available(s) && s->pending != NULL)
		outage_commit(s);
}

unsigned outage_pending(const struct supervisor *s)
{
	unsigned n = 0;

	for (const struct pending *p = s->pending; p; p = p->next)
		n++;
	return n;
}

void outage_message(const struct supervisor *s, char *buf, size_t len)
{
	const char *why = manifest_unavailable(s->m);
	int64_t wait = s->outage.next_ms - now_ms();

	snprintf(buf, len,
		 "the manifest (%s, %s) is unreachable: %s; airlockd "
		 "reconnects by itself (next try in %lld ms): retry later",
		 manifest_backend(s->m), manifest_where(s->m), why ? why : "?",
		 (long long)(wait > 0 ? wait : 0));
}
