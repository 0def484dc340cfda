/*
 * ns per packet of steer.bpf.c's XDP program through BPF_PROG_TEST_RUN.
 * In-kernel repeat loops run on one buffer, so a packet the program rewrites
 * stops matching after the first pass; the rewrite path is therefore timed with
 * repeat=1 runs (kernel-measured, averaged), and that method's own overhead is
 * shown on a non-matching packet next to it. Prints a table and one JSON line.
 * Usage: bench_steer [repeat]   (default 1000000; needs root)
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "maps/maps.h"
#include "steer.skel.h"
#include "tests/bpf/steer_pkt.h"

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level, (void)fmt, (void)ap;
	return 0;
}

static int set_config(struct steer_bpf *skel, uint16_t ike, uint32_t rate)
{
	struct steer_config c = { .ike_tcp_port = ike, .internal_port = 11443, .syn_rate = rate };
	uint32_t k = 0;

	return bpf_map_update_elem(bpf_map__fd(skel->maps.steer_config), &k, &c, BPF_ANY);
}

/* Average ns per run: one in-kernel loop of `repeat` runs, or `repeat` single runs. */
static double time_prog(int fd, const struct pkt_spec *s, uint32_t repeat, bool singles, uint32_t *verdict)
{
	uint8_t in[512], out[512];
	struct pkt_layout l = { 0 };
	uint64_t total = 0;
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_out = out);

	if (!pkt_build(in, sizeof(in), s, &l))
		return -1;
	o.data_size_in = (uint32_t)l.len;
	if (!singles) {
		/* Warm-up run on its own copy: fills the SYN bucket so the loop sees the steady state. */
		o.data_size_out = sizeof(out);
		o.repeat = 1;
		if (bpf_prog_test_run_opts(fd, &o))
			return -1;
		o.data_size_out = sizeof(out);
		o.repeat = repeat;
		if (bpf_prog_test_run_opts(fd, &o))
			return -1;
		*verdict = o.retval;
		return o.duration;
	}
	for (uint32_t i = 0; i < repeat; i++) {
		o.data_size_out = sizeof(out);
		o.repeat = 1;
		if (bpf_prog_test_run_opts(fd, &o))
			return -1;
		total += o.duration;
	}
	*verdict = o.retval;
	return (double)total / repeat;
}

int main(int argc, char **argv)
{
	uint32_t repeat = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 0) : 1000000;
	uint32_t singles = repeat / 5 ? repeat / 5 : 1;
	static const struct {
		const char *key, *what;
		struct pkt_spec spec;
		uint16_t ike;
		uint32_t rate;
		bool singles;
	} cases[] = {
		{ "nomatch_v4", "IPv4 TCP :80, passed", { .dport = 80, .payload_len = 64 }, 443, 0, false },
		{ "nomatch_v6", "IPv6 TCP :80, passed", { .v6 = true, .dport = 80, .payload_len = 64 }, 443, 0, false },
		{ "nontcp_v4", "IPv4 UDP :443, passed", { .proto = 17, .dport = 443, .payload_len = 64 }, 443, 0, false },
		{ "match_norewrite_v4", "IPv4 TCP :4500, ike-tcp-port 4500", { .dport = 4500, .payload_len = 64 }, 4500, 0, false },
		{ "syn_drop_v4", "IPv4 SYN :443 over limit, dropped", { .dport = 443, .tcp_flags = TCPF_SYN }, 443, 1, false },
		{ "match_v4", "IPv4 TCP :443 -> 11443 (single runs)", { .dport = 443, .payload_len = 64 }, 443, 0, true },
		{ "match_v6", "IPv6 TCP :443 -> 11443 (single runs)", { .v6 = true, .dport = 443, .payload_len = 64 }, 443, 0, true },
		{ "nomatch_v4_single", "IPv4 TCP :80 (single runs: method overhead)", { .dport = 80, .payload_len = 64 }, 443, 0, true },
	};
	double ns[sizeof(cases) / sizeof(cases[0])];
	struct steer_bpf *skel;
	int fd;

	libbpf_set_print(quiet);
	skel = steer_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "bench_steer: steer.bpf.o does not load (%s): needs root and BPF\n", strerror(errno));
		return 77;
	}
	fd = bpf_program__fd(skel->progs.xdp_steer);
	printf("%-20s %-44s %10s %8s %s\n", "case", "packet", "runs", "ns/pkt", "verdict");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t verdict = 0, runs = cases[i].singles ? singles : repeat;

		if (set_config(skel, cases[i].ike, cases[i].rate)) {
			fprintf(stderr, "bench_steer: config: %s\n", strerror(errno));
			steer_bpf__destroy(skel);
			return 1;
		}
		ns[i] = time_prog(fd, &cases[i].spec, runs, cases[i].singles, &verdict);
		if (ns[i] < 0) {
			fprintf(stderr, "bench_steer: %s: test run: %s\n", cases[i].key, strerror(errno));
			steer_bpf__destroy(skel);
			return 1;
		}
		printf("%-20s %-44s %10u %8.1f %s\n", cases[i].key, cases[i].what, runs, ns[i],
		       verdict == XDP_PASS ? "XDP_PASS" : verdict == XDP_DROP ? "XDP_DROP" : "?");
	}
	printf("{\"bench\":\"steer\",\"unit\":\"ns_per_packet\",\"repeat\":%u", repeat);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		printf(",\"%s\":%.1f", cases[i].key, ns[i]);
	printf("}\n");
	steer_bpf__destroy(skel);
	return 0;
}
