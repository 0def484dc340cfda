/*
 * ESP anti-replay window with 64-bit extended sequence numbers
 * (RFC 4303 section 3.4.3 and Appendix A2).
 *
 * The window is a ring of bits indexed by the sequence number, as in
 * WireGuard's counter.c: advancing the top clears only the words that were
 * skipped, so a jump costs at most one pass over the bitmap. The ring holds
 * at least one word more than the window, so the bits of the window never
 * share a word with the bits being cleared.
 *
 * Two steps, because the window must only move for authenticated packets:
 *   replay_check()  before the ICV: infer the high 32 bits, reject duplicates
 *                   and packets left of the window; changes nothing.
 *   replay_update() after the ICV verified: mark the number, move the top.
 */
#ifndef IKETCP_ESP_REPLAY_H
#define IKETCP_ESP_REPLAY_H

#include <stdbool.h>
#include <stdint.h>
#include "iketcp/compiler.h"

#define REPLAY_WINDOW_MIN 64u
#define REPLAY_WINDOW_DEFAULT 1024u
#define REPLAY_WINDOW_MAX (1u << 20)

struct replay_window {
	uint64_t top;       /* highest authenticated number; 0 before the first */
	uint64_t *bitmap;   /* ring of words (a power of two), bit n % ring */
	uint32_t word_mask; /* words - 1 */
	uint32_t size;      /* window W: accepted when top - seq < W */
	bool esn;           /* 64-bit numbers, high half inferred (RFC 4303 A2) */
	bool enabled;       /* false: numbers still inferred, never rejected */
};

/*
 * size 0 means REPLAY_WINDOW_DEFAULT; otherwise REPLAY_WINDOW_MIN..MAX.
 * With enabled false (phase2 "replay disable") no bitmap is allocated.
 * Returns 0, -EINVAL or -ENOMEM.
 */
must_check int replay_init(struct replay_window *w, uint32_t size, bool esn, bool enabled);
void replay_free(struct replay_window *w);

/*
 * The full sequence number for the low 32 bits received, in *seq64.
 * 0, or -EALREADY for a duplicate, a number left of the window, or the
 * never-sent number 0. No state changes.
 */
must_check int replay_check(const struct replay_window *w, uint32_t seq_lo, uint64_t *seq64);

/* Record an authenticated number. -EALREADY if it was already recorded. */
int replay_update(struct replay_window *w, uint64_t seq64);

#endif
