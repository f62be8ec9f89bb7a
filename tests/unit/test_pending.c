/* Unit tests: a pending run record (supervisor/pending.c), the file
 * STATE/pending/<run id> holds while the manifest's server is out of
 * reach: written and read back whole, and every bad file refused with a
 * message (the sanitizer build finds a leak on any path). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "supervisor/internal.h"

static const char STDERR_TEXT[] = "line 1\nTraceback: boom\n";

static struct pending *finished(void)
{
	struct manifest_run_result r = {
		.verdict = "crashed",
		.exit_code = -1,
		.signal = 11,
		.syscall = "ptrace",
		.wall_ms = 2012.25,
		.cpu_ms = 3.5,
		.peak_memory_bytes = 1 << 20,
		.stderr_truncated = true,
		.stderr_data = STDERR_TEXT,
		.stderr_len = sizeof(STDERR_TEXT) - 1,
		.ended_ms = 1764000000123,
	};
	struct pending *p = pending_new(42, &r);

	assert_non_null(p);
	return p;
}

static void add_output(struct pending *p)
{
	static const char out[] = "out:\0binary\xff";
	struct manifest_output_in in = {
		.result = "{\"verdict\":\"crashed\",\"stdout\":null}",
		.archived = true,
		.keep = 8,
		.streams = { { .data = out, .len = sizeof(out) },
			     { .truncated = true } },
	};
	struct al_error err = { 0 };

	assert_int_equal(pending_set_output(p, &in, &err), 0);
}

static struct pending *round_trip(const struct pending *p)
{
	struct al_error err = { 0 };
	struct pending *back = NULL;
	char *text = pending_encode(p);

	assert_non_null(text);
	if (pending_decode(text, strlen(text), &back, &err) < 0)
		fail_msg("%s: %s", text, err.msg);
	free(text);
	return back;
}

static void test_round_trip(void **state)
{
	struct pending *p = finished(), *back;
	struct manifest_run_result r;
	struct manifest_output_in in;

	add_output(p);
	back = round_trip(p);
	assert_int_equal(back->run_id, 42);
	assert_int_equal(back->finish, PENDING_FINISH);
	pending_result(back, &r);
	assert_string_equal(r.verdict, "crashed");
	assert_int_equal(r.exit_code, -1);
	assert_int_equal(r.signal, 11);
	assert_string_equal(r.syscall, "ptrace");
	assert_true(r.wall_ms == 2012.25 && r.cpu_ms == 3.5);
	assert_int_equal(r.peak_memory_bytes, 1 << 20);
	assert_true(r.stderr_truncated && !r.stdout_truncated);
	assert_int_equal(r.ended_ms, 1764000000123);
	assert_true(r.replay);
	assert_int_equal(r.stderr_len, sizeof(STDERR_TEXT) - 1);
	assert_memory_equal(r.stderr_data, STDERR_TEXT, r.stderr_len);
	pending_output(back, &in);
	assert_string_equal(in.result,
			    "{\"verdict\":\"crashed\",\"stdout\":null}");
	assert_true(in.archived);
	assert_int_equal(in.keep, 8);
	/* the kept prefix, and the size the run captured */
	assert_int_equal(in.streams[0].len, 8);
	assert_memory_equal(in.streams[0].data, "out:\0bin", 8);
	assert_int_equal(in.streams[0].size, 13);
	assert_int_equal(in.streams[1].len, 0);
	assert_true(in.streams[1].truncated);
	pending_free(back);
	pending_free(p);
}

static void test_interrupt_and_output_only(void **state)
{
	struct pending *p = pending_new(7, NULL), *back;

	assert_non_null(p);
	p->finish = PENDING_INTERRUPT;
	back = round_trip(p);
	assert_int_equal(back->finish, PENDING_INTERRUPT);
	assert_false(back->has_output);
	pending_free(back);
	/* a finish that committed, its output still waiting */
	p->finish = PENDING_NONE;
	add_output(p);
	back = round_trip(p);
	assert_int_equal(back->finish, PENDING_NONE);
	assert_true(back->has_output);
	pending_free(back);
	pending_free(p);
}

