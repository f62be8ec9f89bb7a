/*
 * airlock validate [-j N] [--junit FILE] [--json FILE] [--policy P]
 *                  (MODULE... | --suite FILE)
 *
 * Runs a batch of cases, each in its own jail, against their expectations
 * (docs/ci.md). One thread runs up to N jails at once: every run is one fd
 * (sandbox_run_fd) in one epoll set, and a run that is ready is stepped
 * without blocking. Progress lines print as cases finish; the reports list
 * the cases in suite order, so -j1 and -jN write the same results.
 *
 * Exit: 0 every case met every expectation; 1 some did not; 2 usage or
 * suite error (nothing was run); 125 airlock itself could not set up.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "policy/policy.h"
#include "sandbox/sandbox.h"
#include "tools/cli.h"
#include "tools/validate.h"

#define EXIT_FAILED 1
#define EXIT_BAD_INPUT 2
#define EXIT_SETUP 125

struct validate_options {
	unsigned jobs;
	const char *junit;
	const char *json;
	const char *policy;
	const char *suite;
};

/* One distinct policy (after overrides) and its compiled filter. */
struct vpolicy {
	struct al_policy *policy;
	struct sandbox_filter *filter;
	char hash[POLICY_HASH_LEN];
};

struct validate {
	struct vsuite *suite;
	struct vpolicy *policies;
	size_t npolicies;
	size_t *case_policy; /* index into policies, per case */
	struct vreport *reports;
	struct sandbox_host *host;
	size_t passed, failed;
	int interrupted; /* the signal that cancelled the runs, or 0 */
};

static void validate_usage(FILE *f)
{
	fprintf(f,
		"usage: airlock validate [OPTIONS] MODULE...\n"
		"       airlock validate [OPTIONS] --suite FILE\n"
		"\n"
		"Run each case in its own jail and check it against its\n"
		"expectations; a MODULE given here is a case expecting verdict\n"
		"ok. The suite format is in docs/ci.md.\n"
		"\n"
		"  -j, --jobs N       cases run at once (default: the CPU count)\n"
		"  --suite FILE       the cases and their expectations\n"
		"  --policy NAME|FILE policy of cases that name none\n"
		"  --junit FILE       write a JUnit XML report\n"
		"  --json FILE        write every result as JSON\n"
		"\n"
		"Exit status: 0 every case passed, 1 some case failed, 2 usage\n"
		"or suite error (nothing run), 125 airlock could not set up.\n");
}

static unsigned cpu_count(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

static int parse_options(int argc, char **argv, struct validate_options *o)
{
	static const struct option longopts[] = {
		{ "jobs", required_argument, NULL, 'j' },
		{ "junit", required_argument, NULL, 'J' },
		{ "json", required_argument, NULL, 'S' },
		{ "policy", required_argument, NULL, 'p' },
		{ "suite", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct al_error err = { 0 };
	uint64_t jobs;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:hj:", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			if (parse_uint(optarg, 1, 1024, &jobs, &err) < 0) {
				fprintf(stderr, "airlock validate: -j: %s\n",
					err.msg);
				return -1;
			}
			o->jobs = (unsigned)jobs;
			break;
		case 'J': o->junit = optarg; break;
		case 'S': o->json = optarg; break;
		case 'p': o->policy = optarg; break;
		case 's': o->suite = optarg; break;
		case 'h': validate_usage(stdout); exit(0);
		case ':':
			fprintf(stderr,
				"airlock validate: option %s needs a "
				"value; see airlock validate --help\n",
				argv[optind - 1]);
			return -1;
		default:
			fprintf(stderr,
				"airlock validate: bad option %s; see "
				"airlock validate --help\n",
				argv[optind - 1]);
			return -1;
		}
	}
	if (o->suite && optind < argc) {
		fprintf(stderr, "airlock validate: give modules or --suite, "
				"not both\n");
		return -1;
	}
	if (!o->suite && optind >= argc) {
		fprintf(stderr, "airlock validate: no MODULE and no --suite; "
				"see airlock validate --help\n");
		return -1;
	}
	if (!o->jobs)
		o->jobs = cpu_count();
	return optind;
}

