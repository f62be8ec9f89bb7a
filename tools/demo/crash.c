/* A module that crashes: a write through a null pointer. */
#include <stdio.h>

int main(int argc, char **argv)
{
	int *volatile p = NULL;
	(void)argv;
	printf("about to crash\n");
	fflush(stdout);
	*p = argc;
	return 0;
}
