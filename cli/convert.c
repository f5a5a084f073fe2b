/* convert.c - placeholder until the subcommand lands (must not ship). */
#include "vhd.h"
int cmd_convert(int argc, char **argv) { (void)argc; (void)argv; warnx_("convert: not implemented yet"); return EXIT_FAIL; }
