/*
 * The systemd cgroup driver: ask systemd for a cgroup of our own.
 *
 * Where systemd manages the cgroup tree, a process may only create cgroups
 * inside a unit that was delegated to it (Delegate=yes). `airlock run`
 * started from a login shell, sudo, cron or a CI runner sits in a session
 * scope or a service shared with other processes: cgroup v2's
 * no-internal-processes rule forbids it to enable controllers there, and
 * the unit is not airlock's to change anyway. So, as crun and podman do,
 * airlock asks systemd (over D-Bus, dbus.c) to start a transient scope
 * holding just this process, with Delegate=yes, waits for the start job
 * to finish, and builds its run cgroups inside that scope (cgroup_v2.c).
 * The scope lives exactly as long as this process: systemd removes it,
 * with everything airlock made inside, once it is empty.
 *
 * Root talks to the system manager, everybody else to their own user
 * manager (systemd --user, whose user@UID.service is delegated memory,
 * pids and cpu by default). Each is tried first on systemd's private
 * socket (no bus daemon needed), then on the bus.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandbox/internal.h"

struct scope_request {
	const char *name;
	const char *slice; /* NULL: the manager's default */
	char description[96];
	pid_t pid;
};

struct scope_wait {
	const char *unit;
	bool done;
	char result[32];
};

static void property(struct dbus_buf *b, const char *name, const char *sig)
{
	dbus_buf_align(b, 8); /* a(sv): each entry is a struct */
	dbus_buf_string(b, name);
	dbus_buf_signature(b, sig);
}

/* StartTransientUnit(s name, s mode, a(sv) properties, a(sa(sv)) aux) */
static void scope_body(struct dbus_buf *b, const void *arg)
{
	const struct scope_request *r = arg;
	dbus_buf_string(b, r->name);
	dbus_buf_string(b, "fail");
	struct dbus_array props = dbus_buf_array_open(b, 8);
	property(b, "Description", "s");
	dbus_buf_string(b, r->description);
	property(b, "PIDs", "au");
	struct dbus_array pids = dbus_buf_array_open(b, 4);
	dbus_buf_u32(b, (uint32_t)r->pid);
	dbus_buf_array_close(b, pids);
	property(b, "Delegate", "b");
	dbus_buf_u32(b, 1);
	/* a scope whose start failed must not linger as "failed" */
	property(b, "CollectMode", "s");
	dbus_buf_string(b, "inactive-or-failed");
	if (r->slice) {
		property(b, "Slice", "s");
		dbus_buf_string(b, r->slice);
	}
	dbus_buf_array_close(b, props);
	struct dbus_array aux = dbus_buf_array_open(b, 8);
	dbus_buf_array_close(b, aux);
}

static void string_body(struct dbus_buf *b, const void *arg)
{
	dbus_buf_string(b, arg);
}

/* JobRemoved(u id, o job, s unit, s result): ours is named by its unit,
 * which may come before or after the reply that names the job. */
static void on_signal(struct dbus_conn *c, const struct dbus_msg *m, void *arg)
{
	struct scope_wait *w = arg;
	if (!m->member || strcmp(m->member, "JobRemoved") != 0 ||
	    strcmp(m->signature, "uoss") != 0)
		return;
	struct dbus_rd r = dbus_msg_body(m, c->in);
	uint32_t id;
	const char *job, *unit, *result;
	if (dbus_rd_u32(&r, &id) < 0 || dbus_rd_string(&r, &job) < 0 ||
	    dbus_rd_string(&r, &unit) < 0 || dbus_rd_string(&r, &result) < 0)
		return;
	if (strcmp(unit, w->unit) != 0)
		return;
	w->done = true;
	snprintf(w->result, sizeof(w->result), "%s", result);
}

static const char *const manager_path = "/org/freedesktop/systemd1";
static const char *const manager_iface = "org.freedesktop.systemd1.Manager";

/* On a bus, signals reach only those who asked: a match for JobRemoved,
 * and Subscribe(), without which systemd sends no job signals at all. */
static int subscribe(struct dbus_conn *c, struct al_error *err)
{
	const struct dbus_call add_match = {
		.destination = "org.freedesktop.DBus",
		.path = "/org/freedesktop/DBus",
		.interface = "org.freedesktop.DBus",
		.member = "AddMatch",
		.signature = "s",
	};
	const char *rule = "type='signal',sender='org.freedesktop.systemd1',"
			   "path='/org/freedesktop/systemd1',"
			   "interface='org.freedesktop.systemd1.Manager',"
			   "member='JobRemoved'";
	const struct dbus_call sub = {
		.destination = "org.freedesktop.systemd1",
		.path = manager_path,
		.interface = manager_iface,
		.member = "Subscribe",
	};
	struct dbus_msg reply;
	if (dbus_conn_call(c, &add_match, string_body, rule, &reply, err) < 0 ||
	    dbus_conn_call(c, &sub, NULL, NULL, &reply, err) < 0)
		return -1;
	return 0;
}

