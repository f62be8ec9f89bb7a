/*
 * The live feed: `subscribe` turns a connection into a stream of feed
 * rows (manifest_feed), one {"event": {...}} line each.
 *
 * The manifest is the one source: module changes and run verdicts enter
 * the feed by themselves, in the transaction that makes them, and the
 * supervisor adds its own rows (events_note). Only this process writes
 * the manifest, so after each loop turn every new row has an id above
 * s->feed_cursor; events_publish() reads those once and queues them to
 * every subscriber. History and live stream are then the same rows in the
 * same encoding (proto_event_json), with no gap and no duplicate.
 *
 * Threat: a subscriber that does not read. Its lines wait in its
 * connection's output buffer, which for a subscriber is bounded by
 * SUBSCRIBER_OUT_MAX (the kernel's own buffer for it is made small too):
 * past that it is dropped, with a log line, and nothing else waits for
 * it. The loop never blocks on a subscriber. Earlier events sent at
 * subscription stop at half the bound ({"catch_up_cut":true,"after":ID}
 * says where; `events` gives the rest).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "supervisor/internal.h"

#define SUBSCRIBER_OUT_MAX (32u << 10) /* 100 catch-up events fit */
#define SUBSCRIBER_SNDBUF 4096         /* the kernel doubles it */

void events_note(struct supervisor *s, const char *kind, int64_t uid,
		 const char *fmt, ...)
{
	char detail[MANIFEST_REASON_MAX + 1];
	struct al_error err = { 0 };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (manifest_feed_add(s->m, kind, uid, detail, NULL, &err) < 0)
		LOG(LOG_WARN, NULL, 0, "event %s: %s", kind, err.msg);
}

/* Queue one event line to `c`, or drop `c` when it is too far behind. */
static void send_event(struct supervisor *s, struct conn *c,
		       const struct manifest_feed_event *ev)
{
	struct json_buf jb;

	json_buf_init(&jb);
	json_object_open(&jb);
	json_key(&jb, "event");
	proto_event_json(&jb, ev);
	json_object_close(&jb);
	if (!json_buf_failed(&jb) &&
	    c->out_len - c->out_off + jb.len + 1 > SUBSCRIBER_OUT_MAX) {
		LOG(LOG_WARN, NULL, 0,
		    "subscriber %llu (uid %u) is %zu bytes behind; dropped",
		    (unsigned long long)c->serial, c->uid,
		    c->out_len - c->out_off);
		json_buf_free(&jb);
		conn_close(s, c);
		return;
	}
	conn_send_jb(s, c, &jb);
}

static int publish_one(const struct manifest_feed_event *ev, void *arg)
{
	struct supervisor *s = arg;

	for (struct conn *c = s->conns, *next; c; c = next) {
		next = c->next; /* send_event may close c */
		if (c->subscriber && c->src.fd >= 0 && tenant_sees_event(c, ev))
			send_event(s, c, ev);
	}
	s->feed_cursor = ev->id;
	return 0;
}

/* The newest feed id, so that streaming starts from now. */
static int take_id(const struct manifest_feed_event *ev, void *arg)
{
	*(int64_t *)arg = ev->id;
	return 0;
}

static bool any_subscriber(const struct supervisor *s)
{
	for (const struct conn *c = s->conns; c; c = c->next)
		if (c->subscriber)
			return true;
	return false;
}

void events_publish(struct supervisor *s)
{
	struct manifest_feed_filter f = { .after_id = s->feed_cursor };
	struct al_error err = { 0 };

	/* nobody listening: no query at all (this runs every loop turn) */
	if (!any_subscriber(s))
		return;
	if (manifest_feed(s->m, &f, publish_one, s, &err) < 0)
		LOG(LOG_WARN, NULL, 0, "feed: %s", err.msg);
}

int64_t events_cursor_now(struct supervisor *s)
{
	struct manifest_feed_filter f = { .after_id = s->feed_cursor,
					  .limit = 1 };
	struct al_error err = { 0 };

	if (any_subscriber(s))
		events_publish(s);
	else if (manifest_feed(s->m, &f, take_id, &s->feed_cursor, &err) < 0)
		LOG(LOG_WARN, NULL, 0, "feed: %s", err.msg);
	return s->feed_cursor;
}

struct catch_up {
	struct supervisor *s;
	struct conn *c;
	int64_t last; /* the last id sent */
	bool cut;
};

static int catch_up_one(const struct manifest_feed_event *ev, void *arg)
{
	struct catch_up *cu = arg;
	struct conn *c = cu->c;

	if (ev->id > cu->s->feed_cursor || c->src.fd < 0)
		return 1; /* events_publish() sends the rest */
	/* earlier events must leave room for live ones (details can be
	 * 1 KiB each): past half the bound, stop and say where */
	if (c->out_len - c->out_off > SUBSCRIBER_OUT_MAX / 2) {
		cu->cut = true;
		return 1;
	}
	send_event(cu->s, c, ev);
	cu->last = ev->id;
	return 0;
}

int events_subscribe(struct supervisor *s, struct conn *c, int64_t after,
		     int64_t since_ms, size_t limit, struct al_error *err)
{
	int sndbuf = SUBSCRIBER_SNDBUF;
	struct catch_up cu = { .s = s, .c = c };
	struct manifest_viewer v;
	struct manifest_feed_filter f = {
		.after_id = after,
		.since_ms = since_ms,
		.limit = limit ? limit : EVENTS_CATCH_UP,
		.viewer = tenant_viewer(c, &v),
	};

	/* what the kernel holds for a reader that stopped reading counts
	 * against no bound of ours: keep it small */
	if (setsockopt(c->src.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf,
		       sizeof(sndbuf)) < 0)
		LOG(LOG_DEBUG, NULL, 0, "SO_SNDBUF: %s", strerror(errno));
	c->subscriber = true;
	/* waiting for events is not idling, and it outlives a half-close */
	c->pending++;
	if ((after || since_ms || limit) &&
	    manifest_feed(s->m, &f, catch_up_one, &cu, err) < 0)
		return -1;
	if (cu.cut && c->src.fd >= 0) {
		/* the client asks "events" with "after" for the rest */
		char line[96];
		snprintf(line, sizeof(line),
			 "{\"catch_up_cut\":true,\"after\":%lld}",
			 (long long)cu.last);
		conn_send(s, c, line);
	}
	return 0;
}
