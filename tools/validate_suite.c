/*
 * Suite files for `airlock validate` (format: docs/ci.md).
 *
 * INI read by libinih, one [case NAME] section per case. Two passes over
 * the text: a scan of our own that checks line lengths and NUL bytes and
 * records every section header with its line (libinih never reports an
 * empty section, and it would merge two consecutive sections of the same
 * name), then libinih for the keys, fed by a reader that counts lines so
 * every error names FILE:LINE: [case NAME] key.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "tools/validate.h"

struct sstate {
	struct vsuite *s;
	const char *filename;
	char *dir; /* the suite's directory, for relative paths */
	struct al_error *err;
	bool failed;
	/* libinih's reader */
	const char *text;
	size_t len, pos;
	int line;
	bool at_line_start;
	/* where we are, for messages */
	char section[64];
	char key[64];
	struct vcase *cur;
	uint32_t seen; /* keys of `cur` given so far (bit per keys[] entry) */
};

__attribute__((format(printf, 2, 3))) static int sfail(struct sstate *st,
						       const char *fmt, ...)
{
	va_list ap;
	char msg[AL_ERROR_MAX];
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!st->failed)
		al_error_set(st->err, EINVAL, "%s", msg);
	st->failed = true;
	return -1;
}

static char *dup_or_fail(struct sstate *st, const char *s)
{
	char *d = strdup(s);
	if (!d)
		sfail(st, "out of memory");
	return d;
}

/* A relative path with a '/' is found next to the suite file. */
static char *resolve(struct sstate *st, const char *v, bool force_path)
{
	if (v[0] == '/' || (!strchr(v, '/') && !force_path) ||
	    strcmp(st->dir, ".") == 0)
		return dup_or_fail(st, v);
	char *p = NULL;
	if (asprintf(&p, "%s/%s", st->dir, v) < 0) {
		sfail(st, "out of memory");
		return NULL;
	}
	return p;
}

/* --------------------------------------------------------------- values */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Text values: optional surrounding double quotes (to keep leading or
 * trailing spaces, which libinih strips) and the escapes \n \t \r \\ \"
 * \0 \xHH. */
static int unescape(struct sstate *st, const char *v, struct vpattern *out)
{
	size_t n = strlen(v);
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v++;
		n -= 2;
	}
	char *d = malloc(n + 1);
	if (!d)
		return sfail(st, "out of memory");
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i] != '\\') {
			d[o++] = v[i];
			continue;
		}
		char e = i + 1 < n ? v[++i] : '\0';
		int hi, lo;
		switch (e) {
		case 'n': d[o++] = '\n'; break;
		case 't': d[o++] = '\t'; break;
		case 'r': d[o++] = '\r'; break;
		case '0': d[o++] = '\0'; break;
		case '\\': d[o++] = '\\'; break;
		case '"': d[o++] = '"'; break;
		case 'x':
			hi = i + 1 < n ? hexval(v[i + 1]) : -1;
			lo = i + 2 < n ? hexval(v[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				free(d);
				return sfail(st,
					     "bad escape: \\x needs two hex "
					     "digits");
			}
			d[o++] = (char)(hi * 16 + lo);
			i += 2;
			break;
		default:
			free(d);
			return sfail(st,
				     "unknown escape \"\\%c\": expected \\n, "
				     "\\t, \\r, \\0, \\\\, \\\" or \\xHH",
				     e ? e : ' ');
		}
	}
	d[o] = '\0';
	out->text = d;
	out->len = o;
	return 0;
}

static int add_pattern(struct sstate *st, struct vpattern **list, size_t *n,
		       const char *v)
{
	struct vpattern *l = realloc(*list, (*n + 1) * sizeof(**list));
	if (!l)
		return sfail(st, "out of memory");
	*list = l;
	if (unescape(st, v, &l[*n]) < 0)
		return -1;
	(*n)++;
	return 0;
}

static int add_arg(struct sstate *st, const char *word, size_t len)
{
	struct vcase *c = st->cur;
	char **a = realloc(c->args, (c->nargs + 2) * sizeof(*a));
	if (!a)
		return sfail(st, "out of memory");
	c->args = a;
	a[c->nargs] = strndup(word, len);
	if (!a[c->nargs])
		return sfail(st, "out of memory");
	a[++c->nargs] = NULL;
	return 0;
}

static int set_setting(struct sstate *st, struct vsetting *s, char *value)
{
	if (!value)
		return -1;
	s->value = value;
	s->line = st->line;
	return 0;
}

