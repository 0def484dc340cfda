/* IKEv2 payload codec: every payload round-trips; hostile bodies fail cleanly. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ike/payload.h"

static struct ike_arena arena;

static int dec(uint8_t type, const uint8_t *b, size_t n, struct ike_pl *pl)
{
	const char *why = NULL;
	ike_arena_reset(&arena);
	memset(pl, 0, sizeof(*pl));
	int err = ike_pl_decode(pl, type, b, n, &arena, &why);
	if (err)
		assert_non_null(why);
	return err;
}

/*
 * Encode pl alone in a chain, check its generic header, decode its body into
 * out (arena-backed), re-encode out and insist on the same bytes.
 */
static size_t round_trip(const struct ike_pl *pl, struct ike_pl *out, uint8_t *buf, size_t cap)
{
	struct ike_enc e;
	ike_enc_init(&e, buf, cap);
	assert_int_equal(ike_pl_encode(&e, pl), 0);
	assert_true(wr_ok(&e.w));
	assert_int_equal(e.first, pl->type);
	size_t n = e.w.off;
	assert_int_equal(buf[0], IKE_PL_NONE);
	assert_int_equal(buf[1], pl->critical ? IKE_PL_CRITICAL : 0);
	assert_int_equal(buf[2] << 8 | buf[3], n);

	assert_int_equal(dec(pl->type, buf + 4, n - 4, out), 0);
	out->type = pl->type;
	out->critical = pl->critical;

	uint8_t again[2048];
	struct ike_enc e2;
	ike_enc_init(&e2, again, sizeof(again));
	assert_int_equal(ike_pl_encode(&e2, out), 0);
	assert_int_equal(e2.w.off, n);
	assert_memory_equal(again, buf, n);
	return n;
}

/* ---- SA -------------------------------------------------------------------- */

static const struct ike_transform ike_xf[] = {
	{ .type = IKE_XF_ENCR, .id = ENCR_AES_CBC, .has_key_len = true, .key_len = 256 },
	{ .type = IKE_XF_PRF, .id = PRF_HMAC_SHA2_256 },
	{ .type = IKE_XF_INTEG, .id = AUTH_HMAC_SHA2_256_128 },
	{ .type = IKE_XF_DH, .id = ECP_256 },
};
static const struct ike_transform gcm_xf[] = {
	{ .type = IKE_XF_ENCR, .id = ENCR_AES_GCM_16, .has_key_len = true, .key_len = 128 },
	{ .type = IKE_XF_PRF, .id = PRF_HMAC_SHA2_384 },
	{ .type = IKE_XF_DH, .id = CURVE_25519 },
};
static const struct ike_transform esp_xf[] = {
	{ .type = IKE_XF_ENCR, .id = ENCR_AES_GCM_16, .has_key_len = true, .key_len = 256 },
	{ .type = IKE_XF_ESN, .id = ESN_NO },
};

static void test_sa_round_trip(void **state)
{
	(void)state;
	struct ike_proposal props[] = {
		{ .num = 1, .proto = IKE_PROTO_IKE, .nxf = 4, .xf = ike_xf },
		{ .num = 2, .proto = IKE_PROTO_IKE, .nxf = 3, .xf = gcm_xf },
		{ .num = 3, .proto = IKE_PROTO_IKE, .spi_size = 8, .spi = { 1, 2, 3, 4, 5, 6, 7, 8 },
		  .nxf = 3, .xf = gcm_xf },
	};
	struct ike_pl pl = { .type = IKE_PL_SA, .u.sa = { .nprops = 3, .props = props } };
	struct ike_pl out;
	uint8_t buf[512];
	round_trip(&pl, &out, buf, sizeof(buf));

	assert_int_equal(out.u.sa.nprops, 3);
	for (unsigned i = 0; i < 3; i++) {
		const struct ike_proposal *p = &out.u.sa.props[i];
		assert_int_equal(p->num, props[i].num);
		assert_int_equal(p->proto, props[i].proto);
		assert_int_equal(p->spi_size, props[i].spi_size);
		assert_memory_equal(p->spi, props[i].spi, p->spi_size);
		assert_int_equal(p->nxf, props[i].nxf);
		for (unsigned j = 0; j < p->nxf; j++) {
			assert_int_equal(p->xf[j].type, props[i].xf[j].type);
			assert_int_equal(p->xf[j].id, props[i].xf[j].id);
			assert_int_equal(p->xf[j].has_key_len, props[i].xf[j].has_key_len);
			assert_int_equal(p->xf[j].key_len, props[i].xf[j].key_len);
			assert_int_equal(p->xf[j].unknown_attrs, 0);
		}
	}
	/* The arena holds exactly what was decoded. */
	assert_int_equal(arena.nprops, 3);
	assert_int_equal(arena.nxf, 10);

	struct ike_proposal esp = { .num = 1, .proto = IKE_PROTO_ESP, .spi_size = 4,
				    .spi = { 0xc0, 0xff, 0xee, 0x01 }, .nxf = 2, .xf = esp_xf };
	pl.u.sa = (struct ike_sa_pl){ .nprops = 1, .props = &esp };
	round_trip(&pl, &out, buf, sizeof(buf));
	assert_memory_equal(out.u.sa.props[0].spi, esp.spi, 4);
}

