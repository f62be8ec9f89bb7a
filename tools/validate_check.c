/*
 * One run's result against one case's expectations. Every unmet
 * expectation gives one message that names it and says what was expected
 * and what happened, with module output quoted so that it cannot reach a
 * terminal or a report raw.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/validate.h"

/* How much of the module's output a message quotes. */
#define QUOTE_MAX 120

void vdescribe_result(const struct sandbox_result *r, char *buf, size_t len)
{
	const char *v = al_verdict_name(r->verdict);
	const char *sig = r->signal ? sigabbrev_np(r->signal) : NULL;
	switch (r->verdict) {
	case AL_VERDICT_EXIT_NONZERO:
		snprintf(buf, len, "%s (exit code %d)", v, r->exit_code);
		break;
	case AL_VERDICT_CRASHED:
		if (sig)
			snprintf(buf, len, "%s (SIG%s)", v, sig);
		else
			snprintf(buf, len, "%s (signal %d)", v, r->signal);
		break;
	case AL_VERDICT_SECCOMP_VIOLATION:
		snprintf(buf, len, "%s (%s)", v,
			 r->syscall[0] ? r->syscall : "unknown syscall");
		break;
	case AL_VERDICT_SETUP_ERROR:
		snprintf(buf, len, "%s (%s)", v, r->error);
		break;
	default: snprintf(buf, len, "%s", v); break;
	}
}

static int add(struct vfailures *f, struct vbuf *b)
{
	vbuf_append(b, "", 1); /* the NUL */
	char **l = b->failed ? NULL : realloc(f->msg, (f->n + 1) * sizeof(*l));
	if (!l) {
		vbuf_free(b);
		return -1;
	}
	f->msg = l;
	l[f->n++] = b->data;
	return 0;
}

static int check_verdict(const struct vcase *c, const struct sandbox_result *r,
			 struct vfailures *f)
{
	int want = c->verdict;
	if (want < 0 && c->exit_code < 0)
		want = AL_VERDICT_OK;
	if (want < 0 || (int)r->verdict == want)
		return 0;
	char got[AL_ERROR_MAX + 64];
	vdescribe_result(r, got, sizeof(got));
	struct vbuf b = { 0 };
	vbuf_printf(&b, "expected verdict %s, got ", al_verdict_name(want));
	vbuf_escape(&b, got, strlen(got), 2 * QUOTE_MAX);
	return add(f, &b);
}

static int check_exit_code(const struct vcase *c,
			   const struct sandbox_result *r, struct vfailures *f)
{
	if (c->exit_code < 0 || r->exit_code == c->exit_code)
		return 0;
	struct vbuf b = { 0 };
	vbuf_printf(&b, "expected exit_code %d, got ", c->exit_code);
	if (r->exit_code >= 0) {
		vbuf_printf(&b, "%d", r->exit_code);
	} else {
		char got[AL_ERROR_MAX + 64];
		vdescribe_result(r, got, sizeof(got));
		vbuf_puts(&b, "no exit code: ");
		vbuf_escape(&b, got, strlen(got), 2 * QUOTE_MAX);
	}
	return add(f, &b);
}

static int check_stream(const char *name, const struct vstream_expect *x,
			const char *data, size_t len, bool truncated,
			struct vfailures *f)
{
	if (!data) {
		data = "";
		len = 0;
	}
	if (x->has_exact &&
	    (len != x->exact.len || memcmp(data, x->exact.text, len) != 0)) {
		struct vbuf b = { 0 };
		vbuf_printf(&b, "expected %s ", name);
		vbuf_quote(&b, x->exact.text, x->exact.len, QUOTE_MAX);
		vbuf_puts(&b, ", got ");
		vbuf_quote(&b, data, len, QUOTE_MAX);
		if (truncated)
			vbuf_puts(&b, " (truncated at the capture limit)");
		if (add(f, &b) < 0)
			return -1;
	}
	for (size_t i = 0; i < x->ncontains; i++) {
		const struct vpattern *p = &x->contains[i];
		if (memmem(data, len, p->text, p->len))
			continue;
		struct vbuf b = { 0 };
		vbuf_printf(&b, "expected %s to contain ", name);
		vbuf_quote(&b, p->text, p->len, QUOTE_MAX);
		vbuf_puts(&b, ", got ");
		vbuf_quote(&b, data, len, QUOTE_MAX);
		if (add(f, &b) < 0)
			return -1;
	}
	for (size_t i = 0; i < x->nregex; i++) {
		/* regexec() stops at a NUL: the output is a C string here */
		if (regexec(&x->regex[i].re, data, 0, NULL, 0) == 0)
			continue;
		struct vbuf b = { 0 };
		vbuf_printf(&b, "expected %s to match /", name);
		vbuf_escape(&b, x->regex[i].source, strlen(x->regex[i].source),
			    QUOTE_MAX);
		vbuf_puts(&b, "/, got ");
		vbuf_quote(&b, data, len, QUOTE_MAX);
		if (add(f, &b) < 0)
			return -1;
	}
	return 0;
}

static int check_limits(const struct vcase *c, const struct sandbox_result *r,
			struct vfailures *f)
{
	if (c->has_max_wall && r->wall_ms * 1000.0 > (double)c->max_wall_us) {
		struct vbuf b = { 0 };
		vbuf_printf(&b, "expected max_wall %s, took %.1f ms",
			    c->max_wall.value, r->wall_ms);
		if (add(f, &b) < 0)
			return -1;
	}
	if (c->has_max_memory && r->peak_memory_bytes > c->max_memory_bytes) {
		char peak[32];
		format_size(r->peak_memory_bytes, peak, sizeof(peak));
		struct vbuf b = { 0 };
		vbuf_printf(&b, "expected max_memory %s, peak %s (%llu bytes)",
			    c->max_memory.value, peak,
			    (unsigned long long)r->peak_memory_bytes);
		if (add(f, &b) < 0)
			return -1;
	}
	return 0;
}

int vcheck(const struct vcase *c, const struct sandbox_result *r,
	   struct vfailures *f)
{
	if (check_verdict(c, r, f) < 0 || check_exit_code(c, r, f) < 0 ||
	    check_stream("stdout", &c->out, r->stdout_data, r->stdout_len,
			 r->stdout_truncated, f) < 0 ||
	    check_stream("stderr", &c->err, r->stderr_data, r->stderr_len,
			 r->stderr_truncated, f) < 0 ||
	    check_limits(c, r, f) < 0)
		return -1;
	return 0;
}

void vfailures_free(struct vfailures *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->msg[i]);
	free(f->msg);
	f->msg = NULL;
	f->n = 0;
}
