/*
 * probe: the program the integration tests run inside a jail.
 *
 * Each subcommand does one thing a hostile module might try (read a file,
 * fill a disk, fork without end, call a syscall that escapes the jail) and
 * says what happened in one line the tests can parse:
 *
 *   NAME: ok[ DETAIL]     the operation succeeded        (exit status 0)
 *   NAME: ERRNAME         it failed with errno ERRNAME   (exit status 1)
 *
 * A usage error prints the usage to stderr and exits with status 2. A few
 * subcommands stream data instead (echo, cat, flood, stdin, env) or never
 * return (spin, orphan, forkbomb); their comments say so.
 *
 * The probe is static so that it runs in a jail whatever libraries the jail
 * has, and it talks to the kernel directly (syscall(2)) where glibc has no
 * wrapper: what is being tested is the kernel's answer, not the library's.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/kcmp.h>
#include <linux/keyctl.h>
#include <linux/netlink.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stddef.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/xattr.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/quota.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
#define MIB (1024 * 1024)
#define FILL_FILE_MAX (4ULL * MIB)
#define FILL_TOTAL_MAX (1024ULL * MIB)
#define CONNECT_TIMEOUT_MS 2000

extern char **environ;

/* ----------------------------------------------------------- errno names */

#define ERRNAME_MAX 16
/* clang-format off */
#define E(name) { name, #name }
/* clang-format on */

/* Only the canonical spelling of aliased values (EAGAIN, not EWOULDBLOCK;
 * EOPNOTSUPP, not ENOTSUP): the first entry that matches wins. */
static const struct {
	int value;
	const char *name;
	/* clang-format off */
} errno_names[] = {
	E(EPERM), E(ENOENT), E(ESRCH), E(EINTR), E(EIO), E(ENXIO),
	E(E2BIG), E(ENOEXEC), E(EBADF), E(ECHILD), E(EAGAIN), E(ENOMEM),
	E(EACCES), E(EFAULT), E(ENOTBLK), E(EBUSY), E(EEXIST), E(EXDEV),
	E(ENODEV), E(ENOTDIR), E(EISDIR), E(EINVAL), E(ENFILE),
	E(EMFILE), E(ENOTTY), E(ETXTBSY), E(EFBIG), E(ENOSPC),
	E(ESPIPE), E(EROFS), E(EMLINK), E(EPIPE), E(EDOM), E(ERANGE),
	E(EDEADLK), E(ENAMETOOLONG), E(ENOLCK), E(ENOSYS), E(ENOTEMPTY),
	E(ELOOP), E(ENOMSG), E(ENODATA), E(ETIME), E(EOVERFLOW),
	E(EBADFD), E(ENOTSOCK), E(EDESTADDRREQ), E(EMSGSIZE),
	E(EPROTOTYPE), E(ENOPROTOOPT), E(EPROTONOSUPPORT),
	E(ESOCKTNOSUPPORT), E(EOPNOTSUPP), E(EPFNOSUPPORT),
	E(EAFNOSUPPORT), E(EADDRINUSE), E(EADDRNOTAVAIL), E(ENETDOWN),
	E(ENETUNREACH), E(ENETRESET), E(ECONNABORTED), E(ECONNRESET),
	E(ENOBUFS), E(EISCONN), E(ENOTCONN), E(ETIMEDOUT),
	E(ECONNREFUSED), E(EHOSTDOWN), E(EHOSTUNREACH), E(EALREADY),
	E(EINPROGRESS), E(ESTALE), E(EDQUOT), E(ECANCELED), E(ENOKEY),
	E(EKEYEXPIRED), E(EKEYREVOKED), E(EKEYREJECTED), E(EOWNERDEAD),
	E(ENOTRECOVERABLE), E(ERFKILL), E(EHWPOISON), E(ENOMEDIUM),
	E(EMEDIUMTYPE), E(EILSEQ), E(EUSERS), E(ENOSTR), E(ENOSR),
};
/* clang-format on */

#undef E

/* The symbolic name of `err`, or "E<number>" (written into `buf`) for a
 * value the table does not know. */
static const char *errno_name(int err, char buf[ERRNAME_MAX])
{
	for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]);
	     i++)
		if (errno_names[i].value == err)
			return errno_names[i].name;
	snprintf(buf, ERRNAME_MAX, "E%d", err);
	return buf;
}

/* --------------------------------------------------------------- results */

/* "NAME: ERRNAME"; returns the exit status of a failed operation. */
static int fail(const char *name, int err)
{
	char buf[ERRNAME_MAX];

	printf("%s: %s\n", name, errno_name(err, buf));
	return 1;
}

/* "NAME: ok"; returns the exit status of a successful operation. */
static int ok(const char *name)
{
	printf("%s: ok\n", name);
	return 0;
}

/* "NAME: ok DETAIL". */
static int okf(const char *name, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int okf(const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("%s: ok ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return 0;
}

/* ---------------------------------------------------------------- helpers */

/* A decimal integer in [min, max], nothing else. */
static bool parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* A non-negative decimal size such as a byte count. */
static bool parse_u64(const char *s, unsigned long long *out)
{
	char *end;

	if (*s == '-')
		return false;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return !errno && end != s && !*end;
}

/* Keep a CPU busy. The empty asm is a side effect the compiler must keep,
 * so the loop is neither removed nor turned into a trap. */
static void burn(unsigned long iterations)
{
	for (unsigned long i = 0; i < iterations; i++)
		__asm__ volatile("" ::: "memory");
}

static __attribute__((noreturn)) void spin_forever(void)
{
	for (;;)
		burn(ULONG_MAX);
}

/* write(2) until `len` bytes are out; `done` (may be NULL) counts the bytes
 * written even when it fails part-way, which is what `fill` reports. */
static int write_all(int fd, const void *buf, size_t len,
		     unsigned long long *done)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		if (done)
			*done += (unsigned long long)n;
	}
	return 0;
}

/* Copy `in` to `out` until end of file. On failure errno is set and
 * `*reading` says which side failed. */
static int copy_fd(int in, int out, bool *reading)
{
	static char buf[CHUNK];

	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		*reading = true;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		*reading = false;
		if (write_all(out, buf, (size_t)n, NULL) < 0)
			return -1;
	}
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of `dir` whose names are decimal numbers, sorted; `skip_own`
 * leaves out the number of the descriptor used to read the directory (for
 * /proc/self/fd). Returns the count, or -1 with errno set. */
static ssize_t numeric_entries(const char *dir, bool skip_own, long **out)
{
	DIR *d = opendir(dir);
	long *list = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int err = 0;

	if (!d)
		return -1;
	for (errno = 0; (de = readdir(d)); errno = 0) {
		long v;

		if (!parse_long(de->d_name, 0, LONG_MAX, &v))
			continue;
		if (skip_own && v == dirfd(d))
			continue;
		if (n == cap) {
			size_t want = cap ? cap * 2 : 64;
			long *grown = realloc(list, want * sizeof(*list));

			if (!grown) {
				err = ENOMEM;
				break;
			}
			list = grown;
			cap = want;
		}
		list[n++] = v;
	}
	if (!err)
		err = errno;
	closedir(d);
	if (err) {
		free(list);
		errno = err;
		return -1;
	}
	qsort(list, n, sizeof(*list), cmp_long);
	*out = list;
	return (ssize_t)n;
}

static int print_numbers(const char *name, const char *dir, bool skip_own)
{
	long *list = NULL;
	ssize_t n = numeric_entries(dir, skip_own, &list);

	if (n < 0)
		return fail(name, errno);
	printf("%s: ok", name);
	for (ssize_t i = 0; i < n; i++)
		printf(" %ld", list[i]);
	putchar('\n');
	free(list);
	return 0;
}

