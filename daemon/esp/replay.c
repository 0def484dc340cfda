/* ESP anti-replay window and ESN inference (RFC 4303 section 3.4.3, Appendix A2). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "esp/replay.h"

#define WORD_BITS 64u

int replay_init(struct replay_window *w, uint32_t size, bool esn, bool enabled)
{
	memset(w, 0, sizeof(*w));
	if (size == 0)
		size = REPLAY_WINDOW_DEFAULT;
	if (size < REPLAY_WINDOW_MIN || size > REPLAY_WINDOW_MAX)
		return -EINVAL;
	w->size = size;
	w->esn = esn;
	w->enabled = enabled;
	if (!enabled)
		return 0;
	/* One spare word so the window never shares a word with the cleared ones. */
	uint32_t words = 1;
	while (words < size / WORD_BITS + 2)
		words <<= 1;
	w->bitmap = calloc(words, sizeof(*w->bitmap));
	if (!w->bitmap)
		return -ENOMEM;
	w->word_mask = words - 1;
	return 0;
}

void replay_free(struct replay_window *w)
{
	free(w->bitmap);
	w->bitmap = NULL;
}

/*
 * RFC 4303 Appendix A2.2: pick the high half that puts the number inside or
 * right of the window. Case A: the window [T - W + 1, T] lies in one 2^32
 * subspace; case B: it straddles the boundary below Tl. -EALREADY when the
 * only candidate lies below 0 or above 2^64 - 1.
 */
static int infer_high(const struct replay_window *w, uint32_t seq_lo, uint32_t *seq_hi)
{
	uint32_t tl = (uint32_t)w->top, th = (uint32_t)(w->top >> 32);
	uint32_t bottom = tl - w->size + 1; /* mod 2^32 in case B */

	if (tl >= w->size - 1) {
		if (seq_lo >= bottom) {
			*seq_hi = th;
		} else {
			if (th == UINT32_MAX)
				return -EALREADY;
			*seq_hi = th + 1;
		}
	} else {
		if (seq_lo >= bottom) {
			if (th == 0)
				return -EALREADY;
			*seq_hi = th - 1;
		} else {
			*seq_hi = th;
		}
	}
	return 0;
}

int replay_check(const struct replay_window *w, uint32_t seq_lo, uint64_t *seq64)
{
	uint32_t seq_hi = 0;

	if (w->esn && infer_high(w, seq_lo, &seq_hi)) {
		if (w->enabled)
			return -EALREADY;
		seq_hi = (uint32_t)(w->top >> 32);
	}
	uint64_t seq = (uint64_t)seq_hi << 32 | seq_lo;
	*seq64 = seq;
	if (!w->enabled || seq > w->top)
		return 0;
	if (seq == 0 || w->top - seq >= w->size)
		return -EALREADY;
	uint64_t word = w->bitmap[(seq / WORD_BITS) & w->word_mask];
	return word & (1ull << (seq % WORD_BITS)) ? -EALREADY : 0;
}

int replay_update(struct replay_window *w, uint64_t seq64)
{
	if (!w->enabled) {
		if (seq64 > w->top)
			w->top = seq64;
		return 0;
	}
	if (seq64 > w->top) {
		uint64_t cur = w->top / WORD_BITS, next = seq64 / WORD_BITS;
		uint64_t diff = next - cur;
		if (diff > (uint64_t)w->word_mask + 1)
			diff = (uint64_t)w->word_mask + 1;
		for (uint64_t i = 1; i <= diff; i++)
			w->bitmap[(cur + i) & w->word_mask] = 0;
		w->top = seq64;
	} else if (seq64 == 0 || w->top - seq64 >= w->size) {
		return -EALREADY;
	}
	uint64_t *word = &w->bitmap[(seq64 / WORD_BITS) & w->word_mask];
	uint64_t bit = 1ull << (seq64 % WORD_BITS);
	if (*word & bit)
		return -EALREADY;
	*word |= bit;
	return 0;
}
