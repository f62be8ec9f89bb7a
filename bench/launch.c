/*
 * launch: time whole commands side by side.
 *
 *   launch ROUNDS NAME "CMD ARGS" [NAME "CMD ARGS"]...
 *
 * Each round runs every row once, in order (A B C A B C ...), so a noisy
 * neighbour on a shared machine hits every row alike. Each run is a
 * posix_spawn + wait4 of the command (split on spaces, no shell), output to
 * /dev/null. Prints min, median and p99 per row in milliseconds and the
 * ratio of medians to the first row, which should be the bare command.
 */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_ARGS 64

struct row {
	const char *name;
	char *argv[MAX_ARGS];
	double *ms;
	int failures;
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

static double run_once(struct row *r, posix_spawn_file_actions_t *fa)
{
	pid_t pid;
	int status;
	double t0 = now_ms();
	if (posix_spawn(&pid, r->argv[0], fa, NULL, r->argv, environ) != 0) {
		r->failures++;
		return -1;
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		r->failures++;
	return now_ms() - t0;
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
		if (!rows[i].ms)
			return 1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	for (int warm = 0; warm < 3; warm++)
		for (int i = 0; i < nrows; i++)
			run_once(&rows[i], &fa);
	for (int i = 0; i < nrows; i++)
		rows[i].failures = 0;
	for (int k = 0; k < rounds; k++)
		for (int i = 0; i < nrows; i++)
			rows[i].ms[k] = run_once(&rows[i], &fa);
	printf("%-14s %9s %9s %9s %8s %s\n", "row", "min_ms", "median_ms",
	       "p99_ms", "ratio", "failures");
	double base = 0;
	for (int i = 0; i < nrows; i++) {
		qsort(rows[i].ms, (size_t)rounds, sizeof(double), cmp_double);
		double med = median(rows[i].ms, rounds);
		if (i == 0)
			base = med;
		int p99 = (int)((rounds - 1) * 0.99);
		printf("%-14s %9.3f %9.3f %9.3f %7.2fx %d\n", rows[i].name,
		       rows[i].ms[0], med, rows[i].ms[p99],
		       base > 0 ? med / base : 0, rows[i].failures);
		free(rows[i].ms);
	}
	posix_spawn_file_actions_destroy(&fa);
	free(rows);
	return 0;
}
