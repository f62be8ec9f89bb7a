/*
 * Unit tests for the pure parts of `airlock validate`: suite parsing and
 * its errors, expectation checks, XML escaping and the JUnit report.
 *
 * tools/ is not in libairlock.a, so the three pure files are compiled
 * into this test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/validate_check.c"
#include "tools/validate_report.c"
#include "tools/validate_suite.c"

static struct vsuite *parse(const char *text, struct al_error *err)
{
	return vsuite_parse(text, strlen(text), "dir/s.ini", err);
}

/* ---------------------------------------------------------------- suite */

static void test_suite_full(void **state)
{
	(void)state;
	struct al_error err = { 0 };
	struct vsuite *s = parse("# comment\n"
				 "[case one]\n"
				 "module = ./m.py\n"
				 "args = a  b\n"
				 "args = c\n"
				 "arg = \"with space \"\n"
				 "stdin = x\\ty\\n\\x41\n"
				 "policy = strict\n"
				 "timeout = 2s\n"
				 "memory = 32M\n"
				 "verdict = crashed\n"
				 "exit_code = 7\n"
				 "stdout = \" lead\"\n"
				 "stdout_contains = a ; b\n"
				 "stdout_contains = c\n"
				 "stdout_regex = ^[0-9]+$\n"
				 "stderr_contains = oops\n"
				 "max_wall = 1.5s\n"
				 "max_memory = 10M\n"
				 "[case two]\n"
				 "module = /bin/true\n",
				 &err);
	assert_non_null(s);
	assert_int_equal(s->n, 2);
	assert_string_equal(s->name, "s");
	struct vcase *c = &s->cases[0];
	assert_string_equal(c->name, "one");
	assert_int_equal(c->line, 2);
	assert_string_equal(c->module.value, "dir/./m.py");
	assert_int_equal(c->nargs, 4);
	assert_string_equal(c->args[0], "a");
	assert_string_equal(c->args[1], "b");
	assert_string_equal(c->args[2], "c");
	assert_string_equal(c->args[3], "with space ");
	assert_null(c->args[4]);
	assert_true(c->has_stdin);
	assert_int_equal(c->stdin_text.len, 5);
	assert_memory_equal(c->stdin_text.text, "x\ty\nA", 5);
	assert_string_equal(c->policy.value, "strict");
	assert_int_equal(c->policy.line, 8);
	assert_string_equal(c->timeout.value, "2s");
	assert_int_equal(c->verdict, AL_VERDICT_CRASHED);
	assert_int_equal(c->exit_code, 7);
	assert_string_equal(c->out.exact.text, " lead");
	assert_int_equal(c->out.ncontains, 2);
	assert_string_equal(c->out.contains[0].text, "a ; b");
	assert_int_equal(c->out.nregex, 1);
	assert_int_equal(c->err.ncontains, 1);
	assert_int_equal(c->max_wall_us, 1500000);
	assert_int_equal(c->max_memory_bytes, 10 * 1024 * 1024);
	c = &s->cases[1];
	assert_string_equal(c->module.value, "/bin/true");
	assert_int_equal(c->verdict, -1);
	assert_int_equal(c->exit_code, -1);
	vsuite_free(s);
}

