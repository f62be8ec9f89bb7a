/*
 * The daemon's clients: one request line to airlockd, one response line
 * back (docs/protocol.md).
 *
 *   airlock submit FILE [--name N] [--policy P] [--group G] [--arg A]...
 *                  [--base64]
 *                                                       [--json]
 *   airlock exec NAME [ARG...]               (--json before NAME)
 *   airlock archive NAME [--reason TEXT] [--json]
 *   airlock restore NAME [--version N] [--json]
 *   airlock rollback NAME [--json]
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

#include "supervisor/protocol.h"
#include "tools/cli.h"

#define MODULE_MAX (12u << 20) /* base64 of it fits the default request limit */
/* exec's stdin travels in the request line as a JSON string: 1 MiB,
 * escaped (at most 6 bytes a byte), stays well under the default 16 MiB
 * line limit, and matches the 1 MiB the jail captures of each stream */
#define EXEC_STDIN_MAX (1u << 20)

struct client_opts {
	const char *command;
	const char *socket;
	const char *name;
	const char *policy;
	const char *group; /* submit: share a new module with this group */
	const char *reason;
	const char *version; /* restore: that version */
	const char *vargs[PROTO_MAX_ARGS];
	size_t nvargs;
	bool json;
	bool base64;   /* submit: content in the line, not the file's fd */
	bool no_stdin; /* exec: do not read stdin even when it is a pipe */
	int argc;
	char **argv; /* positional arguments */
};

static void client_usage(FILE *f, const char *command)
{
	fprintf(f,
		"usage: airlock submit FILE [--name N] [--policy P] [--group G]"
		" [--arg A]... [--base64]\n"
		"       airlock exec [--json] [--no-stdin] NAME [ARG...] [< INPUT]\n"
		"       airlock archive NAME [--reason R]"
		" | restore NAME [--version N]\n"
		"       airlock rollback NAME | cancel RUN|NAME\n"
		"\n"
		"Talk to airlockd over its socket (--socket PATH, else\n"
		"$AIRLOCK_SOCKET, else " SUPERVISOR_DEFAULT_SOCKET ").\n"
		"  --json   print the server's response line as it is\n"
		"  --arg A  (submit) an argument for the validation run\n"
		"  --group G (submit) a new module's owner group: its members\n"
		"           may run, update, archive and restore it too\n"
		"  --base64 (submit) send the content in the request instead of\n"
		"           passing the open FILE to airlockd\n"
		"  --version N (restore) make version N active (the active one\n"
		"           is archived); without it the highest archived version,\n"
		"           refused while another is active\n"
		"  rollback makes the newest good version older than the active\n"
		"           one active again (airlock show NAME lists them)\n"
		"  --no-stdin (exec) do not send stdin; without it a pipe or file\n"
		"           on stdin (UTF-8 text, at most 1 MiB) is the module's\n"
		"           stdin (a terminal never is)\n");
	(void)command;
}

static int usage_error(const char *command, const char *msg, const char *arg)
{
	fprintf(stderr, "airlock %s: %s%s\n(airlock %s --help)\n", command, msg,
		arg ? arg : "", command);
	return CLI_EXIT_USAGE;
}

static int parse(int argc, char **argv, struct client_opts *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "name", required_argument, NULL, 'n' },
		{ "policy", required_argument, NULL, 'p' },
		{ "group", required_argument, NULL, 'g' },
		{ "reason", required_argument, NULL, 'r' },
		{ "version", required_argument, NULL, 'V' },
		{ "arg", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "base64", no_argument, NULL, 'b' },
		{ "no-stdin", no_argument, NULL, 'N' },
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
		case 'g': o->group = optarg; break;
		case 'r': o->reason = optarg; break;
		case 'V': o->version = optarg; break;
		case 'j': o->json = true; break;
		case 'b': o->base64 = true; break;
		case 'N': o->no_stdin = true; break;
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
	o->socket = cli_socket_path(o->socket);
	return 0;
}

/* Send, receive, parse; -1 with a message already printed. */
static int call_fd(const struct client_opts *o, struct json_buf *req, int pass,
		   struct cli_response *r)
{
	return cli_call(o->command, o->socket, req, pass, o->json, r);
}

static int call(const struct client_opts *o, struct json_buf *req,
		struct cli_response *r)
{
	return call_fd(o, req, -1, r);
}

static void print_error(const struct client_opts *o,
			const struct cli_response *r)
{
	cli_print_error(o->command, r);
}

#define get_int cli_int
#define response_free cli_response_free

static void print_module(const struct cli_response *r)
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

/* The module's captured stdout and stderr, to ours. */
static void print_output(const struct cli_response *r)
{
	const struct json_node *res = json_get(r->doc, r->root, "result");
	const struct json_node *out = json_get(r->doc, res, "stdout");
	const struct json_node *errs = json_get(r->doc, res, "stderr");
	if (out && out->type == JSON_STRING)
		fwrite(out->str, 1, out->len, stdout);
	if (errs && errs->type == JSON_STRING)
		fwrite(errs->str, 1, errs->len, stderr);
}

static void print_result_output(const struct cli_response *r)
{
	const struct json_node *res = json_get(r->doc, r->root, "result");
	const char *setup = json_get_str(r->doc, res, "error", NULL);

	print_output(r);
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
	struct cli_response r;
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
	if (o->group)
		json_kv_string(&jb, "group", o->group);
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
		if (cli_bool(r.doc, r.root, "unchanged"))
			printf("unchanged: the active version already has this "
			       "content and policy; nothing was run\n");
		if (!r.ok)
			print_result_output(&r);
	}
	response_free(&r);
	return rc;
}

