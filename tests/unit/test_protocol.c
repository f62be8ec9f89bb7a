/* Unit tests: the supervisor's JSON parser, request codec and base64,
 * fed hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "manifest/manifest.h"
#include "supervisor/protocol.h"

static struct json_doc *parse(const char *text)
{
	struct al_error err = { 0 };
	return json_parse(text, strlen(text), NULL, &err);
}

static void expect_invalid(const char *text)
{
	struct al_error err = { 0 };
	struct json_doc *doc = json_parse(text, strlen(text), NULL, &err);
	if (doc)
		fail_msg("accepted invalid JSON: %s", text);
	assert_true(strstr(err.msg, "invalid JSON") != NULL);
}

static void test_values(void **state)
{
	struct json_doc *doc = parse(
		" {\"a\":1,\"b\":[\"x\",\"y\"],\"c\":true,\"d\":null,"
		"\"e\":-9223372036854775808,\"f\":1.5e3,\"g\":{}} ");
	assert_non_null(doc);
	const struct json_node *root = json_root(doc);
	assert_int_equal(root->type, JSON_OBJECT);
	assert_int_equal(root->count, 7);
	assert_int_equal(json_get(doc, root, "a")->i, 1);
	const struct json_node *b = json_get(doc, root, "b");
	assert_int_equal(b->type, JSON_ARRAY);
	assert_string_equal(json_first(doc, b)->str, "x");
	assert_string_equal(json_next(doc, json_first(doc, b))->str, "y");
	assert_true(json_get(doc, root, "c")->i);
	assert_int_equal(json_get(doc, root, "d")->type, JSON_NULL);
	assert_int_equal(json_get(doc, root, "e")->i, INT64_MIN);
	assert_int_equal(json_get(doc, root, "f")->type, JSON_NUMBER);
	assert_true(json_get(doc, root, "f")->d == 1500.0);
	assert_null(json_get(doc, root, "zz"));
	json_doc_free(doc);
}

static void test_escapes(void **state)
{
	struct json_doc *doc = parse(
		"\"a\\\"b\\\\c\\/\\n\\t\\u00e9\\u0000z\\ud83d\\ude00\"");
	assert_non_null(doc);
	const struct json_node *n = json_root(doc);
	static const char want[] = "a\"b\\c/\n\t\xc3\xa9\0z\xf0\x9f\x98\x80";
	assert_int_equal(n->len, sizeof(want) - 1);
	assert_memory_equal(n->str, want, sizeof(want) - 1);
	json_doc_free(doc);
}

static void test_hostile(void **state)
{
	/* clang-format off */
	static const char *const bad[] = {
		"",           "{",          "}",          "[1,]",
		"{\"a\"}",    "{\"a\":}",   "{a:1}",      "\"abc",
		"\"\\x\"",    "\"\\u12\"",  "\"\\ud800\"", "\"\\udc00\"",
		"\"a\nb\"",   "01",         "-",          "1.",
		"1e",         "tru",        "nul",        "{} {}",
		"[1 2]",      "\"\\",       "{\"a\":1,}", "\x01",
	};
	/* clang-format on */
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		expect_invalid(bad[i]);
}

static void test_limits(void **state)
{
	char deep[200];
	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	struct al_error err = { 0 };
	assert_null(json_parse(deep, sizeof(deep), NULL, &err));
	assert_true(strstr(err.msg, "nested too deeply") != NULL);

	struct json_limits few = { .max_nodes = 3 };
	const char *many = "[1,2,3,4]";
	assert_null(json_parse(many, strlen(many), &few, &err));
	assert_true(strstr(err.msg, "too many values") != NULL);

	/* not NUL-terminated: the parser must stop at len */
	char buf[4] = { '[', '1', ']', 'x' };
	struct json_doc *doc = json_parse(buf, 3, NULL, &err);
	assert_non_null(doc);
	json_doc_free(doc);

	char num[100];
	memset(num, '9', sizeof(num) - 1);
	num[sizeof(num) - 1] = '\0';
	assert_null(json_parse(num, strlen(num), NULL, &err));
}

