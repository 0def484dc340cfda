#!/usr/bin/env bash
# CHILD SA rekeying under load (RFC 7296 1.3.3, 2.8) on the reference topology (scripts/topology.sh):
#
#   hostA 10.1.0.10 -- gwA -- carrier (NAT) -- gwB -- hostB 10.2.0.10
#
# Both daemons run with IKETCP_TEST_CHILD_LIFETIME_S=8 (TEST ONLY: the configuration's minimum
# keylifeseconds is 120; the variable shortens only the rekey timer), so each CHILD SA is rekeyed
# with CREATE_CHILD_SA every 6.4-7.2 s. A continuous TCP transfer and a ping run for ~30 s: the
# SPIs change at least twice, the transfer arrives intact (sha256), ping loses at most one packet,
# and the ESP counters keep rising across every rekey. The phase2 entries have pfs enable: each
# rekey carries a new ECDH exchange.
# The IKE SA is rekeyed twice under the same load (RFC 7296 1.3.2), by the control socket's
# `rekey NAME`: once by gwA, once by gwB (which then becomes the new SA's original initiator). Both
# times the IKE SPIs change on both gateways alike, the CHILD SAs stay, and traffic does not notice.
# IKETCP_TEST_IKE_LIFETIME_S=6 (TEST ONLY, like the CHILD one) adds the keylife timers' own IKE SA
# rekeys (every 5.1-5.7 s, on either side), crossing the others and the CHILD SA rekeys.
. "$(dirname "$0")/lib.sh"
. "$TOP/scripts/topology.sh"
need_root
need python3 jq

topo_up "$NSP" || fail "topology"
NSS+=("$NSP-hostA" "$NSP-gwA" "$NSP-carrier" "$NSP-gwB" "$NSP-hostB")

gw_conf() { # GW
	topo_gateway_conf "$TOP/tests/conf/$1.conf" "$TMP/$1.conf" "$TMP/$1" "/sys/fs/bpf/$NSP-$1"
	mkdir -p "$TMP/$1"
}
ctl() { local gw=$1; shift; ip netns exec "$NSP-$gw" "$IKETCPCTL" -s "$TMP/$gw/iketcpd.sock" "$@"; }
established() { ctl "$1" status --json | jq -e '.tunnels[0].state == "established" and (.tunnels[0].child_sas | length) >= 1' >/dev/null; }
# rekey GW NAME: ask until no other exchange is in flight (CHILD SAs rekey every few seconds here).
ike_rekey() {
	for _ in $(seq 1 20); do
		ctl "$1" rekey "$2" >"$TMP/rekey.out" 2>&1 && return 0
		grep -q "in flight" "$TMP/rekey.out" || { cat "$TMP/rekey.out"; return 1; }
		sleep 0.2
	done
	return 1
}
ike_spis() { ctl "$1" status --json | jq -r '.tunnels[0].ike_sa | .spi_i + "/" + .spi_r'; }

export IKETCP_TEST_CHILD_LIFETIME_S=8 IKETCP_TEST_IKE_LIFETIME_S=6
gw_conf gwB
gw_conf gwA
daemon_start gwB "$TMP/gwB.conf" gwB
daemon_start gwA "$TMP/gwA.conf" gwA
wait_for 20 established gwA || { ctl gwA status; ctl gwB status; fail "gwA: tunnel not established"; }
wait_for 5 established gwB || fail "gwB: tunnel not established"

# The sink counts and hashes everything until the sender closes.
bg sink nsx hostB python3 -c '
import hashlib, socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.2.0.10", 5001)); s.listen(1); c, _ = s.accept(); h = hashlib.sha256(); n = 0
while True:
    b = c.recv(65536)
    if not b: break
    h.update(b); n += len(b)
print(n, h.hexdigest())'
SINK=$LAST_PID
sleep 0.3
# The source streams random data for 30 s (about 2 MB/s) and prints what it sent.
bg source nsx hostA python3 -c '
import hashlib, os, socket, time
s = socket.create_connection(("10.2.0.10", 5001), timeout=30); h = hashlib.sha256(); n = 0
end = time.time() + 30
while time.time() < end:
    b = os.urandom(32768); s.sendall(b); h.update(b); n += len(b); time.sleep(0.015)
s.close()
print(n, h.hexdigest())'
SOURCE=$LAST_PID
bg ping nsx hostA ping -c 140 -i 0.2 -W 2 10.2.0.10
PING=$LAST_PID

