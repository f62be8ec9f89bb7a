/*
 * Operator commands beside status:
 *
 *   airlock quota show [UID] [--json]       what each uid used and has left
 *   airlock quota reset UID [--json]        forget a uid's use (admin)
 *   airlock events [--follow] [--json] [--since T] [--limit N]
 *   airlock audit [--policy NAME] [--json] [--since DURATION]
 *
 * quota talks to airlockd. events asks airlockd and, when it is down,
 * reads the manifest itself; --follow subscribes (op "subscribe") and
 * prints each event as it happens. audit reads the manifest (read-only)
 * and the policy files: which active modules and which recent runs were
 * held to a policy whose hash is no longer the policy's hash now.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manifest/manifest.h"
#include "policy/policy.h"
#include "supervisor/protocol.h"
#include "tools/cli.h"

struct ops_opts {
	const char *command;
	const char *socket;
	const char *state_dir;
	const char *policy;
	const char *since;
	uint64_t limit;
	bool has_limit;
	bool json;
	bool follow;
	int argc;
	char **argv;
};

static int usage(FILE *f)
{
	fprintf(f,
		"usage: airlock quota show [UID] [--json]\n"
		"       airlock quota reset UID [--json]          (admin)\n"
		"       airlock events [--follow] [--json] [--since TIME] "
		"[--limit N]\n"
		"       airlock audit [--policy NAME] [--json] [--since "
		"DURATION]\n"
		"\n"
		"  --socket PATH     airlockd's socket (else $AIRLOCK_SOCKET)\n"
		"  --state-dir DIR   the manifest (else $AIRLOCK_STATE_DIR)\n"
		"  --since TIME      events: a time (2024-05-01T12:00Z) or an "
		"age (1h)\n"
		"                    audit: runs of this window (default 24h)\n"
		"  --limit N         events: the newest N (default 20; with "
		"--follow 10,\n"
		"                    at most 100)\n"
		"  --follow          events: then stream new events until "
		"interrupted\n"
		"  --policy NAME     audit: only modules held to this policy\n"
		"  --json            one JSON object per line (events), or the "
		"whole\n"
		"                    answer as one object\n");
	return f == stdout ? 0 : CLI_EXIT_USAGE;
}

static int parse(int argc, char **argv, struct ops_opts *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "policy", required_argument, NULL, 'p' },
		{ "since", required_argument, NULL, 'S' },
		{ "limit", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "follow", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct al_error err = { 0 };
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":fhj", longopts, NULL)) != -1) {
		switch (c) {
		case 's': o->socket = optarg; break;
		case 'd': o->state_dir = optarg; break;
		case 'p': o->policy = optarg; break;
		case 'S': o->since = optarg; break;
		case 'j': o->json = true; break;
		case 'f': o->follow = true; break;
		case 'l':
			if (parse_uint(optarg, 1, 10000, &o->limit, &err) < 0) {
				fprintf(stderr, "airlock %s: --limit: %s\n",
					o->command, err.msg);
				return CLI_EXIT_USAGE;
			}
			o->has_limit = true;
			break;
		case 'h': exit(usage(stdout));
		default:
			fprintf(stderr, "airlock %s: bad option %s\n",
				o->command, argv[optind - 1]);
			return usage(stderr);
		}
	}
	o->argc = argc - optind;
	o->argv = argv + optind;
	o->socket = cli_socket_path(o->socket);
	return 0;
}

/* ---------------------------------------------------------------- quota */

