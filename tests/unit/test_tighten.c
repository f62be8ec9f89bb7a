/*
 * Unit tests of policy_tighten() (policy/tighten.c): a request may lower
 * the policy's limits and never raise them, set only the environment
 * names [runtime] request_env lists, and start in a plain absolute cwd;
 * every refusal names the option, the value and the bound, and leaves
 * nothing allocated (the ASan build checks). Also exec's members in the
 * request codec (supervisor/protocol.c), which bounds them first.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/policy.h"
#include "supervisor/protocol.h"

#define MiB (1024ull * 1024ull)

/* 5s, 32M, 16 processes; requests may set SEED and PATH */
static const char policy_text[] = "[limits]\n"
				  "timeout = 5s\n"
				  "memory = 32M\n"
				  "pids = 16\n"
				  "[environment]\n"
				  "MODE = prod\n"
				  "[runtime]\n"
				  "request_env = SEED PATH\n";

static int setup(void **state)
{
	struct al_error err = { 0 };
	*state = policy_parse_string(policy_text, "t.policy", "t", &err);
	if (!*state)
		fprintf(stderr, "%s\n", err.msg);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	policy_free(*state);
	return 0;
}

static void expect_ok(const struct al_policy *p,
		      const struct policy_request *req, struct policy_run *run)
{
	struct al_error err = { 0 };
	if (policy_tighten(p, req, run, &err) < 0)
		fail_msg("refused: %s", err.msg);
}

/* Refused with exactly `msg` (or, when `prefix`, a message starting so),
 * and `out` left empty. */
static void expect_refused(const struct al_policy *p,
			   const struct policy_request *req, int errnum,
			   const char *msg, bool prefix)
{
	struct al_error err = { 0 };
	struct policy_run run;

	memset(&run, 0xa5, sizeof(run));
	if (policy_tighten(p, req, &run, &err) == 0) {
		policy_run_clear(&run);
		fail_msg("accepted; wanted \"%s\"", msg);
	}
	if (prefix ? strncmp(err.msg, msg, strlen(msg)) != 0
		   : strcmp(err.msg, msg) != 0)
		fail_msg("message \"%s\"; wanted \"%s\"", err.msg, msg);
	assert_int_equal(err.errnum, errnum);
	assert_null(run.envp);
	assert_null(run.cwd);
	assert_int_equal(run.limits.timeout_us, 0);
}

static const char *getenv_of(char *const *envp, const char *name)
{
	size_t n = strlen(name);
	const char *found = NULL;
	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=') {
			if (found)
				fail_msg("%s twice in the environment", name);
			found = *envp + n + 1;
		}
	return found;
}

static void test_nothing_asked(void **state)
{
	struct policy_request req = { 0 };
	struct policy_run run;

	expect_ok(*state, &req, &run);
	assert_memory_equal(&run.limits, policy_limits(*state),
			    sizeof(run.limits));
	assert_null(run.envp);
	assert_null(run.cwd);
	policy_run_clear(&run);
}

static void test_lower_limits(void **state)
{
	struct policy_request req = {
		.timeout = "1500ms",
		.memory = "16M",
		.has_pids = true,
		.pids = 4,
	};
	struct policy_run run;

	expect_ok(*state, &req, &run);
	assert_int_equal(run.limits.timeout_us, 1500000);
	/* the CPU-time limit follows a lower wall clock */
	assert_int_equal(run.limits.cpu_time_us, 1500000);
	assert_int_equal(run.limits.memory_bytes, 16 * MiB);
	assert_int_equal(run.limits.pids, 4);
	/* the rest is the policy's, and the policy itself is unchanged */
	assert_int_equal(run.limits.tmp_bytes,
			 policy_limits(*state)->tmp_bytes);
	assert_int_equal(policy_limits(*state)->timeout_us, 5000000);
	assert_int_equal(policy_limits(*state)->memory_bytes, 32 * MiB);
	assert_int_equal(policy_limits(*state)->pids, 16);
	policy_run_clear(&run);

	/* equal to the ceiling is not above it */
	struct policy_request same = {
		.timeout = "5s", .memory = "32M", .has_pids = true, .pids = 16
	};
	expect_ok(*state, &same, &run);
	assert_int_equal(run.limits.timeout_us, 5000000);
	policy_run_clear(&run);
}

