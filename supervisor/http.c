/*
 * HTTP for operators and Prometheus: GET /metrics (x-api-key), /healthz
 * and /ready, served by libmicrohttpd inside airlockd's single-threaded
 * loop. Reference: docs/metrics.md.
 *
 * MHD runs in its "external" epoll mode: it starts no thread; its own
 * epoll fd (the listening socket and every HTTP connection) is nested in
 * ours as one source, SRC_HTTP. When that fd is readable, or when
 * MHD_get_timeout() says work is due (data already buffered, a
 * connection's idle timeout), the loop calls MHD_run(), which never
 * blocks. The handlers below read the daemon's state and answer from
 * memory (plus one module-count query per scrape, and /healthz's small
 * manifest write at most once a second), so an HTTP client can delay the
 * socket protocol by no more than one such answer.
 *
 * Bounds, so a hostile or slow client costs little and stalls nothing:
 * at most HTTP_MAX_CONNECTIONS connections (more are closed as soon as
 * they are accepted), at most HTTP_MAX_PER_PEER of them from one address,
 * each closed after HTTP_IDLE_S seconds of silence and given
 * HTTP_CONN_MEMORY bytes for its request (longer header blocks get 431
 * from MHD). A request's headers must be complete within
 * HTTP_HEADER_DEADLINE_MS of the connection's start or of the previous
 * answer: an idle timeout alone let a client that sends one header byte
 * every few seconds (slowloris) hold a slot for ever, and 32 of them kept
 * /healthz and /metrics from everyone. Past the deadline the connection's
 * socket is shut down and MHD closes it at its next run.
 *
 * The connection bound is ours, not MHD_OPTION_CONNECTION_LIMIT: at its
 * own limit MHD takes the listening socket out of its epoll set and puts
 * it back only at the start of a later MHD_run(), which nothing would
 * trigger once the connections are gone (no fd readable, no timeout), so
 * the port would stop answering for good. MHD's limit is set above ours
 * and never reached.
 */
#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "supervisor/internal.h"

#define HTTP_MAX_CONNECTIONS 32
#define HTTP_IDLE_S 10
#define HTTP_CONN_MEMORY (32u << 10)
#define HTTP_MAX_PER_PEER 8
#define HTTP_HEADER_DEADLINE_MS 5000
/* /healthz re-runs the self-check (a manifest write) at most this often */
#define HEALTH_FRESH_MS 1000

/* One open HTTP connection: whose, and since when it owes headers. */
struct http_peer {
	struct MHD_Connection *conn;
	struct sockaddr_storage addr;
	int64_t since_ms;  /* start, or the end of its last request */
	bool headers_done; /* the current request's headers are in */
	bool cut;          /* shut down for missing its deadline */
	struct http_peer *prev, *next;
};

struct http {
	struct source src; /* fd: MHD's epoll fd, not ours to close */
	struct MHD_Daemon *mhd;
	char addr[64];
	char last_error[160]; /* MHD's last log line, for start-up errors */
	unsigned nconns;      /* HTTP connections open */
	struct http_peer *peers;
};

/* MHD's diagnostics into our log (connection-level problems are the
 * client's, hence debug once running). */
__attribute__((format(printf, 2, 0))) static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct http *h = cls;
	char line[sizeof(h->last_error)];

	if (vsnprintf(line, sizeof(line), fmt, ap) < 0)
		return;
	line[strcspn(line, "\n")] = '\0';
	memcpy(h->last_error, line, sizeof(line));
	LOG(LOG_DEBUG, NULL, 0, "http: %s", line);
}

/* The same host: the address without the port. */
static bool same_host(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)b)->sin6_addr,
			      sizeof(struct in6_addr)) == 0;
	return false;
}