/* ------------------------------------------------- process and signals */

/* echo ARG...: the arguments as the jail passed them, space-separated. */
static int cmd_echo(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		printf("%s%s", i ? " " : "", argv[i]);
	putchar('\n');
	return 0;
}

/* exit N: a module's own exit status must reach the caller unchanged. */
static int cmd_exit(int argc, char **argv)
{
	long code;

	if (!parse_long(argv[0], 0, 255, &code))
		return 2;
	exit((int)code);
}

/* segv: die of SIGSEGV. The null pointer comes out of an empty asm so
 * the compiler cannot see that it is null, and so can neither drop the
 * store nor turn it into a trap (SIGILL). */
static int cmd_segv(int argc, char **argv)
{
	volatile int *target = NULL;

	__asm__ volatile("" : "+r"(target));
	*target = 1;
	printf("segv: survived\n");
	return 1;
}

/* abort: die of SIGABRT. */
static int cmd_abort(int argc, char **argv)
{
	abort();
}

/* raise SIGNUM: die of a chosen signal, or say that it was survivable. */
static int cmd_raise(int argc, char **argv)
{
	long sig;

	if (!parse_long(argv[0], 1, SIGRTMAX, &sig))
		return 2;
	if (raise((int)sig) != 0)
		return fail("raise", errno);
	printf("raise: survived\n");
	return 0;
}

/* sleep MS: outlive a wall-clock limit. */
static int cmd_sleep(int argc, char **argv)
{
	long ms;
	struct timespec left;

	if (!parse_long(argv[0], 0, LONG_MAX, &ms))
		return 2;
	left.tv_sec = ms / 1000;
	left.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&left, &left) < 0)
		if (errno != EINTR)
			return fail("sleep", errno);
	return ok("sleep");
}

/*
 * Use up a per-user kernel counter, then hold it for MS: "inotify N MS"
 * makes up to N inotify instances (fs.inotify.max_user_instances counts
 * them per uid); "sigqueue N MS" queues up to N blocked real-time signals
 * to itself (RLIMIT_SIGPENDING counts them per uid). Prints
 * "NAME: COUNT ok" or "NAME: COUNT ERRNO" for the first failure.
 */
static int hold_then_report(const char *name, long made, int err, long ms)
{
	char buf[ERRNAME_MAX];
	printf("%s: %ld %s\n", name, made, err ? errno_name(err, buf) : "ok");
	fflush(stdout);
	struct timespec left = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&left, &left) < 0 && errno == EINTR)
		;
	return 0;
}

static int cmd_inotify(int argc, char **argv)
{
	long n, ms, made = 0;
	int err = 0;
	if (!parse_long(argv[0], 0, 100000, &n) ||
	    !parse_long(argv[1], 0, LONG_MAX, &ms))
		return 2;
	for (; made < n; made++)
		if (inotify_init1(IN_CLOEXEC) < 0) {
			err = errno;
			break;
		}
	return hold_then_report("inotify", made, err, ms);
}

static int cmd_sigqueue(int argc, char **argv)
{
	long n, ms, made = 0;
	int err = 0;
	sigset_t rt;
	if (!parse_long(argv[0], 0, 100000000, &n) ||
	    !parse_long(argv[1], 0, LONG_MAX, &ms))
		return 2;
	sigemptyset(&rt);
	sigaddset(&rt, SIGRTMIN);
	if (sigprocmask(SIG_BLOCK, &rt, NULL) < 0)
		return fail("sigqueue", errno);
	for (; made < n; made++)
		if (sigqueue(getpid(), SIGRTMIN, (union sigval){ 0 }) < 0) {
			err = errno;
			break;
		}
	return hold_then_report("sigqueue", made, err, ms);
}

/* spin: use all the CPU time a limit allows. */
static int cmd_spin(int argc, char **argv)
{
	spin_forever();
}

/* getppid N: N cheap syscalls that every policy allows (the learning
 * benchmark's load, and the learning tests' "one extra syscall"). */
static int cmd_getppid(int argc, char **argv)
{
	long n = strtol(argv[0], NULL, 10);
	long sum = 0;
	for (long i = 0; i < n; i++)
		sum += syscall(SYS_getppid);
	printf("getppid %ld: %s\n", n, n && sum / n != 0 ? "ok" : "none");
	return 0;
}

/* The grandchild of `orphan`: escape the session and the usual signals
 * that end a job, tell the probe it is ready, and run for ever. */
static __attribute__((noreturn)) void become_orphan(int ready_fd)
{
	int pid;

	setsid();
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	prctl(PR_SET_NAME, "orphan", 0, 0, 0);
	pid = (int)getpid();
	write_all(ready_fd, &pid, sizeof(pid), NULL);
	close(ready_fd);
	spin_forever();
}

/* orphan MARKER: leave a daemon behind that the jail's parent will never
 * wait for. It does not exec, so MARKER stays in its /proc/PID/cmdline for
 * the tests to look for after the jail is gone. The pipe carries the
 * grandchild's pid once it is ready, or minus the errno of a failed fork. */
static int cmd_orphan(int argc, char **argv)
{
	int pipefd[2], msg = 0;
	pid_t child;
	ssize_t n;

	fflush(stdout);
	if (pipe(pipefd) < 0)
		return fail("orphan", errno);
	child = fork();
	if (child < 0)
		return fail("orphan", errno);
	if (child == 0) {
		pid_t grandchild;

		close(pipefd[0]);
		grandchild = fork();
		if (grandchild == 0)
			become_orphan(pipefd[1]);
		if (grandchild < 0) {
			msg = -errno;
			write_all(pipefd[1], &msg, sizeof(msg), NULL);
		}
		_exit(grandchild < 0);
	}
	close(pipefd[1]);
	do
		n = read(pipefd[0], &msg, sizeof(msg));
	while (n < 0 && errno == EINTR);
	waitpid(child, NULL, 0);
	if (n < 0)
		return fail("orphan", errno);
	if (n != sizeof(msg))
		return fail("orphan", EIO);
	if (msg < 0)
		return fail("orphan", -msg);
	okf("orphan", "%d", msg);
	fflush(stdout);
	spin_forever();
}

/* forkbomb: every process forks and burns CPU for ever; failures (the pid
 * limit) are ignored, as a real fork bomb would. */
static __attribute__((noreturn)) void fork_forever(void)
{
	for (;;) {
		fork();
		burn(1UL << 20);
	}
}

static int cmd_forkbomb(int argc, char **argv)
{
	fflush(stdout);
	fork_forever();
}

/* kill PID SIG: signal a process the jail should hide or protect. */
static int cmd_kill(int argc, char **argv)
{
	long pid, sig;

	if (!parse_long(argv[0], INT_MIN, INT_MAX, &pid) ||
	    !parse_long(argv[1], 0, SIGRTMAX, &sig))
		return 2;
	if (kill((pid_t)pid, (int)sig) < 0)
		return fail("kill", errno);
	return ok("kill");
}

/* killall: SIGKILL everything this process may signal. In a jail that is
 * only the jail; its result line is informative, hence always status 0. */
static int cmd_killall(int argc, char **argv)
{
	if (kill(-1, SIGKILL) < 0)
		fail("killall", errno);
	else
		ok("killall");
	return 0;
}

/* pids: the processes this one can see. */
static int cmd_pids(int argc, char **argv)
{
	return print_numbers("pids", "/proc", false);
}

/* exec PATH ARG...: run another program inside the jail. */
static int cmd_exec(int argc, char **argv)
{
	fflush(stdout);
	execv(argv[0], argv);
	return fail("exec", errno);
}

