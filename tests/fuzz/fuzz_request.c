/*
 * libFuzzer target for what airlockd does with a client's line before any
 * op sees it: the bounded JSON reader (common/json_read.c) with the
 * daemon's own limits, the request decoder (supervisor/protocol.c), and
 * the member parsers every op shares (base64 "content", "since").
 *
 * Each input is one request line. Whatever it holds, nothing may crash,
 * leak or misbehave under ASan/UBSan, and:
 *
 *   - a refusal says why;
 *   - an accepted document stays within the limits it was parsed under,
 *     and writing it back with the daemon's JSON writer (common/json.c)
 *     gives text that parses to the same tree (strings byte for byte when
 *     they were valid UTF-8; the writer's U+FFFD otherwise), and writing
 *     that again gives the same text;
 *   - an accepted request keeps every member within the request table's
 *     bounds, and its canonical line decodes to the same request;
 *   - valid base64 content encodes back to text that decodes to the same
 *     bytes;
 *   - exec's per-run options held to a policy (policy_tighten()) either
 *     give a run no looser than the policy or are refused with a message.
 *
 * Built and run by tests/fuzz/run.sh; seeds in tests/fuzz/request/ (one
 * valid request of every op), dictionary tests/fuzz/request.dict.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/manifest.h"
#include "policy/policy.h"
#include "supervisor/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct json_limits limits = {
	.max_nodes = PROTO_REQUEST_MAX_NODES,
	.max_depth = PROTO_REQUEST_MAX_DEPTH,
};

static void broken(const char *what, const char *detail)
	__attribute__((noreturn));

/* Say what broke, then abort(): libFuzzer keeps the input that did it. */
static void broken(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_request: %s: %s\n", what, detail ? detail : "");
	abort();
}

/* Whether the writer passes these bytes through unchanged: well-formed
 * UTF-8, no overlong forms, surrogates or code points past U+10FFFF
 * (the rules json_string_n() states). */
static bool valid_utf8(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	for (size_t i = 0; i < n;) {
		unsigned c = s[i];
		size_t len = c < 0x80                 ? 1
			     : c >= 0xc2 && c <= 0xdf ? 2
			     : c >= 0xe0 && c <= 0xef ? 3
			     : c >= 0xf0 && c <= 0xf4 ? 4
						      : 0;
		if (!len || i + len > n)
			return false;
		unsigned cp = len == 1 ? c : c & (0x7f >> len);
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += len;
	}
	return true;
}

/* ------------------------------------------------------ document trees */

/* The node written back. Fractions and exponents are written as null:
 * the writer's fixed-point form is neither exact nor bounded in length. */
static void write_node(struct json_buf *jb, const struct json_doc *doc,
		       const struct json_node *n)
{
	switch (n->type) {
	case JSON_NULL:
	case JSON_NUMBER: json_null(jb); return;
	case JSON_BOOL: json_bool(jb, n->i != 0); return;
	case JSON_INT: json_int(jb, n->i); return;
	case JSON_STRING: json_string_n(jb, n->str, n->len); return;
	case JSON_ARRAY:
	case JSON_OBJECT: break;
	}
	bool object = n->type == JSON_OBJECT;
	if (object)
		json_object_open(jb);
	else
		json_array_open(jb);
	for (const struct json_node *c = json_first(doc, n); c;
	     c = json_next(doc, c)) {
		if (object)
			json_key(jb, c->key);
		write_node(jb, doc, c);
	}
	if (object)
		json_object_close(jb);
	else
		json_array_close(jb);
}

static char *write_doc(const struct json_doc *doc)
{
	struct json_buf jb;
	json_buf_init(&jb);
	write_node(&jb, doc, json_root(doc));
	if (json_buf_failed(&jb))
		broken("the writer failed", "out of memory");
	return json_buf_steal(&jb);
}

/* A string as written and read back: itself when valid UTF-8, else
 * something the writer made valid. */
