/*
 * A batch of packets to seal or to open, with their crypto shared among the
 * dataplane's workers (workers.h). Adding a packet does, on the dataplane
 * thread and in order, everything ESP orders: the SA's sequence number or
 * replay check, lifetimes, counters. esp_batch_flush runs the AEADs of all
 * packets at once, one per worker, then hands the results back in the order
 * they were added. Both dataplanes (tun.c, afxdp.c) keep one batch per
 * direction.
 *
 * A sealed packet is written into the batch's own arena, from a clear packet
 * that must stay where it is until the flush. An opened packet is written
 * into the arena too, from ESP that must also stay where it is until the
 * flush: the stream's read, flushed at its end (rx_batch_end).
 *
 * With no workers (or one thread in all) there is nothing to share: each
 * packet is sealed or opened as it is added and reported at once; the flush
 * then has nothing left to do.
 */
#ifndef IKETCP_DATAPLANE_ESP_BATCH_H
#define IKETCP_DATAPLANE_ESP_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dataplane/sa_set.h"
#include "esp/esp.h"

struct workers;

#define ESP_BATCH_MAX 128            /* packets: two AF_XDP passes, or a 64 KiB superpacket's segments */
#define ESP_BATCH_ARENA (512 * 1024) /* their sealed or opened bytes */
#define ESP_BATCH_SHARE_MIN 4        /* fewer than this and waking a worker costs more than it saves */

/*
 * A sealed packet, in order: esp (n bytes) for sa's stream (with the lead
 * bytes of esp_batch_hold before it); n < 0: the packet was refused
 * (-EKEYEXPIRED: the SA is past its hard lifetime or out of sequence numbers;
 * else sealing failed), esp NULL.
 */
typedef void (*esp_batch_sealed_fn)(void *arg, struct sa_set_sa *sa, const uint8_t *esp, ssize_t n);
/*
 * An opened packet, in order, as sa_set_open_finish returns it: n > 0 bytes at
 * pkt (addresses in *a), -EKEYEXPIRED or -EACCES. Packets dropped and counted
 * in stats.esp are not reported.
 */
typedef void (*esp_batch_opened_fn)(void *arg, uint8_t *pkt, ssize_t n, const struct ip_addrs *a);

struct esp_batch_item {
	struct sa_set_sa *sa; /* sealing: the SA reported with the packet */
	union {
		struct esp_seal_job seal;
		struct esp_open_job open;
	};
	ssize_t n; /* the seal's result */
};

struct esp_batch {
	struct sa_set *set;
	struct workers *workers; /* not ours; NULL: every packet on this thread */
	bool opening;
	bool whole;              /* opening: trim to the IP header's length (ip_addrs_parse's ip_len) */
	esp_batch_sealed_fn sealed;
	esp_batch_opened_fn opened;
	void *arg;
	unsigned n, n_parallel;
	size_t used;
	void (*release)(void *arg); /* esp_batch_hold's: sealed packets stay until it is called */
	size_t lead;                /* bytes before each packet (esp_batch_hold's) */
	struct esp_batch_item items[ESP_BATCH_MAX];
	_Alignas(64) uint8_t arena[ESP_BATCH_ARENA];
};

void esp_batch_init_seal(struct esp_batch *b, struct sa_set *set, esp_batch_sealed_fn sealed, void *arg);
void esp_batch_init_open(struct esp_batch *b, struct sa_set *set, bool whole, esp_batch_opened_fn opened,
			 void *arg);
/* Who shares the crypto from the next flush on (NULL: nobody). */
void esp_batch_set_workers(struct esp_batch *b, struct workers *w);
/*
 * Sealing: sealed packets stay in the arena after they are reported, for a
 * consumer that holds them by reference (transport_queue), until
 * esp_batch_release, or until the arena needs the room: then the batch is
 * flushed and release(arg) is called, after which the consumer must not
 * touch any packet reported before. Packets are packed: each has lead bytes
 * before it that the consumer may write (a stream frame's header) and ends
 * where the next one's lead begins, so the frames of one stream form one run
 * of bytes. release NULL: the room is reused at each flush, and packets start
 * on their own cache lines.
 */
void esp_batch_hold(struct esp_batch *b, void (*release)(void *arg), size_t lead);
/* Flushes, then takes back the room of every packet reported (the consumer is done with them). */
void esp_batch_release(struct esp_batch *b);

/*
 * A whole clear IP packet for sa (checksums complete, sa_set_fit done): its
 * sequence number is taken now, its sealing waits for the flush. ip must stay
 * unchanged until then. A full batch is flushed first.
 */
void esp_batch_seal(struct esp_batch *b, struct sa_set_sa *sa, const uint8_t *ip, size_t len);
/*
 * The same for a packet the caller writes into the batch (up to cap bytes at
 * the pointer returned; NULL: no room), when its own buffer will not stay put:
 * a TUN read, a segment of a superpacket. Then esp_batch_seal_placed seals it
 * there, in place; without that call the room is given back at the next one.
 * sa, when known already, places it right after its ESP header and IV (packed
 * with the packet before); NULL leaves room for any SA's.
 */
uint8_t *esp_batch_seal_place(struct esp_batch *b, const struct sa_set_sa *sa, size_t cap);
void esp_batch_seal_placed(struct esp_batch *b, struct sa_set_sa *sa, uint8_t *ip, size_t len);
/*
 * A packet whose first len bytes (its headers) were written there and whose
 * rest (rest_len bytes at rest, a superpacket's payload) stays where it is
 * until the flush: a segment made without copying its payload
 * (gso_split_next_apart). The place's cap covers both.
 */
void esp_batch_seal_placed_apart(struct esp_batch *b, struct sa_set_sa *sa, uint8_t *ip, size_t len,
				 const uint8_t *rest, size_t rest_len);
/* An ESP packet (SPI first) from any stream or path: checked now, opened at the flush; esp stays until then. */
void esp_batch_open(struct esp_batch *b, const uint8_t *esp, size_t len);
/* Seals or opens everything added, then reports each packet in order. */
void esp_batch_flush(struct esp_batch *b);
/* Wipes the clear packets the arena held (at teardown). */
void esp_batch_wipe(struct esp_batch *b);

#endif
