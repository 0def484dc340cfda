/* The daemon's state and its lifecycle: start from a config, reload on SIGHUP, stop on SIGTERM. */
#ifndef IKETCP_DAEMON_H
#define IKETCP_DAEMON_H

#include <stdbool.h>
#include <time.h>

#include "conf/conf.h"
#include "iketcp/json.h"
#include "dpthread.h"
#include "loop.h"

#define DAEMON_MAX_WANS 16

struct transport;
struct ctl_server;
struct bpfsync_wan;
struct ike;
struct dataplane;
struct afxdp;

struct daemon {
	struct loop *loop;         /* the IKE thread's: IKE, control socket, signals */
	struct dpthread dpt;       /* the dataplane thread: its loop runs the transport and the dataplane */
	struct config *conf;
	char *conf_path;
	struct transport *tp;
	struct ike *ike;
	struct afxdp *xdp;         /* AF_XDP on the inner interfaces (dataplane xdp), or ... */
	struct dataplane *dp;      /* ... the TUN dataplane; neither when no phase2 entry needs one */
	struct workers *workers;   /* the dataplane thread's crypto workers (workers.h); NULL: it alone */
	struct ctl_server *ctl;
	struct bpfsync_wan *wans[DAEMON_MAX_WANS];
	size_t n_wans;
	struct loop_io sig_io;
	int lock_fds[2];
	time_t started;
	uint64_t reloads, reload_failures;
};

/*
 * Everything or nothing: on failure all that was set up is undone and a log line says why.
 * dp_threads: how many threads seal and open ESP, the dataplane thread included (0: one per CPU).
 */
int daemon_start(struct daemon *d, const char *conf_path, struct config *conf, unsigned dp_threads);
/* 0 and the new config in force, or -EINVAL with the old one still running and each error logged. */
int daemon_reload(struct daemon *d, struct jw *errors);
void daemon_stop(struct daemon *d);

/* The warnings a valid config can still deserve (printed by --check, logged at start). */
void daemon_config_warnings(const struct config *conf, void (*emit)(const char *msg, void *arg), void *arg);

/* daemon_ctl.c: the control socket's commands. */
int daemon_ctl_handle(void *arg, int argc, char **argv, struct jw *body, const char **err);

#endif
