/*
 * Two IKE engines in one process: gwA (static initiator) and gwB (dynamic
 * responder) over an in-memory pipe, for the tests/unit/test_ike_*.c suites.
 * The pipe queues what each side sends and a pump delivers it in order. The
 * engines' CHILD SAs go to the test's child_sa_ops: its own, or ikeh_rec_ops,
 * a dataplane that records each install and removal with its keys.
 */
#ifndef IKETCP_TESTS_IKE_HARNESS_H
#define IKETCP_TESTS_IKE_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ike/ike.h"
#include "ike/message.h"

struct config;
struct loop;

#define IKEH_MAX_Q 64
#define IKEH_REC_MAX 16     /* CHILD SAs one side may install in one test */
#define IKEH_KEYMAT_MAX 160 /* one direction's keymat (AEAD: key | salt) */

struct ikeh_msg {
	int to;                /* 0: gwA, 1: gwB */
	struct tcp_conn *conn; /* the handle it arrives on */
	size_t len;
	uint8_t buf[IKE_MSG_MAX_LEN];
};

/* One CHILD SA as ikeh_rec_ops.install received it: its SPIs and a copy of its keys. */
struct ikeh_rec_sa {
	bool present;                      /* installed and not removed */
	uint32_t spi_in, spi_out;
	unsigned installed_at, removed_at; /* ikeh_pipe.rec_seq at each event: their order across both sides */
	uint8_t km_in[IKEH_KEYMAT_MAX], km_out[IKEH_KEYMAT_MAX];
	size_t km_in_len, km_out_len;      /* equal: both directions use one suite */
};

/* One side's recording dataplane: every SA it was given, removed ones included, in install order. */
struct ikeh_rec {
	struct ikeh_rec_sa sa[IKEH_REC_MAX];
	unsigned n;                        /* entries used in sa[] */
	unsigned installs, removes;
};

struct ikeh_pipe {
	struct loop *loop;
	struct ike *ike[2];        /* gwA, gwB */
	struct config *conf[2];    /* their configurations, owned (a test may swap in another) */
	struct tcp_conn *conn[2];  /* gwA's outbound handle, gwB's inbound one */
	struct ikeh_msg *q[IKEH_MAX_Q];
	unsigned qn;
	unsigned max_q;  /* 0: IKEH_MAX_Q */
	int guard;       /* pump rounds before "messages kept flowing"; 0: 100 */
	bool pending_up; /* gwA's connect() completes on the next pump */
	bool a_down;     /* gwA's stream is cut: a pending connect does not complete */
	bool hold_queue; /* the pump leaves messages queued (tests that replay by hand) */
	unsigned connects;
	unsigned updates[2];                /* child_sa_ops.update_conn calls, per side */
	struct tcp_conn *last_update_conn[2];
	struct ikeh_rec rec[2];             /* ikeh_rec_ops, per side; ikeh_open clears them */
	unsigned rec_seq;                   /* ikeh_rec events so far, both sides */
};

/* One gateway's tunnel "to-hq" (gwA) or "branch" (gwB); NULL fields take the default. */
struct ikeh_gw {
	bool initiator;
	bool ike_version;          /* write "set ike-version 2" */
	const char *transport;     /* tcp */
	const char *auth;          /* authentication lines; NULL: psk with .psk */
	const char *psk;           /* "correct horse battery staple" */
	const char *localid, *peerid; /* NULL: not set */
	const char *proposal;      /* aes128gcm-prfsha256 */
	const char *dhgrp;         /* 19 */
	const char *p1_extra;      /* more phase1 lines */
	const char *p2proposal;    /* aes128gcm */
	const char *src, *dst;     /* gwA 10.1.0.0/24 <-> gwB 10.2.0.0/24 */
	const char *p2_extra;      /* more phase2 lines */
	const char *after_p2;      /* more phase2 entries after the tunnel's */
};

#define IKEH_LOCALID(initiator) ((initiator) ? "branch.example" : "hq.example")
#define IKEH_PEERID(initiator) ((initiator) ? "hq.example" : "branch.example")

/* ---- configuration ------------------------------------------------------------ */
struct config *ikeh_conf_load(const char *text);
struct config *ikeh_gw_conf(const struct ikeh_gw *g);

/* ---- the engines -------------------------------------------------------------- */
/* Clear the stats, make the loop and both engines (io's arg becomes 0 / 1), configure gwB then gwA.
 * conn_a / conn_b: the handles gwA's and gwB's messages arrive on. Takes a and b. */
void ikeh_open(struct ikeh_pipe *p, struct tcp_conn *conn_a, struct tcp_conn *conn_b, struct config *a,
	       struct config *b, const struct ike_io *io, const struct child_sa_ops *ops);
void ikeh_close(struct ikeh_pipe *p);

/* The tunnel's status object as iketcpctl shows it (ike_status_tunnel, detailed); free() it. */
char *ikeh_status_json(struct ike *ike, const char *name);

/* ---- the pipe ----------------------------------------------------------------- */
struct ikeh_msg *ikeh_enqueue(struct ikeh_pipe *p, int to, struct tcp_conn *c, const uint8_t *buf, size_t len);
void ikeh_deliver(struct ikeh_pipe *p);   /* the first queued message only */
void ikeh_pump(struct ikeh_pipe *p);      /* until quiet; gwA's stream comes up first */
void ikeh_queue_clear(struct ikeh_pipe *p);
void ikeh_run_for(struct ikeh_pipe *p, unsigned ms); /* the real loop (timers) for ms, pumping */

/* ---- callbacks for the common case (the pipe opened last) ------------------------ */
int ikeh_side(void *arg);
void ikeh_set4(struct sockaddr_storage *ss, const char *a, uint16_t port);
/* gwA a_addr:a_port, gwB 203.0.113.2:443, seen from side. */
void ikeh_addrs(int side, const char *a_addr, uint16_t a_port, struct sockaddr_storage *local,
		struct sockaddr_storage *peer);
struct tcp_conn *ikeh_io_connect(void *arg, const struct sockaddr *peer, socklen_t len, bool tls);
void ikeh_io_close(void *arg, struct tcp_conn *c);
void ikeh_io_hold(void *arg, struct tcp_conn *c, bool carries);
void ikeh_io_addrs(void *arg, struct tcp_conn *c, struct sockaddr_storage *local, struct sockaddr_storage *peer);
void ikeh_dp_update(void *arg, uint32_t spi_in, struct tcp_conn *c); /* counts into updates[] */
void ikeh_dp_remove(void *arg, uint32_t spi_in);
int ikeh_dp_counters(void *arg, uint32_t spi_in, struct child_sa_counters *out);

/* ---- the recording dataplane (the pipe opened last, rec[side]) ---------------------- */
/* Records a copy of the SA; fails the test on an SPI already present, a full table or odd keymat sizes. */
int ikeh_rec_install(void *arg, const struct child_sa *sa);
/* Marks the SA removed (its entry stays); fails the test on an SPI not present. */
void ikeh_rec_remove(void *arg, uint32_t spi_in);
/* { ikeh_rec_install, ikeh_dp_update, ikeh_rec_remove, ikeh_dp_counters } */
extern const struct child_sa_ops ikeh_rec_ops;

/* The present SA with this inbound SPI, or NULL. */
struct ikeh_rec_sa *ikeh_rec_find(struct ikeh_rec *r, uint32_t spi_in);
unsigned ikeh_rec_present(const struct ikeh_rec *r); /* SAs installed and not removed */

#endif
