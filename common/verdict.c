/* The verdict names (common.h): the only table of them. */
#include <string.h>

#include "common/common.h"

static const char *const names[AL_VERDICT_COUNT] = {
	[AL_VERDICT_OK] = "ok",
	[AL_VERDICT_EXIT_NONZERO] = "exit_nonzero",
	[AL_VERDICT_CRASHED] = "crashed",
	[AL_VERDICT_TIMEOUT] = "timeout",
	[AL_VERDICT_MEMORY_LIMIT] = "memory_limit",
	[AL_VERDICT_SECCOMP_VIOLATION] = "seccomp_violation",
	[AL_VERDICT_SETUP_ERROR] = "setup_error",
	[AL_VERDICT_BUILD_FAILED] = "build_failed",
};

const char *al_verdict_name(enum al_verdict v)
{
	/* a record never says less than the truth: an unknown value is a
	 * failure of ours */
	return (unsigned)v < AL_VERDICT_COUNT ? names[v] : "setup_error";
}

int al_verdict_parse(const char *name)
{
	for (int v = 0; name != NULL && v < AL_VERDICT_COUNT; v++)
		if (strcmp(names[v], name) == 0)
			return v;
	return -1;
}