static int decode(const char *text, struct proto_request *req,
		  struct json_doc **doc, struct al_error *err)
{
	*doc = json_parse(text, strlen(text), NULL, err);
	if (!*doc)
		return -1;
	return proto_request_decode(*doc, req, err);
}

static void test_request(void **state)
{
	struct proto_request req;
	struct al_error err = { 0 };
	struct json_doc *doc;

	assert_int_equal(decode("{\"op\":\"exec\",\"id\":\"7\",\"name\":\"m\","
				"\"args\":[\"a\",\"b\"],\"stdin\":\"x\"}",
				&req, &doc, &err),
			 0);
	assert_string_equal(req.op, "exec");
	assert_string_equal(req.id, "7");
	assert_int_equal(req.nargs, 2);
	assert_string_equal(req.args[1], "b");
	assert_null(req.args[2]);
	assert_int_equal(req.stdin_len, 1);
	assert_false(req.has_wait); /* absent: an attached exec */
	assert_false(req.has_version);
	json_doc_free(doc);

	/* detach, wait: "wait" given false is told from absent */
	assert_int_equal(
		decode("{\"op\":\"exec\",\"name\":\"m\",\"wait\":false}", &req,
		       &doc, &err),
		0);
	assert_true(req.has_wait);
	assert_false(req.wait);
	json_doc_free(doc);
	assert_int_equal(decode("{\"op\":\"wait\",\"run\":9,"
				"\"timeout\":\"30s\"}",
				&req, &doc, &err),
			 0);
	assert_true(req.has_run);
	assert_int_equal(req.run, 9);
	assert_string_equal(req.timeout, "30s");
	json_doc_free(doc);

	/* a bundle's members */
	assert_int_equal(decode("{\"op\":\"submit\",\"kind\":\"bundle\","
				"\"entry\":\"bin/run\",\"build\":\"make\"}",
				&req, &doc, &err),
			 0);
	assert_string_equal(req.kind, "bundle");
	assert_string_equal(req.entry, "bin/run");
	assert_string_equal(req.build, "make");
	json_doc_free(doc);

	/* restore's version: given is told from absent, 0 included (the op
	 * refuses 0; the decoder only checks the type and range) */
	assert_int_equal(decode("{\"op\":\"restore\",\"name\":\"m\","
				"\"version\":0}",
				&req, &doc, &err),
			 0);
	assert_true(req.has_version);
	assert_int_equal(req.version, 0);
	json_doc_free(doc);
	assert_int_equal(decode("{\"op\":\"restore\",\"version\":"
				"9223372036854775807}",
				&req, &doc, &err),
			 0);
	assert_int_equal(req.version, INT64_MAX);
	json_doc_free(doc);

	static const char *const bad[] = {
		"{\"op\":\"restore\",\"version\":-1}",
		"{\"op\":\"restore\",\"version\":\"2\"}",
		"{\"op\":\"restore\",\"version\":2.5}",
		"{\"op\":\"restore\",\"version\":true}",
		"{\"op\":\"restore\",\"version\":9223372036854775808}",
		"[]",
		"{}",
		"{\"op\":1}",
		"{\"op\":\"x\",\"bogus\":1}",
		"{\"op\":\"x\",\"args\":[1]}",
		"{\"op\":\"x\",\"args\":\"a\"}",
		"{\"op\":\"x\",\"run\":-1}",
		"{\"op\":\"x\",\"run\":1.5}",
		"{\"op\":\"x\",\"run\":\"1\"}",
		"{\"op\":\"x\",\"run\":9223372036854775808}",
		"{\"op\":\"x\",\"wait\":0}",
		"{\"op\":\"x\",\"wait\":\"false\"}",
		"{\"op\":\"x\",\"timeout\":30}",
		"{\"op\":\"x\",\"timeout\":\"012345678901234567890123456789012\"}",
		"{\"op\":\"x\",\"name\":\"a\\u0000b\"}",
		"{\"op\":\"012345678901234567890123456789012\"}",
		"{\"op\":\"x\",\"kind\":true}",
		"{\"op\":\"x\",\"kind\":\"01234567890123456\"}",
		"{\"op\":\"x\",\"entry\":[\"a\"]}",
		"{\"op\":\"x\",\"entry\":\"a\\u0000b\"}",
		"{\"op\":\"x\",\"build\":7}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (decode(bad[i], &req, &doc, &err) == 0)
			fail_msg("accepted bad request %s", bad[i]);
		json_doc_free(doc);
	}
	/* the id is echoed even when the rest is wrong */
	assert_int_equal(decode("{\"id\":\"r1\",\"op\":\"x\",\"zz\":1}", &req,
				&doc, &err),
			 -1);
	assert_string_equal(req.id, "r1");
	json_doc_free(doc);

	char args[PROTO_MAX_ARGS * 4 + 64] = "{\"op\":\"x\",\"args\":[";
	for (int i = 0; i <= PROTO_MAX_ARGS; i++)
		strcat(args, i ? ",\"\"" : "\"\"");
	strcat(args, "]}");
	assert_int_equal(decode(args, &req, &doc, &err), -1);
	json_doc_free(doc);

	/* an entry one byte past MANIFEST_ENTRY_MAX */
	char entry[MANIFEST_ENTRY_MAX + 64] = "{\"op\":\"x\",\"entry\":\"";
	size_t n = strlen(entry);
	memset(entry + n, 'e', MANIFEST_ENTRY_MAX + 1);
	strcpy(entry + n + MANIFEST_ENTRY_MAX + 1, "\"}");
	assert_int_equal(decode(entry, &req, &doc, &err), -1);
	assert_non_null(strstr(err.msg, "\"entry\": too long"));
	json_doc_free(doc);
}

