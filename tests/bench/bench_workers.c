/*
 * How the crypto workers scale: batches of 64 1420-byte IPv4 packets sealed
 * with AES-128-GCM the way a dataplane batch seals them (esp_encap_prepare in
 * order on this thread, esp_encap_seal for all of them through workers_run),
 * with 1, 2, ... threads up to the online CPUs. Wall-clock time, since the
 * point is work spread over cores; on a busy shared machine the extra threads
 * only have what the neighbours leave. Prints a table, then one JSON line.
 * BENCH_SECONDS (default 0.5) per thread count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "esp/esp.h"
#include "tests/bench/bench_packet.h"
#include "workers.h"

#define PKT 1420
#define BATCH 64
#define MAX_THREADS 8

static uint8_t ip[PKT];
static uint8_t wire[BATCH][PKT + ESP_MAX_OVERHEAD];
static struct esp_seal_job jobs[BATCH];
static ssize_t sealed[BATCH];
static uint8_t keymat[20];

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_workers: %s\n", what);
	exit(1);
}

static void seal_one(void *arg, unsigned i)
{
	(void)arg;
	sealed[i] = esp_encap_seal(&jobs[i]);
}

/* MB/s of inner packets sealed with threads taking part. */
static double run(unsigned threads, double secs)
{
	struct esp_sa_params p = { .spi = 0x1000, .outbound = true, .cipher = ESP_AES_GCM_16, .enc_key_bits = 128,
				   .keymat = keymat, .keymat_len = sizeof(keymat), .esn = true };
	struct workers *w = workers_new(threads);
	struct esp_sa sa;
	double bytes = 0, t0, t;

	if (!w || esp_sa_init(&sa, &p))
		die("setup");
	if (!sa.mb)
		fprintf(stderr, "bench_workers: intel-ipsec-mb is not in use: the batch runs on one thread\n");
	t0 = now();
	do {
		for (unsigned i = 0; i < BATCH; i++)
			if (esp_encap_prepare(&sa, ip, PKT, wire[i], sizeof(wire[i]), &jobs[i]))
				die("prepare");
		if (esp_sa_parallel(&sa))
			workers_run(w, BATCH, seal_one, NULL);
		else
			for (unsigned i = 0; i < BATCH; i++)
				seal_one(NULL, i);
		for (unsigned i = 0; i < BATCH; i++)
			if (sealed[i] != (ssize_t)esp_encap_len(&sa, PKT))
				die("seal");
		bytes += (double)BATCH * PKT;
	} while ((t = now() - t0) < secs);
	esp_sa_destroy(&sa);
	workers_free(w);
	return bytes / t / 1e6;
}

int main(void)
{
	const char *env = getenv("BENCH_SECONDS");
	double secs = env && atof(env) > 0 ? atof(env) : 0.5, mb[MAX_THREADS + 1];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned max = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (unsigned)cpus;

	bench_packet(keymat, sizeof(keymat), ip, PKT);

	printf("%-8s %12s %8s\n", "threads", "seal MB/s", "vs 1");
	for (unsigned t = 1; t <= max; t++) {
		mb[t] = run(t, secs);
		printf("%-8u %12.1f %8.2f\n", t, mb[t], mb[t] / mb[1]);
	}
	printf("{\"bench\":\"workers\",\"packet_bytes\":%d,\"batch\":%d,\"timing\":\"wall\",\"seal_mbps\":[", PKT,
	       BATCH);
	for (unsigned t = 1; t <= max; t++)
		printf("%s{\"threads\":%u,\"mbps\":%.1f}", t > 1 ? "," : "", t, mb[t]);
	printf("]}\n");
	return 0;
}
