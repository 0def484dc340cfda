/* One transport on a private loopback: see transport_harness.h. */
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "iketcp/stats.h"
#include "loop.h"
#include "tests/lib/transport_harness.h"

static bool have_netns;

static void lo_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	close(fd);
}

bool th_netns(const char *test)
{
	have_netns = unshare(CLONE_NEWNET) == 0;
	if (have_netns)
		lo_up();
	else
		fprintf(stderr, "%s: cannot create a network namespace (%s): skipping\n", test, strerror(errno));
	return have_netns;
}

int th_setup(void **state)
{
	(void)state;
	if (!have_netns)
		skip();
	memset(&stats, 0, sizeof(stats));
	return 0;
}

void th_open(struct th *t, const struct transport_handlers *h, const struct transport_config *cfg)
{
	t->loop = loop_new();
	assert_non_null(t->loop);
	t->tp = transport_new(t->loop, h);
	assert_non_null(t->tp);
	assert_int_equal(transport_configure(t->tp, cfg), 0);
	memset(&stats, 0, sizeof(stats));
}

void th_close(struct th *t)
{
	transport_free(t->tp);
	loop_free(t->loop);
	t->tp = NULL;
	t->loop = NULL;
}

void th_keep(struct th *t, struct tcp_conn *c, const uint8_t *p, size_t len)
{
	assert_true(len <= sizeof(t->last));
	t->last_len = len;
	memcpy(t->last, p, len);
	t->last_conn = c;
}

/* One 10 ms step of the loop unless done already; done. */
static bool step(struct th *t, bool done)
{
	if (!done)
		assert_int_equal(loop_once(t->loop, 10), 0);
	return done;
}

bool th_run_until(struct th *t, const uint64_t *v, uint64_t want, int ms)
{
	for (int waited = 0; waited < ms; waited += 10)
		if (step(t, *v >= want))
			return true;
	return *v >= want;
}

bool th_run_until_int(struct th *t, const int *v, int want, int ms)
{
	for (int waited = 0; waited < ms; waited += 10)
		if (step(t, *v >= want))
			return true;
	return *v >= want;
}

void th_run_for(struct th *t, int ms)
{
	for (int waited = 0; waited < ms; waited += 10)
		loop_once(t->loop, 10);
}