/* ------------------------------------------------------------ resources */

/* alloc MB: take memory in 1 MiB steps and touch every page, so the memory
 * limit sees it. Chunks are never freed: the point is to hold them. */
/* Take and touch MB of memory; 0, or an errno. */
static int touch_mb(long mb)
{
	for (long i = 0; i < mb; i++) {
		char *chunk = malloc(MIB);

		if (!chunk)
			return ENOMEM;
		memset(chunk, 0xa5, MIB);
		/* the chunk escapes here, so the stores above must happen */
		__asm__ volatile("" : : "r"(chunk) : "memory");
	}
	return 0;
}

static int cmd_alloc(int argc, char **argv)
{
	long mb;

	if (!parse_long(argv[0], 0, LONG_MAX / MIB, &mb))
		return 2;
	if (touch_mb(mb))
		return fail("alloc", ENOMEM);
	return okf("alloc", "%ld", mb);
}

/* hog MB: take MB of memory, then spin until killed (what a run killed at
 * its deadline used must still be reported). */
static int cmd_hog(int argc, char **argv)
{
	long mb;

	if (!parse_long(argv[0], 0, LONG_MAX / MIB, &mb))
		return 2;
	if (touch_mb(mb))
		return fail("hog", ENOMEM);
	spin_forever();
}

static const char *tty_result(int err, char buf[ERRNAME_MAX])
{
	return err ? errno_name(err, buf) : "ok";
}

/* ttyattack: what a module could do to the terminal it was handed, on
 * fd 0: a dead line discipline, echo off, a 1x1 window, input flushed,
 * the open file description made non-blocking. Prints each result. */
static int cmd_ttyattack(int argc, char **argv)
{
	char e1[ERRNAME_MAX], e2[ERRNAME_MAX], e3[ERRNAME_MAX], e4[ERRNAME_MAX],
		e5[ERRNAME_MAX];
	int ldisc = 27; /* N_NULL */
	struct termios t;
	struct winsize ws = { .ws_row = 1, .ws_col = 1 };
	int rc_ldisc = ioctl(0, TIOCSETD, &ldisc) < 0 ? errno : 0;
	int rc_echo = 0;
	if (tcgetattr(0, &t) == 0) {
		t.c_lflag &= ~(tcflag_t)ECHO;
		rc_echo = tcsetattr(0, TCSANOW, &t) < 0 ? errno : 0;
	} else {
		rc_echo = errno;
	}
	int rc_ws = ioctl(0, TIOCSWINSZ, &ws) < 0 ? errno : 0;
	int rc_flush = tcflush(0, TCIFLUSH) < 0 ? errno : 0;
	int fl = fcntl(0, F_GETFL);
	int rc_nb = fl < 0 || fcntl(0, F_SETFL, fl | O_NONBLOCK) < 0 ? errno
								     : 0;
	printf("ttyattack: isatty %d ldisc %s echo %s winsize %s flush %s "
	       "nonblock %s\n",
	       isatty(0), tty_result(rc_ldisc, e1), tty_result(rc_echo, e2),
	       tty_result(rc_ws, e3), tty_result(rc_flush, e4),
	       tty_result(rc_nb, e5));
	return 0;
}

/* tcpfill N: N loopback TCP connections whose sender writes until the
 * kernel takes no more and whose receiver never reads; prints the bytes
 * the kernel buffered for the run (what a memory limit must bound), then
 * holds them until killed when a second argument is given. */
static int cmd_tcpfill(int argc, char **argv)
{
	long n;
	static char chunk[65536];
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	unsigned long long queued = 0;

	if (!parse_long(argv[0], 1, 1000, &n))
		return 2;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(l, 1024) < 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &len) < 0)
		return fail("tcpfill", errno);
	for (long i = 0; i < n; i++) {
		int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (c < 0)
			break;
		if (connect(c, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
		    errno != EINPROGRESS)
			break;
		int a = accept(l, NULL, NULL);
		if (a < 0)
			break;
		struct pollfd p = { .fd = c, .events = POLLOUT };
		/* write until nothing more fits for a while */
		while (poll(&p, 1, 10) == 1) {
			ssize_t w = write(c, chunk, sizeof(chunk));
			if (w <= 0)
				break;
			queued += (unsigned long long)w;
		}
	}
	printf("tcpfill: queued %llu\n", queued);
	fflush(stdout);
	if (argc > 1)
		spin_forever();
	return 0;
}

/* flood BYTES: output without end, for the output limit. stdout is the
 * data, so the result goes to stderr. */
static int cmd_flood(int argc, char **argv)
{
	static char buf[CHUNK];
	unsigned long long left;
	char errbuf[ERRNAME_MAX];

	if (!parse_u64(argv[0], &left))
		return 2;
	memset(buf, 'A', sizeof(buf));
	while (left > 0) {
		size_t len = left < sizeof(buf) ? (size_t)left : sizeof(buf);

		if (write_all(STDOUT_FILENO, buf, len, NULL) < 0) {
			fprintf(stderr, "flood: %s\n",
				errno_name(errno, errbuf));
			return 1;
		}
		left -= len;
	}
	fprintf(stderr, "flood: ok\n");
	return 0;
}

/* Write one fill file of at most FILL_FILE_MAX bytes; `total` counts what
 * reached the file system. */
static int fill_one(const char *path, unsigned long long *total)
{
	static char buf[CHUNK];
	unsigned long long written = 0;
	int fd;

	memset(buf, 'F', sizeof(buf));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	while (written < FILL_FILE_MAX && *total < FILL_TOTAL_MAX) {
		unsigned long long before = *total;

		if (write_all(fd, buf, sizeof(buf), total) < 0) {
			int err = errno;

			close(fd);
			errno = err;
			return -1;
		}
		written += *total - before;
	}
	return close(fd);
}

/* fill DIR: write files until the disk quota (ENOSPC), the file size limit
 * (EFBIG) or a read-only mount (EROFS) stops it. */
static int cmd_fill(int argc, char **argv)
{
	unsigned long long total = 0;
	char path[PATH_MAX], errbuf[ERRNAME_MAX];

	for (unsigned i = 0; total < FILL_TOTAL_MAX; i++) {
		int len = snprintf(path, sizeof(path), "%s/fill.%u", argv[0],
				   i);

		if (len < 0 || (size_t)len >= sizeof(path))
			return fail("fill", ENAMETOOLONG);
		if (fill_one(path, &total) < 0) {
			printf("fill: %s %llu\n", errno_name(errno, errbuf),
			       total);
			return 1;
		}
	}
	return okf("fill", "%llu", total);
}

/* ---------------------------------------------------------------- files */

/* read PATH: can the jail see this file? */
static int cmd_read(int argc, char **argv)
{
	static char buf[CHUNK];
	unsigned long long total = 0;
	int fd = open(argv[0], O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return fail("read", errno);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fail("read", errno);
		}
		total += (unsigned long long)n;
	}
	close(fd);
	return okf("read", "%llu", total);
}

/* cat PATH: the file itself, for tests that check its content. */
static int cmd_cat(int argc, char **argv)
{
	int fd = open(argv[0], O_RDONLY | O_CLOEXEC);
	bool reading;

	if (fd < 0)
		return fail("cat", errno);
	fflush(stdout);
	if (copy_fd(fd, STDOUT_FILENO, &reading) < 0)
		return fail("cat", errno);
	close(fd);
	return 0;
}

