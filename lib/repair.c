/* repair.c - vhd_repair(): mend what a damaged VHD's redundancy allows.
 *
 * Two phases.  A read-only survey trusts nothing, works out what is wrong
 * and plans one action per defect, or refuses (EPERM; EBADMSG when the file
 * is not a VHD at all) with the reason.  Then, unless DRY_RUN, the plan is
 * carried out in a crash-safe order: in-place metadata first, then the
 * primary footer (synced) before anything that depends on it (cutting the
 * file), the backup footer last.  A crash at any point leaves a file that is
 * no worse than before and that a second repair finishes. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "internal.h"

/* Actions in the order they are carried out (and reported). */
enum step {
	S_HEADER_SUM, S_PARENT_NAME, S_LOST_BLOCKS, S_BATMAP, S_CUT_BLOCKS,
	S_PRIMARY, S_TRIM, S_BACKUP, S_COUNT
};

struct repair {
	struct vhd *v;                    /* fd, sizes, chosen footer, header, BAT, batmap */
	int flags;
	uint8_t end_raw[FOOTER_SIZE];     /* the footer at the end of the file */
	uint8_t backup_raw[FOOTER_SIZE];  /* the one at offset 0 */
	uint8_t chosen[FOOTER_SIZE];      /* the footer kept, raw */
	const char *end_why, *backup_why; /* why each is invalid; NULL if valid */
	char end_rejected[640];           /* why a valid primary was not kept */
	uint64_t end_off;                 /* where the end footer is */
	uint64_t avail;                   /* bytes that may hold metadata and blocks */
	uint64_t data_end;                /* where the primary footer belongs */
	uint64_t primary_off;             /* where it will be */
	uint64_t new_size;                /* the file's size after repair */
	bool write_header, write_batmap, write_primary, write_backup;
	uint32_t *lost;                   /* blocks whose BAT entry is cleared */
	uint32_t nlost;
	uint32_t ncut;                    /* blocks cut short by a truncation */
	uint32_t first_cut;
	char why[640];                    /* the reason of the last refusal */
	char msg[S_COUNT][768];
};

static int refuse(struct repair *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(struct repair *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof r->why, fmt, ap);
	va_end(ap);
	return vhd_error(EPERM, "%s: cannot repair safely: %s", r->v->path, r->why);
}

static void plan(struct repair *r, enum step s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void plan(struct repair *r, enum step s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->msg[s], sizeof r->msg[s], fmt, ap);
	va_end(ap);
}

static unsigned long long ull(uint64_t v)
{
	return (unsigned long long)v;
}

static const char *absent_reads_as(const struct vhd *v)
{
	return v->footer.type == VHD_TYPE_DIFF ? "reads from the parent" : "reads as zeros";
}

/* ---- footers ------------------------------------------------------- */

static const char *raw_footer_invalid(const uint8_t *raw, struct vhd_footer *f)
{
	footer_decode(f, raw);
	return footer_invalid(f, false, false);
}

/* The names of the fields in which A and B differ, e.g. "timestamp, hidden". */
static void footer_differences(const uint8_t *a, const uint8_t *b, char *out, size_t len)
{
	struct vhd_footer x, y;
	footer_decode(&x, a);
	footer_decode(&y, b);
	struct { const char *name; bool differs; } f[] = {
		{ "features", x.features != y.features },
		{ "version", x.version != y.version },
		{ "data offset", x.data_offset != y.data_offset },
		{ "timestamp", x.timestamp != y.timestamp },
		{ "creator", memcmp(x.creator_app, y.creator_app, 4) ||
		             x.creator_version != y.creator_version || x.creator_os != y.creator_os },
		{ "original size", x.orig_size != y.orig_size },
		{ "current size", x.curr_size != y.curr_size },
		{ "geometry", x.geometry != y.geometry },
		{ "type", x.type != y.type },
		{ "uuid", memcmp(x.uuid, y.uuid, 16) != 0 },
		{ "saved state", x.saved_state != y.saved_state },
		{ "hidden", x.hidden != y.hidden },
		{ "reserved bytes", memcmp(x.reserved, y.reserved, sizeof x.reserved) != 0 },
	};
	out[0] = 0;
	for (size_t i = 0; i < sizeof f / sizeof *f; i++)
		if (f[i].differs)
			snprintf(out + strlen(out), len - strlen(out), "%s%s", out[0] ? ", " : "",
			         f[i].name);
	if (!out[0])
		snprintf(out, len, "checksum only");
}