static int quota(struct ops_opts *o)
{
	const char *sub = o->argc ? o->argv[0] : "show";
	bool reset = strcmp(sub, "reset") == 0;
	uint64_t uid = 0;
	struct json_buf jb;
	struct cli_response r;
	struct al_error err = { 0 };

	if ((!reset && strcmp(sub, "show") != 0) || o->argc > 2 ||
	    (reset && o->argc != 2)) {
		fprintf(stderr, "airlock quota: expected \"show [UID]\" or "
				"\"reset UID\"\n");
		return usage(stderr);
	}
	if (o->argc == 2 &&
	    parse_uint(o->argv[1], 0, UINT32_MAX - 1, &uid, &err) < 0) {
		fprintf(stderr, "airlock quota: UID: %s\n", err.msg);
		return CLI_EXIT_USAGE;
	}
	json_buf_init(&jb);
	json_object_open(&jb);
	json_kv_string(&jb, "op", reset ? "quota_reset" : "quota_show");
	if (o->argc == 2)
		json_kv_uint(&jb, "uid", uid);
	json_object_close(&jb);
	if (cli_call("quota", o->socket, &jb, -1, o->json, &r) < 0)
		return 1;
	int rc = r.ok ? 0 : 1;
	if (!r.ok) {
		if (!o->json)
			cli_print_error("quota", &r);
	} else if (!o->json) {
		if (reset)
			printf("quota of uid %llu reset; now:\n",
			       (unsigned long long)uid);
		else
			printf("per hour %lld, per day %lld (0: no limit); "
			       "the hour resets %s, the day %s\n",
			       (long long)cli_int(r.doc, r.root, "per_hour"),
			       (long long)cli_int(r.doc, r.root, "per_day"),
			       json_get_str(r.doc, r.root, "hour_resets", "?"),
			       json_get_str(r.doc, r.root, "day_resets", "?"));
		cli_print_quotas(stdout, &r);
	}
	cli_response_free(&r);
	return rc;
}

/* --------------------------------------------------------------- events */

/* An event object's members again, as one line (they are all integers
 * and strings). */
static void print_event_json(const struct json_doc *doc,
			     const struct json_node *e)
{
	struct json_buf jb;

	json_buf_init(&jb);
	json_object_open(&jb);
	for (const struct json_node *m = json_first(doc, e); m;
	     m = json_next(doc, m)) {
		char key[32];
		snprintf(key, sizeof(key), "%.*s", (int)m->key_len, m->key);
		if (m->type == JSON_INT)
			json_kv_int(&jb, key, m->i);
		else if (m->type == JSON_STRING)
			json_kv_string(&jb, key, m->str);
	}
	json_object_close(&jb);
	if (!json_buf_failed(&jb))
		printf("%s\n", jb.data);
	json_buf_free(&jb);
}

/* One event as a line: its JSON, or for people
 * "TIME  KIND  MODULE vN  run N uid N VERDICT  DETAIL". */
static void print_event(const struct json_doc *doc, const struct json_node *e,
			bool json)
{
	char what[192] = "", run[64] = "";
	const char *mod = json_get_str(doc, e, "module", NULL);

	if (json) {
		print_event_json(doc, e);
		fflush(stdout);
		return;
	}
	if (mod)
		snprintf(what, sizeof(what), "%s v%lld", mod,
			 (long long)cli_int(doc, e, "version"));
	if (json_get(doc, e, "run"))
		snprintf(run, sizeof(run), "run %lld ",
			 (long long)cli_int(doc, e, "run"));
	if (json_get(doc, e, "uid"))
		snprintf(run + strlen(run), sizeof(run) - strlen(run),
			 "uid %lld ", (long long)cli_int(doc, e, "uid"));
	printf("%s  %-13s %-24s %s%s%s%s\n", json_get_str(doc, e, "time", "?"),
	       json_get_str(doc, e, "kind", "?"), what, run,
	       json_get_str(doc, e, "verdict", ""),
	       json_get(doc, e, "verdict") ? "  " : "",
	       json_get_str(doc, e, "detail", ""));
	fflush(stdout);
}

static void print_events(const struct cli_response *r, bool json)
{
	const struct json_node *a = json_get(r->doc, r->root, "events");

	for (const struct json_node *e = json_first(r->doc, a); e;
	     e = json_next(r->doc, e))
		print_event(r->doc, e, json);
}

static int offline_one(const struct manifest_feed_event *ev, void *arg)
{
	proto_event_json(arg, ev);
	return 0;
}

/* The manifest's feed when airlockd is down, as an "events" response. */
static int events_offline(struct ops_opts *o, int64_t since,
			  struct cli_response *r, struct al_error *err)
{
	struct manifest *m = cli_manifest_open(cli_state_dir(o->state_dir),
					       err);
	struct manifest_feed_filter f = { .since_ms = since,
					  .limit = o->has_limit ? o->limit
								: 20 };
	struct json_buf jb;

