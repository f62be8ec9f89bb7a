/*
 * The error object: a bounded message plus the errno that caused it.
 *
 * Every function here accepts err == NULL (the caller does not care) and
 * leaves errno as it found it, so `return al_error_set(err, errno, ...)`
 * and cleanup handlers that run afterwards never disturb each other.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"

/*
 * Format into a scratch buffer first: callers may pass err->msg itself as
 * an argument ("%s", err->msg), and vsnprintf must not read what it writes.
 * vsnprintf always NUL-terminates and truncates at AL_ERROR_MAX - 1.
 */
static void format_into(char out[AL_ERROR_MAX], const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void format_into(char out[AL_ERROR_MAX], const char *fmt, va_list ap)
{
	if (vsnprintf(out, AL_ERROR_MAX, fmt, ap) < 0)
		out[0] = '\0'; /* only on an invalid format: keep it empty */
}

/* Append `tail` to the NUL-terminated `buf`, truncating at AL_ERROR_MAX. */
static void append(char buf[AL_ERROR_MAX], const char *tail)
{
	size_t used = strnlen(buf, AL_ERROR_MAX - 1);
	size_t room = AL_ERROR_MAX - 1 - used;
	size_t n = strlen(tail);

	if (n > room)
		n = room;
	memcpy(buf + used, tail, n);
	buf[used + n] = '\0';
}

int al_error_set(struct al_error *err, int errnum, const char *fmt, ...)
{
	int saved = errno;
	char tmp[AL_ERROR_MAX];
	va_list ap;

	if (err != NULL) {
		va_start(ap, fmt);
		format_into(tmp, fmt, ap);
		va_end(ap);
		err->errnum = errnum;
		memcpy(err->msg, tmp, strlen(tmp) + 1);
	}
	errno = saved;
	return -1;
}

int al_error_sys(struct al_error *err, int errnum, const char *fmt, ...)
{
	int saved = errno;
	char tmp[AL_ERROR_MAX];
	char ebuf[256];
	va_list ap;

	if (err != NULL) {
		va_start(ap, fmt);
		format_into(tmp, fmt, ap);
		va_end(ap);
		if (errnum != 0) {
			/* GNU strerror_r: thread-safe, returns the text. */
			append(tmp, ": ");
			append(tmp, strerror_r(errnum, ebuf, sizeof(ebuf)));
		}
		err->errnum = errnum;
		memcpy(err->msg, tmp, strlen(tmp) + 1);
	}
	errno = saved;
	return -1;
}

int al_error_prefix(struct al_error *err, const char *fmt, ...)
{
	int saved = errno;
	char tmp[AL_ERROR_MAX];
	va_list ap;

	if (err != NULL) {
		va_start(ap, fmt);
		format_into(tmp, fmt, ap);
		va_end(ap);
		/* An empty old message would leave a dangling ": ". */
		if (err->msg[0] != '\0') {
			append(tmp, ": ");
			append(tmp, err->msg);
		}
		memcpy(err->msg, tmp, strlen(tmp) + 1);
	}
	errno = saved;
	return -1;
}

void al_error_clear(struct al_error *err)
{
	if (err == NULL)
		return;
	err->errnum = 0;
	err->msg[0] = '\0';
}

/* For _cleanup_free_: `p` points at the pointer variable. */
void al_freep(void *p)
{
	void **pp = p;

	free(*pp);
	*pp = NULL;
}

/* For _cleanup_close_: runs on error paths, so it must not clobber errno. */
void al_closep(int *fd)
{
	int saved = errno;

	if (*fd >= 0) {
		/* Linux releases the descriptor even when close() fails, and
		 * there is nobody left to report to: ignore the result. */
		(void)close(*fd);
		*fd = -1;
	}
	errno = saved;
}
