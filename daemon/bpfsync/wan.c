/*
 * WAN steering loader: one struct bpfsync_wan per interface owns the steer
 * skeleton, its XDP and tc attachments and its pins. This file is the only
 * writer of steer_config, steer_abi and steer_local.
 *
 * Recovery after SIGKILL: XDP (netlink attach) and the tc filters outlive the
 * process, so attach first removes an XDP program named xdp_steer (or the one
 * pinned in our pin directory), the tc filters at our fixed handle/priority, and
 * everything pinned in <pin_root>/<ifname>/, then attaches fresh. The maps are
 * the daemon's projection and are rebuilt whole; nothing stale is reused.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <linux/magic.h>

#include "bpfsync/bpfsync.h"
#include "iketcp/log.h"
#include "maps/maps.h"
#include "steer.skel.h"

#define XDP_PROG_NAME "xdp_steer"
#define TC_PROG_NAME  "tc_steer"

struct bpfsync_wan {
	struct steer_bpf *skel;
	char ifname[IF_NAMESIZE];
	int ifindex;
	char pin_dir[PATH_MAX];
	uint32_t xdp_mode; /* XDP_FLAGS_DRV_MODE or XDP_FLAGS_SKB_MODE once attached */
	bool tc_out, tc_in; /* our filters at tc egress, ingress */
	bool pinned;
	struct steer_config cfg; /* what steer_config[0] holds */
	int ncpus;
	uint64_t *percpu; /* ncpus values, for summing counters */
};

/* Set around calls expected to fail (probing tc state): their kernel messages are debug. */
static bool probing;

static int libbpf_to_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	log_msg(level == LIBBPF_WARN && !probing ? LOG_LVL_WARN : LOG_LVL_DEBUG, "%s", line); /* has "libbpf: " */
	return 0;
}

static int validate(const struct steer_settings *s)
{
	if (!s || !s->ike_tcp_port || !s->internal_port || s->syn_rate > 1000000)
		return -EINVAL;
	return 0;
}

static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return -errno;
		tmp[i] = path[i];
	}
	return 0;
}

#define BPFFS_ROOT "/sys/fs/bpf"

/*
 * A pin root under /sys/fs/bpf needs bpffs there; `ip netns exec` hides it
 * behind a fresh sysfs, so mount one (in that mount namespace only) when missing.
 */
static int ensure_bpffs(const char *ifname, const char *pin_root)
{
	struct statfs st;

	if (strncmp(pin_root, BPFFS_ROOT, strlen(BPFFS_ROOT)) != 0 ||
	    (pin_root[strlen(BPFFS_ROOT)] != '/' && pin_root[strlen(BPFFS_ROOT)] != '\0'))
		return 0;
	if (statfs(BPFFS_ROOT, &st) == 0 && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (mount("bpf", BPFFS_ROOT, "bpf", 0, "mode=0700")) {
		int err = -errno;
		log_error("bpfsync: %s: no bpf filesystem at %s and mounting one failed: %s", ifname,
			  BPFFS_ROOT, strerror(-err));
		return err;
	}
	log_info("bpfsync: %s: mounted a bpf filesystem at %s", ifname, BPFFS_ROOT);
	return 0;
}

static int write_config(struct bpfsync_wan *w)
{
	uint32_t key = 0;

	if (bpf_map__update_elem(w->skel->maps.steer_config, &key, sizeof(key), &w->cfg,
				 sizeof(w->cfg), BPF_ANY)) {
		int err = -errno;
		log_error("bpfsync: %s: writing steer_config: %s", w->ifname, strerror(-err));
		return err;
	}
	return 0;
}

/* Name of the program with this id, or "" when it cannot be read. */
static void prog_name(uint32_t id, char *name, size_t size)
{
	struct bpf_prog_info info;
	uint32_t len = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id);

	name[0] = '\0';
	if (fd < 0)
		return;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
		snprintf(name, size, "%s", info.name);
	close(fd);
}

/* Id of the program pinned at dir/name, or 0. */
static uint32_t pinned_prog_id(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct bpf_prog_info info;
	uint32_t len = sizeof(info), id = 0;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return 0;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
		id = info.id;
	close(fd);
	return id;
}

