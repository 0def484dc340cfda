/*
 * TLS 1.3 byte stream over a non-blocking socket (see tls.h).
 *
 * OpenSSL talks to one end of a BIO pair; we move ciphertext between the
 * other end and the socket ourselves. That lets bytes the caller already read
 * (the sniffed prefix) go first, and bounds the ciphertext queued towards a
 * slow peer: when the pair is full SSL_write says WANT_WRITE and we say
 * -EAGAIN. recv/send go straight into/out of the pair's ring (nwrite/nread),
 * so nothing is copied or allocated per record beyond what OpenSSL does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "iketcp/compiler.h"
#include "iketcp/log.h"
#include "transport/tls.h"

#define TLS_OUT_BUF (64 * 1024) /* ciphertext queued for the socket */
#define TLS_IN_BUF (32 * 1024)  /* ciphertext read ahead from the socket */
#define SELF_SIGNED_DAYS 365

struct tls_ctx {
	SSL_CTX *ssl_ctx;
	bool server;
	char fingerprint[TLS_FINGERPRINT_LEN];
};

struct tls_conn {
	SSL *ssl;
	BIO *net; /* our end of the pair; SSL owns the other */
	int fd;
	bool server;
	bool done;     /* handshake finished (and logged) */
	bool failed;   /* fatal TLS error: no more I/O */
	bool peer_eof; /* the socket returned 0 */
	uint32_t wants;
};

static struct log_ratelimit tls_rl;

static void fingerprint_format(const unsigned char *md, unsigned int md_len, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (unsigned int i = 0; i < md_len && i < 32; i++) {
		if (i)
			out[o++] = ':';
		out[o++] = hex[md[i] >> 4];
		out[o++] = hex[md[i] & 15];
	}
	out[o] = '\0';
}

static int cert_fingerprint(X509 *cert, char out[TLS_FINGERPRINT_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;

	if (!cert || !X509_digest(cert, EVP_sha256(), md, &md_len) || md_len != 32)
		return -EINVAL;
	fingerprint_format(md, md_len, out);
	return 0;
}

/* The reason for the first (root cause) queued OpenSSL error, or a fallback; clears the queue. */
static const char *ossl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_peek_error();

	if (e)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "unknown error");
	ERR_clear_error();
	return buf;
}

/* Never prompt on a terminal for an encrypted key: the daemon has none. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return 0;
}

/* TLS 1.3 only, nothing resumable, writes that can stop at a record and move. */
static SSL_CTX *ssl_ctx_base(const SSL_METHOD *method)
{
	SSL_CTX *sc = SSL_CTX_new(method);

	if (!sc)
		return NULL;
	if (!SSL_CTX_set_min_proto_version(sc, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(sc, TLS1_3_VERSION) ||
	    !SSL_CTX_set_num_tickets(sc, 0)) {
		SSL_CTX_free(sc);
		return NULL;
	}
	SSL_CTX_set_options(sc, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(sc, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				     SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_default_passwd_cb(sc, no_password);
	return sc;
}

/* A fresh P-256 key and a self-signed certificate for it, CN "iketcp", one year. */
static int use_self_signed(SSL_CTX *sc)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	BIGNUM *serial = BN_new();
	X509_NAME *name;
	int err = -ENOMEM;

	if (!key || !x || !serial)
		goto out;
	err = -EINVAL;
	/* A random positive 64-bit serial (RFC 5280 section 4.1.2.2). */
	if (!BN_rand(serial, 64, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
	    !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)))
		goto out;
	name = X509_get_subject_name(x);
	if (!X509_set_version(x, X509_VERSION_3) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), (long)SELF_SIGNED_DAYS * 24 * 3600) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"iketcp",
					-1, -1, 0) ||
	    !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, key) ||
	    !X509_sign(x, key, EVP_sha256()))
		goto out;
	if (!SSL_CTX_use_certificate(sc, x) || !SSL_CTX_use_PrivateKey(sc, key))
		goto out;
	err = 0;
out:
	if (err) {
		char why[256];
		log_error("TLS: cannot make a self-signed certificate: %s", ossl_reason(why, sizeof(why)));
	}
	BN_free(serial);
	X509_free(x);
	EVP_PKEY_free(key);
	return err;
}

/* Is the file there and readable? Says why not, in words OpenSSL would not use. */
static int check_readable(const char *what, const char *path)
{
	FILE *f = fopen(path, "r");

	if (!f) {
		int err = errno;
		log_error("TLS %s %s: %s", what, path, strerror(err));
		return -err;
	}
	fclose(f);
	return 0;
}

