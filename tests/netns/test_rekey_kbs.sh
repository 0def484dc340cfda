#!/usr/bin/env bash
# CHILD SA rekeying by volume (RFC 4301 4.4.2.1 byte lifetimes; FortiOS `keylife-type kbs`) on the
# reference topology (scripts/topology.sh):
#
#   hostA 10.1.0.10 -- gwA -- carrier (NAT) -- gwB -- hostB 10.2.0.10
#
# Both phase2 entries say `set keylife-type kbs` and `set keylifekbs 5120`: no rekey timer, and each
# direction of a CHILD SA carries at most 5 MiB of inner bytes. The dataplane counts them, tells IKE
# when an SA passes 90% of that, and IKE rekeys it with CREATE_CHILD_SA at once. 24 MiB from hostA to
# hostB on one TCP connection must arrive intact across several such rekeys, which both gateways log,
# and the SPIs in use afterwards differ from the first. Sequence-number exhaustion feeds the same path
# (tests/unit/test_esp_batch.c): 2^32 packets are out of a test's reach.
. "$(dirname "$0")/lib.sh"
. "$TOP/scripts/topology.sh"
need_root
need python3 jq

topo_up "$NSP" || fail "topology"
NSS+=("$NSP-hostA" "$NSP-gwA" "$NSP-carrier" "$NSP-gwB" "$NSP-hostB")

for gw in gwA gwB; do
	topo_gateway_conf "$TOP/tests/conf/$gw.conf" "$TMP/$gw.conf" "$TMP/$gw" "/sys/fs/bpf/$NSP-$gw"
	mkdir -p "$TMP/$gw"
	sed -i '/^config vpn ipsec phase2-interface/,/^end/ s/^\( *\)set phase1name \(.*\)$/\1set phase1name \2\n\1set keylife-type kbs\n\1set keylifekbs 5120/' "$TMP/$gw.conf"
	grep -q "set keylifekbs 5120" "$TMP/$gw.conf" || fail "$gw: config not edited"
done
ctl() { local gw=$1; shift; ip netns exec "$NSP-$gw" "$IKETCPCTL" -s "$TMP/$gw/iketcpd.sock" "$@"; }
established() { ctl "$1" status --json | jq -e '.tunnels[0].state == "established" and (.tunnels[0].child_sas | length) >= 1' >/dev/null; }
spis() { ctl "$1" status --json | jq -r '[.tunnels[0].child_sas[] | .spi_in] | join(",")'; }

daemon_start gwB "$TMP/gwB.conf" gwB
daemon_start gwA "$TMP/gwA.conf" gwA
wait_for 20 established gwA || { ctl gwA status; ctl gwB status; fail "gwA: tunnel not established"; }
wait_for 5 established gwB || fail "gwB: tunnel not established"
first=$(spis gwA)
[ -n "$first" ] || fail "gwA: no CHILD SA SPI"

bg sink nsx hostB python3 "$TOP/tests/netns/transfer.py" sink 10.2.0.10 5001
SINK=$LAST_PID
sleep 0.3
sent=$(nsx hostA python3 "$TOP/tests/netns/transfer.py" send 10.2.0.10 5001 $((24 << 20))) || fail "TCP transfer"
wait "$SINK"
[ "$(cat "$TMP/sink.log")" = "$sent" ] || fail "TCP transfer corrupted: sent '$sent', got '$(cat "$TMP/sink.log")'"
echo "ok: 24 MiB hostA -> hostB intact with keylifekbs 5120"

# At 5 MiB a direction, 24 MiB needs at least four CHILD SAs in that direction.
soft() { grep -c "passed its soft lifetime (bytes): rekey asked" "$TMP/$1.log"; }
wait_for 10 established gwA || fail "gwA: no CHILD SA after the transfer"
na=$(soft gwA) nb=$(soft gwB)
[ $((na + nb)) -ge 4 ] || fail "soft byte lifetimes told: gwA $na, gwB $nb (expected 4 or more in all)"
echo "ok: byte lifetimes reached IKE: gwA $na, gwB $nb times"
rekeys() { grep -c "rekeying now" "$TMP/$1.log"; }
[ $(( $(rekeys gwA) + $(rekeys gwB) )) -ge 4 ] || fail "CREATE_CHILD_SA rekeys: gwA $(rekeys gwA), gwB $(rekeys gwB)"
now=$(spis gwA)
[ "$now" != "$first" ] || fail "gwA: CHILD SA SPI unchanged ($now)"
echo "ok: CHILD SAs rekeyed by volume: SPI $first -> $now, rekeys gwA $(rekeys gwA), gwB $(rekeys gwB)"
# Nothing else may have started them: no timer is armed with keylife-type kbs.
ctl gwA status --json | jq -e '.tunnels[0].child_sas | length >= 1' >/dev/null || fail "gwA: CHILD SA gone"

daemon_stop gwA
daemon_stop gwB
exit 0