int cgroup_systemd_call_start(struct dbus_conn *c, const char *name,
			      const char *slice, pid_t pid,
			      struct al_error *err)
{
	struct scope_request req = { .name = name, .slice = slice, .pid = pid };
	snprintf(req.description, sizeof(req.description),
		 "airlock jails of process %d", (int)pid);
	const struct dbus_call start = {
		.destination = c->direct ? NULL : "org.freedesktop.systemd1",
		.path = manager_path,
		.interface = manager_iface,
		.member = "StartTransientUnit",
		.signature = "ssa(sv)a(sa(sv))",
	};
	struct dbus_msg reply;
	return dbus_conn_call(c, &start, scope_body, &req, &reply, err);
}

static int start_scope_on(struct dbus_conn *c, const char *name,
			  const char *slice, struct al_error *err)
{
	struct scope_wait w = { .unit = name };
	c->on_signal = on_signal;
	c->on_signal_arg = &w;
	if (!c->direct && subscribe(c, err) < 0)
		return -1;
	if (cgroup_systemd_call_start(c, name, slice, getpid(), err) < 0)
		return -1;
	while (!w.done) {
		struct dbus_msg m;
		if (dbus_conn_read(c, &m, err) < 0)
			return al_error_prefix(err, "waiting for %s to start",
					       name);
		if (m.type == DBUS_SIGNAL)
			on_signal(c, &m, &w);
	}
	if (strcmp(w.result, "done") != 0)
		return al_error_set(err, EIO,
				    "systemd: starting %s ended \"%s\" (see "
				    "journalctl -u %s)",
				    name, w.result, name);
	return 0;
}

/* Where to reach the manager: its private socket, then the bus. */
static int manager_sockets(bool user, char paths[2][108])
{
	if (!user) {
		snprintf(paths[0], 108, "/run/systemd/private");
		const char *a = getenv("DBUS_SYSTEM_BUS_ADDRESS");
		if (a && strncmp(a, "unix:path=", 10) == 0 && !strchr(a, ','))
			snprintf(paths[1], 108, "%s", a + 10);
		else
			snprintf(paths[1], 108, "/run/dbus/system_bus_socket");
		return 2;
	}
	char runtime[64];
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (xdg && xdg[0] == '/' && strlen(xdg) < sizeof(runtime))
		snprintf(runtime, sizeof(runtime), "%s", xdg);
	else
		snprintf(runtime, sizeof(runtime), "/run/user/%u",
			 (unsigned)geteuid());
	snprintf(paths[0], 108, "%s/systemd/private", runtime);
	const char *a = getenv("DBUS_SESSION_BUS_ADDRESS");
	if (a && strncmp(a, "unix:path=", 10) == 0 && !strchr(a, ','))
		snprintf(paths[1], 108, "%s", a + 10);
	else
		snprintf(paths[1], 108, "%s/bus", runtime);
	return 2;
}

/* An open connection to the manager: root's system manager, anybody
 * else's own; `via` gets the socket that answered. */
static int manager_connect(struct dbus_conn *c, char *via, size_t via_len,
			   struct al_error *err)
{
	bool user = geteuid() != 0;
	char paths[2][108];
	int n = manager_sockets(user, paths);
	char tried[AL_ERROR_MAX] = "";
	for (int i = 0; i < n; i++) {
		struct al_error e = { 0 };
		if (dbus_conn_open(c, paths[i], i == 0, &e) == 0) {
			snprintf(via, via_len, "%s", paths[i]);
			return 0;
		}
		size_t used = strlen(tried);
		snprintf(tried + used, sizeof(tried) - used, "%s%.400s",
			 used ? "; " : "", e.msg);
	}
	return al_error_set(err, EHOSTUNREACH,
			    "cannot reach the systemd %s manager (%s)",
			    user ? "user" : "system", tried);
}

int cgroup_systemd_start_scope(const char *name, const char *slice, char *via,
			       size_t via_len, struct al_error *err)
{
	struct dbus_conn c;
	if (manager_connect(&c, via, via_len, err) < 0)
		return -1;
	int rc = start_scope_on(&c, name, slice, err);
	dbus_conn_close(&c);
	return rc;
}

