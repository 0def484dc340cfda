#!/usr/bin/env bash
# IPv6 outer addresses: the reference topology with an IPv6 carrier that, like the IPv4 one, NATs
# the branch (NAT66 masquerade) and lets through only what each case needs.
#
#   hostA 10.1.0.10 -- gwA 2001:db8:64::2 -- carrier (NAT66) -- 2001:db8:113::2 gwB -- hostB 10.2.0.10
#
# gwA names gwB by remote-gw6 only. For each transport (udp, tcp, tls) the IKE SA and CHILD SA come
# up over IPv6 through the NAT, both gateways report the IPv6 endpoints, NAT is detected in front of
# gwA, and hostA pings hostB through the tunnel.
. "$(dirname "$0")/lib.sh"
. "$TOP/scripts/topology.sh"
need_root
need jq ip6tables

topo_up "$NSP" || fail "topology"
NSS+=("$NSP-hostA" "$NSP-gwA" "$NSP-carrier" "$NSP-gwB" "$NSP-hostB")
ip -n "$NSP-gwA" addr add 2001:db8:64::2/64 dev wan0 nodad
ip -n "$NSP-carrier" addr add 2001:db8:64::1/64 dev c0 nodad
ip -n "$NSP-carrier" addr add 2001:db8:113::1/64 dev c1 nodad
ip -n "$NSP-gwB" addr add 2001:db8:113::2/64 dev wan0 nodad
ip -n "$NSP-gwA" -6 route add default via 2001:db8:64::1
ip -n "$NSP-gwB" -6 route add default via 2001:db8:113::1
nsx carrier sysctl -qw net.ipv6.conf.all.forwarding=1
nsx carrier ip6tables -t nat -A POSTROUTING -o c1 -j MASQUERADE || skip "no NAT66 (ip6tables nat) here"
nsx carrier iptables -D FORWARD -p udp -j DROP # this carrier passes UDP; the IPv4 side is unused anyway

gw_conf() { # GW TRANSPORT TLS
	topo_gateway_conf "$TOP/tests/conf/$1.conf" "$TMP/$1.conf" "$TMP/$1" "/sys/fs/bpf/$NSP-$1"
	sed -i -e "s/set transport auto/set transport $2/" -e "s/set ike-tls-service disable/set ike-tls-service $3/" \
		-e "s/set remote-gw 203.0.113.2/set remote-gw6 2001:db8:113::2/" "$TMP/$1.conf"
	mkdir -p "$TMP/$1"
}
ctl() { local gw=$1; shift; ip netns exec "$NSP-$gw" "$IKETCPCTL" -s "$TMP/$gw/iketcpd.sock" "$@"; }
established() { ctl "$1" status --json | jq -e '.tunnels[0].state == "established" and (.tunnels[0].child_sas | length) >= 1' >/dev/null; }

run() { # TRANSPORT TLS PORT
	local transport=$1 tls=$2 port=$3 want
	want=$([ "$transport" = udp ] && echo udp || { [ "$tls" = enable ] && echo tls || echo tcp; })
	gw_conf gwB "$transport" "$tls"
	gw_conf gwA "$transport" "$tls"
	grep -q "remote-gw6 2001:db8:113::2" "$TMP/gwA.conf" || fail "gwA config has no remote-gw6"
	: >"$TMP/gwA.log"
	daemon_start gwB "$TMP/gwB.conf" gwB
	daemon_start gwA "$TMP/gwA.conf" gwA
	wait_for 20 established gwA || { ctl gwA status; ctl gwB status; fail "$want over IPv6: not established"; }
	wait_for 5 established gwB || fail "$want over IPv6: gwB not established"
	ctl gwA status --json | jq -e --arg t "$want" --arg r "[2001:db8:113::2]:$port" \
		'.tunnels[0] | .transport == $t and .ike_sa.remote == $r and (.ike_sa.local | startswith("[2001:db8:64::2]:"))' >/dev/null ||
		fail "$want over IPv6: gwA status $(ctl gwA status --json | jq -c '.tunnels[0]')"
	ctl gwB status --json | jq -e '.tunnels[0].ike_sa.remote | startswith("[2001:db8:113::1]:")' >/dev/null ||
		fail "$want over IPv6: gwB does not see gwA behind the NAT66: $(ctl gwB status --json | jq -c '.tunnels[0].ike_sa')"
	grep -q "NAT detected in front of us" "$TMP/gwA.log" || fail "$want over IPv6: gwA did not detect the NAT66"
	nsx hostA ping -c 3 -i 0.2 -W 2 10.2.0.10 >"$TMP/ping.log" || { cat "$TMP/ping.log"; fail "$want over IPv6: ping"; }
	log "$want over IPv6: $(ctl gwA status --json | jq -r '.tunnels[0].ike_sa | .local + " -> " + .remote'), ping ok"
	daemon_stop gwA
	daemon_stop gwB
}

run udp disable 4500
run tcp disable 443
run tcp enable 443
exit 0
