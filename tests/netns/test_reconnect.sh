#!/usr/bin/env bash
# An IKE SA outlives its TCP stream (RFC 9329 6.1), and a dead peer is found (DPD), on the
# reference topology (scripts/topology.sh):
#
#   hostA 10.1.0.10 -- lan0 gwA wan0 100.64.0.2 -- carrier -- 203.0.113.2 wan0 gwB lan0 -- hostB 10.2.0.10
#                 10.1.0.1                    (NAT + drops UDP)                   10.2.0.1
#
# 1. Tunnel up, ping running. The stream is killed with `ss -K` in gwA's namespace, then in gwB's
#    (gwA sees a reset it did not ask for): each time gwA's transport reconnects, both gateways keep
#    the SAME IKE SA (same SPIs) and ping gets through again within a few seconds.
# 2. DPD (on-idle, retryinterval 2 s, retrycount 2 on gwA): SIGKILL gwB's daemon -> gwA declares the
#    peer dead and removes its SAs; gwB restarts -> gwA initiates again and ping works.
. "$(dirname "$0")/lib.sh"
. "$TOP/scripts/topology.sh"
need_root
need python3 jq ss ping

topo_up "$NSP" || fail "topology"
NSS+=("$NSP-hostA" "$NSP-gwA" "$NSP-carrier" "$NSP-gwB" "$NSP-hostB")

for gw in gwA gwB; do
	topo_gateway_conf "$TOP/tests/conf/$gw.conf" "$TMP/$gw.conf" "$TMP/$gw" "/sys/fs/bpf/$NSP-$gw"
	mkdir -p "$TMP/$gw"
done
# Short DPD on the initiator (the one that re-initiates).
sed -i '/set dhgrp/a\        set dpd on-idle\n        set dpd-retryinterval 2\n        set dpd-retrycount 2' "$TMP/gwA.conf"
grep -q "dpd-retrycount 2" "$TMP/gwA.conf" || fail "could not set dpd in gwA.conf"

ctl() { local gw=$1; shift; ip netns exec "$NSP-$gw" "$IKETCPCTL" -s "$TMP/$gw/iketcpd.sock" "$@"; }
established() { ctl "$1" status --json | jq -e '.tunnels[0].state == "established" and (.tunnels[0].child_sas | length) >= 1' >/dev/null; }
spis() { ctl "$1" status --json | jq -r '.tunnels[0].ike_sa | "\(.spi_i) \(.spi_r)"'; }
pings() { nsx hostA ping -c 1 -W 1 10.2.0.10 >/dev/null; }
reconnects() { stat_of gwA "$TMP/gwA/iketcpd.sock" tcp reconnects; }

daemon_start gwB "$TMP/gwB.conf" gwB
daemon_start gwA "$TMP/gwA.conf" gwA
wait_for 20 established gwA || { ctl gwA status; ctl gwB status; fail "gwA: tunnel not established"; }
wait_for 5 established gwB || fail "gwB: tunnel not established"
wait_for 5 pings || fail "no ping through the tunnel"
sa_a=$(spis gwA)
sa_b=$(spis gwB)
log "IKE SA: gwA $sa_a, gwB $sa_b"
[ "$sa_a" = "$sa_b" ] || fail "gateways disagree on the IKE SA"

# A ping that runs through everything below; its log shows the gaps.
bg ping nsx hostA ping -i 0.2 -W 1 10.2.0.10
ping_pid=$LAST_PID

cut_and_check() { # NS FILTER...: kill the stream's socket there, then expect the same SA and ESP again
	local where=$1
	shift
	local before
	before=$(reconnects)
	local t0=$SECONDS
	nsx "$where" ss -K "$@" >>"$TMP/ss.log" 2>&1
	wait_for 5 bash -c "[ \$(ip netns exec $NSP-gwA $IKETCPCTL -s $TMP/gwA/iketcpd.sock stats --json | jq .tcp.reconnects) -gt $before ]" ||
		skip "ss -K did not cut the stream in $where (kernel without CONFIG_INET_DIAG_DESTROY?)"
	wait_for 10 pings || { ctl gwA status; ctl gwB status; fail "ping did not resume after the cut in $where"; }
	log "cut in $where: ping back after $((SECONDS - t0)) s"
	[ "$(spis gwA)" = "$sa_a" ] || fail "gwA has a new IKE SA after the cut in $where: $(spis gwA)"
	[ "$(spis gwB)" = "$sa_a" ] || fail "gwB has a new IKE SA after the cut in $where: $(spis gwB)"
	established gwA && established gwB || fail "tunnel not established after the cut in $where"
}

sleep 1
# gwA's own socket to 203.0.113.2:443.
cut_and_check gwA dst 203.0.113.2 dport = :443
grep -q "moved to a new stream" "$TMP/gwB.log" || fail "gwB did not move the IKE SA to the new stream"
sleep 1
# gwB's side: gwA gets a reset it did not ask for (gwA is behind the carrier's NAT at 203.0.113.1).
cut_and_check gwB dst 203.0.113.1
[ "$(grep -c "moved to a new stream" "$TMP/gwB.log")" -ge 2 ] || fail "gwB did not move the IKE SA again"
[ "$(stat_of gwA "$TMP/gwA/iketcpd.sock" ike sa_established)" -eq 1 ] || fail "gwA negotiated a new IKE SA"