static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr,
				     socklen_t len)
{
	struct http *h = cls;
	unsigned same = 0;

	if (h->nconns >= HTTP_MAX_CONNECTIONS) {
		LOG(LOG_DEBUG, NULL, 0,
		    "http: %u connections open: refused one", h->nconns);
		return MHD_NO;
	}
	for (const struct http_peer *p = h->peers; p && addr; p = p->next)
		same += same_host((const struct sockaddr *)&p->addr, addr);
	if (same < HTTP_MAX_PER_PEER)
		return MHD_YES;
	LOG(LOG_DEBUG, NULL, 0,
	    "http: %u connections from one address: "
	    "refused one",
	    same);
	return MHD_NO;
}

static void peer_add(struct http *h, struct MHD_Connection *conn,
		     void **socket_ctx)
{
	struct http_peer *p = calloc(1, sizeof(*p));
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn,
					MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	*socket_ctx = p;
	if (!p)
		return; /* untracked: the idle timeout still ends it */
	p->conn = conn;
	p->since_ms = now_ms();
	if (ci && ci->client_addr) {
		socklen_t n = ci->client_addr->sa_family == AF_INET6
				      ? sizeof(struct sockaddr_in6)
				      : sizeof(struct sockaddr_in);
		memcpy(&p->addr, ci->client_addr, n);
	}
	p->next = h->peers;
	if (h->peers)
		h->peers->prev = p;
	h->peers = p;
}

static void peer_drop(struct http *h, struct http_peer *p)
{
	if (!p)
		return;
	if (p->prev)
		p->prev->next = p->next;
	else
		h->peers = p->next;
	if (p->next)
		p->next->prev = p->prev;
	free(p);
}

static void on_connection(void *cls, struct MHD_Connection *conn,
			  void **socket_ctx,
			  enum MHD_ConnectionNotificationCode what)
{
	struct http *h = cls;

	if (what == MHD_CONNECTION_NOTIFY_STARTED) {
		h->nconns++;
		peer_add(h, conn, socket_ctx);
	} else if (what == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (h->nconns)
			h->nconns--;
		peer_drop(h, *socket_ctx);
		*socket_ctx = NULL;
	}
}

static struct http_peer *peer_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn,
					MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/* A request answered: the next one owes its headers from now. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_peer *p = peer_of(conn);

	if (p) {
		p->headers_done = false;
		p->since_ms = now_ms();
	}
}

/* Shut down the sockets of connections past their header deadline (MHD
 * owns the fds: it sees the end and closes them); the next deadline in
 * ms from now, or -1 when none is pending. */
static int64_t enforce_deadlines(struct http *h)
{
	int64_t now = now_ms(), next = -1;

	for (struct http_peer *p = h->peers; p; p = p->next) {
		if (p->headers_done || p->cut)
			continue;
		int64_t left = p->since_ms + HTTP_HEADER_DEADLINE_MS - now;
		if (left > 0) {
			next = next < 0 || left < next ? left : next;
			continue;
		}
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
			p->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci && ci->connect_fd >= 0)
			(void)shutdown(ci->connect_fd, SHUT_RDWR);
		p->cut = true;
		LOG(LOG_INFO, NULL, 0,
		    "http: a request's headers took over %d ms: connection "
		    "closed",
		    HTTP_HEADER_DEADLINE_MS);
	}
	return next;
}

/* Text answer; `body` is copied. */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
			     const char *type, const char *body)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(body), (void *)body,
						MHD_RESPMEM_MUST_COPY);

	if (!r)
		return MHD_NO;
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) !=
		    MHD_YES ||
	    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
				    "no-store") != MHD_YES ||
	    (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
	     MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") !=
		     MHD_YES) ||
	    (status == MHD_HTTP_UNAUTHORIZED &&
	     MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
				     "x-api-key") != MHD_YES)) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	enum MHD_Result rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static const char TEXT[] = "text/plain; charset=utf-8";

