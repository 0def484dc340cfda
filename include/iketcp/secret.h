/*
 * Key material in one type: heap-allocated, wiped with OPENSSL_cleanse when
 * freed. Every secret (SKEYSEED, SK_*, g^ir, private keys exported for tests)
 * lives in a struct secret so there is exactly one place that forgets it.
 */
#ifndef IKETCP_SECRET_H
#define IKETCP_SECRET_H

#include <stddef.h>
#include <stdint.h>
#include "compiler.h"

struct secret {
	uint8_t *p;
	size_t len;
};

/* A zero-filled secret of len bytes (len may be 0); NULL if out of memory. */
must_check struct secret *secret_new(size_t len);
/* A secret holding a copy of p[0..len). */
must_check struct secret *secret_from(const void *p, size_t len);
must_check struct secret *secret_dup(const struct secret *s);
/* a | b, a fresh secret; either may be NULL (treated as empty). */
must_check struct secret *secret_concat(const struct secret *a, const struct secret *b);
/* Wipes and frees; NULL is a no-op. */
void secret_free(struct secret *s);

#endif
