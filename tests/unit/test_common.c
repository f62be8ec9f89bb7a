/*
 * Unit tests for common/: the error object, cleanup helpers, the JSON
 * writer and the size/duration/integer parsers.
 *
 * JSON output is checked twice: against the exact expected text, and by a
 * strict validator (RFC 8259 grammar plus well-formed UTF-8) written here
 * independently of the writer, so a bug would have to be made twice, in two
 * different shapes, to slip through.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"

#define SENTINEL UINT64_C(0xdeadbeefcafef00d)
#define FFFD "\xEF\xBF\xBD"

/* ============================================================ validator */

struct jcur {
	const unsigned char *p, *end;
	int depth;
};

static bool jv_value(struct jcur *c);

static bool jv_peek(const struct jcur *c, char ch)
{
	return c->p < c->end && *c->p == (unsigned char)ch;
}

static void jv_ws(struct jcur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' ||
				 *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static bool jv_literal(struct jcur *c, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
		return false;
	c->p += n;
	return true;
}

static bool jv_digits(struct jcur *c)
{
	const unsigned char *start = c->p;

	while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
		c->p++;
	return c->p > start;
}

/* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static bool jv_number(struct jcur *c)
{
	if (jv_peek(c, '-'))
		c->p++;
	if (jv_peek(c, '0'))
		c->p++;
	else if (c->p < c->end && *c->p >= '1' && *c->p <= '9')
		jv_digits(c);
	else
		return false;
	if (jv_peek(c, '.')) {
		c->p++;
		if (!jv_digits(c))
			return false;
	}
	if (jv_peek(c, 'e') || jv_peek(c, 'E')) {
		c->p++;
		if (jv_peek(c, '+') || jv_peek(c, '-'))
			c->p++;
		if (!jv_digits(c))
			return false;
	}
	return true;
}

static long jv_hex4(struct jcur *c)
{
	long v = 0;
	int i;

	if (c->end - c->p < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		unsigned char h = *c->p++;

		v <<= 4;
		if (h >= '0' && h <= '9')
			v |= h - '0';
		else if (h >= 'a' && h <= 'f')
			v |= h - 'a' + 10;
		else if (h >= 'A' && h <= 'F')
			v |= h - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* Decode one multibyte sequence and judge the code point itself. */
static bool jv_utf8(struct jcur *c)
{
	unsigned char b = *c->p++;
	uint32_t cp, min;
	int more, i;

	if ((b & 0xE0) == 0xC0) {
		more = 1, cp = b & 0x1F, min = 0x80;
	} else if ((b & 0xF0) == 0xE0) {
		more = 2, cp = b & 0x0F, min = 0x800;
	} else if ((b & 0xF8) == 0xF0) {
		more = 3, cp = b & 0x07, min = 0x10000;
	} else {
		return false;
	}
	for (i = 0; i < more; i++) {
		if (c->p >= c->end || (*c->p & 0xC0) != 0x80)
			return false;
		cp = cp << 6 | (*c->p++ & 0x3F);
	}
	return cp >= min && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
}

static bool jv_escape(struct jcur *c)
{
	long u, lo;

	if (c->p >= c->end)
		return false;
	if (*c->p != 'u') {
		return *c->p != '\0' && strchr("\"\\/bfnrt", *c->p++) != NULL;
	}
	c->p++;
	u = jv_hex4(c);
	if (u >= 0xDC00 && u <= 0xDFFF)
		return false; /* a lone low surrogate */
	if (u < 0xD800 || u > 0xDBFF)
		return u >= 0;
	if (!jv_literal(c, "\\u"))
		return false;
	lo = jv_hex4(c);
	return lo >= 0xDC00 && lo <= 0xDFFF;
}

static bool jv_string(struct jcur *c)
{
	if (!jv_peek(c, '"'))
		return false;
	c->p++;
	while (c->p < c->end) {
		unsigned char b = *c->p;

		if (b == '"') {
			c->p++;
			return true;
		}
		if (b < 0x20)
			return false;
		if (b == '\\') {
			c->p++;
			if (!jv_escape(c))
				return false;
		} else if (b >= 0x80) {
			if (!jv_utf8(c))
				return false;
		} else {
			c->p++;
		}
	}
	return false;
}

/* Members of an object (pairs) or an array, after the opening bracket. */
static bool jv_members(struct jcur *c, char close, bool pairs)
{
	jv_ws(c);
	if (jv_peek(c, close)) {
		c->p++;
		return true;
	}
	for (;;) {
		jv_ws(c);
		if (pairs) {
			if (!jv_string(c))
				return false;
			jv_ws(c);
			if (!jv_peek(c, ':'))
				return false;
			c->p++;
		}
		if (!jv_value(c))
			return false;
		jv_ws(c);
		if (jv_peek(c, close)) {
			c->p++;
			return true;
		}
		if (!jv_peek(c, ','))
			return false;
		c->p++;
	}
}

static bool jv_value(struct jcur *c)
{
	bool ok, is_object;

	jv_ws(c);
	if (c->p >= c->end)
		return false;
	switch (*c->p) {
	case '{':
	case '[':
		is_object = *c->p++ == '{';
		if (++c->depth > 128)
			return false;
		ok = jv_members(c, is_object ? '}' : ']', is_object);
		c->depth--;
		return ok;
	case '"': return jv_string(c);
	case 't': return jv_literal(c, "true");
	case 'f': return jv_literal(c, "false");
	case 'n': return jv_literal(c, "null");
	default: return jv_number(c);
	}
}

static bool json_valid(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	struct jcur c = { u, u + n, 0 };

	if (!jv_value(&c))
		return false;
	jv_ws(&c);
	return c.p == c.end;
}

static bool json_valid_str(const char *s)
{
	return json_valid(s, strlen(s));
}

/* The validator must reject what it is there to catch. */
static void test_validator_self_check(void **state)
{
	/* clang-format off */
	static const char *const bad[] = {
		"",	     "[",	  "{\"a\"}",	   "{\"a\":1,}",
		"[1 2]",     "[1,]",	  "01",		   "1.",
		"-",	     ".5",	  "1e",		   "nul",
		"1,2",	     "\"abc",	  "\"\x01\"",	   "\"\x7f\xC0\x80\"",
		"\"\xED\xA0\x80\"",	  "\"\xF4\x90\x80\x80\"",
		"\"\x80\"",  "\"\xC3\"",  "\"\\x\"",	   "\"\\ud800\"",
		"\"\\udc00\"", "\"\\u12\"", "{1:2}",	   "[\"a\":1]",
	};
	/* clang-format on */
	static const char *const good[] = {
		"{\"a\":[1,-0.5,1e3,0,-0,2E-7,true,false,null,\"\\u00e9\"]}",
		"\"\\ud83d\\ude00\"",
		"\"\xF0\x9F\x98\x80\x7f\"",
		" [ ] ",
		"{}",
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++)
		if (json_valid_str(bad[i]))
			fail_msg("validator accepted %s", bad[i]);
	for (i = 0; i < ARRAY_SIZE(good); i++)
		if (!json_valid_str(good[i]))
			fail_msg("validator rejected %s", good[i]);
}

/* =============================================================== errors */

static void test_error_set(void **state)
{
	struct al_error e = { 0 };

	errno = EACCES;
	assert_int_equal(al_error_set(&e, EIO, "read %s at %d", "f", 7), -1);
	assert_int_equal(e.errnum, EIO);
	assert_string_equal(e.msg, "read f at 7");
	assert_int_equal(errno, EACCES);

	/* The old message may be an argument of the new one. */
	al_error_set(&e, 0, "again: %s", e.msg);
	assert_string_equal(e.msg, "again: read f at 7");
	assert_int_equal(e.errnum, 0);

	al_error_clear(&e);
	assert_int_equal(e.errnum, 0);
	assert_string_equal(e.msg, "");

	/* NULL means the caller does not care. */
	assert_int_equal(al_error_set(NULL, EIO, "x"), -1);
	assert_int_equal(al_error_sys(NULL, EIO, "x"), -1);
	assert_int_equal(al_error_prefix(NULL, "x"), -1);
	al_error_clear(NULL);
	assert_int_equal(errno, EACCES);
}

static void test_error_sys(void **state)
{
	struct al_error e = { 0 };

	errno = EPERM;
	assert_int_equal(al_error_sys(&e, ENOENT, "open %s", "/etc/x"), -1);
	assert_string_equal(e.msg, "open /etc/x: No such file or directory");
	assert_int_equal(e.errnum, ENOENT);
	assert_int_equal(errno, EPERM);

	/* No errno, no ": Success". */
	al_error_sys(&e, 0, "no cause");
	assert_string_equal(e.msg, "no cause");
	assert_int_equal(e.errnum, 0);
}

static void test_error_prefix(void **state)
{
	struct al_error e = { 0 };

	al_error_sys(&e, ENOENT, "open x");
	errno = EINTR;
	assert_int_equal(al_error_prefix(&e, "policy %s:%d", "a.policy", 12),
			 -1);
	al_error_prefix(&e, "airlock");
	assert_string_equal(e.msg, "airlock: policy a.policy:12: open x: "
				   "No such file or directory");
	assert_int_equal(e.errnum, ENOENT); /* context keeps the cause */
	assert_int_equal(errno, EINTR);

	/* No dangling ": " in front of an empty message. */
	al_error_clear(&e);
	al_error_prefix(&e, "ctx");
	assert_string_equal(e.msg, "ctx");
}

static void test_error_truncation(void **state)
{
	struct al_error e = { 0 };
	char big[3 * AL_ERROR_MAX];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';

	al_error_set(&e, 0, "%s", big);
	assert_int_equal(strlen(e.msg), AL_ERROR_MAX - 1);

	al_error_sys(&e, ENOENT, "%s", big);
	assert_int_equal(strlen(e.msg), AL_ERROR_MAX - 1);

	al_error_set(&e, 0, "%.*s", AL_ERROR_MAX - 10, big);
	al_error_sys(&e, ENOENT, "%s", e.msg);
	assert_int_equal(strlen(e.msg), AL_ERROR_MAX - 1);
	assert_memory_equal(e.msg + AL_ERROR_MAX - 10, ": No such", 9);

	al_error_set(&e, 0, "old");
	al_error_prefix(&e, "%s", big);
	assert_int_equal(strlen(e.msg), AL_ERROR_MAX - 1);

	al_error_set(&e, 0, "%s", big);
	al_error_prefix(&e, "ctx");
	assert_int_equal(strlen(e.msg), AL_ERROR_MAX - 1);
	assert_memory_equal(e.msg, "ctx: xxx", 8);
}

/* ============================================================== cleanup */

static void test_cleanup_free(void **state)
{
	char *kept;
	char *p = strdup("x");

	assert_non_null(p);
	al_freep(&p);
	assert_null(p);
	al_freep(&p); /* idempotent */

	{
		_cleanup_free_ char *a = strdup("owned");
		_cleanup_free_ char *b = strdup("handed over");

		assert_non_null(a);
		assert_non_null(b);
		kept = steal_ptr(&b);
		assert_null(b);
	}
	/* `a` was freed (LeakSanitizer would say otherwise); `kept` not. */
	assert_string_equal(kept, "handed over");
	free(kept);
}

static bool fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static void test_cleanup_close(void **state)
{
	int fds[2], kept;

	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	{
		_cleanup_close_ int r = fds[0];
		_cleanup_close_ int w = fds[1];
		_cleanup_close_ int none = -1;

		kept = steal_fd(&w);
		assert_int_equal(w, -1);
		(void)r;
		(void)none;
		errno = ENOSPC; /* an error on its way up */
	}
	assert_int_equal(errno, ENOSPC);
	assert_false(fd_is_open(fds[0]));
	assert_true(fd_is_open(kept));
	al_closep(&kept);
	assert_int_equal(kept, -1);
	assert_false(fd_is_open(fds[1]));
	assert_int_equal(errno, EBADF); /* from fd_is_open, not al_closep */

	errno = ENOSPC;
	kept = -1;
	al_closep(&kept);
	assert_int_equal(errno, ENOSPC);
}

/* ================================================================ sizes */

struct size_case {
	const char *in;
	uint64_t want;
};

static void test_size_good(void **state)
{
	static const struct size_case cases[] = {
		{ "0", 0 },
		{ "4096", 4096 },
		{ "007", 7 },
		{ "1B", 1 },
		{ "1b", 1 },
		{ "1K", 1024 },
		{ "512k", 512 * 1024 },
		{ "1KB", 1024 },
		{ "1Kb", 1024 },
		{ "1Ki", 1024 },
		{ "1KiB", 1024 },
		{ "1kib", 1024 },
		{ "1KIB", 1024 },
		{ "64M", 64 << 20 },
		{ "64m", 64 << 20 },
		{ "64MB", 64 << 20 },
		{ "64Mi", 64 << 20 },
		{ "64MiB", 64 << 20 },
		{ "1G", UINT64_C(1) << 30 },
		{ "1g", UINT64_C(1) << 30 },
		{ "1GiB", UINT64_C(1) << 30 },
		{ "2T", UINT64_C(2) << 40 },
		{ "2tib", UINT64_C(2) << 40 },
		{ "1.5K", 1536 },
		{ "1.5G", UINT64_C(3) << 29 },
		{ "1.5GiB", UINT64_C(3) << 29 },
		{ "0.5K", 512 },
		{ "0.25M", 256 * 1024 },
		{ "1.0K", 1024 },
		{ "1.3K", 1331 }, /* 1331.2: rounded down */
		{ "0.001K", 1 },  /* 1.024 */
		{ "0.0001K", 0 }, /* 0.1024 */
		{ "1.00000000000000000000000001K", 1024 },
		{ "0.99999999999999999999999999T", (UINT64_C(1) << 40) - 1 },
		{ "18446744073709551615", UINT64_MAX },
		{ "18446744073709551615B", UINT64_MAX },
		{ "16777215T", UINT64_C(16777215) << 40 },
		{ "16777215.99999999T",
		  (UINT64_C(16777215) << 40) + 1099511616780 },
		{ "17179869183G", UINT64_C(17179869183) << 30 },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct al_error e = { 0 };
		uint64_t v = SENTINEL;

		if (parse_size(cases[i].in, &v, &e) != 0)
			fail_msg("\"%s\": %s", cases[i].in, e.msg);
		if (v != cases[i].want)
			fail_msg("\"%s\": got %" PRIu64 ", want %" PRIu64,
				 cases[i].in, v, cases[i].want);
	}
}

static void test_size_bad(void **state)
{
	/* clang-format off */
	static const char *const bad[] = {
		"",	  "-1",	  "+5",	    " 5",    "5 ",   "5\n",  "5\t",
		"5 K",	  "5x",	  "5Q",	    "5MM",   "5KK",  "5BB",  "5KBB",
		"5KiBx",  "5iB",  "5bi",    "5Bi",   "5i",   "5P",   "5E",
		"1.5",	  "1.5B", "1.5b",   ".",     "1.",   ".5",   ".5K",
		"1.K",	  "0x10", "1e3",    "1,5G",  "1..5", "1.5.5K", "K",
		"B",	  "\xC2\xA0\x35", "5\xC2\xA0", "1 000", "1_000",
		"99999999999999999999999x",
	};
	/* clang-format on */
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		struct al_error e = { 0 };
		uint64_t v = SENTINEL;

		if (parse_size(bad[i], &v, &e) != -1)
			fail_msg("accepted \"%s\" as %" PRIu64, bad[i], v);
		assert_int_equal(v, SENTINEL);
		if (strncmp(e.msg, "invalid size \"", 14) != 0)
			fail_msg("\"%s\": %s", bad[i], e.msg);
	}
}