static void same_string(const char *what, const char *a, size_t alen,
			const char *b, size_t blen)
{
	if (valid_utf8(a, alen)) {
		if (alen != blen || memcmp(a, b, alen) != 0)
			broken("a string changed in the round trip", what);
	} else if (!valid_utf8(b, blen)) {
		broken("the writer let invalid UTF-8 through", what);
	}
}

/* Checks the limits on `a` and that `b` (its text written and parsed
 * back) is the same tree. Keys with a NUL cannot be written by
 * json_key() and are not compared. */
static void same_tree(const struct json_doc *da, const struct json_node *a,
		      const struct json_doc *db, const struct json_node *b,
		      unsigned depth)
{
	if (depth > PROTO_REQUEST_MAX_DEPTH + 1)
		broken("the parser went past its depth limit", NULL);
	bool number_as_null = a->type == JSON_NUMBER && b->type == JSON_NULL;
	if (a->type != b->type && !number_as_null)
		broken("a value changed type in the round trip",
		       json_type_name(a->type));
	if ((a->type == JSON_INT || a->type == JSON_BOOL) && a->i != b->i)
		broken("an integer changed in the round trip", NULL);
	if (a->type == JSON_STRING) {
		if (a->str[a->len] != '\0')
			broken("a string is not NUL-terminated", NULL);
		same_string("string value", a->str, a->len, b->str, b->len);
	}
	if (a->type != JSON_ARRAY && a->type != JSON_OBJECT)
		return;
	if (a->count != b->count)
		broken("a container changed size in the round trip", NULL);
	const struct json_node *ca = json_first(da, a), *cb = json_first(db, b);
	uint32_t seen = 0;
	for (; ca && cb; ca = json_next(da, ca), cb = json_next(db, cb)) {
		seen++;
		if (a->type == JSON_OBJECT &&
		    !memchr(ca->key, '\0', ca->key_len))
			same_string("member name", ca->key, ca->key_len,
				    cb->key, cb->key_len);
		same_tree(da, ca, db, cb, depth + 1);
	}
	if (ca || cb || seen != a->count)
		broken("a container's count does not match its children", NULL);
}

static bool has_nul_key(const struct json_doc *doc, const struct json_node *n)
{
	for (const struct json_node *c = json_first(doc, n); c;
	     c = json_next(doc, c))
		if ((c->key && memchr(c->key, '\0', c->key_len)) ||
		    has_nul_key(doc, c))
			return true;
	return false;
}

static void check_document(const struct json_doc *doc)
{
	struct al_error err = { 0 };

	if (has_nul_key(doc, json_root(doc)))
		return;
	char *text = write_doc(doc);
	struct json_doc *back = json_parse(text, strlen(text), &limits, &err);
	if (!back) {
		fprintf(stderr, "--- written ---\n%s\n", text);
		broken("the written document does not parse", err.msg);
	}
	same_tree(doc, json_root(doc), back, json_root(back), 1);
	char *again = write_doc(back);
	if (strcmp(text, again) != 0) {
		fprintf(stderr, "--- first ---\n%s\n--- second ---\n%s\n", text,
			again);
		broken("writing the document is not idempotent", NULL);
	}
	free(again);
	json_doc_free(back);
	free(text);
}

/* ------------------------------------------------------------- requests */

static void bounded(const char *what, const char *s, size_t len, size_t max,
		    bool nul_allowed)
{
	if (!s)
		return;
	if (len > max)
		broken("a member is over its bound", what);
	if (!nul_allowed && strlen(s) != len)
		broken("a member holds a NUL", what);
}

