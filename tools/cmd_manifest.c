/*
 * The operator's read-only view of the manifest; each command opens it
 * read-only, so it works whether airlockd runs or not.
 *
 * airlock list [--state S] [--json]               modules, every version
 * airlock show NAME [--version N] [--runs N] [--json]
 *                                                 a module, its versions,
 *                                                 last runs and events
 * airlock runs [NAME] [--since T] [--verdict V] [--limit N] [--json]
 * airlock manifest check [--json]                 integrity, files vs rows
 * airlock manifest backup FILE                    an online copy
 *
 * Every command takes --state-dir DIR (else $AIRLOCK_STATE_DIR, else
 * /var/lib/airlock). Human output is an aligned table; --json output is
 * one object, documented in docs/manifest.md, whose members only grow.
 * Exit status: 0, 1 when something failed or check found problems, 125 for
 * a usage error.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/manifest.h"
#include "tools/cli.h"

#define RUNS_LIMIT_DEFAULT 50
#define SHOW_RUNS_DEFAULT 10
#define SHOW_EVENTS_DEFAULT 20
#define TABLE_COLS_MAX 12

/* Options; each command says which it accepts. */
enum {
	OPT_STATE_DIR = 1 << 0,
	OPT_JSON = 1 << 1,
	OPT_STATE = 1 << 2,
	OPT_VERSION = 1 << 3,
	OPT_RUNS = 1 << 4,
	OPT_SINCE = 1 << 5,
	OPT_VERDICT = 1 << 6,
	OPT_LIMIT = 1 << 7,
};

struct options {
	const char *command; /* "list", "manifest check", ... */
	const char *state_dir;
	bool json;
	const char *state;
	const char *version;
	const char *runs;
	const char *since;
	const char *verdict;
	const char *limit;
	int nargs;
	char **args;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: airlock list [--state STATE] [--json]\n"
		"       airlock show NAME [--version N] [--runs N] [--json]\n"
		"       airlock runs [NAME] [--since TIME] [--verdict V]\n"
		"                    [--limit N] [--json]\n"
		"       airlock manifest check [--json]\n"
		"       airlock manifest backup FILE\n"
		"\n"
		"Read-only views of the manifest; they work with or without\n"
		"airlockd running. Every command takes --state-dir DIR (else\n"
		"$AIRLOCK_STATE_DIR, else " MANIFEST_DEFAULT_STATE_DIR ").\n"
		"\n"
		"  --state STATE      staged, validating, active, rejected or\n"
		"                     archived\n"
		"  --version N        a version of NAME (default: the latest)\n"
		"  --runs N           runs shown by show (default %d)\n"
		"  --since TIME       2024-05-01, 2024-05-01T12:00:00Z, or an\n"
		"                     age: 90s, 30m, 2h, 7d\n"
		"  --verdict V        ok, exit_nonzero, crashed, timeout,\n"
		"                     memory_limit, seccomp_violation,\n"
		"                     setup_error, running or interrupted\n"
		"  --limit N          newest N runs (default %d; 0: all)\n"
		"  --json             one JSON object (docs/manifest.md)\n",
		SHOW_RUNS_DEFAULT, RUNS_LIMIT_DEFAULT);
}

static int usage_error(const struct options *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int usage_error(const struct options *o, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "airlock %s: ", o->command);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(airlock %s --help)\n", o->command);
	return CLI_EXIT_USAGE;
}

