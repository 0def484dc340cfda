/* TLS 1.3 stream: server and client driven in one process over a non-blocking socketpair. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "iketcp/log.h"
#include "transport/sniff.h"
#include "transport/tls.h"

#define MAX_ROUNDS 10000

struct duo {
	int fd[2]; /* [0] server side, [1] client side */
	struct tls_ctx *sctx, *cctx;
	struct tls_conn *srv, *cli;
};

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	assert_int_not_equal(fl, -1);
	assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

static void sockets(struct duo *d)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, d->fd), 0);
	set_nonblock(d->fd[0]);
	set_nonblock(d->fd[1]);
}

static void duo_open(struct duo *d)
{
	memset(d, 0, sizeof(*d));
	sockets(d);
	d->sctx = tls_server_ctx_new(NULL, NULL);
	d->cctx = tls_client_ctx_new();
	assert_non_null(d->sctx);
	assert_non_null(d->cctx);
	d->cli = tls_conn_new(d->cctx, d->fd[1], false, NULL, 0);
	assert_non_null(d->cli);
}

static void duo_close(struct duo *d)
{
	tls_conn_free(d->srv);
	tls_conn_free(d->cli);
	tls_ctx_free(d->sctx);
	tls_ctx_free(d->cctx);
	if (d->fd[0] >= 0)
		close(d->fd[0]);
	if (d->fd[1] >= 0)
		close(d->fd[1]);
}

/* Read on both sides until both handshakes are done; nothing but -EAGAIN on the way. */
static void handshake(struct duo *d)
{
	char b[64];

	for (int i = 0; i < MAX_ROUNDS; i++) {
		if (tls_conn_handshake_done(d->srv) && tls_conn_handshake_done(d->cli))
			return;
		ssize_t r = tls_conn_read(d->cli, b, sizeof(b));
		assert_int_equal(r, -EAGAIN);
		assert_true(tls_conn_wants(d->cli) & EPOLLIN);
		r = tls_conn_read(d->srv, b, sizeof(b));
		assert_int_equal(r, -EAGAIN);
		assert_true(tls_conn_wants(d->srv) & EPOLLIN);
	}
	fail_msg("handshake did not finish");
}

/* Move len bytes from `from` to `to`, writing in chunks of wchunk and reading rchunk at a time. */
static void transfer(struct tls_conn *from, struct tls_conn *to, size_t len, size_t wchunk,
		     size_t rchunk, unsigned int *eagain_writes)
{
	uint8_t *src = malloc(len), *dst = malloc(len), *rb = malloc(rchunk);
	size_t sent = 0, got = 0;

	assert_non_null(src);
	assert_non_null(dst);
	assert_non_null(rb);
	for (size_t i = 0; i < len; i++)
		src[i] = (uint8_t)(i * 7 + i / 251);
	for (long i = 0; got < len; i++) {
		assert_true(i < 10 * 1000 * 1000);
		if (sent == len && (tls_conn_wants(from) & EPOLLOUT)) {
			/* all written, some still queued: flush */
			ssize_t w = tls_conn_write(from, NULL, 0);
			assert_true(w == 0 || w == -EAGAIN);
		} else if (sent < len) {
			ssize_t w = tls_conn_write(from, src + sent, MIN(wchunk, len - sent));
			if (w == -EAGAIN) {
				assert_true(tls_conn_wants(from) & EPOLLOUT);
				if (eagain_writes)
					++*eagain_writes;
			} else {
				assert_true(w > 0);
				sent += (size_t)w;
			}
		}
		/* Drain a little at a time so the writer has to wait now and then. */
		for (int k = 0; k < 4 && got < len; k++) {
			ssize_t r = tls_conn_read(to, rb, MIN(rchunk, len - got));
			if (r == -EAGAIN)
				break;
			assert_true(r > 0);
			memcpy(dst + got, rb, (size_t)r);
			got += (size_t)r;
		}
	}
	assert_int_equal(sent, len);
	assert_memory_equal(src, dst, len);
	free(src);
	free(dst);
	free(rb);
}

