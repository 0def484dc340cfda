#!/usr/bin/env bash
# The TUN dataplane (`set dataplane tun`) end to end on the reference topology (scripts/topology.sh):
#
#   hostA 10.1.0.10 -- lan0 gwA wan0 100.64.0.2 -- carrier -- 203.0.113.2 wan0 gwB lan0 -- hostB 10.2.0.10
#                 10.1.0.1    iketcp0         (NAT + drops UDP)         iketcp0   10.2.0.1
#
# Both gateways route the other side's LAN into their TUN device iketcp0, which carries virtio-net
# headers with TCP segmentation offload: the kernel hands gwA superpackets of hostA's TCP that it
# splits before sealing, and gwB joins the opened segments of each stream read into superpackets
# before writing them back. Ping both ways, 16 MB of TCP each way checked by SHA-256, the
# offloads seen at work in each daemon's closing counters, and nothing but TCP 443 on the carrier.
. "$(dirname "$0")/lib.sh"
. "$TOP/scripts/topology.sh"
need_root
need python3 jq tcpdump

topo_up "$NSP" || fail "topology"
NSS+=("$NSP-hostA" "$NSP-gwA" "$NSP-carrier" "$NSP-gwB" "$NSP-hostB")

ctl() { local gw=$1; shift; ip netns exec "$NSP-$gw" "$IKETCPCTL" -s "$TMP/$gw/iketcpd.sock" "$@"; }
established() { ctl "$1" status --json | jq -e '.tunnels[0].state == "established" and (.tunnels[0].child_sas | length) >= 1' >/dev/null; }

# transfer SRC DST ADDR PORT BYTES: a TCP transfer from namespace SRC to ADDR:PORT in DST, checked end to end.
transfer() {
	bg "sink-$1" nsx "$2" python3 "$TOP/tests/netns/transfer.py" sink "$3" "$4"
	local sink=$LAST_PID sent
	sleep 0.3
	sent=$(nsx "$1" python3 "$TOP/tests/netns/transfer.py" send "$3" "$4" "$5") || fail "TCP transfer $1 -> $2"
	wait "$sink"
	[ "$(cat "$TMP/sink-$1.log")" = "$sent" ] ||
		fail "TCP transfer $1 -> $2 corrupted: sent '$sent', got '$(cat "$TMP/sink-$1.log")'"
	log "TCP $1 -> $2: $sent"
}

for gw in gwA gwB; do
	mkdir -p "$TMP/$gw"
	topo_gateway_conf "$TOP/tests/conf/$gw.conf" "$TMP/$gw.conf" "$TMP/$gw" "/sys/fs/bpf/$NSP-$gw"
	sed -i '/^config system settings/a\    set dataplane tun' "$TMP/$gw.conf"
done
daemon_start gwB "$TMP/gwB.conf" gwB
daemon_start gwA "$TMP/gwA.conf" gwA
wait_for 20 established gwA || { ctl gwA status; ctl gwB status; fail "gwA: tunnel not established"; }
wait_for 5 established gwB || { ctl gwB status; fail "gwB: tunnel not established"; }
for gw in gwA gwB; do
	[ "$(ctl $gw status --json | jq -r .daemon.dataplane)" = tun ] ||
		fail "$gw: dataplane is $(ctl $gw status --json | jq -r .daemon.dataplane), not tun"
	grep -q "TUN iketcp0 up.*TCP segmentation offload" "$TMP/$gw.log" || fail "$gw: the TUN has no offloads"
done

ip netns exec "$NSP-carrier" tcpdump -i c0 -n -w "$TMP/carrier.pcap" not arp >"$TMP/tcpdump.log" 2>&1 &
cap=$!
PIDS+=($cap)
sleep 1
nsx hostA ping -c 5 -i 0.2 -W 2 10.2.0.10 >"$TMP/ping.log" || { cat "$TMP/ping.log"; fail "ping hostA -> hostB"; }
nsx hostB ping -c 5 -i 0.2 -W 2 10.1.0.10 >"$TMP/ping.log" || { cat "$TMP/ping.log"; fail "ping hostB -> hostA"; }
grep -q " 0% packet loss" "$TMP/ping.log" || { cat "$TMP/ping.log"; fail "ping lost packets"; }
transfer hostA hostB 10.2.0.10 5001 $((16 << 20))
transfer hostB hostA 10.1.0.10 5002 $((16 << 20))
sleep 0.5
kill "$cap"
wait "$cap" 2>/dev/null

all=$(tcpdump -n -r "$TMP/carrier.pcap" 2>/dev/null | wc -l)
keep='not (tcp and host 100.64.0.2 and host 203.0.113.2 and port 443) and not (ip6 and (src net fe80::/10 or dst net ff02::/16))'
other=$(tcpdump -n -r "$TMP/carrier.pcap" "$keep" 2>/dev/null | wc -l)
log "carrier capture: $all packets, $other not TCP 443 between the gateways"
[ "$all" -gt 1000 ] || fail "the capture saw almost nothing ($all packets)"
[ "$other" -eq 0 ] || { tcpdump -n -r "$TMP/carrier.pcap" "$keep" | head; fail "traffic other than TCP 443 crossed the carrier"; }

pout=$(stat_of gwA "$TMP/gwA/iketcpd.sock" esp packets_out)
pin=$(stat_of gwB "$TMP/gwB/iketcpd.sock" esp packets_in)
log "ESP packets: gwA out $pout, gwB in $pin"
[ "$pout" -gt 10000 ] && [ "$pin" -gt 10000 ] || fail "ESP counters did not move (gwA out $pout, gwB in $pin)"

# The dataplane's offload counters are in its closing line (not in iketcpctl stats):
#   dataplane: iketcp0: R superpackets read, split into S segments; W written, joined from J segments; D refused
daemon_stop gwA
daemon_stop gwB
for gw in gwA gwB; do
	line=$(grep -o "dataplane: iketcp0: [0-9]* superpackets read.*" "$TMP/$gw.log" | tail -1)
	[ -n "$line" ] || fail "$gw: no closing dataplane counters"
	log "$gw: $line"
	read -r r s w j d < <(echo "$line" | awk '{ print $3, $8, $10, $14, $16 }')
	# Each gateway sends 16 MB of one flow: most of it must have gone through both offloads.
	[ "$r" -gt 100 ] && [ "$s" -gt $((2 * r)) ] || fail "$gw: superpackets were not split ($line)"
	[ "$w" -gt 100 ] && [ "$j" -gt $((2 * w)) ] || fail "$gw: opened segments were not joined ($line)"
	[ "$d" -eq 0 ] || fail "$gw: superpackets refused ($line)"
done
exit 0
