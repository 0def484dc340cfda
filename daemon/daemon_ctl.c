/* The control socket's commands: status, stats, up, down, reload. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpfsync/bpfsync.h"
#include "dpthread.h"
#include "daemon.h"
#include "workers.h"
#include "dataplane/afxdp.h"
#include "dataplane/dataplane.h"
#include "ike/ike.h"
#include "iketcp/log.h"
#include "iketcp/stats.h"
#include "transport/transport.h"

/* The counters both dataplanes keep under the same names (struct afxdp_counters and struct
 * dataplane_counters), into the stats snapshot; a macro because the two structs differ in type. */
#define SNAP_DATAPLANE(snap, c)                                          \
	do {                                                             \
		(snap)->esp.no_sa = (c)->no_sa;                          \
		(snap)->esp.no_stream = (c)->no_stream;                  \
		(snap)->esp.policy_drops = (c)->policy_drops;            \
		(snap)->esp.expired = (c)->expired;                      \
		(snap)->tun.gso_reads = (c)->gso_reads;                  \
		(snap)->tun.gso_segments = (c)->gso_segments;            \
		(snap)->tun.gso_drops = (c)->gso_drops;                  \
		(snap)->tun.coalesced = (c)->coalesced;                  \
		(snap)->tun.coalesced_segments = (c)->coalesced_segments; \
	} while (0)

static bool want_json(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "json"))
			return true;
	return false;
}

static const char *transport_name(const struct config *conf, const struct conf_phase1 *p1)
{
	switch (p1->transport) {
	case CONF_TRANSPORT_UDP: return "udp";
	case CONF_TRANSPORT_AUTO: return "auto";
	case CONF_TRANSPORT_TCP: return conf->settings.ike_tls_service ? "tls" : "tcp";
	}
	return "udp";
}

/* Our address for a tunnel: local-gw, else the interface's first address. */
static void local_addr(const struct conf_phase1 *p1, char *buf, size_t len)
{
	struct ifaddrs *ifa, *i;

	if (p1->has_local_gw) {
		inet_ntop(AF_INET, &p1->local_gw, buf, (socklen_t)len);
		return;
	}
	if (p1->has_local_gw6) {
		inet_ntop(AF_INET6, &p1->local_gw6, buf, (socklen_t)len);
		return;
	}
	snprintf(buf, len, "-");
	if (getifaddrs(&ifa))
		return;
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || strcmp(i->ifa_name, p1->interface))
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, buf, (socklen_t)len);
			break;
		}
	}
	freeifaddrs(ifa);
}

static void remote_addr(const struct conf_phase1 *p1, char *buf, size_t len)
{
	if (p1->type == CONF_P1_DYNAMIC)
		snprintf(buf, len, "any");
	else if (p1->has_remote_gw)
		inet_ntop(AF_INET, &p1->remote_gw, buf, (socklen_t)len);
	else if (p1->has_remote_gw6)
		inet_ntop(AF_INET6, &p1->remote_gw6, buf, (socklen_t)len);
	else
		snprintf(buf, len, "-");
}

