/*
 * airlock run [--policy NAME] [--memory SIZE] [--timeout DURATION]
 *             [--pids N] [--env K=V]... [--cwd DIR]
 *             [--net none|loopback] [--learn] [--json]
 *             [--] PROGRAM [ARG...]
 * airlock version
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/policy.h"
#include "sandbox/sandbox.h"
#include "tools/cli.h"

struct run_options {
	const char *policy;
	const char *memory;
	const char *timeout;
	const char *pids;
	const char *net;
	const char *limits;
	const char *cwd;
	struct cli_env env;
	bool json;
	bool learn;
	char usage_error[256];
};

static void run_usage(FILE *f)
{
	fprintf(f,
		"usage: airlock run [OPTIONS] [--] PROGRAM [ARG...]\n"
		"\n"
		"Run PROGRAM in a jail: a host path (bound read-only into the\n"
		"jail) or a bare name found on the jail's PATH.\n"
		"\n"
		"  --policy NAME|FILE policy to apply (default: default); the\n"
		"                     options below override it\n"
		"  --memory SIZE      memory limit, e.g. 64M (default 64M)\n"
		"  --timeout DURATION wall-clock limit, e.g. 3s, 200ms\n"
		"  --pids N           process limit (default 64)\n"
		"  --env NAME=VALUE   set a variable of the module's environment\n"
		"                     (repeatable; the policy's are the rest)\n"
		"  --cwd DIR          start in DIR, an absolute path inside the\n"
		"                     jail (default /tmp)\n"
		"  --net MODE         none or loopback (default loopback)\n"
		"  --limits MODE      required (default) or best-effort: run\n"
		"                     without cgroup limits when there is no\n"
		"                     cgroup to hold them (rootless)\n"
		"  --json             capture output; print one JSON result\n"
		"  --learn            record the syscalls the module makes (BPF;\n"
		"                     needs root): \"syscalls\" in the JSON\n"
		"                     result, or one line on stderr\n"
		"  --version          version and the isolation this host gives\n"
		"\n"
		"Exit status: the module's own, 124 timeout, 125 setup error,\n"
		"126 not executable, 127 not found, 128+N killed by signal N\n"
		"(137 memory limit, 159 seccomp violation).\n");
}

static int parse_options(int argc, char **argv, struct run_options *o)
{
	static const struct option longopts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "memory", required_argument, NULL, 'm' },
		{ "timeout", required_argument, NULL, 't' },
		{ "pids", required_argument, NULL, 'P' },
		{ "net", required_argument, NULL, 'n' },
		{ "limits", required_argument, NULL, 'l' },
		{ "env", required_argument, NULL, 'e' },
		{ "cwd", required_argument, NULL, 'C' },
		{ "json", no_argument, NULL, 'j' },
		{ "learn", no_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	optind = 1;
	opterr = 0; /* our own message, in JSON when asked */
	/* "+": options end at PROGRAM; what follows is the module's */
	while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': o->policy = optarg; break;
		case 'm': o->memory = optarg; break;
		case 't': o->timeout = optarg; break;
		case 'P': o->pids = optarg; break;
		case 'n': o->net = optarg; break;
		case 'l': o->limits = optarg; break;
		case 'C': o->cwd = optarg; break;
		case 'e':
			if (cli_env_add(&o->env, optarg, o->usage_error,
					sizeof(o->usage_error)) < 0)
				return -1;
			break;
		case 'j': o->json = true; break;
		case 'L': o->learn = true; break;
		case 'h': run_usage(stdout); exit(0);
		case 'V': exit(cmd_version(0, NULL));
		case ':':
			snprintf(o->usage_error, sizeof(o->usage_error),
				 "option %s needs a value; see airlock run "
				 "--help",
				 argv[optind - 1]);
			return -1;
		default:
			snprintf(o->usage_error, sizeof(o->usage_error),
				 "bad option %s; see airlock run --help",
				 argv[optind - 1]);
			return -1;
		}
	}
	if (optind >= argc) {
		snprintf(o->usage_error, sizeof(o->usage_error),
			 "no PROGRAM given; see airlock run --help");
		return -1;
	}
	return optind;
}

/* The policy named on the command line, with the overrides applied: a
 * derived policy whose hash records them. */
