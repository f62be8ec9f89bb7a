/*
 * Talking to airlockd (docs/protocol.md): connect to its socket, send one
 * request line (with a descriptor, for submit by fd), read response lines.
 * Every client command shares this.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "manifest/manifest.h"
#include "supervisor/protocol.h"
#include "tools/cli.h"

#define RESPONSE_MAX (256u << 20)

const char *cli_socket_path(const char *flag)
{
	if (!flag || !*flag)
		flag = getenv("AIRLOCK_SOCKET");
	return flag && *flag ? flag : SUPERVISOR_DEFAULT_SOCKET;
}

const char *cli_state_dir(const char *flag)
{
	if (!flag || !*flag)
		flag = getenv("AIRLOCK_STATE_DIR");
	return flag && *flag ? flag : MANIFEST_DEFAULT_STATE_DIR;
}

#ifndef AIRLOCK_LIBEXEC_DIR
#define AIRLOCK_LIBEXEC_DIR "/usr/local/libexec/airlock"
#endif

static char **saved_argv;

void cli_save_argv(char **argv)
{
	saved_argv = argv;
}

/* This program has no libpq (the static CLI): the same command again in
 * airlock-pg, the CLI linked with it, found beside this program (a build
 * tree), then where make install puts it. Returns only on failure. */
static int exec_with_postgres(struct al_error *err)
{
	char self[PATH_MAX], path[PATH_MAX + 16];
	const char *dirs[2] = { NULL, AIRLOCK_LIBEXEC_DIR };
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		self[n] = '\0';
		dirs[0] = dirname(self);
	}
	fflush(NULL);
	for (size_t i = 0; saved_argv != NULL && i < 2; i++) {
		if (dirs[i] == NULL)
			continue;
		snprintf(path, sizeof(path), "%s/airlock-pg", dirs[i]);
		execv(path, saved_argv);
	}
	return al_error_set(err, ENOTSUP,
			    "DATABASE_URL names a PostgreSQL server, and this "
			    "airlock has no PostgreSQL support; its companion "
			    "airlock-pg (in %s) is missing",
			    AIRLOCK_LIBEXEC_DIR);
}

struct manifest *cli_manifest_open(const char *state_dir, struct al_error *err)
{
	const char *url = getenv("DATABASE_URL");

	/* a sqlite: URL names the state directory's file (airlockd refuses
	 * any other), which --state-dir already says */
	if (!manifest_url_is_server(url))
		url = NULL;
	if (url != NULL && !manifest_url_supported(url)) {
		exec_with_postgres(err);
		return NULL;
	}
	return manifest_open_at(state_dir, url, MANIFEST_READ_ONLY, err);
}

int cli_connect(const char *path, struct al_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sa.sun_path))
		return al_error_set(err, ENAMETOOLONG, "socket path too long");
	memcpy(sa.sun_path, path, strlen(path) + 1);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return al_error_sys(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return al_error_sys(err, errno,
				    "cannot reach airlockd at %s (is it "
				    "running? --socket, AIRLOCK_SOCKET)",
				    path);
	return steal_fd(&fd);
}

int cli_write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The line's first bytes with `pass` attached (SCM_RIGHTS), the rest as
 * usual: the daemon takes a descriptor for the line it starts. */
static int send_with_fd(int fd, const char *p, size_t len, int pass)
{
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(sizeof(int))];
	} cbuf;
	struct iovec iov = { .iov_base = (void *)p, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = cbuf.b,
			      .msg_controllen = sizeof(cbuf.b) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	ssize_t n;

	memset(cbuf.b, 0, sizeof(cbuf.b));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &pass, sizeof(int));
	do
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	return cli_write_all(fd, p + n, len - (size_t)n);
}

int cli_round_trip(const char *socket_path, struct json_buf *req, int pass,
		   char **line, size_t *len, struct al_error *err)
{
	if (json_buf_failed(req))
		return al_error_sys(err, ENOMEM, "request");
	_cleanup_close_ int fd = cli_connect(socket_path, err);
	if (fd < 0)
		return -1;
	if ((pass >= 0 ? send_with_fd(fd, req->data, req->len, pass)
		       : cli_write_all(fd, req->data, req->len)) < 0 ||
	    cli_write_all(fd, "\n", 1) < 0)
		return al_error_sys(err, errno, "send to airlockd");
	return cli_read_line(fd, line, len, err);
}

