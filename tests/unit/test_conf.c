/* daemon/conf: the example configs, defaults, every error class, hostile input. Run from the repo root. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "iketcp/compiler.h"
#include "conf/conf.h"

#define GWA "tests/conf/gwA.conf"
#define GWB "tests/conf/gwB.conf"

/* ---- helpers ---- */

static int load(const char *text, struct config **c, struct conf_diag *d)
{
	return conf_load_string("t.conf", text, strlen(text), c, d);
}

/* Loads text that must be valid; prints the messages if not. */
static struct config *load_ok(const char *text)
{
	struct config *c = NULL;
	struct conf_diag d;
	int r = load(text, &c, &d);

	for (size_t i = 0; r && i < d.n; i++)
		print_error("unexpected: %s\n", d.lines[i]);
	assert_int_equal(r, 0);
	assert_non_null(c);
	assert_int_equal(d.n, 0);
	conf_diag_free(&d);
	return c;
}

static void dump(const struct conf_diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		print_error("  got: %s\n", d->lines[i]);
}

/* text must fail with exactly these messages, in this order (NULL-terminated). */
static void expect_errors_v(const char *text, const char *const *want)
{
	struct config *c = (struct config *)1;
	struct conf_diag d;
	size_t n = 0;
	int r = load(text, &c, &d);

	while (want[n])
		n++;
	assert_int_equal(r, -EINVAL);
	assert_null(c);
	if (d.n != n)
		dump(&d);
	assert_int_equal(d.n, n);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(d.lines[i], want[i]))
			dump(&d);
		assert_string_equal(d.lines[i], want[i]);
	}
	conf_diag_free(&d);
}
#define expect_errors(text, ...) expect_errors_v(text, (const char *const[]){ __VA_ARGS__, NULL })

/* A phase1 that passes every check, to wrap one key under test. */
#define P1_HEAD                                \
	"config vpn ipsec phase1-interface\n" \
	"    edit \"p1\"\n"                    \
	"        set interface wan0\n"         \
	"        set remote-gw 192.0.2.1\n"    \
	"        set psksecret secret123\n"
#define P1_TAIL "    next\nend\n"

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void assert_ip4(struct in_addr a, const char *want)
{
	char buf[INET_ADDRSTRLEN];

	assert_non_null(inet_ntop(AF_INET, &a, buf, sizeof(buf)));
	assert_string_equal(buf, want);
}

static void assert_ip6(const struct in6_addr *a, const char *want)
{
	char buf[INET6_ADDRSTRLEN];

	assert_non_null(inet_ntop(AF_INET6, a, buf, sizeof(buf)));
	assert_string_equal(buf, want);
}

static void assert_strv(char **v, size_t n, const char *const *want)
{
	size_t wn = 0;

	while (want[wn])
		wn++;
	assert_int_equal(n, wn);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(v[i], want[i]);
}
#define assert_words(v, n, ...) assert_strv(v, n, (const char *const[]){ __VA_ARGS__, NULL })

/* ---- the example configs ---- */

static void check_gwA(const struct config *c)
{
	const struct conf_settings *s = &c->settings;
	const struct conf_phase1 *p1;
	const struct conf_phase2 *p2;

	assert_true(s->ike_tcp_service);
	assert_false(s->ike_tls_service);
	assert_int_equal(s->ike_tcp_port, 443);
	assert_int_equal(s->ike_port, 500);
	assert_int_equal(s->ike_natt_port, 4500);
	assert_int_equal(s->ike_tcp_internal_port, 11443);
	assert_words(s->inner_interfaces, s->n_inner_interfaces, "lan0");
	assert_int_equal(c->global.admin_sport, 443);

	assert_int_equal(c->n_phase1, 1);
	p1 = &c->phase1[0];
	assert_ptr_equal(conf_find_phase1(c, "to-hq"), p1);
	assert_string_equal(p1->name, "to-hq");
	assert_int_equal(p1->line, 9);
	assert_string_equal(p1->interface, "wan0");
	assert_int_equal(p1->type, CONF_P1_STATIC);
	assert_true(p1->has_remote_gw);
	assert_ip4(p1->remote_gw, "203.0.113.2");
	assert_false(p1->has_remote_gw6);
	assert_false(p1->has_local_gw);
	assert_false(p1->has_local_gw6);
	assert_int_equal(p1->transport, CONF_TRANSPORT_AUTO);
	assert_int_equal(p1->auto_transport_threshold, 3); /* the spec's example plus a quick fallback */
	assert_int_equal(p1->authmethod, CONF_AUTH_PSK);
	assert_string_equal(p1->psksecret, "correct horse battery staple");
	assert_null(p1->certificate);
	assert_null(p1->ca);
	assert_string_equal(p1->localid, "branch.example");
	assert_string_equal(p1->peerid, "hq.example");
	assert_words(p1->proposals, p1->n_proposals, "aes128gcm-prfsha256", "aes256gcm-prfsha384");
	assert_int_equal(p1->n_dhgrp, 2);
	assert_int_equal(p1->dhgrp[0], 19);
	assert_int_equal(p1->dhgrp[1], 31);
	assert_int_equal(p1->keylife, 86400);
	assert_int_equal(p1->dpd, CONF_DPD_ON_DEMAND);
	assert_int_equal(p1->nattraversal, CONF_NATT_ENABLE);
	assert_true(p1->auto_negotiate);
	assert_false(p1->fortinet_esp);

	assert_int_equal(c->n_phase2, 1);
	p2 = &c->phase2[0];
	assert_string_equal(p2->name, "to-hq-lan");
	assert_int_equal(p2->line, 25);
	assert_string_equal(p2->phase1name, "to-hq");
	assert_int_equal(p2->phase1_index, 0);
	assert_words(p2->proposals, p2->n_proposals, "aes128gcm", "aes256gcm");
	assert_ip4(p2->src_subnet.addr, "10.1.0.0");
	assert_int_equal(p2->src_subnet.prefix_len, 24);
	assert_ip4(p2->dst_subnet.addr, "10.2.0.0");
	assert_int_equal(p2->dst_subnet.prefix_len, 24);
	assert_false(p2->has_src_subnet6);
	assert_false(p2->has_dst_subnet6);
	assert_true(p2->pfs);
	assert_int_equal(p2->n_dhgrp, 1);
	assert_int_equal(p2->dhgrp[0], 19);
	assert_int_equal(p2->keylifeseconds, 43200);
	assert_true(p2->replay);
	assert_true(p2->auto_negotiate);
}

static void test_gwA(void **state)
{
	struct config *c;
	struct conf_diag d;

	(void)state;
	assert_int_equal(conf_load_file(GWA, &c, &d), 0);
	assert_int_equal(d.n, 0);
	assert_string_equal(c->path, GWA);
	check_gwA(c);
	conf_free(c);
	conf_diag_free(&d);
}

static void test_gwB(void **state)
{
	const struct conf_phase1 *p1;
	const struct conf_phase2 *p2;
	struct config *c;
	struct conf_diag d;

	(void)state;
	/* admin-sport == ike-tcp-port is the daemon's warning, not an error */
	assert_int_equal(conf_load_file(GWB, &c, &d), 0);
	assert_int_equal(d.n, 0);
	assert_true(c->settings.ike_tcp_service);
	assert_int_equal(c->settings.ike_tcp_port, 443);
	assert_int_equal(c->global.admin_sport, 443);
	assert_words(c->settings.inner_interfaces, c->settings.n_inner_interfaces, "lan0");
	assert_int_equal(c->n_phase1, 1);
	p1 = conf_find_phase1(c, "branch");
	assert_non_null(p1);
	assert_null(conf_find_phase1(c, "to-hq"));
	assert_int_equal(p1->line, 12);
	assert_string_equal(p1->interface, "wan0");
	assert_int_equal(p1->type, CONF_P1_DYNAMIC);
	assert_false(p1->has_remote_gw);
	assert_false(p1->has_remote_gw6);
	assert_int_equal(p1->transport, CONF_TRANSPORT_UDP);
	assert_string_equal(p1->psksecret, "correct horse battery staple");
	assert_string_equal(p1->localid, "hq.example");
	assert_string_equal(p1->peerid, "branch.example");
	assert_words(p1->proposals, p1->n_proposals, "aes128gcm-prfsha256", "aes256gcm-prfsha384");
	assert_int_equal(p1->n_dhgrp, 2);
	assert_int_equal(p1->dhgrp[0], 19);
	assert_int_equal(p1->dhgrp[1], 31);
	assert_int_equal(c->n_phase2, 1);
	p2 = &c->phase2[0];
	assert_string_equal(p2->name, "branch-lan");
	assert_int_equal(p2->phase1_index, 0);
	assert_ip4(p2->src_subnet.addr, "10.2.0.0");
	assert_int_equal(p2->src_subnet.prefix_len, 24);
	assert_ip4(p2->dst_subnet.addr, "10.1.0.0");
	assert_int_equal(p2->dst_subnet.prefix_len, 24);
	conf_free(c);
	conf_diag_free(&d);
}

