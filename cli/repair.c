/* repair.c - placeholder until the subcommand lands (must not ship). */
#include "vhd.h"
int cmd_repair(int argc, char **argv) { (void)argc; (void)argv; warnx_("repair: not implemented yet"); return EXIT_FAIL; }
