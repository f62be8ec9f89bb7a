/*
 * airlock policy check FILE...     validate; exit 0 when all are valid, 1 if not
 * airlock policy show NAME|FILE    the canonical form
 * airlock policy hash NAME|FILE    "sha256:..." of the canonical form
 * airlock policy list              the policies the search path holds
 * airlock policy learn [--from P] [--suite F] [-- PROGRAM...]
 *                                  a policy from what runs made (cmd_learn.c)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "tools/cli.h"

static void policy_usage(FILE *f)
{
	char search[8192];
	fprintf(f,
		"usage: airlock policy check FILE...\n"
		"       airlock policy show NAME|FILE\n"
		"       airlock policy hash NAME|FILE\n"
		"       airlock policy list\n"
		"       airlock policy learn [--from POLICY] [--suite FILE]\n"
		"                            [-- PROGRAM [ARG...]]\n"
		"\n"
		"NAME is looked up as NAME.policy in %s\n"
		"(AIRLOCK_POLICY_PATH replaces that list).\n",
		policy_search_path(search, sizeof(search)));
}

static int check(int argc, char **argv)
{
	int bad = 0;
	if (argc < 1) {
		policy_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	for (int i = 0; i < argc; i++) {
		struct al_error err = { 0 };
		struct al_policy *p = policy_load(argv[i], &err);
		if (!p) {
			fprintf(stderr, "%s\n", err.msg);
			bad++;
			continue;
		}
		char hash[POLICY_HASH_LEN];
		if (policy_hash(p, hash, &err) < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], err.msg);
			bad++;
		} else {
			printf("%s: ok (%s, %s)\n", argv[i], policy_name(p),
			       hash);
		}
		policy_free(p);
	}
	return bad ? 1 : 0;
}

static int show_or_hash(int argc, char **argv, bool hash_only)
{
	if (argc != 1) {
		policy_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	struct al_error err = { 0 };
	struct al_policy *p = policy_load(argv[0], &err);
	if (!p) {
		fprintf(stderr, "airlock policy: %s\n", err.msg);
		return 1;
	}
	int rc = 0;
	if (hash_only) {
		char hash[POLICY_HASH_LEN];
		rc = policy_hash(p, hash, &err);
		if (rc == 0)
			printf("%s\n", hash);
	} else {
		char *text = policy_canonical(p, &err);
		rc = text ? 0 : -1;
		if (text)
			printf("# policy %s (canonical form)\n%s",
			       policy_name(p), text);
		free(text);
	}
	if (rc < 0)
		fprintf(stderr, "airlock policy: %s\n", err.msg);
	policy_free(p);
	return rc < 0 ? 1 : 0;
}

static void print_entry(const char *name, const char *path, void *arg)
{
	(void)arg;
	struct al_error err = { 0 };
	struct al_policy *p = policy_load(path, &err);
	char hash[POLICY_HASH_LEN] = "invalid";
	if (p)
		policy_hash(p, hash, &err);
	printf("%-12s %-16.16s %s%s%s\n", name, p ? hash + 7 : hash, path,
	       p && *policy_description(p) ? "  " : "",
	       p ? policy_description(p) : "");
	policy_free(p);
}

static int list(void)
{
	printf("%-12s %-16s %s\n", "NAME", "HASH", "FILE");
	if (policy_list(print_entry, NULL) == 0) {
		char search[8192];
		printf("(no policy files in %s; the built-in default is "
		       "always there)\n",
		       policy_search_path(search, sizeof(search)));
	}
	return 0;
}

int cmd_policy(int argc, char **argv)
{
	if (argc < 2) {
		policy_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	const char *sub = argv[1];
	if (strcmp(sub, "check") == 0)
		return check(argc - 2, argv + 2);
	if (strcmp(sub, "show") == 0)
		return show_or_hash(argc - 2, argv + 2, false);
	if (strcmp(sub, "hash") == 0)
		return show_or_hash(argc - 2, argv + 2, true);
	if (strcmp(sub, "list") == 0)
		return list();
	if (strcmp(sub, "learn") == 0)
		return cmd_policy_learn(argc - 1, argv + 1);
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "help") == 0) {
		policy_usage(stdout);
		return 0;
	}
	fprintf(stderr, "airlock policy: unknown subcommand \"%s\"\n", sub);
	policy_usage(stderr);
	return CLI_EXIT_USAGE;
}