/* Two valid footers of the same disk: the same identity and layout. */
static bool same_disk(const uint8_t *a, const uint8_t *b)
{
	struct vhd_footer x, y;
	footer_decode(&x, a);
	footer_decode(&y, b);
	return !memcmp(x.uuid, y.uuid, 16) && x.type == y.type && x.data_offset == y.data_offset;
}

/* ---- header, BAT, batmap ------------------------------------------- */

/* header_invalid() does not look at the parent fields; before trusting a
 * header whose checksum is wrong, they must make sense too: the rules of
 * the parent fields and of each locator (which must also lie in the file),
 * the clock's aside. */
static const char *parent_fields_implausible(const struct repair *r, char *buf, size_t len)
{
	const struct vhd_header *h = &r->v->header;
	struct rule_input in = { .footer = &r->v->footer, .header = h, .limit = r->avail };
	const char *why = rule_first_broken(&parent_rules, &in, 0, RULE_CLOCK);
	if (why)
		return why;
	for (int i = 0; r->v->footer.type == VHD_TYPE_DIFF && i < LOC_COUNT; i++) {
		in.locator = &h->loc[i];
		if ((why = rule_first_broken(&locator_rules, &in, 0, 0))) {
			snprintf(buf, len, "parent locator %d: %s", i, why);
			return buf;
		}
	}
	return NULL;
}

static int survey_header(struct repair *r)
{
	struct vhd *v = r->v;
	uint8_t buf[HEADER_SIZE];
	uint64_t off = v->footer.data_offset;

	if (!header_placed(off, r->avail))
		return refuse(r, "the footer's header offset %llu is outside the file", ull(off));
	if (read_at(v->fd, v->path, buf, HEADER_SIZE, off))
		return -1;
	header_decode(&v->header, buf);
	if (memcmp(v->header.cookie, "cxsparse", 8))
		return refuse(r, "header invalid: invalid cookie: nothing shows the rest of it is a "
		                 "header, so it cannot be trusted");
	uint32_t stored = v->header.checksum, sum = header_checksum(&v->header);
	v->header.checksum = sum;
	const char *why = header_invalid(&v->header, &v->footer, r->avail);
	if (why)
		return refuse(r, "header invalid: %s", why);
	char loc_why[80];
	if (stored != sum && (why = parent_fields_implausible(r, loc_why, sizeof loc_why)))
		return refuse(r, "header invalid: invalid checksum, and %s", why);
	if (stored != sum) {
		r->write_header = true;
		plan(r, S_HEADER_SUM, "header checksum fixed (was 0x%08x, now 0x%08x): every header "
		     "field and the structure it describes check out", stored, sum);
	}
	vhd_set_block_layout(v);
	return 0;
}

static int survey_bat(struct repair *r)
{
	struct vhd *v = r->v;
	size_t bytes = (size_t)v->bat_entries * 4;
	uint8_t *raw = xmalloc(bytes + 4);
	if (!raw || !(v->bat = xmalloc(bytes + 4)) ||
	    read_at(v->fd, v->path, raw, bytes, v->header.table_offset)) {
		free(raw);
		return -1;
	}
	for (uint32_t i = 0; i < v->bat_entries; i++)
		v->bat[i] = get_be32(raw + 4 * (size_t)i);
	free(raw);
	return 0;
}

/* Loads the batmap if the file has one; refuses a batmap header whose
 * layout fields are wrong (only its checksum and bits are rebuilt). */
