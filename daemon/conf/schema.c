/*
 * The configuration schema as data: every key of config.md with its section,
 * type, range and default. Defaults are written as the text a user would put
 * after "set", and go through the same setter, so "unset" and an empty file
 * cannot disagree with the documented values.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "conf/internal.h"

enum conf_type {
	T_BOOL,	     /* enable | disable */
	T_ENUM,	     /* one of words; stored as its index in an int-sized enum */
	T_U16,	     /* decimal in [min, max] */
	T_U32,
	T_IKEVER,    /* only 2; 1 gets its own message */
	T_STR,	     /* any string, length in [min, max] */
	T_PATH,	     /* file path, length in [1, max] */
	T_IFNAME,    /* Linux interface name */
	T_IFLIST,    /* one or more interface names, at most max */
	T_WORDLIST,  /* one or more of words, no repeats */
	T_DHGRP,     /* one or more supported groups, no repeats */
	T_IP4,	     /* unicast IPv4 address; aux: has_ flag */
	T_IP6,	     /* unicast IPv6 address; aux: has_ flag */
	T_SUBNET4,   /* A.B.C.D M.M.M.M | A.B.C.D/N | A.B.C.D/M.M.M.M */
	T_SUBNET6,   /* X::/N; aux: has_ flag */
	T_REF,	     /* name of another section's entry, resolved after parsing */
};

#define K_SECRET 1u	   /* wiped when replaced or freed, never echoed */
#define K_NO_ENABLE 2u	   /* "enable" is rejected as not supported */

struct conf_key {
	const char *name;
	enum conf_type type;
	unsigned flags;
	size_t off; /* the value */
	size_t aux; /* T_IP4/T_IP6/T_SUBNET6: bool has_; lists: size_t count */
	uint32_t min, max;
	const char *const *words;
	const char *def; /* as written after "set"; NULL = unset */
};

static const char *const w_bool[] = { "enable", "disable", NULL };
static const char *const w_dataplane[] = { "xdp", "tun", NULL };
static const char *const w_xdp_mode[] = { "native", "generic", NULL };
static const char *const w_steer_hook[] = { "xdp", "tc", NULL };
static const char *const w_type[] = { "static", "dynamic", NULL };
static const char *const w_transport[] = { "udp", "auto", "tcp", NULL };
static const char *const w_authmethod[] = { "psk", "signature", NULL };
static const char *const w_dpd[] = { "disable", "on-idle", "on-demand", NULL };
static const char *const w_natt[] = { "enable", "disable", "forced", NULL };
static const char *const w_keylife_type[] = { "seconds", "kbs", "both", NULL };

/* FortiOS IKE SA suite names (encryption-prf) we implement. */
static const char *const w_p1_proposal[] = {
	"aes128gcm-prfsha256",	      "aes256gcm-prfsha384",	    "chacha20poly1305-prfsha256",
	"aes128-sha256",	      "aes256-sha256",		    "aes128gcm-prfsha384",
	"aes256gcm-prfsha256",	      "aes256gcm-prfsha512",	    "aes128-sha384",
	"aes256-sha384",	      "aes128-sha512",		    "aes256-sha512",
	"chacha20poly1305-prfsha384", "chacha20poly1305-prfsha512", NULL,
};
/* FortiOS ESP suite names (encryption-integrity). */
static const char *const w_p2_proposal[] = {
	"aes128gcm",	 "aes256gcm",	  "chacha20poly1305", "aes128-sha256", "aes256-sha256",
	"aes128-sha384", "aes256-sha384", "aes128-sha512",    "aes256-sha512", NULL,
};
/* RFC 7296 / IANA transform type 4 numbers, as FortiOS spells them. */
static const uint16_t dh_groups[] = { 14, 15, 16, 19, 20, 21, 31, 32 };

#define ST(f) offsetof(struct conf_settings, f)
#define GL(f) offsetof(struct conf_global, f)
#define P1(f) offsetof(struct conf_phase1, f)
#define P2(f) offsetof(struct conf_phase2, f)

