/* resize.c - placeholder until the subcommand lands (must not ship). */
#include "vhd.h"
int cmd_resize(int argc, char **argv) { (void)argc; (void)argv; warnx_("resize: not implemented yet"); return EXIT_FAIL; }
