#!/usr/bin/env bash
# The clear side with AF_XDP. Part 1, clear.bpf.o attached by hand with iproute2:
# with empty maps everything passes (ARP, ping to the gateway); a selector entry
# written with bpftool turns matching traffic into no_xsk (no socket, still passed);
# the maps and counters read back with `bpftool map dump`. Part 2: the dataplane
# itself (build/tests/test_afxdp, which builds its own gateway/host namespaces over
# a veth, copy-mode AF_XDP with need_wakeup): host UDP sealed into ESP that the peer
# SA opens, peer ESP delivered to the host with the right MAC, neighbour-miss path.
#
#   [lan] ln0 10.1.0.10/24  <---- veth ---->  gw0 10.1.0.1/24 [gw]
#         route 10.2.0.0/24 via 10.1.0.1      xdp: clear.bpf.o (by hand)
. "$(dirname "$0")/lib.sh"
need_root
need ip bpftool python3
OBJ=$BUILD/bpf/clear.bpf.o
[ -f "$OBJ" ] || skip "$OBJ not built"

ns_add gw
ns_add lan
veth gw gw0 lan ln0
ip -n "$NSP-gw" addr add 10.1.0.1/24 dev gw0
ip -n "$NSP-lan" addr add 10.1.0.10/24 dev ln0
ip -n "$NSP-lan" route add 10.2.0.0/24 via 10.1.0.1

ip -n "$NSP-gw" link set dev gw0 xdp obj "$OBJ" sec xdp || fail "ip link set xdp obj clear.bpf.o"
prog=$(ip -n "$NSP-gw" -j link show gw0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["xdp"]["prog"]["id"])') ||
	fail "no XDP program on gw0"
log "clear.bpf.o attached, prog id $prog"

# map_id NAME: the id of the program's map NAME.
map_id() {
	local ids
	ids=$(bpftool -j prog show id "$prog" | python3 -c 'import json,sys; print(" ".join(map(str, json.load(sys.stdin)["map_ids"])))')
	for id in $ids; do
		bpftool -j map show id "$id" | python3 -c "import json,sys; sys.exit(json.load(sys.stdin)['name'] != '$1')" &&
			{ echo "$id"; return 0; }
	done
	return 1
}
# counter NAME: clear_counters' NAME summed over CPUs (bpftool prints the enum-indexed per-CPU values).
CNT=$(map_id clear_counters) || fail "clear_counters not found"
V4=$(map_id clear_v4) || fail "clear_v4 not found"
counter() {
	local idx
	case $1 in to_xsk) idx=0 ;; passed) idx=1 ;; no_xsk) idx=2 ;; malformed) idx=3 ;; esac
	bpftool -j map dump id "$CNT" | python3 -c "
import json,sys
for e in json.load(sys.stdin):
    k = e.get('formatted', e)['key'] if 'formatted' in e else e['key']
    k = k if isinstance(k, int) else int.from_bytes(bytes(int(b, 16) for b in k), 'little')
    if k == $idx:
        vals = e['formatted']['values'] if 'formatted' in e else e['values']
        print(sum(v['value'] if isinstance(v['value'], int) else int.from_bytes(bytes(int(b, 16) for b in v['value']), 'little') for v in vals))
"
}

# Empty maps: the gateway answers ARP and ping as if nothing were attached.
nsx lan ping -c 3 -i 0.2 -W 2 10.1.0.1 >/dev/null || fail "ping to the gateway with clear.bpf.o and empty maps"
p=$(counter passed)
[ "${p:-0}" -ge 4 ] || fail "passed counter $p, want >= 4 (ARP + 3 echo requests)"
[ "$(counter to_xsk)" = 0 ] || fail "to_xsk moved with empty maps"
log "empty maps: all passed ($p)"

# A selector entry by hand: 10.2.0.0/24, value sa_count 1. No socket on the queue: no_xsk, still passed.
bpftool map update id "$V4" key hex 18 00 00 00 0a 02 00 00 value hex 01 00 00 00 00 00 00 00 ||
	fail "bpftool map update clear_v4"
bpftool map dump id "$V4" | tee "$TMP/v4.txt" | grep -q '"prefixlen": 24' || fail "clear_v4 dump lacks named fields: $(cat "$TMP/v4.txt")"
nsx lan ping -c 2 -i 0.2 -W 1 10.2.0.10 >/dev/null 2>&1
n=$(counter no_xsk)
[ "${n:-0}" -ge 2 ] || fail "no_xsk counter $n, want >= 2"
[ "$(counter to_xsk)" = 0 ] || fail "to_xsk moved without a socket"
nsx lan ping -c 1 -W 2 10.1.0.1 >/dev/null || fail "the gateway itself no longer reachable with a selector installed"
log "selector hit without a socket: no_xsk ($n), gateway still reachable"
ip -n "$NSP-gw" link set dev gw0 xdp off

# Part 2: the AF_XDP dataplane end to end against a LAN host (its own namespaces).
T=$BUILD/tests/test_afxdp
[ -x "$T" ] || skip "$T not built (make $T)"
"$T" >"$TMP/test_afxdp.log" 2>&1 || fail "test_afxdp: $(grep -E 'FAILED|ERROR|LINE' "$TMP/test_afxdp.log" | head -5)"
grep -q "copy mode, need_wakeup" "$TMP/test_afxdp.log" || fail "AF_XDP not in copy mode with need_wakeup on veth"
! grep -q "SKIPPED" "$TMP/test_afxdp.log" || fail "test_afxdp skipped tests: $(grep -m3 -E "SKIP|skipping" "$TMP/test_afxdp.log")"
log "AF_XDP dataplane: $(grep -m1 'XDP .* mode' "$TMP/test_afxdp.log" | sed 's/.*afx0: //')"
echo PASS