static void test_size_overflow(void **state)
{
	static const char *const big[] = {
		"18446744073709551616",
		"18446744073709551616B",
		"99999999999999999999999999999",
		"16777216T",
		"16777216.0T",
		"17179869184G",
		"17592186044416M",
		"18014398509481984K",
		"99999999999T",
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(big); i++) {
		struct al_error e = { 0 };
		uint64_t v = SENTINEL;
		char want[128];

		if (parse_size(big[i], &v, &e) != -1)
			fail_msg("accepted \"%s\" as %" PRIu64, big[i], v);
		assert_int_equal(v, SENTINEL);
		snprintf(want, sizeof(want), "size \"%s\" is too large",
			 big[i]);
		assert_string_equal(e.msg, want);
	}
}

static void expect_size_error(const char *in, const char *msg)
{
	struct al_error e = { 0 };
	uint64_t v = SENTINEL;

	assert_int_equal(parse_size(in, &v, &e), -1);
	assert_int_equal(v, SENTINEL);
	assert_string_equal(e.msg, msg);
}

/* What every malformed size message ends with. */
#define SIZE_HINT                                                              \
	": expected a number with an optional unit K, M, G or T (e.g. 64M)"

static void test_size_messages(void **state)
{
	uint64_t v = SENTINEL;

	expect_size_error("12Q", "invalid size \"12Q\": expected a number with "
				 "an optional unit K, M, G or T (e.g. 64M)");
	expect_size_error("", "invalid size \"\"" SIZE_HINT);
	expect_size_error(NULL, "invalid size \"\"" SIZE_HINT);
	expect_size_error("1.5", "invalid size \"1.5\": fractional bytes; "
				 "a fraction needs a unit K, M, G or T "
				 "(e.g. 1.5G)");
	expect_size_error("99999999999T", "size \"99999999999T\" is too large");

	/* Hostile input is echoed harmlessly: no terminal escapes, no
	 * unbalanced quotes, no megabytes of it. */
	expect_size_error("\x1b[2J\"\\\xff",
			  "invalid size \"\\x1b[2J\\\"\\\\\\xff\"" SIZE_HINT);
	expect_size_error("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
			  "invalid size \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\"" SIZE_HINT);

	/* No error object is fine too. */
	assert_int_equal(parse_size("x", &v, NULL), -1);
	assert_int_equal(v, SENTINEL);
}