/* write PATH: can the jail change this file? */
static int cmd_write(int argc, char **argv)
{
	int fd = open(argv[0], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return fail("write", errno);
	if (write_all(fd, "x", 1, NULL) < 0 || close(fd) < 0)
		return fail("write", errno);
	return ok("write");
}

/* mkdir PATH */
static int cmd_mkdir(int argc, char **argv)
{
	if (mkdir(argv[0], 0755) < 0)
		return fail("mkdir", errno);
	return ok("mkdir");
}

/* unlink PATH */
static int cmd_unlink(int argc, char **argv)
{
	if (unlink(argv[0]) < 0)
		return fail("unlink", errno);
	return ok("unlink");
}

/* Search [start, end) of an open /proc/PID/mem for the needle. */
static bool mem_has(int mem, unsigned long start, unsigned long end,
		    const char *needle, size_t len)
{
	static char buf[1 << 20];
	for (unsigned long at = start; at < end;) {
		size_t want = end - at < sizeof(buf) ? end - at : sizeof(buf);
		ssize_t n = pread(mem, buf, want, (off_t)at);
		if (n <= 0)
			return false; /* a guard page, a vanished mapping */
		if (memmem(buf, (size_t)n, needle, len))
			return true;
		/* overlap the chunks so a needle across the edge is seen */
		at += (size_t)n > len ? (size_t)n - len + 1 : (size_t)n;
	}
	return false;
}

/*
 * procmem PID HEX: open another process's memory for reading and writing
 * (what a debugger does), search every readable mapping for the bytes
 * HEX spells, and write one byte back unchanged into a writable one.
 * "procmem: ok found written" is a jail whose init leaks the caller's
 * memory; "procmem: EACCES" is the open refused.
 */
static int cmd_procmem(int argc, char **argv)
{
	char path[64], needle[256], line[512];
	size_t len = strlen(argv[1]) / 2;
	if (len == 0 || len > sizeof(needle))
		return 2;
	for (size_t i = 0; i < len; i++) {
		unsigned v;
		if (sscanf(argv[1] + 2 * i, "%2x", &v) != 1)
			return 2;
		needle[i] = (char)v;
	}
	snprintf(path, sizeof(path), "/proc/%s/mem", argv[0]);
	int mem = open(path, O_RDWR | O_CLOEXEC);
	if (mem < 0)
		return fail("procmem", errno);
	snprintf(path, sizeof(path), "/proc/%s/maps", argv[0]);
	FILE *maps = fopen(path, "re");
	if (!maps)
		return fail("procmem maps", errno);
	bool found = false, written = false;
	while (fgets(line, sizeof(line), maps)) {
		unsigned long start, end;
		char perms[5];
		if (sscanf(line, "%lx-%lx %4s", &start, &end, perms) != 3 ||
		    perms[0] != 'r')
			continue;
		if (!found)
			found = mem_has(mem, start, end, needle, len);
		char byte;
		if (!written && perms[1] == 'w' &&
		    pread(mem, &byte, 1, (off_t)start) == 1)
			written = pwrite(mem, &byte, 1, (off_t)start) == 1;
	}
	fclose(maps);
	close(mem);
	return okf("procmem", "%s %s", found ? "found" : "absent",
		   written ? "written" : "not-written");
}

/* ls DIR: what the jail's view of a directory holds. */
static int cmd_ls(int argc, char **argv)
{
	DIR *d = opendir(argv[0]);
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int err;

	if (!d)
		return fail("ls", errno);
	for (errno = 0; (de = readdir(d)); errno = 0) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			size_t want = cap ? cap * 2 : 64;
			char **grown = realloc(names, want * sizeof(*names));

			if (!grown)
				return fail("ls", ENOMEM);
			names = grown;
			cap = want;
		}
		if (!(names[n++] = strdup(de->d_name)))
			return fail("ls", ENOMEM);
	}
	err = errno;
	closedir(d);
	if (err)
		return fail("ls", err);
	qsort(names, n, sizeof(*names), cmp_str);
	printf("ls: ok");
	for (size_t i = 0; i < n; i++) {
		printf(" %s", names[i]);
		free(names[i]);
	}
	putchar('\n');
	free(names);
	return 0;
}

/* fds: descriptors the jail let through (it should close all but 0-2). */
static int cmd_fds(int argc, char **argv)
{
	return print_numbers("fds", "/proc/self/fd", true);
}

/* stdin: copy stdin to stdout, for tests of the jail's plumbing. */
static int cmd_stdin(int argc, char **argv)
{
	char errbuf[ERRNAME_MAX];
	bool reading;

	fflush(stdout);
	if (copy_fd(STDIN_FILENO, STDOUT_FILENO, &reading) < 0) {
		fprintf(stderr, "stdin: %s\n", errno_name(errno, errbuf));
		return 1;
	}
	return 0;
}

/* Open a pty of the module's own (the jail's devpts, `terminal = yes`);
 * returns the slave's fd, the master's in *master, or -1. The slave is
 * opened without O_NOCTTY: a module without a terminal (a session leader
 * since init's setsid) makes it its controlling one, on which TIOCSTI
 * needs no privilege. */
static int open_own_pty(int *master)
{
	*master = posix_openpt(O_RDWR | O_NOCTTY);
	if (*master < 0)
		return -1;
	int slave = -1;
	char *name = grantpt(*master) == 0 && unlockpt(*master) == 0
			     ? ptsname(*master)
			     : NULL;
	if (name)
		slave = open(name, O_RDWR);
	if (slave < 0) {
		int saved = errno;
		close(*master);
		errno = saved;
	}
	return slave;
}

/* ttyioctl FD|pty: the terminal requests no module needs and the kernel
 * should not be asked, on fd FD (the module's terminal) or on a pty the
 * module opens itself: TIOCSETD (with N_TTY, so that nothing is loaded
 * even where it is allowed; rarer disciplines are autoloaded as kernel
 * modules), TIOCSTI and TIOCLINUX; then a window-size read, which must
 * keep working. Two lines, "ttyioctl: setd R sti R linux R" and
 * "ttyioctl winsize: R", each out before the next request is made. */
static int cmd_ttyioctl(int argc, char **argv)
{
	char e1[ERRNAME_MAX], e2[ERRNAME_MAX], e3[ERRNAME_MAX], e4[ERRNAME_MAX];
	long fd = -1;
	int master = -1;
	(void)argc;
	if (strcmp(argv[0], "pty") == 0) {
		/* closing the master of one's controlling terminal hangs up
		 * the session, and that is not what is being tested */
		signal(SIGHUP, SIG_IGN);
		fd = open_own_pty(&master);
		if (fd < 0)
			return fail("ttyioctl", errno);
	} else if (!parse_long(argv[0], 0, INT_MAX, &fd)) {
		return 2;
	}
	int ldisc = 0; /* N_TTY */
	char c = 'x';
	char linux_req[2] = { 12, 0 }; /* TIOCL_GETSHIFTSTATE: a read */
	struct winsize ws;
	int rc_setd = ioctl((int)fd, TIOCSETD, &ldisc) < 0 ? errno : 0;
	int rc_sti = ioctl((int)fd, TIOCSTI, &c) < 0 ? errno : 0;
	int rc_linux = ioctl((int)fd, TIOCLINUX, linux_req) < 0 ? errno : 0;
	printf("ttyioctl: setd %s sti %s linux %s\n", tty_result(rc_setd, e1),
	       tty_result(rc_sti, e2), tty_result(rc_linux, e3));
	int rc_ws = ioctl((int)fd, TIOCGWINSZ, &ws) < 0 ? errno : 0;
	printf("ttyioctl winsize: %s\n", tty_result(rc_ws, e4));
	if (master >= 0) {
		close((int)fd);
		close(master);
	}
	return 0;
}

