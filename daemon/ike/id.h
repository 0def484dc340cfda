/* IKE identities (RFC 7296 section 3.5): ours from localid, the peer's checked against peerid. */
#ifndef IKETCP_IKE_ID_H
#define IKETCP_IKE_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ike/payload.h"

enum { IKE_ID_MAX = 255 };

struct ike_id {
	uint8_t type;           /* enum ike_id_type */
	uint8_t len;
	uint8_t data[IKE_ID_MAX];
};

/* localid: an IP address -> ID_IPV4_ADDR/ID_IPV6_ADDR, contains '@' ->
 * ID_RFC822_ADDR, else ID_FQDN; NULL -> our address (local). -EINVAL when
 * too long or local is not IPv4/IPv6. */
int ike_id_from_conf(struct ike_id *id, const char *localid, const struct sockaddr_storage *local);
/* Whether the peer's ID matches the configured peerid (NULL matches any):
 * addresses by value, FQDN case-insensitively, others byte for byte. */
bool ike_id_matches(const struct ike_id_pl *peer, const char *peerid);
/* "fqdn:hq.example", "ipv4:192.0.2.1" for logs and status. */
const char *ike_id_str(uint8_t type, const uint8_t *data, size_t len, char *buf, size_t cap);

#endif