static int survey_batmap_header(struct repair *r)
{
	struct vhd *v = r->v;
	struct vhd_batmap_header *m = &v->batmap_hdr;
	uint8_t buf[SECTOR];
	uint64_t off = bat_end(&v->header);

	if (!creator_has_batmap(&v->footer) || off > r->avail || r->avail - off < SECTOR)
		return 0;
	if (read_at(v->fd, v->path, buf, SECTOR, off))
		return -1;
	batmap_header_decode(m, buf);
	struct rule_input in = { .footer = &v->footer, .header = &v->header, .batmap = m,
	                         .limit = r->avail };
	if (rule_broken(&batmap_rules, R_BATMAP_COOKIE, &in))
		return 0;
	const char *why = rule_first_broken(&batmap_rules, &in, RULE_READ, 0);
	if (why)
		return refuse(r, "batmap is invalid: %s (%u sectors at 0x%llx for %u blocks): only "
		              "its checksum and bits can be rebuilt", why, m->map_sectors,
		              ull(m->map_offset), v->bat_entries);
	uint64_t bytes = (uint64_t)m->map_sectors * SECTOR;
	if (!(v->batmap = xcalloc(1, bytes)) ||
	    read_at(v->fd, v->path, v->batmap, bytes, m->map_offset))
		return -1;
	v->batmap_hdr_offset = off;
	v->has_batmap = true;
	return 0;
}

/* Blocks adjacent by offset must not overlap. */
static int survey_overlaps(struct repair *r)
{
	struct vhd *v = r->v;
	uint64_t span = block_span(v) / SECTOR;
	size_t n;
	struct bat_extent *e = bat_by_offset(v->bat, v->bat_entries, NULL, &n);
	int rc = e ? 0 : -1;
	for (size_t i = 1; !rc && i < n; i++)
		if (extents_overlap(&e[i - 1], &e[i], span))
			rc = refuse(r, "blocks %u and %u overlap (BAT entries 0x%x and 0x%x): writing "
			            "either would destroy the other's data, and which one owns it "
			            "cannot be known", e[i - 1].block, e[i].block, e[i - 1].off,
			            e[i].off);
	free(e);
	return rc;
}

static void plan_lost_blocks(struct repair *r)
{
	struct vhd *v = r->v;
	char list[300] = "";
	for (uint32_t i = 0; i < r->nlost && strlen(list) < 200; i++)
		snprintf(list + strlen(list), sizeof list - strlen(list), "%s%u (0x%x)",
		         i ? ", " : "", r->lost[i], v->bat[r->lost[i]]);
	plan(r, S_LOST_BLOCKS, "BAT entr%s of block%s %s%s cleared: %s past the end of the "
	     "file (%llu bytes), so the data is lost; the block%s now %s",
	     r->nlost > 1 ? "ies" : "y", r->nlost > 1 ? "s" : "", list,
	     r->nlost > 6 ? ", ..." : "", r->nlost > 1 ? "they point" : "it points",
	     ull(v->file_size), r->nlost > 1 ? "s" : "", absent_reads_as(v));
}

/* Every allocated block must lie after the metadata, not overlap another,
 * and be in the file; sets data_end (where the footer belongs, as vhd
 * check computes it: once the footer is there, a second repair finds
 * nothing to do). */
static int survey_blocks(struct repair *r)
{
	struct vhd *v = r->v;
	struct rule_input in = block_rule_input(v);
	uint64_t span = block_span(v);
	uint64_t cut_bytes = 0;

	if (!(r->lost = xmalloc((size_t)v->bat_entries * 4 + 4)))
		return -1;
	for (uint32_t b = 0; b < v->bat_entries; b++) {
		if (v->bat[b] == BAT_UNUSED)
			continue;
		uint64_t start = (uint64_t)v->bat[b] * SECTOR, end = start + span;
		in.block_offset = v->bat[b];
		if (rule_broken(&block_rules, R_BLOCK_HEADERS, &in))
			return refuse(r, "block %u: BAT entry 0x%x points into the metadata (which ends "
			              "at byte %llu): where the block's data is cannot be known", b,
			              v->bat[b], ull(vhd_metadata_end(v)));
		if (start + v->bitmap_bytes > r->avail) {
			r->lost[r->nlost++] = b;
			continue;
		}
		if (end > r->avail) {
			if (!r->ncut++)
				r->first_cut = b;
			cut_bytes += end - whole_sectors(r->avail);
		}
	}
	if (r->nlost)
		plan_lost_blocks(r);
	for (uint32_t i = 0; i < r->nlost; i++)   /* from now on they are unallocated */
		v->bat[r->lost[i]] = BAT_UNUSED;
	if (survey_overlaps(r))
		return -1;
	r->data_end = vhd_data_end(v, r->avail);
	if (r->ncut)
		plan(r, S_CUT_BLOCKS, "block %u%s cut short: the file was truncated at %llu bytes, "
		     "so the last %llu KiB of %s data are lost and now read as zeros",
		     r->first_cut, r->ncut > 1 ? " and others" : "", ull(v->file_size),
		     ull(cut_bytes / 1024), r->ncut > 1 ? "their" : "its");
	return 0;
}

