/*
 * ESP batches (daemon/dataplane/esp_batch.c) with crypto workers: what a batch seals with four
 * threads, whether read where it lies, copied in or in two parts, is byte for byte what one SA seals
 * alone, in the order it was added, across AES-GCM,
 * ChaCha20-Poly1305 (parallel) and AES-CBC/HMAC (this thread only) SAs in one batch; what it opens
 * comes back in order; a copy, a forgery, an unknown SPI and a runt inside one batch are each
 * dropped and counted while the rest goes through; a full batch flushes itself; an exhausted SA is
 * reported at once; held packets (esp_batch_hold) stay as they were until the consumer lets go; an
 * SA past its soft lifetime (sequence numbers when sealing, bytes when opening) is told to IKE's side
 * once, and again only while the telling failed.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "iketcp/stats.h"
#include "dataplane/esp_batch.h"
#include "dataplane/sa_set.h"
#include "esp/esp.h"
#include "tests/lib/fnv.h"
#include "workers.h"

static char stream;
#define CONN ((struct tcp_conn *)&stream)

#define N_SAS 3
#define MAX_PKTS 400

static const struct {
	enum esp_cipher cipher;
	uint16_t enc_bits, integ_bits;
} suites[N_SAS] = {
	{ ESP_AES_GCM_16, 128, 0 },
	{ ESP_CHACHA20_POLY1305, 256, 0 },
	{ ESP_AES_CBC_HMAC_SHA2, 128, 256 },
};

static uint8_t keymat[N_SAS][2][64]; /* [sa][0: a->b, 1: b->a] */

static int hook_add(void *arg, const struct child_ts *ts, uint32_t others)
{
	(void)arg, (void)ts, (void)others;
	return 0;
}

static void hook_release(void *arg, const struct child_ts *ts, uint32_t others, bool rollback)
{
	(void)arg, (void)ts, (void)others, (void)rollback;
}

static const struct sa_set_hooks hooks = { .add = hook_add, .release = hook_release };

struct got {
	unsigned n;
	ssize_t len[MAX_PKTS];
	uint32_t spi[MAX_PKTS];
	uint8_t *data[MAX_PKTS];
};

struct fix {
	struct sa_set a, b;          /* two gateways' tables, mirrored keys */
	struct esp_sa ref[N_SAS];    /* a's outbound SAs once more: the serial reference */
	struct esp_batch sealing, opening;
	struct workers *w;
	struct got sealed, opened;
	uint8_t pkts[MAX_PKTS][1500];
	size_t pkt_len[MAX_PKTS];
};

static void got_add(struct got *g, const uint8_t *p, ssize_t n, uint32_t spi)
{
	assert_true(g->n < MAX_PKTS);
	g->len[g->n] = n;
	g->spi[g->n] = spi;
	g->data[g->n] = NULL;
	if (n > 0) {
		g->data[g->n] = malloc((size_t)n);
		assert_non_null(g->data[g->n]);
		memcpy(g->data[g->n], p, (size_t)n);
	}
	g->n++;
}

static void got_clear(struct got *g)
{
	for (unsigned i = 0; i < g->n; i++)
		free(g->data[i]);
	g->n = 0;
}

static void on_sealed(void *arg, struct sa_set_sa *sa, const uint8_t *esp, ssize_t n)
{
	struct fix *f = arg;
	assert_true(sa->conn == CONN);
	got_add(&f->sealed, esp, n, sa->out.spi);
}

static void on_opened(void *arg, uint8_t *pkt, ssize_t n, const struct ip_addrs *a)
{
	struct fix *f = arg;
	assert_true(n <= 0 || a);
	got_add(&f->opened, pkt, n, 0);
}

static struct esp_sa_params params(unsigned s, uint32_t spi, bool outbound, const uint8_t *km)
{
	return (struct esp_sa_params){
		.spi = spi,
		.outbound = outbound,
		.cipher = suites[s].cipher,
		.enc_key_bits = suites[s].enc_bits,
		.integ_bits = suites[s].integ_bits,
		.keymat = km,
		.keymat_len = suites[s].cipher == ESP_AES_CBC_HMAC_SHA2
				      ? suites[s].enc_bits / 8u + suites[s].integ_bits / 8u
				      : suites[s].enc_bits / 8u + ESP_SALT_LEN,
		.replay = true,
	};
}

