/* tools/: the airlock command line. */
#ifndef AIRLOCK_CLI_H
#define AIRLOCK_CLI_H

/* Usage errors and setup errors share 125 with `airlock run`
 * (docs/design.md). */
#define CLI_EXIT_USAGE 125
/* result, wait: the run has not ended (yet): EX_TEMPFAIL, try again */
#define CLI_EXIT_NOT_FINISHED 75

struct cli_command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

int cmd_run(int argc, char **argv);
int cmd_version(int argc, char **argv); /* cmd_version.c */
int cmd_policy(int argc, char **argv);
int cmd_languages(int argc, char **argv); /* cmd_languages.c */
/* policy learn: argv[0] is "learn" */
int cmd_policy_learn(int argc, char **argv);
int cmd_manifest(int argc, char **argv); /* list, show, runs, manifest */
int cmd_validate(int argc, char **argv); /* CI: cases against expectations */
int cmd_client(int argc, char **argv);   /* submit, exec, archive, ... */
int cmd_status(int argc, char **argv);   /* status, top */
int cmd_operator(int argc, char **argv); /* quota, events, audit */
int cmd_doctor(int argc, char **argv);

/* tools/explain.c: the line saying why a run ended, when it was not the
 * module's own exit (nothing for ok and exit_nonzero), as "airlock run"
 * and "airlock exec" print it. Members as in the result object (limits
 * from its "limits"); a limit of 0 is not known. */
#include <stdint.h>
#include <stdio.h>

#include "common/common.h"

struct cli_verdict {
	const char *verdict;
	const char *signal; /* "SIGSEGV", or NULL */
	const char *syscall;
	const char *error;
	double wall_ms;
	uint64_t timeout_ms;
	uint64_t memory_bytes;
};
void cli_explain_verdict(FILE *f, const struct cli_verdict *v);
/* cmd_run.c: sandbox_host_new() with the runs' host uid range from
 * $AIRLOCK_UID_RANGE (BASE:COUNT or none; the default when unset), for
 * run, validate and policy learn. Caller frees. */
struct al_error;
struct sandbox_host;
struct sandbox_host *cli_sandbox_host(struct al_error *err);

/* tools/client.c: talking to airlockd. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

struct json_doc;
struct json_node;

/* --socket, else $AIRLOCK_SOCKET, else the default; --state-dir, else
 * $AIRLOCK_STATE_DIR, else the default. Borrowed. */
const char *cli_socket_path(const char *flag);
const char *cli_state_dir(const char *flag);
/* The manifest, read-only: the state directory's SQLite file, or the
 * PostgreSQL server $DATABASE_URL names. The static CLI has no libpq: it
 * runs the same command in airlock-pg instead (cli_save_argv() keeps the
 * arguments for that). */
struct manifest;
struct manifest *cli_manifest_open(const char *state_dir, struct al_error *err);
void cli_save_argv(char **argv);

/* A connected socket (caller closes), or -1 with err (errnum from
 * connect: ENOENT, ECONNREFUSED when no daemon answers). */
int cli_connect(const char *path, struct al_error *err);
int cli_write_all(int fd, const char *p, size_t len);
/* One line from fd (without its newline); caller frees *line. */
int cli_read_line(int fd, char **line, size_t *len, struct al_error *err);
/* Lines one after the other from a stream (subscribe): bytes read past a
 * line wait for the next call. */
struct cli_stream {
	int fd; /* borrowed */
	size_t len;
	char buf[1 << 16];
};
/* The next line without its newline; caller frees *line. */
int cli_stream_next(struct cli_stream *st, char **line, size_t *len,
		    struct al_error *err);
/* Connect, send `req` (with descriptor `pass` unless -1), read one line. */
int cli_round_trip(const char *socket_path, struct json_buf *req, int pass,
		   char **line, size_t *len, struct al_error *err);

