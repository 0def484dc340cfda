/*
 * RFC 9329 (RFC 8229) stream framing, independent of sockets so it can be
 * unit-tested and fuzzed on its own.
 *
 *   originator -> responder, once:  "IKETCP" (6 bytes)
 *   then, both ways, frames:
 *     +--------+--------+--------+--------+--------+---
 *     |  Length (16, counts itself)    | 0x00000000 non-ESP marker | IKE message
 *     |  Length                        | SPI (non-zero)             | ESP packet
 *     |  Length = 3                    | 0xFF  (keepalive, RFC 3948 NAT-keepalive byte)
 */
#ifndef IKETCP_ENCAP_H
#define IKETCP_ENCAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENCAP_PREFIX "IKETCP"
#define ENCAP_PREFIX_LEN 6
#define ENCAP_MAX_FRAME 65535u
#define ENCAP_LEN_FIELD 2
#define ENCAP_NON_ESP_MARKER_LEN 4
#define IKE_HEADER_LEN 28

enum encap_kind {
	ENCAP_IKE,        /* payload: the IKE message, marker stripped */
	ENCAP_ESP,        /* payload: the ESP packet, SPI first */
	ENCAP_KEEPALIVE,  /* dropped by the caller, counted */
	ENCAP_MALFORMED,  /* too short to be anything: dropped, counted */
	ENCAP_IKE_SHORT,  /* marker, then fewer bytes than an IKE header */
};

/* Why the stream must be closed. */
enum encap_error {
	ENCAP_OK = 0,
	ENCAP_ERR_PREFIX,  /* the first bytes were not "IKETCP" */
	ENCAP_ERR_LENGTH,  /* a length of 0 or 1 (RFC 9329 section 3) */
	ENCAP_ERR_NOMEM,
};

/*
 * Called for each complete frame. Returning non-zero stops the feed (the
 * callback closed the connection); encap_rx_feed then returns that value.
 */
typedef int (*encap_frame_cb)(void *arg, enum encap_kind kind, const uint8_t *payload, size_t len);

struct encap_rx {
	bool want_prefix;
	uint8_t prefix_got;
	enum encap_error error;
	/* At most one partial frame, allocated to its declared length when a frame straddles reads. */
	uint8_t *part;
	size_t part_len;   /* bytes held */
	size_t part_need;  /* total frame length once known, else 0 */
	uint8_t *spent;    /* the last such frame once delivered: freed at the next feed or encap_rx_free */
};

void encap_rx_init(struct encap_rx *rx, bool want_prefix);
void encap_rx_free(struct encap_rx *rx);

/*
 * Feed stream bytes. Returns 0 when all bytes were consumed (complete frames
 * delivered, a partial one kept), a negative value with rx->error set when
 * the stream is bad and must be closed, or the callback's non-zero value.
 * A delivered frame stays where it was until the next feed or encap_rx_free:
 * in data, or in the frame's own buffer when it straddled two feeds.
 */
int encap_rx_feed(struct encap_rx *rx, const uint8_t *data, size_t len, encap_frame_cb cb, void *arg);

/* Bytes of a frame (prefix complete) held while waiting for the rest: for "partial at close". */
bool encap_rx_mid_frame(const struct encap_rx *rx);
bool encap_rx_prefix_done(const struct encap_rx *rx);

/* Classify a complete frame payload (exported for tests). */
enum encap_kind encap_classify(const uint8_t *payload, size_t len, const uint8_t **body, size_t *body_len);

/* Frame header for an outgoing message: length (+ marker for IKE). Returns header bytes (2 or 6). */
size_t encap_frame_header(uint8_t hdr[6], enum encap_kind kind, size_t payload_len);

const char *encap_error_name(enum encap_error e);

#endif
