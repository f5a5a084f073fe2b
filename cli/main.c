/* main.c - the `vhd` command: dispatch to one subcommand per file. */
#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include "vhd.h"

static const struct subcommand commands[] = {
	{ "create", cmd_create, "create a dynamic or fixed VHD" },
	{ "snapshot", cmd_snapshot, "create a differencing child on a VHD" },
	{ "info", cmd_info, "show footer, header, locators, batmap and allocation" },
	{ "check", cmd_check, "verify a VHD (and its chain) and report every problem" },
	{ "repair", cmd_repair, "repair what can be repaired safely" },
	{ "map", cmd_map, "list the allocated extents of a VHD or its chain" },
	{ "tree", cmd_tree, "show the VHDs of a directory as a forest" },
	{ "depth", cmd_depth, "print the chain depth of a VHD" },
	{ "set", cmd_set, "set a field: hidden on|off" },
	{ "resize", cmd_resize, "grow the virtual size" },
	{ "reparent", cmd_reparent, "point a differencing VHD at another parent" },
	{ "convert", cmd_convert, "raw <-> VHD, or flatten a chain" },
	{ "coalesce", cmd_coalesce, "merge a differencing VHD into its parent" },
	{ "commit", cmd_commit, "merge every layer from a top down into a base" },
	{ "recover", cmd_recover, "finish interrupted coalesce/commit operations" },
	{ "serve", cmd_serve, "serve a VHD chain over NBD (nbdkit and vhdkit's plugin)" },
	{ "live-coalesce", cmd_live_coalesce, "merge a served leaf into its parent live (vhd serve)" },
	{ "gc", cmd_gc, "garbage-collect a storage repository (run, status, wait, ...)" },
};

static int main_usage(FILE *out)
{
	fprintf(out, "usage: vhd COMMAND [OPTIONS] ARGS...\n\nCommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n'vhd COMMAND --help' describes each command.\n"
	             "Exit codes: 0 ok, 1 failed, 2 usage, 3 invalid image, 4 refused,\n"
	             "5 stopped (resumable).\n");
	return out == stdout ? EXIT_OK : EXIT_USAGE;
}

int main(int argc, char **argv)
{
	/* installed as vhd-util (a symlink): blktap's command line */
	if (argc > 0 && !strcmp(basename(argv[0]), "vhd-util"))
		return vhdutil_main(argc, argv);
	if (argc < 2)
		return main_usage(stderr);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))
		return main_usage(stdout);
	if (!strcmp(argv[1], "--version")) {
		puts("vhd (vhdkit) 0.1.0");
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "vhd: unknown command '%s'\n", argv[1]);
	return main_usage(stderr);
}
