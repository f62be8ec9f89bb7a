/*
 * The per-run option flags airlock run and airlock exec share: --env
 * NAME=value, split here; what a name may be and which names a run may
 * set is policy_tighten()'s to say, for both commands alike.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "tools/cli.h"

_Static_assert(CLI_ENV_MAX == POLICY_REQUEST_ENV_MAX,
	       "as many --env as a request may carry");

int cli_env_add(struct cli_env *e, const char *arg, char *msg, size_t len)
{
	const char *eq = strchr(arg, '=');

	if (!eq || eq == arg) {
		snprintf(msg, len, "--env %.64s: expected NAME=value", arg);
		return -1;
	}
	if (e->n == CLI_ENV_MAX) {
		snprintf(msg, len, "too many --env: at most %d", CLI_ENV_MAX);
		return -1;
	}
	char *name = strndup(arg, (size_t)(eq - arg));
	if (!name) {
		snprintf(msg, len, "--env: out of memory");
		return -1;
	}
	e->names[e->n] = name;
	e->values[e->n++] = eq + 1;
	return 0;
}

void cli_env_free(struct cli_env *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->names[i]);
	e->n = 0;
}
