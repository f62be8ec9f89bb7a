/*
 * The listening socket: created 0660 (optionally group-owned by the
 * clients' group), a stale file from a crashed daemon replaced, a live one
 * refused; peers identified by SO_PEERCRED and SO_PEERGROUPS only.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "supervisor/internal.h"

static int socket_address(const char *path, struct sockaddr_un *sa,
			  struct al_error *err)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return al_error_set(err, ENAMETOOLONG,
				    "socket path %s is longer than %zu bytes",
				    path, sizeof(sa->sun_path) - 1);
	memcpy(sa->sun_path, path, strlen(path) + 1);
	return 0;
}

/* A socket file already there: another daemon answering (an error), or a
 * leftover of one that died (removed). Anything but a socket is left
 * alone: we never delete a file we did not make. */
static int replace_stale(const char *path, const struct sockaddr_un *sa,
			 struct al_error *err)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT
			       ? 0
			       : al_error_sys(err, errno, "stat %s", path);
	if (!S_ISSOCK(st.st_mode))
		return al_error_set(err, EEXIST,
				    "%s exists and is not a socket; remove it "
				    "or choose another --socket",
				    path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return al_error_sys(err, errno, "socket");
	int rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	int saved = errno;
	if (rc == 0)
		return al_error_set(err, EADDRINUSE,
				    "another airlockd is answering on %s",
				    path);
	if (saved != ECONNREFUSED)
		return al_error_sys(err, saved, "probe of existing socket %s",
				    path);
	if (unlink(path) < 0 && errno != ENOENT)
		return al_error_sys(err, errno, "remove stale socket %s", path);
	LOG(LOG_INFO, NULL, 0, "replaced the stale socket %s", path);
	return 0;
}

static int make_parent(const char *path, struct al_error *err)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return al_error_sys(err, errno, "create %s", dir);
	return 0;
}

/* The system's maximum (net.core.somaxconn), as servers and systemd
 * sockets use: a fixed 128 made a burst of non-blocking connects fail
 * with EAGAIN while the loop was busy with a run. */
int server_backlog(void)
{
	FILE *f = fopen("/proc/sys/net/core/somaxconn", "re");
	int n = 0;

	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = 0;
		fclose(f);
	}
	return n > 0 ? n : SOMAXCONN;
}

int server_listen(struct supervisor *s, struct al_error *err)
{
	struct sockaddr_un sa;
	const char *path = s->cfg.socket_path;

	if (socket_address(path, &sa, err) < 0 || make_parent(path, err) < 0 ||
	    replace_stale(path, &sa, err) < 0)
		return -1;
	s->listen.kind = SRC_LISTEN;
	s->listen.fd = socket(AF_UNIX,
			      SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->listen.fd < 0)
		return al_error_sys(err, errno, "socket");
	/* created 0660 from the start: no window with a wider mode */
	mode_t old = umask(0117);
	int rc = bind(s->listen.fd, (struct sockaddr *)&sa, sizeof(sa));
	int saved = errno;
	umask(old);
	if (rc < 0)
		return al_error_sys(err, saved, "bind %s", path);
	s->socket_bound = true;
	struct stat st;
	if (lstat(path, &st) < 0)
		return al_error_sys(err, errno, "stat %s", path);
	s->socket_dev = st.st_dev; /* health.c: still our file? */
	s->socket_ino = st.st_ino;
	if (s->cfg.socket_group) {
		struct group *g = getgrnam(s->cfg.socket_group);
		if (!g)
			return al_error_set(err, ENOENT,
					    "socket group %s: no such group",
					    s->cfg.socket_group);
		if (chown(path, 0, g->gr_gid) < 0)
			return al_error_sys(err, errno, "chown %s", path);
	}
	if (listen(s->listen.fd, server_backlog()) < 0)
		return al_error_sys(err, errno, "listen %s", path);
	if (loop_watch(s, &s->listen, EPOLLIN) < 0)
		return al_error_sys(err, errno, "epoll_ctl");
	return 0;
}

