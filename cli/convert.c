/* convert.c - `vhd convert IN OUT`: raw <-> VHD, or flatten a chain.
 *
 * Only the input's data is visited (a VHD chain's allocated extents, a raw
 * file's data segments), in large aligned chunks; zeros are never written:
 * a dynamic output leaves all-zero blocks unallocated, raw and fixed
 * outputs get holes.  OUT is built under a temporary name beside it and
 * renamed into place once complete and synced, so an interrupted or failed
 * convert never leaves a partial OUT. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhd.h"

static const char help[] =
	"usage: vhd convert [--raw|--fixed|--dynamic] [--from raw|vhd] [--force]\n"
	"                   [--json] IN OUT\n"
	"\n"
	"Convert IN to OUT:\n"
	"  raw image -> dynamic VHD (default) or fixed VHD (--fixed);\n"
	"  VHD (a whole chain, read through its parents) -> raw image (--raw, or\n"
	"  OUT ending in .raw or .img), or one flattened dynamic VHD without\n"
	"  parent, or a fixed VHD.\n"
	"IN is a VHD if it ends in a VHD footer (or starts with a footer copy),\n"
	"raw otherwise; --from overrides.  Output is sparse: all-zero blocks are\n"
	"not allocated in a dynamic VHD and are holes in raw and fixed outputs.\n"
	"OUT is written under a temporary name in its directory and renamed when\n"
	"complete, so it never exists half written.  An existing OUT is refused\n"
	"(exit 4) unless --force is given.\n"
	"\n"
	"Options:\n"
	"  -r, --raw          write a raw image\n"
	"  -f, --fixed        write a fixed VHD\n"
	"  -d, --dynamic      write a dynamic VHD (the default unless OUT ends in\n"
	"                     .raw or .img)\n"
	"      --from FORMAT  read IN as raw or vhd\n"
	"      --force        replace an existing OUT\n"
	"  -j, --json         print a JSON summary\n"
	"  -h, --help         this text\n"
	"\n"
	"Examples:\n"
	"  vhd convert disk.img disk.vhd\n"
	"  vhd convert leaf.vhd flat.vhd\n"
	"  vhd convert leaf.vhd disk.raw\n"
	"  vhd convert --fixed --from raw disk.bin fixed.vhd\n";

#define CHUNK (8u << 20)          /* bytes read at a time */
#define ALIGN (2u << 20)          /* extents are widened to whole VHD blocks */
#define RAW_GRAIN 4096u           /* zero-skip granularity of raw/fixed output */

enum format { FMT_AUTO, FMT_RAW, FMT_VHD, FMT_FIXED, FMT_DYNAMIC };

struct range {
	uint64_t start, end;
};

struct input {
	const char *path;
	enum format format;       /* FMT_RAW or FMT_VHD */
	int fd;                   /* raw */
	vhd_t *vhd;
	uint64_t size;            /* bytes of content */
	struct range *ranges;     /* where data may be, ALIGN-aligned, merged */
	size_t nranges, cap;
	uint64_t work;            /* bytes the ranges cover */
};

struct output {
	const char *path;
	enum format format;       /* FMT_RAW, FMT_FIXED or FMT_DYNAMIC */
	char *tmp;                /* the temporary name, while it exists */
	int fd;                   /* raw */
	vhd_t *vhd;
	uint64_t size;
	uint32_t grain;           /* zero-skip unit */
	uint64_t written;         /* data bytes written */
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	size_t head = len < 16 ? len : 16;
	for (size_t i = 0; i < head; i++)
		if (p[i])
			return false;
	return len <= 16 || !memcmp(p, p + 16, len - 16);
}

/* ---- input --------------------------------------------------------- */

static int add_range(struct input *in, uint64_t off, uint64_t len)
{
	uint64_t start = off / ALIGN * ALIGN;
	uint64_t end = (off + len + ALIGN - 1) / ALIGN * ALIGN;
	if (end > in->size)
		end = in->size;
	if (start >= end)
		return 0;
	struct range *last = in->nranges ? &in->ranges[in->nranges - 1] : NULL;
	if (last && start <= last->end) {
		if (end > last->end) {
			in->work += end - last->end;
			last->end = end;
		}
		return 0;
	}
	if (in->nranges == in->cap) {
		size_t cap = in->cap ? 2 * in->cap : 256;
		struct range *r = realloc(in->ranges, cap * sizeof *r);
		if (!r)
			return -1;
		in->ranges = r;
		in->cap = cap;
	}
	in->ranges[in->nranges++] = (struct range){ start, end };
	in->work += end - start;
	return 0;
}

static int add_extent(uint64_t off, uint64_t len, unsigned layer, void *opaque)
{
	(void)layer;
	return add_range(opaque, off, len) ? 1 : 0;
}

