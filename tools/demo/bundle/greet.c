/* make demo: a bundle with a build step. airlockd builds it once at
 * validation (cc -O2 -o greet greet.c in a writable copy of the tree),
 * then every run executes /bundle/greet with the tree, read-only, as its
 * working directory: it reads its greeting from a file beside it. */
#include <stdio.h>

int main(int argc, char **argv)
{
	char line[128] = "hello";
	FILE *f = fopen("greeting.txt", "r");

	if (f) {
		if (fgets(line, sizeof(line), f))
			for (char *p = line; *p; p++)
				if (*p == '\n')
					*p = '\0';
		fclose(f);
	}
	printf("%s, %s (a built bundle)\n", line, argc > 1 ? argv[1] : "world");
	return 0;
}
