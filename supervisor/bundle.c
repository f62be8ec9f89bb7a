/*
 * Bundles: a module that is a tar archive (plain, gzip or zstd), unpacked
 * once at submit into a directory of the store (docs/manifest.md,
 * "Bundles"), read with libarchive.
 *
 * Threat: the archive is the client's, every byte of it. It may name
 * files outside the tree ("../x", "/etc/x"), go through a link it planted
 * earlier in the same archive, make device nodes, setuid programs,
 * hardlinks to host files, names longer than a path, more entries than
 * the file system has inodes, or expand a few kilobytes into terabytes.
 * So:
 *   - only tar (ustar, pax, GNU) with no filter, gzip or zstd is read;
 *     anything else is refused by name before libarchive parses it;
 *   - only regular files and directories are made; symlinks (all of
 *     them: a relative one can still leave the tree through another),
 *     hardlinks, devices, FIFOs and sockets are refused;
 *   - setuid, setgid and sticky bits are refused, not stripped: a
 *     bundle that asks for them is not what its author thinks it is;
 *   - names are taken apart component by component: absolute names and
 *     ".." are refused, "." and empty components dropped, a component
 *     over NAME_MAX or a name over PATH_MAX refused, at most
 *     BUNDLE_DEPTH_MAX deep;
 *   - every file is created with openat(O_CREAT | O_EXCL | O_NOFOLLOW)
 *     under a directory opened with O_NOFOLLOW | O_DIRECTORY from the
 *     tree's own fd, never by joining path strings: nothing that is not
 *     in the tree is ever opened, and a name met twice is refused;
 *   - entries (directories made on the way included) and unpacked bytes
 *     are counted as they are read: a header that declares more than is
 *     left is refused before its data is read, and the data itself is
 *     counted block by block, so a compression bomb stops at the bound,
 *     not after.
 * Every refusal names the entry and the rule. On any refusal the
 * directory the tree was being written into is removed whole.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor/internal.h"

/*
 * libarchive is loaded at the first bundle, not linked: with it come
 * libxml2, ICU and libstdc++, some 3 MiB of an idle airlockd's RSS that
 * a daemon never given a bundle would carry for nothing.
 */
#define AR_FUNCTIONS(X)                                                        \
	X(archive_entry_filetype, ar_entry_filetype)                           \
	X(archive_entry_hardlink, ar_entry_hardlink)                           \
	X(archive_entry_mode, ar_entry_mode)                                   \
	X(archive_entry_pathname, ar_entry_pathname)                           \
	X(archive_entry_size, ar_entry_size)                                   \
	X(archive_entry_size_is_set, ar_entry_size_is_set)                     \
	X(archive_error_string, ar_error_string)                               \
	X(archive_filter_code, ar_filter_code)                                 \
	X(archive_filter_count, ar_filter_count)                               \
	X(archive_filter_name, ar_filter_name)                                 \
	X(archive_format, ar_format)                                           \
	X(archive_format_name, ar_format_name)                                 \
	X(archive_read_data, ar_read_data)                                     \
	X(archive_read_free, ar_read_free)                                     \
	X(archive_read_new, ar_read_new)                                       \
	X(archive_read_next_header, ar_read_next_header)                       \
	X(archive_read_open_memory, ar_read_open_memory)                       \
	X(archive_read_support_filter_gzip, ar_read_support_filter_gzip)       \
	X(archive_read_support_filter_zstd, ar_read_support_filter_zstd)       \
	X(archive_read_support_format_tar, ar_read_support_format_tar)

#define AR_POINTER(fn, ptr) static __typeof__(fn) *ptr;
AR_FUNCTIONS(AR_POINTER)

#define AR_LIBRARY "libarchive.so.13"

#define AR_SYMBOL(fn, ptr) { #fn, (void **)&ptr },
static const struct al_dl_symbol ar_symbols[] = { AR_FUNCTIONS(AR_SYMBOL) };
static struct al_dl_library ar_library = AL_DL_LIBRARY(AR_LIBRARY, ar_symbols);