static struct child_ts ts4(const char *a, uint8_t len)
{
	struct child_ts t = { .family = AF_INET, .prefix_len = len };
	assert_int_equal(inet_pton(AF_INET, a, &t.addr.v4), 1);
	return t;
}

/* SA s: 10.1.s.0/24 behind a, 10.2.s.0/24 behind b; a sends with SPI 0xa000+s, b with 0xb000+s. */
static void install(struct sa_set *set, unsigned s, bool is_a)
{
	char local[32], remote[32];
	uint32_t spi_a = 0xa000u + s, spi_b = 0xb000u + s;
	struct child_sa c = { .phase1 = "p1", .phase2 = "p2", .n_ts = 1, .conn = CONN };

	snprintf(local, sizeof(local), "10.%d.%u.0", is_a ? 1 : 2, s);
	snprintf(remote, sizeof(remote), "10.%d.%u.0", is_a ? 2 : 1, s);
	c.local_ts[0] = ts4(local, 24);
	c.remote_ts[0] = ts4(remote, 24);
	c.spi_in = is_a ? spi_b : spi_a;
	c.spi_out = is_a ? spi_a : spi_b;
	c.in = params(s, c.spi_in, false, keymat[s][is_a ? 1 : 0]);
	c.out = params(s, c.spi_out, true, keymat[s][is_a ? 0 : 1]);
	int err = sa_set_install(set, &c);
	if (err)
		print_error("install SA %u (%s): %d\n", s, is_a ? "a" : "b", err);
	assert_int_equal(err, 0);
}

/* A UDP packet from 10.1.s.x to 10.2.s.y, len bytes, its payload a pattern of i. */
static void make_pkt(struct fix *f, unsigned i, unsigned s, size_t len)
{
	uint8_t *p = f->pkts[i];

	memset(p, 0, 28);
	p[0] = 0x45;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	p[8] = 64;
	p[9] = 17;
	p[12] = 10, p[13] = 1, p[14] = (uint8_t)s, p[15] = 5;
	p[16] = 10, p[17] = 2, p[18] = (uint8_t)s, p[19] = 7;
	for (size_t k = 28; k < len; k++)
		p[k] = (uint8_t)(i * 7 + k);
	f->pkt_len[i] = len;
}

static struct sa_set_sa *sa_of(struct sa_set *set, unsigned s)
{
	for (unsigned k = 0; k < set->n; k++)
		if (set->sas[k]->out.spi == 0xa000u + s)
			return set->sas[k];
	fail();
	return NULL;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	for (unsigned s = 0; s < N_SAS; s++)
		for (unsigned d = 0; d < 2; d++)
			for (unsigned k = 0; k < sizeof(keymat[s][d]); k++)
				keymat[s][d][k] = (uint8_t)(s * 31 + d * 17 + k);
	assert_int_equal(sa_set_init(&f->a, "a", &hooks, f), 0);
	assert_int_equal(sa_set_init(&f->b, "b", &hooks, f), 0);
	for (unsigned s = 0; s < N_SAS; s++) {
		install(&f->a, s, true);
		install(&f->b, s, false);
		struct esp_sa_params p = params(s, 0xa000u + s, true, keymat[s][0]);
		assert_int_equal(esp_sa_init(&f->ref[s], &p), 0);
	}
	f->w = workers_new(4);
	assert_non_null(f->w);
	esp_batch_init_seal(&f->sealing, &f->a, on_sealed, f);
	esp_batch_init_open(&f->opening, &f->b, true, on_opened, f);
	esp_batch_set_workers(&f->sealing, f->w);
	esp_batch_set_workers(&f->opening, f->w);
	memset(&stats, 0, sizeof(stats));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	got_clear(&f->sealed);
	got_clear(&f->opened);
	workers_free(f->w);
	sa_set_free(&f->a);
	sa_set_free(&f->b);
	for (unsigned s = 0; s < N_SAS; s++)
		esp_sa_destroy(&f->ref[s]);
	esp_batch_wipe(&f->sealing);
	free(f);
	return 0;
}