/* The same file with CRLF line endings gives the same configuration. */
static void test_crlf(void **state)
{
	size_t len, n = 0;
	char *text = read_all(GWA, &len), *crlf = malloc(2 * len + 1);
	struct config *c;
	struct conf_diag d;

	(void)state;
	assert_non_null(crlf);
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\n')
			crlf[n++] = '\r';
		crlf[n++] = text[i];
	}
	assert_int_equal(conf_load_string(GWA, crlf, n, &c, &d), 0);
	check_gwA(c);
	conf_free(c);
	conf_diag_free(&d);
	/* a bare CR inside a line is not a line ending */
	expect_errors("config system settings\n set ike-port 500\r1\nend\n",
		      "t.conf:2: invalid control character 0x0d");
	free(text);
	free(crlf);
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
	struct config *c = load_ok("");
	const struct conf_settings *s = &c->settings;

	(void)state;
	assert_string_equal(c->path, "t.conf");
	assert_false(s->ike_tcp_service);
	assert_false(s->ike_tls_service);
	assert_int_equal(s->ike_tcp_port, 443);
	assert_int_equal(s->ike_port, 500);
	assert_int_equal(s->ike_natt_port, 4500);
	assert_int_equal(s->ike_tcp_internal_port, 11443);
	assert_null(s->ike_tls_certificate);
	assert_null(s->ike_tls_private_key);
	assert_null(s->inner_interfaces);
	assert_int_equal(s->n_inner_interfaces, 0);
	assert_int_equal(s->dataplane, CONF_DATAPLANE_XDP);
	assert_int_equal(s->xdp_mode, CONF_XDP_NATIVE);
	assert_int_equal(s->steer_hook, CONF_STEER_XDP);
	assert_int_equal(s->ike_tcp_syn_rate, 200);
	assert_int_equal(s->ike_tcp_max_connections, 10000);
	assert_int_equal(s->ike_tcp_idle_timeout, 300);
	assert_string_equal(s->control_socket, "/run/iketcp/iketcpd.sock");
	assert_string_equal(s->bpf_pin_path, "/sys/fs/bpf/iketcp");
	assert_int_equal(c->global.admin_sport, 443);
	assert_int_equal(c->n_phase1, 0);
	assert_int_equal(c->n_phase2, 0);
	assert_null(conf_find_phase1(c, "x"));
	conf_free(c);

	/* comments and blank lines only */
	c = load_ok("# nothing\n\n   \t\n# more\n");
	conf_free(c);

	/* a minimal phase1 and phase2: everything else at its default */
	c = load_ok(P1_HEAD P1_TAIL "config vpn ipsec phase2-interface\n edit \"p2\"\n"
				    "  set phase1name p1\n next\nend\n");
	const struct conf_phase1 *p1 = &c->phase1[0];
	const struct conf_phase2 *p2 = &c->phase2[0];

	assert_int_equal(p1->type, CONF_P1_STATIC);
	assert_int_equal(p1->transport, CONF_TRANSPORT_UDP);
	assert_int_equal(p1->auto_transport_threshold, 15);
	assert_int_equal(p1->authmethod, CONF_AUTH_PSK);
	assert_null(p1->localid);
	assert_null(p1->peerid);
	assert_words(p1->proposals, p1->n_proposals, "aes128gcm-prfsha256", "aes256gcm-prfsha384");
	assert_int_equal(p1->n_dhgrp, 3);
	assert_int_equal(p1->dhgrp[0], 19);
	assert_int_equal(p1->dhgrp[1], 14);
	assert_int_equal(p1->dhgrp[2], 31);
	assert_int_equal(p1->keylife, 86400);
	assert_int_equal(p1->dpd, CONF_DPD_ON_DEMAND);
	assert_int_equal(p1->dpd_retryinterval, 20);
	assert_int_equal(p1->dpd_retrycount, 3);
	assert_int_equal(p1->nattraversal, CONF_NATT_ENABLE);
	assert_true(p1->auto_negotiate);
	assert_false(p1->fortinet_esp);
	assert_false(p1->has_local_gw);
	assert_false(p1->has_local_gw6);
	assert_words(p2->proposals, p2->n_proposals, "aes128gcm", "aes256gcm");
	assert_ip4(p2->src_subnet.addr, "0.0.0.0");
	assert_int_equal(p2->src_subnet.prefix_len, 0);
	assert_ip4(p2->dst_subnet.addr, "0.0.0.0");
	assert_int_equal(p2->dst_subnet.prefix_len, 0);
	assert_false(p2->has_src_subnet6);
	assert_true(p2->pfs);
	assert_int_equal(p2->n_dhgrp, 1);
	assert_int_equal(p2->dhgrp[0], 19);
	assert_int_equal(p2->keylifeseconds, 43200);
	assert_int_equal(p2->keylife_type, CONF_KEYLIFE_SECONDS);
	assert_int_equal(p2->keylifekbs, 5120);
	assert_true(p2->replay);
	assert_true(p2->auto_negotiate);
	conf_free(c);
}

/* Every key set away from its default, then unset: back to the default. */
static void test_unset(void **state)
{
	struct config *c = load_ok(
		"config system settings\n"
		" set ike-tcp-port 8443\n set ike-tcp-service enable\n set dataplane tun\n"
		" set inner-interface lan0 lan1\n set ike-tls-certificate /a.pem\n"
		" set ike-tls-private-key /a.key\n set control-socket /tmp/s\n"
		" unset ike-tcp-port\n unset dataplane\n unset inner-interface\n"
		" unset ike-tls-certificate\n unset ike-tls-private-key\n unset control-socket\n"
		"end\n"
		"config system global\n set admin-sport 8443\n unset admin-sport\nend\n"
		P1_HEAD
		"  set remote-gw6 2001:db8::1\n  unset remote-gw\n"
		"  set localid me\n  unset localid\n"
		"  set proposal aes256-sha256\n  unset proposal\n"
		"  set dhgrp 21\n  unset dhgrp\n  set dpd disable\n  unset dpd\n"
		"  set keylife 120\n  unset keylife\n  set auto-negotiate disable\n  unset auto-negotiate\n"
		"  set ike-version 2\n  unset ike-version\n"
		P1_TAIL);
	const struct conf_phase1 *p1 = &c->phase1[0];

	(void)state;
	assert_true(c->settings.ike_tcp_service);
	assert_int_equal(c->settings.ike_tcp_port, 443);
	assert_int_equal(c->settings.dataplane, CONF_DATAPLANE_XDP);
	assert_null(c->settings.inner_interfaces);
	assert_int_equal(c->settings.n_inner_interfaces, 0);
	assert_null(c->settings.ike_tls_certificate);
	assert_null(c->settings.ike_tls_private_key);
	assert_string_equal(c->settings.control_socket, "/run/iketcp/iketcpd.sock");
	assert_int_equal(c->global.admin_sport, 443);
	assert_false(p1->has_remote_gw);
	assert_true(p1->has_remote_gw6);
	assert_ip6(&p1->remote_gw6, "2001:db8::1");
	assert_null(p1->localid);
	assert_words(p1->proposals, p1->n_proposals, "aes128gcm-prfsha256", "aes256gcm-prfsha384");
	assert_int_equal(p1->n_dhgrp, 3);
	assert_int_equal(p1->dpd, CONF_DPD_ON_DEMAND);
	assert_int_equal(p1->keylife, 86400);
	assert_true(p1->auto_negotiate);
	conf_free(c);

	/* unset of a required key makes it missing again */
	expect_errors(P1_HEAD "  unset psksecret\n" P1_TAIL,
		      "t.conf:2: phase1-interface \"p1\": missing \"set psksecret\" (authmethod psk)");
	/* a later set wins over an earlier one */
	c = load_ok("config system settings\n set ike-port 1\n set ike-port 2\nend\n");
	assert_int_equal(c->settings.ike_port, 2);
	conf_free(c);
}

