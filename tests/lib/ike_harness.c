/* Two IKE engines in one process over an in-memory pipe: see ike_harness.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conf/conf.h"
#include "iketcp/json.h"
#include "iketcp/stats.h"
#include "loop.h"
#include "tests/lib/ike_harness.h"

/* The pipe the callbacks serve, and the two copies of the io (arg 0: gwA, 1: gwB). */
static struct ikeh_pipe *cur;
static struct ike_io io_side[2];

/* ---- configuration ------------------------------------------------------------ */

struct config *ikeh_conf_load(const char *text)
{
	struct config *c = NULL;
	struct conf_diag d;
	int err = conf_load_string("test.conf", text, strlen(text), &c, &d);
	for (size_t i = 0; i < d.n; i++)
		print_error("%s\n", d.lines[i]);
	conf_diag_free(&d);
	assert_int_equal(err, 0);
	return c;
}

#define OR(s, dflt) ((s) ? (s) : (dflt))

struct config *ikeh_gw_conf(const struct ikeh_gw *g)
{
	static char text[8192];
	char auth[512], lid[160] = "", pid[160] = "";
	bool i = g->initiator;
	int len;

	if (g->auth)
		snprintf(auth, sizeof(auth), "%s", g->auth);
	else
		snprintf(auth, sizeof(auth), "        set authmethod psk\n        set psksecret \"%s\"\n",
			 OR(g->psk, "correct horse battery staple"));
	if (g->localid)
		snprintf(lid, sizeof(lid), "        set localid \"%s\"\n", g->localid);
	if (g->peerid)
		snprintf(pid, sizeof(pid), "        set peerid \"%s\"\n", g->peerid);
	len = snprintf(text, sizeof(text),
		       "config system settings\n"
		       "    set ike-tcp-service enable\n"
		       "    set ike-tls-service disable\n"
		       "    set ike-tcp-port 443\n"
		       "    set inner-interface \"lan0\"\n"
		       "end\n"
		       "config vpn ipsec phase1-interface\n"
		       "    edit \"%s\"\n"
		       "        set interface \"wan0\"\n"
		       "%s"
		       "        %s\n"
		       "        set transport %s\n"
		       "%s%s%s"
		       "        set proposal %s\n"
		       "        set dhgrp %s\n"
		       "%s"
		       "    next\n"
		       "end\n"
		       "config vpn ipsec phase2-interface\n"
		       "    edit \"%s\"\n"
		       "        set phase1name \"%s\"\n"
		       "        set proposal %s\n"
		       "        set src-subnet %s\n"
		       "        set dst-subnet %s\n"
		       "%s"
		       "    next\n"
		       "%s"
		       "end\n",
		       i ? "to-hq" : "branch", g->ike_version ? "        set ike-version 2\n" : "",
		       i ? "set remote-gw 203.0.113.2" : "set type dynamic", OR(g->transport, "tcp"), auth, lid, pid,
		       OR(g->proposal, "aes128gcm-prfsha256"), OR(g->dhgrp, "19"), OR(g->p1_extra, ""),
		       i ? "to-hq-lan" : "branch-lan", i ? "to-hq" : "branch", OR(g->p2proposal, "aes128gcm"),
		       OR(g->src, i ? "10.1.0.0 255.255.255.0" : "10.2.0.0 255.255.255.0"),
		       OR(g->dst, i ? "10.2.0.0 255.255.255.0" : "10.1.0.0 255.255.255.0"), OR(g->p2_extra, ""),
		       OR(g->after_p2, ""));
	assert_true(len > 0 && (size_t)len < sizeof(text));
	return ikeh_conf_load(text);
}

/* ---- the engines -------------------------------------------------------------- */

