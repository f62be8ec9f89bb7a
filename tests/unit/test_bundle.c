/*
 * The bundle unpacker (supervisor/bundle.c) against archives built here
 * with libarchive's writer: good bundles (tar, tar.gz, tar.zst) unpack
 * to the tree they hold with the modes the store gives; every hostile
 * one (escapes, links, devices, set-id bits, long names, too many
 * entries, a compression bomb, other formats) is refused with a message
 * naming the entry and the rule, and leaves nothing behind once the
 * caller removes its directory, as airlockd does.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmocka.h>

#include "supervisor/internal.h"

struct item {
	const char *name;
	unsigned type; /* AE_IFREG, AE_IFDIR, AE_IFLNK, ... */
	unsigned mode;
	const char *data; /* file content, or a link's target */
	size_t zeros;     /* instead of data: this many zero bytes */
	bool hardlink;    /* `data` is a hard link's target */
};

struct built {
	unsigned char *buf;
	size_t len;
};

enum filter { F_NONE, F_GZIP, F_ZSTD };

static void add_item(struct archive *a, const struct item *it)
{
	struct archive_entry *e = archive_entry_new();
	size_t len = it->zeros ? it->zeros
		     : it->data && it->type == AE_IFREG && !it->hardlink
			     ? strlen(it->data)
			     : 0;

	archive_entry_set_pathname(e, it->name);
	archive_entry_set_filetype(e, it->type);
	archive_entry_set_perm(e, it->mode ? it->mode : 0644);
	archive_entry_set_size(e, (la_int64_t)len);
	if (it->type == AE_IFLNK)
		archive_entry_set_symlink(e, it->data);
	if (it->hardlink)
		archive_entry_set_hardlink(e, it->data);
	if (it->type == AE_IFCHR)
		archive_entry_set_rdev(e, makedev(1, 3));
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	if (it->zeros) {
		static const char block[65536];
		for (size_t left = len; left > 0;) {
			size_t n = left < sizeof(block) ? left : sizeof(block);
			assert_int_equal(archive_write_data(a, block, n),
					 (la_ssize_t)n);
			left -= n;
		}
	} else if (len) {
		assert_int_equal(archive_write_data(a, it->data, len),
				 (la_ssize_t)len);
	}
	archive_entry_free(e);
}

/* An archive of `n` items (then `extra` files named f0, f1, ...). */
static struct built build(enum filter f, const struct item *items, size_t n,
			  size_t extra)
{
	struct built b = { .buf = NULL };
	size_t cap = 64u << 20, used = 0;
	struct archive *a = archive_write_new();

	b.buf = malloc(cap);
	assert_non_null(b.buf);
	assert_int_equal(archive_write_set_format_pax_restricted(a),
			 ARCHIVE_OK);
	if (f == F_GZIP)
		assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
	if (f == F_ZSTD)
		assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
	assert_int_equal(archive_write_open_memory(a, b.buf, cap, &used),
			 ARCHIVE_OK);
	for (size_t i = 0; i < n; i++)
		add_item(a, &items[i]);
	for (size_t i = 0; i < extra; i++) {
		char name[32];
		snprintf(name, sizeof(name), "f%zu", i);
		struct item it = { name, AE_IFREG, 0644, "x", 0, false };
		add_item(a, &it);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	b.len = used;
	return b;
}

static char top[] = "/tmp/test_bundle.XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(top) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	int fd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = bundle_remove(fd, top + strlen("/tmp/"), 0);
	close(fd);
	return rc;
}

static const struct bundle_limits limits = { 4096, 256u << 20 };

static bool dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	bool empty = true;
	assert_non_null(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = false;
	closedir(d);
	return empty;
}

/* Unpack into top/tree the way airlockd does: the tree stays on success,
 * goes on failure (and then top must be empty again). */
