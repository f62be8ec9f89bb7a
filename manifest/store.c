/*
 * The content-addressed store: staging/, modules/ and archive/ in the state
 * directory, each file named by the SHA-256 of its content.
 *
 * A file name says what the content is, a directory says what state the
 * rows that use it are in. Two rows may share content (the same module
 * submitted twice, under one name or two); then one file serves both while
 * they are in the same directory, and a hard link gives each its own name
 * when their states part. A file leaves a directory only when no row needs
 * it there any more (moves_needed() asks the database).
 *
 * Everything is relative to the directory fds the handle holds, in one
 * file system, so a move is one rename(2) and never a copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest/internal.h"

/* staging/ holds code nobody has validated yet: the supervisor only. */
static const struct {
	const char *name;
	mode_t mode;
} store_dirs[STORE_DIRS] = {
	[STORE_STAGING] = { "staging", 0700 },
	[STORE_MODULES] = { "modules", 0750 },
	[STORE_ARCHIVE] = { "archive", 0750 },
};

/* Module files are immutable and executed inside the jail by its own uid:
 * read and execute for everyone; the directories above keep others out. */
#define MODULE_FILE_MODE 0555
#define HASH_CHUNK 16384

const char *store_dir_name(enum store_dir d)
{
	return d >= 0 && d < STORE_DIRS ? store_dirs[d].name : "(none)";
}

enum store_dir store_dir_of(enum manifest_state s)
{
	switch (s) {
	case MANIFEST_STAGED:
	case MANIFEST_VALIDATING: return STORE_STAGING;
	case MANIFEST_ACTIVE: return STORE_MODULES;
	case MANIFEST_ARCHIVED: return STORE_ARCHIVE;
	default: return STORE_NONE;
	}
}

int store_open(struct manifest *m, bool create, struct al_error *err)
{
	bool created = false;

	for (int d = 0; d < STORE_DIRS; d++) {
		if (create) {
			if (mkdirat(m->dir_fd, store_dirs[d].name,
				    store_dirs[d].mode) == 0)
				created = true;
			else if (errno != EEXIST)
				return al_error_sys(err, errno, "create %s/%s",
						    m->state_dir,
						    store_dirs[d].name);
		}
		m->store_fd[d] = openat(m->dir_fd, store_dirs[d].name,
					O_RDONLY | O_DIRECTORY | O_CLOEXEC |
						O_NOFOLLOW);
		if (m->store_fd[d] < 0 && (create || errno != ENOENT))
			return al_error_sys(err, errno, "%s/%s", m->state_dir,
					    store_dirs[d].name);
	}
	if (created && fsync(m->dir_fd) < 0)
		return al_error_sys(err, errno, "fsync %s", m->state_dir);
	return 0;
}

void store_close(struct manifest *m)
{
	for (int d = 0; d < STORE_DIRS; d++) {
		if (m->store_fd[d] >= 0)
			close(m->store_fd[d]);
		m->store_fd[d] = -1;
	}
}

