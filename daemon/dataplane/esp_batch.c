/* A batch of packets whose crypto the dataplane's workers share (see esp_batch.h). */
#include <errno.h>
#include <string.h>
#include <openssl/crypto.h>

#include "iketcp/stats.h"
#include "dataplane/esp_batch.h"
#include "workers.h"

static void init(struct esp_batch *b, struct sa_set *set, void *arg)
{
	b->set = set;
	b->arg = arg;
	b->workers = NULL;
	b->n = b->n_parallel = 0;
	b->used = 0;
	b->release = NULL;
	b->lead = 0;
}

void esp_batch_init_seal(struct esp_batch *b, struct sa_set *set, esp_batch_sealed_fn sealed, void *arg)
{
	init(b, set, arg);
	b->opening = false;
	b->sealed = sealed;
}

void esp_batch_init_open(struct esp_batch *b, struct sa_set *set, bool whole, esp_batch_opened_fn opened,
			 void *arg)
{
	init(b, set, arg);
	b->opening = true;
	b->whole = whole;
	b->opened = opened;
}

void esp_batch_set_workers(struct esp_batch *b, struct workers *w)
{
	b->workers = w;
}

void esp_batch_hold(struct esp_batch *b, void (*release)(void *arg), size_t lead)
{
	esp_batch_release(b);
	b->release = release;
	b->lead = release ? lead : 0;
}

void esp_batch_release(struct esp_batch *b)
{
	esp_batch_flush(b);
	b->used = 0;
}

/*
 * Each packet on its own cache lines (workers write them), unless they are
 * packed (esp_batch_hold): then a worker may share a line with the next
 * packet's, rare and harmless.
 */
static size_t slot_size(const struct esp_batch *b, size_t bytes)
{
	return b->release ? bytes : (bytes + 63) & ~(size_t)63;
}

/* Room for one more packet of up to bytes, flushing first if needed; where it goes (after the lead). */
static uint8_t *reserve(struct esp_batch *b, size_t bytes)
{
	bytes = slot_size(b, b->lead + bytes);
	if (b->n == ESP_BATCH_MAX || ESP_BATCH_ARENA - b->used < bytes)
		esp_batch_flush(b);
	if (ESP_BATCH_ARENA - b->used < bytes && b->release) { /* held packets: the consumer lets go first */
		b->release(b->arg);
		b->used = 0;
	}
	if (ESP_BATCH_ARENA - b->used < bytes) /* not expected: the arena holds several 64 KiB packets */
		return NULL;
	return b->arena + b->used + b->lead; /* taken when a packet is added (add_seal, esp_batch_open) */
}

/*
 * With nobody to share the crypto with, each packet is sealed or opened as it
 * is added and reported at once: nothing waits, the one slot in use stays in
 * the cache, and ESP is opened straight from the caller's buffer.
 */
static bool immediate(const struct esp_batch *b)
{
	return workers_threads(b->workers) < 2;
}

static void report_sealed(struct esp_batch *b, struct esp_batch_item *it);
static void report_opened(struct esp_batch *b, struct esp_batch_item *it);

/* A clear packet in n parts, sealed to out (cap bytes, reserved at b->used) at the flush. */
static void add_seal(struct esp_batch *b, struct sa_set_sa *sa, const struct iovec *ip, unsigned n, uint8_t *out,
		     size_t cap)
{
	struct esp_batch_item *it = &b->items[b->n];
	int err = esp_encap_prepare_parts(&sa->out, ip, n, out, cap, &it->seal);

	if (err) {
		b->sealed(b->arg, sa, NULL, err);
		return;
	}
	it->sa = sa;
	size_t end = slot_size(b, (size_t)(out + esp_encap_len(&sa->out, it->seal.ip_len) - b->arena));
	if (immediate(b)) {
		it->n = esp_encap_seal(&it->seal);
		if (b->release)
			b->used = end; /* held: the next packet goes after it */
		report_sealed(b, it);
		return;
	}
	b->used = end;
	b->n_parallel += esp_sa_parallel(&sa->out);
	b->n++;
}

void esp_batch_seal(struct esp_batch *b, struct sa_set_sa *sa, const uint8_t *ip, size_t len)
{
	size_t need = esp_encap_len(&sa->out, len);
	uint8_t *out = reserve(b, need); /* may flush */

	if (!out) {
		b->sealed(b->arg, sa, NULL, -ENOSPC);
		return;
	}
	add_seal(b, sa, &(struct iovec){ (void *)ip, len }, 1, out, need);
}

/* Where a placed packet starts: room before it for the longest ESP header and IV. */
#define PLACE_OFFSET (ESP_HDR_LEN + ESP_MAX_IV_LEN)

uint8_t *esp_batch_seal_place(struct esp_batch *b, const struct sa_set_sa *sa, size_t cap)
{
	uint8_t *slot = reserve(b, PLACE_OFFSET + cap + ESP_MAX_OVERHEAD); /* may flush */

	if (!slot)
		return NULL;
	return slot + (sa ? esp_payload_offset(&sa->out) : PLACE_OFFSET); /* taken by esp_batch_seal_placed */
}