/* Every other key, with a value away from the default. */
static void test_all_keys(void **state)
{
	struct config *c = load_ok(
		"config system settings\n"
		" set ike-tcp-service enable\n set ike-tls-service enable\n set ike-tcp-port 4500\n"
		" set ike-port 1500\n set ike-natt-port 14500\n set ike-tcp-internal-port 12443\n"
		" set ike-tls-certificate \"/etc/iketcp/tls cert.pem\"\n"
		" set ike-tls-private-key /etc/iketcp/tls.key\n"
		" set inner-interface lan0 lan1 \"br-lan.10\"\n set dataplane tun\n set xdp-mode generic\n set steer-hook tc\n"
		" set ike-tcp-syn-rate 0\n set ike-tcp-max-connections 1000000\n"
		" set ike-tcp-idle-timeout 5\n set control-socket /run/x.sock\n set bpf-pin-path /sys/fs/bpf/y\n"
		"end\n"
		"config vpn ipsec phase1-interface\n edit \"sig\"\n"
		"  set interface eth0\n  set ike-version 2\n  set type static\n"
		"  set remote-gw6 2001:db8::2\n  set local-gw 198.51.100.7\n  set local-gw6 2001:db8::7\n"
		"  set transport tcp\n  set auto-transport-threshold 300\n  set fortinet-esp disable\n"
		"  set authmethod signature\n  set certificate /etc/c.pem\n  set ca /etc/ca.pem\n"
		"  set localid \"CN=gw, O=Example\"\n  set peerid peer@example.org\n"
		"  set proposal chacha20poly1305-prfsha512 aes256-sha512 aes128gcm-prfsha384\n"
		"  set dhgrp 14 15 16 19 20 21 31 32\n  set keylife 172800\n  set dpd on-idle\n"
		"  set dpd-retryinterval 3600\n  set dpd-retrycount 0\n  set nattraversal forced\n"
		"  set auto-negotiate disable\n"
		" next\n edit dial\n  set interface eth1\n  set type dynamic\n  set psksecret 123456\n"
		"  set nattraversal disable\n  set transport tcp\n"
		" next\nend\n"
		"config vpn ipsec phase2-interface\n edit \"s\"\n  set phase1name dial\n"
		"  set proposal aes256-sha384 chacha20poly1305\n  set src-subnet 10.0.0.0/8\n"
		"  set dst-subnet 192.168.1.128 255.255.255.128\n  set src-subnet6 2001:db8:1::/48\n"
		"  set dst-subnet6 ::/0\n  set pfs disable\n  set dhgrp 20 21\n  set keylifeseconds 120\n"
		"  set keylife-type both\n  set keylifekbs 4294967295\n"
		"  set replay disable\n  set auto-negotiate disable\n next\nend\n");
	const struct conf_settings *s = &c->settings;
	const struct conf_phase1 *p1 = &c->phase1[0];
	const struct conf_phase2 *p2 = &c->phase2[0];

	(void)state;
	assert_true(s->ike_tls_service);
	assert_int_equal(s->ike_tcp_port, 4500);
	assert_int_equal(s->ike_port, 1500);
	assert_int_equal(s->ike_natt_port, 14500);
	assert_int_equal(s->ike_tcp_internal_port, 12443);
	assert_string_equal(s->ike_tls_certificate, "/etc/iketcp/tls cert.pem");
	assert_string_equal(s->ike_tls_private_key, "/etc/iketcp/tls.key");
	assert_words(s->inner_interfaces, s->n_inner_interfaces, "lan0", "lan1", "br-lan.10");
	assert_int_equal(s->dataplane, CONF_DATAPLANE_TUN);
	assert_int_equal(s->xdp_mode, CONF_XDP_GENERIC);
	assert_int_equal(s->steer_hook, CONF_STEER_TC);
	assert_int_equal(s->ike_tcp_syn_rate, 0);
	assert_int_equal(s->ike_tcp_max_connections, 1000000);
	assert_int_equal(s->ike_tcp_idle_timeout, 5);
	assert_string_equal(s->control_socket, "/run/x.sock");
	assert_string_equal(s->bpf_pin_path, "/sys/fs/bpf/y");

	assert_int_equal(c->n_phase1, 2);
	assert_false(p1->has_remote_gw);
	assert_ip6(&p1->remote_gw6, "2001:db8::2");
	assert_true(p1->has_local_gw);
	assert_ip4(p1->local_gw, "198.51.100.7");
	assert_true(p1->has_local_gw6);
	assert_ip6(&p1->local_gw6, "2001:db8::7");
	assert_int_equal(p1->transport, CONF_TRANSPORT_TCP);
	assert_int_equal(p1->auto_transport_threshold, 300);
	assert_int_equal(p1->authmethod, CONF_AUTH_SIGNATURE);
	assert_null(p1->psksecret);
	assert_string_equal(p1->certificate, "/etc/c.pem");
	assert_string_equal(p1->ca, "/etc/ca.pem");
	assert_string_equal(p1->localid, "CN=gw, O=Example");
	assert_string_equal(p1->peerid, "peer@example.org");
	assert_words(p1->proposals, p1->n_proposals, "chacha20poly1305-prfsha512", "aes256-sha512",
		     "aes128gcm-prfsha384");
	assert_int_equal(p1->n_dhgrp, 8);
	assert_int_equal(p1->dhgrp[7], 32);
	assert_int_equal(p1->keylife, 172800);
	assert_int_equal(p1->dpd, CONF_DPD_ON_IDLE);
	assert_int_equal(p1->dpd_retryinterval, 3600);
	assert_int_equal(p1->dpd_retrycount, 0);
	assert_int_equal(p1->nattraversal, CONF_NATT_FORCED);
	assert_false(p1->auto_negotiate);
	assert_int_equal(c->phase1[1].type, CONF_P1_DYNAMIC);
	assert_int_equal(c->phase1[1].nattraversal, CONF_NATT_DISABLE);
	assert_ptr_equal(conf_find_phase1(c, "dial"), &c->phase1[1]);

	assert_int_equal(p2->phase1_index, 1);
	assert_words(p2->proposals, p2->n_proposals, "aes256-sha384", "chacha20poly1305");
	assert_ip4(p2->src_subnet.addr, "10.0.0.0");
	assert_int_equal(p2->src_subnet.prefix_len, 8);
	assert_ip4(p2->dst_subnet.addr, "192.168.1.128");
	assert_int_equal(p2->dst_subnet.prefix_len, 25);
	assert_true(p2->has_src_subnet6);
	assert_ip6(&p2->src_subnet6.addr, "2001:db8:1::");
	assert_int_equal(p2->src_subnet6.prefix_len, 48);
	assert_true(p2->has_dst_subnet6);
	assert_int_equal(p2->dst_subnet6.prefix_len, 0);
	assert_false(p2->pfs);
	assert_int_equal(p2->n_dhgrp, 2);
	assert_int_equal(p2->keylifeseconds, 120);
	assert_int_equal(p2->keylife_type, CONF_KEYLIFE_BOTH);
	assert_int_equal(p2->keylifekbs, 4294967295u);
	assert_false(p2->replay);
	assert_false(p2->auto_negotiate);
	conf_free(c);
}

/* ---- lexical details ---- */

static void test_quoting(void **state)
{
	struct config *c = load_ok(
		"# comment at the start\n"
		"config system settings # comment after words\n"
		"    set ike-tls-certificate \"/a b/#not a comment\"\n"
		"    set ike-tls-private-key \"/q\\\"uote\\\\back\"\n"
		"\tset\tike-tcp-service\t\"enable\"   \n"
		"end\n"
		"config vpn ipsec phase1-interface\n"
		"    edit \"name with spaces\"\n"
		"        set interface \"wan0\"\n        set remote-gw \"192.0.2.1\"\n"
		"        set psksecret \"sec#ret \\\"x\\\"\"\n"
		"        set localid \"caf\xc3\xa9\"\n"
		"    next\nend\n");

	(void)state;
	assert_string_equal(c->settings.ike_tls_certificate, "/a b/#not a comment");
	assert_string_equal(c->settings.ike_tls_private_key, "/q\"uote\\back");
	assert_true(c->settings.ike_tcp_service);
	assert_string_equal(c->phase1[0].name, "name with spaces");
	assert_string_equal(c->phase1[0].psksecret, "sec#ret \"x\"");
	assert_string_equal(c->phase1[0].localid, "caf\xc3\xa9");
	conf_free(c);
}

struct err_case {
	const char *what, *text;
	const char *want[6];
};

#define S_(body) "config system settings\n" body "end\n"

