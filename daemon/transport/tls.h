/*
 * TLS 1.3 as a byte stream over a connected non-blocking TCP socket
 * (RFC 9329 Appendix A, RFC 8229 section 8): the "IKETCP" prefix and the
 * frames travel inside TLS. The peers authenticate each other with IKE, so
 * the client does not verify the server certificate; it logs its SHA-256
 * fingerprint at debug level.
 */
#ifndef IKETCP_TRANSPORT_TLS_H
#define IKETCP_TRANSPORT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* "AA:BB:..." of a SHA-256 digest, with its NUL. */
#define TLS_FINGERPRINT_LEN (32 * 3)

struct tls_ctx; /* SSL_CTX plus identity */

/*
 * Server: cert_path/key_path are PEM files (the certificate file may hold a
 * chain). Both NULL: a self-signed P-256 certificate, CN "iketcp", valid one
 * year, is made now. Either way its fingerprint is logged at info as
 * "TLS server certificate SHA-256 AA:BB:...". NULL on error, after a
 * log_error naming the file and the reason.
 */
struct tls_ctx *tls_server_ctx_new(const char *cert_path, const char *key_path);
struct tls_ctx *tls_client_ctx_new(void);
void tls_ctx_free(struct tls_ctx *ctx); /* NULL ok; after its last tls_conn */
/* The SHA-256 fingerprint of our server certificate, 95 chars; "" for a client ctx. */
const char *tls_ctx_fingerprint(const struct tls_ctx *ctx);

struct tls_conn;

/*
 * server=true: the accept side. prefix/prefix_len: bytes already read from
 * the socket (to tell TLS from plain IKE); TLS sees them before any further
 * socket bytes. May be NULL/0. NULL on allocation failure. The fd stays the
 * caller's.
 */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, int fd, bool server, const void *prefix,
			      size_t prefix_len);
/* NULL ok; sends close_notify best-effort (one non-blocking send); does not close fd. */
void tls_conn_free(struct tls_conn *c);

/*
 * >0: bytes read/written (a write may take fewer than len bytes);
 * 0 (read): orderly close by the peer (close_notify or TCP FIN);
 * 0 (write with len 0, a pure flush): no ciphertext is left queued;
 * -EAGAIN: wait for tls_conn_wants() (EPOLLIN and/or EPOLLOUT), then call
 *   again. A write that returned -EAGAIN must be repeated with the same bytes
 *   (more may follow them) before other data is written;
 * -EPROTO: TLS error or handshake failure (logged at debug with the OpenSSL
 *   reason); every later call returns -EPROTO too;
 * -EPIPE (write): the peer closed before the handshake finished;
 * -ECONNRESET etc.: socket errors;  -EINVAL: read with len 0.
 * The handshake runs inside the first calls. A successful write may leave
 * ciphertext queued here (the socket was full): tls_conn_wants() then has
 * EPOLLOUT, and on EPOLLOUT any call sends it first; with nothing new to
 * write, call tls_conn_write(c, NULL, 0) to just flush.
 * -EAGAIN means the socket itself said EAGAIN (safe with EPOLLET).
 */
ssize_t tls_conn_read(struct tls_conn *c, void *buf, size_t len);
ssize_t tls_conn_write(struct tls_conn *c, const void *buf, size_t len);
/* EPOLLIN/EPOLLOUT to wait for after -EAGAIN; EPOLLOUT also whenever ciphertext is queued. */
uint32_t tls_conn_wants(const struct tls_conn *c);
bool tls_conn_handshake_done(const struct tls_conn *c);

#endif