static int use_files(SSL_CTX *sc, const char *cert_path, const char *key_path)
{
	char why[256];
	int err;

	if ((err = check_readable("certificate", cert_path)) ||
	    (err = check_readable("key", key_path)))
		return err;
	ERR_clear_error();
	if (!SSL_CTX_use_certificate_chain_file(sc, cert_path)) {
		log_error("TLS certificate %s: %s", cert_path, ossl_reason(why, sizeof(why)));
		return -EINVAL;
	}
	if (!SSL_CTX_use_PrivateKey_file(sc, key_path, SSL_FILETYPE_PEM)) {
		bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;

		log_error("TLS key %s%s%s: %s", key_path, mismatch ? " does not match certificate " : "",
			  mismatch ? cert_path : "", ossl_reason(why, sizeof(why)));
		return -EINVAL;
	}
	if (!SSL_CTX_check_private_key(sc)) {
		log_error("TLS key %s does not match certificate %s: %s", key_path, cert_path,
			  ossl_reason(why, sizeof(why)));
		return -EINVAL;
	}
	return 0;
}

struct tls_ctx *tls_server_ctx_new(const char *cert_path, const char *key_path)
{
	struct tls_ctx *ctx;

	if (!cert_path != !key_path) {
		log_error("TLS: a certificate and a key must be given together (got only the %s)",
			  cert_path ? "certificate" : "key");
		return NULL;
	}
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx || !(ctx->ssl_ctx = ssl_ctx_base(TLS_server_method()))) {
		log_error("TLS: out of memory");
		goto fail;
	}
	ctx->server = true;
	if (cert_path ? use_files(ctx->ssl_ctx, cert_path, key_path) : use_self_signed(ctx->ssl_ctx))
		goto fail;
	if (cert_fingerprint(SSL_CTX_get0_certificate(ctx->ssl_ctx), ctx->fingerprint)) {
		log_error("TLS: cannot compute the certificate fingerprint");
		goto fail;
	}
	log_info("TLS server certificate SHA-256 %s", ctx->fingerprint);
	return ctx;
fail:
	tls_ctx_free(ctx);
	ERR_clear_error();
	return NULL;
}

struct tls_ctx *tls_client_ctx_new(void)
{
	struct tls_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx || !(ctx->ssl_ctx = ssl_ctx_base(TLS_client_method()))) {
		log_error("TLS: out of memory");
		tls_ctx_free(ctx);
		return NULL;
	}
	/* IKE authenticates the peer; the certificate only carries the TLS keys. */
	SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
	if (!ctx)
		return;
	SSL_CTX_free(ctx->ssl_ctx);
	free(ctx);
}

const char *tls_ctx_fingerprint(const struct tls_ctx *ctx)
{
	return ctx->fingerprint;
}

struct tls_conn *tls_conn_new(struct tls_ctx *ctx, int fd, bool server, const void *prefix,
			      size_t prefix_len)
{
	struct tls_conn *c = calloc(1, sizeof(*c));
	BIO *inner = NULL;

	if (!c)
		goto nomem;
	c->fd = fd;
	c->server = server;
	c->ssl = SSL_new(ctx->ssl_ctx);
	/* bio1 (SSL's end) buffers what SSL writes; bio2 (ours) what we write. */
	if (!c->ssl || !BIO_new_bio_pair(&inner, TLS_OUT_BUF, &c->net, MAX(TLS_IN_BUF, prefix_len)))
		goto nomem;
	SSL_set_bio(c->ssl, inner, inner);
	if (server)
		SSL_set_accept_state(c->ssl);
	else
		SSL_set_connect_state(c->ssl);
	if (prefix_len && BIO_write(c->net, prefix, (int)prefix_len) != (int)prefix_len)
		goto nomem;
	return c;
nomem:
	log_error("TLS: cannot set up a connection: out of memory");
	ERR_clear_error();
	tls_conn_free(c);
	return NULL;
}

