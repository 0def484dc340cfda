/* Who hands what to whom: transport frames to IKE and ESP, IKE's messages and ESP packets to streams. */
#ifndef IKETCP_WIRING_H
#define IKETCP_WIRING_H

#include "dataplane/dataplane.h"
#include "ike/ike.h"
#include "transport/transport.h"

struct daemon;

void wiring_transport_handlers(struct daemon *d, struct transport_handlers *h);
void wiring_ike_io(struct daemon *d, struct ike_io *io);
/* dataplane_send_fn: an ESP packet as a frame on its SA's stream. */
int wiring_send_esp(void *arg, struct tcp_conn *c, const uint8_t *esp, size_t len);
/* The batched pair (AF_XDP): queue the frames of one RX pass on their streams, then write each stream once. */
int wiring_queue_esp(void *arg, struct tcp_conn *c, const uint8_t *esp, size_t len);
void wiring_flush_esp(void *arg);

#endif