/* The order is the order of config.md; suggestions prefer earlier keys on ties. */
static const struct conf_key keys_settings[] = {
	{ "ike-tcp-service", T_BOOL, 0, ST(ike_tcp_service), 0, 0, 0, w_bool, "disable" },
	{ "ike-tls-service", T_BOOL, 0, ST(ike_tls_service), 0, 0, 0, w_bool, "disable" },
	{ "ike-tcp-port", T_U16, 0, ST(ike_tcp_port), 0, 1, 65535, NULL, "443" },
	{ "ike-port", T_U16, 0, ST(ike_port), 0, 1, 65535, NULL, "500" },
	{ "ike-natt-port", T_U16, 0, ST(ike_natt_port), 0, 1, 65535, NULL, "4500" },
	{ "ike-tcp-internal-port", T_U16, 0, ST(ike_tcp_internal_port), 0, 1, 65535, NULL, "11443" },
	{ "ike-tls-certificate", T_PATH, 0, ST(ike_tls_certificate), 0, 1, 4095, NULL, NULL },
	{ "ike-tls-private-key", T_PATH, 0, ST(ike_tls_private_key), 0, 1, 4095, NULL, NULL },
	{ "inner-interface", T_IFLIST, 0, ST(inner_interfaces), ST(n_inner_interfaces), 1, 32, NULL,
	  NULL },
	{ "dataplane", T_ENUM, 0, ST(dataplane), 0, 0, 0, w_dataplane, "xdp" },
	{ "xdp-mode", T_ENUM, 0, ST(xdp_mode), 0, 0, 0, w_xdp_mode, "native" },
	{ "steer-hook", T_ENUM, 0, ST(steer_hook), 0, 0, 0, w_steer_hook, "xdp" },
	{ "ike-tcp-syn-rate", T_U32, 0, ST(ike_tcp_syn_rate), 0, 0, 1000000, NULL, "200" },
	{ "ike-tcp-max-connections", T_U32, 0, ST(ike_tcp_max_connections), 0, 1, 1000000, NULL,
	  "10000" },
	{ "ike-tcp-idle-timeout", T_U32, 0, ST(ike_tcp_idle_timeout), 0, 5, 86400, NULL, "300" },
	/* sun_path holds 108 bytes including the NUL */
	{ "control-socket", T_PATH, 0, ST(control_socket), 0, 1, 107, NULL,
	  "/run/iketcp/iketcpd.sock" },
	{ "bpf-pin-path", T_PATH, 0, ST(bpf_pin_path), 0, 1, 4000, NULL, "/sys/fs/bpf/iketcp" },
};

static const struct conf_key keys_global[] = {
	{ "admin-sport", T_U16, 0, GL(admin_sport), 0, 1, 65535, NULL, "443" },
};