/* Returns 0, or an exit status to leave with. */
static int parse_options(int argc, char **argv, unsigned allowed,
			 struct options *o)
{
	static const struct {
		struct option opt;
		unsigned flag;
	} table[] = {
		{ { "state-dir", required_argument, NULL, 'd' },
		  OPT_STATE_DIR },
		{ { "json", no_argument, NULL, 'j' }, OPT_JSON },
		{ { "state", required_argument, NULL, 's' }, OPT_STATE },
		{ { "version", required_argument, NULL, 'V' }, OPT_VERSION },
		{ { "runs", required_argument, NULL, 'r' }, OPT_RUNS },
		{ { "since", required_argument, NULL, 'S' }, OPT_SINCE },
		{ { "verdict", required_argument, NULL, 'v' }, OPT_VERDICT },
		{ { "limit", required_argument, NULL, 'l' }, OPT_LIMIT },
	};
	struct option longopts[ARRAY_SIZE(table) + 2] = { { 0 } };
	size_t n = 0;
	int c;

	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		if (allowed & table[i].flag)
			longopts[n++] = table[i].opt;
	longopts[n] = (struct option){ "help", no_argument, NULL, 'h' };
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': o->state_dir = optarg; break;
		case 'j': o->json = true; break;
		case 's': o->state = optarg; break;
		case 'V': o->version = optarg; break;
		case 'r': o->runs = optarg; break;
		case 'S': o->since = optarg; break;
		case 'v': o->verdict = optarg; break;
		case 'l': o->limit = optarg; break;
		case 'h': usage(stdout); return -1;
		case ':':
			return usage_error(o, "%s needs a value",
					   argv[optind - 1]);
		default:
			return usage_error(o, "unknown option %s",
					   argv[optind - 1]);
		}
	}
	o->nargs = argc - optind;
	o->args = argv + optind;
	return 0;
}

static struct manifest *open_read_only(const struct options *o)
{
	const char *dir = o->state_dir;
	struct al_error err = { 0 };
	struct manifest *m;

	if (dir == NULL || *dir == '\0')
		dir = getenv("AIRLOCK_STATE_DIR");
	if (dir == NULL || *dir == '\0')
		dir = MANIFEST_DEFAULT_STATE_DIR;
	m = cli_manifest_open(dir, &err);
	if (m == NULL)
		fprintf(stderr, "airlock %s: %s\n", o->command, err.msg);
	return m;
}

static int fail(const struct options *o, const struct al_error *err)
{
	fprintf(stderr, "airlock %s: %s\n", o->command, err->msg);
	return 1;
}

/* ---------------------------------------------------------------- table */

/* Rows of cells, printed with every column as wide as its widest cell. */
struct table {
	size_t ncols;
	size_t nrows;
	char **cells; /* nrows * ncols, owned */
	bool failed;
};

/* Terminal-safe: control characters become '?'. */
static char *cell_dup(const char *s)
{
	char *copy = strdup(s ? s : "");

	for (char *p = copy; p != NULL && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return copy;
}

static void table_row(struct table *t, const char *const *cells)
{
	char **grown = realloc(t->cells,
			       (t->nrows + 1) * t->ncols * sizeof(char *));

	if (grown == NULL) {
		t->failed = true;
		return;
	}
	t->cells = grown;
	for (size_t c = 0; c < t->ncols; c++) {
		grown[t->nrows * t->ncols + c] = cell_dup(cells[c]);
		if (grown[t->nrows * t->ncols + c] == NULL)
			t->failed = true;
	}
	t->nrows++;
}

/* Characters, not bytes: UTF-8 continuation bytes take no column. */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; s && *s; s++)
		w += ((unsigned char)*s & 0xC0) != 0x80;
	return w;
}

static void table_print(struct table *t)
{
	size_t widths[TABLE_COLS_MAX] = { 0 };

	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		if (width(t->cells[i]) > widths[i % t->ncols])
			widths[i % t->ncols] = width(t->cells[i]);
	for (size_t r = 0; r < t->nrows; r++) {
		char *const *row = &t->cells[r * t->ncols];
		size_t last = t->ncols - 1;

		/* no padding after the last cell that has something */
		while (last > 0 && (row[last] == NULL || row[last][0] == '\0'))
			last--;
		for (size_t c = 0; c < last; c++)
			printf("%s%*s  ", row[c] ? row[c] : "",
			       (int)(widths[c] - width(row[c])), "");
		printf("%s\n", row[last] ? row[last] : "");
	}
	if (t->nrows == 1)
		printf("(none)\n");
}

static void table_free(struct table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
}

/* ------------------------------------------------------------ formatting */

static const char *when(int64_t ms, char buf[MANIFEST_TIME_MAX])
{
	if (ms == 0)
		return "-";
	manifest_time_format(ms, false, buf);
	return buf;
}

