/* resize.h - libvhdkit's internal resize hook, for vhd-util's undo journal.
 * Not installed. */
#ifndef VHDKIT_RESIZE_H
#define VHDKIT_RESIZE_H

#include <stdint.h>

#include "internal.h"

/* Called with each byte range [OFF, OFF + LEN) of the image; a non-zero
 * return stops the walk and is passed back. */
typedef int (*vhd_range_fn)(void *arg, uint64_t off, uint64_t len);

/* Walks the byte ranges of V's image, up to the end of its primary footer,
 * that vhd_resize(V, NEW_SIZE) may overwrite (footers, header, BAT, batmap,
 * and, when the BAT must grow, the region the new metadata is written into,
 * where the blocks that were in the way lay).  Writes past the footer's end
 * are not reported: they extend the file.  Nothing is written.  Returns 0,
 * -1 with the error set when vhd_resize would refuse NEW_SIZE, or FN's first
 * non-zero return. */
int vhd_resize_plan(const struct vhd *v, uint64_t new_size, vhd_range_fn fn, void *arg);

#endif
