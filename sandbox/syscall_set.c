/*
 * Sets of syscall numbers, as the learner records them and the manifest
 * stores them: a bitmap, its sorted names, and the names back. Pure code
 * (libseccomp only for its name table), unit-tested apart from BPF.
 */
#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/internal.h"

void sandbox_syscalls_add(struct sandbox_syscalls *set, int nr)
{
	if (nr >= 0 && nr < SANDBOX_SYSCALL_MAX)
		set->words[nr / 64] |= 1ull << (nr % 64);
}

bool sandbox_syscalls_has(const struct sandbox_syscalls *set, int nr)
{
	return nr >= 0 && nr < SANDBOX_SYSCALL_MAX &&
	       (set->words[nr / 64] >> (nr % 64) & 1);
}

size_t sandbox_syscalls_count(const struct sandbox_syscalls *set)
{
	size_t n = 0;
	for (size_t i = 0; i < SANDBOX_SYSCALL_MAX / 64; i++)
		n += (size_t)__builtin_popcountll(set->words[i]);
	return n;
}

int sandbox_syscalls_add_name(struct sandbox_syscalls *set, const char *name,
			      struct al_error *err)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr < 0 || nr >= SANDBOX_SYSCALL_MAX)
		return al_error_set(
			err, EINVAL,
			"unknown syscall \"%s\" on this architecture", name);
	sandbox_syscalls_add(set, nr);
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **sandbox_syscalls_names(const struct sandbox_syscalls *set)
{
	size_t n = sandbox_syscalls_count(set);
	/* pointers, then up to 64 bytes of name each, in one block */
	char **names = calloc(1, (n + 1) * sizeof(char *) + n * 64);
	if (!names)
		return NULL;
	char *text = (char *)(names + n + 1);
	size_t k = 0;
	for (int nr = 0; nr < SANDBOX_SYSCALL_MAX && k < n; nr++) {
		if (!sandbox_syscalls_has(set, nr))
			continue;
		names[k] = text + k * 64;
		seccomp_syscall_name(SCMP_ARCH_NATIVE, nr, names[k], 64);
		k++;
	}
	qsort(names, k, sizeof(char *), by_name);
	return names;
}

char *sandbox_syscalls_join(const struct sandbox_syscalls *set)
{
	_cleanup_free_ char **names = sandbox_syscalls_names(set);
	if (!names)
		return NULL;
	size_t len = 1;
	for (size_t i = 0; names[i]; i++)
		len += strlen(names[i]) + 1;
	char *out = malloc(len), *p = out;
	if (!out)
		return NULL;
	*p = '\0';
	for (size_t i = 0; names[i]; i++)
		p = stpcpy(stpcpy(p, i ? " " : ""), names[i]);
	return out;
}

int sandbox_syscalls_parse(const char *text, struct sandbox_syscalls *set,
			   struct al_error *err)
{
	memset(set, 0, sizeof(*set));
	while (*text) {
		size_t skip = strspn(text, " ,\t\n");
		text += skip;
		size_t len = strcspn(text, " ,\t\n");
		if (!len)
			break;
		char name[64];
		if (len >= sizeof(name))
			return al_error_set(err, EINVAL,
					    "syscall name too long: %.64s...",
					    text);
		memcpy(name, text, len);
		name[len] = '\0';
		if (sandbox_syscalls_add_name(set, name, err) < 0)
			return -1;
		text += len;
	}
	return 0;
}