void store_temp_name(const char *sha256, char buf[80])
{
	snprintf(buf, 80, ".%s.tmp", sha256);
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* staging/<sha256> already holds exactly that content. A second
 * submission of the same bytes keeps that file rather than renaming a new
 * inode over it: a jail being built for the first may be holding the file
 * by its identity (sandbox/mount.c checks device and inode), and would
 * otherwise fail as "replaced" although nothing changed. */
static bool staged_already(int dir, const char *sha256, size_t len)
{
	_cleanup_close_ int fd = openat(dir, sha256,
					O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	char got[MANIFEST_SHA256_HEX + 1];
	uint64_t size;
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != len ||
	    (st.st_mode & 07777) != MODULE_FILE_MODE)
		return false;
	return sha256_fd(fd, got, &size) == 0 && size == len &&
	       strcmp(got, sha256) == 0;
}

/* Content to <to>/<sha256> by way of a temp file in staging/: fsync,
 * rename, fsync of the directory. */
static int write_into(struct manifest *m, enum store_dir to, const char *sha256,
		      const void *content, size_t len, struct al_error *err)
{
	int dir = m->store_fd[STORE_STAGING];
	char tmp[80];
	int fd;

	store_temp_name(sha256, tmp);
	fd = openat(dir, tmp,
		    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		    MODULE_FILE_MODE);
	if (fd < 0)
		return al_error_sys(err, errno, "create staging/%s", tmp);
	if (write_all(fd, content, len) < 0 || fchmod(fd, MODULE_FILE_MODE) ||
	    fsync(fd) < 0) {
		al_error_sys(err, errno, "write staging/%s", tmp);
		close(fd);
		goto fail;
	}
	if (close(fd) < 0) {
		al_error_sys(err, errno, "write staging/%s", tmp);
		goto fail;
	}
	if (renameat(dir, tmp, m->store_fd[to], sha256) < 0) {
		al_error_sys(err, errno, "rename staging/%s to %s/", tmp,
			     store_dir_name(to));
		goto fail;
	}
	if (fsync(m->store_fd[to]) < 0)
		return al_error_sys(err, errno, "fsync %s/",
				    store_dir_name(to));
	return 0;
fail:
	(void)unlinkat(dir, tmp, 0);
	return -1;
}

int store_write(struct manifest *m, const char *sha256, const void *content,
		size_t len, struct al_error *err)
{
	if (staged_already(m->store_fd[STORE_STAGING], sha256, len))
		return 0;
	return write_into(m, STORE_STAGING, sha256, content, len, err);
}

static const char SQL_SHARE[] =
	"INSERT INTO contents (sha256, size, content) VALUES (?1, ?2, ?3)"
	" ON CONFLICT (sha256) DO NOTHING";

int store_share(struct manifest *m, const char *sha256, const void *content,
		size_t len, struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_SHARE, err);

	if (s == NULL)
		return -1;
	db_bind_text(s, 1, sha256);
	db_bind_int64(s, 2, (int64_t)len);
	db_bind_blob(s, 3, content, len);
	return db_step_done(m, s, "keep the content in the database", err);
}

static const char SQL_FETCH[] =
	"SELECT size, content FROM contents WHERE sha256 = ?1";

/* The database's copy of `sha256` into <to>/, checked against its name:
 * a row another host wrote is trusted no more than a file. */
static int fetch(struct manifest *m, const char *sha256, enum store_dir to,
		 struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_FETCH, err);
	char got[MANIFEST_SHA256_HEX + 1];
	const void *content;
	size_t len;

	if (s == NULL)
		return -1;
	db_bind_text(s, 1, sha256);
	int rc = db_step(s);
	if (rc == DB_DONE)
		return al_error_set(err, ENOENT,
				    "%s is in no directory here and not in "
				    "the database's contents",
				    sha256);
	if (rc != DB_ROW)
		return db_error(m, err, "fetch %s", sha256);
	content = db_column_blob(s, 1, &len);
	if (content == NULL && len == 0)
		content = "";
	sha256_hex(content, len, got);
	if (strcmp(got, sha256) != 0 || (int64_t)len != db_column_int64(s, 0))
		return al_error_set(err, EIO,
				    "the database's content %s has SHA-256 %s "
				    "(%zu bytes); refused",
				    sha256, got, len);
	return write_into(m, to, sha256, content, len, err);
}

int store_ensure(struct manifest *m, const char *sha256, enum store_dir to,
		 struct al_error *err)
{
	if (store_has(m, to, sha256))
		return 0;
	for (int d = 0; d < STORE_DIRS; d++)
		if (d != (int)to && store_has(m, d, sha256)) {
			if (linkat(m->store_fd[d], sha256, m->store_fd[to],
				   sha256, 0) < 0 &&
			    errno != EEXIST)
				return al_error_sys(err, errno,
						    "link %s/%s to %s/",
						    store_dir_name(d), sha256,
						    store_dir_name(to));
			if (fsync(m->store_fd[to]) < 0)
				return al_error_sys(err, errno, "fsync %s/",
						    store_dir_name(to));
			return 0;
		}
	if (!m->ops->shared)
		return al_error_set(err, ENOENT,
				    "%s/%s is missing, and no other copy of "
				    "its content exists",
				    store_dir_name(to), sha256);
	return fetch(m, sha256, to, err);
}

int store_remove_temp(struct manifest *m, const char *sha256,
		      struct al_error *err)
{
	char tmp[80];

