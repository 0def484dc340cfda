#!/usr/bin/env bash
# Steering as the daemon runs it: IKE on 443 reaches the daemon's 11443 through XDP, a real
# HTTPS admin service (nginx) on the same 443 still answers curl through the pass-through,
# bpftool shows the pinned maps with named fields and moving counters, a SYN burst from one
# source is dropped while a second source still connects, and SIGTERM leaves nothing behind.
# STEER_HOOK=tc (test_steer_daemon_tc.sh): the same with `set steer-hook tc`, beside an XDP program
# that is not ours on wan0, which stays attached throughout.
#
#   client 192.0.2.2, 192.0.2.3, 2001:db8::2 eth0 ==== wan0 192.0.2.1, 2001:db8::1 gw
#                                                      (iketcpd: 443 -> 11443; nginx: 192.0.2.1:443)
. "$(dirname "$0")/lib.sh"
need_root
need python3 jq curl nginx openssl bpftool

ns_add gw
ns_add cl
veth gw wan0 cl eth0
ip -n "$NSP-gw" addr add 192.0.2.1/24 dev wan0
ip -n "$NSP-gw" addr add 2001:db8::1/64 dev wan0 nodad
ip -n "$NSP-cl" addr add 192.0.2.2/24 dev eth0
ip -n "$NSP-cl" addr add 192.0.2.3/24 dev eth0
ip -n "$NSP-cl" addr add 2001:db8::2/64 dev eth0 nodad
HOOK=${STEER_HOOK:-xdp}
xdp_prog_id() { ip -n "$NSP-gw" -j link show wan0 | jq '.[0].xdp.prog.id'; }
if [ "$HOOK" = tc ]; then
	# Someone else's XDP program on the WAN (here: the clear-side program, which passes all).
	ip -n "$NSP-gw" link set dev wan0 xdpdrv obj "$BUILD/bpf/clear.bpf.o" sec xdp || fail "foreign XDP"
	foreign=$(xdp_prog_id)
fi

# The admin service: nginx with a self-signed certificate on the WAN addresses, port 443.
. "$TOP/scripts/topology.sh"
PIDS+=("$(nginx_https "$TMP/admin" "$NSP-gw" "iketcp admin page" 192.0.2.1:443 "[2001:db8::1]:443")")
wait_for 5 nsx gw curl -sk --max-time 1 https://192.0.2.1/ || fail "nginx did not start"

SOCK=$TMP/ctl.sock
own_bpffs "$TMP/bpffs"
PIN=$TMP/bpffs/iketcp
cat >"$TMP/gw.conf" <<CONF
config system settings
    set ike-tcp-service enable
    set ike-tcp-port 443
    set ike-tcp-syn-rate 20
    set steer-hook $HOOK
    set control-socket "$SOCK"
    set bpf-pin-path "$PIN"
end
config system global
    set admin-sport 443
end
config vpn ipsec phase1-interface
    edit "dialup"
        set interface "wan0"
        set type dynamic
        set psksecret "steer-test-secret"
    next
end
CONF
daemon_start gw "$TMP/gw.conf" gwd
grep -q "admin-sport 443 is the same as ike-tcp-port 443" "$TMP/gwd.log" || fail "no admin-sport warning"
if [ "$HOOK" = tc ]; then
	tc -n "$NSP-gw" filter show dev wan0 ingress | grep -q "tc_steer_in" || fail "tc: no ingress filter"
	[ "$(xdp_prog_id)" = "$foreign" ] ||
		fail "the foreign XDP program was replaced"
	grep -q "(not ours) sees packets before the tc ingress steering" "$TMP/gwd.log" || fail "no warning for the XDP program"
	[ "$(ip netns exec "$NSP-gw" "$IKETCPCTL" -s "$SOCK" status --json | jq -r '.daemon.steering[0].hook')" = tc ] ||
		fail "status: steering hook is not tc"
else
	ip -n "$NSP-gw" link show wan0 | grep -q "prog/xdp" || fail "ip link show: no XDP program"
	ip -n "$NSP-gw" link show wan0 | grep -q "xdp_steer" || fail "ip link show: not xdp_steer"
fi
tc -n "$NSP-gw" filter show dev wan0 egress | grep -q "tc_steer" || fail "tc: no egress filter"

