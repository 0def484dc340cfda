/*
 * daemon/bpfsync/wan.c against a real kernel: attach, pins, config, counters,
 * local addresses, detach, and recovery from a daemon killed with SIGKILL. The
 * process moves itself into a fresh network and mount namespace with a veth
 * pair and a private bpffs, so nothing outside is touched. Root only; skips
 * when namespaces or BPF are unavailable.
 */
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "bpfsync/bpfsync.h"
#include "iketcp/compiler.h"
#include "iketcp/log.h"
#include "maps/maps.h"
#include "tests/bpf/steer_pkt.h"

#define IFNAME "ikv0"
#define PEER   "ikv1"
#define NONATIVE "ikbr0" /* a bridge: no native XDP */

static char bpffs[64];
static char pin_root[128];
static const char *skip_reason;

static const struct steer_settings defaults = { .ike_tcp_port = 443, .internal_port = 11443, .syn_rate = 0 };

static int sh(const char *cmd)
{
	int rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int group_setup(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		skip_reason = "needs root";
		return 0;
	}
	if (unshare(CLONE_NEWNET | CLONE_NEWNS)) {
		skip_reason = "unshare(CLONE_NEWNET|CLONE_NEWNS) failed";
		return 0;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		skip_reason = "making mounts private failed";
		return 0;
	}
	snprintf(bpffs, sizeof(bpffs), "/tmp/iketcp-bpffs.XXXXXX");
	if (!mkdtemp(bpffs) || mount("bpf", bpffs, "bpf", 0, NULL)) {
		skip_reason = "cannot mount a private bpffs";
		bpffs[0] = '\0';
		return 0;
	}
	/* A nested root, as bpf-pin-path /sys/fs/bpf/iketcp would be: attach does mkdir -p. */
	snprintf(pin_root, sizeof(pin_root), "%s/iketcp/wan", bpffs);
	if (sh("ip link set lo up && ip link add " IFNAME " type veth peer name " PEER
	       " && ip link set " IFNAME " up && ip link set " PEER " up"
	       " && ip addr add 10.88.0.1/24 dev " IFNAME " && ip addr add fd88::1/64 dev " IFNAME " nodad"
	       " && ip link add " NONATIVE " type bridge && ip link set " NONATIVE " up")) {
		skip_reason = "cannot create a veth pair";
		return 0;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (bpffs[0]) {
		umount2(bpffs, MNT_DETACH);
		rmdir(bpffs);
	}
	return 0;
}

struct xdp_state {
	uint32_t drv, skb;
};

static struct xdp_state xdp_query(void)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct xdp_state s;

	assert_int_equal(bpf_xdp_query((int)if_nametoindex(IFNAME), 0, &q), 0);
	s.drv = q.drv_prog_id;
	s.skb = q.skb_prog_id;
	return s;
}

/* Id of our tc egress filter's program, 0 if there is none. */
static uint32_t tc_prog_id_at(enum bpf_tc_attach_point point)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)if_nametoindex(IFNAME), .attach_point = point);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = BPFSYNC_TC_HANDLE, .priority = BPFSYNC_TC_PRIO);

	if (bpf_tc_query(&hook, &opts))
		return 0;
	return opts.prog_id;
}

static uint32_t tc_prog_id(void) { return tc_prog_id_at(BPF_TC_EGRESS); }

