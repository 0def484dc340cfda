#!/usr/bin/env bash
# The body of the offload tests (test_tunnel_tun.sh, test_tunnel_xdp_generic.sh), sourced after lib.sh
# with OFFLOAD_DP (what status shows as the dataplane: tun, afxdp), OFFLOAD_SETTING (the `config system settings`
# line that selects it), OFFLOAD_LOG (a daemon log line that says the offloads are on) and, optionally,
# OFFLOAD_STEER_HOOK=tc (`set steer-hook tc`: checked to steer at tc ingress with no XDP on the WANs).
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

run_tunnel() { # TRANSPORT(tcp|udp)
	local tp=$1
	for gw in gwA gwB; do
		mkdir -p "$TMP/$gw"
		topo_gateway_conf "$TOP/tests/conf/$gw.conf" "$TMP/$gw.conf" "$TMP/$gw" "/sys/fs/bpf/$NSP-$gw"
		sed -i "/^config system settings/a\\    $OFFLOAD_SETTING" "$TMP/$gw.conf"
		[ -n "${OFFLOAD_STEER_HOOK:-}" ] &&
			sed -i "/^config system settings/a\\    set steer-hook $OFFLOAD_STEER_HOOK" "$TMP/$gw.conf"
		[ "$tp" = udp ] && sed -i "s/set transport auto/set transport udp/" "$TMP/$gw.conf"
	done
	[ "$tp" = udp ] && nsx carrier iptables -D FORWARD -p udp -j DROP
	daemon_start gwB "$TMP/gwB.conf" gwB
	daemon_start gwA "$TMP/gwA.conf" gwA
	wait_for 20 established gwA || { ctl gwA status; ctl gwB status; fail "gwA: tunnel not established ($tp)"; }
	wait_for 5 established gwB || { ctl gwB status; fail "gwB: tunnel not established ($tp)"; }
	for gw in gwA gwB; do
		[ "$(ctl $gw status --json | jq -r .daemon.dataplane)" = "$OFFLOAD_DP" ] ||
			fail "$gw: dataplane is $(ctl $gw status --json | jq -r .daemon.dataplane), not $OFFLOAD_DP"
		[ "$(ctl $gw status --json | jq -r .tunnels[0].transport)" = "$tp" ] || fail "$gw: transport is not $tp"
		grep -q "$OFFLOAD_LOG" "$TMP/$gw.log" || fail "$gw: no offloads (log lacks '$OFFLOAD_LOG')"
		if [ "${OFFLOAD_STEER_HOOK:-}" = tc ]; then
			[ "$(ctl $gw status --json | jq -r '.daemon.steering[0].hook')" = tc ] || fail "$gw: steering not at tc"
			ip -n "$NSP-$gw" link show wan0 | grep -q "prog/xdp" && fail "$gw: XDP on wan0 with steer-hook tc"
			ip netns exec "$NSP-$gw" tc filter show dev wan0 ingress | grep -q tc_steer_in ||
				fail "$gw: no tc ingress steering"
		fi
	done

	ip netns exec "$NSP-carrier" tcpdump -i c0 -n -w "$TMP/carrier-$tp.pcap" not arp >"$TMP/tcpdump.log" 2>&1 &
	local cap=$!
	PIDS+=($cap)
	sleep 1
	nsx hostA ping -c 5 -i 0.2 -W 2 10.2.0.10 >"$TMP/ping.log" || { cat "$TMP/ping.log"; fail "ping hostA -> hostB ($tp)"; }
	nsx hostB ping -c 5 -i 0.2 -W 2 10.1.0.10 >"$TMP/ping.log" || { cat "$TMP/ping.log"; fail "ping hostB -> hostA ($tp)"; }
	grep -q " 0% packet loss" "$TMP/ping.log" || { cat "$TMP/ping.log"; fail "ping lost packets ($tp)"; }
	transfer hostA hostB 10.2.0.10 5001 $((16 << 20))
	transfer hostB hostA 10.1.0.10 5002 $((16 << 20))
	if [ "$tp" = udp ]; then
		# Fits the LAN and the TUN, not the path in UDP: the gateway answers (RFC 1191), nothing is sent.
		nsx hostA ping -c 1 -W 2 -M do -s 1460 10.2.0.10 >"$TMP/ping-df.log" 2>&1 &&
			{ cat "$TMP/ping-df.log"; fail "a DF packet too big for the UDP path got through"; }
		grep -qi "frag needed\|message too long" "$TMP/ping-df.log" ||
			{ cat "$TMP/ping-df.log"; fail "no ICMP fragmentation-needed for a DF packet too big for the path"; }
	fi
	sleep 0.5
	kill "$cap"
	wait "$cap" 2>/dev/null

	local all bytes other frags keep
	all=$(tcpdump -n -r "$TMP/carrier-$tp.pcap" 2>/dev/null | wc -l)
	# Payload bytes, not packets: without XDP on the WANs (steer-hook tc) the carrier forwards GSO
	# superpackets whole, a few hundred for the 32 MiB.
	bytes=$(tcpdump -n -r "$TMP/carrier-$tp.pcap" 2>/dev/null |
		awk '{ for (i = 1; i < NF; i++) if ($i == "length") { s += $(i + 1); break } } END { print s + 0 }')
	if [ "$tp" = udp ]; then
		keep='not (udp and host 100.64.0.2 and host 203.0.113.2 and (port 500 or port 4500)) and not (ip6 and (src net fe80::/10 or dst net ff02::/16))'
	else
		keep='not (tcp and host 100.64.0.2 and host 203.0.113.2 and port 443) and not (ip6 and (src net fe80::/10 or dst net ff02::/16))'
	fi
	other=$(tcpdump -n -r "$TMP/carrier-$tp.pcap" "$keep" 2>/dev/null | wc -l)
	frags=$(tcpdump -n -r "$TMP/carrier-$tp.pcap" 'ip[6:2] & 0x3fff != 0' 2>/dev/null | wc -l)
	log "carrier capture ($tp): $all packets, $bytes bytes of payload, $other not the gateways' $tp, $frags fragments"
	[ "$bytes" -gt $((8 << 20)) ] || fail "the capture saw almost nothing ($all packets, $bytes bytes, $tp)"
	[ "$other" -eq 0 ] || { tcpdump -n -r "$TMP/carrier-$tp.pcap" "$keep" | head; fail "other traffic crossed the carrier ($tp)"; }
	[ "$frags" -eq 0 ] || fail "$frags fragments crossed the carrier ($tp)"

	local pout pin
	pout=$(stat_of gwA "$TMP/gwA/iketcpd.sock" esp packets_out)
	pin=$(stat_of gwB "$TMP/gwB/iketcpd.sock" esp packets_in)
	log "ESP packets ($tp): gwA out $pout, gwB in $pin"
	[ "$pout" -gt 10000 ] && [ "$pin" -gt 10000 ] || fail "ESP counters did not move (gwA out $pout, gwB in $pin)"

	# One thread per CPU seals and opens (daemon/workers.h); with two or more, the workers took part.
	local cpus threads shared helped gw
	cpus=$(nproc)
	for gw in gwA gwB; do
		threads=$(ctl $gw status --json | jq -r .daemon.dataplane_threads)
		shared=$(stat_of $gw "$TMP/$gw/iketcpd.sock" esp shared_batches)
		helped=$(stat_of $gw "$TMP/$gw/iketcpd.sock" esp worker_packets)
		log "$gw ($tp): ESP crypto on $threads threads: $shared batches shared, $helped packets on workers"
		[ "$threads" = "$((cpus > 64 ? 64 : cpus))" ] || fail "$gw: $threads dataplane threads on $cpus CPUs"
		[ "$cpus" -lt 2 ] || { [ "$shared" -gt 0 ] && [ "$helped" -gt 0 ]; } ||
			fail "$gw: the crypto workers did not take part ($tp)"
	done

	# The dataplane's offload counters (iketcpctl stats, section tun).
	local r s w j d
	for gw in gwA gwB; do
		read -r r s d w j < <(ctl $gw stats --json | jq -r '.tun | "\(.gso_reads) \(.gso_segments) \(.gso_drops) \(.coalesced) \(.coalesced_segments)"')
		log "$gw ($tp): $r superpackets read, split into $s segments; $w written, joined from $j segments; $d refused"
		# Each gateway sends 16 MB of one flow: most of it must have gone through both offloads.
		[ "$r" -gt 100 ] && [ "$s" -gt $((2 * r)) ] || fail "$gw: superpackets were not split ($tp: $r -> $s)"
		[ "$w" -gt 100 ] && [ "$j" -gt $((2 * w)) ] || fail "$gw: opened segments were not joined ($tp: $j -> $w)"
		[ "$d" -eq 0 ] || fail "$gw: $d superpackets refused ($tp)"
	done
	daemon_stop gwA
	daemon_stop gwB
	mv "$TMP/gwA.log" "$TMP/gwA-$tp.log"
	mv "$TMP/gwB.log" "$TMP/gwB-$tp.log"
	[ "$tp" = udp ] && nsx carrier iptables -A FORWARD -p udp -j DROP
	return 0
}

run_tunnel tcp
run_tunnel udp
exit 0