static struct al_policy *load_policy(const struct run_options *o,
				     struct al_error *err)
{
	struct al_policy *p = policy_load(o->policy ? o->policy : "default",
					  err);
	if (!p) {
		al_error_prefix(err, "--policy");
		return NULL;
	}
	if ((o->memory && policy_set_memory(p, o->memory, err) < 0) ||
	    (o->timeout && policy_set_timeout(p, o->timeout, err) < 0) ||
	    (o->pids && policy_set_pids(p, o->pids, err) < 0) ||
	    (o->net && policy_set_net(p, o->net, err) < 0) ||
	    (o->limits && policy_set_limits_mode(p, o->limits, err) < 0)) {
		policy_free(p);
		return NULL;
	}
	return p;
}

/* --env and --cwd: inputs of this run like its arguments, not rules, so
 * they leave the hash alone; checked by the rules exec's requests meet,
 * except that run's caller chose the policy and may set any name. */
static int run_inputs(const struct run_options *o, const struct al_policy *p,
		      struct policy_run *out, struct al_error *err)
{
	struct policy_request req = {
		.env_names = (const char *const *)o->env.names,
		.env_values = o->env.values,
		.n_env = o->env.n,
		.cwd = o->cwd,
		.any_env_name = true,
	};
	return policy_tighten(p, &req, out, err);
}

/* Without --json the module's output went to the terminal; say in one
 * line why it ended when that was not its own exit. */
static void report_plain(const struct sandbox_result *r,
			 const struct al_policy *p)
{
	const struct policy_limits *l = policy_limits(p);
	char sig[32] = "";

	if (r->signal > 0 && sigabbrev_np(r->signal))
		snprintf(sig, sizeof(sig), "SIG%s", sigabbrev_np(r->signal));
	cli_explain_verdict(stderr,
			    &(struct cli_verdict){
				    .verdict = al_verdict_name(r->verdict),
				    .signal = sig[0] ? sig : NULL,
				    .syscall = r->syscall,
				    .error = r->error,
				    .wall_ms = r->wall_ms,
				    .timeout_ms = l->timeout_us / 1000,
				    .memory_bytes = l->memory_bytes,
			    });
}

/* Without --json stdout is the module's: the learned set goes to stderr,
 * in one line a script can pick out. */
static void report_learned(const struct sandbox_syscalls *set)
{
	char *names = sandbox_syscalls_join(set);
	fprintf(stderr, "airlock: syscalls (%zu): %s\n",
		sandbox_syscalls_count(set), names ? names : "(out of memory)");
	free(names);
}

static int print_json(const struct sandbox_result *r, const struct al_policy *p,
		      const struct sandbox_host *h)
{
	char *text = sandbox_result_json(r, p, h);
	if (!text) {
		fprintf(stderr, "airlock: out of memory writing the result\n");
		return -1;
	}
	printf("%s\n", text);
	free(text);
	return fflush(stdout) == 0 ? 0 : -1;
}

/* A failure before any jail exists still answers in the promised shape. */
static int setup_error(const struct run_options *o, const char *msg)
{
	if (o->json) {
		struct sandbox_result r = { 0 };
		sandbox_result_setup_error(&r, 125, msg);
		print_json(&r, NULL, NULL);
	} else {
		fprintf(stderr, "airlock run: %s\n", msg);
	}
	return 125;
}

/*
 * One run, waiting on the run's fd and on SIGINT/SIGTERM/SIGHUP: a signal
 * cancels the run, which still ends with its jail reaped and its cgroup
 * removed (tools/interrupt.c). Returns the signal taken, or 0.
 */
