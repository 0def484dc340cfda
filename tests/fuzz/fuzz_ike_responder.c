/*
 * The IKEv2 engine as a responder (gwB of the reference topology: a dynamic
 * phase1) fed arbitrary bytes as IKE messages from one stream: each input
 * is delivered, delivered again (the retransmission path), then sent from a
 * second stream. The seeds are real IKE_SA_INIT and IKE_AUTH requests from
 * our initiator (test_ike_engine with IKE_DUMP_CORPUS=dir writes them).
 * Beyond IKE_SA_INIT the fuzzer cannot forge an ICV, so what it reaches there
 * is the SA lookup, message-ID and SK checks.
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "ike/ike.h"
#include "iketcp/log.h"
#include "loop.h"

static const char gwb[] = "config system settings\n"
			  "    set ike-tcp-service enable\n"
			  "    set ike-tcp-port 443\n"
			  "    set inner-interface \"lan0\"\n"
			  "end\n"
			  "config vpn ipsec phase1-interface\n"
			  "    edit \"branch\"\n"
			  "        set interface \"wan0\"\n"
			  "        set ike-version 2\n"
			  "        set type dynamic\n"
			  "        set transport tcp\n"
			  "        set authmethod psk\n"
			  "        set psksecret \"correct horse battery staple\"\n"
			  "        set localid \"hq.example\"\n"
			  "        set peerid \"branch.example\"\n"
			  "        set proposal aes128gcm-prfsha256 aes256gcm-prfsha384 chacha20poly1305-prfsha256 "
			  "aes128-sha256 aes256-sha256\n"
			  "        set dhgrp 19 31 14 20 32\n"
			  "    next\n"
			  "end\n"
			  "config vpn ipsec phase2-interface\n"
			  "    edit \"branch-lan\"\n"
			  "        set phase1name \"branch\"\n"
			  "        set proposal aes128gcm aes256gcm\n"
			  "        set src-subnet 10.2.0.0 255.255.255.0\n"
			  "        set dst-subnet 10.1.0.0 255.255.255.0\n"
			  "    next\n"
			  "end\n";

static struct config *conf;
static struct loop *loop;
static int conn1, conn2;
static size_t sent;

static struct tcp_conn *io_connect(void *arg, const struct sockaddr *peer, socklen_t len, bool tls)
{
	(void)arg, (void)peer, (void)len, (void)tls;
	__builtin_trap(); /* a dynamic phase1 never initiates */
}

static int io_send(void *arg, struct tcp_conn *c, const uint8_t *msg, size_t len)
{
	(void)arg, (void)c;
	if (len < 28 || len > 65535)
		__builtin_trap();
	sent += msg[0];
	return 0;
}

static void io_close(void *arg, struct tcp_conn *c)
{
	(void)arg, (void)c;
}

static void io_hold(void *arg, struct tcp_conn *c, bool carries)
{
	(void)arg, (void)c, (void)carries;
}

static void io_addrs(void *arg, struct tcp_conn *c, struct sockaddr_storage *local, struct sockaddr_storage *peer)
{
	struct sockaddr_in *l = (void *)local, *p = (void *)peer;
	(void)arg;
	memset(local, 0, sizeof(*local));
	memset(peer, 0, sizeof(*peer));
	l->sin_family = p->sin_family = AF_INET;
	l->sin_port = htons(443);
	p->sin_port = htons(c == (struct tcp_conn *)&conn1 ? 40000 : 40001);
	l->sin_addr.s_addr = htonl(0xcb007102); /* 203.0.113.2 */
	p->sin_addr.s_addr = htonl(0xc6336401); /* 198.51.100.1 */
}

static int dp_install(void *arg, const struct child_sa *sa)
{
	(void)arg, (void)sa;
	return 0;
}

static void dp_update(void *arg, uint32_t spi, struct tcp_conn *c)
{
	(void)arg, (void)spi, (void)c;
}

static void dp_remove(void *arg, uint32_t spi)
{
	(void)arg, (void)spi;
}

static int dp_counters(void *arg, uint32_t spi, struct child_sa_counters *out)
{
	(void)arg, (void)spi;
	memset(out, 0, sizeof(*out));
	return 0;
}

static const struct ike_io io = { .connect = io_connect, .send = io_send, .close = io_close,
				  .hold = io_hold, .addrs = io_addrs, .arg = NULL };
static const struct child_sa_ops ops = { dp_install, dp_update, dp_remove, dp_counters };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!conf) {
		log_set_level(LOG_LVL_ERROR);
		loop = loop_new();
		if (!loop || conf_load_string("fuzz.conf", gwb, sizeof(gwb) - 1, &conf, NULL))
			__builtin_trap();
	}
	if (size > 65535)
		return 0;
	struct ike *ike = ike_new(loop, &io, &ops, NULL);
	if (!ike || ike_configure(ike, conf))
		__builtin_trap();
	/* A copy: the engine must not depend on bytes outliving the call. */
	uint8_t *msg = malloc(size ? size : 1);
	if (!msg)
		__builtin_trap();
	memcpy(msg, data, size);
	struct tcp_conn *c1 = (struct tcp_conn *)&conn1, *c2 = (struct tcp_conn *)&conn2;
	ike_input(ike, c1, msg, size);
	ike_input(ike, c1, msg, size);
	ike_input(ike, c2, msg, size);
	ike_conn_down(ike, c1);
	ike_input(ike, c2, msg, size);
	free(msg);
	ike_free(ike);
	return 0;
}
