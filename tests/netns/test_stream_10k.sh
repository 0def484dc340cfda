#!/usr/bin/env bash
# 10,000 concurrent RFC 9329 connections (the daemon raises RLIMIT_NOFILE for them); one more
# is refused and counted; the daemon still answers its control socket throughout.
#
#   client 192.0.2.2 eth0 ==== wan0 192.0.2.1 gw (iketcpd, ike-tcp-max-connections 10000)
. "$(dirname "$0")/lib.sh"
need_root
need python3 jq

ns_add gw
ns_add cl
veth gw wan0 cl eth0
ip -n "$NSP-gw" addr add 192.0.2.1/24 dev wan0
ip -n "$NSP-cl" addr add 192.0.2.2/24 dev eth0
# Enough client ports and a short TIME_WAIT for 10,001 connections from one address.
nsx cl sysctl -qw net.ipv4.ip_local_port_range="10000 65000"
nsx gw sysctl -qw net.core.somaxconn=4096

SOCK=$TMP/ctl.sock
cat >"$TMP/gw.conf" <<CONF
config system settings
    set ike-tcp-service enable
    set ike-tcp-syn-rate 0
    set ike-tcp-max-connections 10000
    set control-socket "$SOCK"
    set bpf-pin-path "/sys/fs/bpf/$NSP"
end
config vpn ipsec phase1-interface
    edit "dialup"
        set interface "wan0"
        set type dynamic
        set psksecret "secret-for-load-test"
    next
end
CONF
# The sanitized daemon's shadow memory makes 10k connections slow to set up: use the release build.
IKETCPD=$BUILD/iketcpd
daemon_start gw "$TMP/gw.conf" gwd

bg clients nsx cl python3 "$TOP/tests/netns/iketcp_client.py" over-limit 192.0.2.1 443 --count 10000
CL=$LAST_PID
peak=0
for _ in $(seq 300); do
	a=$(stat_of gw "$SOCK" tcp active) || fail "control socket stopped answering under load"
	[ "$a" -gt "$peak" ] && peak=$a
	kill -0 "$CL" 2>/dev/null || break
	sleep 0.2
done
wait "$CL" || { cat "$TMP/clients.log"; fail "the 10,001st connection was not refused"; }
log "peak active connections: $peak"
[ "$peak" -eq 10000 ] || fail "peak active $peak, expected 10000"
[ "$(stat_of gw "$SOCK" tcp refused_limit)" -ge 1 ] || fail "refused_limit not counted"
for _ in $(seq 100); do [ "$(stat_of gw "$SOCK" tcp active)" -eq 0 ] && break; sleep 0.1; done
[ "$(stat_of gw "$SOCK" tcp active)" -eq 0 ] || fail "connections not released"
daemon_stop gwd
exit 0
