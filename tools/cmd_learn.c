/*
 * airlock policy learn [--from POLICY] [--suite FILE] [-- PROGRAM [ARG...]]
 *
 * Runs the module once per input (the command line's PROGRAM, and/or each
 * case of a suite file, docs/ci.md) under the base policy with the BPF
 * learner on, one jail after the other, and prints a policy file whose
 * seccomp allow-list is what those runs made (tools/learn_policy.c).
 *
 * Exit: 0 the policy was printed; 1 a run ended in a way that makes the
 * set unreliable (setup_error, seccomp_violation under the base policy);
 * 2 usage or suite error; 125 airlock could not set up (no BPF, ...).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/policy.h"
#include "sandbox/sandbox.h"
#include "tools/cli.h"
#include "tools/learn.h"
#include "tools/validate.h"

#define EXIT_RUN_FAILED 1
#define EXIT_BAD_INPUT 2

static void learn_usage(FILE *f)
{
	fprintf(f,
		"usage: airlock policy learn [--from POLICY] [--suite FILE]\n"
		"                            [-- PROGRAM [ARG...]]\n"
		"\n"
		"Run the module under POLICY (default: default) with syscall\n"
		"learning (BPF; needs root), once with the given arguments and/or\n"
		"once per case of a suite file, and print a policy whose seccomp\n"
		"allow-list is exactly what those runs made.\n");
}

struct learn_ctx {
	struct sandbox_host *host;
	struct sandbox_learner *learner;
	struct learned learned;
	char **names; /* run names, one per run */
	size_t nnames;
	int status;
};

/* One learning run; its set is merged under `name` (copied). */
static int learn_one(struct learn_ctx *x, const char *name,
		     const struct al_policy *policy, const char *program,
		     char *const *args, int stdin_fd, struct al_error *err)
{
	struct sandbox_filter *filter = sandbox_filter_compile(policy, err);
	if (!filter)
		return -1;
	char *copy = strdup(name);
	char **grown = realloc(x->names, (x->nnames + 1) * sizeof(char *));
	if (!copy || !grown) {
		free(copy);
		sandbox_filter_free(filter);
		return al_error_set(err, ENOMEM, "out of memory");
	}
	x->names = grown;
	x->names[x->nnames++] = copy;
	struct sandbox_spec spec = {
		.policy = policy,
		.filter = filter,
		.program = program,
		.args = args,
		.stdin_fd = stdin_fd,
		.stdout_fd = -1,
		.stderr_fd = -1,
		.learner = x->learner,
	};
	struct sandbox_result r;
	sandbox_run(x->host, &spec, &r);
	sandbox_filter_free(filter);
	size_t fresh = r.learned ? learned_add(&x->learned, &r.syscalls, copy)
				 : 0;
	fprintf(stderr, "learn: %s: %s, %zu syscalls (%zu new)%s%s\n", name,
		al_verdict_name(r.verdict), sandbox_syscalls_count(&r.syscalls),
		fresh,
		r.verdict == AL_VERDICT_SECCOMP_VIOLATION ? ", denied "
		: r.verdict == AL_VERDICT_SETUP_ERROR     ? ": "
							  : "",
		r.verdict == AL_VERDICT_SECCOMP_VIOLATION ? r.syscall
		: r.verdict == AL_VERDICT_SETUP_ERROR     ? r.error
							  : "");
	/* the base policy denied something, or nothing ran: the set is not
	 * what the module needs */
	if (r.verdict == AL_VERDICT_SECCOMP_VIOLATION ||
	    r.verdict == AL_VERDICT_SETUP_ERROR || !r.learned)
		x->status = EXIT_RUN_FAILED;
	sandbox_result_release(&r);
	return 0;
}

static int learn_suite(struct learn_ctx *x, const char *path, const char *from,
		       struct al_error *err)
{
	struct vsuite *s = vsuite_load(path, err);
	if (!s)
		return -1;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < s->n; i++) {
		const struct vcase *c = &s->cases[i];
		struct al_policy *p = vcase_policy(s, c, from, err);
		int in = p ? vcase_open_stdin(c, err) : -1;
		if (!p || (in < 0 && (c->has_stdin || c->stdin_file.value))) {
			rc = -1;
		} else {
			char name[VSUITE_MAX_NAME + 64];
			snprintf(name, sizeof(name), "case %s", c->name);
			rc = learn_one(x, name, p, c->module.value,
				       c->nargs ? c->args : NULL, in, err);
		}
		if (in >= 0)
			close(in);
		policy_free(p);
	}
	vsuite_free(s);
	return rc;
}

/* "PROGRAM ARG..." as the run's name in comments, bounded. */
static void command_name(char *buf, size_t len, char **argv)
{
	size_t used = (size_t)snprintf(buf, len, "command:");
	for (size_t i = 0; argv[i] && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, " %s",
					 argv[i]);
}

int cmd_policy_learn(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "suite", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *from = "default", *suite = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': from = optarg; break;
		case 's': suite = optarg; break;
		case 'h': learn_usage(stdout); return 0;
		default: learn_usage(stderr); return EXIT_BAD_INPUT;
		}
	}
	if (!suite && optind >= argc) {
		fprintf(stderr, "airlock policy learn: give a PROGRAM, a "
				"--suite, or both\n");
		learn_usage(stderr);
		return EXIT_BAD_INPUT;
	}
	struct al_error err = { 0 };
	struct learn_ctx x = { .status = 0 };
	struct al_policy *base = policy_load(from, &err);
	int rc = base ? 0 : EXIT_BAD_INPUT;
	if (base) {
		x.host = cli_sandbox_host(&err);
		x.learner = x.host ? sandbox_learner_new(&err) : NULL;
		rc = x.learner ? 0 : CLI_EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	x.learned.base = base;
	if (rc == 0 && optind < argc) {
		char name[512];
		command_name(name, sizeof(name), argv + optind);
		if (learn_one(&x, name, base, argv[optind], argv + optind + 1,
			      -1, &err) < 0)
			rc = CLI_EXIT_USAGE;
	}
	if (rc == 0 && suite && learn_suite(&x, suite, from, &err) < 0)
		rc = EXIT_BAD_INPUT;
	if (rc == 0) {
		x.learned.runs = x.names;
		x.learned.nruns = x.nnames;
		if (learned_write(stdout, &x.learned, &err) < 0 ||
		    fflush(stdout) != 0)
			rc = CLI_EXIT_USAGE;
	}
	if (rc)
		fprintf(stderr, "airlock policy learn: %s\n", err.msg);
	for (size_t i = 0; i < x.nnames; i++)
		free(x.names[i]);
	free(x.names);
	sandbox_learner_free(x.learner);
	sandbox_host_free(x.host);
	policy_free(base);
	return rc ? rc : x.status;
}
