/*
 * Client connections: NDJSON framing with bounded buffers.
 *
 * Threat: a client that sends without end, sends nothing, or never reads.
 * Input: one line is kept up to max_request bytes; past that the client
 * gets "too_large" and the rest of the line is read and dropped, so the
 * connection stays usable and memory stays bounded. Output: while more
 * than OUT_HIGH bytes wait, we stop reading the client's requests
 * (backpressure); past OUT_MAX the client is dropped. A connection with
 * nothing pending and no traffic for idle_timeout_ms is closed.
 *
 * Descriptors (SCM_RIGHTS, received close-on-exec): at most one per
 * request line, sent with the line's first byte (the client's sendmsg
 * that carries it starts the line and starts no other). The kernel may
 * glue earlier bytes in front of it in one recvmsg but never later
 * messages behind it, so it belongs to the last line that starts in the
 * bytes it came with. More than one, a truncated control message, or a
 * descriptor with no line starting there is an error; the descriptors
 * are closed and the connection stays usable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "supervisor/internal.h"

#define OUT_HIGH (4u << 20)
#define OUT_MAX (256u << 20)
#define READ_CHUNK 65536
#define MAX_FDS 4 /* room to see that a client sent more than one */

static size_t backlog(const struct conn *c)
{
	return c->out_len - c->out_off;
}

static void update_interest(struct supervisor *s, struct conn *c)
{
	uint32_t ev = 0;

	if (c->src.fd < 0)
		return;
	if (!c->read_eof && !c->closing && backlog(c) < OUT_HIGH)
		ev |= EPOLLIN | EPOLLRDHUP;
	if (backlog(c))
		ev |= EPOLLOUT;
	(void)loop_modify(s, &c->src, ev);
}

void conn_close(struct supervisor *s, struct conn *c)
{
	if (c->src.fd < 0)
		return;
	LOG(LOG_DEBUG, NULL, 0, "connection %llu closed",
	    (unsigned long long)c->serial);
	(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->src.fd, NULL);
	al_closep(&c->src.fd);
	al_closep(&c->line_fd);
	runs_forget_conn(s, c);
	results_forget_conn(s, c);
	languages_forget_conn(s, c);
	bounds_conn_closed(s, c); /* its buffers are freed after this turn */
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	/* an event later in this loop turn may still point at it */
	c->prev = NULL;
	c->next = s->dead;
	s->dead = c;
}

/* Nothing more to say and nothing more to hear: close. */
static void maybe_finish(struct supervisor *s, struct conn *c)
{
	if (c->src.fd >= 0 && backlog(c) == 0 &&
	    (c->closing || (c->read_eof && c->pending == 0)))
		conn_close(s, c);
}

static void flush(struct supervisor *s, struct conn *c)
{
	while (backlog(c)) {
		ssize_t n = send(c->src.fd, c->out + c->out_off, backlog(c),
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			conn_close(s, c); /* EPIPE, ECONNRESET: gone */
			return;
		}
		c->out_off += (size_t)n;
		c->last_active_ms = (uint64_t)now_ms();
	}
	if (backlog(c) == 0) {
		free(c->out);
		c->out = NULL;
		c->out_len = c->out_off = c->out_cap = 0;
		bounds_recharge(s, c, c->in_cap);
	}
	update_interest(s, c);
	maybe_finish(s, c);
}

/* A buffer of `cap` bytes must hold `need`: doubled when the budgets
 * allow that, else just `need`; 0 when even that is over budget. */
static size_t grown_cap(struct supervisor *s, const struct conn *c, size_t cap,
			size_t need)
{
	size_t want = cap ? cap : 4096;
	while (want < need)
		want *= 2;
	if (bounds_fits(s, c, want - cap))
		return want;
	return bounds_fits(s, c, need - cap) ? need : 0;
}

void conn_send(struct supervisor *s, struct conn *c, const char *line)
{
	size_t len = strlen(line);

	if (c->src.fd < 0)
		return;
	if (backlog(c) + len + 1 > OUT_MAX) {
		LOG(LOG_WARN, NULL, 0,
		    "connection %llu: client does not read; dropped",
		    (unsigned long long)c->serial);
		conn_close(s, c);
		return;
	}
	if (c->out_off && c->out_len + len + 1 > c->out_cap) {
		memmove(c->out, c->out + c->out_off, backlog(c));
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_len + len + 1 > c->out_cap) {
		size_t cap = grown_cap(s, c, c->out_cap, c->out_len + len + 1);
		if (!cap) {
			LOG(LOG_WARN, NULL, 0,
			    "connection %llu (uid %u): %zu bytes of answers "
			    "unread and the uid's or daemon's buffer budget "
			    "spent; dropped",
			    (unsigned long long)c->serial, c->uid, backlog(c));
			conn_close(s, c);
			return;
		}
		char *grown = realloc(c->out, cap);
		if (!grown) {
			conn_close(s, c);
			return;
		}
		c->out = grown;
		c->out_cap = cap;
		bounds_recharge(s, c, c->in_cap + c->out_cap);
	}
	memcpy(c->out + c->out_len, line, len);
	c->out[c->out_len + len] = '\n';
	c->out_len += len + 1;
	flush(s, c);
}

