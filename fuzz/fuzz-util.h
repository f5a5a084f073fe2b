/* fuzz-util.h - what the fuzz targets (fuzz-open-check.c, fuzz-vhdutil.c)
 * share: the scratch directories the input is written to, the parent a
 * differencing input finds beside it, the seeds, and the replay driver.
 *
 * The input goes to a file in two private directories (on /dev/shm when
 * there is one: memory-backed, and the library opens images by path, so a
 * memfd's /proc/self/fd/N name would make parent lookups search /proc):
 * "lonely", where it is alone, so that parent lookups find nothing, and
 * "family", where it sits next to "parent.vhd", a small valid dynamic disk
 * with a fixed UUID that the differencing seeds point at, so that chain
 * reads are reached too. */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FUZZ_MAX_INPUT (4u << 20)   /* the corpus's bad images are up to 2 MiB */

/* What a target is: it defines `const struct fuzz_target fuzz_target`, and
 * fuzz-util.c the rest: LLVMFuzzerTestOneInput (the fuzzer) or, built with
 * -DFUZZ_REPLAY, main (the replay driver: `NAME FILE...` runs each file as
 * an input and then in place, where a chain finds its own parent;
 * `NAME --make-seeds DIR` writes the seeds).  An input is written to
 * "lonely" and exercised there (WITH_PARENT when it may be a differencing
 * disk); when it may be one, also to "family" and exercised there; then
 * SCRATCH, if not NULL, may change the lonely copy. */
struct fuzz_target {
	const char *name;
	void (*exercise)(const char *path, const uint8_t *data, size_t size, bool with_parent);
	void (*scratch)(const char *path, const uint8_t *data, size_t size);
};
extern const struct fuzz_target fuzz_target;

/* Print WHAT and the library's last error, then abort (the fuzzer's crash). */
void fuzz_fatal(const char *what) __attribute__((noreturn));
/* Write SIZE bytes of DATA to PATH (truncating it), or fuzz_fatal(). */
void fuzz_put_file(const char *path, const uint8_t *data, size_t size);
/* A number picked from the input's first bytes (for offsets to read at). */
uint64_t fuzz_pick(const uint8_t *data, size_t size);

#endif
