/* test-gc-pace.c - the controller of `vhd gc run --rate-limit auto`
 * (gc/pace.c): sequences of samples (the foreground's reads and their
 * latency, the GC's own) and the decision and rate each leads to; then the
 * device lookup on a made-up /sys (a partition becomes its disk, a dm
 * device stays itself) and the parsing of /proc/diskstats lines. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gc.h"
#include "unit.h"

#define MIB 1048576.0
#define TICK 0.5
#define MAX_STEPS 64

/* One tick, in rates: the foreground's reads/s and ms each, the GC's. */
struct tick {
	double fg_reads, fg_ms;
	double own_reads, own_ms, own_mib;
	unsigned flags;
};
enum { COPY = 1, NODEV = 2 };

struct row {
	const char *what;
	struct tick steps[8];   /* the ticks, in order (a zero tick ends them) */
	unsigned repeat;        /* the last tick is repeated this many more times */
	const char *decision;   /* after the last */
	double rate_mib;        /* the rate after the last (0: unlimited) */
	double baseline_ms;     /* the baseline after the last (<0: unknown) */
};

#define QUIET_VM { 9000, 0.13, 0, 0, 0, 0 }      /* VMs alone on the disk */
#define HURT_VM(own_mib) { 5000, 0.60, 100, 6, own_mib, COPY }

static const struct row rows[] = {
	{ "a quiet disk: the rate doubles from the start rate",
	  { { 0, 0, 200, 5, 60, COPY } }, 0, "quiet", 128, -1 },
	{ "a quiet disk for long: unlimited past 2 GiB/s",
	  { { 0, 0, 200, 5, 60, COPY } }, 5, "quiet", 0, -1 },
	{ "not copying: the baseline is learnt, the rate kept",
	  { QUIET_VM }, 3, "hold", 64, 0.13 },
	{ "VMs suffer: the rate halves, from what the copy really did",
	  { QUIET_VM, HURT_VM(40) }, 0, "congested", 20, 0.13 },
	{ "VMs keep suffering: down to the floor of 1 MiB/s, never 0",
	  { QUIET_VM, HURT_VM(40) }, 12, "congested", 1, 0.13 * 1.1381 /* 1.01^13 */ },
	{ "VMs busy, not suffering: the rate grows by 1/8",
	  { QUIET_VM, { 9000, 0.15, 0, 0, 60, COPY } }, 0, "busy", 72, 0.13 },
	{ "growing from the floor: by 1 MiB/s at least",
	  { QUIET_VM, HURT_VM(40), HURT_VM(40), HURT_VM(40), HURT_VM(40), HURT_VM(40), HURT_VM(40),
	    { 9000, 0.14, 10, 6, 1, COPY } }, 0, "busy", 2, 0.13 * 1.0721 /* 1.01^7 */ },
	{ "the VMs recover after a slow-down: additive growth, not doubling",
	  { QUIET_VM, HURT_VM(40), { 9000, 0.14, 10, 6, 20, COPY } }, 3, "busy",
	  20 * 1.125 * 1.125 * 1.125 * 1.125, 0.13 * 1.0510 /* 1.01^5 */ },
	{ "the latency just under the threshold (1.3 x 0.13 + 0.05 ms) is not congestion",
	  { QUIET_VM, { 9000, 0.218, 0, 0, 60, COPY } }, 0, "busy", 72, 0.13 },
	{ "just over it is",
	  { QUIET_VM, { 9000, 0.220, 0, 0, 60, COPY } }, 0, "congested", 30, 0.13 },
	{ "fewer than 100 foreground reads/s do not count, however slow",
	  { QUIET_VM, { 90, 20, 100, 6, 60, COPY } }, 0, "quiet", 128, 0.13 },
	{ "reads the device split off the GC's own are no foreground",
	  { QUIET_VM, { 150, 20, 600, 6, 300, COPY } }, 0, "quiet", 128, 0.13 },
	{ "the GC's own slow reads count in the device's mean: the error is on the VMs' side",
	  { QUIET_VM, { 5000, 0.13, 500, 6, 60, COPY } }, 0, "congested", 30, 0.13 },
	{ "the GC's reads near the foreground's: judged, but no baseline learnt from it",
	  { QUIET_VM, { 1000, 0.10, 400, 6, 60, COPY } }, 0, "congested", 30, 0.13 },
	{ "helpers' reads under twice the GC's do not count",
	  { QUIET_VM, { 700, 5, 400, 6, 60, COPY } }, 0, "quiet", 128, 0.13 },
	{ "no baseline yet: the first foreground sample cannot be congested",
	  { { 5000, 1.0, 0, 0, 60, COPY } }, 0, "busy", 72, 1.0 },
	{ "the baseline forgets slowly: a disk slower for good is learnt",
	  { QUIET_VM, { 9000, 0.20, 0, 0, 60, COPY } }, 60, "busy", 0, 0.20 },
	{ "no device: the GC's own latency doubling is congestion",
	  { { 0, 0, 100, 2, 60, COPY | NODEV }, { 0, 0, 100, 10, 60, COPY | NODEV } }, 0,
	  "congested", 30, 2 },
	{ "no device, memory speed (tmpfs): unlimited",
	  { { 0, 0, 400, 0.01, 500, COPY | NODEV } }, 6, "quiet", 0, 0.01 },
};

static struct pace_sample sample_of(const struct tick *t)
{
	struct pace_sample s = { .dt = TICK, .have_device = !(t->flags & NODEV),
	                         .copying = t->flags & COPY };
	s.own_reads = (uint64_t)(t->own_reads * TICK);
	s.own_read_ms = (double)s.own_reads * t->own_ms;
	s.own_bytes = t->own_mib * MIB * TICK;
	if (s.have_device) {
		uint64_t fg = (uint64_t)(t->fg_reads * TICK);
		s.dev_reads = fg + s.own_reads;
		s.dev_read_ms = (double)fg * t->fg_ms + s.own_read_ms;
	}
	return s;
}