static int unpack(const struct built *b, const struct bundle_limits *lim,
		  struct al_error *err)
{
	int parent = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(parent >= 0);
	assert_int_equal(bundle_remove(parent, "tree", 0), 0);
	assert_int_equal(mkdirat(parent, "tree", 0700), 0);
	int dir = openat(parent, "tree", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dir >= 0);
	int rc = bundle_unpack(b->buf, b->len, dir, lim, NULL, err);
	close(dir);
	if (rc < 0) {
		assert_int_equal(bundle_remove(parent, "tree", 0), 0);
		assert_true(dir_is_empty(top));
	}
	close(parent);
	return rc;
}

/* Refused, with a message holding each of the words. */
static void refused(enum filter f, const struct item *items, size_t n,
		    size_t extra, const struct bundle_limits *lim, ...)
{
	struct built b = build(f, items, n, extra);
	struct al_error err = { 0 };
	va_list ap;

	assert_int_equal(unpack(&b, lim ? lim : &limits, &err), -1);
	va_start(ap, lim);
	for (const char *w; (w = va_arg(ap, const char *));)
		if (!strstr(err.msg, w))
			fail_msg("\"%s\" not in: %s", w, err.msg);
	va_end(ap);
	free(b.buf);
}

static void check_file(const char *rel, const char *content, unsigned mode)
{
	char path[512], got[256];
	struct stat st;
	snprintf(path, sizeof(path), "%s/tree/%s", top, rel);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, mode);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = read(fd, got, sizeof(got) - 1);
	close(fd);
	assert_true(n >= 0);
	got[n] = '\0';
	assert_string_equal(got, content);
}

static const struct item good[] = {
	{ "pkg/", AE_IFDIR, 0755, NULL, 0, false },
	{ "pkg/__init__.py", AE_IFREG, 0644, "", 0, false },
	{ "pkg/helper.py", AE_IFREG, 0600, "X = 42\n", 0, false },
	{ "./main.py", AE_IFREG, 0755, "#!/usr/bin/python3\n", 0, false },
	/* no entry for its directories: they are made on the way */
	{ "deep/er/data.txt", AE_IFREG, 0644, "data", 0, false },
};

static void good_bundles_unpack(void **state)
{
	(void)state;
	const enum filter filters[] = { F_NONE, F_GZIP, F_ZSTD };
	for (size_t i = 0; i < ARRAY_SIZE(filters); i++) {
		struct built b = build(filters[i], good, ARRAY_SIZE(good), 0);
		struct al_error err = { 0 };
		struct bundle_stats st;
		int parent = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_int_equal(bundle_remove(parent, "tree", 0), 0);
		assert_int_equal(mkdirat(parent, "tree", 0700), 0);
		int dir = openat(parent, "tree", O_RDONLY | O_DIRECTORY);
		if (bundle_unpack(b.buf, b.len, dir, &limits, &st, &err) < 0)
			fail_msg("filter %zu: %s", i, err.msg);
		close(dir);
		close(parent);
		/* executable stays executable, the rest read-only */
		check_file("main.py", "#!/usr/bin/python3\n", 0555);
		check_file("pkg/helper.py", "X = 42\n", 0444);
		check_file("pkg/__init__.py", "", 0444);
		check_file("deep/er/data.txt", "data", 0444);
		/* pkg, deep, deep/er and four files */
		assert_int_equal(st.entries, 7);
		assert_int_equal(st.bytes, 7 + 19 + 4);
		free(b.buf);
	}
}

static void escapes_are_refused(void **state)
{
	(void)state;
	struct item up[] = { { "../evil", AE_IFREG, 0644, "x", 0, false } };
	refused(F_NONE, up, 1, 0, NULL, "../evil", "\"..\"", NULL);
	struct item mid[] = { { "a/../../evil", AE_IFREG, 0644, "x", 0,
				false } };
	refused(F_GZIP, mid, 1, 0, NULL, "a/../../evil", "leave", NULL);
	struct item abs[] = { { "/etc/evil", AE_IFREG, 0644, "x", 0, false } };
	refused(F_NONE, abs, 1, 0, NULL, "/etc/evil", "absolute", NULL);
}