static void snapshot_quotas(struct supervisor *s, struct metrics_quota *out,
			    size_t *n)
{
	*n = 0;
	if (!s->cfg.quota_per_hour && !s->cfg.quota_per_day)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(s->quotas); i++) {
		if (!s->quotas[i].in_use)
			continue;
		uid_t uid = s->quotas[i].uid;
		/* these roll the uid's windows over first */
		unsigned hour = quota_used_hour(s, uid);
		unsigned day = quota_used_today(s, uid);
		out[*n] = (struct metrics_quota){
			.uid = uid,
			.hour_left = -1,
			.day_left = -1,
		};
		if (s->cfg.quota_per_hour)
			out[*n].hour_left = hour < s->cfg.quota_per_hour
						    ? s->cfg.quota_per_hour -
							      hour
						    : 0;
		if (s->cfg.quota_per_day)
			out[*n].day_left = day < s->cfg.quota_per_day
						   ? s->cfg.quota_per_day - day
						   : 0;
		(*n)++;
	}
}

static enum MHD_Result serve_metrics(struct supervisor *s,
				     struct MHD_Connection *conn)
{
	struct metrics_quota quotas[ARRAY_SIZE(s->quotas)];
	static struct metrics_storage storage[256]; /* one loop thread */
	static struct metrics_host hosts[256];
	struct metrics_snapshot m = {
		.version = AIRLOCK_VERSION,
		.start_time_s = (double)s->started_unix_ms / 1000.0,
		.active = s->nactive,
		.max_active = s->cfg.max_active,
		.queued = s->nqueued,
		.connections = s->nconns,
		.healthy = s->health.manifest_ok && s->health.socket_ok,
		.ready = s->ready && !s->stopping,
		.manifest_up = manifest_unavailable(s->m) == NULL,
		.pending_records = outage_pending(s),
		.timeouts = s->counters[C_TIMEOUTS],
		.validation_failures = s->counters[C_VALIDATION_FAILURES],
		.auto_archives = s->counters[C_AUTO_ARCHIVES],
		.rate_limit_hits = s->counters[C_RATE_LIMIT_HITS],
		.overloaded = s->counters[C_OVERLOADED],
		.durations = &s->durations,
		.quota_per_hour = s->cfg.quota_per_hour,
		.quota_per_day = s->cfg.quota_per_day,
		.quotas = quotas,
		.storage = storage,
		.nstorage = storage_snapshot(s, storage, 256),
		.store_free_bytes = storage_free_bytes(s),
		.store_free_min = s->cfg.store_free_min,
		.store_max_per_uid = s->cfg.store_max_per_uid,
		.store_versions_per_uid = s->cfg.store_versions_per_uid,
		.hosts = hosts,
		.nhosts = fleet_snapshot(s, hosts, ARRAY_SIZE(hosts)),
	};
	struct manifest_stats st;
	struct al_error err = { 0 };
	char *body = NULL;
	size_t len = 0;

	memcpy(m.verdicts, s->verdicts, sizeof(m.verdicts));
	if (manifest_stats(s->m, NULL, &st, &err) == 0) {
		m.have_modules = true;
		memcpy(m.modules, st.modules, sizeof(m.modules));
	} else {
		LOG(LOG_WARN, NULL, 0, "metrics: %s", err.msg);
	}
	snapshot_quotas(s, quotas, &m.nquotas);
	FILE *f = open_memstream(&body, &len);
	if (!f)
		return MHD_NO;
	int rc = metrics_render(f, &m);
	if (fclose(f) != 0 || rc < 0) {
		free(body);
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, TEXT,
			     "out of memory\n");
	}
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, body,
						MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	enum MHD_Result ok = MHD_add_response_header(
		r, MHD_HTTP_HEADER_CONTENT_TYPE,
		"text/plain; version=0.0.4; charset=utf-8");
	if (ok == MHD_YES)
		ok = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ok;
}

/* Liveness: this answer itself shows the loop turns; the manifest must
 * take a write (health.c, at most once a second however often a probe
 * asks) and the socket must still be ours; while draining it is 503
 * "draining" whatever the checks say. */
static enum MHD_Result serve_healthz(struct supervisor *s,
				     struct MHD_Connection *conn)
{
	char body[AL_ERROR_MAX + 256];

