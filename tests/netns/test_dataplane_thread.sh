#!/usr/bin/env bash
# Packets are handled off the IKE and control loop (daemon/dpthread.h): on the reference topology, with
# the tunnel up over TCP 443,
#  1. each gateway's IKE thread is held busy for 5 s (the control socket's debug-stall, test builds only: what a
#     burst of key exchanges or a slow certificate check does to it) while hostA pings hostB every 10 ms
#     and sends 4 MB to it: no ping is lost, none takes long, the transfer completes during the stall;
#  2. gwB's IKE thread is flooded with IKE_SA_INIT over UDP that answers its cookies (a MODP-2048 key
#     exchange for each, more than gwB can compute) while hostA pings hostB every 10 ms: no ping is lost,
#     none takes 100 ms, the tunnel stays up. (With IKE and packets on one loop, pings took up to 136 ms,
#     12 ms on average, in the same flood.)
# Both gateways run under ThreadSanitizer when build/iketcpd-tsan exists, each with three threads sealing
# and opening ESP (daemon/workers.h), more than this machine has cores: the workers must have taken part.
. "$(dirname "$0")/lib.sh"
. "$TOP/scripts/topology.sh"
need_root
# Under ThreadSanitizer when it is built (make netns builds it): two threads share the transport and
# the dataplane, and daemon_stop fails the test on any report.
[ -x "$BUILD/iketcpd-tsan" ] && IKETCPD=$BUILD/iketcpd-tsan
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=0:second_deadlock_stack=1}
IKETCPD_ARGS="--dataplane-threads 3"
need python3 jq
HOSTILE="$TOP/tests/netns/udp_hostile.py"
GWB=203.0.113.2

topo_up "$NSP" || fail "topology"
NSS+=("$NSP-hostA" "$NSP-gwA" "$NSP-carrier" "$NSP-gwB" "$NSP-hostB")
# The flood comes from the carrier's own addresses (its UDP rule only drops what it forwards).
ip netns exec "$NSP-carrier" iptables -t nat -I POSTROUTING -o c1 -s 203.0.113.0/24 -j RETURN || fail "carrier: NAT rule"
SOURCES=""
for i in $(seq 100 103); do
	ip -n "$NSP-carrier" addr add 203.0.113.$i/32 dev c1
	SOURCES+="${SOURCES:+,}203.0.113.$i"
done
for gw in gwA gwB; do
	topo_gateway_conf "$TOP/tests/conf/$gw.conf" "$TMP/$gw.conf" "$TMP/$gw" "/sys/fs/bpf/$NSP-$gw"
	mkdir -p "$TMP/$gw"
done
sed -i "s/set transport auto/set transport tcp/" "$TMP/gwA.conf"
# MODP-2048 for the flood: a key exchange costs the IKE thread about a millisecond.
sed -i "s/set dhgrp 19 31/set dhgrp 19 31 14/" "$TMP/gwB.conf"

ctl() { local gw=$1; shift; ip netns exec "$NSP-$gw" "$IKETCPCTL" -s "$TMP/$gw/iketcpd.sock" "$@"; }
# stall GW MS: the test build's debug-stall request, straight on the control socket (iketcpctl has no such command).
stall() {
	python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(("debug-stall %s\n" % sys.argv[2]).encode())
sys.stdout.write(s.makefile().read())' "$TMP/$1/iketcpd.sock" "$2"
}
established() { ctl "$1" status --json | jq -e '.tunnels[0].state == "established" and (.tunnels[0].child_sas | length) >= 1' >/dev/null; }