void esp_batch_seal_placed(struct esp_batch *b, struct sa_set_sa *sa, uint8_t *ip, size_t len)
{
	esp_batch_seal_placed_apart(b, sa, ip, len, NULL, 0);
}

void esp_batch_seal_placed_apart(struct esp_batch *b, struct sa_set_sa *sa, uint8_t *ip, size_t len,
				 const uint8_t *rest, size_t rest_len)
{
	/* In place: the ESP header and IV go right before the packet (a shorter IV leaves a gap). */
	uint8_t *out = ip - esp_payload_offset(&sa->out);
	struct iovec parts[2] = { { ip, len }, { (void *)rest, rest_len } };

	add_seal(b, sa, parts, rest_len ? 2 : 1, out, (size_t)(b->arena + ESP_BATCH_ARENA - out));
}

void esp_batch_open(struct esp_batch *b, const uint8_t *esp, size_t len)
{
	uint8_t *slot = reserve(b, len); /* may flush: the item is taken after */
	struct esp_batch_item *it = &b->items[b->n];
	ssize_t r;

	if (!slot) {
		STAT_INC(esp, malformed);
		return;
	}
	/* Opened from where it lies into the slot: now with one thread, else at the flush. */
	r = sa_set_open_prepare(b->set, esp, len, slot, len, &it->open);
	if (r < 0)
		b->opened(b->arg, NULL, r, NULL);
	if (r != 1)
		return;
	if (immediate(b)) {
		esp_decap_open(&it->open);
		report_opened(b, it);
		return;
	}
	b->used += slot_size(b, b->lead + len);
	b->n_parallel += esp_sa_parallel(it->open.sa);
	b->n++;
}

/* ---- the flush ------------------------------------------------------------ */

static void crypt_item(struct esp_batch *b, struct esp_batch_item *it)
{
	if (b->opening)
		esp_decap_open(&it->open);
	else
		it->n = esp_encap_seal(&it->seal);
}

static bool item_parallel(const struct esp_batch *b, const struct esp_batch_item *it)
{
	return esp_sa_parallel(b->opening ? it->open.sa : it->seal.sa);
}

/* A worker's share: only SAs whose keys may be read by several threads at once. */
static void crypt_parallel(void *arg, unsigned i)
{
	struct esp_batch *b = arg;

	if (item_parallel(b, &b->items[i]))
		crypt_item(b, &b->items[i]);
}

static void report_sealed(struct esp_batch *b, struct esp_batch_item *it)
{
	if (it->n < 0) {
		log_rl(&b->set->rl, LOG_LVL_DEBUG, "%s: SPI %08x: cannot seal %zu bytes: %s", b->set->name,
		       it->sa->out.spi, it->seal.ip_len, strerror((int)-it->n));
		b->sealed(b->arg, it->sa, NULL, it->n);
		return;
	}
	STAT_INC(esp, packets_out);
	sa_set_check_life(b->set, it->sa);
	b->sealed(b->arg, it->sa, it->seal.out, it->n);
}

static void report_opened(struct esp_batch *b, struct esp_batch_item *it)
{
	struct ip_addrs a;
	size_t ip_len;
	ssize_t n = sa_set_open_finish(b->set, &it->open, &a, b->whole ? &ip_len : NULL);

	if (n != 0)
		b->opened(b->arg, it->open.out, n, n > 0 ? &a : NULL);
}

void esp_batch_flush(struct esp_batch *b)
{
	unsigned n = b->n;

	if (!n)
		return;
	/* Reports may add to another batch, never to this one. */
	if (b->workers && b->n_parallel >= ESP_BATCH_SHARE_MIN) {
		unsigned long before = workers_helped(b->workers);
		workers_run(b->workers, n, crypt_parallel, b);
		STAT_INC(esp, shared_batches);
		STAT_ADD(esp, worker_packets, workers_helped(b->workers) - before);
		/* The rest (OpenSSL's SAs) here; usually there is none. */
		for (unsigned i = 0; b->n_parallel < n && i < n; i++)
			if (!item_parallel(b, &b->items[i]))
				crypt_item(b, &b->items[i]);
	} else {
		for (unsigned i = 0; i < n; i++)
			crypt_item(b, &b->items[i]);
	}
	for (unsigned i = 0; i < n; i++) {
		if (b->opening)
			report_opened(b, &b->items[i]);
		else
			report_sealed(b, &b->items[i]);
	}
	b->n = b->n_parallel = 0;
	if (!b->release)
		b->used = 0;
}

void esp_batch_wipe(struct esp_batch *b)
{
	OPENSSL_cleanse(b->arena, sizeof(b->arena));
	b->n = b->n_parallel = 0;
	b->used = 0;
}
