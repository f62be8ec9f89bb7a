/*
 * The daemon's clients: one request line to airlockd, one response line
 * back (docs/protocol.md).
 *
 *   airlock submit FILE [--name N] [--policy P] [--group G] [--arg A]...
 *                  [--entry PATH [--build CMD]] [--base64]
 *                                                       [--json]
 *   airlock exec [--timeout D] [--memory S] [--pids N] [--env K=V]...
 *                [--cwd DIR] NAME [ARG...]  (options before NAME)
 *   airlock exec --detach NAME [ARG...]      (prints the run id)
 *   airlock result RUN [--json]
 *   airlock wait RUN [--timeout D] [--json]
 *   airlock archive NAME [--reason TEXT] [--json]
 *   airlock restore NAME [--version N] [--json]
 *   airlock rollback NAME [--json]
 *   airlock cancel RUN|NAME [--json]   (a running run; NAME's queued runs)
 *
 * The socket: --socket, else $AIRLOCK_SOCKET, else the default. On an
 * error response the server's message is printed and the exit status is
 * 1 (125 for exec, result and wait, whose other statuses are the
 * module's; 75, EX_TEMPFAIL, when the run has not ended).
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
	const char *entry; /* submit: FILE is a bundle, this its entry point */
	const char *build; /* submit: the bundle's build command */
	const char *reason;
	const char *version; /* restore: that version */
	const char *vargs[PROTO_MAX_ARGS];
	size_t nvargs;
	bool json;
	bool base64;   /* submit: content in the line, not the file's fd */
	bool no_stdin; /* exec: do not read stdin even when it is a pipe */
	bool detach;   /* exec: answered with the run id at once */
	/* exec: per-run options, held by airlockd to the module's policy;
	 * timeout is also wait's: how long to wait */
	const char *timeout, *memory, *pids, *cwd;
	struct cli_env env;
	int argc;
	char **argv; /* positional arguments */
};