/* One response line, parsed; `ok` is the server's verdict. */
struct cli_response {
	char *line; /* owned */
	size_t len;
	struct json_doc *doc;
	const struct json_node *root;
	bool ok;
};
/* Takes `line` (freed by cli_response_free, also on failure). */
int cli_response_parse(struct cli_response *r, char *line, size_t len,
		       struct al_error *err);
void cli_response_free(struct cli_response *r);
/* Round trip and parse; frees `req`; prints the line with print_json.
 * -1 with the error printed as "airlock COMMAND: ...". */
int cli_call(const char *command, const char *socket, struct json_buf *req,
	     int pass, bool print_json, struct cli_response *r);
/* "airlock COMMAND: code: message" for an error response. */
void cli_print_error(const char *command, const struct cli_response *r);
/* A member's value, or 0 / false. */
int64_t cli_int(const struct json_doc *doc, const struct json_node *obj,
		const char *key);
bool cli_bool(const struct json_doc *doc, const struct json_node *obj,
	      const char *key);

/* tools/cmd_status.c: the "quotas" array of a status or quota_show
 * response as a table. */
#include <stdio.h>
#include <signal.h>

/* interrupt.c: SIGINT, SIGTERM, SIGHUP as an fd while jails run, so
 * they are cancelled and cleaned up, not orphaned (exit 128 + signo). */
struct cli_interrupt {
	int fd;    /* a signalfd to poll, or -1 */
	int signo; /* the first signal taken, or 0 */
	sigset_t saved;
};
int cli_interrupt_open(struct cli_interrupt *in, struct al_error *err);
/* Read what arrived; the first signal taken (0: none yet). */
int cli_interrupt_take(struct cli_interrupt *in);
/* Close the fd and restore the signal mask (pending signals then act). */
void cli_interrupt_close(struct cli_interrupt *in);
/* "interrupted by SIGINT" */
void cli_interrupt_reason(const struct cli_interrupt *in, char *buf,
			  size_t len);
void cli_print_quotas(FILE *f, const struct cli_response *r);

/* pty_relay.c: a pty of the module's own where the caller's stdio is a
 * terminal, relayed by airlock (the file says why). */
#include <termios.h>
struct pollfd;
struct cli_pty {
	int master, slave; /* -1: no terminal involved */
	int term_in;       /* the caller's stdin when a terminal, or -1 */
	int term_out;      /* where the pty's output goes, or -1 */
	int winch_fd;      /* SIGWINCH as a signalfd */
	bool raw, mask_saved, in_eof, hung_up;
	struct termios saved; /* the caller's modes, restored at close */
	sigset_t saved_mask;
	char in[4096];
	size_t in_len, in_off;
};
void cli_pty_init(struct cli_pty *p);
/* Where fd 0, 1 or 2 is a terminal (with json: only 0), put the slave in
 * stdio[i] and set the pty up like that terminal. */
int cli_pty_open(struct cli_pty *p, int stdio[3], bool json,
		 struct al_error *err);
/* After sandbox_start: drop our copy of the slave. */
void cli_pty_started(struct cli_pty *p);
/* Up to 3 entries to poll, and what to do when they are ready. */
int cli_pty_pollfds(struct cli_pty *p, struct pollfd *pfd);
void cli_pty_handle(struct cli_pty *p, const struct pollfd *pfd, int n);
/* The run is over: copy out what the pty still holds. */
void cli_pty_drain(struct cli_pty *p);
/* Restore the caller's terminal and signal mask; close everything. */
void cli_pty_close(struct cli_pty *p);

/* run_opts.c: --env NAME=value as airlock run and airlock exec take it
 * (repeatable): the name is what comes before the first '=', the value
 * the rest; the name's own rules are policy_tighten()'s, for both. */
#define CLI_ENV_MAX 64
struct cli_env {
	char *names[CLI_ENV_MAX];        /* owned */
	const char *values[CLI_ENV_MAX]; /* borrowed from the argument */
	size_t n;
};
/* -1 with a usage message in msg (no '=', too many, out of memory). */
int cli_env_add(struct cli_env *e, const char *arg, char *msg, size_t len);
void cli_env_free(struct cli_env *e);

#endif
