/*
 * The control socket: a root-only UNIX stream socket. One request line
 * ("status json", "up NAME", ...), one reply: "OK\n" or "ERR <why>\n", then the
 * body, then the daemon closes. Bounded request size and a deadline per client.
 */
#ifndef IKETCP_CTL_H
#define IKETCP_CTL_H

#include <stdbool.h>
#include <stddef.h>

#include "iketcp/json.h"
#include "loop.h"

#define CTL_REQUEST_MAX 1024
#define CTL_TIMEOUT_MS 3000

struct ctl_server;

/* Fill `body`; return 0, or -1 with `err` (a static or body-independent message) for a refused request. */
typedef int (*ctl_handler)(void *arg, int argc, char **argv, struct jw *body, const char **err);

struct ctl_server *ctl_server_new(struct loop *loop, const char *path, ctl_handler h, void *arg);
void ctl_server_free(struct ctl_server *s); /* closes clients, unlinks the socket */

/*
 * Split a request line, in place, into at most max words; returns the count, -1 on control characters
 * or a bad string. A word that starts with '"' runs to the next unescaped '"' (\" and \\ are the
 * escapes, as in the configuration file): phase1 names may hold spaces.
 */
int ctl_split(char *line, char **argv, int max);
/* The request line for argv (no newline), words quoted where ctl_split needs it. Its length, or -1 when
 * it does not fit in cap bytes with its NUL or a word holds a control character. */
int ctl_join(char *out, size_t cap, int argc, char *const *argv);

#endif
