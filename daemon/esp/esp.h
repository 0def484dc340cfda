/*
 * ESP tunnel mode in userspace (RFC 4303): one SA, one direction, one packet
 * at a time. The EVP contexts are keyed once in esp_sa_init(); per packet only
 * the IV/nonce is set, so the packet path never allocates.
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |               Security Parameters Index (SPI)                 |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                 Sequence Number (low 32 bits)                 |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |         IV (8 bytes AEAD, 16 bytes CBC)                       |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |  encrypted: inner IP packet | padding 1,2,3.. | pad len | NH  |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |         ICV (16 AEAD; 16/24/32 for HMAC-SHA2-256/384/512)     |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * AEAD (RFC 4106 AES-GCM-16, RFC 7634 ChaCha20-Poly1305): nonce = salt(4) |
 * IV(8), AAD = SPI | seq (8 bytes) or SPI | seq_hi | seq_lo with ESN (12).
 * AES-CBC + HMAC-SHA2 (RFC 3602, RFC 4868): ICV over SPI | seq | IV |
 * ciphertext, followed by seq_hi with ESN (RFC 4303 section 2.2.1).
 */
#ifndef IKETCP_ESP_ESP_H
#define IKETCP_ESP_ESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <openssl/evp.h>
#include "iketcp/compiler.h"
#include "esp/replay.h"

struct aead_mb;

#define ESP_HDR_LEN 8        /* SPI | sequence number */
#define ESP_AEAD_IV_LEN 8    /* RFC 4106 / RFC 7634 explicit IV */
#define ESP_AEAD_ICV_LEN 16
#define ESP_SALT_LEN 4
#define ESP_CBC_IV_LEN 16
#define ESP_MAX_IV_LEN 16
#define ESP_MAX_ICV_LEN 32
#define ESP_MAX_PAD 255
/* Bytes esp_encap adds around the inner packet at most (header, IV, pad, trailer, ICV). */
#define ESP_MAX_OVERHEAD (ESP_HDR_LEN + ESP_MAX_IV_LEN + 15 + 2 + ESP_MAX_ICV_LEN)
#define ESP_MAX_INNER 65535

/* Next Header values (IANA protocol numbers) seen in tunnel mode. */
#define ESP_NH_IPV4 4
#define ESP_NH_IPV6 41
#define ESP_NH_DUMMY 59 /* RFC 4303 section 2.6: discard silently */

enum esp_cipher { ESP_AES_GCM_16, ESP_CHACHA20_POLY1305, ESP_AES_CBC_HMAC_SHA2 };

struct esp_sa_params {
	uint32_t spi;
	bool outbound;
	enum esp_cipher cipher;
	uint16_t enc_key_bits;  /* 128/256 for AES; 256 for ChaCha20 */
	uint16_t integ_bits;    /* CBC only: 256, 384 or 512 (ICV is half) */
	const uint8_t *keymat;  /* AEAD: key | salt(4). CBC: enc key | integ key */
	size_t keymat_len;
	bool esn;
	bool replay;            /* inbound: anti-replay on (phase2 replay enable) */
	uint32_t replay_window; /* 0: REPLAY_WINDOW_DEFAULT */
	uint64_t life_bytes_soft, life_bytes_hard; /* inner bytes; 0: no limit */
	uint64_t life_secs_soft, life_secs_hard;   /* 0: no limit; see esp_sa_tick */
	uint64_t now_secs;                         /* creation time, any monotonic clock */
};

/* Per-SA counters, plain: one dataplane thread per SA and direction. The lead
 * sums them into stats.esp (same names). */
struct esp_sa_stats {
	uint64_t packets; /* packets_in / packets_out */
	uint64_t bytes;   /* inner bytes, what the byte lifetimes count */
	uint64_t replay_drops;
	uint64_t auth_failures;
	uint64_t malformed;
	uint64_t dummy;   /* authenticated Next Header 59 packets, discarded */
	uint64_t expired; /* refused after the hard lifetime or sequence exhaustion */
};