/* ---------------------------------------------------------------- setup */

struct vsuite *vsuite_load(const char *path, struct al_error *err)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		al_error_sys(err, errno, "%s", path);
		return NULL;
	}
	char *text = malloc(VSUITE_MAX_FILE + 1);
	size_t n = text ? fread(text, 1, VSUITE_MAX_FILE + 1, f) : 0;
	bool bad = !text || ferror(f);
	fclose(f);
	struct vsuite *s = NULL;
	if (bad)
		al_error_sys(err, text ? EIO : ENOMEM, "%s: cannot read", path);
	else if (n > VSUITE_MAX_FILE)
		al_error_set(err, EFBIG, "%s: larger than %d bytes", path,
			     VSUITE_MAX_FILE);
	else
		s = vsuite_parse(text, n, path, err);
	free(text);
	return s;
}

static int apply_override(struct al_policy *p, const struct vsetting *s,
			  int (*set)(struct al_policy *, const char *,
				     struct al_error *),
			  struct al_error *err)
{
	return s->value ? set(p, s->value, err) : 0;
}

struct al_policy *vcase_policy(const struct vsuite *s, const struct vcase *c,
			       const char *fallback, struct al_error *err)
{
	const char *name = c->policy.value ? c->policy.value : fallback;
	struct al_policy *p = policy_load(name ? name : "default", err);
	if (!p) {
		if (c->policy.value)
			al_error_prefix(err, "%s:%d: [case %s] policy",
					s->filename, c->policy.line, c->name);
		else
			al_error_prefix(err, "--policy");
		return NULL;
	}
	const struct {
		const struct vsetting *s;
		const char *key;
		int (*set)(struct al_policy *, const char *, struct al_error *);
	} o[] = {
		{ &c->timeout, "timeout", policy_set_timeout },
		{ &c->memory, "memory", policy_set_memory },
		{ &c->pids, "pids", policy_set_pids },
		{ &c->net, "net", policy_set_net },
	};
	for (size_t i = 0; i < ARRAY_SIZE(o); i++) {
		if (apply_override(p, o[i].s, o[i].set, err) < 0) {
			al_error_prefix(err, "%s:%d: [case %s] %s", s->filename,
					o[i].s->line, c->name, o[i].key);
			policy_free(p);
			return NULL;
		}
	}
	return p;
}

/* Load every case's policy, keep one of each hash. */
static int load_policies(struct validate *v, const char *fallback,
			 struct al_error *err)
{
	const struct vsuite *s = v->suite;
	v->policies = calloc(s->n, sizeof(*v->policies));
	v->case_policy = calloc(s->n, sizeof(*v->case_policy));
	if (!v->policies || !v->case_policy)
		return al_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < s->n; i++) {
		const struct vcase *c = &s->cases[i];
		char hash[POLICY_HASH_LEN];
		struct al_policy *p = vcase_policy(s, c, fallback, err);
		if (!p)
			return -1;
		if (policy_hash(p, hash, err) < 0) {
			policy_free(p);
			return -1;
		}
		size_t k = 0;
		while (k < v->npolicies && strcmp(v->policies[k].hash, hash))
			k++;
		if (k < v->npolicies) {
			policy_free(p);
		} else {
			v->policies[k].policy = p;
			memcpy(v->policies[k].hash, hash, sizeof(hash));
			v->npolicies++;
		}
		v->case_policy[i] = k;
		if (c->stdin_file.value &&
		    access(c->stdin_file.value, R_OK) < 0)
			return al_error_sys(err, errno,
					    "%s:%d: [case %s] stdin_file: %s",
					    s->filename, c->stdin_file.line,
					    c->name, c->stdin_file.value);
	}
	return 0;
}

static int compile_filters(struct validate *v, struct al_error *err)
{
	for (size_t k = 0; k < v->npolicies; k++) {
		struct vpolicy *vp = &v->policies[k];
		vp->filter = sandbox_filter_compile_cached(vp->policy, err);
		if (!vp->filter)
			return al_error_prefix(err, "policy %s",
					       policy_name(vp->policy));
	}
	return 0;
}

/* ----------------------------------------------------------------- runs */

