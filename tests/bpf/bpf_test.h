/* Shared by the BPF_PROG_TEST_RUN suites: emptying maps between tests, skipping when BPF is unavailable. */
#ifndef IKETCP_TESTS_BPF_TEST_H
#define IKETCP_TESTS_BPF_TEST_H

#include <stdbool.h>
#include <stdint.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

/* Set by each suite once its object is loaded. */
static bool bpf_test_loaded;

static inline void clear_map(struct bpf_map *m)
{
	uint8_t key[64];
	int fd = bpf_map__fd(m);

	while (bpf_map_get_next_key(fd, NULL, key) == 0)
		assert_int_equal(bpf_map_delete_elem(fd, key), 0);
}

struct guarded {
	void (*fn)(void **state);
};

/* Skip (not fail) every test when the object could not be loaded. */
static inline void run_guarded(void **state)
{
	const struct guarded *g = *state;

	if (!bpf_test_loaded)
		skip();
	g->fn(state);
}

/* A test with the suite's setup, skipped when BPF is unavailable. */
#define GUARDED(f) \
	{ #f, run_guarded, setup, NULL, (void *)&(const struct guarded){ f } }

#endif
