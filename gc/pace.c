/* pace.c - `--rate-limit auto`: the GC yields the disk to the VMs.
 *
 * Every PACE_TICK seconds a thread reads the counters of the SR's block
 * device (/proc/diskstats) and the GC's own copy reads (count and time,
 * from the merge's progress), and the pure controller below (pace_step,
 * unit-tested in tests/unit/test-gc-pace.c) picks the copy's rate limit.
 *
 * The signal: the latency of reads on the device while there is a
 * foreground.  The device's reads minus the GC's own are the foreground's
 * (the VMs', any other program's); the mean time of the device's reads
 * (diskstats read ticks / reads) is what a VM's read costs now.  Reads,
 * not writes: the GC's own reads are known exactly (O_DIRECT, counted and
 * timed by the copy threads), its writes go through the page cache and
 * reach the disk later, from the kernel.
 *
 * The rule, each tick:
 *   - foreground present (at least PACE_FG_MIN_READS reads/s, and twice
 *     the GC's own reads: the device may split one of those into several
 *     requests, counted as foreground) and its latency above PACE_RATIO x the quiet
 *     baseline + PACE_MARGIN_MS: congested, the rate is halved
 *     (multiplicative decrease, down to PACE_MIN_RATE, never 0: the GC
 *     keeps moving and keeps measuring);
 *   - foreground present, latency near the baseline: the rate grows by
 *     1/8 (at least 1 MiB/s): a slow probe for room;
 *   - no foreground: the disk is the GC's, the rate doubles; past
 *     PACE_MAX_RATE it is unlimited (0).
 * The quiet baseline is the lowest foreground latency seen, forgotten
 * slowly (it grows by PACE_FORGET per tick) so that a disk that became
 * slower for good is learnt; it is measured while the GC does not copy
 * (so a baseline exists before the first merge starts) and from samples
 * where the foreground's reads outnumber the GC's tenfold.
 *
 * Without a device (tmpfs, overlayfs, btrfs and other filesystems whose
 * st_dev is not a block device of /proc/diskstats) the signal is the GC's
 * own read latency against its own quiet baseline, with PACE_OWN_RATIO:
 * on tmpfs it stays at memory speed, and the copy runs unlimited. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "gc.h"

#define MIB (1024.0 * 1024.0)

void pace_init(struct pace *p)
{
	memset(p, 0, sizeof *p);
	p->rate = PACE_START_RATE;
	p->baseline_ms = -1;
	p->latency_ms = -1;
	p->decision = "start";
}

static void learn_baseline(struct pace *p, double ms)
{
	if (p->baseline_ms < 0 || ms <= p->baseline_ms)
		p->baseline_ms = ms;
	else if (p->baseline_ms * PACE_FORGET < ms)
		p->baseline_ms *= PACE_FORGET;
	else
		p->baseline_ms = ms;
}

static void decrease(struct pace *p, double own_rate)
{
	/* from what the copy really did when it ran below its limit */
	double from = p->rate == 0 || (own_rate > 0 && own_rate < p->rate) ? own_rate : p->rate;
	if (from <= 0)
		from = PACE_START_RATE;
	p->rate = from / 2 < PACE_MIN_RATE ? PACE_MIN_RATE : from / 2;
}

static void increase(struct pace *p, bool quiet)
{
	if (p->rate == 0)
		return;
	double step = p->rate / 8 < MIB ? MIB : p->rate / 8;
	p->rate = quiet ? p->rate * 2 : p->rate + step;
	if (p->rate > PACE_MAX_RATE)
		p->rate = 0;
}

void pace_step(struct pace *p, const struct pace_sample *s)
{
	if (s->dt <= 0)
		return;
	double own_rate = s->own_bytes / s->dt;
	double ms = -1, ratio = PACE_RATIO;
	bool present, clean = true;
	if (s->have_device) {
		double reads = s->dev_reads > s->own_reads ? (double)(s->dev_reads - s->own_reads) : 0;
		p->fg_reads_per_s = reads / s->dt;
		present = p->fg_reads_per_s >= PACE_FG_MIN_READS && reads >= 2.0 * (double)s->own_reads;
		/* the mean of every read of the device, the GC's included: its
		 * own times cannot be taken off (they include waiting for a CPU
		 * on a loaded host), and the GC's larger reads can only make it
		 * look congested sooner: the error is on the VMs' side */
		if (present)
			ms = s->dev_read_ms / (double)s->dev_reads;
		/* a baseline only from samples the GC's own reads barely touch */
		clean = reads >= 10.0 * (double)s->own_reads;
	} else {
		ratio = PACE_OWN_RATIO;
		p->fg_reads_per_s = 0;
		present = s->own_reads > 0;
		if (present)
			ms = s->own_read_ms / (double)s->own_reads;
	}
	p->latency_ms = ms;
	if (!s->copying) {   /* nothing of ours on the disk: a clean baseline */
		if (ms >= 0)
			learn_baseline(p, ms);
		p->decision = "hold";
		return;
	}
	bool congested = ms >= 0 && p->baseline_ms >= 0 &&
	                 ms > p->baseline_ms * ratio + PACE_MARGIN_MS;
	if (ms >= 0 && clean)
		learn_baseline(p, ms);
	if (congested) {
		decrease(p, own_rate);
		p->decreases++;
		p->decision = "congested";
	} else if (present && s->have_device) {
		increase(p, false);
		p->decision = "busy";
	} else {
		increase(p, true);
		p->decision = "quiet";
	}
}

/* ---- the device under the SR ---- */

static int read_dev_file(const char *path, unsigned *maj, unsigned *min)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int n = fscanf(f, "%u:%u", maj, min);
	fclose(f);
	return n == 2 ? 0 : -1;
}