int vcase_open_stdin(const struct vcase *c, struct al_error *err)
{
	if (c->stdin_file.value) {
		int fd = open(c->stdin_file.value, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			al_error_sys(err, errno, "stdin_file %s",
				     c->stdin_file.value);
		return fd;
	}
	if (!c->has_stdin)
		return -1;
	int fd = memfd_create("airlock-stdin", MFD_CLOEXEC);
	if (fd < 0)
		return al_error_sys(err, errno, "memfd_create");
	for (size_t off = 0; off < c->stdin_text.len;) {
		ssize_t w = write(fd, c->stdin_text.text + off,
				  c->stdin_text.len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			return al_error_sys(err, errno, "stdin");
		}
		off += (size_t)w;
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return al_error_sys(err, errno, "stdin");
	}
	return fd;
}

static char *memdup0(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		if (n)
			memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* Keep what the reports need, check it, say it. */
static int finish_case(struct validate *v, size_t i,
		       const struct sandbox_result *r)
{
	const struct vcase *c = &v->suite->cases[i];
	const struct vpolicy *vp = &v->policies[v->case_policy[i]];
	struct vreport *rep = &v->reports[i];
	rep->result = *r;
	rep->result.stdout_data = memdup0(r->stdout_data ? r->stdout_data : "",
					  r->stdout_data ? r->stdout_len : 0);
	rep->result.stderr_data = memdup0(r->stderr_data ? r->stderr_data : "",
					  r->stderr_data ? r->stderr_len : 0);
	if (!r->stdout_data)
		rep->result.stdout_len = 0;
	if (!r->stderr_data)
		rep->result.stderr_len = 0;
	rep->json = sandbox_result_json(r, vp->policy, v->host);
	if (!rep->result.stdout_data || !rep->result.stderr_data ||
	    !rep->json || vcheck(c, r, &rep->failures) < 0)
		return -1;
	rep->done = true;
	rep->passed = rep->failures.n == 0;
	rep->error = !rep->passed && r->verdict == AL_VERDICT_SETUP_ERROR &&
		     c->verdict != AL_VERDICT_SETUP_ERROR;
	struct vbuf line = { 0 };
	vbuf_puts(&line, rep->passed ? "PASS " : "FAIL ");
	vbuf_escape(&line, c->name, strlen(c->name), 200);
	if (rep->passed) {
		vbuf_printf(&line, " (%.1f ms)", r->wall_ms);
		v->passed++;
	} else {
		for (size_t k = 0; k < rep->failures.n; k++)
			vbuf_printf(&line, "%s%s", k ? "; " : ": ",
				    rep->failures.msg[k]);
		v->failed++;
	}
	if (!line.failed)
		printf("%s\n", line.data);
	fflush(stdout);
	vbuf_free(&line);
	return 0;
}

struct slot {
	struct sandbox_run *run;
	size_t idx;
};

static int start_case(struct validate *v, size_t i, int ep, struct slot *slot,
		      struct al_error *err)
{
	const struct vcase *c = &v->suite->cases[i];
	const struct vpolicy *vp = &v->policies[v->case_policy[i]];
	struct al_error why = { 0 };
	slot->run = NULL;
	slot->idx = i;
	int in = vcase_open_stdin(c, &why);
	if (in < 0 && (c->has_stdin || c->stdin_file.value))
		goto setup_error;
	struct sandbox_spec spec = {
		.policy = vp->policy,
		.filter = vp->filter,
		.program = c->module.value,
		.args = c->nargs ? c->args : NULL,
		.stdin_fd = in,
		.stdout_fd = -1,
		.stderr_fd = -1,
	};
	int rc = sandbox_start(v->host, &spec, &slot->run, &why);
	if (in >= 0)
		close(in);
	if (rc < 0)
		goto setup_error;
	if (sandbox_run_step(slot->run)) {
		/* over before it began (module missing: 127, not executable:
		 * 126): there is no fd to watch; record it, go on */
		int f = finish_case(v, i, sandbox_run_result(slot->run));
		sandbox_run_free(slot->run);
		slot->run = NULL;
		return f < 0 ? al_error_set(err, ENOMEM, "out of memory") : 0;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = slot };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sandbox_run_fd(slot->run), &ev) < 0) {
		sandbox_run_free(slot->run);
		slot->run = NULL;
		return al_error_sys(err, errno, "epoll_ctl");
	}
	return 0;
setup_error:;
	/* this case could not start: its result says why, others go on */
	struct sandbox_result r = { 0 };
	sandbox_result_setup_error(&r, 125, why.msg);
	return finish_case(v, i, &r) < 0
		       ? al_error_set(err, ENOMEM, "out of memory")
		       : 0;
}