static const struct {
	const char *text;
	const char *message; /* the start of the error */
} bad[] = {
	{ "[case a]\nmodule = x\nfoo = 1\n",
	  "dir/s.ini:3: [case a] foo: unknown key" },
	{ "[case a]\nmodule = x\nstdout_regex = a(\n",
	  "dir/s.ini:3: [case a] stdout_regex: bad regular expression \"a(\"" },
	{ "[case a]\nmodule = x\nmax_wall = 3 days\n",
	  "dir/s.ini:3: [case a] max_wall: " },
	{ "[case a]\nmodule = x\nmax_memory = lots\n",
	  "dir/s.ini:3: [case a] max_memory: " },
	{ "[case a]\nmodule = x\n\n[case b]\nargs = 1\n",
	  "dir/s.ini:4: [case b] module: missing" },
	{ "[case a]\nmodule = x\n[case a]\nmodule = y\n",
	  "dir/s.ini:3: duplicate case \"a\" (first at line 1)" },
	{ "[case a]\nmodule = x\nverdict = ok\nverdict = ok\n",
	  "dir/s.ini:4: [case a] verdict: duplicate key" },
	{ "[other]\n", "dir/s.ini:1: unknown section [other]" },
	{ "[case ]\n", "dir/s.ini:1: unknown section [case ]" },
	{ "[case  a]\n", "dir/s.ini:1: bad case name" },
	{ "[case aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n",
	  "dir/s.ini:1: bad case name" },
	{ "[case a\n", "dir/s.ini:1: syntax error" },
	{ "[case a]\nmodule = x\nno equals sign\n",
	  "dir/s.ini:3: syntax error" },
	{ "x = 1\n[case a]\nmodule = x\n", "dir/s.ini:1: [] x: a key outside" },
	{ "[case a]\nmodule = x\nstdin = a\nstdin_file = b\n",
	  "dir/s.ini:4: [case a] stdin_file: give stdin or stdin_file" },
	{ "[case a]\nmodule = x\nstdout = \\x4\n",
	  "dir/s.ini:3: [case a] stdout: bad escape" },
	{ "[case a]\nmodule = x\nexit_code = -1\n",
	  "dir/s.ini:3: [case a] exit_code: " },
	{ "[case a]\nmodule = x\nverdict = good\n",
	  "dir/s.ini:3: [case a] verdict: unknown verdict" },
	{ "[case a]\nmodule = x\nnet = wifi\n",
	  "dir/s.ini:3: [case a] net: expected none or loopback" },
	{ "[case a]\nmodule = x\ntimeout = 0\n",
	  "dir/s.ini:3: [case a] timeout: " },
	{ "# empty\n", "dir/s.ini: no [case NAME] section" },
};

static void test_suite_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct al_error err = { 0 };
		struct vsuite *s = parse(bad[i].text, &err);
		if (s ||
		    strncmp(err.msg, bad[i].message, strlen(bad[i].message)))
			fail_msg("suite %zu %s: got \"%s\", want \"%s...\"", i,
				 s ? "parsed" : "failed", err.msg,
				 bad[i].message);
	}
}

static void test_suite_nul_and_long_line(void **state)
{
	(void)state;
	struct al_error err = { 0 };
	const char text[] = "[case a]\nmodule = x\0y\n";
	assert_null(vsuite_parse(text, sizeof(text) - 1, "s.ini", &err));
	assert_string_equal(err.msg, "s.ini:2: contains a NUL byte");
	size_t n = VSUITE_MAX_LINE + 100;
	char *big = malloc(n + 32);
	assert_non_null(big);
	strcpy(big, "[case a]\nmodule = ");
	memset(big + strlen(big), 'x', n);
	big[18 + n] = '\0';
	assert_null(parse(big, &err));
	assert_true(strncmp(err.msg, "dir/s.ini:2: line too long", 26) == 0);
	free(big);
}

static void test_modules(void **state)
{
	(void)state;
	char *mods[] = { "./a.sh", "b" };
	struct vsuite *s = vsuite_from_modules(mods, 2, NULL);
	assert_non_null(s);
	assert_int_equal(s->n, 2);
	assert_string_equal(s->cases[0].module.value, "./a.sh");
	assert_int_equal(s->cases[1].verdict, AL_VERDICT_OK);
	vsuite_free(s);
}

/* ------------------------------------------------------------- checking */

static struct vcase *one_case(struct vsuite **s, const char *spec)
{
	char text[1024];
	snprintf(text, sizeof(text), "[case c]\nmodule = /m\n%s", spec);
	struct al_error err = { 0 };
	*s = parse(text, &err);
	if (!*s)
		fail_msg("%s", err.msg);
	return &(*s)->cases[0];
}

static struct sandbox_result result(enum al_verdict v, int code,
				    const char *out)
{
	struct sandbox_result r = { .verdict = v, .exit_code = code };
	r.stdout_data = (char *)out;
	r.stdout_len = out ? strlen(out) : 0;
	r.wall_ms = 12.5;
	r.peak_memory_bytes = 2 * 1024 * 1024;
	return r;
}

