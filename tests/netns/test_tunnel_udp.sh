#!/usr/bin/env bash
# IKEv2 and ESP over UDP between two iketcpd gateways on the reference topology, with a carrier that
# NATs gwA but (unlike the reference) forwards UDP:
#
#   hostA 10.1.0.10 -- gwA 100.64.0.2 -- carrier (NAT, UDP allowed) -- 203.0.113.2 gwB -- hostB 10.2.0.10
#
# 1. transport udp, the carrier dropping UDP for the first seconds: IKE_SA_INIT is retransmitted
#    (RFC 7296 2.1), then IKE_SA_INIT on 500, IKE_AUTH and ESP on 4500 (2.23, RFC 3948) through the NAT;
#    ping and a 4 MB TCP transfer hostA -> hostB; the carrier sees only UDP 500/4500 between the gateways,
#    unfragmented (MSS clamped); a DF packet too big for the path gets ICMP fragmentation-needed.
# 2. transport auto with UDP answering: the tunnel stays on UDP and says why; when quiet, NAT keepalives;
#    an IKE SA rekey over UDP.
. "$(dirname "$0")/lib.sh"
. "$TOP/scripts/topology.sh"
need_root
need python3 jq tcpdump

topo_up "$NSP" || fail "topology"
NSS+=("$NSP-hostA" "$NSP-gwA" "$NSP-carrier" "$NSP-gwB" "$NSP-hostB")

gw_conf() { # GW TRANSPORT
	topo_gateway_conf "$TOP/tests/conf/$1.conf" "$TMP/$1.conf" "$TMP/$1" "/sys/fs/bpf/$NSP-$1"
	sed -i "s/set transport auto/set transport $2/" "$TMP/$1.conf"
	mkdir -p "$TMP/$1"
}
ctl() { local gw=$1; shift; ip netns exec "$NSP-$gw" "$IKETCPCTL" -s "$TMP/$gw/iketcpd.sock" "$@"; }
established() { ctl "$1" status --json | jq -e '.tunnels[0].state == "established" and (.tunnels[0].child_sas | length) >= 1' >/dev/null; }
udp_drop() { ip netns exec "$NSP-carrier" iptables "$1" FORWARD -p udp -j DROP; }

# ---- 1. transport udp, first IKE_SA_INIT lost ----
udp_drop -D # the reference carrier drops UDP; this one does only while we say so
gw_conf gwB udp
gw_conf gwA udp
daemon_start gwB "$TMP/gwB.conf" gwB
udp_drop -I
daemon_start gwA "$TMP/gwA.conf" gwA
sleep 2.5
udp_drop -D
wait_for 20 established gwA || { ctl gwA status; ctl gwB status; fail "gwA: tunnel over UDP not established"; }
wait_for 5 established gwB || { ctl gwB status; fail "gwB: tunnel not established"; }
ctl gwA status
rtx=$(stat_of gwA "$TMP/gwA/iketcpd.sock" ike retransmits)
log "gwA retransmitted $rtx requests while the carrier dropped UDP"
[ "$rtx" -ge 1 ] || fail "no IKE_SA_INIT retransmission over UDP"
ctl gwA status --json | jq -e '.tunnels[0] | .transport == "udp" and (.ike_sa.local | endswith(":4500")) and (.ike_sa.remote == "203.0.113.2:4500")' >/dev/null ||
	fail "gwA is not on UDP 4500: $(ctl gwA status --json | jq -c .tunnels[0])"
ctl gwB status --json | jq -e '.tunnels[0] | .transport == "udp" and (.ike_sa.remote | startswith("203.0.113.1:")) and .ike_sa.peer_id == "fqdn:branch.example"' >/dev/null ||
	fail "gwB does not see gwA through the NAT on UDP: $(ctl gwB status --json | jq -c .tunnels[0])"
ctl gwB status --json | jq -e '.tunnels[0] | .peers == 1 and (.ike_sas | length) == 1 and .ike_sas[0].transport == "udp" and .ike_sas[0].spi_i == .ike_sa.spi_i and (.ike_sas[0].child_sas | length) == 1' >/dev/null ||
	fail "gwB does not list its peer's IKE SA: $(ctl gwB status --json | jq -c .tunnels[0])"
grep -q "NAT detected in front of us" "$TMP/gwA.log" || fail "gwA did not detect the carrier's NAT"

ip netns exec "$NSP-carrier" tcpdump -i c0 -n -w "$TMP/carrier.pcap" not arp >"$TMP/tcpdump.log" 2>&1 &
cap=$!
PIDS+=($cap)
sleep 1
nsx hostA ping -c 5 -i 0.2 -W 2 10.2.0.10 >"$TMP/ping.log" || { cat "$TMP/ping.log"; fail "ping hostA -> hostB over UDP"; }
nsx hostB ping -c 3 -i 0.2 -W 2 10.1.0.10 >"$TMP/ping-back.log" || { cat "$TMP/ping-back.log"; fail "ping hostB -> hostA over UDP"; }
tcp_transfer hostA hostB 10.2.0.10 udp
sleep 0.5
kill "$cap"
wait "$cap" 2>/dev/null
all=$(tcpdump -n -r "$TMP/carrier.pcap" 2>/dev/null | wc -l)
# MSS clamping keeps the inner TCP segments small enough: not even outer fragments cross.
keep='not (udp and host 100.64.0.2 and host 203.0.113.2 and (port 4500 or port 500)) and not (ip6 and (src net fe80::/10 or dst net ff02::/16))'
other=$(tcpdump -n -r "$TMP/carrier.pcap" "$keep" 2>/dev/null | wc -l)
esp=$(tcpdump -n -r "$TMP/carrier.pcap" 'udp and port 4500' 2>/dev/null | grep -c "UDP-encap")
log "carrier capture: $all packets, $esp ESP in UDP 4500, $other others"
[ "$esp" -gt 100 ] || fail "no ESP in UDP on the carrier ($esp packets)"
[ "$other" -eq 0 ] || { tcpdump -n -r "$TMP/carrier.pcap" "$keep" | head; fail "traffic other than UDP 500/4500 crossed the carrier"; }
for gw in gwA gwB; do
	[ "$(stat_of $gw "$TMP/$gw/iketcpd.sock" esp mss_clamped)" -ge 1 ] || fail "$gw clamped no MSS"