/* ----------------------------------------------------------------- keys */

static int set_module(struct sstate *st, const char *v)
{
	return set_setting(st, &st->cur->module, resolve(st, v, false));
}

static int set_args(struct sstate *st, const char *v)
{
	for (const char *p = v; *p;) {
		while (*p == ' ' || *p == '\t')
			p++;
		size_t n = strcspn(p, " \t");
		if (n && add_arg(st, p, n) < 0)
			return -1;
		p += n;
	}
	return 0;
}

static int set_arg(struct sstate *st, const char *v)
{
	struct vpattern p = { 0 };
	if (unescape(st, v, &p) < 0)
		return -1;
	if (memchr(p.text, '\0', p.len)) {
		free(p.text);
		return sfail(st, "an argument cannot hold a NUL byte");
	}
	int rc = add_arg(st, p.text, p.len);
	free(p.text);
	return rc;
}

static int set_stdin(struct sstate *st, const char *v)
{
	if (st->cur->stdin_file.value)
		return sfail(st, "give stdin or stdin_file, not both");
	st->cur->has_stdin = true;
	return unescape(st, v, &st->cur->stdin_text);
}

static int set_stdin_file(struct sstate *st, const char *v)
{
	if (st->cur->has_stdin)
		return sfail(st, "give stdin or stdin_file, not both");
	return set_setting(st, &st->cur->stdin_file, resolve(st, v, true));
}

static int set_policy(struct sstate *st, const char *v)
{
	size_t n = strlen(v);
	bool path = n > 7 && strcmp(v + n - 7, ".policy") == 0;
	return set_setting(st, &st->cur->policy, resolve(st, v, path));
}

static int set_timeout(struct sstate *st, const char *v)
{
	uint64_t us;
	struct al_error e = { 0 };
	if (parse_duration_us(v, &us, &e) < 0 || us == 0)
		return sfail(st, "%s", e.msg[0] ? e.msg : "must be above zero");
	return set_setting(st, &st->cur->timeout, dup_or_fail(st, v));
}

static int set_memory(struct sstate *st, const char *v)
{
	uint64_t b;
	struct al_error e = { 0 };
	if (parse_size(v, &b, &e) < 0)
		return sfail(st, "%s", e.msg);
	return set_setting(st, &st->cur->memory, dup_or_fail(st, v));
}

static int set_pids(struct sstate *st, const char *v)
{
	uint64_t n;
	struct al_error e = { 0 };
	if (parse_uint(v, 1, 1u << 22, &n, &e) < 0)
		return sfail(st, "%s", e.msg);
	return set_setting(st, &st->cur->pids, dup_or_fail(st, v));
}

static int set_net(struct sstate *st, const char *v)
{
	if (strcmp(v, "none") != 0 && strcmp(v, "loopback") != 0)
		return sfail(st, "expected none or loopback, not \"%s\"", v);
	return set_setting(st, &st->cur->net, dup_or_fail(st, v));
}

static int set_verdict(struct sstate *st, const char *v)
{
	int vd = al_verdict_parse(v);
	if (vd < 0)
		return sfail(st,
			     "unknown verdict \"%s\": expected ok, "
			     "exit_nonzero, crashed, timeout, memory_limit, "
			     "seccomp_violation or setup_error",
			     v);
	st->cur->verdict = vd;
	return 0;
}

static int set_exit_code(struct sstate *st, const char *v)
{
	uint64_t n;
	struct al_error e = { 0 };
	if (parse_uint(v, 0, 255, &n, &e) < 0)
		return sfail(st, "%s", e.msg);
	st->cur->exit_code = (int)n;
	return 0;
}

static int set_exact(struct sstate *st, struct vstream_expect *x, const char *v)
{
	x->has_exact = true;
	return unescape(st, v, &x->exact);
}

static int add_regex(struct sstate *st, struct vstream_expect *x, const char *v)
{
	struct vregex *l = realloc(x->regex, (x->nregex + 1) * sizeof(*l));
	if (!l)
		return sfail(st, "out of memory");
	x->regex = l;
	int rc = regcomp(&l[x->nregex].re, v,
			 REG_EXTENDED | REG_NEWLINE | REG_NOSUB);
	if (rc != 0) {
		char why[256];
		regerror(rc, &l[x->nregex].re, why, sizeof(why));
		return sfail(st,
			     "bad regular expression \"%s\": %s (POSIX "
			     "extended syntax)",
			     v, why);
	}
	l[x->nregex].source = strdup(v);
	if (!l[x->nregex].source) {
		regfree(&l[x->nregex].re);
		return sfail(st, "out of memory");
	}
	x->nregex++;
	return 0;
}

