/*
 * Incremental Internet checksum update (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'))
 * for rewriting one 16-bit field, e.g. a TCP port, without touching the payload.
 */
#ifndef IKETCP_BPF_CSUM_H
#define IKETCP_BPF_CSUM_H

static __always_inline __u16 csum_fold32(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* *sum covers a field that changes from `from` to `to` (all in network order). */
static __always_inline void csum_replace2(__sum16 *sum, __be16 from, __be16 to)
{
	__u32 s = (__u16)~*sum;

	s += (__u16)~from;
	s += (__u16)to;
	*sum = (__sum16)~csum_fold32(s);
}

#endif
