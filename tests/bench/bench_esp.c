/*
 * ESP throughput: esp_encap and esp_decap on 1420-byte IPv4 packets for each
 * suite, next to raw EVP AES-128-GCM on the same buffers (the "OpenSSL
 * ceiling": keyed once, nonce + AAD + update + final + tag per packet).
 * Prints a table, then one JSON line. Thread CPU time, so neighbours on a
 * shared machine distort less. BENCH_SECONDS (default 0.5) per suite.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>

#include "esp/esp.h"
#include "tests/bench/bench_packet.h"

#define PKT 1420
#define BATCH 256

struct suite {
	const char *name;
	enum esp_cipher cipher;
	uint16_t enc_bits, integ_bits;
};

static const struct suite suites[] = {
	{ "aes128gcm16", ESP_AES_GCM_16, 128, 0 },
	{ "aes256gcm16", ESP_AES_GCM_16, 256, 0 },
	{ "chacha20poly1305", ESP_CHACHA20_POLY1305, 256, 0 },
	{ "aes128cbc-sha256", ESP_AES_CBC_HMAC_SHA2, 128, 256 },
	{ "aes256cbc-sha256", ESP_AES_CBC_HMAC_SHA2, 256, 256 },
	{ "aes256cbc-sha384", ESP_AES_CBC_HMAC_SHA2, 256, 384 },
	{ "aes256cbc-sha512", ESP_AES_CBC_HMAC_SHA2, 256, 512 },
};

static uint8_t ip[PKT];
static uint8_t wire[BATCH][PKT + ESP_MAX_OVERHEAD];
static ssize_t wire_len[BATCH];
static uint8_t plain[PKT + ESP_MAX_OVERHEAD];
static uint8_t keymat[128];
static double seconds = 0.5;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: fair on a shared machine */
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_esp: %s\n", what);
	exit(1);
}

/* Time and bytes add up over rounds; MB/s at the end. */
struct result {
	double t_enc, t_dec, bytes;
};

static double mbps(double bytes, double t)
{
	return bytes / t / 1e6;
}

static struct result bench_suite(const struct suite *s, double secs)
{
	struct esp_sa_params p = {
		.spi = 0x1000, .outbound = true, .cipher = s->cipher, .enc_key_bits = s->enc_bits,
		.integ_bits = s->integ_bits, .keymat = keymat,
		.keymat_len = s->enc_bits / 8u + (s->cipher == ESP_AES_CBC_HMAC_SHA2 ? s->integ_bits / 8u : 4u),
		.esn = true, .replay = true,
	};
	struct esp_sa o, in;
	double t_enc = 0, t_dec = 0, bytes = 0;
	uint8_t nh;

	if (esp_sa_init(&o, &p))
		die("outbound SA");
	p.outbound = false;
	if (esp_sa_init(&in, &p))
		die("inbound SA");
	while (t_enc < secs || t_dec < secs) {
		double t0 = now();
		for (int i = 0; i < BATCH; i++) {
			wire_len[i] = esp_encap(&o, ip, PKT, wire[i], sizeof(wire[i]));
			if (wire_len[i] < 0)
				die("esp_encap failed");
		}
		double t1 = now();
		for (int i = 0; i < BATCH; i++)
			if (esp_decap(&in, wire[i], (size_t)wire_len[i], plain, sizeof(plain), &nh) != PKT)
				die("esp_decap failed");
		double t2 = now();
		t_enc += t1 - t0;
		t_dec += t2 - t1;
		bytes += (double)BATCH * PKT;
	}
	if (memcmp(plain, ip, PKT) != 0)
		die("round trip differs");
	esp_sa_destroy(&o);
	esp_sa_destroy(&in);
	return (struct result){ t_enc, t_dec, bytes };
}

/* The ceiling: the same AEAD work without ESP framing, on buffers of the same size. */
static struct result bench_evp_gcm(double secs)
{
	EVP_CIPHER_CTX *enc = EVP_CIPHER_CTX_new(), *dec = EVP_CIPHER_CTX_new();
	uint8_t nonce[12] = { 0 }, aad[8] = { 0, 0, 0x10, 0 };
	size_t ct_len = PKT + 4; /* payload + 2 pad + pad length + next header */
	double t_enc = 0, t_dec = 0, bytes = 0;
	uint64_t seq = 0;
	int n;

