/* Anti-replay window and ESN inference: table-driven, after WireGuard's selftest/counter.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "esp/replay.h"

#define OK 0
#define DUP (-EALREADY)
#define ANY64 UINT64_MAX /* do not check the inferred number */

struct step {
	uint32_t lo;
	int expect;
	uint64_t seq64;
};

/* The receive path: check, then (as if the ICV verified) update. */
static int receive(struct replay_window *w, uint32_t lo, uint64_t *seq64)
{
	int err = replay_check(w, lo, seq64);
	if (err)
		return err;
	return replay_update(w, *seq64);
}

/* The verdict is replay_check's alone; an accepted number must then update cleanly. */
static void run_steps(struct replay_window *w, const struct step *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t seq64 = 0;
		int got = replay_check(w, s[i].lo, &seq64);
		if (got == OK && replay_update(w, seq64) != OK)
			fail_msg("step %zu: lo %#x: check passed, update refused", i, s[i].lo);
		if (got != s[i].expect || (s[i].seq64 != ANY64 && got == OK && seq64 != s[i].seq64))
			fail_msg("step %zu: lo %#x: got %d seq64 %#llx, want %d seq64 %#llx", i, s[i].lo, got,
				 (unsigned long long)seq64, s[i].expect, (unsigned long long)s[i].seq64);
	}
}

static void test_init_sizes(void **state)
{
	(void)state;
	struct replay_window w;
	assert_int_equal(replay_init(&w, 0, false, true), 0);
	assert_int_equal(w.size, REPLAY_WINDOW_DEFAULT);
	replay_free(&w);
	assert_int_equal(replay_init(&w, REPLAY_WINDOW_MIN - 1, false, true), -EINVAL);
	assert_int_equal(replay_init(&w, REPLAY_WINDOW_MAX + 1, false, true), -EINVAL);
	assert_int_equal(replay_init(&w, REPLAY_WINDOW_MAX, true, true), 0);
	replay_free(&w);
	replay_free(&w); /* twice is harmless */
}

/* W = 1024, 32-bit numbers. */
static void test_basic_window(void **state)
{
	(void)state;
	const uint32_t W = 1024;
	const struct step steps[] = {
		{ 0, DUP, 0 },                 /* 0 is never sent */
		{ 1, OK, 1 },
		{ 1, DUP, 0 },
		{ 9, OK, 9 },
		{ 8, OK, 8 },                  /* out of order, inside */
		{ 7, OK, 7 },
		{ 7, DUP, 0 },
		{ 2000, OK, 2000 },            /* jump forward */
		{ 2000 - W + 1, OK, 2000 - W + 1 }, /* the oldest number still inside */
		{ 2000 - W, DUP, 0 },          /* one too old */
		{ 2000 - W + 1, DUP, 0 },
		{ 9, DUP, 0 },                 /* far left of the window now */
		{ 1999, OK, 1999 },
		{ 2001, OK, 2001 },
		{ 2000 + 4 * W, OK, 2000 + 4 * W }, /* jump larger than the window */
		{ 2001, DUP, 0 },              /* everything before is too old */
		{ 2000 + 4 * W - 1, OK, ANY64 },
		{ 2000 + 3 * W + 1, OK, ANY64 },
		{ 2000 + 3 * W, DUP, 0 },
		{ 0xffffffffu, OK, 0xffffffffu }, /* the last 32-bit number */
		{ 0xffffffffu, DUP, 0 },
		{ 1, DUP, 0 },                 /* no ESN: no wrap, 1 is just old */
		{ 0xfffffbffu, DUP, 0 },       /* 0xffffffff - 1024: one too old */
		{ 0xfffffc00u, OK, 0xfffffc00u },
	};
	struct replay_window w;
	assert_int_equal(replay_init(&w, W, false, true), 0);
	run_steps(&w, steps, ARRAY_SIZE(steps));
	replay_free(&w);
}

