/*
 * Unit tests for the pure parts of syscall learning: syscall sets (bitmap
 * → sorted names → the manifest's text and back), the learned policy
 * writer (its output parses, round-trips and names where each call was
 * first seen), and policy_restrict().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "sandbox/sandbox.h"
#include "tools/learn_policy.c"

static int nr(const char *name)
{
	int n = seccomp_syscall_resolve_name(name);
	assert_true(n >= 0);
	return n;
}

static void test_set_basics(void **state)
{
	(void)state;
	struct sandbox_syscalls s = { { 0 } };
	assert_int_equal(sandbox_syscalls_count(&s), 0);
	sandbox_syscalls_add(&s, nr("write"));
	sandbox_syscalls_add(&s, nr("write"));
	sandbox_syscalls_add(&s, 0);
	sandbox_syscalls_add(&s, SANDBOX_SYSCALL_MAX - 1);
	/* out of range: ignored, never written past the bitmap */
	sandbox_syscalls_add(&s, -1);
	sandbox_syscalls_add(&s, SANDBOX_SYSCALL_MAX);
	assert_int_equal(sandbox_syscalls_count(&s), 3);
	assert_true(sandbox_syscalls_has(&s, nr("write")));
	assert_true(sandbox_syscalls_has(&s, 0));
	assert_false(sandbox_syscalls_has(&s, nr("openat")));
	assert_false(sandbox_syscalls_has(&s, -1));
	assert_false(sandbox_syscalls_has(&s, SANDBOX_SYSCALL_MAX));
}

static void test_names_sorted(void **state)
{
	(void)state;
	struct sandbox_syscalls s = { { 0 } };
	const char *in[] = { "write", "memfd_create", "read", "getrandom",
			     "exit_group" };
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(sandbox_syscalls_add_name(&s, in[i], NULL), 0);
	char **names = sandbox_syscalls_names(&s);
	assert_non_null(names);
	const char *want[] = { "exit_group", "getrandom", "memfd_create",
			       "read", "write" };
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(names[i], want[i]);
	assert_null(names[5]);
	free(names);

	char *text = sandbox_syscalls_join(&s);
	assert_string_equal(text,
			    "exit_group getrandom memfd_create read write");
	struct sandbox_syscalls back;
	assert_int_equal(sandbox_syscalls_parse(text, &back, NULL), 0);
	assert_memory_equal(&back, &s, sizeof(s));
	free(text);

	struct sandbox_syscalls none = { { 0 } };
	text = sandbox_syscalls_join(&none);
	assert_string_equal(text, "");
	assert_int_equal(sandbox_syscalls_parse(text, &back, NULL), 0);
	assert_int_equal(sandbox_syscalls_count(&back), 0);
	free(text);
	names = sandbox_syscalls_names(&none);
	assert_null(names[0]);
	free(names);
}

static void test_parse_errors(void **state)
{
	(void)state;
	struct sandbox_syscalls s;
	struct al_error err = { 0 };
	assert_int_equal(sandbox_syscalls_parse("read ptrce write", &s, &err),
			 -1);
	assert_string_equal(err.msg,
			    "unknown syscall \"ptrce\" on this architecture");
	char long_name[200];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(sandbox_syscalls_parse(long_name, &s, &err), -1);
	/* separators: spaces, commas, tabs, newlines */
	assert_int_equal(sandbox_syscalls_parse(" read,write\n\tbrk ", &s,
						NULL),
			 0);
	assert_int_equal(sandbox_syscalls_count(&s), 3);
}

static char *write_learned(const struct learned *l)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	assert_int_equal(learned_write(f, l, NULL), 0);
	assert_int_equal(fclose(f), 0);
	return text;
}

static bool allows(const struct al_policy *p, const char *name)
{
	for (size_t i = 0; i < policy_syscall_count(p); i++) {
		const struct policy_syscall *s = policy_syscall_at(p, i);
		if (strcmp(s->name, name) == 0)
			return s->action == POLICY_SYS_ALLOW;
	}
	return false;
}

static size_t count_allowed(const struct al_policy *p)
{
	size_t n = 0;
	for (size_t i = 0; i < policy_syscall_count(p); i++)
		n += policy_syscall_at(p, i)->action == POLICY_SYS_ALLOW;
	return n;
}

