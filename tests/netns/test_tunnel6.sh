#!/usr/bin/env bash
# The reference topology with IPv6 inside as well: one CHILD SA carries both families.
#
#   hostA 10.1.0.10    -- lan0 gwA wan0 -- carrier (NAT, no UDP) -- wan0 gwB lan0 -- hostB 10.2.0.10
#         fd01::10/64     10.1.0.1 fd01::1                            10.2.0.1 fd02::1   fd02::10/64
#
# Both gateway configs get src-subnet6/dst-subnet6 next to the IPv4 pair (config.md): the
# CHILD SA's traffic selectors hold an IPv4 and an IPv6 range on each side, and hostA reaches
# hostB with ping -6 and a 4 MB TCP transfer over IPv6, as well as with IPv4. The carrier
# (IPv4 only) still sees nothing but TCP 443 between the gateways.
. "$(dirname "$0")/lib.sh"
. "$TOP/scripts/topology.sh"
need_root
need python3 jq tcpdump

topo_up "$NSP" || fail "topology"
NSS+=("$NSP-hostA" "$NSP-gwA" "$NSP-carrier" "$NSP-gwB" "$NSP-hostB")
ip -n "$NSP-hostA" addr add fd01::10/64 dev eth0 nodad
ip -n "$NSP-gwA" addr add fd01::1/64 dev lan0 nodad
ip -n "$NSP-gwB" addr add fd02::1/64 dev lan0 nodad
ip -n "$NSP-hostB" addr add fd02::10/64 dev eth0 nodad
ip -n "$NSP-hostA" -6 route add default via fd01::1
ip -n "$NSP-hostB" -6 route add default via fd02::1
for gw in gwA gwB; do nsx $gw sysctl -qw net.ipv6.conf.all.forwarding=1; done

# phase2: the IPv6 pair right after the IPv4 one.
gw_conf() { # GW SRC6 DST6
	topo_gateway_conf "$TOP/tests/conf/$1.conf" "$TMP/$1.conf" "$TMP/$1" "/sys/fs/bpf/$NSP-$1"
	sed -i "/set dst-subnet /a\\        set src-subnet6 $2\\n        set dst-subnet6 $3" "$TMP/$1.conf"
	grep -q "set dst-subnet6 $3" "$TMP/$1.conf" || fail "$1: could not add the IPv6 selectors"
	mkdir -p "$TMP/$1"
}
gw_conf gwA fd01::/64 fd02::/64
gw_conf gwB fd02::/64 fd01::/64
ctl() { local gw=$1; shift; ip netns exec "$NSP-$gw" "$IKETCPCTL" -s "$TMP/$gw/iketcpd.sock" "$@"; }
established() { ctl "$1" status --json | jq -e '.tunnels[0].state == "established" and (.tunnels[0].child_sas | length) >= 1' >/dev/null; }

daemon_start gwB "$TMP/gwB.conf" gwB
daemon_start gwA "$TMP/gwA.conf" gwA
wait_for 20 established gwA || { ctl gwA status; ctl gwB status; fail "gwA: tunnel not established"; }
wait_for 5 established gwB || { ctl gwB status; fail "gwB: tunnel not established"; }
ctl gwA status

ip netns exec "$NSP-carrier" tcpdump -i c0 -n -U --immediate-mode -w "$TMP/carrier.pcap" not arp >"$TMP/tcpdump.log" 2>&1 &
CAP=$!
PIDS+=($CAP)
wait_for 5 grep -q "listening on" "$TMP/tcpdump.log" || fail "tcpdump did not start"

nsx hostA ping -c 5 -i 0.2 -W 2 10.2.0.10 >"$TMP/ping4.log" || { cat "$TMP/ping4.log"; fail "ping hostA -> hostB (IPv4)"; }
nsx hostA ping -6 -c 5 -i 0.2 -W 2 fd02::10 >"$TMP/ping6.log" || { cat "$TMP/ping6.log"; fail "ping -6 hostA -> hostB"; }
grep -q " 0% packet loss" "$TMP/ping6.log" || { cat "$TMP/ping6.log"; fail "ping -6 lost packets"; }
log "ping -6 fd02::10: $(grep -o '[0-9]* received' "$TMP/ping6.log")"

# 4 MB from hostA to hostB over IPv6, checked end to end.
bg sink nsx hostB python3 -c '
import hashlib, socket
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("fd02::10", 5001)); s.listen(1); c, _ = s.accept(); h = hashlib.sha256(); n = 0
while True:
    b = c.recv(65536)
    if not b: break
    h.update(b); n += len(b)
print(n, h.hexdigest())'
SINK=$LAST_PID
sleep 0.3
sent=$(nsx hostA python3 -c '
import hashlib, os, socket
data = os.urandom(4 << 20)
s = socket.create_connection(("fd02::10", 5001), timeout=20); s.sendall(data); s.close()
print(len(data), hashlib.sha256(data).hexdigest())') || fail "TCP transfer over IPv6"
wait "$SINK"
[ "$(cat "$TMP/sink.log")" = "$sent" ] || fail "IPv6 TCP transfer corrupted: sent '$sent', got '$(cat "$TMP/sink.log")'"
log "4 MB over IPv6 intact: $sent"
sleep 0.5
kill "$CAP"
wait "$CAP" 2>/dev/null

all=$(tcpdump -n -r "$TMP/carrier.pcap" 2>/dev/null | wc -l)
keep='not (tcp and host 100.64.0.2 and host 203.0.113.2 and port 443) and not (ip6 and (src net fe80::/10 or dst net ff02::/16))'
other=$(tcpdump -n -r "$TMP/carrier.pcap" "$keep" 2>/dev/null | wc -l)
log "carrier capture: $all packets, $other not TCP 443 between the gateways"
[ "$all" -gt 20 ] || fail "the capture saw almost nothing ($all packets)"
[ "$other" -eq 0 ] || { tcpdump -n -r "$TMP/carrier.pcap" "$keep" | head; fail "traffic other than TCP 443 crossed the carrier"; }

# Traffic only through the tunnel: inner IPv6 never appears on the carrier.
tcpdump -n -r "$TMP/carrier.pcap" ip6 2>/dev/null | grep -q "fd0[12]::" && fail "inner IPv6 crossed the carrier in clear"
pout=$(stat_of gwA "$TMP/gwA/iketcpd.sock" esp packets_out)
pin=$(stat_of gwB "$TMP/gwB/iketcpd.sock" esp packets_in)
log "ESP packets: gwA out $pout, gwB in $pin"
[ "$pout" -gt 100 ] && [ "$pin" -gt 100 ] || fail "ESP counters did not move (gwA out $pout, gwB in $pin)"
# Every inner packet, IPv6 included, was inside the negotiated selectors on both sides.
for gw in gwA gwB; do
	[ "$(stat_of $gw "$TMP/$gw/iketcpd.sock" esp policy_drops)" -eq 0 ] || fail "$gw: esp.policy_drops moved"
	[ "$(ctl $gw status --json | jq -r .daemon.dataplane)" = afxdp ] || fail "$gw: dataplane is not AF_XDP"
done

daemon_stop gwA
daemon_stop gwB
exit 0
