/* Classify a new connection on the IKE TCP port by its first bytes (see sniff.h). */
#include <stdbool.h>
#include <string.h>

#include "iketcp/buf.h"
#include "iketcp/compiler.h"
#include "transport/sniff.h"

/* RFC 8446 section 5.1 / 4 */
#define TLS_CT_HANDSHAKE 22
#define TLS_HS_CLIENT_HELLO 1
#define TLS_RECORD_MAX 16384
#define TLS_EXT_ALPN 16 /* RFC 7301 */

static const char iketcp_prefix[] = "IKETCP"; /* RFC 9329 section 3 */

/* Request-line tokens of RFC 9110 methods, and the RFC 9113 section 3.4 preface. */
static const char *const http_starts[] = {
	"GET ", "POST ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE ",
	"PRI * HTTP/2",
};

static const char *const admin_alpns[] = { "http/1.1", "h2" };

enum match { MATCH_NO, MATCH_PARTIAL, MATCH_YES };

/* Does data start with token, or is data a (shorter) prefix of it? */
static enum match match_start(const uint8_t *data, size_t len, const char *token)
{
	size_t tlen = strlen(token);

	if (memcmp(data, token, MIN(len, tlen)) != 0)
		return MATCH_NO;
	return len >= tlen ? MATCH_YES : MATCH_PARTIAL;
}

/*
 * RFC 7301 section 3.1, the extension_data of "application_layer_protocol_negotiation":
 *   u16 list_len (>= 2) | { u8 name_len (>= 1) | name } ...   list_len == extension length - 2
 * 1 = an admin protocol is offered, 0 = not, -1 = malformed.
 */
static int alpn_offers_admin(struct rd ext)
{
	struct rd list;
	uint16_t list_len;
	int admin = 0;

	if (rd_be16(&ext, &list_len) || list_len < 2 || rd_sub(&ext, &list, list_len) ||
	    !rd_empty(&ext))
		return -1;
	while (!rd_empty(&list)) {
		const uint8_t *name;
		uint8_t name_len;

		if (rd_u8(&list, &name_len) || name_len == 0 || rd_view(&list, &name, name_len))
			return -1;
		for (size_t i = 0; i < ARRAY_SIZE(admin_alpns); i++) {
			if (name_len == strlen(admin_alpns[i]) &&
			    memcmp(name, admin_alpns[i], name_len) == 0)
				admin = 1;
		}
	}
	return admin;
}

/*
 * RFC 8446 section 4.1.2, the body of a ClientHello handshake message:
 *   u16 legacy_version | random[32] | u8 sid_len (<= 32) | session_id |
 *   u16 cs_len (even, >= 2) | cipher_suites | u8 comp_len (>= 1) | compression_methods |
 *   [ u16 ext_len | { u16 type | u16 len | data } ... ]   (absent only in pre-TLS 1.2 hellos)
 * Every length must account for exactly the bytes it covers.
 */
static enum sniff_kind classify_client_hello(struct rd ch)
{
	struct rd exts;
	uint16_t version, cs_len, ext_len;
	uint8_t sid_len, comp_len;
	bool seen_alpn = false;
	int admin = 0;

	if (rd_be16(&ch, &version) || version >> 8 != 3 || rd_skip(&ch, 32) ||
	    rd_u8(&ch, &sid_len) || sid_len > 32 || rd_skip(&ch, sid_len) ||
	    rd_be16(&ch, &cs_len) || cs_len < 2 || cs_len % 2 || rd_skip(&ch, cs_len) ||
	    rd_u8(&ch, &comp_len) || comp_len < 1 || rd_skip(&ch, comp_len))
		return SNIFF_UNKNOWN;
	if (rd_empty(&ch))
		return SNIFF_TLS_IKE;
	if (rd_be16(&ch, &ext_len) || rd_sub(&ch, &exts, ext_len) || !rd_empty(&ch))
		return SNIFF_UNKNOWN;
	while (!rd_empty(&exts)) {
		struct rd ext;
		uint16_t type, len;

		if (rd_be16(&exts, &type) || rd_be16(&exts, &len) || rd_sub(&exts, &ext, len))
			return SNIFF_UNKNOWN;
		if (type != TLS_EXT_ALPN)
			continue;
		/* RFC 8446 section 4.2: at most one extension of each type. */
		if (seen_alpn)
			return SNIFF_UNKNOWN;
		seen_alpn = true;
		admin = alpn_offers_admin(ext);
		if (admin < 0)
			return SNIFF_UNKNOWN;
	}
	return admin ? SNIFF_TLS_ADMIN : SNIFF_TLS_IKE;
}