/* RFC 7296 3.3 layout, written out by hand: one ESP proposal, two transforms. */
static const uint8_t sa_hex[] = {
	/* proposal: last, rsvd, length 32, #1, ESP, SPI size 4, 2 transforms */
	0x00, 0x00, 0x00, 0x20, 0x01, 0x03, 0x04, 0x02,
	0x11, 0x22, 0x33, 0x44,                         /* SPI */
	0x03, 0x00, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x14, /* more, 12, ENCR AES_GCM_16 */
	0x80, 0x0e, 0x01, 0x00,                         /* TV Key Length 256 */
	0x00, 0x00, 0x00, 0x08, 0x05, 0x00, 0x00, 0x00, /* last, 8, ESN NO */
};

static void test_sa_layout(void **state)
{
	(void)state;
	struct ike_pl pl;
	assert_int_equal(dec(IKE_PL_SA, sa_hex, sizeof(sa_hex), &pl), 0);
	assert_int_equal(pl.u.sa.nprops, 1);
	const struct ike_proposal *p = &pl.u.sa.props[0];
	assert_int_equal(p->num, 1);
	assert_int_equal(p->proto, IKE_PROTO_ESP);
	assert_int_equal(p->spi_size, 4);
	assert_int_equal(p->spi[0], 0x11);
	assert_int_equal(p->spi[3], 0x44);
	assert_int_equal(p->nxf, 2);
	assert_int_equal(p->xf[0].type, IKE_XF_ENCR);
	assert_int_equal(p->xf[0].id, ENCR_AES_GCM_16);
	assert_true(p->xf[0].has_key_len);
	assert_int_equal(p->xf[0].key_len, 256);
	assert_int_equal(p->xf[1].type, IKE_XF_ESN);
	assert_int_equal(p->xf[1].id, ESN_NO);
	assert_false(p->xf[1].has_key_len);

	/* Our encoder writes exactly these bytes. */
	uint8_t buf[128];
	struct ike_enc e;
	ike_enc_init(&e, buf, sizeof(buf));
	pl.type = IKE_PL_SA;
	pl.critical = false;
	assert_int_equal(ike_pl_encode(&e, &pl), 0);
	assert_int_equal(e.w.off, 4 + sizeof(sa_hex));
	assert_memory_equal(buf + 4, sa_hex, sizeof(sa_hex));
}

/* Every proper prefix of a valid SA body is malformed. */
static void test_sa_truncations(void **state)
{
	(void)state;
	struct ike_pl pl;
	for (size_t n = 0; n < sizeof(sa_hex); n++)
		assert_int_equal(dec(IKE_PL_SA, sa_hex, n, &pl), -EBADMSG);
}

struct sa_mutation {
	const char *what;
	size_t at;
	uint8_t value;
};

