/* JSON writer: escapes strings, tracks commas; an allocation failure is sticky. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iketcp/json.h"

void jw_init(struct jw *w) { memset(w, 0, sizeof(*w)); }

void jw_free(struct jw *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

static void put(struct jw *w, const char *s, size_t n)
{
	if (w->oom)
		return;
	if (w->len + n + 1 > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap < w->len + n + 1)
			cap *= 2;
		char *b = realloc(w->buf, cap);
		if (!b) {
			w->oom = true;
			return;
		}
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void puts_(struct jw *w, const char *s) { put(w, s, strlen(s)); }

static void put_string(struct jw *w, const char *s)
{
	put(w, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[8];
		switch (*p) {
		case '"': puts_(w, "\\\""); break;
		case '\\': puts_(w, "\\\\"); break;
		case '\n': puts_(w, "\\n"); break;
		case '\t': puts_(w, "\\t"); break;
		case '\r': puts_(w, "\\r"); break;
		default:
			if (*p < 0x20) {
				snprintf(esc, sizeof(esc), "\\u%04x", *p);
				puts_(w, esc);
			} else {
				put(w, (const char *)p, 1);
			}
		}
	}
	put(w, "\"", 1);
}

static void member(struct jw *w, const char *key)
{
	if (w->need_comma)
		put(w, ",", 1);
	if (key) {
		put_string(w, key);
		put(w, ":", 1);
	}
	w->need_comma = true;
}

void jw_obj_open(struct jw *w, const char *key)
{
	member(w, key);
	put(w, "{", 1);
	w->need_comma = false;
}

void jw_obj_close(struct jw *w)
{
	put(w, "}", 1);
	w->need_comma = true;
}

void jw_arr_open(struct jw *w, const char *key)
{
	member(w, key);
	put(w, "[", 1);
	w->need_comma = false;
}

void jw_arr_close(struct jw *w)
{
	put(w, "]", 1);
	w->need_comma = true;
}

void jw_str(struct jw *w, const char *key, const char *val)
{
	member(w, key);
	if (val)
		put_string(w, val);
	else
		puts_(w, "null");
}

void jw_u64(struct jw *w, const char *key, uint64_t val)
{
	char num[24];
	member(w, key);
	snprintf(num, sizeof(num), "%" PRIu64, val);
	puts_(w, num);
}

void jw_i64(struct jw *w, const char *key, int64_t val)
{
	char num[24];
	member(w, key);
	snprintf(num, sizeof(num), "%" PRId64, val);
	puts_(w, num);
}

void jw_bool(struct jw *w, const char *key, bool val)
{
	member(w, key);
	puts_(w, val ? "true" : "false");
}

void jw_null(struct jw *w, const char *key)
{
	member(w, key);
	puts_(w, "null");
}

void jw_printf(struct jw *w, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		put(w, small, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (!big) {
		w->oom = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	put(w, big, (size_t)n);
	free(big);
}
