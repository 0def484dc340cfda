/*
 * The engine's state: tunnels (one per phase1 entry), IKE SAs and their
 * CHILD SAs, and the helpers the exchange files (ike_init.c, ike_auth.c,
 * ike_info.c) share with engine.c. Internal to daemon/ike.
 */
#ifndef IKETCP_IKE_SA_H
#define IKETCP_IKE_SA_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "dataplane/child_sa.h"
#include "ike/cookie.h"
#include "ike/crypto.h"
#include "ike/id.h"
#include "ike/ike.h"
#include "ike/message.h"
#include "ike/rules.h"
#include "iketcp/addr.h"
#include "iketcp/log.h"
#include "loop.h"

enum {
	IKE_NONCE_LEN = 32,
	IKE_MAX_CHILDREN = 5,           /* 4 CHILD SAs, and the room a rekey needs for the new one next to the old */
	IKE_MAX_SAS = 4096,             /* half-open and established, all tunnels */
	IKE_MAX_HALF_OPEN = 1024,       /* responder SAs waiting for IKE_AUTH, all peers */
	IKE_RESPONSE_TIMEOUT_MS = 30000, /* RFC 9329 6.2: no retransmits over TCP */
	IKE_NAME_MAX = 64,
	IKE_COOKIE_MAX = 64,             /* 2.6: 1 to 64 octets */
	IKE_RETRY_MIN_MS = 5000,         /* re-initiation backoff of a static auto-negotiate tunnel */
	IKE_RETRY_MAX_MS = 60000,
	IKE_RTX_FIRST_MS = 1000,         /* UDP only: requests are sent again after 1, 2, 4, 8, 16 s */
	IKE_RTX_MAX = 5,                 /* then one more wait of 16 s, and the exchange has failed */
	IKE_TRANSPORT_WHY_MAX = 96,
};

enum ike_sa_state {
	SA_CONNECTING,   /* initiator: waiting for the stream */
	SA_INIT_SENT,    /* initiator: IKE_SA_INIT request out */
	SA_INIT_DONE,    /* responder: IKE_SA_INIT answered, waiting for IKE_AUTH */
	SA_AUTH_SENT,    /* initiator: IKE_AUTH request out */
	SA_ESTABLISHED,
	SA_DELETING,     /* our DELETE is out */
};

enum ike_child_rekey {
	CHILD_LIVE,       /* carries traffic; rekeyed at rekey_ms */
	CHILD_REKEYING,   /* our CREATE_CHILD_SA for it is out */
	CHILD_RETIRING,   /* replaced: our DELETE for it is out, removed when answered */
	CHILD_REPLACED,   /* the peer rekeyed it: removed when the peer's DELETE comes */
};

struct ike_child {
	bool used;
	char phase2[IKE_NAME_MAX];
	uint32_t spi_in, spi_out;
	struct esp_suite suite;
	bool esn;
	char proposal[48];
	/* rekeying (ike_child.c) */
	size_t p2;                       /* index of its phase2 entry */
	uint64_t rekey_ms;               /* loop time of our rekey; 0: none */
	uint8_t rekey;                   /* enum ike_child_rekey */
	uint32_t peer_new_spi;           /* 2.8.1: the SA the peer's rekey of this one made (our spi_in) */
	uint8_t peer_nmin[256];          /* and the lower nonce of that exchange */
	size_t peer_nmin_len;
};

/* CREATE_CHILD_SA's own nonces and, with PFS, its g^ir (2.17); NULL: IKE_AUTH's CHILD SA. */
struct ike_child_nonces {
	const uint8_t *ni, *nr;
	size_t ni_len, nr_len;
	const struct secret *gir;
	bool initiator;                  /* we initiated the CREATE_CHILD_SA exchange */
};

struct ike_tunnel;

struct ike_sa {
	struct ike *ike;
	struct ike_sa *next;
	struct ike_tunnel *tun;          /* NULL: responder not yet authenticated */
	enum ike_sa_state state;
	bool initiator;
	uint64_t spi_i, spi_r;
	struct tcp_conn *conn;           /* NULL while an inbound stream is gone */
	bool held;

	struct ike_suite suite;          /* suite.ke: the group */
	struct ike_dh *dh;
	uint8_t ni[256], nr[256];
	size_t ni_len, nr_len;
	uint8_t *init_req, *init_rsp;    /* for AUTH's signed octets (2.15) */
	size_t init_req_len, init_rsp_len;
	struct ike_sa_keys keys;
	bool have_keys;

