/*
 * Results that outlive the connection: what a run leaves in the manifest
 * when it ends (its result object and the first --output-keep bytes of
 * each stream), and the `wait` and `result` ops that answer it later, to
 * any connection of the run's owners (docs/protocol.md, "wait",
 * "result").
 *
 * The result object is the one sandbox_result_write() gave the run's own
 * answer, kept as text with its stdout and stderr members null; an answer
 * puts the kept bytes back in (as text, as exec's answer has them) and
 * adds them base64 under "output", byte for byte.
 *
 * Waiters: a `wait` on a run that has not ended is a waiter on its
 * connection (pending, so it is not idle), answered when the run ends
 * (runs.c calls results_ended()), at its deadline (not_finished), or when
 * airlockd stops with the run not ended (shutting_down). A connection
 * that goes away takes its waiters with it; at most WAITERS_PER_CONN per
 * connection.
 *
 * Tenants: a run of a module the caller may not see is answered exactly
 * like a run that does not exist, in the same words.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/internal.h"

#define WAITERS_PER_CONN 64
#define WAIT_MAX_MS (10 * 60 * 1000)

/* What sandbox_result_write() writes for a result without output. */
#define OUTPUT_NULLS "\"stdout\":null,\"stderr\":null"

struct waiter {
	struct conn *conn;
	int64_t run_id;
	char req_id[PROTO_ID_MAX + 1];
	bool has_req_id;
	int64_t deadline_ms; /* now_ms() clock */
	struct waiter *next;
};