/* A signal arrived: cancel what runs (each still ends, is cleaned up and
 * reported), and report the cases not started as not run. */
static int interrupt_all(struct validate *v, struct cli_interrupt *in,
			 struct slot *slots, unsigned jobs, size_t *next)
{
	char why[64];
	cli_interrupt_reason(in, why, sizeof(why));
	v->interrupted = in->signo;
	for (unsigned s = 0; s < jobs; s++)
		if (slots[s].run)
			sandbox_run_cancel(slots[s].run, why);
	for (; *next < v->suite->n; (*next)++) {
		struct sandbox_result r = { 0 };
		char msg[96];
		snprintf(msg, sizeof(msg), "not run: %s", why);
		sandbox_result_setup_error(&r, 125, msg);
		if (finish_case(v, *next, &r) < 0)
			return -1;
	}
	return 0;
}

static int run_all(struct validate *v, unsigned jobs, struct al_error *err)
{
	size_t n = v->suite->n, next = 0, running = 0;
	struct cli_interrupt in = { .fd = -1 };
	if (jobs > n)
		jobs = (unsigned)n;
	struct slot *slots = calloc(jobs, sizeof(*slots));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int rc = 0;
	if (!slots || ep < 0) {
		rc = al_error_sys(err, slots ? errno : ENOMEM, "epoll");
		goto out;
	}
	/* the signalfd's event carries NULL, a run's its slot */
	struct epoll_event sev = { .events = EPOLLIN, .data.ptr = NULL };
	if (cli_interrupt_open(&in, err) < 0 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, in.fd, &sev) < 0) {
		rc = in.fd < 0 ? -1 : al_error_sys(err, errno, "epoll_ctl");
		goto out;
	}
	while (next < n || running > 0) {
		for (unsigned s = 0; s < jobs && next < n; s++) {
			if (slots[s].run)
				continue;
			if (start_case(v, next++, ep, &slots[s], err) < 0) {
				rc = -1;
				goto out;
			}
			if (slots[s].run)
				running++;
		}
		if (running == 0)
			continue;
		struct epoll_event evs[64];
		int k = epoll_wait(ep, evs, 64, -1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = al_error_sys(err, errno, "epoll_wait");
			goto out;
		}
		for (int e = 0; e < k; e++) {
			struct slot *sl = evs[e].data.ptr;
			if (!sl) {
				if (cli_interrupt_take(&in) &&
				    !v->interrupted &&
				    interrupt_all(v, &in, slots, jobs, &next) <
					    0) {
					rc = al_error_set(err, ENOMEM,
							  "out of memory");
					goto out;
				}
				continue;
			}
			if (!sl->run || !sandbox_run_step(sl->run))
				continue;
			epoll_ctl(ep, EPOLL_CTL_DEL, sandbox_run_fd(sl->run),
				  NULL);
			int f = finish_case(v, sl->idx,
					    sandbox_run_result(sl->run));
			sandbox_run_free(sl->run);
			sl->run = NULL;
			running--;
			if (f < 0) {
				rc = al_error_set(err, ENOMEM, "out of memory");
				goto out;
			}
		}
	}
out:
	for (unsigned s = 0; slots && s < jobs; s++)
		if (slots[s].run)
			sandbox_run_free(slots[s].run);
	free(slots);
	if (ep >= 0)
		close(ep);
	cli_interrupt_close(&in);
	return rc;
}

/* -------------------------------------------------------------- reports */

