/* Transport lifecycle: listeners per the FortiOS rule, TLS contexts, shutdown. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iketcp/log.h"
#include "iketcp/stats.h"
#include "transport/internal.h"

static void listener_resume(struct loop *loop, struct loop_timer *t)
{
	struct listener *l = container_of(t, struct listener, resume);

	if (loop_io_mod(loop, &l->io, EPOLLIN))
		log_error("epoll: cannot watch port %u again", l->port);
}

static void listener_cb(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct listener *l = container_of(io, struct listener, io);
	struct transport *tp = l->tp;
	static struct log_ratelimit rl;
	(void)events;

	for (int i = 0; i < 64; i++) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			int err = errno;
			if (err == EAGAIN || err == EINTR)
				return;
			log_rl(&rl, LOG_LVL_WARN, "accept on port %u: %s", l->port, strerror(err));
			(void)loop_accept_pause(loop, io, &l->resume, err);
			return;
		}
		if (tp->n_conns >= tp->cfg.max_conns) {
			STAT_INC(tcp, refused_limit);
			log_rl(&rl, LOG_LVL_WARN, "connection limit %u reached on port %u: refusing",
			       tp->cfg.max_conns, l->port);
			close(fd);
			continue;
		}
		conn_accepted(tp, fd, l->passthrough);
	}
}

/* A dual-stack listener ([::]:port, IPv4 mapped); plain IPv4 where IPv6 is unavailable. */
static int listen_port(uint16_t port)
{
	int one = 1, zero = 0;
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd >= 0) {
		struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(port),
					  .sin6_addr = IN6ADDR_ANY_INIT };
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 4096) == 0)
			return fd;
		if (errno != EAFNOSUPPORT && errno != EADDRNOTAVAIL) {
			int err = -errno;
			close(fd);
			return err;
		}
		close(fd);
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(port) };
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a4, sizeof(a4)) < 0 || listen(fd, 4096) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static void listener_close(struct transport *tp, struct listener *l)
{
	loop_timer_cancel(tp->loop, &l->resume);
	loop_io_del(tp->loop, &l->io);
	close(l->io.fd);
	l->io.fd = -1;
}

