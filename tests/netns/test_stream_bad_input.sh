#!/usr/bin/env bash
# The RFC 9329 listener of a running iketcpd, driven by a client in its own namespace:
# good streams are framed and counted (IKE and ESP told apart, keepalives dropped), and
# every bad input gets a counted close or a counted drop while other connections carry on.
# Over IPv4 and IPv6, on the steered port 443 (XDP to 11443) and on 4500, then with TLS on.
#
#   client 192.0.2.2 / 2001:db8::2  eth0 ==== wan0  192.0.2.1 / 2001:db8::1  gw (iketcpd)
. "$(dirname "$0")/lib.sh"
need_root
need python3 jq
CLIENT="$TOP/tests/netns/iketcp_client.py"

ns_add gw
ns_add cl
veth gw wan0 cl eth0
ip -n "$NSP-gw" addr add 192.0.2.1/24 dev wan0
ip -n "$NSP-gw" addr add 2001:db8::1/64 dev wan0 nodad
ip -n "$NSP-cl" addr add 192.0.2.2/24 dev eth0
ip -n "$NSP-cl" addr add 2001:db8::2/64 dev eth0 nodad

write_conf() { # TLS(enable|disable)
	cat >"$TMP/gw.conf" <<CONF
config system settings
    set ike-tcp-service enable
    set ike-tls-service $1
    set ike-tcp-port 443
    set ike-tcp-syn-rate 0
    set control-socket "$TMP/ctl.sock"
    set bpf-pin-path "/sys/fs/bpf/$NSP"
end
config system global
    set admin-sport 8443
end
config vpn ipsec phase1-interface
    edit "branch"
        set interface "wan0"
        set type dynamic
        set psksecret "test secret"
    next
end
CONF
}

SOCK=$TMP/ctl.sock
st() { stat_of gw "$SOCK" "$1" "$2"; }
client() { nsx cl python3 "$CLIENT" "$@"; }

# expect SECTION.COUNTER DELTA CASE ARGS...: run a client case and check the counter moved by at least DELTA.
expect() {
	local sec=${1%%.*} ctr=${1#*.} delta=$2
	shift 2
	local before after
	before=$(st "$sec" "$ctr")
	client "$@" || fail "client case '$*' did not behave as expected"
	for _ in $(seq 50); do
		after=$(st "$sec" "$ctr")
		[ $((after - before)) -ge "$delta" ] && { log "$* -> $sec.$ctr +$((after - before))"; return 0; }
		sleep 0.1
	done
	fail "$*: $sec.$ctr moved by $((after - before)), expected $delta"
}

write_conf disable
daemon_start gw "$TMP/gw.conf" gwd

# A bystander connection that must survive everything below.
bg bystander nsx cl python3 "$CLIENT" many 192.0.2.1 4500 --count 3 --hold 30
BYSTANDER=$LAST_PID

for addr in 192.0.2.1 2001:db8::1; do
	for port in 443 4500; do
		expect tcp.frames_ike 52 good "$addr" $port
		expect tcp.frames_esp 1 good "$addr" $port
		expect tcp.keepalives 1 good "$addr" $port
		expect tcp.prefix_errors 1 http "$addr" $port
		expect tcp.prefix_errors 1 tls-hello "$addr" $port
		expect tcp.bad_length 1 len0 "$addr" $port
		expect tcp.bad_length 1 len1 "$addr" $port
		expect tcp.frames_malformed 1 len2 "$addr" $port
		expect tcp.frames_malformed 1 len5 "$addr" $port
		expect tcp.partial_at_close 1 len65535-partial "$addr" $port
		expect tcp.ike_too_short 1 short-ike "$addr" $port
	done
done
# IKE messages and ESP packets reached their layers: no SA exists, so each is an unknown SPI.
[ "$(st ike messages_in)" -ge 208 ] || fail "ike.messages_in $(st ike messages_in)"
[ "$(st esp unknown_spi)" -ge 8 ] || fail "esp.unknown_spi $(st esp unknown_spi)"
# Port 443 was steered by XDP, and the replies were steered back by tc.
[ "$(st xdp steered_in)" -gt 0 ] || fail "xdp.steered_in did not move"
[ "$(st xdp steered_out)" -gt 0 ] || fail "xdp.steered_out did not move"

expect tcp.prefix_timeouts 1 truncated-prefix 192.0.2.1 443
expect tcp.prefix_timeouts 1 silent 2001:db8::1 4500

# Thousands of idle connections are held, then all released.
expect tcp.accepted 2000 many 192.0.2.1 443 --count 2000 --hold 2
wait "$BYSTANDER" || fail "the bystander connection did not survive"
for _ in $(seq 50); do [ "$(st tcp active)" -eq 0 ] && break; sleep 0.1; done
[ "$(st tcp active)" -eq 0 ] || fail "tcp.active is $(st tcp active) after every client left"

log "stats: $(ip netns exec "$NSP-gw" "$IKETCPCTL" -s "$SOCK" stats --json | jq -c .tcp)"
daemon_stop gwd

# TLS 1.3: the same stream inside TLS; a plain one is still accepted; garbage after a ClientHello-looking start is a TLS failure.
write_conf enable
daemon_start gw "$TMP/gw.conf" gwd
grep -q "TLS server certificate SHA-256" "$TMP/gwd.log" || fail "no TLS fingerprint logged"
for addr in 192.0.2.1 2001:db8::1; do
	expect tcp.tls_handshakes 1 good "$addr" 443 --tls
	expect tcp.frames_ike 52 good "$addr" 4500 --tls
	expect tcp.bad_length 1 len0 "$addr" 443 --tls
	expect tcp.frames_malformed 1 len5 "$addr" 443 --tls
	expect tcp.prefix_errors 1 http "$addr" 443
done
daemon_stop gwd
# SIGTERM detached both programs.
ip -n "$NSP-gw" link show wan0 | grep -q "prog/xdp" && fail "XDP program still attached after SIGTERM"
[ -z "$(tc -n "$NSP-gw" filter show dev wan0 egress 2>/dev/null)" ] || fail "tc filter left after SIGTERM"
exit 0