/* ============================================================ durations */

static void test_duration_good(void **state)
{
	static const struct size_case cases[] = {
		{ "0", 0 },
		{ "0s", 0 },
		{ "500us", 500 },
		{ "200ms", 200000 },
		{ "3s", 3000000 },
		{ "1.5s", 1500000 },
		{ "0.001s", 1000 },
		{ "0.0000001s", 0 },
		{ "1.0000009s", 1000000 }, /* rounded down to a microsecond */
		{ "0.5us", 0 },
		{ "2.5ms", 2500 },
		{ "2m", 120000000 },
		{ "1.5m", 90000000 },
		{ "1h", UINT64_C(3600000000) },
		{ "0.5h", UINT64_C(1800000000) },
		{ "18446744073709551615us", UINT64_MAX },
		{ "18446744073709551ms", UINT64_C(18446744073709551000) },
		{ "18446744073709.551615s", UINT64_MAX },
		{ "5124095576h", UINT64_C(5124095576) * 3600000000 },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct al_error e = { 0 };
		uint64_t v = SENTINEL;

		if (parse_duration_us(cases[i].in, &v, &e) != 0)
			fail_msg("\"%s\": %s", cases[i].in, e.msg);
		if (v != cases[i].want)
			fail_msg("\"%s\": got %" PRIu64 ", want %" PRIu64,
				 cases[i].in, v, cases[i].want);
	}
}