static void client_usage(FILE *f, const char *command)
{
	fprintf(f,
		"usage: airlock submit FILE [--name N] [--policy P] [--group G]"
		" [--arg A]...\n"
		"                      [--entry PATH [--build CMD]] [--base64]\n"
		"       airlock exec [--json] [--no-stdin] [--detach] [--timeout D] "
		"[--memory S] [--pids N]\n"
		"                    [--env NAME=VALUE]... [--cwd DIR] NAME "
		"[ARG...] [< INPUT]\n"
		"       airlock result [--json] RUN"
		" | wait [--json] [--timeout D] RUN\n"
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
		"  --entry PATH (submit) FILE is a bundle (a tar, tar.gz or\n"
		"           tar.zst); PATH inside it is what runs, in the\n"
		"           unpacked tree as its working directory\n"
		"  --build CMD (submit) the bundle's build step, run once at\n"
		"           validation (sh -c CMD in a writable copy of the\n"
		"           tree): its output tree becomes the module\n"
		"  --base64 (submit) send the content in the request instead of\n"
		"           passing the open FILE to airlockd\n"
		"  --version N (restore) make version N active (the active one\n"
		"           is archived); without it the highest archived version,\n"
		"           refused while another is active\n"
		"  rollback makes the newest good version older than the active\n"
		"           one active again (airlock show NAME lists them)\n"
		"  --no-stdin (exec) do not send stdin; without it a pipe or file\n"
		"           on stdin (UTF-8 text, at most 1 MiB) is the module's\n"
		"           stdin (a terminal never is)\n"
		"  --detach (exec) print the run id at once; the run goes on\n"
		"           without this connection (airlock result, wait)\n"
		"  --timeout D, --memory S, --pids N (exec) lower the policy's\n"
		"           limit for this run (2s, 64M, 16); never above it\n"
		"  --timeout D (wait) at most this long (\"30s\", at most 10m);\n"
		"           exit 75 if the run has not ended by then\n"
		"  --env NAME=VALUE (exec) set a variable the module's policy\n"
		"           lets a request set ([runtime] request_env)\n"
		"  --cwd DIR (exec) start the module in DIR, an absolute path\n"
		"           inside the jail (default /tmp)\n");
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
		{ "entry", required_argument, NULL, 'e' },
		{ "build", required_argument, NULL, 'B' },
		{ "reason", required_argument, NULL, 'r' },
		{ "version", required_argument, NULL, 'V' },
		{ "arg", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "base64", no_argument, NULL, 'b' },
		{ "no-stdin", no_argument, NULL, 'N' },
		{ "detach", no_argument, NULL, 'D' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "memory", required_argument, NULL, 'M' },
		{ "pids", required_argument, NULL, 'P' },
		{ "env", required_argument, NULL, 'E' },
		{ "cwd", required_argument, NULL, 'C' },
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
		case 'e': o->entry = optarg; break;
		case 'B': o->build = optarg; break;
		case 'r': o->reason = optarg; break;
		case 'V': o->version = optarg; break;
		case 'j': o->json = true; break;
		case 'b': o->base64 = true; break;
		case 'N': o->no_stdin = true; break;
		case 'D': o->detach = true; break;
		case 'T': o->timeout = optarg; break;
		case 'M': o->memory = optarg; break;
		case 'P': o->pids = optarg; break;
		case 'C': o->cwd = optarg; break;
		case 'E': {
			char msg[128];
			if (cli_env_add(&o->env, optarg, msg, sizeof(msg)) < 0)
				return usage_error(o->command, msg, NULL);
			break;
		}
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
	if (strcmp(o->command, "exec") != 0 &&
	    (o->memory || o->pids || o->env.n || o->cwd))
		return usage_error(o->command,
				   "--memory, --pids, --env and --cwd are "
				   "exec's",
				   NULL);
	if (o->timeout && strcmp(o->command, "exec") != 0 &&
	    strcmp(o->command, "wait") != 0)
		return usage_error(o->command, "--timeout is exec's and wait's",
				   NULL);
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
	const char *error = json_get_str(r->doc, res, "error", NULL);

	print_output(r);
	if (error) /* setup_error, or a bundle's build_failed */
		fprintf(stderr, "airlock: %s: %s\n",
			json_get_str(r->doc, res, "verdict", "setup_error"),
			error);
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
	if (o->build && !o->entry)
		return usage_error(o->command, "--build needs --entry", NULL);
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
	if (o->entry) {
		json_kv_string(&jb, "kind", "bundle");
		json_kv_string(&jb, "entry", o->entry);
	}
	if (o->build)
		json_kv_string(&jb, "build", o->build);
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
		if (r.ok && json_get(r.doc, r.root, "build_run"))
			printf("built by its build step in run %lld\n",
			       (long long)get_int(r.doc, r.root, "build_run"));
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

/* The per-run options as request members; airlockd holds them to the
 * module's policy (docs/protocol.md, "Per-run options"). -1: --pids is
 * not a number (said). */
static int exec_options(const struct client_opts *o, struct json_buf *jb)
{
	uint64_t pids;
	struct al_error err = { 0 };

	if (o->timeout)
		json_kv_string(jb, "timeout", o->timeout);
	if (o->memory)
		json_kv_string(jb, "memory", o->memory);
	if (o->pids) {
		if (parse_uint(o->pids, 0, INT64_MAX, &pids, &err) < 0) {
			fprintf(stderr, "airlock exec: --pids: %s\n", err.msg);
			return -1;
		}
		json_kv_uint(jb, "pids", pids);
	}
	if (o->env.n) {
		json_key(jb, "env");
		json_object_open(jb);
		for (size_t i = 0; i < o->env.n; i++)
			json_kv_string(jb, o->env.names[i], o->env.values[i]);
		json_object_close(jb);
	}
	if (o->cwd)
		json_kv_string(jb, "cwd", o->cwd);
	return 0;
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
	if (o->detach)
		json_kv_bool(&jb, "wait", false);
	json_key(&jb, "args");
	json_array_open(&jb);
	for (int i = 1; i < o->argc; i++)
		json_string(&jb, o->argv[i]);
	json_array_close(&jb);
	if (in && in_len) {
		json_key(&jb, "stdin");
		json_string_n(&jb, in, in_len);
	}
	if (exec_options(o, &jb) < 0) {
		json_buf_free(&jb);
		return CLI_EXIT_USAGE;
	}
	json_object_close(&jb);
	if (call(o, &jb, &r) < 0)
		return CLI_EXIT_USAGE;
	int rc = CLI_EXIT_USAGE;
	if (r.ok && o->detach) {
		rc = 0;
		if (!o->json)
			printf("%lld\n",
			       (long long)get_int(r.doc, r.root, "run"));
	} else if (r.ok) {
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

/* The kept streams of a result or wait answer ("output", base64), to
 * ours byte for byte. */
static void print_kept(const struct cli_response *r, const char *command)
{
	static const char *const names[2] = { "stdout", "stderr" };
	const struct json_node *out = json_get(r->doc, r->root, "output");

	for (int k = 0; k < 2; k++) {
		const struct json_node *st = json_get(r->doc, out, names[k]);
		const char *b64 = json_get_str(r->doc, st, "data", "");
		size_t n = strlen(b64);
		_cleanup_free_ unsigned char *bytes = malloc(n / 4 * 3 + 1);
		ssize_t len = bytes ? base64_decode(b64, n, bytes, NULL) : -1;
		if (len > 0)
			fwrite(bytes, 1, (size_t)len, k ? stderr : stdout);
		if (cli_bool(r->doc, st, "truncated"))
			fprintf(stderr,
				"airlock %s: %s was cut: %lld bytes were "
				"captured, fewer kept\n",
				command, names[k],
				(long long)cli_int(r->doc, st, "size"));
	}
}

/* result RUN, wait RUN: print like exec, exit like exec; 75 (EX_TEMPFAIL)
 * while the run has not ended. */
static int client_result(struct client_opts *o, const char *op)
{
	struct json_buf jb;
	struct cli_response r;
	uint64_t run;

	if (o->argc != 1)
		return usage_error(o->command, "give one RUN", NULL);
	if (parse_uint(o->argv[0], 1, INT64_MAX, &run, NULL) < 0)
		return usage_error(o->command, "RUN is a run id: ", o->argv[0]);
	json_buf_init(&jb);
	json_object_open(&jb);
	json_kv_string(&jb, "op", op);
	json_kv_uint(&jb, "run", run);
	if (o->timeout)
		json_kv_string(&jb, "timeout", o->timeout);
	json_object_close(&jb);
	if (call(o, &jb, &r) < 0)
		return CLI_EXIT_USAGE;
	int rc = CLI_EXIT_USAGE;
	if (r.ok) {
		const struct json_node *res = json_get(r.doc, r.root, "result");
		rc = (int)get_int(r.doc, res, "exit_status");
		if (!o->json) {
			print_kept(&r, o->command);
			explain_result(&r);
			const struct json_node *m = json_get(r.doc, r.root,
							     "module");
			if (cli_bool(r.doc, r.root, "archived"))
				fprintf(stderr,
					"airlock %s: %s was archived after "
					"this run\n",
					o->command,
					json_get_str(r.doc, m, "name", "?"));
		}
	} else {
		const struct json_node *e = json_get(r.doc, r.root, "error");
		if (strcmp(json_get_str(r.doc, e, "code", ""),
			   "not_finished") == 0)
			rc = CLI_EXIT_NOT_FINISHED;
		if (!o->json)
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

static int client_command(struct client_opts *o)
{
	if (strcmp(o->command, "submit") == 0)
		return client_submit(o);
	if (strcmp(o->command, "exec") == 0)
		return client_exec(o);
	if (strcmp(o->command, "result") == 0 ||
	    strcmp(o->command, "wait") == 0)
		return client_result(o, o->command);
	if (strcmp(o->command, "archive") == 0)
		return client_simple(o, "archive", "NAME");
	if (strcmp(o->command, "restore") == 0)
		return client_simple(o, "restore", "NAME");
	if (strcmp(o->command, "rollback") == 0)
		return client_simple(o, "rollback", "NAME");
	if (strcmp(o->command, "cancel") == 0)
		return client_simple(o, "cancel", "RUN|NAME");
	return usage_error(o->command, "not a client command", NULL);
}

int cmd_client(int argc, char **argv)
{
	struct client_opts o = { .command = argv[0] };
	int rc = parse(argc, argv, &o);

	if (rc == 0)
		rc = client_command(&o);
	cli_env_free(&o.env);
	return rc;
}
