#!/usr/bin/env bash
# iperf3 from hostA to hostB on the reference topology: plain routing (no tunnel) first, then through
# the iketcp tunnel for each ESP suite, over TCP, TLS and UDP, with one and four streams; the daemons'
# CPU per Gbit/s; the average ping RTT; and the openssl speed ceiling for the same ciphers, all in one
# run. Prints a table and one JSON line.
#
# Next to plain routing, the same routing with an XDP program on the gateways' LAN veths: the
# kernel's ceiling for an AF_XDP dataplane on veth (see below).
# And a TUN relay without ESP (tests/bench/tun_relay.c): the kernel's ceiling for the TUN dataplane,
# with its CPU s/Gbit. A tunnel row's gap to it is crypto and iketcp's own work; its gap from it to
# plain routing is the TUN devices and the outer TCP stream, which no user-space work can remove.
# The same relay once more with AES-128-GCM sealing and opening every MTU-sized piece (`tun_relay
# ... aead`): the ceiling of any ESP tunnel through a TUN and a kernel TCP socket on this machine.
#
# Each tunnel row runs with each dataplane in BENCH_DATAPLANE (xdp, tun; default both): AF_XDP rows as
# before, TUN rows (`set dataplane tun`, virtio-net offloads) labelled SUITE/tun.
#
# Each row also runs with `set xdp-mode generic` (label SUITE[/tun]/gen): the steering
# program, and with AF_XDP the clear one, attached in generic mode. On veth, native XDP turns off the
# peer's GSO (see "plain, XDP on WANs" below), which caps the outer stream and, with AF_XDP, the inner one;
# generic mode keeps it, and the AF_XDP sockets take whole superpackets (multi-buffer). Real NICs have no
# such coupling.
# And with `set steer-hook tc` (label .../tc): the steering at tc ingress, no XDP on the WANs, so
# no copy for a program; AF_XDP rows keep generic XDP on the LANs.
# BENCH_XDP_MODE="native", "generic" or "tc" runs only that mode for every row.
#
# The first suite over TCP runs twice: with the daemons' default crypto threads (one per CPU,
# daemon/workers.h) and with `iketcpd --dataplane-threads 1` (label .../1thr). BENCH_THREADS="0 1"
# (0: the default) sets the list.
#
# Every single-stream figure, plain routing's too, is the median of BENCH_RUNS runs (3): single runs
# vary by a fifth on this shared machine.
#
# Narrower runs while tuning: BENCH_SUITES="aes128gcm" BENCH_TLS="disable" (enable: TLS transport; udp:
# ESP in UDP 4500, the carrier letting UDP through for that run),
# BENCH_STREAMS="1" (skip the four-stream run), BENCH_PERF=DIR (perf record -g of both daemons during
# the single-stream run, into DIR/<suite>-<tls>-<gw>.data, and of the whole machine into DIR/<suite>-<tls>-all.data
# and, for the TUN relays, DIR/tun-relay-{xdp,tc,tc-aead}-all.data; syscall and context switch counts of each daemon
# in DIR/<suite>-<tls>-<gw>.stat, its iketcpctl stats after the runs in DIR/<suite>-<tls>-<gw>.stats.json;
# BENCH_PERF_CALLGRAPH sets perf record's call-graph option, -g by default). BENCH_RATE=2G caps iperf3
# at that rate: two builds then move the same bytes, and their CPU s per Gbit compare without the
# throughput's noise.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/netns/lib.sh"
. "$TOP/scripts/topology.sh"
need_root
need iperf3 jq openssl
IKETCPD=$BUILD/iketcpd
SECS=${BENCH_SECONDS:-5}
SUITES=${BENCH_SUITES:-aes128gcm aes256gcm chacha20poly1305}
TLSES=${BENCH_TLS:-disable enable udp}
STREAMS=${BENCH_STREAMS:-1 4}
PERFDIR=${BENCH_PERF:-}
PERFCG=${BENCH_PERF_CALLGRAPH:--g} # e.g. "--call-graph dwarf": the daemon and libc keep no frame pointers
DATAPLANES=${BENCH_DATAPLANE:-xdp tun}
XDPMODE=${BENCH_XDP_MODE:-}
RUNS=${BENCH_RUNS:-3} # single-stream runs per row: the median is reported
RATE=${BENCH_RATE:-} # e.g. 2G: iperf3 at a fixed rate, to compare the daemons' CPU per Gbit/s at equal load

