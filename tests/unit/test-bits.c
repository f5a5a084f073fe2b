/* test-bits.c - bit_find (lib/format.c) against a bit-by-bit search: maps
 * of all zeros, all ones, one bit set or clear, runs and random bytes,
 * every start and end within 200 bits of a 512-bit map, both values. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "unit.h"

#define BITS 512u

static uint64_t naive(const uint8_t *map, uint64_t from, uint64_t to, bool value)
{
	for (uint64_t i = from; i < to; i++)
		if (bit_test(map, i) == value)
			return i;
	return to;
}

static void fill(uint8_t *map, int kind, unsigned seed)
{
	srand(seed);
	for (unsigned i = 0; i < BITS / 8; i++) {
		switch (kind) {
		case 0: map[i] = 0x00; break;
		case 1: map[i] = 0xFF; break;
		case 2: map[i] = i < BITS / 16 ? 0xFF : 0x00; break;   /* a run */
		default: map[i] = (uint8_t)rand(); break;
		}
	}
	if (kind == 0)
		bit_set(map, seed % BITS);      /* one bit set */
	if (kind == 1)
		bit_clear(map, seed % BITS);    /* one bit clear */
}

static const char *kinds[] = { "one bit set", "one bit clear", "a run", "random" };

int main(void)
{
	uint8_t map[BITS / 8];
	unsigned bad = 0;
	for (int kind = 0; kind < 4; kind++)
		for (unsigned seed = 1; seed <= 6; seed++) {
			fill(map, kind, seed * 97);
			for (uint64_t from = 0; from < 200; from++)
				for (uint64_t to = from; to <= BITS; to += to < from + 200 ? 1 : 37)
					for (int v = 0; v < 2; v++) {
						uint64_t got = bit_find(map, from, to, v);
						uint64_t want = naive(map, from, to, v);
						if (got != want && bad++ < 5)
							CHECK(0, "%s map %u: bit_find(%llu, %llu, %d) = %llu, not %llu",
							      kinds[kind], seed, (unsigned long long)from,
							      (unsigned long long)to, v, (unsigned long long)got,
							      (unsigned long long)want);
						unit_checks++;
					}
		}
	CHECK(bad == 0, "%u searches differ from the bit-by-bit search", bad);
	printf("bit_find: every start and end, both values, %zu kinds of map\n",
	       sizeof kinds / sizeof kinds[0]);
	return unit_done("test-bits");
}
