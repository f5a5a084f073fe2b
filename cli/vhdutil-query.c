/* vhdutil-query.c - `vhd-util query`: size, parent, fields, depth. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vhdutil.h"

static int query_usage(int err)
{
	printf("options: <-n name> [-v print virtual size (in MB)] "
	       "[-s print physical utilization (bytes)] [-p print parent] "
	       "[-u don't resolve the parent path] "
	       "[-f print fields] [-m print marker] [-d print chain depth] "
	       "[-a print allocated block count] "
	       "[-S print max virtual size (MB) for fast resize] [-h help]\n");
	return err;
}

static int print_parent(struct vu_ctx *c, const char *name, bool unresolved)
{
	char *parent = NULL;
	int ret = 0;
	if (c->footer.type != VHD_TYPE_DIFF) {
		printf("%s has no parent\n", name);
		return 0;
	}
	if (unresolved) {
		ret = -EINVAL;
		for (int i = 0; i < LOC_COUNT && ret; i++)
			if (c->header.loc[i].code)
				ret = vu_locator_read(c, &c->header.loc[i], &parent);
	} else {
		ret = vu_parent_get(c, &parent);
	}
	if (ret)
		printf("query failed\n");
	else
		printf("%s\n", parent);
	free(parent);
	return ret;
}

static int print_marker(struct vu_ctx *c)
{
	int ret = vu_get_batmap(c);
	if (ret)
		printf("error checking 'marker' field: %d\n", ret);
	else
		printf("marker: %d\n", c->batmap.marker);
	return ret;
}

static int print_allocated(struct vu_ctx *c)
{
	int ret = vu_get_bat(c);
	uint64_t n = 0;
	if (ret) {
		printf("error reading bat: %d\n", ret);
		return ret;
	}
	for (uint32_t i = 0; i < c->header.max_bat_entries; i++)
		n += c->bat[i] != BAT_UNUSED;
	printf("%" PRIu64 "\n", n);
	return 0;
}

int vu_query(int argc, char **argv)
{
	const char *name = NULL;
	bool size = false, physize = false, parent = false, unresolved = false, fields = false,
	     marker = false, depth = false, allocated = false, fastresize = false;
	int ch, err, ret;
	struct vu_ctx c;

	while ((ch = getopt(argc, argv, "n:vspufmdaSh")) != -1) {
		switch (ch) {
		case 'n': name = optarg; break;
		case 'v': size = true; break;
		case 's': physize = true; break;
		case 'p': parent = true; break;
		case 'u': unresolved = true; break;
		case 'f': fields = true; break;
		case 'm': marker = true; break;
		case 'd': depth = true; break;
		case 'a': allocated = true; break;
		case 'S': fastresize = true; break;
		case 'h': return query_usage(0);
		default: return query_usage(-EINVAL);
		}
	}
	if (!name || optind != argc)
		return query_usage(-EINVAL);
	if ((err = vu_open(&c, name, VU_OPEN_IGNORE_DISABLED))) {
		printf("error opening %s: %d\n", name, err);
		return err;
	}
	if (size)
		printf("%" PRIu64 "\n", c.footer.curr_size >> 20);
	if (physize) {
		uint64_t end;
		err = vu_end_of_data(&c, &end);
		if (err)
			printf("failed to get physical size: %d\n", err);
		else
			printf("%" PRIu64 "\n", end + FOOTER_SIZE);
	}
	if (parent) {
		ret = print_parent(&c, name, unresolved);
		err = err ? err : ret;
	}
	if (fields) {
		printf("hidden: %d\n", c.footer.hidden);
	}
	if (marker) {
		ret = print_marker(&c);
		err = err ? err : ret;
	}
	if (depth) {
		int length;
		ret = vu_chain_depth(&c, &length);
		if (ret)
			printf("error checking chain depth: %d\n", ret);
		else
			printf("chain depth: %d\n", length);
		err = err ? err : ret;
	}
	if (fastresize)
		printf("%" PRIu64 "\n", (uint64_t)c.header.max_bat_entries * c.header.block_size >> 20);
	if (allocated) {
		ret = print_allocated(&c);
		err = err ? err : ret;
	}
	vu_close(&c);
	return err;
}