topo_up "$NSP" >/dev/null || fail "topology"
NSS+=("$NSP-hostA" "$NSP-gwA" "$NSP-carrier" "$NSP-gwB" "$NSP-hostB")
bg iperf3-server nsx hostB iperf3 -s -B 10.2.0.10

iperf() { # STREAMS -> Gbit/s
	nsx hostA iperf3 -c 10.2.0.10 -t "$SECS" -P "$1" ${RATE:+-b "$RATE"} -J 2>/dev/null |
		jq -r '.end.sum_received.bits_per_second / 1e9 | . * 1000 | round / 1000'
}
rtt() { # -> average ping RTT hostA -> hostB in ms
	nsx hostA ping -c 20 -i 0.02 -q 10.2.0.10 2>/dev/null | awk -F/ '/^rtt|^round-trip/ { print $5 }'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Plain: the same hosts and links, routed without any tunnel.
ip -n "$NSP-gwA" route add 10.2.0.0/24 via 100.64.0.1
ip -n "$NSP-carrier" route add 10.1.0.0/24 via 100.64.0.2
ip -n "$NSP-carrier" route add 10.2.0.0/24 via 203.0.113.2
ip -n "$NSP-gwB" route add 10.1.0.0/24 via 203.0.113.1
sleep 0.5
plain_rtt=$(rtt)
# single_runs: RUNS single-stream runs; their median in t1, their sum in carried.
single_runs() {
	local runs=() _
	for _ in $(seq "$RUNS"); do runs+=("$(iperf 1)"); done
	t1=$(printf '%s\n' "${runs[@]}" | sort -g | sed -n "$(( (RUNS + 1) / 2 ))p")
	carried=$(printf '%s\n' "${runs[@]}" | awk '{ s += $1 } END { print s + 0 }')
}
single_runs
plain1=$t1
plain4=0
case " $STREAMS " in *" 4 "*) plain4=$(iperf 4) ;; esac
# The kernel's own floor for what the AF_XDP dataplane needs: the same routing with an XDP program
# (clear.bpf.o, empty maps: everything passes) on the gateways' LAN veths. XDP on a veth turns off its
# peer's GSO, so the LAN hosts' TCP goes hop by hop in MTU-sized packets, tunnel or not.
xdp_floor=0 xdp_floor_gen=0
if [ -e "$BUILD/bpf/clear.bpf.o" ]; then
	for gw in gwA gwB; do ip -n "$NSP-$gw" link set dev lan0 xdpdrv obj "$BUILD/bpf/clear.bpf.o" sec xdp; done
	sleep 0.5
	xdp_floor=$(iperf 1)
	for gw in gwA gwB; do ip -n "$NSP-$gw" link set dev lan0 xdpdrv off; done
	# Generic mode (`set xdp-mode generic`): the LAN hosts keep their GSO.
	for gw in gwA gwB; do ip -n "$NSP-$gw" link set dev lan0 xdpgeneric obj "$BUILD/bpf/clear.bpf.o" sec xdp; done
	sleep 0.5
	xdp_floor_gen=$(iperf 1)
	for gw in gwA gwB; do ip -n "$NSP-$gw" link set dev lan0 xdpgeneric off; done