/* tiocsti [FD]: push a character into the input queue of the terminal
 * behind FD; on a shared terminal, commands typed into the caller's shell. */
static int cmd_tiocsti(int argc, char **argv)
{
	long fd = STDIN_FILENO;
	char c = 'x';

	if (argc > 0 && !parse_long(argv[0], 0, INT_MAX, &fd))
		return 2;
	if (ioctl((int)fd, TIOCSTI, &c) < 0)
		return fail("tiocsti", errno);
	return ok("tiocsti");
}

/* -------------------------------------------------------------- network */

/* Wait for a non-blocking connect(2) to finish; returns its errno (0 on
 * success). */
static int finish_connect(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	socklen_t len;
	int err, n;

	do
		n = poll(&pfd, 1, CONNECT_TIMEOUT_MS);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno;
	if (n == 0)
		return ETIMEDOUT;
	len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err;
}

/* connect ADDR PORT: can the jail reach this IPv4 address? */
static int cmd_connect(int argc, char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	long port;
	int fd, err;

	if (inet_pton(AF_INET, argv[0], &sin.sin_addr) != 1 ||
	    !parse_long(argv[1], 1, 65535, &port))
		return 2;
	sin.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail("connect", errno);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
		err = 0;
	else if (errno == EINPROGRESS)
		err = finish_connect(fd);
	else
		err = errno;
	close(fd);
	return err ? fail("connect", err) : ok("connect");
}

/* socketpair: an AF_UNIX pair carries a byte (asyncio's self-pipe,
 * multiprocessing's connections). */
static int cmd_socketpair(int argc, char **argv)
{
	int sv[2];
	char c = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return fail("socketpair", errno);
	if (write(sv[0], "x", 1) != 1 || read(sv[1], &c, 1) != 1 || c != 'x')
		return fail("socketpair", errno ? errno : EIO);
	close(sv[0]);
	close(sv[1]);
	return ok("socketpair");
}

/* netlink PROTO: open a netlink socket of that protocol (15 is
 * NETLINK_KOBJECT_UEVENT) and, for uevents, join the kernel's group. */
static int cmd_netlink(int argc, char **argv)
{
	long proto;
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK, .nl_groups = 1 };

	if (!parse_long(argv[0], 0, 31, &proto))
		return 2;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, (int)proto);
	if (fd < 0)
		return fail("netlink", errno);
	if (proto == NETLINK_KOBJECT_UEVENT &&
	    bind(fd, (struct sockaddr *)&nl, sizeof(nl)) < 0)
		return fail("netlink", errno);
	close(fd);
	return ok("netlink");
}

/* abstract NAME: connect to the abstract AF_UNIX name "\0NAME" (the host's
 * abstract names belong to the host's network namespace). */
static int cmd_abstract(int argc, char **argv)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t n = strlen(argv[0]);

	if (n + 1 > sizeof(sun.sun_path))
		return 2;
	memcpy(sun.sun_path + 1, argv[0], n);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail("abstract", errno);
	int rc = connect(fd, (struct sockaddr *)&sun,
			 (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				     1 + n));
	int err = rc < 0 ? errno : 0;
	close(fd);
	return err ? fail("abstract", err) : ok("abstract");
}

/* selfconnect ADDR: listen on ADDR (IPv4) port 0 inside the jail and
 * connect to it: what a loopback test server does. */
static int cmd_selfconnect(int argc, char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);

	if (inet_pton(AF_INET, argv[0], &sin.sin_addr) != 1)
		return 2;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return fail("selfconnect", errno);
	if (bind(l, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&sin, &len) < 0)
		return fail("selfconnect", errno);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		return fail("selfconnect", errno);
	close(c);
	close(l);
	return ok("selfconnect");
}

/* sysv KEY: the host's segment with KEY must not exist here; a private
 * shared-memory segment, semaphore set and message queue work. */
static int cmd_sysv(int argc, char **argv)
{
	long key;

	if (!parse_long(argv[0], 1, INT32_MAX, &key))
		return 2;
	if (shmget((key_t)key, 0, 0) >= 0)
		return fail("sysv", EEXIST); /* the host's segment shows */
	if (errno != ENOENT)
		return fail("sysv", errno);
	int shm = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	if (shm < 0)
		return fail("sysv", errno);
	char *p = shmat(shm, NULL, 0);
	if (p == (void *)-1)
		return fail("sysv", errno);
	p[0] = 'x';
	if (shmdt(p) < 0 || shmctl(shm, IPC_RMID, NULL) < 0)
		return fail("sysv", errno);
	int sem = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
	struct sembuf up = { .sem_num = 0, .sem_op = 1 };
	if (sem < 0 || semop(sem, &up, 1) < 0 || semctl(sem, 0, IPC_RMID) < 0)
		return fail("sysv", errno);
	int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	struct {
		long type;
		char text[1];
	} m = { 1, { 'x' } };
	if (q < 0 || msgsnd(q, &m, 1, 0) < 0 || msgrcv(q, &m, 1, 0, 0) != 1 ||
	    msgctl(q, IPC_RMID, NULL) < 0)
		return fail("sysv", errno);
	return ok("sysv");
}

/* net: the interfaces the jail can see, and whether each is up. */
static int cmd_net(int argc, char **argv)
{
	struct if_nameindex *ifs;
	char errbuf[ERRNAME_MAX];
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return fail("net", errno);
	ifs = if_nameindex();
	if (!ifs)
		return fail("net", errno);
	printf("net: ok");
	for (struct if_nameindex *i = ifs; i->if_index; i++) {
		struct ifreq ifr = { 0 };

		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", i->if_name);
		if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
			printf(" %s:%s", i->if_name, errno_name(errno, errbuf));
		else
			printf(" %s:%s", i->if_name,
			       (ifr.ifr_flags & IFF_UP) ? "up" : "down");
	}
	putchar('\n');
	if_freenameindex(ifs);
	close(fd);
	return 0;
}

/* hostname: the UTS namespace's name. */
static int cmd_hostname(int argc, char **argv)
{
	struct utsname u;

	if (uname(&u) < 0)
		return fail("hostname", errno);
	return okf("hostname", "%s", u.nodename);
}

/* ------------------------------------------------------------- identity */

/* ids: the credentials the jail left: "uid=R,E,S gid=R,E,S groups=N G...". */
static int cmd_ids(int argc, char **argv)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg, *groups;
	int n;

	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return fail("ids", errno);
	n = getgroups(0, NULL);
	if (n < 0)
		return fail("ids", errno);
	groups = calloc((size_t)n + 1, sizeof(*groups));
	if (!groups)
		return fail("ids", ENOMEM);
	n = getgroups(n, groups);
	if (n < 0)
		return fail("ids", errno);
	printf("ids: ok uid=%u,%u,%u gid=%u,%u,%u groups=%d", ru, eu, su, rg,
	       eg, sg, n);
	for (int i = 0; i < n; i++)
		printf(" %u", groups[i]);
	putchar('\n');
	free(groups);
	return 0;
}

/* status: the kernel's own account of capabilities, no_new_privs, seccomp
 * and credentials, as /proc/self/status prints it. */
static int cmd_status(int argc, char **argv)
{
	/* clang-format off */
	static const char *const keys[] = {
		"CapInh", "CapPrm", "CapEff",	  "CapBnd", "CapAmb",
		"NoNewPrivs", "Seccomp", "Uid", "Gid",	  "Groups",
	};
	/* clang-format on */
	FILE *f = fopen("/proc/self/status", "re");
	char *line = NULL;
	size_t cap = 0;

	if (!f)
		return fail("status", errno);
	while (getline(&line, &cap, f) > 0) {
		size_t keylen = strcspn(line, ":");

		if (!line[keylen])
			continue;
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strlen(keys[i]) == keylen &&
			    !strncmp(line, keys[i], keylen))
				fputs(line, stdout);
	}
	free(line);
	fclose(f);
	return ok("status");
}

