/*
 * The bounded reader and writer: the only code that indexes untrusted bytes.
 *
 * Reader: every read checks `n > len - off` (off <= len always holds, so the
 * subtraction cannot wrap) and a failed read leaves the cursor where it was.
 * Length fields become sub-readers so a decoder sees only its own bytes.
 * Writer: an overflow is sticky and checked once, before the bytes are used.
 */
#ifndef IKETCP_BUF_H
#define IKETCP_BUF_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "compiler.h"

struct rd {
	const uint8_t *p;
	size_t len;
	size_t off;
};

static inline struct rd rd_init(const void *p, size_t len)
{
	return (struct rd){ .p = p, .len = len, .off = 0 };
}

static inline size_t rd_left(const struct rd *r) { return r->len - r->off; }
static inline bool rd_empty(const struct rd *r) { return r->off == r->len; }
static inline const uint8_t *rd_ptr(const struct rd *r) { return r->p + r->off; }

static inline must_check bool rd_has(const struct rd *r, size_t n)
{
	return n <= r->len - r->off;
}

static inline must_check int rd_skip(struct rd *r, size_t n)
{
	if (!rd_has(r, n))
		return -1;
	r->off += n;
	return 0;
}

static inline must_check int rd_u8(struct rd *r, uint8_t *v)
{
	if (!rd_has(r, 1))
		return -1;
	*v = r->p[r->off++];
	return 0;
}

static inline must_check int rd_be16(struct rd *r, uint16_t *v)
{
	if (!rd_has(r, 2))
		return -1;
	*v = (uint16_t)(r->p[r->off] << 8 | r->p[r->off + 1]);
	r->off += 2;
	return 0;
}

static inline must_check int rd_be32(struct rd *r, uint32_t *v)
{
	if (!rd_has(r, 4))
		return -1;
	const uint8_t *b = r->p + r->off;
	*v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	r->off += 4;
	return 0;
}

static inline must_check int rd_be64(struct rd *r, uint64_t *v)
{
	if (!rd_has(r, 8))
		return -1;
	uint64_t x = 0;
	for (int i = 0; i < 8; i++)
		x = x << 8 | r->p[r->off + i];
	r->off += 8;
	*v = x;
	return 0;
}

static inline must_check int rd_copy(struct rd *r, void *dst, size_t n)
{
	if (!rd_has(r, n))
		return -1;
	memcpy(dst, r->p + r->off, n);
	r->off += n;
	return 0;
}

/* Borrow n bytes without copying; the view lives as long as the buffer. */
static inline must_check int rd_view(struct rd *r, const uint8_t **v, size_t n)
{
	if (!rd_has(r, n))
		return -1;
	*v = r->p + r->off;
	r->off += n;
	return 0;
}

/* Split off the next n bytes as their own reader. */
static inline must_check int rd_sub(struct rd *r, struct rd *sub, size_t n)
{
	const uint8_t *v;
	if (rd_view(r, &v, n))
		return -1;
	*sub = rd_init(v, n);
	return 0;
}

/* Peek without consuming. */
static inline must_check int rd_peek_be16(const struct rd *r, size_t at, uint16_t *v)
{
	if (at > rd_left(r) || 2 > rd_left(r) - at)
		return -1;
	const uint8_t *b = r->p + r->off + at;
	*v = (uint16_t)(b[0] << 8 | b[1]);
	return 0;
}

struct wr {
	uint8_t *p;
	size_t cap;
	size_t off;
	bool overflow;
};

static inline struct wr wr_init(void *p, size_t cap)
{
	return (struct wr){ .p = p, .cap = cap, .off = 0, .overflow = false };
}

static inline bool wr_ok(const struct wr *w) { return !w->overflow; }

/* Reserve n bytes; NULL (and a sticky overflow) when they do not fit. */
static inline uint8_t *wr_reserve(struct wr *w, size_t n)
{
	if (w->overflow || n > w->cap - w->off) {
		w->overflow = true;
		return NULL;
	}
	uint8_t *at = w->p + w->off;
	w->off += n;
	return at;
}

static inline void wr_u8(struct wr *w, uint8_t v)
{
	uint8_t *b = wr_reserve(w, 1);
	if (b)
		b[0] = v;
}

static inline void wr_put_be16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static inline void wr_put_be32(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}

static inline void wr_be16(struct wr *w, uint16_t v)
{
	uint8_t *b = wr_reserve(w, 2);
	if (b)
		wr_put_be16(b, v);
}

static inline void wr_be32(struct wr *w, uint32_t v)
{
	uint8_t *b = wr_reserve(w, 4);
	if (b)
		wr_put_be32(b, v);
}

static inline void wr_be64(struct wr *w, uint64_t v)
{
	wr_be32(w, (uint32_t)(v >> 32));
	wr_be32(w, (uint32_t)v);
}

static inline void wr_bytes(struct wr *w, const void *src, size_t n)
{
	uint8_t *b = wr_reserve(w, n);
	if (b && n)
		memcpy(b, src, n);
}

/* A 16-bit length hole: remember its offset, fill it once the body is written. */
static inline size_t wr_hole16(struct wr *w)
{
	size_t at = w->off;
	wr_be16(w, 0);
	return at;
}

static inline void wr_fill16(struct wr *w, size_t at, uint16_t v)
{
	if (!w->overflow && at + 2 <= w->off)
		wr_put_be16(w->p + at, v);
}

static inline void wr_fill32(struct wr *w, size_t at, uint32_t v)
{
	if (!w->overflow && at + 4 <= w->off)
		wr_put_be32(w->p + at, v);
}

#endif