/* Detach an XDP program left by an earlier daemon; -EBUSY for someone else's, unless keep_foreign. */
static int remove_stale_xdp(const char *ifname, int ifindex, const char *pin_dir, bool keep_foreign)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	const struct {
		uint32_t *id;
		uint32_t flag;
	} modes[] = { { &q.drv_prog_id, XDP_FLAGS_DRV_MODE }, { &q.skb_prog_id, XDP_FLAGS_SKB_MODE } };
	uint32_t pinned = pinned_prog_id(pin_dir, XDP_PROG_NAME);
	char name[BPF_OBJ_NAME_LEN];
	int err;

	err = bpf_xdp_query(ifindex, 0, &q);
	if (err) {
		log_error("bpfsync: %s: querying XDP: %s", ifname, strerror(-err));
		return err;
	}
	for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
		uint32_t id = *modes[i].id;

		if (!id)
			continue;
		prog_name(id, name, sizeof(name));
		if (id != pinned && strcmp(name, XDP_PROG_NAME) != 0 && keep_foreign) {
			log_warn("bpfsync: %s: XDP program %u \"%s\" (not ours) sees packets before the tc "
				 "ingress steering", ifname, id, name);
			continue;
		}
		if (id != pinned && strcmp(name, XDP_PROG_NAME) != 0) {
			log_error("bpfsync: %s: XDP program %u \"%s\" already attached, not ours; "
				  "not replacing it", ifname, id, name);
			return -EBUSY;
		}
		err = bpf_xdp_detach(ifindex, modes[i].flag, NULL);
		if (err) {
			log_error("bpfsync: %s: detaching stale XDP program %u: %s", ifname, id,
				  strerror(-err));
			return err;
		}
		log_info("bpfsync: %s: removed stale XDP program %u left by an earlier run", ifname, id);
	}
	return 0;
}

static const char *tc_point_name(enum bpf_tc_attach_point point)
{
	return point == BPF_TC_INGRESS ? "ingress" : "egress";
}

static void remove_stale_tc(const char *ifname, int ifindex)
{
	static const enum bpf_tc_attach_point points[] = { BPF_TC_EGRESS, BPF_TC_INGRESS };

	for (size_t i = 0; i < ARRAY_SIZE(points); i++) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = points[i]);
		LIBBPF_OPTS(bpf_tc_opts, q, .handle = BPFSYNC_TC_HANDLE, .priority = BPFSYNC_TC_PRIO);
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = BPFSYNC_TC_HANDLE, .priority = BPFSYNC_TC_PRIO);

		/* clsact first: querying a missing qdisc makes libbpf print a kernel error. */
		probing = true;
		int err = bpf_tc_hook_create(&hook);
		if (!err || err == -EEXIST)
			err = bpf_tc_query(&hook, &q);
		probing = false;
		if (err)
			continue; /* no filter of ours; attach_tc says why if tc is unusable */
		if (bpf_tc_detach(&hook, &opts) == 0)
			log_info("bpfsync: %s: removed stale tc %s filter", ifname, tc_point_name(points[i]));
	}
}

/* Unlink everything pinned in pin_dir (ours alone), saying which ABI it had. */
static int remove_stale_pins(const char *ifname, const char *pin_dir)
{
	char path[PATH_MAX];
	struct iketcp_abi abi = { 0 };
	uint32_t key = 0;
	struct dirent *de;
	DIR *d;
	int fd, n = 0;

	d = opendir(pin_dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	if ((size_t)snprintf(path, sizeof(path), "%s/steer_abi", pin_dir) < sizeof(path) &&
	    (fd = bpf_obj_get(path)) >= 0) {
		if (bpf_map_lookup_elem(fd, &key, &abi))
			abi.version = 0;
		close(fd);
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			n++;
		else
			log_warn("bpfsync: %s: removing stale pin %s/%s: %s", ifname, pin_dir,
				 de->d_name, strerror(errno));
	}
	closedir(d);
	if (n)
		log_info("bpfsync: %s: removed %d stale pins (maps ABI %u, ours %u) in %s", ifname, n,
			 abi.version, IKETCP_MAPS_ABI, pin_dir);
	return 0;
}

static int pin_all(struct bpfsync_wan *w)
{
	struct bpf_program *prog;
	struct bpf_map *map;
	char path[PATH_MAX];
	int err;

	bpf_object__for_each_map(map, w->skel->obj) {
		if (bpf_map__is_internal(map))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", w->pin_dir, bpf_map__name(map)) >=
		    sizeof(path))
			return -ENAMETOOLONG;
		err = bpf_map__pin(map, path);
		if (err) {
			log_error("bpfsync: %s: pinning %s: %s", w->ifname, path, strerror(-err));
			return err;
		}
	}
	bpf_object__for_each_program(prog, w->skel->obj) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", w->pin_dir, bpf_program__name(prog)) >=
		    sizeof(path))
			return -ENAMETOOLONG;
		err = bpf_program__pin(prog, path);
		if (err) {
			log_error("bpfsync: %s: pinning %s: %s", w->ifname, path, strerror(-err));
			return err;
		}
	}
	return 0;
}