static void test_sa_hostile(void **state)
{
	(void)state;
	static const struct sa_mutation muts[] = {
		{ "proposal length below 8", 3, 0x07 },
		{ "proposal length past the payload", 3, 0x21 },
		{ "proposal length short of its transforms", 3, 0x1c },
		{ "proposal length 0xFFFF", 2, 0xff },
		{ "proposal Last Substruc 3", 0, 0x03 },
		{ "proposal says more follow", 0, 0x02 },
		{ "proposal number 0", 4, 0x00 },
		{ "SPI size 255", 6, 0xff },
		{ "SPI size 8 for ESP", 6, 0x08 },
		{ "SPI size 0 for ESP", 6, 0x00 },
		{ "transform count 3, two present", 7, 0x03 },
		{ "transform count 1, two present", 7, 0x01 },
		{ "transform count 0", 7, 0x00 },
		{ "transform length below 8", 15, 0x04 },
		{ "transform length past the proposal", 15, 0x30 },
		{ "transform length cuts its attribute", 15, 0x0a },
		{ "transform Last Substruc 2", 12, 0x02 },
		{ "first transform marked last", 12, 0x00 },
		{ "last transform says more", 24, 0x03 },
		{ "Key Length as TLV", 20, 0x00 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(muts); i++) {
		uint8_t b[sizeof(sa_hex)];
		memcpy(b, sa_hex, sizeof(b));
		b[muts[i].at] = muts[i].value;
		struct ike_pl pl;
		int err = dec(IKE_PL_SA, b, sizeof(b), &pl);
		if (err != -EBADMSG)
			fail_msg("%s: decoded (%d)", muts[i].what, err);
	}

	/* Trailing bytes after the last proposal. */
	uint8_t longer[sizeof(sa_hex) + 1];
	memcpy(longer, sa_hex, sizeof(sa_hex));
	longer[sizeof(sa_hex)] = 0;
	struct ike_pl pl;
	assert_int_equal(dec(IKE_PL_SA, longer, sizeof(longer), &pl), -EBADMSG);
	/* Empty SA. */
	assert_int_equal(dec(IKE_PL_SA, sa_hex, 0, &pl), -EBADMSG);
}

/* Two proposals that are not numbered consecutively (3.3.1). */
static void test_sa_numbering(void **state)
{
	(void)state;
	uint8_t b[2 * sizeof(sa_hex)];
	memcpy(b, sa_hex, sizeof(sa_hex));
	memcpy(b + sizeof(sa_hex), sa_hex, sizeof(sa_hex));
	b[0] = IKE_PROP_MORE;
	struct ike_pl pl;
	b[sizeof(sa_hex) + 4] = 2;
	assert_int_equal(dec(IKE_PL_SA, b, sizeof(b), &pl), 0);
	assert_int_equal(pl.u.sa.nprops, 2);
	b[sizeof(sa_hex) + 4] = 3;
	assert_int_equal(dec(IKE_PL_SA, b, sizeof(b), &pl), -EBADMSG);
	b[sizeof(sa_hex) + 4] = 1;
	assert_int_equal(dec(IKE_PL_SA, b, sizeof(b), &pl), -EBADMSG);
}

/* Unknown attributes are structure-valid but flagged (3.3.6: reject the proposal). */
static void test_sa_unknown_attr(void **state)
{
	(void)state;
	static const uint8_t b[] = {
		0x00, 0x00, 0x00, 0x18, 0x01, 0x01, 0x00, 0x01,
		0x00, 0x00, 0x00, 0x10, 0x01, 0x00, 0x00, 0x0c,
		0x00, 0x21, 0x00, 0x01, 0xaa, 0x00, 0x00, 0x00, /* TLV type 33, 1 byte... */
	};
	struct ike_pl pl;
	/* A 1-byte TLV then 3 bytes that are not a whole attribute. */
	assert_int_equal(dec(IKE_PL_SA, b, sizeof(b), &pl), -EBADMSG);
	uint8_t ok[sizeof(b)];
	memcpy(ok, b, sizeof(b));
	ok[19] = 4; /* TLV length 4: consumes the rest */
	assert_int_equal(dec(IKE_PL_SA, ok, sizeof(ok), &pl), 0);
	assert_int_equal(pl.u.sa.props[0].xf[0].unknown_attrs, 1);
	ok[19] = 5; /* past its transform */
	assert_int_equal(dec(IKE_PL_SA, ok, sizeof(ok), &pl), -EBADMSG);
}

/* More transforms than the arena holds: refused, not overflowed. */
static void test_sa_arena_bound(void **state)
{
	(void)state;
	static struct ike_transform many[255];
	for (unsigned i = 0; i < ARRAY_SIZE(many); i++)
		many[i] = (struct ike_transform){ .type = IKE_XF_DH, .id = (uint16_t)i };
	struct ike_proposal p = { .num = 1, .proto = IKE_PROTO_IKE, .nxf = 255, .xf = many };
	struct ike_pl pl = { .type = IKE_PL_SA, .u.sa = { .nprops = 1, .props = &p } };
	uint8_t buf[4096];
	struct ike_enc e;
	ike_enc_init(&e, buf, sizeof(buf));
	assert_int_equal(ike_pl_encode(&e, &pl), 0);
	struct ike_pl out;
	assert_int_equal(dec(IKE_PL_SA, buf + 4, e.w.off - 4, &out), -EBADMSG);

	p.nxf = IKE_ARENA_TRANSFORMS;
	ike_enc_init(&e, buf, sizeof(buf));
	assert_int_equal(ike_pl_encode(&e, &pl), 0);
	assert_int_equal(dec(IKE_PL_SA, buf + 4, e.w.off - 4, &out), 0);
	assert_int_equal(out.u.sa.props[0].nxf, IKE_ARENA_TRANSFORMS);
}

/* ---- the small payloads ---------------------------------------------------- */

static const uint8_t blob[64] = { 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9 };

static void test_ke_nonce_id_auth_cert_v(void **state)
{
	(void)state;
	uint8_t buf[256];
	struct ike_pl out;

	struct ike_pl ke = { .type = IKE_PL_KE, .u.ke = { .group = CURVE_25519, .data = blob, .len = 32 } };
	assert_int_equal(round_trip(&ke, &out, buf, sizeof(buf)), 4 + 4 + 32);
	assert_int_equal(out.u.ke.group, CURVE_25519);
	assert_int_equal(out.u.ke.len, 32);
	assert_memory_equal(out.u.ke.data, blob, 32);
	assert_ptr_equal(out.u.ke.data, buf + 8); /* points into the buffer */

	struct ike_pl nonce = { .type = IKE_PL_NONCE, .u.nonce = { .data = blob, .len = 32 } };
	assert_int_equal(round_trip(&nonce, &out, buf, sizeof(buf)), 36);
	assert_memory_equal(out.u.nonce.data, blob, 32);

	for (uint8_t t = IKE_PL_IDI; t <= IKE_PL_IDR; t++) {
		struct ike_pl id = { .type = t, .u.id = { .id_type = ID_FQDN, .data = (const uint8_t *)"gw.example", .len = 10 } };
		assert_int_equal(round_trip(&id, &out, buf, sizeof(buf)), 4 + 4 + 10);
		assert_int_equal(out.u.id.id_type, ID_FQDN);
		assert_memory_equal(out.u.id.data, "gw.example", 10);
		/* The body is what AUTH signs (2.15): type, reserved, data. */
		assert_int_equal(out.body_len, 14);
		assert_int_equal(out.body[0], ID_FQDN);
	}

	struct ike_pl auth = { .type = IKE_PL_AUTH, .u.auth = { .method = AUTH_PSK, .data = blob, .len = 32 } };
	assert_int_equal(round_trip(&auth, &out, buf, sizeof(buf)), 40);
	assert_int_equal(out.u.auth.method, AUTH_PSK);

	for (uint8_t t = IKE_PL_CERT; t <= IKE_PL_CERTREQ; t++) {
		struct ike_pl c = { .type = t, .u.cert = { .encoding = CERT_X509_SIGNATURE, .data = blob, .len = 20 } };
		assert_int_equal(round_trip(&c, &out, buf, sizeof(buf)), 25);
		assert_int_equal(out.u.cert.encoding, CERT_X509_SIGNATURE);
	}

	struct ike_pl v = { .type = IKE_PL_V, .critical = true, .u.v = { .data = blob, .len = 16 } };
	assert_int_equal(round_trip(&v, &out, buf, sizeof(buf)), 20);
	assert_memory_equal(out.u.v.data, blob, 16);

	/* Empty nonce and vendor ID are structurally fine (meaning is checked later). */
	assert_int_equal(dec(IKE_PL_NONCE, blob, 0, &out), 0);
	assert_int_equal(out.u.nonce.len, 0);

	/* Headers cut short. */
	for (size_t n = 0; n < 4; n++) {
		assert_int_equal(dec(IKE_PL_KE, blob, n, &out), -EBADMSG);
		assert_int_equal(dec(IKE_PL_IDI, blob, n, &out), -EBADMSG);
		assert_int_equal(dec(IKE_PL_AUTH, blob, n, &out), -EBADMSG);
	}
	assert_int_equal(dec(IKE_PL_CERT, blob, 0, &out), -EBADMSG);
	assert_int_equal(dec(IKE_PL_CERTREQ, blob, 1, &out), 0);
	/* Types we do not decode. */
	assert_int_equal(dec(IKE_PL_EAP, blob, 8, &out), -EINVAL);
	assert_int_equal(dec(99, blob, 8, &out), -EINVAL);
}

static void test_notify(void **state)
{
	(void)state;
	uint8_t buf[256];
	struct ike_pl out;

	struct ike_pl n = { .type = IKE_PL_N,
			    .u.n = { .proto = IKE_PROTO_ESP, .spi_size = 4, .spi = { 9, 8, 7, 6 },
				     .type = REKEY_SA } };
	assert_int_equal(round_trip(&n, &out, buf, sizeof(buf)), 12);
	assert_int_equal(out.u.n.type, REKEY_SA);
	assert_int_equal(out.u.n.proto, IKE_PROTO_ESP);
	assert_memory_equal(out.u.n.spi, n.u.n.spi, 4);
	assert_int_equal(out.u.n.len, 0);

	n.u.n = (struct ike_notify_pl){ .type = NAT_DETECTION_SOURCE_IP, .data = blob, .len = 20 };
	assert_int_equal(round_trip(&n, &out, buf, sizeof(buf)), 28);
	assert_int_equal(out.u.n.spi_size, 0);
	assert_memory_equal(out.u.n.data, blob, 20);

	/* Convenience encoder gives the same bytes. */
	uint8_t b2[64];
	struct ike_enc e;
	ike_enc_init(&e, b2, sizeof(b2));
	ike_enc_notify(&e, 0, NULL, 0, NAT_DETECTION_SOURCE_IP, blob, 20);
	assert_int_equal(e.w.off, 28);
	assert_memory_equal(b2, buf, 28);

	/* Hostile SPI sizes and truncations. */
	static const uint8_t spi255[] = { 3, 255, 0x40, 0x09, 1, 2, 3, 4 };
	assert_int_equal(dec(IKE_PL_N, spi255, sizeof(spi255), &out), -EBADMSG);
	static const uint8_t esp8[] = { 3, 8, 0x40, 0x09, 1, 2, 3, 4, 5, 6, 7, 8 };
	assert_int_equal(dec(IKE_PL_N, esp8, sizeof(esp8), &out), -EBADMSG);
	static const uint8_t short_spi[] = { 3, 4, 0x40, 0x09, 1, 2, 3 };
	assert_int_equal(dec(IKE_PL_N, short_spi, sizeof(short_spi), &out), -EBADMSG);
	static const uint8_t ike8[] = { 1, 8, 0x40, 0x09, 1, 2, 3, 4, 5, 6, 7, 8 };
	assert_int_equal(dec(IKE_PL_N, ike8, sizeof(ike8), &out), 0);
	for (size_t n2 = 0; n2 < 4; n2++)
		assert_int_equal(dec(IKE_PL_N, ike8, n2, &out), -EBADMSG);
}

static void test_delete(void **state)
{
	(void)state;
	uint8_t buf[256];
	struct ike_pl out;
	static const uint8_t spis[] = { 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3 };

	struct ike_pl d = { .type = IKE_PL_D, .u.d = { .proto = IKE_PROTO_ESP, .spi_size = 4, .count = 3, .spis = spis } };
	assert_int_equal(round_trip(&d, &out, buf, sizeof(buf)), 4 + 4 + 12);
	assert_int_equal(out.u.d.count, 3);
	assert_memory_equal(out.u.d.spis, spis, 12);

	d.u.d = (struct ike_delete_pl){ .proto = IKE_PROTO_IKE };
	assert_int_equal(round_trip(&d, &out, buf, sizeof(buf)), 8);
	assert_int_equal(out.u.d.proto, IKE_PROTO_IKE);

	/* count * size must equal the data: one more, one less, truncations. */
	static const uint8_t three[] = { 3, 4, 0, 3, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3 };
	for (size_t n = 0; n < sizeof(three); n++)
		assert_int_equal(dec(IKE_PL_D, three, n, &out), -EBADMSG);
	assert_int_equal(dec(IKE_PL_D, three, sizeof(three), &out), 0);
	uint8_t b[sizeof(three)];
	memcpy(b, three, sizeof(b));
	b[3] = 4;
	assert_int_equal(dec(IKE_PL_D, b, sizeof(b), &out), -EBADMSG);
	b[3] = 2;
	assert_int_equal(dec(IKE_PL_D, b, sizeof(b), &out), -EBADMSG);
	b[2] = 0xff, b[3] = 0xff; /* 65535 * 4 overflows nothing, still wrong */
	assert_int_equal(dec(IKE_PL_D, b, sizeof(b), &out), -EBADMSG);
	memcpy(b, three, sizeof(b));
	b[1] = 8; /* ESP with an 8-byte SPI */
	assert_int_equal(dec(IKE_PL_D, b, sizeof(b), &out), -EBADMSG);
	static const uint8_t ike_with_spi[] = { 1, 8, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8 };
	assert_int_equal(dec(IKE_PL_D, ike_with_spi, sizeof(ike_with_spi), &out), -EBADMSG);
	static const uint8_t unknown_proto[] = { 9, 0, 0, 0 };
	assert_int_equal(dec(IKE_PL_D, unknown_proto, sizeof(unknown_proto), &out), -EBADMSG);
}

/* ---- traffic selectors ----------------------------------------------------- */

/* RFC 7296 3.13: two selectors, IPv4 then IPv6. */
static const uint8_t ts_hex[] = {
	0x02, 0x00, 0x00, 0x00,                         /* 2 TSs */
	0x07, 0x06, 0x00, 0x10, 0x00, 0x00, 0xff, 0xff, /* IPv4, TCP, 16, ports 0-65535 */
	10, 0, 0, 0, 10, 0, 255, 255,
	0x08, 0x00, 0x00, 0x28, 0x01, 0xf4, 0x01, 0xf4, /* IPv6, any, 40, port 500 */
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
};

static void test_ts(void **state)
{
	(void)state;
	struct ike_pl out;
	assert_int_equal(dec(IKE_PL_TSI, ts_hex, sizeof(ts_hex), &out), 0);
	assert_int_equal(out.u.ts.count, 2);
	const struct ike_ts *t = out.u.ts.ts;
	assert_int_equal(t[0].type, TS_IPV4_ADDR_RANGE);
	assert_int_equal(t[0].ip_proto, 6);
	assert_int_equal(t[0].start_port, 0);
	assert_int_equal(t[0].end_port, 65535);
	assert_memory_equal(t[0].start, ((uint8_t[]){ 10, 0, 0, 0 }), 4);
	assert_memory_equal(t[0].end, ((uint8_t[]){ 10, 0, 255, 255 }), 4);
	assert_int_equal(t[1].type, TS_IPV6_ADDR_RANGE);
	assert_int_equal(t[1].start_port, 500);
	assert_int_equal(t[1].end[15], 0xff);

	/* Re-encoding the decoded form gives the hand-written bytes. */
	uint8_t buf[128];
	struct ike_enc e;
	ike_enc_init(&e, buf, sizeof(buf));
	out.type = IKE_PL_TSR;
	out.critical = false;
	assert_int_equal(ike_pl_encode(&e, &out), 0);
	assert_int_equal(e.w.off, 4 + sizeof(ts_hex));
	assert_memory_equal(buf + 4, ts_hex, sizeof(ts_hex));
	struct ike_pl again;
	round_trip(&out, &again, buf, sizeof(buf));

	/* Every truncation fails. */
	for (size_t n = 0; n < sizeof(ts_hex); n++)
		assert_int_equal(dec(IKE_PL_TSI, ts_hex, n, &out), -EBADMSG);

	static const struct sa_mutation muts[] = {
		{ "count 3, two present", 0, 3 },
		{ "count 1, two present", 0, 1 },
		{ "count 0", 0, 0 },
		{ "IPv4 selector length 40", 7, 40 },
		{ "IPv4 selector length 12", 7, 12 },
		{ "IPv6 selector length 16", 23, 16 },
		{ "IPv6 selector length 0xff28", 22, 0xff },
		{ "IPv4 selector typed IPv6", 4, 8 },
		{ "unknown TS type", 4, 9 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(muts); i++) {
		uint8_t b[sizeof(ts_hex)];
		memcpy(b, ts_hex, sizeof(b));
		b[muts[i].at] = muts[i].value;
		if (dec(IKE_PL_TSI, b, sizeof(b), &out) != -EBADMSG)
			fail_msg("%s: decoded", muts[i].what);
	}
	uint8_t longer[sizeof(ts_hex) + 4] = { 0 };
	memcpy(longer, ts_hex, sizeof(ts_hex));
	assert_int_equal(dec(IKE_PL_TSR, longer, sizeof(longer), &out), -EBADMSG);
}

/* ---- configuration --------------------------------------------------------- */

static void test_cp(void **state)
{
	(void)state;
	static const uint8_t addr[] = { 10, 9, 0, 2 };
	struct ike_cp_attr attrs[] = {
		{ .type = INTERNAL_IP4_ADDRESS, .value = addr, .len = 4 },
		{ .type = INTERNAL_IP4_DNS },
		{ .type = INTERNAL_IP6_ADDRESS },
	};
	struct ike_pl cp = { .type = IKE_PL_CP, .u.cp = { .cfg_type = CFG_REPLY, .nattrs = 3, .attrs = attrs } };
	uint8_t buf[128];
	struct ike_pl out;
	assert_int_equal(round_trip(&cp, &out, buf, sizeof(buf)), 4 + 4 + 8 + 4 + 4);
	assert_int_equal(out.u.cp.cfg_type, CFG_REPLY);
	assert_int_equal(out.u.cp.nattrs, 3);
	assert_int_equal(out.u.cp.attrs[0].type, INTERNAL_IP4_ADDRESS);
	assert_int_equal(out.u.cp.attrs[0].len, 4);
	assert_memory_equal(out.u.cp.attrs[0].value, addr, 4);
	assert_int_equal(out.u.cp.attrs[2].type, INTERNAL_IP6_ADDRESS);

	/* The reserved R bit is not part of the type. */
	static const uint8_t rbit[] = { 1, 0, 0, 0, 0x80, 0x01, 0x00, 0x00 };
	assert_int_equal(dec(IKE_PL_CP, rbit, sizeof(rbit), &out), 0);
	assert_int_equal(out.u.cp.attrs[0].type, INTERNAL_IP4_ADDRESS);
	/* Attribute length past the payload; half an attribute header. */
	static const uint8_t past[] = { 1, 0, 0, 0, 0x00, 0x01, 0x00, 0x05, 1, 2, 3, 4 };
	assert_int_equal(dec(IKE_PL_CP, past, sizeof(past), &out), -EBADMSG);
	static const uint8_t half[] = { 1, 0, 0, 0, 0x00, 0x01, 0x00 };
	assert_int_equal(dec(IKE_PL_CP, half, sizeof(half), &out), -EBADMSG);
	assert_int_equal(dec(IKE_PL_CP, half, 3, &out), -EBADMSG);

	/* More attributes than the arena holds. */
	uint8_t many[4 + 4 * (IKE_ARENA_CP_ATTRS + 1)] = { CFG_REQUEST };
	for (unsigned i = 0; i <= IKE_ARENA_CP_ATTRS; i++)
		many[4 + 4 * i + 1] = INTERNAL_IP4_DNS;
	assert_int_equal(dec(IKE_PL_CP, many, sizeof(many), &out), -EBADMSG);
	assert_int_equal(dec(IKE_PL_CP, many, sizeof(many) - 4, &out), 0);
	assert_int_equal(out.u.cp.nattrs, IKE_ARENA_CP_ATTRS);
}

static void test_sk_skf(void **state)
{
	(void)state;
	struct ike_pl out;
	assert_int_equal(dec(IKE_PL_SK, blob, 40, &out), 0);
	assert_int_equal(out.u.sk.len, 40);
	static const uint8_t skf[] = { 0, 2, 0, 3, 0xaa, 0xbb };
	assert_int_equal(dec(IKE_PL_SKF, skf, sizeof(skf), &out), 0);
	assert_int_equal(out.u.skf.frag_num, 2);
	assert_int_equal(out.u.skf.frag_total, 3);
	assert_int_equal(out.u.skf.len, 2);
	static const uint8_t skf0[] = { 0, 0, 0, 3 };
	assert_int_equal(dec(IKE_PL_SKF, skf0, sizeof(skf0), &out), -EBADMSG);
	static const uint8_t skf_over[] = { 0, 4, 0, 3 };
	assert_int_equal(dec(IKE_PL_SKF, skf_over, sizeof(skf_over), &out), -EBADMSG);
	assert_int_equal(dec(IKE_PL_SKF, skf, 3, &out), -EBADMSG);
	/* SK is written by the message encoder only. */
	uint8_t buf[64];
	struct ike_enc e;
	ike_enc_init(&e, buf, sizeof(buf));
	struct ike_pl sk = { .type = IKE_PL_SK };
	assert_int_equal(ike_pl_encode(&e, &sk), -EINVAL);
}

/* ---- chains and the writer ------------------------------------------------- */

static void test_chain_linking(void **state)
{
	(void)state;
	uint8_t buf[128];
	struct ike_enc e;
	ike_enc_init(&e, buf, sizeof(buf));
	ike_enc_data(&e, IKE_PL_NONCE, blob, 16);
	ike_enc_notify(&e, 0, NULL, 0, INITIAL_CONTACT, NULL, 0);
	ike_enc_data(&e, IKE_PL_V, blob, 4);
	assert_true(wr_ok(&e.w));
	assert_int_equal(e.first, IKE_PL_NONCE);
	assert_int_equal(e.count, 3);
	assert_int_equal(e.w.off, 20 + 8 + 8);
	assert_int_equal(buf[0], IKE_PL_N);     /* Nonce -> N */
	assert_int_equal(buf[20], IKE_PL_V);    /* N -> V */
	assert_int_equal(buf[28], IKE_PL_NONE); /* V ends it */

	/* A buffer too small overflows stickily instead of writing past it. */
	uint8_t small[30];
	ike_enc_init(&e, small, sizeof(small));
	ike_enc_data(&e, IKE_PL_NONCE, blob, 16);
	ike_enc_data(&e, IKE_PL_NONCE, blob, 16);
	assert_false(wr_ok(&e.w));

	/* A payload larger than 64 KiB cannot be expressed. */
	static uint8_t big[70000];
	static uint8_t huge[70016];
	ike_enc_init(&e, huge, sizeof(huge));
	ike_enc_data(&e, IKE_PL_V, big, sizeof(big));
	assert_false(wr_ok(&e.w));
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(ike_exchange_name(IKE_SA_INIT), "IKE_SA_INIT");
	assert_string_equal(ike_exchange_name(37), "INFORMATIONAL");
	assert_string_equal(ike_exchange_name(99), "unknown(99)");
	assert_string_equal(ike_notify_name(14), "NO_PROPOSAL_CHOSEN");
	assert_string_equal(ike_notify_name(16390), "COOKIE");
	assert_string_equal(ike_notify_name(16431), "SIGNATURE_HASH_ALGORITHMS");
	assert_string_equal(ike_notify_name(12345), "unknown(12345)");
	assert_string_equal(ike_payload_name(IKE_PL_SK), "SK");
	assert_string_equal(ike_payload_name(IKE_PL_TSI), "TSi");
	assert_string_equal(ike_protocol_name(3), "ESP");
	assert_string_equal(ike_transform_type_name(4), "D-H");
	assert_string_equal(ike_transform_id_name(IKE_XF_ENCR, 20), "ENCR_AES_GCM_16");
	assert_string_equal(ike_transform_id_name(IKE_XF_DH, 31), "CURVE_25519");
	assert_string_equal(ike_transform_id_name(IKE_XF_INTEG, 12), "AUTH_HMAC_SHA2_256_128");
	assert_string_equal(ike_transform_id_name(9, 1), "unknown(1)");
	assert_string_equal(ike_auth_method_name(2), "SHARED_KEY_MIC");
	assert_string_equal(ike_id_type_name(2), "ID_FQDN");
	assert_string_equal(ike_ts_type_name(8), "TS_IPV6_ADDR_RANGE");
	assert_string_equal(ike_cfg_type_name(2), "CFG_REPLY");
	assert_string_equal(ike_cfg_attr_name(1), "INTERNAL_IP4_ADDRESS");
	assert_string_equal(ike_cert_encoding_name(4), "CERT_X509_SIGNATURE");
	/* Two unknowns in one log line stay distinct. */
	const char *a = ike_payload_name(200), *b = ike_payload_name(201);
	assert_string_equal(a, "unknown(200)");
	assert_string_equal(b, "unknown(201)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sa_round_trip),
		cmocka_unit_test(test_sa_layout),
		cmocka_unit_test(test_sa_truncations),
		cmocka_unit_test(test_sa_hostile),
		cmocka_unit_test(test_sa_numbering),
		cmocka_unit_test(test_sa_unknown_attr),
		cmocka_unit_test(test_sa_arena_bound),
		cmocka_unit_test(test_ke_nonce_id_auth_cert_v),
		cmocka_unit_test(test_notify),
		cmocka_unit_test(test_delete),
		cmocka_unit_test(test_ts),
		cmocka_unit_test(test_cp),
		cmocka_unit_test(test_sk_skf),
		cmocka_unit_test(test_chain_linking),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