void ikeh_open(struct ikeh_pipe *p, struct tcp_conn *conn_a, struct tcp_conn *conn_b, struct config *a,
	       struct config *b, const struct ike_io *io, const struct child_sa_ops *ops)
{
	cur = p;
	memset(&stats, 0, sizeof(stats));
	p->conn[0] = conn_a;
	p->conn[1] = conn_b;
	p->conf[0] = a;
	p->conf[1] = b;
	memset(p->rec, 0, sizeof(p->rec));
	p->rec_seq = 0;
	p->loop = loop_new();
	assert_non_null(p->loop);
	for (int i = 0; i < 2; i++) {
		io_side[i] = *io;
		io_side[i].arg = (void *)(intptr_t)i;
		p->ike[i] = ike_new(p->loop, &io_side[i], ops, (void *)(intptr_t)i);
		assert_non_null(p->ike[i]);
	}
	/* The responder first: it must be listening when the initiator starts. */
	assert_int_equal(ike_configure(p->ike[1], b), 0);
	assert_int_equal(ike_configure(p->ike[0], a), 0);
}

void ikeh_close(struct ikeh_pipe *p)
{
	ikeh_queue_clear(p);
	for (int i = 0; i < 2; i++) {
		ike_free(p->ike[i]);
		conf_free(p->conf[i]);
	}
	loop_free(p->loop);
	p->loop = NULL;
	cur = NULL;
}

char *ikeh_status_json(struct ike *ike, const char *name)
{
	struct jw w;
	jw_init(&w);
	jw_obj_open(&w, NULL);
	ike_status_tunnel(ike, name, &w, true);
	jw_obj_close(&w);
	assert_false(w.oom);
	char *s = strndup(w.buf, w.len);
	assert_non_null(s);
	jw_free(&w);
	return s;
}

/* ---- the pipe ----------------------------------------------------------------- */

struct ikeh_msg *ikeh_enqueue(struct ikeh_pipe *p, int to, struct tcp_conn *c, const uint8_t *buf, size_t len)
{
	assert_true(len <= IKE_MSG_MAX_LEN);
	struct ikeh_msg *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	m->to = to;
	m->conn = c;
	m->len = len;
	memcpy(m->buf, buf, len);
	assert_true(p->qn < (p->max_q ? p->max_q : IKEH_MAX_Q));
	p->q[p->qn++] = m;
	return m;
}

void ikeh_deliver(struct ikeh_pipe *p)
{
	assert_true(p->qn > 0);
	struct ikeh_msg *m = p->q[0];
	memmove(p->q, p->q + 1, --p->qn * sizeof(p->q[0]));
	ike_input(p->ike[m->to], m->conn, m->buf, m->len);
	free(m);
}

void ikeh_pump(struct ikeh_pipe *p)
{
	for (int guard = 0; guard < (p->guard ? p->guard : 100); guard++) {
		if (p->pending_up && !p->a_down) {
			p->pending_up = false;
			ike_conn_up(p->ike[0], p->conn[0]);
			continue;
		}
		if (p->hold_queue || p->qn == 0)
			return;
		ikeh_deliver(p);
	}
	fail_msg("messages kept flowing");
}

void ikeh_queue_clear(struct ikeh_pipe *p)
{
	while (p->qn)
		free(p->q[--p->qn]);
}

void ikeh_run_for(struct ikeh_pipe *p, unsigned ms)
{
	uint64_t end = loop_now_ms(p->loop) + ms;
	while (loop_now_ms(p->loop) < end) {
		(void)loop_once(p->loop, 20);
		ikeh_pump(p);
	}
}

/* ---- callbacks ---------------------------------------------------------------- */

int ikeh_side(void *arg)
{
	return (int)(intptr_t)arg;
}

void ikeh_set4(struct sockaddr_storage *ss, const char *a, uint16_t port)
{
	struct sockaddr_in *s4 = (void *)ss;
	memset(ss, 0, sizeof(*ss));
	s4->sin_family = AF_INET;
	s4->sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, a, &s4->sin_addr), 1);
}