/* Print and free a finished JSON text; 1 when it could not be built. */
static int json_print(const struct options *o, struct json_buf *jb)
{
	char *text = json_buf_steal(jb);

	if (text == NULL) {
		fprintf(stderr, "airlock %s: out of memory writing JSON\n",
			o->command);
		return 1;
	}
	printf("%s\n", text);
	free(text);
	return 0;
}

/* One output: either a JSON array member or a table row per item. */
struct sink {
	struct json_buf *jb; /* --json */
	struct table *t;
	const char *state_dir;
};

/* The rows to come: into a JSON array `key` (--json), else a table under
 * `header`. */
static void sink_open(struct sink *k, const struct options *o,
		      struct json_buf *jb, const char *key,
		      const char *const *header)
{
	if (o->json) {
		k->jb = jb;
		json_object_open(jb);
		json_key(jb, key);
		json_array_open(jb);
	} else {
		table_row(k->t, header);
	}
}

/* The rows gathered (n of them, -1 when the query failed) printed; a
 * table of none prints `empty` instead, when given. */
static int sink_close(struct sink *k, const struct options *o, int n,
		      const struct al_error *err, const char *empty)
{
	if (n < 0)
		return fail(o, err);
	if (o->json) {
		json_array_close(k->jb);
		json_object_close(k->jb);
		return json_print(o, k->jb);
	}
	if (n == 0 && empty != NULL)
		printf("%s\n", empty);
	else
		table_print(k->t);
	return 0;
}

static int module_row(const struct manifest_module *m, void *arg)
{
	struct sink *k = arg;
	char version[24], size[32], uid[16], t[MANIFEST_TIME_MAX], sha[13];

	if (k->jb != NULL) {
		manifest_module_json(k->jb, m);
		return 0;
	}
	snprintf(version, sizeof(version), "%lld", (long long)m->version);
	format_size(m->size, size, sizeof(size));
	snprintf(uid, sizeof(uid), "%u", m->submitted_uid);
	snprintf(sha, sizeof(sha), "%.12s", m->sha256);
	table_row(k->t, (const char *const[]){
				m->name, version, manifest_state_name(m->state),
				sha, size, m->policy_name, uid,
				when(m->updated_ms, t), m->reason });
	return 0;
}

#define MODULE_HEADER                                                          \
	(const char *const[])                                                  \
	{                                                                      \
		"NAME", "VERSION", "STATE", "SHA256", "SIZE", "POLICY", "UID", \
			"UPDATED", "REASON"                                    \
	}
#define MODULE_COLS 9

static void verdict_detail(const struct manifest_run *r, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s", r->syscall[0] ? "syscall " : "",
		 r->syscall, r->stdout_truncated ? " stdout-cut" : "",
		 r->stderr_truncated ? " stderr-cut" : "");
}

static int run_row(const struct manifest_run *r, void *arg)
{
	struct sink *k = arg;
	char id[24], module[MANIFEST_NAME_MAX + 32], code[16], sig[16],
		wall[32], cpu[32], peak[32], uid[16], detail[128],
		t[MANIFEST_TIME_MAX];

	if (k->jb != NULL) {
		manifest_run_json(k->jb, r);
		return 0;
	}
	snprintf(id, sizeof(id), "%lld", (long long)r->id);
	snprintf(module, sizeof(module), "%s v%lld", r->module_name,
		 (long long)r->module_version);
	snprintf(code, sizeof(code), r->has_exit_code ? "%d" : "-",
		 r->exit_code);
	snprintf(sig, sizeof(sig), r->signal ? "%d" : "-", r->signal);
	snprintf(wall, sizeof(wall), r->has_usage ? "%.1f" : "-", r->wall_ms);
	snprintf(cpu, sizeof(cpu), r->has_usage ? "%.1f" : "-", r->cpu_ms);
	if (r->has_usage)
		format_size(r->peak_memory_bytes, peak, sizeof(peak));
	else
		snprintf(peak, sizeof(peak), "-");
	snprintf(uid, sizeof(uid), "%u", r->uid);
	verdict_detail(r, detail, sizeof(detail));
	table_row(k->t, (const char *const[]){
				id, module, when(r->started_ms, t), r->verdict,
				code, sig, wall, cpu, peak, uid, detail });
	return 0;
}