static void send_error(struct supervisor *s, struct conn *c, const char *id,
		       enum proto_error code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void send_error(struct supervisor *s, struct conn *c, const char *id,
		       enum proto_error code, const char *fmt, ...)
{
	char msg[AL_ERROR_MAX];
	struct json_buf jb;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_buf_init(&jb);
	proto_response_error(&jb, id, code, msg, 0);
	conn_send_jb(s, c, &jb);
}

/* ------------------------------------------------------------ keeping */

void results_keep(struct supervisor *s, int64_t run_id,
		  const struct sandbox_result *r,
		  const struct al_policy *policy, bool archived)
{
	struct al_error err = { 0 };
	struct sandbox_result frame = *r;
	size_t keep = (size_t)s->cfg.output_keep;
	struct json_buf jb;

	if (!run_id)
		return;
	/* the flags as an answer will have them: cut by the capture or by
	 * what is kept */
	frame.stdout_data = frame.stderr_data = NULL;
	frame.stdout_truncated |= r->stdout_len > keep;
	frame.stderr_truncated |= r->stderr_len > keep;
	json_buf_init(&jb);
	sandbox_result_write(&jb, &frame, policy, s->host);
	struct manifest_output_in in = {
		.result = jb.data,
		.archived = archived,
		.streams = { { .data = r->stdout_data,
			       .len = r->stdout_len,
			       .truncated = r->stdout_truncated },
			     { .data = r->stderr_data,
			       .len = r->stderr_len,
			       .truncated = r->stderr_truncated } },
		.keep = keep,
	};
	if (json_buf_failed(&jb))
		LOG(LOG_ERROR, NULL, run_id, "output: out of memory");
	else if (outage_keep_output(s, run_id, &in))
		; /* its finish waits for the manifest: so does the output */
	else if (manifest_output_put(s->m, run_id, &in, &err) < 0 &&
		 !(err.errnum == ENOTCONN &&
		   outage_keep_output(s, run_id, &in)))
		LOG(LOG_ERROR, NULL, run_id, "%s", err.msg);
	json_buf_free(&jb);
}

/* ----------------------------------------------------------- answering */

static void gone(struct supervisor *s, struct conn *c, const char *id,
		 int64_t run_id)
{
	if (s->cfg.retention_days)
		send_error(s, c, id, PROTO_E_NOT_FOUND,
			   "no run %lld (runs are kept %u days, "
			   "--retention-days: an older one may have been "
			   "removed by retention)",
			   (long long)run_id, s->cfg.retention_days);
	else
		send_error(s, c, id, PROTO_E_NOT_FOUND,
			   "no run %lld (runs are kept forever, "
			   "--retention-days 0)",
			   (long long)run_id);
}

/* The result text with the kept bytes back in place of OUTPUT_NULLS;
 * caller frees. NULL when out of memory, or when the kept text is not one
 * JSON object (a damaged row: an answer never carries invalid JSON). */
static char *result_text(const struct manifest_output *o)
{
	struct json_doc *doc = json_parse(o->result, strlen(o->result), NULL,
					  NULL);
	bool object = doc && json_root(doc)->type == JSON_OBJECT;
	const char *at = strstr(o->result, OUTPUT_NULLS);
	struct json_buf v[2];
	char *text = NULL;

	json_doc_free(doc);
	if (!object)
		return NULL;
	if (!at)
		return strdup(o->result);
	for (int k = 0; k < 2; k++) {
		json_buf_init(&v[k]);
		json_string_n(&v[k], (const char *)o->streams[k].data,
			      o->streams[k].len);
	}
	if (!json_buf_failed(&v[0]) && !json_buf_failed(&v[1]) &&
	    asprintf(&text, "%.*s\"stdout\":%s,\"stderr\":%s%s",
		     (int)(at - o->result), o->result, v[0].data, v[1].data,
		     at + strlen(OUTPUT_NULLS)) < 0)
		text = NULL;
	json_buf_free(&v[0]);
	json_buf_free(&v[1]);
	return text;
}

static void output_json(struct json_buf *jb, const struct manifest_output *o)
{
	static const char *const names[2] = { "stdout", "stderr" };

	json_key(jb, "output");
	json_object_open(jb);
	for (int k = 0; k < 2; k++) {
		const struct manifest_stream *st = &o->streams[k];
		_cleanup_free_ char *b64 = base64_encode(st->data, st->len);
		if (!b64)
			jb->failed = true;
		json_key(jb, names[k]);
		json_object_open(jb);
		json_kv_string(jb, "data", b64);
		json_kv_uint(jb, "size", st->size);
		json_kv_bool(jb, "truncated", st->truncated);
		json_object_close(jb);
	}
	json_object_close(jb);
}

static void send_result(struct supervisor *s, struct conn *c, const char *id,
			const struct manifest_run *run,
			const struct manifest_module *mod,
			const struct manifest_output *o)
{
	_cleanup_free_ char *text = result_text(o);
	struct json_buf jb;

	if (!text) {
		send_error(s, c, id, PROTO_E_INTERNAL,
			   "run %lld: its kept result is not a JSON object (a "
			   "damaged manifest row: airlock manifest check), or "
			   "memory ran out",
			   (long long)run->id);
		return;
	}
	json_buf_init(&jb);
	proto_response_ok(&jb, id);
	json_kv_int(&jb, "run", run->id);
	json_key(&jb, "module");
	manifest_module_json(&jb, mod);
	json_kv_bool(&jb, "archived", o->archived);
	json_key(&jb, "result");
	json_raw_value(&jb, text, strlen(text));
	output_json(&jb, o);
	json_object_close(&jb);
	conn_send_jb(s, c, &jb);
}

enum look { LOOK_ANSWERED, LOOK_RUNNING };

/* Answer run `run_id` to c if it has ended (or cannot be had); say
 * LOOK_RUNNING, sending nothing, when it has not ended. */
static enum look look(struct supervisor *s, struct conn *c, const char *id,
		      int64_t run_id)
{
	struct al_error err = { 0 };
	struct manifest_run run;
	struct manifest_module mod;
	struct manifest_output o;

	if (manifest_run_get(s->m, run_id, &run, &err) < 0 ||
	    manifest_get(s->m, run.module_id, &mod, &err) < 0) {
		if (err.errnum == ENOENT)
			gone(s, c, id, run_id);
		else
			send_error(s, c, id, PROTO_E_INTERNAL, "%s", err.msg);
		return LOOK_ANSWERED;
	}
	if (!tenant_may(c, &mod)) {
		gone(s, c, id, run_id); /* the same words as for no run */
		return LOOK_ANSWERED;
	}
	if (strcmp(run.verdict, "running") == 0)
		return LOOK_RUNNING;
	if (strcmp(run.verdict, "interrupted") == 0) {
		send_error(s, c, id, PROTO_E_INTERRUPTED,
			   "run %lld did not end on its own: airlockd stopped "
			   "(or it was cancelled) before it finished, and it "
			   "is recorded interrupted; run it again",
			   (long long)run_id);
		return LOOK_ANSWERED;
	}
	if (manifest_output_get(s->m, run_id, &o, &err) < 0) {
		if (err.errnum == ENOENT)
			send_error(s, c, id, PROTO_E_NOT_FOUND,
				   "run %lld ended (%s) but kept no output (a "
				   "run recorded before airlockd kept output, "
				   "or its output could not be written)",
				   (long long)run_id, run.verdict);
		else
			send_error(s, c, id, PROTO_E_INTERNAL, "%s", err.msg);
		return LOOK_ANSWERED;
	}
	send_result(s, c, id, &run, &mod, &o);
	manifest_output_free(&o);
	return LOOK_ANSWERED;
}

/* Where a run that has not ended is: "queued", "running", or elsewhere
 * (another airlockd on the same database). */
static const char *where_is(const struct supervisor *s, int64_t run_id)
{
	for (const struct job *j = s->active; j; j = j->next)
		if (j->run_id == run_id)
			return "running";
	for (const struct job *j = s->queue_head; j; j = j->next)
		if (j->run_id == run_id)
			return "queued";
	return "running elsewhere (not in this airlockd)";
}

static void not_finished(struct supervisor *s, struct conn *c, const char *id,
			 int64_t run_id, const char *after)
{
	send_error(s, c, id, PROTO_E_NOT_FINISHED,
		   "run %lld has not ended%s (%s); ask again, or \"wait\" "
		   "for it",
		   (long long)run_id, after, where_is(s, run_id));
}

/* ------------------------------------------------------------------ ops */

static bool run_of(struct supervisor *s, struct conn *c,
		   const struct proto_request *req)
{
	if (req->has_run && req->run > 0)
		return true;
	send_error(s, c, req->id, PROTO_E_BAD_REQUEST,
		   "%s needs \"run\": a run id (a positive integer, as exec "
		   "answered it)",
		   req->op);
	return false;
}

void results_op_result(struct supervisor *s, struct conn *c,
		       const struct proto_request *req)
{
	if (!run_of(s, c, req))
		return;
	if (look(s, c, req->id, req->run) == LOOK_RUNNING)
		not_finished(s, c, req->id, req->run, "");
}

/* "timeout": a duration with its unit, at most WAIT_MAX_MS; absent: the
 * most. -1 with the error sent. */
static int64_t wait_ms(struct supervisor *s, struct conn *c,
		       const struct proto_request *req)
{
	struct al_error err = { 0 };
	uint64_t us;
	const char *t = req->timeout;

	if (!t)
		return WAIT_MAX_MS;
	size_t n = strlen(t);
	if (n == 0 || (t[n - 1] >= '0' && t[n - 1] <= '9')) {
		send_error(s, c, req->id, PROTO_E_BAD_REQUEST,
			   "timeout: \"%s\" has no unit: write a duration "
			   "such as \"30s\" or \"2m\"",
			   t);
		return -1;
	}
	if (parse_duration_us(t, &us, &err) < 0) {
		send_error(s, c, req->id, PROTO_E_BAD_REQUEST, "timeout: %s",
			   err.msg);
		return -1;
	}
	if (us / 1000 > WAIT_MAX_MS) {
		send_error(s, c, req->id, PROTO_E_BAD_REQUEST,
			   "timeout: %s is longer than the most, 10m; wait "
			   "again for longer",
			   t);
		return -1;
	}
	return (int64_t)(us / 1000);
}

static unsigned waiters_of(const struct supervisor *s, const struct conn *c)
{
	unsigned n = 0;

	for (const struct waiter *w = s->waiters; w; w = w->next)
		n += w->conn == c;
	return n;
}

void results_op_wait(struct supervisor *s, struct conn *c,
		     const struct proto_request *req)
{
	if (!run_of(s, c, req))
		return;
	int64_t ms = wait_ms(s, c, req);
	if (ms < 0 || look(s, c, req->id, req->run) == LOOK_ANSWERED)
		return;
	if (ms == 0) {
		not_finished(s, c, req->id, req->run, "");
		return;
	}
	if (waiters_of(s, c) >= WAITERS_PER_CONN) {
		send_error(s, c, req->id, PROTO_E_OVERLOADED,
			   "this connection waits for %d runs already, the "
			   "most; wait on another connection or later",
			   WAITERS_PER_CONN);
		return;
	}
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w) {
		send_error(s, c, req->id, PROTO_E_INTERNAL, "out of memory");
		return;
	}
	w->conn = c;
	w->run_id = req->run;
	w->deadline_ms = now_ms() + ms;
	if (req->id) {
		snprintf(w->req_id, sizeof(w->req_id), "%s", req->id);
		w->has_req_id = true;
	}
	w->next = s->waiters;
	s->waiters = w;
	c->pending++;
}

