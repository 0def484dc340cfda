/* Daemon lifecycle: locks, bpffs, steering, listeners, control socket, signals, reload. */
#include <errno.h>
#include <linux/magic.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "bpfsync/bpfsync.h"
#include "ctl/ctl.h"
#include "dataplane/afxdp.h"
#include "dataplane/sa_set.h"
#include "daemon.h"
#include "iketcp/log.h"
#include "lock.h"
#include "transport/transport.h"
#include "wiring.h"
#include "workers.h"

#define PREFIX_TIMEOUT_MS 5000
#define FRAME_TIMEOUT_MS 30000

static void warn_to_log(const char *msg, void *arg)
{
	(void)arg;
	log_warn("%s", msg);
}

void daemon_config_warnings(const struct config *conf, void (*emit)(const char *, void *), void *arg)
{
	const struct conf_settings *s = &conf->settings;
	char msg[256];

	if (s->ike_tcp_service && conf->global.admin_sport == s->ike_tcp_port) {
		snprintf(msg, sizeof(msg),
			 "admin-sport %u is the same as ike-tcp-port %u: IKE/ESP over TCP and the HTTPS admin "
			 "service share the port; non-IKE connections on tunnel interfaces are passed to the admin "
			 "service", conf->global.admin_sport, s->ike_tcp_port);
		emit(msg, arg);
	}
	if (s->ike_tcp_service && s->ike_tcp_port != s->ike_natt_port && s->ike_tcp_internal_port == s->ike_tcp_port) {
		snprintf(msg, sizeof(msg), "ike-tcp-internal-port %u equals ike-tcp-port: nothing is steered",
			 s->ike_tcp_internal_port);
		emit(msg, arg);
	}
}

/* ---- pieces that follow the config ------------------------------------------ */

static void transport_config_from(const struct config *conf, struct transport_config *tc)
{
	const struct conf_settings *s = &conf->settings;

	memset(tc, 0, sizeof(*tc));
	tc->tcp = s->ike_tcp_service;
	tc->ike_tcp_port = s->ike_tcp_port;
	tc->internal_port = s->ike_tcp_internal_port;
	tc->natt_port = s->ike_natt_port;
	tc->admin_sport = conf->global.admin_sport;
	tc->tls = s->ike_tls_service;
	tc->tls_cert = s->ike_tls_certificate;
	tc->tls_key = s->ike_tls_private_key;
	tc->max_conns = s->ike_tcp_max_connections;
	tc->idle_timeout_s = s->ike_tcp_idle_timeout;
	tc->prefix_timeout_ms = PREFIX_TIMEOUT_MS;
	tc->frame_timeout_ms = FRAME_TIMEOUT_MS;
	tc->ike_port = s->ike_port;
	/* UDP 500/4500 only when some phase1 may speak it (FortiOS' default transport is udp). */
	for (size_t i = 0; i < conf->n_phase1; i++)
		if (conf->phase1[i].transport != CONF_TRANSPORT_TCP)
			tc->udp = true;
}

static void steer_settings_from(const struct config *conf, struct steer_settings *ss)
{
	ss->ike_tcp_port = conf->settings.ike_tcp_port;
	ss->internal_port = conf->settings.ike_tcp_internal_port;
	ss->syn_rate = conf->settings.ike_tcp_syn_rate;
}

/* The distinct phase1 interfaces; steering is for the TCP service only. */
static size_t wan_interfaces(const struct config *conf, const char **names, size_t max)
{
	size_t n = 0;

	if (!conf->settings.ike_tcp_service)
		return 0;
	for (size_t i = 0; i < conf->n_phase1; i++) {
		const char *ifname = conf->phase1[i].interface;
		bool seen = false;
		for (size_t j = 0; j < n; j++)
			seen |= strcmp(names[j], ifname) == 0;
		if (!seen && n < max)
			names[n++] = ifname;
	}
	return n;
}

