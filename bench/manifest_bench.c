/*
 * manifest_bench: how many runs per second the manifest records.
 *
 *   manifest_bench [RUNS] [DIR] [URL]
 *
 * On a fresh state directory under DIR (default $TMPDIR, else /var/tmp:
 * on disk, where an fsync costs what it costs in production; a tmpfs
 * would flatter every row), one active module, then the rows below. The
 * manifest is the state directory's SQLite file, or with URL (a
 * DATABASE_URL: postgresql://...) that server's database, which must be
 * empty or airlock's (bench/run.sh makes a throw-away one with fsync on):
 *
 *   record    manifest_run_record(): one INSERT, one commit per run, no
 *             fsync of its own (run records commit with synchronous=NORMAL,
 *             manifest/db.c says why)
 *   begin+end manifest_run_begin() + manifest_run_finish(): two commits
 *             per run, for runs recorded as they start
 *   read      manifest_runs() of the newest 50, from a read-only handle
 *   move      manifest_archive() + manifest_restore(): journal, rename,
 *             directory fsyncs, commit; twice
 *
 * Prints the rate and the median and p99 latency of each row. The state
 * directory is removed afterwards.
 */
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "manifest/manifest.h"

#define HASH                                                                   \
	"sha256:0123456789abcdef0123456789abcdef"                              \
	"0123456789abcdef0123456789abcdef"
#define TMPFS_MAGIC 0x01021994

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void report(const char *name, double *ms, int n, double total_ms)
{
	qsort(ms, (size_t)n, sizeof(*ms), by_value);
	printf("  %-10s %7d ops  %9.0f ops/s  median %7.3f ms  p99 %7.3f ms\n",
	       name, n, n / (total_ms / 1e3), ms[n / 2], ms[(n * 99) / 100]);
}

static void die(const char *what, const struct al_error *err)
{
	fprintf(stderr, "manifest_bench: %s: %s\n", what, err->msg);
	exit(1);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static const struct manifest_run_result result = {
	.verdict = "ok",
	.exit_code = 0,
	.wall_ms = 7.6,
	.cpu_ms = 5.0,
	.peak_memory_bytes = 524288,
	.stderr_data = "warning: something\n",
	.stderr_len = 19,
};

static void bench_record(struct manifest *m, int64_t module, int n,
			 double *ms)
{
	struct manifest_run_start s = { .module_id = module,
					.policy_hash = HASH, .uid = 1000 };
	struct al_error err = { 0 };
	double start = al_monotonic_ms();

	for (int i = 0; i < n; i++) {
		double t = al_monotonic_ms();
		if (manifest_run_record(m, &s, &result, NULL, &err) < 0)
			die("record", &err);
		ms[i] = al_monotonic_ms() - t;
	}
	report("record", ms, n, al_monotonic_ms() - start);
}

static void bench_begin_finish(struct manifest *m, int64_t module, int n,
			       double *ms)
{
	struct manifest_run_start s = { .module_id = module,
					.policy_hash = HASH, .uid = 1000 };
	struct al_error err = { 0 };
	double start = al_monotonic_ms();
	int64_t id;

	for (int i = 0; i < n; i++) {
		double t = al_monotonic_ms();
		if (manifest_run_begin(m, &s, &id, &err) < 0 ||
		    manifest_run_finish(m, id, &result, &err) < 0)
			die("begin+end", &err);
		ms[i] = al_monotonic_ms() - t;
	}
	report("begin+end", ms, n, al_monotonic_ms() - start);
}

static void bench_read(const char *dir, const char *url, int n, double *ms)
{
	struct al_error err = { 0 };
	struct manifest *r = manifest_open_at(dir, url, MANIFEST_READ_ONLY,
					      &err);
	struct manifest_run_filter f = { .limit = 50 };
	double start = al_monotonic_ms();

	if (r == NULL)
		die("open read-only", &err);
	for (int i = 0; i < n; i++) {
		double t = al_monotonic_ms();
		if (manifest_runs(r, &f, NULL, NULL, &err) != 50)
			die("read", &err);
		ms[i] = al_monotonic_ms() - t;
	}
	report("read", ms, n, al_monotonic_ms() - start);
	manifest_close(r);
}

static void bench_moves(struct manifest *m, int n, double *ms)
{
	struct al_error err = { 0 };
	double start = al_monotonic_ms();

	for (int i = 0; i < n; i++) {
		double t = al_monotonic_ms();
		if (manifest_archive(m, "bench", "bench", &err) < 0 ||
		    manifest_restore(m, "bench", 0, &err) < 0)
			die("archive+restore", &err);
		ms[i] = al_monotonic_ms() - t;
	}
	report("move", ms, n, al_monotonic_ms() - start);
}

static const char *fs_name(const char *dir)
{
	struct statfs sf;

	if (statfs(dir, &sf) < 0)
		return "unknown";
	switch ((unsigned long)sf.f_type) {
	case TMPFS_MAGIC: return "tmpfs (fsync is free: not a disk figure)";
	case 0xEF53: return "ext4";
	case 0x58465342: return "xfs";
	case 0x9123683E: return "btrfs";
	case 0x794c7630: return "overlayfs";
	default: return "other";
	}
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 5000;
	const char *base = argc > 2 ? argv[2] : getenv("TMPDIR");
	const char *url = argc > 3 ? argv[3] : NULL;
	char dir[4096];
	struct al_error err = { 0 };
	struct manifest *m;
	struct manifest_module mod;
	struct manifest_submission sub = {
		.name = "bench", .content = "#!/bin/sh\nexit 0\n", .len = 17,
		.uid = 1000, .policy_name = "default", .policy_hash = HASH,
	};
	double *ms = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
	struct utsname u;

	if (n <= 0 || ms == NULL) {
		fprintf(stderr, "usage: manifest_bench [RUNS] [DIR] [URL]\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s/airlock-manifest-bench.XXXXXX",
		 base && *base ? base : "/var/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("manifest_bench: mkdtemp");
		return 1;
	}
	uname(&u);
	m = manifest_open_at(dir, url, MANIFEST_READ_WRITE, &err);
	if (m == NULL)
		die("open", &err);
	if (url == NULL)
		printf("manifest benchmark: %d runs, SQLite %s, WAL (run records "
		       "synchronous=NORMAL), %s on %s, %s\n",
		       n, sqlite3_libversion(), dir, fs_name(dir), u.release);
	else
		printf("manifest benchmark: %d runs, %s at %s (module files in "
		       "%s on %s), %s\n",
		       n, manifest_backend(m), manifest_where(m), dir,
		       fs_name(dir), u.release);
	if (manifest_stage(m, &sub, &mod, &err) < 0 ||
	    manifest_set_state(m, mod.id, MANIFEST_VALIDATING, NULL, &err) <
		    0 ||
	    manifest_set_state(m, mod.id, MANIFEST_ACTIVE, "bench", &err) < 0)
		die("set up", &err);

	bench_record(m, mod.id, n, ms);
	bench_begin_finish(m, mod.id, n / 5 > 0 ? n / 5 : 1, ms);
	bench_read(dir, url, n / 5 > 0 ? n / 5 : 1, ms);
	bench_moves(m, n / 50 > 0 ? n / 50 : 1, ms);

	manifest_close(m);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(ms);
	return 0;
}
