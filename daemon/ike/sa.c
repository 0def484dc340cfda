/* The IKE SA table: allocation, lookup by SPI, CHILD SA bookkeeping, teardown. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "ike/sa.h"
#include "iketcp/stats.h"

bool ike_sa_datagram(const struct ike_sa *sa)
{
	const struct ike_io *io = &sa->ike->io;
	return sa->conn && io->datagram && io->datagram(io->arg, sa->conn);
}

/* 2.1: over UDP the requester retransmits, doubling the wait; over TCP it never does (RFC 9329 6.2). */
static bool retransmit(struct ike_sa *sa)
{
	struct ike *ike = sa->ike;
	const uint8_t *msg = sa->state == SA_INIT_SENT ? sa->init_req : sa->last_req;
	size_t len = sa->state == SA_INIT_SENT ? sa->init_req_len : sa->last_req_len;

	if (!sa->req_out || !msg || !ike_sa_datagram(sa) || sa->rtx >= IKE_RTX_MAX)
		return false;
	sa->rtx++;
	STAT_INC(ike, retransmits);
	log_debug("%s: %s request #%u retransmitted (%u)", sa->tun ? sa->tun->name : "?",
		  ike_exchange_name(sa->req_exchange), sa->state == SA_INIT_SENT ? 0 : sa->my_msg_id - 1, sa->rtx);
	(void)ike_send_plain(ike, sa->conn, msg, len);
	(void)loop_timer_arm(ike->loop, &sa->timer,
			     (uint64_t)IKE_RTX_FIRST_MS << (sa->rtx < IKE_RTX_MAX ? sa->rtx : IKE_RTX_MAX - 1));
	return true;
}

static void ike_sa_timeout(struct loop *loop, struct loop_timer *t)
{
	struct ike_sa *sa = container_of(t, struct ike_sa, timer);
	(void)loop;
	if (retransmit(sa))
		return;
	if (sa->rekeyed) {
		/* a replaced SA whose DELETE never came (ike_rekey.c): its successor carries on */
		log_info("%s: IKE SA %016llx_i %016llx_r (rekeyed) removed", sa->tun ? sa->tun->name : "?",
			 (unsigned long long)sa->spi_i, (unsigned long long)sa->spi_r);
		ike_sa_free(sa);
		return;
	}
	ike_fail(sa, sa->state == SA_INIT_DONE ? "no IKE_AUTH request in time" : "no response in time");
}

struct ike_sa *ike_sa_new(struct ike *ike, bool initiator, struct tcp_conn *c)
{
	if (ike->nsas >= IKE_MAX_SAS)
		return NULL;
	struct ike_sa *sa = calloc(1, sizeof(*sa));
	if (!sa)
		return NULL;
	sa->ike = ike;
	sa->initiator = initiator;
	sa->conn = c;
	loop_timer_init(&sa->timer, ike_sa_timeout);
	loop_timer_init(&sa->dpd_timer, NULL);
	ike_child_timer_init(sa);
	ike_rekey_timer_init(sa);
	sa->next = ike->sas;
	ike->sas = sa;
	ike->nsas++;
	return sa;
}

void ike_sa_remove_children(struct ike_sa *sa)
{
	for (unsigned i = 0; i < IKE_MAX_CHILDREN; i++) {
		struct ike_child *ch = &sa->child[i];
		if (!ch->used)
			continue;
		if (sa->ike->child.remove && !sa->ike->freeing)
			sa->ike->child.remove(sa->ike->child_arg, ch->spi_in);
		memset(ch, 0, sizeof(*ch));
	}
}

void ike_sa_free(struct ike_sa *sa)
{
	if (!sa)
		return;
	struct ike *ike = sa->ike;
	for (struct ike_sa **pp = &ike->sas; *pp; pp = &(*pp)->next) {
		if (*pp == sa) {
			*pp = sa->next;
			ike->nsas--;
			break;
		}
	}
	if (ike->loop) {
		loop_timer_cancel(ike->loop, &sa->timer);
		loop_timer_cancel(ike->loop, &sa->dpd_timer);
		loop_timer_cancel(ike->loop, &sa->rekey_timer);
		loop_timer_cancel(ike->loop, &sa->ike_rekey_timer);
	}
	if (ike->alive_sa == sa)
		ike->alive_sa = NULL;
	ike_sa_remove_children(sa);
	/* During an IKE SA rekey two SAs share the stream: the last one releases it. */
	bool shared = false;
	for (struct ike_sa *o = ike->sas; o && !shared; o = o->next)
		shared = o->conn == sa->conn && o->held;
	if (sa->held && sa->conn && ike->io.hold && !ike->freeing && !shared)
		ike->io.hold(ike->io.arg, sa->conn, false);
	ike_dh_free(sa->dh);
	ike_dh_free(sa->rk_dh);
	ike_sa_keys_free(&sa->keys);
	free(sa->init_req);
	free(sa->init_rsp);
	if (sa->last_rsp)
		OPENSSL_cleanse(sa->last_rsp, sa->last_rsp_len);
	free(sa->last_rsp);
	if (sa->last_req)
		OPENSSL_cleanse(sa->last_req, sa->last_req_len);
	free(sa->last_req);
	OPENSSL_cleanse(sa, sizeof(*sa));
	free(sa);
}