/* exec's stdin: a pipe or a regular file on fd 0 is read whole and sent
 * (a terminal, /dev/null or a socket is not: the module then reads
 * nothing, as from /dev/null). Returns 0 with *data NULL when there is
 * none, -1 with a message printed when it cannot be sent. */
static int read_exec_stdin(const struct client_opts *o, char **data,
			   size_t *len)
{
	struct stat st;

	*data = NULL;
	*len = 0;
	if (o->no_stdin || fstat(0, &st) < 0 ||
	    !(S_ISFIFO(st.st_mode) || S_ISREG(st.st_mode)))
		return 0;
	char *buf = malloc(EXEC_STDIN_MAX + 1);
	if (!buf) {
		fprintf(stderr, "airlock exec: stdin: out of memory\n");
		return -1;
	}
	size_t n = 0;
	while (n <= EXEC_STDIN_MAX) {
		ssize_t got = read(0, buf + n, EXEC_STDIN_MAX + 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			fprintf(stderr, "airlock exec: stdin: %s\n",
				strerror(errno));
			free(buf);
			return -1;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	const char *bad =
		n > EXEC_STDIN_MAX
			? "is larger than 1 MiB, the most exec sends "
			  "(it travels in the request line)"
		: !json_utf8_valid(buf, n)
			? "is not UTF-8 text (the protocol's stdin is "
			  "a JSON string); encode binary input, e.g. "
			  "with base64"
			: NULL;
	if (bad) {
		fprintf(stderr,
			"airlock exec: stdin %s; nothing was run "
			"(--no-stdin sends none)\n",
			bad);
		free(buf);
		return -1;
	}
	*data = buf;
	*len = n;
	return 0;
}

/* Why the run ended, as "airlock run" says it. */
static void explain_result(const struct cli_response *r)
{
	const struct json_node *res = json_get(r->doc, r->root, "result");
	const struct json_node *wall = json_get(r->doc, res, "wall_ms");
	const struct json_node *lim = json_get(r->doc, res, "limits");

	cli_explain_verdict(
		stderr,
		&(struct cli_verdict){
			.verdict = json_get_str(r->doc, res, "verdict", "?"),
			.signal = json_get_str(r->doc, res, "signal", NULL),
			.syscall = json_get_str(r->doc, res, "syscall", NULL),
			.error = json_get_str(r->doc, res, "error", NULL),
			.wall_ms = wall && (wall->type == JSON_NUMBER ||
					    wall->type == JSON_INT)
					   ? wall->d
					   : 0,
			.timeout_ms = (uint64_t)get_int(r->doc, lim,
							"timeout_ms"),
			.memory_bytes = (uint64_t)get_int(r->doc, lim,
							  "memory_bytes"),
		});
}

static int client_exec(struct client_opts *o)
{
	struct json_buf jb;
	struct cli_response r;
	_cleanup_free_ char *in = NULL;
	size_t in_len;

	if (o->argc < 1)
		return usage_error(o->command, "give the module's NAME", NULL);
	if (read_exec_stdin(o, &in, &in_len) < 0)
		return CLI_EXIT_USAGE;
	json_buf_init(&jb);
	json_object_open(&jb);
	json_kv_string(&jb, "op", "exec");
	json_kv_string(&jb, "name", o->argv[0]);
	json_key(&jb, "args");
	json_array_open(&jb);
	for (int i = 1; i < o->argc; i++)
		json_string(&jb, o->argv[i]);
	json_array_close(&jb);
	if (in && in_len) {
		json_key(&jb, "stdin");
		json_string_n(&jb, in, in_len);
	}
	json_object_close(&jb);
	if (call(o, &jb, &r) < 0)
		return CLI_EXIT_USAGE;
	int rc = CLI_EXIT_USAGE;
	if (r.ok) {
		const struct json_node *res = json_get(r.doc, r.root, "result");
		rc = (int)get_int(r.doc, res, "exit_status");
		if (!o->json) {
			print_output(&r);
			explain_result(&r);
			const struct json_node *a = json_get(r.doc, r.root,
							     "archived");
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
	struct cli_response r;
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
	if (o->version) {
		uint64_t v;
		if (strcmp(op, "restore") != 0 ||
		    parse_uint(o->version, 1, INT64_MAX, &v, NULL) < 0) {
			json_buf_free(&jb);
			return usage_error(o->command,
					   strcmp(op, "restore") != 0
						   ? "--version is for restore"
						   : "--version: expected a "
						     "version number (1 or "
						     "more), not ",
					   strcmp(op, "restore") != 0
						   ? NULL
						   : o->version);
		}
		json_kv_uint(&jb, "version", v);
	}
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
	if (strcmp(o.command, "archive") == 0)
		return client_simple(&o, "archive", "NAME");
	if (strcmp(o.command, "restore") == 0)
		return client_simple(&o, "restore", "NAME");
	if (strcmp(o.command, "rollback") == 0)
		return client_simple(&o, "rollback", "NAME");
	if (strcmp(o.command, "cancel") == 0)
		return client_simple(&o, "cancel", "RUN|NAME");
	return usage_error(o.command, "not a client command", NULL);
}
