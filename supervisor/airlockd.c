/*
 * airlockd --state-dir DIR --socket PATH [OPTIONS]
 *
 * The supervisor in the foreground (systemd style), logging JSON lines to
 * stderr. Configuration (defaults, environment, flags) is one table,
 * supervisor/settings.c, read by config.c; docs/man/airlockd.8 lists it.
 * Under systemd (Type=notify) it sends READY=1 and STOPPING=1 to
 * NOTIFY_SOCKET.
 *
 * Exit status: 0 after a clean stop, 1 when start-up or the loop fails,
 * 2 for a bad option or environment variable.
 */
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "policy/policy.h"
#include "supervisor/supervisor.h"

#define EXIT_USAGE 2

/*
 * Each running jail costs the daemon about fourteen fds (pidfd, timerfd,
 * pipes, sync socket, seccomp listener, cgroup directories, its epoll fd)
 * and each client one: the usual soft limit of 1024 would cap the daemon
 * near seventy concurrent jails. Raise the soft limit to the hard one; the
 * jails themselves get the policy's open_files limit.
 */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	struct supervisor_config cfg;
	struct al_error err = { 0 };
	int rc;

	rc = supervisor_config_load(&cfg, argc, argv, &err);
	if (rc < 0) {
		fprintf(stderr, "airlockd: %s\n(airlockd --help)\n", err.msg);
		return EXIT_USAGE;
	}
	if (rc == 1) {
		supervisor_config_usage(stdout);
		supervisor_config_release(&cfg);
		return 0;
	}
	/* STATE_DIR/policies is this daemon's, whatever the default is */
	policy_set_state_dir(cfg.state_dir);
	raise_fd_limit();
	/* nothing the daemon does may depend on where it was started: a
	 * writable working directory must not be where it looks for files */
	if (chdir("/") < 0) {
		perror("airlockd: chdir /");
		supervisor_config_release(&cfg);
		return 1;
	}
	struct supervisor *s = supervisor_new(&cfg, &err);
	if (!s) {
		fprintf(stderr, "airlockd: %s\n", err.msg);
		supervisor_config_release(&cfg);
		return 1;
	}
	rc = supervisor_run(s, &err);
	if (rc < 0)
		fprintf(stderr, "airlockd: %s\n", err.msg);
	supervisor_free(s);
	supervisor_config_release(&cfg);
	return rc < 0 ? 1 : 0;
}