/* Why the batmap's "full" bit for BLOCK is wrong, or NULL if it is right. */
static int batmap_bit_wrong(struct repair *r, uint32_t b, const char **why)
{
	struct vhd *v = r->v;
	*why = NULL;
	if (b >= v->bat_entries || v->bat[b] == BAT_UNUSED) {
		*why = "unallocated";
		return 0;
	}
	uint8_t *map = vhd_block_bitmap(v, b);
	if (!map)
		return -1;
	if (bit_find(map, 0, v->block_sectors, false) != v->block_sectors)
		*why = "not fully written";
	return 0;
}

/* A batmap bit may be set only for a block whose bitmap is all ones:
 * clear every other (the rest of the map is left as it is). */
static int survey_batmap(struct repair *r)
{
	struct vhd *v = r->v;
	if (!v->has_batmap)
		return 0;
	uint64_t bits = (uint64_t)v->batmap_hdr.map_sectors * SECTOR * 8;
	char list[300] = "";
	uint32_t wrong = 0;
	for (uint64_t b = bit_find(v->batmap, 0, bits, true); b < bits;
	     b = bit_find(v->batmap, b + 1, bits, true)) {
		const char *why;
		if (batmap_bit_wrong(r, (uint32_t)b, &why))
			return -1;
		if (!why)
			continue;
		if (wrong++ < 4)
			snprintf(list + strlen(list), sizeof list - strlen(list), "%sblock %llu %s",
			         wrong > 1 ? ", " : "", ull(b), why);
		bit_clear(v->batmap, b);
	}
	uint32_t sum = batmap_checksum(v->batmap, batmap_checksum_bytes(v));
	if (wrong) {
		r->write_batmap = true;
		plan(r, S_BATMAP, "batmap rebuilt from the block bitmaps: %u block%s marked full "
		     "that %s not (%s%s)", wrong, wrong > 1 ? "s" : "", wrong > 1 ? "are" : "is",
		     list, wrong > 4 ? ", ..." : "");
	} else if (sum != v->batmap_hdr.checksum) {
		r->write_batmap = true;
		plan(r, S_BATMAP, "batmap checksum fixed (was 0x%08x, now 0x%08x): every bit in the "
		     "map agrees with the block bitmaps", v->batmap_hdr.checksum, sum);
	}
	return 0;
}

/* ---- parent -------------------------------------------------------- */

struct parent_search {
	int found;            /* candidate index with the right UUID, or -1 */
	char *found_rel;      /* its path as the locator gives it */
	bool name_ok;         /* the header's own name leads to the parent */
	char mismatch[400];   /* the first candidate that is not the parent */
};