/* Send queued ciphertext: 0 when all of it left, -EAGAIN, or a socket error. */
static int flush_out(struct tls_conn *c)
{
	char *p;
	int n;

	while ((n = BIO_nread0(c->net, &p)) > 0) {
		ssize_t s = send(c->fd, p, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (s < 0) {
			if (errno == EINTR)
				continue;
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		}
		(void)BIO_nread(c->net, &p, (int)s);
	}
	return 0;
}

/* Read socket bytes into the pair: >0 bytes, 0 at EOF, -EAGAIN, or a socket error. */
static ssize_t fill_in(struct tls_conn *c)
{
	char *p;
	int room = BIO_nwrite0(c->net, &p);

	if (room <= 0)
		return -ENOBUFS; /* cannot happen: SSL wants more only once it took all */
	for (;;) {
		ssize_t n = recv(c->fd, p, (size_t)room, MSG_DONTWAIT);
		if (n > 0) {
			(void)BIO_nwrite(c->net, &p, (int)n);
			return n;
		}
		if (n == 0)
			return 0;
		if (errno != EINTR)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

static void handshake_finished(struct tls_conn *c)
{
	c->done = true;
	log_debug("TLS %s handshake done: %s %s", c->server ? "server" : "client",
		  SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
	if (!c->server && log_get_level() <= LOG_LVL_DEBUG) {
		X509 *cert = SSL_get0_peer_certificate(c->ssl);
		char fp[TLS_FINGERPRINT_LEN];

		if (!cert_fingerprint(cert, fp))
			log_debug("TLS peer certificate SHA-256 %s", fp);
	}
}

static int tls_fail(struct tls_conn *c, const char *op, int ssl_err)
{
	char why[256];

	if (ssl_err == SSL_ERROR_SSL)
		ossl_reason(why, sizeof(why));
	else
		snprintf(why, sizeof(why), "SSL error %d", ssl_err);
	ERR_clear_error();
	log_rl(&tls_rl, LOG_LVL_DEBUG, "TLS %s %s failed%s: %s", c->server ? "server" : "client",
	       op, c->done ? "" : " in the handshake", why);
	c->failed = true;
	(void)flush_out(c); /* the alert, if OpenSSL queued one */
	return -EPROTO;
}

/*
 * After an SSL call that did not complete: move ciphertext the way OpenSSL
 * asked. 1 = call it again, else the result for the caller (eof_result when
 * the socket reached EOF while OpenSSL wanted more).
 */
static int drive(struct tls_conn *c, const char *op, int ssl_err, int eof_result)
{
	ssize_t n;
	int err;

	switch (ssl_err) {
	case SSL_ERROR_WANT_READ:
		err = flush_out(c);
		if (err && err != -EAGAIN)
			return err;
		if (c->peer_eof)
			return eof_result;
		n = fill_in(c);
		if (n > 0)
			return 1;
		if (n == 0) {
			c->peer_eof = true;
			return eof_result;
		}
		if (n == -EAGAIN)
			c->wants = EPOLLIN;
		return (int)n;
	case SSL_ERROR_WANT_WRITE:
		err = flush_out(c);
		if (!err)
			return 1;
		if (err == -EAGAIN)
			c->wants = EPOLLOUT;
		return err;
	default:
		return tls_fail(c, op, ssl_err);
	}
}

/* Before each call: move ciphertext queued by earlier calls; only socket errors stop it. */
static int flush_first(struct tls_conn *c)
{
	int err;

	c->wants = 0;
	if (c->failed)
		return -EPROTO;
	err = flush_out(c);
	return err == -EAGAIN ? 0 : err;
}

ssize_t tls_conn_read(struct tls_conn *c, void *buf, size_t len)
{
	int err = flush_first(c);

	if (err)
		return err;
	if (len == 0)
		return -EINVAL;
	for (;;) {
		size_t n = 0;
		int ok, rc;

		ERR_clear_error();
		ok = SSL_read_ex(c->ssl, buf, len, &n);
		rc = ok ? SSL_ERROR_NONE : SSL_get_error(c->ssl, 0);
		if (!c->done && SSL_is_init_finished(c->ssl))
			handshake_finished(c);
		if (ok) {
			(void)flush_out(c); /* errors show up on the next call */
			return (ssize_t)n;
		}
		if (rc == SSL_ERROR_ZERO_RETURN) /* close_notify */
			return 0;
		rc = drive(c, "read", rc, 0);
		if (rc != 1)
			return rc;
	}
}

ssize_t tls_conn_write(struct tls_conn *c, const void *buf, size_t len)
{
	int err = flush_first(c);

	if (err)
		return err;
	if (len == 0) {
		if (BIO_ctrl_pending(c->net) == 0)
			return 0;
		c->wants = EPOLLOUT;
		return -EAGAIN;
	}
	for (;;) {
		size_t n = 0;
		int ok, rc;

		ERR_clear_error();
		ok = SSL_write_ex(c->ssl, buf, len, &n);
		rc = ok ? SSL_ERROR_NONE : SSL_get_error(c->ssl, 0);
		if (!c->done && SSL_is_init_finished(c->ssl))
			handshake_finished(c);
		if (ok) {
			rc = flush_out(c);
			if (rc && rc != -EAGAIN)
				return rc;
			return (ssize_t)n;
		}
		rc = drive(c, "write", rc, -EPIPE);
		if (rc != 1)
			return rc;
	}
}

uint32_t tls_conn_wants(const struct tls_conn *c)
{
	uint32_t w = c->wants;

	if (BIO_ctrl_pending(c->net) > 0)
		w |= EPOLLOUT;
	return w;
}

bool tls_conn_handshake_done(const struct tls_conn *c)
{
	return c->done;
}

void tls_conn_free(struct tls_conn *c)
{
	if (!c)
		return;
	if (c->ssl && c->done && !c->failed) {
		ERR_clear_error();
		(void)SSL_shutdown(c->ssl); /* queues close_notify */
		(void)flush_out(c);
	}
	ERR_clear_error();
	SSL_free(c->ssl);
	BIO_free(c->net);
	free(c);
}