static void expect_bad(const char *text, size_t len, const char *says)
{
	struct al_error err = { 0 };
	struct pending *p = (struct pending *)&err; /* set to NULL */

	if (pending_decode(text, len, &p, &err) == 0)
		fail_msg("accepted %.*s", (int)len, text);
	assert_null(p);
	assert_true(err.msg[0] != '\0');
	if (says != NULL && strstr(err.msg, says) == NULL)
		fail_msg("%.*s: \"%s\" not in \"%s\"", (int)len, text, says,
			 err.msg);
}

/* Every cut of a good file (a crash mid-write of a tool that is not us,
 * a full disk) is refused. */
static void test_truncated(void **state)
{
	struct pending *p = finished();
	char *text;

	add_output(p);
	text = pending_encode(p);
	assert_non_null(text);
	for (size_t n = 0; n < strlen(text); n++)
		expect_bad(text, n, NULL);
	free(text);
	pending_free(p);
}

#define FINISH(F) "{\"airlock_pending\":1,\"run\":5,\"finish\":{" F "}}"
#define GOOD_FINISH_AFTER(X)                                                   \
	"\"verdict\":\"ok\",\"ended_ms\":9,\"exit_code\":0,\"signal\":0,"      \
	"\"syscall\":\"\",\"wall_ms\":1,\"cpu_ms\":1,"                         \
	"\"peak_memory_bytes\":0,\"stdout_truncated\":false,"                  \
	"\"stderr_truncated\":false," X

static void test_garbage(void **state)
{
	static const struct {
		const char *text, *says;
	} cases[] = {
		{ "", "JSON" },
		{ "\x7f"
		  "ELF\x02\x01",
		  "JSON" },
		{ "[1,2]", "not a JSON object" },
		{ "{\"run\":5,\"interrupt\":true}", "airlock_pending" },
		{ "{\"airlock_pending\":2,\"run\":5,\"interrupt\":true}",
		  "out of range" },
		{ "{\"airlock_pending\":1,\"run\":0,\"interrupt\":true}",
		  "\"run\"" },
		{ "{\"airlock_pending\":1,\"run\":\"5\",\"interrupt\":true}",
		  "expected" },
		{ "{\"airlock_pending\":1,\"run\":5}", "records nothing" },
		{ "{\"airlock_pending\":1,\"run\":5,\"interrupt\":1}",
		  "\"interrupt\"" },
		{ "{\"airlock_pending\":1,\"run\":5,\"finish\":[]}",
		  "\"finish\"" },
		{ "{\"airlock_pending\":1,\"run\":5,\"interrupt\":true,"
		  "\"finish\":{}}",
		  "both" },
		{ FINISH(GOOD_FINISH_AFTER("\"stderr_excerpt\":\"!!\"")),
		  "stderr_excerpt" },
		{ FINISH(GOOD_FINISH_AFTER("\"stderr_excerpt\":7")),
		  "stderr_excerpt" },
		{ FINISH(GOOD_FINISH_AFTER("\"x\":1")), "stderr_excerpt" },
		{ FINISH("\"verdict\":\"fine\",\"ended_ms\":9,\"exit_code\":0,"
			 "\"signal\":0,\"syscall\":\"\",\"wall_ms\":1,"
			 "\"cpu_ms\":1,\"peak_memory_bytes\":0,"
			 "\"stdout_truncated\":false,"
			 "\"stderr_truncated\":false,\"stderr_excerpt\":\"\""),
		  "no verdict" },
		{ FINISH("\"verdict\":\"ok\",\"ended_ms\":9,\"exit_code\":999"),
		  "exit_code" },
		{ "{\"airlock_pending\":1,\"run\":5,\"output\":{\"result\":"
		  "\"{}\",\"archived\":false,\"keep\":4,\"stdout\":{\"data\":"
		  "\"aGVsbG8=\",\"size\":2,\"truncated\":false},\"stderr\":"
		  "{\"data\":\"\",\"size\":0,\"truncated\":false}}}",
		  "kept of a size" },
		{ "{\"airlock_pending\":1,\"run\":5,\"output\":{\"result\":"
		  "\"{}\",\"archived\":false,\"keep\":4}}",
		  "stdout" },
		{ "{\"airlock_pending\":1,\"run\":5,\"interrupt\":true,"
		  "\"a\":[[[[[[1]]]]]]}",
		  NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_bad(cases[i].text, strlen(cases[i].text), cases[i].says);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_interrupt_and_output_only),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
