/*
 * common: the small pieces every part of airlock shares.
 *
 *   - struct al_error: the error object that carries errno and a message
 *     from the place something failed up to the command line;
 *   - struct json_buf: an append-only JSON writer that never emits invalid
 *     JSON, whatever bytes it is given (module output is hostile);
 *   - parse_size() / parse_duration(): the size and duration strings of the
 *     command line, the environment and policy files.
 *
 *   - al_path_trusted(): may root act on this path (StrictModes)?
 *   - enum al_verdict: how a run ended, the one list the jail, policies,
 *     the manifest and the command line name;
 *   - al_monotonic_ms(), AL_HOUR_MS, AL_DAY_MS, ARRAY_SIZE().
 *
 * Nothing here touches the operating system beyond malloc, except
 * al_path_trusted() (stat(2) of a path and its directories) and
 * al_monotonic_ms() (the clock).
 */
#ifndef AIRLOCK_COMMON_H
#define AIRLOCK_COMMON_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AIRLOCK_VERSION "0.1.0"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ time */

#define AL_HOUR_MS INT64_C(3600000)
#define AL_DAY_MS INT64_C(86400000)

/* CLOCK_MONOTONIC in milliseconds, with the fraction: for durations and
 * deadlines, never for dates (manifest_now_ms() is the wall clock). */
double al_monotonic_ms(void);

/* -------------------------------------------------------------- verdicts */

/*
 * How a run ended (docs/design.md, "airlock run"). setup_error is ours (or
 * a module that cannot be executed at all); every other verdict is the
 * module's own doing. Policies' archive_on is a bit per verdict; the
 * manifest stores the names, and adds "running" and "interrupted" for runs
 * that have no verdict (yet).
 */
enum al_verdict {
	AL_VERDICT_OK,
	AL_VERDICT_EXIT_NONZERO,
	AL_VERDICT_CRASHED,      /* killed by a signal of its own doing */
	AL_VERDICT_TIMEOUT,      /* wall clock or CPU time limit */
	AL_VERDICT_MEMORY_LIMIT, /* killed by the cgroup's OOM killer */
	AL_VERDICT_SECCOMP_VIOLATION,
	AL_VERDICT_SETUP_ERROR, /* ours, or a module that cannot be executed */
	/* a bundle's build step failed (its command's exit, a signal, its
	 * timeout or memory): the module never ran. The supervisor's, never
	 * the jail's: sandbox/verdict.c does not give it */
	AL_VERDICT_BUILD_FAILED,
	AL_VERDICT_COUNT,
};

/* "ok", "exit_nonzero", ...; "setup_error" for a value out of range. */
const char *al_verdict_name(enum al_verdict v);
/* The verdict of that name, or -1 when there is none. */
int al_verdict_parse(const char *name);

/* ---------------------------------------------------------------- errors */

#define AL_ERROR_MAX 1024

/*
 * Fallible functions return a negative int and fill the error object they
 * are given (which may be NULL when the caller does not care). `errnum` is
 * the errno that caused the failure, or 0 when there was none.
 */
struct al_error {
	int errnum;
	char msg[AL_ERROR_MAX];
};

/* Set the message (printf-style); returns -1 so callers can
 * `return al_error_set(err, errno, "...")`. */
