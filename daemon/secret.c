/* struct secret: one allocation for header and bytes, wiped before it is freed. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "iketcp/secret.h"

struct secret *secret_new(size_t len)
{
	struct secret *s;

	if (len > SIZE_MAX - sizeof(*s))
		return NULL;
	s = calloc(1, sizeof(*s) + len);
	if (!s)
		return NULL;
	s->p = (uint8_t *)(s + 1);
	s->len = len;
	return s;
}

struct secret *secret_from(const void *p, size_t len)
{
	struct secret *s = secret_new(len);

	if (s && len)
		memcpy(s->p, p, len);
	return s;
}

struct secret *secret_dup(const struct secret *s)
{
	return s ? secret_from(s->p, s->len) : NULL;
}

struct secret *secret_concat(const struct secret *a, const struct secret *b)
{
	size_t alen = a ? a->len : 0, blen = b ? b->len : 0;
	struct secret *s;

	if (blen > SIZE_MAX - sizeof(*s) || alen > SIZE_MAX - sizeof(*s) - blen)
		return NULL;
	s = secret_new(alen + blen);
	if (!s)
		return NULL;
	if (alen)
		memcpy(s->p, a->p, alen);
	if (blen)
		memcpy(s->p + alen, b->p, blen);
	return s;
}

void secret_free(struct secret *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s->p, s->len);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}