static void test_duration_bad(void **state)
{
	/* clang-format off */
	static const char *const bad[] = {
		"",    "-1",  "+5",   " 5",  "5 ",    "5 ms", "5\n",  "5x",
		"5ss", "5mss", "5S",  "5MS", "5Ms",   "5msx", "5sm",  "5d",
		"5u",  "5us ", "5µs", ".",   "1.",    ".5s",  "1.s",  "0x10",
		"1e3", "1,5s", "1..5", "s",  "ms",    "-0",   "1:30",
	};
	/* clang-format on */
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		struct al_error e = { 0 };
		uint64_t v = SENTINEL;

		if (parse_duration_us(bad[i], &v, &e) != -1)
			fail_msg("accepted \"%s\" as %" PRIu64, bad[i], v);
		assert_int_equal(v, SENTINEL);
		if (strncmp(e.msg, "invalid duration \"", 18) != 0)
			fail_msg("\"%s\": %s", bad[i], e.msg);
	}
	assert_int_equal(parse_duration_us(NULL, NULL, NULL), -1);
}

static void test_duration_overflow(void **state)
{
	static const char *const big[] = {
		"18446744073709551616us",   "18446744073709552ms",
		"18446744073709.551616s",   "18446744073710s",
		"307445734561826m",         "5124095577h",
		"99999999999999999999999h",
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(big); i++) {
		struct al_error e = { 0 };
		uint64_t v = SENTINEL;
		char want[128];

		if (parse_duration_us(big[i], &v, &e) != -1)
			fail_msg("accepted \"%s\" as %" PRIu64, big[i], v);
		assert_int_equal(v, SENTINEL);
		snprintf(want, sizeof(want), "duration \"%s\" is too large",
			 big[i]);
		assert_string_equal(e.msg, want);
	}
}

static void test_duration_messages(void **state)
{
	struct al_error e = { 0 };
	uint64_t v = SENTINEL;

	assert_int_equal(parse_duration_us("-1", &v, &e), -1);
	assert_string_equal(e.msg, "invalid duration \"-1\": expected a number "
				   "with a unit us, ms, s, m or h "
				   "(e.g. 200ms, 3s)");
	assert_int_equal(parse_duration_us("3 s", &v, &e), -1);
	assert_string_equal(e.msg, "invalid duration \"3 s\": expected a "
				   "number with a unit us, ms, s, m "
				   "or h (e.g. 200ms, 3s)");
	/* a bare number is ambiguous: refused, naming both readings */
	static const char *const bare[] = { "5", "3000", "1.5", "0.0",
					    "18446744073709552" };
	for (size_t i = 0; i < sizeof(bare) / sizeof(bare[0]); i++) {
		char want[160];
		v = SENTINEL;
		assert_int_equal(parse_duration_us(bare[i], &v, &e), -1);
		assert_int_equal(v, SENTINEL);
		snprintf(want, sizeof(want),
			 "invalid duration \"%s\": a number needs a unit "
			 "(%sms or %ss?): us, ms, s, m or h",
			 bare[i], bare[i], bare[i]);
		assert_string_equal(e.msg, want);
	}
	assert_int_equal(v, SENTINEL);
}