static int ensure_bpffs(const char *pin_root)
{
	struct statfs st;
	const char *mnt = "/sys/fs/bpf";

	if (strncmp(pin_root, "/sys/fs/bpf/", 12) != 0)
		return 0;
	if (statfs(mnt, &st) == 0 && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (mount("bpf", mnt, "bpf", 0, "mode=0700") < 0) {
		log_error("cannot mount bpffs on %s: %s", mnt, strerror(errno));
		return -errno;
	}
	log_info("mounted bpffs on %s", mnt);
	return 0;
}

static struct bpfsync_wan *find_wan(struct daemon *d, const char *ifname)
{
	for (size_t i = 0; i < d->n_wans; i++)
		if (strcmp(bpfsync_wan_ifname(d->wans[i]), ifname) == 0)
			return d->wans[i];
	return NULL;
}

static int attach_wan(struct daemon *d, const struct config *conf, const char *ifname)
{
	struct steer_settings ss;
	struct bpfsync_wan *w;
	enum bpfsync_xdp_mode mode = BPFSYNC_XDP_NATIVE;
	int err;

	if (d->n_wans == DAEMON_MAX_WANS) {
		log_error("more than %d WAN interfaces", DAEMON_MAX_WANS);
		return -ENOSPC;
	}
	if (!if_nametoindex(ifname)) {
		log_error("phase1 interface %s: no such interface", ifname);
		return -ENODEV;
	}
	if (conf->settings.steer_hook == CONF_STEER_TC)
		mode = BPFSYNC_TC_INGRESS;
	else if (conf->settings.xdp_mode == CONF_XDP_GENERIC)
		mode = BPFSYNC_XDP_GENERIC;
	steer_settings_from(conf, &ss);
	err = bpfsync_wan_attach(ifname, conf->settings.bpf_pin_path, mode, &ss, &w);
	if (err) {
		log_error("cannot attach steering to %s: %s", ifname, strerror(-err));
		return err;
	}
	err = bpfsync_wan_set_local_addrs(w);
	if (err)
		log_warn("%s: local addresses: %s", ifname, strerror(-err));
	d->wans[d->n_wans++] = w;
	if (conf->settings.ike_tcp_port == conf->settings.ike_natt_port)
		log_info("SYN guard on %s for TCP %u, no port rewrite (%s, SYN limit %u/s)", ifname,
			 ss.ike_tcp_port, bpfsync_wan_hook_name(w), ss.syn_rate);
	else
		log_info("steering TCP %u -> %u on %s (%s, SYN limit %u/s)", ss.ike_tcp_port, ss.internal_port,
			 ifname, bpfsync_wan_hook_name(w), ss.syn_rate);
	return 0;
}

static void detach_wan(struct daemon *d, size_t i)
{
	log_info("steering removed from %s", bpfsync_wan_ifname(d->wans[i]));
	bpfsync_wan_detach(d->wans[i]);
	d->wans[i] = d->wans[--d->n_wans];
}

/* Make the attached programs match conf: detach the gone, update the kept, attach the new. */
static int sync_wans(struct daemon *d, const struct config *conf)
{
	const char *names[DAEMON_MAX_WANS];
	size_t n = wan_interfaces(conf, names, DAEMON_MAX_WANS);
	struct steer_settings ss;
	int err = 0;

	steer_settings_from(conf, &ss);
	for (size_t i = d->n_wans; i-- > 0;) {
		bool keep = false;
		for (size_t j = 0; j < n; j++)
			keep |= strcmp(names[j], bpfsync_wan_ifname(d->wans[i])) == 0;
		if (!keep)
			detach_wan(d, i);
	}
	for (size_t j = 0; j < n; j++) {
		struct bpfsync_wan *w = find_wan(d, names[j]);
		int e = w ? bpfsync_wan_update(w, &ss) : attach_wan(d, conf, names[j]);
		if (w && !e)
			e = bpfsync_wan_set_local_addrs(w);
		if (e && !err)
			err = e;
	}
	return err;
}

/* ---- signals ------------------------------------------------------------------ */

static void signal_cb(struct loop *loop, struct loop_io *io, uint32_t events)
{
	struct daemon *d = container_of(io, struct daemon, sig_io);
	struct signalfd_siginfo si;
	(void)events;

	while (read(io->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			log_info("SIGHUP: reloading %s", d->conf_path);
			daemon_reload(d, NULL);
		} else {
			log_info("%s: shutting down", strsignal((int)si.ssi_signo));
			loop_stop(loop);
		}
	}
}

static int setup_signals(struct daemon *d)
{
	sigset_t set;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (loop_io_add(d->loop, &d->sig_io, fd, EPOLLIN, signal_cb)) {
		close(fd);
		return -EIO;
	}
	return 0;
}

/* 10,000 connections need more descriptors than the usual soft limit of 1024. */
static void raise_nofile(uint32_t max_conns)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)max_conns + 1024;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want;
	if (rl.rlim_max < want)
		rl.rlim_max = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		getrlimit(RLIMIT_NOFILE, &rl);
		log_warn("cannot raise the open file limit to %llu (it is %llu): fewer TCP connections possible",
			 (unsigned long long)want, (unsigned long long)rl.rlim_cur);
	}
}