static void test_handshake_and_data(void **state)
{
	struct duo d;
	char b[32];

	(void)state;
	duo_open(&d);
	d.srv = tls_conn_new(d.sctx, d.fd[0], true, NULL, 0);
	assert_non_null(d.srv);
	assert_false(tls_conn_handshake_done(d.srv));
	handshake(&d);

	/* --> "IKETCP" */
	assert_int_equal(tls_conn_write(d.cli, "IKETCP", 6), 6);
	assert_int_equal(tls_conn_read(d.srv, b, sizeof(b)), 6);
	assert_memory_equal(b, "IKETCP", 6);
	/* <-- reply */
	assert_int_equal(tls_conn_write(d.srv, "ok", 2), 2);
	assert_int_equal(tls_conn_read(d.cli, b, sizeof(b)), 2);
	assert_memory_equal(b, "ok", 2);
	/* Nothing more: would block. */
	assert_int_equal(tls_conn_read(d.srv, b, sizeof(b)), -EAGAIN);
	assert_int_equal(tls_conn_wants(d.srv), EPOLLIN);
	assert_int_equal(tls_conn_read(d.srv, b, 0), -EINVAL);

	/* Client closes: close_notify reaches the server as an orderly close. */
	tls_conn_free(d.cli);
	d.cli = NULL;
	assert_int_equal(tls_conn_read(d.srv, b, sizeof(b)), 0);
	duo_close(&d);
}

static void test_one_mib_small_reads(void **state)
{
	struct duo d;
	unsigned int eagain = 0;

	(void)state;
	duo_open(&d);
	d.srv = tls_conn_new(d.sctx, d.fd[0], true, NULL, 0);
	handshake(&d);
	/* client -> server: 1 MiB in 100 KiB writes, read 1000 bytes at a time */
	transfer(d.cli, d.srv, 1 << 20, 100 * 1024, 1000, &eagain);
	/* The reader is slower than the writer: the write side must have had to wait. */
	assert_true(eagain > 0);
	/* server -> client, 300 KiB with tiny reads */
	transfer(d.srv, d.cli, 300 * 1024, 7000, 17, NULL);
	duo_close(&d);
}

/* A write refused with -EAGAIN and retried with the same bytes keeps the stream intact. */
static void test_write_backpressure(void **state)
{
	struct duo d;
	static uint8_t big[1 << 20];
	size_t sent = 0, got = 0;
	uint8_t rb[4096];
	ssize_t w;

	(void)state;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i ^ (i >> 9));
	duo_open(&d);
	d.srv = tls_conn_new(d.sctx, d.fd[0], true, NULL, 0);
	handshake(&d);
	/* Nobody reads: writes stop with -EAGAIN once the socket and our queue are full. */
	while ((w = tls_conn_write(d.cli, big + sent, sizeof(big) - sent)) > 0)
		sent += (size_t)w;
	assert_int_equal(w, -EAGAIN);
	assert_true(tls_conn_wants(d.cli) & EPOLLOUT);
	assert_true(sent < sizeof(big));
	/* Bounded: what was accepted is at most the socket buffers plus our queue. */
	assert_true(sent < 900 * 1024);
	while (got < sizeof(big)) {
		ssize_t r = tls_conn_read(d.srv, rb, sizeof(rb));
		if (r > 0) {
			assert_memory_equal(rb, big + got, (size_t)r);
			got += (size_t)r;
		} else {
			assert_int_equal(r, -EAGAIN);
		}
		if (sent < sizeof(big)) {
			w = tls_conn_write(d.cli, big + sent, sizeof(big) - sent);
			if (w > 0)
				sent += (size_t)w;
			else
				assert_int_equal(w, -EAGAIN);
		} else if (tls_conn_wants(d.cli) & EPOLLOUT) {
			w = tls_conn_write(d.cli, NULL, 0);
			assert_true(w == 0 || w == -EAGAIN);
		}
	}
	/* All sent and read: nothing queued any more. */
	assert_int_equal(tls_conn_write(d.cli, NULL, 0), 0);
	assert_int_equal(tls_conn_wants(d.cli), 0);
	duo_close(&d);
}