#define RUN_HEADER                                                             \
	(const char *const[])                                                  \
	{                                                                      \
		"ID", "MODULE", "STARTED", "VERDICT", "EXIT", "SIGNAL",        \
			"WALL_MS", "CPU_MS", "PEAK", "UID", "DETAIL"           \
	}
#define RUN_COLS 11

static int event_row(const struct manifest_event *e, void *arg)
{
	struct sink *k = arg;
	char t[MANIFEST_TIME_MAX];

	if (k->jb != NULL) {
		manifest_event_json(k->jb, e);
		return 0;
	}
	table_row(k->t,
		  (const char *const[]){ when(e->time_ms, t),
					 e->from_state[0] ? e->from_state : "-",
					 e->to_state, e->reason });
	return 0;
}

/* ----------------------------------------------------------------- list */

static int cmd_list(struct options *o)
{
	struct manifest_module_filter f = { 0 };
	struct al_error err = { 0 };
	struct json_buf jb;
	struct table t = { .ncols = MODULE_COLS };
	struct sink k = { .t = &t };
	struct manifest *m;
	char empty[4200];
	int n, rc = 0;

	if (o->nargs != 0)
		return usage_error(o, "unexpected argument \"%s\"", o->args[0]);
	if (o->state != NULL) {
		int st = manifest_state_parse(o->state);
		if (st < 0)
			return usage_error(o, "unknown state \"%s\"", o->state);
		f.by_state = true;
		f.state = (enum manifest_state)st;
	}
	m = open_read_only(o);
	if (m == NULL)
		return 1;
	json_buf_init(&jb);
	sink_open(&k, o, &jb, "modules", MODULE_HEADER);
	n = manifest_list(m, &f, module_row, &k, &err);
	snprintf(empty, sizeof(empty), "(no modules%s%s in %s)",
		 o->state ? " " : "", o->state ? o->state : "",
		 manifest_state_dir(m));
	rc = sink_close(&k, o, n, &err, empty);
	json_buf_free(&jb);
	table_free(&t);
	manifest_close(m);
	return rc;
}

/* ----------------------------------------------------------------- runs */

/* A verdict, or one of the two states of a run that has none. */
static bool known_verdict(const char *v)
{
	return al_verdict_parse(v) >= 0 || strcmp(v, "running") == 0 ||
	       strcmp(v, "interrupted") == 0;
}

static int parse_count(const struct options *o, const char *opt,
		       const char *value, size_t *out)
{
	struct al_error err = { 0 };
	uint64_t v;

	if (parse_uint(value, 0, 1000000000, &v, &err) < 0) {
		fprintf(stderr, "airlock %s: %s: %s\n", o->command, opt,
			err.msg);
		return CLI_EXIT_USAGE;
	}
	*out = (size_t)v;
	return 0;
}

static int runs_filter(struct options *o, struct manifest_run_filter *f)
{
	struct al_error err = { 0 };

	if (o->nargs > 1)
		return usage_error(o, "unexpected argument \"%s\"", o->args[1]);
	f->name = o->nargs == 1 ? o->args[0] : NULL;
	f->limit = RUNS_LIMIT_DEFAULT;
	if (o->limit && parse_count(o, "--limit", o->limit, &f->limit))
		return CLI_EXIT_USAGE;
	if (o->verdict != NULL && !known_verdict(o->verdict))
		return usage_error(o, "unknown verdict \"%s\"", o->verdict);
	f->verdict = o->verdict;
	if (o->since != NULL && manifest_time_parse(o->since, manifest_now_ms(),
						    &f->since_ms, &err) < 0) {
		fprintf(stderr, "airlock %s: --since: %s\n", o->command,
			err.msg);
		return CLI_EXIT_USAGE;
	}
	return 0;
}

static int cmd_runs(struct options *o)
{
	struct manifest_run_filter f = { 0 };
	struct al_error err = { 0 };
	struct json_buf jb;
	struct table t = { .ncols = RUN_COLS };
	struct sink k = { .t = &t };
	struct manifest *m;
	int n, rc;

	rc = runs_filter(o, &f);
	if (rc != 0)
		return rc;
	m = open_read_only(o);
	if (m == NULL)
		return 1;
	json_buf_init(&jb);
	sink_open(&k, o, &jb, "runs", RUN_HEADER);
	n = manifest_runs(m, &f, run_row, &k, &err);
	rc = sink_close(&k, o, n, &err, NULL);
	json_buf_free(&jb);
	table_free(&t);
	manifest_close(m);
	return rc;
}

