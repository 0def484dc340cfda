/*
 * Classify the first bytes of a connection on the IKE TCP port: RFC 9329
 * "IKETCP", IKE inside TLS (RFC 9329 Appendix A), or something meant for the
 * gateway's HTTPS admin service (plain HTTP, or TLS offering ALPN http/1.1/h2).
 */
#ifndef IKETCP_TRANSPORT_SNIFF_H
#define IKETCP_TRANSPORT_SNIFF_H

#include <stddef.h>
#include <stdint.h>

enum sniff_kind {
	SNIFF_NEED_MORE, /* a prefix of something we would accept: read more */
	SNIFF_IKETCP,    /* starts with the RFC 9329 "IKETCP" prefix */
	SNIFF_TLS_IKE,   /* TLS ClientHello without an HTTP ALPN: IKE in TLS */
	SNIFF_TLS_ADMIN, /* TLS ClientHello offering ALPN "http/1.1" or "h2" */
	SNIFF_HTTP,      /* an HTTP/1.x request line or the HTTP/2 preface */
	SNIFF_UNKNOWN,   /* none of these, or a malformed ClientHello */
};

/*
 * Look at the first `len` bytes received. Only the first TLS record is read
 * (at most 5 + 16384 bytes); bytes after what decided the answer are ignored.
 * Any prefix of an input classified X is classified NEED_MORE or X.
 */
enum sniff_kind sniff_classify(const uint8_t *data, size_t len);
const char *sniff_kind_name(enum sniff_kind k);

/* The most bytes sniff_classify() can need before it answers. */
#define SNIFF_MAX_BYTES (5 + 16384)

#endif