/* ------------------------------------------------------------- waiters */

/* Unlink the first waiter `match` accepts; NULL when none. */
static struct waiter *
take(struct supervisor *s,
     bool (*match)(const struct waiter *w, const void *arg), const void *arg)
{
	for (struct waiter **pp = &s->waiters; *pp; pp = &(*pp)->next)
		if (match(*pp, arg)) {
			struct waiter *w = *pp;
			*pp = w->next;
			return w;
		}
	return NULL;
}

static bool of_run(const struct waiter *w, const void *arg)
{
	return w->run_id == *(const int64_t *)arg;
}

static bool of_conn(const struct waiter *w, const void *arg)
{
	return w->conn == arg;
}

static bool past(const struct waiter *w, const void *arg)
{
	return w->deadline_ms <= *(const int64_t *)arg;
}

static bool any(const struct waiter *w, const void *arg)
{
	return true;
}

/* Answer one waiter taken off the list (sending may close its
 * connection, which drops the others of that connection: hence one at a
 * time, from the list's head). */
static void done(struct supervisor *s, struct waiter *w)
{
	struct conn *c = w->conn;

	conn_request_done(s, c);
	free(w);
}

void results_ended(struct supervisor *s, int64_t run_id)
{
	struct waiter *w;

	while ((w = take(s, of_run, &run_id))) {
		const char *id = w->has_req_id ? w->req_id : NULL;
		if (look(s, w->conn, id, run_id) == LOOK_RUNNING)
			not_finished(s, w->conn, id, run_id,
				     " (its end could not be recorded)");
		done(s, w);
	}
}