/* ----------------------------------------------------------------- show */

static void show_module_text(struct manifest *m,
			     const struct manifest_module *mod)
{
	char path[4096], size[32], t[MANIFEST_TIME_MAX], t2[MANIFEST_TIME_MAX];
	struct al_error err = { 0 };

	format_size(mod->size, size, sizeof(size));
	printf("module       %s version %lld\n", mod->name,
	       (long long)mod->version);
	printf("state        %s since %s%s%s\n",
	       manifest_state_name(mod->state), when(mod->updated_ms, t),
	       mod->reason[0] ? ": " : "", mod->reason);
	printf("sha256       %s\n", mod->sha256);
	printf("size         %llu bytes (%s)\n", (unsigned long long)mod->size,
	       size);
	printf("interpreter  %s\n",
	       mod->interpreter[0] ? mod->interpreter : "-");
	printf("policy       %s %s\n", mod->policy_name, mod->policy_hash);
	char *calls = NULL;
	if (manifest_get_syscalls(m, mod->id, &calls, &err) == 0 && calls)
		printf("syscalls     learned: %s\n", calls);
	free(calls);
	printf("submitted    by uid %u at %s\n", mod->submitted_uid,
	       when(mod->created_ms, t2));
	if (manifest_module_path(m, mod, path, sizeof(path), &err) == 0)
		printf("file         %s\n", path);
}

/* A version as `show` lists it: what rollback and restore choose from. */
static int version_row(const struct manifest_module *m, void *arg)
{
	struct sink *k = arg;
	char version[24], sha[13], runs[24], t[MANIFEST_TIME_MAX];
	char counts[160] = "";
	size_t w = 0;

	if (k->jb != NULL) {
		manifest_module_json(k->jb, m);
		return 0;
	}
	snprintf(version, sizeof(version), "%lld", (long long)m->version);
	snprintf(sha, sizeof(sha), "%.12s", m->sha256);
	snprintf(runs, sizeof(runs), "%llu", (unsigned long long)m->runs);
	for (size_t i = 0; i < m->nverdicts && w < sizeof(counts); i++) {
		int n = snprintf(counts + w, sizeof(counts) - w, "%s%s %llu",
				 i ? ", " : "", m->verdicts[i].verdict,
				 (unsigned long long)m->verdicts[i].count);
		if (n < 0)
			break;
		w += (size_t)n;
	}
	table_row(k->t,
		  (const char *const[]){
			  version, manifest_state_name(m->state), sha,
			  when(m->created_ms, t), runs,
			  m->last_verdict[0] ? m->last_verdict : "-",
			  counts[0] ? counts : "-",
			  manifest_module_good(m) ? "yes" : "-", m->reason });
	return 0;
}

#define VERSION_HEADER                                                         \
	(const char *const[])                                                  \
	{                                                                      \
		"VERSION", "STATE", "SHA256", "CREATED", "RUNS", "LAST",       \
			"VERDICTS", "GOOD", "REASON"                           \
	}
#define VERSION_COLS 9