static void links_are_refused(void **state)
{
	(void)state;
	/* out of the tree, then a file written through it */
	struct item out[] = {
		{ "up", AE_IFLNK, 0777, "../../..", 0, false },
		{ "up/etc/passwd", AE_IFREG, 0644, "x", 0, false },
	};
	refused(F_NONE, out, 2, 0, NULL, "\"up\"", "symbolic link", NULL);
	/* even one that stays inside */
	struct item in[] = {
		{ "a", AE_IFREG, 0644, "x", 0, false },
		{ "b", AE_IFLNK, 0777, "a", 0, false },
	};
	refused(F_NONE, in, 2, 0, NULL, "\"b\"", "symbolic link", NULL);
	struct item hard[] = {
		{ "a", AE_IFREG, 0644, "x", 0, false },
		{ "h", AE_IFREG, 0644, "/etc/shadow", 0, true },
	};
	refused(F_NONE, hard, 2, 0, NULL, "\"h\"", "hard link", NULL);
}

static void special_files_are_refused(void **state)
{
	(void)state;
	struct item chr[] = { { "null", AE_IFCHR, 0666, NULL, 0, false } };
	refused(F_NONE, chr, 1, 0, NULL, "\"null\"", "character device", NULL);
	struct item blk[] = { { "sda", AE_IFBLK, 0660, NULL, 0, false } };
	refused(F_NONE, blk, 1, 0, NULL, "\"sda\"", "block device", NULL);
	struct item fifo[] = { { "p", AE_IFIFO, 0644, NULL, 0, false } };
	refused(F_NONE, fifo, 1, 0, NULL, "\"p\"", "FIFO", NULL);
	/* (tar has no socket type: libarchive's writer refuses one) */
}

static void setid_bits_are_refused(void **state)
{
	(void)state;
	struct item suid[] = { { "su", AE_IFREG, 04755, "x", 0, false } };
	refused(F_NONE, suid, 1, 0, NULL, "\"su\"", "setuid", "04755", NULL);
	struct item sgid[] = { { "d/", AE_IFDIR, 02755, NULL, 0, false } };
	refused(F_NONE, sgid, 1, 0, NULL, "\"d/\"", "setgid", NULL);
	struct item sticky[] = { { "t/", AE_IFDIR, 01777, NULL, 0, false } };
	refused(F_NONE, sticky, 1, 0, NULL, "\"t/\"", "sticky", NULL);
}

static void long_and_deep_names_are_refused(void **state)
{
	(void)state;
	char comp[300], path[5000], deep[64 * 3 + 16];
	memset(comp, 'a', 256);
	comp[256] = '\0';
	struct item one[] = { { comp, AE_IFREG, 0644, "x", 0, false } };
	refused(F_NONE, one, 1, 0, NULL, "longer than 255", NULL);
	for (size_t i = 0; i < 4200; i += 2)
		memcpy(path + i, "b/", 2);
	path[4200] = 'c';
	path[4201] = '\0';
	struct item whole[] = { { path, AE_IFREG, 0644, "x", 0, false } };
	refused(F_NONE, whole, 1, 0, NULL, "longer than 4095", NULL);
	size_t n = 0;
	for (int i = 0; i < BUNDLE_DEPTH_MAX; i++)
		n += (size_t)snprintf(deep + n, sizeof(deep) - n, "d/");
	snprintf(deep + n, sizeof(deep) - n, "f");
	struct item d[] = { { deep, AE_IFREG, 0644, "x", 0, false } };
	refused(F_NONE, d, 1, 0, NULL, "directories deep", NULL);
}

static void too_many_entries(void **state)
{
	(void)state;
	/* 10,000 files against the default 4096 */
	refused(F_GZIP, NULL, 0, 10000, NULL, "more than 4096 entries",
		"\"f4096\"", NULL);
	/* the directories made on the way count too */
	const struct bundle_limits three = { 3, 1u << 20 };
	struct item dirs[] = { { "a/b/c/d", AE_IFREG, 0644, "x", 0, false } };
	refused(F_NONE, dirs, 1, 0, &three, "more than 3 entries", NULL);
}