void results_expire(struct supervisor *s)
{
	int64_t now = now_ms();
	struct waiter *w;

	while ((w = take(s, past, &now))) {
		const char *id = w->has_req_id ? w->req_id : NULL;
		/* one last look: a run this daemon does not hold (its row
		 * says running) may have ended by other means */
		if (look(s, w->conn, id, w->run_id) == LOOK_RUNNING)
			not_finished(s, w->conn, id, w->run_id,
				     " by the wait's deadline");
		done(s, w);
	}
}

int64_t results_next_deadline(const struct supervisor *s)
{
	int64_t next = -1;

	for (const struct waiter *w = s->waiters; w; w = w->next)
		if (next < 0 || w->deadline_ms < next)
			next = w->deadline_ms;
	return next;
}

void results_forget_conn(struct supervisor *s, struct conn *c)
{
	struct waiter *w;

	while ((w = take(s, of_conn, c)))
		free(w);
}

void results_stop(struct supervisor *s)
{
	struct waiter *w;

	while ((w = take(s, any, NULL))) {
		send_error(s, w->conn, w->has_req_id ? w->req_id : NULL,
			   PROTO_E_SHUTTING_DOWN,
			   "airlockd is stopping and run %lld has not ended "
			   "here; wait for it again once airlockd is back",
			   (long long)w->run_id);
		done(s, w);
	}
}
