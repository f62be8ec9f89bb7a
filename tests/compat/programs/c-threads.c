/* What generated C does: pthreads, OpenMP, malloc, files in the working
 * directory, a forked child. Built dynamic and static by the harness. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static long counts[8];

static void *work(void *arg)
{
	long i = (long)arg;
	for (long k = 0; k < 100000; k++)
		counts[i]++;
	return NULL;
}

int main(void)
{
	pthread_t t[8];
	for (long i = 0; i < 8; i++)
		if (pthread_create(&t[i], NULL, work, (void *)i) != 0)
			return 1;
	long total = 0;
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		total += counts[i];
	}
	if (total != 800000)
		return 2;
	double sum = 0;
#pragma omp parallel for reduction(+ : sum)
	for (int i = 1; i <= 1000; i++)
		sum += i;
	if (sum != 500500)
		return 3;
	FILE *f = fopen("results.json", "w");
	if (!f || fprintf(f, "{\"ok\":true}\n") < 0 || fclose(f) != 0)
		return 4;
	pid_t pid = fork();
	if (pid == 0)
		_exit(7);
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || WEXITSTATUS(st) != 7)
		return 5;
	char *big = malloc(32 << 20);
	if (!big)
		return 6;
	for (size_t i = 0; i < (32u << 20); i += 4096)
		big[i] = 1;
	free(big);
	puts("ok");
	return 0;
}
