/* Control socket server: accept, read one bounded line, dispatch, write the reply. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "iketcp/compiler.h"
#include "iketcp/log.h"

#define CTL_MAX_CLIENTS 32
#define CTL_MAX_ARGS 8

struct ctl_client {
	struct loop_io io;
	struct loop_timer timer;
	struct ctl_server *srv;
	char req[CTL_REQUEST_MAX + 1];
	size_t req_len;
	struct jw reply;
	size_t sent;
	bool replying;
	struct ctl_client *next;
};

struct ctl_server {
	struct loop *loop;
	struct loop_io io;
	struct loop_timer resume; /* accepting again after running out of descriptors */
	char *path;
	ctl_handler handler;
	void *arg;
	struct ctl_client *clients;
	unsigned n_clients;
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 && *s != '\t')
			return true;
	return false;
}

/* The quoted word at *in ('"' first) decoded to *out; false when it is unterminated or glued to more. */
static bool unquote(char **in, char **out)
{
	char *i = *in + 1, *o = *out;

	for (; *i != '"'; *o++ = *i++) {
		if (!*i)
			return false;
		if (*i == '\\') {
			if (i[1] != '"' && i[1] != '\\')
				return false;
			i++;
		}
	}
	i++;
	if (*i && !is_blank(*i))
		return false;
	*in = i;
	*out = o;
	return true;
}

int ctl_split(char *line, char **argv, int max)
{
	char *in = line, *out = line; /* words shrink as they are decoded: out never passes in */
	int argc = 0;

	if (has_ctl(line))
		return -1;
	for (;;) {
		while (is_blank(*in))
			in++;
		if (!*in)
			return argc;
		if (argc == max)
			return -1;
		argv[argc++] = out;
		if (*in == '"') {
			if (!unquote(&in, &out))
				return -1;
		} else {
			while (*in && !is_blank(*in))
				*out++ = *in++;
		}
		if (*in)
			in++; /* the blank after the word, before its NUL can land there */
		*out++ = '\0';
	}
}

static bool needs_quotes(const char *w)
{
	return !*w || strpbrk(w, " \t\"\\");
}

/* Its length on the line: quoted, a backslash before each quote and backslash. */
static size_t quoted_len(const char *w, bool quote)
{
	size_t n = strlen(w);

	for (; quote && *w; w++)
		n += *w == '"' || *w == '\\';
	return quote ? n + 2 : n;
}

int ctl_join(char *out, size_t cap, int argc, char *const *argv)
{
	size_t n = 0;

	for (int i = 0; i < argc; i++) {
		bool quote = needs_quotes(argv[i]);
		if (has_ctl(argv[i]))
			return -1;
		if ((i ? 1 : 0) + quoted_len(argv[i], quote) >= cap - n) /* and the NUL */
			return -1;
		if (i)
			out[n++] = ' ';
		if (quote)
			out[n++] = '"';
		for (const char *p = argv[i]; *p; p++) {
			if (quote && (*p == '"' || *p == '\\'))
				out[n++] = '\\';
			out[n++] = *p;
		}
		if (quote)
			out[n++] = '"';
	}
	if (n >= cap)
		return -1; /* cap 0 */
	out[n] = '\0';
	return (int)n;
}

