/*
 * Where bundles' trees live: STATE/bundles/<sha256>/, one per archive
 * content, named by the archive's SHA-256 (docs/manifest.md, "Bundles").
 *
 * The archive itself is the module's file in the manifest's store and
 * moves between staging/, modules/ and archive/ as every module file does
 * (journaled renames and links). A tree is a directory, which cannot be
 * hard-linked into two states, so it stays in one place whatever the
 * state of the rows that use it; it is there while some row that keeps a
 * file (any state but rejected) has its archive's hash, and is removed
 * (a sweep after a rejection and on every tick) when none has.
 *
 * A tree is written only here: unpacked into bundles/.tmp-<sha256>
 * (bundle.c), its entry point checked, then renamed into place, so a
 * tree under its final name is always whole. A crash leaves at most a
 * .tmp- directory, which the next start and every tick remove (the
 * daemon is the one writer, and an unpack ends within one loop turn).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "supervisor/internal.h"

#define TMP_PREFIX ".tmp-"

int bundle_store_open(struct supervisor *s, struct al_error *err)
{
	_cleanup_close_ int state = open(s->cfg.state_dir,
					 O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (state < 0)
		return al_error_sys(err, errno, "bundles: open %s",
				    s->cfg.state_dir);
	if (mkdirat(state, "bundles", 0750) < 0 && errno != EEXIST)
		return al_error_sys(err, errno, "bundles: mkdir %s/bundles",
				    s->cfg.state_dir);
	s->bundles_fd = openat(state, "bundles",
			       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s->bundles_fd < 0)
		return al_error_sys(err, errno, "bundles: open %s/bundles",
				    s->cfg.state_dir);
	struct stat st;
	if (fstat(s->bundles_fd, &st) < 0 ||
	    al_stat_trusted("bundles", &st, geteuid(), err) < 0)
		return al_error_prefix(err, "%s", s->cfg.state_dir);
	bundle_store_sweep(s);
	return 0;
}

int bundle_store_path(const struct supervisor *s, const char *sha256, char *buf,
		      size_t len)
{
	int n = snprintf(buf, len, "%s/bundles/%s", s->cfg.state_dir, sha256);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static void sha256_of(const void *data, size_t len,
		      char out[MANIFEST_SHA256_HEX + 1])
{
	struct sha256_ctx ctx;
	uint8_t d[SHA256_DIGEST_SIZE];

	sha256_init(&ctx);
	sha256_update(&ctx, len, data);
	sha256_digest(&ctx, sizeof(d), d);
	for (size_t i = 0; i < sizeof(d); i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/*
 * The entry point in tree `dirfd`: beneath it, through no link, a regular
 * executable file; its first bytes into head (for its interpreter).
 */
static int check_entry(int dirfd, const char *entry, unsigned char *head,
		       size_t *head_len, struct al_error *err)
{
	struct open_how how = {
		.flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS,
	};
	struct stat st;
	_cleanup_close_ int fd = (int)syscall(SYS_openat2, dirfd, entry, &how,
					      sizeof(how));

	if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
		return al_error_set(err, ENOENT,
				    "entry \"%s\": no such file in the bundle",
				    entry);
	if (fd < 0 || fstat(fd, &st) < 0)
		return al_error_sys(err, errno, "entry \"%s\"", entry);
	if (!S_ISREG(st.st_mode))
		return al_error_set(err, EINVAL,
				    "entry \"%s\": a directory, not a file",
				    entry);
	if (!(st.st_mode & 0111))
		return al_error_set(err, EINVAL,
				    "entry \"%s\" is not executable: give it "
				    "the x bit before packing (chmod +x %s)",
				    entry, entry);
	ssize_t n = read(fd, head, *head_len);
	if (n < 0)
		return al_error_sys(err, errno, "entry \"%s\": read", entry);
	*head_len = (size_t)n;
	return 0;
}

int bundle_store_check_entry(struct supervisor *s, const char *tree,
			     const char *entry, unsigned char *head,
			     size_t *head_len, struct al_error *err)
{
	_cleanup_close_ int fd = openat(s->bundles_fd, tree,
					O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
						O_CLOEXEC);
	if (fd < 0)
		return al_error_sys(err, errno, "bundles: open %s", tree);
	return check_entry(fd, entry, head, head_len, err);
}

static int unpack_new(struct supervisor *s, const unsigned char *data,
		      size_t len, const char *tmp, struct al_error *err)
{
	const struct bundle_limits lim = {
		.max_entries = s->cfg.bundle_max_entries,
		.max_bytes = s->cfg.bundle_max_bytes,
	};
	(void)bundle_remove(s->bundles_fd, tmp, 0);
	if (mkdirat(s->bundles_fd, tmp, 0755) < 0)
		return al_error_sys(err, errno, "bundles: mkdir %s", tmp);
	_cleanup_close_ int fd = openat(s->bundles_fd, tmp,
					O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
						O_CLOEXEC);
	if (fd < 0)
		return al_error_sys(err, errno, "bundles: open %s", tmp);
	return bundle_unpack(data, len, fd, &lim, NULL, err);
}

int bundle_store_add(struct supervisor *s, const unsigned char *data,
		     size_t len, const char *entry, bool built,
		     unsigned char *head, size_t *head_len,
		     struct al_error *err)
{
	char sha[MANIFEST_SHA256_HEX + 1],
		tmp[sizeof(TMP_PREFIX) + sizeof(sha)];
	/* before any goto: a cleanup variable jumped over would be closed
	 * uninitialised at the return */
	_cleanup_close_ int fd = -1;

