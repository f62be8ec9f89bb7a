/*
 * The protocol codec: request members checked against one table, error
 * codes, response framing. Pure code shared by airlockd and the
 * airlock client (docs/protocol.md is the reference).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/manifest.h"
#include "policy/policy.h"
#include "supervisor/protocol.h"

_Static_assert(PROTO_MAX_ENV == POLICY_REQUEST_ENV_MAX &&
		       PROTO_ENV_VALUE_MAX == POLICY_REQUEST_ENV_VALUE_MAX &&
		       PROTO_CWD_MAX == POLICY_CWD_MAX,
	       "the codec's bounds are the policy's");

static const char *const error_names[PROTO_E_COUNT] = {
	[PROTO_E_BAD_REQUEST] = "bad_request",
	[PROTO_E_TOO_LARGE] = "too_large",
	[PROTO_E_UNKNOWN_OP] = "unknown_op",
	[PROTO_E_UNAUTHORIZED] = "unauthorized",
	[PROTO_E_RATE_LIMITED] = "rate_limited",
	[PROTO_E_OVERLOADED] = "overloaded",
	[PROTO_E_NOT_FOUND] = "not_found",
	[PROTO_E_ARCHIVED] = "archived",
	[PROTO_E_REJECTED] = "rejected",
	[PROTO_E_CONFLICT] = "conflict",
	[PROTO_E_BAD_POLICY] = "bad_policy",
	[PROTO_E_SHUTTING_DOWN] = "shutting_down",
	[PROTO_E_INTERNAL] = "internal",
	[PROTO_E_CANCELLED] = "cancelled",
	[PROTO_E_STORAGE_FULL] = "storage_full",
	[PROTO_E_INTERRUPTED] = "interrupted",
	[PROTO_E_NOT_FINISHED] = "not_finished",
	[PROTO_E_UNAVAILABLE] = "unavailable",
};

const char *proto_error_name(enum proto_error e)
{
	return (unsigned)e < PROTO_E_COUNT ? error_names[e] : "internal";
}

/* ------------------------------------------------------------- requests */

enum member_kind { M_STRING, M_STRINGS, M_INT, M_BOOL, M_ID, M_ENV };

/* Every member a request may have: its JSON type, its bound, where it
 * goes. Anything else in a request is refused. */
static const struct member {
	const char *name;
	enum member_kind kind;
	size_t max; /* string bytes, array elements, or largest integer */
	size_t off; /* offset of the value in struct proto_request */
	size_t aux; /* M_STRING: offset of the length, or SIZE_MAX;
		       M_STRINGS: offset of the count;
		       M_INT, M_BOOL: offset of its "given" flag, or
		       SIZE_MAX */
} members[] = {
#define R(f) offsetof(struct proto_request, f)
	{ "op", M_STRING, PROTO_OP_MAX, R(op), SIZE_MAX },
	{ "id", M_ID, PROTO_ID_MAX, R(id), SIZE_MAX },
	{ "name", M_STRING, 128, R(name), SIZE_MAX },
	{ "policy", M_STRING, 4096, R(policy), SIZE_MAX },
	{ "content", M_STRING, SIZE_MAX, R(content), R(content_len) },
	{ "content_fd", M_BOOL, 1, R(content_fd), SIZE_MAX },
	{ "wait", M_BOOL, 1, R(wait), R(has_wait) },
	{ "timeout", M_STRING, 32, R(timeout), SIZE_MAX },
	{ "stdin", M_STRING, SIZE_MAX, R(stdin_data), R(stdin_len) },
	{ "reason", M_STRING, 1023, R(reason), SIZE_MAX },
	{ "args", M_STRINGS, PROTO_MAX_ARGS, R(args), R(nargs) },
	{ "validate_args", M_STRINGS, PROTO_MAX_ARGS, R(validate_args),
	  R(nvalidate_args) },
	{ "run", M_INT, INT64_MAX, R(run), R(has_run) },
	{ "version", M_INT, INT64_MAX, R(version), R(has_version) },
	{ "limit", M_INT, 100000, R(limit), SIZE_MAX },
	{ "uid", M_INT, UINT32_MAX - 1, R(uid), R(has_uid) },
	{ "after", M_INT, INT64_MAX, R(after), SIZE_MAX },
	{ "since", M_STRING, 64, R(since), SIZE_MAX },
	{ "group", M_STRING, 64, R(group), SIZE_MAX },
	{ "memory", M_STRING, 32, R(memory), SIZE_MAX },
	{ "pids", M_INT, INT64_MAX, R(pids), R(has_pids) },
	{ "env", M_ENV, PROTO_MAX_ENV, R(env_names), R(nenv) },
	{ "cwd", M_STRING, PROTO_CWD_MAX, R(cwd), SIZE_MAX },
	{ "kind", M_STRING, 16, R(kind), SIZE_MAX },
	{ "entry", M_STRING, MANIFEST_ENTRY_MAX, R(entry), SIZE_MAX },
	{ "build", M_STRING, MANIFEST_BUILD_MAX, R(build), SIZE_MAX },
#undef R
};

