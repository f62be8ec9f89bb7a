/*
 * A bundle's build step: its command (`sh -c COMMAND`) run once, at
 * validation, in a jail under the module's policy with the build's own
 * limits (--build-timeout, --build-memory), whose working directory
 * /bundle is a writable copy of the unpacked tree. The tree it leaves
 * becomes the module: bundles/<sha256>.b<key>/, the key a hash of the
 * command and the policy, so the same archive built the same way is
 * built once. Then the validation run runs the entry in it, read-only,
 * as every later run does.
 *
 * The copy is bundles/.build-<module id>: made by us, writable by the
 * jail's user (whoever the run's host uid is: bundles/ itself is root's
 * and 0750, so no host user reaches it). The build's processes are gone
 * when its run ends (the jail's init takes them with it), so what it left
 * is looked at with nobody changing it: every entry is made root's and
 * read-only (set-id bits dropped), only files, directories and symbolic
 * links are kept (a link resolves inside a jail, never on the host: the
 * daemon never follows one), and the bundle's bounds (entries, bytes)
 * hold for the output as for the archive. Anything else fails the build
 * (verdict build_failed) with the path and the rule, as a compile error
 * or a timeout does. The build's output is its log: the build run's
 * stdout and stderr, in the submit's answer ("build") and the run's
 * stderr excerpt in the manifest.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor/internal.h"

#define BUILD_PREFIX ".build-"

static bool keep_all(const char *name, void *arg)
{
	(void)name;
	(void)arg;
	return true;
}

void build_tree_name(const struct manifest_module *mod, char *buf, size_t len)
{
	struct sha256_ctx ctx;
	uint8_t d[SHA256_DIGEST_SIZE];

	if (!mod->build[0]) {
		snprintf(buf, len, "%s", mod->sha256);
		return;
	}
	sha256_init(&ctx);
	sha256_update(&ctx, strlen(mod->build), (const uint8_t *)mod->build);
	sha256_update(&ctx, 1, (const uint8_t *)"\n");
	sha256_update(&ctx, strlen(mod->policy_hash),
		      (const uint8_t *)mod->policy_hash);
	sha256_digest(&ctx, sizeof(d), d);
	snprintf(buf, len, "%s.b%02x%02x%02x%02x%02x%02x%02x%02x", mod->sha256,
		 d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]);
}

int bundle_tree_path(const struct supervisor *s,
		     const struct manifest_module *mod, char *buf, size_t len)
{
	char name[MANIFEST_SHA256_HEX + 32];
	build_tree_name(mod, name, sizeof(name));
	return bundle_store_path(s, name, buf, len);
}

bool build_wanted(struct supervisor *s, struct job *job)
{
	char name[MANIFEST_SHA256_HEX + 32];
	struct stat st;

	if (job->kind != JOB_VALIDATE || !job->mod.build[0] || job->build.built)
		return false;
	build_tree_name(&job->mod, name, sizeof(name));
	if (fstatat(s->bundles_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISDIR(st.st_mode)) {
		job->build.built = true; /* built before: the same recipe */
		return false;
	}
	return true;
}

/* ------------------------------------------------------------ the copy */

struct walk {
	uint64_t entries, bytes;
	const struct bundle_limits *lim;
	char path[PATH_MAX]; /* of the entry at hand, for messages */
	struct al_error *err;
};

static int copy_file(int from_dir, int to_dir, const char *name,
		     const struct stat *st, struct al_error *err)
{
	_cleanup_close_ int in = openat(from_dir, name,
					O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_close_ int out = openat(to_dir, name,
					 O_WRONLY | O_CREAT | O_EXCL |
						 O_NOFOLLOW | O_CLOEXEC,
					 0600);
	if (in < 0 || out < 0)
		return al_error_sys(err, errno, "build: copy %s", name);
	for (off_t left = st->st_size; left > 0;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left,
					    0);
		if (n <= 0)
			return al_error_sys(err, n < 0 ? errno : EIO,
					    "build: copy %s", name);
		left -= n;
	}
	/* the build's user writes over its sources if it likes */
	if (fchmod(out, (st->st_mode & 0111) ? 0777 : 0666) < 0)
		return al_error_sys(err, errno, "build: chmod %s", name);
	return 0;
}

/* A writable copy of directory `from` into the empty `to` (both
 * consumed). Store trees hold only files and directories. */