static int run_interruptible(struct sandbox_host *host,
			     struct sandbox_spec *spec, bool json,
			     struct sandbox_result *result)
{
	struct cli_interrupt in;
	struct cli_pty pty;
	struct sandbox_run *run = NULL;
	struct al_error err = { 0 };
	int stdio[3] = { spec->stdin_fd, spec->stdout_fd, spec->stderr_fd };
	memset(result, 0, sizeof(*result));
	cli_pty_init(&pty);
	int rc = cli_interrupt_open(&in, &err);
	if (rc == 0)
		rc = cli_pty_open(&pty, stdio, json, &err);
	if (rc == 0) {
		spec->stdin_fd = stdio[0];
		spec->stdout_fd = stdio[1];
		spec->stderr_fd = stdio[2];
		rc = sandbox_start(host, spec, &run, &err);
	}
	if (rc < 0) {
		cli_pty_close(&pty);
		cli_interrupt_close(&in);
		sandbox_result_setup_error(result, 125, err.msg);
		return 0;
	}
	cli_pty_started(&pty);
	while (!sandbox_run_step(run)) {
		struct pollfd pfd[5] = {
			{ .fd = sandbox_run_fd(run), .events = POLLIN },
			{ .fd = in.fd, .events = POLLIN },
		};
		int n = 2 + cli_pty_pollfds(&pty, pfd + 2);
		if (poll(pfd, (nfds_t)n, -1) < 0 && errno != EINTR) {
			sandbox_run_cancel(run, strerror(errno));
		} else if (pfd[1].revents && cli_interrupt_take(&in)) {
			char why[64];
			cli_interrupt_reason(&in, why, sizeof(why));
			sandbox_run_cancel(run, why);
		}
		cli_pty_handle(&pty, pfd + 2, n - 2);
	}
	cli_pty_drain(&pty);
	cli_pty_close(&pty);
	sandbox_run_take_result(run, result);
	sandbox_run_free(run);
	cli_interrupt_close(&in);
	return in.signo;
}

struct sandbox_host *cli_sandbox_host(struct al_error *err)
{
	struct sandbox_host *host = sandbox_host_new(err);
	const char *text = getenv("AIRLOCK_UID_RANGE");
	struct sandbox_uid_range range;
	if (!host || !text || !*text)
		return host;
	if (sandbox_uid_range_parse(text, &range, err) < 0 ||
	    sandbox_host_set_uid_range(host, &range, err) < 0) {
		char why[AL_ERROR_MAX];
		snprintf(why, sizeof(why), "%s", err->msg);
		al_error_set(err, err->errnum, "AIRLOCK_UID_RANGE: %s", why);
		sandbox_host_free(host);
		return NULL;
	}
	return host;
}

int cmd_run(int argc, char **argv)
{
	struct run_options o = { 0 };
	struct al_error err = { 0 };
	int first = parse_options(argc, argv, &o);
	if (first < 0) {
		cli_env_free(&o.env);
		return setup_error(&o, o.usage_error);
	}
	struct al_policy *policy = load_policy(&o, &err);
	struct policy_run inputs = { 0 };
	if (policy && run_inputs(&o, policy, &inputs, &err) < 0) {
		policy_free(policy);
		policy = NULL;
	}
	cli_env_free(&o.env);
	if (!policy)
		return setup_error(&o, err.msg);
	struct sandbox_host *host = cli_sandbox_host(&err);
	struct sandbox_filter *filter =
		host ? sandbox_filter_compile_cached(policy, &err) : NULL;
	struct sandbox_learner *learner = filter && o.learn
						  ? sandbox_learner_new(&err)
						  : NULL;
	if (!filter || (o.learn && !learner)) {
		sandbox_filter_free(filter);
		sandbox_host_free(host);
		policy_run_clear(&inputs);
		policy_free(policy);
		return setup_error(&o, err.msg);
	}
	/* run cgroups an earlier airlock left when it was killed: no daemon
	 * may be there to remove them */
	sandbox_host_sweep(host, NULL, NULL);
	/* A reader that goes away must not kill us before the jail is
	 * cleaned up; the module's own SIGPIPE is restored in the jail. */
	signal(SIGPIPE, SIG_IGN);
	struct sandbox_spec spec = {
		.policy = policy,
		.filter = filter,
		.program = argv[first],
		.args = argv + first + 1,
		.stdin_fd = STDIN_FILENO,
		.stdout_fd = o.json ? -1 : STDOUT_FILENO,
		.stderr_fd = o.json ? -1 : STDERR_FILENO,
		.learner = learner,
		.envp = inputs.envp,
		.cwd = inputs.cwd,
	};
	struct sandbox_result result;
	/* interrupted: the run was cancelled (setup_error, "cancelled: ..."),
	 * and airlock exits as a process killed by that signal would */
	int signo = run_interruptible(host, &spec, o.json, &result);
	if (signo)
		result.exit_status = 128 + signo;
	int status = result.exit_status;
	if (o.json) {
		if (print_json(&result, policy, host) < 0)
			status = 125;
	} else {
		report_plain(&result, policy);
		if (result.learned)
			report_learned(&result.syscalls);
	}
	sandbox_result_release(&result);
	sandbox_learner_free(learner);
	sandbox_filter_free(filter);
	sandbox_host_free(host);
	policy_run_clear(&inputs);
	policy_free(policy);
	return status;
}
