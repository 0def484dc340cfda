#!/usr/bin/env bash
# Bad input over UDP (issue #4) against gwB's ports 500 and 4500 while the reference tunnel runs over UDP
# and hostA pings hostB all along:
#
#   hostA -- gwA 100.64.0.2 -- carrier (NAT, UDP allowed) -- 203.0.113.2 gwB -- hostB
#                                 ^ the attacker: 203.0.113.1 and .100-.107, not NATed
#
# 1. garbage too short to be IKE, ESP or a keepalive: udp.malformed, never answered;
# 2. ike_peer.py's malformed IKE_SA_INIT cases over UDP on both ports: ike.invalid_messages, and
#    UNSUPPORTED_CRITICAL_PAYLOAD / INVALID_MAJOR_VERSION / NO_PROPOSAL_CHOSEN where RFC 7296 answers;
# 3. stray ESP on 4500: with no path udp.esp_no_path (random SPI, too short, IKE without the marker, a
#    captured real packet replayed from another address); on the attacker's own path the SA's checks
#    (unknown SPI, replay window, ICV, length), and the SA stays with gwA; gwA's IKE_AUTH request,
#    captured and replayed from another address, must not move the SA either (2.23; UDP_REPLAY_CHECK=0
#    leaves it out);
# 4. 3,072 IKE_SA_INIT with made-up SPIs from 512 ports on 8 addresses in 3 s, with
#    ike-tcp-max-connections 200: COOKIEs (2.6), paths bounded and evicted, `iketcpctl status` answering
#    within 1 s, the 1,024 half-open cap never reached;
# 5. the tunnel kept its IKE SA and the ping lost at most 3 packets; then gwA makes a new IKE SA, which must
#    come up over UDP within 10 s while a second flood returns its cookies, 4,096 half-open SAs on 512 ports:
#    the cap reached and held;
# 6. both daemons (sanitized) exit cleanly.
. "$(dirname "$0")/lib.sh"
. "$TOP/scripts/topology.sh"
need_root
need python3 jq
HOSTILE="$TOP/tests/netns/udp_hostile.py"
GWB=203.0.113.2
MAX_PATHS=200

topo_up "$NSP" || fail "topology"
NSS+=("$NSP-hostA" "$NSP-gwA" "$NSP-carrier" "$NSP-gwB" "$NSP-hostB")
ip netns exec "$NSP-carrier" iptables -D FORWARD -p udp -j DROP || fail "carrier: UDP rule"
# The carrier's own datagrams keep their source: the NAT is for gwA only.
ip netns exec "$NSP-carrier" iptables -t nat -I POSTROUTING -o c1 -s 203.0.113.0/24 -j RETURN || fail "carrier: NAT rule"
SOURCES=""
for i in $(seq 100 107); do
	ip -n "$NSP-carrier" addr add 203.0.113.$i/32 dev c1
	SOURCES+="${SOURCES:+,}203.0.113.$i"
done

for gw in gwA gwB; do
	topo_gateway_conf "$TOP/tests/conf/$gw.conf" "$TMP/$gw.conf" "$TMP/$gw" "/sys/fs/bpf/$NSP-$gw"
	mkdir -p "$TMP/$gw"
done
sed -i "s/set transport auto/set transport udp/" "$TMP/gwA.conf"
sed -i "/^config system settings/a\\    set ike-tcp-max-connections $MAX_PATHS" "$TMP/gwB.conf"