static int count_lines(const char *cmd, const char *needle)
{
	char line[512];
	int n = 0;
	FILE *f = popen(cmd, "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	pclose(f);
	return n;
}

static int pinned_fd(const struct bpfsync_wan *w, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", bpfsync_wan_pin_dir(w), name);
	return bpf_obj_get(path);
}

static struct steer_config pinned_config(const struct bpfsync_wan *w)
{
	struct steer_config c;
	uint32_t k = 0;
	int fd = pinned_fd(w, "steer_config");

	assert_true(fd >= 0);
	assert_int_equal(bpf_map_lookup_elem(fd, &k, &c), 0);
	close(fd);
	return c;
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* Everything gone: no XDP, no tc filter of ours, no pin directory. */
static void assert_clean(const char *pin_dir)
{
	struct xdp_state x = xdp_query();

	assert_int_equal(x.drv, 0);
	assert_int_equal(x.skb, 0);
	assert_int_equal(tc_prog_id(), 0);
	assert_int_equal(tc_prog_id_at(BPF_TC_INGRESS), 0);
	assert_false(exists(pin_dir));
	assert_int_equal(count_lines("ip link show dev " IFNAME, "prog/xdp"), 0);
}

static void test_attach_detach(void **state)
{
	struct bpfsync_wan *w = NULL;
	char pin_dir[256];
	struct iketcp_abi abi;
	uint32_t k = 0;
	int fd;

	(void)state;
	if (skip_reason)
		skip();
	assert_int_equal(bpfsync_wan_attach(IFNAME, pin_root, BPFSYNC_XDP_NATIVE, &defaults, &w), 0);
	assert_non_null(w);
	assert_string_equal(bpfsync_wan_ifname(w), IFNAME);
	assert_true(bpfsync_wan_native(w)); /* veth has native XDP */
	snprintf(pin_dir, sizeof(pin_dir), "%s", bpfsync_wan_pin_dir(w));

	struct xdp_state x = xdp_query();
	assert_true(x.drv != 0);
	assert_int_equal(x.skb, 0);
	assert_true(tc_prog_id() != 0);
	assert_int_equal(count_lines("ip link show dev " IFNAME, "prog/xdp id"), 1);
	assert_int_equal(count_lines("tc filter show dev " IFNAME " egress", "tc_steer"), 1);

	static const char *const pins[] = { "steer_abi", "steer_config", "steer_counters", "steer_local",
					    "steer_syn", "xdp_steer", "tc_steer" };
	for (size_t i = 0; i < ARRAY_SIZE(pins); i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", pin_dir, pins[i]);
		if (!exists(path))
			fail_msg("not pinned: %s", path);
	}
	struct steer_config c = pinned_config(w);
	assert_int_equal(c.ike_tcp_port, 443);
	assert_int_equal(c.internal_port, 11443);
	assert_int_equal(c.syn_rate, 0);
	fd = pinned_fd(w, "steer_abi");
	assert_true(fd >= 0);
	assert_int_equal(bpf_map_lookup_elem(fd, &k, &abi), 0);
	assert_int_equal(abi.version, IKETCP_MAPS_ABI);
	close(fd);

	/* bpftool shows the BTF field names of the pinned maps. */
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "bpftool map dump pinned %s/steer_config 2>&1", pin_dir);
	assert_int_equal(count_lines(cmd, "\"internal_port\": 11443"), 1);

	bpfsync_wan_detach(w);
	assert_clean(pin_dir);
	bpfsync_wan_detach(NULL);
}

static void test_generic(void **state)
{
	struct bpfsync_wan *w = NULL;
	char pin_dir[256];

	(void)state;
	if (skip_reason)
		skip();
	assert_int_equal(bpfsync_wan_attach(IFNAME, pin_root, BPFSYNC_XDP_GENERIC, &defaults, &w), 0);
	assert_false(bpfsync_wan_native(w));
	struct xdp_state x = xdp_query();
	assert_int_equal(x.drv, 0);
	assert_true(x.skb != 0);
	assert_int_equal(count_lines("ip link show dev " IFNAME, "prog/xdp id"), 1);
	snprintf(pin_dir, sizeof(pin_dir), "%s", bpfsync_wan_pin_dir(w));
	bpfsync_wan_detach(w);
	assert_clean(pin_dir);
}

/* Native asked for on a device without it: generic, with a warning. */
static void test_native_fallback(void **state)
{
	struct bpfsync_wan *w = NULL;
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	(void)state;
	if (skip_reason)
		skip();
	assert_int_equal(bpfsync_wan_attach(NONATIVE, pin_root, BPFSYNC_XDP_NATIVE, &defaults, &w), 0);
	assert_false(bpfsync_wan_native(w));
	assert_int_equal(bpf_xdp_query((int)if_nametoindex(NONATIVE), 0, &q), 0);
	assert_int_equal(q.drv_prog_id, 0);
	assert_true(q.skb_prog_id != 0);
	assert_int_equal(count_lines("ip link show dev " NONATIVE, "prog/xdp id"), 1);
	bpfsync_wan_detach(w);
	assert_int_equal(bpf_xdp_query((int)if_nametoindex(NONATIVE), 0, &q), 0);
	assert_int_equal(q.skb_prog_id, 0);
}

static void test_update(void **state)
{
	struct bpfsync_wan *w = NULL;

	(void)state;
	if (skip_reason)
		skip();
	assert_int_equal(bpfsync_wan_attach(IFNAME, pin_root, BPFSYNC_XDP_NATIVE, &defaults, &w), 0);
	assert_int_equal(bpfsync_wan_update(w, &(struct steer_settings){ 8443, 9443, 250 }), 0);
	struct steer_config c = pinned_config(w);
	assert_int_equal(c.ike_tcp_port, 8443);
	assert_int_equal(c.internal_port, 9443);
	assert_int_equal(c.syn_rate, 250);
	assert_int_equal(bpfsync_wan_update(w, &(struct steer_settings){ 0, 9443, 0 }), -EINVAL);
	assert_int_equal(bpfsync_wan_update(w, &(struct steer_settings){ 443, 9443, 1000001 }), -EINVAL);
	c = pinned_config(w);
	assert_int_equal(c.ike_tcp_port, 8443); /* unchanged by the rejected updates */
	bpfsync_wan_detach(w);
}

static uint32_t run_pinned_xdp(const struct bpfsync_wan *w, const struct pkt_spec *s)
{
	uint8_t in[512], out[512];
	struct pkt_layout l;
	int fd = pinned_fd(w, "xdp_steer");
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_out = out, .data_size_out = sizeof(out),
		    .repeat = 1);

	assert_true(fd >= 0);
	assert_true(pkt_build(in, sizeof(in), s, &l) > 0);
	o.data_size_in = (uint32_t)l.len;
	assert_int_equal(bpf_prog_test_run_opts(fd, &o), 0);
	close(fd);
	return o.retval;
}