/* ============================================================= integers */

static void test_uint(void **state)
{
	struct al_error e = { 0 };
	uint64_t v = SENTINEL;
	/* clang-format off */
	static const char *const bad[] = {
		"",   "-1", "+1",  " 1", "1 ", "1.0", "1.", "0x1", "1e1", "1k",
		"11", "99999999999999999999",
	};
	/* clang-format on */
	size_t i;

	assert_int_equal(parse_uint("0", 0, 10, &v, &e), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_uint("10", 0, 10, &v, &e), 0);
	assert_int_equal(v, 10);
	assert_int_equal(parse_uint("007", 0, 10, &v, &e), 0);
	assert_int_equal(v, 7);
	assert_int_equal(parse_uint("18446744073709551615", 0, UINT64_MAX, &v,
				    &e),
			 0);
	assert_int_equal(v, UINT64_MAX);

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		v = SENTINEL;
		if (parse_uint(bad[i], 0, 10, &v, &e) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_int_equal(v, SENTINEL);
	}
	v = SENTINEL;
	assert_int_equal(parse_uint("18446744073709551616", 0, UINT64_MAX, &v,
				    &e),
			 -1);
	assert_string_equal(e.msg, "invalid number \"18446744073709551616\": "
				   "expected an integer from 0 to "
				   "18446744073709551615");
	assert_int_equal(parse_uint("0", 1, 10, &v, &e), -1);
	assert_string_equal(e.msg, "invalid number \"0\": expected an integer "
				   "from 1 to 10");
	assert_int_equal(parse_uint("x", 1, 65535, &v, &e), -1);
	assert_string_equal(e.msg, "invalid number \"x\": expected an integer "
				   "from 1 to 65535");
	assert_int_equal(v, SENTINEL);
}

/* =========================================================== formatting */

static void test_format_size(void **state)
{
	static const struct {
		uint64_t in;
		const char *want;
	} cases[] = {
		{ 0, "0 B" },
		{ 1, "1 B" },
		{ 512, "512 B" },
		{ 1023, "1023 B" },
		{ 1024, "1 KiB" },
		{ 1536, "1.5 KiB" },
		{ 1024 * 1024 - 1, "1023.9 KiB" }, /* rounded down */
		{ UINT64_C(64) << 20, "64 MiB" },
		{ UINT64_C(3) << 29, "1.5 GiB" },
		{ (UINT64_C(1) << 30) + 1, "1.0 GiB" },
		{ UINT64_C(5) << 40, "5 TiB" },
		{ UINT64_C(1) << 50, "1 PiB" },
		{ UINT64_C(1) << 60, "1 EiB" },
		{ UINT64_MAX, "15.9 EiB" },
	};
	char buf[32];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		format_size(cases[i].in, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].want);
	}

	/* Output that does not fit is cut, still terminated. */
	format_size(UINT64_C(64) << 20, buf, 4);
	assert_string_equal(buf, "64 ");
	buf[0] = 'z';
	format_size(1, buf, 0);
	assert_int_equal(buf[0], 'z');
	format_size(1, NULL, 0);
}

/* A parsed size reads back as its input. */
static void test_size_round_trip(void **state)
{
	static const char *const pairs[][2] = {
		{ "64M", "64 MiB" },
		{ "1.5G", "1.5 GiB" },
		{ "512", "512 B" },
		{ "2t", "2 TiB" },
	};
	char buf[32];
	uint64_t v;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(pairs); i++) {
		assert_int_equal(parse_size(pairs[i][0], &v, NULL), 0);
		format_size(v, buf, sizeof(buf));
		assert_string_equal(buf, pairs[i][1]);
	}
}

/* ================================================================= JSON */

/* Steal the text; it must be `want` exactly, valid JSON, and hold no raw
 * NUL (strlen equals the length the writer counted). */
static void expect_json(struct json_buf *jb, const char *want)
{
	size_t len = jb->len;
	char *text;

	assert_false(json_buf_failed(jb));
	text = json_buf_steal(jb);
	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	if (!json_valid_str(text))
		fail_msg("invalid JSON: %s", text);
	assert_string_equal(text, want);
	free(text);
	/* steal leaves a fresh buffer behind */
	assert_null(jb->data);
	assert_int_equal(jb->len, 0);
	assert_int_equal(jb->depth, 0);
	assert_false(jb->failed);
}

static void expect_json_string(const char *in, size_t n, const char *want)
{
	struct json_buf jb;

	json_buf_init(&jb);
	json_string_n(&jb, in, n);
	expect_json(&jb, want);
}

static void test_json_empty_steal(void **state)
{
	struct json_buf jb;
	char *text;

	json_buf_init(&jb);
	text = json_buf_steal(&jb);
	assert_non_null(text);
	assert_string_equal(text, "");
	free(text);

	json_buf_free(&jb); /* free after steal, and twice, is harmless */
	json_buf_free(&jb);
}

