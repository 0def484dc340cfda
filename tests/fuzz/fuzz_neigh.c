/*
 * The AF_XDP dataplane's rtnetlink reply parsers (RTM_NEWROUTE, RTM_NEWNEIGH):
 * any bytes give 0, -ENOENT or -EBADMSG, never a read past the buffer, and a
 * parsed gateway never claims more bytes than its family holds.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "dataplane/neigh.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t gw[16], mac[6];
	unsigned gw_len = 0;
	int oif = 0;

	if (size < 1)
		return 0;
	uint8_t family = data[0] & 1 ? AF_INET6 : AF_INET;
	int r = neigh_parse_route(data + 1, size - 1, family, &oif, gw, &gw_len);
	/* -EHOSTUNREACH: a local, blackhole, unreachable or prohibit route. */
	if (r != 0 && r != -EBADMSG && r != -EHOSTUNREACH)
		abort();
	if (!r && gw_len > (family == AF_INET ? 4u : 16u))
		abort();
	r = neigh_parse_neigh(data + 1, size - 1, mac);
	if (r != 0 && r != -EBADMSG && r != -ENOENT)
		abort();
	return 0;
}