static void test_counters_and_local_addrs(void **state)
{
	struct bpfsync_wan *w = NULL;
	struct steer_counters c;

	(void)state;
	if (skip_reason)
		skip();
	assert_int_equal(bpfsync_wan_attach(IFNAME, pin_root, BPFSYNC_XDP_NATIVE,
					    &(struct steer_settings){ 443, 11443, 2 }, &w), 0);
	assert_int_equal(bpfsync_wan_counters(w, &c), 0);
	assert_int_equal(c.steered_in + c.steered_out + c.passed + c.syn_dropped + c.malformed, 0);

	/* Map empty: any destination is steered (198.51.100.1 is not ours). */
	assert_int_equal(run_pinned_xdp(w, &(struct pkt_spec){ .dport = 443 }), XDP_PASS);
	assert_int_equal(run_pinned_xdp(w, &(struct pkt_spec){ .dport = 80 }), XDP_PASS);
	for (int i = 0; i < 3; i++)
		run_pinned_xdp(w, &(struct pkt_spec){ .dport = 443, .tcp_flags = TCPF_SYN, .src_last = 5 });
	uint8_t cut[20] = { [12] = 0x08, [13] = 0x00 };
	uint8_t out[64];
	int fd = pinned_fd(w, "xdp_steer");
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = cut, .data_size_in = sizeof(cut), .data_out = out,
		    .data_size_out = sizeof(out));
	assert_int_equal(bpf_prog_test_run_opts(fd, &o), 0);
	close(fd);

	assert_int_equal(bpfsync_wan_counters(w, &c), 0);
	assert_int_equal(c.steered_in, 3);
	assert_int_equal(c.passed, 1);
	assert_int_equal(c.syn_dropped, 1);
	assert_int_equal(c.malformed, 1);
	assert_int_equal(c.steered_out, 0);

	/* Our addresses: 10.88.0.1, fd88::1 and the link-local one. */
	assert_int_equal(bpfsync_wan_set_local_addrs(w), 0);
	struct steer_config cfg = pinned_config(w);
	assert_true(cfg.flags & STEER_F_LOCAL_ONLY);
	struct iketcp_addr a4 = { { [10] = 0xff, [11] = 0xff, [12] = 10, [13] = 88, [14] = 0, [15] = 1 } };
	struct iketcp_addr a6 = { { 0xfd, 0x88, [15] = 1 } }, k;
	struct steer_local_val v;
	fd = pinned_fd(w, "steer_local");
	assert_true(fd >= 0);
	assert_int_equal(bpf_map_lookup_elem(fd, &a4, &v), 0);
	assert_int_equal(bpf_map_lookup_elem(fd, &a6, &v), 0);
	int n = 0;
	struct iketcp_addr *prev = NULL;
	while (bpf_map_get_next_key(fd, prev, &k) == 0) {
		static struct iketcp_addr cur;
		cur = k, prev = &cur, n++;
	}
	assert_int_equal(n, 3);
	close(fd);
	/* Now 198.51.100.1 is not steered; a second call rebuilds the same set. */
	assert_int_equal(run_pinned_xdp(w, &(struct pkt_spec){ .dport = 443 }), XDP_PASS);
	assert_int_equal(bpfsync_wan_counters(w, &c), 0);
	assert_int_equal(c.steered_in, 3);
	assert_int_equal(c.passed, 2);
	assert_int_equal(bpfsync_wan_set_local_addrs(w), 0);
	/* A SIGHUP update keeps the restriction. */
	assert_int_equal(bpfsync_wan_update(w, &defaults), 0);
	assert_true(pinned_config(w).flags & STEER_F_LOCAL_ONLY);
	bpfsync_wan_detach(w);
}

