/*
 * The one interface between IKE and the ESP dataplane: a negotiated CHILD SA
 * (both directions) is installed, updated when its stream changes (RFC 9329
 * section 6.1 reconnection), and removed. IKE owns negotiation and keys; the
 * dataplane owns packets. Neither reaches into the other.
 */
#ifndef IKETCP_CHILD_SA_H
#define IKETCP_CHILD_SA_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "esp/esp.h"

struct tcp_conn;

/* One traffic selector, narrowed to a prefix (RFC 7296 section 2.9). */
struct child_ts {
	uint8_t family;        /* AF_INET or AF_INET6 */
	uint8_t prefix_len;
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} addr;
};

#define CHILD_MAX_TS 2 /* one IPv4 and one IPv6 pair */

struct child_sa {
	const char *phase1, *phase2;   /* names, for status and logs */
	uint32_t spi_in, spi_out;      /* spi_in: ours, what the peer sends to */
	struct esp_sa_params in, out;  /* keymat pointers are valid during the call only */
	struct child_ts local_ts[CHILD_MAX_TS], remote_ts[CHILD_MAX_TS];
	unsigned n_ts;                 /* pairs: local_ts[i] <-> remote_ts[i] */
	struct tcp_conn *conn;         /* the RFC 9329 stream carrying this SA's ESP */
	const char *proposal;          /* e.g. "AES_GCM_16_128", for status */
};

struct child_sa_counters {
	uint64_t packets_in, packets_out, bytes_in, bytes_out;
	uint64_t replay_drops, auth_failures;
};

struct child_sa_ops {
	/* Both directions at once; -errno when the SA cannot be installed (nothing left half-done). */
	int (*install)(void *arg, const struct child_sa *sa);
	/* The SA's ESP now travels on another stream (reconnected), or NULL while it is down. */
	void (*update_conn)(void *arg, uint32_t spi_in, struct tcp_conn *conn);
	void (*remove)(void *arg, uint32_t spi_in);
	int (*counters)(void *arg, uint32_t spi_in, struct child_sa_counters *out);
};

#endif
