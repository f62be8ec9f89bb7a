/*
 * Reports of `airlock validate`: JUnit XML (the shape GitLab, Jenkins and
 * GitHub test reporters read) and JSON, both built from hostile bytes —
 * module output may hold anything — so every byte goes through an escaper.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/validate.h"

/* ---------------------------------------------------------------- vbuf */

static bool vbuf_grow(struct vbuf *b, size_t more)
{
	if (b->failed)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1) {
		if (cap > SIZE_MAX / 2)
			goto fail;
		cap *= 2;
	}
	char *d = realloc(b->data, cap);
	if (!d)
		goto fail;
	b->data = d;
	b->cap = cap;
	return true;
fail:
	b->failed = true;
	return false;
}

void vbuf_append(struct vbuf *b, const char *s, size_t n)
{
	if (!vbuf_grow(b, n))
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void vbuf_puts(struct vbuf *b, const char *s)
{
	vbuf_append(b, s, strlen(s));
}

void vbuf_printf(struct vbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !vbuf_grow(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void vbuf_escape(struct vbuf *b, const char *s, size_t n, size_t max)
{
	for (size_t i = 0; i < n && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': vbuf_puts(b, "\\\""); break;
		case '\\': vbuf_puts(b, "\\\\"); break;
		case '\n': vbuf_puts(b, "\\n"); break;
		case '\t': vbuf_puts(b, "\\t"); break;
		case '\r': vbuf_puts(b, "\\r"); break;
		default:
			if (c < 0x20 || c >= 0x7f)
				vbuf_printf(b, "\\x%02x", c);
			else
				vbuf_append(b, (const char *)&c, 1);
		}
	}
	if (n > max)
		vbuf_puts(b, "...");
}

void vbuf_quote(struct vbuf *b, const char *s, size_t n, size_t max)
{
	vbuf_puts(b, "\"");
	vbuf_escape(b, s, n, max);
	vbuf_puts(b, "\"");
}

void vbuf_free(struct vbuf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* ----------------------------------------------------------------- XML */

#define FFFD "\xEF\xBF\xBD"

/* The length of the well-formed UTF-8 sequence at s (1..4) and its code
 * point, or 0 when the bytes there are not one. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t min, v;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xC2 && c <= 0xDF) {
		len = 2, min = 0x80, v = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3, min = 0x800, v = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4, min = 0x10000, v = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3F);
	}
	if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		return 0;
	*cp = v;
	return len;
}

/* XML 1.0 section 2.2: Char. */
static bool xml_char(uint32_t cp)
{
	return cp == 0x9 || cp == 0xA || cp == 0xD ||
	       (cp >= 0x20 && cp <= 0xD7FF) || (cp >= 0xE000 && cp <= 0xFFFD) ||
	       (cp >= 0x10000 && cp <= 0x10FFFF);
}

void vxml_escape(struct vbuf *b, const char *s, size_t n, bool attribute)
{
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		uint32_t cp = 0;
		size_t len = utf8_next(u + i, n - i, &cp);
		if (len == 0) { /* one byte of invalid UTF-8 */
			vbuf_puts(b, FFFD);
			i++;
			continue;
		}
		if (!xml_char(cp)) {
			vbuf_puts(b, FFFD);
		} else if (cp == '&') {
			vbuf_puts(b, "&amp;");
		} else if (cp == '<') {
			vbuf_puts(b, "&lt;");
		} else if (cp == '>') {
			vbuf_puts(b, "&gt;"); /* "]]>" may not appear in text */
		} else if (cp == '"' && attribute) {
			vbuf_puts(b, "&quot;");
		} else if (cp == '\r' ||
			   (attribute && (cp == '\n' || cp == '\t'))) {
			/* kept as references: parsers normalise the raw ones */
			vbuf_printf(b, "&#%u;", cp);
		} else {
			vbuf_append(b, s + i, len);
		}
		i += len;
	}
}

static void xml_text(struct vbuf *b, const char *s)
{
	vxml_escape(b, s, strlen(s), false);
}

static void xml_attr(struct vbuf *b, const char *name, const char *value)
{
	vbuf_printf(b, " %s=\"", name);
	vxml_escape(b, value, strlen(value), true);
	vbuf_puts(b, "\"");
}

/* ------------------------------------------------------------- reports */

void vreport_release(struct vreport *r)
{
	free(r->result.stdout_data);
	free(r->result.stderr_data);
	free(r->json);
	vfailures_free(&r->failures);
	memset(r, 0, sizeof(*r));
}

struct counts {
	size_t failures, errors;
};

static struct counts count(const struct vsuite *s, const struct vreport *r)
{
	struct counts c = { 0, 0 };
	for (size_t i = 0; i < s->n; i++) {
		if (r[i].error)
			c.errors++;
		else if (!r[i].passed)
			c.failures++;
	}
	return c;
}

static void junit_case(struct vbuf *b, const struct vsuite *s,
		       const struct vcase *c, const struct vreport *r)
{
	vbuf_puts(b, "    <testcase");
	xml_attr(b, "name", c->name);
	xml_attr(b, "classname", s->name);
	vbuf_printf(b, " time=\"%.3f\"", r->result.wall_ms / 1000.0);
	vbuf_puts(b, ">\n");
	if (!r->passed) {
		/* message: every unmet expectation; the text: one a line */
		const char *tag = r->error ? "error" : "failure";
		struct vbuf msg = { 0 };
		for (size_t i = 0; i < r->failures.n; i++)
			vbuf_printf(&msg, "%s%s", i ? "; " : "",
				    r->failures.msg[i]);
		vbuf_printf(b, "      <%s", tag);
		xml_attr(b, "message", msg.data ? msg.data : "failed");
		xml_attr(b, "type", r->error ? "setup_error" : "expectation");
		vbuf_puts(b, ">");
		for (size_t i = 0; i < r->failures.n; i++) {
			xml_text(b, r->failures.msg[i]);
			vbuf_puts(b, "\n");
		}
		vbuf_printf(b, "</%s>\n", tag);
		if (msg.failed)
			b->failed = true;
		vbuf_free(&msg);
	}
	vbuf_puts(b, "      <system-out>");
	vxml_escape(b, r->result.stdout_data ? r->result.stdout_data : "",
		    r->result.stdout_len, false);
	vbuf_puts(b, "</system-out>\n      <system-err>");
	vxml_escape(b, r->result.stderr_data ? r->result.stderr_data : "",
		    r->result.stderr_len, false);
	vbuf_puts(b, "</system-err>\n    </testcase>\n");
}

static char *steal(struct vbuf *b)
{
	if (b->failed) {
		vbuf_free(b);
		return NULL;
	}
	char *d = b->data;
	memset(b, 0, sizeof(*b));
	return d;
}

char *vjunit_render(const struct vsuite *s, const struct vreport *r,
		    double total_ms, const char *timestamp,
		    const char *hostname)
{
	struct vbuf b = { 0 };
	struct counts n = count(s, r);
	vbuf_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	vbuf_puts(&b, "<testsuites");
	xml_attr(&b, "name", "airlock validate");
	vbuf_printf(&b,
		    " tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" "
		    "time=\"%.3f\">\n",
		    s->n, n.failures, n.errors, total_ms / 1000.0);
	vbuf_puts(&b, "  <testsuite");
	xml_attr(&b, "name", s->name);
	vbuf_printf(&b,
		    " tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" "
		    "skipped=\"0\" time=\"%.3f\"",
		    s->n, n.failures, n.errors, total_ms / 1000.0);
	xml_attr(&b, "timestamp", timestamp);
	xml_attr(&b, "hostname", hostname);
	vbuf_puts(&b, ">\n");
	for (size_t i = 0; i < s->n; i++)
		junit_case(&b, s, &s->cases[i], &r[i]);
	vbuf_puts(&b, "  </testsuite>\n</testsuites>\n");
	return steal(&b);
}

/* {"name":…,"passed":…,"failures":[…], then the members of the run's
 * sandbox_result_json() object. */
static void json_case(struct vbuf *b, const struct vcase *c,
		      const struct vreport *r)
{
	struct json_buf jb;
	json_buf_init(&jb);
	json_object_open(&jb);
	json_kv_string(&jb, "name", c->name);
	json_kv_bool(&jb, "passed", r->passed);
	json_key(&jb, "failures");
	json_array_open(&jb);
	for (size_t i = 0; i < r->failures.n; i++)
		json_string(&jb, r->failures.msg[i]);
	json_array_close(&jb);
	if (json_buf_failed(&jb)) {
		json_buf_free(&jb);
		b->failed = true;
		return;
	}
	vbuf_append(b, jb.data, jb.len);
	json_buf_free(&jb);
	if (r->json && r->json[0] == '{' && r->json[1] != '}') {
		vbuf_puts(b, ",");
		vbuf_puts(b, r->json + 1);
	} else {
		vbuf_puts(b, "}");
	}
}

char *vjson_render(const struct vsuite *s, const struct vreport *r,
		   double total_ms)
{
	struct vbuf b = { 0 };
	struct counts n = count(s, r);
	struct json_buf jb;
	json_buf_init(&jb);
	json_object_open(&jb);
	json_kv_string(&jb, "suite", s->name);
	json_kv_string(&jb, "file", s->filename);
	json_kv_uint(&jb, "tests", s->n);
	json_kv_uint(&jb, "passed", s->n - n.failures - n.errors);
	json_kv_uint(&jb, "failures", n.failures);
	json_kv_uint(&jb, "errors", n.errors);
	json_key(&jb, "wall_ms");
	json_double(&jb, total_ms, 3);
	json_key(&jb, "results");
	if (json_buf_failed(&jb)) {
		json_buf_free(&jb);
		return NULL;
	}
	vbuf_append(&b, jb.data, jb.len);
	json_buf_free(&jb);
	vbuf_puts(&b, "[");
	for (size_t i = 0; i < s->n; i++) {
		vbuf_puts(&b, i ? ",\n" : "\n");
		json_case(&b, &s->cases[i], &r[i]);
	}
	vbuf_puts(&b, "\n]}\n");
	return steal(&b);
}
