/*
 * launch: time whole commands side by side.
 *
 *   launch ROUNDS NAME "CMD ARGS" [NAME "CMD ARGS"]...
 *
 * Each round runs every row once, in order (A B C A B C ...), so a noisy
 * neighbour on a shared machine hits every row alike. Each run is a
 * posix_spawn + wait4 of the command (split on spaces, no shell), output to
 * /dev/null. Prints min, median and p99 per row in milliseconds and the
 * ratio of medians to the first row, which should be the bare command;
 * and the median CPU time (user + system) of the run's whole process tree
 * (wait4's rusage covers every descendant that was reaped), which a noisy
 * neighbour disturbs far less than wall time.
 *
 *   LAUNCH_CSV=FILE   also write every sample: row,round,wall_ms,cpu_ms
 *
 * A row whose command is "@SOCKET REQUEST" is a request to a server
 * instead of a process: one unix-socket connection, opened before the
 * first round, and per run the REQUEST line (no spaces: it is split like
 * the rest) written and one answer line read, which must contain
 * "verdict":"ok". airlockd's exec of a registered module is such a row: a
 * client that keeps its connection pays no process start of its own. Its
 * CPU is the server's (its own and its reaped children's, from
 * /proc/PID/stat in clock ticks), so it is the mean over all rounds.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_ARGS 64

struct row {
	const char *name;
	char *argv[MAX_ARGS];
	double *ms;
	double *cpu;
	int failures;
	int sock;         /* "@SOCKET" rows: the connection */
	pid_t server;     /* and the pid at its other end */
	double server_cpu0;
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void split(char *cmd, char **argv)
{
	int n = 0;
	for (char *tok = strtok(cmd, " "); tok && n < MAX_ARGS - 1;
	     tok = strtok(NULL, " "))
		argv[n++] = tok;
	argv[n] = NULL;
}

static double tv_ms(const struct timeval *tv)
{
	return (double)tv->tv_sec * 1e3 + (double)tv->tv_usec / 1e3;
}

