/* recover.c - vhd_recover(): finish or roll forward every merge whose
 * journal lies in a directory (after a crash or a kill). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "merge.h"

/* Are A's and B's directories the same (by the path as written: a file that
 * is gone must still compare)? */
static bool same_dir(const char *a, const char *b)
{
	char da[PATH_MAX], db[PATH_MAX], ra[PATH_MAX], rb[PATH_MAX];
	return realpath(path_dir(a, da, sizeof da), ra) && realpath(path_dir(b, db, sizeof db), rb) &&
	       !strcmp(ra, rb);
}

static bool is_journal_name(const char *name)
{
	return !strncmp(name, JOURNAL_PREFIX, strlen(JOURNAL_PREFIX)) &&
	       ends_with(name, JOURNAL_SUFFIX);
}

/* STRICT_DIR: a journal may only name files beside it (a hostile journal
 * could name any path). */
static bool journal_in_dir(const struct journal *j, const char *journal)
{
	bool ok = same_dir(j->base, journal);
	for (unsigned i = 0; ok && i < j->nlayers; i++)
		ok = same_dir(j->layers[i].path, journal);
	return ok;
}

static int recover_one(const char *path, const struct vhd_coalesce_opts *opts)
{
	struct journal j;
	int r = journal_load(path, &j);
	if (r)
		return r > 0 ? 0 : -1;   /* gone meanwhile: nothing to do */
	if (opts && (opts->flags & VHD_COALESCE_STRICT_DIR) && !journal_in_dir(&j, path)) {
		journal_free(&j);
		return vhd_error(EPERM, "%s: names a file outside its directory", path);
	}
	if (j.phase == PHASE_COPY) {
		r = merge_run(j.layers[0].path, j.base, j.op, j.relink, opts);
		journal_free(&j);
		return r;
	}
	return merge_resume_late(&j, opts);
}

VHD_EXPORT int vhd_recover(const char *dir, const struct vhd_coalesce_opts *opts)
{
	char **journals = paths_in_dir(dir, is_journal_name);
	if (!journals)
		return -1;
	int rc = 0, done = 0;
	for (size_t i = 0; !rc && journals[i]; i++) {
		if (recover_one(journals[i], opts))
			rc = vhd_error_prefix(journals[i]);
		else
			done++;
	}
	free_paths(journals);
	return rc ? -1 : done;
}