static void test_json_nesting(void **state)
{
	struct json_buf jb;

	json_buf_init(&jb);
	json_object_open(&jb);
	json_kv_int(&jb, "a", 1);
	json_key(&jb, "b");
	json_array_open(&jb);
	json_int(&jb, 1);
	json_int(&jb, -2);
	json_object_open(&jb);
	json_kv_null(&jb, "c");
	json_key(&jb, "d");
	json_array_open(&jb);
	json_array_close(&jb);
	json_object_close(&jb);
	json_array_open(&jb);
	json_array_open(&jb);
	json_array_close(&jb);
	json_array_close(&jb);
	json_array_close(&jb);
	json_key(&jb, "e");
	json_object_open(&jb);
	json_object_close(&jb);
	json_kv_bool(&jb, "f", true);
	json_kv_bool(&jb, "g", false);
	json_kv_uint(&jb, "h", UINT64_MAX);
	json_kv_int(&jb, "i", INT64_MIN);
	json_kv_string(&jb, "j", "text");
	json_kv_string(&jb, "k", NULL);
	json_key(&jb, "l");
	json_double(&jb, 2.5, 1);
	json_object_close(&jb);
	expect_json(&jb, "{\"a\":1,\"b\":[1,-2,{\"c\":null,\"d\":[]},[[]]],"
			 "\"e\":{},\"f\":true,\"g\":false,"
			 "\"h\":18446744073709551615,"
			 "\"i\":-9223372036854775808,\"j\":\"text\","
			 "\"k\":null,\"l\":2.5}");

	json_array_open(&jb);
	json_array_open(&jb);
	json_array_close(&jb);
	json_array_open(&jb);
	json_null(&jb);
	json_array_close(&jb);
	json_bool(&jb, true);
	json_string(&jb, NULL);
	json_string_n(&jb, NULL, 0);
	json_array_close(&jb);
	expect_json(&jb, "[[],[null],true,null,null]");

	/* Scalars stand alone. */
	json_int(&jb, 42);
	expect_json(&jb, "42");
	json_string(&jb, "");
	expect_json(&jb, "\"\"");
}

static void test_json_max_depth(void **state)
{
	char want[2 * 63 + 1];
	struct json_buf jb;
	int i;

	json_buf_init(&jb);
	for (i = 0; i < 63; i++) {
		json_array_open(&jb);
		want[i] = '[';
		want[2 * 63 - 1 - i] = ']';
	}
	want[2 * 63] = '\0';
	assert_false(json_buf_failed(&jb));
	for (i = 0; i < 63; i++)
		json_array_close(&jb);
	expect_json(&jb, want);

	for (i = 0; i < 63; i++) {
		json_object_open(&jb);
		json_key(&jb, "k");
	}
	assert_false(json_buf_failed(&jb));
	json_array_open(&jb); /* level 64 */
	assert_true(json_buf_failed(&jb));
	assert_null(json_buf_steal(&jb));
}

/* Each misuse that would break the text fails the buffer instead. */
static void test_json_misuse(void **state)
{
	struct json_buf jb;
	size_t len;

	json_buf_init(&jb);
	json_array_close(&jb); /* nothing open */
	assert_true(json_buf_failed(&jb));
	assert_null(json_buf_steal(&jb));

	json_key(&jb, "top"); /* a key outside any object */
	assert_true(json_buf_failed(&jb));
	json_buf_free(&jb);

	json_object_open(&jb);
	json_key(&jb, "a");
	json_key(&jb, "b"); /* two keys in a row */
	assert_true(json_buf_failed(&jb));
	json_buf_free(&jb);

	json_object_open(&jb);
	json_key(&jb, "a");
	json_object_close(&jb); /* key without a value */
	assert_true(json_buf_failed(&jb));
	json_buf_free(&jb);

	json_object_open(&jb);
	json_key(&jb, NULL);
	assert_true(json_buf_failed(&jb));
	json_buf_free(&jb);

	json_int(&jb, 1);
	json_int(&jb, 2); /* "1,2" is not one JSON text */
	assert_true(json_buf_failed(&jb));
	json_buf_free(&jb);

	/* Once failed, nothing more is written. */
	json_array_open(&jb);
	json_array_close(&jb);
	json_array_close(&jb);
	len = jb.len;
	json_string(&jb, "more");
	json_int(&jb, 3);
	json_double(&jb, 1.0, 2);
	json_object_open(&jb);
	assert_int_equal(jb.len, len);
	assert_null(json_buf_steal(&jb));
	assert_null(jb.data);

	/* An unfinished text is not handed out. */
	json_object_open(&jb);
	json_kv_int(&jb, "a", 1);
	assert_false(json_buf_failed(&jb));
	assert_null(json_buf_steal(&jb));
	json_object_open(&jb);
	json_key(&jb, "a");
	json_object_open(&jb);
	json_object_close(&jb);
	json_object_close(&jb);
	expect_json(&jb, "{\"a\":{}}");
}

