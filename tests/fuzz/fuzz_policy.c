/*
 * libFuzzer target for the policy-file parser (policy/parse.c on libinih)
 * and the canonical form (policy/canonical.c).
 *
 * Each input is a policy file. Whatever it holds, the parser must not
 * crash, leak or misbehave under ASan/UBSan; and when it accepts the input,
 * the canonical text must parse back to a policy with the same hash: the
 * canonical form is documented as "itself a valid policy file that parses
 * to the same policy", and the hash is what a run is recorded under.
 *
 * Built and run by tests/fuzz/run.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Say what broke, then abort(): libFuzzer keeps the input that did it. */
static void broken(const char *what, const char *detail, const char *text)
	__attribute__((noreturn));

static void broken(const char *what, const char *detail, const char *text)
{
	fprintf(stderr, "fuzz_policy: %s: %s\n--- canonical text ---\n%s\n",
		what, detail, text ? text : "(none)");
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	struct al_error err = { 0 };
	struct al_policy *p = policy_parse_string(text, "fuzz", NULL, &err);
	free(text);
	if (!p) {
		/* a refusal must say why */
		if (err.msg[0] == '\0')
			broken("refused without a message", "", NULL);
		return 0;
	}

	char *canonical = policy_canonical(p, &err);
	if (!canonical)
		broken("policy_canonical failed", err.msg, NULL);
	char hash[POLICY_HASH_LEN], again[POLICY_HASH_LEN];
	if (policy_hash(p, hash, &err) < 0)
		broken("policy_hash failed", err.msg, canonical);

	struct al_policy *back =
		policy_parse_string(canonical, "canonical", NULL, &err);
	if (!back)
		broken("the canonical text does not parse", err.msg, canonical);
	if (policy_hash(back, again, &err) < 0)
		broken("policy_hash failed after the round trip", err.msg,
		       canonical);
	if (strcmp(hash, again) != 0) {
		char detail[2 * POLICY_HASH_LEN + 32];
		snprintf(detail, sizeof(detail), "%s before, %s after", hash,
			 again);
		broken("the round trip changed the hash", detail, canonical);
	}

	policy_free(back);
	free(canonical);
	policy_free(p);
	return 0;
}
