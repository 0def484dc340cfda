/* Identities from localid and their match against peerid (RFC 7296 3.5). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ike/id.h"

int ike_id_from_conf(struct ike_id *id, const char *localid, const struct sockaddr_storage *local)
{
	memset(id, 0, sizeof(*id));
	if (!localid || !*localid) {
		if (local && local->ss_family == AF_INET) {
			id->type = ID_IPV4_ADDR;
			id->len = 4;
			memcpy(id->data, &((const struct sockaddr_in *)local)->sin_addr, 4);
			return 0;
		}
		if (local && local->ss_family == AF_INET6) {
			id->type = ID_IPV6_ADDR;
			id->len = 16;
			memcpy(id->data, &((const struct sockaddr_in6 *)local)->sin6_addr, 16);
			return 0;
		}
		return -EINVAL;
	}
	if (inet_pton(AF_INET, localid, id->data) == 1) {
		id->type = ID_IPV4_ADDR;
		id->len = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, localid, id->data) == 1) {
		id->type = ID_IPV6_ADDR;
		id->len = 16;
		return 0;
	}
	size_t n = strlen(localid);
	if (n > IKE_ID_MAX)
		return -EINVAL;
	id->type = strchr(localid, '@') ? ID_RFC822_ADDR : ID_FQDN;
	id->len = (uint8_t)n;
	memcpy(id->data, localid, n);
	return 0;
}

bool ike_id_matches(const struct ike_id_pl *peer, const char *peerid)
{
	uint8_t a[16];

	if (!peerid || !*peerid)
		return true;
	size_t n = strlen(peerid);
	switch (peer->id_type) {
	case ID_IPV4_ADDR:
		return peer->len == 4 && inet_pton(AF_INET, peerid, a) == 1 && !memcmp(a, peer->data, 4);
	case ID_IPV6_ADDR:
		return peer->len == 16 && inet_pton(AF_INET6, peerid, a) == 1 && !memcmp(a, peer->data, 16);
	case ID_FQDN:
		return peer->len == n && !strncasecmp((const char *)peer->data, peerid, n) &&
		       !memchr(peer->data, 0, n);
	default:
		return peer->len == n && !memcmp(peer->data, peerid, n);
	}
}

const char *ike_id_str(uint8_t type, const uint8_t *data, size_t len, char *buf, size_t cap)
{
	char tmp[INET6_ADDRSTRLEN];

	if (type == ID_IPV4_ADDR && len == 4 && inet_ntop(AF_INET, data, tmp, sizeof(tmp))) {
		snprintf(buf, cap, "ipv4:%s", tmp);
	} else if (type == ID_IPV6_ADDR && len == 16 && inet_ntop(AF_INET6, data, tmp, sizeof(tmp))) {
		snprintf(buf, cap, "ipv6:%s", tmp);
	} else if (type == ID_FQDN || type == ID_RFC822_ADDR) {
		size_t o = (size_t)snprintf(buf, cap, "%s:", type == ID_FQDN ? "fqdn" : "email");
		for (size_t i = 0; i < len && o + 1 < cap; i++)
			buf[o++] = data[i] >= 0x20 && data[i] < 0x7f ? (char)data[i] : '?';
		if (cap)
			buf[o < cap ? o : cap - 1] = 0;
	} else {
		snprintf(buf, cap, "%s(%zu bytes)", ike_id_type_name(type), len);
	}
	return buf;
}