/* Every number once in a shuffled order inside the window, then all again: all duplicates. */
static void shuffled_block(uint32_t W)
{
	struct replay_window w;
	uint64_t seq64;
	uint32_t n = W * 8, *order = calloc(n, sizeof(*order));
	unsigned int rnd = 12345;

	assert_non_null(order);
	assert_int_equal(replay_init(&w, W, false, true), 0);
	for (uint32_t i = 0; i < n; i++)
		order[i] = i + 1;
	/* Shuffle only within blocks of W / 2 so each number is still inside the window. */
	for (uint32_t base = 0; base < n; base += W / 2)
		for (uint32_t i = W / 2 - 1; i > 0; i--) {
			rnd = rnd * 1103515245u + 12345u;
			uint32_t j = (rnd >> 8) % (i + 1), t = order[base + i];
			order[base + i] = order[base + j];
			order[base + j] = t;
		}
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(receive(&w, order[i], &seq64), OK);
		assert_int_equal(seq64, order[i]);
		/* The same number right away, and an earlier one still inside: duplicates. */
		assert_int_equal(receive(&w, order[i], &seq64), DUP);
		if (i > 0)
			assert_int_equal(receive(&w, order[i - 1], &seq64), DUP);
	}
	/* Inside the final window every number is marked; left of it, too old. */
	for (uint32_t s = 1; s <= n; s++)
		assert_int_equal(replay_check(&w, s, &seq64), DUP);
	assert_int_equal(replay_check(&w, n + 1, &seq64), OK);
	replay_free(&w);
	free(order);
}

static void test_shuffled_sizes(void **state)
{
	(void)state;
	const uint32_t sizes[] = { 64, 128, 1000, 1024, 4096 };
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
		shuffled_block(sizes[i]);
}

/* The ring reuses words: after many wraps, a bit from a previous lap must not linger. */
static void test_ring_laps(void **state)
{
	(void)state;
	struct replay_window w;
	uint64_t seq64;
	assert_int_equal(replay_init(&w, 64, false, true), 0);
	for (uint32_t s = 1; s < 100000; s += 3)
		assert_int_equal(receive(&w, s, &seq64), OK);
	/* Top is 99997; gaps inside the window are still open exactly once. */
	assert_int_equal(receive(&w, 99996, &seq64), OK);
	assert_int_equal(receive(&w, 99996, &seq64), DUP);
	assert_int_equal(receive(&w, 99995, &seq64), OK);
	assert_int_equal(receive(&w, 99997 - 62, &seq64), OK);
	assert_int_equal(receive(&w, 99997 - 63, &seq64), DUP); /* received on the way */
	assert_int_equal(receive(&w, 99997 - 65, &seq64), DUP); /* never received, too old */
	/* Jumps of exactly one ring, and of one word, clear what they must. */
	uint32_t top = 99997;
	for (int i = 0; i < 200; i++) {
		top += (uint32_t)(i % 3 == 0 ? 64 : i % 3 == 1 ? 256 : 1);
		assert_int_equal(receive(&w, top, &seq64), OK);
		assert_int_equal(receive(&w, top - 1, &seq64), i % 3 == 2 ? DUP : OK);
		assert_int_equal(receive(&w, top - 1, &seq64), DUP);
	}
	replay_free(&w);
}

/* A jump of more than the whole ring must clear every word, the old top's included. */
static void test_jump_clears_ring(void **state)
{
	(void)state;
	struct replay_window w;
	uint64_t seq64;
	assert_int_equal(replay_init(&w, 64, false, true), 0);
	assert_int_equal(w.word_mask, 3); /* 4 words, 256 bits */
	for (uint32_t jump = 256; jump <= 4096; jump *= 2) {
		uint32_t base = (uint32_t)w.top / 64 * 64 + 64; /* a fresh word */
		for (uint32_t s = base; s < base + 64; s++)
			assert_int_equal(receive(&w, s, &seq64), OK);
		/* Same word index one or more laps later: its stale bits must be gone. */
		uint32_t top = base + jump + 63;
		assert_int_equal(receive(&w, top, &seq64), OK);
		for (uint32_t s = top - 63; s < top; s++)
			assert_int_equal(receive(&w, s, &seq64), OK);
	}
	replay_free(&w);
}

/* Update without check (a caller bug or a race) still refuses duplicates and old numbers. */
static void test_update_guards(void **state)
{
	(void)state;
	struct replay_window w;
	assert_int_equal(replay_init(&w, 1024, false, true), 0);
	assert_int_equal(replay_update(&w, 5000), 0);
	assert_int_equal(replay_update(&w, 5000), -EALREADY);
	assert_int_equal(replay_update(&w, 5000 - 1024), -EALREADY);
	assert_int_equal(replay_update(&w, 0), -EALREADY);
	assert_int_equal(replay_update(&w, 5000 - 1023), 0);
	replay_free(&w);
}