static const struct err_case err_cases[] = {
	/* lexer */
	{ "unterminated", S_(" set ike-tls-certificate \"/a\n"),
	  { "t.conf:2: unterminated string (missing closing '\"')" } },
	{ "bad escape", S_(" set ike-tls-certificate \"/a\\n\"\n"),
	  { "t.conf:2: invalid escape in string (only \\\" and \\\\ are allowed)" } },
	{ "backslash at end", S_(" set ike-tls-certificate \"/a\\\n"),
	  { "t.conf:2: invalid escape in string (only \\\" and \\\\ are allowed)" } },
	{ "quote in word", S_(" set ike-tls-certificate /a\"b\"\n"),
	  { "t.conf:2: unexpected '\"' inside a word (quote the whole value)" } },
	{ "glued string", S_(" set ike-tls-certificate \"/a\"b\n"),
	  { "t.conf:2: missing space after closing '\"'" } },
	{ "control byte", S_(" set ike-port \x01\n"), { "t.conf:2: invalid control character 0x01" } },
	{ "DEL", S_(" set ike-port 5\x7f\n"), { "t.conf:2: invalid control character 0x7f" } },
	{ "non-ASCII word", S_(" set ike-port caf\xc3\xa9\n"),
	  { "t.conf:2: non-ASCII byte 0xc3 outside quotes" } },
	/* structure */
	{ "set outside", "set ike-port 500\n",
	  { "t.conf:1: \"set\" outside a config section" } },
	{ "unset outside", "unset ike-port\n",
	  { "t.conf:1: \"unset\" outside a config section" } },
	{ "edit outside", "edit \"x\"\nnext\n",
	  { "t.conf:1: \"edit\" outside a config section",
	    "t.conf:2: \"next\" outside a config section" } },
	{ "end outside", "end\n", { "t.conf:1: \"end\" without \"config\"" } },
	{ "config alone", "config\n", { "t.conf:1: \"config\" needs a section name" } },
	{ "unknown section", "config vpn ipsec phase1\n set foo bar\n edit x\n next\nend\n",
	  { "t.conf:1: unknown section \"vpn ipsec phase1\" (did you mean \"vpn ipsec phase1-interface\"?)" } },
	{ "unknown section unclosed", "config router static\n edit 1\n",
	  { "t.conf:1: unknown section \"router static\"",
	    "t.conf:1: unknown section has no \"end\"" } },
	{ "sub-section", S_(" config foo\n  set x y\n end\n set ike-port 0\n"),
	  { "t.conf:2: unknown sub-section \"foo\" in \"system settings\"",
	    "t.conf:5: value 0 out of range for \"ike-port\" (1-65535)" } },
	{ "edit in non-table", S_(" edit \"x\"\n  set ike-port 9\n next\n"),
	  { "t.conf:2: \"edit\" in \"config system settings\", which is not a table" } },
	{ "set in table without edit",
	  "config vpn ipsec phase1-interface\n set interface wan0\nend\n",
	  { "t.conf:2: \"set\" in table \"config vpn ipsec phase1-interface\" needs an \"edit\" first" } },
	{ "missing end", "config system settings\n set ike-port 1\n",
	  { "t.conf:1: \"config system settings\" has no \"end\"" } },
	{ "missing end before config", S_("") "config system global\n set admin-sport 1\n"
					  "config system settings\nend\n",
	  { "t.conf:5: missing \"end\" for \"config system global\" (line 3)" } },
	{ "end missing at eof after settings", S_("") "config system global\n set admin-sport 1\n",
	  { "t.conf:3: \"config system global\" has no \"end\"" } },
	{ "missing end, next section",
	  "config system global\n set admin-sport 1\nconfig system settings\nend\n",
	  { "t.conf:3: missing \"end\" for \"config system global\" (line 1)" } },
	{ "missing next at end", P1_HEAD "end\n",
	  { "t.conf:6: missing \"next\" for edit \"p1\" (line 2)" } },
	{ "missing next at edit",
	  P1_HEAD "    edit \"p2\"\n  set interface wan1\n set remote-gw 192.0.2.2\n"
		  " set psksecret abcdefg\n" P1_TAIL,
	  { "t.conf:6: missing \"next\" for edit \"p1\" (line 2)" } },
	{ "missing next and end at eof", P1_HEAD,
	  { "t.conf:1: \"config vpn ipsec phase1-interface\" has no \"end\"",
	    "t.conf:2: edit \"p1\" has no \"next\"" } },
	{ "next without edit", S_(" next\n"), { "t.conf:2: \"next\" without \"edit\"" } },
	{ "end with words", S_("") "end now\n",
	  { "t.conf:3: \"end\" takes no arguments", "t.conf:3: \"end\" without \"config\"" } },
	{ "edit two names", "config vpn ipsec phase2-interface\n edit a b\n next\nend\n",
	  { "t.conf:2: \"edit\" takes exactly one name, got 2" } },
	{ "edit empty name", "config vpn ipsec phase2-interface\n edit \"\"\n next\nend\n",
	  { "t.conf:2: invalid name for \"edit\" (1-63 characters)" } },
	{ "duplicate edit", P1_HEAD P1_TAIL P1_HEAD P1_TAIL,
	  { "t.conf:9: duplicate edit \"p1\" in \"config vpn ipsec phase1-interface\" (first at line 2)" } },
	{ "unknown command", S_(" sett ike-port 1\n"),
	  { "t.conf:2: unknown command \"sett\" (did you mean \"set\"?)" } },
	{ "nonsense command", S_(" 4500\n \"set\"x\n"),
	  { "t.conf:2: unknown command \"4500\" (expected config, end, edit, next, set or unset)",
	    "t.conf:3: missing space after closing '\"'" } },
	{ "unknown section typo", "config system setting\nend\n",
	  { "t.conf:1: unknown section \"system setting\" (did you mean \"system settings\"?)" } },
	{ "set without key", S_(" set\n"), { "t.conf:2: \"set\" needs a key" } },
	{ "unset with value", S_(" unset ike-port 500\n"), { "t.conf:2: \"unset\" takes only a key" } },
	/* keys */
	{ "did you mean", P1_HEAD "        set remote-gateway 192.0.2.1\n" P1_TAIL,
	  { "t.conf:6: unknown key \"remote-gateway\" in \"vpn ipsec phase1-interface\" (did you mean \"remote-gw\"?)" } },
	{ "did you mean settings", S_(" set ike-tcp-prot 443\n"),
	  { "t.conf:2: unknown key \"ike-tcp-prot\" in \"system settings\" (did you mean \"ike-tcp-port\"?)" } },
	{ "key of another section", S_(" set admin-sport 443\n"),
	  { "t.conf:2: unknown key \"admin-sport\" in \"system settings\" (did you mean \"ike-port\"?)" } },
	/* values */
	{ "missing value", S_(" set ike-port\n"), { "t.conf:2: missing value for \"ike-port\"" } },
	{ "two values", S_(" set ike-port 1 2\n"), { "t.conf:2: \"ike-port\" takes one value, got 2" } },
	{ "bad bool", S_(" set ike-tcp-service on\n"),
	  { "t.conf:2: invalid value \"on\" for \"ike-tcp-service\" (expected enable or disable)" } },
	{ "bad enum", P1_HEAD "  set transport tpc\n" P1_TAIL,
	  { "t.conf:6: invalid value \"tpc\" for \"transport\" (expected udp, auto or tcp)" } },
	{ "bad steer-hook", S_(" set steer-hook skb\n"),
	  { "t.conf:2: invalid value \"skb\" for \"steer-hook\" (expected xdp or tc)" } },
	{ "not a number", S_(" set ike-port 0x10\n"),
	  { "t.conf:2: invalid number \"0x10\" for \"ike-port\"" } },
	{ "negative", S_(" set ike-port -1\n"), { "t.conf:2: invalid number \"-1\" for \"ike-port\"" } },
	{ "empty string", P1_HEAD "  set localid \"\"\n" P1_TAIL,
	  { "t.conf:6: empty value for \"localid\"" } },
	{ "short psk", P1_HEAD "  set psksecret abc\n" P1_TAIL,
	  { "t.conf:6: value for \"psksecret\" must be 6-128 characters, got 3" } },
	{ "long ifname", P1_HEAD "  set interface abcdefghijklmnop\n" P1_TAIL,
	  { "t.conf:6: invalid interface name \"abcdefghijklmnop\" for \"interface\" (1-15 characters, no '/', ':' or spaces)" } },
	{ "slash ifname", S_(" set inner-interface lan0 a/b\n"),
	  { "t.conf:2: invalid interface name \"a/b\" for \"inner-interface\" (1-15 characters, no '/', ':' or spaces)" } },
	{ "repeated interface", S_(" set inner-interface lan0 lan0\n"),
	  { "t.conf:2: \"lan0\" given twice for \"inner-interface\"" } },
	{ "long socket path", S_(" set control-socket /" "0123456789012345678901234567890123456789"
				 "0123456789012345678901234567890123456789012345678901234567890123456789\n"),
	  { "t.conf:2: value for \"control-socket\" must be 1-107 characters, got 111" } },
	{ "bad ipv4", P1_HEAD "  set local-gw 1.2.3\n" P1_TAIL,
	  { "t.conf:6: invalid IPv4 address \"1.2.3\" for \"local-gw\"" } },
	{ "leading zero ipv4", P1_HEAD "  set local-gw 01.2.3.4\n" P1_TAIL,
	  { "t.conf:6: invalid IPv4 address \"01.2.3.4\" for \"local-gw\"" } },
	{ "ipv6 for ipv4", P1_HEAD "  set local-gw 2001:db8::1\n" P1_TAIL,
	  { "t.conf:6: invalid IPv4 address \"2001:db8::1\" for \"local-gw\"" } },
	{ "multicast gw", P1_HEAD "  set local-gw 224.0.0.1\n" P1_TAIL,
	  { "t.conf:6: 224.0.0.1 for \"local-gw\" is not a unicast address" } },
	{ "zero gw", P1_HEAD "  set remote-gw 0.0.0.0\n" P1_TAIL,
	  { "t.conf:6: 0.0.0.0 for \"remote-gw\" is not a unicast address" } },
	{ "bad ipv6", P1_HEAD "  set remote-gw6 2001:db8:::1\n" P1_TAIL,
	  { "t.conf:6: invalid IPv6 address \"2001:db8:::1\" for \"remote-gw6\"" } },
	{ "unspecified ipv6", P1_HEAD "  set local-gw6 ::\n" P1_TAIL,
	  { "t.conf:6: :: for \"local-gw6\" is not a unicast address" } },
	/* semantic rules */
	{ "ikev1", P1_HEAD "  set ike-version 1\n" P1_TAIL,
	  { "t.conf:6: IKEv1 is not supported (set ike-version 2)" } },
	{ "ikev3", P1_HEAD "  set ike-version 3\n" P1_TAIL,
	  { "t.conf:6: invalid value \"3\" for \"ike-version\" (expected 2)" } },
	{ "fortinet-esp", P1_HEAD "  set fortinet-esp enable\n" P1_TAIL,
	  { "t.conf:6: \"fortinet-esp enable\" is not supported" } },
	{ "interface required",
	  "config vpn ipsec phase1-interface\n edit x\n  set remote-gw 192.0.2.1\n"
	  "  set psksecret 123456\n next\nend\n",
	  { "t.conf:2: phase1-interface \"x\": missing \"set interface\" (required)" } },
	{ "remote-gw required",
	  "config vpn ipsec phase1-interface\n edit x\n  set interface a\n"
	  "  set psksecret 123456\n next\nend\n",
	  { "t.conf:2: phase1-interface \"x\": type static needs \"set remote-gw\" or \"set remote-gw6\"" } },
	{ "psk required",
	  "config vpn ipsec phase1-interface\n edit x\n  set interface a\n set type dynamic\n"
	  " next\nend\n",
	  { "t.conf:2: phase1-interface \"x\": missing \"set psksecret\" (authmethod psk)" } },
	{ "signature needs cert and ca",
	  "config vpn ipsec phase1-interface\n edit x\n  set interface a\n set type dynamic\n"
	  "  set authmethod signature\n next\nend\n",
	  { "t.conf:2: phase1-interface \"x\": missing \"set certificate\" (authmethod signature)",
	    "t.conf:2: phase1-interface \"x\": missing \"set ca\" (authmethod signature)" } },
	{ "signature needs ca",
	  "config vpn ipsec phase1-interface\n edit x\n  set interface a\n set type dynamic\n"
	  "  set authmethod signature\n  set certificate /c\n next\nend\n",
	  { "t.conf:2: phase1-interface \"x\": missing \"set ca\" (authmethod signature)" } },
	{ "auto needs static",
	  "config system settings\n set ike-tcp-service enable\nend\n"
	  "config vpn ipsec phase1-interface\n edit x\n  set interface a\n set type dynamic\n"
	  "  set psksecret 123456\n  set transport auto\n next\nend\n",
	  { "t.conf:9: \"transport auto\" needs \"type static\" (phase1-interface \"x\" is dynamic)" } },
	{ "tcp needs ike-tcp-service", P1_HEAD "  set transport tcp\n" P1_TAIL,
	  { "t.conf:6: \"transport tcp\" needs \"set ike-tcp-service enable\" in \"config system settings\"" } },
	{ "auto needs ike-tcp-service", P1_HEAD "  set transport auto\n" P1_TAIL,
	  { "t.conf:6: \"transport auto\" needs \"set ike-tcp-service enable\" in \"config system settings\"" } },
	{ "tls needs tcp", S_(" set ike-tls-service enable\n"),
	  { "t.conf:2: \"ike-tls-service enable\" needs \"set ike-tcp-service enable\" in \"config system settings\"" } },
	{ "ike-port equals ike-natt-port", S_(" set ike-port 4500\n"),
	  { "t.conf:2: \"ike-port\" and \"ike-natt-port\" are both 4500: IKE without the non-ESP marker cannot share "
	    "a UDP port with ESP (RFC 3948)" } },
	{ "nattraversal disable over udp", P1_HEAD "  set nattraversal disable\n" P1_TAIL,
	  { "t.conf:6: phase1-interface \"p1\": \"nattraversal disable\" needs kernel ESP; this gateway's ESP over UDP "
	    "is always UDP-encapsulated (use enable or forced, or \"transport tcp\")" } },
	{ "tls cert without key", S_(" set ike-tls-certificate /c.pem\n"),
	  { "t.conf:2: \"ike-tls-certificate\" is set but \"ike-tls-private-key\" is not: set both or neither" } },
	{ "tls key without cert", S_(" set ike-tls-private-key /c.key\n"),
	  { "t.conf:2: \"ike-tls-private-key\" is set but \"ike-tls-certificate\" is not: set both or neither" } },
	{ "phase1name required", "config vpn ipsec phase2-interface\n edit x\n next\nend\n",
	  { "t.conf:2: phase2-interface \"x\": missing \"set phase1name\" (required)" } },
	{ "phase1name unresolved, none",
	  "config vpn ipsec phase2-interface\n edit x\n  set phase1name p1\n next\nend\n",
	  { "t.conf:3: phase1name \"p1\": there is no phase1-interface entry" } },
	{ "phase1name unresolved",
	  P1_HEAD P1_TAIL "config vpn ipsec phase2-interface\n edit x\n  set phase1name p2\n next\nend\n",
	  { "t.conf:10: phase1name \"p2\" is not a phase1-interface entry (did you mean \"p1\"?)" } },
	{ "subnet6 alone",
	  P1_HEAD P1_TAIL "config vpn ipsec phase2-interface\n edit x\n  set phase1name p1\n"
	  "  set src-subnet6 2001:db8::/64\n next\nend\n",
	  { "t.conf:9: phase2-interface \"x\": set both \"src-subnet6\" and \"dst-subnet6\" or neither" } },
	{ "dhgrp unsupported", P1_HEAD "  set dhgrp 19 2\n" P1_TAIL,
	  { "t.conf:6: unsupported dhgrp \"2\" (supported: 14 15 16 19 20 21 31 32)" } },
	{ "dhgrp twice", P1_HEAD "  set dhgrp 19 19\n" P1_TAIL,
	  { "t.conf:6: \"19\" given twice for \"dhgrp\"" } },
	{ "dhgrp twice, spelled apart", P1_HEAD "  set dhgrp 19 019\n" P1_TAIL,
	  { "t.conf:6: \"19\" given twice for \"dhgrp\"" } },
	{ "dhgrp too many", P1_HEAD "  set dhgrp 14 15 16 19 20 21 31 32 14\n" P1_TAIL,
	  { "t.conf:6: too many values for \"dhgrp\" (9, at most 8)" } },
	{ "p1 proposal", P1_HEAD "  set proposal aes128gcm\n" P1_TAIL,
	  { "t.conf:6: unknown proposal \"aes128gcm\" (did you mean \"aes128gcm-prfsha256\"?)" } },
	{ "p1 proposal 3des", P1_HEAD "  set proposal 3des-sha1\n" P1_TAIL,
	  { "t.conf:6: unknown proposal \"3des-sha1\" (did you mean \"aes128-sha512\"?)" } },
	{ "p2 proposal", P1_HEAD P1_TAIL "config vpn ipsec phase2-interface\n edit x\n"
	  "  set phase1name p1\n  set proposal aes128gcm-prfsha256\n next\nend\n",
	  { "t.conf:11: unknown proposal \"aes128gcm-prfsha256\" (did you mean \"aes128gcm\"?)" } },
};