void server_unlink(struct supervisor *s)
{
	if (s->socket_bound && unlink(s->cfg.socket_path) < 0 &&
	    errno != ENOENT)
		LOG(LOG_WARN, NULL, 0, "remove %s: %s", s->cfg.socket_path,
		    strerror(errno));
	s->socket_bound = false;
}

static bool in_gids(const gid_t *list, size_t n, gid_t gid)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == gid)
			return true;
	return false;
}

/* The role the kernel-reported identity earns: uid 0 and members of an
 * admin group are admins, listed uids and groups are clients. */
static enum proto_role peer_role(const struct supervisor *s,
				 const struct ucred *cred, const gid_t *groups,
				 size_t ngroups)
{
	const struct supervisor_config *cfg = &s->cfg;

	if (cred->uid == 0)
		return PROTO_ROLE_ADMIN;
	for (size_t i = 0; i < ngroups; i++)
		if (in_gids(cfg->admin_gids, cfg->n_admin_gids, groups[i]))
			return PROTO_ROLE_ADMIN;
	for (size_t i = 0; i < cfg->n_client_uids; i++)
		if (cfg->client_uids[i] == cred->uid)
			return PROTO_ROLE_CLIENT;
	for (size_t i = 0; i < ngroups; i++)
		if (in_gids(cfg->client_gids, cfg->n_client_gids, groups[i]))
			return PROTO_ROLE_CLIENT;
	return PROTO_ROLE_NONE;
}

/* Refuse a peer with one error line, written without waiting. */
static void refuse(int fd, enum proto_error code, const char *msg)
{
	struct json_buf jb;

	json_buf_init(&jb);
	proto_response_error(&jb, NULL, code, msg, 0);
	if (!json_buf_failed(&jb)) {
		char line[1024];
		int n = snprintf(line, sizeof(line), "%s\n", jb.data);
		if (n > 0 && (size_t)n < sizeof(line))
			(void)!send(fd, line, (size_t)n,
				    MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	json_buf_free(&jb);
	close(fd);
}

void server_accept(struct supervisor *s)
{
	for (;;) {
		int fd = accept4(s->listen.fd, NULL, NULL,
				 SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				LOG(LOG_WARN, NULL, 0, "accept: %s",
				    strerror(errno));
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;
		}
		struct ucred cred;
		socklen_t len = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
			close(fd);
			continue;
		}
		/* the peer's groups as the kernel saw them at connect():
		 * its role, and the modules it owns through a group */
		gid_t groups[256];
		socklen_t glen = sizeof(groups) - sizeof(gid_t);
		size_t ngroups = 0;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) ==
		    0)
			ngroups = glen / sizeof(gid_t);
		groups[ngroups++] = cred.gid;
		enum proto_role role = peer_role(s, &cred, groups, ngroups);
		if (role == PROTO_ROLE_NONE) {
			LOG(LOG_WARN, NULL, 0, "refused uid %u gid %u pid %d",
			    cred.uid, cred.gid, cred.pid);
			refuse(fd, PROTO_E_UNAUTHORIZED,
			       "this uid is not allowed to use airlockd");
			continue;
		}
		const char *full = bounds_accept(s, cred.uid, role);
		if (full) {
			LOG(LOG_WARN, NULL, 0, "refused uid %u: %s", cred.uid,
			    full);
			refuse(fd, PROTO_E_OVERLOADED, full);
			continue;
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->src.kind = SRC_CONN;
		c->src.fd = fd;
		c->line_fd = -1;
		c->serial = ++s->conn_serial;
		c->uid = cred.uid;
		c->gid = cred.gid;
		c->pid = cred.pid;
		c->role = role;
		for (size_t i = 0; i < ngroups && i < MANIFEST_VIEWER_GROUPS;
		     i++)
			c->groups[c->ngroups++] = groups[i];
		c->last_active_ms = (uint64_t)now_ms();
		if (loop_watch(s, &c->src, EPOLLIN | EPOLLRDHUP) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
		bounds_conn_opened(s, c->uid);
		LOG(LOG_DEBUG, NULL, 0, "connection %llu: uid %u pid %d (%s)",
		    (unsigned long long)c->serial, cred.uid, cred.pid,
		    role == PROTO_ROLE_ADMIN ? "admin" : "client");
	}
}