/* What a member of the wrong type is told, where its kind's own words
 * ("expected a string") would not say what to send. */
static const struct {
	const char *name, *expected;
} member_hints[] = {
	{ "timeout", "expected a duration string with a unit, such as \"2s\"" },
	{ "memory", "expected a size string, such as \"64M\"" },
	{ "pids", "expected a whole number of processes, at least 1" },
};

static const char *expected(const struct member *m, const char *plain)
{
	for (size_t i = 0; i < ARRAY_SIZE(member_hints); i++)
		if (strcmp(member_hints[i].name, m->name) == 0)
			return member_hints[i].expected;
	return plain;
}

#define FIELD(req, off, type) ((type *)((char *)(req) + (off)))

static int bad(struct al_error *err, const char *member, const char *what)
{
	return al_error_set(err, EINVAL, "member \"%s\": %s", member, what);
}

static int decode_string(const struct member *m, const struct json_node *n,
			 struct proto_request *req, struct al_error *err)
{
	if (n->type != JSON_STRING)
		return bad(err, m->name, expected(m, "expected a string"));
	if (n->len > m->max)
		return bad(err, m->name, "too long");
	if (m->aux == SIZE_MAX && memchr(n->str, '\0', n->len))
		return bad(err, m->name, "contains a NUL character");
	*FIELD(req, m->off, const char *) = n->str;
	if (m->aux != SIZE_MAX)
		*FIELD(req, m->aux, size_t) = n->len;
	return 0;
}

static int decode_strings(const struct json_doc *doc, const struct member *m,
			  const struct json_node *n, struct proto_request *req,
			  struct al_error *err)
{
	const char **out = FIELD(req, m->off, const char *);
	size_t count = 0;

	if (n->type != JSON_ARRAY)
		return bad(err, m->name, "expected an array of strings");
	if (n->count > m->max)
		return bad(err, m->name, "too many elements");
	for (const struct json_node *e = json_first(doc, n); e;
	     e = json_next(doc, e)) {
		if (e->type != JSON_STRING)
			return bad(err, m->name,
				   "expected an array of strings");
		if (memchr(e->str, '\0', e->len))
			return bad(err, m->name, "contains a NUL character");
		out[count++] = e->str;
	}
	out[count] = NULL;
	*FIELD(req, m->aux, size_t) = count;
	return 0;
}

/* One "NAME": "value" of exec's env; `prev` are the names taken so far. */
static int env_entry(const struct json_node *e, const char *const *prev,
		     size_t nprev, struct al_error *err)
{
	if (strlen(e->key) != e->key_len || !policy_env_name_valid(e->key))
		return al_error_set(err, EINVAL,
				    "member \"env\": \"%.64s\" is not a "
				    "variable name (letters, digits and '_', "
				    "not starting with a digit, at most %d "
				    "characters)",
				    e->key, POLICY_ENV_NAME_MAX);
	if (e->type != JSON_STRING)
		return al_error_set(err, EINVAL,
				    "member \"env\": the value of %s is not "
				    "a string",
				    e->key);
	if (e->len > PROTO_ENV_VALUE_MAX)
		return al_error_set(err, EINVAL,
				    "member \"env\": the value of %s is "
				    "longer than %d bytes",
				    e->key, PROTO_ENV_VALUE_MAX);
	if (memchr(e->str, '\0', e->len))
		return al_error_set(err, EINVAL,
				    "member \"env\": the value of %s "
				    "contains a NUL character",
				    e->key);
	for (size_t k = 0; k < nprev; k++)
		if (strcmp(prev[k], e->key) == 0)
			return al_error_set(err, EINVAL,
					    "member \"env\": %s is given "
					    "twice",
					    e->key);
	return 0;
}

static int decode_env(const struct json_doc *doc, const struct member *m,
		      const struct json_node *n, struct proto_request *req,
		      struct al_error *err)
{
	size_t count = 0;

	if (n->type != JSON_OBJECT)
		return bad(err, m->name,
			   "expected an object of \"NAME\": \"value\" "
			   "strings");
	if (n->count > m->max)
		return al_error_set(err, EINVAL,
				    "member \"env\": %u variables; at most "
				    "%zu",
				    n->count, m->max);
	for (const struct json_node *e = json_first(doc, n); e;
	     e = json_next(doc, e)) {
		if (env_entry(e, req->env_names, count, err) < 0)
			return -1;
		req->env_names[count] = e->key;
		req->env_values[count++] = e->str;
	}
	req->nenv = count;
	req->has_env = true;
	return 0;
}