/* The sections after the module: versions, runs, events. */
static int show_sections(struct manifest *m, const struct manifest_module *mod,
			 size_t runs, struct sink *k, struct al_error *err)
{
	struct manifest_module_filter mf = { .name = mod->name,
					     .with_runs = true };
	struct manifest_run_filter rf = { .module_id = mod->id, .limit = runs };
	struct table t;
	int n;

	t = (struct table){ .ncols = VERSION_COLS };
	k->t = &t;
	if (k->jb) {
		json_key(k->jb, "versions");
		json_array_open(k->jb);
	} else {
		printf("\nversions:\n");
		table_row(&t, VERSION_HEADER);
	}
	n = manifest_list(m, &mf, version_row, k, err);
	k->jb ? json_array_close(k->jb) : table_print(&t);
	table_free(&t);
	if (n < 0)
		return -1;

	t = (struct table){ .ncols = RUN_COLS };
	if (k->jb) {
		json_key(k->jb, "runs");
		json_array_open(k->jb);
	} else {
		printf("\nlast runs of version %lld:\n",
		       (long long)mod->version);
		table_row(&t, RUN_HEADER);
	}
	n = manifest_runs(m, &rf, run_row, k, err);
	k->jb ? json_array_close(k->jb) : table_print(&t);
	table_free(&t);
	if (n < 0)
		return -1;

	t = (struct table){ .ncols = 4 };
	if (k->jb) {
		json_key(k->jb, "events");
		json_array_open(k->jb);
	} else {
		printf("\nevents of version %lld:\n", (long long)mod->version);
		table_row(&t, (const char *const[]){ "TIME", "FROM", "TO",
						     "REASON" });
	}
	n = manifest_events(m, mod->id, SHOW_EVENTS_DEFAULT, event_row, k, err);
	k->jb ? json_array_close(k->jb) : table_print(&t);
	table_free(&t);
	return n < 0 ? -1 : 0;
}

static int show(struct options *o, struct manifest *m, size_t runs,
		int64_t version, struct json_buf *jb)
{
	struct manifest_module mod;
	struct al_error err = { 0 };
	struct sink k = { .jb = o->json ? jb : NULL };
	char path[4096];

	/* one snapshot: the module, its runs and its events agree */
	if (manifest_snapshot_begin(m, &err) < 0)
		return fail(o, &err);
	if (manifest_find(m, o->args[0], version, &mod, &err) < 0) {
		manifest_snapshot_end(m);
		return fail(o, &err);
	}
	if (o->json) {
		json_object_open(jb);
		json_key(jb, "module");
		manifest_module_json(jb, &mod);
		json_key(jb, "file");
		if (manifest_module_path(m, &mod, path, sizeof(path), &err) ==
		    0)
			json_string(jb, path);
		else
			json_null(jb);
		/* learned under seccomp = learned (docs/learning.md) */
		char *calls = NULL;
		(void)manifest_get_syscalls(m, mod.id, &calls, &err);
		json_kv_string(jb, "syscalls", calls);
		free(calls);
	} else {
		show_module_text(m, &mod);
	}
	if (show_sections(m, &mod, runs, &k, &err) < 0) {
		manifest_snapshot_end(m);
		return fail(o, &err);
	}
	manifest_snapshot_end(m);
	if (!o->json)
		return 0;
	json_object_close(jb);
	return json_print(o, jb);
}

static int cmd_show(struct options *o)
{
	size_t runs = SHOW_RUNS_DEFAULT, version = 0;
	struct json_buf jb;
	struct manifest *m;
	int rc;

	if (o->nargs != 1)
		return o->nargs == 0
			       ? usage_error(o, "which module? (NAME)")
			       : usage_error(o, "unexpected argument \"%s\"",
					     o->args[1]);
	if ((o->runs && parse_count(o, "--runs", o->runs, &runs)) ||
	    (o->version && parse_count(o, "--version", o->version, &version)))
		return CLI_EXIT_USAGE;
	m = open_read_only(o);
	if (m == NULL)
		return 1;
	json_buf_init(&jb);
	rc = show(o, m, runs, (int64_t)version, &jb);
	json_buf_free(&jb);
	manifest_close(m);
	return rc;
}

/* ------------------------------------------------------------- manifest */

static void problem_text(const struct manifest_problem *p, void *arg)
{
	(void)arg;
	printf("%-9s %s\n", p->kind, p->message);
}

static void problem_json(const struct manifest_problem *p, void *arg)
{
	struct json_buf *jb = arg;

	json_object_open(jb);
	json_kv_string(jb, "kind", p->kind);
	json_kv_string(jb, "path", p->path);
	if (p->module_id)
		json_kv_int(jb, "module_id", p->module_id);
	else
		json_kv_null(jb, "module_id");
	json_kv_string(jb, "message", p->message);
	json_object_close(jb);
}