static void test_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(err_cases); i++) {
		print_message("case: %s\n", err_cases[i].what);
		expect_errors_v(err_cases[i].text, err_cases[i].want);
	}
}

/* Several errors in one file: all of them, in line order, with the right lines. */
static void test_many_errors(void **state)
{
	(void)state;
	expect_errors("# line 1\n"
		      "config system settings\n"
		      "    set ike-tcp-port 65536\n"		   /* 3 */
		      "    set ike-tls-service enable\n"	   /* 4 */
		      "    set bogus 1\n"			   /* 5 */
		      "end\n"
		      "config vpn ipsec phase1-interface\n"
		      "    edit \"a\"\n"			   /* 8 */
		      "        set interface wan0\n"
		      "        set remote-gateway 192.0.2.1\n" /* 10 */
		      "        set ike-version 1\n"		   /* 11 */
		      "        set psksecret \"unterminated\n" /* 12 */
		      "    next\n"
		      "end\n"
		      "config vpn ipsec phase2-interface\n"
		      "    edit \"b\"\n"
		      "        set phase1name \"c\"\n"		   /* 17 */
		      "        set src-subnet 10.0.0.1 255.255.255.0\n" /* 18 */
		      "    next\n",
		      "t.conf:3: value 65536 out of range for \"ike-tcp-port\" (1-65535)",
		      "t.conf:4: \"ike-tls-service enable\" needs \"set ike-tcp-service enable\" in \"config system settings\"",
		      "t.conf:5: unknown key \"bogus\" in \"system settings\" (did you mean \"ike-port\"?)",
		      "t.conf:8: phase1-interface \"a\": type static needs \"set remote-gw\" or \"set remote-gw6\"",
		      "t.conf:8: phase1-interface \"a\": missing \"set psksecret\" (authmethod psk)",
		      "t.conf:10: unknown key \"remote-gateway\" in \"vpn ipsec phase1-interface\" (did you mean \"remote-gw\"?)",
		      "t.conf:11: IKEv1 is not supported (set ike-version 2)",
		      "t.conf:12: unterminated string (missing closing '\"')",
		      "t.conf:15: \"config vpn ipsec phase2-interface\" has no \"end\"",
		      "t.conf:17: phase1name \"c\" is not a phase1-interface entry (did you mean \"a\"?)",
		      "t.conf:18: 10.0.0.1/24 for \"src-subnet\" has host bits set (did you mean 10.0.0.0/24?)");
}

