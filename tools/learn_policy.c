/* The learned policy file (tools/learn.h): pure, no jail, no BPF. */
#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>

#include "tools/learn.h"

size_t learned_add(struct learned *l, const struct sandbox_syscalls *set,
		   const char *run)
{
	size_t fresh = 0;
	for (int nr = 0; nr < SANDBOX_SYSCALL_MAX; nr++) {
		if (!sandbox_syscalls_has(set, nr) ||
		    sandbox_syscalls_has(&l->set, nr))
			continue;
		sandbox_syscalls_add(&l->set, nr);
		l->first_seen[nr] = run;
		fresh++;
	}
	return fresh;
}

static bool base_fails_with_errno(const struct al_policy *p, const char *name)
{
	for (size_t i = 0; i < policy_syscall_count(p); i++) {
		const struct policy_syscall *s = policy_syscall_at(p, i);
		if (s->action == POLICY_SYS_ERRNO && strcmp(s->name, name) == 0)
			return true;
	}
	return false;
}

static void write_allow(FILE *f, const struct learned *l)
{
	struct sandbox_syscalls all = l->set;
	sandbox_learn_floor(&all);
	char **names = sandbox_syscalls_names(&all);
	for (size_t i = 0; names && names[i]; i++) {
		if (base_fails_with_errno(l->base, names[i]))
			continue;
		int nr = seccomp_syscall_resolve_name(names[i]);
		const char *seen = nr >= 0 && nr < SANDBOX_SYSCALL_MAX
					   ? l->first_seen[nr]
					   : NULL;
		if (seen)
			fprintf(f, "allow = %-24s # first seen: %s\n", names[i],
				seen);
		else
			fprintf(f,
				"allow = %-24s # starts or ends the module\n",
				names[i]);
	}
	free(names);
}

/* A run's name in a comment: one line, nothing the INI reader would
 * take for syntax. */
static void write_comment_name(FILE *f, const char *name)
{
	for (const char *p = name; *p; p++)
		fputc(*p == '\n' || *p == '\r' ? ' ' : *p, f);
}

int learned_write(FILE *f, const struct learned *l, struct al_error *err)
{
	char *canon = policy_canonical(l->base, err);
	if (!canon)
		return -1;
	char hash[POLICY_HASH_LEN] = "";
	(void)policy_hash(l->base, hash, NULL);
	fprintf(f,
		"# Learned by airlock policy learn from the policy \"%s\"\n"
		"# (%s):\n"
		"# its rules, with the seccomp allow-list cut down to the\n"
		"# syscalls these runs made:\n",
		policy_name(l->base), hash);
	for (size_t i = 0; i < l->nruns; i++) {
		fprintf(f, "#   ");
		write_comment_name(f, l->runs[i]);
		fputc('\n', f);
	}
	fprintf(f,
		"# A run that takes another path may need more: learn over "
		"every input that matters.\n\n"
		"[policy]\nname = %.55s-learned\n"
		"description = syscalls learned from %zu run%s\n",
		policy_name(l->base), l->nruns, l->nruns == 1 ? "" : "s");
	bool allow_done = false;
	for (char *line = canon, *next; *line; line = next) {
		size_t len = strcspn(line, "\n");
		next = line + len + (line[len] == '\n');
		if (strncmp(line, "allow = ", 8) == 0) {
			if (!allow_done)
				write_allow(f, l);
			allow_done = true;
			continue;
		}
		/* the learned file is the explicit list: nothing is left to
		 * learn at runtime */
		if (strncmp(line, "seccomp = ", 10) == 0)
			continue;
		fprintf(f, "%.*s\n", (int)len, line);
	}
	free(canon);
	if (ferror(f))
		return al_error_sys(err, EIO, "writing the learned policy");
	return 0;
}
