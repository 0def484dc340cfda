/*
 * SA payloads from the configuration and the choice among the peer's
 * proposals (RFC 7296 sections 2.7, 3.3): IKE proposals for IKE_SA_INIT, ESP
 * proposals for the CHILD SA carried by IKE_AUTH.
 */
#ifndef IKETCP_IKE_PROPOSAL_H
#define IKETCP_IKE_PROPOSAL_H

#include <stdbool.h>
#include <stdint.h>

#include "conf/conf.h"
#include "ike/payload.h"
#include "ike/suite.h"

/* The storage an SA payload we build points into. */
struct prop_buf {
	struct ike_proposal props[CONF_MAX_DHGRP * 4 + 8];
	struct ike_transform xf[IKE_ARENA_TRANSFORMS];
	unsigned nxf;
	struct ike_sa_pl sa;
};

/* One proposal per FortiOS name in order, each carrying every group of dh[]
 * (in order) as KE transforms. -EINVAL when no name is usable. */
int ike_prop_build_ike(struct prop_buf *b, char *const *names, size_t n, const uint16_t *dh, size_t ndh);
/* ESP: one proposal per name (SPI spi, host order), ESN transforms NO then YES. */
int ike_prop_build_esp(struct prop_buf *b, char *const *names, size_t n, uint32_t spi);

/* The answer: the peer's proposal number with one transform of each type. */
void ike_prop_answer_ike(struct prop_buf *b, uint8_t num, const struct ike_suite *s);
void ike_prop_answer_esp(struct prop_buf *b, uint8_t num, const struct esp_suite *s, bool esn, uint32_t spi);

/*
 * Responder choice honouring OUR order (names, then dh). ke_group is the
 * group of the peer's KE payload: when both sides accept it, it is chosen,
 * otherwise our first group the chosen proposal also offers (the caller then
 * answers INVALID_KE_PAYLOAD). 0 with *out (ke set) and *num, or -ENOENT.
 */
int ike_prop_choose_ike(const struct ike_sa_pl *peer, char *const *names, size_t n, const uint16_t *dh,
		    size_t ndh, uint16_t ke_group, struct ike_suite *out, uint8_t *num);
/* ESP, our order; NO_ESN preferred. *spi is the peer's SPI (host order). */
int ike_prop_choose_esp(const struct ike_sa_pl *peer, char *const *names, size_t n, struct esp_suite *out,
		    bool *esn, uint8_t *num, uint32_t *spi);

/* Initiator: the responder's single proposal must be one of ours; -EBADMSG otherwise. */
int ike_prop_accept_ike(const struct ike_sa_pl *answer, char *const *names, size_t n, const uint16_t *dh,
		    size_t ndh, struct ike_suite *out);
int ike_prop_accept_esp(const struct ike_sa_pl *answer, char *const *names, size_t n, struct esp_suite *out,
		    bool *esn, uint32_t *spi);

/* PFS in CREATE_CHILD_SA: ESP proposals that also carry KE transforms, one per group of dh[] (ndh 0: none,
 * and then a proposal must offer no group or NONE). *group: the group chosen / answered (0: none). */
int ike_prop_build_esp_ke(struct prop_buf *b, char *const *names, size_t n, uint32_t spi, const uint16_t *dh,
			  size_t ndh);
void ike_prop_answer_esp_ke(struct prop_buf *b, uint8_t num, const struct esp_suite *s, bool esn, uint32_t spi,
			    uint16_t group);
/* Our order; ke_group (the peer's KEi group) when the chosen proposal offers it, else our first it offers:
 * the caller answers INVALID_KE_PAYLOAD when *group differs from ke_group. */
int ike_prop_choose_esp_ke(const struct ike_sa_pl *peer, char *const *names, size_t n, const uint16_t *dh,
			   size_t ndh, uint16_t ke_group, struct esp_suite *out, bool *esn, uint8_t *num,
			   uint32_t *spi, uint16_t *group);
int ike_prop_accept_esp_ke(const struct ike_sa_pl *answer, char *const *names, size_t n, const uint16_t *dh,
			   size_t ndh, struct esp_suite *out, bool *esn, uint32_t *spi, uint16_t *group);

#endif