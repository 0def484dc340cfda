/* Stateless COOKIE make and check (RFC 7296 2.6, RFC 9329 6.3); see cookie.h. */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "ike/sa.h"
#include "iketcp/stats.h"

static int rotate(struct ike_cookie_state *cs, uint64_t now_ms)
{
	if (cs->ready && now_ms - cs->rotated_ms < IKE_COOKIE_ROTATE_MS)
		return 0;
	uint32_t next = cs->ready ? cs->cur + 1 : 0;
	if (RAND_bytes(cs->secret[next & 1], sizeof(cs->secret[0])) != 1)
		return -EIO;
	cs->have_prev = cs->ready;
	cs->cur = next;
	cs->rotated_ms = now_ms;
	cs->ready = true;
	return 0;
}

static int mac(const uint8_t secret[32], uint32_t version, const uint8_t *ni, size_t ni_len,
	       const struct sockaddr_storage *peer, uint64_t spi_i, uint8_t out[IKE_COOKIE_LEN])
{
	uint8_t buf[256 + 16 + 8], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t n = 0;

	if (ni_len > 256)
		return -EINVAL;
	memcpy(buf, ni, ni_len);
	n = ni_len;
	if (peer->ss_family == AF_INET) {
		memcpy(buf + n, &((const struct sockaddr_in *)peer)->sin_addr, 4);
		n += 4;
	} else if (peer->ss_family == AF_INET6) {
		memcpy(buf + n, &((const struct sockaddr_in6 *)peer)->sin6_addr, 16);
		n += 16;
	}
	ike_spi_bytes(spi_i, buf + n);
	n += 8;
	if (!HMAC(EVP_sha256(), secret, 32, buf, n, md, &mdlen) || mdlen < IKE_COOKIE_LEN - 4)
		return -EIO;
	out[0] = (uint8_t)(version >> 24);
	out[1] = (uint8_t)(version >> 16);
	out[2] = (uint8_t)(version >> 8);
	out[3] = (uint8_t)version;
	memcpy(out + 4, md, IKE_COOKIE_LEN - 4);
	OPENSSL_cleanse(md, sizeof(md));
	return 0;
}

int ike_cookie_make(struct ike_cookie_state *cs, uint64_t now_ms, const uint8_t *ni, size_t ni_len,
		    const struct sockaddr_storage *peer, uint64_t spi_i, uint8_t *cookie)
{
	int err = rotate(cs, now_ms);
	return err ? err : mac(cs->secret[cs->cur & 1], cs->cur, ni, ni_len, peer, spi_i, cookie);
}

bool ike_cookie_valid(struct ike_cookie_state *cs, uint64_t now_ms, const uint8_t *ni, size_t ni_len,
		      const struct sockaddr_storage *peer, uint64_t spi_i, const uint8_t *cookie, size_t len)
{
	uint8_t want[IKE_COOKIE_LEN];

	if (len != IKE_COOKIE_LEN || rotate(cs, now_ms))
		return false;
	uint32_t v = (uint32_t)cookie[0] << 24 | (uint32_t)cookie[1] << 16 | (uint32_t)cookie[2] << 8 | cookie[3];
	if (v != cs->cur && !(cs->have_prev && v == cs->cur - 1))
		return false;
	if (mac(cs->secret[v & 1], v, ni, ni_len, peer, spi_i, want))
		return false;
	return CRYPTO_memcmp(want, cookie, IKE_COOKIE_LEN) == 0;
}

void ike_cookie_wipe(struct ike_cookie_state *cs)
{
	OPENSSL_cleanse(cs, sizeof(*cs));
}

void ike_cookie_set_threshold(struct ike *ike, unsigned n)
{
	ike->cookie_threshold = n;
}

/* Responder SAs that answered IKE_SA_INIT and wait for IKE_AUTH (also for iketcpctl stats). */
unsigned ike_half_open(const struct ike *ike)
{
	unsigned n = 0;
	for (const struct ike_sa *sa = ike->sas; sa; sa = sa->next)
		n += !sa->initiator && sa->state == SA_INIT_DONE;
	return n;
}

bool ike_cookie_gate(struct ike *ike, struct tcp_conn *c, const struct ike_msg *m,
		     const struct sockaddr_storage *peer)
{
	const struct ike_pl *nonce = ike_msg_find(m, IKE_PL_NONCE, NULL);
	const struct ike_pl *n = ike_msg_find_notify(m, COOKIE);
	uint64_t now = ike->loop ? loop_now_ms(ike->loop) : 0;
	uint8_t cookie[IKE_COOKIE_LEN];

	/* 2.6: a cookie we did not ask for (any more) is ignored. */
	if (ike_half_open(ike) < ike->cookie_threshold)
		return false;
	if (n && ike_cookie_valid(&ike->cookie, now, nonce->u.nonce.data, nonce->u.nonce.len, peer, m->hdr.spi_i,
				  n->u.n.data, n->u.n.len))
		return false;
	if (ike_cookie_make(&ike->cookie, now, nonce->u.nonce.data, nonce->u.nonce.len, peer, m->hdr.spi_i,
			    cookie))
		return true; /* no randomness: keep no state either */
	ike_answer_init_notify(ike, c, &m->hdr, COOKIE, cookie, sizeof(cookie));
	STAT_INC(ike, cookies_sent);
	/* RFC 9329 6.3: close the stream; the initiator reconnects with the prefix (a UDP path stays). */
	if (c && ike->io.close)
		ike->io.close(ike->io.arg, c);
	return true;
}

/* Initiator: <-- IKE_SA_INIT { N(COOKIE) }. Over TCP the responder closes the
 * stream (RFC 9329 6.3); our transport reconnects and ike_conn_up restarts
 * IKE_SA_INIT, now with the cookie first (ike_init_start). Over UDP the retry
 * goes at once. */
void ike_cookie_received(struct ike_sa *sa, const struct ike_pl *n)
{
	if (n->u.n.len < 1 || n->u.n.len > IKE_COOKIE_MAX || ++sa->cookie_tries > 2) {
		ike_fail(sa, n->u.n.len ? "the peer keeps asking for a COOKIE" : "empty COOKIE");
		return;
	}
	memcpy(sa->cookie, n->u.n.data, n->u.n.len);
	sa->cookie_len = (uint8_t)n->u.n.len;
	if (ike_sa_datagram(sa)) {
		/* 2.6 over UDP: straight away, on the same path. */
		log_info("%s: <-- IKE_SA_INIT { N(COOKIE) }: the peer is busy, retrying with the cookie", sa->tun->name);
		(void)ike_init_start(sa);
		return;
	}
	log_info("%s: <-- IKE_SA_INIT { N(COOKIE) }: the peer is busy, retrying with the cookie on a new stream",
		 sa->tun->name);
	sa->state = SA_CONNECTING;
	sa->req_out = false;
	ike_sa_arm_timer(sa); /* fails the SA if the stream never comes back */
}