static const struct conf_key keys_phase1[] = {
	{ "interface", T_IFNAME, 0, P1(interface), 0, 1, IFNAMSIZ - 1, NULL, NULL },
	{ "ike-version", T_IKEVER, 0, 0, 0, 0, 0, NULL, "2" },
	{ "type", T_ENUM, 0, P1(type), 0, 0, 0, w_type, "static" },
	{ "remote-gw", T_IP4, 0, P1(remote_gw), P1(has_remote_gw), 0, 0, NULL, NULL },
	{ "remote-gw6", T_IP6, 0, P1(remote_gw6), P1(has_remote_gw6), 0, 0, NULL, NULL },
	{ "local-gw", T_IP4, 0, P1(local_gw), P1(has_local_gw), 0, 0, NULL, NULL },
	{ "local-gw6", T_IP6, 0, P1(local_gw6), P1(has_local_gw6), 0, 0, NULL, NULL },
	{ "transport", T_ENUM, 0, P1(transport), 0, 0, 0, w_transport, "udp" },
	{ "auto-transport-threshold", T_U32, 0, P1(auto_transport_threshold), 0, 1, 300, NULL,
	  "15" },
	{ "fortinet-esp", T_BOOL, K_NO_ENABLE, P1(fortinet_esp), 0, 0, 0, w_bool, "disable" },
	{ "authmethod", T_ENUM, 0, P1(authmethod), 0, 0, 0, w_authmethod, "psk" },
	/* FortiOS accepts 6 to 128 characters */
	{ "psksecret", T_STR, K_SECRET, P1(psksecret), 0, 6, 128, NULL, NULL },
	{ "certificate", T_PATH, 0, P1(certificate), 0, 1, 4095, NULL, NULL },
	{ "ca", T_PATH, 0, P1(ca), 0, 1, 4095, NULL, NULL },
	{ "localid", T_STR, 0, P1(localid), 0, 1, 255, NULL, NULL },
	{ "peerid", T_STR, 0, P1(peerid), 0, 1, 255, NULL, NULL },
	{ "proposal", T_WORDLIST, 0, P1(proposals), P1(n_proposals), 1,
	  ARRAY_SIZE(w_p1_proposal) - 1, w_p1_proposal, "aes128gcm-prfsha256 aes256gcm-prfsha384" },
	{ "dhgrp", T_DHGRP, 0, P1(dhgrp), P1(n_dhgrp), 1, CONF_MAX_DHGRP, NULL, "19 14 31" },
	{ "keylife", T_U32, 0, P1(keylife), 0, 120, 172800, NULL, "86400" },
	{ "dpd", T_ENUM, 0, P1(dpd), 0, 0, 0, w_dpd, "on-demand" },
	{ "dpd-retryinterval", T_U32, 0, P1(dpd_retryinterval), 0, 1, 3600, NULL, "20" },
	{ "dpd-retrycount", T_U32, 0, P1(dpd_retrycount), 0, 0, 10, NULL, "3" },
	{ "nattraversal", T_ENUM, 0, P1(nattraversal), 0, 0, 0, w_natt, "enable" },
	{ "auto-negotiate", T_BOOL, 0, P1(auto_negotiate), 0, 0, 0, w_bool, "enable" },
};

static const struct conf_key keys_phase2[] = {
	{ "phase1name", T_REF, 0, P2(phase1name), 0, 1, 63, NULL, NULL },
	{ "proposal", T_WORDLIST, 0, P2(proposals), P2(n_proposals), 1,
	  ARRAY_SIZE(w_p2_proposal) - 1, w_p2_proposal, "aes128gcm aes256gcm" },
	{ "src-subnet", T_SUBNET4, 0, P2(src_subnet), 0, 0, 0, NULL, "0.0.0.0/0" },
	{ "dst-subnet", T_SUBNET4, 0, P2(dst_subnet), 0, 0, 0, NULL, "0.0.0.0/0" },
	{ "src-subnet6", T_SUBNET6, 0, P2(src_subnet6), P2(has_src_subnet6), 0, 0, NULL, NULL },
	{ "dst-subnet6", T_SUBNET6, 0, P2(dst_subnet6), P2(has_dst_subnet6), 0, 0, NULL, NULL },
	{ "pfs", T_BOOL, 0, P2(pfs), 0, 0, 0, w_bool, "enable" },
	{ "dhgrp", T_DHGRP, 0, P2(dhgrp), P2(n_dhgrp), 1, CONF_MAX_DHGRP, NULL, "19" },
	{ "keylifeseconds", T_U32, 0, P2(keylifeseconds), 0, 120, 172800, NULL, "43200" },
	/* FortiOS's names and ranges: a CHILD SA rekeys after keylifekbs KiB either way (kbs, both) */
	{ "keylife-type", T_ENUM, 0, P2(keylife_type), 0, 0, 0, w_keylife_type, "seconds" },
	{ "keylifekbs", T_U32, 0, P2(keylifekbs), 0, 5120, UINT32_MAX, NULL, "5120" },
	{ "replay", T_BOOL, 0, P2(replay), 0, 0, 0, w_bool, "enable" },
	{ "auto-negotiate", T_BOOL, 0, P2(auto_negotiate), 0, 0, 0, w_bool, "enable" },
};

const struct conf_section_def conf_sections[SEC__N] = {
	[SEC_SETTINGS] = { "system settings", false },
	[SEC_GLOBAL] = { "system global", false },
	[SEC_PHASE1] = { "vpn ipsec phase1-interface", true },
	[SEC_PHASE2] = { "vpn ipsec phase2-interface", true },
};

