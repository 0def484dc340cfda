/*
 * The CHILD SA table of both dataplanes: see sa_set.h. One copy of the
 * selector matching and of the ESP open path, so that TUN and AF_XDP cannot
 * drift apart in what they accept.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "iketcp/buf.h"
#include "iketcp/stats.h"
#include "dataplane/pmtu.h"
#include "dataplane/route.h"
#include "dataplane/sa_set.h"
#include "transport/transport.h" /* transport_conn_peer: the outer family */

/* ---- selectors ----------------------------------------------------------- */

bool ip_addrs_parse(const uint8_t *p, size_t len, struct ip_addrs *a, size_t *ip_len)
{
	struct rd r = rd_init(p, len);
	uint8_t vihl;
	uint16_t l;

	if (rd_u8(&r, &vihl))
		return false;
	switch (vihl >> 4) {
	case 4: /* version/IHL, TOS, total length, ... | source | destination */
		a->family = AF_INET;
		if (rd_skip(&r, 1) || rd_be16(&r, &l) || rd_skip(&r, 8) || rd_view(&r, &a->src, 4) ||
		    rd_view(&r, &a->dst, 4))
			return false;
		if (!ip_len)
			return true;
		if ((vihl & 0xf) < 5 || l < (vihl & 0xf) * 4u || l > len)
			return false;
		*ip_len = l;
		return true;
	case 6: /* version/class/label, payload length, next header, hop limit | source | destination */
		a->family = AF_INET6;
		if (rd_skip(&r, 3) || rd_be16(&r, &l) || rd_skip(&r, 2) || rd_view(&r, &a->src, 16) ||
		    rd_view(&r, &a->dst, 16))
			return false;
		if (!ip_len)
			return true;
		if (40u + l > len)
			return false;
		*ip_len = 40u + l;
		return true;
	default:
		return false;
	}
}

static bool ts_contains(const struct child_ts *ts, uint8_t family, const uint8_t *addr)
{
	const uint8_t *net = ts->family == AF_INET ? (const uint8_t *)&ts->addr.v4 : ts->addr.v6.s6_addr;
	unsigned bits = ts->prefix_len;

	if (ts->family != family)
		return false;
	if (memcmp(net, addr, bits / 8) != 0)
		return false;
	if (bits % 8 == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff00 >> (bits % 8));
	return (addr[bits / 8] & mask) == net[bits / 8];
}

static bool ts_equal(const struct child_ts *a, const struct child_ts *b)
{
	if (a->family != b->family || a->prefix_len != b->prefix_len)
		return false;
	if (a->family == AF_INET)
		return a->addr.v4.s_addr == b->addr.v4.s_addr;
	return memcmp(&a->addr.v6, &b->addr.v6, sizeof(a->addr.v6)) == 0;
}

struct sa_set_sa *sa_set_lookup(const struct sa_set *set, const struct ip_addrs *a)
{
	struct sa_set_sa *best = NULL;
	int best_r = -1, best_l = -1;

	for (unsigned s = 0; s < set->n; s++) {
		struct sa_set_sa *sa = set->sas[s];
		for (unsigned i = 0; i < sa->n_ts; i++) {
			int r = sa->remote_ts[i].prefix_len, l = sa->local_ts[i].prefix_len;
			if (!ts_contains(&sa->remote_ts[i], a->family, a->dst) ||
			    !ts_contains(&sa->local_ts[i], a->family, a->src))
				continue;
			if (r > best_r || (r == best_r && l > best_l) ||
			    (r == best_r && l == best_l && sa->order > best->order)) {
				best = sa;
				best_r = r;
				best_l = l;
			}
		}
	}
	return best;
}

/* Inbound: the peer may only send from its side's selectors to ours. */
static bool sa_allows(const struct sa_set_sa *sa, const struct ip_addrs *a)
{
	for (unsigned i = 0; i < sa->n_ts; i++)
		if (ts_contains(&sa->remote_ts[i], a->family, a->src) &&
		    ts_contains(&sa->local_ts[i], a->family, a->dst))
			return true;
	return false;
}

/* How many installed SAs (skipping `except`) have remote selector ts. */
static uint32_t ts_users(const struct sa_set *set, const struct sa_set_sa *except, const struct child_ts *ts)
{
	uint32_t n = 0;

	for (unsigned s = 0; s < set->n; s++) {
		if (set->sas[s] == except)
			continue;
		for (unsigned i = 0; i < set->sas[s]->n_ts; i++)
			if (ts_equal(&set->sas[s]->remote_ts[i], ts))
				n++;
	}
	return n;
}

/* Undoes the projection of sa's first n remote selectors. */
static void release_ts(struct sa_set *set, const struct sa_set_sa *sa, unsigned n, bool rollback)
{
	for (unsigned i = 0; i < n; i++)
		set->hooks->release(set->arg, &sa->remote_ts[i], ts_users(set, sa, &sa->remote_ts[i]), rollback);
}

/* ---- packets ------------------------------------------------------------- */

/* RFC 8200 section 5: "too big" never asks an IPv6 sender for less, so smaller packets must get through. */
#define IPV6_MIN_MTU 1280

