#!/usr/bin/env bash
# IKE-level bad input against a running iketcpd (responder, dynamic phase1 like gwB), over TCP 443:
# every malformed or refused IKE_SA_INIT is counted and answered as RFC 7296 says (or dropped), a
# retransmission gets the same bytes back, IKE_AUTH for an unknown SPI is dropped, a wrong PSK from a real
# iketcpd initiator fails per attempt and is logged with its address, and a flood of 2,000 IKE_SA_INIT
# from 50 addresses is answered in time while a real peer still establishes and RSS stays bounded; then
# 4,200 half-open SAs held open (more than the SA table) must not lock a real peer out.
#
#   cl  192.0.2.2, .100-.149  eth0 --+
#                                    +-- br0 (sw) --+-- wan0  192.0.2.1  gw (iketcpd, responder)
#   pe  192.0.2.3 (iketcpd init) wan0 --+
. "$(dirname "$0")/lib.sh"
need_root
need python3 jq
PEER_PY="$TOP/tests/netns/ike_peer.py"
# RSS is asserted below: keep ASan's quarantine of freed blocks (256 MB by default) out of the figure.
export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=16"
GW=192.0.2.1

ns_add sw
ns_add gw
ns_add cl
ns_add pe
ip -n "$NSP-sw" link add br0 type bridge
ip -n "$NSP-sw" link set br0 up
veth gw wan0 sw p-gw
veth cl eth0 sw p-cl
veth pe wan0 sw p-pe
for p in p-gw p-cl p-pe; do ip -n "$NSP-sw" link set "$p" master br0; done
ip -n "$NSP-gw" addr add $GW/24 dev wan0
ip -n "$NSP-pe" addr add 192.0.2.3/24 dev wan0
ip -n "$NSP-cl" addr add 192.0.2.2/24 dev eth0
SOURCES=""
for i in $(seq 100 149); do
	ip -n "$NSP-cl" addr add 192.0.2.$i/32 dev eth0
	SOURCES+="${SOURCES:+,}192.0.2.$i"
done
for n in gw pe; do # the inner side: a veth with nothing behind it (no dummy module here)
	ip -n "$NSP-$n" link add lan0 type veth peer name lan0p
	ip -n "$NSP-$n" link set lan0 up
	ip -n "$NSP-$n" link set lan0p up
done
ip -n "$NSP-gw" addr add 10.2.0.1/24 dev lan0
ip -n "$NSP-pe" addr add 10.1.0.1/24 dev lan0

# The responder: tests/conf/gwB.conf with its own socket and pins, the admin service elsewhere.
mkdir -p "$TMP/gw" "$TMP/pe"
sed -e "/^config system settings/a\\    set control-socket \"$TMP/gw/ctl.sock\"\\n    set bpf-pin-path \"/sys/fs/bpf/$NSP-gw\"" \
	-e 's/set admin-sport 443/set admin-sport 8443/' "$TOP/tests/conf/gwB.conf" >"$TMP/gw.conf"
# The initiator: tests/conf/gwA.conf pointed at the gateway; PSK as given.
peer_conf() { # FILE PSK
	sed -e "/^config system settings/a\\    set control-socket \"$TMP/pe/ctl.sock\"\\n    set bpf-pin-path \"/sys/fs/bpf/$NSP-pe\"" \
		-e "s/set remote-gw .*/set remote-gw $GW/" -e "s/set psksecret .*/set psksecret \"$2\"/" \
		"$TOP/tests/conf/gwA.conf" >"$1"
}
GOOD_PSK=$(sed -n 's/.*set psksecret "\(.*\)"/\1/p' "$TOP/tests/conf/gwB.conf")
peer_conf "$TMP/pe-wrong.conf" "not the $GOOD_PSK"
peer_conf "$TMP/pe-good.conf" "$GOOD_PSK"