static const struct {
	const struct conf_key *keys;
	size_t n;
} sec_keys[SEC__N] = {
	[SEC_SETTINGS] = { keys_settings, ARRAY_SIZE(keys_settings) },
	[SEC_GLOBAL] = { keys_global, ARRAY_SIZE(keys_global) },
	[SEC_PHASE1] = { keys_phase1, ARRAY_SIZE(keys_phase1) },
	[SEC_PHASE2] = { keys_phase2, ARRAY_SIZE(keys_phase2) },
};

_Static_assert(ARRAY_SIZE(keys_settings) <= CONF_MAX_KEYS, "CONF_MAX_KEYS");
_Static_assert(ARRAY_SIZE(keys_phase1) <= CONF_MAX_KEYS, "CONF_MAX_KEYS");
_Static_assert(ARRAY_SIZE(keys_phase2) <= CONF_MAX_KEYS, "CONF_MAX_KEYS");
/* T_ENUM stores through an int: every enum of conf.h must be int-sized. */
_Static_assert(sizeof(enum conf_transport) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_dataplane) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_xdp_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_steer_hook) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_p1_type) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_authmethod) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_dpd) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_natt) == sizeof(int), "enum size");

const struct conf_key *schema_key(enum conf_sec sec, const char *name, size_t *idx)
{
	for (size_t i = 0; i < sec_keys[sec].n; i++) {
		if (strcmp(sec_keys[sec].keys[i].name, name) == 0) {
			if (idx)
				*idx = i;
			return &sec_keys[sec].keys[i];
		}
	}
	return NULL;
}

/* ---- did you mean ---- */

/* Levenshtein distance; words longer than 64 bytes are compared by their start. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strnlen(a, 64), lb = strnlen(b, 64);
	size_t row[65];

	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);

			best = MIN(best, up + 1);
			best = MIN(best, row[j - 1] + 1);
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static const char *closest(const char *word, const char *const *cands, size_t n, size_t *dist)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX;

	for (size_t i = 0; i < n; i++) {
		size_t d = edit_distance(word, cands[i]);
		size_t lw = strlen(word), lc = strlen(cands[i]);

		/* "aes128gcm" means "aes128gcm-prfsha256" more than "aes128-sha256" */
		if (MIN(lw, lc) >= 3 && strncmp(word, cands[i], MIN(lw, lc)) == 0)
			d = MIN(d, 1);

		if (d < best_d) {
			best_d = d;
			best = cands[i];
		}
	}
	*dist = best_d;
	return best;
}

const char *conf_closest(const char *word, const char *const *cands, size_t n)
{
	size_t d;

	return closest(word, cands, n, &d);
}

const char *conf_closest_near(const char *word, const char *const *cands, size_t n)
{
	size_t d;
	const char *best = closest(word, cands, n, &d);

	return d <= MAX(2, strnlen(word, 64) / 3) ? best : NULL;
}

const char *schema_suggest_key(enum conf_sec sec, const char *name)
{
	const char *names[CONF_MAX_KEYS];

	for (size_t i = 0; i < sec_keys[sec].n; i++)
		names[i] = sec_keys[sec].keys[i].name;
	return conf_closest(name, names, sec_keys[sec].n);
}

/* ---- value parsers: true on success, nothing stored on failure ---- */

static void *field(void *obj, size_t off)
{
	return (char *)obj + off;
}

static size_t nwords(const char *const *w)
{
	size_t n = 0;

	while (w[n])
		n++;
	return n;
}

static int word_index(const char *const *w, const char *s)
{
	for (int i = 0; w[i]; i++)
		if (strcmp(w[i], s) == 0)
			return i;
	return -1;
}

/* "udp, auto or tcp" */
static void words_list(const char *const *w, char *out, size_t cap)
{
	size_t n = nwords(w), used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && used < cap; i++) {
		const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
		int r = snprintf(out + used, cap - used, "%s%s", sep, w[i]);

		if (r < 0)
			break;
		used += (size_t)r;
	}
}