static int decode_member(const struct json_doc *doc, const struct member *m,
			 const struct json_node *n, struct proto_request *req,
			 struct al_error *err)
{
	switch (m->kind) {
	case M_ID: return 0; /* done first, in proto_request_decode() */
	case M_STRING: return decode_string(m, n, req, err);
	case M_STRINGS: return decode_strings(doc, m, n, req, err);
	case M_ENV: return decode_env(doc, m, n, req, err);
	case M_BOOL:
		if (n->type != JSON_BOOL)
			return bad(err, m->name, "expected true or false");
		*FIELD(req, m->off, bool) = n->i != 0;
		if (m->aux != SIZE_MAX)
			*FIELD(req, m->aux, bool) = true;
		return 0;
	case M_INT:
		if (n->type != JSON_INT || n->i < 0 ||
		    (uint64_t)n->i > (uint64_t)m->max)
			return bad(err, m->name,
				   expected(m, "expected a non-negative "
					       "integer in range"));
		*FIELD(req, m->off, int64_t) = n->i;
		if (m->aux != SIZE_MAX)
			*FIELD(req, m->aux, bool) = true;
		return 0;
	}
	return bad(err, m->name, "unknown kind");
}

int proto_request_decode(const struct json_doc *doc, struct proto_request *req,
			 struct al_error *err)
{
	const struct json_node *root = json_root(doc);

	memset(req, 0, sizeof(*req));
	if (root->type != JSON_OBJECT)
		return al_error_set(err, EINVAL,
				    "a request is a JSON object, not %s",
				    json_type_name(root->type));
	/* the id first, so that any later error can echo it */
	const struct json_node *id = json_get(doc, root, "id");
	if (id && id->type == JSON_STRING && id->len <= PROTO_ID_MAX &&
	    !memchr(id->str, '\0', id->len))
		req->id = id->str;
	else if (id)
		return bad(err, "id", "expected a string of at most 64 bytes");

	for (const struct json_node *n = json_first(doc, root); n;
	     n = json_next(doc, n)) {
		const struct member *m = NULL;
		for (size_t k = 0; k < ARRAY_SIZE(members); k++)
			if (strlen(members[k].name) == n->key_len &&
			    memcmp(members[k].name, n->key, n->key_len) == 0)
				m = &members[k];
		if (!m)
			return al_error_set(err, EINVAL,
					    "unknown member \"%.64s\"", n->key);
		if (decode_member(doc, m, n, req, err) < 0)
			return -1;
	}
	if (!req->op)
		return al_error_set(err, EINVAL, "member \"op\" is missing");
	if (req->cwd && policy_cwd_check(req->cwd, err) < 0)
		return al_error_prefix(err, "member \"cwd\"");
	return 0;
}

bool proto_request_has_run_options(const struct proto_request *req)
{
	return req->timeout || req->memory || req->has_pids || req->has_env ||
	       req->cwd;
}

/* ------------------------------------------------------------ responses */

void proto_response_ok(struct json_buf *jb, const char *id)
{
	json_object_open(jb);
	json_kv_bool(jb, "ok", true);
	if (id)
		json_kv_string(jb, "id", id);
}

void proto_response_error(struct json_buf *jb, const char *id,
			  enum proto_error code, const char *message,
			  int64_t retry_after_ms)
{
	json_object_open(jb);
	json_kv_bool(jb, "ok", false);
	if (id)
		json_kv_string(jb, "id", id);
	json_key(jb, "error");
	json_object_open(jb);
	json_kv_string(jb, "code", proto_error_name(code));
	json_kv_string(jb, "message", message);
	if (retry_after_ms > 0)
		json_kv_int(jb, "retry_after_ms", retry_after_ms);
	json_object_close(jb);
	json_object_close(jb);
}

/* ---------------------------------------------------------------- events */

void proto_event_json(struct json_buf *jb, const struct manifest_feed_event *ev)
{
	char t[MANIFEST_TIME_MAX];

	manifest_time_format(ev->time_ms, true, t);
	json_object_open(jb);
	json_kv_int(jb, "id", ev->id);
	json_kv_string(jb, "time", t);
	json_kv_int(jb, "time_ms", ev->time_ms);
	json_kv_string(jb, "kind", ev->kind);
	if (ev->module_name[0]) {
		json_kv_string(jb, "module", ev->module_name);
		json_kv_int(jb, "version", ev->module_version);
	}
	if (ev->run_id)
		json_kv_int(jb, "run", ev->run_id);
	if (ev->has_uid)
		json_kv_uint(jb, "uid", ev->uid);
	if (ev->verdict[0])
		json_kv_string(jb, "verdict", ev->verdict);
	if (ev->detail[0])
		json_kv_string(jb, "detail", ev->detail);
	json_object_close(jb);
}

void proto_language_json(struct json_buf *jb, const struct proto_language *l)
{
	json_object_open(jb);
	json_kv_string(jb, "policy", l->policy);
	json_kv_string(jb, "description",
		       l->description && *l->description ? l->description
							 : NULL);
	json_kv_string(jb, "interpreter", l->interpreter);
	json_kv_string(jb, "version_command", l->command);
	json_kv_string(jb, "status", l->status);
	json_kv_string(jb, "version", l->version);
	json_kv_string(jb, "detail", l->detail);
	json_object_close(jb);
}
