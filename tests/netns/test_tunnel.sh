#!/usr/bin/env bash
# The main job, end to end, on the reference topology (scripts/topology.sh):
#
#   hostA 10.1.0.10 -- lan0 gwA wan0 100.64.0.2 -- carrier -- 203.0.113.2 wan0 gwB lan0 -- hostB 10.2.0.10
#                 10.1.0.1                    (NAT + drops UDP)                   10.2.0.1
#
# gwA (static, transport auto) and gwB (dynamic) run from the example configs. The IKE SA and its
# CHILD SA come up over TCP 443 through the carrier's NAT; hostA and hostB exchange ping and TCP
# traffic only through ESP-in-TCP; a capture on the carrier sees nothing but TCP to 203.0.113.2:443.
# Reloads that switch each gateway's dataplane (AF_XDP <-> TUN) bring the tunnel back on the new one.
# Then again with ike-tls-service enable on both gateways. SIGTERM deletes the SAs on both sides.
. "$(dirname "$0")/lib.sh"
. "$TOP/scripts/topology.sh"
need_root
need python3 jq tcpdump

topo_up "$NSP" || fail "topology"
NSS+=("$NSP-hostA" "$NSP-gwA" "$NSP-carrier" "$NSP-gwB" "$NSP-hostB")

gw_conf() { # GW TLS(enable|disable)
	topo_gateway_conf "$TOP/tests/conf/$1.conf" "$TMP/$1.conf" "$TMP/$1" "/sys/fs/bpf/$NSP-$1"
	sed -i "s/set ike-tls-service disable/set ike-tls-service $2/" "$TMP/$1.conf"
	mkdir -p "$TMP/$1"
}
ctl() { local gw=$1; shift; ip netns exec "$NSP-$gw" "$IKETCPCTL" -s "$TMP/$gw/iketcpd.sock" "$@"; }
established() { ctl "$1" status --json | jq -e '.tunnels[0].state == "established" and (.tunnels[0].child_sas | length) >= 1' >/dev/null; }