/* The acceptor read some bytes to sniff them; they are handed over as the prefix. */
static void prefix_case(size_t want_prefix, bool whole_hello)
{
	struct duo d;
	uint8_t pre[SNIFF_MAX_BYTES];
	size_t have = 0;
	char b[8];

	duo_open(&d);
	/* ClientHello --> */
	assert_int_equal(tls_conn_read(d.cli, b, sizeof(b)), -EAGAIN);
	for (int i = 0; i < 100; i++) {
		size_t want = whole_hello ? sizeof(pre) : want_prefix;
		ssize_t n = recv(d.fd[0], pre + have, want - have, 0);
		if (n > 0)
			have += (size_t)n;
		if (have == want || n <= 0)
			break;
	}
	if (whole_hello) {
		/* Our own client's hello is IKE-in-TLS to the sniffer. */
		assert_int_equal(sniff_classify(pre, have), SNIFF_TLS_IKE);
		assert_int_equal(sniff_classify(pre, have - 1), SNIFF_NEED_MORE);
	} else {
		assert_int_equal(have, want_prefix);
		assert_int_equal(sniff_classify(pre, have), SNIFF_NEED_MORE);
	}
	d.srv = tls_conn_new(d.sctx, d.fd[0], true, pre, have);
	assert_non_null(d.srv);
	handshake(&d);
	assert_int_equal(tls_conn_write(d.cli, "IKETCP", 6), 6);
	assert_int_equal(tls_conn_read(d.srv, b, sizeof(b)), 6);
	assert_memory_equal(b, "IKETCP", 6);
	duo_close(&d);
}

static void test_prefix_3_bytes(void **state)
{
	(void)state;
	prefix_case(3, false);
}

static void test_prefix_whole_client_hello(void **state)
{
	(void)state;
	prefix_case(0, true);
}

static bool is_fingerprint(const char *s)
{
	if (strlen(s) != 95)
		return false;
	for (size_t i = 0; i < 95; i++) {
		if (i % 3 == 2 ? s[i] != ':' : !strchr("0123456789ABCDEF", s[i]))
			return false;
	}
	return true;
}

static void fingerprint_of(X509 *x, char out[TLS_FINGERPRINT_LEN])
{
	unsigned char md[32];
	unsigned int n = 0;

	assert_int_equal(X509_digest(x, EVP_sha256(), md, &n), 1);
	assert_int_equal(n, 32);
	for (unsigned int i = 0; i < n; i++)
		sprintf(out + 3 * i, i + 1 < n ? "%02X:" : "%02X", md[i]);
}

/* A plain OpenSSL client on fd[1], driven against our server until it finishes or fails. */
static int raw_client_run(struct duo *d, SSL_CTX *rc, X509 **peer)
{
	SSL *s = SSL_new(rc);
	char b[16];
	int result = 0;

	assert_non_null(s);
	SSL_set_fd(s, d->fd[1]);
	SSL_set_connect_state(s);
	for (int i = 0; i < MAX_ROUNDS; i++) {
		int r = SSL_do_handshake(s);
		int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(s, r);
		ssize_t sr = tls_conn_read(d->srv, b, sizeof(b));

		if (sr != -EAGAIN) {
			result = (int)sr;
			break;
		}
		if (r == 1 && tls_conn_handshake_done(d->srv)) {
			result = 1;
			break;
		}
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_NONE) {
			/* the client gave up: the server must say why too */
			result = -1;
			continue;
		}
	}
	if (peer)
		*peer = SSL_get1_peer_certificate(s);
	SSL_free(s);
	ERR_clear_error();
	return result;
}

static SSL_CTX *raw_client_ctx(int max_version)
{
	SSL_CTX *rc = SSL_CTX_new(TLS_client_method());

	assert_non_null(rc);
	SSL_CTX_set_verify(rc, SSL_VERIFY_NONE, NULL);
	if (max_version)
		assert_int_equal(SSL_CTX_set_max_proto_version(rc, max_version), 1);
	return rc;
}

static void test_self_signed_fingerprint(void **state)
{
	struct duo d;
	SSL_CTX *rc = raw_client_ctx(0);
	X509 *peer = NULL;
	char fp[TLS_FINGERPRINT_LEN], cn[32];
	int days = -1, secs = -1;

	(void)state;
	duo_open(&d);
	assert_true(is_fingerprint(tls_ctx_fingerprint(d.sctx)));
	assert_string_equal(tls_ctx_fingerprint(d.cctx), "");
	d.srv = tls_conn_new(d.sctx, d.fd[0], true, NULL, 0);
	log_set_level(LOG_LVL_DEBUG);
	assert_int_equal(raw_client_run(&d, rc, &peer), 1);
	log_set_level(LOG_LVL_WARN);
	assert_non_null(peer);
	fingerprint_of(peer, fp);
	assert_string_equal(fp, tls_ctx_fingerprint(d.sctx));
	/* CN "iketcp", valid one year, P-256 */
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn,
					      sizeof(cn)) > 0);
	assert_string_equal(cn, "iketcp");
	assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(peer),
					X509_get0_notAfter(peer)), 1);
	assert_int_equal(days, 365);
	assert_int_equal(secs, 0);
	EVP_PKEY *pk = X509_get0_pubkey(peer);
	char group[32];
	size_t glen = 0;
	assert_int_equal(EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen), 1);
	assert_string_equal(group, "prime256v1");
	/* Two contexts, two keys. */
	struct tls_ctx *other = tls_server_ctx_new(NULL, NULL);
	assert_non_null(other);
	assert_string_not_equal(tls_ctx_fingerprint(other), tls_ctx_fingerprint(d.sctx));
	tls_ctx_free(other);
	X509_free(peer);
	SSL_CTX_free(rc);
	duo_close(&d);
}

