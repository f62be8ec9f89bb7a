/*
 * An append-only JSON writer.
 *
 * Module output is hostile: strings may hold any bytes, including quotes,
 * control characters, NULs and broken UTF-8. Whatever they hold, the text
 * produced here stays valid JSON in valid UTF-8, so a consumer can never be
 * tricked into reading a forged field or choke on a decoding error.
 *
 * Structure is tracked with one bit per nesting level (set once the level
 * has a member, so the next member needs a comma) and `after_key` (the next
 * value belongs to that key and needs no comma). Misuse that would produce
 * broken text (closing at the top, a key outside any container, two keys in
 * a row, nesting deeper than JSON_MAX_DEPTH, a second top-level value) marks
 * the buffer failed, just like running out of memory.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

/* has_member has 64 bits: level 0 (the top) plus 63 open containers. */
#define JSON_MAX_DEPTH 63
#define JSON_MIN_CAP 256
/* Enough for "%.*f" of DBL_MAX (309 digits) with JSON_MAX_DECIMALS. */
#define JSON_MAX_DECIMALS 20
#define JSON_DOUBLE_BUF 352

static const char replacement_char[] = "\xEF\xBF\xBD"; /* U+FFFD */

void json_buf_init(struct json_buf *jb)
{
	memset(jb, 0, sizeof(*jb));
}

void json_buf_free(struct json_buf *jb)
{
	free(jb->data);
	json_buf_init(jb);
}

bool json_buf_failed(const struct json_buf *jb)
{
	return jb->failed;
}

/*
 * Returns NULL instead of text that is not a finished JSON value: when the
 * buffer failed, when a container or a key is still open, or when even the
 * empty string cannot be allocated.
 */
char *json_buf_steal(struct json_buf *jb)
{
	char *text = NULL;

	if (!jb->failed && jb->depth == 0 && !jb->after_key) {
		if (jb->data != NULL)
			text = steal_ptr(&jb->data);
		else
			text = calloc(1, 1); /* "" the caller can free */
	}
	json_buf_free(jb);
	return text;
}

/* Make room for `more` bytes plus the terminating NUL, doubling. */
static bool reserve(struct json_buf *jb, size_t more)
{
	size_t want, cap;
	char *data;

	if (jb->failed)
		return false;
	if (more > SIZE_MAX - 1 - jb->len)
		goto fail;
	want = jb->len + more + 1;
	if (want <= jb->cap)
		return true;
	cap = jb->cap != 0 ? jb->cap : JSON_MIN_CAP;
	while (cap < want)
		cap = cap <= SIZE_MAX / 2 ? cap * 2 : want;
	data = realloc(jb->data, cap);
	if (data == NULL)
		goto fail;
	jb->data = data;
	jb->cap = cap;
	return true;
fail:
	jb->failed = true;
	return false;
}

/* Append raw bytes; the text stays NUL-terminated for debuggers. */
static void put(struct json_buf *jb, const void *s, size_t n)
{
	/* memcpy wants a valid pointer even for n == 0. */
	if (n == 0 || !reserve(jb, n))
		return;
	memcpy(jb->data + jb->len, s, n);
	jb->len += n;
	jb->data[jb->len] = '\0';
}

static void put_str(struct json_buf *jb, const char *s)
{
	put(jb, s, strlen(s));
}

static uint64_t level_bit(const struct json_buf *jb)
{
	return UINT64_C(1) << jb->depth;
}

/* Called before every value: writes the separating comma if one is due. */
static bool begin_value(struct json_buf *jb)
{
	if (jb->failed)
		return false;
	if (jb->after_key) {
		jb->after_key = false;
		return true;
	}
	if (jb->has_member & level_bit(jb)) {
		if (jb->depth == 0) {
			/* "1,2" at the top is not a JSON text. */
			jb->failed = true;
			return false;
		}
		put(jb, ",", 1);
	}
	jb->has_member |= level_bit(jb);
	return !jb->failed;
}

static void open_container(struct json_buf *jb, char bracket)
{
	if (!begin_value(jb))
		return;
	if (jb->depth >= JSON_MAX_DEPTH) {
		jb->failed = true;
		return;
	}
	put(jb, &bracket, 1);
	jb->depth++;
	jb->has_member &= ~level_bit(jb);
}

static void close_container(struct json_buf *jb, char bracket)
{
	if (jb->failed)
		return;
	/* Nothing open, or a key still waiting for its value. */
	if (jb->depth == 0 || jb->after_key) {
		jb->failed = true;
		return;
	}
	put(jb, &bracket, 1);
	jb->depth--;
}

void json_object_open(struct json_buf *jb)
{
	open_container(jb, '{');
}

void json_object_close(struct json_buf *jb)
{
	close_container(jb, '}');
}

void json_array_open(struct json_buf *jb)
{
	open_container(jb, '[');
}

void json_array_close(struct json_buf *jb)
{
	close_container(jb, ']');
}

/*
 * Length of the well-formed UTF-8 sequence at s[0] (s[0] >= 0x80), or 0.
 * RFC 3629's table: the second byte's range excludes overlong forms
 * (E0, F0), UTF-16 surrogates (ED) and code points above U+10FFFF (F4);
 * C0, C1 and F5..FF never start a sequence.
 */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xBF;
	size_t len, i;

	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		len = 2;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		len = 3;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		len = 4;
	else
		return 0;
	if (s[0] == 0xE0)
		lo = 0xA0;
	else if (s[0] == 0xED)
		hi = 0x9F;
	else if (s[0] == 0xF0)
		lo = 0x90;
	else if (s[0] == 0xF4)
		hi = 0x8F;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return len;
}