static void check_bounds(const struct proto_request *r)
{
	if (!r->op)
		broken("an accepted request has no op", NULL);
	bounded("op", r->op, strlen(r->op), PROTO_OP_MAX, false);
	bounded("id", r->id, r->id ? strlen(r->id) : 0, PROTO_ID_MAX, false);
	bounded("name", r->name, r->name ? strlen(r->name) : 0, 128, false);
	bounded("since", r->since, r->since ? strlen(r->since) : 0, 64, false);
	bounded("group", r->group, r->group ? strlen(r->group) : 0, 64, false);
	if (r->nargs > PROTO_MAX_ARGS || r->args[r->nargs] ||
	    r->nvalidate_args > PROTO_MAX_ARGS ||
	    r->validate_args[r->nvalidate_args])
		broken("an argument list is over its bound or unterminated",
		       NULL);
	for (size_t i = 0; i < r->nargs; i++)
		if (!r->args[i])
			broken("an argument is missing", "args");
	for (size_t i = 0; i < r->nvalidate_args; i++)
		if (!r->validate_args[i])
			broken("an argument is missing", "validate_args");
	bounded("timeout", r->timeout, r->timeout ? strlen(r->timeout) : 0, 32,
		false);
	bounded("memory", r->memory, r->memory ? strlen(r->memory) : 0, 32,
		false);
	bounded("cwd", r->cwd, r->cwd ? strlen(r->cwd) : 0, PROTO_CWD_MAX,
		false);
	if (r->nenv > PROTO_MAX_ENV || (r->nenv && !r->has_env))
		broken("env is over its bound", NULL);
	for (size_t i = 0; i < r->nenv; i++) {
		bounded("env name", r->env_names[i], strlen(r->env_names[i]),
			POLICY_ENV_NAME_MAX, false);
		bounded("env value", r->env_values[i], strlen(r->env_values[i]),
			PROTO_ENV_VALUE_MAX, false);
		if (!policy_env_name_valid(r->env_names[i]))
			broken("an env name is not a plain name",
			       r->env_names[i]);
	}
	if (r->cwd && policy_cwd_check(r->cwd, NULL) < 0)
		broken("an accepted cwd breaks the cwd rule", r->cwd);
	if (r->pids < 0 || r->run < 0 || r->version < 0 || r->limit < 0 ||
	    r->limit > 100000 || r->uid < 0 ||
	    r->uid > (int64_t)UINT32_MAX - 1 || r->after < 0)
		broken("an integer member is out of range", NULL);
}

static void kv_opt(struct json_buf *jb, const char *key, const char *s)
{
	if (s)
		json_kv_string(jb, key, s);
}

static void kv_strings(struct json_buf *jb, const char *key,
		       const char *const *v, size_t n)
{
	json_key(jb, key);
	json_array_open(jb);
	for (size_t i = 0; i < n; i++)
		json_string(jb, v[i]);
	json_array_close(jb);
}

/* The request as the airlock client would write it. */
static char *canonical(const struct proto_request *r)
{
	struct json_buf jb;
	json_buf_init(&jb);
	json_object_open(&jb);
	kv_opt(&jb, "op", r->op);
	kv_opt(&jb, "id", r->id);
	kv_opt(&jb, "name", r->name);
	kv_opt(&jb, "policy", r->policy);
	if (r->content) {
		json_key(&jb, "content");
		json_string_n(&jb, r->content, r->content_len);
	}
	if (r->content_fd)
		json_kv_bool(&jb, "content_fd", true);
	if (r->stdin_data) {
		json_key(&jb, "stdin");
		json_string_n(&jb, r->stdin_data, r->stdin_len);
	}
	kv_opt(&jb, "reason", r->reason);
	if (r->nargs)
		kv_strings(&jb, "args", r->args, r->nargs);
	if (r->nvalidate_args)
		kv_strings(&jb, "validate_args", r->validate_args,
			   r->nvalidate_args);
	if (r->has_run)
		json_kv_int(&jb, "run", r->run);
	if (r->version)
		json_kv_int(&jb, "version", r->version);
	if (r->limit)
		json_kv_int(&jb, "limit", r->limit);
	if (r->has_uid)
		json_kv_int(&jb, "uid", r->uid);
	if (r->after)
		json_kv_int(&jb, "after", r->after);
	kv_opt(&jb, "since", r->since);
	kv_opt(&jb, "group", r->group);
	kv_opt(&jb, "timeout", r->timeout);
	kv_opt(&jb, "memory", r->memory);
	if (r->has_pids)
		json_kv_int(&jb, "pids", r->pids);
	if (r->has_env) {
		json_key(&jb, "env");
		json_object_open(&jb);
		for (size_t i = 0; i < r->nenv; i++)
			json_kv_string(&jb, r->env_names[i], r->env_values[i]);
		json_object_close(&jb);
	}
	kv_opt(&jb, "cwd", r->cwd);
	json_object_close(&jb);
	if (json_buf_failed(&jb))
		broken("the writer failed", "out of memory");
	return json_buf_steal(&jb);
}