static void test_json_escapes(void **state)
{
	static const char all_controls[] =
		"\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007"
		"\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f"
		"\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017"
		"\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\"";
	char controls[32];
	int i;

	expect_json_string("\"\\", 2, "\"\\\"\\\\\"");
	expect_json_string("\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"");
	expect_json_string("/ ~\x7f", 4, "\"/ ~\x7f\""); /* DEL is legal */
	expect_json_string("a\0b", 3, "\"a\\u0000b\"");
	expect_json_string("\0", 1, "\"\\u0000\"");
	expect_json_string("", 0, "\"\"");
	expect_json_string("abc", 2, "\"ab\""); /* n, not strlen */

	for (i = 0; i < 32; i++)
		controls[i] = (char)i;
	expect_json_string(controls, sizeof(controls), all_controls);

	/* A forged field stays inside its string. */
	expect_json_string("x\",\"admin\":true,\"y\":\"", 21,
			   "\"x\\\",\\\"admin\\\":true,\\\"y\\\":\\\"\"");
}

static void test_json_hostile_key(void **state)
{
	struct json_buf jb;

	json_buf_init(&jb);
	json_object_open(&jb);
	json_kv_string(&jb, "k\"\n\x01\xff", "v\\\t\xC0\x80");
	json_object_close(&jb);
	expect_json(&jb,
		    "{\"k\\\"\\n\\u0001" FFFD "\":\"v\\\\\\t" FFFD FFFD "\"}");
}

static void test_json_utf8_valid(void **state)
{
	/* clang-format off */
	static const char *const ok[] = {
		"\xC2\x80",	    /* U+0080, first two-byte */
		"\xC3\xA9",	    /* é */
		"\xDF\xBF",	    /* U+07FF, last two-byte */
		"\xE0\xA0\x80",	    /* U+0800, first three-byte */
		"\xE2\x82\xAC",	    /* € */
		"\xED\x9F\xBF",	    /* U+D7FF, just below the surrogates */
		"\xEE\x80\x80",	    /* U+E000, just above them */
		"\xEF\xBF\xBD",	    /* U+FFFD itself */
		"\xEF\xBF\xBF",	    /* U+FFFF */
		"\xF0\x90\x80\x80", /* U+10000, first four-byte */
		"\xF0\x9F\x98\x80", /* 😀 */
		"\xF4\x8F\xBF\xBF", /* U+10FFFF, the last code point */
		"mixed \xC3\xA9t\xC3\xA9 \xE2\x82\xAC\x35 \xF0\x9F\x98\x80!",
	};
	/* clang-format on */
	char want[64];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(ok); i++) {
		snprintf(want, sizeof(want), "\"%s\"", ok[i]);
		expect_json_string(ok[i], strlen(ok[i]), want);
	}
}

struct bad_utf8 {
	const char *in;
	size_t n;
	const char *want;
};

/* clang-format off */
#define BAD(in, want) { in, sizeof(in) - 1, "\"" want "\"" }
/* clang-format on */

