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
 *   - only the open file description the client passed is read, never a
 *     reopened path: reopening /proc/self/fd/N opens the object again
 *     with the daemon's (root's) rights, so an O_PATH descriptor of a
 *     root-only FIFO or file would let a client read what it cannot
 *     (a confused deputy). O_PATH and write-only descriptors are refused;
 *   - a pipe or FIFO is read with preadv2(RWF_NOWAIT): non-blocking per
 *     call, whatever O_NONBLOCK the client sets on the description it
 *     shares with us. It is read to end of file, which must already be
 *     there: the module is written and the write end closed before the
 *     request is sent; otherwise the request is refused (EAGAIN), never
 *     waited for;
 *   - anything else is refused;
 *   - at most `max` bytes either way (E2BIG past that).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "supervisor/internal.h"

#define FUSE_SUPER_MAGIC 0x65735546

/*
 * One non-blocking read of a pipe the client shares with us. Kernels
 * before 6.x refuse RWF_NOWAIT on pipes (EOPNOTSUPP); there, splice with
 * SPLICE_F_NONBLOCK moves what is there into a pipe of our own (made on
 * first use, non-blocking), which is then read: neither step can wait on
 * the client, whatever it does to the description meanwhile.
 */
static ssize_t read_pipe_nowait(int fd, void *buf, size_t len, int relay[2])
{
	struct iovec iov = { buf, len };
	ssize_t n = preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
	if (n >= 0 || errno != EOPNOTSUPP)
		return n;
	if (relay[0] < 0 && pipe2(relay, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	n = splice(fd, NULL, relay[1], NULL, len < 65536 ? len : 65536,
		   SPLICE_F_NONBLOCK);
	if (n <= 0)
		return n;
	return read(relay[0], buf, (size_t)n);
}

/* Read `fd` to end of file into a buffer of at most max + 1 bytes
 * (positional: pread from 0). 0, or -1 with errno. Caller frees *out. */
static int read_bounded(int fd, bool positional, size_t first_cap, size_t max,
			unsigned char **out, size_t *len)
{
	size_t cap = first_cap < max ? first_cap + 1 : max + 1, used = 0;
	unsigned char *buf = malloc(cap);
	int relay[2] = { -1, -1 };
	int rc = -1, saved = 0;

	if (!buf)
		return -1;
	for (;;) {
		if (used == cap) {
			saved = E2BIG;
			if (cap > max)
				goto out;
			size_t grown_cap = cap * 2 > max + 1 ? max + 1
							     : cap * 2;
			unsigned char *grown = realloc(buf, grown_cap);
			saved = ENOMEM;
			if (!grown)
				goto out;
			buf = grown;
			cap = grown_cap;
		}
		ssize_t n = positional ? pread(fd, buf + used, cap - used,
					       (off_t)used)
				       : read_pipe_nowait(fd, buf + used,
							  cap - used, relay);
		if (n < 0 && errno == EINTR)
			continue;
		saved = errno;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		used += (size_t)n;
	}
	saved = E2BIG;
	if (used > max)
		goto out;
	*out = buf;
	buf = NULL;
	*len = used;
	rc = 0;
out:
	free(buf);
	al_closep(&relay[0]);
	al_closep(&relay[1]);
	if (rc < 0)
		errno = saved;
	return rc;
}

static int too_large(struct al_error *err, size_t max)
{
	return al_error_set(err, E2BIG,
			    "content_fd: the module is larger "
			    "than %zu bytes",
			    max);
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
		return errno == E2BIG
			       ? too_large(err, max)
			       : al_error_sys(err, errno,
					      "content_fd: cannot read "
					      "it (opened for reading?)");
	return 0;
}

static int from_pipe(int fd, size_t max, unsigned char **out, size_t *len,
		     struct al_error *err)
{
	if (read_bounded(fd, false, 65536, max, out, len) == 0)
		return 0;
	if (errno == E2BIG)
		return too_large(err, max);
	if (errno == EOPNOTSUPP)
		return al_error_set(err, EOPNOTSUPP,
				    "content_fd: this kernel cannot read a "
				    "pipe without blocking (RWF_NOWAIT): send "
				    "a regular file or the content instead");
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
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return al_error_sys(err, errno, "content_fd: F_GETFL");
	if (fl & O_PATH)
		return al_error_set(err, EBADF,
				    "content_fd: an O_PATH descriptor is "
				    "refused: open the module for reading and "
				    "pass that descriptor");
	if ((fl & O_ACCMODE) == O_WRONLY)
		return al_error_set(err, EBADF,
				    "content_fd: the descriptor is open for "
				    "writing only: pass one open for reading");
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
