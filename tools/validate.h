/*
 * airlock validate: the pure parts, private to tools/.
 *
 *   validate_suite.c   suite files (INI, docs/ci.md) → struct vsuite
 *   validate_check.c   one result against one case's expectations
 *   validate_report.c  a growable text buffer, XML escaping, the JUnit and
 *                      JSON reports
 *
 * None of them touches the operating system beyond malloc (the suite
 * parser takes the text, not the file), so tests/unit/test_validate.c
 * feeds them strings. cmd_validate.c does the rest: files, jails, epoll.
 */
#ifndef AIRLOCK_TOOLS_VALIDATE_H
#define AIRLOCK_TOOLS_VALIDATE_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "sandbox/sandbox.h"

/* libinih keeps at most 49 characters of a section name: "case " + 44. */
#define VSUITE_MAX_NAME 44
/* Longest suite line, and the largest suite file. */
#define VSUITE_MAX_LINE 4096
#define VSUITE_MAX_FILE (1024 * 1024)

/* A value as written in the suite, with the line it came from. */
struct vsetting {
	char *value; /* NULL when not given */
	int line;
};

struct vpattern {
	char *text; /* after escapes; may hold NUL bytes */
	size_t len;
};

struct vregex {
	char *source;
	regex_t re;
};

/* What one of the module's output streams must look like. */
struct vstream_expect {
	bool has_exact;
	struct vpattern exact;
	struct vpattern *contains;
	size_t ncontains;
	struct vregex *regex;
	size_t nregex;
};

struct vcase {
	char *name;
	int line; /* of its [case NAME] header */
	/* what to run: `module` is a host path (relative ones are resolved
	 * against the suite's directory) or a bare name on the jail's PATH */
	struct vsetting module;
	char **args; /* NULL-terminated */
	size_t nargs;
	bool has_stdin;
	struct vpattern stdin_text;
	struct vsetting stdin_file; /* resolved like module */
	struct vsetting policy;     /* NULL: the command line's --policy */
	struct vsetting timeout, memory, pids, net;
	/* expectations; with neither verdict nor exit_code, verdict ok */
	int verdict;   /* enum al_verdict, or -1 */
	int exit_code; /* 0..255, or -1 */
	struct vstream_expect out, err;
	bool has_max_wall;
	uint64_t max_wall_us;
	struct vsetting max_wall; /* as written, for messages */
	bool has_max_memory;
	uint64_t max_memory_bytes;
	struct vsetting max_memory;
};

struct vsuite {
	char *filename; /* for messages; "command line" for modules */
	char *name;     /* the JUnit testsuite name */
	struct vcase *cases;
	size_t n;
};

/*
 * Parse a suite file's text. `filename` names it in messages
 * ("suite.ini:12: [case hello] stdout_regex: ...") and its directory is
 * where relative module, stdin_file and policy paths are found. Every error
 * stops the parse. Caller frees with vsuite_free().
 */
struct vsuite *vsuite_parse(const char *text, size_t len, const char *filename,
			    struct al_error *err);
/* One case per module named on the command line, each expecting ok. */
struct vsuite *vsuite_from_modules(char *const *modules, size_t n,
				   struct al_error *err);
void vsuite_free(struct vsuite *suite);

/* ------------------------------------------------ running cases (cmd_validate.c) */

/* Read and parse a suite file. Caller frees with vsuite_free(). */
struct vsuite *vsuite_load(const char *path, struct al_error *err);
/* The case's policy (its own, else `fallback`, else default) with its
 * overrides applied; errors name the suite line. Caller frees. */
struct al_policy *vcase_policy(const struct vsuite *s, const struct vcase *c,
			       const char *fallback, struct al_error *err);
/* The case's stdin: a file of the host, its text in a memfd, or -1
 * (/dev/null in the jail). Caller closes. */
int vcase_open_stdin(const struct vcase *c, struct al_error *err);

/* ------------------------------------------------------------- checking */

/* The unmet expectations of one run, one message each, in a fixed order:
 * verdict, exit_code, stdout, stderr, max_wall, max_memory. */
struct vfailures {
	char **msg;
	size_t n;
};

/* Fill `out` (initially zeroed) with every unmet expectation of case `c`
 * for result `r`. Returns -1 only when out of memory. */
int vcheck(const struct vcase *c, const struct sandbox_result *r,
	   struct vfailures *out);
void vfailures_free(struct vfailures *f);
/* "crashed (SIGSEGV)", "exit_nonzero (exit code 3)", "ok". */
void vdescribe_result(const struct sandbox_result *r, char *buf, size_t len);

/* -------------------------------------------------------------- reports */

struct vbuf {
	char *data;
	size_t len;
	size_t cap;
	bool failed;
};

void vbuf_append(struct vbuf *b, const char *s, size_t n);
void vbuf_puts(struct vbuf *b, const char *s);
void vbuf_printf(struct vbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Printable for a terminal or a message: quotes, backslashes, control
 * characters and bytes >= 0x7f become C escapes; at most `max` input bytes,
 * then "...". vbuf_quote() adds the surrounding double quotes. */
void vbuf_escape(struct vbuf *b, const char *s, size_t n, size_t max);
void vbuf_quote(struct vbuf *b, const char *s, size_t n, size_t max);
void vbuf_free(struct vbuf *b);

/*
 * Text or attribute content for XML 1.0 from arbitrary bytes: markup
 * characters become entities; tab, newline and carriage return pass in text
 * and become character references in attributes; every character XML 1.0
 * forbids (other C0 controls, surrogates, U+FFFE, U+FFFF) and every byte
 * of invalid UTF-8 becomes U+FFFD.
 */
void vxml_escape(struct vbuf *b, const char *s, size_t n, bool attribute);

/* What one case ended with, in case order. */
struct vreport {
	bool done;
	struct sandbox_result result; /* owned: stdout/stderr copied */
	char *json;                   /* sandbox_result_json(), owned */
	struct vfailures failures;
	bool passed;
	bool error; /* an unexpected setup_error: a JUnit <error> */
};

void vreport_release(struct vreport *r);

/* The whole JUnit XML document / JSON document. Caller frees; NULL when
 * out of memory. `timestamp` is ISO 8601 ("2024-05-01T12:00:00"). */
char *vjunit_render(const struct vsuite *suite, const struct vreport *reports,
		    double total_ms, const char *timestamp,
		    const char *hostname);
char *vjson_render(const struct vsuite *suite, const struct vreport *reports,
		   double total_ms);

#endif