static void try_parent_candidate(struct repair *r, struct parent_search *s, int i, char *rel)
{
	struct vhd *v = r->v;
	char *p = path_relative_to(v->path, rel);
	if (!p || access(p, F_OK)) {
		free(p);
		free(rel);
		return;
	}
	struct vhd *pv = vhd_open_file(p, VHD_OPEN_RDONLY, true);
	if (pv && !memcmp(pv->footer.uuid, v->header.parent_uuid, 16)) {
		if (i == LOC_COUNT)
			s->name_ok = true;
		if (s->found < 0) {
			s->found = i;
			s->found_rel = rel;
			rel = NULL;
		}
	} else if (!s->mismatch[0]) {
		char have[37] = "not a readable VHD";
		if (pv)
			uuid_unparse(pv->footer.uuid, have);
		snprintf(s->mismatch, sizeof s->mismatch, "%s (%s)", p, have);
	}
	vhd_free(pv);
	free(p);
	free(rel);
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static int plan_parent_name(struct repair *r, const char *old, const char *rel)
{
	struct vhd *v = r->v;
	const char *name = base_name(rel);
	uint8_t enc[sizeof v->header.parent_name];
	memset(enc, 0, sizeof enc);
	if (utf8_to_utf16(enc, sizeof enc, name, true) < 0)
		return 0;   /* cannot be encoded: leave the name alone */
	memcpy(v->header.parent_name, enc, sizeof enc);
	r->write_header = true;
	plan(r, S_PARENT_NAME, "header parent name set to '%s' (was '%s'): the parent locators "
	     "lead to the parent with the right UUID", name, old);
	return 0;
}

/* A child whose parent has another UUID is a chain problem: refuse.  A
 * header name that disagrees with locators leading to the right parent is
 * corrected.  A parent that cannot be found is not this file's defect. */
static int survey_parent(struct repair *r)
{
	struct vhd *v = r->v;
	if (v->footer.type != VHD_TYPE_DIFF)
		return 0;
	char *name = utf16_to_utf8(v->header.parent_name, sizeof v->header.parent_name, true);
	struct parent_search s = { .found = -1 };
	for (int i = 0; i <= LOC_COUNT; i++) {
		char *rel = NULL;
		if (i < LOC_COUNT)
			rel = vhd_locator_path(v, i);
		else if (name && *name && !strchr(name, '/'))
			rel = xstrdup(name);
		if (rel)
			try_parent_candidate(r, &s, i, rel);
	}
	int rc = 0;
	if (s.found < 0 && s.mismatch[0]) {
		char want[37];
		uuid_unparse(v->header.parent_uuid, want);
		rc = refuse(r, "parent uuid mismatch: the header wants parent %s, but %s has "
		            "another: a chain problem that rewriting this file cannot fix; if that "
		            "file is the right parent, use `vhd reparent`", want, s.mismatch);
	} else if (s.found >= 0 && s.found < LOC_COUNT && !s.name_ok && name &&
	           strcmp(name, base_name(s.found_rel))) {
		rc = plan_parent_name(r, name, s.found_rel);
	}
	free(s.found_rel);
	free(name);
	return rc;
}

/* ---- the primary footer's place ------------------------------------ */

/* Without a valid footer at the end: is there one right after the data
 * (the file then has trailing garbage)? */
static int footer_after_data(struct repair *r, bool *found)
{
	struct vhd *v = r->v;
	uint8_t raw[FOOTER_SIZE];
	struct vhd_footer f;
	*found = false;
	if (r->data_end + FOOTER_SIZE > v->file_size)
		return 0;
	if (read_at(v->fd, v->path, raw, FOOTER_SIZE, r->data_end))
		return -1;
	if (raw_footer_invalid(raw, &f))
		return 0;
	*found = true;
	if (!memcmp(raw, r->chosen, FOOTER_SIZE))
		return 0;
	if (!same_disk(raw, r->chosen) || f.curr_size != v->footer.curr_size)
		return refuse(r, "the footer after the data and the backup footer are both valid but "
		              "describe different disks");
	memcpy(r->chosen, raw, FOOTER_SIZE);   /* primaries are written first: the newer */
	v->footer = f;
	return 0;
}

static void plan_trim(struct repair *r, uint64_t footer_off)
{
	r->new_size = footer_off + FOOTER_SIZE;
	plan(r, S_TRIM, "trailing garbage cut: %llu bytes after the primary footer at offset %llu",
	     ull(r->v->file_size - r->new_size), ull(footer_off));
}

static void plan_restore_primary(struct repair *r)
{
	struct vhd *v = r->v;
	r->write_primary = true;
	r->primary_off = r->data_end;
	r->new_size = r->data_end + FOOTER_SIZE;
	if (v->file_size < r->new_size)
		plan(r, S_PRIMARY, "primary footer missing (file truncated at %llu bytes, data ends "
		     "at %llu): restored from the backup, file extended to %llu bytes",
		     ull(v->file_size), ull(r->data_end), ull(r->new_size));
	else if (v->file_size > r->new_size)
		plan(r, S_PRIMARY, "primary footer restored from the backup at offset %llu after the "
		     "data (footer at the end: %s; the %llu bytes after it cut)", ull(r->data_end),
		     r->end_why, ull(v->file_size - r->new_size));
	else
		plan(r, S_PRIMARY, "primary footer restored from the backup (primary: %s)", r->end_why);
}

static int plan_primary(struct repair *r, bool chose_end)
{
	struct vhd *v = r->v;
	if (!r->end_why) {
		r->primary_off = r->end_off;
		if (!chose_end) {
			r->write_primary = true;
			plan(r, S_PRIMARY, "primary footer replaced by the backup (primary, though its "
			     "checksum is right, does not fit the file: %s)", r->end_rejected);
		}
		if (v->file_size > r->end_off + FOOTER_SIZE)
			plan_trim(r, r->end_off);
		return 0;
	}
	bool found;
	if (footer_after_data(r, &found))
		return -1;
	r->primary_off = r->data_end;
	if (found)
		plan_trim(r, r->data_end);
	else
		plan_restore_primary(r);
	return 0;
}

static void plan_backup(struct repair *r)
{
	char diff[200];
	if (r->backup_why) {
		r->write_backup = true;
		plan(r, S_BACKUP, "backup footer restored from the primary (backup: %s)", r->backup_why);
	} else if (memcmp(r->backup_raw, r->chosen, FOOTER_SIZE)) {
		footer_differences(r->backup_raw, r->chosen, diff, sizeof diff);
		r->write_backup = true;
		plan(r, S_BACKUP, "backup footer rewritten from the primary: both were valid but "
		     "differed (%s); kept the primary, which updates write first", diff);
	}
}

/* ---- survey -------------------------------------------------------- */

static void reset_plan(struct repair *r)
{
	struct vhd *v = r->v;
	for (int i = 0; i < BITMAP_CACHE; i++)
		v->cache[i].block = BAT_UNUSED;
	free(v->bat);
	free(v->batmap);
	free(r->lost);
	v->bat = NULL;
	v->batmap = NULL;
	r->lost = NULL;
	v->has_batmap = false;
	v->batmap_hdr_offset = 0;
	r->nlost = r->ncut = 0;
	r->write_header = r->write_batmap = r->write_primary = r->write_backup = false;
	r->new_size = v->file_size;
	memset(r->msg, 0, sizeof r->msg);
}

/* Plan the repair of a dynamic or differencing disk whose footer is RAW. */
static int survey_dynamic(struct repair *r, const uint8_t *raw, bool chose_end)
{
	struct vhd *v = r->v;
	reset_plan(r);
	memcpy(r->chosen, raw, FOOTER_SIZE);
	footer_decode(&v->footer, raw);
	r->avail = r->end_why ? whole_sectors(v->file_size) : r->end_off;
	v->footer_offset = r->avail;
	if (survey_header(r) || survey_bat(r) || survey_batmap_header(r) || survey_blocks(r) ||
	    survey_batmap(r) || survey_parent(r) || plan_primary(r, chose_end))
		return -1;
	plan_backup(r);
	if (r->nlost && !(r->flags & VHD_REPAIR_FORCE))
		return refuse(r, "block %u points past the end of the file: its data is lost; "
		              "repairing clears the entry and the block then %s: repair with force "
		              "(--force) to accept that", r->lost[0], absent_reads_as(v));
	if (r->ncut && !(r->flags & VHD_REPAIR_FORCE))
		return refuse(r, "the file is truncated inside block %u: part of its data is lost; "
		              "repairing makes that part read as zeros: repair with force (--force) "
		              "to accept that", r->first_cut);
	if (v->is_blockdev && r->new_size != v->file_size)
		return refuse(r, "the repair would change the size of a block device");
	return 0;
}

/* A fixed disk has one footer: only its checksum can be fixed, when every
 * field checks out and the footer sits right after the data. */
static int survey_fixed(struct repair *r)
{
	struct vhd *v = r->v;
	struct vhd_footer f;
	footer_decode(&f, r->end_raw);
	reset_plan(r);
	if (!r->end_why) {
		if (v->file_size > r->end_off + FOOTER_SIZE)
			plan_trim(r, r->end_off);
		return 0;
	}
	uint32_t stored = f.checksum;
	f.checksum = footer_checksum(&f);
	const char *why = footer_invalid(&f, true, false);
	if (strcmp(r->end_why, "invalid checksum") || why || f.curr_size != r->end_off)
		return refuse(r, "fixed disk footer invalid (%s) and a fixed disk has no copy of it",
		              r->end_why);
	footer_encode(r->chosen, &f);
	v->footer = f;
	r->write_primary = true;
	r->primary_off = r->end_off;
	plan(r, S_PRIMARY, "footer checksum fixed (was 0x%08x, now 0x%08x): a fixed disk has no "
	     "backup footer, and every field checks out", stored, f.checksum);
	if (v->file_size > r->end_off + FOOTER_SIZE)
		plan_trim(r, r->end_off);
	return 0;
}

static int survey_both_valid(struct repair *r)
{
	if (!same_disk(r->end_raw, r->backup_raw))
		return refuse(r, "the primary and backup footers are both valid but describe "
		              "different disks (uuid, type or header offset): which is right cannot "
		              "be known");
	if (!survey_dynamic(r, r->end_raw, true))
		return 0;
	if (vhd_get_errno() != EPERM)
		return -1;
	snprintf(r->end_rejected, sizeof r->end_rejected, "%s", r->why);
	if (!survey_dynamic(r, r->backup_raw, false))
		return 0;
	return refuse(r, "%s", r->end_rejected);
}

static bool has_cookie(const uint8_t *raw)
{
	return !memcmp(raw, "conectix", 8);
}

static int survey(struct repair *r)
{
	struct vhd *v = r->v;
	struct vhd_footer end, backup;
	if (v->file_size < FOOTER_SIZE)
		return vhd_error(EBADMSG, "%s: not a VHD: a file of %llu bytes is too small", v->path,
		                  ull(v->file_size));
	r->end_off = primary_footer_offset(v->file_size);
	if (read_at(v->fd, v->path, r->end_raw, FOOTER_SIZE, r->end_off) ||
	    read_at(v->fd, v->path, r->backup_raw, FOOTER_SIZE, 0))
		return -1;
	r->end_why = raw_footer_invalid(r->end_raw, &end);
	r->backup_why = raw_footer_invalid(r->backup_raw, &backup);
	if (has_cookie(r->end_raw) && end.type == VHD_TYPE_FIXED)
		return survey_fixed(r);
	bool backup_ok = !r->backup_why && backup.type != VHD_TYPE_FIXED;
	if (!backup_ok && !r->backup_why)
		r->backup_why = "a fixed disk's footer, not a backup";
	if (r->end_why && !backup_ok) {
		if (!has_cookie(r->end_raw) && !has_cookie(r->backup_raw))
			return vhd_error(EBADMSG, "%s: not a VHD: no footer at the end or at offset 0",
			                  v->path);
		return refuse(r, "no valid footer: at the end: %s; at offset 0: %s", r->end_why,
		              r->backup_why);
	}
	if (r->end_why)
		return survey_dynamic(r, r->backup_raw, false);
	if (!backup_ok || !memcmp(r->end_raw, r->backup_raw, FOOTER_SIZE))
		return survey_dynamic(r, r->end_raw, true);
	return survey_both_valid(r);
}

/* ---- carrying it out ----------------------------------------------- */

static void report(struct repair *r, enum step s, vhd_problem_fn fn, void *opaque)
{
	if (!r->msg[s][0] || !fn)
		return;
	struct vhd_problem p = { .path = r->v->path, .message = r->msg[s], .fatal = 0 };
	fn(&p, opaque);
}

static int sync_file(struct vhd *v)
{
	if (fsync(v->fd) < 0 && errno != EINVAL)
		return vhd_error(errno, "%s: fsync: %s", v->path, strerror(errno));
	return 0;
}

/* In-place metadata: header, BAT entries, batmap. */
static int fix_metadata(struct repair *r, vhd_problem_fn fn, void *opaque)
{
	struct vhd *v = r->v;
	if (r->write_header && vhd_write_header(v))
		return -1;
	report(r, S_HEADER_SUM, fn, opaque);
	report(r, S_PARENT_NAME, fn, opaque);
	for (uint32_t i = 0; i < r->nlost; i++)
		if (vhd_write_bat_entry(v, r->lost[i]))
			return -1;
	report(r, S_LOST_BLOCKS, fn, opaque);
	if (r->write_batmap && vhd_write_batmap(v))
		return -1;
	report(r, S_BATMAP, fn, opaque);
	return sync_file(v);
}

/* A truncation inside a sector of a block's data left part of it: that
 * sector is lost like the rest (sectors are the unit of a disk), so what
 * survives of it is zeroed rather than read back half old, half zeros. */
static int zero_torn_sector(struct repair *r)
{
	struct vhd *v = r->v;
	uint64_t torn = whole_sectors(v->file_size);
	if (!r->ncut || !r->end_why || torn == v->file_size)
		return 0;
	uint8_t zeros[SECTOR] = { 0 };
	return write_at(v->fd, v->path, zeros, (size_t)(v->file_size - torn), torn);
}

static int fix_footers(struct repair *r, vhd_problem_fn fn, void *opaque)
{
	struct vhd *v = r->v;
	if (zero_torn_sector(r))
		return -1;
	report(r, S_CUT_BLOCKS, fn, opaque);
	if (r->write_primary && (write_at(v->fd, v->path, r->chosen, FOOTER_SIZE, r->primary_off) ||
	                         sync_file(v)))
		return -1;
	report(r, S_PRIMARY, fn, opaque);
	if (r->new_size < v->file_size) {
		if (ftruncate(v->fd, (off_t)r->new_size) < 0)
			return vhd_error(errno, "%s: cutting to %llu bytes: %s", v->path,
			                 ull(r->new_size), strerror(errno));
		if (sync_file(v))
			return -1;
	}
	report(r, S_TRIM, fn, opaque);
	if (r->write_backup && (write_at(v->fd, v->path, r->chosen, FOOTER_SIZE, 0) ||
	                        sync_file(v)))
		return -1;
	report(r, S_BACKUP, fn, opaque);
	return 0;
}

/* The survey runs on a read-only descriptor holding the lock; writing
 * needs a second, writable one on the same file. */
static int reopen_writable(struct repair *r)
{
	struct vhd *v = r->v;
	struct stat a, b;
	int fd = open(v->path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return vhd_error(errno, "%s: %s", v->path, strerror(errno));
	if (fstat(fd, &a) || fstat(v->fd, &b) || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
		close(fd);
		return vhd_error(EBUSY, "%s: the file was replaced during the repair", v->path);
	}
	return fd;
}

static int open_locked(struct vhd *v, bool dry_run)
{
	v->fd = open(v->path, O_RDONLY | O_CLOEXEC);
	if (v->fd < 0)
		return vhd_error(errno, "%s: %s", v->path, strerror(errno));
	if (flock(v->fd, (dry_run ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0)
		return vhd_error(errno == EWOULDBLOCK ? EBUSY : errno,
		                 "%s: in use: another process has it open for writing", v->path);
	return fd_size(v->fd, v->path, &v->file_size, &v->is_blockdev);
}

static int count_actions(const struct repair *r)
{
	int n = 0;
	for (int s = 0; s < S_COUNT; s++)
		n += r->msg[s][0] != 0;
	return n;
}

VHD_EXPORT int vhd_repair(const char *path, int flags, vhd_problem_fn fn, void *opaque)
{
	struct repair r = { .flags = flags };
	bool dry_run = flags & VHD_REPAIR_DRY_RUN;
	int rc = -1, lock_fd = -1;
	if (!path)
		return vhd_error(EINVAL, "no path given");
	if (!(r.v = xcalloc(1, sizeof *r.v)))
		return -1;
	r.v->fd = -1;
	for (int i = 0; i < BITMAP_CACHE; i++)
		r.v->cache[i].block = BAT_UNUSED;
	if (!(r.v->path = xstrdup(path)) || open_locked(r.v, dry_run) || survey(&r))
		goto out;
	rc = count_actions(&r);
	if (dry_run || !rc) {
		for (int s = 0; s < S_COUNT; s++)
			report(&r, (enum step)s, fn, opaque);
		goto out;
	}
	int fd = reopen_writable(&r);
	if (fd < 0) {
		rc = -1;
		goto out;
	}
	lock_fd = r.v->fd;   /* keep the lock until the end */
	r.v->fd = fd;
	r.v->writable = true;
	if (fix_metadata(&r, fn, opaque) || fix_footers(&r, fn, opaque))
		rc = -1;
out:
	if (lock_fd >= 0)
		close(lock_fd);
	free(r.lost);
	vhd_free(r.v);
	return rc;
}
