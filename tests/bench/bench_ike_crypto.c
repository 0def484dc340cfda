/* IKE crypto costs: DH keygen + derive per second per group, prf+ and SK throughput. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "ike/crypto.h"
#include "ike/suite.h"

#define BENCH_SECONDS 0.4

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One responder's work per IKE_SA_INIT: a fresh key pair, then g^ir with the
 * peer's (precomputed) public value. */
static void bench_dh(uint16_t group)
{
	uint8_t peer_pub[600];
	size_t len = sizeof(peer_pub);
	struct ike_dh *peer = ike_dh_new(group);
	double t0, t;
	long n = 0;

	if (!peer || ike_dh_public(peer, peer_pub, &len)) {
		printf("%-12s setup failed\n", ike_ke_name(group));
		exit(1);
	}
	t0 = now();
	do {
		struct ike_dh *dh = ike_dh_new(group);
		struct secret *s;

		if (!dh || ike_dh_derive(dh, peer_pub, len, &s)) {
			printf("%-12s failed\n", ike_ke_name(group));
			exit(1);
		}
		secret_free(s);
		ike_dh_free(dh);
		n++;
	} while ((t = now() - t0) < BENCH_SECONDS);
	printf("  %-12s %9.0f keygen+derive/s  %8.3f ms each\n", ike_ke_name(group), (double)n / t,
	       t * 1e3 / (double)n);
	ike_dh_free(peer);
}

static void bench_prf_plus(uint16_t id, size_t out_len)
{
	const struct ike_prf_alg *prf = ike_prf_lookup(id);
	uint8_t key[64], seed[64], *out = malloc(out_len);
	struct ike_blob sb = { seed, sizeof(seed) };
	double t0, t;
	long n = 0;

	RAND_bytes(key, sizeof(key));
	RAND_bytes(seed, sizeof(seed));
	t0 = now();
	do {
		if (ike_prf_plus(prf, key, prf->key_len, &sb, 1, out, out_len)) {
			printf("prf+ failed\n");
			exit(1);
		}
		n++;
	} while ((t = now() - t0) < BENCH_SECONDS);
	printf("  %-18s %5zu B  %9.0f calls/s  %7.1f MB/s\n", prf->name, out_len, (double)n / t,
	       (double)n * (double)out_len / t / 1e6);
	free(out);
}

static void bench_sk(const char *proposal, size_t len)
{
	struct ike_suite s;
	struct secret *ek, *ik = NULL;
	uint8_t aad[32] = { 0 }, *plain = malloc(len), *sealed = malloc(len + 128), *opened = malloc(len + 128);
	double t0, t;
	long n = 0;

	if (suite_from_fortios_ike(proposal, &s))
		exit(1);
	ek = secret_new(ike_suite_sk_e_len(&s));
	RAND_bytes(ek->p, (int)ek->len);
	if (!s.encr->aead) {
		ik = secret_new(ike_suite_sk_a_len(&s));
		RAND_bytes(ik->p, (int)ik->len);
	}
	memset(plain, 0x42, len);
	t0 = now();
	do {
		ssize_t sl = sk_seal(&s, ek, ik, aad, sizeof(aad), plain, len, sealed, len + 128);
		if (sl < 0 || sk_open(&s, ek, ik, aad, sizeof(aad), sealed, (size_t)sl, opened, len + 128) !=
				      (ssize_t)len) {
			printf("sk failed\n");
			exit(1);
		}
		n++;
	} while ((t = now() - t0) < BENCH_SECONDS);
	printf("  %-28s %5zu B  %9.0f seal+open/s\n", proposal, len, (double)n / t);
	secret_free(ek);
	secret_free(ik);
	free(plain);
	free(sealed);
	free(opened);
}

int main(void)
{
	static const uint16_t groups[] = { MODP_2048, MODP_3072, MODP_4096, ECP_256,
					   ECP_384,   ECP_521,   CURVE_25519, CURVE_448 };
	static const uint16_t prfs[] = { PRF_HMAC_SHA2_256, PRF_HMAC_SHA2_384, PRF_HMAC_SHA2_512 };

	printf("DH (one side of IKE_SA_INIT: new key pair + shared secret)\n");
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		bench_dh(groups[i]);
	printf("prf+\n");
	for (size_t i = 0; i < sizeof(prfs) / sizeof(prfs[0]); i++) {
		bench_prf_plus(prfs[i], 224); /* IKE SA keys, AES-256-GCM + SHA-384 sized */
		bench_prf_plus(prfs[i], 4096);
	}
	printf("SK payload\n");
	bench_sk("aes128gcm-prfsha256", 1024);
	bench_sk("chacha20poly1305-prfsha256", 1024);
	bench_sk("aes256-sha256", 1024);
	return 0;
}
