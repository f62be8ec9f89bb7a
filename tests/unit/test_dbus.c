/*
 * Unit tests for the D-Bus codec and transport (sandbox/dbus.c) and the
 * pure parts of the cgroup driver choice (cgroup_v2_choose,
 * cgroup_systemd_slice).
 *
 * The codec is checked against itself and against hostile bytes (every
 * truncation and every single-byte change of a valid message must parse
 * or fail cleanly: ASan sees any overread); the transport against a real
 * dbus-daemon started for the test, which disconnects a client that sends
 * a malformed message, so a well-formed error answer to StartTransientUnit
 * proves that the message airlock sends systemd is valid D-Bus.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/internal.h"

static void body_uoss(struct dbus_buf *b)
{
	dbus_buf_u32(b, 42);
	dbus_buf_string(b, "/org/freedesktop/systemd1/job/42");
	dbus_buf_string(b, "airlock-1-2.scope");
	dbus_buf_string(b, "done");
}

/* A JobRemoved signal as systemd sends it: written as a call, retyped. */
static void job_removed(struct dbus_buf *b)
{
	const struct dbus_call c = {
		.path = "/org/freedesktop/systemd1",
		.interface = "org.freedesktop.systemd1.Manager",
		.member = "JobRemoved",
		.signature = "uoss",
	};
	size_t start = dbus_msg_begin(b, 7, &c);
	body_uoss(b);
	assert_int_equal(dbus_msg_end(b, start), 0);
	b->data[1] = DBUS_SIGNAL;
}

static void test_round_trip(void **state)
{
	(void)state;
	struct dbus_buf b = { 0 };
	job_removed(&b);
	struct dbus_msg m;
	assert_int_equal(dbus_msg_size(b.data, b.len), b.len);
	assert_int_equal(dbus_msg_parse(b.data, b.len, &m), 0);
	assert_int_equal(m.type, DBUS_SIGNAL);
	assert_int_equal(m.serial, 7);
	assert_string_equal(m.path, "/org/freedesktop/systemd1");
	assert_string_equal(m.member, "JobRemoved");
	assert_string_equal(m.signature, "uoss");
	struct dbus_rd r = dbus_msg_body(&m, b.data);
	uint32_t id;
	const char *job, *unit, *result;
	assert_int_equal(dbus_rd_u32(&r, &id), 0);
	assert_int_equal(dbus_rd_string(&r, &job), 0);
	assert_int_equal(dbus_rd_string(&r, &unit), 0);
	assert_int_equal(dbus_rd_string(&r, &result), 0);
	assert_int_equal(id, 42);
	assert_string_equal(unit, "airlock-1-2.scope");
	assert_string_equal(result, "done");
	/* nothing more in the body */
	assert_int_equal(dbus_rd_u32(&r, &id), -1);
	dbus_buf_free(&b);
}

/* Every prefix and every one-byte change: a clean yes or no, no overread
 * (the copy is exactly the message's size, so ASan catches one). */
static void test_hostile_bytes(void **state)
{
	(void)state;
	struct dbus_buf b = { 0 };
	job_removed(&b);
	struct dbus_msg m;
	for (size_t len = 0; len < b.len; len++) {
		unsigned char *copy = malloc(len ? len : 1);
		memcpy(copy, b.data, len);
		assert_int_equal(dbus_msg_parse(copy, len, &m), -1);
		free(copy);
	}
	for (size_t i = 0; i < b.len; i++) {
		for (int v = 0; v < 256; v += 51) {
			unsigned char *copy = malloc(b.len);
			memcpy(copy, b.data, b.len);
			copy[i] ^= (unsigned char)(v | 1);
			if (dbus_msg_parse(copy, b.len, &m) == 0) {
				struct dbus_rd r = dbus_msg_body(&m, copy);
				const char *s;
				uint32_t u;
				(void)dbus_rd_u32(&r, &u);
				(void)dbus_rd_string(&r, &s);
			}
			free(copy);
		}
	}
	dbus_buf_free(&b);
}

