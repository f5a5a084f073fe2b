/* reparent.c - `vhd reparent CHILD PARENT`. */
#include <string.h>

#include "vhd.h"

static const char help[] =
	"usage: vhd reparent CHILD PARENT\n"
	"\n"
	"Point the differencing VHD CHILD at PARENT: its header's parent UUID,\n"
	"timestamp and name, and its three locators (rewritten in place, so the\n"
	"new relative path must fit their 512-byte areas).  Refuses a PARENT\n"
	"larger than CHILD or one that descends from CHILD.  Only use it when\n"
	"PARENT holds the same content as CHILD's old parent chain (e.g. after\n"
	"a coalesce); it changes what CHILD reads otherwise.\n"
	"\n"
	"Example:\n"
	"  vhd reparent leaf.vhd base.vhd\n";

int cmd_reparent(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return usage(help, false);
	if (argc != 3)
		return usage(help, true);
	int lk = vhd_sr_lock_file(argv[1], 1);   /* the GC plans under it */
	if (lk < 0)
		return fail_lib();
	int rc = vhd_reparent(argv[1], argv[2]) ? fail_lib() : EXIT_OK;
	vhd_sr_unlock(lk);
	return rc;
}
