#!/usr/bin/env bash
# Hostile ESP into gwB's RFC 9329 listener while the reference tunnel carries traffic.
#
#   hostA 10.1.0.10 -- gwA -- carrier (NAT) -- 203.0.113.2:443 gwB -- hostB 10.2.0.10
#                                  ^ the attacker: captures the real stream, opens new ones
#
# The carrier captures gwA's stream to gwB from its SYN on, so esp_inject.py can follow the
# RFC 9329 framing and take a real ESP packet for gwB's inbound SPI. Each hostile packet goes
# on a new stream (IKETCP prefix) from the carrier's own address, which is also the NAT address
# gwA's stream comes from: the dataplane takes ESP from any stream (a reconnected peer may switch
# before IKE says so), so the SA's own checks are all that stand in the way. Each case must move
# exactly one of gwB's esp counters by one, the stream must stay open, and meanwhile a continuous
# ping hostA -> hostB loses at most one packet and a 4 MB TCP transfer arrives intact.
. "$(dirname "$0")/lib.sh"
. "$TOP/scripts/topology.sh"
need_root
need python3 jq tcpdump
INJECT="$TOP/tests/netns/esp_inject.py"

topo_up "$NSP" || fail "topology"
NSS+=("$NSP-hostA" "$NSP-gwA" "$NSP-carrier" "$NSP-gwB" "$NSP-hostB")

for gw in gwA gwB; do
	topo_gateway_conf "$TOP/tests/conf/$gw.conf" "$TMP/$gw.conf" "$TMP/$gw" "/sys/fs/bpf/$NSP-$gw"
	mkdir -p "$TMP/$gw"
done
ctl() { local gw=$1; shift; ip netns exec "$NSP-$gw" "$IKETCPCTL" -s "$TMP/$gw/iketcpd.sock" "$@"; }
established() { ctl "$1" status --json | jq -e '.tunnels[0].state == "established" and (.tunnels[0].child_sas | length) >= 1' >/dev/null; }
esp() { stat_of gwB "$TMP/gwB/iketcpd.sock" esp "$1"; }

daemon_start gwB "$TMP/gwB.conf" gwB
# From before gwA's SYN: the framing is followed from the IKETCP prefix on.
ip netns exec "$NSP-carrier" tcpdump -i c1 -n -U --immediate-mode -s 0 -w "$TMP/stream.pcap" \
	tcp and dst host 203.0.113.2 and dst port 443 >"$TMP/tcpdump.log" 2>&1 &
