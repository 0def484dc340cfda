/* Shared between the lexer, parser, schema and checks of daemon/conf; not for the rest of the daemon. */
#ifndef IKETCP_CONF_INTERNAL_H
#define IKETCP_CONF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iketcp/compiler.h"
#include "conf/conf.h"

#define CONF_MAX_ERRORS 200
#define LEX_MAX_TOKENS 64
#define LEX_MAX_TOKEN_LEN 4095

/* Where messages go: "FILE:LINE: message", collected, capped at CONF_MAX_ERRORS. */
struct conf_sink {
	const char *file;
	struct conf_diag *diag; /* NULL: count only */
	size_t n_errors;
	bool oom;
};
void conf_error(struct conf_sink *s, unsigned line, const char *fmt, ...) printf_like(3, 4);

/* ---- lexer: one statement (a line's words) at a time ---- */
struct lex_tok {
	const char *s; /* NUL-terminated, never contains NUL */
	size_t len;
	bool quoted;
};
struct lex_stmt {
	unsigned line;
	size_t n;
	struct lex_tok tok[LEX_MAX_TOKENS];
};
struct lexer {
	const char *p;
	size_t len, off;
	unsigned line;
	char *buf; /* decoded tokens, len + 1 bytes: they never outgrow the text */
	size_t buf_len;
	struct conf_sink *sink;
};
int lex_init(struct lexer *lx, const char *text, size_t len, struct conf_sink *sink) must_check;
void lex_fini(struct lexer *lx);
/* 1 and a statement, 0 at end of input. Lines with errors are reported and skipped. */
int lex_next(struct lexer *lx, struct lex_stmt *st);

/* ---- schema: every section and key, with type, range and default ---- */
enum conf_sec { SEC_SETTINGS, SEC_GLOBAL, SEC_PHASE1, SEC_PHASE2, SEC__N };

struct conf_section_def {
	const char *name; /* "vpn ipsec phase1-interface" */
	bool table;
};
extern const struct conf_section_def conf_sections[SEC__N];

#define CONF_MAX_KEYS 64 /* per section; _Static_assert'ed in schema.c */
struct conf_key;
/* Key of a section by name, and its index within the section, or NULL. */
const struct conf_key *schema_key(enum conf_sec sec, const char *name, size_t *idx);
/* The section's key name closest to name (edit distance). */
const char *schema_suggest_key(enum conf_sec sec, const char *name);
/* 0 or -EINVAL (reported; the object is unchanged) or -ENOMEM. */
int schema_set(const struct conf_key *k, void *obj, const struct lex_tok *v, size_t nv,
	       struct conf_sink *s, unsigned line);
/* Every key of the section to its default (strings and lists freed). */
int schema_defaults(enum conf_sec sec, void *obj) must_check;
int schema_unset(const struct conf_key *k, void *obj) must_check;
/* Free what the section's keys own in obj (not obj itself). */
void schema_release(enum conf_sec sec, void *obj);

/* Closest candidate to word by edit distance; NULL only for an empty list. */
const char *conf_closest(const char *word, const char *const *cands, size_t n);
/* The same, or NULL when even the closest is too far to be a typo. */
const char *conf_closest_near(const char *word, const char *const *cands, size_t n);

/* ---- parser and checks ---- */
#define CONF_LINE_FAILED 0x80000000u /* or'ed into a line whose set was rejected */
/* Line where each key of each object was last set (0 = never), for later checks. */
struct conf_lines {
	unsigned settings[CONF_MAX_KEYS], global[CONF_MAX_KEYS];
	unsigned (*phase1)[CONF_MAX_KEYS], (*phase2)[CONF_MAX_KEYS];
};
int conf_parse(struct config *conf, const char *text, size_t len, struct conf_sink *s,
	       struct conf_lines *lines);
void conf_check(struct config *conf, const struct conf_lines *lines, struct conf_sink *s);
/* Line where sec's key name was set in object idx, 0 if never. */
unsigned conf_line_of(const struct conf_lines *lines, enum conf_sec sec, size_t idx,
		      const char *key);

#endif