int al_error_set(struct al_error *err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like al_error_set(), with ": <strerror(errnum)>" appended when errnum != 0. */
int al_error_sys(struct al_error *err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Put context in front of an existing message: "ctx: old message". */
int al_error_prefix(struct al_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void al_error_clear(struct al_error *err);

/* ------------------------------------------------------------ libraries */

/* A library loaded at its first use rather than linked (libpq, libarchive:
 * their dependencies would sit in every idle airlockd's memory). */
struct al_dl_symbol {
	const char *name;
	void **ptr; /* where its address goes */
};
struct al_dl_library {
	const char *name; /* its soname */
	const struct al_dl_symbol *symbols;
	size_t n;
	pthread_mutex_t lock;
	int state;         /* 0 not tried, 1 loaded, -1 failed */
	char failure[256]; /* why it failed */
};
#define AL_DL_LIBRARY(soname, syms)                                            \
	{                                                                      \
		.name = (soname), .symbols = (syms), .n = ARRAY_SIZE(syms),    \
		.lock = PTHREAD_MUTEX_INITIALIZER                              \
	}
/* dlopen the library and resolve every symbol, the first time only (it is
 * never closed); 0, or -1 with why in lib->failure. */
int al_dl_ensure(struct al_dl_library *lib);

/* --------------------------------------------------------------- cleanup */

void al_freep(void *p);
void al_closep(int *fd);
#define _cleanup_free_ __attribute__((cleanup(al_freep)))
#define _cleanup_close_ __attribute__((cleanup(al_closep)))

/* Hand ownership over: returns the value and resets the variable. */
#define steal_fd(fd)                                                           \
	({                                                                     \
		int _stolen = *(fd);                                           \
		*(fd) = -1;                                                    \
		_stolen;                                                       \
	})
#define steal_ptr(pp)                                                          \
	({                                                                     \
		__typeof__(*(pp)) _stolen = *(pp);                             \
		*(pp) = NULL;                                                  \
		_stolen;                                                       \
	})

/* ------------------------------------------------------------------ JSON */

/*
 * An append-only JSON text. On allocation failure the buffer is marked
 * failed, later appends do nothing, and json_buf_failed() says so; callers
 * check once at the end. The writer inserts commas itself: a caller only
 * opens and closes containers and adds keys and values.
 */
struct json_buf {
	char *data;
	size_t len;
	size_t cap;
	bool failed;
	/* nesting state: one bit per level, set when the level has a member */
	uint64_t has_member;
	int depth;
	bool after_key;
};

void json_buf_init(struct json_buf *jb);
void json_buf_free(struct json_buf *jb);
bool json_buf_failed(const struct json_buf *jb);
/* Give the text to the caller (NUL-terminated, caller frees) and reset. */
char *json_buf_steal(struct json_buf *jb);

void json_object_open(struct json_buf *jb);
void json_object_close(struct json_buf *jb);
void json_array_open(struct json_buf *jb);
void json_array_close(struct json_buf *jb);
void json_key(struct json_buf *jb, const char *key);

/*
 * A string value from arbitrary bytes: quotes, backslashes and control
 * characters are escaped; valid UTF-8 passes through; every byte of an
 * invalid UTF-8 sequence (overlong forms, surrogates, code points above
 * U+10FFFF, truncated sequences) becomes U+FFFD; NUL becomes \u0000.
 */
void json_string_n(struct json_buf *jb, const char *s, size_t n);
void json_string(struct json_buf *jb, const char *s); /* NULL → null */
/* Whether s[0..n) is well-formed UTF-8 (as json_string_n() would keep it
 * unchanged); NUL bytes count as valid. */
bool json_utf8_valid(const char *s, size_t n);
void json_int(struct json_buf *jb, int64_t v);
void json_uint(struct json_buf *jb, uint64_t v);
/* Fixed-point with `decimals` digits after the point; NaN/inf → null. */
void json_double(struct json_buf *jb, double v, int decimals);
void json_bool(struct json_buf *jb, bool v);
void json_null(struct json_buf *jb);
/* A value some json_buf wrote before (kept as text, say): `text` must be
 * exactly one well-formed JSON value; it is appended as it is. */
void json_raw_value(struct json_buf *jb, const char *text, size_t n);

/* Shorthands for "key": value members. */
void json_kv_string(struct json_buf *jb, const char *key, const char *s);
void json_kv_int(struct json_buf *jb, const char *key, int64_t v);
void json_kv_uint(struct json_buf *jb, const char *key, uint64_t v);
void json_kv_bool(struct json_buf *jb, const char *key, bool v);
void json_kv_null(struct json_buf *jb, const char *key);

/* --------------------------------------------------------------- parsing */

/*
 * "64M", "64MiB", "1G", "512k", "4096" (bytes), "1.5G"; units are binary
 * (K = 1024) and case-insensitive; "B" optional. Rejects empty strings,
 * signs, trailing garbage, overflow past UINT64_MAX and fractional byte
 * counts. On error returns -1 with a message naming the input and the
 * expected form.
 */
int parse_size(const char *s, uint64_t *out, struct al_error *err);

/*
 * "200ms", "3s", "1.5s", "2m", "1h", "500us", "3000" (plain number =
 * milliseconds), into microseconds. Same rejections as parse_size().
 */
int parse_duration_us(const char *s, uint64_t *out, struct al_error *err);

/* A decimal unsigned integer within [min, max]; no sign, no garbage. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
	       struct al_error *err);

/* Format a byte count for people: "64 MiB", "1.5 GiB", "512 B". */
void format_size(uint64_t bytes, char *buf, size_t len);

/* --------------------------------------------------------------- trust */

/* 0 if `path` (resolved) and every directory above it are owned by root
 * or `self` and not writable by group or other (a root-owned sticky
 * directory such as /tmp is fine above it); else -1 with err naming the
 * offending path and the fix. For files and directories the daemon reads
 * as root on behalf of clients. */
int al_path_trusted(const char *path, uid_t self, struct al_error *err);
/* The same test of one file already stat'ed (`what` names it in err). */
struct stat;
int al_stat_trusted(const char *what, const struct stat *st, uid_t self,
		    struct al_error *err);

/* ============================================================ JSON reader */

/*
 * A small, bounded JSON parser for protocol lines and JSON files. The whole text is parsed
 * at once into a fixed number of nodes; strings are unescaped into one
 * arena no larger than the input. Anything past the limits (nodes, depth,
 * string length) is an error, never a reallocation, so a hostile line
 * costs at most O(len) memory.
 */
enum json_type {
	JSON_NULL,
	JSON_BOOL,
	JSON_INT,    /* an integer that fits int64 */
	JSON_NUMBER, /* any other number (fraction or exponent) */
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

struct json_node {
	enum json_type type;
	uint32_t parent; /* index; the root's is itself */
	uint32_t next;   /* next sibling, or 0 for none */
	uint32_t child;  /* first child (arrays, objects), or 0 */
	uint32_t count;  /* members or elements */
	const char *key; /* the member's name inside an object, else NULL */
	size_t key_len;
	const char *str; /* JSON_STRING: NUL-terminated, may contain NUL */
	size_t len;
	int64_t i; /* JSON_INT, JSON_BOOL */
	double d;  /* JSON_INT, JSON_NUMBER */
};

struct json_limits {
	uint32_t max_nodes; /* 0: 4096 */
	uint32_t max_depth; /* 0: 16 */
};

struct json_doc;

/* Parse `len` bytes (one complete JSON value, whitespace around it
 * allowed); the text is borrowed for the call only. Caller frees. */
struct json_doc *json_parse(const char *text, size_t len,
			    const struct json_limits *limits,
			    struct al_error *err);
void json_doc_free(struct json_doc *doc);
/* The root node; borrowed from the document. */
const struct json_node *json_root(const struct json_doc *doc);
/* A member of an object by name, or NULL. */
const struct json_node *json_get(const struct json_doc *doc,
				 const struct json_node *obj, const char *key);
/* The first child, the next sibling (NULL at the end). */
const struct json_node *json_first(const struct json_doc *doc,
				   const struct json_node *n);
const struct json_node *json_next(const struct json_doc *doc,
				  const struct json_node *n);
/* Convenience: a string member's value, or `dflt`. */
const char *json_get_str(const struct json_doc *doc,
			 const struct json_node *obj, const char *key,
			 const char *dflt);
const char *json_type_name(enum json_type t);

/* ================================================================ base64 */

/* Standard alphabet with '=' padding; whitespace is not allowed. The
 * output holds at most len/4*3 bytes. Returns the decoded length, or -1
 * (with err) on any invalid character or padding. */
ssize_t base64_decode(const char *in, size_t len, unsigned char *out,
		      struct al_error *err);
/* Caller frees; NULL on allocation failure. */
char *base64_encode(const void *in, size_t len);

#endif
