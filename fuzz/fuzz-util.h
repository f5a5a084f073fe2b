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

/* Set by fuzz_setup(): the input's path in each directory, and the parent. */
extern char fuzz_lonely_path[300], fuzz_family_path[300], fuzz_parent_path[300];

/* Print WHAT and the library's last error, then abort (the fuzzer's crash). */
void fuzz_fatal(const char *what) __attribute__((noreturn));
/* Make the directories and parent.vhd once (later calls do nothing); PROG
 * names them.  They are removed at exit. */
void fuzz_setup(const char *prog);
/* Write SIZE bytes of DATA to PATH (truncating it), or fuzz_fatal(). */
void fuzz_put_file(const char *path, const uint8_t *data, size_t size);
/* Could any footer in DATA describe a differencing disk?  Every reader
 * (library, repair, vhd-util) only follows a parent from a footer with the
 * "conectix" cookie (vhd-util also "v_poison") and type 4, wherever it
 * reads one: without such bytes the input behaves the same alone and
 * beside a parent, with a parent lookup allowed or not. */
bool fuzz_may_be_differencing(const uint8_t *data, size_t size);
/* A number picked from the input's first bytes (for offsets to read at). */
uint64_t fuzz_pick(const uint8_t *data, size_t size);

/* `NAME --make-seeds DIR` and `NAME FILE...`: the replay drivers' main.
 * ONE runs an input (what LLVMFuzzerTestOneInput runs); IN_PLACE, if not
 * NULL, also runs it on FILE itself, so that a chain finds its own parent. */
typedef void fuzz_input_fn(const char *file, const uint8_t *data, size_t size);
int fuzz_replay_main(int argc, char **argv, const char *name, fuzz_input_fn *one,
                     fuzz_input_fn *in_place);

#endif
