/*
 * Inner packets that do not fit the outer path once ESP and UDP are added
 * (RFC 4301 section 8, RFC 4459): TCP SYNs get their MSS clamped so the hosts
 * never send such packets, and the rest get ICMP "fragmentation needed" (IPv4
 * with DF) or ICMPv6 "packet too big" back to their sender.
 */
#ifndef IKETCP_DATAPLANE_PMTU_H
#define IKETCP_DATAPLANE_PMTU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct esp_sa;

/* The largest inner packet that fits outer_mtu after an outer IPv4/IPv6 header, UDP (udp true) and
 * the SA's ESP: header, IV, worst-case padding, trailer and ICV. 0 when nothing fits. */
size_t pmtu_inner_max(size_t outer_mtu, bool outer_ipv6, bool udp, const struct esp_sa *sa);

/* A TCP SYN (IPv4 or IPv6, no extension headers) with an MSS option above mss gets mss, checksum
 * updated in place. true when the packet was changed. len: the IP packet's length. */
bool pmtu_clamp_mss(uint8_t *ip, size_t len, uint16_t mss);

/* The MSS that keeps a TCP segment of this family within inner_max bytes. */
uint16_t pmtu_mss_for(size_t inner_max, bool ipv6);

/* Whether ip (len bytes) may be answered with "too big": IPv4 with DF, or IPv6; never an ICMP error
 * itself (RFC 1812 4.3.2.7, RFC 4443 2.4). */
bool pmtu_wants_too_big(const uint8_t *ip, size_t len);

/*
 * The ICMP error for ip into out: "fragmentation needed" with next-hop MTU mtu (IPv4) or "packet too
 * big" (IPv6, mtu at least 1280), from the packet's destination to its source, quoting as much of it as
 * the RFCs allow. Its length, or -EINVAL when ip is not a packet we answer, -ENOSPC when out is short.
 */
ssize_t pmtu_too_big(const uint8_t *ip, size_t len, uint16_t mtu, uint8_t *out, size_t cap);

#endif
