/*
 * FortiOS CLI structure: config/end sections, edit/next table entries,
 * set/unset keys. Never stops at the first error: after each one it recovers
 * to the nearest sensible state (a stray "config" closes the open section, a
 * stray "edit" closes the open entry, an unknown section is skipped to its
 * "end") so that every later line is still checked.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/internal.h"

#define MAX_ENTRIES 4096 /* per table */
#define MAX_NAME_LEN 63

static const char *const commands[] = { "config", "end", "edit", "next", "set", "unset" };

enum pstate { PS_TOP, PS_SECTION, PS_ENTRY, PS_SKIP };

struct parser {
	struct config *conf;
	struct conf_sink *s;
	struct conf_lines *lines;
	enum pstate state;
	enum conf_sec sec;
	unsigned sec_line;
	size_t entry;	   /* index in the table, SIZE_MAX: an entry we only skip */
	unsigned edit_line;
	unsigned skip_depth, skip_line;
	enum pstate skip_ret; /* where an unknown sub-section returns to */
	int err;	   /* -ENOMEM: stop */
};

static void *obj_of(struct parser *p, enum conf_sec sec, size_t idx)
{
	switch (sec) {
	case SEC_SETTINGS:
		return &p->conf->settings;
	case SEC_GLOBAL:
		return &p->conf->global;
	case SEC_PHASE1:
		return &p->conf->phase1[idx];
	default:
		return &p->conf->phase2[idx];
	}
}

static unsigned *lines_of(struct conf_lines *l, enum conf_sec sec, size_t idx)
{
	switch (sec) {
	case SEC_SETTINGS:
		return l->settings;
	case SEC_GLOBAL:
		return l->global;
	case SEC_PHASE1:
		return l->phase1[idx];
	default:
		return l->phase2[idx];
	}
}

unsigned conf_line_of(const struct conf_lines *lines, enum conf_sec sec, size_t idx,
		      const char *key)
{
	size_t k;

	if (!schema_key(sec, key, &k))
		return 0;
	return lines_of((struct conf_lines *)lines, sec, idx)[k];
}

static const char *entry_name(struct parser *p, size_t idx)
{
	return p->sec == SEC_PHASE1 ? p->conf->phase1[idx].name : p->conf->phase2[idx].name;
}

static unsigned entry_line(struct parser *p, size_t idx)
{
	return p->sec == SEC_PHASE1 ? p->conf->phase1[idx].line : p->conf->phase2[idx].line;
}

/* "config vpn ipsec phase1-interface" -> its section, or -1. */
static int section_lookup(const char *name)
{
	for (int i = 0; i < SEC__N; i++)
		if (strcmp(conf_sections[i].name, name) == 0)
			return i;
	return -1;
}

static void join_words(const struct lex_stmt *st, size_t from, char *out, size_t cap)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = from; i < st->n && used < cap; i++) {
		int r = snprintf(out + used, cap - used, "%s%s", i > from ? " " : "", st->tok[i].s);

		if (r < 0)
			break;
		used += (size_t)r;
	}
}

/* "system ..." and "vpn ..." start top-level sections, never sub-sections. */
static bool top_level_word(const char *w)
{
	for (size_t i = 0; i < SEC__N; i++) {
		size_t n = strcspn(conf_sections[i].name, " ");

		if (strlen(w) == n && strncmp(conf_sections[i].name, w, n) == 0)
			return true;
	}
	return false;
}

static void missing_next(struct parser *p, unsigned line)
{
	if (p->entry != SIZE_MAX)
		conf_error(p->s, line, "missing \"next\" for edit \"%s\" (line %u)",
			   entry_name(p, p->entry), p->edit_line);
	else
		conf_error(p->s, line, "missing \"next\" for the \"edit\" at line %u", p->edit_line);
	p->state = PS_SECTION;
}

