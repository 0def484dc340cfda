/* Milliseconds on the monotonic clock, for tests that bound how long or how often something runs. */
#ifndef IKETCP_TESTS_MONO_MS_H
#define IKETCP_TESTS_MONO_MS_H

#include <stdint.h>
#include <time.h>

static inline uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#endif
