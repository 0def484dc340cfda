/* The TUN device: see tun_dev.h. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_tun.h>

#include "iketcp/log.h"
#include "dataplane/gso.h"
#include "dataplane/tun_dev.h"

/*
 * virtio-net headers on the TUN, in little-endian order, and the offloads
 * that make the kernel hand us TCP superpackets (TSO) with checksums left to
 * us: 0 or -errno (then the caller goes without).
 */
static int tun_vnet(int fd)
{
	int sz = GSO_VNET_HDR_LEN, le = 1;

	if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0 || ioctl(fd, TUNSETVNETLE, &le) < 0 ||
	    ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)) < 0)
		return -errno;
	return 0;
}

/* t->fd attached to the TUN in ifr: with vnet headers and offloads if the kernel has them. 0 or -errno. */
static int tun_attach(struct tun_dev *t, struct ifreq *ifr)
{
	const char *why = "TUNSETIFF";
	int err;

	for (int vnet = 1; vnet >= 0; vnet--) {
		struct ifreq r = *ifr;
		r.ifr_flags = (short)(IFF_TUN | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0));
		t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (t->fd < 0)
			return -errno;
		err = ioctl(t->fd, TUNSETIFF, &r) < 0 ? -errno : 0;
		if (!err && vnet) {
			why = "offloads";
			err = tun_vnet(t->fd);
		}
		if (!err) {
			t->vnet = vnet;
			*ifr = r;
			return 0;
		}
		close(t->fd);
		t->fd = -1;
		if (vnet)
			log_warn("dataplane: %s: no virtio-net offloads (%s: %s): one packet per read and write",
				 ifr->ifr_name, why, strerror(-err));
	}
	return err;
}

int tun_dev_open(struct tun_dev *t, const char *name, int mtu)
{
	struct ifreq ifr = { 0 };
	int s = -1, err = 0;

	*t = (struct tun_dev){ .fd = -1 };
	if (strlen(name) >= IFNAMSIZ)
		return -ENAMETOOLONG;
	memcpy(ifr.ifr_name, name, strlen(name));
	err = tun_attach(t, &ifr);
	if (err)
		return err;
	memcpy(t->ifname, ifr.ifr_name, IFNAMSIZ);
	t->ifname[IFNAMSIZ - 1] = '\0';

	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		goto fail_errno;
	ifr.ifr_mtu = mtu;
	if (ioctl(s, SIOCSIFMTU, &ifr) < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		goto fail_errno;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0 || ioctl(s, SIOCGIFINDEX, &ifr) < 0)
		goto fail_errno;
	t->ifindex = ifr.ifr_ifindex;
	close(s);
	return 0;

fail_errno:
	err = -errno;
	if (s >= 0)
		close(s);
	close(t->fd);
	t->fd = -1;
	return err;
}