/* A rejected value is reported once, not again as "missing". */
static void test_no_cascade(void **state)
{
	(void)state;
	expect_errors("config vpn ipsec phase1-interface\n edit x\n  set interface a/b\n"
		      "  set remote-gw 1.2.3.256\n  set psksecret \"\"\n next\nend\n"
		      "config vpn ipsec phase2-interface\n edit y\n  set phase1name \"\"\n"
		      "  set src-subnet6 1::/200\n  set dst-subnet6 ::/0\n next\nend\n",
		      "t.conf:3: invalid interface name \"a/b\" for \"interface\" (1-15 characters, no '/', ':' or spaces)",
		      "t.conf:4: invalid IPv4 address \"1.2.3.256\" for \"remote-gw\"",
		      "t.conf:5: empty value for \"psksecret\"",
		      "t.conf:10: empty value for \"phase1name\"",
		      "t.conf:11: invalid IPv6 prefix for \"src-subnet6\" (expected X:X::X/N)");
}

/* ---- subnets and ranges ---- */

struct subnet_case {
	const char *value;
	const char *addr; /* NULL: must fail with msg */
	unsigned plen;
	const char *msg;
};

static const struct subnet_case subnet_cases[] = {
	{ "10.1.0.0 255.255.255.0", "10.1.0.0", 24, NULL },
	{ "10.1.0.0/24", "10.1.0.0", 24, NULL },
	{ "10.1.0.0/255.255.0.0", "10.1.0.0", 16, NULL },
	{ "0.0.0.0 0.0.0.0", "0.0.0.0", 0, NULL },
	{ "0.0.0.0/0", "0.0.0.0", 0, NULL },
	{ "192.0.2.7/32", "192.0.2.7", 32, NULL },
	{ "192.0.2.7 255.255.255.255", "192.0.2.7", 32, NULL },
	{ "\"10.0.0.0/8\"", "10.0.0.0", 8, NULL },
	{ "10.0.0.0 255.0.255.0", NULL, 0,
	  "t.conf:3: netmask 255.0.255.0 for \"src-subnet\" is not contiguous" },
	{ "10.0.0.0 0.255.255.255", NULL, 0,
	  "t.conf:3: netmask 0.255.255.255 for \"src-subnet\" is not contiguous" },
	{ "10.0.0.0/33", NULL, 0,
	  "t.conf:3: invalid IPv4 subnet for \"src-subnet\" (expected A.B.C.D M.M.M.M or A.B.C.D/N)" },
	{ "10.0.0.0/-1", NULL, 0,
	  "t.conf:3: invalid IPv4 subnet for \"src-subnet\" (expected A.B.C.D M.M.M.M or A.B.C.D/N)" },
	{ "10.0.0.0/", NULL, 0,
	  "t.conf:3: invalid IPv4 subnet for \"src-subnet\" (expected A.B.C.D M.M.M.M or A.B.C.D/N)" },
	{ "10.0.0.0 24", NULL, 0,
	  "t.conf:3: invalid IPv4 subnet for \"src-subnet\" (expected A.B.C.D M.M.M.M or A.B.C.D/N)" },
	{ "10.0.0.0", NULL, 0,
	  "t.conf:3: invalid IPv4 subnet for \"src-subnet\" (expected A.B.C.D M.M.M.M or A.B.C.D/N)" },
	{ "10.0.0 255.0.0.0", NULL, 0,
	  "t.conf:3: invalid IPv4 subnet for \"src-subnet\" (expected A.B.C.D M.M.M.M or A.B.C.D/N)" },
	{ "10.0.0.0 255.0.0.0 1", NULL, 0, 
	  "t.conf:3: \"src-subnet\" takes A.B.C.D M.M.M.M or A.B.C.D/N, got 3 values" },
	{ "10.0.0.1/8", NULL, 0,
	  "t.conf:3: 10.0.0.1/8 for \"src-subnet\" has host bits set (did you mean 10.0.0.0/8?)" },
};

static void test_subnets(void **state)
{
	char text[512];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(subnet_cases); i++) {
		const struct subnet_case *t = &subnet_cases[i];

		print_message("subnet: %s\n", t->value);
		snprintf(text, sizeof(text),
			 "config vpn ipsec phase2-interface\n edit x\n  set src-subnet %s\n"
			 "  set phase1name p1\n next\nend\n" P1_HEAD P1_TAIL,
			 t->value);
		if (!t->addr) {
			expect_errors(text, t->msg);
			continue;
		}
		struct config *c = load_ok(text);

		assert_ip4(c->phase2[0].src_subnet.addr, t->addr);
		assert_int_equal(c->phase2[0].src_subnet.prefix_len, t->plen);
		/* a phase2 may come before its phase1 */
		assert_int_equal(c->phase2[0].phase1_index, 0);
		conf_free(c);
	}

	struct config *c = load_ok(P1_HEAD P1_TAIL "config vpn ipsec phase2-interface\n edit x\n"
				   "  set phase1name p1\n  set src-subnet6 2001:db8::/32\n"
				   "  set dst-subnet6 2001:db8:1:2::5\n next\nend\n");

	assert_ip6(&c->phase2[0].src_subnet6.addr, "2001:db8::");
	assert_int_equal(c->phase2[0].src_subnet6.prefix_len, 32);
	assert_ip6(&c->phase2[0].dst_subnet6.addr, "2001:db8:1:2::5");
	assert_int_equal(c->phase2[0].dst_subnet6.prefix_len, 128);
	conf_free(c);
	expect_errors(P1_HEAD P1_TAIL "config vpn ipsec phase2-interface\n edit x\n"
		      "  set phase1name p1\n  set src-subnet6 2001:db8::1/64\n"
		      "  set dst-subnet6 10.0.0.0/8\n next\nend\n",
		      "t.conf:11: 2001:db8::1/64 for \"src-subnet6\" has host bits set",
		      "t.conf:12: invalid IPv6 prefix for \"dst-subnet6\" (expected X:X::X/N)");
}