/* n packets over the SAs in turn, sizes 60..1499: half referenced, a quarter placed, a quarter in two parts. */
static void seal_all(struct fix *f, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned s = i % N_SAS;
		make_pkt(f, i, s, 60 + (i * 373) % 1440);
		struct sa_set_sa *sa = sa_of(&f->a, s);
		if (i % 4 == 2) { /* headers written into the batch, the rest read where it lies */
			uint8_t *at = esp_batch_seal_place(&f->sealing, NULL, f->pkt_len[i]);
			assert_non_null(at);
			memcpy(at, f->pkts[i], 40);
			esp_batch_seal_placed_apart(&f->sealing, sa, at, 40, f->pkts[i] + 40, f->pkt_len[i] - 40);
		} else if (i % 2) {
			esp_batch_seal(&f->sealing, sa, f->pkts[i], f->pkt_len[i]);
		} else {
			uint8_t *at = esp_batch_seal_place(&f->sealing, i % 3 ? sa : NULL, f->pkt_len[i]);
			assert_non_null(at);
			memcpy(at, f->pkts[i], f->pkt_len[i]);
			esp_batch_seal_placed(&f->sealing, sa, at, f->pkt_len[i]);
		}
	}
	esp_batch_flush(&f->sealing);
}

static void test_seal_like_one_sa(void **state)
{
	struct fix *f = *state;
	uint8_t want[1600];

	seal_all(f, 300); /* more than ESP_BATCH_MAX: the batch flushes itself on the way */
	assert_int_equal(f->sealed.n, 300);
	for (unsigned i = 0; i < 300; i++) {
		unsigned s = i % N_SAS;
		ssize_t n = esp_encap(&f->ref[s], f->pkts[i], f->pkt_len[i], want, sizeof(want));
		assert_true(n > 0);
		assert_int_equal(f->sealed.spi[i], 0xa000u + s);
		assert_int_equal(f->sealed.len[i], n);
		assert_memory_equal(f->sealed.data[i], want, (size_t)n);
	}
	assert_int_equal(stats.esp.packets_out, 300);
	assert_true(stats.esp.shared_batches >= 2);
}

static void test_open_in_order(void **state)
{
	struct fix *f = *state;

	seal_all(f, 300);
	for (unsigned i = 0; i < 300; i++)
		esp_batch_open(&f->opening, f->sealed.data[i], (size_t)f->sealed.len[i]);
	esp_batch_flush(&f->opening);
	assert_int_equal(f->opened.n, 300);
	for (unsigned i = 0; i < 300; i++) {
		assert_int_equal(f->opened.len[i], f->pkt_len[i]);
		assert_memory_equal(f->opened.data[i], f->pkts[i], f->pkt_len[i]);
	}
	assert_int_equal(stats.esp.packets_in, 300);
	assert_int_equal(stats.esp.replay_drops + stats.esp.auth_failures + stats.esp.malformed, 0);
}

/* Drops inside one batch leave the packets around them alone. */
static void test_bad_packets_in_a_batch(void **state)
{
	struct fix *f = *state;
	uint8_t forged[1600], unknown[1600];

	seal_all(f, 12);
	memcpy(forged, f->sealed.data[4], (size_t)f->sealed.len[4]);
	forged[f->sealed.len[4] - 1] ^= 1; /* the ICV */
	memcpy(unknown, f->sealed.data[5], (size_t)f->sealed.len[5]);
	unknown[3] ^= 0x40; /* an SPI nobody has */

	for (unsigned i = 0; i < 12; i++) {
		switch (i) {
		case 3: /* twice in one batch: the second is a replay, found after both were opened */
			esp_batch_open(&f->opening, f->sealed.data[3], (size_t)f->sealed.len[3]);
			esp_batch_open(&f->opening, f->sealed.data[3], (size_t)f->sealed.len[3]);
			break;
		case 4:
			esp_batch_open(&f->opening, forged, (size_t)f->sealed.len[4]);
			break;
		case 5:
			esp_batch_open(&f->opening, unknown, (size_t)f->sealed.len[5]);
			esp_batch_open(&f->opening, f->sealed.data[5], 7); /* shorter than an ESP header */
			break;
		default:
			esp_batch_open(&f->opening, f->sealed.data[i], (size_t)f->sealed.len[i]);
		}
	}
	esp_batch_flush(&f->opening);
	assert_int_equal(f->opened.n, 10);
	for (unsigned i = 0, k = 0; i < 12; i++) {
		if (i == 4 || i == 5)
			continue;
		assert_int_equal(f->opened.len[k], f->pkt_len[i]);
		assert_memory_equal(f->opened.data[k], f->pkts[i], f->pkt_len[i]);
		k++;
	}
	assert_int_equal(stats.esp.replay_drops, 1);
	assert_int_equal(stats.esp.auth_failures, 1);
	assert_int_equal(stats.esp.unknown_spi, 1);
	assert_int_equal(stats.esp.malformed, 1);
	assert_int_equal(stats.esp.packets_in, 10);
	/* The forged packet's number is still free: the real one opens after the batch. */
	esp_batch_open(&f->opening, f->sealed.data[4], (size_t)f->sealed.len[4]);
	esp_batch_flush(&f->opening);
	assert_int_equal(f->opened.n, 11);
	assert_memory_equal(f->opened.data[10], f->pkts[4], f->pkt_len[4]);
}

