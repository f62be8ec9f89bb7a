/*
 * The canonical form of a policy and its SHA-256.
 *
 * The canonical text is what a run was held to: every setting written out
 * with its value (defaults included), in a fixed order, lists sorted, so
 * that two policies mean the same exactly when their texts are equal. The
 * policy's name and description are not part of it: renaming a file or
 * rewording its description changes no rule. The text is itself a valid
 * policy file that parses to the same policy.
 */
#include <errno.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/internal.h"

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_syscall(const void *a, const void *b)
{
	const struct policy_syscall *x = a, *y = b;
	return strcmp(x->name, y->name);
}

static void write_limits(FILE *f, const struct policy_limits *l)
{
	fprintf(f, "[limits]\n");
	fprintf(f, "memory = %llu\n", (unsigned long long)l->memory_bytes);
	fprintf(f, "timeout = %lluus\n", (unsigned long long)l->timeout_us);
	fprintf(f, "cpu_time = %lluus\n", (unsigned long long)l->cpu_time_us);
	if (l->cpu_quota_milli)
		fprintf(f, "cpus = %llu.%03llu\n",
			(unsigned long long)l->cpu_quota_milli / 1000,
			(unsigned long long)l->cpu_quota_milli % 1000);
	fprintf(f, "pids = %llu\n", (unsigned long long)l->pids);
	fprintf(f, "stdout_max = %llu\n", (unsigned long long)l->stdout_max);
	fprintf(f, "stderr_max = %llu\n", (unsigned long long)l->stderr_max);
	fprintf(f, "file_size = %llu\n", (unsigned long long)l->fsize_bytes);
	fprintf(f, "open_files = %llu\n", (unsigned long long)l->nofile);
	if (l->as_bytes)
		fprintf(f, "address_space = %llu\n",
			(unsigned long long)l->as_bytes);
	else
		fprintf(f, "address_space = unlimited\n");
	fprintf(f, "enforce = %s\n", policy_limits_mode_name(l->limits_mode));
	fprintf(f, "[network]\nmode = %s\n", policy_net_name(l->net));
	fprintf(f, "[filesystem]\ntmp_size = %llu\n",
		(unsigned long long)l->tmp_bytes);
	/* only when asked for: a policy without it keeps its canonical text */
	if (l->terminal)
		fprintf(f, "terminal = yes\n");
}

static int cmp_bind(const void *a, const void *b)
{
	const struct policy_bind *x = a, *y = b;
	int c = strcmp(x->jail, y->jail);
	return c ? c : strcmp(x->host, y->host);
}

static int write_binds(FILE *f, const struct al_policy *p, struct al_error *err)
{
	size_t n = policy_bind_count(p);
	if (n == 0)
		return 0;
	struct policy_bind *sorted = calloc(n, sizeof(*sorted));
	if (!sorted)
		return al_error_sys(err, ENOMEM, "policy: canonical form");
	for (size_t i = 0; i < n; i++)
		sorted[i] = *policy_bind_at(p, i);
	qsort(sorted, n, sizeof(*sorted), cmp_bind);
	for (int rw = 0; rw < 2; rw++)
		for (size_t i = 0; i < n; i++)
			if (sorted[i].writable == rw)
				fprintf(f, "%s = %s:%s\n",
					rw ? "bind_rw" : "bind_ro",
					sorted[i].host, sorted[i].jail);
	free(sorted);
	return 0;
}

static void write_identity(FILE *f, const struct al_policy *p)
{
	const struct policy_limits *l = policy_limits(p);
	fprintf(f, "[identity]\nuid = %u\ngid = %u\nhostname = %s\n", l->uid,
		l->gid, policy_hostname(p));
}

static void write_runtime(FILE *f, const struct al_policy *p)
{
	fprintf(f, "[runtime]\narchive_on =");
	bool any = false;
	for (int v = 0; v < AL_VERDICT_COUNT; v++)
		if (policy_archives(p, v)) {
			fprintf(f, " %s", al_verdict_name(v));
			any = true;
		}
	fprintf(f, "%s\ncrash_budget = %llu\n", any ? "" : " none",
		(unsigned long long)policy_crash_budget(p));
	/* only when set: every policy without it keeps its hash */
	if (policy_seccomp_learned(p))
		fprintf(f, "seccomp = learned\n");
	/* likewise only when set; the names are kept sorted */
	if (policy_request_env_count(p)) {
		fprintf(f, "request_env =");
		for (size_t i = 0; i < policy_request_env_count(p); i++)
			fprintf(f, " %s", policy_request_env_at(p, i));
		fprintf(f, "\n");
	}
}

