/*
 * Module content passed as a file descriptor (submit with "content_fd",
 * the descriptor sent with SCM_RIGHTS; docs/protocol.md).
 *
 * Threat: the descriptor is whatever the client chose: a directory, a
 * socket, a device, a pipe whose writer never writes or never closes, a
 * FUSE file whose server never answers, a file larger than memory. Any
 * read that blocks would stop the whole daemon, so:
 *   - a regular file is read with pread() from offset 0 (the client's
 *     offset is left alone); a file on FUSE is refused, since its reads
 *     wait on a process the client may control;
 *   - a pipe or FIFO is reopened through /proc/self/fd with O_NONBLOCK: a
 *     new open file description, so the client cannot make our reads
 *     block by clearing O_NONBLOCK on the one it shares with us. It is
 *     read to end of file, which must already be there: the module is
 *     written and the write end closed before the request is sent;
 *     otherwise the request is refused (EAGAIN), never waited for;
 *   - anything else is refused;
 *   - at most `max` bytes either way (E2BIG past that).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "supervisor/internal.h"

#define FUSE_SUPER_MAGIC 0x65735546

/* Read `fd` to end of file into a buffer of at most max + 1 bytes
 * (positional: pread from 0). 0, or -1 with errno. Caller frees *out. */
static int read_bounded(int fd, bool positional, size_t first_cap, size_t max,
			unsigned char **out, size_t *len)
{
	size_t cap = first_cap < max ? first_cap + 1 : max + 1, used = 0;
	unsigned char *buf = malloc(cap);

	if (!buf)
		return -1;
	for (;;) {
		if (used == cap) {
			if (cap > max) {
				free(buf);
				errno = E2BIG;
				return -1;
			}
			size_t grown_cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			unsigned char *grown = realloc(buf, grown_cap);
			if (!grown) {
				free(buf);
				return -1;
			}
			buf = grown;
			cap = grown_cap;
		}
		ssize_t n = positional ? pread(fd, buf + used, cap - used,
					       (off_t)used)
				       : read(fd, buf + used, cap - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;
			free(buf);
			errno = saved;
			return -1;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	if (used > max) {
		free(buf);
		errno = E2BIG;
		return -1;
	}
	*out = buf;
	*len = used;
	return 0;
}

static int too_large(struct al_error *err, size_t max)
{
	return al_error_set(err, E2BIG, "content_fd: the module is larger "
					"than %zu bytes", max);
}

static int from_file(int fd, const struct stat *st, size_t max,
		     unsigned char **out, size_t *len, struct al_error *err)
{
	struct statfs sfs;

	if (fstatfs(fd, &sfs) < 0)
		return al_error_sys(err, errno, "content_fd: fstatfs");
	if (sfs.f_type == FUSE_SUPER_MAGIC)
		return al_error_set(err, EINVAL,
				    "content_fd: a file on FUSE is refused "
				    "(its reads could block the daemon); "
				    "send its content instead");
	if ((uint64_t)st->st_size > max)
		return too_large(err, max);
	if (read_bounded(fd, true, (size_t)st->st_size, max, out, len) < 0)
		return errno == E2BIG ? too_large(err, max)
				      : al_error_sys(err, errno,
						     "content_fd: cannot read "
						     "it (opened for reading?)");
	return 0;
}

static int from_pipe(int fd, size_t max, unsigned char **out, size_t *len,
		     struct al_error *err)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	_cleanup_close_ int own = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (own < 0)
		return al_error_sys(err, errno, "content_fd: reopen the pipe");
	if (read_bounded(own, false, 65536, max, out, len) == 0)
		return 0;
	if (errno == E2BIG)
		return too_large(err, max);
	if (errno == EAGAIN)
		return al_error_set(err, EAGAIN,
				    "content_fd: the pipe is not finished: "
				    "write the whole module and close its "
				    "write end before sending the request");
	return al_error_sys(err, errno, "content_fd: read the pipe");
}

int content_from_fd(int fd, size_t max, unsigned char **out, size_t *len,
		    struct al_error *err)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return al_error_sys(err, errno, "content_fd: fstat");
	if (S_ISREG(st.st_mode))
		return from_file(fd, &st, max, out, len, err);
	if (S_ISFIFO(st.st_mode))
		return from_pipe(fd, max, out, len, err);
	return al_error_set(err, EINVAL,
			    "content_fd: the descriptor is a %s, not a regular "
			    "file or a pipe",
			    S_ISDIR(st.st_mode)    ? "directory"
			    : S_ISSOCK(st.st_mode) ? "socket"
			    : S_ISCHR(st.st_mode)  ? "character device"
			    : S_ISBLK(st.st_mode)  ? "block device"
						   : "special file");
}
