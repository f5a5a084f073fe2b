/* progress.c - the progress bar (on a terminal only) and the clock it uses. */
#include <time.h>
#include <unistd.h>

#include "common.h"

double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void progress_start(struct progress *p, const char *label, uint64_t total)
{
	memset(p, 0, sizeof *p);
	p->label = label;
	p->total = total;
	p->start = p->last = now_seconds();
	p->active = isatty(STDERR_FILENO) && total > 0;
}

void progress_update(struct progress *p, uint64_t done)
{
	p->done = done;
	if (!p->active)
		return;
	double t = now_seconds();
	if (t - p->last < 0.2 && done < p->total)
		return;
	p->last = t;
	double frac = p->total ? (double)done / (double)p->total : 1;
	if (!p->started) {   /* a resumed job starts part done: rate from here */
		p->started = true;
		p->first = done;
	}
	double rate = t > p->start && done >= p->first ? (double)(done - p->first) / (t - p->start) : 0;
	double eta = rate > 0 ? (double)(p->total - done) / rate : 0;
	int width = 30, fill = (int)(frac * width);
	char bar[31], a[32], b[32], r[32];
	for (int i = 0; i < width; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[width] = 0;
	fprintf(stderr, "\r%s [%s] %5.1f%% %s/%s %s/s ETA %.0fs ", p->label, bar, frac * 100,
	        human_size(done, a, sizeof a), human_size(p->total, b, sizeof b),
	        human_size((uint64_t)rate, r, sizeof r), eta);
}

void progress_end(struct progress *p)
{
	if (!p->active)
		return;
	p->last = 0;
	progress_update(p, p->total);
	fputc('\n', stderr);
}