/*
 * RFC 8446 section 5.1 record header, then section 4 handshake header:
 *   u8 type (22) | u16 legacy_record_version (0x0301..0x0304) | u16 length (4..16384) |
 *   u8 msg_type (1) | u24 length (== record length - 4) | ClientHello
 * The ClientHello must fit in the first record; clients do not fragment it.
 * The header is checked on whatever part of it has arrived, so a prefix of a
 * bad header is refused at once instead of waiting for more.
 */
static enum sniff_kind classify_tls(const uint8_t *data, size_t len)
{
	struct rd r = rd_init(data, len), body, ch;
	uint16_t rec_version, rec_len;
	uint8_t type, msg_type;
	uint32_t hs_len;

	if (len >= 2 && data[1] != 3)
		return SNIFF_UNKNOWN;
	if (len >= 3 && (data[2] < 1 || data[2] > 4))
		return SNIFF_UNKNOWN;
	if (len >= 4 && data[3] > TLS_RECORD_MAX >> 8)
		return SNIFF_UNKNOWN;
	if (rd_u8(&r, &type) || rd_be16(&r, &rec_version) || rd_be16(&r, &rec_len))
		return SNIFF_NEED_MORE;
	if (type != TLS_CT_HANDSHAKE || rec_len < 4 || rec_len > TLS_RECORD_MAX)
		return SNIFF_UNKNOWN;
	if (len >= 6 && data[5] != TLS_HS_CLIENT_HELLO)
		return SNIFF_UNKNOWN;
	if (rd_sub(&r, &body, rec_len))
		return SNIFF_NEED_MORE;

	uint8_t l1, l2, l3;
	if (rd_u8(&body, &msg_type) || rd_u8(&body, &l1) || rd_u8(&body, &l2) ||
	    rd_u8(&body, &l3))
		return SNIFF_UNKNOWN;
	hs_len = (uint32_t)l1 << 16 | (uint32_t)l2 << 8 | l3;
	if (msg_type != TLS_HS_CLIENT_HELLO || hs_len != rd_left(&body) ||
	    rd_sub(&body, &ch, hs_len))
		return SNIFF_UNKNOWN;
	return classify_client_hello(ch);
}

enum sniff_kind sniff_classify(const uint8_t *data, size_t len)
{
	bool partial = false;

	if (len == 0)
		return SNIFF_NEED_MORE;
	if (data[0] == TLS_CT_HANDSHAKE)
		return classify_tls(data, len);

	switch (match_start(data, len, iketcp_prefix)) {
	case MATCH_YES:
		return SNIFF_IKETCP;
	case MATCH_PARTIAL:
		return SNIFF_NEED_MORE;
	case MATCH_NO:
		break;
	}
	for (size_t i = 0; i < ARRAY_SIZE(http_starts); i++) {
		switch (match_start(data, len, http_starts[i])) {
		case MATCH_YES:
			return SNIFF_HTTP;
		case MATCH_PARTIAL:
			partial = true;
			break;
		case MATCH_NO:
			break;
		}
	}
	return partial ? SNIFF_NEED_MORE : SNIFF_UNKNOWN;
}

const char *sniff_kind_name(enum sniff_kind k)
{
	switch (k) {
	case SNIFF_NEED_MORE:
		return "need-more";
	case SNIFF_IKETCP:
		return "iketcp";
	case SNIFF_TLS_IKE:
		return "tls-ike";
	case SNIFF_TLS_ADMIN:
		return "tls-admin";
	case SNIFF_HTTP:
		return "http";
	case SNIFF_UNKNOWN:
		return "unknown";
	}
	return "invalid";
}