/* A peer that asks for a TLS 1.3 KeyUpdate (RFC 8446 section 4.6.3): we answer it and keep going. */
static void test_peer_key_update(void **state)
{
	struct duo d;
	SSL_CTX *rc = raw_client_ctx(0);
	SSL *s = SSL_new(rc);
	char b[16];
	size_t n = 0;
	int i;

	(void)state;
	duo_open(&d);
	d.srv = tls_conn_new(d.sctx, d.fd[0], true, NULL, 0);
	SSL_set_fd(s, d.fd[1]);
	SSL_set_connect_state(s);
	for (i = 0; i < MAX_ROUNDS && !(SSL_is_init_finished(s) && tls_conn_handshake_done(d.srv)); i++) {
		(void)SSL_do_handshake(s);
		assert_int_equal(tls_conn_read(d.srv, b, sizeof(b)), -EAGAIN);
	}
	assert_true(tls_conn_handshake_done(d.srv));
	for (int round = 0; round < 3; round++) {
		/* --> KeyUpdate(update_requested), "abc" */
		assert_int_equal(SSL_key_update(s, SSL_KEY_UPDATE_REQUESTED), 1);
		assert_int_equal(SSL_write_ex(s, "abc", 3, &n), 1);
		ssize_t r;
		for (i = 0; i < 100 && (r = tls_conn_read(d.srv, b, sizeof(b))) == -EAGAIN; i++)
			;
		assert_int_equal(r, 3);
		assert_memory_equal(b, "abc", 3);
		/* <-- KeyUpdate(update_not_requested), "def" under the new key */
		assert_int_equal(tls_conn_write(d.srv, "def", 3), 3);
		int ok = 0;
		for (i = 0; i < 100 && !(ok = SSL_read_ex(s, b, sizeof(b), &n)); i++)
			assert_int_equal(SSL_get_error(s, 0), SSL_ERROR_WANT_READ);
		assert_int_equal(ok, 1);
		assert_int_equal(n, 3);
		assert_memory_equal(b, "def", 3);
	}
	SSL_free(s);
	SSL_CTX_free(rc);
	duo_close(&d);
}

/* ---- certificates from files ---------------------------------------------------------- */

static char tmpdir[64];

static void path_in_tmp(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", tmpdir, name);
}