void ikeh_addrs(int side, const char *a_addr, uint16_t a_port, struct sockaddr_storage *local,
		struct sockaddr_storage *peer)
{
	ikeh_set4(side ? local : peer, "203.0.113.2", 443);
	ikeh_set4(side ? peer : local, a_addr, a_port);
}

/* Only gwA (static) connects; the stream comes up on the next pump. */
struct tcp_conn *ikeh_io_connect(void *arg, const struct sockaddr *peer, socklen_t len, bool tls)
{
	(void)peer;
	(void)len;
	(void)tls;
	assert_int_equal(ikeh_side(arg), 0);
	cur->pending_up = true;
	cur->connects++;
	return cur->conn[0];
}

void ikeh_io_close(void *arg, struct tcp_conn *c)
{
	(void)arg;
	(void)c;
}

void ikeh_io_hold(void *arg, struct tcp_conn *c, bool carries)
{
	(void)arg;
	(void)c;
	(void)carries;
}

/* gwA 198.51.100.1:40000 behind nothing, gwB 203.0.113.2:443. */
void ikeh_io_addrs(void *arg, struct tcp_conn *c, struct sockaddr_storage *local, struct sockaddr_storage *peer)
{
	(void)c;
	ikeh_addrs(ikeh_side(arg), "198.51.100.1", 40000, local, peer);
}

void ikeh_dp_update(void *arg, uint32_t spi_in, struct tcp_conn *c)
{
	(void)spi_in;
	cur->updates[ikeh_side(arg)]++;
	cur->last_update_conn[ikeh_side(arg)] = c;
}

void ikeh_dp_remove(void *arg, uint32_t spi_in)
{
	(void)arg;
	(void)spi_in;
}

int ikeh_dp_counters(void *arg, uint32_t spi_in, struct child_sa_counters *out)
{
	(void)arg;
	(void)spi_in;
	memset(out, 0, sizeof(*out));
	return 0;
}

/* ---- the recording dataplane ---------------------------------------------------- */

struct ikeh_rec_sa *ikeh_rec_find(struct ikeh_rec *r, uint32_t spi_in)
{
	for (unsigned i = 0; i < r->n; i++)
		if (r->sa[i].present && r->sa[i].spi_in == spi_in)
			return &r->sa[i];
	return NULL;
}

unsigned ikeh_rec_present(const struct ikeh_rec *r)
{
	unsigned k = 0;
	for (unsigned i = 0; i < r->n; i++)
		k += r->sa[i].present;
	return k;
}

int ikeh_rec_install(void *arg, const struct child_sa *sa)
{
	struct ikeh_rec *r = &cur->rec[ikeh_side(arg)];
	assert_null(ikeh_rec_find(r, sa->spi_in));
	assert_true(r->n < IKEH_REC_MAX);
	/* The keymat pointers are valid during the call only: keep copies. */
	assert_true(sa->in.keymat_len <= IKEH_KEYMAT_MAX && sa->out.keymat_len == sa->in.keymat_len);
	struct ikeh_rec_sa *d = &r->sa[r->n++];
	d->present = true;
	d->spi_in = sa->spi_in;
	d->spi_out = sa->spi_out;
	d->installed_at = ++cur->rec_seq;
	memcpy(d->km_in, sa->in.keymat, sa->in.keymat_len);
	memcpy(d->km_out, sa->out.keymat, sa->out.keymat_len);
	d->km_in_len = sa->in.keymat_len;
	d->km_out_len = sa->out.keymat_len;
	r->installs++;
	return 0;
}

void ikeh_rec_remove(void *arg, uint32_t spi_in)
{
	struct ikeh_rec *r = &cur->rec[ikeh_side(arg)];
	struct ikeh_rec_sa *d = ikeh_rec_find(r, spi_in);
	assert_non_null(d);
	d->present = false;
	d->removed_at = ++cur->rec_seq;
	r->removes++;
}

const struct child_sa_ops ikeh_rec_ops = { ikeh_rec_install, ikeh_dp_update, ikeh_rec_remove, ikeh_dp_counters };