	if (!m)
		return -1;
	json_buf_init(&jb);
	json_object_open(&jb);
	json_kv_bool(&jb, "ok", true);
	json_key(&jb, "events");
	json_array_open(&jb);
	int rc = manifest_feed(m, &f, offline_one, &jb, err);
	json_array_close(&jb);
	json_object_close(&jb);
	manifest_close(m);
	char *line = rc < 0 || json_buf_failed(&jb) ? NULL : strdup(jb.data);
	size_t len = jb.len;
	json_buf_free(&jb);
	if (!line)
		return rc < 0 ? -1 : al_error_sys(err, ENOMEM, "events");
	return cli_response_parse(r, line, len, err);
}

static void request_filters(struct json_buf *jb, const struct ops_opts *o,
			    uint64_t limit)
{
	json_kv_uint(jb, "limit", limit);
	if (o->since)
		json_kv_string(jb, "since", o->since);
}

static int events_follow(struct ops_opts *o)
{
	struct al_error err = { 0 };
	struct json_buf jb;
	char *line = NULL;
	size_t len = 0;

	if (o->has_limit && o->limit > PROTO_CATCH_UP_MAX) {
		fprintf(stderr,
			"airlock events: --follow shows at most %d "
			"earlier events\n",
			PROTO_CATCH_UP_MAX);
		return CLI_EXIT_USAGE;
	}
	_cleanup_close_ int fd = cli_connect(o->socket, &err);
	if (fd < 0) {
		fprintf(stderr, "airlock events: %s\n", err.msg);
		return 1;
	}
	json_buf_init(&jb);
	json_object_open(&jb);
	json_kv_string(&jb, "op", "subscribe");
	request_filters(&jb, o, o->has_limit ? o->limit : 10);
	json_object_close(&jb);
	int rc = json_buf_failed(&jb) ? -1 : cli_write_all(fd, jb.data, jb.len);
	json_buf_free(&jb);
	if (rc < 0 || cli_write_all(fd, "\n", 1) < 0) {
		fprintf(stderr, "airlock events: send: %s\n", strerror(errno));
		return 1;
	}
	static struct cli_stream st; /* 64 KiB: not on the stack */
	st.fd = fd;
	st.len = 0;
	for (bool first = true;; first = false) {
		struct cli_response r;
		if (cli_stream_next(&st, &line, &len, &err) < 0) {
			fprintf(stderr, "airlock events: %s\n", err.msg);
			return 1;
		}
		if (cli_response_parse(&r, line, len, &err) < 0) {
			fprintf(stderr, "airlock events: %s\n", err.msg);
			cli_response_free(&r);
			return 1;
		}
		const struct json_node *e = json_get(r.doc, r.root, "event");
		if (first && !r.ok) {
			cli_print_error("events", &r);
			cli_response_free(&r);
			return 1;
		}
		if (e)
			print_event(r.doc, e, o->json);
		cli_response_free(&r);
	}
}

static int events(struct ops_opts *o)
{
	struct al_error err = { 0 };
	struct cli_response r;
	struct json_buf jb;
	char *line = NULL;
	size_t len = 0;
	int64_t since = 0;

	if (o->argc)
		return usage(stderr);
	if (o->follow)
		return events_follow(o);
	if (o->since && manifest_time_parse(o->since, manifest_now_ms(), &since,
					    &err) < 0) {
		fprintf(stderr, "airlock events: --since: %s\n", err.msg);
		return CLI_EXIT_USAGE;
	}
	json_buf_init(&jb);
	json_object_open(&jb);
	json_kv_string(&jb, "op", "events");
	request_filters(&jb, o, o->has_limit ? o->limit : 20);
	json_object_close(&jb);
	int rc = cli_round_trip(o->socket, &jb, -1, &line, &len, &err);
	json_buf_free(&jb);
	if (rc < 0) {
		/* no daemon: the manifest has the same rows */
		struct al_error merr = { 0 };
		if (events_offline(o, since, &r, &merr) < 0) {
			fprintf(stderr,
				"airlock events: %s\nairlock events: "
				"%s\n",
				err.msg, merr.msg);
			return 1;
		}
	} else if (cli_response_parse(&r, line, len, &err) < 0) {
		fprintf(stderr, "airlock events: %s\n", err.msg);
		cli_response_free(&r);
		return 1;
	}
	rc = r.ok ? 0 : 1;
	if (r.ok)
		print_events(&r, o->json);
	else
		cli_print_error("events", &r);
	cli_response_free(&r);
	return rc;
}