static void pin_lock_path(const char *pin_root, char *buf, size_t len)
{
	int n = snprintf(buf, len, "/run/iketcp/pin");
	for (const char *p = pin_root; *p && n + 1 < (int)len; p++)
		buf[n++] = *p == '/' ? '_' : *p;
	buf[n] = '\0';
	strncat(buf, ".lock", len - strlen(buf) - 1);
}

static void ctl_lock_path(const char *sock, char *buf, size_t len)
{
	snprintf(buf, len, "%s.lock", sock);
}

/* ---- IKE and the dataplane --------------------------------------------------------- */

#define TUN_IFNAME "iketcp0"

/*
 * The CHILD SAs' packets: AF_XDP on the inner interfaces for `dataplane xdp` (the default), else,
 * or when AF_XDP cannot be set up, a TUN device the kernel routes the selectors into.
 */
static bool same_dataplane(const struct conf_settings *a, const struct conf_settings *b)
{
	if (a->dataplane != b->dataplane || a->n_inner_interfaces != b->n_inner_interfaces)
		return false;
	if (a->dataplane == CONF_DATAPLANE_XDP && a->xdp_mode != b->xdp_mode)
		return false; /* the inner interfaces' programs are attached in that mode */
	for (size_t i = 0; i < a->n_inner_interfaces; i++)
		if (strcmp(a->inner_interfaces[i], b->inner_interfaces[i]))
			return false;
	return true;
}

static void stop_dataplane(struct daemon *d)
{
	dataplane_free(d->dp);
	d->dp = NULL;
	afxdp_free(d->xdp);
	d->xdp = NULL;
}

static int start_dataplane(struct daemon *d, const struct config *conf)
{
	const struct conf_settings *s = &conf->settings;

	if (!conf->n_phase2 || d->dp || d->xdp)
		return 0;
	if (s->dataplane == CONF_DATAPLANE_XDP && s->n_inner_interfaces) {
		if (!ensure_bpffs(s->bpf_pin_path))
			d->xdp = dataplane_afxdp_new(d->dpt.loop, (const char *const *)s->inner_interfaces,
						     s->n_inner_interfaces, s->bpf_pin_path,
						     s->xdp_mode == CONF_XDP_GENERIC, wiring_send_esp, d);
		if (d->xdp) {
			afxdp_set_batch(d->xdp, wiring_queue_esp, wiring_flush_esp);
			afxdp_set_workers(d->xdp, d->workers);
			sa_set_path_mtu_fn(d->xdp, transport_conn_mtu);
			sa_set_soft_life_fn(d->xdp, wiring_soft_life, d);
			log_info("ESP dataplane: AF_XDP on %zu inner interface(s)", s->n_inner_interfaces);
			return 0;
		}
		log_warn("AF_XDP is not available on the inner interfaces: using the TUN dataplane");
	} else if (s->dataplane == CONF_DATAPLANE_XDP) {
		log_warn("dataplane xdp needs inner-interface: using the TUN dataplane");
	}
	d->dp = dataplane_tun_new(d->dpt.loop, TUN_IFNAME, wiring_send_esp, d);
	if (!d->dp) {
		log_error("cannot create the TUN dataplane %s", TUN_IFNAME);
		return -ENODEV;
	}
	sa_set_path_mtu_fn(d->dp, transport_conn_mtu);
	sa_set_soft_life_fn(d->dp, wiring_soft_life, d);
	dataplane_set_batch(d->dp, wiring_queue_esp, wiring_flush_esp);
	dataplane_set_workers(d->dp, d->workers);
	log_info("ESP dataplane: TUN device %s", dataplane_ifname(d->dp));
	return 0;
}

static int start_ike(struct daemon *d)
{
	struct ike_io io;

	wiring_ike_io(d, &io);
	d->ike = ike_new(d->loop, &io, &wiring_child_ops, d);
	return d->ike ? 0 : -ENOMEM;
}

/* The transport runs on the dataplane thread's loop; what it frees, IKE may still hold (dpthread.h). */
static int new_transport(struct daemon *d)
{
	struct transport_handlers th;

	wiring_transport_handlers(d, &th);
	if (!(d->tp = transport_new(d->dpt.loop, &th)))
		return -ENOMEM;
	transport_defer_frees(d->tp, &d->dpt.queued_seq);
	return 0;
}

/* ---- lifecycle ---------------------------------------------------------------- */