/* we_initiated: our SPI is spi_i. Both SPIs must match (the responder's SPI
 * of a half-open initiator SA is still 0 until the IKE_SA_INIT answer). */
struct ike_sa *ike_sa_find(struct ike *ike, uint64_t spi_i, uint64_t spi_r, bool we_initiated)
{
	for (struct ike_sa *sa = ike->sas; sa; sa = sa->next)
		if (sa->initiator == we_initiated && sa->spi_i == spi_i && sa->spi_r == spi_r)
			return sa;
	return NULL;
}

struct ike_sa *ike_sa_find_half_open(struct ike *ike, uint64_t spi_i, struct tcp_conn *c)
{
	for (struct ike_sa *sa = ike->sas; sa; sa = sa->next)
		if (!sa->initiator && sa->spi_i == spi_i && sa->conn == c && sa->init_rsp)
			return sa;
	return NULL;
}

uint64_t ike_sa_new_spi(struct ike *ike)
{
	for (;;) {
		uint64_t spi = 0;
		if (RAND_bytes((uint8_t *)&spi, sizeof(spi)) != 1 || spi == 0)
			continue;
		bool used = false;
		for (struct ike_sa *sa = ike->sas; sa && !used; sa = sa->next)
			used = (sa->initiator ? sa->spi_i : sa->spi_r) == spi;
		if (!used)
			return spi;
	}
}

uint32_t ike_child_new_spi(struct ike *ike)
{
	for (;;) {
		uint32_t spi = 0;
		/* 0-255 are reserved by IANA (RFC 4303 2.1). */
		if (RAND_bytes((uint8_t *)&spi, sizeof(spi)) != 1 || spi < 256)
			continue;
		bool used = false;
		for (struct ike_sa *sa = ike->sas; sa && !used; sa = sa->next) {
			for (unsigned i = 0; i < IKE_MAX_CHILDREN; i++)
				used |= sa->child[i].used && sa->child[i].spi_in == spi;
			used |= sa->child_offered && sa->child_spi == spi;
			used |= sa->rk_out && sa->rk_new_spi == spi;
		}
		if (!used)
			return spi;
	}
}

struct ike_child *ike_sa_child_add(struct ike_sa *sa)
{
	for (unsigned i = 0; i < IKE_MAX_CHILDREN; i++)
		if (!sa->child[i].used)
			return &sa->child[i];
	return NULL;
}

struct ike_tunnel *ike_tunnel_find(struct ike *ike, const char *name)
{
	for (size_t i = 0; name && i < ike->ntun; i++)
		if (ike->tun[i]->present && !strcmp(ike->tun[i]->name, name))
			return ike->tun[i];
	return NULL;
}

void ike_sa_arm_timer(struct ike_sa *sa)
{
	sa->rtx = 0;
	if (sa->ike->loop)
		(void)loop_timer_arm(sa->ike->loop, &sa->timer, sa->req_out && ike_sa_datagram(sa) ?
							 IKE_RTX_FIRST_MS : IKE_RESPONSE_TIMEOUT_MS);
}

uint8_t *ike_memdup(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n);
	if (c)
		memcpy(c, p, n);
	return c;
}

int ike_nonce_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

void ike_nonce_min(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, const uint8_t **m, size_t *mlen)
{
	bool a_low = ike_nonce_cmp(a, alen, b, blen) <= 0;
	*m = a_low ? a : b;
	*mlen = a_low ? alen : blen;
}

void ike_spi_bytes(uint64_t spi, uint8_t out[8])
{
	for (int i = 7; i >= 0; i--, spi >>= 8)
		out[i] = (uint8_t)spi;
}

void ike_sa_established(struct ike_sa *sa)
{
	struct ike *ike = sa->ike;
	char a[INET6_ADDRSTRLEN + 8], id[300];

	sa->state = SA_ESTABLISHED;
	sa->established_ms = ike->loop ? loop_now_ms(ike->loop) : 0;
	if (ike->loop)
		loop_timer_cancel(ike->loop, &sa->timer);
	/* The SKEYSEED inputs are no longer needed. */
	ike_dh_free(sa->dh);
	ike_dh_free(sa->rk_dh);
	sa->dh = NULL;
	sa->rk_dh = NULL; /* ike_sa_free frees it again */
	if (sa->conn && ike->io.hold && !sa->held) {
		ike->io.hold(ike->io.arg, sa->conn, true);
		sa->held = true;
	}
	if (sa->tun)
		sa->tun->backoff_ms = 0; /* the next failure retries after IKE_RETRY_MIN_MS again */
	ike_dpd_start(sa);
	ike_rekey_arm(sa);
	STAT_INC(ike, sa_established);
	log_info("%s: IKE SA %016llx_i %016llx_r established with %s (%s) as %s", sa->tun->name,
		 (unsigned long long)sa->spi_i, (unsigned long long)sa->spi_r,
		 sockaddr_str(&sa->remote, a, sizeof(a)),
		 ike_id_str(sa->peer_id.type, sa->peer_id.data, sa->peer_id.len, id, sizeof(id)),
		 sa->initiator ? "initiator" : "responder");
}
