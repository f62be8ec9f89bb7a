/*
 * The one line that says why a run ended when it was not the module's own
 * exit: "airlock run" prints it after the module's output passed through,
 * "airlock exec" after the output the daemon captured. One wording for
 * both, from the members of the result object (docs/design.md).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "tools/cli.h"

/* "SIGSEGV" -> 11; 0 when unknown. */
static int signal_number(const char *name)
{
	for (int sig = 1; name && sig < NSIG; sig++) {
		const char *abbrev = sigabbrev_np(sig);
		if (abbrev && strncmp(name, "SIG", 3) == 0 &&
		    strcmp(name + 3, abbrev) == 0)
			return sig;
	}
	return 0;
}

void cli_explain_verdict(FILE *f, const struct cli_verdict *v)
{
	const char *verdict = v->verdict ? v->verdict : "?";

	if (strcmp(verdict, "ok") == 0 || strcmp(verdict, "exit_nonzero") == 0)
		return;
	if (strcmp(verdict, "timeout") == 0) {
		fprintf(f, "airlock: timeout: killed after %.0f ms",
			v->wall_ms);
		if (v->timeout_ms)
			fprintf(f, " (limit %llu ms)",
				(unsigned long long)v->timeout_ms);
		fputc('\n', f);
	} else if (strcmp(verdict, "memory_limit") == 0) {
		char size[32] = "memory";
		if (v->memory_bytes)
			format_size(v->memory_bytes, size, sizeof(size));
		fprintf(f, "airlock: memory_limit: killed at the %s limit\n",
			size);
	} else if (strcmp(verdict, "seccomp_violation") == 0) {
		fprintf(f,
			"airlock: seccomp_violation: the policy denies the "
			"syscall %s\n",
			v->syscall && *v->syscall ? v->syscall : "(unknown)");
	} else if (strcmp(verdict, "crashed") == 0) {
		int sig = signal_number(v->signal);
		if (sig)
			fprintf(f,
				"airlock: crashed: killed by signal %d (%s)\n",
				sig, strsignal(sig));
		else
			fprintf(f, "airlock: crashed: killed by %s\n",
				v->signal ? v->signal : "a signal");
	} else if (strcmp(verdict, "setup_error") == 0) {
		fprintf(f, "airlock: setup_error: %s\n",
			v->error ? v->error : "(no message)");
	} else if (strcmp(verdict, "build_failed") == 0) {
		fprintf(f,
			"airlock: build_failed: the bundle's build step failed%s%s"
			" (its output is the answer's \"build\" member)\n",
			v->error && *v->error ? ": " : "",
			v->error ? v->error : "");
	} else {
		fprintf(f, "airlock: %s\n", verdict);
	}
}
