/*
 * airlock languages [--json] [--local] [--socket PATH]
 *
 * What this host can run: each policy with its interpreter and the
 * version its version_command prints inside that policy's jail. airlockd
 * answers it (its policies, its jails, kept for its life) when it listens
 * on the socket; when nothing listens there (no socket, connection
 * refused, or not this user's to connect to), or with --local, airlock
 * probes the policies `airlock policy list` shows itself, one jail after
 * the other, as `airlock run` would run them.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "sandbox/sandbox.h"
#include "supervisor/protocol.h"
#include "tools/cli.h"

struct lang_opts {
	const char *socket;
	bool json;
	bool local;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: airlock languages [--json] [--local] [--socket PATH]\n"
		"\n"
		"Each policy, its interpreter and the version its\n"
		"version_command prints inside the policy's jail (at most 5 s\n"
		"each). airlockd answers when it listens on the socket\n"
		"(--socket, else $AIRLOCK_SOCKET, else " SUPERVISOR_DEFAULT_SOCKET
		"); with no daemon there, or with --local, the\n"
		"policies of `airlock policy list` are probed here.\n"
		"  --json   one JSON object: {\"languages\":[...]}\n");
}

static int parse(int argc, char **argv, struct lang_opts *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "local", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': o->socket = optarg; break;
		case 'j': o->json = true; break;
		case 'l': o->local = true; break;
		case 'h': usage(stdout); exit(0);
		default:
			fprintf(stderr,
				"airlock languages: %s %s\n(airlock languages "
				"--help)\n",
				c == ':' ? "a value is needed for"
					 : "unknown option",
				argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr,
			"airlock languages: unexpected argument \"%s\"\n"
			"(airlock languages --help)\n",
			argv[optind]);
		return -1;
	}
	o->socket = cli_socket_path(o->socket);
	return 0;
}

/* ------------------------------------------------------------- local */

struct local {
	struct sandbox_host *host;
	struct json_buf *jb;
	struct cli_interrupt in;
	char seen[64][64]; /* names already listed: the first one wins */
	size_t nseen;
};

/* One probe to its end, or until a signal cancels it (the jail is still
 * reaped and its cgroup removed). */
static enum sandbox_version probe_wait(struct local *l, struct sandbox_probe *p,
				       char text[SANDBOX_VERSION_MAX + 1])
{
	while (!sandbox_probe_step(p) && !l->in.signo) {
		struct pollfd pfd[2] = {
			{ .fd = sandbox_probe_fd(p), .events = POLLIN },
			{ .fd = l->in.fd, .events = POLLIN },
		};
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			cli_interrupt_take(&l->in);
	}
	if (!sandbox_probe_step(p)) {
		snprintf(text, SANDBOX_VERSION_MAX + 1, "interrupted");
		return SANDBOX_VERSION_FAILED;
	}
	return sandbox_probe_result(p, text);
}

static void local_one(const char *name, const char *path, void *arg)
{
	struct local *l = arg;
	struct al_error err = { 0 };
	char words[POLICY_VERSION_COMMAND_MAX + 1],
		text[SANDBOX_VERSION_MAX + 1];
	char *argv[POLICY_VERSION_ARGS_MAX + 1];
	struct sandbox_probe *probe = NULL;

	for (size_t i = 0; i < l->nseen; i++)
		if (strcmp(l->seen[i], name) == 0)
			return;
	if (l->nseen == ARRAY_SIZE(l->seen) || l->in.signo)
		return;
	snprintf(l->seen[l->nseen++], sizeof(l->seen[0]), "%s", name);
	struct al_policy *p = policy_load(path ? path : name, &err);
	struct proto_language e = { .policy = name, .status = "none" };
	if (!p) {
		e.status = "error";
		e.detail = err.msg;
	} else {
		e.description = policy_description(p);
		if (policy_version_argv(p, words, argv) > 0) {
			e.command = policy_version_command(p);
			e.interpreter = argv[0];
			if (sandbox_probe_start(l->host, p, &probe, &err) < 0) {
				e.status = "failed";
				e.detail = err.msg;
			} else {
				enum sandbox_version v = probe_wait(l, probe,
								    text);
				e.status = sandbox_version_name(v);
				*(v == SANDBOX_VERSION_OK ? &e.version
							  : &e.detail) = text;
			}
		}
	}
	proto_language_json(l->jb, &e);
	sandbox_probe_free(probe);
	policy_free(p);
}

