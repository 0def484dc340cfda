/*
 * FortiOS CLI lexer: one statement a line, words or double-quoted strings
 * ("\"" and "\\" are the only escapes), "#" starts a comment where a word
 * could start. A line with a lexical error is reported once and skipped whole,
 * so a half-read statement never reaches the parser.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "conf/internal.h"

int lex_init(struct lexer *lx, const char *text, size_t len, struct conf_sink *sink)
{
	memset(lx, 0, sizeof(*lx));
	lx->buf = malloc(len + 1);
	if (!lx->buf)
		return -ENOMEM;
	lx->buf_len = len + 1;
	lx->p = text;
	lx->len = len;
	lx->sink = sink;
	/* A UTF-8 byte order mark some editors write is not a word. */
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		lx->off = 3;
	return 0;
}

void lex_fini(struct lexer *lx)
{
	if (lx->buf)
		OPENSSL_cleanse(lx->buf, lx->buf_len); /* it held the psksecret */
	free(lx->buf);
	lx->buf = NULL;
}

static bool is_blank(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* Bytes no configuration needs anywhere; NUL would also cut C strings short. */
static bool is_bad_ctl(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

static void bad_byte(struct lexer *lx, unsigned char c)
{
	if (c == 0)
		conf_error(lx->sink, lx->line, "NUL byte in line");
	else
		conf_error(lx->sink, lx->line, "invalid control character 0x%02x", c);
}

/* Lex [p, end) into st; false after reporting the line's first error. */
static bool lex_line(struct lexer *lx, const unsigned char *p, const unsigned char *end,
		     struct lex_stmt *st)
{
	char *out = lx->buf;

	while (p < end) {
		if (is_blank(*p)) {
			p++;
			continue;
		}
		if (*p == '#')
			break;
		if (st->n == LEX_MAX_TOKENS) {
			conf_error(lx->sink, lx->line, "too many words in one statement (at most %d)",
				   LEX_MAX_TOKENS);
			return false;
		}
		struct lex_tok *t = &st->tok[st->n];
		char *start = out;

		if (*p == '"') {
			p++;
			for (;;) {
				if (p == end) {
					conf_error(lx->sink, lx->line,
						   "unterminated string (missing closing '\"')");
					return false;
				}
				unsigned char c = *p++;

				if (c == '"')
					break;
				if (c == '\\') {
					if (p == end || (*p != '"' && *p != '\\')) {
						conf_error(lx->sink, lx->line,
							   "invalid escape in string (only \\\" and \\\\ are allowed)");
						return false;
					}
					c = *p++;
				} else if (is_bad_ctl(c)) {
					bad_byte(lx, c);
					return false;
				}
				*out++ = (char)c;
			}
			if (p < end && !is_blank(*p)) {
				conf_error(lx->sink, lx->line, "missing space after closing '\"'");
				return false;
			}
			t->quoted = true;
		} else {
			while (p < end && !is_blank(*p)) {
				unsigned char c = *p++;

				if (c == '"') {
					conf_error(lx->sink, lx->line,
						   "unexpected '\"' inside a word (quote the whole value)");
					return false;
				}
				if (is_bad_ctl(c)) {
					bad_byte(lx, c);
					return false;
				}
				if (c >= 0x80) {
					conf_error(lx->sink, lx->line,
						   "non-ASCII byte 0x%02x outside quotes", c);
					return false;
				}
				*out++ = (char)c;
			}
			t->quoted = false;
		}
		t->len = (size_t)(out - start);
		if (t->len > LEX_MAX_TOKEN_LEN) {
			conf_error(lx->sink, lx->line, "word too long (%zu bytes, at most %d)", t->len,
				   LEX_MAX_TOKEN_LEN);
			return false;
		}
		*out++ = '\0';
		t->s = start;
		st->n++;
	}
	return true;
}

int lex_next(struct lexer *lx, struct lex_stmt *st)
{
	while (lx->off < lx->len) {
		const unsigned char *p = (const unsigned char *)lx->p + lx->off;
		size_t left = lx->len - lx->off;
		const unsigned char *nl = memchr(p, '\n', left);
		const unsigned char *end = nl ? nl : p + left;

		lx->off += (size_t)(end - p) + (nl ? 1 : 0);
		lx->line++;
		if (end > p && end[-1] == '\r') /* CRLF files */
			end--;
		st->line = lx->line;
		st->n = 0;
		if (lex_line(lx, p, end, st) && st->n > 0)
			return 1;
	}
	return 0;
}