struct transport *transport_new(struct loop *loop, const struct transport_handlers *h)
{
	struct transport *tp = calloc(1, sizeof(*tp));
	if (!tp)
		return NULL;
	tp->loop = loop;
	tp->h = *h;
	return tp;
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The server identity cfg asks for, made but not used yet; *server stays NULL when ours is still it. */
static int tls_prepare(struct transport *tp, const struct transport_config *cfg, struct tls_ctx **server)
{
	*server = NULL;
	if (!cfg->tls || !cfg->tcp)
		return 0;
	if (tp->tls_server && str_eq(tp->cfg.tls_cert, cfg->tls_cert) && str_eq(tp->cfg.tls_key, cfg->tls_key))
		return 0;
	if (tp->tls_server && tp->n_tls_retired == ARRAY_SIZE(tp->tls_retired)) {
		log_error("too many TLS identity changes without a restart");
		return -ENOSPC;
	}
	if (!tp->tls_client && !(tp->tls_client = tls_client_ctx_new()))
		return -ENOMEM;
	*server = tls_server_ctx_new(cfg->tls_cert, cfg->tls_key);
	return *server ? 0 : -EINVAL;
}

/* Once nothing else can fail. Live connections still use the old context: retired, freed at shutdown. */
static void tls_install(struct transport *tp, struct tls_ctx *server)
{
	if (!server)
		return;
	if (tp->tls_server)
		tp->tls_retired[tp->n_tls_retired++] = tp->tls_server;
	tp->tls_server = server;
}

int transport_configure(struct transport *tp, const struct transport_config *cfg)
{
	uint16_t want[MAX_LISTENERS];
	size_t n_want = 0;
	struct tls_ctx *server;
	int err;

	if (cfg->tcp) {
		want[n_want++] = cfg->natt_port;
		if (cfg->ike_tcp_port != cfg->natt_port && cfg->internal_port != cfg->natt_port)
			want[n_want++] = cfg->internal_port;
	}

	err = tls_prepare(tp, cfg, &server);
	if (err)
		return err;

	/* Open what is new first, so a failure leaves the old listeners serving. */
	int fds[MAX_LISTENERS];
	for (size_t i = 0; i < n_want; i++) {
		fds[i] = -1;
		for (size_t j = 0; j < tp->n_listeners; j++)
			if (tp->listeners[j].port == want[i])
				fds[i] = -2; /* keep */
		if (fds[i] == -2)
			continue;
		fds[i] = listen_port(want[i]);
		if (fds[i] < 0) {
			err = fds[i];
			log_error("cannot listen on TCP port %u: %s", want[i], strerror(-err));
			for (size_t k = 0; k < i; k++)
				if (fds[k] >= 0)
					close(fds[k]);
			tls_ctx_free(server);
			return err;
		}
	}
	/* UDP once the TCP ports are ours, before any is given up: a refusal leaves both as they were. */
	tp->cfg.max_conns = cfg->max_conns; /* the UDP path bound, before udp_configure */
	tp->cfg.idle_timeout_s = cfg->idle_timeout_s;
	err = udp_configure(tp, cfg);
	if (err) {
		for (size_t i = 0; i < n_want; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		tls_ctx_free(server);
		return err;
	}
	tls_install(tp, server); /* a refused configuration keeps the identity too */

	struct listener next[MAX_LISTENERS];
	for (size_t i = 0; i < n_want; i++) {
		struct listener *l = &next[i];
		memset(l, 0, sizeof(*l));
		loop_timer_init(&l->resume, listener_resume);
		l->tp = tp;
		l->port = want[i];
		/* FortiOS admin coexistence: only the steered internal port sees admin traffic. */
		l->passthrough = want[i] == cfg->internal_port && cfg->admin_sport == cfg->ike_tcp_port &&
				 cfg->ike_tcp_port != cfg->natt_port;
		l->io.fd = fds[i];
		for (size_t j = 0; j < tp->n_listeners; j++)
			if (tp->listeners[j].port == want[i] && fds[i] == -2) {
				loop_io_del(tp->loop, &tp->listeners[j].io);
				l->io.fd = tp->listeners[j].io.fd;
				tp->listeners[j].io.fd = -1;
			}
	}
	for (size_t j = 0; j < tp->n_listeners; j++) {
		loop_timer_cancel(tp->loop, &tp->listeners[j].resume); /* the slot is reused; kept ones resume */
		if (tp->listeners[j].io.fd >= 0) {
			log_info("no longer listening on TCP port %u", tp->listeners[j].port);
			listener_close(tp, &tp->listeners[j]);
		}
	}
	tp->n_listeners = n_want;
	for (size_t i = 0; i < n_want; i++) {
		tp->listeners[i] = next[i];
		struct listener *l = &tp->listeners[i];
		if (loop_io_add(tp->loop, &l->io, l->io.fd, EPOLLIN, listener_cb))
			log_error("epoll: cannot watch port %u", l->port);
		if (fds[i] >= 0)
			log_info("listening on TCP port %u%s%s", l->port, cfg->tls ? " (TLS 1.3 or plain)" : "",
				 l->passthrough ? ", non-IKE connections passed to the admin service" : "");
	}

	free((char *)tp->cfg.tls_cert);
	free((char *)tp->cfg.tls_key);
	tp->cfg = *cfg;
	/* The paths are owned by the caller's config, which is replaced on reload: keep no pointers. */
	tp->cfg.tls_cert = tp->cfg.tls_key = NULL;
	if (cfg->tls_cert)
		tp->cfg.tls_cert = strdup(cfg->tls_cert);
	if (cfg->tls_key)
		tp->cfg.tls_key = strdup(cfg->tls_key);
	return 0;
}

const char *transport_tls_fingerprint(const struct transport *tp)
{
	return tp->tls_server ? tls_ctx_fingerprint(tp->tls_server) : NULL;
}

void transport_free(struct transport *tp)
{
	if (!tp)
		return;
	while (tp->conns)
		transport_conn_close(tp->conns);
	udp_free(tp);
	for (size_t i = 0; i < tp->n_listeners; i++)
		if (tp->listeners[i].io.fd >= 0)
			listener_close(tp, &tp->listeners[i]);
	tls_ctx_free(tp->tls_server);
	tls_ctx_free(tp->tls_client);
	for (size_t i = 0; i < tp->n_tls_retired; i++)
		tls_ctx_free(tp->tls_retired[i]);
	transport_reap(tp, UINT64_MAX);
	free((char *)tp->cfg.tls_cert);
	free((char *)tp->cfg.tls_key);
	free(tp);
}