/* What an inner packet may be on this path: UDP adds a header and cannot count on fragmentation. */
static void path_fit(const struct sa_set *set, struct sa_set_sa *sa)
{
	size_t mtu = sa->conn && set->path_mtu ? set->path_mtu(sa->conn) : 0;
	sa->inner_max = mtu ? pmtu_inner_max(mtu, transport_conn_peer(sa->conn)->ss_family == AF_INET6, true,
					       &sa->out)
			    : 0;
}

static void clamp(const struct sa_set_sa *sa, uint8_t *pkt, size_t len)
{
	if (sa->inner_max && pmtu_clamp_mss(pkt, len, pmtu_mss_for(sa->inner_max, pkt[0] >> 4 == 6)))
		STAT_INC(esp, mss_clamped);
}

/* An ESP error of the SA's spi as stats.esp counts it: 0 (dropped), or -EKEYEXPIRED for the caller. */
static ssize_t open_error(struct sa_set *set, uint32_t spi, ssize_t n)
{
	switch (n) {
	case -EBADMSG:
	case -ENOSPC:
		STAT_INC(esp, malformed);
		return 0;
	case -EKEYREJECTED:
		STAT_INC(esp, auth_failures);
		return 0;
	case -EALREADY:
		STAT_INC(esp, replay_drops);
		return 0;
	case -EKEYEXPIRED:
		return -EKEYEXPIRED;
	default:
		log_rl(&set->rl, LOG_LVL_WARN, "%s: SPI %08x: cannot open: %s", set->name, spi, strerror((int)-n));
		return 0;
	}
}

ssize_t sa_set_open_prepare(struct sa_set *set, const uint8_t *esp, size_t len, uint8_t *out, size_t cap,
			    struct esp_open_job *j)
{
	uint32_t spi = esp_spi_of(esp, len);

	if (len < ESP_HDR_LEN || spi == 0) {
		STAT_INC(esp, malformed);
		return 0;
	}
	struct esp_sa *in = spi_table_lookup(&set->spis, spi);
	if (!in) {
		STAT_INC(esp, unknown_spi);
		log_rl(&set->rl, LOG_LVL_DEBUG, "%s: ESP for unknown SPI %08x dropped", set->name, spi);
		return 0;
	}
	int err = esp_decap_prepare(in, esp, len, out, cap, j);
	return err ? open_error(set, spi, err) : 1;
}

ssize_t sa_set_open_finish(struct sa_set *set, const struct esp_open_job *j, struct ip_addrs *a, size_t *ip_len)
{
	struct sa_set_sa *sa = container_of(j->sa, struct sa_set_sa, in);
	uint8_t nh = 0;
	ssize_t n = esp_decap_finish(j, &nh);

	if (n < 0)
		return open_error(set, sa->in.spi, n);
	if (n == 0) /* Next Header 59: dummy packet, discarded silently (RFC 4303 section 2.6) */
		return 0;
	STAT_INC(esp, packets_in);
	sa_set_check_life(set, sa);

	if (!ip_addrs_parse(j->out, (size_t)n, a, ip_len) || !sa_allows(sa, a)) {
		log_rl(&set->rl, LOG_LVL_DEBUG, "%s: SPI %08x: inner packet outside the selectors dropped",
		       set->name, sa->in.spi);
		return -EACCES;
	}
	clamp(sa, j->out, ip_len ? *ip_len : (size_t)n); /* the peer's SYNs too: it may not clamp */
	return ip_len ? (ssize_t)*ip_len : n;
}

/* ---- CHILD SAs ----------------------------------------------------------- */

static int find_sa(const struct sa_set *set, uint32_t spi_in)
{
	for (unsigned s = 0; s < set->n; s++)
		if (set->sas[s]->in.spi == spi_in)
			return (int)s;
	return -1;
}

static void sa_free(struct sa_set_sa *sa)
{
	if (!sa)
		return;
	esp_sa_destroy(&sa->in); /* wipes the keys */
	esp_sa_destroy(&sa->out);
	free(sa);
}