static void unpin_all(struct bpfsync_wan *w)
{
	struct bpf_program *prog;
	struct bpf_map *map;
	char path[PATH_MAX];

	bpf_object__for_each_map(map, w->skel->obj) {
		if (!bpf_map__is_internal(map) && bpf_map__is_pinned(map))
			bpf_map__unpin(map, NULL);
	}
	bpf_object__for_each_program(prog, w->skel->obj) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", w->pin_dir, bpf_program__name(prog)) <
		    sizeof(path))
			unlink(path);
	}
	if (rmdir(w->pin_dir) && errno != ENOENT)
		log_warn("bpfsync: %s: removing %s: %s", w->ifname, w->pin_dir, strerror(errno));
}

static int attach_xdp(struct bpfsync_wan *w, enum bpfsync_xdp_mode mode)
{
	int fd = bpf_program__fd(w->skel->progs.xdp_steer);
	int err = -EOPNOTSUPP;

	if (mode == BPFSYNC_XDP_NATIVE) {
		err = bpf_xdp_attach(w->ifindex, fd, XDP_FLAGS_DRV_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);
		if (err == 0) {
			w->xdp_mode = XDP_FLAGS_DRV_MODE;
			return 0;
		}
		if (err == -EBUSY || err == -EEXIST)
			goto busy;
		log_warn("bpfsync: %s: native XDP unavailable (%s), using generic XDP", w->ifname,
			 strerror(-err));
	}
	err = bpf_xdp_attach(w->ifindex, fd, XDP_FLAGS_SKB_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);
	if (err == 0) {
		w->xdp_mode = XDP_FLAGS_SKB_MODE;
		return 0;
	}
	if (err == -EBUSY || err == -EEXIST)
		goto busy;
	log_error("bpfsync: %s: attaching generic XDP: %s", w->ifname, strerror(-err));
	return err;
busy:
	log_error("bpfsync: %s: another XDP program was attached meanwhile", w->ifname);
	return -EBUSY;
}

/* prog at our handle and priority on point; *attached set once it is there. */
static int attach_tc(struct bpfsync_wan *w, enum bpf_tc_attach_point point, const struct bpf_program *prog,
		     bool *attached)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = w->ifindex, .attach_point = point);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = BPFSYNC_TC_HANDLE, .priority = BPFSYNC_TC_PRIO,
		    .prog_fd = bpf_program__fd(prog), .flags = BPF_TC_F_REPLACE);
	int err;

	/* The clsact qdisc may be shared with other filters: create it if missing, never remove it. */
	probing = true;
	err = bpf_tc_hook_create(&hook);
	probing = false;
	if (err && err != -EEXIST) {
		log_error("bpfsync: %s: creating clsact qdisc: %s", w->ifname, strerror(-err));
		return err;
	}
	err = bpf_tc_attach(&hook, &opts);
	if (err) {
		log_error("bpfsync: %s: attaching tc %s filter: %s", w->ifname, tc_point_name(point), strerror(-err));
		return err;
	}
	*attached = true;
	return 0;
}

