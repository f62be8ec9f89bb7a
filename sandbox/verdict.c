/*
 * Verdicts and exit statuses (docs/design.md, "airlock run"), decided from what
 * the parent saw. Pure code: unit-tested in tests/unit/test_verdict.c.
 *
 * Supervisor failures and module failures stay apart: setup_error is ours
 * (or a module that cannot be executed at all); every other verdict is the
 * module's own doing.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "sandbox/internal.h"

#define EXIT_TIMEOUT 124
#define EXIT_SETUP 125
#define EXIT_NOT_EXECUTABLE 126
#define EXIT_NOT_FOUND 127

void sandbox_result_setup_error(struct sandbox_result *r, int exit_status,
				const char *message)
{
	r->verdict = AL_VERDICT_SETUP_ERROR;
	r->exit_status = exit_status ? exit_status : EXIT_SETUP;
	r->exit_code = -1;
	r->signal = 0;
	snprintf(r->error, sizeof(r->error), "%s", message);
}

static void set(struct sandbox_result *r, enum al_verdict v, int exit_code,
		int sig, int exit_status)
{
	r->verdict = v;
	r->exit_code = exit_code;
	r->signal = sig;
	r->exit_status = exit_status;
}

static void classify_status(const struct verdict_input *in,
			    struct sandbox_result *r)
{
	int st = in->status;
	if (WIFEXITED(st)) {
		int code = WEXITSTATUS(st);
		set(r, code == 0 ? AL_VERDICT_OK : AL_VERDICT_EXIT_NONZERO,
		    code, 0, code);
		return;
	}
	int sig = WIFSIGNALED(st) ? WTERMSIG(st) : SIGKILL;
	if (sig == SIGKILL && in->oom_kills > 0)
		set(r, AL_VERDICT_MEMORY_LIMIT, -1, SIGKILL, 128 + SIGKILL);
	else if (sig == SIGXCPU || (sig == SIGKILL && in->cpu_limit_hit))
		/* RLIMIT_CPU: the CPU-time half of the time limit (SIGKILL
		 * once the module ignored SIGXCPU to the hard limit) */
		set(r, AL_VERDICT_TIMEOUT, -1, sig, EXIT_TIMEOUT);
	else
		set(r, AL_VERDICT_CRASHED, -1, sig, 128 + sig);
}

void verdict_classify(const struct verdict_input *in, struct sandbox_result *r)
{
	if (in->setup_failed) {
		set(r, AL_VERDICT_SETUP_ERROR, -1, 0, EXIT_SETUP);
		return;
	}
	if (in->exec_errno) {
		int status = in->exec_errno == ENOENT ||
					     in->exec_errno == ENOTDIR ||
					     in->exec_errno == ELOOP
				     ? EXIT_NOT_FOUND
				     : EXIT_NOT_EXECUTABLE;
		set(r, AL_VERDICT_SETUP_ERROR, -1, 0, status);
		return;
	}
	/* We killed it for these two, so its own status says nothing. */
	if (in->seccomp_denied) {
		set(r, AL_VERDICT_SECCOMP_VIOLATION, -1, SIGSYS, 128 + SIGSYS);
		return;
	}
	if (in->timed_out && !in->have_status) {
		set(r, AL_VERDICT_TIMEOUT, -1, SIGKILL, EXIT_TIMEOUT);
		return;
	}
	if (in->have_status) {
		classify_status(in, r);
		return;
	}
	/* init died without reporting: only the OOM killer does that. */
	if (in->oom_kills > 0) {
		set(r, AL_VERDICT_MEMORY_LIMIT, -1, SIGKILL, 128 + SIGKILL);
		return;
	}
	set(r, AL_VERDICT_SETUP_ERROR, -1, 0, EXIT_SETUP);
	if (!r->error[0])
		snprintf(r->error, sizeof(r->error),
			 "the jail's init ended without reporting the module's "
			 "status (init %s %d); this is a bug in airlock",
			 in->init_code == CLD_EXITED ? "exited with"
						     : "killed by signal",
			 in->init_status);
}