CAP=$!
PIDS+=($CAP)
wait_for 5 grep -q "listening on" "$TMP/tcpdump.log" || fail "tcpdump did not start"
daemon_start gwA "$TMP/gwA.conf" gwA
wait_for 20 established gwA || { ctl gwA status; ctl gwB status; fail "gwA: tunnel not established"; }
wait_for 5 established gwB || { ctl gwB status; fail "gwB: tunnel not established"; }
nsx hostA ping -c 5 -i 0.1 -W 2 10.2.0.10 >"$TMP/ping0.log" || { cat "$TMP/ping0.log"; fail "ping before the attack"; }
sleep 0.3
kill "$CAP"
wait "$CAP" 2>/dev/null
SPI=$(ctl gwB status --json | jq -r '.tunnels[0].child_sas[0].spi_in')
SPI=${SPI#0x}
[ -n "$SPI" ] && [ "$SPI" != null ] || fail "no inbound SPI on gwB"
log "gwB inbound SPI $SPI; captured $(tcpdump -n -r "$TMP/stream.pcap" 2>/dev/null | wc -l) packets of gwA's stream"

# The legitimate traffic the attack must not disturb: a continuous ping and a 4 MB transfer.
bg ping nsx hostA ping -c 150 -i 0.1 -W 2 10.2.0.10
PING=$LAST_PID
bg sink nsx hostB python3 "$TOP/tests/netns/transfer.py" sink 10.2.0.10 5001
SINK=$LAST_PID
sleep 0.3
# spread over the attack: 64 KiB every 0.1 s
bg sender nsx hostA python3 "$TOP/tests/netns/transfer.py" send 10.2.0.10 5001 $((4 << 20)) 0.1
SENDER=$LAST_PID

COUNTERS=(unknown_spi replay_drops auth_failures malformed)
# attack CASE COUNTER: one hostile packet on a new stream; COUNTER +1, the other three unchanged.
attack() {
	local case=$1 want=$2 c
	declare -A before
	for c in "${COUNTERS[@]}"; do before[$c]=$(esp "$c"); done
	nsx carrier python3 "$INJECT" "$TMP/stream.pcap" 203.0.113.2 443 "$SPI" "$case" >>"$TMP/inject.log" 2>&1 ||
		{ cat "$TMP/inject.log"; fail "$case: injection failed or gwB closed the stream"; }
	local ok=0
	for _ in $(seq 30); do
		[ $(($(esp "$want") - before[$want])) -ge 1 ] && { ok=1; break; }
		sleep 0.1
	done
	for c in "${COUNTERS[@]}"; do
		local d=$(($(esp "$c") - before[$c])) exp=0
		[ "$c" = "$want" ] && exp=1
		[ "$d" -eq "$exp" ] || fail "$case: esp.$c moved by $d, expected $exp"
	done
	[ $ok -eq 1 ] || fail "$case: esp.$want did not move"
	log "$case -> esp.$want +1 ($(tail -1 "$TMP/inject.log"))"
}

attack unknown_spi unknown_spi
attack replay replay_drops
# Replay is checked before the ICV (RFC 4303 section 3.4.3): an already-received number
# with a damaged ciphertext or ICV is dropped as a replay, without spending a decryption.
attack flip_ct replay_drops
attack flip_icv replay_drops
# A number never received (one bit of the sequence number's top byte, 2^30 ahead) passes the
# window check and fails the ICV: GCM authenticates SPI and sequence number as AAD.
attack flip_seq auth_failures
# Shorter than SPI + sequence number: refused before the SA lookup.
attack trunc7 malformed
# SPI, number and 8-byte IV but no room for the 16-byte ICV: refused before the window and the cipher.
attack trunc20 malformed
# The failed ICV did not move the window 2^30 ahead: real packets still pass (the ping below).

# gwA's last IKE request, replayed on the attacker's stream (RFC 9329 6.1): gwB answers it from its
# cache there and asks gwA, on both streams, whether it moved. gwA answers on its own stream, so the
# IKE SA and its ESP stay with gwA: the ping and the transfer below see nothing. (Moving on a resend
# would send gwB's ESP into the attacker's stream until gwA's next request.)
for c in "${COUNTERS[@]}"; do declare "ike_before_$c=$(esp "$c")"; done
nsx carrier python3 "$INJECT" "$TMP/stream.pcap" 203.0.113.2 443 "$SPI" ike_replay >>"$TMP/inject.log" 2>&1 ||
	{ cat "$TMP/inject.log"; fail "ike_replay: injection failed or gwB closed the stream"; }
back=$(sed -n 's/^ike frames back: //p' "$TMP/inject.log")
[ "$back" = 2 ] || { cat "$TMP/inject.log"; fail "ike_replay: gwB sent $back IKE frames back, expected its cached answer and a liveness check"; }
for c in "${COUNTERS[@]}"; do
	v=ike_before_$c
	[ "$(esp "$c")" -eq "${!v}" ] || fail "ike_replay moved esp.$c"
done
! grep -q "moved to a new stream" "$TMP/gwB.log" || fail "ike_replay: gwB moved the IKE SA to the attacker's stream"
log "ike_replay -> answered from the cache and a liveness check, the SA stayed ($(grep '^ike_replay' "$TMP/inject.log"))"
log "attack done: $(wc -l <"$TMP/inject.log") lines of injection log"

established gwB || fail "gwB lost the tunnel under attack"
wait "$SENDER" || fail "TCP transfer over the tunnel failed"
wait "$SINK"
[ "$(cat "$TMP/sink.log")" = "$(cat "$TMP/sender.log")" ] ||
	fail "TCP transfer corrupted: sent '$(cat "$TMP/sender.log")', got '$(cat "$TMP/sink.log")'"
log "4 MB transfer intact: $(cat "$TMP/sink.log")"
wait "$PING"
loss=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$TMP/ping.log")
[ -n "$loss" ] && [ "$loss" -ge 149 ] || { tail -3 "$TMP/ping.log"; fail "continuous ping lost more than one packet"; }
log "continuous ping: $loss/150 received"
[ "$(esp auth_failures)" -eq 1 ] && [ "$(esp unknown_spi)" -eq 1 ] && [ "$(esp malformed)" -eq 2 ] ||
	fail "legitimate traffic moved an error counter: $(ctl gwB stats --json | jq -c .esp)"

daemon_stop gwA
daemon_stop gwB
exit 0