static void expect_failures(const char *spec, const struct sandbox_result *r,
			    const char *const *want, size_t n)
{
	struct vsuite *s;
	struct vcase *c = one_case(&s, spec);
	struct vfailures f = { 0 };
	assert_int_equal(vcheck(c, r, &f), 0);
	if (f.n != n)
		fail_msg("%s: %zu failures, want %zu (first: %s)", spec, f.n, n,
			 f.n ? f.msg[0] : "-");
	for (size_t i = 0; i < n; i++)
		assert_string_equal(f.msg[i], want[i]);
	vfailures_free(&f);
	vsuite_free(s);
}

static void test_check(void **state)
{
	(void)state;
	struct sandbox_result ok = result(AL_VERDICT_OK, 0, "hello\n");
	expect_failures("", &ok, NULL, 0);
	expect_failures(
		"stdout = hello\\n\nstdout_contains = ell\n"
		"stdout_regex = ^h.*o$\nmax_wall = 1s\nmax_memory = 4M\n",
		&ok, NULL, 0);

	struct sandbox_result segv = result(AL_VERDICT_CRASHED, -1, NULL);
	segv.signal = 11;
	const char *v[] = { "expected verdict ok, got crashed (SIGSEGV)" };
	expect_failures("", &segv, v, 1);
	const char *e[] = {
		"expected exit_code 0, got no exit code: crashed (SIGSEGV)"
	};
	expect_failures("exit_code = 0\n", &segv, e, 1);

	struct sandbox_result three = result(AL_VERDICT_EXIT_NONZERO, 3,
					     "x\x01\n");
	expect_failures("exit_code = 3\n", &three, NULL, 0);
	const char *all[] = {
		"expected verdict timeout, got exit_nonzero (exit code 3)",
		"expected exit_code 4, got 3",
		"expected stdout \"y\", got \"x\\x01\\n\"",
		"expected stdout to contain \"z\", got \"x\\x01\\n\"",
		"expected stdout to match /^y$/, got \"x\\x01\\n\"",
		"expected stderr to contain \"w\", got \"\"",
		"expected max_wall 10ms, took 12.5 ms",
		"expected max_memory 1M, peak 2 MiB (2097152 bytes)",
	};
	expect_failures(
		"verdict = timeout\nexit_code = 4\nstdout = y\n"
		"stdout_contains = z\nstdout_regex = ^y$\n"
		"stderr_contains = w\nmax_wall = 10ms\nmax_memory = 1M\n",
		&three, all, ARRAY_SIZE(all));

	struct sandbox_result sc = result(AL_VERDICT_SECCOMP_VIOLATION, -1,
					  NULL);
	snprintf(sc.syscall, sizeof(sc.syscall), "ptrace");
	const char *s[] = {
		"expected verdict ok, got seccomp_violation (ptrace)"
	};
	expect_failures("", &sc, s, 1);
}

/* ------------------------------------------------------------------ XML */

static void xml(const char *in, size_t n, bool attr, const char *want)
{
	struct vbuf b = { 0 };
	vxml_escape(&b, in, n, attr);
	vbuf_append(&b, "", 0);
	assert_false(b.failed);
	assert_string_equal(b.data ? b.data : "", want);
	vbuf_free(&b);
}

#define U_FFFD "\xEF\xBF\xBD"