static int set_stdout(struct sstate *st, const char *v)
{
	return set_exact(st, &st->cur->out, v);
}
static int add_stdout_contains(struct sstate *st, const char *v)
{
	return add_pattern(st, &st->cur->out.contains, &st->cur->out.ncontains,
			   v);
}
static int add_stdout_regex(struct sstate *st, const char *v)
{
	return add_regex(st, &st->cur->out, v);
}
static int set_stderr(struct sstate *st, const char *v)
{
	return set_exact(st, &st->cur->err, v);
}
static int add_stderr_contains(struct sstate *st, const char *v)
{
	return add_pattern(st, &st->cur->err.contains, &st->cur->err.ncontains,
			   v);
}
static int add_stderr_regex(struct sstate *st, const char *v)
{
	return add_regex(st, &st->cur->err, v);
}

static int set_max_wall(struct sstate *st, const char *v)
{
	struct al_error e = { 0 };
	if (parse_duration_us(v, &st->cur->max_wall_us, &e) < 0)
		return sfail(st, "%s", e.msg);
	st->cur->has_max_wall = true;
	return set_setting(st, &st->cur->max_wall, dup_or_fail(st, v));
}

static int set_max_memory(struct sstate *st, const char *v)
{
	struct al_error e = { 0 };
	if (parse_size(v, &st->cur->max_memory_bytes, &e) < 0)
		return sfail(st, "%s", e.msg);
	st->cur->has_max_memory = true;
	return set_setting(st, &st->cur->max_memory, dup_or_fail(st, v));
}

static const struct key {
	const char *name;
	bool repeat;
	int (*set)(struct sstate *st, const char *v);
} keys[] = {
	{ "module", false, set_module },
	{ "args", true, set_args },
	{ "arg", true, set_arg },
	{ "stdin", false, set_stdin },
	{ "stdin_file", false, set_stdin_file },
	{ "policy", false, set_policy },
	{ "timeout", false, set_timeout },
	{ "memory", false, set_memory },
	{ "pids", false, set_pids },
	{ "net", false, set_net },
	{ "verdict", false, set_verdict },
	{ "exit_code", false, set_exit_code },
	{ "stdout", false, set_stdout },
	{ "stdout_contains", true, add_stdout_contains },
	{ "stdout_regex", true, add_stdout_regex },
	{ "stderr", false, set_stderr },
	{ "stderr_contains", true, add_stderr_contains },
	{ "stderr_regex", true, add_stderr_regex },
	{ "max_wall", false, set_max_wall },
	{ "max_memory", false, set_max_memory },
};

#define N_KEYS ARRAY_SIZE(keys)

static struct vcase *find_case(struct vsuite *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->cases[i].name, name) == 0)
			return &s->cases[i];
	return NULL;
}

static int handler(void *user, const char *section, const char *name,
		   const char *value)
{
	struct sstate *st = user;
	snprintf(st->key, sizeof(st->key), "%s", name);
	if (strcmp(section, st->section) != 0 || !st->cur) {
		snprintf(st->section, sizeof(st->section), "%s", section);
		/* the scan saw every header: an unknown one never gets here */
		st->cur = strncmp(section, "case ", 5) == 0
				  ? find_case(st->s, section + 5)
				  : NULL;
		st->seen = 0;
		if (!st->cur) {
			sfail(st, "a key outside any [case NAME] section");
			return 0;
		}
	}
	for (size_t i = 0; i < N_KEYS; i++) {
		if (strcmp(keys[i].name, name) != 0)
			continue;
		if (!keys[i].repeat && (st->seen & (1u << i))) {
			sfail(st,
			      "duplicate key: only args, arg, *_contains and "
			      "*_regex may repeat");
			return 0;
		}
		st->seen |= 1u << i;
		return keys[i].set(st, value) < 0 ? 0 : 1;
	}
	sfail(st, "unknown key; see docs/ci.md for the keys of a case");
	return 0;
}

/* libinih asks for one line at a time; counting them here gives the
 * handler its line number. */