static int ar_load(struct al_error *err)
{
	if (al_dl_ensure(&ar_library) < 0)
		return al_error_set(err, ENOENT,
				    "bundle: libarchive cannot be loaded (%s); "
				    "install Debian's libarchive13 package",
				    ar_library.failure);
	return 0;
}

#define BLOCK (64 * 1024)

/* Formats and filters told apart by their first bytes, so that what is
 * refused is refused by name (and never parsed). */
static const struct magic {
	const char *bytes;
	size_t len;
	const char *name;
	bool ok; /* one of ours: gzip or zstd (tar itself has no magic here) */
} magics[] = {
	{ "\x1f\x8b", 2, "gzip", true },
	{ "\x28\xb5\x2f\xfd", 4, "zstd", true },
	{ "PK\x03\x04", 4, "zip", false },
	{ "PK\x05\x06", 4, "zip", false },
	{ "\xfd"
	  "7zXZ",
	  5, "xz", false },
	{ "BZh", 3, "bzip2", false },
	{ "7z\xbc\xaf\x27\x1c", 6, "7z", false },
	{ "Rar!", 4, "rar", false },
	{ "\x04\x22\x4d\x18", 4, "lz4", false },
	{ "LZIP", 4, "lzip", false },
	{ "\x1f\x9d", 2, "compress (.Z)", false },
	{ "\x1f\xa0", 2, "compress (LZH)", false },
	{ "\x5d\x00\x00", 3, "lzma", false },
	{ "070707", 6, "cpio", false },
	{ "070701", 6, "cpio", false },
	{ "070702", 6, "cpio", false },
	{ "\xc7\x71", 2, "cpio", false },
	{ "!<arch>", 7, "ar", false },
	{ "\xed\xab\xee\xdb", 4, "rpm", false },
	{ "MSCF", 4, "cab", false },
	{ "xar!", 4, "xar", false },
};

/* NULL when the first bytes are tar, gzip or zstd as far as can be told
 * without parsing; else the name of what it is. */
static const char *refused_format(const unsigned char *data, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(magics); i++)
		if (len >= magics[i].len &&
		    memcmp(data, magics[i].bytes, magics[i].len) == 0)
			return magics[i].ok ? NULL : magics[i].name;
	return NULL;
}

struct unpack {
	struct archive *a;
	int root;
	const struct bundle_limits *lim;
	uint64_t entries;
	uint64_t bytes;
	const char *entry; /* the name being unpacked, for messages */
	struct al_error *err;
	unsigned char *buf;
};

