/*
 * SK payload opening (RFC 7296 section 3.14) on hostile bytes, for every IKE
 * suite (first byte), with fixed keys: never a crash, and never plaintext
 * from bytes that fail the ICV. The second byte splits AAD from the sealed part.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ike/crypto.h"
#include "ike/suite.h"
#include "iketcp/secret.h"

static const char *const suites[] = {
	"aes128gcm-prfsha256", "aes256gcm-prfsha384", "chacha20poly1305-prfsha256",
	"aes128-sha256", "aes256-sha256", "aes256-sha512",
};

static struct secret *key(size_t len, uint8_t fill)
{
	struct secret *s = secret_new(len);
	if (s)
		memset(s->p, fill, len);
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t plain[70000];
	struct ike_suite suite;

	if (size < 2)
		return 0;
	if (suite_from_fortios_ike(suites[data[0] % (sizeof(suites) / sizeof(suites[0]))], &suite))
		abort();
	size_t aad_len = data[1] % 40;
	data += 2;
	size -= 2;
	if (aad_len > size)
		aad_len = size;

	struct secret *enc = key(ike_suite_sk_e_len(&suite), 0x11);
	struct secret *integ = suite.integ ? key(ike_suite_sk_a_len(&suite), 0x22) : NULL;
	ssize_t n = sk_open(&suite, enc, integ, data, aad_len, data + aad_len, size - aad_len, plain,
			    sizeof(plain));
	/* Random bytes should not authenticate; if they ever do, the length must make sense. */
	if (n > 0 && (size_t)n > size)
		abort();
	secret_free(enc);
	secret_free(integ);
	return 0;
}