static char *reader(char *str, int num, void *stream)
{
	struct sstate *st = stream;
	if (st->failed || st->pos >= st->len || num < 2)
		return NULL;
	if (st->at_line_start)
		st->line++;
	size_t n = 0;
	while (n + 1 < (size_t)num && st->pos < st->len) {
		char c = st->text[st->pos++];
		str[n++] = c;
		if (c == '\n')
			break;
	}
	str[n] = '\0';
	st->at_line_start = str[n - 1] == '\n';
	return str;
}

/* ----------------------------------------------------------- first pass */

static bool good_name(const char *n, size_t len)
{
	if (len == 0 || len > VSUITE_MAX_NAME || n[0] == ' ' ||
	    n[len - 1] == ' ')
		return false;
	for (size_t i = 0; i < len; i++)
		if (n[i] < 0x20 || n[i] > 0x7e || strchr("[]#;\"\\", n[i]))
			return false;
	return true;
}

static int add_case(struct sstate *st, const char *name, size_t len)
{
	struct vsuite *s = st->s;
	if (!good_name(name, len))
		return sfail(st,
			     "bad case name \"%.*s\": 1 to %d printable "
			     "ASCII characters, none of []#;\"\\, no "
			     "leading or trailing space",
			     (int)(len > 64 ? 64 : len), name, VSUITE_MAX_NAME);
	for (size_t i = 0; i < s->n; i++)
		if (strlen(s->cases[i].name) == len &&
		    memcmp(s->cases[i].name, name, len) == 0)
			return sfail(st,
				     "duplicate case \"%.*s\" (first at "
				     "line %d)",
				     (int)len, name, s->cases[i].line);
	struct vcase *c = realloc(s->cases, (s->n + 1) * sizeof(*c));
	if (!c)
		return sfail(st, "out of memory");
	s->cases = c;
	c = &c[s->n];
	memset(c, 0, sizeof(*c));
	c->verdict = -1;
	c->exit_code = -1;
	c->line = st->line;
	c->name = strndup(name, len);
	if (!c->name)
		return sfail(st, "out of memory");
	s->n++;
	return 0;
}

/* Lines, NUL bytes and section headers, before libinih sees the text. */
static int scan(struct sstate *st)
{
	size_t start = 0;
	for (st->line = 1; start <= st->len; st->line++) {
		const char *l = st->text + start;
		const char *nl = memchr(l, '\n', st->len - start);
		size_t n = nl ? (size_t)(nl - l) : st->len - start;
		snprintf(st->section, sizeof(st->section), "%s", "");
		if (memchr(l, '\0', n))
			return sfail(st, "contains a NUL byte");
		if (n > VSUITE_MAX_LINE)
			return sfail(st, "line too long: at most %d characters",
				     VSUITE_MAX_LINE);
		while (n && isspace((unsigned char)*l)) {
			l++;
			n--;
		}
		if (n && *l == '[') {
			const char *end = memchr(l, ']', n);
			size_t sn = end ? (size_t)(end - l - 1) : 0;
			if (!end)
				return sfail(st,
					     "syntax error: a section header "
					     "needs its ']'");
			if (sn > 5 && memcmp(l + 1, "case ", 5) == 0) {
				if (add_case(st, l + 6, sn - 5) < 0)
					return -1;
			} else {
				return sfail(st,
					     "unknown section [%.*s]: "
					     "expected [case NAME]",
					     (int)(sn > 64 ? 64 : sn), l + 1);
			}
		}
		if (!nl)
			break;
		start += (size_t)(nl - (st->text + start)) + 1;
	}
	return 0;
}

/* ---------------------------------------------------------- whole suite */

static void free_pattern(struct vpattern *p)
{
	free(p->text);
}

static void free_stream(struct vstream_expect *x)
{
	free_pattern(&x->exact);
	for (size_t i = 0; i < x->ncontains; i++)
		free_pattern(&x->contains[i]);
	free(x->contains);
	for (size_t i = 0; i < x->nregex; i++) {
		regfree(&x->regex[i].re);
		free(x->regex[i].source);
	}
	free(x->regex);
}

static void free_case(struct vcase *c)
{
	free(c->name);
	free(c->module.value);
	for (size_t i = 0; i < c->nargs; i++)
		free(c->args[i]);
	free(c->args);
	free_pattern(&c->stdin_text);
	free(c->stdin_file.value);
	free(c->policy.value);
	free(c->timeout.value);
	free(c->memory.value);
	free(c->pids.value);
	free(c->net.value);
	free_stream(&c->out);
	free_stream(&c->err);
	free(c->max_wall.value);
	free(c->max_memory.value);
}