/* An SA out of sequence numbers is reported as the packet is added, and takes no room. */
static void test_exhausted_now(void **state)
{
	struct fix *f = *state;
	struct sa_set_sa *sa = sa_of(&f->a, 0);

	make_pkt(f, 0, 0, 100);
	esp_sa_set_seq_for_test(&sa->out, sa->out.seq_max);
	esp_batch_seal(&f->sealing, sa, f->pkts[0], 100);
	assert_int_equal(f->sealed.n, 1);
	assert_int_equal(f->sealed.len[0], -EKEYEXPIRED);
	assert_int_equal(f->sealing.n, 0);
	assert_int_equal(f->sealing.used, 0);
	esp_batch_flush(&f->sealing);
	assert_int_equal(f->sealed.n, 1);
}

struct told {
	unsigned n;
	uint32_t spi[8];
	bool ok; /* what the listener answers */
};

static bool on_soft_life(void *arg, uint32_t spi_in)
{
	struct told *t = arg;
	assert_true(t->n < 8);
	t->spi[t->n++] = spi_in;
	return t->ok;
}

static void seal_one(struct fix *f, struct sa_set_sa *sa)
{
	make_pkt(f, 0, 0, 100);
	esp_batch_seal(&f->sealing, sa, f->pkts[0], 100);
	esp_batch_flush(&f->sealing);
	assert_true(f->sealed.len[f->sealed.n - 1] > 0);
}

/* Sequence numbers near their end: the SA is told once, at the packet that crosses seq_soft. */
static void test_soft_life_sequence(void **state)
{
	struct fix *f = *state;
	struct sa_set_sa *sa = sa_of(&f->a, 0);
	struct told t = { .ok = false };

	sa_set_soft_life_fn(&f->a, on_soft_life, &t);
	esp_sa_set_seq_for_test(&sa->out, sa->out.seq_soft - 2);
	seal_one(f, sa); /* seq_soft - 1 */
	assert_int_equal(t.n, 0);
	seal_one(f, sa); /* seq_soft: told, but the listener could not take it */
	assert_int_equal(t.n, 1);
	assert_int_equal(t.spi[0], 0xb000u);
	t.ok = true;
	seal_one(f, sa); /* asked again */
	assert_int_equal(t.n, 2);
	assert_int_equal(t.spi[1], 0xb000u);
	seal_one(f, sa);
	seal_one(f, sa);
	assert_int_equal(t.n, 2);
	assert_int_equal(f->sealed.n, 5);
	/* The other SAs are far from it. */
	seal_one(f, sa_of(&f->a, 1));
	assert_int_equal(t.n, 2);
}

/* Bytes opened past the inbound SA's soft count: told once with the SA's inbound SPI. */
static void test_soft_life_bytes_in(void **state)
{
	struct fix *f = *state;
	struct told t = { .ok = true };
	struct sa_set_sa *in = NULL;

	for (unsigned k = 0; k < f->b.n; k++)
		if (f->b.sas[k]->in.spi == 0xa000u)
			in = f->b.sas[k];
	assert_non_null(in);
	in->in.life_bytes_soft = 250; /* the third 100-byte packet crosses it */
	sa_set_soft_life_fn(&f->b, on_soft_life, &t);
	for (unsigned i = 0; i < 5; i++)
		seal_one(f, sa_of(&f->a, 0));
	for (unsigned i = 0; i < 5; i++) {
		esp_batch_open(&f->opening, f->sealed.data[i], (size_t)f->sealed.len[i]);
		esp_batch_flush(&f->opening);
		assert_int_equal(t.n, i >= 2 ? 1 : 0);
	}
	assert_int_equal(t.spi[0], 0xa000u);
	assert_int_equal(f->opened.n, 5);
}

