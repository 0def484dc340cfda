/*
 * iketcpctl: talk to iketcpd's control socket.
 * Exit status: 0 done, 1 refused by the daemon (its reason on stderr), 2 daemon unreachable or bad usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl/ctl.h"

#define DEFAULT_SOCKET "/run/iketcp/iketcpd.sock"
#define REPLY_MAX (16u << 20)

static void usage(FILE *f)
{
	fprintf(f, "usage: iketcpctl [-s SOCKET] status [--json]\n"
		   "       iketcpctl [-s SOCKET] stats [--json]\n"
		   "       iketcpctl [-s SOCKET] up NAME | down NAME | rekey NAME\n"
		   "       iketcpctl [-s SOCKET] reload\n"
		   "  -s SOCKET   control socket (default " DEFAULT_SOCKET ")\n");
}

/* Only known commands with the right arguments reach the daemon. */
static int check_usage(int argc, char **argv)
{
	const char *cmd = argv[0];

	if (!strcmp(cmd, "status") || !strcmp(cmd, "stats"))
		return argc == 1 || (argc == 2 && !strcmp(argv[1], "--json")) ? 0 : -1;
	if (!strcmp(cmd, "up") || !strcmp(cmd, "down") || !strcmp(cmd, "rekey"))
		return argc == 2 ? 0 : -1;
	if (!strcmp(cmd, "reload"))
		return argc == 1 ? 0 : -1;
	return -1;
}

int main(int argc, char **argv)
{
	const char *sock = DEFAULT_SOCKET;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 10 };
	char req[1024];
	size_t len = 0;
	int i = 1, fd;

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	if (argc > 2 && !strcmp(argv[1], "-s")) {
		sock = argv[2];
		i = 3;
	}
	if (i >= argc || check_usage(argc - i, argv + i)) {
		usage(stderr);
		return 2;
	}
	/* Quoted where needed: a phase1 name may hold spaces. */
	int joined = ctl_join(req, sizeof(req) - 1, argc - i, argv + i);
	if (joined < 0) {
		fprintf(stderr, "iketcpctl: request too long or malformed\n");
		return 2;
	}
	len = (size_t)joined;
	req[len++] = '\n';

	if (strlen(sock) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "iketcpctl: socket path too long\n");
		return 2;
	}
	strcpy(sun.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "iketcpctl: cannot reach iketcpd at %s: %s\n", sock, strerror(errno));
		return 2;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
		fprintf(stderr, "iketcpctl: cannot send to iketcpd: %s\n", strerror(errno));
		return 2;
	}

	char *reply = NULL;
	size_t got = 0, cap = 0;
	for (;;) {
		if (got + 4096 > cap) {
			cap = cap ? cap * 2 : 65536;
			if (cap > REPLY_MAX || !(reply = realloc(reply, cap + 1))) {
				fprintf(stderr, "iketcpctl: reply too large\n");
				return 2;
			}
		}
		ssize_t n = read(fd, reply + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "iketcpctl: reading from iketcpd: %s\n", strerror(errno));
			return 2;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!reply || !got) {
		fprintf(stderr, "iketcpctl: iketcpd closed the connection without answering\n");
		return 2;
	}
	reply[got] = '\0';
	char *body = strchr(reply, '\n');
	body = body ? body + 1 : reply + got;
	if (!strncmp(reply, "OK\n", 3)) {
		fputs(body, stdout);
		free(reply);
		return 0;
	}
	if (!strncmp(reply, "ERR ", 4)) {
		fprintf(stderr, "iketcpctl: %.*s\n%s", (int)(body - reply - 5), reply + 4, body);
		free(reply);
		return 1;
	}
	fprintf(stderr, "iketcpctl: unexpected reply from iketcpd\n");
	free(reply);
	return 2;
}