void vsuite_free(struct vsuite *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free_case(&s->cases[i]);
	free(s->cases);
	free(s->filename);
	free(s->name);
	free(s);
}

static struct vsuite *suite_new(const char *filename, struct al_error *err)
{
	struct vsuite *s = calloc(1, sizeof(*s));
	if (s)
		s->filename = strdup(filename);
	if (!s || !s->filename) {
		free(s);
		al_error_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	return s;
}

/* The JUnit suite name: the file's name without directory and ".ini". */
static char *suite_name(const char *filename)
{
	const char *base = strrchr(filename, '/');
	base = base ? base + 1 : filename;
	size_t n = strlen(base);
	if (n > 4 && strcmp(base + n - 4, ".ini") == 0)
		n -= 4;
	return strndup(base, n);
}

static void configure_inih(void)
{
	/* process-wide: the policy parser sets its own before each parse */
	ini_allow_multiline = false;
	ini_allow_bom = true;
	ini_stop_on_first_error = true;
	ini_use_stack = false;
	ini_max_line = VSUITE_MAX_LINE + 3;
	ini_initial_alloc = VSUITE_MAX_LINE + 3;
	ini_allow_realloc = false;
	ini_allow_no_value = false;
	/* `stdout_contains = a ; b` means what it says */
	ini_allow_inline_comments = false;
}

static int check_cases(struct sstate *st)
{
	for (size_t i = 0; i < st->s->n; i++) {
		struct vcase *c = &st->s->cases[i];
		if (!c->module.value) {
			st->line = c->line;
			snprintf(st->section, sizeof(st->section), "case %s",
				 c->name);
			snprintf(st->key, sizeof(st->key), "module");
			return sfail(st,
				     "missing: every case names its module");
		}
	}
	if (st->s->n == 0) {
		st->line = 0;
		return sfail(st, "no [case NAME] section: nothing to validate");
	}
	return 0;
}

struct vsuite *vsuite_parse(const char *text, size_t len, const char *filename,
			    struct al_error *err)
{
	static struct al_error scratch;
	struct sstate st = { .text = text,
			     .len = len,
			     .filename = filename,
			     .err = err ? err : &scratch,
			     .at_line_start = true };
	st.s = suite_new(filename, st.err);
	if (!st.s)
		return NULL;
	st.s->name = suite_name(filename);
	const char *slash = strrchr(filename, '/');
	st.dir = slash ? strndup(filename, (size_t)(slash - filename) +
						   (slash == filename))
		       : strdup(".");
	if (!st.dir || !st.s->name) {
		sfail(&st, "out of memory");
		goto out;
	}
	if (scan(&st) < 0) {
		al_error_prefix(st.err, "%s:%d", filename, st.line);
		goto out;
	}
	configure_inih();
	st.line = 0;
	st.section[0] = '\0';
	int rc = ini_parse_stream(reader, &st, handler, &st);
	if (st.failed) {
		al_error_prefix(st.err, "%s:%d: [%s] %s", filename, st.line,
				st.section, st.key);
		goto out;
	}
	if (rc != 0) {
		sfail(&st,
		      "%s:%d: syntax error: expected \"key = value\", "
		      "\"[case NAME]\" or a comment",
		      filename, rc > 0 ? rc : st.line);
		goto out;
	}
	if (check_cases(&st) < 0) {
		if (st.line)
			al_error_prefix(st.err, "%s:%d: [%s] %s", filename,
					st.line, st.section, st.key);
		else
			al_error_prefix(st.err, "%s", filename);
		goto out;
	}
	free(st.dir);
	return st.s;
out:
	free(st.dir);
	vsuite_free(st.s);
	return NULL;
}

struct vsuite *vsuite_from_modules(char *const *modules, size_t n,
				   struct al_error *err)
{
	struct vsuite *s = suite_new("command line", err);
	if (!s)
		return NULL;
	s->name = strdup("airlock validate");
	s->cases = calloc(n ? n : 1, sizeof(*s->cases));
	if (!s->name || !s->cases)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		struct vcase *c = &s->cases[i];
		c->exit_code = -1;
		c->verdict = AL_VERDICT_OK;
		c->name = strdup(modules[i]);
		c->module.value = strdup(modules[i]);
		s->n++;
		if (!c->name || !c->module.value)
			goto oom;
	}
	return s;
oom:
	vsuite_free(s);
	al_error_set(err, ENOMEM, "out of memory");
	return NULL;
}