static bool near(double a, double b)
{
	return fabs(a - b) <= 1e-6 * (fabs(b) + 1);
}

static void run_row(const struct row *r)
{
	struct pace p;
	pace_init(&p);
	unsigned n = 0;
	while (n < 8 && (r->steps[n].fg_reads || r->steps[n].own_reads))
		n++;
	for (unsigned i = 0; i < n + r->repeat; i++) {
		struct pace_sample s = sample_of(&r->steps[i < n ? i : n - 1]);
		pace_step(&p, &s);
	}
	CHECK(!strcmp(p.decision, r->decision), "%s: decision %s, want %s", r->what, p.decision,
	      r->decision);
	CHECK(near(p.rate, r->rate_mib * MIB), "%s: rate %.3f MiB/s, want %.3f", r->what,
	      p.rate / MIB, r->rate_mib);
	/* within what one tick's forgetting adds */
	CHECK(r->baseline_ms < 0 ? p.baseline_ms < 0
	                         : fabs(p.baseline_ms - r->baseline_ms) <= r->baseline_ms * 0.011,
	      "%s: baseline %.4f ms, want %.4f", r->what, p.baseline_ms, r->baseline_ms);
}

static void check_ignores_empty_samples(void)
{
	struct pace p;
	pace_init(&p);
	struct pace_sample s = { .dt = 0, .have_device = true, .dev_reads = 1000,
	                         .dev_read_ms = 1e6, .copying = true };
	pace_step(&p, &s);
	CHECK(!strcmp(p.decision, "start") && near(p.rate, PACE_START_RATE),
	      "a sample of no time changes nothing (%s, %.0f)", p.decision, p.rate);
}

/* ---- the device lookup on a made-up /sys, diskstats parsing ---- */

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void check_devices(void)
{
	char root[] = "/tmp/test-gc-pace.XXXXXX", p[512], q[512];
	if (!mkdtemp(root)) {
		CHECK(0, "mkdtemp");
		return;
	}
	const char *dirs[] = { "dev", "dev/block", "devices", "devices/vda", "devices/vda/vda1",
	                       "devices/dm-0" };
	for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
		snprintf(p, sizeof p, "%s/%s", root, dirs[i]);
		mkdir(p, 0755);
	}
	snprintf(p, sizeof p, "%s/devices/vda/dev", root);
	put(p, "254:0\n");
	snprintf(p, sizeof p, "%s/devices/vda/vda1/partition", root);
	put(p, "1\n");
	const char *links[][2] = { { "254:1", "../../devices/vda/vda1" },
	                           { "254:0", "../../devices/vda" },
	                           { "253:0", "../../devices/dm-0" } };
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s/dev/block/%s", root, links[i][0]);
		if (symlink(links[i][1], p))
			CHECK(0, "symlink %s", p);
	}
	struct { unsigned maj, min; int rc; unsigned want_maj, want_min; const char *what; } cases[] = {
		{ 254, 1, 0, 254, 0, "a partition becomes its disk" },
		{ 254, 0, 0, 254, 0, "a disk stays itself" },
		{ 253, 0, 0, 253, 0, "a dm device stays itself (its own counters)" },
		{ 7, 3, -1, 7, 3, "a device sysfs does not know: -1" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		unsigned maj = cases[i].maj, min = cases[i].min;
		int rc = pace_whole_disk(root, &maj, &min);
		CHECK(rc == cases[i].rc && (rc || (maj == cases[i].want_maj && min == cases[i].want_min)),
		      "%s: %u:%u -> rc %d, %u:%u", cases[i].what, cases[i].maj, cases[i].min, rc, maj, min);
	}
	snprintf(q, sizeof q, "%s/diskstats", root);
	put(q, " 254       0 vda 5000 12 400000 1234 777 0 0 0 0 0 0\n"
	       " 254       1 vda1 4000 12 300000 999 777 0 0 0 0 0 0\n"
	       "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0\n"
	       "garbage line\n");
	struct pace_disk d;
	CHECK(!pace_read_diskstats(q, 254, 0, &d) && d.reads == 5000 && d.read_ms == 1234 &&
	      !strcmp(d.name, "vda"), "diskstats: vda's reads and read ticks (%llu, %llu, %s)",
	      (unsigned long long)d.reads, (unsigned long long)d.read_ms, d.name);
	CHECK(!pace_read_diskstats(q, 254, 1, &d) && d.reads == 4000 && !strcmp(d.name, "vda1"),
	      "diskstats: the partition's own line");
	CHECK(pace_read_diskstats(q, 8, 0, &d) == -1, "diskstats: an absent device is -1");
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (system(cmd))
		CHECK(0, "cleaning %s", root);
}

static void check_no_device(void)
{
	unsigned maj, min;
	char why[256];
	/* /proc is on no block device: the controller falls back to own reads */
	CHECK(pace_find_device("/proc", &maj, &min, why, sizeof why) == -1 && strstr(why, "no block device"),
	      "/proc has no device: '%s'", why);
}

int main(void)
{
	for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
		run_row(&rows[i]);
	check_ignores_empty_samples();
	check_devices();
	check_no_device();
	printf("%zu controller sequences, the device lookup (partition, disk, dm, unknown), "
	       "diskstats parsing, a filesystem without a device\n", sizeof rows / sizeof *rows);
	return unit_done("test-gc-pace");
}