	uint32_t my_msg_id;              /* our next request */
	bool req_out;                    /* window 1: a request of ours is waiting */
	uint8_t req_exchange;
	uint8_t *last_req;               /* our outstanding request: resent on a new stream (RFC 9329 6.1),
					  * retransmitted over UDP (2.1) */
	uint8_t rtx;                     /* UDP: retransmissions of the outstanding request so far */
	size_t last_req_len;
	uint64_t req_sent_ms;
	uint32_t peer_msg_id;            /* the peer's next request */
	uint8_t *last_rsp;               /* our answer to peer_msg_id - 1 */
	size_t last_rsp_len;
	struct loop_timer timer;

	/* initiator, between IKE_AUTH request and response */
	uint32_t child_spi;              /* offered inbound SPI */
	size_t child_p2;                 /* index of the phase2 offered */
	bool child_offered;
	uint8_t ke_retries;              /* INVALID_KE_PAYLOAD answers followed */
	uint8_t cookie[IKE_COOKIE_MAX];  /* 2.6: the responder's N(COOKIE), first in the retried request */
	uint8_t cookie_len, cookie_tries;

	/* liveness (dpd.c) */
	struct loop_timer dpd_timer;
	uint64_t last_rx_ms;             /* last authenticated IKE message or ESP packet from the peer */
	uint64_t esp_in_mark, esp_out_mark; /* CHILD SA packet counters at the last look */
	uint8_t dpd_misses;

	/* CHILD SA rekeying (ike_child.c): our one CREATE_CHILD_SA in flight */
	struct loop_timer rekey_timer;
	bool rk_out;
	uint32_t rk_old_spi;             /* spi_in of the child being rekeyed; 0: a new CHILD SA */
	uint32_t rk_new_spi;             /* offered inbound SPI */
	size_t rk_p2;
	uint8_t rk_ni[IKE_NONCE_LEN];
	struct ike_dh *rk_dh;            /* PFS: our KEi's private key */
	uint16_t rk_group;               /* the group of the next KEi (after INVALID_KE_PAYLOAD: the asked one) */
	uint8_t rk_ke_retries;

	/* IKE SA rekeying (ike_rekey.c, 1.3.2, 2.18, 2.8.2); rk_ni, rk_dh, rk_group and
	 * rk_ke_retries above serve it too (one CREATE_CHILD_SA in flight) */
	struct loop_timer ike_rekey_timer;
	bool ike_rk_out;                 /* our CREATE_CHILD_SA rekeying this IKE SA is out */
	uint64_t ike_rk_spi;             /* our SPI for the new IKE SA */
	bool rekeyed;                    /* replaced by a new IKE SA: only its DELETE is left */
	uint64_t peer_rk_spi_i, peer_rk_spi_r; /* 2.8.2: the SA the peer's rekey of this one made */
	uint8_t peer_rk_nmin[256];       /* and the lowest nonce of that exchange */
	size_t peer_rk_nmin_len;

	uint64_t established_ms;
	struct sockaddr_storage local, remote;
	struct ike_id peer_id;           /* for status: at most IKE_ID_MAX octets of it */
	uint8_t peer_id_digest[32];      /* SHA-256 of its type and whole data: who it is (INITIAL_CONTACT) */
	struct ike_child child[IKE_MAX_CHILDREN];
};

struct ike_tunnel {
	char name[IKE_NAME_MAX];
	const struct conf_phase1 *p1;    /* refreshed by ike_configure */
	struct tcp_conn *conn;           /* our outbound stream (static initiator) */
	bool conn_up;
	bool tls;
	bool present;                    /* still in the configuration */
	struct ike *ike;
	struct loop_timer retry;         /* re-initiation after a failure (auto-negotiate) */
	/* transport auto (RFC 9329 5.1): UDP first, TCP after auto-transport-threshold without an answer */
	struct loop_timer auto_timer;
	bool auto_tcp;                   /* UDP got no answer: TCP from now on */
	char transport_why[IKE_TRANSPORT_WHY_MAX];
	uint32_t backoff_ms;             /* next delay: IKE_RETRY_MIN_MS doubling to IKE_RETRY_MAX_MS */
};