bool json_utf8_valid(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		size_t len = u[i] < 0x80 ? 1 : utf8_seq_len(u + i, n - i);
		if (len == 0)
			return false;
		i += len;
	}
	return true;
}

/* The two-character escapes JSON defines, or NULL. */
static const char *short_escape(unsigned char c)
{
	switch (c) {
	case '"': return "\\\"";
	case '\\': return "\\\\";
	case '\b': return "\\b";
	case '\f': return "\\f";
	case '\n': return "\\n";
	case '\r': return "\\r";
	case '\t': return "\\t";
	default: return NULL;
	}
}

/* An ASCII byte that cannot appear raw inside a JSON string. */
static void put_escape(struct json_buf *jb, unsigned char c)
{
	const char *esc = short_escape(c);
	char hex[8];

	if (esc != NULL) {
		put_str(jb, esc);
		return;
	}
	if (snprintf(hex, sizeof(hex), "\\u%04x", c) != 6) {
		jb->failed = true;
		return;
	}
	put(jb, hex, 6);
}

/*
 * The quoted string. Bytes that may pass verbatim are copied in runs; an
 * invalid sequence is replaced one byte at a time, so each of its bytes
 * becomes one U+FFFD and resynchronisation happens at the next byte.
 */
static void put_quoted(struct json_buf *jb, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run = 0, len;

	put(jb, "\"", 1);
	while (i < n) {
		unsigned char c = s[i];

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			i++;
			continue;
		}
		if (c >= 0x80 && (len = utf8_seq_len(s + i, n - i)) > 0) {
			i += len;
			continue;
		}
		put(jb, s + run, i - run);
		if (c < 0x80)
			put_escape(jb, c);
		else
			put(jb, replacement_char, 3);
		run = ++i;
	}
	put(jb, s + run, n - run);
	put(jb, "\"", 1);
}

void json_key(struct json_buf *jb, const char *key)
{
	if (jb->failed)
		return;
	/* Keys live in containers, one per value, and are strings. */
	if (jb->depth == 0 || jb->after_key || key == NULL) {
		jb->failed = true;
		return;
	}
	if (jb->has_member & level_bit(jb))
		put(jb, ",", 1);
	jb->has_member |= level_bit(jb);
	put_quoted(jb, key, strlen(key));
	put(jb, ":", 1);
	jb->after_key = true;
}

/* A NULL `s` writes null, like json_string(). */
void json_string_n(struct json_buf *jb, const char *s, size_t n)
{
	if (s == NULL) {
		json_null(jb);
		return;
	}
	if (!begin_value(jb))
		return;
	put_quoted(jb, s, n);
}

void json_string(struct json_buf *jb, const char *s)
{
	json_string_n(jb, s, s != NULL ? strlen(s) : 0);
}

void json_raw_value(struct json_buf *jb, const char *text, size_t n)
{
	if (!begin_value(jb))
		return;
	put(jb, text, n);
}

void json_int(struct json_buf *jb, int64_t v)
{
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%" PRId64, v);

	if (!begin_value(jb))
		return;
	put(jb, buf, (size_t)n);
}

void json_uint(struct json_buf *jb, uint64_t v)
{
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%" PRIu64, v);

	if (!begin_value(jb))
		return;
	put(jb, buf, (size_t)n);
}

/*
 * printf's decimal point follows LC_NUMERIC, which may be "," or even a
 * multibyte character once someone calls setlocale(). JSON wants ".", so
 * keep the sign and digits and turn whatever separates them into ".".
 */
static size_t normalise_number(char *s)
{
	size_t r = 0, w = 0;

	if (s[0] == '-')
		s[w++] = s[r++];
	while (s[r] != '\0') {
		if (s[r] >= '0' && s[r] <= '9') {
			s[w++] = s[r++];
			continue;
		}
		s[w++] = '.';
		while (s[r] != '\0' && (s[r] < '0' || s[r] > '9'))
			r++;
	}
	s[w] = '\0';
	return w;
}

void json_double(struct json_buf *jb, double v, int decimals)
{
	char buf[JSON_DOUBLE_BUF];
	int n;

	if (!isfinite(v)) {
		json_null(jb); /* JSON has no NaN or Infinity */
		return;
	}
	if (decimals < 0)
		decimals = 0;
	if (decimals > JSON_MAX_DECIMALS)
		decimals = JSON_MAX_DECIMALS;
	n = snprintf(buf, sizeof(buf), "%.*f", decimals, v);
	if (!begin_value(jb))
		return;
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		jb->failed = true;
		return;
	}
	put(jb, buf, normalise_number(buf));
}

void json_bool(struct json_buf *jb, bool v)
{
	if (begin_value(jb))
		put_str(jb, v ? "true" : "false");
}

void json_null(struct json_buf *jb)
{
	if (begin_value(jb))
		put_str(jb, "null");
}

void json_kv_string(struct json_buf *jb, const char *key, const char *s)
{
	json_key(jb, key);
	json_string(jb, s);
}

void json_kv_int(struct json_buf *jb, const char *key, int64_t v)
{
	json_key(jb, key);
	json_int(jb, v);
}

void json_kv_uint(struct json_buf *jb, const char *key, uint64_t v)
{
	json_key(jb, key);
	json_uint(jb, v);
}

void json_kv_bool(struct json_buf *jb, const char *key, bool v)
{
	json_key(jb, key);
	json_bool(jb, v);
}

void json_kv_null(struct json_buf *jb, const char *key)
{
	json_key(jb, key);
	json_null(jb);
}