static void test_above_ceiling(void **state)
{
	expect_refused(*state, &(struct policy_request){ .timeout = "10s" },
		       EPERM,
		       "timeout 10s is above the policy's timeout 5s; a "
		       "request may only lower it",
		       false);
	expect_refused(*state, &(struct policy_request){ .timeout = "5001ms" },
		       EPERM,
		       "timeout 5001ms is above the policy's timeout 5s; a "
		       "request may only lower it",
		       false);
	expect_refused(*state, &(struct policy_request){ .memory = "1G" },
		       EPERM,
		       "memory 1G is above the policy's memory 32 MiB; a "
		       "request may only lower it",
		       false);
	expect_refused(*state,
		       &(struct policy_request){ .has_pids = true, .pids = 17 },
		       EPERM,
		       "pids 17 is above the policy's pids 16; a request may "
		       "only lower it",
		       false);
	expect_refused(*state,
		       &(struct policy_request){ .has_pids = true,
						 .pids = UINT64_MAX },
		       EPERM, "pids 18446744073709551615 is above", true);
	/* one bad option refuses the whole request: the good one is not
	 * half applied */
	expect_refused(*state,
		       &(struct policy_request){ .timeout = "1s",
						 .memory = "64M" },
		       EPERM, "memory 64M is above", true);
}

static void test_malformed_limits(void **state)
{
	/* a bare number is ambiguous, as everywhere durations are taken */
	expect_refused(*state, &(struct policy_request){ .timeout = "5" },
		       EINVAL,
		       "timeout: invalid duration \"5\": a number needs", true);
	expect_refused(*state, &(struct policy_request){ .timeout = "1e99s" },
		       EINVAL, "timeout: invalid duration", true);
	expect_refused(*state, &(struct policy_request){ .timeout = "-1s" },
		       EINVAL, "timeout: invalid duration", true);
	expect_refused(*state, &(struct policy_request){ .timeout = "" },
		       EINVAL, "timeout: ", true);
	expect_refused(*state, &(struct policy_request){ .timeout = "0" },
		       EINVAL,
		       "timeout 0 is below the least a run can have, 1ms",
		       false);
	expect_refused(*state, &(struct policy_request){ .memory = "lots" },
		       EINVAL, "memory: invalid size", true);
	expect_refused(*state, &(struct policy_request){ .memory = "1M" },
		       EINVAL,
		       "memory 1M is below the least a run can have, 4 MiB",
		       false);
	expect_refused(*state,
		       &(struct policy_request){ .has_pids = true, .pids = 0 },
		       EINVAL, "pids 0 is below the least a run can have, 1",
		       false);
}

static void test_env_allowed(void **state)
{
	const char *names[] = { "SEED", "PATH" };
	const char *values[] = { "42", "/opt/bin:/usr/bin" };
	struct policy_request req = { .env_names = names,
				      .env_values = values,
				      .n_env = 2 };
	struct policy_run run;

	expect_ok(*state, &req, &run);
	assert_string_equal(getenv_of(run.envp, "SEED"), "42");
	/* a listed name the jail sets itself replaces it, once */
	assert_string_equal(getenv_of(run.envp, "PATH"), "/opt/bin:/usr/bin");
	/* the policy's others stay */
	assert_string_equal(getenv_of(run.envp, "MODE"), "prod");
	assert_string_equal(getenv_of(run.envp, "HOME"), "/tmp");
	policy_run_clear(&run);
	/* and the policy's own list is untouched */
	assert_null(getenv_of(policy_environ(*state), "SEED"));
	assert_string_equal(getenv_of(policy_environ(*state), "PATH"),
			    policy_path(*state));

	/* an empty value is a value */
	const char *empty[] = { "" };
	req.n_env = 1;
	req.env_values = empty;
	expect_ok(*state, &req, &run);
	assert_string_equal(getenv_of(run.envp, "SEED"), "");
	policy_run_clear(&run);
}