/* ---------------------------------------------------------------- audit */

#define AUDIT_POLICIES 64

/* A policy's hash now, as airlockd would compute it. */
struct current {
	char name[MANIFEST_POLICY_NAME_MAX + 1];
	char hash[POLICY_HASH_LEN]; /* "" when it cannot be loaded */
	char error[AL_ERROR_MAX];
};

struct audit {
	struct current pol[AUDIT_POLICIES];
	size_t npol;
	struct manifest *m;
	const char *only; /* --policy */
	struct json_buf *jb;
	bool json;
	size_t modules, runs;
	int64_t last_module_id;
	struct manifest_module last_module;
};

/* SANDBOX_MEM_MB / SANDBOX_TIMEOUT_MS change airlockd's "default" policy,
 * and so its hash; a shell with the daemon's environment gets the same. */
static int daemon_overrides(struct al_policy *p, struct al_error *err)
{
	const char *mem = getenv("SANDBOX_MEM_MB");
	const char *ms = getenv("SANDBOX_TIMEOUT_MS");
	char v[32];

	if (mem && *mem) {
		snprintf(v, sizeof(v), "%sM", mem);
		if (policy_set_memory(p, v, err) < 0)
			return al_error_prefix(err, "SANDBOX_MEM_MB");
	}
	if (ms && *ms) {
		snprintf(v, sizeof(v), "%sms", ms);
		if (policy_set_timeout(p, v, err) < 0)
			return al_error_prefix(err, "SANDBOX_TIMEOUT_MS");
	}
	return 0;
}

static const struct current *current_of(struct audit *a, const char *name)
{
	struct al_error err = { 0 };

	for (size_t i = 0; i < a->npol; i++)
		if (strcmp(a->pol[i].name, name) == 0)
			return &a->pol[i];
	struct current *c =
		&a->pol[a->npol < AUDIT_POLICIES ? a->npol++
						 : AUDIT_POLICIES - 1];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	/* manifests record names, never paths: look them up as airlockd
	 * does */
	struct al_policy *p = strchr(name, '/') ? NULL
						: policy_load(name, &err);
	if (!p && !err.msg[0])
		al_error_set(&err, EINVAL, "not a policy name");
	if (p && strcmp(name, "default") == 0 &&
	    daemon_overrides(p, &err) < 0) {
		policy_free(p);
		p = NULL;
	}
	if (p && policy_hash(p, c->hash, &err) < 0)
		c->hash[0] = '\0';
	if (!c->hash[0])
		snprintf(c->error, sizeof(c->error), "%s", err.msg);
	policy_free(p);
	return c;
}

static void finding_json(struct json_buf *jb, const char *held,
			 const struct current *c)
{
	json_kv_string(jb, "policy", c->name);
	json_kv_string(jb, "held_hash", held);
	json_kv_string(jb, "current_hash", c->hash[0] ? c->hash : NULL);
	if (c->error[0])
		json_kv_string(jb, "error", c->error);
}

static const char *current_text(const struct current *c)
{
	return c->hash[0] ? c->hash : c->error;
}

static int audit_module(const struct manifest_module *mod, void *arg)
{
	struct audit *a = arg;

	if (a->only && strcmp(mod->policy_name, a->only) != 0)
		return 0;
	const struct current *c = current_of(a, mod->policy_name);
	if (strcmp(c->hash, mod->policy_hash) == 0)
		return 0;
	a->modules++;
	if (a->json) {
		json_object_open(a->jb);
		json_kv_string(a->jb, "module", mod->name);
		json_kv_int(a->jb, "version", mod->version);
		finding_json(a->jb, mod->policy_hash, c);
		json_object_close(a->jb);
	} else {
		printf("  %s v%lld  policy %s\n    validated under %s\n    "
		       "now                 %s\n",
		       mod->name, (long long)mod->version, mod->policy_name,
		       mod->policy_hash, current_text(c));
	}
	return 0;
}