/* A raw file's data segments (everything if the filesystem cannot say). */
static int raw_extents(struct input *in)
{
	off_t pos = 0, end = (off_t)in->size;
	while (pos < end) {
		off_t data = lseek(in->fd, pos, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			return 0;
		if (data < 0)
			return add_range(in, (uint64_t)pos, (uint64_t)(end - pos));
		off_t hole = lseek(in->fd, data, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		if (add_range(in, (uint64_t)data, (uint64_t)(hole - data)))
			return -1;
		pos = hole;
	}
	return 0;
}

static bool cookie_at(int fd, off_t off)
{
	char buf[8];
	return off >= 0 && pread(fd, buf, sizeof buf, off) == (ssize_t)sizeof buf &&
	       !memcmp(buf, "conectix", 8);
}

static enum format detect(int fd, uint64_t size)
{
	if (size >= 512 && (cookie_at(fd, (off_t)(size & ~511ull) - 512) || cookie_at(fd, 0)))
		return FMT_VHD;
	return FMT_RAW;
}

/* Returns an exit code. */
static int open_input(struct input *in)
{
	in->fd = open(in->path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (in->fd < 0 || fstat(in->fd, &st)) {
		warnx_("%s: %s", in->path, strerror(errno));
		return EXIT_FAIL;
	}
	off_t end = S_ISBLK(st.st_mode) ? lseek(in->fd, 0, SEEK_END) : st.st_size;
	if ((!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) || end < 0) {
		warnx_("%s: not a regular file or block device", in->path);
		return EXIT_FAIL;
	}
	in->size = (uint64_t)end;
	if (in->format == FMT_AUTO)
		in->format = detect(in->fd, in->size);
	if (in->format == FMT_RAW)
		return raw_extents(in) ? (warnx_("convert: out of memory"), EXIT_FAIL) : EXIT_OK;
	close(in->fd);
	in->fd = -1;
	if (!(in->vhd = vhd_open(in->path, VHD_OPEN_RDONLY)))
		return fail_lib();
	struct vhd_info i;
	vhd_get_info(in->vhd, &i);
	in->size = i.virtual_size;
	int r = vhd_map(in->vhd, 1, add_extent, in);
	if (r < 0)
		return fail_lib();
	if (r > 0) {
		warnx_("convert: out of memory");
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int read_input(struct input *in, uint8_t *buf, size_t len, uint64_t off)
{
	if (in->vhd)
		return vhd_pread(in->vhd, buf, len, off) ? (fail_lib(), -1) : 0;
	size_t got = 0;
	while (got < len) {
		ssize_t r = pread(in->fd, buf + got, len - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			warnx_("%s: read at %" PRIu64 ": %s", in->path, off + got, strerror(errno));
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	memset(buf + got, 0, len - got);   /* past the end: a partial last sector */
	return 0;
}

static void close_input(struct input *in)
{
	if (in->fd >= 0)
		close(in->fd);
	vhd_close(in->vhd);
	free(in->ranges);
}

/* ---- output -------------------------------------------------------- */

/* Is OUT (existing, stat ST) the input or one of its parents? */
static bool is_input_file(const struct input *in, const struct stat *st)
{
	struct stat s;
	if (!in->vhd)
		return !stat(in->path, &s) && s.st_dev == st->st_dev && s.st_ino == st->st_ino;
	for (vhd_t *l = in->vhd; l; l = vhd_get_parent(l)) {
		struct vhd_info i;
		vhd_get_info(l, &i);
		if (!stat(i.path, &s) && s.st_dev == st->st_dev && s.st_ino == st->st_ino)
			return true;
	}
	return false;
}

/* Returns an exit code. */
static int check_output(const struct output *out, const struct input *in, bool force)
{
	struct stat st;
	if (lstat(out->path, &st)) {
		if (errno == ENOENT)
			return EXIT_OK;
		warnx_("%s: %s", out->path, strerror(errno));
		return EXIT_FAIL;
	}
	if (!S_ISREG(st.st_mode)) {
		warnx_("%s: exists and is not a regular file (refusing to replace it)", out->path);
		return EXIT_REFUSED;
	}
	if (is_input_file(in, &st)) {
		warnx_("%s: is the input or one of its parents (refusing to replace it)", out->path);
		return EXIT_REFUSED;
	}
	if (!force) {
		warnx_("%s: already exists (use --force to replace it)", out->path);
		return EXIT_REFUSED;
	}
	return EXIT_OK;
}

/* An empty file ".NAME.XXXXXX" beside OUT, with the usual permissions. */
static int make_temp(struct output *out)
{
	char d[PATH_MAX], b[PATH_MAX];
	snprintf(d, sizeof d, "%s", out->path);
	snprintf(b, sizeof b, "%s", out->path);
	size_t n = strlen(d) + strlen(b) + 16;
	if (!(out->tmp = malloc(n)))
		return -1;
	snprintf(out->tmp, n, "%s/.%s.XXXXXX", dirname(d), basename(b));
	int fd = mkstemp(out->tmp);
	if (fd < 0) {
		warnx_("%s: cannot create a temporary file: %s", out->path, strerror(errno));
		free(out->tmp);
		out->tmp = NULL;
		return -1;
	}
	mode_t mask = umask(0);
	umask(mask);
	if (fchmod(fd, 0666 & ~mask))
		warnx_("%s: chmod: %s", out->tmp, strerror(errno));
	return fd;
}

/* Returns an exit code. */
static int open_output(struct output *out)
{
	int fd = make_temp(out);
	if (fd < 0)
		return EXIT_FAIL;
	if (out->format == FMT_RAW) {
		out->fd = fd;
		out->grain = RAW_GRAIN;
		return EXIT_OK;
	}
	close(fd);
	int flags = VHD_CREATE_OVERWRITE | (out->format == FMT_FIXED ? VHD_CREATE_FIXED : 0);
	if (vhd_create(out->tmp, out->size, flags) ||
	    !(out->vhd = vhd_open(out->tmp, VHD_OPEN_RDWR)))
		return fail_lib();
	struct vhd_info i;
	vhd_get_info(out->vhd, &i);
	out->size = i.virtual_size;
	out->grain = out->format == FMT_FIXED ? RAW_GRAIN : i.block_size;
	return EXIT_OK;
}

static int write_run(struct output *out, const uint8_t *buf, size_t len, uint64_t off)
{
	out->written += len;
	if (out->vhd)
		return vhd_pwrite(out->vhd, buf, len, off) ? (fail_lib(), -1) : 0;
	for (size_t done = 0; done < len;) {
		ssize_t w = pwrite(out->fd, buf + done, len - done, (off_t)(off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			warnx_("%s: write at %" PRIu64 ": %s", out->path, off + done, strerror(errno));
			return -1;
		}
		done += (size_t)w;
	}
	return 0;
}

/* Write the parts of BUF (LEN bytes for offset OFF) that are not zero,
 * deciding grain by grain (grains aligned on the disk), merged into runs. */
static int write_nonzero(struct output *out, const uint8_t *buf, size_t len, uint64_t off)
{
	size_t run = 0, pos = 0;
	while (pos < len) {
		size_t n = out->grain - (size_t)((off + pos) % out->grain);
		if (n > len - pos)
			n = len - pos;
		bool zero = all_zero(buf + pos, n);
		if (zero && run) {
			if (write_run(out, buf + pos - run, run, off + pos - run))
				return -1;
			run = 0;
		}
		if (!zero)
			run += n;
		pos += n;
	}
	return run ? write_run(out, buf + len - run, run, off + len - run) : 0;
}

static int sync_dir_of(const char *path)
{
	char d[PATH_MAX];
	snprintf(d, sizeof d, "%s", path);
	int fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

static int finish_file(struct output *out)
{
	if (out->vhd) {
		int rc = vhd_close(out->vhd);
		out->vhd = NULL;
		return rc ? (fail_lib(), -1) : 0;
	}
	if (ftruncate(out->fd, (off_t)out->size) || fsync(out->fd)) {
		warnx_("%s: %s", out->tmp, strerror(errno));
		return -1;
	}
	return 0;
}

/* Move the complete temporary file to OUT; without FORCE never replace a
 * file that appeared meanwhile.  Returns an exit code. */
static int publish(struct output *out, bool force)
{
	int rc = force ? rename(out->tmp, out->path)
	               : renameat2(AT_FDCWD, out->tmp, AT_FDCWD, out->path, RENAME_NOREPLACE);
	if (rc && !force && (errno == EINVAL || errno == ENOSYS) &&
	    !(rc = link(out->tmp, out->path)))
		unlink(out->tmp);
	if (rc) {
		int e = errno;
		warnx_("%s: %s", out->path, e == EEXIST ? "already exists (use --force to replace it)"
		                                       : strerror(e));
		return e == EEXIST ? EXIT_REFUSED : EXIT_FAIL;
	}
	free(out->tmp);
	out->tmp = NULL;
	sync_dir_of(out->path);
	return EXIT_OK;
}

static void discard_output(struct output *out)
{
	if (out->fd >= 0)
		close(out->fd);
	vhd_close(out->vhd);
	if (out->tmp)
		unlink(out->tmp);
	free(out->tmp);
}

/* ---- the copy ------------------------------------------------------ */

static int copy_ranges(struct input *in, struct output *out)
{
	uint8_t *buf = malloc(CHUNK);
	if (!buf) {
		warnx_("convert: out of memory");
		return -1;
	}
	struct progress bar;
	progress_start(&bar, "convert", in->work);
	uint64_t done = 0;
	int rc = 0;
	for (size_t r = 0; r < in->nranges && !rc; r++) {
		/* a raw input's partial last sector is padded to the VHD's size */
		uint64_t end = in->ranges[r].end >= in->size ? out->size : in->ranges[r].end;
		for (uint64_t off = in->ranges[r].start; off < end && !rc;) {
			size_t n = end - off < CHUNK ? (size_t)(end - off) : CHUNK;
			if (stop_requested) {
				warnx_("convert: interrupted; %s not created", out->path);
				rc = -1;
			} else {
				rc = read_input(in, buf, n, off) || write_nonzero(out, buf, n, off) ? -1 : 0;
			}
			off += n;
			done += n;
			progress_update(&bar, done);
		}
	}
	if (!rc)
		progress_end(&bar);
	free(buf);
	return rc;
}

static const char *format_name(enum format f)
{
	switch (f) {
	case FMT_RAW: return "raw";
	case FMT_VHD: return "vhd";
	case FMT_FIXED: return "fixed";
	case FMT_DYNAMIC: return "dynamic";
	default: return "auto";
	}
}

static void report(const struct input *in, const struct output *out, double secs, bool json)
{
	if (json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "input", json_object_new_string(in->path));
		json_object_object_add(o, "input_format", json_object_new_string(format_name(in->format)));
		json_object_object_add(o, "chain_depth",
		                       json_object_new_int(in->vhd ? (int)vhd_chain_depth(in->vhd) : 0));
		json_object_object_add(o, "output", json_object_new_string(out->path));
		json_object_object_add(o, "output_format", json_object_new_string(format_name(out->format)));
		json_object_object_add(o, "virtual_size", json_object_new_uint64(out->size));
		json_object_object_add(o, "bytes_read", json_object_new_uint64(in->work));
		json_object_object_add(o, "bytes_written", json_object_new_uint64(out->written));
		json_object_object_add(o, "seconds", json_object_new_double(secs));
		json_print(o);
		return;
	}
	char v[32], w[32];
	printf("%s (%s) -> %s (%s): %s virtual, %s of data written in %.1f s\n", in->path,
	       format_name(in->format), out->path, format_name(out->format),
	       human_size(out->size, v, sizeof v), human_size(out->written, w, sizeof w), secs);
}

static int parse_from(const char *arg, enum format *f)
{
	if (!strcmp(arg, "raw"))
		*f = FMT_RAW;
	else if (!strcmp(arg, "vhd"))
		*f = FMT_VHD;
	else
		return -1;
	return 0;
}

static void catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART | SA_RESETHAND };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);   /* a second ^C kills at once */
	sigaction(SIGTERM, &sa, NULL);
}

static int convert(struct input *in, struct output *out, bool force, bool json)
{
	double t0 = now_seconds();
	int rc = open_input(in);
	if (rc)
		return rc;
	if (out->format == FMT_AUTO)
		out->format = has_suffix(out->path, ".raw") || has_suffix(out->path, ".img")
		              ? FMT_RAW : FMT_DYNAMIC;
	out->size = in->size;
	if ((rc = check_output(out, in, force)) || (rc = open_output(out)))
		return rc;
	catch_signals();
	if (copy_ranges(in, out) || finish_file(out))
		return EXIT_FAIL;
	if ((rc = publish(out, force)))
		return rc;
	report(in, out, now_seconds() - t0, json);
	return EXIT_OK;
}

int cmd_convert(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "raw", no_argument, 0, 'r' },
		{ "fixed", no_argument, 0, 'f' },
		{ "dynamic", no_argument, 0, 'd' },
		{ "from", required_argument, 0, 'F' },
		{ "force", no_argument, 0, 'o' },
		{ "json", no_argument, 0, 'j' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct input in = { .fd = -1, .format = FMT_AUTO };
	struct output out = { .fd = -1, .format = FMT_AUTO };
	bool force = false, json = false;
	int c;
	while ((c = getopt_long(argc, argv, "rfdjh", opts, NULL)) != -1) {
		enum format want = c == 'r' ? FMT_RAW : c == 'f' ? FMT_FIXED : FMT_DYNAMIC;
		switch (c) {
		case 'r': case 'f': case 'd':
			if (out.format != FMT_AUTO && out.format != want) {
				warnx_("convert: choose one of --raw, --fixed, --dynamic");
				return EXIT_USAGE;
			}
			out.format = want;
			break;
		case 'F':
			if (parse_from(optarg, &in.format)) {
				warnx_("convert: --from takes raw or vhd, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'o': force = true; break;
		case 'j': json = true; break;
		case 'h': return usage(help, false);
		default: return usage(help, true);
		}
	}
	if (argc - optind != 2)
		return usage(help, true);
	in.path = argv[optind];
	out.path = argv[optind + 1];
	int rc = convert(&in, &out, force, json);
	discard_output(&out);
	close_input(&in);
	return rc;
}
