/*
 * The operator's screen.
 *
 *   airlock status [--json] [--fleet] [--socket PATH] [--state-dir DIR]
 *   airlock top [--interval DURATION] [--socket PATH] [--state-dir DIR]
 *
 * status asks airlockd (op "status"); when no daemon answers it says so,
 * shows what the manifest alone knows (read-only, from --state-dir) and
 * exits 3. Both answers are the same JSON shape (supervisor/report.c
 * writes the manifest's part for either), so one printer serves both,
 * and `top` redraws that printer's output in place until `q`.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/statvfs.h>
#include <termios.h>
#include <unistd.h>

#include "manifest/manifest.h"
#include "supervisor/protocol.h"
#include "tools/cli.h"

#define EXIT_DAEMON_DOWN 3

struct status_opts {
	const char *command;
	const char *socket;
	const char *state_dir;
	bool json;
	bool fleet;           /* the hosts of the database only */
	uint64_t interval_ms; /* top */
};

/* ------------------------------------------------------------ fetching */

struct quota_rows {
	struct json_buf *jb;
	struct report_limits limits;
};

static int quota_row(const struct manifest_usage *u, void *arg)
{
	struct quota_rows *q = arg;
	report_quota_json(q->jb, u->uid, u->hour, u->day, &q->limits);
	return 0;
}

/* The manifest's view when the daemon is down, as a status response. */
static int offline_status(const struct status_opts *o, const char *why,
			  struct cli_response *r, struct al_error *err)
{
	const char *dir = cli_state_dir(o->state_dir);
	struct manifest *m = cli_manifest_open(dir, err);
	int64_t now = manifest_now_ms(), since = now - AL_DAY_MS;
	uint64_t reset_hour = 0;
	struct json_buf jb;
	struct statvfs vfs;

	if (!m)
		return -1;
	/* the daemon's QUOTA_RESET_HOUR if this shell has it */
	if (getenv("QUOTA_RESET_HOUR") &&
	    parse_uint(getenv("QUOTA_RESET_HOUR"), 0, 23, &reset_hour, NULL) <
		    0)
		reset_hour = 0;
	json_buf_init(&jb);
	json_object_open(&jb);
	json_kv_bool(&jb, "ok", true);
	json_kv_bool(&jb, "daemon", false);
	json_kv_string(&jb, "daemon_error", why);
	json_kv_string(&jb, "version", AIRLOCK_VERSION);
	json_kv_string(&jb, "state_dir", dir);
	json_kv_string(&jb, "manifest_backend", manifest_backend(m));
	json_kv_string(&jb, "manifest_database", manifest_where(m));
	if (statvfs(dir, &vfs) == 0) {
		json_kv_uint(&jb, "state_dir_free_bytes",
			     (uint64_t)vfs.f_bavail * vfs.f_frsize);
		json_kv_uint(&jb, "state_dir_size_bytes",
			     (uint64_t)vfs.f_blocks * vfs.f_frsize);
	}
	char t[MANIFEST_TIME_MAX];
	manifest_time_format(since, false, t);
	json_kv_string(&jb, "verdicts_since", t);
	struct quota_rows rows = { .jb = &jb };
	int rc = report_manifest_json(&jb, m, since, NULL, err);
	if (rc == 0) {
		json_key(&jb, "quotas");
		json_array_open(&jb);
		rc = manifest_usage(m, -1,
				    report_day_start(now, (unsigned)reset_hour),
				    report_hour_start(now), quota_row, &rows,
				    err);
		json_array_close(&jb);
	}
	json_object_close(&jb);
	manifest_close(m);
	if (rc < 0 || json_buf_failed(&jb)) {
		json_buf_free(&jb);
		return rc < 0 ? -1 : al_error_sys(err, ENOMEM, "status");
	}
	char *line = strdup(jb.data);
	size_t len = jb.len;
	json_buf_free(&jb);
	if (!line)
		return al_error_sys(err, ENOMEM, "status");
	return cli_response_parse(r, line, len, err);
}