void conn_send_jb(struct supervisor *s, struct conn *c, struct json_buf *jb)
{
	if (json_buf_failed(jb)) {
		struct json_buf err;
		json_buf_init(&err);
		proto_response_error(&err, NULL, PROTO_E_INTERNAL,
				     "out of memory building the response", 0);
		if (!json_buf_failed(&err))
			conn_send(s, c, err.data);
		json_buf_free(&err);
	} else {
		conn_send(s, c, jb->data);
	}
	json_buf_free(jb);
}

void conn_request_done(struct supervisor *s, struct conn *c)
{
	if (c->pending)
		c->pending--;
	c->last_active_ms = (uint64_t)now_ms();
	maybe_finish(s, c);
}

/* The line being read is dropped to its newline: longer than
 * --max-request (too_large), or more than the buffer budget allows
 * (overloaded). */
static void too_large(struct supervisor *s, struct conn *c,
		      enum proto_error code)
{
	char msg[160];
	struct json_buf jb;

	if (code == PROTO_E_TOO_LARGE)
		snprintf(msg, sizeof(msg), "request line longer than %zu bytes",
			 s->cfg.max_request);
	else
		snprintf(msg, sizeof(msg),
			 "request line dropped: the uid's or "
			 "the daemon's buffer budget is spent "
			 "(--max-buffered-per-uid); try later");
	free(c->in);
	c->in = NULL;
	c->in_len = c->in_cap = 0;
	bounds_recharge(s, c, c->out_cap);
	json_buf_init(&jb);
	proto_response_error(&jb, NULL, code, msg, 0);
	conn_send_jb(s, c, &jb);
	c->discarding = true;
	al_closep(&c->line_fd);
	c->line_fd_error = NULL;
}

static int append(struct supervisor *s, struct conn *c, const char *p, size_t n)
{
	if (c->discarding)
		return 0;
	if (c->in_len + n > s->cfg.max_request) {
		too_large(s, c, PROTO_E_TOO_LARGE);
		return 0;
	}
	if (c->in_len + n + 1 > c->in_cap) {
		size_t cap = grown_cap(s, c, c->in_cap, c->in_len + n + 1);
		if (!cap) {
			too_large(s, c, PROTO_E_OVERLOADED);
			return 0;
		}
		char *grown = realloc(c->in, cap);
		if (!grown)
			return -1;
		c->in = grown;
		c->in_cap = cap;
		bounds_recharge(s, c, c->in_cap + c->out_cap);
	}
	memcpy(c->in + c->in_len, p, n);
	c->in_len += n;
	return 0;
}

static void fd_error(struct supervisor *s, struct conn *c, const char *msg)
{
	struct json_buf jb;

	LOG(LOG_INFO, NULL, 0, "connection %llu: %s",
	    (unsigned long long)c->serial, msg);
	json_buf_init(&jb);
	proto_response_error(&jb, NULL, PROTO_E_BAD_REQUEST, msg, 0);
	conn_send_jb(s, c, &jb);
}

static void line_done(struct supervisor *s, struct conn *c)
{
	if (c->discarding) {
		c->discarding = false;
		al_closep(&c->line_fd);
		c->line_fd_error = NULL;
		return;
	}
	size_t len = c->in_len;
	if (len && c->in[len - 1] == '\r')
		len--;
	c->in_len = 0;
	if (len == 0) { /* blank lines are keep-alives */
		if (c->line_fd >= 0 || c->line_fd_error)
			fd_error(s, c,
				 "file descriptors came with a blank line");
		al_closep(&c->line_fd);
		c->line_fd_error = NULL;
		return;
	}
	c->requests++;
	c->in[len] = '\0';
	ops_dispatch(s, c, c->in, len);
	/* a descriptor the request did not take: ops answered the error */
	al_closep(&c->line_fd);
	c->line_fd_error = NULL;
	/* done with a large buffer: give it back */
	if (c->in_cap > 65536) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
		bounds_recharge(s, c, c->out_cap);
	}
}

struct passed {
	int fds[MAX_FDS];
	size_t n;
	bool truncated; /* MSG_CTRUNC or more than MAX_FDS: some were lost */
};

static void passed_close(struct passed *p)
{
	for (size_t i = 0; i < p->n; i++)
		al_closep(&p->fds[i]);
	p->n = 0;
}

