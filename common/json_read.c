/*
 * A bounded JSON parser for protocol lines (RFC 8259, whole text at once).
 *
 * Threat: every request line is written by a client we do not trust. The
 * parser therefore allocates exactly twice, both bounded by the input
 * length (nodes: at most one per input byte and at most max_nodes;
 * strings: unescaped in place into an arena of len + 1 bytes), recurses at
 * most max_depth levels, rejects control characters and lone surrogates in
 * strings, and never reads past `len`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

struct json_doc {
	struct json_node *nodes;
	uint32_t n, cap;
	char *arena;
	size_t used, arena_cap;
};

struct parser {
	const char *s;
	size_t len, pos;
	uint32_t depth, max_depth;
	struct json_doc *doc;
	struct al_error *err;
};

static int fail(struct parser *p, const char *what)
{
	return al_error_set(p->err, EINVAL, "invalid JSON at byte %zu: %s",
			    p->pos, what);
}

static void skip_ws(struct parser *p)
{
	while (p->pos < p->len &&
	       (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
		p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

static int new_node(struct parser *p, enum json_type t, uint32_t parent)
{
	if (p->doc->n >= p->doc->cap)
		return fail(p, "too many values");
	uint32_t i = p->doc->n++;
	p->doc->nodes[i] = (struct json_node){ .type = t, .parent = parent };
	return (int)i;
}

static bool literal(struct parser *p, const char *word)
{
	size_t n = strlen(word);
	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
		return false;
	p->pos += n;
	return true;
}

static int hex4(struct parser *p, unsigned *out)
{
	unsigned v = 0;
	if (p->len - p->pos < 4)
		return fail(p, "short \\u escape");
	for (int k = 0; k < 4; k++) {
		char c = p->s[p->pos++];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return fail(p, "bad hex digit in \\u escape");
	}
	*out = v;
	return 0;
}

static void put_utf8(struct json_doc *d, unsigned cp)
{
	char *o = d->arena + d->used;
	if (cp < 0x80) {
		o[0] = (char)cp;
		d->used += 1;
	} else if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		d->used += 2;
	} else if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		d->used += 3;
	} else {
		o[0] = (char)(0xf0 | (cp >> 18));
		o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[3] = (char)(0x80 | (cp & 0x3f));
		d->used += 4;
	}
}

/* One \u escape (and its low surrogate) into the arena. An escape takes 6
 * input bytes and at most 3 output bytes (a pair: 12 in, 4 out), so the
 * arena bound holds. */
static int unicode_escape(struct parser *p)
{
	unsigned cp, lo;
	if (hex4(p, &cp) < 0)
		return -1;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return fail(p, "lone low surrogate");
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (!literal(p, "\\u") || hex4(p, &lo) < 0 || lo < 0xdc00 ||
		    lo > 0xdfff)
			return fail(p, "high surrogate without its low half");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	put_utf8(p->doc, cp);
	return 0;
}

/* A string at p->pos (the opening quote) into the arena. */
static int string(struct parser *p, const char **out, size_t *out_len)
{
	static const char simple[][2] = { { '"', '"' },  { '\\', '\\' },
					  { '/', '/' },  { 'b', '\b' },
					  { 'f', '\f' }, { 'n', '\n' },
					  { 'r', '\r' }, { 't', '\t' } };
	struct json_doc *d = p->doc;
	size_t start = d->used;

	p->pos++; /* the quote */
	for (;;) {
		if (p->pos >= p->len)
			return fail(p, "unterminated string");
		unsigned char c = (unsigned char)p->s[p->pos++];
		if (c == '"')
			break;
		if (c < 0x20)
			return fail(p, "control character in string");
		if (c != '\\') {
			d->arena[d->used++] = (char)c;
			continue;
		}
		if (p->pos >= p->len)
			return fail(p, "unterminated escape");
		char e = p->s[p->pos++];
		if (e == 'u') {
			if (unicode_escape(p) < 0)
				return -1;
			continue;
		}
		size_t k;
		for (k = 0; k < ARRAY_SIZE(simple); k++)
			if (simple[k][0] == e)
				break;
		if (k == ARRAY_SIZE(simple))
			return fail(p, "unknown escape");
		d->arena[d->used++] = simple[k][1];
	}
	d->arena[d->used++] = '\0';
	*out = d->arena + start;
	*out_len = d->used - start - 1;
	return 0;
}

