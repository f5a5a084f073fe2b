/* merge-journal.c - the durable record of a coalesce or commit (JSON). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <uuid/uuid.h>

#include "merge.h"

#define JOURNAL_VERSION 1
#define JOURNAL_MAX_BYTES (1 << 20)

static const char *const phases[] = { "copy", "relink", "delete" };

const char *phase_name(enum merge_phase p)
{
	return phases[p];
}

char *journal_path_for(const char *base)
{
	char tmp[PATH_MAX], dir[PATH_MAX], out[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s", base);
	snprintf(dir, sizeof dir, "%s", dirname(tmp));
	snprintf(tmp, sizeof tmp, "%s", base);
	if ((size_t)snprintf(out, sizeof out, "%s/" JOURNAL_PREFIX "%s" JOURNAL_SUFFIX, dir,
	                     basename(tmp)) >= sizeof out) {
		vhd_error(ENAMETOOLONG, "%s: path too long for a journal name", base);
		return NULL;
	}
	return xstrdup(out);
}

int fsync_parent_dir(const char *path)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s", path);
	const char *dir = dirname(tmp);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return vhd_error(errno, "%s: %s", dir, strerror(errno));
	int rc = fsync(fd);
	int err = errno;
	close(fd);
	if (rc)
		return vhd_error(err, "%s: fsync: %s", dir, strerror(err));
	return 0;
}

int stamp_file(struct layer_stamp *s, const char *path, const uint8_t uuid[16])
{
	struct stat st;
	char abs[PATH_MAX];
	if (!realpath(path, abs) || stat(abs, &st))
		return vhd_error(errno, "%s: %s", path, strerror(errno));
	free(s->path);
	if (!(s->path = xstrdup(abs)))
		return -1;
	memcpy(s->uuid, uuid, 16);
	s->size = (uint64_t)st.st_size;
	s->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	return 0;
}

bool stamp_equal(const struct layer_stamp *a, const struct layer_stamp *b)
{
	return !strcmp(a->path, b->path) && !memcmp(a->uuid, b->uuid, 16) &&
	       a->size == b->size && a->mtime_ns == b->mtime_ns;
}

json_object *uuid_json(const uint8_t uuid[16])
{
	char s[37];
	uuid_unparse_lower(uuid, s);
	return json_object_new_string(s);
}

/* Paths beside the journal are stored as bare names, so that a directory
 * that is moved or mounted elsewhere keeps a usable journal. */
static json_object *path_json(const struct journal *j, const char *path)
{
	const char *js = strrchr(j->path, '/'), *ps = strrchr(path, '/');
	size_t jd = js ? (size_t)(js - j->path) : 0, pd = ps ? (size_t)(ps - path) : 0;
	if (js && ps && jd == pd && !strncmp(j->path, path, jd))
		return json_object_new_string(ps + 1);
	return json_object_new_string(path);
}

/* The inverse: a bare name is beside the journal.  NULL if malformed. */
static char *path_from_json(const char *journal, const char *s)
{
	if (s[0] == '/')
		return xstrdup(s);
	if (!*s || strchr(s, '/') || !strcmp(s, ".") || !strcmp(s, ".."))
		return NULL;
	char tmp[PATH_MAX];
	const char *slash = strrchr(journal, '/');
	int dl = slash ? (int)(slash - journal) : 1;
	if ((size_t)snprintf(tmp, sizeof tmp, "%.*s/%s", dl, slash ? journal : ".", s) >= sizeof tmp)
		return NULL;
	return xstrdup(tmp);
}

