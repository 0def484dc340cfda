/*
 * Out of descriptors on purpose, for listeners whose accept4 must fail with EMFILE: RLIMIT_NOFILE
 * lowered to a few above the lowest free descriptor, and every one below it taken; then everything
 * as it was. With loop_wakeups, how often a loop returns meanwhile: a spinning one thousands of times.
 */
#ifndef IKETCP_TESTS_FD_EXHAUST_H
#define IKETCP_TESTS_FD_EXHAUST_H

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/resource.h>
#include <unistd.h>
#include <cmocka.h>

#include "loop.h"
#include "tests/lib/mono_ms.h"

struct fd_exhaust {
	struct rlimit saved;
	int fds[16], n;
};

static inline void fd_exhaust_begin(struct fd_exhaust *e)
{
	struct rlimit low;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &e->saved), 0);
	e->n = 0;
	e->fds[e->n++] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(e->fds[0] >= 0);
	low = e->saved;
	low.rlim_cur = (rlim_t)e->fds[0] + 4;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	while (e->n < 16 && (e->fds[e->n] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		e->n++;
}

static inline void fd_exhaust_end(struct fd_exhaust *e)
{
	for (int i = 0; i < e->n; i++)
		close(e->fds[i]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &e->saved), 0);
}

/* How often loop_once returns in ms milliseconds, each call waiting at most 50 ms. */
static inline int loop_wakeups(struct loop *loop, unsigned ms)
{
	int wakeups = 0;

	for (uint64_t start = mono_ms(); mono_ms() - start < ms; wakeups++)
		loop_once(loop, 50);
	return wakeups;
}

#endif