int pace_whole_disk(const char *sysfs, unsigned *maj, unsigned *min)
{
	char link[PATH_MAX], real[PATH_MAX];
	snprintf(link, sizeof link, "%s/dev/block/%u:%u", sysfs, *maj, *min);
	if (!realpath(link, real))
		return -1;
	char part[PATH_MAX + 16];
	snprintf(part, sizeof part, "%s/partition", real);
	if (access(part, F_OK))
		return 0;   /* a whole disk, a dm or a loop device: its own counters */
	char *slash = strrchr(real, '/');
	if (!slash)
		return -1;
	*slash = 0;   /* a partition's directory sits in its disk's */
	char dev[PATH_MAX + 16];
	snprintf(dev, sizeof dev, "%s/dev", real);
	return read_dev_file(dev, maj, min);
}

int pace_read_diskstats(const char *path, unsigned maj, unsigned min, struct pace_disk *d)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char line[512];
	int rc = -1;
	while (rc && fgets(line, sizeof line, f)) {
		unsigned a, b;
		unsigned long long reads, merged, sectors, ticks;
		if (sscanf(line, "%u %u %63s %llu %llu %llu %llu", &a, &b, d->name, &reads, &merged,
		           &sectors, &ticks) == 7 && a == maj && b == min) {
			d->reads = reads;
			d->read_ms = ticks;
			rc = 0;
		}
	}
	fclose(f);
	return rc;
}

int pace_find_device(const char *dir, unsigned *maj, unsigned *min, char *why, size_t len)
{
	struct stat st;
	if (stat(dir, &st))
		return snprintf(why, len, "%s: %s", dir, strerror(errno)), -1;
	*maj = major(st.st_dev);
	*min = minor(st.st_dev);
	if (*maj == 0)   /* an anonymous device: tmpfs, overlayfs, btrfs, NFS */
		return snprintf(why, len, "%s is on no block device (device %u:%u)", dir, *maj,
		                *min), -1;
	if (pace_whole_disk("/sys", maj, min))
		return snprintf(why, len, "device %u:%u not in /sys/dev/block", *maj, *min), -1;
	struct pace_disk d;
	if (pace_read_diskstats("/proc/diskstats", *maj, *min, &d))
		return snprintf(why, len, "device %u:%u not in /proc/diskstats", *maj, *min), -1;
	return 0;
}

/* ---- the thread ---- */

static void pace_nap(struct gc *g, double secs)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	long ns = ts.tv_nsec + (long)(secs * 1e9);
	ts.tv_sec += ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	pthread_mutex_lock(&g->lock);
	if (!g->shutdown)
		pthread_cond_timedwait(&g->pace_wake, &g->lock, &ts);
	pthread_mutex_unlock(&g->lock);
}

void *gc_pace_thread(void *arg)
{
	struct gc *g = arg;
	unsigned maj = 0, min = 0;
	char why[256];
	bool device = !pace_find_device(g->o.dir, &maj, &min, why, sizeof why);
	struct pace_disk d0 = { 0 }, d1 = { 0 };
	if (device)
		device = !pace_read_diskstats("/proc/diskstats", maj, min, &d0);
	pthread_mutex_lock(&g->lock);
	if (device)
		snprintf(g->pace_signal, sizeof g->pace_signal, "foreground reads of %s", d0.name);
	else
		snprintf(g->pace_signal, sizeof g->pace_signal, "own reads (%s)", why);
	snprintf(g->pace_device, sizeof g->pace_device, "%s", device ? d0.name : "");
	uint64_t reads0 = g->copy_reads, bytes0 = g->bytes_coalesced;
	double secs0 = g->copy_read_seconds, t0 = now_seconds();
	pthread_mutex_unlock(&g->lock);
	gc_log(g, false, "rate limit auto: the signal is the %s", g->pace_signal);
	for (;;) {
		pace_nap(g, PACE_TICK);
		struct pace_sample s = { .have_device = device };
		if (device && pace_read_diskstats("/proc/diskstats", maj, min, &d1))
			s.have_device = false;   /* the device went away: own reads */
		double t = now_seconds();
		pthread_mutex_lock(&g->lock);
		if (g->shutdown) {
			pthread_mutex_unlock(&g->lock);
			break;
		}
		s.dt = t - t0;
		s.dev_reads = s.have_device ? d1.reads - d0.reads : 0;
		s.dev_read_ms = s.have_device ? (double)(d1.read_ms - d0.read_ms) : 0;
		s.own_reads = g->copy_reads - reads0;
		s.own_read_ms = (g->copy_read_seconds - secs0) * 1000;
		s.own_bytes = (double)(g->bytes_coalesced - bytes0);
		s.copying = g->busy && !strcmp(g->phase, "copy");
		const char *before = g->pace.decision;
		pace_step(&g->pace, &s);
		if (g->o.rate_auto)
			g->copts.rate_limit = (uint64_t)g->pace.rate;
		struct pace now = g->pace;
		reads0 = g->copy_reads;
		secs0 = g->copy_read_seconds;
		bytes0 = g->bytes_coalesced;
		pthread_mutex_unlock(&g->lock);
		if (strcmp(before, now.decision))   /* one line per change of mind */
			gc_log(g, false, "rate limit auto: %s, %.1f MiB/s (foreground reads %.0f/s, "
			       "latency %.3f ms, quiet %.3f ms)", now.decision, now.rate / 1048576,
			       now.fg_reads_per_s, now.latency_ms, now.baseline_ms);
		d0 = d1;
		t0 = t;
	}
	return NULL;
}