/* Without workers (one thread) a batch does the same, all on this thread. */
static void test_no_workers(void **state)
{
	struct fix *f = *state;

	esp_batch_set_workers(&f->sealing, NULL);
	esp_batch_set_workers(&f->opening, NULL);
	seal_all(f, 50);
	for (unsigned i = 0; i < 50; i++)
		esp_batch_open(&f->opening, f->sealed.data[i], (size_t)f->sealed.len[i]);
	esp_batch_flush(&f->opening);
	assert_int_equal(f->opened.n, 50);
	for (unsigned i = 0; i < 50; i++)
		assert_memory_equal(f->opened.data[i], f->pkts[i], f->pkt_len[i]);
	assert_int_equal(stats.esp.shared_batches, 0);
	assert_int_equal(stats.esp.worker_packets, 0);
}

/* ---- holding sealed packets for a consumer that keeps pointers (esp_batch_hold) ---- */

#define LEAD 2

static struct {
	const uint8_t *p;
	size_t n;
	uint64_t sum;
} held[2048];
static unsigned n_held, releases;

/* Every packet reported since the last release is still what it was when reported. */
static void check_held(void)
{
	for (unsigned i = 0; i < n_held; i++)
		assert_true(fnv1a(FNV1A_INIT, held[i].p, held[i].n) == held[i].sum);
	n_held = 0;
}

static void on_sealed_held(void *arg, struct sa_set_sa *sa, const uint8_t *esp, ssize_t n)
{
	(void)arg, (void)sa;
	assert_true(n > 0 && n_held < 2048);
	/* Packed: each right after the one before and its lead, which is the consumer's (a stream writes its
	 * frame header there) and overlaps no other packet. */
	if (n_held)
		assert_ptr_equal(esp, held[n_held - 1].p + held[n_held - 1].n + LEAD);
	memset((uint8_t *)esp - LEAD, 0xa5, LEAD);
	held[n_held].p = esp;
	held[n_held].n = (size_t)n;
	held[n_held].sum = fnv1a(FNV1A_INIT, esp, (size_t)n);
	n_held++;
}

static void on_release(void *arg)
{
	(void)arg;
	check_held();
	releases++;
}

/* 1500 packets, 1.2 MB sealed, with a flush every 100: the arena fills and the consumer lets go twice or
 * more. Every packet is referenced, or placed for its SA: all are packed. */
static void hold_round(struct fix *f, struct workers *w)
{
	n_held = releases = 0;
	esp_batch_init_seal(&f->sealing, &f->a, on_sealed_held, f);
	esp_batch_set_workers(&f->sealing, w);
	esp_batch_hold(&f->sealing, on_release, LEAD);
	for (unsigned i = 0; i < 1500; i++) {
		unsigned s = i % N_SAS, k = i % MAX_PKTS;
		struct sa_set_sa *sa = sa_of(&f->a, s);
		make_pkt(f, k, s, 60 + (i * 373) % 1440);
		if (i % 2) {
			esp_batch_seal(&f->sealing, sa, f->pkts[k], f->pkt_len[k]);
		} else {
			uint8_t *at = esp_batch_seal_place(&f->sealing, sa, f->pkt_len[k]);
			assert_non_null(at);
			memcpy(at, f->pkts[k], f->pkt_len[k]);
			esp_batch_seal_placed(&f->sealing, sa, at, f->pkt_len[k]);
		}
		if (i % 100 == 99)
			esp_batch_flush(&f->sealing); /* a flush does not give the room back */
	}
	esp_batch_release(&f->sealing);
	check_held();
	assert_true(releases >= 2);
	assert_int_equal(f->sealing.used, 0);
	assert_int_equal(stats.esp.packets_out, 1500);
	memset(&stats, 0, sizeof(stats));
}

/* Held packets stay as reported until the consumer lets go, with workers and without. */
static void test_hold_until_release(void **state)
{
	struct fix *f = *state;

	hold_round(f, f->w);
	hold_round(f, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_seal_like_one_sa, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_packets_in_a_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exhausted_now, setup, teardown),
		cmocka_unit_test_setup_teardown(test_soft_life_sequence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_soft_life_bytes_in, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_workers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_until_release, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