# IKE on 443 reaches the daemon, over IPv4 and IPv6.
st() { stat_of gw "$SOCK" "$1" "$2"; }
for addr in 192.0.2.1 2001:db8::1; do
	before=$(st tcp frames_ike)
	nsx cl python3 "$TOP/tests/netns/iketcp_client.py" good "$addr" 443 || fail "IKE over 443 to $addr"
	[ $(($(st tcp frames_ike) - before)) -ge 52 ] || fail "frames over 443 to $addr not counted"
done

# The admin page through the pass-through, from the client (curl offers ALPN h2 and http/1.1).
for url in https://192.0.2.1/ "https://[2001:db8::1]/"; do
	out=$(nsx cl curl -sk --max-time 5 "$url") || fail "curl $url"
	[ "$out" = "iketcp admin page" ] || fail "curl $url: got '$out'"
done
out=$(nsx cl curl -sk --http1.1 --max-time 5 https://192.0.2.1/) || fail "curl --http1.1"
[ "$out" = "iketcp admin page" ] || fail "curl --http1.1: got '$out'"
[ "$(st tcp admin_passthrough)" -ge 3 ] || fail "admin_passthrough not counted"
log "admin page served through the pass-through: $(st tcp admin_passthrough) connections"

# bpftool sees the pinned maps with named fields, and counters that move.
bt() { bpftool "$@"; }
for m in steer_config steer_counters steer_syn steer_local steer_abi xdp_steer tc_steer tc_steer_in; do
	[ -e "$PIN/wan0/$m" ] || fail "not pinned: $PIN/wan0/$m"
done
bt map dump pinned "$PIN/wan0/steer_config" | tee "$TMP/config.dump" | grep -q '"internal_port": 11443' ||
	{ cat "$TMP/config.dump"; fail "bpftool: steer_config has no named internal_port"; }
grep -q '"ike_tcp_port": 443' "$TMP/config.dump" || fail "bpftool: steer_config ike_tcp_port"
c1=$(bt map dump pinned "$PIN/wan0/steer_counters" -j | jq '[.. | numbers] | add')
nsx cl python3 "$TOP/tests/netns/iketcp_client.py" good 192.0.2.1 443 >/dev/null || fail "IKE over 443"
c2=$(bt map dump pinned "$PIN/wan0/steer_counters" -j | jq '[.. | numbers] | add')
[ "$c2" -gt "$c1" ] || fail "bpftool: counters did not move ($c1 -> $c2)"
[ "$(st xdp steered_in)" -gt 0 ] && [ "$(st xdp steered_out)" -gt 0 ] || fail "stats: xdp counters"

# A SYN burst from 192.0.2.2: over 20/s it is dropped (in XDP or at tc); 192.0.2.3 still connects at once.
before=$(st xdp syn_dropped)
nsx cl python3 - <<'PY' || fail "SYN burst"
import socket, time
socks = []
for _ in range(200):
    s = socket.socket(); s.setblocking(False)
    s.bind(("192.0.2.2", 0))
    try: s.connect(("192.0.2.1", 443))
    except BlockingIOError: pass
    socks.append(s)
time.sleep(0.3)
for s in socks: s.close()
PY
dropped=$(($(st xdp syn_dropped) - before))
log "SYN burst of 200 from one source: $dropped dropped ($HOOK)"
[ "$dropped" -ge 100 ] || fail "only $dropped SYNs dropped"
nsx cl python3 -c '
import socket, sys
s = socket.socket(); s.settimeout(0.9); s.bind(("192.0.2.3", 0))
s.connect(("192.0.2.1", 443)); s.sendall(b"IKETCP"); s.close()' || fail "second source could not connect during the burst"

daemon_stop gwd
[ -z "$(ls -A "$PIN" 2>/dev/null)" ] || { ls -R "$PIN"; fail "pins left after SIGTERM"; }
if [ "$HOOK" = tc ]; then
	[ "$(xdp_prog_id)" = "$foreign" ] ||
		fail "the foreign XDP program is gone after SIGTERM"
	tc -n "$NSP-gw" filter show dev wan0 ingress | grep -q "tc_steer_in" && fail "tc ingress filter left after SIGTERM"
else
	ip -n "$NSP-gw" link show wan0 | grep -q "prog/xdp" && fail "XDP still attached after SIGTERM"
fi
tc -n "$NSP-gw" filter show dev wan0 egress | grep -q "tc_steer" && fail "tc filter left after SIGTERM"
# The admin service is untouched and reachable directly again once steering is gone.
out=$(nsx cl curl -sk --max-time 5 https://192.0.2.1/) || fail "curl after SIGTERM"
[ "$out" = "iketcp admin page" ] || fail "admin page after SIGTERM: '$out'"
exit 0