struct ike {
	struct loop *loop;
	struct ike_io io;
	struct child_sa_ops child;
	void *child_arg;
	const struct config *conf;
	struct ike_tunnel **tun;          /* each allocated: SAs point at them */
	size_t ntun;
	bool freeing;                     /* ike_free: no calls into the dataplane */
	struct ike_sa *sas;
	size_t nsas;
	struct log_ratelimit rl_auth, rl_drop;
	struct ike_cookie_state cookie;   /* cookie.c */
	unsigned cookie_threshold;        /* half-open SAs before IKE_SA_INIT needs a cookie */
	struct ike_sa *alive_sa;          /* ike_peer_alive's one-entry cache */
	/* per-message scratch: never allocated on the packet path */
	struct ike_msg msg;
	uint8_t plain[IKE_MSG_MAX_LEN];
	uint8_t inner[IKE_MSG_MAX_LEN];
	uint8_t out[IKE_MSG_MAX_LEN];
};

/* sa.c */
struct ike_sa *ike_sa_new(struct ike *ike, bool initiator, struct tcp_conn *c);
void ike_sa_free(struct ike_sa *sa);           /* unlinks, removes children, wipes */
struct ike_sa *ike_sa_find(struct ike *ike, uint64_t spi_i, uint64_t spi_r, bool we_initiated);
/* The responder SA an IKE_SA_INIT request from this stream created (retransmits). */
struct ike_sa *ike_sa_find_half_open(struct ike *ike, uint64_t spi_i, struct tcp_conn *c);
uint64_t ike_sa_new_spi(struct ike *ike);
uint32_t ike_child_new_spi(struct ike *ike);
void ike_sa_remove_children(struct ike_sa *sa);
struct ike_child *ike_sa_child_add(struct ike_sa *sa);
struct ike_tunnel *ike_tunnel_find(struct ike *ike, const char *name);
/* The response deadline of a request just sent (over UDP: its first retransmission). */
void ike_sa_arm_timer(struct ike_sa *sa);
bool ike_sa_datagram(const struct ike_sa *sa); /* its IKE messages travel in UDP datagrams */
void ike_spi_bytes(uint64_t spi, uint8_t out[8]);
uint8_t *ike_memdup(const uint8_t *p, size_t n); /* a malloc'd copy, NULL when out of memory */
/* 2.8.1, 2.8.2: nonces compared as octet strings, a prefix being lower; ike_nonce_min: the lower one. */
int ike_nonce_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
void ike_nonce_min(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, const uint8_t **m, size_t *mlen);
void ike_sa_established(struct ike_sa *sa);

/* engine.c */
/* An unsealed message (IKE_SA_INIT), counted. */
int ike_send_plain(struct ike *ike, struct tcp_conn *c, const uint8_t *msg, size_t len);
/* Seal inner behind h and send it; a response is cached for retransmits. */
int ike_send_sealed(struct ike_sa *sa, uint8_t exchange, bool response, uint32_t msg_id,
		    const struct ike_enc *inner);
/* Start a request of ours: inner is ike->inner. */
void ike_inner_begin(struct ike *ike, struct ike_enc *inner);
int ike_request(struct ike_sa *sa, uint8_t exchange, const struct ike_enc *inner);
int ike_answer(struct ike_sa *sa, uint8_t exchange, const struct ike_enc *inner);
const struct conf_phase2 *ike_phase2(const struct ike *ike, size_t i);
void ike_fail(struct ike_sa *sa, const char *why);
void ike_answer_init_notify(struct ike *ike, struct tcp_conn *c, const struct ike_hdr *req, uint16_t type,
			    const void *data, size_t len);

/* ike_init.c */
int ike_init_start(struct ike_sa *sa);
void ike_auto_transport_answered(struct ike_sa *sa); /* engine.c: UDP answered, auto stays on UDP */
void ike_init_request(struct ike *ike, struct tcp_conn *c, const struct ike_msg *m);
void ike_init_response(struct ike_sa *sa, const struct ike_msg *m);
bool ike_p1_candidate(const struct conf_phase1 *p1, const struct sockaddr_storage *peer);

/* ike_auth.c */
int ike_auth_start(struct ike_sa *sa);
void ike_auth_request(struct ike_sa *sa, const struct ike_msg *m);
void ike_auth_response(struct ike_sa *sa, const struct ike_msg *m);

/* After any failure of a static auto-negotiate tunnel's SA: initiate again after the backoff. */
void ike_tunnel_retry(struct ike_tunnel *t, const char *why);
void ike_tunnel_retry_cancel(struct ike_tunnel *t);
/* RFC 9329 6.1: resend our outstanding request on sa->conn (a new stream). */
void ike_resend_request(struct ike_sa *sa);

