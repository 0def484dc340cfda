#!/usr/bin/env bash
# IKE SAs established per second over real TCP (RFC 9329 on port 443, through the XDP steering), or
# over UDP 500/4500 with BENCH_IKE_TRANSPORT=udp:
# an initiator iketcpd with N static tunnels (default 1000; PSK, Curve25519, aes128gcm-prfsha256, one
# CHILD SA each) against a dynamic responder iketcpd pinned to one core. All N start at once; the time
# runs from the initiator's first "initiating" log line to its last "established" one (both its own
# millisecond timestamps, so daemon start-up is not counted). The responder's CPU time for the round
# (/proc utime+stime) gives what one responder core could sustain. Best of R rounds (default 3).
# Prints a table and one JSON line. The engine alone, without TCP: build/bench/bench_ike_sa.
#
#   ini (iketcpd, N tunnels) 192.0.2.2 eth0/wan0 ==== wan0 192.0.2.1 rsp (iketcpd, dynamic, one core)
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/netns/lib.sh"
need_root
need jq taskset
N=${BENCH_IKE_TUNNELS:-1000}
ROUNDS=${BENCH_IKE_ROUNDS:-3}
TRANSPORT=${BENCH_IKE_TRANSPORT:-tcp}
case $TRANSPORT in tcp) WHAT="TCP 443" ;; udp) WHAT="UDP 500/4500" ;; *) fail "BENCH_IKE_TRANSPORT: tcp or udp" ;; esac
IKETCPD=$BUILD/iketcpd # release build: sanitizers would measure themselves
[ -x "$IKETCPD" ] || skip "build/iketcpd not built"
[ "$N" -ge 1 ] && [ "$N" -le 1000 ] || fail "BENCH_IKE_TUNNELS must be 1-1000"
NCPU=$(nproc)
RSP_CPU=$((NCPU > 1 ? 1 : 0))
INI_CPU=0

ns_add rsp
ns_add ini
veth rsp wan0 ini wan0
ip -n "$NSP-rsp" addr add 192.0.2.1/24 dev wan0
ip -n "$NSP-ini" addr add 192.0.2.2/24 dev wan0
for n in rsp ini; do
	ip -n "$NSP-$n" link add lan0 type veth peer name lan0p
	ip -n "$NSP-$n" link set lan0 up
	ip -n "$NSP-$n" link set lan0p up
done
mkdir -p "$TMP/rsp" "$TMP/ini"

P1='        set interface "wan0"
        set ike-version 2
        set authmethod psk
        set psksecret "benchmark secret"
        set proposal aes128gcm-prfsha256
        set dhgrp 31'
cat >"$TMP/rsp.conf" <<CONF
config system settings
    set ike-tcp-service enable
    set ike-tcp-port 443
    set ike-tcp-syn-rate 0
    set inner-interface "lan0"
    set control-socket "$TMP/rsp/ctl.sock"
    set bpf-pin-path "/sys/fs/bpf/$NSP-rsp"
end
config system global
    set admin-sport 8443
end
config vpn ipsec phase1-interface
    edit "branch"
        set type dynamic
$P1
        set localid "hq.example"
        set peerid "branch.example"
    next
end
config vpn ipsec phase2-interface
    edit "branch-lan"
        set phase1name "branch"
        set proposal aes128gcm
        set src-subnet 10.2.0.0 255.255.0.0
        set dst-subnet 10.1.0.0 255.255.0.0
    next
end
CONF
{
	cat <<CONF
config system settings
    set ike-tcp-service enable
    set ike-tcp-port 443
    set inner-interface "lan0"
    set control-socket "$TMP/ini/ctl.sock"
    set bpf-pin-path "/sys/fs/bpf/$NSP-ini"
end
config vpn ipsec phase1-interface
CONF
	for i in $(seq 0 $((N - 1))); do
		cat <<CONF
    edit "t$i"
        set remote-gw 192.0.2.1
        set transport $TRANSPORT
$P1
        set localid "branch.example"
        set peerid "hq.example"
    next
CONF
	done
	echo "end"
	echo "config vpn ipsec phase2-interface"
	for i in $(seq 0 $((N - 1))); do
		# host selectors of their own, so that no two CHILD SAs (or routes) collide
		cat <<CONF
    edit "t$i-lan"
        set phase1name "t$i"
        set proposal aes128gcm
        set src-subnet 10.1.$((i / 256)).$((i % 256)) 255.255.255.255
        set dst-subnet 10.2.$((i / 256)).$((i % 256)) 255.255.255.255
    next
CONF
	done
	echo "end"
} >"$TMP/ini.conf"

