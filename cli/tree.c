/* tree.c - placeholder until the subcommand lands (must not ship). */
#include "vhd.h"
int cmd_tree(int argc, char **argv) { (void)argc; (void)argv; warnx_("tree: not implemented yet"); return EXIT_FAIL; }