static void cmd_config(struct parser *p, const struct lex_stmt *st)
{
	char name[256];
	const char *names[SEC__N], *near;
	int sec;

	if (st->n < 2) {
		conf_error(p->s, st->line, "\"config\" needs a section name");
		return;
	}
	join_words(st, 1, name, sizeof(name));
	sec = section_lookup(name);
	if (p->state == PS_SECTION || p->state == PS_ENTRY) {
		if (sec < 0 && !top_level_word(st->tok[1].s)) {
			/* FortiOS nests sub-tables this way; we have none. */
			conf_error(p->s, st->line, "unknown sub-section \"%.64s\" in \"%s\"", name,
				   conf_sections[p->sec].name);
			p->skip_ret = p->state;
			p->skip_depth = 1;
			p->skip_line = st->line;
			p->state = PS_SKIP;
			return;
		}
		if (p->state == PS_ENTRY)
			missing_next(p, st->line);
		conf_error(p->s, st->line, "missing \"end\" for \"config %s\" (line %u)",
			   conf_sections[p->sec].name, p->sec_line);
	}
	if (sec < 0) {
		for (size_t i = 0; i < SEC__N; i++)
			names[i] = conf_sections[i].name;
		near = conf_closest_near(name, names, SEC__N);
		if (near)
			conf_error(p->s, st->line, "unknown section \"%.64s\" (did you mean \"%s\"?)",
				   name, near);
		else
			conf_error(p->s, st->line, "unknown section \"%.64s\"", name);
		p->skip_ret = PS_TOP;
		p->skip_depth = 1;
		p->skip_line = st->line;
		p->state = PS_SKIP;
		return;
	}
	p->state = PS_SECTION;
	p->sec = (enum conf_sec)sec;
	p->sec_line = st->line;
}

static void cmd_end(struct parser *p, const struct lex_stmt *st)
{
	if (st->n > 1)
		conf_error(p->s, st->line, "\"end\" takes no arguments");
	switch (p->state) {
	case PS_TOP:
		conf_error(p->s, st->line, "\"end\" without \"config\"");
		return;
	case PS_ENTRY:
		missing_next(p, st->line);
		/* fall through */
	case PS_SECTION:
		p->state = PS_TOP;
		return;
	case PS_SKIP:
		return;
	}
}

static bool valid_entry_name(const struct lex_tok *t)
{
	if (t->len == 0 || t->len > MAX_NAME_LEN)
		return false;
	for (size_t i = 0; i < t->len; i++)
		if ((unsigned char)t->s[i] < 0x20)
			return false;
	return true;
}

/* A new entry with every default, and its line table. */
static int entry_add(struct parser *p, const char *name, unsigned line, size_t *idx)
{
	bool p1 = p->sec == SEC_PHASE1;
	size_t n = p1 ? p->conf->n_phase1 : p->conf->n_phase2;
	unsigned(*nl)[CONF_MAX_KEYS];
	void *arr;
	int err;

	if (p1) {
		arr = realloc(p->conf->phase1, (n + 1) * sizeof(*p->conf->phase1));
		if (!arr)
			return -ENOMEM;
		p->conf->phase1 = arr;
		memset(&p->conf->phase1[n], 0, sizeof(p->conf->phase1[n]));
		nl = realloc(p->lines->phase1, (n + 1) * sizeof(*nl));
		if (!nl)
			return -ENOMEM;
		p->lines->phase1 = nl;
	} else {
		arr = realloc(p->conf->phase2, (n + 1) * sizeof(*p->conf->phase2));
		if (!arr)
			return -ENOMEM;
		p->conf->phase2 = arr;
		memset(&p->conf->phase2[n], 0, sizeof(p->conf->phase2[n]));
		p->conf->phase2[n].phase1_index = SIZE_MAX;
		nl = realloc(p->lines->phase2, (n + 1) * sizeof(*nl));
		if (!nl)
			return -ENOMEM;
		p->lines->phase2 = nl;
	}
	memset(nl[n], 0, sizeof(nl[n]));
	/* Counted before anything can fail, so conf_free releases a half-made entry. */
	if (p1)
		p->conf->n_phase1++;
	else
		p->conf->n_phase2++;
	char *dup = strdup(name);

	if (p1) {
		p->conf->phase1[n].name = dup;
		p->conf->phase1[n].line = line;
	} else {
		p->conf->phase2[n].name = dup;
		p->conf->phase2[n].line = line;
	}
	if (!dup)
		return -ENOMEM;
	err = schema_defaults(p->sec, obj_of(p, p->sec, n));
	if (err)
		return err;
	*idx = n;
	return 0;
}