static void status(struct daemon *d, bool json, struct jw *w)
{
	const struct config *conf = d->conf;
	const struct conf_settings *s = &conf->settings;
	char local[64], remote[64];
	long up = (long)(time(NULL) - d->started);

	if (json) {
		jw_obj_open(w, NULL);
		jw_obj_open(w, "daemon");
		jw_str(w, "version", IKETCP_VERSION);
		jw_u64(w, "pid", (uint64_t)getpid());
		jw_u64(w, "uptime_s", (uint64_t)up);
		jw_str(w, "config", d->conf_path);
		jw_u64(w, "reloads", d->reloads);
		jw_u64(w, "reload_failures", d->reload_failures);
		jw_bool(w, "ike_tcp_service", s->ike_tcp_service);
		jw_bool(w, "ike_tls_service", s->ike_tls_service);
		jw_u64(w, "ike_tcp_port", s->ike_tcp_port);
		jw_u64(w, "ike_tcp_internal_port", s->ike_tcp_internal_port);
		jw_str(w, "tls_fingerprint", d->tp ? transport_tls_fingerprint(d->tp) : NULL);
		jw_str(w, "dataplane", d->xdp ? "afxdp" : d->dp ? "tun" : "none");
		jw_u64(w, "dataplane_threads", workers_threads(d->workers));
		jw_arr_open(w, "steering");
		for (size_t i = 0; i < d->n_wans; i++) {
			jw_obj_open(w, NULL);
			jw_str(w, "interface", bpfsync_wan_ifname(d->wans[i]));
			bool tc = bpfsync_wan_tc_ingress(d->wans[i]);
			jw_str(w, "hook", tc ? "tc" : "xdp");
			jw_str(w, "xdp_mode", tc ? "none" : bpfsync_wan_native(d->wans[i]) ? "native" : "generic");
			jw_str(w, "pin_dir", bpfsync_wan_pin_dir(d->wans[i]));
			jw_obj_close(w);
		}
		jw_arr_close(w);
		jw_obj_close(w);
		jw_arr_open(w, "tunnels");
	} else {
		jw_printf(w, "iketcpd %s, pid %d, up %lds, config %s\n", IKETCP_VERSION, (int)getpid(), up,
			  d->conf_path);
		if (s->ike_tcp_service && s->ike_tcp_port == s->ike_natt_port)
			jw_printf(w, "IKE/ESP over TCP: port %u%s, listening on %u\n", s->ike_tcp_port,
				  s->ike_tls_service ? " with TLS 1.3" : "", s->ike_natt_port);
		else if (s->ike_tcp_service)
			jw_printf(w, "IKE/ESP over TCP: port %u%s, listening on %u and %u\n", s->ike_tcp_port,
				  s->ike_tls_service ? " with TLS 1.3" : "", s->ike_natt_port, s->ike_tcp_internal_port);
		uint16_t ike_port, natt_port;
		if (transport_udp_ports(d->tp, &ike_port, &natt_port))
			jw_printf(w, "IKE/ESP over UDP: ports %u and %u (ESP always UDP-encapsulated)\n", ike_port,
				  natt_port);
		for (size_t i = 0; i < d->n_wans; i++)
			jw_printf(w, "steering on %s (%s), maps in %s\n", bpfsync_wan_ifname(d->wans[i]),
				  bpfsync_wan_hook_name(d->wans[i]), bpfsync_wan_pin_dir(d->wans[i]));
		jw_printf(w, "\n%-20s %-8s %-9s %-16s %-16s %s\n", "TUNNEL", "TYPE", "TRANSPORT", "LOCAL",
			  "REMOTE", "IKE");
	}
	for (size_t i = 0; i < conf->n_phase1; i++) {
		const struct conf_phase1 *p1 = &conf->phase1[i];
		local_addr(p1, local, sizeof(local));
		remote_addr(p1, remote, sizeof(remote));
		if (json) {
			jw_obj_open(w, NULL);
			jw_str(w, "name", p1->name);
			jw_str(w, "type", p1->type == CONF_P1_STATIC ? "static" : "dynamic");
			jw_str(w, "transport_config", transport_name(conf, p1));
			jw_str(w, "interface", p1->interface);
			jw_str(w, "local", local);
			jw_str(w, "remote", remote);
			/* state, transport, ike_sa, child_sas: what IKE has negotiated */
			ike_status_tunnel(d->ike, p1->name, w, true);
			jw_arr_open(w, "phase2");
			for (size_t j = 0; j < conf->n_phase2; j++)
				if (conf->phase2[j].phase1_index == i)
					jw_str(w, NULL, conf->phase2[j].name);
			jw_arr_close(w);
			jw_obj_close(w);
		} else {
			jw_printf(w, "%-20s %-8s %-9s %-16s %-16s ", p1->name,
				  p1->type == CONF_P1_STATIC ? "static" : "dynamic", transport_name(conf, p1), local,
				  remote);
			ike_status_tunnel(d->ike, p1->name, w, false);
		}
	}
	if (json) {
		jw_arr_close(w);
		jw_obj_close(w);
		jw_printf(w, "\n");
	}
}

static void collect_xdp(struct daemon *d, struct stats *out)
{
	out->xdp.steered_in = out->xdp.steered_out = out->xdp.passed = 0;
	out->xdp.syn_dropped = out->xdp.malformed = 0;
	for (size_t i = 0; i < d->n_wans; i++) {
		struct steer_counters sc;
		if (bpfsync_wan_counters(d->wans[i], &sc))
			continue;
		out->xdp.steered_in += sc.steered_in;
		out->xdp.steered_out += sc.steered_out;
		out->xdp.passed += sc.passed;
		out->xdp.syn_dropped += sc.syn_dropped;
		out->xdp.malformed += sc.malformed;
	}
}

