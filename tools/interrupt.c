/*
 * Ctrl-C, SIGTERM and SIGHUP while jails run: instead of dying at once
 * (the jails would die with us, but their run cgroups would stay until
 * the next airlock sweeps them, and no result or report would be
 * written), `airlock run` and `airlock validate` block these signals and
 * read them from a signalfd in the loop that waits for the jails. A
 * signal cancels every run; each ends, is cleaned up and reported as
 * usual, and airlock exits 128 + the signal's number.
 *
 * The jail's init empties its signal mask before anything else runs, so
 * modules never inherit the blocked signals.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "tools/cli.h"

static sigset_t interrupt_set(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	return set;
}

int cli_interrupt_open(struct cli_interrupt *in, struct al_error *err)
{
	sigset_t set = interrupt_set();
	in->signo = 0;
	if (sigprocmask(SIG_BLOCK, &set, &in->saved) < 0)
		return al_error_sys(err, errno, "sigprocmask");
	in->fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (in->fd < 0) {
		int saved = errno;
		sigprocmask(SIG_SETMASK, &in->saved, NULL);
		return al_error_sys(err, saved, "signalfd");
	}
	return 0;
}

int cli_interrupt_take(struct cli_interrupt *in)
{
	struct signalfd_siginfo si;
	while (read(in->fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		if (in->signo == 0)
			in->signo = (int)si.ssi_signo;
	return in->signo;
}

void cli_interrupt_close(struct cli_interrupt *in)
{
	if (in->fd < 0)
		return;
	close(in->fd);
	in->fd = -1;
	sigprocmask(SIG_SETMASK, &in->saved, NULL);
}

void cli_interrupt_reason(const struct cli_interrupt *in, char *buf, size_t len)
{
	snprintf(buf, len, "interrupted by SIG%s",
		 sigabbrev_np(in->signo) ? sigabbrev_np(in->signo) : "?");
}
