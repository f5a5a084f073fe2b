/* crashpoint.c - LD_PRELOAD fault injector for crash-safety tests.
 *
 * Counts the calls that change files (pwrite, write, pwritev, ftruncate,
 * fallocate, fsync, fdatasync on regular files or block devices; rename,
 * unlink) and, at the CRASH_AT-th one (1-based), before performing it:
 *   CRASH_MODE=kill       SIGKILL the process (a kill -9 at that point);
 *   CRASH_MODE=powerloss  first undo a random subset (CRASH_SEED) of the
 *                         writes and truncations not yet fsynced, as a power
 *                         cut loses what was in the page cache (the size is
 *                         what the surviving changes imply: bytes that only
 *                         lost writes gave read as zeros), then SIGKILL;
 *   CRASH_MODE=enospc|eio fail that call and every later one with the errno.
 * CRASH_COUNT_FILE: at exit, the number of counted calls is written there,
 * so a harness can pick crash points in [1, count].
 * Renames and unlinks are treated as durable at once (not undone).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum mode { M_NONE, M_KILL, M_POWERLOSS, M_ENOSPC, M_EIO };

struct undo {                 /* one unsynced change, undone newest first */
	dev_t dev;
	ino_t ino;
	int fd;                   /* our own dup of the file */
	off_t off;
	size_t len;
	unsigned char *old;       /* previous bytes within the old size */
	off_t old_size;           /* file size before the change */
	off_t end;                /* end of the bytes written (writes), new size
	                             (truncations) */
	int shrink;               /* a truncation that made the file smaller */
	int keep, done;           /* at the power cut: reached the disk? */
	struct undo *prev;
};

/* Every wrapped call runs under this lock: the undo log and the count are
 * shared by the program's threads. */
static pthread_mutex_t big_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
#define LOCKED(expr)                                                       \
	do {                                                                   \
		pthread_mutex_lock(&big_lock);                                     \
		__typeof__(expr) r_ = (expr);                                      \
		pthread_mutex_unlock(&big_lock);                                   \
		return r_;                                                         \
	} while (0)

static enum mode mode;
static unsigned long crash_at, counted;
static unsigned seed = 1;
static int failing;
static struct undo *undo_log;
static size_t undo_bytes;

static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_fallocate)(int, int, off_t, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);

#define LOAD(name) real_##name = dlsym(RTLD_NEXT, #name)

__attribute__((constructor)) static void crash_init(void)
{
	LOAD(pwrite); LOAD(write); LOAD(pwritev); LOAD(ftruncate);
	LOAD(fallocate); LOAD(fsync); LOAD(fdatasync); LOAD(rename);
	LOAD(renameat); LOAD(unlink); LOAD(unlinkat);
	const char *m = getenv("CRASH_MODE"), *at = getenv("CRASH_AT");
	const char *s = getenv("CRASH_SEED");
	crash_at = at ? strtoul(at, NULL, 10) : 0;
	if (s)
		seed = (unsigned)strtoul(s, NULL, 10);
	if (!crash_at || !m || !strcmp(m, "kill"))
		mode = crash_at ? M_KILL : M_NONE;
	else if (!strcmp(m, "powerloss"))
		mode = M_POWERLOSS;
	else if (!strcmp(m, "enospc"))
		mode = M_ENOSPC;
	else if (!strcmp(m, "eio"))
		mode = M_EIO;
	else
		mode = M_KILL;
}

__attribute__((destructor)) static void crash_fini(void)
{
	const char *f = getenv("CRASH_COUNT_FILE");
	if (!f)
		return;
	FILE *out = fopen(f, "w");
	if (out) {
		fprintf(out, "%lu\n", counted);
		fclose(out);
	}
}

static int is_file(int fd, struct stat *st)
{
	return fstat(fd, st) == 0 && (S_ISREG(st->st_mode) || S_ISBLK(st->st_mode));
}

static unsigned next_random(void)
{
	seed = seed * 1103515245u + 12345u;
	return seed >> 16;
}

static int same_file(const struct undo *a, const struct undo *b)
{
	return a->dev == b->dev && a->ino == b->ino;
}

/* Zero the sectors of [from, to) of U's file that no kept write covers. */
static void zero_lost(const struct undo *u, off_t from, off_t to)
{
	static const unsigned char zero[512];
	for (off_t o = from; o < to; o += 512) {
		int covered = 0;
		for (const struct undo *k = undo_log; k && !covered; k = k->prev)
			covered = k->keep && same_file(k, u) && k->off <= o && o < k->end;
		if (!covered)
			real_pwrite(u->fd, zero, (size_t)(to - o < 512 ? to - o : 512), o);
	}
}