/* Decimal only, no sign; values above UINT32_MAX saturate to report "out of range". */
static bool parse_uint(const char *s, uint64_t *v)
{
	uint64_t x = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		x = x * 10 + (uint64_t)(*s - '0');
		if (x > UINT32_MAX)
			x = (uint64_t)UINT32_MAX + 1;
	}
	*v = x;
	return true;
}

/* Linux dev_valid_name(): 1..IFNAMSIZ-1 bytes, not "." or "..", no '/', ':' or blank. */
static bool valid_ifname(const char *s, size_t len)
{
	if (len == 0 || len >= IFNAMSIZ || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || *s == ' ' || *s == '\t' || (unsigned char)*s >= 0x80)
			return false;
	return true;
}

static bool ip4_unicast(struct in_addr a)
{
	uint32_t h = ntohl(a.s_addr);

	return h != 0 && h != UINT32_MAX && (h >> 28) != 0xe;
}

static bool ip6_unicast(const struct in6_addr *a)
{
	return !IN6_IS_ADDR_UNSPECIFIED(a) && !IN6_IS_ADDR_MULTICAST(a);
}

static uint32_t prefix_mask4(unsigned len)
{
	return len == 0 ? 0 : UINT32_MAX << (32 - len);
}

static bool parse_prefix_len(const char *s, unsigned max, unsigned *len)
{
	uint64_t v;

	if (!parse_uint(s, &v) || v > max || strlen(s) > 3)
		return false;
	*len = (unsigned)v;
	return true;
}

static int set_subnet4(const struct conf_key *k, void *obj, const struct lex_tok *v, size_t nv,
		       struct conf_sink *s, unsigned line)
{
	char addr[64], mask[64];
	struct in_addr a, m;
	unsigned plen;

	if (nv == 2) {
		if (v[0].len >= sizeof(addr) || v[1].len >= sizeof(mask))
			goto bad;
		memcpy(addr, v[0].s, v[0].len + 1);
		memcpy(mask, v[1].s, v[1].len + 1);
	} else {
		const char *slash = strchr(v[0].s, '/');

		if (!slash || v[0].len >= sizeof(addr))
			goto bad;
		memcpy(addr, v[0].s, (size_t)(slash - v[0].s));
		addr[slash - v[0].s] = '\0';
		memcpy(mask, slash + 1, strlen(slash + 1) + 1);
	}
	if (inet_pton(AF_INET, addr, &a) != 1)
		goto bad;
	if (strchr(mask, '.')) {
		uint32_t h;

		if (inet_pton(AF_INET, mask, &m) != 1)
			goto bad;
		h = ntohl(m.s_addr);
		/* contiguous: the inverted mask plus one is a power of two */
		if (((~h + 1) & ~h) != 0) {
			conf_error(s, line, "netmask %s for \"%s\" is not contiguous", mask, k->name);
			return -EINVAL;
		}
		plen = (unsigned)__builtin_popcount(h);
	} else if (nv == 2 || !parse_prefix_len(mask, 32, &plen)) {
		goto bad;
	}
	if (ntohl(a.s_addr) & ~prefix_mask4(plen)) {
		struct in_addr net = { htonl(ntohl(a.s_addr) & prefix_mask4(plen)) };
		char nb[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &net, nb, sizeof(nb));
		conf_error(s, line, "%s/%u for \"%s\" has host bits set (did you mean %s/%u?)", addr,
			   plen, k->name, nb, plen);
		return -EINVAL;
	}
	struct conf_subnet4 *out = field(obj, k->off);

	out->addr = a;
	out->prefix_len = (uint8_t)plen;
	return 0;
bad:
	conf_error(s, line,
		   "invalid IPv4 subnet for \"%s\" (expected A.B.C.D M.M.M.M or A.B.C.D/N)",
		   k->name);
	return -EINVAL;
}

