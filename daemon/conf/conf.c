/* Loading a configuration: read the file, parse, check, and collect every message. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "conf/internal.h"

static int diag_push(struct conf_diag *d, char *line)
{
	/* grow in powers of two */
	if ((d->n & (d->n - 1)) == 0) {
		char **nl = realloc(d->lines, (d->n ? d->n * 2 : 4) * sizeof(*nl));

		if (!nl)
			return -ENOMEM;
		d->lines = nl;
	}
	d->lines[d->n++] = line;
	return 0;
}

void conf_error(struct conf_sink *s, unsigned line, const char *fmt, ...)
{
	char *msg = NULL, *full = NULL;
	va_list ap;
	int r;

	s->n_errors++;
	if (!s->diag || s->n_errors > CONF_MAX_ERRORS + 1)
		return;
	if (s->n_errors == CONF_MAX_ERRORS + 1) {
		r = asprintf(&full, "%s: too many errors, only the first %d are shown", s->file,
			     CONF_MAX_ERRORS);
	} else {
		va_start(ap, fmt);
		r = vasprintf(&msg, fmt, ap);
		va_end(ap);
		if (r < 0)
			goto oom;
		if (line)
			r = asprintf(&full, "%s:%u: %s", s->file, line, msg);
		else
			r = asprintf(&full, "%s: %s", s->file, msg);
		free(msg);
	}
	if (r < 0 || diag_push(s->diag, full) < 0)
		goto oom;
	return;
oom:
	if (r >= 0)
		free(full);
	s->oom = true;
}

void conf_diag_free(struct conf_diag *diag)
{
	if (!diag)
		return;
	for (size_t i = 0; i < diag->n; i++)
		free(diag->lines[i]);
	free(diag->lines);
	diag->lines = NULL;
	diag->n = 0;
}

void conf_free(struct config *conf)
{
	if (!conf)
		return;
	schema_release(SEC_SETTINGS, &conf->settings);
	schema_release(SEC_GLOBAL, &conf->global);
	for (size_t i = 0; i < conf->n_phase1; i++) {
		schema_release(SEC_PHASE1, &conf->phase1[i]);
		free(conf->phase1[i].name);
	}
	for (size_t i = 0; i < conf->n_phase2; i++) {
		schema_release(SEC_PHASE2, &conf->phase2[i]);
		free(conf->phase2[i].name);
	}
	free(conf->phase1);
	free(conf->phase2);
	free(conf->path);
	free(conf);
}

const struct conf_phase1 *conf_find_phase1(const struct config *conf, const char *name)
{
	if (!conf || !name)
		return NULL;
	for (size_t i = 0; i < conf->n_phase1; i++)
		if (strcmp(conf->phase1[i].name, name) == 0)
			return &conf->phase1[i];
	return NULL;
}

/* "FILE:LINE: ..." -> LINE; "FILE: ..." -> 0. */
static unsigned diag_line(const char *file, const char *msg)
{
	size_t n = strlen(file);

	if (strncmp(msg, file, n) != 0 || msg[n] != ':')
		return 0;
	return (unsigned)strtoul(msg + n + 1, NULL, 10);
}

/*
 * Checks after parsing report late; users read top to bottom. Stable, so
 * messages of one line keep their order, and "too many errors" stays last.
 */
static void diag_sort(struct conf_diag *d, const char *file)
{
	size_t last = d->n;

	if (d->n > CONF_MAX_ERRORS)
		last = CONF_MAX_ERRORS;
	for (size_t i = 1; i < last; i++) {
		char *m = d->lines[i];
		unsigned l = diag_line(file, m);
		size_t j = i;

		for (; j > 0 && diag_line(file, d->lines[j - 1]) > l; j--)
			d->lines[j] = d->lines[j - 1];
		d->lines[j] = m;
	}
}

int conf_load_string(const char *name, const char *text, size_t len, struct config **out,
		     struct conf_diag *diag)
{
	struct conf_sink s = { .file = name ? name : "<config>", .diag = diag };
	struct conf_lines *lines = NULL;
	struct config *conf = NULL;
	int err;

