/*
 * The responder's choice among the peer's proposals (RFC 7296 2.7, 3.3.6): a
 * proposal is built by hand as a peer would send it, and the proposal number
 * chosen (or none) is what is checked.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ike/proposal.h"

/* RFC 9370 section 2.2.1: Additional Key Exchange 1 (Transform Type 6); 36 is ML-KEM-768. */
enum { XF_ADDKE1 = 6, ML_KEM_768 = 36 };

struct peer_sa {
	struct ike_proposal props[4];
	struct ike_transform xf[4][8];
	struct ike_sa_pl sa;
};

/* Proposal number sa->nprops + 1 of protocol proto (ESP: SPI 0x01020304). */
static struct ike_proposal *prop(struct peer_sa *p, uint8_t proto)
{
	unsigned i = p->sa.nprops++;
	struct ike_proposal *pr = &p->props[i];
	memset(pr, 0, sizeof(*pr));
	pr->num = (uint8_t)(i + 1);
	pr->proto = proto;
	if (proto == IKE_PROTO_ESP) {
		static const uint8_t spi[4] = { 1, 2, 3, 4 };
		pr->spi_size = 4;
		memcpy(pr->spi, spi, sizeof(spi));
	}
	pr->xf = p->xf[i];
	p->sa.props = p->props;
	return pr;
}

static void xf(struct peer_sa *p, struct ike_proposal *pr, uint8_t type, uint16_t id, uint16_t key_bits)
{
	struct ike_transform *t = &p->xf[pr - p->props][pr->nxf++];
	memset(t, 0, sizeof(*t));
	t->type = type;
	t->id = id;
	t->has_key_len = key_bits != 0;
	t->key_len = key_bits;
}

/* AES-GCM-16-128, PRF-HMAC-SHA2-256, ECP-256 (and ML-KEM-768 as ADDKE1 when pq). */
static void ike_prop(struct peer_sa *p, bool pq)
{
	struct ike_proposal *pr = prop(p, IKE_PROTO_IKE);
	xf(p, pr, IKE_XF_ENCR, ENCR_AES_GCM_16, 128);
	xf(p, pr, IKE_XF_PRF, PRF_HMAC_SHA2_256, 0);
	xf(p, pr, IKE_XF_DH, ECP_256, 0);
	if (pq)
		xf(p, pr, XF_ADDKE1, ML_KEM_768, 0);
}

/* AES-GCM-16-128, no ESN (and ML-KEM-768 as ADDKE1 when pq). */
static void esp_prop(struct peer_sa *p, bool pq)
{
	struct ike_proposal *pr = prop(p, IKE_PROTO_ESP);
	xf(p, pr, IKE_XF_ENCR, ENCR_AES_GCM_16, 128);
	if (pq)
		xf(p, pr, XF_ADDKE1, ML_KEM_768, 0);
	xf(p, pr, IKE_XF_ESN, ESN_NO, 0);
}

static char *const ike_names[] = { "aes128gcm-prfsha256" };
static char *const esp_names[] = { "aes128gcm" };
static const uint16_t groups[] = { ECP_256 };

/*
 * 3.3.6: "If the responder receives a proposal that contains a Transform Type it does not understand ...
 * it MUST consider this proposal unacceptable; however, other proposals in the same SA payload are
 * processed as usual." strongSwan offers a post-quantum proposal (RFC 9370 ADDKE1) and a classic one
 * after it: answering the first without its ADDKE1 fails the exchange at the initiator.
 */
static void test_unknown_transform_type_rejects_proposal(void **state)
{
	(void)state;
	struct ike_suite s;
	struct esp_suite e;
	bool esn;
	uint8_t num = 0;
	uint32_t spi = 0;
	uint16_t group = 0;

	struct peer_sa ike = { 0 };
	ike_prop(&ike, true);
	ike_prop(&ike, false);
	assert_int_equal(ike_prop_choose_ike(&ike.sa, ike_names, 1, groups, 1, ECP_256, &s, &num), 0);
	assert_int_equal(num, 2);

	struct peer_sa only_pq = { 0 };
	ike_prop(&only_pq, true);
	assert_int_equal(ike_prop_choose_ike(&only_pq.sa, ike_names, 1, groups, 1, ECP_256, &s, &num), -ENOENT);

	struct peer_sa esp = { 0 };
	esp_prop(&esp, true);
	esp_prop(&esp, false);
	num = 0;
	assert_int_equal(ike_prop_choose_esp(&esp.sa, esp_names, 1, &e, &esn, &num, &spi), 0);
	assert_int_equal(num, 2);
	num = 0;
	assert_int_equal(ike_prop_choose_esp_ke(&esp.sa, esp_names, 1, NULL, 0, 0, &e, &esn, &num, &spi, &group), 0);
	assert_int_equal(num, 2);

	/* A proposal of known types is still chosen first, whatever follows it. */
	struct peer_sa classic_first = { 0 };
	ike_prop(&classic_first, false);
	ike_prop(&classic_first, true);
	assert_int_equal(ike_prop_choose_ike(&classic_first.sa, ike_names, 1, groups, 1, ECP_256, &s, &num), 0);
	assert_int_equal(num, 1);
	assert_int_equal(s.ke, ECP_256);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_transform_type_rejects_proposal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