/* 0 with the daemon's answer, EXIT_DAEMON_DOWN with the manifest's, or 1
 * with the error printed. */
static int fetch_status(const struct status_opts *o, struct cli_response *r)
{
	struct al_error err = { 0 };
	struct json_buf jb;
	char *line = NULL;
	size_t len = 0;

	memset(r, 0, sizeof(*r));
	json_buf_init(&jb);
	json_object_open(&jb);
	json_kv_string(&jb, "op", "status");
	json_object_close(&jb);
	int rc = cli_round_trip(o->socket, &jb, -1, &line, &len, &err);
	json_buf_free(&jb);
	if (rc < 0) {
		struct al_error merr = { 0 };
		if (offline_status(o, err.msg, r, &merr) == 0)
			return EXIT_DAEMON_DOWN;
		fprintf(stderr, "airlock %s: %s\nairlock %s: %s\n", o->command,
			err.msg, o->command, merr.msg);
		return 1;
	}
	if (cli_response_parse(r, line, len, &err) < 0) {
		fprintf(stderr, "airlock %s: %s\n", o->command, err.msg);
		cli_response_free(r);
		return 1;
	}
	if (!r->ok) {
		cli_print_error(o->command, r);
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------ printing */

static const struct json_node *get(const struct cli_response *r,
				   const struct json_node *obj, const char *key)
{
	return json_get(r->doc, obj ? obj : r->root, key);
}

static long long num(const struct cli_response *r, const struct json_node *obj,
		     const char *key)
{
	return (long long)cli_int(r->doc, obj ? obj : r->root, key);
}

static const char *str(const struct cli_response *r,
		       const struct json_node *obj, const char *key)
{
	return json_get_str(r->doc, obj ? obj : r->root, key, "?");
}

static void size_text(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void duration_text(long long ms, char *buf, size_t len)
{
	long long s = ms / 1000;
	if (s >= 86400)
		snprintf(buf, len, "%lldd %02lld:%02lld:%02lld", s / 86400,
			 s / 3600 % 24, s / 60 % 60, s % 60);
	else if (s >= 60)
		snprintf(buf, len, "%02lld:%02lld:%02lld", s / 3600,
			 s / 60 % 60, s % 60);
	else
		snprintf(buf, len, "%.1fs", (double)ms / 1000);
}

/* "n of max", "n (no limit)" when max is 0 */
static void of(FILE *f, const char *label, long long n, long long max)
{
	if (max)
		fprintf(f, "  %-20s %lld of %lld\n", label, n, max);
	else
		fprintf(f, "  %-20s %lld (no limit)\n", label, n);
}

static void print_daemon(FILE *f, const struct cli_response *r)
{
	char up[32];
	const struct json_node *h = get(r, NULL, "health");
	const struct json_node *checks = h ? json_get(r->doc, h, "checks")
					   : NULL;

	bool draining = cli_bool(r->doc, r->root, "stopping");
	duration_text(num(r, NULL, "uptime_ms"), up, sizeof(up));
	fprintf(f, "airlockd %s, pid %lld, up %s (since %s), %s\n",
		str(r, NULL, "version"), num(r, NULL, "pid"), up,
		str(r, NULL, "started"),
		draining                         ? "DRAINING"
		: cli_bool(r->doc, h, "healthy") ? "healthy"
						 : "UNHEALTHY");
	for (const struct json_node *n = checks ? json_first(r->doc, checks)
						: NULL;
	     n; n = json_next(r->doc, n))
		if (n->type == JSON_STRING && strcmp(n->str, "ok") != 0)
			fprintf(f, "  %-20.*s %s\n", (int)n->key_len, n->key,
				n->str);
	if (draining)
		fprintf(f, "  %-20s %s\n", "draining",
			"stopping: no new runs; the running ones may finish");
	fprintf(f, "  %-20s cgroup %s, %s; user namespaces: %s\n", "isolation",
		str(r, NULL, "cgroup"), str(r, NULL, "privilege"),
		str(r, NULL, "user_namespaces"));
	fprintf(f, "  %-20s seccomp %s\n", "", str(r, NULL, "seccomp"));
	if (get(r, NULL, "host_uids"))
		fprintf(f, "  %-20s host uids %s\n", "",
			str(r, NULL, "host_uids"));
}

static void print_state_dir(FILE *f, const struct cli_response *r)
{
	char free_s[32], size_s[32];

	if (get(r, NULL, "state_dir_free_bytes")) {
		size_text((uint64_t)num(r, NULL, "state_dir_free_bytes"),
			  free_s, sizeof(free_s));
		size_text((uint64_t)num(r, NULL, "state_dir_size_bytes"),
			  size_s, sizeof(size_s));
		fprintf(f, "  %-20s %s (%s free of %s)\n", "state directory",
			str(r, NULL, "state_dir"), free_s, size_s);
	} else {
		fprintf(f, "  %-20s %s\n", "state directory",
			str(r, NULL, "state_dir"));
	}
	if (get(r, NULL, "manifest_database"))
		fprintf(f, "  %-20s %s (%s)\n", "manifest",
			str(r, NULL, "manifest_database"),
			str(r, NULL, "manifest_backend"));
}

static void print_active(FILE *f, const struct cli_response *r)
{
	const struct json_node *a = get(r, NULL, "active");
	char el[32], mem[32];

	fprintf(f, "\nruns\n");
	of(f, "running", num(r, NULL, "active_runs"),
	   num(r, NULL, "max_active"));
	of(f, "queued", num(r, NULL, "queue_depth"), num(r, NULL, "queue_max"));
	fprintf(f, "  %-20s %lld\n", "connections",
		num(r, NULL, "connections"));
	if (!json_first(r->doc, a))
		return;
	fprintf(f, "  %-8s %-24s %-8s %-8s %-10s %-10s %s\n", "RUN", "MODULE",
		"KIND", "UID", "ELAPSED", "MEMORY", "HOST UID");
	for (const struct json_node *n = json_first(r->doc, a); n;
	     n = json_next(r->doc, n)) {
		char mod[64];
		snprintf(mod, sizeof(mod), "%s v%lld", str(r, n, "module"),
			 num(r, n, "version"));
		duration_text(num(r, n, "elapsed_ms"), el, sizeof(el));
		size_text((uint64_t)num(r, n, "memory_bytes"), mem,
			  sizeof(mem));
		fprintf(f, "  %-8lld %-24s %-8s %-8lld %-10s %-10s %lld\n",
			num(r, n, "run"), mod, str(r, n, "kind"),
			num(r, n, "uid"), el, mem, num(r, n, "host_uid"));
	}
}

/* The hosts sharing the database (one on SQLite): who beats, who lapsed. */
static void print_hosts(FILE *f, const struct cli_response *r)
{
	const struct json_node *hosts = get(r, NULL, "hosts");
	char lease[32], age[32];

	duration_text(num(r, NULL, "host_lease_ms"), lease, sizeof(lease));
	fprintf(f, "\nhosts of the manifest (lease %s)\n", lease);
	fprintf(f, "  %-20s %-7s %-10s %-9s %-9s %-16s %s\n", "HOST", "STATE",
		"HEARTBEAT", "RUNS", "VERSION", "KERNEL", "ISOLATION");
	for (const struct json_node *n = json_first(r->doc, hosts); n;
	     n = json_next(r->doc, n)) {
		const struct json_node *me = get(r, n, "this");
		const struct json_node *lapsed = get(r, n, "lapsed");
		char name[80], runs[32];
		snprintf(name, sizeof(name), "%s%s", str(r, n, "name"),
			 me && me->type == JSON_BOOL && me->i ? " (this)" : "");
		duration_text(num(r, n, "heartbeat_age_ms"), age, sizeof(age));
		snprintf(runs, sizeof(runs), "%lld of %lld",
			 num(r, n, "active_runs"), num(r, n, "slots"));
		fprintf(f, "  %-20s %-7s %-10s %-9s %-9s %-16s %s\n", name,
			lapsed && lapsed->type == JSON_BOOL && lapsed->i
				? "lapsed"
				: "up",
			age, runs, str(r, n, "version"), str(r, n, "kernel"),
			str(r, n, "isolation"));
	}
}

/* "key n  key n ..." of an object of counts, or "none". */
static void counts_line(FILE *f, const struct cli_response *r,
			const char *label, const struct json_node *obj)
{
	fprintf(f, "  %-20s", label);
	bool any = false;
	for (const struct json_node *n = json_first(r->doc, obj); n;
	     n = json_next(r->doc, n)) {
		fprintf(f, " %.*s %lld", (int)n->key_len, n->key,
			(long long)n->i);
		any = true;
	}
	fprintf(f, "%s\n", any ? "" : " none");
}

static void print_manifest(FILE *f, const struct cli_response *r, bool daemon)
{
	const struct json_node *arch = get(r, NULL, "recent_archives");

	fprintf(f, "\nregistry\n");
	counts_line(f, r, "modules by state", get(r, NULL, "modules"));
	fprintf(f, "  %-20s %lld\n", "runs recorded",
		num(r, NULL, "runs_recorded"));
	if (!daemon && num(r, NULL, "runs_running"))
		fprintf(f,
			"  %-20s %lld (the next start marks them "
			"interrupted)\n",
			"runs left running", num(r, NULL, "runs_running"));
	if (daemon) {
		static const struct {
			const char *key, *label;
		} counters[] = {
			{ "sandbox_timeouts_total", "timeouts" },
			{ "validation_failures_total", "validation failures" },
			{ "auto_archives_total", "auto-archives" },
			{ "rate_limit_hits_total", "rate-limit hits" },
			{ "overloaded_total", "overloaded refusals" },
		};
		const struct json_node *c = get(r, NULL, "counters");
		fprintf(f, "\nsince start\n");
		counts_line(f, r, "runs by verdict",
			    get(r, NULL, "runs_by_verdict"));
		for (size_t i = 0; i < ARRAY_SIZE(counters); i++)
			fprintf(f, "  %-20s %lld\n", counters[i].label,
				num(r, c, counters[i].key));
	} else {
		fprintf(f, "\nsince %s\n", str(r, NULL, "verdicts_since"));
		counts_line(f, r, "runs by verdict",
			    get(r, NULL, "runs_by_verdict"));
	}
	fprintf(f, "\nrecent archives\n");
	if (!json_first(r->doc, arch))
		fprintf(f, "  none\n");
	for (const struct json_node *n = json_first(r->doc, arch); n;
	     n = json_next(r->doc, n))
		fprintf(f, "  %s  %s v%lld: %s\n", str(r, n, "time"),
			str(r, n, "module"), num(r, n, "version"),
			str(r, n, "reason"));
}

/* "3 of 10 (7 left)" or "3" when there is no limit. */
static void used_text(const struct cli_response *r, const struct json_node *q,
		      const char *used, const char *limit, const char *left,
		      char *buf, size_t len)
{
	const struct json_node *l = json_get(r->doc, q, limit);
	if (l && l->type == JSON_INT)
		snprintf(buf, len, "%lld of %lld (%lld left)", num(r, q, used),
			 (long long)l->i, num(r, q, left));
	else
		snprintf(buf, len, "%lld", num(r, q, used));
}

void cli_print_quotas(FILE *f, const struct cli_response *r)
{
	const struct json_node *qs = get(r, NULL, "quotas");
	char hour[64], day[64];

	if (!json_first(r->doc, qs)) {
		fprintf(f, "  no runs this day\n");
		return;
	}
	fprintf(f, "  %-8s %-24s %s\n", "UID", "THIS HOUR", "THIS DAY");
	for (const struct json_node *q = json_first(r->doc, qs); q;
	     q = json_next(r->doc, q)) {
		used_text(r, q, "hour_used", "per_hour", "hour_left", hour,
			  sizeof(hour));
		used_text(r, q, "day_used", "per_day", "day_left", day,
			  sizeof(day));
		fprintf(f, "  %-8lld %-24s %s\n", num(r, q, "uid"), hour, day);
	}
}

static void print_status(FILE *f, const struct cli_response *r)
{
	const struct json_node *d = get(r, NULL, "daemon");
	bool daemon = !(d && d->type == JSON_BOOL && !d->i);

	if (daemon) {
		print_daemon(f, r);
	} else {
		fprintf(f, "airlockd is NOT RUNNING: %s\n",
			str(r, NULL, "daemon_error"));
		fprintf(f, "what the manifest says (airlock %s):\n",
			str(r, NULL, "version"));
	}
	print_state_dir(f, r);
	if (daemon)
		print_active(f, r);
	/* the daemon answers, its database does not: what it holds waits */
	if (get(r, NULL, "manifest_unavailable")) {
		fprintf(f, "\nregistry\n  %-20s %s\n", "manifest unavailable",
			str(r, NULL, "manifest_unavailable"));
		fprintf(f, "  %-20s %lld (committed when it is back)\n",
			"run records waiting", num(r, NULL, "pending_records"));
		return;
	}
	if (daemon &&
	    json_next(r->doc, json_first(r->doc, get(r, NULL, "hosts"))))
		print_hosts(f, r);
	print_manifest(f, r, daemon);
	const struct json_node *q = get(r, NULL, "quota");
	if (daemon && q && num(r, q, "per_hour") + num(r, q, "per_day"))
		fprintf(f,
			"\nquotas (per hour %lld, per day %lld; 0: none; "
			"days start %02lld:00 UTC)\n",
			num(r, q, "per_hour"), num(r, q, "per_day"),
			num(r, q, "reset_hour_utc"));
	else
		fprintf(f, "\nquotas (runs started)\n");
	cli_print_quotas(f, r);
}

/* ------------------------------------------------------------------ top */

/*
 * Plain ANSI, no terminal library: the alternate screen, the cursor
 * hidden, and each frame drawn from the top-left over the last one, every
 * line cleared to its end and the rest of the screen cleared after the
 * last, so nothing flickers or lingers. Lines are cut to the width and
 * the frame to the height. Keys are read unbuffered (no echo); q or Q
 * (or Ctrl-C) quits, anything else redraws at once.
 */
static struct termios saved_tty;
static bool tty_saved;

static void tty_restore(void)
{
	if (tty_saved)
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	tty_saved = false;
	fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
}

static void draw(const char *frame, size_t len)
{
	struct winsize ws = { .ws_row = 24, .ws_col = 80 };
	size_t row = 0;

	(void)ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws);
	if (!ws.ws_row || !ws.ws_col)
		ws = (struct winsize){ .ws_row = 24, .ws_col = 80 };
	fputs("\033[H", stdout);
	for (const char *p = frame, *end = frame + len;
	     p < end && row < ws.ws_row; row++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);
		fwrite(p, 1, n < ws.ws_col ? n : ws.ws_col, stdout);
		fputs("\033[K", stdout);
		if (row + 1 < ws.ws_row)
			fputs("\r\n", stdout);
		p += n + (nl ? 1 : 0);
	}
	fputs("\033[J", stdout);
	fflush(stdout);
}

static void frame(const struct status_opts *o)
{
	struct cli_response r;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	char t[MANIFEST_TIME_MAX];

	if (!f)
		return;
	manifest_time_format(manifest_now_ms(), false, t);
	fprintf(f, "airlock top - %s - every %.1fs - q quits\n\n", t,
		(double)o->interval_ms / 1000);
	/* errors go to the frame, not under it */
	int rc = fetch_status(o, &r);
	if (rc != 1) {
		print_status(f, &r);
		cli_response_free(&r);
	} else {
		fprintf(f, "no answer from airlockd and no manifest to read "
			   "(see airlock status)\n");
	}
	fclose(f);
	draw(buf, len);
	free(buf);
}

static int status_top(const struct status_opts *o)
{
	struct termios raw;
	int fd = STDIN_FILENO;

	if (!isatty(fd) || !isatty(STDOUT_FILENO)) {
		fprintf(stderr, "airlock top: needs a terminal (airlock status "
				"prints once)\n");
		return 1;
	}
	if (tcgetattr(fd, &saved_tty) < 0) {
		fprintf(stderr, "airlock top: %s\n", strerror(errno));
		return 1;
	}
	raw = saved_tty;
	raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	raw.c_cc[VMIN] = 0;
	raw.c_cc[VTIME] = 0;
	tty_saved = tcsetattr(fd, TCSAFLUSH, &raw) == 0;
	atexit(tty_restore);
	fputs("\033[?1049h\033[?25l\033[2J", stdout);
	for (;;) {
		frame(o);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int n = poll(&p, 1, (int)o->interval_ms);
		if (n < 0 && errno != EINTR)
			break;
		char key = 0;
		if (n > 0 && read(fd, &key, 1) <= 0)
			break; /* the terminal went away */
		if (key == 'q' || key == 'Q' || key == 3)
			break;
	}
	tty_restore();
	return 0;
}

/* -------------------------------------------------------------- options */

static int usage(const char *command, FILE *f)
{
	if (strcmp(command, "top") == 0)
		fprintf(f, "usage: airlock top [--interval DURATION] "
			   "[--socket PATH] [--state-dir DIR]\n\n"
			   "airlock status, redrawn every --interval (default "
			   "2s) until q.\n");
	else
		fprintf(f, "usage: airlock status [--json] [--fleet] "
			   "[--socket PATH] [--state-dir DIR]\n\n"
			   "airlockd's state; when it is down, what the "
			   "manifest says, and exit status 3.\n"
			   "--fleet: only the hosts that share its "
			   "database, their heartbeats and load.\n");
	return f == stdout ? 0 : CLI_EXIT_USAGE;
}

static int parse(int argc, char **argv, struct status_opts *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "interval", required_argument, NULL, 'i' },
		{ "json", no_argument, NULL, 'j' },
		{ "fleet", no_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct al_error err = { 0 };
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': o->socket = optarg; break;
		case 'd': o->state_dir = optarg; break;
		case 'j': o->json = true; break;
		case 'F': o->fleet = true; break;
		case 'i':
			if (strcmp(o->command, "top") != 0 ||
			    parse_duration_us(optarg, &o->interval_ms, &err) <
				    0 ||
			    (o->interval_ms /= 1000) < 100) {
				fprintf(stderr, "airlock %s: --interval: %s\n",
					o->command,
					err.msg[0]
						? err.msg
						: "top only, at least 100ms");
				return CLI_EXIT_USAGE;
			}
			break;
		case 'h': exit(usage(o->command, stdout));
		default:
			fprintf(stderr, "airlock %s: bad option %s\n",
				o->command, argv[optind - 1]);
			return usage(o->command, stderr);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "airlock %s: no arguments expected\n",
			o->command);
		return usage(o->command, stderr);
	}
	o->socket = cli_socket_path(o->socket);
	return 0;
}

int cmd_status(int argc, char **argv)
{
	struct status_opts o = { .command = argv[0], .interval_ms = 2000 };
	struct cli_response r;
	int rc = parse(argc, argv, &o);

	if (rc)
		return rc;
	if (strcmp(o.command, "top") == 0)
		return status_top(&o);
	rc = fetch_status(&o, &r);
	if (rc == 1)
		return 1;
	if (o.json)
		printf("%s\n", r.line);
	else if (o.fleet && rc == 0)
		print_hosts(stdout, &r);
	else
		print_status(stdout, &r);
	cli_response_free(&r);
	return rc;
}