static void two_strings(struct dbus_buf *b, const void *arg)
{
	const char *const *s = arg;
	dbus_buf_string(b, s[0]);
	dbus_buf_string(b, s[1]);
}

/* Properties.Get(iface, "Delegate") of `path`: a variant holding a b. */
static int read_delegate(struct dbus_conn *c, const char *path,
			 const char *iface, bool *out, struct al_error *err)
{
	const char *args[2] = { iface, "Delegate" };
	const struct dbus_call get = {
		.destination = c->direct ? NULL : "org.freedesktop.systemd1",
		.path = path,
		.interface = "org.freedesktop.DBus.Properties",
		.member = "Get",
		.signature = "ss",
	};
	struct dbus_msg reply;
	if (dbus_conn_call(c, &get, two_strings, args, &reply, err) < 0)
		return -1;
	struct dbus_rd r = dbus_msg_body(&reply, c->in);
	const char *type;
	uint32_t v;
	if (strcmp(reply.signature, "v") != 0 ||
	    dbus_rd_signature(&r, &type) < 0 || strcmp(type, "b") != 0 ||
	    dbus_rd_u32(&r, &v) < 0 || v > 1)
		return al_error_set(err, EPROTO,
				    "systemd: %s Delegate is not a boolean",
				    path);
	*out = v == 1;
	return 0;
}

static const char *unit_interface(const char *unit)
{
	size_t n = strlen(unit);
	if (n > 8 && strcmp(unit + n - 8, ".service") == 0)
		return "org.freedesktop.systemd1.Service";
	if (n > 6 && strcmp(unit + n - 6, ".scope") == 0)
		return "org.freedesktop.systemd1.Scope";
	return NULL; /* slices and the rest are never delegated */
}

int cgroup_systemd_unit_delegated(const char *unit, bool *delegated,
				  struct al_error *err)
{
	*delegated = false;
	const char *iface = unit_interface(unit);
	if (!iface)
		return 0;
	struct dbus_conn c;
	char via[108];
	if (manager_connect(&c, via, sizeof(via), err) < 0)
		return -1;
	const struct dbus_call get_unit = {
		.destination = c.direct ? NULL : "org.freedesktop.systemd1",
		.path = manager_path,
		.interface = manager_iface,
		.member = "GetUnit",
		.signature = "s",
	};
	struct dbus_msg reply;
	const char *path = NULL;
	int rc = dbus_conn_call(&c, &get_unit, string_body, unit, &reply, err);
	if (rc == 0) {
		struct dbus_rd r = dbus_msg_body(&reply, c.in);
		if (strcmp(reply.signature, "o") != 0 ||
		    dbus_rd_string(&r, &path) < 0)
			rc = al_error_set(err, EPROTO,
					  "systemd: GetUnit answered \"%s\"",
					  reply.signature);
	}
	/* the reply lives in c.in, which the next call reuses */
	char *copy = rc == 0 ? strdup(path) : NULL;
	if (rc == 0 && !copy)
		rc = al_error_sys(err, ENOMEM, "systemd");
	if (rc == 0)
		rc = read_delegate(&c, copy, iface, delegated, err);
	free(copy);
	dbus_conn_close(&c);
	return rc;
}

/*
 * The slice the caller's own unit is in, so that the scope is accounted
 * where the caller was: /user.slice/user-0.slice/session-3.scope gives
 * user-0.slice. The user manager owns only what lies below
 * user@UID.service; the system manager only what lies above it. NULL when
 * there is none to keep (the manager's default then).
 */
const char *cgroup_systemd_slice(const char *own, bool user, char *out,
				 size_t len)
{
	const char *from = own, *to = own + strlen(own);
	const char *um = strstr(own, "/user@");
	if (um) {
		const char *end = strchr(um + 1, '/');
		if (user)
			from = end ? end : to;
		else
			to = um;
	} else if (user) {
		return NULL;
	}
	const char *found = NULL;
	size_t found_len = 0;
	for (const char *p = from; p < to;) {
		while (p < to && *p == '/')
			p++;
		const char *e = p;
		while (e < to && *e != '/')
			e++;
		size_t n = (size_t)(e - p);
		if (n > 6 && memcmp(e - 6, ".slice", 6) == 0) {
			found = p;
			found_len = n;
		}
		p = e;
	}
	if (!found || found_len >= len)
		return NULL;
	memcpy(out, found, found_len);
	out[found_len] = '\0';
	return out;
}