int cli_read_line(int fd, char **line, size_t *len, struct al_error *err)
{
	size_t cap = 65536, used = 0;
	char *buf = malloc(cap);
	if (!buf)
		return al_error_sys(err, ENOMEM, "response");
	for (;;) {
		if (used + 1 >= cap) {
			if (cap >= RESPONSE_MAX) {
				free(buf);
				return al_error_set(err, E2BIG,
						    "response too large");
			}
			char *grown = realloc(buf, cap * 2);
			if (!grown) {
				free(buf);
				return al_error_sys(err, ENOMEM, "response");
			}
			buf = grown;
			cap *= 2;
		}
		ssize_t n = recv(fd, buf + used, cap - 1 - used, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return al_error_sys(err, n < 0 ? errno : 0,
					    "airlockd closed the connection "
					    "without an answer");
		}
		char *nl = memchr(buf + used, '\n', (size_t)n);
		used += (size_t)n;
		if (nl) {
			*nl = '\0';
			*line = buf;
			*len = (size_t)(nl - buf);
			return 0;
		}
	}
}

static const struct json_limits response_limits = { .max_nodes = 1u << 22,
						    .max_depth = 16 };

int cli_response_parse(struct cli_response *r, char *line, size_t len,
		       struct al_error *err)
{
	memset(r, 0, sizeof(*r));
	r->line = line;
	r->len = len;
	if (!(r->doc = json_parse(line, len, &response_limits, err)))
		return -1;
	r->root = json_root(r->doc);
	const struct json_node *ok = json_get(r->doc, r->root, "ok");
	r->ok = ok && ok->type == JSON_BOOL && ok->i;
	return 0;
}

void cli_response_free(struct cli_response *r)
{
	json_doc_free(r->doc);
	free(r->line);
	memset(r, 0, sizeof(*r));
}

int cli_call(const char *command, const char *socket, struct json_buf *req,
	     int pass, bool print_json, struct cli_response *r)
{
	struct al_error err = { 0 };
	char *line = NULL;
	size_t len = 0;

	memset(r, 0, sizeof(*r));
	int rc = cli_round_trip(socket, req, pass, &line, &len, &err);
	json_buf_free(req);
	if (rc < 0 || cli_response_parse(r, line, len, &err) < 0) {
		fprintf(stderr, "airlock %s: %s\n", command, err.msg);
		cli_response_free(r);
		return -1;
	}
	if (print_json)
		printf("%s\n", r->line);
	return 0;
}

void cli_print_error(const char *command, const struct cli_response *r)
{
	const struct json_node *e = json_get(r->doc, r->root, "error");
	fprintf(stderr, "airlock %s: %s: %s\n", command,
		json_get_str(r->doc, e, "code", "error"),
		json_get_str(r->doc, e, "message", "(no message)"));
}

int64_t cli_int(const struct json_doc *doc, const struct json_node *obj,
		const char *key)
{
	const struct json_node *n = json_get(doc, obj, key);
	return n && n->type == JSON_INT ? n->i : 0;
}

bool cli_bool(const struct json_doc *doc, const struct json_node *obj,
	      const char *key)
{
	const struct json_node *n = json_get(doc, obj, key);
	return n && n->type == JSON_BOOL && n->i;
}

int cli_stream_next(struct cli_stream *st, char **line, size_t *len,
		    struct al_error *err)
{
	for (;;) {
		char *nl = st->len ? memchr(st->buf, '\n', st->len) : NULL;
		if (nl) {
			size_t n = (size_t)(nl - st->buf);
			if (!(*line = malloc(n + 1)))
				return al_error_sys(err, ENOMEM, "events");
			memcpy(*line, st->buf, n);
			(*line)[n] = '\0';
			*len = n;
			memmove(st->buf, nl + 1, st->len - n - 1);
			st->len -= n + 1;
			return 0;
		}
		if (st->len == sizeof(st->buf))
			return al_error_set(err, E2BIG,
					    "a line longer than "
					    "%zu bytes",
					    sizeof(st->buf));
		ssize_t got = recv(st->fd, st->buf + st->len,
				   sizeof(st->buf) - st->len, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return al_error_sys(err, got < 0 ? errno : 0,
					    "airlockd closed the connection");
		st->len += (size_t)got;
	}
}