static int audit_run(const struct manifest_run *run, void *arg)
{
	struct audit *a = arg;
	struct al_error err = { 0 };

	if (run->module_id != a->last_module_id) {
		if (manifest_get(a->m, run->module_id, &a->last_module, &err) <
		    0)
			return 0; /* deleted by retention meanwhile */
		a->last_module_id = run->module_id;
	}
	const struct manifest_module *mod = &a->last_module;
	if (a->only && strcmp(mod->policy_name, a->only) != 0)
		return 0;
	const struct current *c = current_of(a, mod->policy_name);
	if (strcmp(c->hash, run->policy_hash) == 0)
		return 0;
	a->runs++;
	if (a->json) {
		char t[MANIFEST_TIME_MAX];
		manifest_time_format(run->started_ms, false, t);
		json_object_open(a->jb);
		json_kv_int(a->jb, "run", run->id);
		json_kv_string(a->jb, "module", mod->name);
		json_kv_int(a->jb, "version", mod->version);
		json_kv_string(a->jb, "started", t);
		json_kv_string(a->jb, "verdict", run->verdict);
		finding_json(a->jb, run->policy_hash, c);
		json_object_close(a->jb);
	} else {
		printf("  run %lld  %s v%lld  policy %s  held to %.19s...\n",
		       (long long)run->id, mod->name, (long long)mod->version,
		       mod->policy_name, run->policy_hash);
	}
	return 0;
}

static int audit(struct ops_opts *o)
{
	struct al_error err = { 0 };
	struct json_buf jb;
	struct audit a = { .only = o->policy, .jb = &jb, .json = o->json };
	int64_t now = manifest_now_ms(), since;
	char t[MANIFEST_TIME_MAX];

	if (o->argc)
		return usage(stderr);
	if (manifest_time_parse(o->since ? o->since : "24h", now, &since,
				&err) < 0) {
		fprintf(stderr, "airlock audit: --since: %s\n", err.msg);
		return CLI_EXIT_USAGE;
	}
	a.m = cli_manifest_open(cli_state_dir(o->state_dir), &err);
	if (!a.m) {
		fprintf(stderr, "airlock audit: %s\n", err.msg);
		return 125;
	}
	struct manifest_module_filter mf = { .by_state = true,
					     .state = MANIFEST_ACTIVE };
	struct manifest_run_filter rf = { .since_ms = since };
	manifest_time_format(since, false, t);
	json_buf_init(&jb);
	json_object_open(&jb);
	json_kv_string(&jb, "since", t);
	json_key(&jb, "modules");
	json_array_open(&jb);
	if (!o->json)
		printf("active modules held to a policy edited since:\n");
	int rc = manifest_snapshot_begin(a.m, &err);
	if (rc == 0)
		rc = manifest_list(a.m, &mf, audit_module, &a, &err);
	json_array_close(&jb);
	if (!o->json && rc >= 0)
		printf("%s\nruns since %s held to a policy edited since:\n",
		       a.modules ? "" : "  none", t);
	json_key(&jb, "runs");
	json_array_open(&jb);
	if (rc >= 0)
		rc = manifest_runs(a.m, &rf, audit_run, &a, &err);
	json_array_close(&jb);
	manifest_snapshot_end(a.m);
	manifest_close(a.m);
	json_object_close(&jb);
	if (rc < 0) {
		fprintf(stderr, "airlock audit: %s\n", err.msg);
		json_buf_free(&jb);
		return 125;
	}
	if (o->json && !json_buf_failed(&jb))
		printf("%s\n", jb.data);
	else if (!o->json)
		printf("%s\n%zu modules and %zu runs to re-validate\n",
		       a.runs ? "" : "  none", a.modules, a.runs);
	json_buf_free(&jb);
	return a.modules || a.runs ? 1 : 0;
}

int cmd_operator(int argc, char **argv)
{
	struct ops_opts o = { .command = argv[0] };
	int rc = parse(argc, argv, &o);

	if (rc)
		return rc;
	if (strcmp(o.command, "quota") == 0)
		return quota(&o);
	if (strcmp(o.command, "events") == 0)
		return events(&o);
	return audit(&o);
}