int json_put(json_object *o, const char *key, json_object *v)
{
	if (!o || !v || json_object_object_add(o, key, v)) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

static json_object *layer_json(const struct journal *j, const struct layer_stamp *s)
{
	json_object *l = json_object_new_object();
	int bad = json_put(l, "path", path_json(j, s->path));
	bad |= json_put(l, "uuid", uuid_json(s->uuid));
	bad |= json_put(l, "size", json_object_new_uint64(s->size));
	bad |= json_put(l, "mtime_ns", json_object_new_int64(s->mtime_ns));
	if (bad) {
		json_object_put(l);
		return NULL;
	}
	return l;
}

/* The journal as JSON, or NULL when json-c runs out of memory. */
static json_object *journal_json(const struct journal *j)
{
	json_object *o = json_object_new_object(), *layers = json_object_new_array();
	int bad = !layers;
	for (unsigned i = 0; !bad && i < j->nlayers; i++) {
		json_object *l = layer_json(j, &j->layers[i]);
		if (!l || json_object_array_add(layers, l)) {
			json_object_put(l);
			bad = 1;
		}
	}
	bad |= json_put(o, "vhdkit_journal", json_object_new_int(JOURNAL_VERSION));
	bad |= json_put(o, "op", json_object_new_string(j->op));
	bad |= json_put(o, "base", path_json(j, j->base));
	bad |= json_put(o, "base_uuid", uuid_json(j->base_uuid));
	if (bad)
		json_object_put(layers);   /* not added: still ours */
	else
		bad = json_put(o, "layers", layers);
	bad |= json_put(o, "relink", json_object_new_boolean(j->relink));
	bad |= json_put(o, "phase", json_object_new_string(phase_name(j->phase)));
	bad |= json_put(o, "next_block", json_object_new_int64(j->next_block));
	bad |= json_put(o, "bytes_done", json_object_new_uint64(j->bytes_done));
	bad |= json_put(o, "bytes_total", json_object_new_uint64(j->bytes_total));
	bad |= json_put(o, "started", json_object_new_int64(j->started));
	if (bad) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static int write_all_sync(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return vhd_error(errno, "%s: %s", path, strerror(errno));
	size_t len = strlen(text);
	int rc = write_at(fd, path, text, len, 0);
	if (!rc && fsync(fd))
		rc = vhd_error(errno, "%s: fsync: %s", path, strerror(errno));
	close(fd);
	return rc;
}

int json_save_atomic(json_object *o, const char *path)
{
	char tmp[PATH_MAX];
	const char *text = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY) : NULL;
	if (!text)
		return vhd_error(ENOMEM, "%s: out of memory writing the journal", path);
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
		return vhd_error(ENAMETOOLONG, "%s: path too long", path);
	if (write_all_sync(tmp, text))
		return -1;
	if (rename(tmp, path)) {
		int rc = vhd_error(errno, "%s: rename: %s", path, strerror(errno));
		unlink(tmp);
		return rc;
	}
	return fsync_parent_dir(path);
}

int journal_save(const struct journal *j)
{
	json_object *o = journal_json(j);
	int rc = json_save_atomic(o, j->path);
	json_object_put(o);
	return rc;
}

/* Not made durable: a journal that comes back after a crash only makes the
 * next run redo (harmlessly) what it records. */
int journal_remove(const struct journal *j)
{
	if (unlink(j->path) && errno != ENOENT)
		return vhd_error(errno, "%s: %s", j->path, strerror(errno));
	/* a save killed between writing and renaming left its temporary copy */
	char tmp[PATH_MAX];
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", j->path) < sizeof tmp)
		unlink(tmp);
	return 0;
}

void journal_free(struct journal *j)
{
	free(j->path);
	free(j->op);
	free(j->base);
	for (unsigned i = 0; i < j->nlayers; i++)
		free(j->layers[i].path);
	memset(j, 0, sizeof *j);
}

/* ---- loading: every field is checked, the file may be damaged ---- */

static const char *get_string(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static bool get_u64(json_object *o, const char *key, uint64_t max, uint64_t *out)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return false;
	int64_t x = json_object_get_int64(v);
	if (x < 0 || (uint64_t)x > max)
		return false;
	*out = (uint64_t)x;
	return true;
}

static bool get_uuid(json_object *o, const char *key, uint8_t out[16])
{
	const char *s = get_string(o, key);
	return s && uuid_parse(s, out) == 0;
}

static bool load_layer(const char *journal, json_object *l, struct layer_stamp *s)
{
	const char *path = get_string(l, "path");
	uint64_t mtime;
	json_object *v;
	if (!path || !get_uuid(l, "uuid", s->uuid) ||
	    !get_u64(l, "size", INT64_MAX, &s->size) ||
	    !json_object_object_get_ex(l, "mtime_ns", &v) || !json_object_is_type(v, json_type_int))
		return false;
	mtime = (uint64_t)json_object_get_int64(v);
	s->mtime_ns = (int64_t)mtime;
	return (s->path = path_from_json(journal, path)) != NULL;
}

static bool load_fields(const char *journal, json_object *o, struct journal *j)
{
	uint64_t version, next, started;
	const char *op = get_string(o, "op"), *base = get_string(o, "base");
	const char *phase = get_string(o, "phase");
	json_object *layers, *relink;
	if (!get_u64(o, "vhdkit_journal", 1000, &version) || version != JOURNAL_VERSION || !op ||
	    (strcmp(op, "coalesce") && strcmp(op, "commit")) || !base || !phase ||
	    !get_uuid(o, "base_uuid", j->base_uuid) ||
	    !get_u64(o, "next_block", UINT32_MAX, &next) ||
	    !get_u64(o, "bytes_done", INT64_MAX, &j->bytes_done) ||
	    !get_u64(o, "bytes_total", INT64_MAX, &j->bytes_total) ||
	    !get_u64(o, "started", INT64_MAX, &started) ||
	    !json_object_object_get_ex(o, "relink", &relink) ||
	    !json_object_object_get_ex(o, "layers", &layers) ||
	    !json_object_is_type(layers, json_type_array))
		return false;
	j->next_block = (uint32_t)next;
	j->started = (int64_t)started;
	j->relink = json_object_get_boolean(relink);
	unsigned p;
	for (p = 0; p < 3 && strcmp(phase, phases[p]); p++)
		;
	if (p == 3)
		return false;
	j->phase = (enum merge_phase)p;
	size_t n = json_object_array_length(layers);
	if (n < 1 || n > MAX_MERGE_LAYERS)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!load_layer(journal, json_object_array_get_idx(layers, i), &j->layers[i]))
			return false;
		j->nlayers = (unsigned)i + 1;
	}
	return (j->op = xstrdup(op)) && (j->base = path_from_json(journal, base));
}

int journal_load(const char *path, struct journal *j)
{
	memset(j, 0, sizeof *j);
	struct stat st;
	if (stat(path, &st))
		return errno == ENOENT ? 1 : vhd_error(errno, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode) || st.st_size > JOURNAL_MAX_BYTES)
		return vhd_error(EBADMSG, "%s: not a vhdkit journal", path);
	char abs[PATH_MAX];
	if (realpath(path, abs))
		path = abs;   /* names in it are relative to its real directory */
	json_object *o = json_object_from_file(path);
	if (!o)
		return vhd_error(EBADMSG, "%s: journal is not valid JSON: %s", path,
		                  json_util_get_last_err());
	bool ok = load_fields(path, o, j);
	json_object_put(o);
	if (!ok || !(j->path = xstrdup(path))) {
		journal_free(j);
		return vhd_error(EBADMSG, "%s: journal is damaged or of an unknown version", path);
	}
	return 0;
}
