/*
 * The JSON result object of docs/design.md: the one encoder of a run's result,
 * written by "airlock run --json", by airlockd's submit and exec answers
 * ("result") and by "airlock validate"'s JSON report, so the three agree
 * member for member (tests/integration/test_contract.py compares them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/internal.h"

static const char *signal_field(int sig, char *buf, size_t len)
{
	if (sig <= 0)
		return NULL;
	const char *abbrev = sigabbrev_np(sig);
	if (!abbrev)
		return NULL;
	snprintf(buf, len, "SIG%s", abbrev);
	return buf;
}

static void write_output(struct json_buf *jb, const char *key, const char *data,
			 size_t len)
{
	json_key(jb, key);
	if (data)
		json_string_n(jb, data, len);
	else
		json_null(jb);
}

void sandbox_result_write(struct json_buf *jb, const struct sandbox_result *r,
			  const struct al_policy *policy,
			  const struct sandbox_host *host)
{
	char sigbuf[32];
	char hash[POLICY_HASH_LEN] = "";

	json_object_open(jb);
	json_kv_string(jb, "verdict", al_verdict_name(r->verdict));
	if (r->exit_code >= 0)
		json_kv_int(jb, "exit_code", r->exit_code);
	else
		json_kv_null(jb, "exit_code");
	json_kv_string(jb, "signal",
		       signal_field(r->signal, sigbuf, sizeof(sigbuf)));
	json_kv_string(jb, "syscall", r->syscall[0] ? r->syscall : NULL);
	json_key(jb, "wall_ms");
	json_double(jb, r->wall_ms, 3);
	json_key(jb, "cpu_ms");
	json_double(jb, r->cpu_ms, 3);
	json_kv_uint(jb, "peak_memory_bytes", r->peak_memory_bytes);
	write_output(jb, "stdout", r->stdout_data, r->stdout_len);
	write_output(jb, "stderr", r->stderr_data, r->stderr_len);
	json_kv_bool(jb, "stdout_truncated", r->stdout_truncated);
	json_kv_bool(jb, "stderr_truncated", r->stderr_truncated);
	json_kv_int(jb, "exit_status", r->exit_status);
	if (policy) {
		/* the run's own where a request lowered them, under the hash
		 * of the policy that was their ceiling */
		const struct policy_limits *l = r->limits_known
							? &r->limits
							: policy_limits(policy);
		json_kv_string(jb, "policy", policy_name(policy));
		if (policy_hash(policy, hash, NULL) == 0)
			json_kv_string(jb, "policy_hash", hash);
		/* the limits in force, so a verdict can be explained by
		 * whoever reads only this object (airlock exec) */
		json_key(jb, "limits");
		json_object_open(jb);
		json_kv_uint(jb, "timeout_ms", l->timeout_us / 1000);
		json_kv_uint(jb, "memory_bytes", l->memory_bytes);
		json_kv_uint(jb, "pids", l->pids);
		json_object_close(jb);
	}
	if (host) {
		json_kv_string(jb, "cgroup", sandbox_host_cgroup_mode(host));
		json_kv_string(jb, "privilege",
			       sandbox_host_privilege_mode(host));
	}
	/* the run's own uid on the host (docs/jail.md "Host uids"); null for
	 * a setup error before the run had one */
	if (r->host_uid)
		json_kv_uint(jb, "host_uid", r->host_uid);
	else
		json_kv_null(jb, "host_uid");
	json_kv_uint(jb, "oom_kills", r->oom_kills);
	json_kv_uint(jb, "pids_limit_hits", r->pids_limit_hits);
	/* said in every result: the limits this run went without (rootless,
	 * best-effort policy); [] when all were in force */
	json_key(jb, "limits_not_applied");
	json_array_open(jb);
	if (r->cgroup_limits_missing) {
		json_string(jb, "memory");
		json_string(jb, "pids");
		json_string(jb, "cpu_quota");
	}
	json_array_close(jb);
	if (r->verdict == AL_VERDICT_SETUP_ERROR ||
	    r->verdict == AL_VERDICT_BUILD_FAILED)
		json_kv_string(jb, "error", r->error);
	if (r->learned) {
		char **names = sandbox_syscalls_names(&r->syscalls);
		json_key(jb, "syscalls");
		json_array_open(jb);
		for (size_t i = 0; names && names[i]; i++)
			json_string(jb, names[i]);
		json_array_close(jb);
		if (!names)
			jb->failed = true;
		free(names);
	}
	json_object_close(jb);
}

char *sandbox_result_json(const struct sandbox_result *r,
			  const struct al_policy *policy,
			  const struct sandbox_host *host)
{
	struct json_buf jb;

	json_buf_init(&jb);
	sandbox_result_write(&jb, r, policy, host);
	if (json_buf_failed(&jb)) {
		json_buf_free(&jb);
		return NULL;
	}
	return json_buf_steal(&jb);
}
