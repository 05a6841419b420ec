// SPDX-License-Identifier: GPL-2.0-only
/*
 * Admission (a per-set TinyLFU sketch) and eviction (least frequent idle
 * way), and sequential stream detection. See policy.h.
 */
#include "policy.h"

#define IC_SKETCH_COUNTERS	(2 * IC_SKETCH_BYTES)
#define IC_SKETCH_HASHES	4

/*
 * A mix independent of the set hash (hash_64 keeps the product's top bits,
 * which all blocks of a set share): splitmix64's finaliser.
 */
static u64 ic_mix64(u64 x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static void ic_sketch_slots(u64 oblock, unsigned int *slot)
{
	u64 h = ic_mix64(oblock);
	unsigned int i;

	for (i = 0; i < IC_SKETCH_HASHES; i++, h >>= 16)
		slot[i] = h % IC_SKETCH_COUNTERS;
}

static unsigned int ic_sketch_get(const u8 *sketch, unsigned int i)
{
	return (sketch[i / 2] >> (4 * (i & 1))) & 0xf;
}

static void ic_sketch_set(u8 *sketch, unsigned int i, unsigned int v)
{
	unsigned int shift = 4 * (i & 1);

	sketch[i / 2] = (sketch[i / 2] & ~(0xf << shift)) | (v << shift);
}

static unsigned int ic_sketch_min(const u8 *sketch, const unsigned int *slot)
{
	unsigned int i, min = IC_FREQ_MAX;

	for (i = 0; i < IC_SKETCH_HASHES; i++) {
		unsigned int v = ic_sketch_get(sketch, slot[i]);

		if (v < min)
			min = v;
	}
	return min;
}

/* Halve every counter: what was popular long ago counts for less. */
static void ic_sketch_age(struct ic_set *s)
{
	unsigned int i;

	for (i = 0; i < IC_SKETCH_BYTES; i++)
		s->sketch[i] = (s->sketch[i] >> 1) & 0x77;
	s->sample /= 2;
}

/*
 * Count one access to @oblock; return its new estimate. Only an access that
 * raised a counter advances the aging clock: one whose counters are all
 * saturated tells the sketch nothing new, and a set holding a very hot
 * block would otherwise age, and forget its other blocks, at that block's
 * pace.
 */
static unsigned int ic_sketch_inc(struct ic_set *s, u64 oblock)
{
	unsigned int slot[IC_SKETCH_HASHES];
	unsigned int i, min;

	ic_sketch_slots(oblock, slot);
	min = ic_sketch_min(s->sketch, slot);
	if (min >= IC_FREQ_MAX)
		return IC_FREQ_MAX;

	/* Conservative update: raise only the counters at the minimum. */
	for (i = 0; i < IC_SKETCH_HASHES; i++)
		if (ic_sketch_get(s->sketch, slot[i]) == min)
			ic_sketch_set(s->sketch, slot[i], min + 1);
	if (++s->sample >= IC_SKETCH_SAMPLE)
		ic_sketch_age(s);
	return min + 1;
}

unsigned int ic_policy_estimate(const struct ic_index *idx, u64 set,
				u64 oblock)
{
	unsigned int slot[IC_SKETCH_HASHES];

	ic_sketch_slots(oblock, slot);
	return ic_sketch_min(idx->sets[set].sketch, slot);
}

void ic_policy_hit(struct ic_index *idx, u64 set, unsigned int way)
{
	u64 *word = &idx->ways[ic_index_slot(set, way)];

	*word |= IC_WAY_REF;
	ic_sketch_inc(&idx->sets[set], *word & IC_OBLOCK_MASK);
}

unsigned int ic_policy_miss(struct ic_index *idx, u64 set, u64 oblock)
{
	return ic_sketch_inc(&idx->sets[set], oblock);
}

int ic_policy_victim(struct ic_index *idx, u64 set, unsigned int freq,
		     bool force)
{
	struct ic_set *s = &idx->sets[set];
	u64 base = ic_index_slot(set, 0);
	unsigned int i, best_score = ~0U;
	int best = IC_VICTIM_BUSY, spare = -1;

	for (i = 0; i < IC_WAYS; i++) {
		/* Start at the hand so that ties rotate through the ways. */
		unsigned int way = (s->hand + i) % IC_WAYS;
		u64 word = idx->ways[base + way];
		unsigned int score;

		if (ic_way_is_free(idx, base + way)) {
			/*
			 * A free way whose entry is still on disk costs a
			 * metadata write before reuse: take it last.
			 */
			if (word & IC_WAY_ON_DISK) {
				if (spare < 0)
					spare = way;
				continue;
			}
			s->hand = (way + 1) % IC_WAYS;
			return way;
		}
		if ((word & (IC_WAY_FILLING | IC_WAY_NO_EVICT)) ||
		    idx->inflight[base + way])
			continue;
		score = 2 * ic_policy_estimate(idx, set, word & IC_OBLOCK_MASK) +
			!!(word & IC_WAY_REF);
		if (score < best_score) {
			best_score = score;
			best = way;
		}
	}
	if (spare >= 0) {
		s->hand = (spare + 1) % IC_WAYS;
		return spare;
	}
	if (best < 0)
		return IC_VICTIM_BUSY;
	if (!force && freq <= best_score / 2)
		return IC_VICTIM_REJECT;

	/* Recency is a tie-breaker only until the next eviction here. */
	for (i = 0; i < IC_WAYS; i++)
		idx->ways[base + i] &= ~IC_WAY_REF;
	s->hand = (best + 1) % IC_WAYS;
	return best;
}

u64 ic_stream_note(struct ic_streams *st, u64 sector, u32 nr_sectors)
{
	struct ic_stream *e, *oldest = &st->s[0];
	unsigned int i;

	st->clock++;
	for (i = 0; i < IC_NR_STREAMS; i++) {
		e = &st->s[i];
		if (e->run && e->next == sector) {
			e->next = sector + nr_sectors;
			e->run += nr_sectors;
			e->stamp = st->clock;
			return e->run;
		}
		if (e->stamp < oldest->stamp)
			oldest = e;
	}
	oldest->next = sector + nr_sectors;
	oldest->run = nr_sectors;
	oldest->stamp = st->clock;
	return nr_sectors;
}
