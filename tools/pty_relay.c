/*
 * A terminal of the module's own for `airlock run`.
 *
 * Handing the caller's terminal to the module lets it change what belongs
 * to the caller: the line discipline (N_NULL leaves the terminal dead until
 * reset; with ldisc_autoload a rare discipline loads a kernel module), echo
 * and the other modes, the window size, the input queue (flushed), and the
 * open file description's flags (left non-blocking, which breaks the shell
 * that gets the terminal back). So where the caller's stdin, stdout or
 * stderr is a terminal, the module gets the slave of a fresh pty instead,
 * set up like the caller's terminal (modes, window size), and airlock
 * relays between the two: the caller's input to the master, the master's
 * output to the caller's terminal, window size changes (SIGWINCH) onto the
 * pty. Whatever the module does to its pty stays there.
 *
 * While the caller's stdin is a terminal it is put in a raw mode of
 * airlock's (no echo, no line editing: the pty's own line discipline does
 * both, as the module asked), except that ^C and ^\ still signal airlock,
 * which cancels the run as before; ^Z is off, so airlock is never stopped
 * with the terminal in that mode. The caller's modes are restored on every
 * way out but SIGKILL.
 *
 * With --json stdout is the result, so only a terminal on stdin is
 * relayed: the caller's terminal keeps its own line editing and echo, the
 * pty echoes nothing, and the pty's output is dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "tools/cli.h"

void cli_pty_init(struct cli_pty *p)
{
	memset(p, 0, sizeof(*p));
	p->master = p->slave = p->term_in = p->term_out = p->winch_fd = -1;
}

static int open_pair(struct cli_pty *p, struct al_error *err)
{
	p->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (p->master < 0)
		return al_error_sys(err, errno, "terminal: posix_openpt");
	char name[64];
	if (grantpt(p->master) < 0 || unlockpt(p->master) < 0 ||
	    ptsname_r(p->master, name, sizeof(name)) != 0)
		return al_error_sys(err, errno, "terminal: set up the pty");
	p->slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (p->slave < 0)
		return al_error_sys(err, errno, "terminal: open %s", name);
	int flags = fcntl(p->master, F_GETFL);
	if (flags < 0 || fcntl(p->master, F_SETFL, flags | O_NONBLOCK) < 0)
		return al_error_sys(err, errno, "terminal: pty master");
	return 0;
}

/* The caller's modes and size on the pty, adjusted to who echoes. */
static int copy_terminal(struct cli_pty *p, int from, bool json,
			 struct al_error *err)
{
	struct termios t;
	struct winsize ws;
	if (tcgetattr(from, &t) < 0)
		return al_error_sys(err, errno, "terminal: tcgetattr");
	if (json)
		t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	else if (p->term_in < 0)
		t.c_oflag &= ~(tcflag_t)OPOST; /* the caller's does it */
	if (tcsetattr(p->slave, TCSANOW, &t) < 0)
		return al_error_sys(err, errno,
				    "terminal: tcsetattr on the pty");
	if (ioctl(from, TIOCGWINSZ, &ws) == 0)
		(void)ioctl(p->master, TIOCSWINSZ, &ws);
	return 0;
}

static int make_raw(struct cli_pty *p, struct al_error *err)
{
	if (tcgetattr(p->term_in, &p->saved) < 0)
		return al_error_sys(err, errno, "terminal: tcgetattr");
	struct termios t = p->saved;
	t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR |
				 IGNCR | ICRNL | IXON);
	t.c_oflag &= ~(tcflag_t)OPOST;
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | IEXTEN);
	t.c_lflag |= ISIG;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	t.c_cc[VSUSP] = _POSIX_VDISABLE;
	if (tcsetattr(p->term_in, TCSADRAIN, &t) < 0)
		return al_error_sys(err, errno, "terminal: raw mode");
	p->raw = true;
	return 0;
}

static int watch_winch(struct cli_pty *p, struct al_error *err)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGWINCH);
	if (sigprocmask(SIG_BLOCK, &set, &p->saved_mask) < 0)
		return al_error_sys(err, errno, "sigprocmask");
	p->mask_saved = true;
	p->winch_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (p->winch_fd < 0)
		return al_error_sys(err, errno, "signalfd");
	return 0;
}