# start NS CPU: iketcpd of namespace NS on one CPU, info logging (what the time is read from)
start() {
	bg "$1" nsx "$1" taskset -c "$2" "$IKETCPD" -c "$TMP/$1.conf" --log-level info
	eval "${1}_PID=$LAST_PID" # ip netns exec and taskset both exec: this is iketcpd's pid
	wait_for 15 ip netns exec "$NSP-$1" "$IKETCPCTL" -s "$TMP/$1/ctl.sock" status ||
		fail "$1: no answer on its control socket"
}
start rsp "$RSP_CPU"
RSP_PID=$rsp_PID
rctl() { ip netns exec "$NSP-rsp" "$IKETCPCTL" -s "$TMP/rsp/ctl.sock" "$@"; }
ictl() { ip netns exec "$NSP-ini" "$IKETCPCTL" -s "$TMP/ini/ctl.sock" "$@"; }
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%d\n", s }'; } # ns on CPU, all threads
all_up() { [ "$(ictl status --json | jq '[.tunnels[] | select(.state == "established")] | length')" -eq "$N" ]; }
# HH:MM:SS.mmm of a log line -> milliseconds since midnight
ms_of() { awk '{ split($1, t, /[:.]/); print ((t[1] * 60 + t[2]) * 60 + t[3]) * 1000 + t[4] }'; }

best_rate=0 best_ms=0 best_cpu=0
for r in $(seq 1 "$ROUNDS"); do
	est0=$(stat_of rsp "$TMP/rsp/ctl.sock" ike sa_established)
	c0=$(cpu_ns "$RSP_PID")
	start ini "$INI_CPU"
	wait_for 120 all_up || { ictl status | head; fail "round $r: not all $N tunnels established in 120 s"; }
	c1=$(cpu_ns "$RSP_PID")
	first=$(grep -m1 "initiating IKE SA" "$TMP/ini.log" | ms_of)
	last=$(grep "established with" "$TMP/ini.log" | tail -1 | ms_of)
	ms=$((last - first))
	[ "$ms" -ge 0 ] || ms=$((ms + 86400000)) # past midnight
	[ "$ms" -gt 0 ] || ms=1
	est=$(($(stat_of rsp "$TMP/rsp/ctl.sock" ike sa_established) - est0))
	[ "$est" -eq "$N" ] || fail "round $r: the responder counted $est SAs, not $N"
	# ... and still holds them all (one peer's INITIAL_CONTACT must not wipe the others: 3.10.1)
	peers=$(rctl status --json | jq '.tunnels[0].peers')
	[ "$peers" -eq "$N" ] || fail "round $r: the responder holds $peers IKE SAs, not $N"
	cpu_us=$(((c1 - c0) / 1000))
	rate=$((N * 1000 / ms))
	log "round $r: $N SAs in $ms ms ($rate SAs/s), responder CPU $((cpu_us / 1000)) ms"
	[ "$rate" -gt "$best_rate" ] && { best_rate=$rate; best_ms=$ms; best_cpu=$cpu_us; }
	daemon_stop ini
	wait_for 30 bash -c "[ \"\$(ip netns exec $NSP-rsp $IKETCPCTL -s $TMP/rsp/ctl.sock status --json | jq '.tunnels[0].peers // 0')\" -eq 0 ]" ||
		fail "round $r: the responder kept SAs after the initiator's DELETEs"
done
daemon_stop rsp

us_per_sa=$((best_cpu / N))
core_rate=$([ "$best_cpu" -gt 0 ] && echo $((N * 1000000 / best_cpu)) || echo 0)
printf '%-44s %10s\n' "IKE SAs over $WHAT ($N tunnels, best of $ROUNDS)" ""
printf '%-44s %10s\n' "SAs established per second (wall)" "$best_rate"
printf '%-44s %10s\n' "time for all $N (ms)" "$best_ms"
printf '%-44s %10s\n' "responder CPU per SA (us)" "$us_per_sa"
printf '%-44s %10s\n' "responder-core bound (SAs/s)" "$core_rate"
echo "{\"bench\":\"ike_sa\",\"mode\":\"$TRANSPORT\",\"tunnels\":$N,\"rounds\":$ROUNDS,\"suite\":\"aes128gcm-prfsha256\",\"dhgrp\":31,\"auth\":\"psk\",\"ms\":$best_ms,\"sas_per_s\":$best_rate,\"responder_cpu_us\":$best_cpu,\"responder_us_per_sa\":$us_per_sa,\"responder_core_sas_per_s\":$core_rate,\"responder_cpu\":$RSP_CPU,\"initiator_cpu\":$INI_CPU}"
exit 0