done
# Too big for the path: with DF, ICMP "fragmentation needed" back to hostA; without, it goes through
# (the outer packet fragmented).
nsx hostA ping -c 2 -W 2 -M do -s 1472 10.2.0.10 >"$TMP/ping-df.log" 2>&1 && { cat "$TMP/ping-df.log"; fail "a 1500-byte DF ping fit the UDP path"; }
grep -qi "mtu" "$TMP/ping-df.log" || { cat "$TMP/ping-df.log"; fail "no fragmentation-needed answer for a DF ping"; }
[ "$(stat_of gwA "$TMP/gwA/iketcpd.sock" esp too_big)" -ge 1 ] || fail "gwA sent no ICMP too-big"
nsx hostA ping -c 2 -W 2 -M dont -s 1472 10.2.0.10 >"$TMP/ping-frag.log" 2>&1 || { cat "$TMP/ping-frag.log"; fail "a 1500-byte ping without DF"; }
log "path MTU: $(grep -io 'mtu *= *[0-9]*' "$TMP/ping-df.log" | head -1) for DF; without DF fragmented and answered"
pin=$(stat_of gwB "$TMP/gwB/iketcpd.sock" udp esp_in)
pout=$(stat_of gwA "$TMP/gwA/iketcpd.sock" esp packets_out)
log "ESP: gwA sent $pout, gwB received $pin in UDP"
[ "$pin" -gt 100 ] && [ "$pout" -gt 100 ] || fail "ESP counters did not move"
daemon_stop gwA
wait_for 5 bash -c "! ip netns exec $NSP-gwB $IKETCPCTL -s $TMP/gwB/iketcpd.sock status --json | jq -e '.tunnels[0].state == \"established\"' >/dev/null" ||
	fail "gwB kept the IKE SA after gwA's DELETE over UDP"

# ---- 2. transport auto, UDP answers ----
gw_conf gwA auto
daemon_start gwA "$TMP/gwA.conf" gwA
wait_for 20 established gwA || { ctl gwA status; fail "gwA: transport auto not established"; }
ctl gwA status --json | jq -e '.tunnels[0] | .transport == "udp" and .transport_why == "auto: UDP answered"' >/dev/null ||
	fail "transport auto did not stay on UDP: $(ctl gwA status --json | jq -c .tunnels[0])"
nsx hostA ping -c 3 -i 0.2 -W 2 10.2.0.10 >"$TMP/ping2.log" || { cat "$TMP/ping2.log"; fail "ping over UDP (auto)"; }
# A quiet SA keeps the NAT binding with keepalives (RFC 3948 section 4): one after 20 s of silence.
wait_for 30 bash -c "[ \$(ip netns exec $NSP-gwB $IKETCPCTL -s $TMP/gwB/iketcpd.sock stats --json | jq .udp.keepalives) -ge 1 ]" ||
	fail "no NAT keepalive reached gwB in 30 s (gwA: $(ctl gwA stats --json | jq -c .udp), gwB: $(ctl gwB stats --json | jq -c .udp))"
log "NAT keepalives: gwA sent $(stat_of gwA "$TMP/gwA/iketcpd.sock" udp keepalives_sent), gwB received $(stat_of gwB "$TMP/gwB/iketcpd.sock" udp keepalives)"
# An IKE SA rekey over UDP (CREATE_CHILD_SA on 4500, retransmitted if lost): new SPIs, same CHILD SA.
old=$(ctl gwA status --json | jq -r '.tunnels[0].ike_sa | .spi_i + "/" + .spi_r')
child=$(ctl gwA status --json | jq -r '.tunnels[0].child_sas[0].spi_in')
ctl gwA rekey to-hq || fail "iketcpctl rekey to-hq"
wait_for 10 bash -c "s=\$(ip netns exec $NSP-gwA $IKETCPCTL -s $TMP/gwA/iketcpd.sock status --json | jq -r '.tunnels[0].ike_sa | .spi_i + \"/\" + .spi_r'); [ \"\$s\" != '$old' ] && [ \"\$s\" != / ]" ||
	fail "the IKE SA was not rekeyed over UDP"
new=$(ctl gwA status --json | jq -r '.tunnels[0].ike_sa | .spi_i + "/" + .spi_r')
[ "$(ctl gwB status --json | jq -r '.tunnels[0].ike_sa | .spi_i + "/" + .spi_r')" = "$new" ] || fail "gwB disagrees on the rekeyed IKE SA"
[ "$(ctl gwA status --json | jq -r '.tunnels[0].child_sas[0].spi_in')" = "$child" ] || fail "the CHILD SA changed with the IKE SA rekey"
nsx hostA ping -c 3 -i 0.2 -W 2 10.2.0.10 >"$TMP/ping3.log" || { cat "$TMP/ping3.log"; fail "ping after the IKE SA rekey over UDP"; }
log "IKE SA rekeyed over UDP: $old -> $new, CHILD SA $child kept"
daemon_stop gwA
daemon_stop gwB
exit 0