fi
# The same for the WAN: the daemons' steering program (steer.bpf.o, empty maps: everything passes) on
# the gateways' WAN veths, as every tunnel row runs it. It takes the carrier's GSO away from the outer
# stream as the LAN one does from the clear traffic: a floor for both dataplanes.
xdp_wan=0 xdp_wan_gen=0
if [ -e "$BUILD/bpf/steer.bpf.o" ]; then
	for gw in gwA gwB; do ip -n "$NSP-$gw" link set dev wan0 xdpdrv obj "$BUILD/bpf/steer.bpf.o" sec xdp; done
	sleep 0.5
	xdp_wan=$(iperf 1)
	for gw in gwA gwB; do ip -n "$NSP-$gw" link set dev wan0 xdpdrv off; done
	# The same in generic mode (`set xdp-mode generic`): the carrier keeps its GSO, each
	# non-linear skb is copied once for the program.
	for gw in gwA gwB; do ip -n "$NSP-$gw" link set dev wan0 xdpgeneric obj "$BUILD/bpf/steer.bpf.o" sec xdp; done
	sleep 0.5
	xdp_wan_gen=$(iperf 1)
	for gw in gwA gwB; do ip -n "$NSP-$gw" link set dev wan0 xdpgeneric off; done
fi
ip -n "$NSP-gwA" route del 10.2.0.0/24
ip -n "$NSP-carrier" route del 10.1.0.0/24
ip -n "$NSP-carrier" route del 10.2.0.0/24
ip -n "$NSP-gwB" route del 10.1.0.0/24

# The floor of the TUN rows: the same TUN devices and outer TCP stream, the steering program on the
# WANs, but no ESP and no per-packet work (tests/bench/tun_relay.c): one superpacket per read and per
# write, relayed by a blocking thread per direction. What it moves is the most the kernel's side of
# the TUN dataplane could carry here; its CPU s/Gbit, the relays', is the part of the daemons' that
# is not crypto or iketcp's own. Twice: steering in generic XDP (the .../gen rows) and at tc (.../tc).
RELAY=${BENCH_RELAY:-$BUILD/bench/tun_relay} # BENCH_RELAY: another relay binary, for experiments
steer_wans() { # on|off HOOK: the steering programs on both WANs, by hand, as the daemon attaches them
	local gw steer=$BUILD/bpf/steer.bpf.o
	for gw in gwA gwB; do
		if [ "$1" = on ]; then
			ip netns exec "$NSP-$gw" tc qdisc add dev wan0 clsact
			ip netns exec "$NSP-$gw" tc filter add dev wan0 egress bpf da obj "$steer" sec tc
			if [ "$2" = xdp ]; then
				ip -n "$NSP-$gw" link set dev wan0 xdpgeneric obj "$steer" sec xdp
			else
				ip netns exec "$NSP-$gw" tc filter add dev wan0 ingress bpf da obj "$steer" sec classifier
			fi
		else
			[ "$2" = xdp ] && ip -n "$NSP-$gw" link set dev wan0 xdpgeneric off
			ip netns exec "$NSP-$gw" tc qdisc del dev wan0 clsact
		fi
	done
}
relay_floor() { # HOOK [aead] -> relay1, relay_cpu
	relay1=0 relay_cpu=0
	[ -x "$RELAY" ] && [ -e "$BUILD/bpf/steer.bpf.o" ] || return 0
	steer_wans on "$1"
	# Port 12443: neither the IKE port nor the internal one, so both programs pass it untouched.
	bg relayB nsx gwB "$RELAY" relay0 listen 203.0.113.2 12443 ${2:-}
	local relayB_pid=$LAST_PID
	wait_for 5 ip -n "$NSP-gwB" link show relay0 || fail "tun_relay: no TUN on gwB"
	bg relayA nsx gwA "$RELAY" relay0 connect 203.0.113.2 12443 ${2:-}
	local relayA_pid=$LAST_PID
	wait_for 5 ip -n "$NSP-gwA" link show relay0 || fail "tun_relay: no TUN on gwA"
	ip -n "$NSP-gwA" route add 10.2.0.0/24 dev relay0
	ip -n "$NSP-gwB" route add 10.1.0.0/24 dev relay0
	wait_for 10 nsx hostA ping -c 1 -W 1 10.2.0.10 || fail "tun_relay: no path through the relay"
	local c0 c1 relay_perf=
	c0=$(( $(cpu_ticks "$relayA_pid") + $(cpu_ticks "$relayB_pid") ))
	if [ -n "$PERFDIR" ]; then
		mkdir -p "$PERFDIR"
		perf record $PERFCG -a -o "$PERFDIR/tun-relay-$1${2:+-$2}-all.data" -- sleep "$SECS" >/dev/null 2>&1 &
		relay_perf=$!
	fi
	single_runs
	[ -n "$relay_perf" ] && wait "$relay_perf"
	c1=$(( $(cpu_ticks "$relayA_pid") + $(cpu_ticks "$relayB_pid") ))
	relay1=$t1
	relay_cpu=$(awk -v d=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v s="$SECS" -v g="$carried" 'BEGIN { printf "%.3f", (g > 0) ? d / hz / s / g : 0 }')
	kill "$relayA_pid" "$relayB_pid" 2>/dev/null
	wait "$relayA_pid" "$relayB_pid" 2>/dev/null
	steer_wans off "$1"
}
relay_floor xdp
relay_xdp=$relay1 relay_xdp_cpu=$relay_cpu
relay_floor tc
relay_tc=$relay1 relay_tc_cpu=$relay_cpu
relay_floor tc aead
relay_aead=$relay1 relay_aead_cpu=$relay_cpu