int bpfsync_wan_attach(const char *ifname, const char *pin_root, enum bpfsync_xdp_mode mode,
		       const struct steer_settings *s, struct bpfsync_wan **out)
{
	struct iketcp_abi abi = { .version = IKETCP_MAPS_ABI };
	struct bpfsync_wan *w;
	struct statfs st;
	uint32_t key = 0;
	int err;

	*out = NULL;
	if (!ifname || !pin_root || validate(s)) {
		log_error("bpfsync: %s: invalid steering settings", ifname ? ifname : "(null)");
		return -EINVAL;
	}
	libbpf_set_print(libbpf_to_log);
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	if (strlen(ifname) >= sizeof(w->ifname)) {
		log_error("bpfsync: %s: interface name too long", ifname);
		free(w);
		return -EINVAL;
	}
	strcpy(w->ifname, ifname);
	w->ifindex = (int)if_nametoindex(ifname);
	if (!w->ifindex) {
		err = -errno;
		log_error("bpfsync: %s: no such interface: %s", ifname, strerror(errno));
		goto fail;
	}
	if ((size_t)snprintf(w->pin_dir, sizeof(w->pin_dir), "%s/%s", pin_root, ifname) >=
	    sizeof(w->pin_dir)) {
		err = -ENAMETOOLONG;
		log_error("bpfsync: %s: pin path under %s too long", ifname, pin_root);
		goto fail;
	}
	w->ncpus = libbpf_num_possible_cpus();
	if (w->ncpus <= 0) {
		err = w->ncpus ? w->ncpus : -EINVAL;
		log_error("bpfsync: %s: counting CPUs: %s", ifname, strerror(-err));
		goto fail;
	}
	w->percpu = calloc((size_t)w->ncpus, sizeof(*w->percpu));
	if (!w->percpu) {
		err = -ENOMEM;
		goto fail;
	}

	w->skel = steer_bpf__open_and_load();
	if (!w->skel) {
		err = -errno;
		log_error("bpfsync: %s: loading steer.bpf.o: %s", ifname, strerror(-err));
		goto fail;
	}

	err = ensure_bpffs(ifname, pin_root);
	if (err)
		goto fail;
	err = remove_stale_xdp(ifname, w->ifindex, w->pin_dir, mode == BPFSYNC_TC_INGRESS);
	if (err)
		goto fail;
	remove_stale_tc(ifname, w->ifindex);
	err = remove_stale_pins(ifname, w->pin_dir);
	if (err) {
		log_error("bpfsync: %s: reading %s: %s", ifname, w->pin_dir, strerror(-err));
		goto fail;
	}
	err = mkdir_p(w->pin_dir);
	if (err) {
		log_error("bpfsync: %s: creating %s: %s", ifname, w->pin_dir, strerror(-err));
		goto fail;
	}
	w->pinned = true; /* from here on, detach unpins whatever got pinned and removes the directory */
	if (statfs(w->pin_dir, &st) || st.f_type != BPF_FS_MAGIC) {
		err = -EINVAL;
		log_error("bpfsync: %s: %s is not on a bpf filesystem (mount -t bpf bpf DIR)", ifname,
			  w->pin_dir);
		goto fail;
	}

	/* Maps complete before the first packet sees them. */
	w->cfg.ike_tcp_port = s->ike_tcp_port;
	w->cfg.internal_port = s->internal_port;
	w->cfg.syn_rate = s->syn_rate;
	err = write_config(w);
	if (err)
		goto fail;
	if (bpf_map__update_elem(w->skel->maps.steer_abi, &key, sizeof(key), &abi, sizeof(abi), BPF_ANY)) {
		err = -errno;
		log_error("bpfsync: %s: writing steer_abi: %s", ifname, strerror(-err));
		goto fail;
	}
	err = pin_all(w);
	if (err)
		goto fail;
	if (mode == BPFSYNC_TC_INGRESS)
		err = attach_tc(w, BPF_TC_INGRESS, w->skel->progs.tc_steer_in, &w->tc_in);
	else
		err = attach_xdp(w, mode);
	if (err)
		goto fail;
	err = attach_tc(w, BPF_TC_EGRESS, w->skel->progs.tc_steer, &w->tc_out);
	if (err)
		goto fail;

	log_info("bpfsync: %s: steering TCP %u -> %u (%s, tc egress), SYN limit %u/s, maps in %s", ifname,
		 s->ike_tcp_port, s->internal_port, bpfsync_wan_hook_name(w), s->syn_rate, w->pin_dir);
	*out = w;
	return 0;
fail:
	bpfsync_wan_detach(w);
	return err;
}

int bpfsync_wan_update(struct bpfsync_wan *w, const struct steer_settings *s)
{
	struct steer_config old = w->cfg;
	int err;

	if (validate(s)) {
		log_error("bpfsync: %s: invalid steering settings", w->ifname);
		return -EINVAL;
	}
	w->cfg.ike_tcp_port = s->ike_tcp_port;
	w->cfg.internal_port = s->internal_port;
	w->cfg.syn_rate = s->syn_rate;
	err = write_config(w);
	if (err)
		w->cfg = old;
	return err;
}