enum esp_life { ESP_LIFE_OK, ESP_LIFE_SOFT, ESP_LIFE_HARD };

struct esp_sa {
	uint32_t spi;
	bool outbound;
	bool esn;
	enum esp_cipher cipher;
	uint8_t iv_len, icv_len, block; /* block: ciphertext alignment (4 or 16) */
	uint8_t salt[ESP_SALT_LEN];
	struct aead_mb *mb;      /* AES-GCM or ChaCha20-Poly1305 through intel-ipsec-mb, keyed once (then ctx is NULL) */
	EVP_CIPHER_CTX *ctx;     /* otherwise: AEAD or AES-CBC, keyed once */
	EVP_CIPHER_CTX *iv_ctx;  /* CBC outbound: AES-ECB under the same key makes IVs */
	EVP_MAC_CTX *mac;        /* CBC: HMAC keyed once, re-initialised per packet */
	uint64_t seq;            /* outbound: last number sent (0: none yet) */
	uint64_t seq_max;        /* 2^32 - 1, or 2^64 - 1 with ESN */
	uint64_t seq_soft;       /* past this, ask for a rekey */
	struct replay_window replay;
	uint64_t life_bytes_soft, life_bytes_hard;
	uint64_t life_secs_soft, life_secs_hard, born_secs;
	bool soft_expired;       /* a rekey should start (sticky) */
	bool hard_expired;       /* the SA refuses packets (sticky) */
	struct esp_sa_stats stats;
};

/* 0, -EINVAL (bad parameters or key length), -ENOMEM, -EIO (OpenSSL). */
must_check int esp_sa_init(struct esp_sa *sa, const struct esp_sa_params *p);
/* Frees the contexts and wipes the keys; safe on a zeroed or destroyed SA. */
void esp_sa_destroy(struct esp_sa *sa);

/* Worst of the soft/hard states after checking the time limits at now_secs. */
enum esp_life esp_sa_tick(struct esp_sa *sa, uint64_t now_secs);

/* Bytes that esp_encap writes for an inner packet of ip_len bytes. */
size_t esp_encap_len(const struct esp_sa *sa, size_t ip_len);
/* Where esp_decap may write for in-place decryption: esp + this offset. */
size_t esp_payload_offset(const struct esp_sa *sa);

/*
 * Tunnel mode: the inner IPv4/IPv6 packet becomes SPI | seq | IV |
 * enc(packet | 1,2,3.. | pad len | NH) | ICV in out. The next header comes
 * from the IP version nibble. The IV is the 64-bit sequence number for AEAD
 * (RFC 4106 section 3.1 allows a counter) and AES-ECB of it for CBC (an
 * unpredictable IV, NIST SP 800-38A appendix C). ip may be out + esp_payload_offset()
 * (in place) or disjoint from out; a partial overlap is -EINVAL.
 * Returns bytes written, -ENOSPC (out too small), -EINVAL (not IPv4/IPv6,
 * too long, inbound SA), -EKEYEXPIRED (sequence exhausted or hard lifetime).
 */
ssize_t esp_encap(struct esp_sa *sa, const uint8_t *ip, size_t ip_len, uint8_t *out, size_t out_cap);

/*
 * Order of checks: length and SPI, replay (before the ICV), ICV, then the
 * window moves, then padding (must be 1,2,3..), next header and the inner IP
 * header. The inner packet lands at out; out may be esp + esp_payload_offset()
 * (in place) or a disjoint buffer of at least len bytes. Returns the inner
 * length (trimmed to the IP header's length, so TFC padding is dropped),
 * or 0 with *next_header = 59 for a dummy packet. Errors: -EBADMSG malformed
 * (stats.malformed), -EKEYREJECTED ICV (stats.auth_failures), -EALREADY
 * replay (stats.replay_drops), -EKEYEXPIRED hard lifetime, -ENOSPC out too
 * small, -EINVAL SPI not this SA's or outbound SA.
 */
ssize_t esp_decap(struct esp_sa *sa, const uint8_t *esp, size_t len, uint8_t *out, size_t out_cap,
		  uint8_t *next_header);

