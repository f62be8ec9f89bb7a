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
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "supervisor/internal.h"

#define OUT_HIGH (4u << 20)
#define OUT_MAX (256u << 20)
#define READ_CHUNK 65536

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
	(void)epoll_modify(s, &c->src, ev);
}

void conn_close(struct supervisor *s, struct conn *c)
{
	if (c->src.fd < 0)
		return;
	LOG(LOG_DEBUG, NULL, 0, "connection %llu closed",
	    (unsigned long long)c->serial);
	(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->src.fd, NULL);
	al_closep(&c->src.fd);
	runs_forget_conn(s, c);
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
	}
	update_interest(s, c);
	maybe_finish(s, c);
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
		size_t cap = c->out_cap ? c->out_cap : 4096;
		while (cap < c->out_len + len + 1)
			cap *= 2;
		char *grown = realloc(c->out, cap);
		if (!grown) {
			conn_close(s, c);
			return;
		}
		c->out = grown;
		c->out_cap = cap;
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

static void too_large(struct supervisor *s, struct conn *c)
{
	char msg[128];
	struct json_buf jb;

	snprintf(msg, sizeof(msg), "request line longer than %zu bytes",
		 s->cfg.max_request);
	json_buf_init(&jb);
	proto_response_error(&jb, NULL, PROTO_E_TOO_LARGE, msg, 0);
	conn_send_jb(s, c, &jb);
	free(c->in);
	c->in = NULL;
	c->in_len = c->in_cap = 0;
	c->discarding = true;
}

static int append(struct supervisor *s, struct conn *c, const char *p,
		  size_t n)
{
	if (c->discarding)
		return 0;
	if (c->in_len + n > s->cfg.max_request) {
		too_large(s, c);
		return 0;
	}
	if (c->in_len + n + 1 > c->in_cap) {
		size_t cap = c->in_cap ? c->in_cap : 4096;
		while (cap < c->in_len + n + 1)
			cap *= 2;
		char *grown = realloc(c->in, cap);
		if (!grown)
			return -1;
		c->in = grown;
		c->in_cap = cap;
	}
	memcpy(c->in + c->in_len, p, n);
	c->in_len += n;
	return 0;
}

static void line_done(struct supervisor *s, struct conn *c)
{
	if (c->discarding) {
		c->discarding = false;
		return;
	}
	size_t len = c->in_len;
	if (len && c->in[len - 1] == '\r')
		len--;
	c->in_len = 0;
	if (len == 0)
		return; /* blank lines are keep-alives */
	c->requests++;
	c->in[len] = '\0';
	ops_dispatch(s, c, c->in, len);
	/* done with a large buffer: give it back */
	if (c->in_cap > 65536) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
}

static void on_readable(struct supervisor *s, struct conn *c)
{
	char buf[READ_CHUNK];

	while (c->src.fd >= 0 && !c->read_eof && backlog(c) < OUT_HIGH) {
		ssize_t n = recv(c->src.fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			conn_close(s, c);
			return;
		}
		if (n == 0) {
			c->read_eof = true;
			break;
		}
		c->last_active_ms = (uint64_t)now_ms();
		const char *p = buf, *end = buf + n;
		while (p < end && c->src.fd >= 0) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t chunk = (size_t)((nl ? nl : end) - p);
			if (append(s, c, p, chunk) < 0) {
				conn_close(s, c);
				return;
			}
			p += chunk;
			if (nl) {
				p++;
				line_done(s, c);
			}
		}
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