/* env: the environment the jail passed, one entry a line. */
static int cmd_env(int argc, char **argv)
{
	for (char **e = environ; *e; e++)
		puts(*e);
	return ok("env");
}

/* ------------------------------------------------------ escape syscalls */

/*
 * Each attempt returns what the syscall returned: >= 0 means the jail let
 * it through, < 0 leaves the reason in errno. Descriptors and mappings an
 * attempt gets are left to the exit that follows.
 */

/* Debug, and so control, a process outside the jail (or the jail's init). */
static long try_ptrace(void)
{
	long rc = ptrace(PTRACE_ATTACH, 1, NULL, NULL);

	if (rc == 0) {
		/* Let it go again: attaching has stopped it. */
		waitpid(1, NULL, __WALL);
		ptrace(PTRACE_DETACH, 1, NULL, NULL);
	}
	return rc;
}

/* Hide the jail's /tmp under a file system of one's own choosing. */
static long try_mount(void)
{
	return mount("none", "/tmp", "tmpfs", 0, NULL);
}

/* Take the jail's root away to uncover what lies beneath it. */
static long try_umount(void)
{
	return umount2("/", MNT_DETACH);
}

/* A user namespace grants a full set of capabilities inside it: the first
 * step of most kernel privilege escalations. */
static long try_unshare(void)
{
	return unshare(CLONE_NEWUSER);
}

/* A private mount namespace in which to rearrange the jail's mounts. */
static long try_unshare_ns(void)
{
	return unshare(CLONE_NEWNS);
}

/* Join the mount namespace of pid 1: the host's file system if pid 1 is
 * visible. */
static long try_setns(void)
{
	int fd = open("/proc/1/ns/mnt", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	return setns(fd, CLONE_NEWNS);
}

/* Keyrings are not namespaced: join a session keyring shared with the host. */
static long try_keyctl(void)
{
	return syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL);
}

/* Store a key in the kernel, outside any cgroup's memory accounting. */
static long try_add_key(void)
{
	return syscall(SYS_add_key, "user", "probe", "x", 1,
		       KEY_SPEC_SESSION_KEYRING);
}

/* Load a BPF program: the verifier is a large kernel attack surface. */
static long try_bpf(void)
{
	uint64_t attr[128 / sizeof(uint64_t)] = { 0 };

	return syscall(SYS_bpf, BPF_PROG_LOAD, attr, sizeof(attr));
}

/* Watch the CPU: side channels, and a long record of kernel bugs. */
static long try_perf_event_open(void)
{
	struct perf_event_attr attr = { .size = sizeof(attr) };

	return syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
}

/* Load code into the kernel from memory. */
static long try_init_module(void)
{
	return syscall(SYS_init_module, NULL, 0, "");
}

/* Load code into the kernel from a file descriptor. */
static long try_finit_module(void)
{
	return syscall(SYS_finit_module, 0, "", 0);
}

/* Remove a kernel module, e.g. a security module's helper. */
static long try_delete_module(void)
{
	return syscall(SYS_delete_module, "probe", 0);
}

/* Replace the running kernel. */
static long try_kexec_load(void)
{
	return syscall(SYS_kexec_load, 0, 0, NULL, 0);
}

/* "Shocker": open a file of the host by its handle, past any chroot. */
static long try_open_by_handle_at(void)
{
	struct file_handle *fh = calloc(1, sizeof(*fh) + 8);

	if (!fh) {
		errno = ENOMEM;
		return -1;
	}
	fh->handle_bytes = 8;
	return open_by_handle_at(AT_FDCWD, fh, O_RDONLY);
}

/* Stall the kernel at a chosen page fault: the way races are won in
 * kernel exploits. */
static long try_userfaultfd(void)
{
	return syscall(SYS_userfaultfd, 0);
}

/* io_uring performs I/O outside the syscall path a seccomp filter sees. */
static long try_io_uring_setup(void)
{
	struct io_uring_params params = { 0 };

	return syscall(SYS_io_uring_setup, 1, &params);
}

/* Change root: with a descriptor kept outside, the classic chroot escape. */
static long try_chroot(void)
{
	return chroot("/tmp");
}

/* Swap the jail's root for another. */
static long try_pivot_root(void)
{
	return syscall(SYS_pivot_root, "/tmp", "/tmp");
}

/* Become root again after the jail dropped privileges. */
static long try_setuid0(void)
{
	return setuid(0);
}

/* Change how the machine reacts to Ctrl-Alt-Del: reboot(2) without
 * actually rebooting. */
static long try_reboot(void)
{
	return syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
		       LINUX_REBOOT_CMD_CAD_OFF, NULL);
}

/* Add swap: host-wide memory management. */
static long try_swapon(void)
{
	return swapon("/tmp/x", 0);
}

/* Rename the machine (harmless only inside a UTS namespace). */
static long try_sethostname(void)
{
	return sethostname("x", 1);
}

/* clone(2) can create the user namespace that unshare(2) was refused. */
static long try_clone_newuser(void)
{
	long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, NULL, NULL,
			   0);

	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid((pid_t)pid, NULL, 0);
	return pid;
}

/* The clone3 arguments, as of Linux 5.7 (CLONE_ARGS_SIZE_VER2). */
struct probe_clone_args {
	uint64_t flags;
	uint64_t pidfd;
	uint64_t child_tid;
	uint64_t parent_tid;
	uint64_t exit_signal;
	uint64_t stack;
	uint64_t stack_size;
	uint64_t tls;
	uint64_t set_tid;
	uint64_t set_tid_size;
	uint64_t cgroup;
};

_Static_assert(sizeof(struct probe_clone_args) == 88, "clone_args is 88 bytes");

/* clone3 takes its flags through a pointer that seccomp cannot read, so a
 * filter can only refuse it whole (ENOSYS, so that libc falls back to
 * clone). */
static long try_clone3(void)
{
	struct probe_clone_args args = { .exit_signal = SIGCHLD };
	long pid = syscall(SYS_clone3, &args, sizeof(args));

	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid((pid_t)pid, NULL, 0);
	return pid;
}

/* Read another process's memory without ptrace. */
static long try_process_vm_readv(void)
{
	char buf[8];
	struct iovec local = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct iovec remote = { .iov_base = (void *)0x1000,
				.iov_len = sizeof(buf) };

	return process_vm_readv(1, &local, 1, &remote, 1, 0);
}

/* Change execution domain: old personalities disable ASLR or map page 0. */
static long try_personality(void)
{
	int old = personality(PER_LINUX32);

	if (old >= 0)
		personality((unsigned long)old);
	return old;
}

/* Raw packets: spoof and sniff the jail's (or host's) network. */
static long try_socket_packet(void)
{
	return socket(AF_PACKET, SOCK_RAW, 0);
}

/* Netlink: configure routes, addresses and interfaces. */
static long try_socket_netlink(void)
{
	return socket(AF_NETLINK, SOCK_RAW, 0 /* NETLINK_ROUTE */);
}

/* AF_ALG: the kernel's crypto API, source of several privilege escalations. */
static long try_socket_alg(void)
{
	return socket(38 /* AF_ALG */, SOCK_SEQPACKET, 0);
}

/* Anonymous files: run code without writing it to the (read-only) disk.
 * Usually allowed: the test only records it. */
static long try_memfd_create(void)
{
	return memfd_create("probe", 0);
}