static int set_subnet6(const struct conf_key *k, void *obj, const struct lex_tok *v,
		       struct conf_sink *s, unsigned line)
{
	char addr[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(v->s, '/');
	struct in6_addr a;
	unsigned plen = 128;

	if (v->len >= sizeof(addr))
		goto bad;
	memcpy(addr, v->s, v->len + 1);
	if (slash) {
		addr[slash - v->s] = '\0';
		if (!parse_prefix_len(slash + 1, 128, &plen))
			goto bad;
	}
	if (inet_pton(AF_INET6, addr, &a) != 1)
		goto bad;
	for (unsigned i = plen; i < 128; i++) {
		if (a.s6_addr[i / 8] & (0x80 >> (i % 8))) {
			conf_error(s, line, "%s/%u for \"%s\" has host bits set", addr, plen,
				   k->name);
			return -EINVAL;
		}
	}
	struct conf_subnet6 *out = field(obj, k->off);

	out->addr = a;
	out->prefix_len = (uint8_t)plen;
	*(bool *)field(obj, k->aux) = true;
	return 0;
bad:
	conf_error(s, line, "invalid IPv6 prefix for \"%s\" (expected X:X::X/N)", k->name);
	return -EINVAL;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Replace a char ** list and its count with copies of the values. */
static int set_strv(const struct conf_key *k, void *obj, const struct lex_tok *v, size_t nv)
{
	char **nl = calloc(nv, sizeof(*nl));
	char ***slot = field(obj, k->off);
	size_t *cnt = field(obj, k->aux);

	if (!nl)
		return -ENOMEM;
	for (size_t i = 0; i < nv; i++) {
		nl[i] = strdup(v[i].s);
		if (!nl[i]) {
			free_strv(nl, i);
			return -ENOMEM;
		}
	}
	free_strv(*slot, *cnt);
	*slot = nl;
	*cnt = nv;
	return 0;
}

static void free_str(const struct conf_key *k, char *p)
{
	if (p && (k->flags & K_SECRET))
		OPENSSL_cleanse(p, strlen(p));
	free(p);
}

static int set_str(const struct conf_key *k, void *obj, const char *val)
{
	char **slot = field(obj, k->off);
	char *dup = strdup(val);

	if (!dup)
		return -ENOMEM;
	free_str(k, *slot);
	*slot = dup;
	return 0;
}

static bool has_dup(const struct lex_tok *v, size_t nv, size_t *dup)
{
	for (size_t i = 1; i < nv; i++) {
		for (size_t j = 0; j < i; j++) {
			if (strcmp(v[i].s, v[j].s) == 0) {
				*dup = i;
				return true;
			}
		}
	}
	return false;
}

static int set_list(const struct conf_key *k, void *obj, const struct lex_tok *v, size_t nv,
		    struct conf_sink *s, unsigned line)
{
	size_t dup;

	if (nv > k->max) {
		conf_error(s, line, "too many values for \"%s\" (%zu, at most %u)", k->name, nv,
			   k->max);
		return -EINVAL;
	}
	if (has_dup(v, nv, &dup)) {
		conf_error(s, line, "\"%.64s\" given twice for \"%s\"", v[dup].s, k->name);
		return -EINVAL;
	}
	if (k->type == T_DHGRP) {
		uint16_t g[CONF_MAX_DHGRP];

		for (size_t i = 0; i < nv; i++) {
			uint64_t x = 0;
			size_t j = ARRAY_SIZE(dh_groups);

			if (parse_uint(v[i].s, &x))
				for (j = 0; j < ARRAY_SIZE(dh_groups) && dh_groups[j] != x; j++)
					;
			if (j == ARRAY_SIZE(dh_groups)) {
				conf_error(s, line,
					   "unsupported dhgrp \"%.32s\" (supported: 14 15 16 19 20 21 31 32)",
					   v[i].s);
				return -EINVAL;
			}
			g[i] = (uint16_t)x;
			for (j = 0; j < i; j++) {
				if (g[j] == g[i]) { /* "19 019" */
					conf_error(s, line, "\"%u\" given twice for \"%s\"", g[i],
						   k->name);
					return -EINVAL;
				}
			}
		}
		memcpy(field(obj, k->off), g, nv * sizeof(g[0]));
		*(size_t *)field(obj, k->aux) = nv;
		return 0;
	}
	for (size_t i = 0; i < nv; i++) {
		if (k->type == T_IFLIST && !valid_ifname(v[i].s, v[i].len)) {
			conf_error(s, line,
				   "invalid interface name \"%.64s\" for \"%s\" (1-%d characters, no '/', ':' or spaces)",
				   v[i].s, k->name, IFNAMSIZ - 1);
			return -EINVAL;
		}
		if (k->type == T_WORDLIST && word_index(k->words, v[i].s) < 0) {
			const char *near = conf_closest(v[i].s, k->words, nwords(k->words));

			conf_error(s, line, "unknown %s \"%.64s\" (did you mean \"%s\"?)", k->name,
				   v[i].s, near);
			return -EINVAL;
		}
	}
	return set_strv(k, obj, v, nv);
}

static bool count_ok(const struct conf_key *k, size_t nv, struct conf_sink *s, unsigned line)
{
	bool list = k->type == T_IFLIST || k->type == T_WORDLIST || k->type == T_DHGRP;

	if (nv == 0) {
		conf_error(s, line, "missing value for \"%s\"", k->name);
		return false;
	}
	if (list)
		return true;
	if (k->type == T_SUBNET4) {
		if (nv <= 2)
			return true;
		conf_error(s, line, "\"%s\" takes A.B.C.D M.M.M.M or A.B.C.D/N, got %zu values",
			   k->name, nv);
		return false;
	}
	if (nv != 1) {
		conf_error(s, line, "\"%s\" takes one value, got %zu", k->name, nv);
		return false;
	}
	return true;
}

int schema_set(const struct conf_key *k, void *obj, const struct lex_tok *v, size_t nv,
	       struct conf_sink *s, unsigned line)
{
	char expect[160];
	uint64_t x;
	int i;

	if (!count_ok(k, nv, s, line))
		return -EINVAL;
	switch (k->type) {
	case T_BOOL:
	case T_ENUM:
		i = word_index(k->words, v->s);
		if (i < 0) {
			words_list(k->words, expect, sizeof(expect));
			conf_error(s, line, "invalid value \"%.64s\" for \"%s\" (expected %s)", v->s,
				   k->name, expect);
			return -EINVAL;
		}
		if (k->type == T_BOOL) {
			if ((k->flags & K_NO_ENABLE) && i == 0) {
				conf_error(s, line, "\"%s enable\" is not supported", k->name);
				return -EINVAL;
			}
			*(bool *)field(obj, k->off) = i == 0;
		} else {
			*(int *)field(obj, k->off) = i;
		}
		return 0;
	case T_U16:
	case T_U32:
		if (!parse_uint(v->s, &x)) {
			conf_error(s, line, "invalid number \"%.32s\" for \"%s\"", v->s, k->name);
			return -EINVAL;
		}
		if (x < k->min || x > k->max) {
			conf_error(s, line, "value %.32s out of range for \"%s\" (%u-%u)", v->s,
				   k->name, k->min, k->max);
			return -EINVAL;
		}
		if (k->type == T_U16)
			*(uint16_t *)field(obj, k->off) = (uint16_t)x;
		else
			*(uint32_t *)field(obj, k->off) = (uint32_t)x;
		return 0;
	case T_IKEVER:
		if (!strcmp(v->s, "1")) {
			conf_error(s, line, "IKEv1 is not supported (set ike-version 2)");
			return -EINVAL;
		}
		if (strcmp(v->s, "2")) {
			conf_error(s, line, "invalid value \"%.32s\" for \"ike-version\" (expected 2)",
				   v->s);
			return -EINVAL;
		}
		return 0;
	case T_STR:
	case T_PATH:
	case T_REF:
		if (v->len < k->min || v->len > k->max) {
			if (v->len == 0)
				conf_error(s, line, "empty value for \"%s\"", k->name);
			else
				conf_error(s, line, "value for \"%s\" must be %u-%u characters, got %zu",
					   k->name, k->min, k->max, v->len);
			return -EINVAL;
		}
		return set_str(k, obj, v->s);
	case T_IFNAME:
		if (!valid_ifname(v->s, v->len)) {
			conf_error(s, line,
				   "invalid interface name \"%.64s\" for \"%s\" (1-%d characters, no '/', ':' or spaces)",
				   v->s, k->name, IFNAMSIZ - 1);
			return -EINVAL;
		}
		return set_str(k, obj, v->s);
	case T_IFLIST:
	case T_WORDLIST:
	case T_DHGRP:
		return set_list(k, obj, v, nv, s, line);
	case T_IP4: {
		struct in_addr a;

		if (inet_pton(AF_INET, v->s, &a) != 1) {
			conf_error(s, line, "invalid IPv4 address \"%.64s\" for \"%s\"", v->s, k->name);
			return -EINVAL;
		}
		if (!ip4_unicast(a)) {
			conf_error(s, line, "%s for \"%s\" is not a unicast address", v->s, k->name);
			return -EINVAL;
		}
		*(struct in_addr *)field(obj, k->off) = a;
		*(bool *)field(obj, k->aux) = true;
		return 0;
	}
	case T_IP6: {
		struct in6_addr a;

		if (inet_pton(AF_INET6, v->s, &a) != 1) {
			conf_error(s, line, "invalid IPv6 address \"%.64s\" for \"%s\"", v->s, k->name);
			return -EINVAL;
		}
		if (!ip6_unicast(&a)) {
			conf_error(s, line, "%s for \"%s\" is not a unicast address", v->s, k->name);
			return -EINVAL;
		}
		*(struct in6_addr *)field(obj, k->off) = a;
		*(bool *)field(obj, k->aux) = true;
		return 0;
	}
	case T_SUBNET4:
		return set_subnet4(k, obj, v, nv, s, line);
	case T_SUBNET6:
		if (nv != 1) {
			conf_error(s, line, "\"%s\" takes one value, got %zu", k->name, nv);
			return -EINVAL;
		}
		return set_subnet6(k, obj, v, s, line);
	}
	return -EINVAL;
}

/* Drop what the key owns and clear it, as if never set. */
static void key_clear(const struct conf_key *k, void *obj)
{
	switch (k->type) {
	case T_STR:
	case T_PATH:
	case T_REF:
	case T_IFNAME: {
		char **slot = field(obj, k->off);

		free_str(k, *slot);
		*slot = NULL;
		break;
	}
	case T_IFLIST:
	case T_WORDLIST: {
		char ***slot = field(obj, k->off);
		size_t *cnt = field(obj, k->aux);

		free_strv(*slot, *cnt);
		*slot = NULL;
		*cnt = 0;
		break;
	}
	case T_DHGRP:
		*(size_t *)field(obj, k->aux) = 0;
		break;
	case T_IP4:
	case T_IP6:
	case T_SUBNET6:
		*(bool *)field(obj, k->aux) = false;
		break;
	default:
		break;
	}
}

int schema_unset(const struct conf_key *k, void *obj)
{
	struct lex_tok v[LEX_MAX_TOKENS];
	char copy[128];
	size_t nv = 0;
	struct conf_sink quiet = { .file = "<default>" };
	int err;

	key_clear(k, obj);
	if (!k->def)
		return 0;
	snprintf(copy, sizeof(copy), "%s", k->def);
	for (char *save, *w = strtok_r(copy, " ", &save); w && nv < LEX_MAX_TOKENS;
	     w = strtok_r(NULL, " ", &save))
		v[nv++] = (struct lex_tok){ .s = w, .len = strlen(w) };
	err = schema_set(k, obj, v, nv, &quiet, 0);
	return quiet.oom ? -ENOMEM : err;
}

int schema_defaults(enum conf_sec sec, void *obj)
{
	for (size_t i = 0; i < sec_keys[sec].n; i++) {
		int err = schema_unset(&sec_keys[sec].keys[i], obj);

		if (err)
			return err;
	}
	return 0;
}

void schema_release(enum conf_sec sec, void *obj)
{
	for (size_t i = 0; i < sec_keys[sec].n; i++)
		key_clear(&sec_keys[sec].keys[i], obj);
}
