/*
 * The daemon's clients: one request line to airlockd, one response line
 * back (docs/protocol.md).
 *
 *   airlock submit FILE [--name N] [--policy P] [--arg A]... [--base64]
 *                                                       [--json]
 *   airlock exec NAME [ARG...]               (--json before NAME)
 *   airlock status [--json]
 *   airlock archive NAME [--reason TEXT] [--json]
 *   airlock restore NAME [--json]
 *   airlock cancel RUN|NAME [--json]   (a running run; NAME's queued runs)
 *
 * The socket: --socket, else $AIRLOCK_SOCKET, else the default. On an
 * error response the server's message is printed and the exit status is
 * 1 (125 for exec, whose other statuses are the module's).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "supervisor/supervisor.h"
#include "tools/cli.h"

#define RESPONSE_MAX (256u << 20)
#define MODULE_MAX (12u << 20) /* base64 of it fits the default request limit */

struct client_opts {
	const char *command;
	const char *socket;
	const char *name;
	const char *policy;
	const char *reason;
	const char *vargs[PROTO_MAX_ARGS];
	size_t nvargs;
	bool json;
	bool base64; /* submit: content in the line, not the file's fd */
	int argc;
	char **argv; /* positional arguments */
};

static void client_usage(FILE *f, const char *command)
{
	fprintf(f,
		"usage: airlock submit FILE [--name N] [--policy P] [--arg A]..."
		" [--base64]\n"
		"       airlock exec [--json] NAME [ARG...]\n"
		"       airlock status | archive NAME [--reason R] | restore NAME"
		" | cancel RUN|NAME\n"
		"\n"
		"Talk to airlockd over its socket (--socket PATH, else\n"
		"$AIRLOCK_SOCKET, else " SUPERVISOR_DEFAULT_SOCKET ").\n"
		"  --json   print the server's response line as it is\n"
		"  --arg A  (submit) an argument for the validation run\n"
		"  --base64 (submit) send the content in the request instead of\n"
		"           passing the open FILE to airlockd\n");
	(void)command;
}

static int usage_error(const char *command, const char *msg, const char *arg)
{
	fprintf(stderr, "airlock %s: %s%s\n(airlock %s --help)\n", command,
		msg, arg ? arg : "", command);
	return CLI_EXIT_USAGE;
}

static int parse(int argc, char **argv, struct client_opts *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "name", required_argument, NULL, 'n' },
		{ "policy", required_argument, NULL, 'p' },
		{ "reason", required_argument, NULL, 'r' },
		{ "arg", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "base64", no_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	opterr = 0;
	/* "+": for exec, options end at NAME; the rest is the module's */
	const char *shortopts = strcmp(o->command, "exec") == 0 ? "+:h" : ":h";
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case 's': o->socket = optarg; break;
		case 'n': o->name = optarg; break;
		case 'p': o->policy = optarg; break;
		case 'r': o->reason = optarg; break;
		case 'j': o->json = true; break;
		case 'b': o->base64 = true; break;
		case 'a':
			if (o->nvargs == PROTO_MAX_ARGS)
				return usage_error(o->command, "too many --arg",
						   NULL);
			o->vargs[o->nvargs++] = optarg;
			break;
		case 'h': client_usage(stdout, o->command); exit(0);
		case ':':
			return usage_error(o->command, "a value is needed for ",
					   argv[optind - 1]);
		default:
			return usage_error(o->command, "unknown option ",
					   argv[optind - 1]);
		}
	}
	o->argc = argc - optind;
	o->argv = argv + optind;
	if (!o->socket || !*o->socket)
		o->socket = getenv("AIRLOCK_SOCKET");
	if (!o->socket || !*o->socket)
		o->socket = SUPERVISOR_DEFAULT_SOCKET;
	return 0;
}

/* ---------------------------------------------------------- transport */

static int connect_daemon(const char *path, struct al_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sa.sun_path))
		return al_error_set(err, ENAMETOOLONG, "socket path too long");
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return al_error_sys(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int saved = errno;
		close(fd);
		return al_error_sys(err, saved,
				    "cannot reach airlockd at %s (is it "
				    "running? --socket, AIRLOCK_SOCKET)",
				    path);
	}
	return fd;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The line's first bytes with `pass` attached (SCM_RIGHTS), the rest as
 * usual: the daemon takes a descriptor for the line it starts. */