static void cmd_edit(struct parser *p, const struct lex_stmt *st)
{
	size_t n;

	switch (p->state) {
	case PS_TOP:
		conf_error(p->s, st->line, "\"edit\" outside a config section");
		return;
	case PS_SKIP:
		return;
	case PS_ENTRY:
		missing_next(p, st->line);
		break;
	case PS_SECTION:
		break;
	}
	/* From here on, whatever happens, the lines up to "next" belong to this edit. */
	p->state = PS_ENTRY;
	p->entry = SIZE_MAX;
	p->edit_line = st->line;
	if (!conf_sections[p->sec].table) {
		conf_error(p->s, st->line, "\"edit\" in \"config %s\", which is not a table",
			   conf_sections[p->sec].name);
		return;
	}
	if (st->n != 2) {
		conf_error(p->s, st->line, "\"edit\" takes exactly one name, got %zu", st->n - 1);
		return;
	}
	if (!valid_entry_name(&st->tok[1])) {
		conf_error(p->s, st->line, "invalid name for \"edit\" (1-%d characters)",
			   MAX_NAME_LEN);
		return;
	}
	n = p->sec == SEC_PHASE1 ? p->conf->n_phase1 : p->conf->n_phase2;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(entry_name(p, i), st->tok[1].s) == 0) {
			conf_error(p->s, st->line, "duplicate edit \"%s\" in \"config %s\" (first at line %u)",
				   st->tok[1].s, conf_sections[p->sec].name, entry_line(p, i));
			return;
		}
	}
	if (n >= MAX_ENTRIES) {
		conf_error(p->s, st->line, "too many entries in \"config %s\" (at most %d)",
			   conf_sections[p->sec].name, MAX_ENTRIES);
		return;
	}
	p->err = entry_add(p, st->tok[1].s, st->line, &p->entry);
}

static void cmd_next(struct parser *p, const struct lex_stmt *st)
{
	if (st->n > 1)
		conf_error(p->s, st->line, "\"next\" takes no arguments");
	switch (p->state) {
	case PS_TOP:
		conf_error(p->s, st->line, "\"next\" outside a config section");
		return;
	case PS_SECTION:
		conf_error(p->s, st->line, "\"next\" without \"edit\"");
		return;
	case PS_ENTRY:
		p->state = PS_SECTION;
		return;
	case PS_SKIP:
		return;
	}
}

/* set and unset: where the key lives, or NULL (reported or skipped). */
static void *key_target(struct parser *p, const struct lex_stmt *st, const struct conf_key **k,
			unsigned **line_slot)
{
	const char *cmd = st->tok[0].s;
	size_t idx;

	switch (p->state) {
	case PS_TOP:
		conf_error(p->s, st->line, "\"%s\" outside a config section", cmd);
		return NULL;
	case PS_SKIP:
		return NULL;
	case PS_SECTION:
		if (conf_sections[p->sec].table) {
			conf_error(p->s, st->line, "\"%s\" in table \"config %s\" needs an \"edit\" first",
				   cmd, conf_sections[p->sec].name);
			return NULL;
		}
		break;
	case PS_ENTRY:
		if (p->entry == SIZE_MAX)
			return NULL;
		break;
	}
	if (st->n < 2) {
		conf_error(p->s, st->line, "\"%s\" needs a key", cmd);
		return NULL;
	}
	*k = schema_key(p->sec, st->tok[1].s, &idx);
	if (!*k) {
		conf_error(p->s, st->line, "unknown key \"%.64s\" in \"%s\" (did you mean \"%s\"?)",
			   st->tok[1].s, conf_sections[p->sec].name,
			   schema_suggest_key(p->sec, st->tok[1].s));
		return NULL;
	}
	size_t e = p->state == PS_ENTRY ? p->entry : 0;

	*line_slot = &lines_of(p->lines, p->sec, e)[idx];
	return obj_of(p, p->sec, e);
}

