/*
 * Finding policies: a path, or a name looked up in the search path.
 */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/internal.h"

#ifndef AIRLOCK_POLICY_DIR
#define AIRLOCK_POLICY_DIR "/usr/local/share/airlock/policies"
#endif
#define STATE_POLICY_DIR "/var/lib/airlock/policies"
#define SUFFIX ".policy"

const char *policy_search_path(char *buf, size_t len)
{
	const char *env = getenv("AIRLOCK_POLICY_PATH");
	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return buf;
	}
	/* the source tree, for a binary run from build/ or build-asan/ */
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char tree[PATH_MAX + 32] = "";
	if (n > 0) {
		exe[n] = '\0';
		char joined[PATH_MAX + 32], real[PATH_MAX];
		snprintf(joined, sizeof(joined), "%s/../policy/policies",
			 dirname(exe));
		if (realpath(joined, real))
			snprintf(tree, sizeof(tree), ":%s", real);
	}
	snprintf(buf, len, "%s:%s%s", AIRLOCK_POLICY_DIR, STATE_POLICY_DIR,
		 tree);
	return buf;
}

static bool is_path(const char *s)
{
	size_t n = strlen(s), k = strlen(SUFFIX);
	return strchr(s, '/') || (n > k && strcmp(s + n - k, SUFFIX) == 0);
}

static struct al_policy *load_path(const char *path, const char *name,
				   struct al_error *err)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		al_error_sys(err, errno, "policy %s", path);
		return NULL;
	}
	struct al_policy *p = policy_parse_file(f, path, name, err);
	fclose(f);
	return p;
}

/* "dir/strict.policy" → "strict" */
static void name_of(const char *path, char *out, size_t len)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	snprintf(out, len, "%s", base);
	size_t n = strlen(out), k = strlen(SUFFIX);
	if (n > k && strcmp(out + n - k, SUFFIX) == 0)
		out[n - k] = '\0';
}

static bool find_in_path(const char *name, char *out, size_t len)
{
	char search[8192];
	policy_search_path(search, sizeof(search));
	char *save = NULL;
	for (char *dir = strtok_r(search, ":", &save); dir;
	     dir = strtok_r(NULL, ":", &save)) {
		snprintf(out, len, "%s/%s" SUFFIX, dir, name);
		if (access(out, R_OK) == 0)
			return true;
	}
	return false;
}

struct al_policy *policy_load(const char *what, struct al_error *err)
{
	char path[PATH_MAX], name[64];
	if (is_path(what)) {
		name_of(what, name, sizeof(name));
		return load_path(what, name, err);
	}
	if (strlen(what) >= sizeof(name) || strchr(what, '.')) {
		al_error_set(err, EINVAL, "invalid policy name \"%s\"", what);
		return NULL;
	}
	if (find_in_path(what, path, sizeof(path)))
		return load_path(path, what, err);
	if (strcmp(what, "default") == 0)
		return policy_new_default(err);
	char search[8192];
	al_error_set(err, ENOENT,
		     "unknown policy \"%s\": no %s" SUFFIX " in %s (give a "
		     "path to use a file elsewhere; 'airlock policy list' "
		     "shows what there is)",
		     what, what, policy_search_path(search, sizeof(search)));
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int policy_list(void (*fn)(const char *name, const char *path, void *arg),
		void *arg)
{
	char search[8192], *names[512];
	int count = 0;
	policy_search_path(search, sizeof(search));
	char *save = NULL;
	for (char *dir = strtok_r(search, ":", &save); dir && count < 512;
	     dir = strtok_r(NULL, ":", &save)) {
		DIR *d = opendir(dir);
		if (!d)
			continue;
		struct dirent *e;
		while ((e = readdir(d)) && count < 512) {
			char name[256];
			size_t n = strlen(e->d_name);
			if (n <= strlen(SUFFIX) ||
			    strcmp(e->d_name + n - strlen(SUFFIX), SUFFIX) != 0)
				continue;
			name_of(e->d_name, name, sizeof(name));
			bool dup = false;
			for (int i = 0; i < count; i++)
				dup |= strcmp(names[i], name) == 0;
			if (!dup && (names[count] = strdup(name)))
				count++;
		}
		closedir(d);
	}
	qsort(names, (size_t)count, sizeof(names[0]), cmp_str);
	for (int i = 0; i < count; i++) {
		char path[PATH_MAX];
		if (find_in_path(names[i], path, sizeof(path)))
			fn(names[i], path, arg);
		free(names[i]);
	}
	return count;
}
