/* handle.c - the life of a struct vhd: allocate, lock, free. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "internal.h"

/* The writer's lock (see LOCKING in the man page). */
int lock_exclusive(struct vhd *v)
{
	if (flock(v->fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno == EWOULDBLOCK)
		return vhd_error(EBUSY, "%s: in use: another process has it open for writing",
		                 v->path);
	return vhd_error(errno, "%s: cannot lock: %s", v->path, strerror(errno));
}

struct vhd *vhd_alloc_handle(void)
{
	struct vhd *v = xcalloc(1, sizeof *v);
	if (!v)
		return NULL;
	v->fd = -1;
	for (int i = 0; i < BITMAP_CACHE; i++) {
		v->cache[i].block = BAT_UNUSED;
		pthread_mutex_init(&v->cache[i].lock, NULL);
	}
	pthread_mutex_init(&v->meta_lock, NULL);
	return v;
}

void vhd_free(struct vhd *v)
{
	if (!v)
		return;
	if (v->fd >= 0)
		close(v->fd);
	for (int i = 0; i < BITMAP_CACHE; i++) {
		free(v->cache[i].map);
		pthread_mutex_destroy(&v->cache[i].lock);
	}
	pthread_mutex_destroy(&v->meta_lock);
	free(v->bat);
	free(v->batmap);
	free(v->zero_block);
	free(v->parent_name);
	free(v->parent_path);
	free(v->path);
	free(v);
}