static void cmd_set(struct parser *p, const struct lex_stmt *st)
{
	const struct conf_key *k;
	unsigned *line_slot;
	void *obj = key_target(p, st, &k, &line_slot);
	int err;

	if (!obj)
		return;
	err = schema_set(k, obj, &st->tok[2], st->n - 2, p->s, st->line);
	if (err == -ENOMEM)
		p->err = err;
	/* A failed set is remembered, so checks do not also call the key missing. */
	*line_slot = err ? (st->line | CONF_LINE_FAILED) : st->line;
}

static void cmd_unset(struct parser *p, const struct lex_stmt *st)
{
	const struct conf_key *k;
	unsigned *line_slot;
	void *obj = key_target(p, st, &k, &line_slot);

	if (!obj)
		return;
	if (st->n > 2)
		conf_error(p->s, st->line, "\"unset\" takes only a key");
	p->err = schema_unset(k, obj);
	*line_slot = 0;
}

static void statement(struct parser *p, const struct lex_stmt *st)
{
	const char *cmd = st->tok[0].s;

	if (p->state == PS_SKIP) {
		/* Inside an unknown section: only nesting matters. */
		if (!strcmp(cmd, "config")) {
			p->skip_depth++;
		} else if (!strcmp(cmd, "end") && --p->skip_depth == 0) {
			p->state = p->skip_ret;
		}
		return;
	}
	if (!strcmp(cmd, "config"))
		cmd_config(p, st);
	else if (!strcmp(cmd, "end"))
		cmd_end(p, st);
	else if (!strcmp(cmd, "edit"))
		cmd_edit(p, st);
	else if (!strcmp(cmd, "next"))
		cmd_next(p, st);
	else if (!strcmp(cmd, "set"))
		cmd_set(p, st);
	else if (!strcmp(cmd, "unset"))
		cmd_unset(p, st);
	else if (conf_closest_near(cmd, commands, ARRAY_SIZE(commands)))
		conf_error(p->s, st->line, "unknown command \"%.64s\" (did you mean \"%s\"?)", cmd,
			   conf_closest_near(cmd, commands, ARRAY_SIZE(commands)));
	else
		conf_error(p->s, st->line,
			   "unknown command \"%.64s\" (expected config, end, edit, next, set or unset)",
			   cmd);
}

int conf_parse(struct config *conf, const char *text, size_t len, struct conf_sink *s,
	       struct conf_lines *lines)
{
	struct parser p = { .conf = conf, .s = s, .lines = lines, .state = PS_TOP };
	struct lex_stmt *st = malloc(sizeof(*st));
	struct lexer lx;
	int r;

	if (!st)
		return -ENOMEM;
	if (lex_init(&lx, text, len, s)) {
		free(st);
		return -ENOMEM;
	}
	/* Past the cap nothing more is shown; stop rather than spend time on it. */
	while (!p.err && s->n_errors <= CONF_MAX_ERRORS && (r = lex_next(&lx, st)) > 0)
		statement(&p, st);
	if (!p.err && s->n_errors <= CONF_MAX_ERRORS) {
		if (p.state == PS_SKIP) {
			conf_error(s, p.skip_line, "unknown section has no \"end\"");
			p.state = p.skip_ret;
		}
		if (p.state == PS_ENTRY && p.entry != SIZE_MAX)
			conf_error(s, p.edit_line, "edit \"%s\" has no \"next\"",
				   entry_name(&p, p.entry));
		else if (p.state == PS_ENTRY)
			conf_error(s, p.edit_line, "\"edit\" has no \"next\"");
		if (p.state == PS_SECTION || p.state == PS_ENTRY)
			conf_error(s, p.sec_line, "\"config %s\" has no \"end\"",
				   conf_sections[p.sec].name);
	}
	lex_fini(&lx);
	free(st);
	return p.err;
}