SOCK=$TMP/gw/ctl.sock
st() { stat_of gw "$SOCK" "$1" "$2"; }
pectl() { ip netns exec "$NSP-pe" "$IKETCPCTL" -s "$TMP/pe/ctl.sock" "$@"; }
pe_established() { pectl status --json | jq -e '.tunnels[0].state == "established"' >/dev/null; }
peer() { nsx cl python3 "$PEER_PY" "$@"; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

# check NAME [SECTION.COUNTER DELTA]...: run ike_peer.py NAME; each counter must move by exactly DELTA.
check() {
	local name=$1 i after
	shift
	local -a ctrs=() want=() before=()
	while [ $# -ge 2 ]; do ctrs+=("$1"); want+=("$2"); before+=("$(st "${1%%.*}" "${1#*.}")"); shift 2; done
	peer "$name" $GW 443 >"$TMP/case-$name.out" 2>&1 || { cat "$TMP/case-$name.out"; fail "case $name"; }
	sed 's/^/      /' "$TMP/case-$name.out"
	for i in "${!ctrs[@]}"; do
		after=$(st "${ctrs[$i]%%.*}" "${ctrs[$i]#*.}")
		[ $((after - before[i])) -eq "${want[$i]}" ] ||
			fail "case $name: ${ctrs[$i]} moved by $((after - before[i])), expected ${want[$i]}"
	done
	log "$name: ok"
}

start=$SECONDS
daemon_start gw "$TMP/gw.conf" gwd
GW_PID=$gwd_PID
rss0=$(rss_kb "$GW_PID")

# ---- structure: dropped and counted, nothing answered, the stream stays up ----
check short tcp.ike_too_short 1 ike.messages_in 0
check truncated ike.invalid_messages 1 ike.messages_in 1 ike.messages_out 0
check hdr-len-long ike.invalid_messages 1 ike.messages_out 0
check hdr-len-short ike.invalid_messages 1 ike.messages_out 0
check major ike.invalid_messages 1
check pl-past-end ike.invalid_messages 1 ike.messages_out 0
check pl-len-below-4 ike.invalid_messages 1 ike.messages_out 0
# ---- unknown payloads: critical ones refused by name (3.2), others skipped ----
check critical ike.invalid_messages 1 ike.messages_out 1
check noncritical ike.invalid_messages 0 ike.messages_out 1
# ---- message rules: counts and order (1.2, 2.6) ----
check dup-sa ike.invalid_messages 1 ike.messages_out 0
check no-ke ike.invalid_messages 1 ike.messages_out 0
check cookie-late ike.invalid_messages 1 ike.messages_out 0
check reordered ike.invalid_messages 0 ike.messages_out 1
# ---- negotiation: NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD naming our group (1.2, 2.7) ----
check no-proposal ike.messages_out 1 ike.sa_established 0
check invalid-ke ike.messages_in 2 ike.messages_out 2
# ---- a retransmitted request: the cached answer, byte for byte (2.1) ----
check retransmit ike.messages_in 2 ike.messages_out 2 ike.invalid_messages 0
# ---- IKE_AUTH for an SA nobody has: dropped without an answer (2.21) ----
check unknown-spi ike.unknown_spi 1 ike.messages_out 0

# ---- a wrong PSK from a real initiator: AUTHENTICATION_FAILED, counted and logged per attempt ----
sleep 1.1 # the auth log line is rate limited to one a second: start with a fresh second
af0=$(st ike auth_failures)
daemon_start pe "$TMP/pe-wrong.conf" pewrong
wait_for 10 bash -c "[ \$(ip netns exec $NSP-gw $IKETCPCTL -s $SOCK stats --json | jq .ike.auth_failures) -ge $((af0 + 1)) ]" ||
	fail "wrong PSK: no authentication failure counted"
for attempt in 2 3; do
	sleep 1.1
	pectl up to-hq >/dev/null || fail "wrong PSK: iketcpctl up (attempt $attempt)"
	wait_for 10 bash -c "[ \$(ip netns exec $NSP-gw $IKETCPCTL -s $SOCK stats --json | jq .ike.auth_failures) -ge $((af0 + attempt)) ]" ||
		fail "wrong PSK: attempt $attempt not counted"
done
sleep 0.5
af=$(( $(st ike auth_failures) - af0 ))
[ "$af" -eq 3 ] || fail "wrong PSK: 3 attempts, auth_failures moved by $af"
# (the address may print IPv4-mapped, [::ffff:192.0.2.3]:PORT, from the dual-stack listener)
lines=$(grep -c "IKE_AUTH from \[*\(::ffff:\)*192\.0\.2\.3\]*:[0-9]*: authentication failed" "$TMP/gwd.log")
[ "$lines" -eq 3 ] || { grep "authentication failed" "$TMP/gwd.log"; fail "wrong PSK: $lines log lines with the peer's address, expected 3"; }
grep -q "AUTHENTICATION_FAILED" "$TMP/pewrong.log" || fail "wrong PSK: the initiator did not see AUTHENTICATION_FAILED"
pe_established && fail "wrong PSK: the initiator says established"
[ "$(st ike sa_established)" -eq 0 ] || fail "wrong PSK: an SA was established"
log "wrong PSK: 3 attempts, auth_failures +3, 3 log lines naming 192.0.2.3"
daemon_stop pewrong

# ---- the real peer: baseline establishment time ----
t0=$(date +%s%N)
daemon_start pe "$TMP/pe-good.conf" pe
wait_for 15 pe_established || fail "the good peer did not establish"
base_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
log "good peer established in ${base_ms} ms (includes daemon start)"
pectl down to-hq >/dev/null || fail "iketcpctl down"
wait_for 5 bash -c "! ip netns exec $NSP-pe $IKETCPCTL -s $TMP/pe/ctl.sock status --json | jq -e '.tunnels[0].state == \"established\"'" ||
	fail "the peer did not go down"

# ---- flood: 2,000 IKE_SA_INIT over 250 streams from 50 addresses, held open; the peer comes up meanwhile ----
est0=$(st ike sa_established)
in0=$(st ike messages_in)
bg flood nsx cl python3 "$PEER_PY" flood $GW 443 --sources "$SOURCES" --conns 250 --per-conn 8 --hold 3 --limit 10
FLOOD=$LAST_PID
wait_for 5 grep -q "requests sent" "$TMP/flood.log" || { cat "$TMP/flood.log"; fail "flood did not start"; }
t0=$(date +%s%N)
pectl up to-hq >/dev/null || fail "iketcpctl up during the flood"
wait_for 10 pe_established || { cat "$TMP/flood.log"; fail "the peer did not establish during the flood"; }
flood_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
rss_peak=$(rss_kb "$GW_PID")
wait "$FLOOD" || { cat "$TMP/flood.log"; fail "flood: not every stream answered (SA or COOKIE) in 10 s"; }
# Under load the responder stopped keeping state and asked for cookies instead (RFC 7296 2.6).
[ "$(st ike cookies_sent)" -gt 0 ] || fail "flood: no COOKIE was sent"
sed 's/^/      /' "$TMP/flood.log"
log "peer established in ${flood_ms} ms during the flood"
[ "$flood_ms" -lt 5000 ] || fail "the peer took ${flood_ms} ms during the flood"
[ $(( $(st ike sa_established) - est0 )) -eq 1 ] || fail "flood: sa_established moved by other than 1"
[ $(( $(st ike messages_in) - in0 )) -ge 250 ] || fail "flood: messages_in did not count every stream's first request"
rss1=$(rss_kb "$GW_PID")
log "gateway RSS: ${rss0} kB at start, ${rss_peak} kB during the flood, ${rss1} kB after"
[ $((rss_peak - rss0)) -lt 102400 ] && [ $((rss1 - rss0)) -lt 102400 ] || fail "RSS grew by more than 100 MB"

# ---- beyond the SA table: 4,200 half-open SAs held on 525 streams (more than IKE_MAX_SAS, 4,096); a peer
# must still get in. An engine that keeps every half-open SA until its 30 s timeout refuses it ("too many IKE
# SAs") for as long as the streams stay open. IKE_HALF_OPEN_CHECK=0 skips this part.
if [ "${IKE_HALF_OPEN_CHECK:-1}" = 1 ]; then
	pectl down to-hq >/dev/null || fail "iketcpctl down"
	wait_for 5 bash -c "! ip netns exec $NSP-pe $IKETCPCTL -s $TMP/pe/ctl.sock status --json | jq -e '.tunnels[0].state == \"established\"'" ||
		fail "the peer did not go down"
	bg flood2 nsx cl python3 "$PEER_PY" flood $GW 443 --sources "$SOURCES" --conns 525 --per-conn 8 --hold 8 --limit 3
	FLOOD2=$LAST_PID
	wait_for 8 grep -q "answered with an SA" "$TMP/flood2.log" || { cat "$TMP/flood2.log"; fail "flood2 did not finish sending"; }
	sed 's/^/      /' "$TMP/flood2.log"
	t0=$(date +%s%N)
	pectl up to-hq >/dev/null || fail "iketcpctl up during the second flood"
	if ! wait_for 4 pe_established; then
		grep -m2 "too many" "$TMP/gwd.log"
		fail "engine gap: with 4,200 half-open SAs held, a legitimate peer cannot establish (no half-open limit)"
	fi
	log "peer established in $(( ($(date +%s%N) - t0) / 1000000 )) ms with 4,200 half-open requests held"
	kill "$FLOOD2" 2>/dev/null
	wait "$FLOOD2" 2>/dev/null
	rss2=$(rss_kb "$GW_PID")
	log "gateway RSS after the second flood: ${rss2} kB"
	[ $((rss2 - rss0)) -lt 102400 ] || fail "RSS grew by more than 100 MB"
fi

# ---- still serving: a fresh IKE_SA_INIT is answered, the peer's SA carries on ----
check good ike.messages_out 1
pe_established || fail "the peer's SA went away"
daemon_stop pe
daemon_stop gwd
log "done in $((SECONDS - start)) s"
exit 0
