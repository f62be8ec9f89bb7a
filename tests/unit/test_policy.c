/*
 * Unit tests for the policy object: docs/design.md's defaults, overrides
 * and their errors (a bad value changes nothing), the canonical form and
 * its hash, and the seccomp filter that libseccomp compiles from it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "sandbox/sandbox.h"

#define MiB (1024ull * 1024ull)

static int setup(void **state)
{
	struct al_error err = { 0 };
	*state = policy_new_default(&err);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	policy_free(*state);
	return 0;
}

static void test_defaults(void **state)
{
	const struct policy_limits *l = policy_limits(*state);
	assert_string_equal(policy_name(*state), "default");
	assert_int_equal(l->memory_bytes, 64 * MiB);
	assert_int_equal(l->timeout_us, 3000000);
	assert_int_equal(l->cpu_time_us, 3000000);
	assert_int_equal(l->pids, 64);
	assert_int_equal(l->stdout_max, 1 * MiB);
	assert_int_equal(l->stderr_max, 1 * MiB);
	assert_int_equal(l->tmp_bytes, 16 * MiB);
	assert_int_equal(l->fsize_bytes, 16 * MiB);
	assert_int_equal(l->nofile, 256);
	assert_int_not_equal(l->uid, 0);
	assert_int_not_equal(l->gid, 0);
	assert_int_equal(l->net, POLICY_NET_LOOPBACK);
	assert_int_equal(l->limits_mode, POLICY_LIMITS_REQUIRED);
	assert_string_equal(policy_path(*state),
			    "/usr/local/bin:/usr/bin:/bin");
}

static bool env_has_prefix(char *const *env, const char *prefix)
{
	for (size_t i = 0; env[i]; i++)
		if (strncmp(env[i], prefix, strlen(prefix)) == 0)
			return true;
	return false;
}

static void test_environment_is_built_not_inherited(void **state)
{
	setenv("AIRLOCK_UNIT_SECRET", "x", 1);
	char *const *env = policy_environ(*state);
	assert_true(env_has_prefix(env, "PATH="));
	assert_true(env_has_prefix(env, "HOME=/tmp"));
	assert_false(env_has_prefix(env, "AIRLOCK_UNIT_SECRET="));
	unsetenv("AIRLOCK_UNIT_SECRET");
}

static void test_overrides(void **state)
{
	struct al_error err = { 0 };
	assert_int_equal(policy_set_memory(*state, "128M", &err), 0);
	assert_int_equal(policy_limits(*state)->memory_bytes, 128 * MiB);
	assert_int_equal(policy_set_timeout(*state, "200ms", &err), 0);
	assert_int_equal(policy_limits(*state)->timeout_us, 200000);
	assert_int_equal(policy_limits(*state)->cpu_time_us, 200000);
	assert_int_equal(policy_set_pids(*state, "10", &err), 0);
	assert_int_equal(policy_limits(*state)->pids, 10);
	assert_int_equal(policy_set_net(*state, "none", &err), 0);
	assert_int_equal(policy_limits(*state)->net, POLICY_NET_NONE);
}

/* Each bad value: -1, a message naming the setting, nothing changed. */
static void expect_rejected(void **state,
			    int (*set)(struct al_policy *, const char *,
				       struct al_error *),
			    const char *value, const char *want_in_msg)
{
	struct policy_limits before = *policy_limits(*state);
	struct al_error err = { 0 };
	assert_int_equal(set(*state, value, &err), -1);
	assert_non_null(strstr(err.msg, want_in_msg));
	assert_memory_equal(&before, policy_limits(*state), sizeof(before));
}

static void test_bad_overrides(void **state)
{
	expect_rejected(state, policy_set_memory, "0",
			"memory: 0 is out of range");
	expect_rejected(state, policy_set_memory, "1K", "out of range");
	expect_rejected(state, policy_set_memory, "2T", "out of range");
	expect_rejected(state, policy_set_memory, "99999999999999T",
			"memory: size \"99999999999999T\" is too large");
	expect_rejected(state, policy_set_memory, "lots",
			"memory: invalid size");
	expect_rejected(state, policy_set_memory, "", "memory: invalid size");
	expect_rejected(state, policy_set_timeout, "-1",
			"timeout: invalid duration");
	expect_rejected(state, policy_set_timeout, "0",
			"timeout: 0 is out of range");
	expect_rejected(state, policy_set_timeout, "25h", "out of range");
	expect_rejected(state, policy_set_timeout, "3 s", "invalid duration");
	expect_rejected(state, policy_set_pids, "0", "pids: invalid number");
	expect_rejected(state, policy_set_pids, "70000",
			"pids: invalid number");
	expect_rejected(state, policy_set_pids, "-3", "pids: invalid number");
	expect_rejected(state, policy_set_limits_mode, "sometimes",
			"limits: invalid value \"sometimes\": expected "
			"required or best-effort");
	expect_rejected(
		state, policy_set_net, "internet",
		"net: invalid value \"internet\": expected none or loopback");
}

static void test_hash(void **state)
{
	char a[POLICY_HASH_LEN], b[POLICY_HASH_LEN], c[POLICY_HASH_LEN];
	struct al_error err = { 0 };
	assert_int_equal(policy_hash(*state, a, &err), 0);
	assert_int_equal(strlen(a), 7 + 64);
	assert_memory_equal(a, "sha256:", 7);

	/* a second default policy means the same: the same hash */
	struct al_policy *other = policy_new_default(&err);
	assert_non_null(other);
	assert_int_equal(policy_hash(other, b, &err), 0);
	assert_string_equal(a, b);

	/* any change of meaning changes it, and changing it back restores */
	assert_int_equal(policy_set_memory(other, "65M", &err), 0);
	assert_int_equal(policy_hash(other, c, &err), 0);
	assert_string_not_equal(a, c);
	assert_int_equal(policy_set_memory(other, "64M", &err), 0);
	assert_int_equal(policy_hash(other, c, &err), 0);
	assert_string_equal(a, c);
	assert_int_equal(policy_set_net(other, "none", &err), 0);
	assert_int_equal(policy_hash(other, c, &err), 0);
	assert_string_not_equal(a, c);
	assert_int_equal(policy_set_net(other, "loopback", &err), 0);
	assert_int_equal(policy_set_limits_mode(other, "best-effort", &err), 0);
	assert_int_equal(policy_hash(other, c, &err), 0);
	assert_string_not_equal(a, c);
	policy_free(other);
}

static void test_canonical_sorted(void **state)
{
	struct al_error err = { 0 };
	char *text = policy_canonical(*state, &err);
	assert_non_null(text);
	char *allow = strstr(text, "\nallow = ");
	assert_non_null(allow);
	/* the allow list is sorted: each name is >= the previous one */
	char *line_end = strchr(allow + 1, '\n');
	assert_non_null(line_end);
	*line_end = '\0';
	char *prev = NULL;
	for (char *tok = strtok(allow + 9, " "); tok; tok = strtok(NULL, " ")) {
		if (prev)
			assert_true(strcmp(prev, tok) < 0);
		prev = tok;
	}
	assert_null(strstr(allow, " ptrace"));
	assert_null(strstr(allow, " mount "));
	free(text);
}

static void test_filter_compiles(void **state)
{
	struct al_error err = { 0 };
	struct sandbox_filter *f = sandbox_filter_compile(*state, &err);
	assert_non_null(f);
	assert_true(sandbox_filter_instructions(f) > 50);
	assert_true(sandbox_filter_instructions(f) < 4096);
	sandbox_filter_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_environment_is_built_not_inherited, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_overrides, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_overrides, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_canonical_sorted, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_filter_compiles, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