static int send_with_fd(int fd, const char *p, size_t len, int pass)
{
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(sizeof(int))];
	} cbuf;
	struct iovec iov = { .iov_base = (void *)p, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = cbuf.b,
			      .msg_controllen = sizeof(cbuf.b) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	ssize_t n;

	memset(cbuf.b, 0, sizeof(cbuf.b));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &pass, sizeof(int));
	do
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	return write_all(fd, p + n, len - (size_t)n);
}

/* Send one request (with `pass`, a descriptor, unless -1), read one
 * response line. Caller frees *line. */
static int round_trip(const char *socket_path, struct json_buf *req,
		      int pass, char **line, size_t *len,
		      struct al_error *err)
{
	if (json_buf_failed(req))
		return al_error_sys(err, ENOMEM, "request");
	_cleanup_close_ int fd = connect_daemon(socket_path, err);
	if (fd < 0)
		return -1;
	if ((pass >= 0 ? send_with_fd(fd, req->data, req->len, pass)
		       : write_all(fd, req->data, req->len)) < 0 ||
	    write_all(fd, "\n", 1) < 0)
		return al_error_sys(err, errno, "send to airlockd");
	size_t cap = 65536, used = 0;
	char *buf = malloc(cap);
	if (!buf)
		return al_error_sys(err, ENOMEM, "response");
	for (;;) {
		if (used + 1 >= cap) {
			if (cap >= RESPONSE_MAX) {
				free(buf);
				return al_error_set(err, E2BIG,
						    "response too large");
			}
			char *grown = realloc(buf, cap * 2);
			if (!grown) {
				free(buf);
				return al_error_sys(err, ENOMEM, "response");
			}
			buf = grown;
			cap *= 2;
		}
		ssize_t n = recv(fd, buf + used, cap - 1 - used, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return al_error_sys(err, n < 0 ? errno : 0,
					    "airlockd closed the connection "
					    "without an answer");
		}
		char *nl = memchr(buf + used, '\n', (size_t)n);
		used += (size_t)n;
		if (nl) {
			*nl = '\0';
			*line = buf;
			*len = (size_t)(nl - buf);
			return 0;
		}
	}
}

struct response {
	char *line;
	size_t len;
	struct json_doc *doc;
	const struct json_node *root;
	bool ok;
};

static void response_free(struct response *r)
{
	json_doc_free(r->doc);
	free(r->line);
}

/* Send, receive, parse. Returns 0 with r->ok saying the server's verdict,
 * or -1 with a message already printed. */
static int call_fd(const struct client_opts *o, struct json_buf *req,
		   int pass, struct response *r)
{
	static const struct json_limits limits = { .max_nodes = 1u << 22,
						   .max_depth = 16 };
	struct al_error err = { 0 };

	memset(r, 0, sizeof(*r));
	if (round_trip(o->socket, req, pass, &r->line, &r->len, &err) < 0 ||
	    !(r->doc = json_parse(r->line, r->len, &limits, &err))) {
		fprintf(stderr, "airlock %s: %s\n", o->command, err.msg);
		json_buf_free(req);
		response_free(r);
		return -1;
	}
	json_buf_free(req);
	r->root = json_root(r->doc);
	const struct json_node *ok = json_get(r->doc, r->root, "ok");
	r->ok = ok && ok->type == JSON_BOOL && ok->i;
	if (o->json)
		printf("%s\n", r->line);
	return 0;
}

static int call(const struct client_opts *o, struct json_buf *req,
		struct response *r)
{
	return call_fd(o, req, -1, r);
}

static void print_error(const struct client_opts *o, const struct response *r)
{
	const struct json_node *e = json_get(r->doc, r->root, "error");
	fprintf(stderr, "airlock %s: %s: %s\n", o->command,
		json_get_str(r->doc, e, "code", "error"),
		json_get_str(r->doc, e, "message", "(no message)"));
}

static int64_t get_int(const struct json_doc *doc, const struct json_node *obj,
		       const char *key)
{
	const struct json_node *n = json_get(doc, obj, key);
	return n && n->type == JSON_INT ? n->i : 0;
}

