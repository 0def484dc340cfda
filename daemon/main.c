/* iketcpd: arguments, configuration check, then the daemon's event loop. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "iketcp/log.h"
#include "workers.h"

#define DEFAULT_CONFIG "/etc/iketcp/iketcpd.conf"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: iketcpd [-c FILE] [--check] [--log-level debug|info|warn|error] [--dataplane-threads N]\n"
		"       iketcpd --version\n"
		"  -c, --config FILE   configuration in FortiOS CLI syntax (default " DEFAULT_CONFIG ")\n"
		"  --check             validate FILE, print every error as FILE:LINE: message, exit 0 or 1\n"
		"  --log-level LEVEL   debug, info (default), warn or error\n"
		"  --dataplane-threads N\n"
		"                      threads that seal and open ESP, the dataplane thread included\n"
		"                      (1: it alone; default: one per online CPU)\n");
}

static void print_warning(const char *msg, void *arg)
{
	fprintf(stderr, "%s: warning: %s\n", (const char *)arg, msg);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'k' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "version", no_argument, NULL, 'V' },
		{ "dataplane-threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *path = DEFAULT_CONFIG;
	bool check = false;
	unsigned dp_threads = 0; /* one per online CPU */
	enum log_level level;
	struct conf_diag diag = { 0 };
	struct config *conf = NULL;
	struct daemon d;
	int opt, err;

	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 'k': check = true; break;
		case 'l':
			if (log_level_parse(optarg, &level)) {
				fprintf(stderr, "iketcpd: unknown log level \"%s\"\n", optarg);
				return 2;
			}
			log_set_level(level);
			break;
		case 't': {
			char *end;
			errno = 0;
			unsigned long n = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || *optarg == '-' || n < 1 || n > WORKERS_MAX) {
				fprintf(stderr, "iketcpd: --dataplane-threads wants a number from 1 to %u, not \"%s\"\n",
					WORKERS_MAX, optarg);
				return 2;
			}
			dp_threads = (unsigned)n;
			break;
		}
		case 'V': printf("iketcpd %s\n", IKETCP_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "iketcpd: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	err = conf_load_file(path, &conf, &diag);
	for (size_t i = 0; i < diag.n; i++)
		fprintf(stderr, "%s\n", diag.lines[i]);
	conf_diag_free(&diag);
	if (err)
		return 1;
	if (check) {
		daemon_config_warnings(conf, print_warning, (void *)path);
		printf("%s: OK (%zu phase1, %zu phase2)\n", path, conf->n_phase1, conf->n_phase2);
		conf_free(conf);
		return 0;
	}

	err = daemon_start(&d, path, conf, dp_threads);
	if (err) {
		log_error("iketcpd not started: %s", strerror(-err));
		conf_free(conf);
		return 1;
	}
	err = loop_run(d.loop);
	if (err)
		log_error("event loop: %s", strerror(-err));
	struct config *running = d.conf;
	daemon_stop(&d);
	conf_free(running);
	log_info("iketcpd stopped");
	return err ? 1 : 0;
}
