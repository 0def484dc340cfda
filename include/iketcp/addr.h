/* Socket addresses: one way to print them, one way to see IPv4 behind a dual-stack socket. */
#ifndef IKETCP_ADDR_H
#define IKETCP_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* "a.b.c.d:port" or "[v6]:port"; "-" for anything else. Returns buf. */
const char *sockaddr_str(const struct sockaddr_storage *ss, char *buf, size_t len);
/* ::ffff:a.b.c.d (what a dual-stack listener reports for IPv4 peers) becomes AF_INET a.b.c.d,
 * so that NAT detection hashes and selectors see the address the peer itself used. */
void sockaddr_unmap(struct sockaddr_storage *ss);
/* The same IPv4/IPv6 host (with_port: and port and IPv6 scope); other families are never the same. */
bool sockaddr_same(const struct sockaddr_storage *a, const struct sockaddr_storage *b, bool with_port);

#endif
