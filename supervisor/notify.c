/*
 * sd_notify without libsystemd: under systemd (Type=notify) the service
 * manager names a datagram socket in NOTIFY_SOCKET, a path or, with a
 * leading '@', an abstract name; a state change is one datagram of
 * "KEY=VALUE" lines (READY=1, STOPPING=1).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "supervisor/internal.h"

int notify_systemd(const char *state, struct al_error *err)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t len;

	if (!path || !*path)
		return 0;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len < 2 ||
	    len >= sizeof(addr.sun_path))
		return al_error_set(err, EINVAL,
				    "NOTIFY_SOCKET: \"%s\": expected an "
				    "absolute path or an @abstract name",
				    path);
	memcpy(addr.sun_path, path, len);
	if (path[0] == '@')
		addr.sun_path[0] = '\0'; /* abstract: no trailing NUL counted */
	socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				     len + (path[0] == '/'));

	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return al_error_sys(err, errno, "NOTIFY_SOCKET: socket");
	size_t n = strlen(state);
	ssize_t sent = sendto(fd, state, n, MSG_NOSIGNAL,
			      (struct sockaddr *)&addr, alen);
	if (sent < 0)
		return al_error_sys(err, errno, "NOTIFY_SOCKET %s", path);
	if ((size_t)sent != n)
		return al_error_set(err, EIO, "NOTIFY_SOCKET %s: short send",
				    path);
	return 1;
}
