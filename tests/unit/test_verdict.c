/*
 * Unit tests for the verdict classifier and the JSON result: every verdict
 * of docs/design.md, its exit status, and the precedence between causes (a run
 * we killed for a seccomp violation is not a timeout, an OOM kill is not a
 * crash, a module that finished just before its deadline is not a timeout).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "sandbox/internal.h"

/* Wait statuses as the kernel encodes them. */
#define EXITED(code) (((code)&0xff) << 8)
#define KILLED(sig) ((sig)&0x7f)

static struct sandbox_result classify(struct verdict_input in)
{
	struct sandbox_result r;
	memset(&r, 0, sizeof(r));
	verdict_classify(&in, &r);
	return r;
}

static void test_ok_and_exit_codes(void **state)
{
	(void)state;
	struct sandbox_result r = classify((struct verdict_input){
		.have_status = true, .status = EXITED(0) });
	assert_int_equal(r.verdict, AL_VERDICT_OK);
	assert_int_equal(r.exit_status, 0);
	assert_int_equal(r.exit_code, 0);
	assert_int_equal(r.signal, 0);

	r = classify((struct verdict_input){ .have_status = true,
					     .status = EXITED(3) });
	assert_int_equal(r.verdict, AL_VERDICT_EXIT_NONZERO);
	assert_int_equal(r.exit_status, 3);
	assert_int_equal(r.exit_code, 3);

	/* a module's own 124 is its exit code, not our timeout */
	r = classify((struct verdict_input){ .have_status = true,
					     .status = EXITED(124) });
	assert_int_equal(r.verdict, AL_VERDICT_EXIT_NONZERO);
	assert_int_equal(r.exit_status, 124);
}

static void test_crashed(void **state)
{
	(void)state;
	struct sandbox_result r = classify((struct verdict_input){
		.have_status = true, .status = KILLED(SIGSEGV) });
	assert_int_equal(r.verdict, AL_VERDICT_CRASHED);
	assert_int_equal(r.exit_status, 139);
	assert_int_equal(r.signal, SIGSEGV);
	assert_int_equal(r.exit_code, -1);

	/* SIGKILL without an OOM kill: the module (or a sibling) did it */
	r = classify((struct verdict_input){ .have_status = true,
					     .status = KILLED(SIGKILL) });
	assert_int_equal(r.verdict, AL_VERDICT_CRASHED);
	assert_int_equal(r.exit_status, 137);
}

static void test_memory_limit(void **state)
{
	(void)state;
	struct sandbox_result r = classify(
		(struct verdict_input){ .have_status = true,
					.status = KILLED(SIGKILL),
					.oom_kills = 1 });
	assert_int_equal(r.verdict, AL_VERDICT_MEMORY_LIMIT);
	assert_int_equal(r.exit_status, 137);

	/* init itself taken by the OOM killer: no report, still memory */
	r = classify((struct verdict_input){ .init_reaped = true,
					     .init_code = CLD_KILLED,
					     .init_status = SIGKILL,
					     .oom_kills = 2 });
	assert_int_equal(r.verdict, AL_VERDICT_MEMORY_LIMIT);

	/* a child OOM-killed while the module exits cleanly: the module's
	 * own status stands */
	r = classify((struct verdict_input){
		.have_status = true, .status = EXITED(0), .oom_kills = 1 });
	assert_int_equal(r.verdict, AL_VERDICT_OK);
}

static void test_timeout(void **state)
{
	(void)state;
	struct sandbox_result r = classify(
		(struct verdict_input){ .timed_out = true,
					.init_reaped = true,
					.init_code = CLD_KILLED,
					.init_status = SIGKILL });
	assert_int_equal(r.verdict, AL_VERDICT_TIMEOUT);
	assert_int_equal(r.exit_status, 124);

	/* exited just before the deadline fired: its status wins */
	r = classify((struct verdict_input){
		.timed_out = true, .have_status = true, .status = EXITED(0) });
	assert_int_equal(r.verdict, AL_VERDICT_OK);

	/* RLIMIT_CPU is the CPU half of the time limit */
	r = classify((struct verdict_input){ .have_status = true,
					     .status = KILLED(SIGXCPU) });
	assert_int_equal(r.verdict, AL_VERDICT_TIMEOUT);
	assert_int_equal(r.exit_status, 124);
}