static void compression_bomb(void **state)
{
	(void)state;
	const struct bundle_limits small = { 4096, 1u << 20 };
	/* 64 MiB of zeros: about 64 KiB of gzip, refused at its header */
	struct item bomb[] = {
		{ "zeros", AE_IFREG, 0644, NULL, 64u << 20, false },
	};
	struct built b = build(F_GZIP, bomb, 1, 0);
	assert_true(b.len < (1u << 20));
	free(b.buf);
	refused(F_GZIP, bomb, 1, 0, &small, "\"zeros\"", "--bundle-max-bytes",
		NULL);
	refused(F_ZSTD, bomb, 1, 0, &small, "\"zeros\"", NULL);
	/* many small files that add up */
	struct item parts[] = {
		{ "a", AE_IFREG, 0644, NULL, 600u << 10, false },
		{ "b", AE_IFREG, 0644, NULL, 600u << 10, false },
	};
	refused(F_GZIP, parts, 2, 0, &small, "\"b\"", "1048576 bytes", NULL);
}

static void names_met_twice(void **state)
{
	(void)state;
	struct item twice[] = {
		{ "a", AE_IFREG, 0644, "x", 0, false },
		{ "a", AE_IFREG, 0644, "y", 0, false },
	};
	refused(F_NONE, twice, 2, 0, NULL, "\"a\"", "twice", NULL);
	struct item file_then_dir[] = {
		{ "a", AE_IFREG, 0644, "x", 0, false },
		{ "a/b", AE_IFREG, 0644, "y", 0, false },
	};
	refused(F_NONE, file_then_dir, 2, 0, NULL, "\"a/b\"", "not a directory",
		NULL);
}

static void other_formats_are_refused(void **state)
{
	(void)state;
	struct {
		const char *bytes;
		size_t len;
		const char *word;
	} cases[] = {
		{ "PK\x03\x04rest of a zip", 18, "zip" },
		{ "\xfd"
		  "7zXZ\0\0 more",
		  12, "xz" },
		{ "BZh91AY&SY", 10, "bzip2" },
		{ "070701000000", 12, "cpio" },
		{ "hello, not an archive at all, just text, long enough for "
		  "a bid",
		  62, "not a tar archive" },
		{ "\x1f\x8b\x08\x00 garbage", 13, "not a" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct built b = { malloc(cases[i].len), cases[i].len };
		assert_non_null(b.buf);
		memcpy(b.buf, cases[i].bytes, b.len);
		struct al_error err = { 0 };
		assert_int_equal(unpack(&b, &limits, &err), -1);
		if (!strstr(err.msg, cases[i].word))
			fail_msg("\"%s\" not in: %s", cases[i].word, err.msg);
		free(b.buf);
	}
	/* an empty archive, and a truncated one */
	struct built empty = build(F_NONE, NULL, 0, 0);
	struct al_error err = { 0 };
	assert_int_equal(unpack(&empty, &limits, &err), -1);
	assert_non_null(strstr(err.msg, "empty"));
	free(empty.buf);
	struct built cut = build(F_NONE, good, ARRAY_SIZE(good), 0);
	cut.len = 700;
	assert_int_equal(unpack(&cut, &limits, &err), -1);
	free(cut.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_bundles_unpack),
		cmocka_unit_test(escapes_are_refused),
		cmocka_unit_test(links_are_refused),
		cmocka_unit_test(special_files_are_refused),
		cmocka_unit_test(setid_bits_are_refused),
		cmocka_unit_test(long_and_deep_names_are_refused),
		cmocka_unit_test(too_many_entries),
		cmocka_unit_test(compression_bomb),
		cmocka_unit_test(names_met_twice),
		cmocka_unit_test(other_formats_are_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