static void addr_key(const struct sockaddr *sa, struct iketcp_addr *k)
{
	memset(k, 0, sizeof(*k));
	if (sa->sa_family == AF_INET) {
		k->addr[10] = 0xff;
		k->addr[11] = 0xff;
		memcpy(&k->addr[12], &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else {
		memcpy(k->addr, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, sizeof(k->addr));
	}
}

int bpfsync_wan_set_local_addrs(struct bpfsync_wan *w)
{
	struct steer_local_val one = { .present = 1 };
	struct bpf_map *map = w->skel->maps.steer_local;
	int fd = bpf_map__fd(map), n = 0, err = 0;
	struct ifaddrs *ifa, *list;
	struct iketcp_addr k;

	if (getifaddrs(&list)) {
		err = -errno;
		log_error("bpfsync: %s: getifaddrs: %s", w->ifname, strerror(-err));
		return err;
	}
	/* Unrestricted while the map is rebuilt, rather than restricted to a partial set. */
	w->cfg.flags &= ~STEER_F_LOCAL_ONLY;
	err = write_config(w);
	if (err)
		goto out;
	for (int i = 0; i < 2 * STEER_LOCAL_ADDRS_MAX && bpf_map_get_next_key(fd, NULL, &k) == 0; i++)
		bpf_map_delete_elem(fd, &k);

	for (ifa = list; ifa; ifa = ifa->ifa_next) {
		if (!ifa->ifa_addr || strcmp(ifa->ifa_name, w->ifname) != 0)
			continue;
		if (ifa->ifa_addr->sa_family != AF_INET && ifa->ifa_addr->sa_family != AF_INET6)
			continue;
		if (n == STEER_LOCAL_ADDRS_MAX) {
			log_warn("bpfsync: %s: more than %d addresses, steering only to the first ones",
				 w->ifname, STEER_LOCAL_ADDRS_MAX);
			err = -ENOSPC;
			break;
		}
		addr_key(ifa->ifa_addr, &k);
		if (bpf_map_update_elem(fd, &k, &one, BPF_ANY)) {
			err = -errno;
			log_error("bpfsync: %s: writing steer_local: %s", w->ifname, strerror(-err));
			goto out;
		}
		n++;
	}
	if (n) {
		w->cfg.flags |= STEER_F_LOCAL_ONLY;
		int werr = write_config(w);
		if (werr)
			err = werr;
	}
	log_info("bpfsync: %s: steering to %d local addresses%s", w->ifname, n,
		 n ? "" : " (none: any destination)");
out:
	freeifaddrs(list);
	return err;
}

int bpfsync_wan_counters(struct bpfsync_wan *w, struct steer_counters *out)
{
	uint64_t sums[STEER_CNT_MAX] = { 0 };
	int fd = bpf_map__fd(w->skel->maps.steer_counters);

	for (uint32_t i = 0; i < STEER_CNT_MAX; i++) {
		if (bpf_map_lookup_elem(fd, &i, w->percpu)) {
			int err = -errno;
			log_error("bpfsync: %s: reading steer_counters: %s", w->ifname, strerror(-err));
			return err;
		}
		for (int c = 0; c < w->ncpus; c++)
			sums[i] += w->percpu[c];
	}
	out->steered_in = sums[STEER_CNT_STEERED_IN];
	out->steered_out = sums[STEER_CNT_STEERED_OUT];
	out->passed = sums[STEER_CNT_PASSED];
	out->syn_dropped = sums[STEER_CNT_SYN_DROPPED];
	out->malformed = sums[STEER_CNT_MALFORMED];
	return 0;
}

static void detach_tc(struct bpfsync_wan *w, enum bpf_tc_attach_point point)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = w->ifindex, .attach_point = point);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = BPFSYNC_TC_HANDLE, .priority = BPFSYNC_TC_PRIO);
	int err = bpf_tc_detach(&hook, &opts);

	if (err)
		log_warn("bpfsync: %s: detaching tc %s filter: %s", w->ifname, tc_point_name(point), strerror(-err));
}

void bpfsync_wan_detach(struct bpfsync_wan *w)
{
	if (!w)
		return;
	if (w->xdp_mode) {
		LIBBPF_OPTS(bpf_xdp_attach_opts, opts,
			    .old_prog_fd = bpf_program__fd(w->skel->progs.xdp_steer));
		/* REPLACE with old_prog_fd: detach only if it is still ours. */
		int err = bpf_xdp_detach(w->ifindex, w->xdp_mode | XDP_FLAGS_REPLACE, &opts);
		if (err)
			log_warn("bpfsync: %s: detaching XDP: %s", w->ifname, strerror(-err));
	}
	if (w->tc_out)
		detach_tc(w, BPF_TC_EGRESS);
	if (w->tc_in)
		detach_tc(w, BPF_TC_INGRESS);
	if (w->pinned)
		unpin_all(w);
	steer_bpf__destroy(w->skel);
	free(w->percpu);
	free(w);
}

const char *bpfsync_wan_ifname(const struct bpfsync_wan *w) { return w->ifname; }
bool bpfsync_wan_native(const struct bpfsync_wan *w) { return w->xdp_mode == XDP_FLAGS_DRV_MODE; }
bool bpfsync_wan_tc_ingress(const struct bpfsync_wan *w) { return w->tc_in; }
const char *bpfsync_wan_hook_name(const struct bpfsync_wan *w)
{
	return w->tc_in ? "tc ingress" : w->xdp_mode == XDP_FLAGS_DRV_MODE ? "native XDP" : "generic XDP";
}
const char *bpfsync_wan_pin_dir(const struct bpfsync_wan *w) { return w->pin_dir; }