# ping_check LOG LABEL MAX_MS: no loss, no reply slower than MAX_MS; prints the summary.
ping_check() {
	local loss max
	loss=$(sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' "$1")
	max=$(awk -F/ '/^rtt|^round-trip/ { printf "%d", $7 }' "$1")
	log "$2: $(grep -E 'transmitted|rtt' "$1" | tr '\n' ' ')"
	[ "$loss" = 0 ] || fail "$2: ${loss}% of pings lost"
	[ -n "$max" ] && [ "$max" -lt "$3" ] || fail "$2: slowest ping ${max:-?} ms (limit $3 ms)"
}

daemon_start gwB "$TMP/gwB.conf" gwB
daemon_start gwA "$TMP/gwA.conf" gwA
wait_for 20 established gwA || { ctl gwA status; fail "tunnel not established"; }
wait_for 5 established gwB || fail "gwB: tunnel not established"
[ "$(ctl gwA status --json | jq -r '.tunnels[0].transport')" = tcp ] || fail "the tunnel is not over TCP"
nsx hostA ping -c 3 -i 0.2 -W 2 10.2.0.10 >/dev/null || fail "ping before the test"

# ---- 1. an IKE thread that does not answer for 5 s ----
for gw in gwA gwB; do
	bg stall-$gw stall $gw 5000
	STALL=$LAST_PID
	wait_for 5 grep -q "debug-stall: the IKE thread sleeps" "$TMP/$gw.log" || fail "$gw: the stall did not start"
	# The control socket is the IKE thread's: it really is busy now.
	timeout 1 ip netns exec "$NSP-$gw" "$IKETCPCTL" -s "$TMP/$gw/iketcpd.sock" status >/dev/null 2>&1 &&
		fail "$gw: the IKE thread answered during its stall (the stall did not happen)"
	t0=$(date +%s%N)
	tcp_transfer hostA hostB 10.2.0.10 "$gw stalled"
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	kill -0 "$STALL" 2>/dev/null || fail "$gw: the stall was over before the transfer ended (${ms} ms)"
	nsx hostA ping -c 100 -i 0.01 -W 1 10.2.0.10 >"$TMP/ping-stall-$gw.log" 2>&1
	kill -0 "$STALL" 2>/dev/null || fail "$gw: the stall was over before the pings ended"
	log "$gw stalled: 4 MB through the tunnel in ${ms} ms"
	ping_check "$TMP/ping-stall-$gw.log" "$gw stalled" 200
	wait "$STALL" || fail "$gw: debug-stall failed: $(cat "$TMP/stall-$gw.log")"
	grep -q "^OK" "$TMP/stall-$gw.log" && grep -q "stalled 5000 ms" "$TMP/stall-$gw.log" || fail "$gw: debug-stall said $(cat "$TMP/stall-$gw.log")"
done
established gwA && established gwB || fail "the tunnel went down across the stalls"
for gw in gwA gwB; do
	threads=$(ctl $gw status --json | jq -r .daemon.dataplane_threads)
	shared=$(stat_of $gw "$TMP/$gw/iketcpd.sock" esp shared_batches)
	helped=$(stat_of $gw "$TMP/$gw/iketcpd.sock" esp worker_packets)
	log "$gw: ESP crypto on $threads threads: $shared batches shared, $helped packets on workers"
	[ "$threads" = 3 ] || fail "$gw: --dataplane-threads 3 gave $threads"
	[ "$shared" -gt 0 ] && [ "$helped" -gt 0 ] || fail "$gw: the crypto workers did not take part"
done

# ---- 2. an IKE_SA_INIT flood that answers its cookies: a MODP-2048 key exchange per request ----
before_ike=$(stat_of gwB "$TMP/gwB/iketcpd.sock" udp ike_in)
bg flood nsx carrier python3 "$HOSTILE" flood $GWB --sources "$SOURCES" --socks 256 --per-sock 16 --secs 4 --answer-cookies --group 14
FLOOD=$LAST_PID
sleep 0.5
nsx hostA ping -c 300 -i 0.01 -W 1 10.2.0.10 >"$TMP/ping-flood.log" 2>&1
half_open=$(stat_of gwB "$TMP/gwB/iketcpd.sock" ike half_open)
wait "$FLOOD" || true # the flood's own verdict is test_udp_bad_input's business; here only gwB's counters
sed 's/^/      /' "$TMP/flood.log" | tail -3
ike_in=$(( $(stat_of gwB "$TMP/gwB/iketcpd.sock" udp ike_in) - before_ike ))
drops=$(stat_of gwB "$TMP/gwB/iketcpd.sock" ike queue_drops)
log "flood: $ike_in IKE messages reached gwB, $half_open half-open SAs during it, ike.queue_drops $drops"
[ "$ike_in" -ge 2000 ] || fail "the flood hardly reached gwB ($ike_in IKE messages)"
ping_check "$TMP/ping-flood.log" "pings during the flood" 100
established gwA && established gwB || fail "the tunnel went down during the flood"
nsx hostA ping -c 3 -i 0.2 -W 2 10.2.0.10 >/dev/null || fail "ping after the flood"

daemon_stop gwA
daemon_stop gwB
exit 0