static void test_seccomp_wins(void **state)
{
	(void)state;
	/* we killed it for the violation: whatever else happened after is
	 * a consequence */
	struct sandbox_result r = classify(
		(struct verdict_input){ .seccomp_denied = true,
					.timed_out = true,
					.have_status = true,
					.status = KILLED(SIGKILL),
					.oom_kills = 1 });
	assert_int_equal(r.verdict, AL_VERDICT_SECCOMP_VIOLATION);
	assert_int_equal(r.exit_status, 159);
	assert_int_equal(r.signal, SIGSYS);
}

static void test_setup_errors(void **state)
{
	(void)state;
	struct sandbox_result r = classify((struct verdict_input){
		.setup_failed = true, .seccomp_denied = true });
	assert_int_equal(r.verdict, AL_VERDICT_SETUP_ERROR);
	assert_int_equal(r.exit_status, 125);

	r = classify((struct verdict_input){ .exec_errno = ENOENT });
	assert_int_equal(r.exit_status, 127);
	r = classify((struct verdict_input){ .exec_errno = EACCES });
	assert_int_equal(r.exit_status, 126);
	r = classify((struct verdict_input){ .exec_errno = ENOEXEC });
	assert_int_equal(r.exit_status, 126);

	/* init gone without a word and no OOM: ours, and said so */
	r = classify((struct verdict_input){ .init_reaped = true,
					     .init_code = CLD_EXITED,
					     .init_status = 1 });
	assert_int_equal(r.verdict, AL_VERDICT_SETUP_ERROR);
	assert_non_null(strstr(r.error, "without reporting"));
}

static void test_names(void **state)
{
	(void)state;
	/* clang-format off */
	static const char *const names[] = {
		"ok", "exit_nonzero", "crashed", "timeout", "memory_limit",
		"seccomp_violation", "setup_error", "build_failed",
	};
	/* clang-format on */
	assert_int_equal(ARRAY_SIZE(names), AL_VERDICT_COUNT);
	for (int v = AL_VERDICT_OK; v < AL_VERDICT_COUNT; v++) {
		assert_string_equal(al_verdict_name(v), names[v]);
		assert_int_equal(al_verdict_parse(names[v]), v);
	}
}

static void test_json_hostile_output(void **state)
{
	(void)state;
	struct sandbox_result r = { 0 };
	char out[] = "quote\" back\\ nl\n ctl\x01 bad\xff\xfe end";
	r.verdict = AL_VERDICT_CRASHED;
	r.exit_code = -1;
	r.signal = SIGSEGV;
	r.exit_status = 139;
	r.stdout_data = out;
	r.stdout_len = sizeof(out) - 1;
	char *json = sandbox_result_json(&r, NULL, NULL);
	assert_non_null(json);
	assert_non_null(strstr(json, "\"verdict\":\"crashed\""));
	assert_non_null(strstr(json, "\"signal\":\"SIGSEGV\""));
	assert_non_null(strstr(json, "\"exit_code\":null"));
	assert_non_null(
		strstr(json,
		       "\"stdout\":\"quote\\\" back\\\\ nl\\n ctl\\u0001 bad"
		       "\xEF\xBF\xBD\xEF\xBF\xBD end\""));
	assert_non_null(strstr(json, "\"stderr\":null"));
	assert_null(strstr(json, "\"error\""));
	free(json);
}

static void test_json_setup_error(void **state)
{
	(void)state;
	struct sandbox_result r = { 0 };
	sandbox_result_setup_error(&r, 127, "module /x: No such file");
	char *json = sandbox_result_json(&r, NULL, NULL);
	assert_non_null(json);
	assert_non_null(strstr(json, "\"verdict\":\"setup_error\""));
	assert_non_null(strstr(json, "\"exit_status\":127"));
	assert_non_null(strstr(json, "\"error\":\"module /x: No such file\""));
	free(json);
}