static void same_member(const char *what, const char *a, size_t alen,
			const char *b, size_t blen)
{
	if (!a != !b)
		broken("a member appeared or vanished in the round trip", what);
	if (a)
		same_string(what, a, alen, b, blen);
}

#define SAME_STR(f)                                                            \
	same_member(#f, a->f, a->f ? strlen(a->f) : 0, b->f,                   \
		    b->f ? strlen(b->f) : 0)

static void same_request(const struct proto_request *a,
			 const struct proto_request *b)
{
	SAME_STR(op);
	SAME_STR(id);
	SAME_STR(name);
	SAME_STR(policy);
	SAME_STR(reason);
	SAME_STR(since);
	SAME_STR(group);
	SAME_STR(timeout);
	SAME_STR(memory);
	SAME_STR(cwd);
	if (a->nenv != b->nenv || a->has_env != b->has_env)
		broken("env changed length in the round trip", NULL);
	for (size_t i = 0; i < a->nenv; i++) {
		SAME_STR(env_names[i]);
		SAME_STR(env_values[i]);
	}
	same_member("content", a->content, a->content_len, b->content,
		    b->content_len);
	same_member("stdin", a->stdin_data, a->stdin_len, b->stdin_data,
		    b->stdin_len);
	if (a->nargs != b->nargs || a->nvalidate_args != b->nvalidate_args)
		broken("an argument list changed length in the round trip",
		       NULL);
	for (size_t i = 0; i < a->nargs; i++)
		SAME_STR(args[i]);
	for (size_t i = 0; i < a->nvalidate_args; i++)
		SAME_STR(validate_args[i]);
	if (a->content_fd != b->content_fd || a->has_run != b->has_run ||
	    a->run != b->run || a->version != b->version ||
	    a->limit != b->limit || a->has_uid != b->has_uid ||
	    a->uid != b->uid || a->after != b->after ||
	    a->has_pids != b->has_pids || a->pids != b->pids)
		broken("a scalar member changed in the round trip", NULL);
}

/* Whether every string member passes through the writer unchanged;
 * invalid UTF-8 comes back as U+FFFD, three bytes for each bad one, and
 * may then be over its member's bound. */
static bool all_utf8(const struct proto_request *r)
{
	const char *plain[] = { r->op,     r->id,    r->name,  r->policy,
				r->reason, r->since, r->group, r->timeout,
				r->memory, r->cwd };
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (plain[i] && !valid_utf8(plain[i], strlen(plain[i])))
			return false;
	if ((r->content && !valid_utf8(r->content, r->content_len)) ||
	    (r->stdin_data && !valid_utf8(r->stdin_data, r->stdin_len)))
		return false;
	for (size_t i = 0; i < r->nargs; i++)
		if (!valid_utf8(r->args[i], strlen(r->args[i])))
			return false;
	for (size_t i = 0; i < r->nvalidate_args; i++)
		if (!valid_utf8(r->validate_args[i],
				strlen(r->validate_args[i])))
			return false;
	for (size_t i = 0; i < r->nenv; i++)
		if (!valid_utf8(r->env_values[i], strlen(r->env_values[i])))
			return false;
	return true;
}

static void check_request(const struct proto_request *req)
{
	struct al_error err = { 0 };

	check_bounds(req);
	if (!all_utf8(req))
		return;
	char *line = canonical(req);
	struct json_doc *doc = json_parse(line, strlen(line), &limits, &err);
	struct proto_request back;
	if (!doc || proto_request_decode(doc, &back, &err) < 0) {
		fprintf(stderr, "--- canonical ---\n%s\n", line);
		broken("the canonical request is refused", err.msg);
	}
	same_request(req, &back);
	json_doc_free(doc);
	free(line);
}

