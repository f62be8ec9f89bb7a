#!/bin/sh
# Compile-then-run: gcc inside the jail writes its temporaries and the
# program into /tmp, then the program runs.
set -eu
cd /tmp
cat > hello.c <<'C'
#include <pthread.h>
#include <stdio.h>
static void *hi(void *a) { return a; }
int main(void)
{
	pthread_t t;
	void *r;
	if (pthread_create(&t, NULL, hi, "ok") || pthread_join(t, &r))
		return 1;
	puts((const char *)r);
	return 0;
}
C
gcc -O2 -Wall -pthread -o hello hello.c
gcc -O2 -static -pthread -o hello-static hello.c
test "$(./hello-static)" = ok
./hello