/* Put back the old bytes of lost write U, except where a newer write that
 * reached the disk covers them. */
static void restore_lost(const struct undo *u)
{
	for (size_t at = 0; at < u->len; at += 512) {
		off_t o = u->off + (off_t)at;
		int covered = 0;
		for (const struct undo *k = undo_log; k != u && !covered; k = k->prev)
			covered = k->keep && same_file(k, u) && k->off <= o && o < k->end;
		if (!covered)
			real_pwrite(u->fd, u->old + at, u->len - at < 512 ? u->len - at : 512, o);
	}
}

/* What a power cut leaves: each unsynced change reached the disk or not.
 * A lost write's old bytes come back; the file's size is the largest that
 * a change which reached the disk implies (or the size at the last sync),
 * and bytes in it that only lost writes gave are zeros. */
static void power_cut(void)
{
	for (struct undo *u = undo_log; u; u = u->prev)   /* shrinks are always lost */
		u->keep = !u->shrink && (next_random() & 1);
	for (struct undo *u = undo_log; u; u = u->prev)
		if (!u->keep && u->old && u->len)
			restore_lost(u);
	for (struct undo *g = undo_log; g; g = g->prev) {
		if (g->done)
			continue;
		off_t base = g->old_size, final;
		for (struct undo *u = g; u; u = u->prev)   /* the oldest entry's size */
			if (same_file(u, g))
				base = u->old_size;
		final = base;
		for (struct undo *u = g; u; u = u->prev)
			if (same_file(u, g) && u->keep && u->end > final)
				final = u->end;
		real_ftruncate(g->fd, final);
		for (struct undo *u = g; u; u = u->prev) {
			if (!same_file(u, g))
				continue;
			u->done = 1;
			off_t from = u->off > u->old_size ? u->off : u->old_size;
			off_t to = u->end < final ? u->end : final;
			if (!u->keep && from < to)
				zero_lost(u, from, to);
		}
	}
}

/* Called before every counted call.  Returns -1 with errno set when the
 * call must fail, 0 to perform it. */
static int crash_point(void)
{
	counted++;
	if (failing)
		goto fail;
	if (mode == M_NONE || counted != crash_at)
		return 0;
	switch (mode) {
	case M_POWERLOSS:
		power_cut();
		/* fall through */
	case M_KILL:
		kill(getpid(), SIGKILL);
		pause();
		break;
	default:
		failing = 1;
		goto fail;
	}
	return 0;
fail:
	errno = mode == M_ENOSPC ? ENOSPC : EIO;
	return -1;
}

/* A descriptor of FD's file that can read and write any bytes at any
 * offset (>= 100, out of the program's way): a dup of FD unless FD is
 * write-only or O_DIRECT (the merge writes sector-granular runs that way),
 * whose reads and unaligned writes of the undo would fail. */
static int undo_fd(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && !(fl & O_DIRECT) && (fl & O_ACCMODE) == O_RDWR)
		return fcntl(fd, F_DUPFD_CLOEXEC, 100);
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	int plain = open(path, O_RDWR | O_CLOEXEC);
	if (plain < 0)
		abort();
	int high = fcntl(plain, F_DUPFD_CLOEXEC, 100);
	close(plain);
	return high;
}

/* Remember what [off, off+len) of FD held, so a power cut can undo it. */
static void record(int fd, const struct stat *st, off_t off, size_t len, off_t end)
{
	if (mode != M_POWERLOSS || counted >= crash_at)
		return;
	struct undo *u = calloc(1, sizeof *u);
	if (!u)
		abort();
	u->dev = st->st_dev;
	u->ino = st->st_ino;
	u->fd = undo_fd(fd);
	u->off = off;
	u->old_size = st->st_size;
	u->end = end;
	if (S_ISREG(st->st_mode) && off < st->st_size) {
		u->len = (size_t)(st->st_size - off) < len ? (size_t)(st->st_size - off) : len;
		u->old = malloc(u->len);
		if (!u->old || pread(u->fd, u->old, u->len, off) != (ssize_t)u->len)
			abort();
		undo_bytes += u->len;
		if (undo_bytes > (1ull << 30)) {
			fprintf(stderr, "crashpoint: more than 1 GiB not fsynced\n");
			abort();
		}
	}
	u->prev = undo_log;
	undo_log = u;
}