int daemon_start(struct daemon *d, const char *conf_path, struct config *conf, unsigned dp_threads)
{
	const struct conf_settings *s = &conf->settings;
	struct transport_config tc;
	char path[4200];
	int err;

	memset(d, 0, sizeof(*d));
	d->lock_fds[0] = d->lock_fds[1] = -1;
	d->sig_io.fd = -1;
	d->conf = conf;
	d->started = time(NULL);
	if (!(d->conf_path = strdup(conf_path)))
		return -ENOMEM;

	ctl_lock_path(s->control_socket, path, sizeof(path));
	if ((err = lock_acquire(path, "control socket")) < 0)
		goto fail;
	d->lock_fds[0] = err;
	pin_lock_path(s->bpf_pin_path, path, sizeof(path));
	if ((err = lock_acquire(path, "bpf-pin-path")) < 0)
		goto fail;
	d->lock_fds[1] = err;

	raise_nofile(s->ike_tcp_max_connections);
	err = -ENOMEM;
	if (!(d->loop = loop_new()))
		goto fail;
	if ((err = setup_signals(d)))
		goto fail;
	daemon_config_warnings(conf, warn_to_log, NULL);

	struct dpthread_sink sink;
	wiring_dpthread_sink(d, &sink);
	if ((err = dpthread_init(&d->dpt, d->loop, &sink))) {
		log_error("cannot set up the dataplane thread: %s", strerror(-err));
		goto fail;
	}
	if (!(d->workers = workers_new(dp_threads))) {
		err = -ENOMEM;
		goto fail;
	}
	log_info("ESP crypto on %u thread(s)", workers_threads(d->workers));
	if ((err = new_transport(d)))
		goto fail;
	if ((err = start_dataplane(d, conf)) || (err = start_ike(d)))
		goto fail;
	transport_config_from(conf, &tc);
	if ((err = transport_configure(d->tp, &tc)))
		goto fail;
	if (s->ike_tcp_service) {
		if (wan_interfaces(conf, (const char *[1]){ 0 }, 1)) {
			if ((err = ensure_bpffs(s->bpf_pin_path)) || (err = sync_wans(d, conf)))
				goto fail;
		}
	}
	if (!(d->ctl = ctl_server_new(d->loop, s->control_socket, daemon_ctl_handle, d))) {
		err = -EIO;
		goto fail;
	}
	if ((err = dpthread_start(&d->dpt)))
		goto fail;
	if ((err = ike_configure(d->ike, conf)))
		goto fail;
	log_info("iketcpd %s started: %zu phase1, %zu phase2 from %s, control socket %s", IKETCP_VERSION,
		 conf->n_phase1, conf->n_phase2, conf_path, s->control_socket);
	return 0;
fail:
	d->conf = NULL; /* the caller still owns conf on failure */
	daemon_stop(d);
	return err;
}

static void append_error(struct jw *errors, const char *line)
{
	if (errors)
		jw_printf(errors, "%s\n", line);
}