struct range_case {
	const char *key, *value;
	uint32_t want; /* when msg is NULL */
	const char *msg;
};

static const struct range_case range_cases[] = {
	{ "ike-tcp-port", "0", 0, "value 0 out of range for \"ike-tcp-port\" (1-65535)" },
	{ "ike-tcp-port", "1", 1, NULL },
	{ "ike-tcp-port", "65535", 65535, NULL },
	{ "ike-tcp-port", "065535", 65535, NULL },
	{ "ike-tcp-port", "65536", 0, "value 65536 out of range for \"ike-tcp-port\" (1-65535)" },
	{ "ike-tcp-port", "4294967296", 0,
	  "value 4294967296 out of range for \"ike-tcp-port\" (1-65535)" },
	{ "ike-tcp-port", "99999999999999999999999", 0,
	  "value 99999999999999999999999 out of range for \"ike-tcp-port\" (1-65535)" },
	{ "ike-tcp-port", "+5", 0, "invalid number \"+5\" for \"ike-tcp-port\"" },
	{ "ike-tcp-port", "\"\"", 0, "invalid number \"\" for \"ike-tcp-port\"" },
	{ "ike-tcp-port", "1e3", 0, "invalid number \"1e3\" for \"ike-tcp-port\"" },
	{ "ike-port", "1", 1, NULL },
	{ "ike-natt-port", "65535", 65535, NULL },
	{ "ike-tcp-internal-port", "0", 0,
	  "value 0 out of range for \"ike-tcp-internal-port\" (1-65535)" },
	{ "ike-tcp-syn-rate", "0", 0, NULL },
	{ "ike-tcp-syn-rate", "1000000", 1000000, NULL },
	{ "ike-tcp-syn-rate", "1000001", 0,
	  "value 1000001 out of range for \"ike-tcp-syn-rate\" (0-1000000)" },
	{ "ike-tcp-max-connections", "0", 0,
	  "value 0 out of range for \"ike-tcp-max-connections\" (1-1000000)" },
	{ "ike-tcp-max-connections", "1", 1, NULL },
	{ "ike-tcp-idle-timeout", "4", 0,
	  "value 4 out of range for \"ike-tcp-idle-timeout\" (5-86400)" },
	{ "ike-tcp-idle-timeout", "86400", 86400, NULL },
	{ "ike-tcp-idle-timeout", "86401", 0,
	  "value 86401 out of range for \"ike-tcp-idle-timeout\" (5-86400)" },
};

static uint32_t settings_value(const struct conf_settings *s, const char *key)
{
	if (!strcmp(key, "ike-tcp-port"))
		return s->ike_tcp_port;
	if (!strcmp(key, "ike-port"))
		return s->ike_port;
	if (!strcmp(key, "ike-natt-port"))
		return s->ike_natt_port;
	if (!strcmp(key, "ike-tcp-internal-port"))
		return s->ike_tcp_internal_port;
	if (!strcmp(key, "ike-tcp-syn-rate"))
		return s->ike_tcp_syn_rate;
	if (!strcmp(key, "ike-tcp-max-connections"))
		return s->ike_tcp_max_connections;
	if (!strcmp(key, "ike-tcp-idle-timeout"))
		return s->ike_tcp_idle_timeout;
	fail_msg("no such key %s", key);
	return 0;
}

static void test_ranges(void **state)
{
	char text[256], msg[256];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(range_cases); i++) {
		const struct range_case *t = &range_cases[i];

		print_message("range: %s %s\n", t->key, t->value);
		snprintf(text, sizeof(text), "config system settings\n set %s %s\nend\n", t->key,
			 t->value);
		if (t->msg) {
			snprintf(msg, sizeof(msg), "t.conf:2: %s", t->msg);
			expect_errors(text, msg);
			continue;
		}
		struct config *c = load_ok(text);

		assert_int_equal(settings_value(&c->settings, t->key), t->want);
		conf_free(c);
	}
	/* phase1 and phase2 ranges at both edges */
	static const char *const p_bad[][2] = {
		{ "keylife 119", "t.conf:6: value 119 out of range for \"keylife\" (120-172800)" },
		{ "keylife 172801", "t.conf:6: value 172801 out of range for \"keylife\" (120-172800)" },
		{ "auto-transport-threshold 0",
		  "t.conf:6: value 0 out of range for \"auto-transport-threshold\" (1-300)" },
		{ "auto-transport-threshold 301",
		  "t.conf:6: value 301 out of range for \"auto-transport-threshold\" (1-300)" },
		{ "dpd-retrycount 11", "t.conf:6: value 11 out of range for \"dpd-retrycount\" (0-10)" },
		{ "dpd-retryinterval 0",
		  "t.conf:6: value 0 out of range for \"dpd-retryinterval\" (1-3600)" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(p_bad); i++) {
		snprintf(text, sizeof(text), P1_HEAD "  set %s\n" P1_TAIL, p_bad[i][0]);
		expect_errors(text, p_bad[i][1]);
	}
	expect_errors(P1_HEAD P1_TAIL "config vpn ipsec phase2-interface\n edit x\n"
		      "  set phase1name p1\n  set keylifeseconds 172801\n next\nend\n",
		      "t.conf:11: value 172801 out of range for \"keylifeseconds\" (120-172800)");
	expect_errors(P1_HEAD P1_TAIL "config vpn ipsec phase2-interface\n edit x\n"
		      "  set phase1name p1\n  set keylifekbs 5119\n  set keylife-type bytes\n next\nend\n",
		      "t.conf:11: value 5119 out of range for \"keylifekbs\" (5120-4294967295)",
		      "t.conf:12: invalid value \"bytes\" for \"keylife-type\" (expected seconds, kbs or both)");
	expect_errors(S_(" set admin-sport 1\n") "config system global\n set admin-sport 65536\nend\n",
		      "t.conf:2: unknown key \"admin-sport\" in \"system settings\" (did you mean \"ike-port\"?)",
		      "t.conf:5: value 65536 out of range for \"admin-sport\" (1-65535)");
}

/* ---- hostile input ---- */

static void test_long(void **state)
{
	size_t big = 200000;
	char *text = malloc(big + 256);
	struct config *c;
	struct conf_diag d;
	int n;

	(void)state;
	assert_non_null(text);
	/* a very long comment line is fine */
	n = sprintf(text, "# ");
	memset(text + n, 'x', big);
	strcpy(text + n + big, "\nconfig system settings\n set ike-port 7\nend\n");
	c = load_ok(text);
	assert_int_equal(c->settings.ike_port, 7);
	conf_free(c);

	/* a very long word is refused, by line, without echoing it */
	n = sprintf(text, "config system settings\n set bpf-pin-path /");
	memset(text + n, 'a', big);
	strcpy(text + n + big, "\n set ike-port 0\nend\n");
	expect_errors(text, "t.conf:2: word too long (200001 bytes, at most 4095)",
		      "t.conf:3: value 0 out of range for \"ike-port\" (1-65535)");

	/* the longest word accepted, then a value too long for its key */
	n = sprintf(text, "config system settings\n set bpf-pin-path /");
	memset(text + n, 'a', 4094);
	strcpy(text + n + 4094, "\nend\n");
	expect_errors(text, "t.conf:2: value for \"bpf-pin-path\" must be 1-4000 characters, got 4095");

	/* a long unknown key is echoed only in part */
	n = sprintf(text, "config system settings\n set ");
	memset(text + n, 'k', 3000);
	strcpy(text + n + 3000, " 1\nend\n");
	assert_int_equal(load(text, &c, &d), -EINVAL);
	assert_int_equal(d.n, 1);
	assert_true(strlen(d.lines[0]) < 200);
	conf_diag_free(&d);

	/* too many words in one statement */
	n = sprintf(text, "config system settings\n set inner-interface");
	for (int i = 0; i < 70; i++)
		n += sprintf(text + n, " l%d", i);
	strcpy(text + n, "\nend\n");
	expect_errors(text, "t.conf:2: too many words in one statement (at most 64)");
	n = sprintf(text, "config system settings\n set inner-interface");
	for (int i = 0; i < 33; i++)
		n += sprintf(text + n, " l%d", i);
	strcpy(text + n, "\nend\n");
	expect_errors(text, "t.conf:2: too many values for \"inner-interface\" (33, at most 32)");
	free(text);
}

