/*
 * Stateless COOKIEs (RFC 7296 2.6, RFC 9329 6.3): under load the responder
 * answers IKE_SA_INIT with N(COOKIE) only and keeps nothing; the initiator
 * reconnects and repeats its request with the cookie first.
 *
 *   cookie = <VersionIDofSecret (4)> | HMAC-SHA256(secret, Ni | IPi | SPIi)[0..16)
 *
 * The IP is the address only: over TCP the initiator's port changes with the
 * new connection (RFC 9329 6.3). The secret rotates every
 * IKE_COOKIE_ROTATE_MS; cookies of the previous secret stay valid.
 */
#ifndef IKETCP_IKE_COOKIE_H
#define IKETCP_IKE_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define IKE_COOKIE_THRESHOLD 50      /* half-open responder SAs before cookies are required */
#define IKE_COOKIE_ROTATE_MS 300000u /* secret lifetime */
#define IKE_COOKIE_LEN 20            /* version id + truncated HMAC */

struct ike_cookie_state {
	uint8_t secret[2][32];       /* [cur & 1]: current, the other: previous */
	uint32_t cur;                /* version id of the current secret */
	uint64_t rotated_ms;
	bool ready, have_prev;
};

/* Fill cookie (IKE_COOKIE_LEN bytes) for this request; -EIO without randomness. */
int ike_cookie_make(struct ike_cookie_state *cs, uint64_t now_ms, const uint8_t *ni, size_t ni_len,
		    const struct sockaddr_storage *peer, uint64_t spi_i, uint8_t *cookie);
/* Whether cookie is one we made for this request with the current or previous secret. */
bool ike_cookie_valid(struct ike_cookie_state *cs, uint64_t now_ms, const uint8_t *ni, size_t ni_len,
		      const struct sockaddr_storage *peer, uint64_t spi_i, const uint8_t *cookie, size_t len);
void ike_cookie_wipe(struct ike_cookie_state *cs);

struct ike;
/* Test hook: half-open SAs before cookies are asked for (default IKE_COOKIE_THRESHOLD). */
void ike_cookie_set_threshold(struct ike *ike, unsigned n);

#endif