	store_temp_name(sha256, tmp);
	if (unlinkat(m->store_fd[STORE_STAGING], tmp, 0) < 0 && errno != ENOENT)
		return al_error_sys(err, errno, "remove staging/%s", tmp);
	return 0;
}

bool store_has(struct manifest *m, enum store_dir d, const char *sha256)
{
	struct stat st;

	if (d == STORE_NONE || m->store_fd[d] < 0)
		return false;
	return fstatat(m->store_fd[d], sha256, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* The copy to move or link into place: the one in `from`, else any. */
static enum store_dir find_copy(struct manifest *m, const char *sha256,
				enum store_dir from, enum store_dir to)
{
	if (store_has(m, from, sha256))
		return from;
	for (int d = 0; d < STORE_DIRS; d++)
		if (d != (int)to && store_has(m, d, sha256))
			return d;
	return STORE_NONE;
}

static int put_copy(struct manifest *m, const char *sha256, enum store_dir from,
		    enum store_dir to, bool *changed, struct al_error *err)
{
	enum store_dir src = find_copy(m, sha256, from, to);
	int keep;

	if (src == STORE_NONE) {
		/* on a shared database another host may have it */
		if (store_ensure(m, sha256, to, err) < 0)
			return -1;
		changed[to] = true;
		return 0;
	}
	/* a copy outside `from` belongs to another row: never take it */
	keep = src == from ? moves_needed(m, src, sha256, err) : 1;
	if (keep < 0)
		return -1;
	if (keep ? linkat(m->store_fd[src], sha256, m->store_fd[to], sha256,
			  0) < 0
		 : renameat(m->store_fd[src], sha256, m->store_fd[to], sha256) <
			    0)
		return al_error_sys(err, errno, "%s %s/%s to %s/",
				    keep ? "link" : "rename",
				    store_dir_name(src), sha256,
				    store_dir_name(to));
	changed[to] = changed[src] = true;
	return 0;
}

int store_place(struct manifest *m, const char *sha256, enum store_dir from,
		enum store_dir to, struct al_error *err)
{
	bool changed[STORE_DIRS] = { false };
	int need;

	if (to != STORE_NONE && !store_has(m, to, sha256) &&
	    put_copy(m, sha256, from, to, changed, err) < 0)
		return -1;
	if (from != STORE_NONE && from != to && store_has(m, from, sha256)) {
		need = moves_needed(m, from, sha256, err);
		if (need < 0)
			return -1;
		if (!need) {
			if (unlinkat(m->store_fd[from], sha256, 0) < 0 &&
			    errno != ENOENT)
				return al_error_sys(err, errno, "remove %s/%s",
						    store_dir_name(from),
						    sha256);
			changed[from] = true;
		}
	}
	for (int d = 0; d < STORE_DIRS; d++)
		if (changed[d] && fsync(m->store_fd[d]) < 0)
			return al_error_sys(err, errno, "fsync %s/",
					    store_dir_name(d));
	return 0;
}

static void hex(const uint8_t *digest, char out[MANIFEST_SHA256_HEX + 1])
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < SHA256_DIGEST_SIZE; i++) {
		out[2 * i] = digits[digest[i] >> 4];
		out[2 * i + 1] = digits[digest[i] & 0xf];
	}
	out[MANIFEST_SHA256_HEX] = '\0';
}

void sha256_hex(const void *data, size_t len, char out[MANIFEST_SHA256_HEX + 1])
{
	struct sha256_ctx ctx;
	uint8_t digest[SHA256_DIGEST_SIZE];

	sha256_init(&ctx);
	sha256_update(&ctx, len, data);
	sha256_digest(&ctx, sizeof(digest), digest);
	hex(digest, out);
}

int sha256_fd(int fd, char out[MANIFEST_SHA256_HEX + 1], uint64_t *size)
{
	uint8_t buf[HASH_CHUNK];
	struct sha256_ctx ctx;
	uint8_t digest[SHA256_DIGEST_SIZE];
	ssize_t n;

	*size = 0;
	sha256_init(&ctx);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		sha256_update(&ctx, (size_t)n, buf);
		*size += (uint64_t)n;
	}
	sha256_digest(&ctx, sizeof(digest), digest);
	hex(digest, out);
	return 0;
}

bool is_sha256_hex(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == MANIFEST_SHA256_HEX;
}