static void test_refused_shapes(void **state)
{
	(void)state;
	struct dbus_buf b = { 0 };
	struct dbus_msg m;
	job_removed(&b);
	b.data[0] = 'B'; /* big-endian: not read here */
	assert_int_equal(dbus_msg_parse(b.data, b.len, &m), -1);
	b.data[0] = 'l';
	b.data[3] = 2; /* protocol version */
	assert_int_equal(dbus_msg_parse(b.data, b.len, &m), -1);
	b.data[3] = 1;
	/* a body length past the bound */
	unsigned char big[16];
	memcpy(big, b.data, 16);
	big[4] = big[5] = big[6] = 0xff;
	big[7] = 0x7f;
	assert_int_equal(dbus_msg_size(big, 16), 0);
	dbus_buf_free(&b);

	/* a string whose length runs past the end, one without its NUL */
	unsigned char s1[] = { 5, 0, 0, 0, 'a', 'b' };
	struct dbus_rd r = { .p = s1, .len = sizeof(s1) };
	const char *s;
	assert_int_equal(dbus_rd_string(&r, &s), -1);
	unsigned char s2[] = { 2, 0, 0, 0, 'a', 'b', 'c' };
	r = (struct dbus_rd){ .p = s2, .len = sizeof(s2) };
	assert_int_equal(dbus_rd_string(&r, &s), -1);
	unsigned char s3[] = { 3, 0, 0, 0, 'a', 0, 'c', 0 };
	r = (struct dbus_rd){ .p = s3, .len = sizeof(s3) };
	assert_int_equal(dbus_rd_string(&r, &s), -1);
	/* non-zero padding before a u32 */
	unsigned char p1[] = { 1, 9, 0, 0, 1, 0, 0, 0 };
	r = (struct dbus_rd){ .p = p1, .len = sizeof(p1), .pos = 1 };
	uint32_t u;
	assert_int_equal(dbus_rd_u32(&r, &u), -1);
	/* a writer past the bound fails once, and says so at the end */
	struct dbus_buf w = { 0 };
	const struct dbus_call c = { .path = "/", .member = "M" };
	size_t start = dbus_msg_begin(&w, 1, &c);
	char *huge = malloc(DBUS_MAX_MESSAGE + 1);
	memset(huge, 'x', DBUS_MAX_MESSAGE);
	huge[DBUS_MAX_MESSAGE] = '\0';
	dbus_buf_string(&w, huge);
	free(huge);
	assert_int_equal(dbus_msg_end(&w, start), -1);
	dbus_buf_free(&w);
}

static void test_choose(void **state)
{
	(void)state;
	enum cgroup_v2_way way;
	const struct cgroup_v2_facts unit = { .systemd = true,
					      .root_user = true,
					      .delegated = true,
					      .alone = true };
	assert_null(cgroup_v2_choose(&unit, &way));
	assert_int_equal(way, CGROUP_V2_DELEGATED);
	/* a login shell, sudo, a CI runner: never restructure their cgroup */
	const struct cgroup_v2_facts session = { .systemd = true,
						 .root_user = true };
	assert_null(cgroup_v2_choose(&session, &way));
	assert_int_equal(way, CGROUP_V2_SYSTEMD);
	const struct cgroup_v2_facts shared = { .systemd = true,
						.delegated = true };
	assert_null(cgroup_v2_choose(&shared, &way));
	assert_int_equal(way, CGROUP_V2_SYSTEMD);
	const struct cgroup_v2_facts bare_root = { .root_user = true,
						   .alone = true };
	assert_null(cgroup_v2_choose(&bare_root, &way));
	assert_int_equal(way, CGROUP_V2_UNDER_ROOT);
	const struct cgroup_v2_facts user_alone = { .delegated = true,
						    .alone = true };
	assert_null(cgroup_v2_choose(&user_alone, &way));
	assert_int_equal(way, CGROUP_V2_DELEGATED);
	const struct cgroup_v2_facts user_shared = { .delegated = true };
	assert_non_null(strstr(cgroup_v2_choose(&user_shared, &way),
			       "other processes"));
	const struct cgroup_v2_facts user_none = { .alone = true };
	assert_non_null(
		strstr(cgroup_v2_choose(&user_none, &way), "not delegated"));
}

static void test_slice(void **state)
{
	(void)state;
	char out[64];
	assert_string_equal(
		cgroup_systemd_slice("/user.slice/user-0.slice/session-3.scope",
				     false, out, sizeof(out)),
		"user-0.slice");
	assert_string_equal(cgroup_systemd_slice("/system.slice/gitlab-runner"
						 ".service",
						 false, out, sizeof(out)),
			    "system.slice");
	assert_null(cgroup_systemd_slice("/", false, out, sizeof(out)));
	assert_null(
		cgroup_systemd_slice("/init.scope", false, out, sizeof(out)));
	const char *um = "/user.slice/user-1000.slice/user@1000.service/"
			 "app.slice/run-u7.service";
	assert_string_equal(cgroup_systemd_slice(um, true, out, sizeof(out)),
			    "app.slice");
	/* the system manager cannot place a unit in a user manager's slice */
	assert_string_equal(cgroup_systemd_slice(um, false, out, sizeof(out)),
			    "user-1000.slice");
	/* a session scope belongs to the system manager, not the user's */
	assert_null(cgroup_systemd_slice("/user.slice/user-1000.slice/"
					 "session-2.scope",
					 true, out, sizeof(out)));
	assert_null(cgroup_systemd_slice("/user.slice/user-1000.slice/"
					 "user@1000.service",
					 true, out, sizeof(out)));
	char tiny[4];
	assert_null(cgroup_systemd_slice("/system.slice/x.service", false, tiny,
					 sizeof(tiny)));
}