	*out = NULL;
	if (diag)
		*diag = (struct conf_diag){ 0 };
	if (len > CONF_MAX_FILE_SIZE) {
		conf_error(&s, 0, "file too large (%zu bytes, at most %d)", len, CONF_MAX_FILE_SIZE);
		return s.oom ? -ENOMEM : -EFBIG;
	}
	conf = calloc(1, sizeof(*conf));
	lines = calloc(1, sizeof(*lines));
	err = -ENOMEM;
	if (!conf || !lines || !(conf->path = strdup(s.file)))
		goto out;
	err = schema_defaults(SEC_SETTINGS, &conf->settings);
	if (!err)
		err = schema_defaults(SEC_GLOBAL, &conf->global);
	if (!err)
		err = conf_parse(conf, text, len, &s, lines);
	if (err)
		goto out;
	conf_check(conf, lines, &s);
	if (diag)
		diag_sort(diag, s.file);
	if (s.oom)
		err = -ENOMEM;
	else if (s.n_errors)
		err = -EINVAL;
out:
	if (lines) {
		free(lines->phase1);
		free(lines->phase2);
		free(lines);
	}
	if (err)
		conf_free(conf);
	else
		*out = conf;
	return err;
}

/* Forget a buffer that held the psksecret. */
static void wipe_free(char *buf, size_t cap)
{
	if (buf)
		OPENSSL_cleanse(buf, cap);
	free(buf);
}

/*
 * The whole of fd into *buf, at most CONF_MAX_FILE_SIZE + 1 bytes so that a
 * pipe (no size to stat) that is too long is still noticed by the caller.
 */
static int read_all(int fd, char **buf, size_t *len, size_t *cap)
{
	*buf = NULL;
	*len = *cap = 0;
	for (;;) {
		if (*len == *cap) {
			size_t ncap = MIN(*cap ? *cap * 2 : 16384, (size_t)CONF_MAX_FILE_SIZE + 1);
			char *nb;

			if (*cap == ncap)
				return 0;
			nb = malloc(ncap);
			if (!nb)
				return -ENOMEM;
			if (*buf)
				memcpy(nb, *buf, *len);
			wipe_free(*buf, *cap);
			*buf = nb;
			*cap = ncap;
		}
		ssize_t r = read(fd, *buf + *len, *cap - *len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return 0;
		*len += (size_t)r;
	}
}

int conf_load_file(const char *path, struct config **out, struct conf_diag *diag)
{
	struct conf_sink s = { .file = path, .diag = diag };
	size_t cap = 0, len = 0;
	char *buf = NULL;
	struct stat sb;
	int fd, err;

	*out = NULL;
	if (diag)
		*diag = (struct conf_diag){ 0 };
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		err = -errno;
	else if (fstat(fd, &sb) < 0)
		err = -errno;
	else if (S_ISDIR(sb.st_mode))
		err = -EISDIR;
	else if (S_ISREG(sb.st_mode) && sb.st_size > CONF_MAX_FILE_SIZE)
		err = -EFBIG;
	else
		err = read_all(fd, &buf, &len, &cap);
	if (fd >= 0)
		close(fd);
	if (!err && len > CONF_MAX_FILE_SIZE) { /* a pipe */
		err = -EFBIG;
		conf_error(&s, 0, "file too large (more than %d bytes)", CONF_MAX_FILE_SIZE);
	} else if (err == -EFBIG) {
		conf_error(&s, 0, "file too large (%lld bytes, at most %d)", (long long)sb.st_size,
			   CONF_MAX_FILE_SIZE);
	} else if (err) {
		conf_error(&s, 0, "%s", strerror(-err));
	} else {
		err = conf_load_string(path, buf ? buf : "", len, out, diag);
	}
	if (s.oom)
		err = -ENOMEM;
	wipe_free(buf, cap);
	return err;
}
