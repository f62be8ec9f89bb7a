/*
 * A root-only cache of compiled seccomp programs, for the command line.
 *
 * airlockd compiles each policy's filter once and keeps it; every `airlock
 * run` is a new process and used to pay libseccomp's rule database, its
 * tree optimiser and the export again: about 1.8 ms of a run. The cache
 * keeps the exported program in /run/airlock/seccomp (tmpfs: gone at
 * boot), one file per key:
 *
 *   sha256(policy hash, libseccomp version, native arch, airlock version,
 *          FILTER_REVISION, the calls every program allows init)
 *
 * The policy hash covers every rule; the rest covers the compiler. The
 * program is loaded into jails as it is read, so the cache is trusted
 * exactly like the binary: it is used only by root, the directories and
 * the file must be owned by root and writable by root only (checked on the
 * opened fds, no symlinks followed), the size must be a whole number of
 * instructions within the kernel's limit, and a file is only ever created
 * whole (written to a temporary name, then renamed). Anything unexpected
 * and the filter is compiled as before; the cache never fails a run.
 */
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/internal.h"

/* Bump whenever seccomp.c builds programs differently (rules, default
 * action, attributes): old entries then stop matching. */
#define FILTER_REVISION 5

#define CACHE_DEFAULT_DIR "/run/airlock"

/* A directory fd that only root can change: owned by root, no group or
 * other write. */
static bool dir_is_trusted(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == 0 &&
	       (st.st_mode & 0022) == 0;
}

/* Open (creating it if missing) name under at, refusing symlinks and
 * anything not trusted. */
static int open_dir(int at, const char *name)
{
	if (mkdirat(at, name, 0700) < 0 && errno != EEXIST)
		return -1;
	int fd = openat(at, name,
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && !dir_is_trusted(fd)) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

static int open_cache_dir(void)
{
	const char *base = getenv("AIRLOCK_CACHE_DIR");
	if (!base || !*base)
		base = CACHE_DEFAULT_DIR;
	if (base[0] != '/')
		return -1;
	int top = open_dir(AT_FDCWD, base);
	if (top < 0)
		return -1;
	int fd = open_dir(top, "seccomp");
	close(top);
	return fd;
}

static int cache_key(const struct al_policy *policy, char *out, size_t len)
{
	char hash[POLICY_HASH_LEN], text[256];
	if (policy_hash(policy, hash, NULL) < 0)
		return -1;
	const struct scmp_version *v = seccomp_version();
	snprintf(text, sizeof(text),
		 "%s libseccomp-%u.%u.%u arch-%u airlock-%s rev-%d", hash,
		 v->major, v->minor, v->micro, seccomp_arch_native(),
		 AIRLOCK_VERSION, FILTER_REVISION);
	uint8_t digest[SHA256_DIGEST_SIZE];
	struct sha256_ctx ctx;
	sha256_init(&ctx);
	sha256_update(&ctx, strlen(text), (const uint8_t *)text);
	/* the calls every program allows init: they differ between builds
	 * (a sanitizer's runtime needs more) and between versions of
	 * seccomp.c, and a program made with other ones must not be used */
	for (const char *const *call = seccomp_init_calls(); *call; call++)
		sha256_update(&ctx, strlen(*call) + 1, (const uint8_t *)*call);
	sha256_digest(&ctx, sizeof(digest), digest);
	if (len < 2 * sizeof(digest) + 5)
		return -1;
	for (size_t i = 0; i < sizeof(digest); i++)
		snprintf(out + 2 * i, 3, "%02x", digest[i]);
	strcpy(out + 2 * sizeof(digest), ".bpf");
	return 0;
}

static struct sandbox_filter *cache_read(int dir, const char *name)
{
	int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	struct sandbox_filter *f = NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & 0022) || st.st_size <= 0 ||
	    st.st_size % sizeof(struct sock_filter) != 0 ||
	    st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS)
		goto out;
	f = calloc(1, sizeof(*f));
	if (!f || !(f->insns = malloc((size_t)st.st_size)) ||
	    pread(fd, f->insns, (size_t)st.st_size, 0) != st.st_size) {
		sandbox_filter_free(f);
		f = NULL;
		goto out;
	}
	f->len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
out:
	close(fd);
	return f;
}

static void cache_write(int dir, const char *name,
			const struct sandbox_filter *f)
{
	char tmp[128];
	snprintf(tmp, sizeof(tmp), ".%s.%d", name, (int)getpid());
	int fd = openat(dir, tmp,
			O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			0600);
	if (fd < 0)
		return;
	size_t size = f->len * sizeof(struct sock_filter);
	bool ok = write(fd, f->insns, size) == (ssize_t)size;
	ok = close(fd) == 0 && ok;
	if (!ok || renameat(dir, tmp, dir, name) < 0)
		(void)unlinkat(dir, tmp, 0);
}

struct sandbox_filter *
sandbox_filter_compile_cached(const struct al_policy *policy,
			      struct al_error *err)
{
	char name[80];
	int dir = -1;
	if (geteuid() == 0 && cache_key(policy, name, sizeof(name)) == 0)
		dir = open_cache_dir();
	if (dir < 0)
		return sandbox_filter_compile(policy, err);
	struct sandbox_filter *f = cache_read(dir, name);
	if (!f) {
		f = sandbox_filter_compile(policy, err);
		if (f)
			cache_write(dir, name, f);
	}
	close(dir);
	return f;
}
