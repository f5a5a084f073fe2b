/* check.c - placeholder until the subcommand lands (must not ship). */
#include "vhd.h"
int cmd_check(int argc, char **argv) { (void)argc; (void)argv; warnx_("check: not implemented yet"); return EXIT_FAIL; }
