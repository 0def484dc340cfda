/*
 * Opening a TUN device the way the TUN dataplane uses it: no packet
 * information, virtio-net headers and TCP offloads where the kernel has them,
 * MTU set, up. Shared with the benchmarks' TUN relay, so the relay's floor is
 * measured on the same device.
 */
#ifndef IKETCP_DATAPLANE_TUN_DEV_H
#define IKETCP_DATAPLANE_TUN_DEV_H

#include <stdbool.h>
#include <net/if.h>

struct tun_dev {
	int fd; /* O_NONBLOCK */
	int ifindex;
	char ifname[IFNAMSIZ];
	bool vnet; /* IFF_VNET_HDR: every read and write starts with a virtio_net_hdr (gso.h) */
};

/* Creates or attaches TUN name (a kernel pattern such as "tun%d" works too): 0 or -errno, t->fd -1. */
int tun_dev_open(struct tun_dev *t, const char *name, int mtu);

#endif
