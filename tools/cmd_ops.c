#include "tools/cli.h"
int cmd_ops(int argc, char **argv){(void)argc;(void)argv;return 1;}