static int check_summary(const struct options *o, struct manifest *m,
			 int problems, struct json_buf *jb)
{
	struct manifest_stats st;
	struct al_error err = { 0 };
	uint64_t modules = 0;

	if (manifest_stats(m, NULL, &st, &err) < 0)
		return fail(o, &err);
	for (int s = 0; s < MANIFEST_STATE_COUNT; s++)
		modules += st.modules[s];
	if (o->json) {
		json_array_close(jb);
		json_kv_bool(jb, "ok", problems == 0);
		json_kv_uint(jb, "modules", modules);
		json_kv_uint(jb, "runs", st.runs);
		json_kv_uint(jb, "events", st.events);
		json_kv_int(jb, "schema", manifest_schema_version(m));
		json_object_close(jb);
		return json_print(o, jb) || problems > 0;
	}
	printf("%s: %s: %d problem%s (%llu modules, %llu runs, %llu events, "
	       "schema %d)\n",
	       manifest_state_dir(m), problems ? "NOT OK" : "ok", problems,
	       problems == 1 ? "" : "s", (unsigned long long)modules,
	       (unsigned long long)st.runs, (unsigned long long)st.events,
	       manifest_schema_version(m));
	return problems > 0;
}

static int manifest_check_cmd(struct options *o)
{
	struct al_error err = { 0 };
	struct json_buf jb;
	struct manifest *m;
	int problems, rc;

	if (o->nargs != 0)
		return usage_error(o, "unexpected argument \"%s\"", o->args[0]);
	m = open_read_only(o);
	if (m == NULL)
		return 1;
	json_buf_init(&jb);
	if (o->json) {
		json_object_open(&jb);
		json_key(&jb, "problems");
		json_array_open(&jb);
	}
	problems = manifest_check(m, o->json ? problem_json : problem_text, &jb,
				  &err);
	rc = problems < 0 ? fail(o, &err) : check_summary(o, m, problems, &jb);
	json_buf_free(&jb);
	manifest_close(m);
	return rc;
}

static int manifest_backup_cmd(struct options *o)
{
	struct al_error err = { 0 };
	struct manifest *m;
	int rc = 0;

	if (o->nargs != 1)
		return usage_error(o, "backup to which FILE?");
	m = open_read_only(o);
	if (m == NULL)
		return 1;
	if (manifest_backup(m, o->args[0], &err) < 0)
		rc = fail(o, &err);
	else
		printf("%s/manifest.db backed up to %s\n",
		       manifest_state_dir(m), o->args[0]);
	manifest_close(m);
	return rc;
}

/* ------------------------------------------------------------- dispatch */

static const struct {
	const char *name;
	int (*fn)(struct options *o);
	unsigned options;
} commands[] = {
	{ "list", cmd_list, OPT_STATE_DIR | OPT_JSON | OPT_STATE },
	{ "show", cmd_show, OPT_STATE_DIR | OPT_JSON | OPT_VERSION | OPT_RUNS },
	{ "runs", cmd_runs,
	  OPT_STATE_DIR | OPT_JSON | OPT_SINCE | OPT_VERDICT | OPT_LIMIT },
	{ "manifest check", manifest_check_cmd, OPT_STATE_DIR | OPT_JSON },
	{ "manifest backup", manifest_backup_cmd, OPT_STATE_DIR },
};

/* `argv[0]` is the command's name: list, show, runs or manifest. */
int cmd_manifest(int argc, char **argv)
{
	struct options o = { 0 };
	char name[32];

	snprintf(name, sizeof(name), "%s", argv[0]);
	if (strcmp(argv[0], "manifest") == 0) {
		if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
		    strcmp(argv[1], "help") == 0) {
			usage(argc < 2 ? stderr : stdout);
			return argc < 2 ? CLI_EXIT_USAGE : 0;
		}
		snprintf(name, sizeof(name), "manifest %s", argv[1]);
		argc--;
		argv++;
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		int rc;
		if (strcmp(commands[i].name, name) != 0)
			continue;
		o.command = commands[i].name;
		rc = parse_options(argc, argv, commands[i].options, &o);
		if (rc != 0)
			return rc < 0 ? 0 : rc;
		return commands[i].fn(&o);
	}
	fprintf(stderr, "airlock: unknown command \"%s\"\n", name);
	usage(stderr);
	return CLI_EXIT_USAGE;
}