static int write_report(FILE *f, const char *path, char *text,
			struct al_error *err)
{
	if (!text)
		return al_error_set(err, ENOMEM, "%s: out of memory", path);
	size_t n = strlen(text);
	bool ok = fwrite(text, 1, n, f) == n && fflush(f) == 0;
	free(text);
	return ok ? 0 : al_error_sys(err, errno, "writing %s", path);
}

static int write_reports(struct validate *v, const struct validate_options *o,
			 FILE *junit, FILE *json, double total_ms,
			 struct al_error *err)
{
	char stamp[32] = "1970-01-01T00:00:00", host[256] = "localhost";
	time_t now = time(NULL);
	struct tm tm;
	if (gmtime_r(&now, &tm))
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	if (gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "localhost");
	if (junit && write_report(junit, o->junit,
				  vjunit_render(v->suite, v->reports, total_ms,
						stamp, host),
				  err) < 0)
		return -1;
	if (json &&
	    write_report(json, o->json,
			 vjson_render(v->suite, v->reports, total_ms), err) < 0)
		return -1;
	return 0;
}

static FILE *open_report(const char *path, struct al_error *err)
{
	FILE *f = fopen(path, "we");
	if (!f)
		al_error_sys(err, errno, "%s", path);
	return f;
}

static void validate_free(struct validate *v)
{
	for (size_t i = 0; v->reports && i < v->suite->n; i++)
		vreport_release(&v->reports[i]);
	free(v->reports);
	for (size_t k = 0; k < v->npolicies; k++) {
		sandbox_filter_free(v->policies[k].filter);
		policy_free(v->policies[k].policy);
	}
	free(v->policies);
	free(v->case_policy);
	sandbox_host_free(v->host);
	vsuite_free(v->suite);
}

/* Everything that can be wrong with the input, before anything runs. */
static int prepare(struct validate *v, const struct validate_options *o,
		   char *const *modules, size_t nmodules, struct al_error *err)
{
	v->suite = o->suite ? vsuite_load(o->suite, err)
			    : vsuite_from_modules(modules, nmodules, err);
	if (!v->suite || load_policies(v, o->policy, err) < 0)
		return -1;
	v->reports = calloc(v->suite->n, sizeof(*v->reports));
	return v->reports ? 0 : al_error_set(err, ENOMEM, "out of memory");
}

int cmd_validate(int argc, char **argv)
{
	struct validate_options o = { 0 };
	struct validate v = { 0 };
	struct al_error err = { 0 };
	FILE *junit = NULL, *json = NULL;
	int status = EXIT_BAD_INPUT;
	int first = parse_options(argc, argv, &o);
	if (first < 0)
		return EXIT_BAD_INPUT;
	if (prepare(&v, &o, argv + first, (size_t)(argc - first), &err) < 0)
		goto fail;
	if (o.junit && !(junit = open_report(o.junit, &err)))
		goto fail;
	if (o.json && !(json = open_report(o.json, &err)))
		goto fail;
	status = EXIT_SETUP;
	v.host = cli_sandbox_host(&err);
	if (!v.host || compile_filters(&v, &err) < 0)
		goto fail;
	/* a reader that goes away must not kill us with jails running */
	signal(SIGPIPE, SIG_IGN);
	double t0 = al_monotonic_ms();
	if (run_all(&v, o.jobs, &err) < 0)
		goto fail;
	double total = al_monotonic_ms() - t0;
	printf("%zu passed, %zu failed, %zu cases in %.2f s\n", v.passed,
	       v.failed, v.suite->n, total / 1000.0);
	if (write_reports(&v, &o, junit, json, total, &err) < 0)
		goto fail;
	status = v.interrupted ? 128 + v.interrupted
		 : v.failed    ? EXIT_FAILED
			       : 0;
	goto out;
fail:
	fprintf(stderr, "airlock validate: %s\n", err.msg);
out:
	if (junit && fclose(junit) != 0 && status != EXIT_SETUP) {
		fprintf(stderr, "airlock validate: writing %s failed\n",
			o.junit);
		status = EXIT_SETUP;
	}
	if (json && fclose(json) != 0 && status != EXIT_SETUP) {
		fprintf(stderr, "airlock validate: writing %s failed\n",
			o.json);
		status = EXIT_SETUP;
	}
	validate_free(&v);
	return status;
}