/* A child attaches in mode and dies by SIGKILL, leaving its attachments and pins behind. */
static void attach_and_kill(enum bpfsync_xdp_mode mode)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct bpfsync_wan *cw;
		if (bpfsync_wan_attach(IFNAME, pin_root, mode, &defaults, &cw))
			_exit(1);
		raise(SIGKILL);
		_exit(2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

/* A daemon killed with SIGKILL leaves XDP, the tc filter and pins behind; the next attach cleans up. */
static void test_sigkill_recovery(void **state)
{
	char pin_dir[256];
	struct bpfsync_wan *w = NULL;

	(void)state;
	if (skip_reason)
		skip();
	snprintf(pin_dir, sizeof(pin_dir), "%s/%s", pin_root, IFNAME);
	attach_and_kill(BPFSYNC_XDP_NATIVE);

	struct xdp_state stale = xdp_query();
	uint32_t stale_tc = tc_prog_id();
	assert_true(stale.drv != 0);
	assert_true(stale_tc != 0);
	assert_true(exists(pin_dir));

	assert_int_equal(bpfsync_wan_attach(IFNAME, pin_root, BPFSYNC_XDP_NATIVE, &defaults, &w), 0);
	struct xdp_state now = xdp_query();
	assert_true(now.drv != 0 && now.drv != stale.drv);
	assert_int_equal(now.skb, 0);
	assert_true(tc_prog_id() != 0 && tc_prog_id() != stale_tc);
	assert_int_equal(count_lines("tc filter show dev " IFNAME " egress", "tc_steer"), 1);
	assert_int_equal(count_lines("ip link show dev " IFNAME, "prog/xdp id"), 1);
	/* The stale programs are gone, not merely detached: their pins were removed. */
	int fd = bpf_prog_get_fd_by_id(stale.drv);
	assert_true(fd < 0);

	/* A stale generic-mode attachment is found too. */
	bpfsync_wan_detach(w);
	attach_and_kill(BPFSYNC_XDP_GENERIC);
	assert_true(xdp_query().skb != 0);
	assert_int_equal(bpfsync_wan_attach(IFNAME, pin_root, BPFSYNC_XDP_NATIVE, &defaults, &w), 0);
	now = xdp_query();
	assert_true(now.drv != 0);
	assert_int_equal(now.skb, 0);

	/* And a stale tc ingress filter (`set steer-hook tc`), when the next run uses XDP. */
	bpfsync_wan_detach(w);
	attach_and_kill(BPFSYNC_TC_INGRESS);
	assert_true(tc_prog_id_at(BPF_TC_INGRESS) != 0);
	assert_int_equal(bpfsync_wan_attach(IFNAME, pin_root, BPFSYNC_XDP_NATIVE, &defaults, &w), 0);
	assert_int_equal(tc_prog_id_at(BPF_TC_INGRESS), 0);
	assert_true(xdp_query().drv != 0);
	bpfsync_wan_detach(w);
	assert_clean(pin_dir);
}

/* `set steer-hook tc`: ingress steering at tc, no XDP at all. */
static void test_tc_ingress(void **state)
{
	struct bpfsync_wan *w = NULL;
	char pin_dir[256], path[512];

	(void)state;
	if (skip_reason)
		skip();
	assert_int_equal(bpfsync_wan_attach(IFNAME, pin_root, BPFSYNC_TC_INGRESS, &defaults, &w), 0);
	assert_true(bpfsync_wan_tc_ingress(w));
	assert_false(bpfsync_wan_native(w));
	assert_string_equal(bpfsync_wan_hook_name(w), "tc ingress");
	struct xdp_state x = xdp_query();
	assert_int_equal(x.drv, 0);
	assert_int_equal(x.skb, 0);
	assert_true(tc_prog_id_at(BPF_TC_INGRESS) != 0);
	assert_true(tc_prog_id() != 0);
	assert_int_equal(count_lines("tc filter show dev " IFNAME " ingress", "tc_steer_in"), 1);
	assert_int_equal(count_lines("tc filter show dev " IFNAME " egress", "tc_steer"), 1);
	snprintf(pin_dir, sizeof(pin_dir), "%s", bpfsync_wan_pin_dir(w));
	snprintf(path, sizeof(path), "%s/tc_steer_in", pin_dir);
	assert_true(exists(path));
	bpfsync_wan_detach(w);
	assert_clean(pin_dir);
}

/* Someone else's XDP program (it passes all), attached natively to IFNAME: its fd. */
static int attach_foreign_xdp(void)
{
	const struct bpf_insn insns[] = {
		{ .code = 0xb7, .dst_reg = 0, .imm = XDP_PASS }, /* r0 = XDP_PASS */
		{ .code = 0x95 },                                /* exit */
	};
	int prog = bpf_prog_load(BPF_PROG_TYPE_XDP, "other_xdp", "GPL", insns, ARRAY_SIZE(insns), NULL);

	assert_true(prog >= 0);
	assert_int_equal(bpf_xdp_attach((int)if_nametoindex(IFNAME), prog, XDP_FLAGS_DRV_MODE, NULL), 0);
	return prog;
}

/* An XDP program that is not ours stays, and steering runs at tc behind it. */
static void test_tc_ingress_beside_foreign_xdp(void **state)
{
	int ifindex = (int)if_nametoindex(IFNAME);
	struct bpfsync_wan *w = NULL;
	char pin_dir[256];
	int prog;

	(void)state;
	if (skip_reason)
		skip();
	prog = attach_foreign_xdp();
	uint32_t foreign = xdp_query().drv;
	assert_int_equal(bpfsync_wan_attach(IFNAME, pin_root, BPFSYNC_TC_INGRESS, &defaults, &w), 0);
	assert_int_equal(xdp_query().drv, foreign);
	assert_true(tc_prog_id_at(BPF_TC_INGRESS) != 0);
	snprintf(pin_dir, sizeof(pin_dir), "%s", bpfsync_wan_pin_dir(w));
	bpfsync_wan_detach(w);
	assert_int_equal(xdp_query().drv, foreign);
	assert_int_equal(tc_prog_id_at(BPF_TC_INGRESS), 0);
	assert_int_equal(tc_prog_id(), 0);
	assert_false(exists(pin_dir));
	assert_int_equal(bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, NULL), 0);
	close(prog);
}