/* Only when one of its keys is set: every policy without [build] keeps
 * its hash. */
static void write_build(FILE *f, const struct al_policy *p)
{
	if (!p->build_command[0] && !p->build_timeout_us &&
	    !p->build_memory_bytes)
		return;
	fprintf(f, "[build]\n");
	if (p->build_command[0])
		fprintf(f, "command = %s\n", p->build_command);
	if (p->build_timeout_us)
		fprintf(f, "timeout = %lluus\n",
			(unsigned long long)p->build_timeout_us);
	if (p->build_memory_bytes)
		fprintf(f, "memory = %llu\n",
			(unsigned long long)p->build_memory_bytes);
}

static int write_environment(FILE *f, const struct al_policy *p,
			     struct al_error *err)
{
	char *const *env = policy_environ(p);
	size_t n = 0;
	while (env[n])
		n++;
	const char **sorted = calloc(n + 1, sizeof(*sorted));
	if (!sorted)
		return al_error_sys(err, ENOMEM, "policy: canonical form");
	memcpy(sorted, env, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_cstr);
	fprintf(f, "[environment]\n");
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(sorted[i], '=');
		fprintf(f, "%.*s = %s\n", (int)(eq - sorted[i]), sorted[i],
			eq + 1);
	}
	free(sorted);
	return 0;
}

static bool any_with(const struct policy_syscall *s, size_t n,
		     enum policy_sys_action action)
{
	for (size_t i = 0; i < n; i++)
		if (s[i].action == action)
			return true;
	return false;
}

static int write_seccomp(FILE *f, const struct al_policy *p,
			 struct al_error *err)
{
	size_t n = policy_syscall_count(p);
	struct policy_syscall *sorted = calloc(n + 1, sizeof(*sorted));
	if (!sorted)
		return al_error_sys(err, ENOMEM, "policy: canonical form");
	for (size_t i = 0; i < n; i++)
		sorted[i] = *policy_syscall_at(p, i);
	qsort(sorted, n, sizeof(*sorted), cmp_syscall);
	fprintf(f, "[seccomp]\ndefault = kill\nallow =");
	for (size_t i = 0; i < n; i++)
		if (sorted[i].action == POLICY_SYS_ALLOW)
			fprintf(f, " %s", sorted[i].name);
	if (!any_with(sorted, n, POLICY_SYS_ALLOW))
		fprintf(f, " none");
	fprintf(f, "\nerrno =");
	for (size_t i = 0; i < n; i++)
		if (sorted[i].action == POLICY_SYS_ERRNO)
			fprintf(f, " %s:%s", sorted[i].name,
				strerrorname_np(sorted[i].errnum));
	if (!any_with(sorted, n, POLICY_SYS_ERRNO))
		fprintf(f, " none");
	fprintf(f, "\n");
	free(sorted);
	return 0;
}

char *policy_canonical(const struct al_policy *p, struct al_error *err)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f) {
		al_error_sys(err, errno, "policy: canonical form");
		return NULL;
	}
	write_limits(f, policy_limits(p));
	int rc = write_binds(f, p, err);
	write_identity(f, p);
	if (rc == 0)
		rc = write_environment(f, p, err);
	if (rc == 0)
		rc = write_seccomp(f, p, err);
	write_runtime(f, p);
	write_build(f, p);
	if (fclose(f) != 0 && rc == 0)
		rc = al_error_sys(err, errno, "policy: canonical form");
	if (rc < 0) {
		free(text);
		return NULL;
	}
	return text;
}

int policy_hash(const struct al_policy *p, char out[POLICY_HASH_LEN],
		struct al_error *err)
{
	char *text = policy_canonical(p, err);
	if (!text)
		return -1;
	/* nettle rather than OpenSSL: loading libcrypto costs every airlock
	 * process about 2 ms of start-up, nettle a tenth of that */
	struct sha256_ctx ctx;
	uint8_t digest[SHA256_DIGEST_SIZE];
	sha256_init(&ctx);
	sha256_update(&ctx, strlen(text), (const uint8_t *)text);
	sha256_digest(&ctx, sizeof(digest), digest);
	free(text);
	memcpy(out, "sha256:", 7);
	for (size_t i = 0; i < sizeof(digest); i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", digest[i]);
	return 0;
}
