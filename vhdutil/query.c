/* query.c - `vhd-util query`: size, parent, fields, depth. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdutil.h"

static int query_usage(int err)
{
	printf("options: <-n name> [-v print virtual size (in MB)] "
	       "[-s print physical utilization (bytes)] [-p print parent] "
	       "[-f print fields] [-m print marker] [-d print chain depth] "
	       "[-S print max virtual size (MB) for fast resize] "
	       "[-a print allocated block count] "
	       "[-u don't resolve parent path] [-h help]\n");
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

/* blktap's marker: the batmap header's byte (read without checking the
 * batmap), or, for a VHD without batmap, the extended attribute below
 * (0 when absent); printed as a signed char. */
static int read_marker(struct vu_ctx *c, signed char *marker)
{
	uint8_t buf[SECTOR];
	struct vhd_batmap_header b;
	*marker = 0;
	if (!vu_has_batmap(c))
		return vu_get_xattr(c->fd, MARKER_XATTR, marker, 1);
	int err = vu_pread(c, buf, SECTOR, bat_end(&c->header));
	if (err)
		return err;
	batmap_header_decode(&b, buf);
	*marker = (signed char)b.marker;
	return 0;
}

static int print_marker(struct vu_ctx *c)
{
	signed char marker;
	int ret = read_marker(c, &marker);
	if (ret)
		printf("error checking 'marker' field: %d\n", ret);
	else
		printf("marker: %d\n", marker);
	return ret;
}

static int print_hidden(struct vu_ctx *c)
{
	int hidden, ret = vu_hidden(c, &hidden);
	if (ret)
		printf("error checking 'hidden' field: %d\n", ret);
	else
		printf("hidden: %d\n", hidden);
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
	for (uint32_t i = 0; i < c->bat_entries; i++)
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
		ret = print_hidden(&c);
		err = err ? err : ret;
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
	if (allocated) {
		ret = print_allocated(&c);
		err = err ? err : ret;
	}
	/* blktap: max BAT entries << (21 - 20), whatever the block size */
	if (fastresize)
		printf("%" PRIu64 "\n", (uint64_t)c.header.max_bat_entries << 1);
	vu_close(&c);
	return err;
}
