/*
 * The control socket (daemon/ctl/ctl.c) with a stub handler, over a real UNIX socket: requests, and a
 * client queued while the daemon is out of descriptors.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "ctl/ctl.h"
#include "loop.h"
#include "tests/lib/fd_exhaust.h"

struct ctx {
	char dir[64], path[96];
	struct loop *loop;
	struct ctl_server *srv;
	int requests;
	char last_arg[128]; /* the handler's argv[1] */
};

static int handler(void *arg, int argc, char **argv, struct jw *body, const char **err)
{
	struct ctx *x = arg;
	x->requests++;
	snprintf(x->last_arg, sizeof(x->last_arg), "%s", argc > 1 ? argv[1] : "");
	if (!strcmp(argv[0], "up") && argc == 2) {
		jw_printf(body, "%s initiating\n", argv[1]);
		return 0;
	}
	if (strcmp(argv[0], "status")) {
		*err = "unknown command";
		return -1;
	}
	jw_printf(body, "%d words\n", argc);
	return 0;
}

static struct ctx *ctx_new(void)
{
	struct ctx *x = calloc(1, sizeof(*x));
	assert_non_null(x);
	snprintf(x->dir, sizeof(x->dir), "/tmp/iketcp-test-ctl-XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	snprintf(x->path, sizeof(x->path), "%s/ctl.sock", x->dir);
	x->loop = loop_new();
	assert_non_null(x->loop);
	x->srv = ctl_server_new(x->loop, x->path, handler, x);
	assert_non_null(x->srv);
	return x;
}

static void ctx_free(struct ctx *x)
{
	ctl_server_free(x->srv);
	loop_free(x->loop);
	rmdir(x->dir);
	free(x);
}

static int client(struct ctx *x, const char *req)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", x->path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	return fd;
}

/* The whole reply (the daemon closes after it), running the loop meanwhile. */
static size_t reply(struct ctx *x, int fd, char *buf, size_t cap)
{
	size_t got = 0;

	for (int i = 0; i < 200; i++) {
		loop_once(x->loop, 10);
		ssize_t n = recv(fd, buf + got, cap - 1 - got, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n > 0)
			got += (size_t)n;
	}
	buf[got] = '\0';
	return got;
}

static void test_requests(void **state)
{
	(void)state;
	struct ctx *x = ctx_new();
	char buf[256];

	int fd = client(x, "status --json\n");
	reply(x, fd, buf, sizeof(buf));
	assert_string_equal(buf, "OK\n2 words\n");
	close(fd);
	fd = client(x, "frobnicate\n");
	reply(x, fd, buf, sizeof(buf));
	assert_string_equal(buf, "ERR unknown command\n");
	close(fd);
	fd = client(x, "status\x01\n");
	reply(x, fd, buf, sizeof(buf));
	assert_string_equal(buf, "ERR empty or malformed request\n");
	close(fd);
	assert_int_equal(x->requests, 2);
	ctx_free(x);
}

/*
 * Out of descriptors, a client waiting to be accepted does not make the loop spin (epoll reports it
 * again and again while accept4 says EMFILE); once there are descriptors again it gets its answer.
 */
static void test_accept_out_of_fds(void **state)
{
	(void)state;
	struct ctx *x = ctx_new();
	struct fd_exhaust ex;
	char buf[256];

	int fd = client(x, "status\n"); /* queued on the listening socket */
	fd_exhaust_begin(&ex);
	int wakeups = loop_wakeups(x->loop, 300);
	fd_exhaust_end(&ex);
	assert_int_equal(x->requests, 0);
	assert_true(wakeups < 50); /* a spinning loop wakes up thousands of times */

	reply(x, fd, buf, sizeof(buf));
	assert_string_equal(buf, "OK\n1 words\n");
	close(fd);
	ctx_free(x);
}

struct split_case {
	const char *line;
	int argc; /* -1: refused */
	const char *argv[4];
};

static const struct split_case split_cases[] = {
	{ "status", 1, { "status" } },
	{ "  status \t --json  ", 2, { "status", "--json" } },
	{ "", 0, { NULL } },
	{ "up \"name with spaces\"", 2, { "up", "name with spaces" } },
	{ "up \"q\\\"uote\\\\back\" x", 3, { "up", "q\"uote\\back", "x" } },
	{ "up \"\"", 2, { "up", "" } },
	{ "up a\"b", 2, { "up", "a\"b" } }, /* a quote inside a word is just a byte */
	{ "up \"open", -1, { NULL } },
	{ "up \"glued\"x", -1, { NULL } },
	{ "up \"bad \\n escape\"", -1, { NULL } },
	{ "up \x01", -1, { NULL } },
	{ "a b c d e f g h i", -1, { NULL } }, /* more than 8 words */
};

static void test_split(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(split_cases) / sizeof(split_cases[0]); i++) {
		const struct split_case *t = &split_cases[i];
		char line[128], *argv[8];
		print_message("split: [%s]\n", t->line);
		snprintf(line, sizeof(line), "%s", t->line);
		int argc = ctl_split(line, argv, 8);
		assert_int_equal(argc, t->argc);
		for (int k = 0; k < argc; k++)
			assert_string_equal(argv[k], t->argv[k]);
	}
}

/* What iketcpctl sends is what the handler gets, word for word. */
static void test_join_split(void **state)
{
	(void)state;
	char *words[] = { "up", "name with spaces", "", "q\"uote\\back", "--json", "\"lead" };
	char line[128], *argv[8];

	int n = ctl_join(line, sizeof(line), 6, words);
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(line));
	assert_int_equal(ctl_split(line, argv, 8), 6);
	for (int k = 0; k < 6; k++)
		assert_string_equal(argv[k], words[k]);
	assert_int_equal(ctl_join(line, 10, 2, (char *[]){ "up", "name with spaces" }), -1);
	assert_int_equal(ctl_join(line, 8, 2, (char *[]){ "up", "abcde" }), -1); /* and its NUL */
	assert_int_equal(ctl_join(line, 8, 2, (char *[]){ "up", "abcd" }), 7);
	assert_int_equal(ctl_join(line, sizeof(line), 2, (char *[]){ "up", "a\nb" }), -1);
}

/* A phase1 name with spaces, as the configuration allows, reaches the handler whole. */
static void test_name_with_spaces(void **state)
{
	(void)state;
	struct ctx *x = ctx_new();
	char buf[256];

	int fd = client(x, "up \"name with spaces\"\n");
	reply(x, fd, buf, sizeof(buf));
	assert_string_equal(buf, "OK\nname with spaces initiating\n");
	assert_string_equal(x->last_arg, "name with spaces");
	close(fd);
	ctx_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_join_split),
		cmocka_unit_test(test_name_with_spaces),
		cmocka_unit_test(test_accept_out_of_fds),
	};
	return cmocka_run_group_tests_name("ctl", tests, NULL, NULL);
}