static int copy_tree(int from, int to, int depth, struct al_error *err)
{
	DIR *d = fdopendir(from);
	int rc = 0;

	if (!d) {
		close(from);
		close(to);
		return al_error_sys(err, errno, "build: read the tree");
	}
	if (depth > BUNDLE_DEPTH_MAX || fchmod(to, 0777) < 0)
		rc = al_error_sys(err, depth > BUNDLE_DEPTH_MAX ? ELOOP : errno,
				  "build: copy the tree");
	for (struct dirent *de; rc == 0 && (de = readdir(d));) {
		struct stat st;
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) <
		    0) {
			rc = al_error_sys(err, errno, "build: %s", de->d_name);
		} else if (S_ISREG(st.st_mode)) {
			rc = copy_file(dirfd(d), to, de->d_name, &st, err);
		} else if (S_ISDIR(st.st_mode)) {
			int sub_from = openat(dirfd(d), de->d_name,
					      O_RDONLY | O_DIRECTORY |
						      O_NOFOLLOW | O_CLOEXEC);
			int sub_to = -1;
			if (sub_from >= 0 && mkdirat(to, de->d_name, 0700) == 0)
				sub_to = openat(to, de->d_name,
						O_RDONLY | O_DIRECTORY |
							O_NOFOLLOW | O_CLOEXEC);
			if (sub_to < 0) {
				rc = al_error_sys(err, errno, "build: copy %s",
						  de->d_name);
				al_closep(&sub_from);
			} else {
				rc = copy_tree(sub_from, sub_to, depth + 1,
					       err);
			}
		}
	}
	closedir(d);
	close(to);
	return rc;
}

int build_prepare(struct supervisor *s, struct job *job,
		  struct sandbox_spec *spec, struct al_error *err)
{
	char memory[32], timeout[32];
	struct build_state *b = &job->build;

