/*
 * airlock: the one command line for people and CI.
 */
#include <stdio.h>
#include <string.h>

#include "tools/cli.h"

static const struct cli_command commands[] = {
	{ "run", cmd_run, "run one module in a jail" },
	{ "validate", cmd_validate,
	  "run cases in jails against expectations (CI)" },
	{ "policy", cmd_policy, "check, show, hash and list policies" },
	{ "languages", cmd_languages,
	  "each policy's interpreter and its version in the jail" },
	{ "version", cmd_version, "version and the isolation this host gives" },
	{ "list", cmd_manifest, "modules in the manifest" },
	{ "show", cmd_manifest, "a module, its versions, runs and events" },
	{ "runs", cmd_manifest, "runs recorded in the manifest" },
	{ "manifest", cmd_manifest, "check or back up the manifest" },
	{ "submit", cmd_client, "submit a module to airlockd for validation" },
	{ "exec", cmd_client, "run an active module through airlockd" },
	{ "result", cmd_client, "a run's result and kept output (airlockd)" },
	{ "wait", cmd_client, "wait for a run to end, then its result" },
	{ "status", cmd_status,
	  "airlockd's state: runs, queue, modules, quotas" },
	{ "top", cmd_status, "airlock status, redrawn live until q" },
	{ "events", cmd_operator, "the event feed, or --follow it live" },
	{ "quota", cmd_operator,
	  "quota use by uid (show), or reset one (admin)" },
	{ "audit", cmd_operator, "modules and runs held to an edited policy" },
	{ "doctor", cmd_doctor, "check this host for what airlock needs" },
	{ "archive", cmd_client, "archive a module (admin)" },
	{ "restore", cmd_client, "restore an archived module (admin)" },
	{ "rollback", cmd_client,
	  "make the good version before the active one active again" },
	{ "cancel", cmd_client,
	  "kill a running run, or a module's queued runs (admin)" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: airlock COMMAND [OPTIONS] [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\n'airlock COMMAND --help' describes each command.\n");
}

int main(int argc, char **argv)
{
	cli_save_argv(argv);
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
	    strcmp(name, "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(name, "--version") == 0)
		name = "version";
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "airlock: unknown command \"%s\"\n", name);
	usage(stderr);
	return CLI_EXIT_USAGE;
}