/* dpd.c: liveness per phase1 dpd, dpd-retryinterval, dpd-retrycount */
void ike_dpd_start(struct ike_sa *sa);        /* the SA is established */
void ike_dpd_heard(struct ike_sa *sa);        /* an authenticated message or ESP came from the peer */

/* cookie.c */
/* Responder: true when the request was answered with N(COOKIE) (and the stream closed). */
bool ike_cookie_gate(struct ike *ike, struct tcp_conn *c, const struct ike_msg *m,
		     const struct sockaddr_storage *peer);
void ike_cookie_received(struct ike_sa *sa, const struct ike_pl *n);

/* ike_auth.c: CHILD SA helpers shared with ike_child.c */
int ike_child_install(struct ike_sa *sa, const struct conf_phase2 *p2, const struct esp_suite *s, bool esn,
		      uint32_t spi_in, uint32_t spi_out, const struct child_ts *local, const struct child_ts *remote,
		      unsigned nts, const struct ike_child_nonces *kn);
unsigned ike_p2_selectors(const struct conf_phase2 *p2, struct child_ts *local, struct child_ts *remote);
void ike_enc_ts(struct ike_enc *e, uint8_t type, const struct child_ts *ts, unsigned n);
struct prop_buf;
void ike_enc_sa(struct ike_enc *e, const struct prop_buf *pb);
/* Initiator: the responder's selectors must lie inside those offered; 0 when not. */
unsigned ike_ts_accepted(const struct ike_ts_pl *tsp, const struct child_ts *offered, unsigned noff,
			 struct child_ts *out);
/* Responder: the initiator's selectors narrowed to p2; 0 pairs when they do not fit. */
unsigned ike_ts_narrow_p2(const struct conf_phase2 *p2, const struct ike_ts_pl *tsi, const struct ike_ts_pl *tsr,
			  struct child_ts *local, struct child_ts *remote);

/* ike_child.c: CREATE_CHILD_SA (1.3.2, 1.3.3, 2.8, 2.8.1) */
void ike_child_installed(struct ike_sa *sa, struct ike_child *ch, const struct conf_phase2 *p2);
void ike_child_request(struct ike_sa *sa, const struct ike_msg *m);
void ike_child_response(struct ike_sa *sa, const struct ike_msg *m);
void ike_child_info_response(struct ike_sa *sa); /* our DELETE of retiring CHILD SAs was answered */
/* The peer made a CHILD SA for our request (SA in its answer) that we did not take: INFORMATIONAL
 * { D(ESP, spi_in) }, spi_in being the inbound SPI we offered, so the peer does not keep its half. */
void ike_child_delete_unused(struct ike_sa *sa, uint32_t spi_in);
/* Rekey the CHILD SA whose inbound SPI is spi_in now (timer, tests). -EBUSY while a request is out. */
int ike_child_rekey(struct ike_sa *sa, uint32_t spi_in);
/* An additional CHILD SA for phase2 entry p2 (index into conf->phase2). -EBUSY while a request is out,
 * -ENOSPC when it would take the slot rekeys need. */
int ike_child_create(struct ike_sa *sa, size_t p2);
void ike_child_timer_init(struct ike_sa *sa);

/* ike_rekey.c: rekeying the IKE SA with CREATE_CHILD_SA (1.3.2, 2.8, 2.8.2, 2.18) */
void ike_rekey_timer_init(struct ike_sa *sa);
void ike_rekey_arm(struct ike_sa *sa);           /* the SA is established: rekey before phase1 keylife */
/* Rekey now (timer, `iketcpctl rekey`, tests). -EBUSY while a request is out, -EPROTO when not up. */
int ike_rekey_ike(struct ike_sa *sa);
void ike_rekey_request(struct ike_sa *sa, const struct ike_msg *m);  /* CREATE_CHILD_SA without TS */
void ike_rekey_response(struct ike_sa *sa, const struct ike_msg *m); /* the answer to ours */
/* The IKE SA is done with: no timers but a deadline for its DELETE. */
void ike_rekey_retire(struct ike_sa *sa);
/* ike_child.c: the CHILD SAs of from move to to (the dataplane does not change). */
void ike_child_adopt(struct ike_sa *to, struct ike_sa *from);

/* ike_info.c */
void ike_info_request(struct ike_sa *sa, const struct ike_msg *m);
void ike_info_response(struct ike_sa *sa, const struct ike_msg *m);
int ike_info_delete_ike(struct ike_sa *sa, bool wait);

#endif
