/* The configuration the daemon runs from: FortiOS CLI text in, one checked struct config out. */
#ifndef IKETCP_CONF_H
#define IKETCP_CONF_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every enum's values are the position of its word in config.md, in order. */
enum conf_transport { CONF_TRANSPORT_UDP, CONF_TRANSPORT_AUTO, CONF_TRANSPORT_TCP };
enum conf_dataplane { CONF_DATAPLANE_XDP, CONF_DATAPLANE_TUN };
enum conf_xdp_mode { CONF_XDP_NATIVE, CONF_XDP_GENERIC };
enum conf_steer_hook { CONF_STEER_XDP, CONF_STEER_TC };
enum conf_p1_type { CONF_P1_STATIC, CONF_P1_DYNAMIC };
enum conf_authmethod { CONF_AUTH_PSK, CONF_AUTH_SIGNATURE };
enum conf_dpd { CONF_DPD_DISABLE, CONF_DPD_ON_IDLE, CONF_DPD_ON_DEMAND };
enum conf_natt { CONF_NATT_ENABLE, CONF_NATT_DISABLE, CONF_NATT_FORCED };
enum conf_keylife_type { CONF_KEYLIFE_SECONDS, CONF_KEYLIFE_KBS, CONF_KEYLIFE_BOTH };

#define CONF_MAX_FILE_SIZE (1024 * 1024)
#define CONF_MAX_DHGRP 8

/* config system settings */
struct conf_settings {
	bool ike_tcp_service, ike_tls_service;
	uint16_t ike_tcp_port, ike_port, ike_natt_port, ike_tcp_internal_port;
	char *ike_tls_certificate, *ike_tls_private_key; /* NULL = unset */
	char **inner_interfaces;
	size_t n_inner_interfaces;
	enum conf_dataplane dataplane;
	enum conf_xdp_mode xdp_mode;
	enum conf_steer_hook steer_hook;
	uint32_t ike_tcp_syn_rate, ike_tcp_max_connections, ike_tcp_idle_timeout;
	char *control_socket, *bpf_pin_path;
};

/* config system global */
struct conf_global {
	uint16_t admin_sport;
};

struct conf_subnet4 {
	struct in_addr addr; /* host bits are always zero */
	uint8_t prefix_len;
};
struct conf_subnet6 {
	struct in6_addr addr;
	uint8_t prefix_len;
};

/* config vpn ipsec phase1-interface, one per edit */
struct conf_phase1 {
	char *name;
	unsigned line; /* line of its edit, for messages */
	char *interface;
	enum conf_p1_type type;
	bool has_remote_gw, has_remote_gw6, has_local_gw, has_local_gw6;
	struct in_addr remote_gw, local_gw;
	struct in6_addr remote_gw6, local_gw6;
	enum conf_transport transport;
	uint32_t auto_transport_threshold;
	enum conf_authmethod authmethod;
	char *psksecret, *certificate, *ca, *localid, *peerid; /* NULL = unset */
	char **proposals;				       /* FortiOS names, in configured order */
	size_t n_proposals;
	uint16_t dhgrp[CONF_MAX_DHGRP];
	size_t n_dhgrp;
	uint32_t keylife;
	enum conf_dpd dpd;
	uint32_t dpd_retryinterval, dpd_retrycount;
	enum conf_natt nattraversal;
	bool auto_negotiate;
	bool fortinet_esp;
};

/* config vpn ipsec phase2-interface, one per edit */
struct conf_phase2 {
	char *name;
	unsigned line;
	char *phase1name;
	size_t phase1_index; /* into config.phase1, resolved at load */
	char **proposals;
	size_t n_proposals;
	struct conf_subnet4 src_subnet, dst_subnet;
	bool has_src_subnet6, has_dst_subnet6;
	struct conf_subnet6 src_subnet6, dst_subnet6;
	bool pfs;
	uint16_t dhgrp[CONF_MAX_DHGRP];
	size_t n_dhgrp;
	uint32_t keylifeseconds;
	enum conf_keylife_type keylife_type; /* which lifetimes rekey: seconds, kbs or both */
	uint32_t keylifekbs;                 /* inner kilobytes (1024 bytes) either way */
	bool replay, auto_negotiate;
};

struct config {
	char *path;
	struct conf_settings settings;
	struct conf_global global;
	struct conf_phase1 *phase1;
	size_t n_phase1;
	struct conf_phase2 *phase2;
	size_t n_phase2;
};

/* Messages of a failed load, each "FILE:LINE: message" (or "FILE: message"). */
struct conf_diag {
	char **lines;
	size_t n;
};

/*
 * 0 and *out on success; -EINVAL with every error in diag; -errno if the file
 * cannot be read (diag then holds "FILE: <strerror>"); -EFBIG for input over
 * CONF_MAX_FILE_SIZE. *diag is reset on entry (it may be uninitialised) and
 * must be released with conf_diag_free whatever the result; diag may be NULL.
 */
int conf_load_file(const char *path, struct config **out, struct conf_diag *diag);
int conf_load_string(const char *name, const char *text, size_t len, struct config **out,
		     struct conf_diag *diag);
void conf_free(struct config *conf); /* NULL ok */
void conf_diag_free(struct conf_diag *diag);
/* NULL when no phase1 entry has that name. */
const struct conf_phase1 *conf_find_phase1(const struct config *conf, const char *name);

#endif