static void test_json_utf8_invalid(void **state)
{
	static const struct bad_utf8 cases[] = {
		/* stray continuation bytes */
		BAD("\x80", FFFD),
		BAD("\xBF", FFFD),
		BAD("a\x80\x80"
		    "b",
		    "a" FFFD FFFD "b"),
		BAD("\xC3\xA9\xA9", "\xC3\xA9" FFFD),
		/* overlong encodings */
		BAD("\xC0\x80", FFFD FFFD),
		BAD("\xC0\xAF", FFFD FFFD),
		BAD("\xC1\xBF", FFFD FFFD),
		BAD("\xE0\x80\x80", FFFD FFFD FFFD),
		BAD("\xE0\x9F\xBF", FFFD FFFD FFFD),
		BAD("\xF0\x80\x80\x80", FFFD FFFD FFFD FFFD),
		BAD("\xF0\x8F\xBF\xBF", FFFD FFFD FFFD FFFD),
		/* UTF-16 surrogates */
		BAD("\xED\xA0\x80", FFFD FFFD FFFD),
		BAD("\xED\xAF\xBF", FFFD FFFD FFFD),
		BAD("\xED\xB0\x80", FFFD FFFD FFFD),
		BAD("\xED\xBF\xBF", FFFD FFFD FFFD),
		BAD("\xED\xA0\xBD\xED\xB8\x80", FFFD FFFD FFFD FFFD FFFD FFFD),
		/* above U+10FFFF */
		BAD("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD),
		BAD("\xF4\xBF\xBF\xBF", FFFD FFFD FFFD FFFD),
		BAD("\xF5\x80\x80\x80", FFFD FFFD FFFD FFFD),
		BAD("\xF7\xBF\xBF\xBF", FFFD FFFD FFFD FFFD),
		BAD("\xF8\x88\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD),
		BAD("\xFC\x84\x80\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD FFFD),
		/* bytes that never appear */
		BAD("\xFE\xFF", FFFD FFFD),
		BAD("\xFF"
		    "a",
		    FFFD "a"),
		/* truncated sequences: at the end, and cut by another byte */
		BAD("\xC3", FFFD),
		BAD("\xC3"
		    "A",
		    FFFD "A"),
		BAD("\xE2\x82", FFFD FFFD),
		BAD("\xE2\x82"
		    "A",
		    FFFD FFFD "A"),
		BAD("\xE2"
		    "\"",
		    FFFD "\\\""),
		BAD("\xF0\x9F\x98", FFFD FFFD FFFD),
		BAD("\xF0\x9F\x98\n", FFFD FFFD FFFD "\\n"),
		BAD("\xF0\x9F\xC3\xA9", FFFD FFFD "\xC3\xA9"),
		BAD("\xE2\x82\xE2\x82\xAC", FFFD FFFD "\xE2\x82\xAC"),
		BAD("\xC3\0", FFFD "\\u0000"),
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++)
		expect_json_string(cases[i].in, cases[i].n, cases[i].want);
}

static void test_json_double(void **state)
{
	struct json_buf jb;
	char *text;

	json_buf_init(&jb);
	json_array_open(&jb);
	json_double(&jb, 3.14159, 2);
	json_double(&jb, -0.5, 1);
	json_double(&jb, 2.0, 0);
	json_double(&jb, 0.125, 3);
	json_double(&jb, 1.5, -1); /* negative: no decimals */
	json_double(&jb, NAN, 2);
	json_double(&jb, -NAN, 2);
	json_double(&jb, INFINITY, 2);
	json_double(&jb, -INFINITY, 0);
	json_double(&jb, -1e-9, 2); /* "-0.00" is valid JSON */
	json_array_close(&jb);
	expect_json(&jb, "[3.14,-0.5,2,0.125,2,null,null,null,null,-0.00]");

	/* Extremes stay plain numbers within the buffer. */
	json_array_open(&jb);
	json_double(&jb, 1.7976931348623157e308, 1000);
	json_double(&jb, -1.7976931348623157e308, 20);
	json_double(&jb, 5e-324, 20);
	json_array_close(&jb);
	assert_false(json_buf_failed(&jb));
	text = json_buf_steal(&jb);
	assert_non_null(text);
	assert_true(json_valid_str(text));
	/* [ 330 , 331 , 22 ] */
	assert_int_equal(strlen(text), 1 + 330 + 1 + 331 + 1 + 22 + 1);
	free(text);
}

/* A locale with a decimal comma must not leak into the JSON. */
static void test_json_double_locale(void **state)
{
	static const char *const locales[] = { "de_DE.UTF-8", "de_DE.utf8",
					       "fr_FR.UTF-8", "ru_RU.UTF-8" };
	struct json_buf jb;
	size_t i;

	json_buf_init(&jb);
	for (i = 0; i < ARRAY_SIZE(locales); i++) {
		if (setlocale(LC_NUMERIC, locales[i]) == NULL)
			continue; /* not installed on this host */
		json_double(&jb, -1.25, 2);
		expect_json(&jb, "-1.25");
	}
	assert_non_null(setlocale(LC_NUMERIC, "C"));
	json_double(&jb, -1.25, 2);
	expect_json(&jb, "-1.25");
}

/* Growth by doubling across many reallocations, content intact. */
static void test_json_growth(void **state)
{
	enum { N = 1 << 20 };
	struct json_buf jb;
	char *in = malloc(N);
	size_t i, len;
	char *text;

	assert_non_null(in);
	memset(in, '\x01', N);
	json_buf_init(&jb);
	json_array_open(&jb);
	json_string_n(&jb, in, N);
	json_string_n(&jb, "tail", 4);
	json_array_close(&jb);
	free(in);
	assert_false(json_buf_failed(&jb));
	assert_true(jb.cap > jb.len);
	len = jb.len;
	assert_int_equal(len, 1 + 2 + 6 * (size_t)N + 1 + 6 + 1);
	text = json_buf_steal(&jb);
	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	for (i = 0; i < N; i++)
		if (memcmp(text + 2 + 6 * i, "\\u0001", 6) != 0)
			fail_msg("byte %zu mangled", i);
	assert_string_equal(text + len - 8, ",\"tail\"]");
	assert_true(json_valid_str(text));
	free(text);
}

/* xorshift64: deterministic, so a failure reproduces. */
static uint64_t next_random(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Random hostile bytes, biased towards the interesting ones, as keys and
 * values: the text must always validate. */
static void test_json_random_bytes(void **state)
{
	/* clang-format off */
	static const unsigned char tricky[] = {
		0x00, 0x01, 0x1f, '"',	'\\', '/',  'a',  0x7f, 0x80, 0x8f,
		0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed,
		0xef, 0xf0, 0xf4, 0xf5, 0xf8, 0xfe, 0xff,
	};
	/* clang-format on */
	uint64_t seed = UINT64_C(0x9e3779b97f4a7c15);
	char val[48], key[48];
	struct json_buf jb;
	int round;

	json_buf_init(&jb);
	for (round = 0; round < 20000; round++) {
		size_t n = next_random(&seed) % sizeof(val), k, i;
		char *text;

		k = next_random(&seed) % (sizeof(key) - 1);
		for (i = 0; i < n; i++) {
			uint64_t r = next_random(&seed);

			val[i] = (char)(r & 1 ? r >> 8
					      : tricky[(r >> 8) %
						       sizeof(tricky)]);
		}
		for (i = 0; i < k; i++)
			key[i] = (char)(next_random(&seed) % 255 + 1);
		key[k] = '\0';

		json_object_open(&jb);
		json_kv_string(&jb, key, "");
		json_key(&jb, "v");
		json_string_n(&jb, val, n);
		json_object_close(&jb);
		assert_false(json_buf_failed(&jb));
		text = json_buf_steal(&jb);
		assert_non_null(text);
		if (!json_valid_str(text))
			fail_msg("round %d: invalid JSON: %s", round, text);
		free(text);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validator_self_check),
		cmocka_unit_test(test_error_set),
		cmocka_unit_test(test_error_sys),
		cmocka_unit_test(test_error_prefix),
		cmocka_unit_test(test_error_truncation),
		cmocka_unit_test(test_cleanup_free),
		cmocka_unit_test(test_cleanup_close),
		cmocka_unit_test(test_size_good),
		cmocka_unit_test(test_size_bad),
		cmocka_unit_test(test_size_overflow),
		cmocka_unit_test(test_size_messages),
		cmocka_unit_test(test_duration_good),
		cmocka_unit_test(test_duration_bad),
		cmocka_unit_test(test_duration_overflow),
		cmocka_unit_test(test_duration_messages),
		cmocka_unit_test(test_uint),
		cmocka_unit_test(test_format_size),
		cmocka_unit_test(test_size_round_trip),
		cmocka_unit_test(test_json_empty_steal),
		cmocka_unit_test(test_json_nesting),
		cmocka_unit_test(test_json_max_depth),
		cmocka_unit_test(test_json_misuse),
		cmocka_unit_test(test_json_escapes),
		cmocka_unit_test(test_json_hostile_key),
		cmocka_unit_test(test_json_utf8_valid),
		cmocka_unit_test(test_json_utf8_invalid),
		cmocka_unit_test(test_json_double),
		cmocka_unit_test(test_json_double_locale),
		cmocka_unit_test(test_json_growth),
		cmocka_unit_test(test_json_random_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