/* ------------------------------------------- against a real dbus-daemon */

struct bus {
	char dir[64], path[96];
	pid_t pid;
};

static int bus_start(void **state)
{
	struct bus *bus = calloc(1, sizeof(*bus));
	snprintf(bus->dir, sizeof(bus->dir), "/tmp/airlock-dbus-XXXXXX");
	assert_non_null(mkdtemp(bus->dir));
	snprintf(bus->path, sizeof(bus->path), "%s/bus", bus->dir);
	/* no service directories: nothing is activated for a missing name */
	char conf[96];
	snprintf(conf, sizeof(conf), "%s/bus.conf", bus->dir);
	FILE *f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f,
		"<busconfig><type>session</type>"
		"<listen>unix:path=%s</listen><auth>EXTERNAL</auth>"
		"<policy context=\"default\"><allow send_destination=\"*\"/>"
		"<allow receive_sender=\"*\"/><allow own=\"*\"/>"
		"</policy></busconfig>\n",
		bus->path);
	fclose(f);
	bus->pid = fork();
	if (bus->pid == 0) {
		execlp("dbus-daemon", "dbus-daemon", "--nofork", "--nopidfile",
		       "--config-file", conf, (char *)NULL);
		_exit(127);
	}
	struct stat st;
	for (int i = 0; i < 500 && stat(bus->path, &st) < 0; i++) {
		int status;
		if (waitpid(bus->pid, &status, WNOHANG) == bus->pid)
			fail_msg("dbus-daemon exited (is it installed?)");
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	assert_int_equal(stat(bus->path, &st), 0);
	*state = bus;
	return 0;
}

static int bus_stop(void **state)
{
	struct bus *bus = *state;
	kill(bus->pid, SIGTERM);
	waitpid(bus->pid, NULL, 0);
	char conf[96];
	snprintf(conf, sizeof(conf), "%s/bus.conf", bus->dir);
	unlink(conf);
	unlink(bus->path);
	rmdir(bus->dir);
	free(bus);
	return 0;
}

static void test_real_bus(void **state)
{
	struct bus *bus = *state;
	struct dbus_conn c;
	struct al_error err = { 0 };
	assert_int_equal(dbus_conn_open(&c, bus->path, false, &err), 0);
	/* the message the driver sends systemd, to a bus without systemd:
	 * the daemon checks it against its signature before it answers */
	assert_int_equal(cgroup_systemd_call_start(&c, "airlock-1-2.scope",
						   "system.slice", getpid(),
						   &err),
			 -1);
	print_message("answer: %s\n", err.msg);
	assert_non_null(strstr(err.msg, "ServiceUnknown"));
	assert_non_null(strstr(err.msg, "StartTransientUnit"));
	/* still connected: the bus did not find it malformed */
	const struct dbus_call get_id = {
		.destination = "org.freedesktop.DBus",
		.path = "/org/freedesktop/DBus",
		.interface = "org.freedesktop.DBus",
		.member = "GetId",
	};
	struct dbus_msg reply;
	assert_int_equal(dbus_conn_call(&c, &get_id, NULL, NULL, &reply, &err),
			 0);
	assert_string_equal(reply.signature, "s");
	struct dbus_rd r = dbus_msg_body(&reply, c.in);
	const char *id;
	assert_int_equal(dbus_rd_string(&r, &id), 0);
	assert_int_equal(strlen(id), 32);
	dbus_conn_close(&c);

	/* not a bus at all: a clear error naming the socket */
	assert_int_equal(dbus_conn_open(&c, "/nonexistent/bus", false, &err),
			 -1);
	assert_non_null(strstr(err.msg, "/nonexistent/bus"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_hostile_bytes),
		cmocka_unit_test(test_refused_shapes),
		cmocka_unit_test(test_choose),
		cmocka_unit_test(test_slice),
		cmocka_unit_test_setup_teardown(test_real_bus, bus_start,
						bus_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