# Once a second while both flows run: gwA's CHILD SA SPIs and the ESP counters.
declare -A seen=() ike_seen=()
ike_seen[$(ike_spis gwA)]=1
last_out=0 last_in=0 flat=0
# The look lasts 26 s by the clock (each round's status calls take time too): the flows run for 28.
t0=$SECONDS i=0
while [ $((SECONDS - t0)) -lt 26 ]; do
	sleep 1
	i=$((i + 1))
	[ "$i" -eq 9 ] && { ike_rekey gwA to-hq || fail "gwA: rekey to-hq refused"; }
	[ "$i" -eq 18 ] && { ike_rekey gwB branch || fail "gwB: rekey branch refused"; }
	st=$(ctl gwA status --json) # one status per second: the loop must stay within the flows' 28 s
	spis=$(jq -r '.tunnels[0].child_sas[] | .spi_in + "/" + .spi_out' <<<"$st")
	for s in $spis; do seen[$s]=1; done
	s=$(jq -r '.tunnels[0].ike_sa | .spi_i + "/" + .spi_r' <<<"$st")
	[ "$s" != "/" ] && ike_seen[$s]=1
	out=$(stat_of gwA "$TMP/gwA/iketcpd.sock" esp packets_out)
	in=$(stat_of gwB "$TMP/gwB/iketcpd.sock" esp packets_in)
	[ "$out" -gt "$last_out" ] && [ "$in" -gt "$last_in" ] || { flat=$((flat + 1)); log "no ESP progress in second $i (out $out, in $in)"; }
	last_out=$out last_in=$in
done
log "gwA CHILD SAs seen: ${!seen[*]}"
log "gwA IKE SAs seen: ${!ike_seen[*]}"
log "ESP packets: gwA out $last_out, gwB in $last_in; seconds without progress: $flat"

wait "$SOURCE" || { cat "$TMP/source.log"; fail "TCP source failed"; }
wait "$SINK"
wait "$PING"
sent=$(cat "$TMP/source.log") got=$(cat "$TMP/sink.log")
log "TCP: sent '$sent', got '$got'"
[ -n "$sent" ] && [ "$sent" = "$got" ] || fail "TCP transfer across rekeys corrupted or cut: sent '$sent', got '$got'"
cat "$TMP/ping.log" | tail -3
loss=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$TMP/ping.log")
[ -n "$loss" ] && [ "$loss" -ge 139 ] || fail "ping lost more than one packet across rekeys"
[ "${#seen[@]}" -ge 3 ] || fail "the CHILD SA SPIs changed fewer than twice (${#seen[@]} seen)"
[ "$flat" -le 1 ] || fail "ESP counters stopped rising for $flat seconds"
[ "${#ike_seen[@]}" -ge 4 ] || fail "the IKE SA SPIs changed fewer than three times (${!ike_seen[*]})"
grep -q "rekeying IKE SA .*" "$TMP/gwA.log" "$TMP/gwB.log" || fail "no IKE SA rekey logged"
n_ike=$(cat "$TMP/gwA.log" "$TMP/gwB.log" | grep -c "rekeyed to .* (ours)")
log "IKE SA rekeys: $n_ike; collisions: $(cat "$TMP/gwA.log" "$TMP/gwB.log" | grep -c "simultaneous IKE SA rekey\|TEMPORARY_FAILURE")"
[ "$(ike_spis gwA)" = "$(ike_spis gwB)" ] || fail "the gateways disagree on the IKE SA: $(ike_spis gwA) vs $(ike_spis gwB)"
n_stat=$(($(stat_of gwA "$TMP/gwA/iketcpd.sock" ike sa_rekeyed) + $(stat_of gwB "$TMP/gwB/iketcpd.sock" ike sa_rekeyed)))
[ "$n_stat" -ge 2 ] || fail "ike.sa_rekeyed counts $n_stat IKE SA rekeys on both gateways together"
grep -q "IKE SA .* rekeyed to .* (ours)" "$TMP/gwA.log" || fail "gwA: no IKE SA rekey of its own in the log"
grep -q "IKE SA .* rekeyed to .* (ours)" "$TMP/gwB.log" || fail "gwB: no IKE SA rekey of its own in the log"
[ "$(ctl gwA status --json | jq -r '.tunnels[0].ike_sa.role')" != "$(ctl gwB status --json | jq -r '.tunnels[0].ike_sa.role')" ] ||
	fail "both gateways claim the same role in the IKE SA"
grep -E "IKE SA .* rekeyed|simultaneous IKE|rekey of IKE SA" "$TMP/gwA.log" "$TMP/gwB.log" | tail -6
# tests/conf has pfs enable (the default): every rekey carried KEi/KEr (logged at debug).
grep -q "CREATE_CHILD_SA { N(REKEY_SA) SA Ni KEi TSi TSr }" "$TMP/gwA.log" "$TMP/gwB.log" ||
	fail "no rekey with PFS (KEi) in the logs"
n_rekeys=$(grep -c "rekeyed" "$TMP/gwA.log" "$TMP/gwB.log" | awk -F: '{s += $2} END {print s}')
log "rekey log lines: $n_rekeys"
grep -E "rekeyed|simultaneous|refused" "$TMP/gwA.log" | tail -5
# Both ends still agree on one pair.
a=$(ctl gwA status --json | jq -r '.tunnels[0].child_sas | map(.spi_in + "/" + .spi_out) | join(" ")')
b=$(ctl gwB status --json | jq -r '.tunnels[0].child_sas | map(.spi_out + "/" + .spi_in) | join(" ")')
log "gwA: $a; gwB (mirrored): $b"
[ "$a" = "$b" ] || fail "the gateways disagree on the CHILD SAs"

daemon_stop gwA
daemon_stop gwB
exit 0