ceiling() { # EVP cipher -> GB/s at 1420-byte blocks, one core
	openssl speed -elapsed -seconds 2 -bytes 1420 -evp "$1" 2>/dev/null |
		awk -v c="$1" 'tolower($1) == tolower(c) { v = $NF; sub("k", "", v); printf "%.2f", v * 1000 / 1e9 }'
}

printf '%-24s %-4s %8s %8s %8s %8s %12s %8s\n' suite via "1 strm" "vs plain" "4 strm" "vs plain" "CPU s/Gbit" "RTT ms"
printf '%-24s %-4s %8s %8s %8s %8s %12s %8s\n' "plain routing" "-" "$plain1" "1.000" "$plain4" "1.000" "-" "${plain_rtt:-?}"
printf '%-24s %-4s %8s %8s\n' "plain, XDP on LANs" "-" "$xdp_floor" "$(awk -v a="$xdp_floor" -v b="$plain1" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')"
printf '%-24s %-4s %8s %8s\n' "plain, XDP gen. on LANs" "-" "$xdp_floor_gen" "$(awk -v a="$xdp_floor_gen" -v b="$plain1" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')"
printf '%-24s %-4s %8s %8s\n' "plain, XDP on WANs" "-" "$xdp_wan" "$(awk -v a="$xdp_wan" -v b="$plain1" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')"
printf '%-24s %-4s %8s %8s\n' "plain, XDP gen. on WANs" "-" "$xdp_wan_gen" "$(awk -v a="$xdp_wan_gen" -v b="$plain1" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')"
printf '%-24s %-4s %8s %8s %8s %8s %12s\n' "TUN relay, no ESP, gen." "tcp" "$relay_xdp" "$(awk -v a="$relay_xdp" -v b="$plain1" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')" "" "" "$relay_xdp_cpu"
printf '%-24s %-4s %8s %8s %8s %8s %12s\n' "TUN relay, no ESP, tc" "tcp" "$relay_tc" "$(awk -v a="$relay_tc" -v b="$plain1" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')" "" "" "$relay_tc_cpu"
printf '%-24s %-4s %8s %8s %8s %8s %12s\n' "TUN relay, AEAD only, tc" "tcp" "$relay_aead" "$(awk -v a="$relay_aead" -v b="$plain1" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')" "" "" "$relay_aead_cpu"
json="{\"bench\":\"tunnel\",\"seconds\":$SECS,\"plain_gbps\":{\"1\":$plain1,\"4\":$plain4},\"plain_xdp_lan_gbps\":$xdp_floor,\"plain_xdp_lan_generic_gbps\":$xdp_floor_gen,\"plain_xdp_wan_gbps\":$xdp_wan,\"plain_xdp_wan_generic_gbps\":$xdp_wan_gen,\"tun_relay_gbps\":{\"generic_xdp\":$relay_xdp,\"tc\":$relay_tc,\"tc_aead\":$relay_aead},\"tun_relay_cpu_s_per_gbit\":{\"generic_xdp\":$relay_xdp_cpu,\"tc\":$relay_tc_cpu,\"tc_aead\":$relay_aead_cpu},\"plain_rtt_ms\":${plain_rtt:-0},\"runs\":["
first=1
for suite in $SUITES; do
	for tls in $TLSES; do
	for dp in $DATAPLANES; do
	modes=${XDPMODE:-native}
	[ -z "$XDPMODE" ] && modes="native generic tc"
	for mode in $modes; do
	# The first suite over plain TCP also runs with one thread in all (no crypto workers) next to the
	# default (one per CPU): on this machine the hosts and the carrier need the second core.
	threads_list=0
	[ "$suite" = "${SUITES%% *}" ] && [ "$tls" = disable ] && threads_list=${BENCH_THREADS:-0 1}
	for threads in $threads_list; do
		IKETCPD_ARGS=
		[ "$threads" -gt 0 ] && IKETCPD_ARGS="--dataplane-threads $threads"
		label=$suite
		[ "$dp" = tun ] && label=$suite/tun
		tag=$suite-$tls
		[ "$dp" = tun ] && tag=$suite-$tls-tun
		[ "$mode" = generic ] && label=$label/gen && tag=$tag-gen
		[ "$mode" = tc ] && label=$label/tc && tag=$tag-tc
		[ "$threads" -gt 0 ] && label=$label/${threads}thr && tag=$tag-${threads}thr
		for gw in gwA gwB; do
			mkdir -p "$TMP/$gw"
			topo_gateway_conf "$TOP/tests/conf/$gw.conf" "$TMP/$gw.conf" "$TMP/$gw" "/sys/fs/bpf/$NSP-$gw"
			if [ "$tls" = udp ]; then
				sed -i "s/set transport auto/set transport udp/" "$TMP/$gw.conf"
			else
				sed -i "s/set ike-tls-service disable/set ike-tls-service $tls/" "$TMP/$gw.conf"
			fi
			sed -i "s/set proposal aes128gcm aes256gcm/set proposal $suite/" "$TMP/$gw.conf"
			[ "$dp" = tun ] && sed -i '/^config system settings/a\    set dataplane tun' "$TMP/$gw.conf"
			[ "$mode" = generic ] && sed -i '/^config system settings/a\    set xdp-mode generic' "$TMP/$gw.conf"
			[ "$mode" = tc ] && sed -i '/^config system settings/a\    set xdp-mode generic\n    set steer-hook tc' "$TMP/$gw.conf"
		done
		[ "$tls" = udp ] && nsx carrier iptables -D FORWARD -p udp -j DROP
		daemon_start gwB "$TMP/gwB.conf" gwB >/dev/null
		daemon_start gwA "$TMP/gwA.conf" gwA >/dev/null
		up() { ip netns exec "$NSP-$1" "$IKETCPCTL" -s "$TMP/$1/iketcpd.sock" status --json | jq -e '.tunnels[0].child_sas | length >= 1' >/dev/null; }
		wait_for 20 up gwA || fail "$suite tls $tls: tunnel not up"
		wait_for 5 up gwB || fail "$suite tls $tls: tunnel not up on gwB"
		perfpids=()
		if [ -n "$PERFDIR" ]; then
			mkdir -p "$PERFDIR"
			for gw in gwA gwB; do
				pid_var=${gw}_PID
				perf record $PERFCG -o "$PERFDIR/$tag-$gw.data" -p "${!pid_var}" -- sleep "$SECS" \
					>/dev/null 2>&1 &
				perfpids+=($!)
				perf stat -e 'syscalls:sys_enter_sendto,syscalls:sys_enter_read,syscalls:sys_enter_epoll_wait,context-switches' \
					-o "$PERFDIR/$tag-$gw.stat" -p "${!pid_var}" -- sleep "$SECS" >/dev/null 2>&1 &
				perfpids+=($!)
			done
			perf record -a -o "$PERFDIR/$tag-all.data" -- sleep "$SECS" >/dev/null 2>&1 &
			perfpids+=($!)
		fi
		dp_threads=$(ip netns exec "$NSP-gwA" "$IKETCPCTL" -s "$TMP/gwA/iketcpd.sock" status --json | jq -r '.daemon.dataplane_threads // 1')
		tun_rtt=$(rtt)
		c0=$(( $(cpu_ticks "$gwA_PID") + $(cpu_ticks "$gwB_PID") ))
		single_runs
		c1=$(( $(cpu_ticks "$gwA_PID") + $(cpu_ticks "$gwB_PID") ))
		for p in "${perfpids[@]}"; do wait "$p"; done
		t4=0
		case " $STREAMS " in *" 4 "*) t4=$(iperf 4) ;; esac
		if [ -n "$PERFDIR" ]; then
			for gw in gwA gwB; do
				ip netns exec "$NSP-$gw" "$IKETCPCTL" -s "$TMP/$gw/iketcpd.sock" stats --json \
					>"$PERFDIR/$tag-$gw.stats.json" 2>/dev/null
			done
		fi
		# CPU seconds of both daemons per Gbit/s carried, over the single-stream runs.
		cpu=$(awk -v d=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v s="$SECS" -v g="$carried" 'BEGIN { x = (g > 0) ? d / hz / s / g : 0; printf "%.3f", x }')
		r1=$(awk -v a="$t1" -v b="$plain1" 'BEGIN { printf "%.3f", a / b }')
		r4=$(awk -v a="$t4" -v b="$plain4" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
		[ "$tls" = udp ] && nsx carrier iptables -A FORWARD -p udp -j DROP
		via=$(case $tls in enable) echo tls ;; udp) echo udp ;; *) echo tcp ;; esac)
		printf '%-24s %-4s %8s %8s %8s %8s %12s %8s\n' "$label" "$via" "$t1" "$r1" "$t4" "$r4" "$cpu" "${tun_rtt:-?}"
		[ $first -eq 1 ] || json+=","
		first=0
		json+="{\"suite\":\"$suite\",\"dataplane\":\"$dp\",\"xdp_mode\":\"$mode\",\"dataplane_threads\":$dp_threads,\"transport\":\"$via\",\"gbps_1\":$t1,\"ratio_1\":$r1,\"gbps_4\":$t4,\"ratio_4\":$r4,\"cpu_s_per_gbit\":$cpu,\"rtt_ms\":${tun_rtt:-0}}"
		daemon_stop gwA
		daemon_stop gwB
	done
	done
	done
	done
done
IKETCPD_ARGS=
c128=0 c256=0 cchacha=0
if [ -z "${BENCH_SUITES:-}" ]; then
	c128=$(ceiling aes-128-gcm)
	c256=$(ceiling aes-256-gcm)
	cchacha=$(ceiling chacha20-poly1305)
fi
if [ -z "${BENCH_SUITES:-}" ]; then
	echo "openssl speed ceiling, 1420-byte blocks, one core: AES-128-GCM $c128 GB/s, AES-256-GCM $c256 GB/s, ChaCha20-Poly1305 $cchacha GB/s"
fi
json+="],\"openssl_ceiling_GBps\":{\"aes128gcm\":${c128:-0},\"aes256gcm\":${c256:-0},\"chacha20poly1305\":${cchacha:-0}}}"
echo "$json"
