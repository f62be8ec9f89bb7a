/*
 * The few D-Bus messages the systemd cgroup driver needs, on the wire.
 *
 * Why not libsystemd's sd-bus: Debian ships libsystemd as a shared library
 * only, and the airlock CLI is a static PIE (the Makefile says why: no
 * dynamic loader on every run). The driver needs one method call
 * (StartTransientUnit), a few bus chores (Hello, AddMatch, Subscribe) and
 * one signal (JobRemoved), all with basic types, so this file writes and
 * reads exactly those: little-endian messages, header fields of the basic
 * types, bodies read with a bounded cursor. Everything read is length- and
 * NUL-checked before use; a message this code does not understand is an
 * error, never a guess.
 *
 * The codec (dbus_buf_*, dbus_msg_*, dbus_rd_*) touches no file
 * descriptor, so unit tests feed it bytes; the transport (dbus_conn_*)
 * speaks to a real bus or to systemd's private socket.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/internal.h"

/* ---------------------------------------------------------------- writing */

void dbus_buf_free(struct dbus_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static void store_le32(unsigned char *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = v >> 24;
}

static void buf_put(struct dbus_buf *b, const void *p, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n > DBUS_MAX_MESSAGE) {
		b->failed = true;
		return;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		unsigned char *d = realloc(b->data, cap);
		if (!d) {
			b->failed = true;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void dbus_buf_align(struct dbus_buf *b, size_t to)
{
	static const unsigned char zero[8];
	size_t pad = (to - b->len % to) % to;
	buf_put(b, zero, pad);
}

void dbus_buf_u8(struct dbus_buf *b, uint8_t v)
{
	buf_put(b, &v, 1);
}

void dbus_buf_u32(struct dbus_buf *b, uint32_t v)
{
	dbus_buf_align(b, 4);
	unsigned char le[4];
	store_le32(le, v);
	buf_put(b, le, 4);
}

void dbus_buf_string(struct dbus_buf *b, const char *s)
{
	size_t n = strlen(s);
	if (n > UINT32_MAX / 2) {
		b->failed = true;
		return;
	}
	dbus_buf_u32(b, (uint32_t)n);
	buf_put(b, s, n + 1);
}

void dbus_buf_signature(struct dbus_buf *b, const char *sig)
{
	size_t n = strlen(sig);
	if (n > 255) {
		b->failed = true;
		return;
	}
	dbus_buf_u8(b, (uint8_t)n);
	buf_put(b, sig, n + 1);
}

/* Arrays carry their length in bytes, counted from the first element
 * (after the padding to the element's alignment). */
struct dbus_array dbus_buf_array_open(struct dbus_buf *b, size_t elem_align)
{
	struct dbus_array a;
	dbus_buf_u32(b, 0);
	a.len_at = b->len - 4;
	dbus_buf_align(b, elem_align);
	a.start = b->len;
	return a;
}

void dbus_buf_array_close(struct dbus_buf *b, struct dbus_array a)
{
	if (b->failed)
		return;
	store_le32(b->data + a.len_at, (uint32_t)(b->len - a.start));
}

static void header_field(struct dbus_buf *b, uint8_t code, const char *type,
			 const char *value)
{
	dbus_buf_align(b, 8);
	dbus_buf_u8(b, code);
	dbus_buf_signature(b, type);
	if (type[0] == 'g')
		dbus_buf_signature(b, value);
	else
		dbus_buf_string(b, value);
}

size_t dbus_msg_begin(struct dbus_buf *b, uint32_t serial,
		      const struct dbus_call *c)
{
	/* endianness, type, flags, protocol version; body length later */
	const unsigned char fixed[4] = { 'l', DBUS_METHOD_CALL, 0, 1 };
	b->len = 0;
	b->failed = false;
	buf_put(b, fixed, 4);
	dbus_buf_u32(b, 0);
	dbus_buf_u32(b, serial);
	struct dbus_array fields = dbus_buf_array_open(b, 8);
	header_field(b, DBUS_FIELD_PATH, "o", c->path);
	if (c->interface)
		header_field(b, DBUS_FIELD_INTERFACE, "s", c->interface);
	header_field(b, DBUS_FIELD_MEMBER, "s", c->member);
	if (c->destination)
		header_field(b, DBUS_FIELD_DESTINATION, "s", c->destination);
	if (c->signature && c->signature[0])
		header_field(b, DBUS_FIELD_SIGNATURE, "g", c->signature);
	dbus_buf_array_close(b, fields);
	dbus_buf_align(b, 8);
	return b->len;
}

int dbus_msg_end(struct dbus_buf *b, size_t body_start)
{
	if (b->failed || b->len < body_start)
		return -1;
	store_le32(b->data + 4, (uint32_t)(b->len - body_start));
	return 0;
}

/* ---------------------------------------------------------------- reading */

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static int rd_align(struct dbus_rd *r, size_t to)
{
	size_t pad = (to - r->pos % to) % to;
	if (r->pos + pad > r->len)
		return -1;
	for (size_t i = 0; i < pad; i++)
		if (r->p[r->pos + i] != 0) /* the spec says padding is zero */
			return -1;
	r->pos += pad;
	return 0;
}

int dbus_rd_u8(struct dbus_rd *r, uint8_t *out)
{
	if (r->pos + 1 > r->len)
		return -1;
	*out = r->p[r->pos++];
	return 0;
}

int dbus_rd_u32(struct dbus_rd *r, uint32_t *out)
{
	if (rd_align(r, 4) < 0 || r->pos + 4 > r->len)
		return -1;
	*out = le32(r->p + r->pos);
	r->pos += 4;
	return 0;
}

/* A string ('s' or 'o'): borrowed, NUL-terminated in the message, no NUL
 * inside. */
int dbus_rd_string(struct dbus_rd *r, const char **out)
{
	uint32_t n;
	if (dbus_rd_u32(r, &n) < 0 || n > r->len || r->pos + n + 1 > r->len)
		return -1;
	const char *s = (const char *)r->p + r->pos;
	if (s[n] != '\0' || memchr(s, '\0', n))
		return -1;
	r->pos += (size_t)n + 1;
	*out = s;
	return 0;
}

int dbus_rd_signature(struct dbus_rd *r, const char **out)
{
	uint8_t n;
	if (dbus_rd_u8(r, &n) < 0 || r->pos + n + 1u > r->len)
		return -1;
	const char *s = (const char *)r->p + r->pos;
	if (s[n] != '\0' || memchr(s, '\0', n))
		return -1;
	r->pos += (size_t)n + 1;
	*out = s;
	return 0;
}

size_t dbus_msg_size(const unsigned char *hdr, size_t len)
{
	if (len < 16 || hdr[0] != 'l' || hdr[3] != 1)
		return 0;
	uint64_t body = le32(hdr + 4), fields = le32(hdr + 12);
	uint64_t total = 16 + ((fields + 7) & ~7ull) + body;
	return total > DBUS_MAX_MESSAGE ? 0 : (size_t)total;
}

static int parse_field(struct dbus_rd *r, struct dbus_msg *m)
{
	uint8_t code;
	const char *type, *s = NULL;
	uint32_t u = 0;
	if (rd_align(r, 8) < 0 || dbus_rd_u8(r, &code) < 0 ||
	    dbus_rd_signature(r, &type) < 0 || strlen(type) != 1)
		return -1;
	switch (type[0]) {
	case 's':
	case 'o':
		if (dbus_rd_string(r, &s) < 0)
			return -1;
		break;
	case 'g':
		if (dbus_rd_signature(r, &s) < 0)
			return -1;
		break;
	case 'u':
		if (dbus_rd_u32(r, &u) < 0)
			return -1;
		break;
	default: return -1; /* no bus sends other header field types */
	}
	static const struct {
		uint8_t code;
		size_t offset;
	} strings[] = {
		{ DBUS_FIELD_PATH, offsetof(struct dbus_msg, path) },
		{ DBUS_FIELD_INTERFACE, offsetof(struct dbus_msg, interface) },
		{ DBUS_FIELD_MEMBER, offsetof(struct dbus_msg, member) },
		{ DBUS_FIELD_ERROR_NAME,
		  offsetof(struct dbus_msg, error_name) },
		{ DBUS_FIELD_SIGNATURE, offsetof(struct dbus_msg, signature) },
	};
	if (code == DBUS_FIELD_REPLY_SERIAL)
		m->reply_serial = u;
	/* sender, destination, fds: not needed */
	for (size_t i = 0; i < ARRAY_SIZE(strings); i++)
		if (strings[i].code == code && s)
			*(const char **)((char *)m + strings[i].offset) = s;
	return 0;
}

int dbus_msg_parse(const unsigned char *buf, size_t len, struct dbus_msg *m)
{
	memset(m, 0, sizeof(*m));
	size_t total = dbus_msg_size(buf, len);
	if (total == 0 || total != len)
		return -1;
	m->type = buf[1];
	m->serial = le32(buf + 8);
	uint32_t fields_len = le32(buf + 12);
	struct dbus_rd r = { .p = buf,
			     .len = 16 + (size_t)fields_len,
			     .pos = 16 };
	while (r.pos < r.len)
		if (parse_field(&r, m) < 0)
			return -1;
	r.len = len;
	if (rd_align(&r, 8) < 0)
		return -1;
	m->body = buf + r.pos;
	m->body_len = len - r.pos;
	m->body_offset = r.pos;
	if (!m->signature)
		m->signature = "";
	return 0;
}

struct dbus_rd dbus_msg_body(const struct dbus_msg *m, const unsigned char *buf)
{
	/* offsets stay relative to the message start: alignment is */
	struct dbus_rd r = { .p = buf,
			     .len = m->body_offset + m->body_len,
			     .pos = m->body_offset };
	return r;
}

/* -------------------------------------------------------------- transport */

void dbus_conn_close(struct dbus_conn *c)
{
	al_closep(&c->fd);
	free(c->in);
	c->in = NULL;
	c->in_len = 0;
	dbus_buf_free(&c->out);
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Bounded reads: the socket has a receive timeout (dbus_conn_open). */
static int read_exact(int fd, unsigned char *p, size_t n)
{
	while (n) {
		ssize_t r = recv(fd, p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			errno = ECONNRESET;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* SASL EXTERNAL: the server checks our uid from SO_PEERCRED. */
static int authenticate(struct dbus_conn *c, struct al_error *err)
{
	char uid[16], line[64], hex[40] = "";
	snprintf(uid, sizeof(uid), "%u", (unsigned)geteuid());
	for (size_t i = 0; uid[i]; i++)
		snprintf(hex + 2 * i, 3, "%02x", (unsigned char)uid[i]);
	int n = snprintf(line, sizeof(line), "AUTH EXTERNAL %s\r\n", hex);
	if (write_all(c->fd, "", 1) < 0 ||
	    write_all(c->fd, line, (size_t)n) < 0)
		return al_error_sys(err, errno, "D-Bus %s: send AUTH",
				    c->address);
	char reply[256];
	size_t used = 0;
	while (used < 2 || memcmp(reply + used - 2, "\r\n", 2) != 0) {
		if (used + 1 >= sizeof(reply))
			return al_error_set(err, EPROTO,
					    "D-Bus %s: authentication answer "
					    "too long",
					    c->address);
		if (read_exact(c->fd, (unsigned char *)reply + used, 1) < 0)
			return al_error_sys(err, errno,
					    "D-Bus %s: read the "
					    "authentication answer",
					    c->address);
		used++;
	}
	reply[used - 2] = '\0';
	if (strncmp(reply, "OK ", 3) != 0)
		return al_error_set(err, EACCES,
				    "D-Bus %s: authentication as uid %s "
				    "refused (%.80s)",
				    c->address, uid, reply);
	if (write_all(c->fd, "BEGIN\r\n", 7) < 0)
		return al_error_sys(err, errno, "D-Bus %s: send BEGIN",
				    c->address);
	return 0;
}

int dbus_conn_open(struct dbus_conn *c, const char *path, bool direct,
		   struct al_error *err)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->direct = direct;
	snprintf(c->address, sizeof(c->address), "%s", path);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return al_error_set(err, ENAMETOOLONG,
				    "D-Bus: path too long: %s", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return al_error_sys(err, errno, "D-Bus: socket");
	/* systemd answers in milliseconds; a hung bus must not hang us */
	struct timeval tv = { .tv_sec = DBUS_TIMEOUT_S };
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		al_error_sys(err, errno, "D-Bus: connect to %s", path);
		dbus_conn_close(c);
		return -1;
	}
	if (authenticate(c, err) < 0) {
		dbus_conn_close(c);
		return -1;
	}
	if (direct)
		return 0;
	/* a bus (not systemd's private socket) wants Hello first */
	const struct dbus_call hello = {
		.destination = "org.freedesktop.DBus",
		.path = "/org/freedesktop/DBus",
		.interface = "org.freedesktop.DBus",
		.member = "Hello",
	};
	struct dbus_msg reply;
	if (dbus_conn_call(c, &hello, NULL, NULL, &reply, err) < 0) {
		dbus_conn_close(c);
		return -1;
	}
	return 0;
}

int dbus_conn_send(struct dbus_conn *c, const struct dbus_call *call,
		   void (*body)(struct dbus_buf *, const void *),
		   const void *arg, uint32_t *serial, struct al_error *err)
{
	*serial = ++c->serial;
	size_t start = dbus_msg_begin(&c->out, *serial, call);
	if (body)
		body(&c->out, arg);
	if (dbus_msg_end(&c->out, start) < 0)
		return al_error_set(err, ENOMEM, "D-Bus: %s: message too large",
				    call->member);
	if (write_all(c->fd, c->out.data, c->out.len) < 0)
		return al_error_sys(err, errno, "D-Bus %s: send %s", c->address,
				    call->member);
	return 0;
}

int dbus_conn_read(struct dbus_conn *c, struct dbus_msg *m,
		   struct al_error *err)
{
	unsigned char hdr[16];
	if (read_exact(c->fd, hdr, sizeof(hdr)) < 0)
		return al_error_sys(err, errno == EAGAIN ? ETIMEDOUT : errno,
				    "D-Bus %s: read", c->address);
	size_t total = dbus_msg_size(hdr, sizeof(hdr));
	if (total == 0)
		return al_error_set(
			err, EPROTO,
			"D-Bus %s: a message this client cannot "
			"read (not little-endian, or over %d bytes)",
			c->address, DBUS_MAX_MESSAGE);
	unsigned char *in = realloc(c->in, total);
	if (!in)
		return al_error_sys(err, ENOMEM, "D-Bus");
	c->in = in;
	c->in_len = total;
	memcpy(in, hdr, sizeof(hdr));
	if (read_exact(c->fd, in + sizeof(hdr), total - sizeof(hdr)) < 0)
		return al_error_sys(err, errno, "D-Bus %s: read", c->address);
	if (dbus_msg_parse(in, total, m) < 0)
		return al_error_set(err, EPROTO, "D-Bus %s: malformed message",
				    c->address);
	return 0;
}

int dbus_conn_call(struct dbus_conn *c, const struct dbus_call *call,
		   void (*body)(struct dbus_buf *, const void *),
		   const void *arg, struct dbus_msg *reply,
		   struct al_error *err)
{
	uint32_t serial;
	if (dbus_conn_send(c, call, body, arg, &serial, err) < 0)
		return -1;
	for (;;) {
		if (dbus_conn_read(c, reply, err) < 0)
			return al_error_prefix(err, "%s", call->member);
		if (reply->type == DBUS_SIGNAL && c->on_signal)
			c->on_signal(c, reply, c->on_signal_arg);
		if ((reply->type != DBUS_METHOD_RETURN &&
		     reply->type != DBUS_ERROR) ||
		    reply->reply_serial != serial)
			continue;
		if (reply->type == DBUS_METHOD_RETURN)
			return 0;
		const char *text = "";
		struct dbus_rd r = dbus_msg_body(reply, c->in);
		if (reply->signature[0] == 's')
			(void)dbus_rd_string(&r, &text);
		return al_error_set(err, EPROTO, "D-Bus: %s: %s%s%s",
				    call->member,
				    reply->error_name ? reply->error_name
						      : "error",
				    text[0] ? ": " : "", text);
	}
}