static EVP_PKEY *write_key(const char *name)
{
	char path[128];
	EVP_PKEY *k = EVP_EC_gen("P-384");
	FILE *f;

	assert_non_null(k);
	path_in_tmp(path, sizeof(path), name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	return k;
}

static X509 *write_cert(const char *name, EVP_PKEY *k)
{
	char path[128];
	X509 *x = X509_new();
	FILE *f;

	assert_non_null(x);
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"gw-test", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, k);
	assert_true(X509_sign(x, k, EVP_sha384()) > 0);
	path_in_tmp(path, sizeof(path), name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
	return x;
}

static int files_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_tls.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int files_teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_pem_files(void **state)
{
	char cert[128], key[128], other[128], garbage[128], fp[TLS_FINGERPRINT_LEN], cmd[300];
	char line[256] = "";
	EVP_PKEY *k = write_key("key.pem"), *k2 = write_key("other.pem");
	X509 *x = write_cert("cert.pem", k);
	struct tls_ctx *ctx;
	FILE *p, *f;

	(void)state;
	path_in_tmp(cert, sizeof(cert), "cert.pem");
	path_in_tmp(key, sizeof(key), "key.pem");
	path_in_tmp(other, sizeof(other), "other.pem");
	path_in_tmp(garbage, sizeof(garbage), "garbage.pem");

	ctx = tls_server_ctx_new(cert, key);
	assert_non_null(ctx);
	fingerprint_of(x, fp);
	assert_string_equal(tls_ctx_fingerprint(ctx), fp);
	/* and as the openssl tool computes it */
	snprintf(cmd, sizeof(cmd), "openssl x509 -noout -fingerprint -sha256 -in '%s'", cert);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(line, sizeof(line), p));
	pclose(p);
	line[strcspn(line, "\n")] = '\0';
	assert_non_null(strchr(line, '='));
	assert_string_equal(strchr(line, '=') + 1, tls_ctx_fingerprint(ctx));

	/* A handshake with that certificate works. */
	struct duo d;
	duo_open(&d);
	d.srv = tls_conn_new(ctx, d.fd[0], true, NULL, 0);
	handshake(&d);
	duo_close(&d);
	tls_ctx_free(ctx);

	/* Key of another certificate. */
	assert_null(tls_server_ctx_new(cert, other));
	/* Missing files, one path only, not PEM. */
	assert_null(tls_server_ctx_new("/nonexistent/cert.pem", key));
	assert_null(tls_server_ctx_new(cert, "/nonexistent/key.pem"));
	assert_null(tls_server_ctx_new(cert, NULL));
	assert_null(tls_server_ctx_new(NULL, key));
	f = fopen(garbage, "w");
	assert_non_null(f);
	fputs("-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n", f);
	fclose(f);
	assert_null(tls_server_ctx_new(garbage, key));
	assert_null(tls_server_ctx_new(cert, garbage));
	/* Swapped: the key file is no certificate. */
	assert_null(tls_server_ctx_new(key, cert));
	X509_free(x);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
}

/* ---- refusals and failures ------------------------------------------------------------ */

static void test_tls12_client_refused(void **state)
{
	struct duo d;
	SSL_CTX *rc = raw_client_ctx(TLS1_2_VERSION);
	char b[8];

	(void)state;
	duo_open(&d);
	d.srv = tls_conn_new(d.sctx, d.fd[0], true, NULL, 0);
	assert_int_equal(raw_client_run(&d, rc, NULL), -EPROTO);
	assert_false(tls_conn_handshake_done(d.srv));
	/* sticky */
	assert_int_equal(tls_conn_read(d.srv, b, sizeof(b)), -EPROTO);
	assert_int_equal(tls_conn_write(d.srv, "x", 1), -EPROTO);
	SSL_CTX_free(rc);
	duo_close(&d);
}

/* Our client against a server that stops at TLS 1.2. */
static void test_tls12_server_refused(void **state)
{
	struct duo d;
	SSL_CTX *rs = SSL_CTX_new(TLS_server_method());
	SSL *s;
	ssize_t r = -EAGAIN;

	(void)state;
	assert_non_null(rs);
	duo_open(&d);
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_set_version(x, X509_VERSION_3);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	assert_int_equal(SSL_CTX_use_certificate(rs, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(rs, k), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(rs, TLS1_2_VERSION), 1);
	s = SSL_new(rs);
	SSL_set_fd(s, d.fd[0]);
	SSL_set_accept_state(s);
	for (int i = 0; i < MAX_ROUNDS && r == -EAGAIN; i++) {
		r = tls_conn_write(d.cli, "IKETCP", 6);
		(void)SSL_do_handshake(s);
	}
	assert_int_equal(r, -EPROTO);
	assert_false(tls_conn_handshake_done(d.cli));
	SSL_free(s);
	SSL_CTX_free(rs);
	X509_free(x);
	EVP_PKEY_free(k);
	ERR_clear_error();
	duo_close(&d);
}

static void test_garbage_instead_of_client_hello(void **state)
{
	static const char *const junk[] = {
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"IKETCP\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
		"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00",           /* ServerHello type */
		"\x16\x03\x01\x00\x04\x01\x00\x00\x00",               /* empty ClientHello */
		"\x17\x03\x03\x00\x10xxxxxxxxxxxxxxxx",                /* application data */
	};
	static const size_t junk_len[] = { 27, 20, 10, 9, 21 };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(junk); i++) {
		struct duo d;
		char b[8];
		ssize_t r = -EAGAIN;

		duo_open(&d);
		d.srv = tls_conn_new(d.sctx, d.fd[0], true, NULL, 0);
		assert_int_equal(send(d.fd[1], junk[i], junk_len[i], 0), (ssize_t)junk_len[i]);
		for (int k = 0; k < 10 && r == -EAGAIN; k++)
			r = tls_conn_read(d.srv, b, sizeof(b));
		if (r != -EPROTO)
			fail_msg("junk %zu: got %zd", i, r);
		duo_close(&d);
	}
}