static void test_learned_policy(void **state)
{
	(void)state;
	struct al_policy *base = policy_new_default(NULL);
	assert_non_null(base);
	static struct learned l; /* large: the first-seen table */
	char *runs[] = { "case one", "case two" };
	l.base = base;
	l.runs = runs;
	l.nruns = 2;
	struct sandbox_syscalls a = { { 0 } }, b = { { 0 } };
	sandbox_syscalls_parse("read write exit_group", &a, NULL);
	sandbox_syscalls_parse("read memfd_create", &b, NULL);
	assert_int_equal(learned_add(&l, &a, runs[0]), 3);
	assert_int_equal(learned_add(&l, &b, runs[1]), 1);
	assert_string_equal(l.first_seen[nr("read")], "case one");
	assert_string_equal(l.first_seen[nr("memfd_create")], "case two");

	char *text = write_learned(&l);
	assert_non_null(strstr(text, "allow = memfd_create"));
	assert_non_null(strstr(text, "# first seen: case two\n"));
	assert_non_null(strstr(text, "#   case one\n#   case two\n"));
	/* execve and exit: needed whether or not a run saw them */
	assert_non_null(strstr(text, "# starts or ends the module\n"));

	struct al_error err = { 0 };
	struct al_policy *p = policy_parse_string(text, "learned.policy",
						  "learned", &err);
	if (!p)
		fail_msg("the learned policy does not parse: %s\n%s", err.msg,
			 text);
	assert_string_equal(policy_name(p), "default-learned");
	const char *want[] = { "read",         "write",  "exit_group",
			       "memfd_create", "execve", "exit" };
	for (size_t i = 0; i < 6; i++)
		if (!allows(p, want[i]))
			fail_msg("%s is not allowed", want[i]);
	assert_int_equal(count_allowed(p), 6);
	/* the base's errno entries and limits are kept */
	assert_int_equal(policy_syscall_count(p),
			 6 + policy_syscall_count(base) - count_allowed(base));
	assert_memory_equal(policy_limits(p), policy_limits(base),
			    sizeof(struct policy_limits));
	/* written again from the parsed file: the same rules */
	char *canon1 = policy_canonical(p, NULL);
	struct al_policy *again = policy_parse_string(canon1, "x", "x", NULL);
	assert_non_null(again);
	char *canon2 = policy_canonical(again, NULL);
	assert_string_equal(canon1, canon2);
	free(canon1);
	free(canon2);
	policy_free(again);
	policy_free(p);
	free(text);
	policy_free(base);
}

static bool keep_rw(const char *name, void *arg)
{
	(void)arg;
	return strcmp(name, "read") == 0 || strcmp(name, "write") == 0;
}

static void test_restrict(void **state)
{
	(void)state;
	struct al_error err = { 0 };
	struct al_policy *base = policy_parse_string(
		"[policy]\nname = base\ndescription = d\n"
		"[limits]\nmemory = 32M\n[runtime]\nseccomp = learned\n",
		"base.policy", "base", &err);
	assert_non_null(base);
	assert_true(policy_seccomp_learned(base));
	struct al_policy *r = policy_restrict(base, keep_rw, NULL, &err);
	assert_non_null(r);
	assert_false(policy_seccomp_learned(r));
	assert_string_equal(policy_name(r), "base");
	assert_string_equal(policy_description(r), "d");
	assert_int_equal(count_allowed(r), 2);
	assert_true(allows(r, "read"));
	assert_true(allows(r, "write"));
	assert_int_equal(policy_limits(r)->memory_bytes, 32u << 20);
	/* errno entries stay */
	assert_int_equal(policy_syscall_count(r),
			 2 + policy_syscall_count(base) - count_allowed(base));
	char h1[POLICY_HASH_LEN], h2[POLICY_HASH_LEN];
	assert_int_equal(policy_hash(base, h1, NULL), 0);
	assert_int_equal(policy_hash(r, h2, NULL), 0);
	assert_string_not_equal(h1, h2);
	policy_free(r);
	policy_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_basics),
		cmocka_unit_test(test_names_sorted),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_learned_policy),
		cmocka_unit_test(test_restrict),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