ctl() { local gw=$1; shift; ip netns exec "$NSP-$gw" "$IKETCPCTL" -s "$TMP/$gw/iketcpd.sock" "$@"; }
established() { ctl "$1" status --json | jq -e '.tunnels[0].state == "established" and (.tunnels[0].child_sas | length) >= 1' >/dev/null; }
ike_spis() { ctl "$1" status --json | jq -r '.tunnels[0].ike_sa | .spi_i + "/" + .spi_r'; }
st() { stat_of gwB "$TMP/gwB/iketcpd.sock" "$1" "$2"; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# watch PID: until PID exits, every 0.2 s, how long gwB's `iketcpctl status` takes (max_ms), its udp.paths
# (max_paths) and, once T_UP is set, when gwA is first seen established (up_ms after T_UP).
watch() {
	local t0 ms p
	max_ms=0 max_paths=0 probes=0 up_ms=""
	while kill -0 "$1" 2>/dev/null; do
		t0=$(date +%s%N)
		ctl gwB status >/dev/null || fail "iketcpctl status failed during the flood"
		ms=$(ms_since "$t0")
		[ "$ms" -gt "$max_ms" ] && max_ms=$ms
		p=$(st udp paths)
		[ "$p" -gt "$max_paths" ] && max_paths=$p
		[ -n "${T_UP:-}" ] && [ -z "$up_ms" ] && established gwA && up_ms=$(ms_since "$T_UP")
		probes=$((probes + 1))
		sleep 0.2
	done
	[ "$max_ms" -lt 1000 ] || fail "iketcpctl status took ${max_ms} ms during the flood"
	[ "$max_paths" -le $MAX_PATHS ] && [ "$(st udp paths)" -le $MAX_PATHS ] || fail "more than $MAX_PATHS UDP paths"
}

# hostile ARGS... -- [SECTION.COUNTER DELTA]...: udp_hostile.py ARGS from the carrier; each of gwB's
# counters must move by exactly DELTA.
hostile() {
	local args=() d
	while [ "$1" != -- ]; do args+=("$1"); shift; done
	shift
	ctl gwB stats --json >"$TMP/s0.json"
	nsx carrier python3 "$HOSTILE" "${args[@]}" >"$TMP/hostile.out" 2>&1 ||
		{ cat "$TMP/hostile.out"; fail "udp_hostile.py ${args[*]}"; }
	ctl gwB stats --json >"$TMP/s1.json"
	local want=("$@") moved="" k=1
	# one jq for all of them: "NAME AFTER BEFORE" lines, in the order given
	jq -rn --slurpfile a "$TMP/s0.json" --slurpfile b "$TMP/s1.json" '$ARGS.positional | range(0; length; 2) as $i |
		.[$i] | split(".") as $p | "\(.) \($b[0] | getpath($p)) \($a[0] | getpath($p))"' --args "${want[@]}" >"$TMP/moved"
	while read -r name after before; do
		[[ $after =~ ^[0-9]+$ && $before =~ ^[0-9]+$ ]] || fail "gwB has no counter $name"
		d=$((after - before))
		[ "$d" -eq "${want[k]}" ] || { cat "$TMP/hostile.out"; fail "${args[*]}: $name moved by $d, expected ${want[k]}"; }
		moved+=" $name+$d"
		k=$((k + 2))
	done <"$TMP/moved"
	log "${args[*]}: ok,$moved"
}

start=$SECONDS
daemon_start gwB "$TMP/gwB.conf" gwB
# gwA's IKE_AUTH request, taken off the wire for section 3
bg sniff nsx carrier python3 "$HOSTILE" sniff-ike $GWB --out "$TMP/auth.msg"
SNIFF=$LAST_PID
wait_for 5 grep -q sniffing "$TMP/sniff.log" || fail "sniffer did not start"
daemon_start gwA "$TMP/gwA.conf" gwA
wait_for 15 established gwA || { ctl gwA status; ctl gwB status; fail "gwA: tunnel over UDP not established"; }
wait_for 5 established gwB || { ctl gwB status; fail "gwB: tunnel not established"; }
ctl gwA status --json | jq -e '.tunnels[0].transport == "udp"' >/dev/null || fail "gwA is not on UDP"
SPIS=$(ike_spis gwB)
REMOTE=$(ctl gwB status --json | jq -r '.tunnels[0].ike_sa.remote')
SPI_IN=$(ctl gwB status --json | jq -r '.tunnels[0].child_sas[0].spi_in')
log "tunnel up over UDP: IKE SA $SPIS with $REMOTE, gwB receives on SPI $SPI_IN"
bg ping nsx hostA ping -i 0.1 -W 1 10.2.0.10
PING=$LAST_PID
wait_for 5 grep -q "bytes from" "$TMP/ping.log" || fail "no ping through the tunnel"

# ---- 1. too short to be anything ----
hostile garbage $GWB -- udp.malformed 12 udp.keepalives 1 udp.esp_no_path 0 ike.invalid_messages 0

# ---- 2. malformed and refused IKE_SA_INIT, on 500 and (with the non-ESP marker) on 4500 ----
for port in 500 4500; do
	hostile ike $GWB $port short -- udp.malformed 1 ike.invalid_messages 0
	for c in truncated hdr-len-long hdr-len-short jumbo major-strict pl-past-end pl-len-below-4 critical \
		dup-sa no-ke cookie-late; do
		hostile ike $GWB $port $c -- ike.invalid_messages 1 udp.malformed 0 udp.esp_no_path 0
	done
	for c in noncritical reordered no-proposal invalid-ke retransmit; do
		hostile ike $GWB $port $c -- ike.invalid_messages 0 udp.malformed 0 udp.esp_no_path 0
	done
	hostile ike $GWB $port unknown-spi -- ike.unknown_spi 1 ike.invalid_messages 0
done

# ---- 3. stray ESP on 4500 ----
for c in random-spi short ike-no-marker; do
	hostile esp $GWB $c -- udp.esp_no_path 1 udp.malformed 0 esp.unknown_spi 0 ike.invalid_messages 0
done
# gwA's real packet, sniffed between the carrier and gwB, sent again from an address without a path
hostile esp $GWB replay --spi "$SPI_IN" --src 203.0.113.100 -- udp.esp_no_path 1 esp.replay_drops 0 esp.auth_failures 0
# From the attacker's own path (opened with an IKE message for an unknown SA): the SA's own checks.
hostile esp $GWB path-random-spi -- esp.unknown_spi 1 ike.unknown_spi 1 udp.esp_no_path 0
hostile esp $GWB path-replay --spi "$SPI_IN" -- esp.replay_drops 1 esp.auth_failures 0 udp.esp_no_path 0
hostile esp $GWB path-tamper --spi "$SPI_IN" -- esp.auth_failures 1 esp.replay_drops 0
hostile esp $GWB path-short --spi "$SPI_IN" -- esp.malformed 1 esp.auth_failures 0
[ "$(ctl gwB status --json | jq -r '.tunnels[0].ike_sa.remote')" = "$REMOTE" ] ||
	fail "gwB's IKE SA moved to $(ctl gwB status --json | jq -r '.tunnels[0].ike_sa.remote') after hostile ESP"
# gwA's IKE_AUTH request replayed byte for byte from another address: authentic, but a retransmission. It may
# be answered from the cache (2.1); it must not move the SA there, "otherwise, an attacker can revert the
# addresses with old replayed packets" (2.23).
# UDP_REPLAY_CHECK=0 leaves this out.
wait "$SNIFF" || { cat "$TMP/sniff.log"; fail "no IKE_AUTH request captured"; }
if [ "${UDP_REPLAY_CHECK:-1}" = 1 ]; then
	replies() { grep -c "bytes from" "$TMP/ping.log"; }
	r0=$(replies)
	hostile ike-replay $GWB "$TMP/auth.msg" --src 203.0.113.101 -- ike.invalid_messages 0 ike.unknown_spi 0
	sed 's/^/      /' "$TMP/hostile.out"
	now=$(ctl gwB status --json | jq -r '.tunnels[0].ike_sa.remote')
	log "after the replay: gwB's IKE SA with $now, $(( $(replies) - r0 )) ping replies in the last second"
	[ "$now" = "$REMOTE" ] || { grep "(RFC 7296 2.23)$" "$TMP/gwB.log"; fail "a replayed IKE_AUTH request from 203.0.113.101 moved gwB's IKE SA (and its ESP) to $now"; }
	[ $(( $(replies) - r0 )) -ge 5 ] || fail "the ping stopped after the replayed IKE_AUTH request"
fi
log "bad input done in $((SECONDS - start)) s; the SA stays with $REMOTE"

# ---- 4. IKE_SA_INIT flood ----
ctl gwB stats --json >"$TMP/f0.json"
bg flood nsx carrier python3 "$HOSTILE" flood $GWB --sources "$SOURCES" --socks 512 --per-sock 6 --secs 3
FLOOD=$LAST_PID
watch "$FLOOD"
wait "$FLOOD" || { cat "$TMP/flood.log"; fail "flood: unexpected answers, or no COOKIE"; }
sed 's/^/      /' "$TMP/flood.log"
ctl gwB stats --json >"$TMP/f1.json"
fd() { echo $(( $(jq ".$1" "$TMP/f1.json") - $(jq ".$1" "$TMP/f0.json") )); }
read -r sent sa_ans cookie_ans < <(sed -n 's/^FLOOD sent=\([0-9]*\) sa=\([0-9]*\) cookie=\([0-9]*\).*/\1 \2 \3/p' "$TMP/flood.log")
log "flood: status answered in <= ${max_ms} ms ($probes probes), udp.paths peaked at $max_paths (bound $MAX_PATHS)," \
	"paths_evicted +$(fd udp.paths_evicted), cookies_sent +$(fd ike.cookies_sent), ike_in +$(fd udp.ike_in)," \
	"send_errors +$(fd udp.send_errors), invalid_messages +$(fd ike.invalid_messages)"
[ "$(fd udp.paths_evicted)" -ge $((512 - MAX_PATHS)) ] || fail "flood: paths_evicted +$(fd udp.paths_evicted), 512 ports"
[ "$(fd ike.cookies_sent)" -gt 0 ] && [ "$(fd ike.cookies_sent)" -ge "$cookie_ans" ] || fail "flood: cookies_sent +$(fd ike.cookies_sent)"
# Every request was answered (an SA or a COOKIE) and reached IKE; none refused as malformed.
[ $((sa_ans + cookie_ans)) -eq "$sent" ] || fail "flood: $sent sent, $sa_ans + $cookie_ans answered"
[ "$(fd udp.ike_in)" -ge "$sent" ] && [ "$(fd ike.invalid_messages)" -eq 0 ] || fail "flood: not every request reached IKE"
# Half-open SAs stay under the cookie threshold (more SA answers came only as evicted paths took theirs),
# far from the 1,024 cap whose overflow is logged.
grep -E "half-open IKE SAs, dropping|too many IKE SAs" "$TMP/gwB.log" && fail "flood: the half-open cap was reached"

# ---- 5. the tunnel carried on; a new IKE SA comes up under a second flood ----
[ "$(ike_spis gwB)" = "$SPIS" ] && [ "$(ike_spis gwA)" = "$SPIS" ] || fail "the IKE SA changed: $SPIS -> $(ike_spis gwB)"
established gwA && established gwB || fail "the tunnel went down"
sleep 0.5
kill -INT "$PING"
wait "$PING"
read -r tx rx < <(sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\1 \2/p' "$TMP/ping.log")
log "ping hostA -> hostB all along: $rx of $tx answered"
[ "${tx:-0}" -ge 100 ] && [ $((tx - rx)) -le 3 ] || { tail -3 "$TMP/ping.log"; fail "ping lost $((tx - rx)) of $tx"; }

ctl gwA down to-hq >/dev/null || fail "iketcpctl down"
wait_for 5 bash -c "! ip netns exec $NSP-gwB $IKETCPCTL -s $TMP/gwB/iketcpd.sock status --json | jq -e '.tunnels[0].state == \"established\"' >/dev/null" ||
	fail "gwB kept the IKE SA after gwA's DELETE"
# This attacker returns the cookies: 512 ports x 8 requests of half-open SAs, more than the 1,024 cap.
bg flood2 nsx carrier python3 "$HOSTILE" flood $GWB --sources "$SOURCES" --socks 512 --per-sock 8 --secs 4 --answer-cookies
FLOOD2=$LAST_PID
sleep 1.5 # well into the flood: half-open SAs at their cap
ho=$(stat_of gwB "$TMP/gwB/iketcpd.sock" ike half_open)
log "second flood: ike.half_open $ho"
[ "$ho" -ge 100 ] && [ "$ho" -le 1024 ] || fail "second flood: $ho half-open IKE SAs (expected many, at most 1024)"
T_UP=$(date +%s%N)
ctl gwA up to-hq >/dev/null || fail "iketcpctl up"
watch "$FLOOD2"
wait "$FLOOD2" || { cat "$TMP/flood2.log"; fail "second flood"; }
sed 's/^/      /' "$TMP/flood2.log"
if [ -z "$up_ms" ]; then
	wait_for $((10 - $(ms_since "$T_UP") / 1000)) established gwA || { ctl gwA status; fail "gwA: no new IKE SA over UDP within 10 s"; }
	up_ms=$(ms_since "$T_UP")
fi
[ "$up_ms" -le 10000 ] || fail "gwA's new IKE SA took ${up_ms} ms"
wait_for 5 established gwB || fail "gwB: the new IKE SA is not established"
log "second flood: status answered in <= ${max_ms} ms ($probes probes), udp.paths peaked at $max_paths"
# The cap held: every time it was reached (logged at most once a second) the oldest went, never more.
grep -o "[0-9]* half-open IKE SAs, dropping the oldest" "$TMP/gwB.log" >"$TMP/capped" || fail "second flood: the half-open cap was never reached"
grep -qv "^1024 " "$TMP/capped" && { cat "$TMP/capped"; fail "more half-open SAs than the cap"; }
log "second flood: the half-open cap logged $(wc -l <"$TMP/capped") times, at $(sort -u "$TMP/capped" | cut -d' ' -f1) SAs each time"
NEW=$(ike_spis gwA)
[ "$NEW" != "$SPIS" ] && [ "$(ike_spis gwB)" = "$NEW" ] || fail "no new IKE SA ($SPIS -> $NEW, gwB $(ike_spis gwB))"
ctl gwA status --json | jq -e '.tunnels[0].transport == "udp"' >/dev/null || fail "the new IKE SA is not on UDP"
cookie_note=$(grep -c "retrying with the cookie" "$TMP/gwA.log")
log "new IKE SA $NEW over UDP within ${up_ms} ms, during the second flood ($cookie_note COOKIE retries)"
nsx hostA ping -c 3 -i 0.2 -W 2 10.2.0.10 >"$TMP/ping2.log" || { cat "$TMP/ping2.log"; fail "ping over the new IKE SA"; }
[ "$(st udp paths)" -le $MAX_PATHS ] || fail "more than $MAX_PATHS UDP paths after the second flood"

# ---- 6. clean exits ----
daemon_stop gwA
daemon_stop gwB
log "done in $((SECONDS - start)) s"
exit 0