child_spi() { ctl gwA status --json | jq -r '.tunnels[0].child_sas[0].spi_in // empty'; }
# A reload that changes the dataplane (AF_XDP -> TUN, then back): the CHILD SAs' keys live in the running
# dataplane, so the IKE SAs are deleted and come back on the new one (the dynamic gwB's through gwA's
# re-initiation), and traffic flows again.
reload_dataplane() {
	local gw want spi mode
	for step in "gwB tun native" "gwA tun native" "gwB xdp native" "gwB xdp generic"; do
		read -r gw want mode <<<"$step"
		spi=$(child_spi)
		sed -i -e "/set dataplane/d" -e "/set xdp-mode/d" -e "/^config system settings/a\\    set dataplane $want" \
			-e "/^config system settings/a\\    set xdp-mode $mode" "$TMP/$gw.conf"
		ctl $gw reload >/dev/null || fail "$gw: reload to dataplane $want, xdp-mode $mode"
		local dp; dp=$(ctl $gw status --json | jq -r .daemon.dataplane)
		[ "$dp" = "$([ $want = xdp ] && echo afxdp || echo tun)" ] || fail "$gw: dataplane $dp after reload to $want"
		wait_for 20 bash -c "[ -n \"\$($IKETCPCTL -s $TMP/gwA/iketcpd.sock status --json 2>/dev/null | jq -r '.tunnels[0].child_sas[0].spi_in // empty')\" ] &&
			[ \"\$($IKETCPCTL -s $TMP/gwA/iketcpd.sock status --json | jq -r '.tunnels[0].child_sas[0].spi_in')\" != $spi ]" ||
			{ ctl gwA status; ctl gwB status; fail "$gw: no new CHILD SA after the reload to $want"; }
		wait_for 10 established gwB || fail "gwB: tunnel not back after $gw's reload to $want"
		nsx hostA ping -c 3 -i 0.2 -W 2 10.2.0.10 >/dev/null || fail "ping hostA -> hostB after $gw's reload to $want"
		nsx hostB ping -c 3 -i 0.2 -W 2 10.1.0.10 >/dev/null || fail "ping hostB -> hostA after $gw's reload to $want"
		log "$gw reloaded to dataplane $want: CHILD SA $spi replaced by $(child_spi), ping both ways"
	done
	grep -q "deleting every IKE SA" "$TMP/gwB.log" || fail "gwB did not log why its SAs went"
	# xdp-mode reattaches the clear side at once; the WAN steering keeps its mode until a restart, and says so.
	grep -q "afxdp: lan0: XDP generic mode" "$TMP/gwB.log" || fail "gwB: lan0 not in generic mode after the reload"
	grep -q "xdp-mode reaches the steering on the WAN interfaces at the next restart" "$TMP/gwB.log" ||
		fail "gwB did not warn that the WAN keeps its XDP mode"
}

run_tunnel() { # TLS(enable|disable)
	local tls=$1
	gw_conf gwB "$tls"
	gw_conf gwA "$tls"
	daemon_start gwB "$TMP/gwB.conf" gwB
	daemon_start gwA "$TMP/gwA.conf" gwA
	wait_for 20 established gwA || { ctl gwA status; ctl gwB status; fail "gwA: tunnel not established (tls $tls)"; }
	wait_for 5 established gwB || { ctl gwB status; fail "gwB: tunnel not established (tls $tls)"; }
	ctl gwA status
	# NAT detection (RFC 7296 2.23 with the TCP ports, RFC 9329 6.5): only gwA is behind the carrier's NAT.
	grep -q "NAT detected in front of us" "$TMP/gwA.log" || fail "gwA did not detect the NAT in front of it"
	grep -q "NAT detected in front of the peer" "$TMP/gwB.log" || fail "gwB did not detect the NAT in front of gwA"
	grep -q "NAT detected in front of us" "$TMP/gwB.log" && fail "gwB thinks it is behind a NAT"
	local transport
	transport=$(ctl gwA status --json | jq -r '.tunnels[0].transport')
	[ "$transport" = "$([ "$tls" = enable ] && echo tls || echo tcp)" ] || fail "gwA transport is $transport (tls $tls)"
	# transport auto (RFC 9329 5.1): UDP first, then TCP after auto-transport-threshold (3 s) without an answer.
	ctl gwA status --json | jq -e '.tunnels[0].transport_why | test("no answer over UDP in 3 s")' >/dev/null ||
		fail "gwA status does not say why TCP: $(ctl gwA status --json | jq -c .tunnels[0])"
	[ "$(stat_of gwA "$TMP/gwA/iketcpd.sock" udp datagrams_out)" -ge 1 ] || fail "gwA never tried UDP"

	# Capture on the carrier's gwA side while hostA talks to hostB.
	ip netns exec "$NSP-carrier" tcpdump -i c0 -n -w "$TMP/carrier-$tls.pcap" not arp >"$TMP/tcpdump.log" 2>&1 &
	local cap=$!
	PIDS+=($cap)
	sleep 1
	nsx hostA ping -c 5 -i 0.2 -W 2 10.2.0.10 >"$TMP/ping.log" || { cat "$TMP/ping.log"; fail "ping hostA -> hostB (tls $tls)"; }
	grep -q " 0% packet loss" "$TMP/ping.log" || { cat "$TMP/ping.log"; fail "ping lost packets (tls $tls)"; }
	# A TCP transfer of 4 MB from hostA to hostB, checked end to end.
	tcp_transfer hostA hostB 10.2.0.10 "tls $tls"
	sleep 0.5
	kill "$cap"
	wait "$cap" 2>/dev/null

	# Only TCP between gwA's public side and 203.0.113.2:443 crossed the carrier.
	local all other
	all=$(tcpdump -n -r "$TMP/carrier-$tls.pcap" 2>/dev/null | wc -l)
	# (the kernel's own IPv6 link-local chatter on the carrier's link does not cross it: not counted)
	local keep='not (tcp and host 100.64.0.2 and host 203.0.113.2 and port 443) and not (ip6 and (src net fe80::/10 or dst net ff02::/16))'
	other=$(tcpdump -n -r "$TMP/carrier-$tls.pcap" "$keep" 2>/dev/null | wc -l)
	log "carrier capture (tls $tls): $all packets, $other not TCP 443 between the gateways"
	[ "$all" -gt 20 ] || fail "the capture saw almost nothing ($all packets)"
	[ "$other" -eq 0 ] || { tcpdump -n -r "$TMP/carrier-$tls.pcap" "$keep" | head; fail "traffic other than TCP 443 crossed the carrier"; }

	# ESP counted on both gateways; the SAs' own counters moved.
	local pin pout
	pin=$(stat_of gwB "$TMP/gwB/iketcpd.sock" esp packets_in)
	pout=$(stat_of gwA "$TMP/gwA/iketcpd.sock" esp packets_out)
	log "ESP packets: gwA out $pout, gwB in $pin"
	[ "$pout" -gt 100 ] && [ "$pin" -gt 100 ] || fail "ESP counters did not move (gwA out $pout, gwB in $pin)"
	ctl gwA status --json | jq -e '.tunnels[0].child_sas[0].packets_out > 100' >/dev/null || fail "CHILD SA counters"
	# The example configs ask for `dataplane xdp` on lan0: clear packets reached us through AF_XDP. gwB
	# sees hostB's echo replies and ACKs, few since gwB hands hostB the 4 MB as joined superpackets.
	local gw min x
	for gw in gwA gwB; do
		[ "$(ctl $gw status --json | jq -r .daemon.dataplane)" = afxdp ] || fail "$gw: dataplane is not AF_XDP"
		min=100
		[ $gw = gwB ] && min=10
		x=$(stat_of $gw "$TMP/$gw/iketcpd.sock" xdp to_xsk)
		log "$gw: $x packets to AF_XDP"
		[ "$x" -gt $min ] || fail "$gw: xdp.to_xsk did not move ($x)"
	done

	[ "$tls" = disable ] && reload_dataplane
	daemon_stop gwA
	wait_for 5 bash -c "! ip netns exec $NSP-gwB $IKETCPCTL -s $TMP/gwB/iketcpd.sock status --json | jq -e '.tunnels[0].state == \"established\"' >/dev/null" ||
		fail "gwB kept the IKE SA after gwA's DELETE"
	daemon_stop gwB
}

run_tunnel disable
run_tunnel enable
exit 0