static int refuse(struct unpack *u, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int refuse(struct unpack *u, int errnum, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (u->entry)
		return al_error_set(u->err, errnum,
				    "bundle entry \"%.300s\": %s", u->entry,
				    what);
	return al_error_set(u->err, errnum, "bundle: %s", what);
}

static int count_entry(struct unpack *u)
{
	if (++u->entries > u->lim->max_entries)
		return refuse(u, E2BIG,
			      "more than %llu entries (--bundle-max-entries)",
			      (unsigned long long)u->lim->max_entries);
	return 0;
}

/*
 * The components of `name` into `parts` (pointers into `copy`, which the
 * caller owns): absolute names, ".." and oversized names refused, "." and
 * empty components dropped. Returns how many, or -1.
 */
static int split_name(struct unpack *u, const char *name, char *copy,
		      char *parts[BUNDLE_DEPTH_MAX])
{
	size_t len = strlen(name);
	int n = 0;

	if (len == 0)
		return refuse(u, EINVAL, "an empty name");
	if (len >= PATH_MAX)
		return refuse(u, ENAMETOOLONG,
			      "the name is longer than %d bytes", PATH_MAX - 1);
	if (name[0] == '/')
		return refuse(u, EPERM,
			      "an absolute name: names must be relative to "
			      "the bundle's top");
	memcpy(copy, name, len + 1);
	char *save = NULL;
	for (char *c = strtok_r(copy, "/", &save); c;
	     c = strtok_r(NULL, "/", &save)) {
		if (strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0)
			return refuse(u, EPERM,
				      "\"..\" in the name: nothing may leave "
				      "the bundle's tree");
		if (strlen(c) > NAME_MAX)
			return refuse(u, ENAMETOOLONG,
				      "a component is longer than %d bytes",
				      NAME_MAX);
		if (n == BUNDLE_DEPTH_MAX)
			return refuse(u, E2BIG, "more than %d directories deep",
				      BUNDLE_DEPTH_MAX);
		parts[n++] = c;
	}
	return n;
}

/* Open (making it when missing) directory `name` in `dirfd`; never
 * through a symlink. Returns an fd, or -1 with u->err. */
static int enter_dir(struct unpack *u, int dirfd, const char *name)
{
	for (int tries = 0; tries < 2; tries++) {
		int fd = openat(dirfd, name,
				O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					O_CLOEXEC);
		if (fd >= 0 || errno != ENOENT)
			return fd >= 0 ? fd
				       : refuse(u,
						errno == ENOTDIR ? EEXIST
								 : errno,
						"\"%s\" is already there and "
						"is not a directory",
						name);
		if (count_entry(u) < 0)
			return -1;
		if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
			return al_error_sys(u->err, errno,
					    "bundle: mkdir \"%s\"", name);
	}
	return al_error_set(u->err, EIO, "bundle: cannot open \"%s\"", name);
}

/* The directory that holds parts[0..n-2]: an fd the caller closes. */
static int parent_of(struct unpack *u, char *parts[], int n)
{
	int fd = fcntl(u->root, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return al_error_sys(u->err, errno, "bundle: dup");
	for (int i = 0; i + 1 < n; i++) {
		int next = enter_dir(u, fd, parts[i]);
		close(fd);
		if (next < 0)
			return -1;
		fd = next;
	}
	return fd;
}

/* Why an entry of this type is refused, or NULL for a file or directory. */
static const char *refused_type(struct archive_entry *e)
{
	if (ar_entry_hardlink(e))
		return "a hard link (hard links are refused: one could name a "
		       "file outside the bundle)";
	switch (ar_entry_filetype(e)) {
	case AE_IFREG:
	case AE_IFDIR: return NULL;
	case AE_IFLNK:
		return "a symbolic link (bundles may not hold links: one could "
		       "lead out of the tree)";
	case AE_IFCHR: return "a character device";
	case AE_IFBLK: return "a block device";
	case AE_IFIFO: return "a FIFO";
	case AE_IFSOCK: return "a socket";
	default: return "of an unknown file type";
	}
}

static int write_all(struct unpack *u, int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return refuse(u, errno, "write: %s", strerror(errno));
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The entry's data into `fd`, counted against the byte bound as it
 * comes (a header may lie about its size: sparse files, pax). */
static int copy_data(struct unpack *u, int fd)
{
	for (;;) {
		la_ssize_t n = ar_read_data(u->a, u->buf, BLOCK);
		if (n == 0)
			return 0;
		if (n < 0)
			return refuse(u, EINVAL, "cannot read its data: %s",
				      ar_error_string(u->a));
		if ((uint64_t)n > u->lim->max_bytes - u->bytes)
			return refuse(u, E2BIG,
				      "the bundle unpacks to more than %llu "
				      "bytes (--bundle-max-bytes)",
				      (unsigned long long)u->lim->max_bytes);
		u->bytes += (uint64_t)n;
		if (write_all(u, fd, u->buf, (size_t)n) < 0)
			return -1;
	}
}

static int make_file(struct unpack *u, int dirfd, const char *name, mode_t mode,
		     la_int64_t declared)
{
	if (declared < 0 || (uint64_t)declared > u->lim->max_bytes - u->bytes)
		return refuse(u, E2BIG,
			      "its size (%lld bytes) goes past what the bundle "
			      "may unpack to, %llu bytes (--bundle-max-bytes)",
			      (long long)declared,
			      (unsigned long long)u->lim->max_bytes);
	/* written by us only, read by the jail's user: 0444, or 0555 when
	 * the archive gave it any execute bit */
	_cleanup_close_ int fd = openat(dirfd, name,
					O_WRONLY | O_CREAT | O_EXCL |
						O_NOFOLLOW | O_CLOEXEC,
					0600);
	if (fd < 0)
		return errno == EEXIST
			       ? refuse(u, EEXIST,
					"the name appears twice in the archive")
			       : refuse(u, errno, "create: %s",
					strerror(errno));
	if (copy_data(u, fd) < 0)
		return -1;
	if (fchmod(fd, (mode & 0111) ? 0555 : 0444) < 0)
		return refuse(u, errno, "finish: %s", strerror(errno));
	return 0;
}

static int unpack_entry(struct unpack *u, struct archive_entry *e)
{
	char copy[PATH_MAX], *parts[BUNDLE_DEPTH_MAX];
	const char *why = refused_type(e);
	mode_t mode = ar_entry_mode(e);

	u->entry = ar_entry_pathname(e);
	if (!u->entry) {
		u->entry = NULL;
		return refuse(u, EINVAL,
			      "an entry whose name cannot be read (not UTF-8 "
			      "in this locale?)");
	}
	if (why)
		return refuse(u, EPERM, "is %s", why);
	if (mode & (S_ISUID | S_ISGID | S_ISVTX))
		return refuse(u, EPERM,
			      "has the %s bit (mode %#o): set-id and sticky "
			      "bits are refused",
			      mode & S_ISUID   ? "setuid"
			      : mode & S_ISGID ? "setgid"
					       : "sticky",
			      (unsigned)(mode & 07777));
	int n = split_name(u, u->entry, copy, parts);
	if (n < 0)
		return -1;
	if (n == 0) { /* "./" itself: the top, which is there */
		if (ar_entry_filetype(e) == AE_IFDIR)
			return 0;
		return refuse(u, EINVAL, "a file with no name");
	}
	_cleanup_close_ int dirfd = parent_of(u, parts, n);
	if (dirfd < 0)
		return -1;
	if (ar_entry_filetype(e) == AE_IFDIR) {
		int fd = enter_dir(u, dirfd, parts[n - 1]);
		if (fd < 0)
			return -1;
		close(fd);
		return 0;
	}
	if (count_entry(u) < 0)
		return -1;
	return make_file(u, dirfd, parts[n - 1], mode,
			 ar_entry_size_is_set(e) ? ar_entry_size(e) : 0);
}

/* After the first header: the filter and the format are ours. */
static int check_kind(struct unpack *u)
{
	int filter = ar_filter_code(u->a, 0);
	if (ar_filter_count(u->a) > 2)
		return refuse(u, EINVAL,
			      "compressed more than once: one gzip or zstd "
			      "layer at most");
	if (filter != ARCHIVE_FILTER_NONE && filter != ARCHIVE_FILTER_GZIP &&
	    filter != ARCHIVE_FILTER_ZSTD)
		return refuse(u, EINVAL,
			      "compressed with %s: only gzip and zstd are read",
			      ar_filter_name(u->a, 0));
	if ((ar_format(u->a) & ARCHIVE_FORMAT_BASE_MASK) != ARCHIVE_FORMAT_TAR)
		return refuse(u, EINVAL, "a %s archive: only tar is read",
			      ar_format_name(u->a));
	return 0;
}

static int unpack_all(struct unpack *u, const void *data, size_t len)
{
	struct archive_entry *e;

	if (ar_read_support_format_tar(u->a) != ARCHIVE_OK ||
	    ar_read_support_filter_gzip(u->a) != ARCHIVE_OK ||
	    ar_read_support_filter_zstd(u->a) != ARCHIVE_OK)
		return refuse(u, ENOTSUP, "libarchive: %s",
			      ar_error_string(u->a));
	if (ar_read_open_memory(u->a, data, len) != ARCHIVE_OK)
		return refuse(u, EINVAL,
			      "not a tar archive (plain, gzip or zstd): %s",
			      ar_error_string(u->a));
	for (bool first = true;; first = false) {
		u->entry = NULL;
		int rc = ar_read_next_header(u->a, &e);
		if (rc == ARCHIVE_EOF)
			return first ? refuse(u, EINVAL, "an empty archive")
				     : 0;
		if (rc != ARCHIVE_OK)
			return refuse(u, EINVAL,
				      "not a readable tar archive (plain, gzip "
				      "or zstd)%s%s",
				      first ? "" : " after an entry: ",
				      first ? "" : ar_error_string(u->a));
		if (first && check_kind(u) < 0)
			return -1;
		if (unpack_entry(u, e) < 0)
			return -1;
	}
}

int bundle_unpack(const void *data, size_t len, int dirfd,
		  const struct bundle_limits *lim, struct bundle_stats *stats,
		  struct al_error *err)
{
	struct unpack u = { .root = dirfd, .lim = lim, .err = err };
	const char *other = refused_format(data, len);
	int rc = -1;

	if (other)
		return al_error_set(err, EINVAL,
				    "bundle: a %s file: only tar archives "
				    "(plain, gzip or zstd) are read",
				    other);
	if (ar_load(err) < 0)
		return -1;
	u.a = ar_read_new();
	u.buf = malloc(BLOCK);
	if (!u.a || !u.buf) {
		al_error_set(err, ENOMEM, "bundle: out of memory");
		goto out;
	}
	rc = unpack_all(&u, data, len);
	/* one syncfs for the whole tree, not an fsync a file: a tree of
	 * thousands of files would stall the daemon for seconds */
	if (rc == 0 && syncfs(dirfd) < 0)
		rc = al_error_sys(err, errno, "bundle: syncfs");
	if (rc == 0 && stats) {
		stats->entries = u.entries;
		stats->bytes = u.bytes;
	}
out:
	if (u.a)
		ar_read_free(u.a);
	free(u.buf);
	return rc < 0 ? -1 : 0;
}

int bundle_entry_check(const char *entry, struct al_error *err)
{
	size_t len = strlen(entry);
	const char *p = entry;

	if (len == 0 || len > MANIFEST_ENTRY_MAX)
		return al_error_set(err, EINVAL,
				    "entry: expected a path inside the bundle, "
				    "1 to %d bytes",
				    MANIFEST_ENTRY_MAX);
	for (size_t i = 0; i < len; i++)
		if (entry[i] < 0x20 || entry[i] >= 0x7f)
			return al_error_set(err, EINVAL,
					    "entry \"%s\": only printable "
					    "ASCII",
					    entry);
	for (;;) {
		size_t n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return al_error_set(err, EINVAL,
					    "entry \"%s\": a relative path "
					    "inside the bundle, like main.py "
					    "or bin/run (no leading /, no . "
					    "or .. and no empty part)",
					    entry);
		if (p[n] == '\0')
			return 0;
		p += n + 1;
	}
}

/* ------------------------------------------------------------- removal */

/* Everything in directory `fd` (consumed), `depth` levels down. */
static int empty_dir(int fd, int depth)
{
	DIR *d = fdopendir(fd);
	int rc = 0;

	if (!d) {
		close(fd);
		return -1;
	}
	for (struct dirent *de; (de = readdir(d));) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			continue;
		if (errno != EISDIR && errno != EPERM) {
			rc = -1;
			continue;
		}
		if (bundle_remove(dirfd(d), de->d_name, depth + 1) < 0)
			rc = -1;
	}
	closedir(d);
	return rc;
}

int bundle_remove(int parent, const char *name, int depth)
{
	if (depth > BUNDLE_DEPTH_MAX + 1) {
		errno = ELOOP;
		return -1;
	}
	int fd = openat(parent, name,
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	int rc = empty_dir(fd, depth);
	if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		rc = -1;
	return rc;
}