	if (now_ms() - s->health.checked_ms >= HEALTH_FRESH_MS)
		health_check(s);
	const struct health *h = &s->health;
	/* draining is not healthy for a balancer or a probe: 503, saying
	 * so (the check lines follow as usual) */
	bool ok = h->manifest_ok && h->socket_ok && !s->stopping;
	snprintf(body, sizeof(body), "%s\nloop: ok\nmanifest: %s\nsocket: %s\n",
		 s->stopping ? "draining"
		 : ok        ? "ok"
			     : "unhealthy",
		 h->manifest, h->socket_ok ? "ok" : h->socket);
	return reply(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
		     TEXT, body);
}

static enum MHD_Result serve_ready(struct supervisor *s,
				   struct MHD_Connection *conn)
{
	char body[160];

	if (s->ready && !s->stopping)
		return reply(conn, MHD_HTTP_OK, TEXT, "ready\n");
	if (s->stopping)
		snprintf(body, sizeof(body),
			 "draining: stopping, %u runs finishing\n", s->nactive);
	else
		snprintf(body, sizeof(body), "starting\n");
	return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, TEXT, body);
}

static enum MHD_Result serve_metrics_auth(struct supervisor *s,
					  struct MHD_Connection *conn)
{
	const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						      "x-api-key");

	if (!s->cfg.prom_api_key)
		return reply(conn, MHD_HTTP_FORBIDDEN, TEXT,
			     "metrics are disabled: start airlockd with "
			     "PROM_API_KEY set (16 to 256 printable "
			     "characters) and send it as the x-api-key "
			     "header\n");
	if (!key || !metrics_key_equal(key, s->cfg.prom_api_key))
		return reply(conn, MHD_HTTP_UNAUTHORIZED, TEXT,
			     "missing or wrong x-api-key header\n");
	return serve_metrics(s, conn);
}

typedef enum MHD_Result (*serve_fn)(struct supervisor *,
				    struct MHD_Connection *);

struct route {
	const char *path;
	serve_fn serve;
};

static const struct route routes[] = {
	{ "/metrics", serve_metrics_auth },
	{ "/healthz", serve_healthz },
	{ "/ready", serve_ready },
};

/* Whether the request announces a body (none of ours takes one). */
static bool has_body(struct MHD_Connection *conn)
{
	const char *len =
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					    MHD_HTTP_HEADER_CONTENT_LENGTH);

	return (len && strcmp(len, "0") != 0) ||
	       MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					   MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/*
 * MHD calls this first with the headers, then again once the request is
 * complete. An answer given in the first call makes MHD close the
 * connection without reading further (right for errors and for anything
 * with a body, which could be endless); a GET answered in the second call
 * keeps the connection open for the next scrape.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **req_cls)
{
	struct supervisor *s = cls;
	const struct route *r = *req_cls;

	if (r) {
		*upload_size = 0; /* not reached: bodies are refused below */
		return r->serve(s, conn);
	}
	struct http_peer *peer = peer_of(conn);
	if (peer)
		peer->headers_done = true; /* MHD calls us once they are in */
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++)
		if (strcmp(url, routes[i].path) == 0)
			r = &routes[i];
	if (!r)
		return reply(conn, MHD_HTTP_NOT_FOUND, TEXT,
			     "not found; try /metrics, /healthz or /ready\n");
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, TEXT,
			     "only GET and HEAD\n");
	if (has_body(conn))
		return r->serve(s, conn);
	*req_cls = (void *)r;
	return MHD_YES;
}

static unsigned listen_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

int http_check_address(const struct supervisor_config *cfg,
		       struct al_error *err)
{
	char addr[96];
	int one = 1;