/* A control: an ordinary syscall every jail should allow. */
static long try_getrandom(void)
{
	char buf[16];

	return getrandom(buf, sizeof(buf), 0);
}

/* A device node gives direct access to the device behind it. The node is
 * removed again when it was made. */
static long try_mknod(void)
{
	long rc = mknod("/tmp/probe-null", S_IFCHR | 0666, makedev(1, 3));

	if (rc == 0)
		unlink("/tmp/probe-null");
	return rc;
}

/* Process accounting: write host-wide records to a file of one's choice. */
static long try_acct(void)
{
	return acct(NULL);
}

/* Direct access to I/O ports (x86 only; elsewhere the kernel has no such
 * call). */
static long try_iopl(void)
{
#ifdef SYS_iopl
	return syscall(SYS_iopl, 3);
#else
	errno = ENOSYS;
	return -1;
#endif
}

/* The other half of "shocker": learn the handle of a file. */
static long try_name_to_handle_at(void)
{
	struct file_handle *fh = calloc(1, sizeof(*fh) + 128);
	int mount_id;

	if (!fh) {
		errno = ENOMEM;
		return -1;
	}
	fh->handle_bytes = 128;
	return name_to_handle_at(AT_FDCWD, "/", fh, &mount_id, 0);
}

/* Watch file system events across the whole machine. */
static long try_fanotify_init(void)
{
	return fanotify_init(0, 0);
}

/* Manipulate disk quotas, which are host-wide. */
static long try_quotactl(void)
{
	return quotactl(QCMD(Q_SYNC, USRQUOTA), NULL, 0, NULL);
}

/* Hang up the terminal, and with it everyone else using it. */
static long try_vhangup(void)
{
	return vhangup();
}

/* Read the kernel log: kernel addresses that defeat KASLR. */
static long try_syslog(void)
{
	char buf[128];

	return klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, sizeof(buf));
}

/* Compare kernel objects of two processes: a probe for what pid 1 holds. */
static long try_kcmp(void)
{
	return syscall(SYS_kcmp, getpid(), 1, KCMP_FILE, 0, 0);
}

/* A stable handle on pid 1, for signals and pidfd_getfd. */
static long try_pidfd_open(void)
{
	return syscall(SYS_pidfd_open, 1, 0);
}

/* Take a copy of one of init's fds (its sync socket to the parent). */
static long try_pidfd_getfd(void)
{
	long pidfd = syscall(SYS_pidfd_open, 1, 0);

	if (pidfd < 0)
		return pidfd;
	return syscall(SYS_pidfd_getfd, (int)pidfd, 3, 0);
}

/* A realtime thread would starve the host's own. */
static long try_sched_fifo(void)
{
	struct sched_param sp = { .sched_priority = 1 };

	return sched_setscheduler(0, SCHED_FIFO, &sp);
}