/* The local answer, in the shape of airlockd's (plus "local": true). */
static int probe_locally(struct json_buf *jb, struct al_error *err)
{
	struct local l = { .jb = jb };

	l.host = cli_sandbox_host(err);
	if (!l.host || cli_interrupt_open(&l.in, err) < 0) {
		sandbox_host_free(l.host);
		return -1;
	}
	sandbox_host_sweep(l.host, NULL, NULL);
	json_object_open(jb);
	json_kv_bool(jb, "ok", true);
	json_kv_bool(jb, "local", true);
	json_key(jb, "languages");
	json_array_open(jb);
	policy_list(local_one, &l);
	local_one("default", NULL, &l); /* built in when no file names it */
	json_array_close(jb);
	json_kv_bool(jb, "truncated", l.nseen == ARRAY_SIZE(l.seen));
	json_object_close(jb);
	cli_interrupt_close(&l.in);
	sandbox_host_free(l.host);
	return l.in.signo ? 128 + l.in.signo : 0;
}

/* -------------------------------------------------------------- print */

static void print_table(const struct cli_response *r)
{
	const struct json_node *list = json_get(r->doc, r->root, "languages");

	printf("%-12s %-12s %s\n", "POLICY", "INTERPRETER", "VERSION");
	for (const struct json_node *e = list ? json_first(r->doc, list) : NULL;
	     e; e = json_next(r->doc, e)) {
		const char *status = json_get_str(r->doc, e, "status", "?");
		const char *shown = strcmp(status, "ok") == 0
					    ? json_get_str(r->doc, e, "version",
							   "")
				    : strcmp(status, "none") == 0 ? "-"
				    : strcmp(status, "not_installed") == 0
					    ? "not installed"
					    : json_get_str(r->doc, e, "detail",
							   status);
		printf("%-12s %-12s %s%s\n",
		       json_get_str(r->doc, e, "policy", "?"),
		       json_get_str(r->doc, e, "interpreter", "-"),
		       strcmp(status, "timeout") == 0 ? "timeout: " : "",
		       shown);
	}
	if (cli_bool(r->doc, r->root, "local"))
		printf("(probed here: no airlockd at the socket, or --local)\n");
}

int cmd_languages(int argc, char **argv)
{
	struct lang_opts o = { 0 };
	struct al_error err = { 0 };
	struct cli_response r;
	struct json_buf jb;
	char *line = NULL;
	size_t len = 0;
	int rc = 0;

	if (parse(argc, argv, &o) < 0)
		return CLI_EXIT_USAGE;
	json_buf_init(&jb);
	if (!o.local) {
		json_object_open(&jb);
		json_kv_string(&jb, "op", "languages");
		json_object_close(&jb);
		/* no daemon there, or none this user may reach: probe here */
		if (cli_round_trip(o.socket, &jb, -1, &line, &len, &err) < 0 &&
		    err.errnum != ENOENT && err.errnum != ECONNREFUSED &&
		    err.errnum != EACCES) {
			json_buf_free(&jb);
			fprintf(stderr, "airlock languages: %s\n", err.msg);
			return 1;
		}
		json_buf_free(&jb);
		json_buf_init(&jb);
	}
	if (!line) {
		rc = probe_locally(&jb, &err);
		if (rc < 0 || json_buf_failed(&jb)) {
			json_buf_free(&jb);
			fprintf(stderr, "airlock languages: %s\n",
				rc < 0 ? err.msg : "out of memory");
			return 1;
		}
		line = strndup(jb.data, jb.len);
		len = jb.len;
		json_buf_free(&jb);
	}
	if (!line || cli_response_parse(&r, line, len, &err) < 0) {
		fprintf(stderr, "airlock languages: %s\n",
			line ? err.msg : "out of memory");
		return 1;
	}
	if (o.json)
		printf("%s\n", r.line);
	else if (!r.ok)
		cli_print_error("languages", &r);
	else
		print_table(&r);
	if (!r.ok)
		rc = 1;
	cli_response_free(&r);
	return rc;
}