	snprintf(b->dir_name, sizeof(b->dir_name), BUILD_PREFIX "%lld",
		 (long long)job->mod.id);
	(void)bundle_remove(s->bundles_fd, b->dir_name, 0);
	int from = openat(s->bundles_fd, job->mod.sha256,
			  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (from < 0)
		return al_error_sys(err, errno, "build: the bundle's tree");
	if (mkdirat(s->bundles_fd, b->dir_name, 0700) < 0) {
		close(from);
		return al_error_sys(err, errno, "build: mkdir");
	}
	int to = openat(s->bundles_fd, b->dir_name,
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (to < 0) {
		close(from);
		return al_error_sys(err, errno, "build: open");
	}
	if (copy_tree(from, to, 0, err) < 0)
		return -1;
	/* the module's policy, its limits the build's own */
	policy_free(b->policy);
	b->policy = policy_restrict(job->pol->policy, keep_all, NULL, err);
	/* the policy's [build] limits, else the daemon's */
	uint64_t mem = policy_build_memory_bytes(job->pol->policy);
	uint64_t us = policy_build_timeout_us(job->pol->policy);
	snprintf(memory, sizeof(memory), "%llu",
		 mem ? (unsigned long long)mem
		     : (unsigned long long)s->cfg.build_memory_mb << 20);
	snprintf(timeout, sizeof(timeout), "%lluus",
		 us ? (unsigned long long)us
		    : (unsigned long long)s->cfg.build_timeout_ms * 1000);
	if (!b->policy || policy_set_memory(b->policy, memory, err) < 0 ||
	    policy_set_timeout(b->policy, timeout, err) < 0)
		return al_error_prefix(err, "build: its policy");
	if (bundle_store_path(s, b->dir_name, b->dir, sizeof(b->dir)) < 0)
		return al_error_set(err, ENAMETOOLONG, "build: path too long");
	b->argv[0] = "-c";
	b->argv[1] = job->mod.build;
	b->argv[2] = NULL;
	spec->policy = b->policy;
	spec->workdir = b->dir;
	spec->workdir_writable = true;
	spec->entry = NULL;
	spec->program = "sh";
	spec->program_name = NULL;
	spec->args = b->argv;
	spec->stdin_fd = -1;
	return 0;
}

/* ---------------------------------------------------------- the output */

static int walk_fail(struct walk *w, int errnum, const char *what)
{
	return al_error_set(w->err, errnum, "the build left %s at %s", what,
			    w->path);
}

static int seal_entry(struct walk *w, int dir, const char *name, int depth);

/* Every entry of directory `fd` (consumed) root's and read-only. */
static int seal_dir(struct walk *w, int fd, int depth)
{
	size_t base = strlen(w->path);
	DIR *d = fdopendir(fd);
	int rc = 0;

	if (!d) {
		close(fd);
		return al_error_sys(w->err, errno, "build: read its output");
	}
	for (struct dirent *de; rc == 0 && (de = readdir(d));) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(w->path + base, sizeof(w->path) - base, "%s%s",
			 base ? "/" : "", de->d_name);
		rc = seal_entry(w, dirfd(d), de->d_name, depth);
		w->path[base] = '\0';
	}
	if (rc == 0 && (fchown(dirfd(d), 0, 0) < 0 || fchmod(dirfd(d), 0755)))
		rc = al_error_sys(w->err, errno, "build: seal %s", w->path);
	closedir(d);
	return rc;
}

static int seal_entry(struct walk *w, int dir, const char *name, int depth)
{
	struct stat st;

	if (++w->entries > w->lim->max_entries)
		return walk_fail(w, E2BIG,
				 "more entries than a bundle may hold "
				 "(--bundle-max-entries)");
	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return al_error_sys(w->err, errno, "build: %s", w->path);
	if (S_ISLNK(st.st_mode))
		return fchownat(dir, name, 0, 0, AT_SYMLINK_NOFOLLOW) < 0
			       ? al_error_sys(w->err, errno, "build: seal %s",
					      w->path)
			       : 0;
	if (S_ISDIR(st.st_mode)) {
		if (depth >= BUNDLE_DEPTH_MAX)
			return walk_fail(w, E2BIG, "directories too deep");
		int fd = openat(dir, name,
				O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					O_CLOEXEC);
		if (fd < 0)
			return al_error_sys(w->err, errno, "build: %s",
					    w->path);
		return seal_dir(w, fd, depth + 1);
	}
	if (!S_ISREG(st.st_mode))
		return walk_fail(w, EPERM,
				 S_ISFIFO(st.st_mode)   ? "a FIFO"
				 : S_ISSOCK(st.st_mode) ? "a socket"
							: "a device node");
	if ((uint64_t)st.st_size > w->lim->max_bytes - w->bytes)
		return walk_fail(w, E2BIG,
				 "more bytes than a bundle may hold "
				 "(--bundle-max-bytes)");
	w->bytes += (uint64_t)st.st_size;
	_cleanup_close_ int fd = openat(dir, name,
					O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fchown(fd, 0, 0) < 0 ||
	    fchmod(fd, (st.st_mode & 0111) ? 0555 : 0444) < 0)
		return al_error_sys(w->err, errno, "build: seal %s", w->path);
	return 0;
}

int build_finish(struct supervisor *s, struct job *job, struct al_error *err)
{
	const struct bundle_limits lim = {
		.max_entries = s->cfg.bundle_max_entries,
		.max_bytes = s->cfg.bundle_max_bytes,
	};
	struct walk w = { .lim = &lim, .err = err };
	char name[MANIFEST_SHA256_HEX + 32];
	unsigned char head[8];
	size_t head_len = sizeof(head);
	int fd = openat(s->bundles_fd, job->build.dir_name,
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return al_error_sys(err, errno, "build: its output");
	if (seal_dir(&w, fd, 0) < 0)
		return -1;
	/* the entry is looked up as for any bundle: a file the build made */
	if (bundle_store_check_entry(s, job->build.dir_name, job->mod.entry,
				     head, &head_len, err) < 0)
		return al_error_prefix(err, "after the build");
	build_tree_name(&job->mod, name, sizeof(name));
	if (syncfs(s->bundles_fd) < 0)
		return al_error_sys(err, errno, "build: syncfs");
	if (renameat(s->bundles_fd, job->build.dir_name, s->bundles_fd, name) <
	    0) {
		/* another version with the same recipe stored it first */
		if (errno != ENOTEMPTY && errno != EEXIST)
			return al_error_sys(err, errno, "build: store %s",
					    name);
		build_discard(s, job);
	}
	job->build.dir_name[0] = '\0';
	job->build.built = true;
	return 0;
}

void build_discard(struct supervisor *s, struct job *job)
{
	if (job->build.dir_name[0] &&
	    bundle_remove(s->bundles_fd, job->build.dir_name, 0) < 0)
		LOG(LOG_WARN, job->log_id, 0, "build: remove %s: %s",
		    job->build.dir_name, strerror(errno));
	job->build.dir_name[0] = '\0';
}

void build_state_free(struct build_state *b)
{
	policy_free(b->policy);
	b->policy = NULL;
	sandbox_result_release(&b->result);
}