/* The client goes away after its ClientHello, or in the middle of it. */
static void test_peer_closes_mid_handshake(void **state)
{
	char b[8];

	(void)state;
	for (int variant = 0; variant < 3; variant++) {
		struct duo d;
		ssize_t r = -EAGAIN;

		duo_open(&d);
		assert_int_equal(tls_conn_read(d.cli, b, sizeof(b)), -EAGAIN);
		if (variant == 1) {
			/* only 10 bytes of the hello arrive, handed over as a prefix */
			uint8_t pre[10];
			assert_int_equal(recv(d.fd[0], pre, sizeof(pre), 0), 10);
			d.srv = tls_conn_new(d.sctx, d.fd[0], true, pre, sizeof(pre));
			uint8_t rest[4096];
			while (recv(d.fd[0], rest, sizeof(rest), 0) > 0)
				;
		} else {
			d.srv = tls_conn_new(d.sctx, d.fd[0], true, NULL, 0);
		}
		tls_conn_free(d.cli);
		d.cli = NULL;
		close(d.fd[1]);
		d.fd[1] = -1;
		for (int k = 0; k < 10 && r == -EAGAIN; k++)
			r = variant == 2 ? tls_conn_write(d.srv, "x", 1) : tls_conn_read(d.srv, b, sizeof(b));
		assert_true(r <= 0);
		assert_int_not_equal(r, -EAGAIN);
		assert_false(tls_conn_handshake_done(d.srv));
		duo_close(&d);
	}
	/* And the server going away under the client. */
	struct duo d;
	ssize_t r = -EAGAIN;
	duo_open(&d);
	assert_int_equal(tls_conn_write(d.cli, "IKETCP", 6), -EAGAIN);
	close(d.fd[0]);
	d.fd[0] = -1;
	for (int k = 0; k < 10 && r == -EAGAIN; k++)
		r = tls_conn_write(d.cli, "IKETCP", 6);
	assert_true(r < 0);
	assert_int_not_equal(r, -EAGAIN);
	duo_close(&d);
}

/* A TCP FIN without close_notify after the handshake is an orderly close as well. */
static void test_fin_without_close_notify(void **state)
{
	struct duo d;
	char b[8];

	(void)state;
	duo_open(&d);
	d.srv = tls_conn_new(d.sctx, d.fd[0], true, NULL, 0);
	handshake(&d);
	assert_int_equal(tls_conn_write(d.cli, "abc", 3), 3);
	assert_int_equal(shutdown(d.fd[1], SHUT_WR), 0);
	assert_int_equal(tls_conn_read(d.srv, b, sizeof(b)), 3);
	assert_int_equal(tls_conn_read(d.srv, b, sizeof(b)), 0);
	assert_int_equal(tls_conn_read(d.srv, b, sizeof(b)), 0);
	/* The other direction still works (half close). */
	assert_int_equal(tls_conn_write(d.srv, "xyz", 3), 3);
	assert_int_equal(tls_conn_read(d.cli, b, sizeof(b)), 3);
	duo_close(&d);
}

static void test_free_null(void **state)
{
	(void)state;
	tls_conn_free(NULL);
	tls_ctx_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_and_data),
		cmocka_unit_test(test_one_mib_small_reads),
		cmocka_unit_test(test_write_backpressure),
		cmocka_unit_test(test_prefix_3_bytes),
		cmocka_unit_test(test_prefix_whole_client_hello),
		cmocka_unit_test(test_self_signed_fingerprint),
		cmocka_unit_test(test_peer_key_update),
		cmocka_unit_test_setup_teardown(test_pem_files, files_setup, files_teardown),
		cmocka_unit_test(test_tls12_client_refused),
		cmocka_unit_test(test_tls12_server_refused),
		cmocka_unit_test(test_garbage_instead_of_client_hello),
		cmocka_unit_test(test_peer_closes_mid_handshake),
		cmocka_unit_test(test_fin_without_close_notify),
		cmocka_unit_test(test_free_null),
	};

	log_set_level(LOG_LVL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
