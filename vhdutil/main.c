/* main.c - `vhd-util`: blktap's command line, chosen by argv[0].
 *
 * Installed as a symlink named vhd-util to the vhd binary, vhdkit accepts
 * blktap's vhd-util commands and options and prints what blktap prints,
 * exiting with the same status (a positive errno).  Differences are listed
 * in the man page (vhd-util section) and tests/test-vhdutil-replay.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdutil.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
	{ "create", vu_create },     { "snapshot", vu_snapshot }, { "query", vu_query },
	{ "read", vu_read },         { "set", vu_set },           { "repair", vu_repair },
	{ "resize", vu_resize },     { "fill", vu_fill },         { "coalesce", vu_coalesce },
	{ "modify", vu_modify },     { "scan", vu_scan },         { "check", vu_check },
	{ "revert", vu_revert },
};
#define NCOMMANDS (sizeof commands / sizeof *commands)

static int help(void)
{
	printf("usage: vhd-util COMMAND [OPTIONS]\nCOMMAND := { %s", commands[0].name);
	for (size_t i = 1; i < NCOMMANDS; i++)
		printf(" | %s", commands[i].name);
	printf(" }\n");
	return 0;
}

int vhdutil_main(int argc, char **argv)
{
	if (argc < 2)
		return help();
	size_t i = 0;
	while (i < NCOMMANDS && strcmp(argv[1], commands[i].name))
		i++;
	if (i == NCOMMANDS) {
		fprintf(stderr, "invalid COMMAND %s\n", argv[1]);
		return help();
	}
	/* the command's own argv: its name, then every argument but --debug */
	char **cargv = calloc((size_t)argc, sizeof *cargv);
	if (!cargv)
		return 12;
	int cargc = 0;
	cargv[cargc++] = argv[1];
	for (int a = 2; a < argc; a++)
		if (strcmp(argv[a], "--debug"))
			cargv[cargc++] = argv[a];
	optind = 0;
	int ret = commands[i].run(cargc, cargv);
	free(cargv);
	fflush(stdout);
	return ret >= 0 ? ret : -ret;
}
