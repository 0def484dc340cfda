/* Who hands what to whom: transport frames to IKE (through the dataplane thread's queue) and ESP, IKE's
 * messages and ESP packets to streams, IKE's CHILD SAs to the dataplane (under the dataplane lock). */
#ifndef IKETCP_WIRING_H
#define IKETCP_WIRING_H

#include "dataplane/dataplane.h"
#include "ike/ike.h"
#include "transport/transport.h"

struct daemon;

void wiring_transport_handlers(struct daemon *d, struct transport_handlers *h);
void wiring_ike_io(struct daemon *d, struct ike_io *io);
/* The IKE thread's end of the dataplane thread's queue. */
struct dpthread_sink;
void wiring_dpthread_sink(struct daemon *d, struct dpthread_sink *sink);
/* child_sa_ops on the daemon (arg): the running dataplane's, under the dataplane lock. */
extern const struct child_sa_ops wiring_child_ops;
/* sa_set_soft_life_fn's: a CHILD SA past a soft lifetime, to IKE through the queue. */
bool wiring_soft_life(void *arg, uint32_t spi_in);
/* dataplane_send_fn: an ESP packet as a frame on its SA's stream. */
int wiring_send_esp(void *arg, struct tcp_conn *c, const uint8_t *esp, size_t len);
/* The batched pair (AF_XDP): queue the frames of one RX pass on their streams, then write each stream once. */
int wiring_queue_esp(void *arg, struct tcp_conn *c, const uint8_t *esp, size_t len);
void wiring_flush_esp(void *arg);

#endif
