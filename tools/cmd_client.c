/*
 * The daemon's clients: one request line to airlockd, one response line
 * back (docs/protocol.md).
 *
 *   airlock submit FILE [--name N] [--policy P] [--arg A]... [--json]
 *   airlock exec NAME [ARG...]               (--json before NAME)
 *   airlock status [--json]
 *   airlock archive NAME [--reason TEXT] [--json]
 *   airlock restore NAME [--json]
 *   airlock cancel RUN [--json]
 *
 * The socket: --socket, else $AIRLOCK_SOCKET, else the default. On an
 * error response the server's message is printed and the exit status is
 * 1 (125 for exec, whose other statuses are the module's).
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
	int argc;
	char **argv; /* positional arguments */
};

static void client_usage(FILE *f, const char *command)
{
	fprintf(f,
		"usage: airlock submit FILE [--name N] [--policy P] [--arg A]...\n"
		"       airlock exec [--json] NAME [ARG...]\n"
		"       airlock status | archive NAME [--reason R] | restore NAME"
		" | cancel RUN\n"
		"\n"
		"Talk to airlockd over its socket (--socket PATH, else\n"
		"$AIRLOCK_SOCKET, else " SUPERVISOR_DEFAULT_SOCKET ").\n"
		"  --json   print the server's response line as it is\n"
		"  --arg A  (submit) an argument for the validation run\n");
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

/* Send one request, read one response line. Caller frees *line. */
static int round_trip(const char *socket_path, struct json_buf *req,
		      char **line, size_t *len, struct al_error *err)
{
	if (json_buf_failed(req))
		return al_error_sys(err, ENOMEM, "request");
	_cleanup_close_ int fd = connect_daemon(socket_path, err);
	if (fd < 0)
		return -1;
	if (write_all(fd, req->data, req->len) < 0 ||
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
static int call(const struct client_opts *o, struct json_buf *req,
		struct response *r)
{
	static const struct json_limits limits = { .max_nodes = 1u << 22,
						   .max_depth = 16 };
	struct al_error err = { 0 };

	memset(r, 0, sizeof(*r));
	if (round_trip(o->socket, req, &r->line, &r->len, &err) < 0 ||
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

	if (o->argc != 1)
		return usage_error(o->command, "give one FILE", NULL);
	_cleanup_free_ char *content = read_module(o->argv[0], &len, o->command);
	if (!content)
		return 1;
	_cleanup_free_ char *b64 = base64_encode(content, len);
	_cleanup_free_ char *copy = strdup(o->argv[0]);
	if (!b64 || !copy)
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
	json_kv_string(&jb, "content", b64);
	json_object_close(&jb);
	if (call(o, &jb, &r) < 0)
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
	if (what && strcmp(what, "RUN") == 0) {
		if (parse_uint(o->argv[0], 1, INT64_MAX, &run, NULL) < 0) {
			json_buf_free(&jb);
			return usage_error(o->command, "not a run id: ",
					   o->argv[0]);
		}
		json_kv_uint(&jb, "run", run);
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
	response_free(&r);
	return rc;
}

static void print_members(const struct json_doc *doc,
			  const struct json_node *obj, const char *prefix)
{
	for (const struct json_node *n = json_first(doc, obj); n;
	     n = json_next(doc, n)) {
		char key[160];
		snprintf(key, sizeof(key), "%s%.*s", prefix, (int)n->key_len,
			 n->key);
		switch (n->type) {
		case JSON_OBJECT: {
			char sub[170];
			snprintf(sub, sizeof(sub), "%s.", key);
			print_members(doc, n, sub);
			break;
		}
		case JSON_STRING: printf("%-32s %s\n", key, n->str); break;
		case JSON_INT: printf("%-32s %lld\n", key, (long long)n->i); break;
		case JSON_BOOL: printf("%-32s %s\n", key, n->i ? "yes" : "no"); break;
		case JSON_NUMBER: printf("%-32s %g\n", key, n->d); break;
		default: break;
		}
	}
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
		print_members(r.doc, r.root, "");
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
		return client_simple(&o, "cancel", "RUN");
	return usage_error(o.command, "not a client command", NULL);
}
