/*
 * airlock_learn: what syscall learning costs, side by side.
 *
 *   airlock_learn PROBE [ROUNDS] [CALLS]
 *
 * (The name starts with "airlock" on purpose: other airlock processes
 * sweeping stale run cgroups treat a cgroup whose owner's executable is
 * not named airlock* as left behind, and kill its jail.)
 *
 * Loads the BPF learner once (its load time is printed), then for ROUNDS
 * rounds runs the same syscall-heavy module (PROBE getppid CALLS) in a
 * jail without and with learning, interleaved (A B A B ...) so a noisy
 * neighbour on a shared machine hits both rows alike. Prints min, median
 * and p90 of each row's wall time, the ratio of the medians and the cost
 * per syscall. Then the host-wide side: CALLS getppid() in this process,
 * outside any jail, with no learning run live and with one live (the
 * program is attached only while a learning run is), in turn.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "policy/policy.h"
#include "sandbox/sandbox.h"

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double pct(double *v, int n, double p)
{
	qsort(v, (size_t)n, sizeof(double), by_value);
	return v[(int)(p * (n - 1))];
}

static double run_module(struct sandbox_host *host, struct sandbox_spec *spec)
{
	struct sandbox_result r;
	double t0 = al_monotonic_ms();
	sandbox_run(host, spec, &r);
	double ms = al_monotonic_ms() - t0;
	if (r.verdict != AL_VERDICT_OK) {
		fprintf(stderr, "airlock_learn: run ended %s %s\n",
			al_verdict_name(r.verdict), r.error);
		exit(1);
	}
	sandbox_result_release(&r);
	return ms;
}

static double loop_ms(long calls)
{
	double t0 = al_monotonic_ms();
	for (long i = 0; i < calls; i++)
		(void)syscall(SYS_getppid);
	return al_monotonic_ms() - t0;
}

/* A learning run of a sleeping module: while it is live the program is
 * attached, and every process on the host pays for it. */
static struct sandbox_run *start_sleeper(struct sandbox_host *host,
					 const struct sandbox_spec *spec)
{
	static char *sleep_args[] = { "sleep", "60000", NULL };
	struct sandbox_spec s = *spec;
	struct sandbox_run *run = NULL;
	struct al_error err = { 0 };
	s.args = sleep_args;
	if (sandbox_start(host, &s, &run, &err) < 0) {
		fprintf(stderr, "airlock_learn: %s\n", err.msg);
		exit(1);
	}
	return run;
}

static void stop_sleeper(struct sandbox_run *run)
{
	sandbox_run_cancel(run, "benchmark round done");
	while (!sandbox_run_step(run)) {
		struct pollfd p = { .fd = sandbox_run_fd(run), .events = POLLIN };
		(void)poll(&p, 1, -1);
	}
	sandbox_run_free(run);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: airlock_learn PROBE [ROUNDS] [CALLS]\n");
		return 2;
	}
	int rounds = argc > 2 ? atoi(argv[2]) : 20;
	long calls = argc > 3 ? atol(argv[3]) : 1000000;
	char count[32];
	snprintf(count, sizeof(count), "%ld", calls);
	char *args[] = { "getppid", count, NULL };
	struct al_error err = { 0 };
	struct al_policy *policy = policy_new_default(&err);
	/* the default's 3 s is for modules, not for a million syscalls on a
	 * busy machine */
	if (policy && policy_set_timeout(policy, "120s", &err) < 0) {
		policy_free(policy);
		policy = NULL;
	}
	struct sandbox_host *host = policy ? sandbox_host_new(&err) : NULL;
	struct sandbox_filter *filter =
		host ? sandbox_filter_compile(policy, &err) : NULL;
	double t0 = al_monotonic_ms();
	struct sandbox_learner *learner =
		filter ? sandbox_learner_new(&err) : NULL;
	double load_ms = al_monotonic_ms() - t0;
	double *plain = calloc((size_t)rounds, sizeof(double));
	double *learn = calloc((size_t)rounds, sizeof(double));
	double *attach = calloc((size_t)rounds, sizeof(double));
	if (!learner || !plain || !learn || !attach || rounds < 1) {
		fprintf(stderr, "airlock_learn: %s\n", err.msg);
		return 1;
	}
	struct sandbox_spec spec = {
		.policy = policy, .filter = filter, .program = argv[1],
		.args = args, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1,
	};
	printf("syscall learning: %d interleaved rounds, module: probe "
	       "getppid %ld\n",
	       rounds, calls);
	printf("  learner open+load %.1f ms (once per process)\n", load_ms);
	run_module(host, &spec); /* warm the page cache */
	for (int i = 0; i < rounds; i++) {
		spec.learner = NULL;
		plain[i] = run_module(host, &spec);
		spec.learner = learner;
		learn[i] = run_module(host, &spec);
		attach[i] = sandbox_learner_attach_ms(learner);
	}
	double p_med = pct(plain, rounds, 0.5), l_med = pct(learn, rounds, 0.5);
	printf("  %-10s %9s %9s %9s  (wall ms of the whole run)\n", "", "min",
	       "median", "p90");
	printf("  %-10s %9.2f %9.2f %9.2f\n", "plain", pct(plain, rounds, 0),
	       p_med, pct(plain, rounds, 0.9));
	printf("  %-10s %9.2f %9.2f %9.2f\n", "learning", pct(learn, rounds, 0),
	       l_med, pct(learn, rounds, 0.9));
	printf("  attach per learning run: median %.3f ms\n",
	       pct(attach, rounds, 0.5));
	printf("  overhead ratio (median learning / plain): %.3f; %+.0f ns "
	       "per syscall of the module\n",
	       l_med / p_med, (l_med - p_med) * 1e6 / (double)calls);

	/* the host's side: this process, outside any jail, detached and
	 * attached in turn */
	spec.learner = learner;
	for (int i = 0; i < rounds; i++) {
		plain[i] = loop_ms(calls);
		struct sandbox_run *sleeper = start_sleeper(host, &spec);
		learn[i] = loop_ms(calls);
		stop_sleeper(sleeper);
	}
	double h_plain = pct(plain, rounds, 0.5), h_att = pct(learn, rounds, 0.5);
	printf("  host process, %ld getppid() outside any jail: median %.2f ms "
	       "detached, %.2f ms attached (%+.0f ns per syscall)\n",
	       calls, h_plain, h_att, (h_att - h_plain) * 1e6 / (double)calls);

	free(plain);
	free(learn);
	free(attach);
	sandbox_learner_free(learner);
	sandbox_filter_free(filter);
	sandbox_host_free(host);
	policy_free(policy);
	return 0;
}