/* Replay disabled: nothing is rejected, the top still moves (ESN needs it). */
static void test_disabled(void **state)
{
	(void)state;
	const struct step steps[] = {
		{ 5, OK, 5 }, { 5, OK, 5 }, { 1, OK, 1 }, { 0, OK, 0 }, { 100000, OK, 100000 }, { 3, OK, 3 },
	};
	struct replay_window w;
	assert_int_equal(replay_init(&w, 0, false, false), 0);
	assert_null(w.bitmap);
	run_steps(&w, steps, ARRAY_SIZE(steps));
	assert_int_equal(w.top, 100000);
	replay_free(&w);

	/* With ESN the high half is still inferred across the wrap. */
	const struct step esn[] = {
		{ 0x80000000u, OK, 0x80000000u },
		{ 0xfffffff0u, OK, 0xfffffff0u },
		{ 2, OK, 0x100000002ull },
		{ 2, OK, 0x100000002ull },
	};
	assert_int_equal(replay_init(&w, 0, true, false), 0);
	run_steps(&w, esn, ARRAY_SIZE(esn));
	replay_free(&w);
}

/* RFC 4303 Appendix A2: both cases of the inference, and the wrap of the low half. */
static void test_esn_wrap(void **state)
{
	(void)state;
	const uint32_t W = 1024;
	const struct step steps[] = {
		{ 0xfffffff0u, DUP, 0 },          /* at start: would be below 0 */
		{ 1, OK, 1 },
		{ 0x80000000u, OK, 0x80000000u },
		{ 0xfffffff0u, OK, 0xfffffff0u },
		{ 0xffffffffu, OK, 0xffffffffu },
		{ 0, OK, 0x100000000ull },       /* the low half wraps: 0x1_00000000 */
		{ 0, DUP, 0 },
		{ 5, OK, 0x100000005ull },
		{ 0xfffffffeu, OK, 0xfffffffeu }, /* case B: late packet from the previous subspace */
		{ 0xfffffffeu, DUP, 0 },
		{ 0xffffffffu, DUP, 0 },
		{ 0xfffffff0u, DUP, 0 },
		{ 5 - W + 1, OK, 5 - W + 1 },     /* 0xfffffc06: oldest still inside */
		{ 3, OK, 0x100000003ull },
		{ 0xfffff000u, OK, 0x1fffff000ull }, /* below the window bottom: the next subspace */
		{ 0x10, OK, 0x200000010ull },
		{ 0xfffff001u, OK, 0x2fffff001ull }, /* case B again: ahead, not 0x1_fffff001 */
	};
	struct replay_window w;
	assert_int_equal(replay_init(&w, W, true, true), 0);
	run_steps(&w, steps, ARRAY_SIZE(steps));
	replay_free(&w);
}

static void test_esn_case_a(void **state)
{
	(void)state;
	const uint32_t W = 1024;
	struct replay_window w;
	uint64_t seq64;
	assert_int_equal(replay_init(&w, W, true, true), 0);
	w.top = 0x100010000ull; /* Tl = 0x10000 >= W - 1: the window is inside subspace 1 */
	assert_int_equal(replay_check(&w, 0x10000 - W + 1, &seq64), OK);
	assert_int_equal(seq64, 0x100010000ull - W + 1);
	assert_int_equal(replay_check(&w, 0x10000 - W, &seq64), OK); /* below: next subspace */
	assert_int_equal(seq64, 0x200010000ull - W);
	assert_int_equal(replay_check(&w, 0x10000, &seq64), OK);
	assert_int_equal(seq64, 0x100010000ull);
	assert_int_equal(replay_update(&w, seq64), OK);
	assert_int_equal(replay_check(&w, 0x10000, &seq64), DUP);

	/* Near 2^64: no subspace after 0xffffffff. */
	w.top = 0xffffffff00001000ull;
	assert_int_equal(replay_check(&w, 0x1001, &seq64), OK);
	assert_int_equal(seq64, 0xffffffff00001001ull);
	assert_int_equal(replay_check(&w, 0xffffffffu, &seq64), OK);
	assert_int_equal(seq64, UINT64_MAX);
	assert_int_equal(replay_update(&w, seq64), OK);
	/* Now Tl = 0xffffffff: a small number would be subspace 2^32, which does not exist. */
	assert_int_equal(replay_check(&w, 5, &seq64), DUP);
	assert_int_equal(replay_check(&w, 0xffffffffu, &seq64), DUP);
	assert_int_equal(replay_check(&w, 0xfffffffeu, &seq64), OK);
	replay_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_sizes),
		cmocka_unit_test(test_basic_window),
		cmocka_unit_test(test_shuffled_sizes),
		cmocka_unit_test(test_ring_laps),
		cmocka_unit_test(test_jump_clears_ring),
		cmocka_unit_test(test_update_guards),
		cmocka_unit_test(test_disabled),
		cmocka_unit_test(test_esn_wrap),
		cmocka_unit_test(test_esn_case_a),
	};
	return cmocka_run_group_tests_name("replay", tests, NULL, NULL);
}