# DPD: gwB dies without a word.
log "SIGKILL gwB"
kill -9 "$gwB_PID"
wait "$gwB_PID" 2>/dev/null
t0=$SECONDS
# Silence is noticed after one interval, then retrycount unanswered intervals: (2 + 1.5) x 2 s at worst.
wait_for 12 bash -c "! ip netns exec $NSP-gwA $IKETCPCTL -s $TMP/gwA/iketcpd.sock status --json | jq -e '.tunnels[0].state == \"established\"' >/dev/null" ||
	{ ctl gwA status; fail "gwA did not notice that gwB is dead"; }
log "gwA: peer dead after $((SECONDS - t0)) s"
grep -q "is dead" "$TMP/gwA.log" || fail "gwA did not log the dead peer"
ctl gwA status --json | jq -e '.tunnels[0].child_sas | length == 0' >/dev/null || fail "gwA kept its CHILD SAs"

# gwB comes back: gwA initiates again by itself (auto-negotiate) and the tunnel works.
daemon_start gwB "$TMP/gwB.conf" gwB2
wait_for 40 established gwA || { ctl gwA status; fail "gwA did not re-establish the tunnel"; }
wait_for 5 pings || fail "no ping after the tunnel came back"
[ "$(spis gwA)" != "$sa_a" ] || fail "the same IKE SA after the peer restarted"
log "tunnel back after $((SECONDS - t0)) s: $(spis gwA)"

# COOKIE (RFC 7296 2.6, RFC 9329 6.3): 60 half-open SAs held open from the carrier (past the
# threshold of 50); a new IKE_SA_INIT gets N(COOKIE) only and its stream closed; gwA, taken down and up,
# reconnects and gets in with the cookie.
cat >"$TMP/halfopen.py" <<'PY'
import socket, sys, time
sys.path.insert(0, sys.argv[1])
import ike_peer as P
host, n, hold = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
conns, kinds = [], []
def ask(s):
    s.sendall(P.frame(P.init_request()))
    r = P.Reader(s)
    m = r.next(3)
    if m is None:
        return "none", r
    hdr, pls = P.parse(m)
    nt = [t for t, _ in P.notifies(pls)]
    return ("cookie" if P.N_COOKIE in nt else "sa" if any(t == P.PL_SA for t, _, _ in pls) else "other"), r
srcs = sys.argv[5].split(",")
for i in range(n):
    s = P.connect(host, 443, src=srcs[i % len(srcs)])
    k, _ = ask(s)
    kinds.append(k)
    conns.append(s)
print("half-open:", {k: kinds.count(k) for k in set(kinds)}, flush=True)
s = P.connect(host, 443)
k, r = ask(s)
s.settimeout(3)
closed = r.next(3) is None and r.closed
print(f"fresh request: {k}, stream closed: {closed}", flush=True)
if k != "cookie" or not closed or kinds.count("sa") < 50:
    print("UNEXPECTED", flush=True)
    sys.exit(1)
print("holding", flush=True)
time.sleep(hold)
PY
grep -q "^N_COOKIE\|COOKIE *=" "$TOP/tests/netns/ike_peer.py" || sed -i 's/P.N_COOKIE/16390/' "$TMP/halfopen.py"
cookies0=$(stat_of gwB "$TMP/gwB/iketcpd.sock" ike cookies_sent)
# (at most IKE_MAX_HALF_OPEN_PEER, 16, per address: the flood comes from four)
for i in 100 101 102 103; do ip -n "$NSP-carrier" addr add 203.0.113.$i/24 dev c1; done
nsx carrier iptables -t nat -I POSTROUTING -s 203.0.113.0/24 -j RETURN # not behind the carrier's NAT
bg halfopen nsx carrier python3 "$TMP/halfopen.py" "$TOP/tests/netns" 203.0.113.2 60 20 \
	203.0.113.100,203.0.113.101,203.0.113.102,203.0.113.103
halfopen_pid=$LAST_PID
wait_for 15 grep -q "holding\|UNEXPECTED" "$TMP/halfopen.log" || { cat "$TMP/halfopen.log"; fail "half-open flood"; }
grep -q "holding" "$TMP/halfopen.log" || { cat "$TMP/halfopen.log"; fail "no COOKIE for a request past the threshold"; }
sed 's/^/      /' "$TMP/halfopen.log"
ctl gwA down to-hq >/dev/null || fail "iketcpctl down"
wait_for 5 bash -c "! ip netns exec $NSP-gwA $IKETCPCTL -s $TMP/gwA/iketcpd.sock status --json | jq -e '.tunnels[0].state == \"established\"' >/dev/null" ||
	fail "gwA did not go down"
ctl gwA up to-hq >/dev/null || fail "iketcpctl up"
wait_for 15 established gwA || { ctl gwA status; fail "gwA did not get in with the cookie"; }
grep -q "N(COOKIE)" "$TMP/gwA.log" || fail "gwA was not asked for a cookie"
cookies1=$(stat_of gwB "$TMP/gwB/iketcpd.sock" ike cookies_sent)
log "cookies_sent on gwB: $cookies0 -> $cookies1; gwA established with the cookie"
[ "$cookies1" -ge $((cookies0 + 2)) ] || fail "cookies_sent did not count"
wait_for 5 pings || fail "no ping after the cookie exchange"
kill "$halfopen_pid" 2>/dev/null

kill "$ping_pid" 2>/dev/null
[ -n "${KEEP_LOGS:-}" ] && cp "$TMP"/*.log "$KEEP_LOGS"/
daemon_stop gwA
daemon_stop gwB2
exit 0
