/*
 * Fair shares of the daemon (docs/protocol.md, "Bounds"): what one client
 * uid may hold of airlockd's memory, connections and queue.
 *
 * Threat: one client exhausting the daemon for all. Pipelined execs whose
 * answers are never read (each answer up to ~6x its output once escaped
 * to JSON) grew airlockd by hundreds of MiB over a few connections; one
 * uid holding a thousand idle connections (keep-alive lines, subscribers)
 * locked everyone out, root included. So:
 *   - buffered bytes (request lines being read, answers not yet read,
 *     stdin memfds of runs not yet finished) are counted per uid and in
 *     total; growing past --max-buffered-per-uid or --max-buffered drops
 *     the connection that asked for more (an answer) or refuses the line;
 *   - new work on a connection whose answers are unread is refused, and a
 *     uid has at most --queue-max-per-uid runs waiting;
 *   - a uid holds at most --max-connections-per-uid connections, and the
 *     last --admin-connections of --max-connections are kept for admins.
 * Admins are subject to the global byte budget only.
 */
#include <stdio.h>
#include <stdlib.h>

#include "supervisor/internal.h"

/* answers waiting on a connection beyond which it gets no new work */
#define UNREAD_MAX (1u << 20)

static struct tenant_use *use_of(struct supervisor *s, uid_t uid, bool create)
{
	for (size_t i = 0; i < s->nuses; i++)
		if (s->uses[i].uid == uid)
			return &s->uses[i];
	if (!create)
		return NULL;
	if (s->nuses == s->cap_uses) {
		size_t cap = s->cap_uses ? s->cap_uses * 2 : 16;
		struct tenant_use *grown = realloc(s->uses,
						   cap * sizeof(*grown));
		if (!grown)
			return NULL;
		s->uses = grown;
		s->cap_uses = cap;
	}
	s->uses[s->nuses] = (struct tenant_use){ .uid = uid };
	return &s->uses[s->nuses++];
}

/* An entry with nothing left goes: the table holds connected uids. */
static void tidy(struct supervisor *s, struct tenant_use *u)
{
	if (u->conns || u->buffered)
		return;
	*u = s->uses[--s->nuses];
}

static size_t stdin_bytes(const struct supervisor *s, const uid_t *uid)
{
	size_t n = 0;
	for (const struct job *j = s->queue_head; j; j = j->next)
		if (!uid || j->uid == *uid)
			n += j->stdin_len;
	for (const struct job *j = s->active; j; j = j->next)
		if (!uid || j->uid == *uid)
			n += j->stdin_len;
	return n;
}

bool bounds_fits(struct supervisor *s, const struct conn *c, size_t more)
{
	if (s->buffered + stdin_bytes(s, NULL) + more > s->cfg.max_buffered)
		return false;
	if (c->role == PROTO_ROLE_ADMIN)
		return true;
	struct tenant_use *u = use_of(s, c->uid, false);
	size_t mine = (u ? u->buffered : 0) + stdin_bytes(s, &c->uid);
	return mine + more <= s->cfg.max_buffered_per_uid;
}

static void charge(struct supervisor *s, struct conn *c, size_t now)
{
	struct tenant_use *u = use_of(s, c->uid, true);

	s->buffered = s->buffered - c->charged + now;
	if (u) {
		u->buffered = u->buffered - c->charged + now;
		tidy(s, u);
	}
	c->charged = now;
}

void bounds_recharge(struct supervisor *s, struct conn *c, size_t now)
{
	/* a closed connection was discharged whole at its close */
	if (c->src.fd >= 0)
		charge(s, c, now);
}

const char *bounds_accept(struct supervisor *s, uid_t uid, enum proto_role role)
{
	const struct supervisor_config *cfg = &s->cfg;

	if (s->nconns >= cfg->max_connections)
		return "too many connections";
	if (role == PROTO_ROLE_ADMIN)
		return NULL;
	if (s->nconns + cfg->admin_connections >= cfg->max_connections)
		return "too many connections (the rest are kept for admins)";
	struct tenant_use *u = use_of(s, uid, true);
	if (!u)
		return "out of memory";
	if (u->conns >= cfg->max_connections_per_uid) {
		tidy(s, u);
		return "too many connections from this uid "
		       "(--max-connections-per-uid)";
	}
	return NULL;
}

void bounds_conn_opened(struct supervisor *s, uid_t uid)
{
	struct tenant_use *u = use_of(s, uid, true);
	if (u)
		u->conns++;
}

void bounds_conn_closed(struct supervisor *s, struct conn *c)
{
	charge(s, c, 0);
	struct tenant_use *u = use_of(s, c->uid, false);
	if (u && u->conns) {
		u->conns--;
		tidy(s, u);
	}
}

int bounds_admit(struct supervisor *s, const struct conn *c, size_t stdin_len,
		 char *msg, size_t len)
{
	unsigned queued = 0;

	if (c->out_len - c->out_off > UNREAD_MAX) {
		snprintf(msg, len,
			 "%zu bytes of answers on this connection "
			 "are unread: read them before sending "
			 "more work",
			 c->out_len - c->out_off);
		return PROTO_E_OVERLOADED;
	}
	if (c->role != PROTO_ROLE_ADMIN) {
		for (const struct job *j = s->queue_head; j; j = j->next)
			queued += j->uid == c->uid;
		if (queued >= s->cfg.queue_max_per_uid) {
			snprintf(msg, len,
				 "uid %u has %u runs queued "
				 "(--queue-max-per-uid); try later",
				 c->uid, queued);
			return PROTO_E_OVERLOADED;
		}
	}
	if (!bounds_fits((struct supervisor *)s, c, stdin_len)) {
		snprintf(msg, len,
			 "the daemon holds as many buffered bytes "
			 "for this uid (or in all) as it may "
			 "(--max-buffered-per-uid, --max-buffered); "
			 "read your answers or try later");
		return PROTO_E_OVERLOADED;
	}
	return 0;
}