int cli_pty_open(struct cli_pty *p, int stdio[3], bool json,
		 struct al_error *err)
{
	cli_pty_init(p);
	bool tty[3];
	for (int i = 0; i < 3; i++)
		tty[i] = isatty(i) && !(json && i > 0);
	if (!tty[0] && !tty[1] && !tty[2])
		return 0;
	p->term_in = tty[0] ? STDIN_FILENO : -1;
	p->term_out = json ? -1 : tty[1] ? STDOUT_FILENO : tty[2] ? 2 : -1;
	int from = tty[0] ? 0 : tty[1] ? 1 : 2;
	if (open_pair(p, err) < 0 || copy_terminal(p, from, json, err) < 0 ||
	    watch_winch(p, err) < 0 ||
	    (!json && p->term_in >= 0 && make_raw(p, err) < 0)) {
		cli_pty_close(p);
		return -1;
	}
	for (int i = 0; i < 3; i++)
		if (tty[i])
			stdio[i] = p->slave;
	return 0;
}

void cli_pty_started(struct cli_pty *p)
{
	/* the jail has its copies: the master sees EIO once they are gone */
	al_closep(&p->slave);
}

int cli_pty_pollfds(struct cli_pty *p, struct pollfd *pfd)
{
	if (p->master < 0 || p->hung_up)
		return 0;
	int n = 0;
	pfd[n++] = (struct pollfd){
		.fd = p->master,
		.events = (short)(POLLIN | (p->in_len ? POLLOUT : 0))
	};
	pfd[n++] = (struct pollfd){ .fd = p->winch_fd, .events = POLLIN };
	/* read more input only once the last was taken */
	if (p->term_in >= 0 && !p->in_len && !p->in_eof)
		pfd[n++] = (struct pollfd){ .fd = p->term_in,
					    .events = POLLIN };
	return n;
}

static void write_out(struct cli_pty *p, const char *buf, size_t len)
{
	while (p->term_out >= 0 && len) {
		ssize_t w = write(p->term_out, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			p->term_out = -1; /* the caller's terminal is gone */
			return;
		}
		buf += w;
		len -= (size_t)w;
	}
}

/* Copy what the pty has for the caller; false once it has nothing more
 * to say (EIO: every slave closed). */
static bool pump_output(struct cli_pty *p)
{
	char buf[8192];
	for (;;) {
		ssize_t n = read(p->master, buf, sizeof(buf));
		if (n > 0) {
			write_out(p, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && errno == EAGAIN;
	}
}

/* One read, only when poll said the caller's terminal has input: its
 * file description stays blocking, as the caller left it. */
static void read_input(struct cli_pty *p)
{
	ssize_t n = read(p->term_in, p->in, sizeof(p->in));
	if (n > 0) {
		p->in_len = (size_t)n;
		p->in_off = 0;
	} else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
		p->in_eof = true;
	}
}

static void write_input(struct cli_pty *p)
{
	ssize_t w = write(p->master, p->in + p->in_off, p->in_len);
	if (w > 0) {
		p->in_off += (size_t)w;
		p->in_len -= (size_t)w;
	}
}

static void resize(struct cli_pty *p)
{
	struct signalfd_siginfo si;
	struct winsize ws;
	while (read(p->winch_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		;
	int from = p->term_in >= 0 ? p->term_in : p->term_out;
	if (from >= 0 && ioctl(from, TIOCGWINSZ, &ws) == 0)
		(void)ioctl(p->master, TIOCSWINSZ, &ws);
}

void cli_pty_handle(struct cli_pty *p, const struct pollfd *pfd, int n)
{
	for (int i = 0; i < n; i++) {
		if (!pfd[i].revents)
			continue;
		if (pfd[i].fd == p->winch_fd)
			resize(p);
		else if (pfd[i].fd == p->term_in)
			read_input(p);
	}
	if (p->in_len && !p->hung_up)
		write_input(p);
	if (p->master >= 0 && !p->hung_up && !pump_output(p))
		p->hung_up = true; /* nobody holds the slave any more */
}

void cli_pty_drain(struct cli_pty *p)
{
	if (p->master >= 0 && !p->hung_up)
		(void)pump_output(p);
}

void cli_pty_close(struct cli_pty *p)
{
	if (p->raw)
		(void)tcsetattr(STDIN_FILENO, TCSADRAIN, &p->saved);
	p->raw = false;
	al_closep(&p->winch_fd);
	if (p->mask_saved)
		(void)sigprocmask(SIG_SETMASK, &p->saved_mask, NULL);
	p->mask_saved = false;
	al_closep(&p->slave);
	al_closep(&p->master);
}
