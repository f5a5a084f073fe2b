/* map.c - placeholder until the subcommand lands (must not ship). */
#include "vhd.h"
int cmd_map(int argc, char **argv) { (void)argc; (void)argv; warnx_("map: not implemented yet"); return EXIT_FAIL; }