static void test_env_refused(void **state)
{
	const char *v[] = { "x", "y" };
	struct policy_request req = { .env_values = v, .n_env = 1 };

	/* not listed: refused by name, the allowed ones said */
	req.env_names = (const char *[]){ "LD_PRELOAD" };
	expect_refused(*state, &req, EPERM,
		       "env LD_PRELOAD is not a name the policy lets a request "
		       "set (its [runtime] request_env: PATH SEED)",
		       false);
	/* names the jail sets itself are no exception */
	req.env_names = (const char *[]){ "HOME" };
	expect_refused(*state, &req, EPERM, "env HOME is not a name", true);
	req.env_names = (const char *[]){ "MODE" };
	expect_refused(*state, &req, EPERM, "env MODE is not a name", true);
	/* matched whole, case and all */
	req.env_names = (const char *[]){ "SEEDS" };
	expect_refused(*state, &req, EPERM, "env SEEDS is not", true);
	req.env_names = (const char *[]){ "seed" };
	expect_refused(*state, &req, EPERM, "env seed is not", true);
	/* not a plain name */
	static const char *const bad_names[] = { "",    "1X",   "A=B",
						 "A B", "A\nB", "SEED\x7f" };
	for (size_t i = 0; i < ARRAY_SIZE(bad_names); i++) {
		req.env_names = &bad_names[i];
		expect_refused(*state, &req, EINVAL, "env: \"", true);
	}
	char long_name[80];
	memset(long_name, 'A', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	req.env_names = (const char *[]){ long_name };
	expect_refused(*state, &req, EINVAL, "env: \"AAAA", true);
	/* given twice */
	req.env_names = (const char *[]){ "SEED", "SEED" };
	req.n_env = 2;
	expect_refused(*state, &req, EINVAL, "env: SEED is given twice", false);
	/* a value too long */
	char *big = malloc(POLICY_REQUEST_ENV_VALUE_MAX + 2);
	assert_non_null(big);
	memset(big, 'v', POLICY_REQUEST_ENV_VALUE_MAX + 1);
	big[POLICY_REQUEST_ENV_VALUE_MAX + 1] = '\0';
	req.env_names = (const char *[]){ "SEED" };
	req.env_values = (const char *[]){ big };
	req.n_env = 1;
	expect_refused(*state, &req, EINVAL,
		       "env: the value of SEED is longer than 4096 bytes",
		       false);
	big[POLICY_REQUEST_ENV_VALUE_MAX] = '\0'; /* exactly the bound */
	struct policy_run run;
	expect_ok(*state, &req, &run);
	policy_run_clear(&run);
	free(big);
	/* too many */
	const char *many_n[POLICY_REQUEST_ENV_MAX + 1],
		*many_v[ARRAY_SIZE(many_n)];
	for (size_t i = 0; i < ARRAY_SIZE(many_n); i++)
		many_n[i] = many_v[i] = "SEED";
	req.env_names = many_n;
	req.env_values = many_v;
	req.n_env = ARRAY_SIZE(many_n);
	expect_refused(*state, &req, EINVAL, "env: 65 names; at most 64",
		       false);
}

static void test_env_policy_lists_none(void **state)
{
	struct al_error err = { 0 };
	struct al_policy *p = policy_new_default(&err);
	assert_non_null(p);
	struct policy_request req = {
		.env_names = (const char *[]){ "SEED" },
		.env_values = (const char *[]){ "1" },
		.n_env = 1,
	};
	expect_refused(p, &req, EPERM,
		       "env SEED is not a name the policy lets a request set "
		       "(its [runtime] request_env: none)",
		       false);
	/* airlock run's own caller may set any plain name, never a bad one */
	struct policy_run run;
	req.any_env_name = true;
	expect_ok(p, &req, &run);
	assert_string_equal(getenv_of(run.envp, "SEED"), "1");
	policy_run_clear(&run);
	req.env_names = (const char *[]){ "1X" };
	expect_refused(p, &req, EINVAL, "env: \"1X\" is not", true);
	policy_free(p);
}

static void test_cwd(void **state)
{
	static const char *const good[] = { "/", "/tmp", "/tmp/work",
					    "/usr/lib/x86_64-linux-gnu",
					    "/a.b/..c/c.." };
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		struct policy_run run;
		expect_ok(*state, &(struct policy_request){ .cwd = good[i] },
			  &run);
		assert_string_equal(run.cwd, good[i]);
		policy_run_clear(&run);
	}
	static const char *const bad[] = {
		"",        "tmp",         "./tmp",    "../..",   "/..",
		"/tmp/..", "/tmp/../etc", "/tmp/./x", "/tmp/",   "//tmp",
		"/tmp//x", "/.",          "/tmp\n/x", "/t\x1bx",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		expect_refused(*state,
			       &(struct policy_request){ .cwd = bad[i] },
			       EINVAL, "cwd: not ", true);
	char *huge = malloc(POLICY_CWD_MAX + 2);
	assert_non_null(huge);
	huge[0] = '/';
	memset(huge + 1, 'd', POLICY_CWD_MAX);
	huge[POLICY_CWD_MAX + 1] = '\0';
	expect_refused(*state, &(struct policy_request){ .cwd = huge }, EINVAL,
		       "cwd: longer than 4096 bytes", false);
	free(huge);
}

/* ------------------------------------------------------ exec's members */

static int decode(const char *text, struct proto_request *req,
		  struct json_doc **doc, struct al_error *err)
{
	*doc = json_parse(text, strlen(text), NULL, err);
	if (!*doc)
		return -1;
	return proto_request_decode(*doc, req, err);
}

static void test_decode_members(void **state)
{
	struct proto_request req;
	struct al_error err = { 0 };
	struct json_doc *doc;

	assert_int_equal(decode("{\"op\":\"exec\",\"name\":\"m\","
				"\"timeout\":\"2s\",\"memory\":\"16M\","
				"\"pids\":4,\"cwd\":\"/tmp/w\","
				"\"env\":{\"SEED\":\"1\",\"B\":\"\"}}",
				&req, &doc, &err),
			 0);
	assert_string_equal(req.timeout, "2s");
	assert_string_equal(req.memory, "16M");
	assert_true(req.has_pids);
	assert_int_equal(req.pids, 4);
	assert_string_equal(req.cwd, "/tmp/w");
	assert_true(req.has_env);
	assert_int_equal(req.nenv, 2);
	assert_string_equal(req.env_names[0], "SEED");
	assert_string_equal(req.env_values[0], "1");
	assert_string_equal(req.env_names[1], "B");
	assert_string_equal(req.env_values[1], "");
	assert_true(proto_request_has_run_options(&req));
	json_doc_free(doc);

	assert_int_equal(decode("{\"op\":\"exec\",\"env\":{}}", &req, &doc,
				&err),
			 0);
	assert_true(req.has_env);
	assert_int_equal(req.nenv, 0);
	json_doc_free(doc);
	assert_int_equal(decode("{\"op\":\"exec\"}", &req, &doc, &err), 0);
	assert_false(proto_request_has_run_options(&req));
	json_doc_free(doc);
}

static void expect_bad(const char *text, const char *want)
{
	struct proto_request req;
	struct al_error err = { 0 };
	struct json_doc *doc;

	if (decode(text, &req, &doc, &err) == 0)
		fail_msg("accepted %s", text);
	if (!strstr(err.msg, want))
		fail_msg("%s: \"%s\", wanted \"%s\" in it", text, err.msg,
			 want);
	json_doc_free(doc);
}

static void test_decode_hostile(void **state)
{
	expect_bad("{\"op\":\"exec\",\"timeout\":5}",
		   "member \"timeout\": expected a duration string");
	expect_bad("{\"op\":\"exec\",\"timeout\":\"1234567890123456789012345"
		   "67890123s\"}",
		   "member \"timeout\": too long");
	expect_bad("{\"op\":\"exec\",\"memory\":67108864}",
		   "member \"memory\": expected a size string");
	expect_bad("{\"op\":\"exec\",\"pids\":-1}",
		   "member \"pids\": expected a whole number");
	expect_bad("{\"op\":\"exec\",\"pids\":1.5}",
		   "member \"pids\": expected a whole number");
	expect_bad("{\"op\":\"exec\",\"pids\":\"4\"}",
		   "member \"pids\": expected a whole number");
	expect_bad("{\"op\":\"exec\",\"env\":[\"A=1\"]}",
		   "member \"env\": expected an object");
	expect_bad("{\"op\":\"exec\",\"env\":\"A=1\"}",
		   "member \"env\": expected an object");
	expect_bad("{\"op\":\"exec\",\"env\":{\"A\":1}}",
		   "member \"env\": the value of A is not a string");
	expect_bad("{\"op\":\"exec\",\"env\":{\"A\":null}}",
		   "the value of A is not a string");
	expect_bad("{\"op\":\"exec\",\"env\":{\"A\":{\"B\":\"c\"}}}",
		   "the value of A is not a string");
	expect_bad("{\"op\":\"exec\",\"env\":{\"A\":\"x\\u0000y\"}}",
		   "the value of A contains a NUL character");
	expect_bad("{\"op\":\"exec\",\"env\":{\"A\\u0000B\":\"x\"}}",
		   "is not a variable name");
	expect_bad("{\"op\":\"exec\",\"env\":{\"1A\":\"x\"}}",
		   "member \"env\": \"1A\" is not a variable name");
	expect_bad("{\"op\":\"exec\",\"env\":{\"\":\"x\"}}",
		   "is not a variable name");
	expect_bad("{\"op\":\"exec\",\"env\":{\"A-B\":\"x\"}}",
		   "is not a variable name");
	expect_bad("{\"op\":\"exec\",\"env\":{\"A\":\"x\",\"A\":\"y\"}}",
		   "member \"env\": A is given twice");
	expect_bad("{\"op\":\"exec\",\"cwd\":\"../..\"}",
		   "member \"cwd\": not an absolute path");
	expect_bad("{\"op\":\"exec\",\"cwd\":\"/tmp/../etc\"}",
		   "member \"cwd\": not a plain absolute path");
	expect_bad("{\"op\":\"exec\",\"cwd\":\"/tmp\\u0000/x\"}",
		   "member \"cwd\": contains a NUL character");
	expect_bad("{\"op\":\"exec\",\"cwd\":7}",
		   "member \"cwd\": expected a string");

	/* a value of 4097 bytes; 4096 is fine */
	char line[8192];
	int n = snprintf(line, sizeof(line),
			 "{\"op\":\"exec\",\"env\":{\"A\":\"%4097d\"}}", 1);
	assert_true(n > 0 && (size_t)n < sizeof(line));
	expect_bad(line, "the value of A is longer than 4096 bytes");
	snprintf(line, sizeof(line),
		 "{\"op\":\"exec\",\"env\":{\"A\":\"%4096d\"}}", 1);
	struct proto_request req;
	struct al_error err = { 0 };
	struct json_doc *doc;
	assert_int_equal(decode(line, &req, &doc, &err), 0);
	json_doc_free(doc);

	/* 65 variables; 64 are fine */
	for (int vars = 64; vars <= 65; vars++) {
		size_t used = (size_t)snprintf(line, sizeof(line),
					       "{\"op\":\"exec\",\"env\":{");
		for (int i = 0; i < vars; i++)
			used += (size_t)snprintf(line + used,
						 sizeof(line) - used,
						 "%s\"V%d\":\"x\"",
						 i ? "," : "", i);
		snprintf(line + used, sizeof(line) - used, "}}");
		if (vars == 64) {
			assert_int_equal(decode(line, &req, &doc, &err), 0);
			assert_int_equal(req.nenv, 64);
			json_doc_free(doc);
		} else {
			expect_bad(line,
				   "member \"env\": 65 variables; at most 64");
		}
	}
	/* a cwd longer than 4096 bytes */
	char *big = malloc(5000);
	assert_non_null(big);
	n = snprintf(big, 5000, "{\"op\":\"exec\",\"cwd\":\"/%4096d\"}", 1);
	assert_true(n > 0 && n < 5000);
	expect_bad(big, "member \"cwd\": too long");
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nothing_asked, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lower_limits, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_above_ceiling, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_malformed_limits, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_env_allowed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_env_refused, setup,
						teardown),
		cmocka_unit_test(test_env_policy_lists_none),
		cmocka_unit_test_setup_teardown(test_cwd, setup, teardown),
		cmocka_unit_test(test_decode_members),
		cmocka_unit_test(test_decode_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