/* --------------------------------------------------- member parsers */

static void check_content(const struct proto_request *req)
{
	struct al_error err = { 0 };

	if (!req->content)
		return;
	unsigned char *bytes = malloc(req->content_len / 4 * 3 + 1);
	if (!bytes)
		return;
	ssize_t n = base64_decode(req->content, req->content_len, bytes, &err);
	if (n < 0) {
		if (!err.msg[0])
			broken("base64 refused without a message", NULL);
		free(bytes);
		return;
	}
	if ((size_t)n > req->content_len / 4 * 3)
		broken("base64 decoded past its bound", NULL);
	char *text = base64_encode(bytes, (size_t)n);
	if (!text)
		broken("base64_encode failed", "out of memory");
	unsigned char *again = malloc(strlen(text) / 4 * 3 + 1);
	if (!again)
		broken("out of memory", NULL);
	ssize_t m = base64_decode(text, strlen(text), again, &err);
	if (m != n || memcmp(bytes, again, (size_t)n) != 0)
		broken("base64 does not round-trip", text);
	free(again);
	free(text);
	free(bytes);
}

static void check_since(const struct proto_request *req)
{
	struct al_error err = { 0 };
	int64_t ms = 0;
	/* a fixed "now": an age is subtracted from it */
	const int64_t now = 1800000000000;

	if (req->since && manifest_time_parse(req->since, now, &ms, &err) < 0 &&
	    !err.msg[0])
		broken("since refused without a message", req->since);
}

/* The ceilings exec's options are held to: a policy whose request_env
 * lists a few names (the dictionary has them). */
static const struct al_policy *ceiling_policy(void)
{
	static struct al_policy *p;
	struct al_error err = { 0 };

	if (!p)
		p = policy_parse_string(
			"[limits]\ntimeout = 5s\nmemory = 128M\n"
			"pids = 32\n[runtime]\n"
			"request_env = SEED PATH A\n",
			"fuzz.policy", "fuzz", &err);
	if (!p)
		broken("the fuzzer's policy is refused", err.msg);
	return p;
}

static void check_tighten(const struct proto_request *req)
{
	const struct al_policy *p = ceiling_policy();
	const struct policy_limits *l = policy_limits(p);
	struct al_error err = { 0 };
	struct policy_run run;
	struct policy_request pr = {
		.timeout = req->timeout,
		.memory = req->memory,
		.has_pids = req->has_pids,
		.pids = (uint64_t)req->pids,
		.env_names = req->env_names,
		.env_values = req->env_values,
		.n_env = req->nenv,
		.cwd = req->cwd,
	};

	if (policy_tighten(p, &pr, &run, &err) < 0) {
		if (!err.msg[0])
			broken("exec options refused without a message", NULL);
		if (run.envp || run.cwd)
			broken("a refusal left the run's settings", err.msg);
		return;
	}
	if (run.limits.timeout_us > l->timeout_us ||
	    run.limits.memory_bytes > l->memory_bytes ||
	    run.limits.pids > l->pids ||
	    run.limits.cpu_time_us > l->cpu_time_us)
		broken("a request raised a limit", NULL);
	policy_run_clear(&run);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct al_error err = { 0 };
	struct proto_request req;

	struct json_doc *doc = json_parse((const char *)data, size, &limits,
					  &err);
	if (!doc) {
		if (!err.msg[0])
			broken("a line refused without a message", NULL);
		return 0;
	}
	check_document(doc);
	if (proto_request_decode(doc, &req, &err) < 0) {
		if (!err.msg[0])
			broken("a request refused without a message", NULL);
	} else {
		check_request(&req);
		check_content(&req);
		check_since(&req);
		check_tighten(&req);
	}
	json_doc_free(doc);
	return 0;
}
