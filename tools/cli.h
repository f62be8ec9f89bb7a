/* tools/: the airlock command line. */
#ifndef AIRLOCK_CLI_H
#define AIRLOCK_CLI_H

/* Usage errors and setup errors share 125 with `airlock run` (DESIGN.md). */
#define CLI_EXIT_USAGE 125

struct cli_command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

int cmd_run(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_policy(int argc, char **argv);
/* policy learn: argv[0] is "learn" */
int cmd_policy_learn(int argc, char **argv);
int cmd_manifest(int argc, char **argv); /* list, show, runs, manifest */
int cmd_validate(int argc, char **argv); /* CI: cases against expectations */
int cmd_client(int argc, char **argv); /* submit, exec, status, archive, ... */

#endif