	if (!enc || !dec || EVP_EncryptInit_ex(enc, EVP_aes_128_gcm(), NULL, keymat, NULL) != 1 ||
	    EVP_DecryptInit_ex(dec, EVP_aes_128_gcm(), NULL, keymat, NULL) != 1)
		die("EVP init");
	memcpy(plain, ip, PKT);
	while (t_enc < secs || t_dec < secs) {
		uint64_t first = seq;
		double t0 = now();
		for (int i = 0; i < BATCH; i++) {
			seq++;
			memcpy(nonce + 4, &seq, 8);
			memcpy(aad + 4, &seq, 4);
			if (EVP_EncryptInit_ex(enc, NULL, NULL, NULL, nonce) != 1 ||
			    EVP_EncryptUpdate(enc, NULL, &n, aad, 8) != 1 ||
			    EVP_EncryptUpdate(enc, wire[i] + 16, &n, plain, (int)ct_len) != 1 ||
			    EVP_EncryptFinal_ex(enc, wire[i] + 16 + n, &n) != 1 ||
			    EVP_CIPHER_CTX_ctrl(enc, EVP_CTRL_AEAD_GET_TAG, 16, wire[i] + 16 + ct_len) != 1)
				die("EVP encrypt");
		}
		double t1 = now();
		seq = first;
		for (int i = 0; i < BATCH; i++) {
			seq++;
			memcpy(nonce + 4, &seq, 8);
			memcpy(aad + 4, &seq, 4);
			if (EVP_DecryptInit_ex(dec, NULL, NULL, NULL, nonce) != 1 ||
			    EVP_DecryptUpdate(dec, NULL, &n, aad, 8) != 1 ||
			    EVP_DecryptUpdate(dec, plain, &n, wire[i] + 16, (int)ct_len) != 1 ||
			    EVP_CIPHER_CTX_ctrl(dec, EVP_CTRL_AEAD_SET_TAG, 16, wire[i] + 16 + ct_len) != 1 ||
			    EVP_DecryptFinal_ex(dec, plain + n, &n) != 1)
				die("EVP decrypt");
		}
		double t2 = now();
		t_enc += t1 - t0;
		t_dec += t2 - t1;
		bytes += (double)BATCH * PKT;
	}
	EVP_CIPHER_CTX_free(enc);
	EVP_CIPHER_CTX_free(dec);
	return (struct result){ t_enc, t_dec, bytes };
}

int main(void)
{
	const char *env = getenv("BENCH_SECONDS");
	if (env && atof(env) > 0)
		seconds = atof(env);
	bench_packet(keymat, sizeof(keymat), ip, PKT);

	/*
	 * Each suite runs in rounds alternating with the ceiling, so both see
	 * the same machine (frequency, neighbours) and the ratio is fair.
	 */
	enum { ROUNDS = 5, N = sizeof(suites) / sizeof(suites[0]) };
	struct result r[N], c[N], all = { 0, 0, 0 };
	for (size_t i = 0; i < N; i++) {
		r[i] = c[i] = (struct result){ 0, 0, 0 };
		for (int k = 0; k < ROUNDS; k++) {
			struct result a = bench_evp_gcm(seconds / ROUNDS), b = bench_suite(&suites[i], seconds / ROUNDS);
			c[i].t_enc += a.t_enc, c[i].t_dec += a.t_dec, c[i].bytes += a.bytes;
			r[i].t_enc += b.t_enc, r[i].t_dec += b.t_dec, r[i].bytes += b.bytes;
		}
		all.t_enc += c[i].t_enc, all.t_dec += c[i].t_dec, all.bytes += c[i].bytes;
	}
	printf("%-18s %12s %12s %8s %8s\n", "suite", "encap MB/s", "decap MB/s", "enc/ceil", "dec/ceil");
	printf("%-18s %12.1f %12.1f %8.2f %8.2f\n", "EVP aes128gcm", mbps(all.bytes, all.t_enc),
	       mbps(all.bytes, all.t_dec), 1.0, 1.0);
	double er[N], dr[N];
	for (size_t i = 0; i < N; i++) {
		er[i] = mbps(r[i].bytes, r[i].t_enc) / mbps(c[i].bytes, c[i].t_enc);
		dr[i] = mbps(r[i].bytes, r[i].t_dec) / mbps(c[i].bytes, c[i].t_dec);
		printf("%-18s %12.1f %12.1f %8.2f %8.2f\n", suites[i].name, mbps(r[i].bytes, r[i].t_enc),
		       mbps(r[i].bytes, r[i].t_dec), er[i], dr[i]);
	}
	printf("{\"bench\":\"esp\",\"packet_bytes\":%d,\"timing\":\"thread_cpu\","
	       "\"evp_aes128gcm\":{\"encrypt_mbps\":%.1f,\"decrypt_mbps\":%.1f},\"suites\":[",
	       PKT, mbps(all.bytes, all.t_enc), mbps(all.bytes, all.t_dec));
	for (size_t i = 0; i < N; i++)
		printf("%s{\"suite\":\"%s\",\"encap_mbps\":%.1f,\"decap_mbps\":%.1f,\"encap_ratio\":%.3f,"
		       "\"decap_ratio\":%.3f}", i ? "," : "", suites[i].name, mbps(r[i].bytes, r[i].t_enc),
		       mbps(r[i].bytes, r[i].t_dec), er[i], dr[i]);
	printf("]}\n");
	return 0;
}
