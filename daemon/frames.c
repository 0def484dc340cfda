/*
 * Entry points from the RFC 9329 stream into IKE and ESP. ESP is dispatched by
 * SPI; with no CHILD SA installed every SPI is unknown, which is counted.
 */
#include "frames.h"
#include "iketcp/buf.h"
#include "iketcp/log.h"
#include "iketcp/stats.h"

static struct log_ratelimit rl_ike, rl_esp;

static void ike_frame(void *arg, struct tcp_conn *c, const uint8_t *msg, size_t len)
{
	struct rd r = rd_init(msg, len);
	uint64_t spi_i, spi_r;
	uint32_t length;
	uint8_t next, version, exchange;
	char peer[64];
	(void)arg;

	STAT_INC(ike, messages_in);
	/* RFC 7296 section 3.1: the header's length must be the message's. */
	if (rd_be64(&r, &spi_i) || rd_be64(&r, &spi_r) || rd_u8(&r, &next) || rd_u8(&r, &version) ||
	    rd_u8(&r, &exchange) || rd_skip(&r, 5) || rd_be32(&r, &length) || length != len) {
		STAT_INC(ike, invalid_messages);
		log_rl(&rl_ike, LOG_LVL_DEBUG, "IKE message from %s: malformed header",
		       sockaddr_str(transport_conn_peer(c), peer, sizeof(peer)));
		return;
	}
	/* No IKE SA exists in this build: every SPI is unknown to us. */
	STAT_INC(ike, unknown_spi);
	log_rl(&rl_ike, LOG_LVL_DEBUG, "IKE message (exchange %u) from %s for unknown SPI %016llx",
	       exchange, sockaddr_str(transport_conn_peer(c), peer, sizeof(peer)), (unsigned long long)spi_i);
}

static void esp_frame(void *arg, struct tcp_conn *c, const uint8_t *pkt, size_t len)
{
	struct rd r = rd_init(pkt, len);
	uint32_t spi;
	char peer[64];
	(void)arg;

	if (rd_be32(&r, &spi) || len < 8) {
		STAT_INC(esp, malformed);
		return;
	}
	STAT_INC(esp, unknown_spi);
	log_rl(&rl_esp, LOG_LVL_DEBUG, "ESP from %s: unknown SPI 0x%08x",
	       sockaddr_str(transport_conn_peer(c), peer, sizeof(peer)), spi);
}

const struct transport_handlers frame_handlers = {
	.ike = ike_frame,
	.esp = esp_frame,
};
