/* test-size.c - sizes as people write them (parse_size: "10G", "1.5GiB")
 * and read them (human_size: "1.50 GiB"), common/size.c, table by table.
 * Suffixes are powers of 1024 (README: "Sizes take K, M, G, T suffixes");
 * the expected bytes are written out as products of 1024 by hand. */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "unit.h"

#define KIB 1024ull
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)
#define TIB (1024 * GIB)

static const struct { const char *text; uint64_t bytes; } good[] = {
	{ "0", 0 },
	{ "512", 512 },
	{ "100B", 100 },
	{ "1K", KIB }, { "1k", KIB }, { "10K", 10 * KIB }, { "4KiB", 4 * KIB },
	{ "1M", MIB }, { "64m", 64 * MIB }, { "50MB", 50 * MIB },
	{ "1G", GIB }, { "20G", 20 * GIB }, { "2GiB", 2 * GIB }, { "1.5G", 3 * GIB / 2 },
	{ "0.5K", 512 },
	{ "2T", 2 * TIB }, { "2040g", 2040 * GIB }, { "16T", 16 * TIB },
	{ "1e3", 1000 },   /* strtod's notation: harmless, kept */
};

static const char *const bad[] = {
	"", "G", "K1", "-1", "-1G", "1X", "1Gx", "1 G", "1GiBs", "1Bi", "1P",
	"100iB", "1BB", "inf", "nan", "1e30", "20000000T",   /* past what 64 bits hold */
};

static const struct { uint64_t bytes; const char *text; } shown[] = {
	{ 0, "0 B" }, { 1, "1 B" }, { 1023, "1023 B" },
	{ KIB, "1.00 KiB" }, { 1536, "1.50 KiB" }, { MIB - 1, "1024.00 KiB" },
	{ MIB, "1.00 MiB" }, { 20 * GIB, "20.00 GiB" }, { 30 * GIB, "30.00 GiB" },
	{ 2040 * GIB, "1.99 TiB" }, { 1024 * TIB, "1.00 PiB" },
	{ 1024 * 1024 * TIB, "1024.00 PiB" },   /* PiB is the largest unit */
	{ UINT64_MAX, "16384.00 PiB" },
};

int main(void)
{
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		uint64_t b = 42;
		int rc = parse_size(good[i].text, &b);
		CHECK(rc == 0 && b == good[i].bytes, "parse_size(\"%s\"): %d, %llu bytes, expected %llu",
		      good[i].text, rc, (unsigned long long)b, (unsigned long long)good[i].bytes);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint64_t b = 42;
		int rc = parse_size(bad[i], &b);
		CHECK(rc == -1 && b == 42, "parse_size(\"%s\") accepted: %llu bytes", bad[i],
		      (unsigned long long)b);
	}
	for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++) {
		char buf[32];
		const char *s = human_size(shown[i].bytes, buf, sizeof buf);
		CHECK(s == buf && !strcmp(s, shown[i].text), "human_size(%llu): \"%s\", expected \"%s\"",
		      (unsigned long long)shown[i].bytes, s, shown[i].text);
	}
	/* a short buffer is cut, never overrun */
	char small[6] = "xxxxx";
	human_size(20 * GIB, small, 5);
	CHECK(!strcmp(small, "20.0") && small[5] == 0, "human_size into 5 bytes: \"%s\"", small);
	/* what human_size prints, parse_size reads back to within its rounding */
	for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++) {
		char buf[32], text[32];
		uint64_t b, want = shown[i].bytes;
		if (want >= 1024 * TIB)
			continue;   /* "PiB" is shown, not parsed (no P suffix) */
		human_size(want, buf, sizeof buf);
		snprintf(text, sizeof text, "%.*s%s", (int)strcspn(buf, " "), buf, strchr(buf, ' ') + 1);
		CHECK(parse_size(text, &b) == 0 && (b > want ? b - want : want - b) <= want / 200,
		      "\"%s\" reads back as %llu, not ~%llu", text, (unsigned long long)b,
		      (unsigned long long)want);
	}
	printf("test-size: %zu sizes parsed, %zu refused, %zu shown\n", sizeof good / sizeof good[0],
	       sizeof bad / sizeof bad[0], sizeof shown / sizeof shown[0]);
	return unit_done("test-size");
}