static void test_xml_escape(void **state)
{
	(void)state;
	xml("a<b>&c]]>", 9, false, "a&lt;b&gt;&amp;c]]&gt;");
	xml("\"q\" 'a'", 7, false, "\"q\" 'a'");
	xml("\"q\"\n\t", 5, true, "&quot;q&quot;&#10;&#9;");
	xml("l\nt\tc\r", 6, false, "l\nt\tc&#13;");
	xml("\x01\x1b\x7f", 3, false, U_FFFD U_FFFD "\x7f");
	xml("a\0b", 3, false, "a" U_FFFD "b");
	/* valid UTF-8 passes; C1 controls are XML 1.0 characters */
	xml("\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xC2\x80", 14, false,
	    "\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xC2\x80");
	/* invalid: lone bytes, overlong, surrogate, beyond U+10FFFF,
	 * truncated, U+FFFE and U+FFFF */
	xml("\xff\xfe", 2, false, U_FFFD U_FFFD);
	xml("\xC0\xAF", 2, false, U_FFFD U_FFFD);
	xml("\xED\xA0\x80", 3, false, U_FFFD U_FFFD U_FFFD);
	xml("\xF4\x90\x80\x80", 4, false, U_FFFD U_FFFD U_FFFD U_FFFD);
	xml("\xE2\x82", 2, false, U_FFFD U_FFFD);
	xml("\xEF\xBF\xBE\xEF\xBF\xBF", 6, false, U_FFFD U_FFFD);
}

static void test_quote(void **state)
{
	(void)state;
	struct vbuf b = { 0 };
	vbuf_quote(&b, "a\"\\\n\x01\xff", 6, 100);
	vbuf_quote(&b, "abcdef", 6, 3);
	assert_string_equal(b.data, "\"a\\\"\\\\\\n\\x01\\xff\"\"abc...\"");
	vbuf_free(&b);
}

static void test_junit(void **state)
{
	(void)state;
	struct al_error err = { 0 };
	struct vsuite *s = parse("[case p<&]\nmodule = /m\n"
				 "[case f]\nmodule = /m\n"
				 "[case e]\nmodule = /m\n",
				 &err);
	assert_non_null(s);
	struct vreport r[3] = { 0 };
	r[0].passed = true;
	r[0].result.stdout_data = strdup("out\x01");
	r[0].result.stdout_len = 4;
	r[0].result.wall_ms = 1500;
	r[1].result.stderr_data = strdup("err");
	r[1].result.stderr_len = 3;
	r[1].failures.msg = calloc(2, sizeof(char *));
	r[1].failures.msg[0] = strdup("one \"a\"");
	r[1].failures.msg[1] = strdup("two");
	r[1].failures.n = 2;
	r[2].error = true;
	r[2].failures.msg = calloc(1, sizeof(char *));
	r[2].failures.msg[0] = strdup("setup");
	r[2].failures.n = 1;
	char *x = vjunit_render(s, r, 2000, "2024-01-01T00:00:00", "h");
	assert_non_null(x);
	assert_non_null(
		strstr(x, "<testsuite name=\"s\" tests=\"3\" "
			  "failures=\"1\" errors=\"1\" skipped=\"0\" "
			  "time=\"2.000\" timestamp=\"2024-01-01T00:00:00\" "
			  "hostname=\"h\">"));
	assert_non_null(strstr(x,
			       "<testcase name=\"p&lt;&amp;\" classname=\"s\" "
			       "time=\"1.500\">"));
	assert_non_null(strstr(x, "<system-out>out" U_FFFD "</system-out>"));
	assert_non_null(
		strstr(x, "<failure message=\"one &quot;a&quot;; two\" "
			  "type=\"expectation\">one \"a\"\ntwo\n</failure>"));
	assert_non_null(strstr(x, "<system-err>err</system-err>"));
	assert_non_null(
		strstr(x, "<error message=\"setup\" type=\"setup_error\">"));
	free(x);
	char *j = vjson_render(s, r, 2000);
	assert_non_null(j);
	assert_non_null(
		strstr(j,
		       "\"tests\":3,\"passed\":1,\"failures\":1,\"errors\":1"));
	assert_non_null(strstr(j,
			       "{\"name\":\"f\",\"passed\":false,\"failures\":"
			       "[\"one \\\"a\\\"\",\"two\"]}"));
	free(j);
	for (size_t i = 0; i < 3; i++)
		vreport_release(&r[i]);
	vsuite_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_suite_full),
		cmocka_unit_test(test_suite_errors),
		cmocka_unit_test(test_suite_nul_and_long_line),
		cmocka_unit_test(test_modules),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_xml_escape),
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_junit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
