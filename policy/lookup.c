/*
 * Finding policies: a path, or a name looked up in the search path.
 */
#include <ctype.h>
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
#define DEFAULT_STATE_DIR "/var/lib/airlock"
#define SUFFIX ".policy"

/* The state directory whose policies/ is searched: airlockd's --state-dir
 * (policy_set_state_dir), else $AIRLOCK_STATE_DIR, else the default, as
 * every command finds the state directory. */
static char state_dir[PATH_MAX];

void policy_set_state_dir(const char *dir)
{
	snprintf(state_dir, sizeof(state_dir), "%s", dir ? dir : "");
}

static const char *state_policy_dir(char *buf, size_t len)
{
	const char *dir = state_dir[0] ? state_dir
				       : getenv("AIRLOCK_STATE_DIR");
	if (!dir || !*dir)
		dir = DEFAULT_STATE_DIR;
	snprintf(buf, len, "%s%spolicies", dir,
		 dir[strlen(dir) - 1] == '/' ? "" : "/");
	return buf;
}

/* with_tree: also the source tree next to the binary, for a CLI run from
 * build/; never for the daemon, where that tree may be anyone's. */
static const char *search_path(char *buf, size_t len, bool with_tree)
{
	const char *env = getenv("AIRLOCK_POLICY_PATH");
	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return buf;
	}
	char exe[PATH_MAX];
	ssize_t n = with_tree ? readlink("/proc/self/exe", exe, sizeof(exe) - 1)
			      : -1;
	char tree[PATH_MAX + 32] = "";
	if (n > 0) {
		exe[n] = '\0';
		char joined[PATH_MAX + 32], real[PATH_MAX];
		snprintf(joined, sizeof(joined), "%s/../policy/policies",
			 dirname(exe));
		if (realpath(joined, real))
			snprintf(tree, sizeof(tree), ":%s", real);
	}
	char state[PATH_MAX + 16];
	snprintf(buf, len, "%s:%s%s", AIRLOCK_POLICY_DIR,
		 state_policy_dir(state, sizeof(state)), tree);
	return buf;
}

const char *policy_search_path(char *buf, size_t len)
{
	return search_path(buf, len, true);
}

const char *policy_trusted_search_path(char *buf, size_t len)
{
	return search_path(buf, len, false);
}

bool policy_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return false;
	return true;
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

static bool find_in(const char *path, const char *name, char *out, size_t len)
{
	char search[8192];
	snprintf(search, sizeof(search), "%s", path);
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
	char search[8192];
	policy_search_path(search, sizeof(search));
	if (find_in(search, what, path, sizeof(path)))
		return load_path(path, what, err);
	if (strcmp(what, "default") == 0)
		return policy_new_default(err);
	al_error_set(err, ENOENT,
		     "unknown policy \"%s\": no %s" SUFFIX " in %s (give a "
		     "path to use a file elsewhere; 'airlock policy list' "
		     "shows what there is)",
		     what, what, search);
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_in(const char *path,
		   void (*fn)(const char *name, const char *path, void *arg),
		   void *arg)
{
	char search[8192], *names[512];
	int count = 0;
	snprintf(search, sizeof(search), "%s", path);
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
		char file[PATH_MAX];
		if (find_in(path, names[i], file, sizeof(file)))
			fn(names[i], file, arg);
		free(names[i]);
	}
	return count;
}

int policy_list(void (*fn)(const char *name, const char *path, void *arg),
		void *arg)
{
	char search[8192];
	return list_in(policy_search_path(search, sizeof(search)), fn, arg);
}

int policy_list_trusted(void (*fn)(const char *name, const char *path,
				   void *arg),
			void *arg)
{
	char search[8192];
	return list_in(policy_trusted_search_path(search, sizeof(search)), fn,
		       arg);
}

struct names {
	char *buf;
	size_t len, used;
};

static void add_trusted(const char *name, const char *path, void *arg)
{
	struct names *n = arg;
	if (al_path_trusted(path, geteuid(), NULL) < 0 || n->used >= n->len)
		return; /* one the daemon would refuse: not worth naming */
	int w = snprintf(n->buf + n->used, n->len - n->used, "%s%s",
			 n->used ? ", " : "", name);
	n->used = w < 0 ? n->len : n->used + (size_t)w;
}

/* The names policy_load_trusted() would load, "default" always among
 * them (it is built in): "default, python, strict". */
static void trusted_names(char *buf, size_t len)
{
	struct names n = { .buf = buf, .len = len };
	char search[8192], path[PATH_MAX];

	buf[0] = '\0';
	if (!find_in(policy_trusted_search_path(search, sizeof(search)),
		     "default", path, sizeof(path)))
		n.used = (size_t)snprintf(buf, len, "default");
	policy_list_trusted(add_trusted, &n);
}

/*
 * For the daemon, which loads policies as root on a client's word: the
 * name must be a plain name (never a path, never relative to any working
 * directory), found only in the trusted search path, and the file and
 * every directory above it root's alone (al_path_trusted()), or a local
 * user could plant a policy that binds host files into the jail.
 */
struct al_policy *policy_load_trusted(const char *name, struct al_error *err)
{
	char search[8192], path[PATH_MAX];

	if (!policy_name_valid(name)) {
		al_error_set(err, EINVAL,
			     "invalid policy name \"%.64s\": give a name of "
			     "letters, digits, '-' and '_' (the daemon looks "
			     "it up in its own policy directories, never a "
			     "path)",
			     name);
		return NULL;
	}
	policy_trusted_search_path(search, sizeof(search));
	if (!find_in(search, name, path, sizeof(path))) {
		if (strcmp(name, "default") == 0)
			return policy_new_default(err);
		char have[512];
		trusted_names(have, sizeof(have));
		al_error_set(err, ENOENT,
			     "unknown policy \"%s\": no %s" SUFFIX " in %s; "
			     "this daemon accepts %s (an operator adds one as "
			     "a root-owned file, not group/other-writable, in "
			     "one of those directories)",
			     name, name, search, have);
		return NULL;
	}
	if (al_path_trusted(path, geteuid(), err) < 0) {
		al_error_prefix(err, "policy \"%s\" refused", name);
		return NULL;
	}
	return load_path(path, name, err);
}