static void print_module(const struct response *r)
{
	const struct json_node *m = json_get(r->doc, r->root, "module");
	printf("%s version %lld: %s", json_get_str(r->doc, m, "name", "?"),
	       (long long)get_int(r->doc, m, "version"),
	       json_get_str(r->doc, m, "state", "?"));
	const char *reason = json_get_str(r->doc, m, "reason", "");
	if (*reason)
		printf(" (%s)", reason);
	printf("\n");
}

static void print_result_output(const struct response *r)
{
	const struct json_node *res = json_get(r->doc, r->root, "result");
	const struct json_node *out = json_get(r->doc, res, "stdout");
	const struct json_node *errs = json_get(r->doc, res, "stderr");
	if (out && out->type == JSON_STRING)
		fwrite(out->str, 1, out->len, stdout);
	if (errs && errs->type == JSON_STRING)
		fwrite(errs->str, 1, errs->len, stderr);
	const char *setup = json_get_str(r->doc, res, "error", NULL);
	if (setup)
		fprintf(stderr, "airlock: setup_error: %s\n", setup);
}

/* ----------------------------------------------------------- commands */

static char *read_module(const char *path, size_t *len, const char *command)
{
	FILE *f = fopen(path, "rbe");
	if (!f) {
		fprintf(stderr, "airlock %s: %s: %s\n", command, path,
			strerror(errno));
		return NULL;
	}
	char *buf = malloc(MODULE_MAX + 1);
	size_t n = buf ? fread(buf, 1, MODULE_MAX + 1, f) : 0;
	bool bad = ferror(f) || !buf;
	fclose(f);
	if (bad || n > MODULE_MAX) {
		fprintf(stderr, "airlock %s: %s: %s\n", command, path,
			bad ? "cannot read it" : "larger than 12 MiB");
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

static int client_submit(struct client_opts *o)
{
	struct json_buf jb;
	struct response r;
	size_t len;
	_cleanup_free_ char *content = NULL, *b64 = NULL;
	_cleanup_close_ int file = -1;

	if (o->argc != 1)
		return usage_error(o->command, "give one FILE", NULL);
	if (o->base64) {
		content = read_module(o->argv[0], &len, o->command);
		if (!content || !(b64 = base64_encode(content, len)))
			return 1;
	} else if ((file = open(o->argv[0], O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "airlock %s: %s: %s\n", o->command, o->argv[0],
			strerror(errno));
		return 1;
	}
	_cleanup_free_ char *copy = strdup(o->argv[0]);
	if (!copy)
		return 1;
	json_buf_init(&jb);
	json_object_open(&jb);
	json_kv_string(&jb, "op", "submit");
	json_kv_string(&jb, "name", o->name ? o->name : basename(copy));
	if (o->policy)
		json_kv_string(&jb, "policy", o->policy);
	json_key(&jb, "validate_args");
	json_array_open(&jb);
	for (size_t i = 0; i < o->nvargs; i++)
		json_string(&jb, o->vargs[i]);
	json_array_close(&jb);
	if (b64)
		json_kv_string(&jb, "content", b64);
	else
		json_kv_bool(&jb, "content_fd", true);
	json_object_close(&jb);
	if (call_fd(o, &jb, file, &r) < 0)
		return 1;
	int rc = r.ok ? 0 : 1;
	if (!o->json) {
		if (!r.ok)
			print_error(o, &r);
		if (json_get(r.doc, r.root, "module"))
			print_module(&r);
		if (!r.ok)
			print_result_output(&r);
	}
	response_free(&r);
	return rc;
}

static int client_exec(struct client_opts *o)
{
	struct json_buf jb;
	struct response r;

	if (o->argc < 1)
		return usage_error(o->command, "give the module's NAME", NULL);
	json_buf_init(&jb);
	json_object_open(&jb);
	json_kv_string(&jb, "op", "exec");
	json_kv_string(&jb, "name", o->argv[0]);
	json_key(&jb, "args");
	json_array_open(&jb);
	for (int i = 1; i < o->argc; i++)
		json_string(&jb, o->argv[i]);
	json_array_close(&jb);
	json_object_close(&jb);
	if (call(o, &jb, &r) < 0)
		return CLI_EXIT_USAGE;
	int rc = CLI_EXIT_USAGE;
	if (r.ok) {
		const struct json_node *res = json_get(r.doc, r.root, "result");
		rc = (int)get_int(r.doc, res, "exit_status");
		if (!o->json) {
			print_result_output(&r);
			const struct json_node *a =
				json_get(r.doc, r.root, "archived");
			const char *verdict =
				json_get_str(r.doc, res, "verdict", "?");
			if (strcmp(verdict, "ok") != 0 &&
			    strcmp(verdict, "exit_nonzero") != 0)
				fprintf(stderr, "airlock exec: %s\n", verdict);
			if (a && a->type == JSON_BOOL && a->i)
				fprintf(stderr,
					"airlock exec: %s was archived after "
					"this run\n",
					o->argv[0]);
		}
	} else if (!o->json) {
		print_error(o, &r);
	}
	response_free(&r);
	return rc;
}

static int client_simple(struct client_opts *o, const char *op,
			 const char *what)
{
	struct json_buf jb;
	struct response r;
	uint64_t run = 0;

	if (what && o->argc != 1)
		return usage_error(o->command, "give one ", what);
	if (!what && o->argc != 0)
		return usage_error(o->command, "no arguments expected", NULL);
	json_buf_init(&jb);
	json_object_open(&jb);
	json_kv_string(&jb, "op", op);
	if (what && strcmp(what, "RUN|NAME") == 0) {
		/* a run id: that running run; a module name: its queued runs */
		if (parse_uint(o->argv[0], 1, INT64_MAX, &run, NULL) < 0) {
			run = 0;
			json_kv_string(&jb, "name", o->argv[0]);
		} else {
			json_kv_uint(&jb, "run", run);
		}
	} else if (what) {
		json_kv_string(&jb, "name", o->argv[0]);
	}
	if (o->reason)
		json_kv_string(&jb, "reason", o->reason);
	json_object_close(&jb);
	if (call(o, &jb, &r) < 0)
		return 1;
	int rc = r.ok ? 0 : 1;
	if (!o->json && !r.ok)
		print_error(o, &r);
	else if (!o->json && json_get(r.doc, r.root, "module"))
		print_module(&r);
	else if (!o->json && run)
		printf("run %llu cancelled\n", (unsigned long long)run);
	else if (!o->json && json_get(r.doc, r.root, "queued_cancelled"))
		printf("%lld queued runs of %s cancelled\n",
		       (long long)get_int(r.doc, r.root, "queued_cancelled"),
		       o->argv[0]);
	response_free(&r);
	return rc;
}

/* ------------------------------------------------------------ status */

static const struct json_node *member(const struct response *r,
				      const char *obj, const char *key)
{
	const struct json_node *o = obj ? json_get(r->doc, r->root, obj)
					: r->root;
	return o ? json_get(r->doc, o, key) : NULL;
}

static long long num(const struct response *r, const char *obj,
		     const char *key)
{
	const struct json_node *n = member(r, obj, key);
	return n && n->type == JSON_INT ? (long long)n->i : 0;
}

static const char *str(const struct response *r, const char *obj,
		       const char *key)
{
	const struct json_node *n = member(r, obj, key);
	return n && n->type == JSON_STRING ? n->str : "?";
}

/* "n of max", or "n (no limit)" when max is 0. */
static void of(const char *label, long long n, long long max)
{
	if (max)
		printf("  %-22s %lld of %lld\n", label, n, max);
	else
		printf("  %-22s %lld (no limit)\n", label, n);
}

static void print_status(const struct response *r)
{
	long long up = num(r, NULL, "uptime_ms") / 1000;
	const struct json_node *h = member(r, NULL, "health");
	const struct json_node *healthy = h ? json_get(r->doc, h, "healthy")
					    : NULL;
	const struct json_node *checks = h ? json_get(r->doc, h, "checks")
					   : NULL;

	printf("daemon\n");
	printf("  %-22s %s (pid %lld)\n", "version", str(r, NULL, "version"),
	       num(r, NULL, "pid"));
	printf("  %-22s %lldd %02lld:%02lld:%02lld\n", "uptime", up / 86400,
	       up / 3600 % 24, up / 60 % 60, up % 60);
	printf("  %-22s %s\n", "state directory", str(r, NULL, "state_dir"));
	printf("  %-22s %s, %s\n", "cgroup, privilege", str(r, NULL, "cgroup"),
	       str(r, NULL, "privilege"));
	printf("  %-22s %s\n", "health",
	       healthy && healthy->type == JSON_BOOL && healthy->i
		       ? "healthy"
		       : "UNHEALTHY");
	for (const struct json_node *n = checks ? json_first(r->doc, checks)
						: NULL;
	     n; n = json_next(r->doc, n))
		if (n->type == JSON_STRING && strcmp(n->str, "ok") != 0)
			printf("  %-22s %.*s: %s\n", "", (int)n->key_len,
			       n->key, n->str);
	const struct json_node *stop = member(r, NULL, "stopping");
	if (stop && stop->type == JSON_BOOL && stop->i)
		printf("  %-22s %s\n", "", "stopping: no new runs");

	printf("\nruns\n");
	of("running", num(r, NULL, "active_runs"), num(r, NULL, "max_active"));
	of("queued", num(r, NULL, "queue_depth"), num(r, NULL, "queue_max"));
	printf("  %-22s %lld\n", "recorded", num(r, NULL, "runs_recorded"));
	printf("  %-22s %lld\n", "connections", num(r, NULL, "connections"));

	printf("\nmodules by state\n");
	const struct json_node *mods = member(r, NULL, "modules");
	for (const struct json_node *n = mods ? json_first(r->doc, mods) : NULL;
	     n; n = json_next(r->doc, n))
		printf("  %-22.*s %lld\n", (int)n->key_len, n->key,
		       (long long)n->i);

	static const struct {
		const char *key, *label;
	} counters[] = {
		{ "runs_total", "runs" },
		{ "validation_failures_total", "validation failures" },
		{ "auto_archives_total", "auto-archives" },
		{ "sandbox_timeouts_total", "timeouts" },
		{ "rate_limit_hits_total", "rate-limited requests" },
		{ "overloaded_total", "overloaded requests" },
	};
	printf("\ncounters (since start)\n");
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
		printf("  %-22s %lld\n", counters[i].label,
		       num(r, "counters", counters[i].key));

	printf("\nquotas (uid %lld)\n", num(r, "quota", "uid"));
	of("this hour", num(r, "quota", "used"), num(r, "quota", "per_hour"));
	of("today", num(r, "quota", "used_today"), num(r, "quota", "per_day"));
	printf("  %-22s %02lld:00 UTC\n", "day starts at",
	       num(r, "quota", "reset_hour_utc"));
}

static int client_status(struct client_opts *o)
{
	struct json_buf jb;
	struct response r;

	if (o->argc)
		return usage_error(o->command, "no arguments expected", NULL);
	json_buf_init(&jb);
	json_object_open(&jb);
	json_kv_string(&jb, "op", "status");
	json_object_close(&jb);
	if (call(o, &jb, &r) < 0)
		return 1;
	int rc = r.ok ? 0 : 1;
	if (!o->json && !r.ok)
		print_error(o, &r);
	else if (!o->json)
		print_status(&r);
	response_free(&r);
	return rc;
}

int cmd_client(int argc, char **argv)
{
	struct client_opts o = { .command = argv[0] };
	int rc = parse(argc, argv, &o);

	if (rc)
		return rc;
	if (strcmp(o.command, "submit") == 0)
		return client_submit(&o);
	if (strcmp(o.command, "exec") == 0)
		return client_exec(&o);
	if (strcmp(o.command, "status") == 0)
		return client_status(&o);
	if (strcmp(o.command, "archive") == 0)
		return client_simple(&o, "archive", "NAME");
	if (strcmp(o.command, "restore") == 0)
		return client_simple(&o, "restore", "NAME");
	if (strcmp(o.command, "cancel") == 0)
		return client_simple(&o, "cancel", "RUN|NAME");
	return usage_error(o.command, "not a client command", NULL);
}