	if (bundle_entry_check(entry, err) < 0)
		return -1;
	sha256_of(data, len, sha);
	/* the same archive unpacked before (an earlier version, another
	 * name): its tree is whole, only the entry may differ */
	_cleanup_close_ int have = openat(s->bundles_fd, sha,
					  O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
						  O_CLOEXEC);
	if (have >= 0 && built)
		*head_len = 0;
	if (have >= 0)
		return built ? 0
			     : check_entry(have, entry, head, head_len, err);
	snprintf(tmp, sizeof(tmp), TMP_PREFIX "%s", sha);
	if (unpack_new(s, data, len, tmp, err) < 0)
		goto fail;
	fd = openat(s->bundles_fd, tmp,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		al_error_sys(err, errno, "bundles: open %s", tmp);
		goto fail;
	}
	if (built)
		*head_len = 0; /* the build makes the entry */
	else if (check_entry(fd, entry, head, head_len, err) < 0)
		goto fail;
	if (fchmod(fd, 0755) < 0 ||
	    renameat(s->bundles_fd, tmp, s->bundles_fd, sha) < 0 ||
	    fsync(s->bundles_fd) < 0) {
		al_error_sys(err, errno, "bundles: store %s", sha);
		goto fail;
	}
	return 0;
fail:
	if (bundle_remove(s->bundles_fd, tmp, 0) < 0)
		LOG(LOG_WARN, NULL, 0, "bundles: remove %s: %s", tmp,
		    strerror(errno));
	return -1;
}

/* A build's copy, .build-<module id>: still wanted while that module is
 * validating (its build may be running). */
static bool build_leftover(struct supervisor *s, const char *id_text)
{
	struct manifest_module mod;
	struct al_error err = { 0 };
	char *end;
	long long id = strtoll(id_text, &end, 10);

	if (*end || id <= 0)
		return false;
	if (manifest_get(s->m, id, &mod, &err) < 0)
		return err.errnum == ENOENT;
	return mod.state != MANIFEST_VALIDATING;
}

/* Whether bundles/NAME should go: a leftover .tmp- or .build-, or a
 * tree (<sha256>, or <sha256>.b<key> built from it) no row keeping a
 * file needs. */
static bool unneeded(struct supervisor *s, const char *name)
{
	struct al_error err = { 0 };
	char sha[MANIFEST_SHA256_HEX + 1];
	size_t n = strlen(name);

	if (strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0)
		return true;
	if (strncmp(name, ".build-", 7) == 0)
		return build_leftover(s, name + 7);
	if (n < MANIFEST_SHA256_HEX ||
	    strspn(name, "0123456789abcdef") != MANIFEST_SHA256_HEX ||
	    (n > MANIFEST_SHA256_HEX &&
	     strncmp(name + MANIFEST_SHA256_HEX, ".b", 2) != 0))
		return false; /* not ours: left alone */
	memcpy(sha, name, MANIFEST_SHA256_HEX);
	sha[MANIFEST_SHA256_HEX] = '\0';
	int used = manifest_content_used(s->m, sha, &err);
	if (used < 0)
		LOG(LOG_WARN, NULL, 0, "bundles: %s", err.msg);
	return used == 0;
}

void bundle_store_sweep(struct supervisor *s)
{
	if (s->bundles_fd < 0)
		return;
	int fd = openat(s->bundles_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		al_closep(&fd);
		LOG(LOG_WARN, NULL, 0, "bundles: list: %s", strerror(errno));
		return;
	}
	for (struct dirent *de; (de = readdir(d));) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 || !unneeded(s, de->d_name))
			continue;
		if (bundle_remove(s->bundles_fd, de->d_name, 0) < 0)
			LOG(LOG_WARN, NULL, 0, "bundles: remove %s: %s",
			    de->d_name, strerror(errno));
		else
			LOG(LOG_INFO, NULL, 0,
			    "removed bundles/%s (no module needs it)",
			    de->d_name);
	}
	closedir(d);
}

int bundle_store_ensure(struct supervisor *s, const struct manifest_module *mod,
			const char *archive, struct al_error *err)
{
	_cleanup_close_ int have = openat(s->bundles_fd, mod->sha256,
					  O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
						  O_CLOEXEC);
	_cleanup_close_ int fd = -1;
	unsigned char head[256], *data = NULL;
	size_t head_len = sizeof(head), got = 0;
	char sha[MANIFEST_SHA256_HEX + 1];
	int rc = -1;

	if (have >= 0)
		return 0;
	/* a build's tree is made where the module was validated */
	if (mod->build[0])
		return al_error_set(err, ENOENT,
				    "bundle \"%s\" version %lld was built on "
				    "another host; its built tree does not "
				    "travel (submit it on this host to build "
				    "it here)",
				    mod->name, (long long)mod->version);
	fd = open(archive, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return al_error_sys(err, errno, "bundle %s", archive);
	data = malloc(mod->size ? mod->size : 1);
	if (data == NULL)
		return al_error_sys(err, ENOMEM, "bundle %s", archive);
	while (got < mod->size) {
		ssize_t n = read(fd, data + got, mod->size - got);
		if (n <= 0) {
			al_error_sys(err, n < 0 ? errno : EIO, "read %s",
				     archive);
			goto out;
		}
		got += (size_t)n;
	}
	/* the archive was fetched from a database another host writes:
	 * unpack only what the row names */
	sha256_of(data, got, sha);
	if (strcmp(sha, mod->sha256) != 0) {
		al_error_set(err, EIO, "bundle %s: SHA-256 %s, not the row's",
			     archive, sha);
		goto out;
	}
	rc = bundle_store_add(s, data, got, mod->entry, false, head, &head_len,
			      err);
out:
	free(data);
	return rc;
}