int daemon_reload(struct daemon *d, struct jw *errors)
{
	struct conf_diag diag = { 0 };
	struct config *next = NULL;
	struct transport_config tc;
	int err;

	d->reloads++;
	err = conf_load_file(d->conf_path, &next, &diag);
	if (err) {
		d->reload_failures++;
		log_error("reload: %s has %zu error(s); still running the previous configuration",
			  d->conf_path, diag.n);
		for (size_t i = 0; i < diag.n; i++) {
			log_error("%s", diag.lines[i]);
			append_error(errors, diag.lines[i]);
		}
		conf_diag_free(&diag);
		return -EINVAL;
	}
	conf_diag_free(&diag);

	const struct conf_settings *o = &d->conf->settings, *n = &next->settings;
	if (strcmp(o->control_socket, n->control_socket) || strcmp(o->bpf_pin_path, n->bpf_pin_path))
		log_warn("reload: control-socket and bpf-pin-path changes take effect at the next restart");
	if (o->xdp_mode != n->xdp_mode && d->n_wans)
		log_warn("reload: xdp-mode reaches the steering on the WAN interfaces at the next restart; "
			 "the inner interfaces follow now");
	if (o->steer_hook != n->steer_hook && d->n_wans)
		log_warn("reload: steer-hook takes effect at the next restart");
	transport_config_from(next, &tc);
	if (n->ike_tcp_service || !o->ike_tcp_service) {
		dpthread_lock(&d->dpt);
		err = transport_configure(d->tp, &tc);
		dpthread_unlock(&d->dpt);
		if (err) {
			d->reload_failures++;
			log_error("reload: cannot apply the TCP/UDP settings (%s); still running the previous "
				  "configuration", strerror(-err));
			append_error(errors, "cannot apply the TCP/UDP settings (see the daemon log)");
			conf_free(next);
			return err;
		}
	} else {
		/* No more TCP: the IKE SAs on its streams go with it. */
		ike_shutdown(d->ike);
		ike_free(d->ike);
		d->ike = NULL;
		dpthread_lock(&d->dpt);
		transport_free(d->tp);
		dpthread_purge(&d->dpt); /* what the old transport said is about connections now gone */
		err = new_transport(d);
		if (err)
			log_error("reload: out of memory");
		else if ((err = transport_configure(d->tp, &tc)))
			log_error("reload: cannot open the UDP ports: %s", strerror(-err));
		dpthread_unlock(&d->dpt);
	}
	if ((d->dp || d->xdp) && !same_dataplane(o, n)) {
		/* The CHILD SAs' keys live in the running dataplane: the IKE SAs go (DELETE sent) and come
		 * back on the new one, static tunnels at once, the others when their peers return. */
		log_warn("reload: dataplane or inner-interface changed: deleting every IKE SA; the tunnels come "
			 "back on the new dataplane");
		if (d->ike)
			ike_shutdown(d->ike);
		ike_free(d->ike);
		d->ike = NULL;
		dpthread_lock(&d->dpt);
		stop_dataplane(d);
		dpthread_unlock(&d->dpt);
	}
	dpthread_lock(&d->dpt);
	if (start_dataplane(d, next))
		log_error("reload: no dataplane: CHILD SAs cannot be installed");
	dpthread_unlock(&d->dpt);
	if (!d->ike && d->tp && start_ike(d))
		log_error("reload: out of memory: no IKE");
	if (n->ike_tcp_service && (err = ensure_bpffs(n->bpf_pin_path)) == 0)
		err = sync_wans(d, next);
	else if (!n->ike_tcp_service)
		err = sync_wans(d, next);
	if (err) {
		log_error("reload: steering not fully applied: %s", strerror(-err));
		append_error(errors, "steering not fully applied (see the daemon log)");
	}
	/* Paths of the new config stay valid: the control socket and pins keep the old names. */
	char *ctl_path = d->conf->settings.control_socket, *pin_path = d->conf->settings.bpf_pin_path;
	d->conf->settings.control_socket = NULL;
	d->conf->settings.bpf_pin_path = NULL;
	free(next->settings.control_socket);
	free(next->settings.bpf_pin_path);
	next->settings.control_socket = ctl_path;
	next->settings.bpf_pin_path = pin_path;
	/* IKE moves to the new configuration before the old one is freed. */
	if (d->ike && ike_configure(d->ike, next))
		log_error("reload: IKE could not apply every tunnel (see above)");
	conf_free(d->conf);
	d->conf = next;
	daemon_config_warnings(next, warn_to_log, NULL);
	log_info("reloaded %s: %zu phase1, %zu phase2", d->conf_path, next->n_phase1, next->n_phase2);
	return 0;
}

void daemon_stop(struct daemon *d)
{
	char path[4200];

	ctl_server_free(d->ctl);
	d->ctl = NULL;
	dpthread_stop(&d->dpt); /* from here on this thread owns everything */
	if (d->ike)
		ike_shutdown(d->ike); /* DELETEs go out while the streams are still there */
	ike_free(d->ike);
	d->ike = NULL;
	transport_free(d->tp);
	d->tp = NULL;
	stop_dataplane(d);
	workers_free(d->workers);
	d->workers = NULL;
	while (d->n_wans)
		detach_wan(d, d->n_wans - 1);
	dpthread_free(&d->dpt);
	if (d->sig_io.fd >= 0) {
		loop_io_del(d->loop, &d->sig_io);
		close(d->sig_io.fd);
		d->sig_io.fd = -1;
	}
	loop_free(d->loop);
	d->loop = NULL;
	if (d->conf) {
		ctl_lock_path(d->conf->settings.control_socket, path, sizeof(path));
		lock_release(d->lock_fds[0], path);
		pin_lock_path(d->conf->settings.bpf_pin_path, path, sizeof(path));
		lock_release(d->lock_fds[1], path);
		rmdir(d->conf->settings.bpf_pin_path); /* empty by now; left alone if someone else pins there */
	} else {
		lock_release(d->lock_fds[0], NULL);
		lock_release(d->lock_fds[1], NULL);
	}
	d->lock_fds[0] = d->lock_fds[1] = -1;
	free(d->conf_path);
	d->conf_path = NULL;
}