static void test_base64(void **state)
{
	unsigned char out[64];
	struct al_error err = { 0 };

	assert_int_equal(base64_decode("aGk=", 4, out, &err), 2);
	assert_memory_equal(out, "hi", 2);
	assert_int_equal(base64_decode("aGkh", 4, out, &err), 3);
	assert_int_equal(base64_decode("aA==", 4, out, &err), 1);
	assert_int_equal(base64_decode("", 0, out, &err), 0);
	static const char *const bad[] = { "a",    "aGk",  "a===",     "aG=k",
					   "aGk!", "====", "aA==aA==", "aG k" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(base64_decode(bad[i], strlen(bad[i]), out,
					       &err),
				 -1);
	for (size_t n = 0; n < 20; n++) {
		unsigned char in[20];
		for (size_t i = 0; i < n; i++)
			in[i] = (unsigned char)(i * 37 + n);
		char *enc = base64_encode(in, n);
		assert_int_equal(base64_decode(enc, strlen(enc), out, &err),
				 (ssize_t)n);
		assert_memory_equal(out, in, n);
		free(enc);
	}
}

static void test_responses(void **state)
{
	struct json_buf jb;
	json_buf_init(&jb);
	proto_response_error(&jb, "q\"1", PROTO_E_RATE_LIMITED, "slow down",
			     5000);
	assert_string_equal(
		jb.data, "{\"ok\":false,\"id\":\"q\\\"1\",\"error\":{\"code\":"
			 "\"rate_limited\",\"message\":\"slow down\","
			 "\"retry_after_ms\":5000}}");
	json_buf_free(&jb);
	/* every code has a stable name */
	for (int e = 0; e < PROTO_E_COUNT; e++)
		assert_non_null(proto_error_name(e));
}

int main(void)
{
	/* clang-format off */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),   cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_hostile),  cmocka_unit_test(test_limits),
		cmocka_unit_test(test_request),  cmocka_unit_test(test_base64),
		cmocka_unit_test(test_responses),
	};
	/* clang-format on */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