int sa_set_install(void *arg, const struct child_sa *csa)
{
	struct sa_set *set = arg;
	struct esp_sa_params in = csa->in, out = csa->out;
	struct sa_set_sa *sa = NULL;
	unsigned projected = 0;
	bool in_table = false;
	int err;

	if (csa->n_ts == 0 || csa->n_ts > CHILD_MAX_TS || csa->spi_in == 0 || csa->spi_out == 0)
		return -EINVAL;
	if (set->n == SA_SET_MAX)
		return -ENOSPC;
	sa = calloc(1, sizeof(*sa));
	if (!sa)
		return -ENOMEM;
	sa->n_ts = csa->n_ts;
	for (unsigned i = 0; i < csa->n_ts; i++) {
		if (!route_ts_normalize(&csa->local_ts[i], &sa->local_ts[i]) ||
		    !route_ts_normalize(&csa->remote_ts[i], &sa->remote_ts[i]) ||
		    sa->local_ts[i].family != sa->remote_ts[i].family) {
			err = -EINVAL;
			goto fail;
		}
	}
	in.spi = csa->spi_in;
	in.outbound = false;
	out.spi = csa->spi_out;
	out.outbound = true;
	err = esp_sa_init(&sa->in, &in);
	if (err)
		goto fail;
	err = esp_sa_init(&sa->out, &out);
	if (err)
		goto fail;
	err = spi_table_insert(&set->spis, csa->spi_in, &sa->in);
	if (err)
		goto fail;
	in_table = true;
	for (; projected < sa->n_ts; projected++) {
		const struct child_ts *ts = &sa->remote_ts[projected];
		err = set->hooks->add(set->arg, ts, ts_users(set, NULL, ts));
		if (err)
			goto fail;
	}
	sa->conn = csa->conn;
	path_fit(set, sa);
	sa->order = ++set->next_order;
	set->sas[set->n++] = sa;
	log_info("%s: %s/%s: CHILD SA in %08x out %08x installed%s%s", set->name, csa->phase1 ? csa->phase1 : "-",
		 csa->phase2 ? csa->phase2 : "-", csa->spi_in, csa->spi_out, set->ifname ? " on " : "",
		 set->ifname ? set->ifname : "");
	return 0;

fail:
	release_ts(set, sa, projected, true);
	if (in_table)
		spi_table_remove(&set->spis, csa->spi_in);
	sa_free(sa);
	return err;
}

void sa_set_update_conn(void *arg, uint32_t spi_in, struct tcp_conn *conn)
{
	struct sa_set *set = arg;
	int s = find_sa(set, spi_in);

	if (s >= 0) {
		set->sas[s]->conn = conn;
		path_fit(set, set->sas[s]);
	}
}

void sa_set_path_mtu_fn(void *arg, size_t (*path_mtu)(struct tcp_conn *conn))
{
	struct sa_set *set = arg;
	set->path_mtu = path_mtu;
}

void sa_set_soft_life_fn(void *arg, bool (*soft_life)(void *arg, uint32_t spi_in), void *soft_life_arg)
{
	struct sa_set *set = arg;
	set->soft_life = soft_life;
	set->soft_life_arg = soft_life_arg;
}

void sa_set_tell_soft_life(struct sa_set *set, struct sa_set_sa *sa)
{
	if (!set->soft_life)
		return;
	sa->soft_told = set->soft_life(set->soft_life_arg, sa->in.spi);
	if (sa->soft_told)
		log_info("%s: CHILD SA %08x/%08x passed its soft lifetime (%s): rekey asked", set->name,
			 sa->in.spi, sa->out.spi,
			 sa->out.seq >= sa->out.seq_soft ? "sequence numbers" : "bytes");
}

ssize_t sa_set_fit(struct sa_set_sa *sa, uint8_t *pkt, size_t len, uint8_t *icmp, size_t cap)
{
	if (!sa->inner_max || !len)
		return 0;
	clamp(sa, pkt, len);
	if (len <= sa->inner_max || (pkt[0] >> 4 == 6 && len <= IPV6_MIN_MTU))
		return 0; /* IPv6 needs 1280 bytes from every link: fragmenting the outer packet gives it them */
	ssize_t n = pmtu_too_big(pkt, len, (uint16_t)MIN(sa->inner_max, 65535u), icmp, cap);
	if (n <= 0)
		return 0;
	STAT_INC(esp, too_big);
	return n;
}

void sa_set_remove(void *arg, uint32_t spi_in)
{
	struct sa_set *set = arg;
	int s = find_sa(set, spi_in);

	if (s < 0)
		return;
	struct sa_set_sa *sa = set->sas[s];
	release_ts(set, sa, sa->n_ts, false);
	spi_table_remove(&set->spis, spi_in);
	set->sas[s] = set->sas[--set->n];
	set->sas[set->n] = NULL;
	sa_free(sa);
}

int sa_set_counters(void *arg, uint32_t spi_in, struct child_sa_counters *out)
{
	const struct sa_set *set = arg;
	int s = find_sa(set, spi_in);

	if (s < 0)
		return -ENOENT;
	const struct sa_set_sa *sa = set->sas[s];
	*out = (struct child_sa_counters){
		.packets_in = sa->in.stats.packets,
		.packets_out = sa->out.stats.packets,
		.bytes_in = sa->in.stats.bytes,
		.bytes_out = sa->out.stats.bytes,
		.replay_drops = sa->in.stats.replay_drops,
		.auth_failures = sa->in.stats.auth_failures,
	};
	return 0;
}

int sa_set_init(struct sa_set *set, const char *name, const struct sa_set_hooks *hooks, void *arg)
{
	if (!name || !hooks || !hooks->add || !hooks->release)
		return -EINVAL;
	set->name = name;
	set->hooks = hooks;
	set->arg = arg;
	return spi_table_init(&set->spis, SA_SET_MAX);
}

void sa_set_free(struct sa_set *set)
{
	while (set->n)
		sa_set_remove(set, set->sas[set->n - 1]->in.spi);
	spi_table_free(&set->spis);
}
