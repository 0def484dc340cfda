/*
 * INFORMATIONAL (RFC 7296 1.4, 1.5): liveness checks, DELETE of the IKE SA
 * and of CHILD SAs, both halves:
 *
 *   HDR, SK { [D(IKE)] | [D(ESP, SPIs...)] | [N] }  -->
 *                          <--  HDR, SK { [D(ESP, our SPIs)] }
 */
#include <errno.h>
#include <string.h>

#include "ike/sa.h"
#include "iketcp/stats.h"

static void enc_delete(struct ike_enc *e, uint8_t proto, const uint8_t *spis, uint16_t count)
{
	struct ike_pl pl = { .type = IKE_PL_D };
	pl.u.d = (struct ike_delete_pl){ proto, proto == IKE_PROTO_IKE ? 0 : 4, count, spis };
	if (ike_pl_encode(e, &pl))
		e->w.overflow = true;
}

void ike_info_request(struct ike_sa *sa, const struct ike_msg *m)
{
	struct ike *ike = sa->ike;
	const char *name = sa->tun ? sa->tun->name : "?";
	uint8_t ours[4 * 64];
	uint16_t nours = 0;
	bool delete_ike = false;
	struct ike_enc inner;

	for (const struct ike_pl *p = NULL; (p = ike_msg_find(m, IKE_PL_D, p));) {
		const struct ike_delete_pl *d = &p->u.d;
		if (d->proto == IKE_PROTO_IKE) {
			delete_ike = true;
			continue;
		}
		if (d->proto != IKE_PROTO_ESP || d->spi_size != 4)
			continue;
		/* 1.4.1: the peer names its inbound SPIs (our spi_out); we answer with ours. */
		for (unsigned i = 0; i < d->count; i++) {
			const uint8_t *s = d->spis + 4 * i;
			uint32_t spi = (uint32_t)s[0] << 24 | (uint32_t)s[1] << 16 | (uint32_t)s[2] << 8 | s[3];
			for (unsigned j = 0; j < IKE_MAX_CHILDREN; j++) {
				struct ike_child *ch = &sa->child[j];
				if (!ch->used || ch->spi_out != spi)
					continue;
				/* 1.4.1: our DELETE of it crossed the peer's: the answer MUST NOT name it again. */
				if (ch->rekey != CHILD_RETIRING && nours < sizeof(ours) / 4) {
					uint32_t in = ch->spi_in;
					ours[4 * nours] = (uint8_t)(in >> 24);
					ours[4 * nours + 1] = (uint8_t)(in >> 16);
					ours[4 * nours + 2] = (uint8_t)(in >> 8);
					ours[4 * nours + 3] = (uint8_t)in;
					nours++;
				}
				log_info("%s: peer deleted CHILD SA %s %08x_i", name, ch->phase2, ch->spi_in);
				if (ike->child.remove)
					ike->child.remove(ike->child_arg, ch->spi_in);
				memset(ch, 0, sizeof(*ch));
			}
		}
	}
	/* 2.21.2: the initiator rejected our AUTH after we completed the SA: it goes, CHILD SAs with it. */
	bool auth_failed = ike_msg_find_notify(m, AUTHENTICATION_FAILED) != NULL;
	if (auth_failed) {
		STAT_INC(ike, auth_failures);
		log_warn("%s: the peer rejected our authentication (AUTHENTICATION_FAILED): IKE SA %016llx_i deleted",
			 name, (unsigned long long)sa->spi_i);
		delete_ike = true;
	}
	ike_inner_begin(ike, &inner);
	if (!delete_ike && nours)
		enc_delete(&inner, IKE_PROTO_ESP, ours, nours);
	(void)ike_answer(sa, INFORMATIONAL, &inner);
	if (delete_ike) {
		if (!auth_failed)
			log_info("%s: peer deleted IKE SA %016llx_i %016llx_r", name, (unsigned long long)sa->spi_i,
				 (unsigned long long)sa->spi_r);
		/* a rekeyed SA has a successor; after AUTHENTICATION_FAILED trying again at once would fail again */
		struct ike_tunnel *t = sa->rekeyed || auth_failed ? NULL : sa->tun;
		ike_sa_free(sa);
		/* auto-negotiate keeps the tunnel up: initiate again after the backoff */
		if (t)
			ike_tunnel_retry(t, "peer deleted the IKE SA");
	}
}

void ike_info_response(struct ike_sa *sa, const struct ike_msg *m)
{
	(void)m;
	if (sa->state == SA_DELETING) {
		log_info("%s: IKE SA %016llx_i deleted", sa->tun ? sa->tun->name : "?", (unsigned long long)sa->spi_i);
		ike_sa_free(sa);
	}
}

int ike_info_delete_ike(struct ike_sa *sa, bool wait)
{
	struct ike_enc inner;

	ike_inner_begin(sa->ike, &inner);
	enc_delete(&inner, IKE_PROTO_IKE, NULL, 0);
	ike_sa_remove_children(sa);
	sa->state = SA_DELETING;
	log_info("%s: deleting IKE SA %016llx_i", sa->tun ? sa->tun->name : "?", (unsigned long long)sa->spi_i);
	int err = ike_request(sa, INFORMATIONAL, &inner);
	if (!wait && sa->ike->loop)
		loop_timer_cancel(sa->ike->loop, &sa->timer);
	return err;
}