static void test_nul_and_garbage(void **state)
{
	static const char nul[] = "config system settings\n set ike-port 5\0\n set ike-port 0\nend\n";
	static const char nul_q[] = "config system settings\n set bpf-pin-path \"/a\0b\"\nend\n";
	struct config *c = (struct config *)1;
	struct conf_diag d;
	uint32_t x = 12345;
	size_t len = 1 << 16;
	char *junk = malloc(len);

	(void)state;
	assert_int_equal(conf_load_string("t.conf", nul, sizeof(nul) - 1, &c, &d), -EINVAL);
	assert_null(c);
	assert_int_equal(d.n, 2);
	assert_string_equal(d.lines[0], "t.conf:2: NUL byte in line");
	assert_string_equal(d.lines[1], "t.conf:3: value 0 out of range for \"ike-port\" (1-65535)");
	conf_diag_free(&d);
	assert_int_equal(conf_load_string("t.conf", nul_q, sizeof(nul_q) - 1, &c, &d), -EINVAL);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.lines[0], "t.conf:2: NUL byte in line");
	conf_diag_free(&d);

	/* binary garbage: fails cleanly, and the message count is bounded */
	assert_non_null(junk);
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245 + 12345;
		junk[i] = (char)(x >> 16);
	}
	assert_int_equal(conf_load_string("junk", junk, len, &c, &d), -EINVAL);
	assert_null(c);
	assert_true(d.n > 0 && d.n <= 201);
	for (size_t i = 0; i < d.n; i++)
		assert_true(strncmp(d.lines[i], "junk:", 5) == 0);
	if (d.n == 201)
		assert_string_equal(d.lines[200], "junk: too many errors, only the first 200 are shown");
	conf_diag_free(&d);

	/* plenty of errors: capped at 200 plus one line saying so */
	char *many = malloc(300 * 16 + 64);
	size_t n = (size_t)sprintf(many, "config system settings\n");

	assert_non_null(many);
	for (int i = 0; i < 300; i++)
		n += (size_t)sprintf(many + n, " set ike-port 0\n");
	strcpy(many + n, "end\n");
	assert_int_equal(load(many, &c, &d), -EINVAL);
	assert_int_equal(d.n, 201);
	assert_string_equal(d.lines[0], "t.conf:2: value 0 out of range for \"ike-port\" (1-65535)");
	assert_string_equal(d.lines[199], "t.conf:201: value 0 out of range for \"ike-port\" (1-65535)");
	assert_string_equal(d.lines[200], "t.conf: too many errors, only the first 200 are shown");
	conf_diag_free(&d);
	free(many);
	free(junk);

	/* a file of nearly 1 MiB: valid statements are all read, errors stop at the cap */
	size_t cap = CONF_MAX_FILE_SIZE;
	char *huge = malloc(cap + 1);
	const char *line = " set ike-port 4242\n";

	assert_non_null(huge);
	n = (size_t)sprintf(huge, "config system settings\n");
	while (n + strlen(line) + 4 < cap)
		n += (size_t)sprintf(huge + n, "%s", line);
	n += (size_t)sprintf(huge + n, "end\n");
	assert_int_equal(conf_load_string("t", huge, n, &c, &d), 0);
	assert_int_equal(c->settings.ike_port, 4242);
	conf_free(c);
	conf_diag_free(&d);
	line = " set remote-gateway-with-a-long-name 1\n";
	n = (size_t)sprintf(huge, "config system settings\n");
	while (n + strlen(line) + 4 < cap)
		n += (size_t)sprintf(huge + n, "%s", line);
	n += (size_t)sprintf(huge + n, "end\n");
	assert_int_equal(conf_load_string("t", huge, n, &c, &d), -EINVAL);
	assert_int_equal(d.n, 201);
	conf_diag_free(&d);
	free(huge);

	/* a UTF-8 byte order mark is skipped; NULL diag is allowed */
	assert_int_equal(conf_load_string("t", "\xef\xbb\xbf" "config system global\nend\n", 28,
					  &c, NULL),
			 0);
	conf_free(c);
	assert_int_equal(conf_load_string("t", "end\n", 4, &c, NULL), -EINVAL);
	assert_null(c);
}

static void test_files(void **state)
{
	char dir[] = "/tmp/test_conf.XXXXXX", path[64];
	struct config *c = (struct config *)1;
	struct conf_diag d;
	FILE *f;

	(void)state;
	assert_int_equal(conf_load_file("/nonexistent/iketcp.conf", &c, &d), -ENOENT);
	assert_null(c);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.lines[0], "/nonexistent/iketcp.conf: No such file or directory");
	conf_diag_free(&d);

	assert_non_null(mkdtemp(dir));
	assert_int_equal(conf_load_file(dir, &c, &d), -EISDIR);
	assert_int_equal(d.n, 1);
	conf_diag_free(&d);

	/* exactly the limit is read; one byte more is refused */
	snprintf(path, sizeof(path), "%s/big.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	for (size_t i = 0; i < CONF_MAX_FILE_SIZE; i++)
		fputc(i % 64 == 63 ? '\n' : '#', f);
	fclose(f);
	assert_int_equal(conf_load_file(path, &c, &d), 0);
	assert_int_equal(d.n, 0);
	conf_free(c);
	conf_diag_free(&d);
	f = fopen(path, "a");
	fputc('\n', f);
	fclose(f);
	assert_int_equal(conf_load_file(path, &c, &d), -EFBIG);
	assert_null(c);
	assert_int_equal(d.n, 1);
	assert_non_null(strstr(d.lines[0], "file too large"));
	conf_diag_free(&d);
	unlink(path);

	/* errors from a file carry its path */
	snprintf(path, sizeof(path), "%s/gw.conf", dir);
	f = fopen(path, "w");
	fputs(P1_HEAD "        set remote-gateway 192.0.2.1\n" P1_TAIL, f);
	fclose(f);
	assert_int_equal(conf_load_file(path, &c, &d), -EINVAL);
	assert_int_equal(d.n, 1);
	char want[256];

	snprintf(want, sizeof(want),
		 "%s:6: unknown key \"remote-gateway\" in \"vpn ipsec phase1-interface\" (did you mean \"remote-gw\"?)",
		 path);
	assert_string_equal(d.lines[0], want);
	conf_diag_free(&d);
	unlink(path);
	rmdir(dir);

	/* pipes have no size to stat: read to the end, refuse past the limit */
	for (int big = 0; big < 2; big++) {
		int fds[2];
		pid_t pid;

		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			static const char text[] = "config system global\n set admin-sport 8443\nend\n";
			static char zeros[65536];
			size_t total = 0;

			close(fds[0]);
			if (!big)
				_exit(write(fds[1], text, sizeof(text) - 1) == sizeof(text) - 1 ? 0 : 1);
			memset(zeros, '#', sizeof(zeros));
			while (total < 2u * CONF_MAX_FILE_SIZE) {
				ssize_t w = write(fds[1], zeros, sizeof(zeros));

				if (w <= 0)
					_exit(0); /* the reader closed early: fine */
				total += (size_t)w;
			}
			_exit(0);
		}
		close(fds[1]);
		snprintf(path, sizeof(path), "/dev/fd/%d", fds[0]);
		if (!big) {
			assert_int_equal(conf_load_file(path, &c, &d), 0);
			assert_int_equal(c->global.admin_sport, 8443);
			conf_free(c);
		} else {
			assert_int_equal(conf_load_file(path, &c, &d), -EFBIG);
			assert_int_equal(d.n, 1);
			snprintf(want, sizeof(want), "%s: file too large (more than 1048576 bytes)", path);
			assert_string_equal(d.lines[0], want);
		}
		conf_diag_free(&d);
		close(fds[0]);
		waitpid(pid, NULL, 0);
	}

	/* strings over the limit are refused too */
	assert_int_equal(conf_load_string("t", "", CONF_MAX_FILE_SIZE + 1, &c, &d), -EFBIG);
	assert_int_equal(d.n, 1);
	conf_diag_free(&d);
	conf_free(NULL);
	conf_diag_free(NULL);
	assert_null(conf_find_phase1(NULL, "x"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gwA),	   cmocka_unit_test(test_gwB),
		cmocka_unit_test(test_crlf),	   cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_unset),	   cmocka_unit_test(test_all_keys),
		cmocka_unit_test(test_quoting),	   cmocka_unit_test(test_errors),
		cmocka_unit_test(test_many_errors), cmocka_unit_test(test_no_cascade),
		cmocka_unit_test(test_subnets),	   cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_long),	   cmocka_unit_test(test_nul_and_garbage),
		cmocka_unit_test(test_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
