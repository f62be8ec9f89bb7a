/*
 * The languages op: what this host can run. For each policy the daemon
 * accepts (its trusted policy directories, and the built-in default), the
 * policy's interpreter and the version its version_command prints inside
 * that policy's own jail (sandbox_probe_*: bounded in time and output).
 *
 * A probe is a jail like a run's, watched by the loop through its fd and
 * never waited for. Its answer is kept for the daemon's life, keyed by the
 * policy's hash and the command (an edited policy has another hash, and is
 * probed again after SIGHUP); a request that needs probes still running
 * waits for them, sharing the ones another request started. Probes do not
 * take run slots (MAX_ACTIVE_GENERATIONS) or quota: at most one runs per
 * policy, a few seconds each, and a client cannot make them run again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "supervisor/internal.h"

#define LANG_PROBES_MAX 64   /* kept answers (policy hash, command) */
#define LANG_POLICIES_MAX 64 /* entries of one answer */
#define LANG_PENDING_MAX 16  /* requests waiting for probes at once */

struct lang_probe {
	struct source src; /* SRC_LANG: the run's fd while it runs */
	char hash[POLICY_HASH_LEN];
	char command[POLICY_VERSION_COMMAND_MAX + 1];
	struct sandbox_probe *probe; /* NULL once over */
	bool over;
	enum sandbox_version status;
	char text[SANDBOX_VERSION_MAX + 1];
	unsigned waiters; /* requests waiting for it: not evicted */
	uint64_t used;    /* for eviction, least recent first */
	struct lang_probe *next;
};

struct lang_item {
	char policy[MANIFEST_POLICY_NAME_MAX + 1];
	char description[256];
	char command[POLICY_VERSION_COMMAND_MAX + 1];
	char interpreter[POLICY_VERSION_COMMAND_MAX + 1];
	char error[256];          /* the policy did not load */
	struct lang_probe *probe; /* NULL: no version_command, or error */
};

struct lang_req {
	struct supervisor *s;
	struct conn *conn; /* NULL once the client went away */
	char req_id[PROTO_ID_MAX + 1];
	bool has_req_id;
	size_t n;
	bool truncated; /* more policies than LANG_POLICIES_MAX */
	struct lang_item items[LANG_POLICIES_MAX];
	struct lang_req *next;
};

/* ------------------------------------------------------------- probes */

static struct lang_probe *probe_find(struct supervisor *s, const char *hash,
				     const char *command)
{
	for (struct lang_probe *p = s->lang_probes; p; p = p->next)
		if (strcmp(p->hash, hash) == 0 &&
		    strcmp(p->command, command) == 0)
			return p;
	return NULL;
}

/* Room for one more: the least recently used answer no request waits
 * for goes. False when every one is running or awaited. */
static bool probe_room(struct supervisor *s)
{
	struct lang_probe **victim = NULL;
	size_t n = 0;

	for (struct lang_probe **pp = &s->lang_probes; *pp; pp = &(*pp)->next) {
		n++;
		if ((*pp)->over && (*pp)->waiters == 0 &&
		    (!victim || (*pp)->used < (*victim)->used))
			victim = pp;
	}
	if (n < LANG_PROBES_MAX)
		return true;
	if (!victim)
		return false;
	struct lang_probe *gone = *victim;
	*victim = gone->next;
	free(gone);
	return true;
}

/* Over: keep the answer, stop watching, free the jail. */
static void probe_over(struct supervisor *s, struct lang_probe *p)
{
	p->status = sandbox_probe_result(p->probe, p->text);
	p->over = true;
	if (p->src.fd >= 0)
		(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, p->src.fd, NULL);
	p->src.fd = -1;
	sandbox_probe_free(p->probe);
	p->probe = NULL;
	LOG(LOG_INFO, NULL, 0, "languages: %s: %s: %s", p->command,
	    sandbox_version_name(p->status), p->text);
}

/* The answer for `policy` (hash, command): kept, running, or started. */
static struct lang_probe *probe_get(struct supervisor *s,
				    const struct sup_policy *pol,
				    struct al_error *err)
{
	const char *command = policy_version_command(pol->policy);
	struct lang_probe *p = probe_find(s, pol->hash, command);

	if (p) {
		p->used = ++s->lang_clock;
		return p;
	}
	if (!probe_room(s)) {
		al_error_set(err, EAGAIN, "too many version probes at once");
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		al_error_sys(err, ENOMEM, "version probe");
		return NULL;
	}
	p->src.kind = SRC_LANG;
	p->src.fd = -1;
	snprintf(p->hash, sizeof(p->hash), "%s", pol->hash);
	snprintf(p->command, sizeof(p->command), "%s", command);
	p->used = ++s->lang_clock;
	if (sandbox_probe_start(s->host, pol->policy, &p->probe, err) < 0) {
		/* not kept: a jail that could not start (no free uid, a
		 * cgroup) says nothing about the interpreter */
		free(p);
		return NULL;
	}
	p->next = s->lang_probes;
	s->lang_probes = p;
	if (sandbox_probe_step(p->probe)) {
		probe_over(s, p);
		return p;
	}
	p->src.fd = sandbox_probe_fd(p->probe);
	if (loop_watch(s, &p->src, EPOLLIN) < 0) {
		LOG(LOG_ERROR, NULL, 0, "languages: epoll_ctl: %s",
		    strerror(errno));
		p->src.fd = -1;
	}
	return p;
}

/* ----------------------------------------------------------- requests */