/* What a version command's run says (airlock languages). */
static enum sandbox_version version_of(enum al_verdict v, int status,
				       char *out_data, char *err_data,
				       char text[SANDBOX_VERSION_MAX + 1])
{
	struct sandbox_result r = {
		.verdict = v,
		.exit_status = status,
		.wall_ms = 5000.4,
		.stdout_data = out_data,
		.stdout_len = out_data ? strlen(out_data) : 0,
		.stderr_data = err_data,
		.stderr_len = err_data ? strlen(err_data) : 0,
	};
	snprintf(r.error, sizeof(r.error), "cannot execute x inside the jail");
	return sandbox_result_version(&r, text);
}

static void test_version_lines(void **state)
{
	(void)state;
	char text[SANDBOX_VERSION_MAX + 1], long_line[400];

	assert_int_equal(version_of(AL_VERDICT_OK, 0, "Python 3.11.2\n", NULL,
				    text),
			 SANDBOX_VERSION_OK);
	assert_string_equal(text, "Python 3.11.2");
	/* blank lines first, the version on stderr (python2 did that) */
	assert_int_equal(version_of(AL_VERDICT_OK, 0, "\n \n", "\nv1.2 \r\n",
				    text),
			 SANDBOX_VERSION_OK);
	assert_string_equal(text, "v1.2");
	/* control bytes shown as '?', the line cut */
	assert_int_equal(version_of(AL_VERDICT_OK, 0, "a\033[31mb\x80\n", NULL,
				    text),
			 SANDBOX_VERSION_OK);
	assert_string_equal(text, "a?[31mb?");
	memset(long_line, 'x', sizeof(long_line) - 1);
	long_line[sizeof(long_line) - 1] = '\0';
	assert_int_equal(version_of(AL_VERDICT_OK, 0, long_line, NULL, text),
			 SANDBOX_VERSION_OK);
	assert_int_equal(strlen(text), SANDBOX_VERSION_MAX);
	/* 127: no such program, whether exec said so or a program did */
	assert_int_equal(version_of(AL_VERDICT_SETUP_ERROR, 127, NULL, NULL,
				    text),
			 SANDBOX_VERSION_MISSING);
	assert_string_equal(text, "not installed");
	assert_int_equal(version_of(AL_VERDICT_EXIT_NONZERO, 127, NULL,
				    "env: 'x': No such file\n", text),
			 SANDBOX_VERSION_MISSING);
	assert_int_equal(version_of(AL_VERDICT_TIMEOUT, 124, NULL, NULL, text),
			 SANDBOX_VERSION_TIMEOUT);
	assert_string_equal(text, "cut off after 5000 ms");
	assert_int_equal(version_of(AL_VERDICT_EXIT_NONZERO, 2, NULL,
				    "bad option\n", text),
			 SANDBOX_VERSION_FAILED);
	assert_string_equal(text, "exit_nonzero: bad option");
	assert_int_equal(version_of(AL_VERDICT_OK, 0, "", NULL, text),
			 SANDBOX_VERSION_FAILED);
	assert_string_equal(text, "ok: exit status 0, no output");
	assert_int_equal(version_of(AL_VERDICT_SETUP_ERROR, 126, NULL, NULL,
				    text),
			 SANDBOX_VERSION_FAILED);
	assert_string_equal(text,
			    "setup_error: cannot execute x inside the jail");
	assert_string_equal(sandbox_version_name(SANDBOX_VERSION_MISSING),
			    "not_installed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok_and_exit_codes),
		cmocka_unit_test(test_version_lines),
		cmocka_unit_test(test_crashed),
		cmocka_unit_test(test_memory_limit),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_seccomp_wins),
		cmocka_unit_test(test_setup_errors),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_json_hostile_output),
		cmocka_unit_test(test_json_setup_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