/* recv() that also takes SCM_RIGHTS descriptors, close-on-exec. */
static ssize_t recv_fds(int fd, char *buf, size_t len, struct passed *p)
{
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(sizeof(int) * MAX_FDS)];
	} cbuf;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = cbuf.b,
			      .msg_controllen = sizeof(cbuf.b) };

	p->n = 0;
	p->truncated = false;
	ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return n;
	p->truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm;
	     cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int got;
			memcpy(&got, CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(got));
			if (p->n < MAX_FDS)
				p->fds[p->n++] = got;
			else {
				close(got);
				p->truncated = true;
			}
		}
	}
	return n;
}

/* Where the last line starting in these `n` bytes starts, or -1. */
static ssize_t last_line_start(const struct conn *c, const char *buf, size_t n)
{
	for (size_t i = n - 1; i > 0; i--)
		if (buf[i - 1] == '\n')
			return (ssize_t)i;
	return c->in_len == 0 && !c->discarding ? 0 : -1;
}

/* Descriptors came with these bytes: the offset of the line they go to
 * (-1: none), with the one descriptor or the error in c's fields then. */
static ssize_t passed_place(struct supervisor *s, struct conn *c,
			    const char *buf, size_t n, struct passed *p,
			    int *fd, const char **why)
{
	ssize_t at = last_line_start(c, buf, n);

	*fd = -1;
	*why = NULL;
	if (at < 0) {
		passed_close(p);
		fd_error(s, c,
			 "a file descriptor must come with the first byte of "
			 "its request line; closed");
		return -1;
	}
	if (p->truncated || p->n > 1) {
		passed_close(p);
		*why = "at most one file descriptor per request line; "
		       "all were closed";
	} else {
		*fd = p->fds[0];
		p->n = 0;
	}
	return at;
}

static void on_readable(struct supervisor *s, struct conn *c)
{
	char buf[READ_CHUNK];
	struct passed p;

	while (c->src.fd >= 0 && !c->read_eof && backlog(c) < OUT_HIGH) {
		ssize_t n = recv_fds(c->src.fd, buf, sizeof(buf), &p);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			conn_close(s, c);
			return;
		}
		if (n == 0) {
			passed_close(&p);
			c->read_eof = true;
			break;
		}
		c->last_active_ms = (uint64_t)now_ms();
		int fd = -1;
		const char *why = NULL;
		ssize_t fd_at = -1;
		if (p.n || p.truncated)
			fd_at = passed_place(s, c, buf, (size_t)n, &p, &fd,
					     &why);
		const char *q = buf, *end = buf + n;
		while (q < end && c->src.fd >= 0) {
			if (fd_at >= 0 && q >= buf + fd_at) {
				/* the line starting here takes it */
				al_closep(&c->line_fd);
				c->line_fd = fd;
				c->line_fd_error = why;
				fd = -1;
				fd_at = -1;
			}
			const char *lim = fd_at >= 0 ? buf + fd_at : end;
			const char *nl = memchr(q, '\n', (size_t)(lim - q));
			size_t chunk = (size_t)((nl ? nl : lim) - q);
			if (append(s, c, q, chunk) < 0) {
				al_closep(&fd);
				conn_close(s, c);
				return;
			}
			q += chunk;
			if (nl) {
				q++;
				line_done(s, c);
			}
		}
		al_closep(&fd); /* the connection closed before its line */
	}
	if (c->src.fd < 0)
		return;
	update_interest(s, c);
	maybe_finish(s, c);
}

void conn_handle(struct supervisor *s, struct conn *c, uint32_t events)
{
	if (c->src.fd < 0)
		return;
	if (events & EPOLLOUT)
		flush(s, c);
	if (c->src.fd >= 0 && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)))
		on_readable(s, c);
	/* EPOLLHUP: both directions are gone (a half-close is only
	 * EPOLLRDHUP, and its answers are still written); it is reported
	 * whatever the interest, so it must end the connection */
	if (c->src.fd >= 0 && (events & (EPOLLERR | EPOLLHUP)))
		conn_close(s, c);
}

void conn_sweep_idle(struct supervisor *s)
{
	int64_t now = now_ms();

	while (s->dead) {
		struct conn *c = s->dead;
		s->dead = c->next;
		free(c->in);
		free(c->out);
		free(c);
	}
	for (struct conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		if (c->pending)
			continue;
		if ((int64_t)c->last_active_ms +
			    (int64_t)s->cfg.idle_timeout_ms <=
		    now) {
			LOG(LOG_INFO, NULL, 0,
			    "connection %llu idle for %llu ms: closed",
			    (unsigned long long)c->serial,
			    (unsigned long long)s->cfg.idle_timeout_ms);
			conn_close(s, c);
		}
	}
	/* the idle pass may have added to the dead list */
	while (s->dead) {
		struct conn *c = s->dead;
		s->dead = c->next;
		free(c->in);
		free(c->out);
		free(c);
	}
}
