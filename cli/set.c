/* set.c - `vhd set FILE hidden on|off`. */
#include <getopt.h>
#include <string.h>

#include "vhd.h"

static const char help[] =
	"usage: vhd set FILE hidden on|off\n"
	"\n"
	"Set the hidden flag (footer byte 85, a Xen extension) in both footers.\n"
	"XenServer marks the inner nodes of a snapshot tree hidden.\n"
	"\n"
	"Example:\n"
	"  vhd set base.vhd hidden on\n";

int cmd_set(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return usage(help, false);
	if (argc != 4 || strcmp(argv[2], "hidden"))
		return usage(help, true);
	int on;
	if (!strcmp(argv[3], "on") || !strcmp(argv[3], "1"))
		on = 1;
	else if (!strcmp(argv[3], "off") || !strcmp(argv[3], "0"))
		on = 0;
	else
		return usage(help, true);
	int lk = vhd_sr_lock_file(argv[1], 1);   /* the GC plans under it */
	if (lk < 0)
		return fail_lib();
	vhd_t *v = vhd_open(argv[1], VHD_OPEN_RDWR | VHD_OPEN_NO_PARENT);
	int rc = v ? vhd_set_hidden(v, on) : -1;
	if (vhd_close(v) || rc)
		rc = fail_lib();
	vhd_sr_unlock(lk);
	return rc;
}