static void stats_text(const struct stats *s, struct jw *w)
{
#define STATS_TEXT_FIELD(name) jw_printf(w, "  %-20s %llu\n", #name, (unsigned long long)sec_->name);
#define STATS_TEXT_SECTION(sec, LIST)                                                \
	{                                                                            \
		const __typeof__(s->sec) *sec_ = &s->sec;                            \
		jw_printf(w, "%s:\n", #sec);                                         \
		LIST(STATS_TEXT_FIELD)                                               \
	}
	STATS_SECTIONS(STATS_TEXT_SECTION)
#undef STATS_TEXT_SECTION
#undef STATS_TEXT_FIELD
}

int daemon_ctl_handle(void *arg, int argc, char **argv, struct jw *body, const char **err)
{
	struct daemon *d = arg;
	const char *cmd = argv[0];

	if (!strcmp(cmd, "status")) {
		status(d, want_json(argc, argv), body);
		return 0;
	}
	if (!strcmp(cmd, "stats")) {
		struct stats snap;
		dpthread_lock(&d->dpt); /* the dataplane thread's counters hold still */
		snap = stats;
		collect_xdp(d, &snap);
		snap.ike.half_open = d->ike ? ike_half_open(d->ike) : 0;
		if (d->xdp) {
			struct afxdp_counters ac;
			uint64_t bpf[CLEAR_CNT_MAX];
			afxdp_counters(d->xdp, &ac);
			SNAP_DATAPLANE(&snap, &ac);
			snap.esp.send_errors = ac.send_errors + ac.tx_errors;
			if (!afxdp_bpf_counters(d->xdp, bpf))
				snap.xdp.to_xsk = bpf[CLEAR_CNT_TO_XSK];
		}
		if (d->dp) {
			struct dataplane_counters dc;
			dataplane_counters(d->dp, &dc);
			SNAP_DATAPLANE(&snap, &dc);
			snap.esp.send_errors = dc.send_errors + dc.tun_write_errors;
		}
		dpthread_unlock(&d->dpt);
		if (want_json(argc, argv)) {
			jw_obj_open(body, NULL);
			stats_write_json(&snap, body);
			jw_obj_close(body);
			jw_printf(body, "\n");
		} else {
			stats_text(&snap, body);
		}
		return 0;
	}
	if (!strcmp(cmd, "reload")) {
		struct jw errors;
		jw_init(&errors);
		int ret = daemon_reload(d, &errors);
		if (ret) {
			/* The reply body carries every FILE:LINE error after the ERR line. */
			jw_printf(body, "%s", errors.buf ? errors.buf : "");
			jw_free(&errors);
			*err = "the new configuration was not applied; the previous one is still running";
			return -1;
		}
		jw_free(&errors);
		jw_printf(body, "reloaded %s\n", d->conf_path);
		return 0;
	}
	if (!strcmp(cmd, "up") || !strcmp(cmd, "down")) {
		if (argc != 2) {
			*err = "usage: up NAME | down NAME";
			return -1;
		}
		if (!conf_find_phase1(d->conf, argv[1])) {
			*err = "no such phase1-interface";
			return -1;
		}
		if (!strcmp(cmd, "up") ? ike_up(d->ike, argv[1], err) : ike_down(d->ike, argv[1], err))
			return -1;
		jw_printf(body, "%s %s\n", argv[1], !strcmp(cmd, "up") ? "initiating" : "deleted");
		return 0;
	}
	if (!strcmp(cmd, "rekey")) {
		/* rekey NAME: the tunnel's IKE SA now (RFC 7296 1.3.2), as at keylife */
		if (argc != 2) {
			*err = "usage: rekey NAME";
			return -1;
		}
		if (!conf_find_phase1(d->conf, argv[1])) {
			*err = "no such phase1-interface";
			return -1;
		}
		if (ike_rekey(d->ike, argv[1], err))
			return -1;
		jw_printf(body, "%s rekeying the IKE SA\n", argv[1]);
		return 0;
	}
#ifdef IKETCP_TEST
	if (!strcmp(cmd, "debug-stall") && argc == 2) {
		/* Test builds: keep the IKE thread busy for MS milliseconds, as a flood of key exchanges would. */
		long ms = strtol(argv[1], NULL, 10);
		if (ms <= 0 || ms > 60000) {
			*err = "usage: debug-stall MS (1-60000)";
			return -1;
		}
		log_info("debug-stall: the IKE thread sleeps %ld ms", ms);
		usleep((useconds_t)ms * 1000);
		jw_printf(body, "stalled %ld ms\n", ms);
		return 0;
	}
#endif
	*err = "unknown command (status, stats, up, down, rekey, reload)";
	return -1;
}