/* Someone else's XDP program is never replaced. */
static void test_foreign_xdp_refused(void **state)
{
	int ifindex = (int)if_nametoindex(IFNAME);
	struct bpfsync_wan *w = (void *)1;
	int prog;

	(void)state;
	if (skip_reason)
		skip();
	prog = attach_foreign_xdp();
	assert_int_equal(bpfsync_wan_attach(IFNAME, pin_root, BPFSYNC_XDP_NATIVE, &defaults, &w), -EBUSY);
	assert_null(w);
	assert_int_equal(tc_prog_id(), 0);
	assert_int_equal(bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, NULL), 0);
	close(prog);
}

static void test_bad_args(void **state)
{
	struct bpfsync_wan *w = (void *)1;

	(void)state;
	if (skip_reason)
		skip();
	assert_int_equal(bpfsync_wan_attach("nosuchif0", pin_root, BPFSYNC_XDP_NATIVE, &defaults, &w), -ENODEV);
	assert_null(w);
	assert_int_equal(bpfsync_wan_attach(IFNAME, pin_root, BPFSYNC_XDP_NATIVE,
					    &(struct steer_settings){ 443, 0, 0 }, &w), -EINVAL);
	assert_int_equal(bpfsync_wan_attach(IFNAME, pin_root, BPFSYNC_XDP_NATIVE, NULL, &w), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attach_detach),
		cmocka_unit_test(test_generic),
		cmocka_unit_test(test_native_fallback),
		cmocka_unit_test(test_update),
		cmocka_unit_test(test_counters_and_local_addrs),
		cmocka_unit_test(test_sigkill_recovery),
		cmocka_unit_test(test_foreign_xdp_refused),
		cmocka_unit_test(test_tc_ingress),
		cmocka_unit_test(test_tc_ingress_beside_foreign_xdp),
		cmocka_unit_test(test_bad_args),
	};

	log_set_level(getenv("V") ? LOG_LVL_DEBUG : LOG_LVL_ERROR);
	int rc = cmocka_run_group_tests_name("bpf_bpfsync", tests, group_setup, group_teardown);
	if (skip_reason)
		fprintf(stderr, "bpf_bpfsync: skipped: %s\n", skip_reason);
	return rc;
}
