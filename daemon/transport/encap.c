/* RFC 9329 section 3 framing: prefix check, length-delimited frames, classification. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "iketcp/buf.h"
#include "transport/encap.h"

void encap_rx_init(struct encap_rx *rx, bool want_prefix)
{
	memset(rx, 0, sizeof(*rx));
	rx->want_prefix = want_prefix;
}

static void drop_part(struct encap_rx *rx)
{
	free(rx->part);
	rx->part = NULL;
	rx->part_len = rx->part_need = 0;
}

void encap_rx_free(struct encap_rx *rx)
{
	drop_part(rx);
	free(rx->spent);
	rx->spent = NULL;
}

bool encap_rx_mid_frame(const struct encap_rx *rx) { return rx->part_len > 0; }

bool encap_rx_prefix_done(const struct encap_rx *rx)
{
	return !rx->want_prefix || rx->prefix_got == ENCAP_PREFIX_LEN;
}

const char *encap_error_name(enum encap_error e)
{
	switch (e) {
	case ENCAP_OK: return "ok";
	case ENCAP_ERR_PREFIX: return "bad prefix";
	case ENCAP_ERR_LENGTH: return "invalid frame length";
	case ENCAP_ERR_NOMEM: return "out of memory";
	}
	return "unknown";
}

enum encap_kind encap_classify(const uint8_t *payload, size_t len, const uint8_t **body, size_t *body_len)
{
	struct rd r = rd_init(payload, len);
	uint32_t marker;

	*body = payload;
	*body_len = len;
	if (len == 1)
		return payload[0] == 0xFF ? ENCAP_KEEPALIVE : ENCAP_MALFORMED;
	if (rd_be32(&r, &marker))
		return ENCAP_MALFORMED;
	if (marker != 0)
		return ENCAP_ESP;
	*body = rd_ptr(&r);
	*body_len = rd_left(&r);
	return rd_left(&r) < IKE_HEADER_LEN ? ENCAP_IKE_SHORT : ENCAP_IKE;
}

static int deliver(const uint8_t *frame, size_t frame_len, encap_frame_cb cb, void *arg)
{
	const uint8_t *body;
	size_t body_len;
	enum encap_kind kind = encap_classify(frame + ENCAP_LEN_FIELD, frame_len - ENCAP_LEN_FIELD,
					      &body, &body_len);
	return cb(arg, kind, body, body_len);
}

/* A frame delivered earlier in this feed may still be in use: spent stays until encap_rx_free. */
static int fail(struct encap_rx *rx, enum encap_error e)
{
	rx->error = e;
	drop_part(rx);
	return -EBADMSG;
}

/* Frame length from its first two bytes; lengths 0 and 1 cannot even hold the field itself. */
static bool frame_len_ok(uint16_t frame_len) { return frame_len >= ENCAP_LEN_FIELD; }

static int consume_prefix(struct encap_rx *rx, const uint8_t **data, size_t *len)
{
	while (rx->prefix_got < ENCAP_PREFIX_LEN && *len) {
		if (**data != (uint8_t)ENCAP_PREFIX[rx->prefix_got])
			return fail(rx, ENCAP_ERR_PREFIX);
		rx->prefix_got++;
		(*data)++;
		(*len)--;
	}
	return 0;
}

/* Append to the held partial frame; returns 1 when it is complete. */
static int fill_partial(struct encap_rx *rx, const uint8_t **data, size_t *len)
{
	if (!rx->part_need) {
		/* Only the first byte of the length field is held. */
		rx->part[1] = **data;
		rx->part_len = 2;
		(*data)++;
		(*len)--;
		uint16_t frame_len = (uint16_t)(rx->part[0] << 8 | rx->part[1]);
		if (!frame_len_ok(frame_len))
			return fail(rx, ENCAP_ERR_LENGTH);
		uint8_t *grown = realloc(rx->part, frame_len);
		if (!grown)
			return fail(rx, ENCAP_ERR_NOMEM);
		rx->part = grown;
		rx->part_need = frame_len;
	}
	size_t take = MIN(*len, rx->part_need - rx->part_len);
	memcpy(rx->part + rx->part_len, *data, take);
	rx->part_len += take;
	*data += take;
	*len -= take;
	return rx->part_len == rx->part_need;
}

/* Keep the tail that does not complete a frame: one allocation of the frame's declared size. */
static int hold_partial(struct encap_rx *rx, const uint8_t *data, size_t len)
{
	size_t need = 0, cap = ENCAP_LEN_FIELD;

	if (len >= ENCAP_LEN_FIELD) {
		need = (size_t)(data[0] << 8 | data[1]);
		cap = need;
	}
	rx->part = malloc(cap);
	if (!rx->part)
		return fail(rx, ENCAP_ERR_NOMEM);
	memcpy(rx->part, data, len);
	rx->part_len = len;
	rx->part_need = need;
	return 0;
}

int encap_rx_feed(struct encap_rx *rx, const uint8_t *data, size_t len, encap_frame_cb cb, void *arg)
{
	int ret;

	if (rx->error)
		return -EBADMSG;
	free(rx->spent); /* the caller is done with the frames of the last feed */
	rx->spent = NULL;
	if (rx->want_prefix && (ret = consume_prefix(rx, &data, &len)))
		return ret;
	if (!len)
		return 0;

	if (rx->part_len) {
		ret = fill_partial(rx, &data, &len);
		if (ret <= 0)
			return ret;
		uint8_t *frame = rx->part;
		size_t frame_len = rx->part_len;
		rx->part = NULL;
		rx->part_len = rx->part_need = 0;
		rx->spent = frame; /* kept until the next feed: a handler may still point into it */
		ret = deliver(frame, frame_len, cb, arg);
		if (ret)
			return ret;
	}

	/* The common case: whole frames straight from the caller's buffer, no copy. */
	while (len >= ENCAP_LEN_FIELD) {
		uint16_t frame_len = (uint16_t)(data[0] << 8 | data[1]);
		if (!frame_len_ok(frame_len))
			return fail(rx, ENCAP_ERR_LENGTH);
		if (frame_len > len)
			break;
		ret = deliver(data, frame_len, cb, arg);
		if (ret)
			return ret;
		data += frame_len;
		len -= frame_len;
	}
	return len ? hold_partial(rx, data, len) : 0;
}

size_t encap_frame_header(uint8_t hdr[6], enum encap_kind kind, size_t payload_len)
{
	size_t hdr_len = kind == ENCAP_IKE ? ENCAP_LEN_FIELD + ENCAP_NON_ESP_MARKER_LEN : ENCAP_LEN_FIELD;

	wr_put_be16(hdr, (uint16_t)(hdr_len + payload_len));
	if (kind == ENCAP_IKE)
		wr_put_be32(hdr + 2, 0);
	return hdr_len;
}