/* trusted.* attributes are the host's administrator's (overlay, LSMs). */
static long try_xattr_trusted(void)
{
	int fd = open("/tmp/probe-xattr", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		return fd;
	long rc = fsetxattr(fd, "trusted.probe", "x", 1, 0);
	int err = errno;
	close(fd);
	unlink("/tmp/probe-xattr");
	errno = err;
	return rc;
}

/*
 * The new mount API reaches what mount(2) does by other syscalls. The
 * arguments of mount_setattr and move_mount are left empty: the filter
 * must refuse the syscall itself, whatever its arguments.
 */

/* Change the flags of mounts, e.g. make a read-only mount writable. */
static long try_mount_setattr(void)
{
	return syscall(SYS_mount_setattr, 0, NULL, 0, NULL, 0);
}

/* Take a copy of a mount tree to graft elsewhere. */
static long try_open_tree(void)
{
	return syscall(SYS_open_tree, AT_FDCWD, "/", 1 /* OPEN_TREE_CLONE */);
}

/* Create a file system context: mount(2) by another name. */
static long try_fsopen(void)
{
	return syscall(SYS_fsopen, "tmpfs", 0);
}

/* Attach a mount anywhere. */
static long try_move_mount(void)
{
	return syscall(SYS_move_mount, 0, NULL, 0, NULL, 0);
}

static const struct escape {
	const char *name;
	long (*attempt)(void);
} escapes[] = {
	{ "ptrace", try_ptrace },
	{ "mount", try_mount },
	{ "umount", try_umount },
	{ "unshare", try_unshare },
	{ "unshare-ns", try_unshare_ns },
	{ "setns", try_setns },
	{ "keyctl", try_keyctl },
	{ "add_key", try_add_key },
	{ "bpf", try_bpf },
	{ "perf_event_open", try_perf_event_open },
	{ "init_module", try_init_module },
	{ "finit_module", try_finit_module },
	{ "delete_module", try_delete_module },
	{ "kexec_load", try_kexec_load },
	{ "open_by_handle_at", try_open_by_handle_at },
	{ "userfaultfd", try_userfaultfd },
	{ "io_uring_setup", try_io_uring_setup },
	{ "chroot", try_chroot },
	{ "pivot_root", try_pivot_root },
	{ "setuid0", try_setuid0 },
	{ "reboot", try_reboot },
	{ "swapon", try_swapon },
	{ "sethostname", try_sethostname },
	{ "clone-newuser", try_clone_newuser },
	{ "clone3", try_clone3 },
	{ "process_vm_readv", try_process_vm_readv },
	{ "personality", try_personality },
	{ "socket-packet", try_socket_packet },
	{ "socket-netlink", try_socket_netlink },
	{ "socket-alg", try_socket_alg },
	{ "memfd_create", try_memfd_create },
	{ "getrandom", try_getrandom },
	{ "mknod", try_mknod },
	{ "acct", try_acct },
	{ "iopl", try_iopl },
	{ "name_to_handle_at", try_name_to_handle_at },
	{ "fanotify_init", try_fanotify_init },
	{ "quotactl", try_quotactl },
	{ "vhangup", try_vhangup },
	{ "syslog", try_syslog },
	{ "kcmp", try_kcmp },
	{ "pidfd_open", try_pidfd_open },
	{ "pidfd_getfd", try_pidfd_getfd },
	{ "sched-fifo", try_sched_fifo },
	{ "xattr-trusted", try_xattr_trusted },
	{ "mount_setattr", try_mount_setattr },
	{ "open_tree", try_open_tree },
	{ "fsopen", try_fsopen },
	{ "move_mount", try_move_mount },
};

#define N_ESCAPES (sizeof(escapes) / sizeof(escapes[0]))

/* syscall NAME: the result line is "syscall NAME: ok" or
 * "syscall NAME: ERRNAME". */
static int cmd_syscall(int argc, char **argv)
{
	for (size_t i = 0; i < N_ESCAPES; i++) {
		char name[64];
		long rc;

		if (strcmp(argv[0], escapes[i].name))
			continue;
		snprintf(name, sizeof(name), "syscall %s", escapes[i].name);
		fflush(stdout);
		errno = 0;
		rc = escapes[i].attempt();
		return rc >= 0 ? ok(name) : fail(name, errno);
	}
	return 2;
}

/* ----------------------------------------------- filters and other ABIs */

/* A filter of the module's own that fails ptrace, unshare and keyctl with
 * EPERM and allows the rest. Stacked on the jail's, its ERRNO would
 * outrank the jail's user notification (the kernel takes the most
 * restrictive action of all filters): the denied calls would fail
 * quietly instead of ending the run. HOW: prctl or seccomp. */
static int install_own_filter(const char *how)
{
	struct sock_filter insns[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ptrace, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_unshare, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_keyctl, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
	};
	struct sock_fprog prog = {
		.len = sizeof(insns) / sizeof(insns[0]),
		.filter = insns,
	};
	if (strcmp(how, "prctl") == 0)
		return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

/* ownfilter prctl|seccomp NAME: install that filter, then try the
 * escape syscall NAME (as `syscall NAME`) and exit 0 whatever it
 * answered, as a module hiding its denied calls would. Two lines:
 * "ownfilter HOW: ok|ERRNAME" and "syscall NAME: ok|ERRNAME". */
static int cmd_ownfilter(int argc, char **argv)
{
	char name[64];
	(void)argc;
	if (strcmp(argv[0], "prctl") && strcmp(argv[0], "seccomp"))
		return 2;
	snprintf(name, sizeof(name), "ownfilter %s", argv[0]);
	if (install_own_filter(argv[0]) < 0)
		fail(name, errno);
	else
		ok(name);
	return cmd_syscall(1, argv + 1) == 2 ? 2 : 0;
}

/* getpid through another ABI a 64-bit x86 process can reach: "int80"
 * (the i386 entry; getpid is 20 there) or "x32" (the x32 bit in the
 * number). */
static long foreign_getpid(const char *abi)
{
#ifdef __x86_64__
	if (strcmp(abi, "int80") == 0) {
		long rc = 20;
		/* the i386 entry clobbers r8-r11 */
		__asm__ volatile("int $0x80"
				 : "+a"(rc)
				 :
				 : "r8", "r9", "r10", "r11", "memory");
		if (rc < 0 && rc > -4096) {
			errno = (int)-rc;
			return -1;
		}
		return rc;
	}
	return syscall(__X32_SYSCALL_BIT | __NR_getpid);
#else
	(void)abi;
	errno = ENOSYS; /* not reached: cmd_foreign says "none" */
	return -1;
#endif
}

/* foreign int80|x32 [child]: "foreign ABI: ok PID" or "foreign ABI:
 * ERRNAME" ("foreign ABI: none" on a machine that is not x86-64). With
 * "child", a forked child makes the call and the probe exits 0 whatever
 * became of it ("foreign ABI: child exit N" or "child signal N"): a kill
 * that only the child saw would hide the call. */
static int cmd_foreign(int argc, char **argv)
{
	char name[32];
	if (strcmp(argv[0], "int80") && strcmp(argv[0], "x32"))
		return 2;
	if (argc > 1 && strcmp(argv[1], "child"))
		return 2;
	snprintf(name, sizeof(name), "foreign %s", argv[0]);
#ifndef __x86_64__
	printf("%s: none\n", name);
	return 1;
#endif
	if (argc == 1) {
		long rc = foreign_getpid(argv[0]);
		if (rc < 0)
			return fail(name, errno);
		printf("%s: ok %ld\n", name, rc);
		return 0;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return fail(name, errno);
	if (pid == 0)
		_exit(foreign_getpid(argv[0]) < 0 ? 1 : 0);
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return fail(name, errno);
	if (WIFSIGNALED(st))
		printf("%s: child signal %d\n", name, WTERMSIG(st));
	else
		printf("%s: child exit %d\n", name, WEXITSTATUS(st));
	return 0;
}

/* ------------------------------------------------------------- dispatch */

static const struct command {
	const char *name;
	const char *args; /* for the usage text */
	int min_args;
	int max_args; /* -1: no limit */
	int (*run)(int argc, char **argv);
} commands[] = {
	{ "echo", "ARG...", 0, -1, cmd_echo },
	{ "exit", "N", 1, 1, cmd_exit },
	{ "segv", "", 0, 0, cmd_segv },
	{ "abort", "", 0, 0, cmd_abort },
	{ "raise", "SIGNUM", 1, 1, cmd_raise },
	{ "sleep", "MS", 1, 1, cmd_sleep },
	{ "spin", "", 0, 0, cmd_spin },
	{ "inotify", "N MS", 2, 2, cmd_inotify },
	{ "sigqueue", "N MS", 2, 2, cmd_sigqueue },
	{ "getppid", "N", 1, 1, cmd_getppid },
	{ "orphan", "MARKER", 1, 1, cmd_orphan },
	{ "forkbomb", "", 0, 0, cmd_forkbomb },
	{ "alloc", "MB", 1, 1, cmd_alloc },
	{ "hog", "MB", 1, 1, cmd_hog },
	{ "ttyattack", "", 0, 0, cmd_ttyattack },
	{ "tcpfill", "N [hold]", 1, 2, cmd_tcpfill },
	{ "flood", "BYTES", 1, 1, cmd_flood },
	{ "fill", "DIR", 1, 1, cmd_fill },
	{ "read", "PATH", 1, 1, cmd_read },
	{ "cat", "PATH", 1, 1, cmd_cat },
	{ "write", "PATH", 1, 1, cmd_write },
	{ "mkdir", "PATH", 1, 1, cmd_mkdir },
	{ "unlink", "PATH", 1, 1, cmd_unlink },
	{ "ls", "DIR", 1, 1, cmd_ls },
	{ "procmem", "PID HEX", 2, 2, cmd_procmem },
	{ "pids", "", 0, 0, cmd_pids },
	{ "kill", "PID SIG", 2, 2, cmd_kill },
	{ "killall", "", 0, 0, cmd_killall },
	{ "connect", "ADDR PORT", 2, 2, cmd_connect },
	{ "net", "", 0, 0, cmd_net },
	{ "socketpair", "", 0, 0, cmd_socketpair },
	{ "netlink", "PROTO", 1, 1, cmd_netlink },
	{ "abstract", "NAME", 1, 1, cmd_abstract },
	{ "selfconnect", "ADDR", 1, 1, cmd_selfconnect },
	{ "sysv", "KEY", 1, 1, cmd_sysv },
	{ "hostname", "", 0, 0, cmd_hostname },
	{ "ids", "", 0, 0, cmd_ids },
	{ "status", "", 0, 0, cmd_status },
	{ "fds", "", 0, 0, cmd_fds },
	{ "env", "", 0, 0, cmd_env },
	{ "stdin", "", 0, 0, cmd_stdin },
	{ "tiocsti", "[FD]", 0, 1, cmd_tiocsti },
	{ "ttyioctl", "FD|pty", 1, 1, cmd_ttyioctl },
	{ "syscall", "NAME", 1, 1, cmd_syscall },
	{ "ownfilter", "prctl|seccomp NAME", 2, 2, cmd_ownfilter },
	{ "foreign", "int80|x32 [child]", 1, 2, cmd_foreign },
	{ "exec", "PATH [ARG...]", 1, -1, cmd_exec },
};

static int usage(void)
{
	fprintf(stderr, "usage: probe SUBCOMMAND [ARGS...]\n\nsubcommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(stderr, "  %s%s%s\n", commands[i].name,
			*commands[i].args ? " " : "", commands[i].args);
	fprintf(stderr, "\nsyscall names:");
	for (size_t i = 0; i < N_ESCAPES; i++)
		fprintf(stderr, "%s%s", i % 6 ? " " : "\n  ", escapes[i].name);
	fprintf(stderr, "\n");
	return 2;
}

int main(int argc, char **argv)
{
	/* Result lines must be out before anything that may kill us. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Hitting the output or file size limit must show as EPIPE or EFBIG,
	 * not as a death by signal. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);

	if (argc < 2)
		return usage();
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command *c = &commands[i];
		int nargs = argc - 2, rc;

		if (strcmp(argv[1], c->name))
			continue;
		if (nargs < c->min_args ||
		    (c->max_args >= 0 && nargs > c->max_args))
			return usage();
		rc = c->run(nargs, argv + 2);
		fflush(stdout);
		return rc == 2 ? usage() : rc;
	}
	return usage();
}
