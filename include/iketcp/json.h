/* A small JSON writer into a growing buffer: for iketcpctl's --json output. */
#ifndef IKETCP_JSON_H
#define IKETCP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jw {
	char *buf;
	size_t len, cap;
	bool oom;
	bool need_comma;
};

void jw_init(struct jw *w);
void jw_free(struct jw *w);
void jw_obj_open(struct jw *w, const char *key);   /* key NULL inside arrays / at top */
void jw_obj_close(struct jw *w);
void jw_arr_open(struct jw *w, const char *key);
void jw_arr_close(struct jw *w);
void jw_str(struct jw *w, const char *key, const char *val);
void jw_u64(struct jw *w, const char *key, uint64_t val);
void jw_i64(struct jw *w, const char *key, int64_t val);
void jw_bool(struct jw *w, const char *key, bool val);
void jw_null(struct jw *w, const char *key);
/* Append formatted text as is: for the human-readable replies that share the buffer. */
void jw_printf(struct jw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