/* fsync made FD's file durable: its changes can no longer be undone. */
static void forget(int fd)
{
	struct stat st;
	if (fstat(fd, &st))
		return;
	for (struct undo **p = &undo_log; *p;) {
		struct undo *u = *p;
		if (u->dev == st.st_dev && u->ino == st.st_ino) {
			*p = u->prev;
			undo_bytes -= u->len;
			close(u->fd);
			free(u->old);
			free(u);
		} else {
			p = &u->prev;
		}
	}
}

static ssize_t locked_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	struct stat st;
	if (is_file(fd, &st)) {
		if (crash_point())
			return -1;
		record(fd, &st, off, len, off + (off_t)len);
	}
	return real_pwrite(fd, buf, len, off);
}

static ssize_t locked_write(int fd, const void *buf, size_t len)
{
	struct stat st;
	if (is_file(fd, &st)) {
		if (crash_point())
			return -1;
		off_t off = lseek(fd, 0, SEEK_CUR);
		if (off >= 0)
			record(fd, &st, off, len, off + (off_t)len);
	}
	return real_write(fd, buf, len);
}

static ssize_t locked_pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
	struct stat st;
	if (is_file(fd, &st)) {
		if (crash_point())
			return -1;
		size_t len = 0;
		for (int i = 0; i < n; i++)
			len += iov[i].iov_len;
		record(fd, &st, off, len, off + (off_t)len);
	}
	return real_pwritev(fd, iov, n, off);
}

static int locked_ftruncate(int fd, off_t size)
{
	struct stat st;
	if (is_file(fd, &st)) {
		if (crash_point())
			return -1;
		if (size < st.st_size)
		{
			record(fd, &st, size, (size_t)(st.st_size - size), size);
			if (undo_log && undo_log->end == size && mode == M_POWERLOSS)
				undo_log->shrink = 1;
		}
		else
			record(fd, &st, st.st_size, 0, size);
	}
	return real_ftruncate(fd, size);
}

static int locked_fallocate(int fd, int fmode, off_t off, off_t len)
{
	struct stat st;
	if (is_file(fd, &st)) {
		if (crash_point())
			return -1;
		record(fd, &st, off, (size_t)len, off + len);
	}
	return real_fallocate(fd, fmode, off, len);
}

static int locked_fsync(int fd)
{
	struct stat st;
	if (is_file(fd, &st) && crash_point())
		return -1;
	int rc = real_fsync(fd);
	if (rc == 0)
		forget(fd);
	return rc;
}

static int locked_fdatasync(int fd)
{
	struct stat st;
	if (is_file(fd, &st) && crash_point())
		return -1;
	int rc = real_fdatasync(fd);
	if (rc == 0)
		forget(fd);
	return rc;
}

static int locked_rename(const char *from, const char *to)
{
	return crash_point() ? -1 : real_rename(from, to);
}
static int locked_renameat(int a, const char *from, int b, const char *to)
{
	return crash_point() ? -1 : real_renameat(a, from, b, to);
}
static int locked_unlink(const char *path)
{
	return crash_point() ? -1 : real_unlink(path);
}
static int locked_unlinkat(int dir, const char *path, int flags)
{
	return crash_point() ? -1 : real_unlinkat(dir, path, flags);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	LOCKED(locked_pwrite(fd, buf, len, off));
}

ssize_t write(int fd, const void *buf, size_t len)
{
	LOCKED(locked_write(fd, buf, len));
}

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
	LOCKED(locked_pwritev(fd, iov, n, off));
}

int ftruncate(int fd, off_t size)
{
	LOCKED(locked_ftruncate(fd, size));
}

int fallocate(int fd, int fmode, off_t off, off_t len)
{
	LOCKED(locked_fallocate(fd, fmode, off, len));
}

int fsync(int fd)
{
	LOCKED(locked_fsync(fd));
}

int fdatasync(int fd)
{
	LOCKED(locked_fdatasync(fd));
}

int rename(const char *from, const char *to)
{
	LOCKED(locked_rename(from, to));
}

int renameat(int a, const char *from, int b, const char *to)
{
	LOCKED(locked_renameat(a, from, b, to));
}

int unlink(const char *path)
{
	LOCKED(locked_unlink(path));
}

int unlinkat(int dir, const char *path, int flags)
{
	LOCKED(locked_unlinkat(dir, path, flags));
}
ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
	__attribute__((alias("pwrite")));
ssize_t pwritev64(int fd, const struct iovec *iov, int n, off_t off)
	__attribute__((alias("pwritev")));
int ftruncate64(int fd, off_t size) __attribute__((alias("ftruncate")));
int fallocate64(int fd, int fmode, off_t off, off_t len) __attribute__((alias("fallocate")));