	if (!cfg->metrics_addr_len)
		return 0;
	supervisor_format_listen(&cfg->metrics_addr, addr, sizeof(addr));
	_cleanup_close_ int fd = socket(cfg->metrics_addr.ss_family,
					SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return al_error_sys(err, errno, "HTTP on %s: socket", addr);
	/* as libmicrohttpd will: so this probe leaves nothing in the way */
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (cfg->metrics_addr.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
				 sizeof(one));
	if (bind(fd, (const struct sockaddr *)&cfg->metrics_addr,
		 (socklen_t)cfg->metrics_addr_len) < 0)
		return al_error_sys(err, errno,
				    "HTTP on %s: cannot bind port %u (another "
				    "program listens there? --metrics-listen "
				    "ADDR:PORT or METRICS_PORT picks another; "
				    "0 turns HTTP off)",
				    addr, listen_port(&cfg->metrics_addr));
	return 0;
}

int http_start(struct supervisor *s, struct al_error *err)
{
	const struct supervisor_config *cfg = &s->cfg;
	const union MHD_DaemonInfo *info;
	struct http *h;

	if (!cfg->metrics_addr_len)
		return 0;
	h = calloc(1, sizeof(*h));
	if (!h)
		return al_error_sys(err, ENOMEM, "http");
	s->http = h;
	h->src.kind = SRC_HTTP;
	h->src.fd = -1;
	supervisor_format_listen(&cfg->metrics_addr, h->addr, sizeof(h->addr));
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	if (cfg->metrics_addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	errno = 0;
	h->mhd = MHD_start_daemon(flags, 0, accept_policy, h, on_request, s,
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
				  h, /* first, as MHD asks */
				  MHD_OPTION_SOCK_ADDR,
				  (const struct sockaddr *)&cfg->metrics_addr,
				  MHD_OPTION_NOTIFY_CONNECTION, on_connection,
				  h, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
				  h, MHD_OPTION_CONNECTION_LIMIT,
				  (unsigned)HTTP_MAX_CONNECTIONS * 2,
				  MHD_OPTION_CONNECTION_TIMEOUT,
				  (unsigned)HTTP_IDLE_S,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT,
				  (size_t)HTTP_CONN_MEMORY,
				  MHD_OPTION_LISTEN_BACKLOG_SIZE,
				  (unsigned)server_backlog(), MHD_OPTION_END);
	if (!h->mhd)
		return al_error_set(err, errno ? errno : EADDRNOTAVAIL,
				    "HTTP on %s (--metrics-listen, "
				    "METRICS_PORT; 0 turns it off): %s",
				    h->addr,
				    h->last_error[0] ? h->last_error
						     : "cannot listen");
	info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info)
		return al_error_set(err, EINVAL, "HTTP: no epoll fd from MHD");
	h->src.fd = info->epoll_fd;
	if (loop_watch(s, &h->src, EPOLLIN) < 0)
		return al_error_sys(err, errno, "epoll_ctl (http)");
	if (!cfg->prom_api_key)
		LOG(LOG_WARN, NULL, 0,
		    "PROM_API_KEY is not set: /metrics on %s answers 403 "
		    "until it is (/healthz and /ready work)",
		    h->addr);
	LOG(LOG_INFO, NULL, 0, "http: /metrics, /healthz, /ready on %s",
	    h->addr);
	return 0;
}

void http_run(struct supervisor *s)
{
	if (!s->http || !s->http->mhd)
		return;
	(void)enforce_deadlines(s->http);
	if (MHD_run(s->http->mhd) != MHD_YES)
		LOG(LOG_WARN, NULL, 0, "http: MHD_run failed");
}

int64_t http_timeout_ms(struct supervisor *s)
{
	MHD_UNSIGNED_LONG_LONG t;

	if (!s->http || !s->http->mhd)
		return -1;
	/* wake for the nearest header deadline too: a connection that
	 * sends nothing more would otherwise not be looked at again */
	int64_t deadline = enforce_deadlines(s->http);
	int64_t mhd = MHD_get_timeout(s->http->mhd, &t) != MHD_YES ? -1
		      : t > 60000                                  ? 60000
								   : (int64_t)t;
	if (deadline >= 0 && (mhd < 0 || deadline < mhd))
		return deadline;
	return mhd;
}

void http_stop(struct supervisor *s)
{
	struct http *h = s->http;

	if (!h)
		return;
	if (h->src.fd >= 0 && s->epfd >= 0)
		(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, h->src.fd, NULL);
	if (h->mhd)
		MHD_stop_daemon(h->mhd); /* closes its epoll fd */
	free(h);
	s->http = NULL;
}