static void client_free(struct ctl_client *c)
{
	struct ctl_server *s = c->srv;

	for (struct ctl_client **pp = &s->clients; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	s->n_clients--;
	loop_io_del(s->loop, &c->io);
	loop_timer_cancel(s->loop, &c->timer);
	close(c->io.fd);
	jw_free(&c->reply);
	free(c);
}

static void client_write(struct ctl_client *c)
{
	while (c->sent < c->reply.len) {
		ssize_t n = send(c->io.fd, c->reply.buf + c->sent, c->reply.len - c->sent, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			break;
		}
		c->sent += (size_t)n;
	}
	client_free(c);
}

static void client_dispatch(struct ctl_client *c)
{
	char *argv[CTL_MAX_ARGS];
	const char *err = NULL;
	struct jw body;
	int argc;

	c->req[c->req_len] = '\0';
	char *nl = strchr(c->req, '\n');
	if (nl)
		*nl = '\0';
	jw_init(&body);
	argc = ctl_split(c->req, argv, CTL_MAX_ARGS);
	if (argc <= 0)
		err = "empty or malformed request";
	else if (c->srv->handler(c->srv->arg, argc, argv, &body, &err))
		err = err ? err : "request refused";
	if (!err && body.oom)
		err = "out of memory";

	jw_init(&c->reply);
	if (err)
		jw_printf(&c->reply, "ERR %s\n%s", err, body.buf ? body.buf : "");
	else
		jw_printf(&c->reply, "OK\n%s", body.buf ? body.buf : "");
	jw_free(&body);
	if (c->reply.oom) {
		client_free(c);
		return;
	}
	c->replying = true;
	if (loop_io_mod(c->srv->loop, &c->io, EPOLLOUT)) {
		client_free(c);
		return;
	}
	client_write(c);
}

static void client_cb(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct ctl_client *c = container_of(io, struct ctl_client, io);
	(void)loop;

	if (c->replying) {
		client_write(c);
		return;
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	ssize_t n = read(io->fd, c->req + c->req_len, CTL_REQUEST_MAX - c->req_len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_free(c);
		return;
	}
	c->req_len += (size_t)n;
	if (memchr(c->req, '\n', c->req_len)) {
		client_dispatch(c);
		return;
	}
	if (c->req_len == CTL_REQUEST_MAX) {
		jw_init(&c->reply);
		jw_printf(&c->reply, "ERR request longer than %d bytes\n", CTL_REQUEST_MAX);
		c->replying = true;
		if (loop_io_mod(c->srv->loop, &c->io, EPOLLOUT))
			client_free(c);
		else
			client_write(c);
	}
}

static void client_timeout(struct loop *loop, struct loop_timer *t)
{
	(void)loop;
	client_free(container_of(t, struct ctl_client, timer));
}

static void server_resume(struct loop *loop, struct loop_timer *t)
{
	struct ctl_server *s = container_of(t, struct ctl_server, resume);

	if (loop_io_mod(loop, &s->io, EPOLLIN))
		log_error("control socket: cannot watch it again");
}

static void server_cb(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct ctl_server *s = container_of(io, struct ctl_server, io);
	(void)events;

	for (;;) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			(void)loop_accept_pause(loop, io, &s->resume, errno);
			return;
		}
		if (s->n_clients >= CTL_MAX_CLIENTS) {
			close(fd);
			continue;
		}
		struct ctl_client *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			return;
		}
		c->srv = s;
		loop_timer_init(&c->timer, client_timeout);
		if (loop_io_add(loop, &c->io, fd, EPOLLIN, client_cb)) {
			close(fd);
			free(c);
			continue;
		}
		c->next = s->clients;
		s->clients = c;
		s->n_clients++;
		if (loop_timer_arm(loop, &c->timer, CTL_TIMEOUT_MS))
			client_free(c);
	}
}

/* mkdir -p for the socket's directory. */
static int make_parent_dirs(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];

	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

struct ctl_server *ctl_server_new(struct loop *loop, const char *path, ctl_handler h, void *arg)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct ctl_server *s;
	int fd, err;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_error("control socket path too long: %s", path);
		return NULL;
	}
	strcpy(sun.sun_path, path);
	if ((err = make_parent_dirs(path))) {
		log_error("control socket %s: cannot create its directory: %s", path, strerror(-err));
		return NULL;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	/* The caller holds the lock, so a socket file left here belongs to a dead daemon. */
	unlink(path);
	mode_t old = umask(0077);
	err = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (err < 0 || listen(fd, 16) < 0) {
		log_error("control socket %s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->path = strdup(path)) || loop_io_add(loop, &s->io, fd, EPOLLIN, server_cb)) {
		if (s)
			free(s->path);
		free(s);
		close(fd);
		unlink(path);
		return NULL;
	}
	s->loop = loop;
	s->handler = h;
	s->arg = arg;
	loop_timer_init(&s->resume, server_resume);
	return s;
}

void ctl_server_free(struct ctl_server *s)
{
	if (!s)
		return;
	while (s->clients)
		client_free(s->clients);
	loop_timer_cancel(s->loop, &s->resume);
	loop_io_del(s->loop, &s->io);
	close(s->io.fd);
	unlink(s->path);
	free(s->path);
	free(s);
}