static void item_fill(struct supervisor *s, struct lang_item *it,
		      const char *name)
{
	struct al_error err = { 0 };
	char words[POLICY_VERSION_COMMAND_MAX + 1];
	char *argv[POLICY_VERSION_ARGS_MAX + 1];
	struct sup_policy *pol = sup_policy_get(s, name, &err);

	snprintf(it->policy, sizeof(it->policy), "%s", name);
	if (!pol) {
		snprintf(it->error, sizeof(it->error), "%.255s", err.msg);
		return;
	}
	snprintf(it->description, sizeof(it->description), "%s",
		 policy_description(pol->policy));
	if (policy_version_argv(pol->policy, words, argv) > 0) {
		snprintf(it->command, sizeof(it->command), "%s",
			 policy_version_command(pol->policy));
		snprintf(it->interpreter, sizeof(it->interpreter), "%s",
			 argv[0]);
		it->probe = probe_get(s, pol, &err);
		/* held from now on: a later item's probe_get() evicts no
		 * answer this request still shows */
		if (it->probe)
			it->probe->waiters++;
		else
			snprintf(it->error, sizeof(it->error), "%.255s",
				 err.msg);
	}
	sup_policy_put(s, pol);
}

static void item_json(struct json_buf *jb, const struct lang_item *it)
{
	struct proto_language l = {
		.policy = it->policy,
		.description = it->description,
		.command = it->command[0] ? it->command : NULL,
		.interpreter = it->interpreter[0] ? it->interpreter : NULL,
		.status = "none",
	};

	if (it->probe && it->probe->over) {
		l.status = sandbox_version_name(it->probe->status);
		if (it->probe->status == SANDBOX_VERSION_OK)
			l.version = it->probe->text;
		else
			l.detail = it->probe->text;
	} else if (it->error[0]) {
		/* the policy did not load, or its probe could not start */
		l.status = it->command[0] ? "failed" : "error";
		l.detail = it->error;
	}
	proto_language_json(jb, &l);
}

static bool req_ready(const struct lang_req *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->items[i].probe && !r->items[i].probe->over)
			return false;
	return true;
}

static void req_answer(struct supervisor *s, struct lang_req *r, bool waited)
{
	struct json_buf jb;
	struct conn *c = r->conn;

	if (!c)
		return;
	json_buf_init(&jb);
	proto_response_ok(&jb, r->has_req_id ? r->req_id : NULL);
	json_key(&jb, "languages");
	json_array_open(&jb);
	for (size_t i = 0; i < r->n; i++)
		item_json(&jb, &r->items[i]);
	json_array_close(&jb);
	json_kv_bool(&jb, "truncated", r->truncated);
	json_object_close(&jb);
	conn_send_jb(s, c, &jb);
	if (waited)
		conn_request_done(s, c);
}

static void req_release(struct lang_req *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->items[i].probe && r->items[i].probe->waiters)
			r->items[i].probe->waiters--;
	free(r);
}

/* policy_list_trusted()'s callback: one entry per name. */
static void collect(const char *name, const char *path, void *arg)
{
	struct lang_req *r = arg;

	(void)path;
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->items[i].policy, name) == 0)
			return;
	if (r->n == LANG_POLICIES_MAX) {
		r->truncated = true;
		return;
	}
	item_fill(r->s, &r->items[r->n++], name);
}

int languages_request(struct supervisor *s, struct conn *c, const char *id,
		      struct al_error *err)
{
	unsigned pending = 0;

	for (struct lang_req *w = s->lang_reqs; w; w = w->next)
		pending++;
	if (pending >= LANG_PENDING_MAX)
		return al_error_set(err, EAGAIN,
				    "%u languages requests are waiting for "
				    "their version probes; ask again shortly",
				    pending);
	struct lang_req *r = calloc(1, sizeof(*r));
	if (!r)
		return al_error_sys(err, ENOMEM, "languages");
	r->s = s;
	r->conn = c;
	if (id) {
		snprintf(r->req_id, sizeof(r->req_id), "%s", id);
		r->has_req_id = true;
	}
	if (policy_list_trusted(collect, r) < 0)
		LOG(LOG_WARN, NULL, 0,
		    "languages: listing the policy path "
		    "failed");
	collect("default", NULL, r); /* built in when no file names it */
	if (req_ready(r)) {
		req_answer(s, r, false);
		req_release(r);
		return 0;
	}
	c->pending++;
	r->next = s->lang_reqs;
	s->lang_reqs = r;
	return 0;
}

void languages_handle(struct supervisor *s, struct lang_probe *p)
{
	if (p->over || !sandbox_probe_step(p->probe))
		return;
	probe_over(s, p);
	for (struct lang_req **rr = &s->lang_reqs; *rr;) {
		struct lang_req *r = *rr;
		if (!req_ready(r)) {
			rr = &r->next;
			continue;
		}
		*rr = r->next;
		req_answer(s, r, true);
		req_release(r);
	}
}

void languages_forget_conn(struct supervisor *s, struct conn *c)
{
	for (struct lang_req *r = s->lang_reqs; r; r = r->next)
		if (r->conn == c)
			r->conn = NULL;
}

void languages_free_all(struct supervisor *s)
{
	while (s->lang_reqs) {
		struct lang_req *r = s->lang_reqs;
		s->lang_reqs = r->next;
		req_release(r);
	}
	while (s->lang_probes) {
		struct lang_probe *p = s->lang_probes;
		s->lang_probes = p->next;
		sandbox_probe_free(p->probe); /* kills a probe still running */
		free(p);
	}
}