/*
 * The same two, cut where the order ends, for the crypto workers (workers.h):
 * _prepare does everything that must happen in packet order on the SA's one
 * thread (checks, the sequence number, the replay check, lifetimes and
 * counters), _seal and _open only the crypto, which any thread may run at the
 * same time for different jobs when esp_sa_parallel(sa); _finish is in order
 * again. esp_encap and esp_decap are each these steps in a row. A job points
 * at its packet and output: both must stay put until it is finished.
 */
#define ESP_MAX_PARTS 2 /* an inner packet in pieces: headers made apart from their payload */

struct esp_seal_job {
	struct esp_sa *sa;
	uint64_t seq;
	size_t ip_len;
	struct iovec parts[ESP_MAX_PARTS + 1]; /* the inner packet's, then the trailer */
	unsigned n_parts;
	uint8_t *out;
	size_t out_cap;
	uint8_t iv[ESP_MAX_IV_LEN];
	uint8_t trailer[ESP_CBC_IV_LEN + 2]; /* padding (at most block - 1), pad length, next header */
};

struct esp_open_job {
	struct esp_sa *sa;
	uint64_t seq;
	const uint8_t *esp, *iv, *ct, *icv;
	size_t ct_len;
	uint8_t *out;
	int err; /* _open's: 0, -EKEYREJECTED or -EIO */
};

/* True when the SA's crypto may run on several threads at once (its keys are only read). */
bool esp_sa_parallel(const struct esp_sa *sa);
/* 0 or esp_encap's errors; the sequence number is taken and the bytes counted. */
must_check int esp_encap_prepare(struct esp_sa *sa, const uint8_t *ip, size_t ip_len, uint8_t *out,
				 size_t out_cap, struct esp_seal_job *j);
/* The same for an inner packet in n pieces (n <= ESP_MAX_PARTS); only the first may be in place. */
must_check int esp_encap_prepare_parts(struct esp_sa *sa, const struct iovec *ip, unsigned n, uint8_t *out,
				       size_t out_cap, struct esp_seal_job *j);
/* Bytes written at j->out, or -EIO. */
ssize_t esp_encap_seal(const struct esp_seal_job *j);
/* 0 or esp_decap's errors before the ICV (malformed, replay, expired, -ENOSPC, -EINVAL). out NULL:
 * open in place, at the ciphertext (esp is then the caller's writable copy). */
must_check int esp_decap_prepare(struct esp_sa *sa, const uint8_t *esp, size_t len, uint8_t *out,
				 size_t out_cap, struct esp_open_job *j);
void esp_decap_open(struct esp_open_job *j);
/* esp_decap's result for a prepared and opened job. */
ssize_t esp_decap_finish(const struct esp_open_job *j, uint8_t *next_header);

/*
 * Add an SA's counters to the daemon-wide ones (stats.esp): packets to
 * packets_in or packets_out by direction, drops by name. The caller owns
 * the timing (on SA deletion, or deltas from a snapshot it keeps).
 */
struct stats;
void esp_sa_stats_add(struct stats *dst, const struct esp_sa_stats *s, bool outbound);

/* SPI of an ESP packet, or 0 when too short (0 is never a valid SPI). */
uint32_t esp_spi_of(const uint8_t *esp, size_t len);

#if defined(IKETCP_TEST) || defined(IKETCP_FUZZ)
/* Test hooks: published vectors use their own IVs, trailers and numbers. */
void esp_sa_set_seq_for_test(struct esp_sa *sa, uint64_t last_sent);
/*
 * Seal plaintext that already carries its trailer (padding, pad len, next
 * header) under number seq and the given IV; no padding is added. For CBC
 * the length must be a multiple of 16. Returns bytes written or -errno.
 */
ssize_t esp_seal_raw_for_test(struct esp_sa *sa, uint64_t seq, const uint8_t *iv, const uint8_t *pt,
			      size_t pt_len, uint8_t *out, size_t out_cap);
#endif

#endif