/* utime + stime + cutime + cstime of pid, in ms */
static double proc_cpu_ms(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	double ticks = 0;
	for (int field = 2; p && field < 17; field++) {
		p = strchr(p + 1, ' ');
		if (p && field >= 13)
			ticks += strtod(p + 1, NULL);
	}
	return ticks * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static int connect_row(struct row *r)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", r->argv[0] + 1);
	r->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->sock < 0 ||
	    connect(r->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror(r->argv[0] + 1);
		return -1;
	}
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(r->sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
		r->server = cred.pid;
	return 0;
}

static double request_once(struct row *r)
{
	char line[8192];
	size_t used = 0;
	double t0 = now_ms();
	size_t len = strlen(r->argv[1]);
	char *req = malloc(len + 2);
	if (!req)
		return -1;
	memcpy(req, r->argv[1], len);
	req[len] = '\n';
	bool ok = write(r->sock, req, len + 1) == (ssize_t)(len + 1);
	free(req);
	while (ok && !memchr(line, '\n', used)) {
		ssize_t n = read(r->sock, line + used, sizeof(line) - 1 - used);
		if (n <= 0)
			ok = false;
		else
			used += (size_t)n;
		if (used == sizeof(line) - 1)
			break;
	}
	line[used] = '\0';
	if (!ok || !strstr(line, "\"verdict\":\"ok\""))
		r->failures++;
	return now_ms() - t0;
}

static double run_once(struct row *r, posix_spawn_file_actions_t *fa,
		       double *cpu)
{
	if (r->argv[0][0] == '@') {
		*cpu = -1;
		return request_once(r);
	}
	pid_t pid;
	int status;
	struct rusage ru;
	double t0 = now_ms();
	*cpu = -1;
	if (posix_spawn(&pid, r->argv[0], fa, NULL, r->argv, environ) != 0) {
		r->failures++;
		return -1;
	}
	if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		r->failures++;
	double wall = now_ms() - t0;
	*cpu = tv_ms(&ru.ru_utime) + tv_ms(&ru.ru_stime);
	return wall;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	if (argc < 4 || (argc - 2) % 2 != 0) {
		fprintf(stderr, "usage: launch ROUNDS NAME \"CMD ARGS\" ...\n");
		return 2;
	}
	int rounds = atoi(argv[1]);
	int nrows = (argc - 2) / 2;
	if (rounds < 1) {
		fprintf(stderr, "launch: ROUNDS must be at least 1\n");
		return 2;
	}
	struct row *rows = calloc((size_t)nrows, sizeof(*rows));
	if (!rows)
		return 1;
	for (int i = 0; i < nrows; i++) {
		rows[i].name = argv[2 + 2 * i];
		split(argv[3 + 2 * i], rows[i].argv);
		rows[i].ms = calloc((size_t)rounds, sizeof(double));
		rows[i].cpu = calloc((size_t)rounds, sizeof(double));
		if (!rows[i].ms || !rows[i].cpu)
			return 1;
		rows[i].sock = -1;
		if (rows[i].argv[0][0] == '@' &&
		    (!rows[i].argv[1] || connect_row(&rows[i]) < 0))
			return 1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	double scratch;
	for (int warm = 0; warm < 3; warm++)
		for (int i = 0; i < nrows; i++)
			run_once(&rows[i], &fa, &scratch);
	for (int i = 0; i < nrows; i++) {
		rows[i].failures = 0;
		if (rows[i].server)
			rows[i].server_cpu0 = proc_cpu_ms(rows[i].server);
	}
	for (int k = 0; k < rounds; k++)
		for (int i = 0; i < nrows; i++)
			rows[i].ms[k] = run_once(&rows[i], &fa, &rows[i].cpu[k]);
	/* a server's CPU: the mean over the rounds, for every round */
	for (int i = 0; i < nrows; i++) {
		if (!rows[i].server)
			continue;
		double mean = (proc_cpu_ms(rows[i].server) -
			       rows[i].server_cpu0) / rounds;
		for (int k = 0; k < rounds; k++)
			rows[i].cpu[k] = mean;
	}
	const char *csv_path = getenv("LAUNCH_CSV");
	FILE *csv = csv_path ? fopen(csv_path, "w") : NULL;
	if (csv) {
		fprintf(csv, "row,round,wall_ms,cpu_ms\n");
		for (int i = 0; i < nrows; i++)
			for (int k = 0; k < rounds; k++)
				fprintf(csv, "%s,%d,%.3f,%.3f\n", rows[i].name, k,
					rows[i].ms[k], rows[i].cpu[k]);
		fclose(csv);
	}
	printf("%-14s %9s %9s %9s %8s %9s %8s %s\n", "row", "min_ms",
	       "median_ms", "p99_ms", "ratio", "cpu_ms", "cpu_ratio",
	       "failures");
	double base = 0, cpu_base = 0;
	for (int i = 0; i < nrows; i++) {
		qsort(rows[i].ms, (size_t)rounds, sizeof(double), cmp_double);
		qsort(rows[i].cpu, (size_t)rounds, sizeof(double), cmp_double);
		double med = median(rows[i].ms, rounds);
		double cpu = median(rows[i].cpu, rounds);
		if (i == 0) {
			base = med;
			cpu_base = cpu;
		}
		int p99 = (int)((rounds - 1) * 0.99);
		printf("%-14s %9.3f %9.3f %9.3f %7.2fx %9.3f %7.2fx %d\n",
		       rows[i].name, rows[i].ms[0], med, rows[i].ms[p99],
		       base > 0 ? med / base : 0, cpu,
		       cpu_base > 0 ? cpu / cpu_base : 0, rows[i].failures);
		free(rows[i].ms);
		free(rows[i].cpu);
		if (rows[i].sock >= 0)
			close(rows[i].sock);
	}
	posix_spawn_file_actions_destroy(&fa);
	free(rows);
	return 0;
}