static int number(struct parser *p, struct json_node *n)
{
	size_t start = p->pos;
	bool integral = true;
	char buf[64];

	if (p->s[p->pos] == '-')
		p->pos++;
	if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9')
		return fail(p, "bad number");
	if (p->s[p->pos] == '0')
		p->pos++;
	else
		while (p->pos < p->len && p->s[p->pos] >= '0' &&
		       p->s[p->pos] <= '9')
			p->pos++;
	if (p->pos < p->len && p->s[p->pos] == '.') {
		integral = false;
		p->pos++;
		size_t digits = p->pos;
		while (p->pos < p->len && p->s[p->pos] >= '0' &&
		       p->s[p->pos] <= '9')
			p->pos++;
		if (p->pos == digits)
			return fail(p, "bad fraction");
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		integral = false;
		p->pos++;
		if (p->pos < p->len &&
		    (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		size_t digits = p->pos;
		while (p->pos < p->len && p->s[p->pos] >= '0' &&
		       p->s[p->pos] <= '9')
			p->pos++;
		if (p->pos == digits)
			return fail(p, "bad exponent");
	}
	if (p->pos - start >= sizeof(buf))
		return fail(p, "number too long");
	memcpy(buf, p->s + start, p->pos - start);
	buf[p->pos - start] = '\0';
	n->d = strtod(buf, NULL);
	n->type = JSON_NUMBER;
	if (integral) {
		errno = 0;
		long long v = strtoll(buf, NULL, 10);
		if (errno == 0) {
			n->type = JSON_INT;
			n->i = v;
		}
	}
	return 0;
}

static int value(struct parser *p, uint32_t parent);

/* Members or elements up to the closing bracket; p->pos is just past the
 * opening one. */
static int container(struct parser *p, uint32_t self, bool object)
{
	char close = object ? '}' : ']';
	uint32_t prev = 0;

	if (++p->depth > p->max_depth)
		return fail(p, "nested too deeply");
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
		p->depth--;
		return 0;
	}
	for (;;) {
		const char *key = NULL;
		size_t key_len = 0;
		skip_ws(p);
		if (object) {
			if (p->pos >= p->len || p->s[p->pos] != '"')
				return fail(p, "expected a member name");
			if (string(p, &key, &key_len) < 0)
				return -1;
			skip_ws(p);
			if (p->pos >= p->len || p->s[p->pos] != ':')
				return fail(p, "expected ':'");
			p->pos++;
		}
		int child = value(p, self);
		if (child < 0)
			return -1;
		struct json_node *c = &p->doc->nodes[child];
		c->key = key;
		c->key_len = key_len;
		if (prev)
			p->doc->nodes[prev].next = (uint32_t)child;
		else
			p->doc->nodes[self].child = (uint32_t)child;
		prev = (uint32_t)child;
		p->doc->nodes[self].count++;
		skip_ws(p);
		if (p->pos >= p->len)
			return fail(p, "unterminated container");
		char c2 = p->s[p->pos++];
		if (c2 == close)
			break;
		if (c2 != ',')
			return fail(p, object ? "expected ',' or '}'"
					      : "expected ',' or ']'");
	}
	p->depth--;
	return 0;
}

static int value(struct parser *p, uint32_t parent)
{
	skip_ws(p);
	if (p->pos >= p->len)
		return fail(p, "expected a value");
	int i = new_node(p, JSON_NULL, parent);
	if (i < 0)
		return -1;
	uint32_t self = (uint32_t)i;
	if (self == 0)
		p->doc->nodes[0].parent = 0;
	struct json_node *n = &p->doc->nodes[self];
	char c = p->s[p->pos];
	int rc = 0;

	switch (c) {
	case '{':
	case '[':
		n->type = c == '{' ? JSON_OBJECT : JSON_ARRAY;
		p->pos++;
		rc = container(p, self, c == '{');
		break;
	case '"':
		n->type = JSON_STRING;
		rc = string(p, &n->str, &n->len);
		break;
	case 't':
	case 'f':
		n->type = JSON_BOOL;
		n->i = c == 't';
		if (!literal(p, c == 't' ? "true" : "false"))
			rc = fail(p, "bad literal");
		break;
	case 'n':
		if (!literal(p, "null"))
			rc = fail(p, "bad literal");
		break;
	default: rc = number(p, n);
	}
	return rc < 0 ? -1 : (int)self;
}

struct json_doc *json_parse(const char *text, size_t len,
			    const struct json_limits *limits,
			    struct al_error *err)
{
	uint32_t max_nodes = limits && limits->max_nodes ? limits->max_nodes
							 : 4096;
	struct json_doc *doc = calloc(1, sizeof(*doc));
	if (!doc) {
		al_error_sys(err, ENOMEM, "json");
		return NULL;
	}
	/* every value takes at least one byte of input */
	doc->cap = len < max_nodes ? (uint32_t)len + 1 : max_nodes;
	doc->nodes = calloc(doc->cap, sizeof(*doc->nodes));
	doc->arena_cap = len + 1;
	doc->arena = malloc(doc->arena_cap);
	if (!doc->nodes || !doc->arena) {
		json_doc_free(doc);
		al_error_sys(err, ENOMEM, "json");
		return NULL;
	}
	struct parser p = {
		.s = text,
		.len = len,
		.max_depth = limits && limits->max_depth ? limits->max_depth
							 : 16,
		.doc = doc,
		.err = err,
	};
	if (value(&p, 0) < 0)
		goto bad;
	skip_ws(&p);
	if (p.pos != p.len) {
		fail(&p, "trailing characters after the value");
		goto bad;
	}
	return doc;
bad:
	json_doc_free(doc);
	return NULL;
}

void json_doc_free(struct json_doc *doc)
{
	if (!doc)
		return;
	free(doc->nodes);
	free(doc->arena);
	free(doc);
}

const struct json_node *json_root(const struct json_doc *doc)
{
	return &doc->nodes[0];
}

const struct json_node *json_first(const struct json_doc *doc,
				   const struct json_node *n)
{
	if (!n || (n->type != JSON_OBJECT && n->type != JSON_ARRAY) ||
	    !n->child)
		return NULL;
	return &doc->nodes[n->child];
}

const struct json_node *json_next(const struct json_doc *doc,
				  const struct json_node *n)
{
	return n && n->next ? &doc->nodes[n->next] : NULL;
}

const struct json_node *json_get(const struct json_doc *doc,
				 const struct json_node *obj, const char *key)
{
	if (!obj || obj->type != JSON_OBJECT)
		return NULL;
	size_t klen = strlen(key);
	for (const struct json_node *c = json_first(doc, obj); c;
	     c = json_next(doc, c))
		if (c->key_len == klen && memcmp(c->key, key, klen) == 0)
			return c;
	return NULL;
}

const char *json_get_str(const struct json_doc *doc,
			 const struct json_node *obj, const char *key,
			 const char *dflt)
{
	const struct json_node *n = json_get(doc, obj, key);
	return n && n->type == JSON_STRING ? n->str : dflt;
}

const char *json_type_name(enum json_type t)
{
	static const char *const names[] = { "null",   "boolean", "integer",
					     "number", "string",  "array",
					     "object" };
	return (unsigned)t < ARRAY_SIZE(names) ? names[t] : "?";
}
