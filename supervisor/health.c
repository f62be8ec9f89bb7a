/*
 * The health self-check, run at start-up, on every tick and (at most once
 * a second) for GET /healthz: the manifest answers a trivial query (its
 * counts) and takes a write, and the listening socket is still
 * the file we bound (an operator's rm, or another process's bind over
 * it, leaves us serving nobody). The result is kept in s->health for
 * `status` and `health` to report; a change is logged once.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "supervisor/internal.h"

static void check_socket(struct supervisor *s, struct health *h)
{
	struct stat st;

	h->socket_ok = false;
	if (s->listen.fd < 0)
		snprintf(h->socket, sizeof(h->socket), "not listening (%s)",
			 s->stopping ? "stopping" : "closed");
	else if (lstat(s->cfg.socket_path, &st) < 0)
		snprintf(h->socket, sizeof(h->socket), "socket %.100s: %s",
			 s->cfg.socket_path,
			 errno == ENOENT ? "the file is gone"
					 : strerror(errno));
	else if (st.st_dev != s->socket_dev || st.st_ino != s->socket_ino)
		snprintf(h->socket, sizeof(h->socket),
			 "socket %.100s: replaced by another file",
			 s->cfg.socket_path);
	else {
		h->socket_ok = true;
		snprintf(h->socket, sizeof(h->socket), "ok");
	}
}

void health_check(struct supervisor *s)
{
	struct health h = { .checked_ms = now_ms() };
	struct manifest_stats st;
	struct al_error err = { 0 };

	/* reads answer, and so does a write: a manifest that can no longer
	 * record a verdict (read-only or full filesystem, I/O errors) makes
	 * the daemon useless however well it reads */
	h.manifest_ok = manifest_stats(s->m, NULL, &st, &err) == 0 &&
			manifest_write_check(s->m, &err) == 0;
	if (manifest_unavailable(s->m) != NULL) /* the server, not us */
		outage_message(s, h.manifest, sizeof(h.manifest));
	else
		snprintf(h.manifest, sizeof(h.manifest), "%s",
			 h.manifest_ok ? "ok" : err.msg);
	check_socket(s, &h);
	bool was = s->health.checked_ms == 0 ||
		   (s->health.manifest_ok && s->health.socket_ok);
	bool now = h.manifest_ok && h.socket_ok;
	if (was != now || (!now && (strcmp(h.manifest, s->health.manifest) ||
				    strcmp(h.socket, s->health.socket))))
		LOG(now ? LOG_INFO : LOG_ERROR, NULL, 0,
		    "health: %s (manifest: %s; socket: %s)",
		    now ? "healthy again" : "unhealthy", h.manifest, h.socket);
	s->health = h;
}

void health_json(struct json_buf *jb, const struct supervisor *s)
{
	const struct health *h = &s->health;

	json_kv_bool(jb, "healthy",
		     h->manifest_ok && h->socket_ok && !s->stopping);
	json_kv_int(jb, "checked_ms_ago", now_ms() - h->checked_ms);
	json_key(jb, "checks");
	json_object_open(jb);
	json_kv_string(jb, "manifest", h->manifest);
	json_kv_string(jb, "socket", h->socket);
	json_kv_string(jb, "accepting", s->stopping ? "stopping" : "ok");
	json_object_close(jb);
}
