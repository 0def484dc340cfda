#!/usr/bin/env bash
# Certificate authentication (RFC 7427 Digital Signature) on the reference topology (scripts/topology.sh):
#
#   hostA 10.1.0.10 -- lan0 gwA wan0 100.64.0.2 -- carrier -- 203.0.113.2 wan0 gwB lan0 -- hostB 10.2.0.10
#                 10.1.0.1                    (NAT + drops UDP)                   10.2.0.1
#
# A PKI is made for the test with the openssl CLI (tests/certs/mkpki.sh): gwA branch.example (ECDSA
# P-256), gwB hq.example (RSA-2048), both from CA A. The example configs switch to authmethod signature
# with those certificates. 1: both trust CA A: the tunnel comes up over TCP 443 and hostA pings hostB.
# 2: gwB trusts only CA B: gwB answers AUTHENTICATION_FAILED, counts it, and nothing comes up.
# 3: gwB presents an expired certificate: gwA refuses it and counts it.
. "$(dirname "$0")/lib.sh"
. "$TOP/scripts/topology.sh"
need_root
need python3 jq openssl

"$TOP/tests/certs/mkpki.sh" "$TMP/pki" || fail "cannot make the test PKI"
topo_up "$NSP" || fail "topology"
NSS+=("$NSP-hostA" "$NSP-gwA" "$NSP-carrier" "$NSP-gwB" "$NSP-hostB")

gw_conf() { # GW CERT CA
	topo_gateway_conf "$TOP/tests/conf/$1.conf" "$TMP/$1.conf" "$TMP/$1" "/sys/fs/bpf/$NSP-$1"
	sed -i -e "s|set authmethod psk|set authmethod signature\n        set certificate \"$TMP/pki/$2\"\n        set ca \"$TMP/pki/$3\"|" \
		-e '/set psksecret/d' "$TMP/$1.conf"
	grep -q "set authmethod signature" "$TMP/$1.conf" || fail "$1: config has no authmethod to switch"
	mkdir -p "$TMP/$1"
}
ctl() { local gw=$1; shift; ip netns exec "$NSP-$gw" "$IKETCPCTL" -s "$TMP/$gw/iketcpd.sock" "$@"; }
established() { ctl "$1" status --json | jq -e '.tunnels[0].state == "established" and (.tunnels[0].child_sas | length) >= 1' >/dev/null; }
auth_failures() { stat_of "$1" "$TMP/$1/iketcpd.sock" ike auth_failures; }
counted() { [ "$(auth_failures "$1")" -ge 1 ]; }

start() { # GWB_CERT GWB_CA
	gw_conf gwB "$1" "$2"
	gw_conf gwA gwA.pem caA.pem
	daemon_start gwB "$TMP/gwB.conf" gwB
	daemon_start gwA "$TMP/gwA.conf" gwA
}
stop() {
	daemon_stop gwA
	daemon_stop gwB
	mv "$TMP/gwA.log" "$TMP/gwA-$1.log.old"
	mv "$TMP/gwB.log" "$TMP/gwB-$1.log.old"
}

log "1: both gateways trust CA A"
start gwB.pem caA.pem
wait_for 20 established gwA || { ctl gwA status; ctl gwB status; fail "gwA: tunnel not established"; }
wait_for 5 established gwB || { ctl gwB status; fail "gwB: tunnel not established"; }
ctl gwA status
grep -q "IKE_AUTH { IDi CERT CERTREQ AUTH" "$TMP/gwA.log" || fail "gwA did not send CERT and CERTREQ"
grep -q "<-- IKE_AUTH { IDr CERT AUTH" "$TMP/gwB.log" || fail "gwB did not answer with CERT"
nsx hostA ping -c 5 -i 0.2 -W 2 10.2.0.10 >"$TMP/ping.log" || { cat "$TMP/ping.log"; fail "ping hostA -> hostB"; }
grep -q " 0% packet loss" "$TMP/ping.log" || { cat "$TMP/ping.log"; fail "ping lost packets"; }
[ "$(auth_failures gwA)" = 0 ] && [ "$(auth_failures gwB)" = 0 ] || fail "authentication failures counted on success"
stop trusted

log "2: gwB trusts only CA B"
start gwB.pem caB.pem
wait_for 20 counted gwB || fail "gwB counted no authentication failure"
wait_for 5 counted gwA || fail "gwA counted no AUTHENTICATION_FAILED"
grep -q "authentication failed: untrusted certificate" "$TMP/gwB.log" || fail "gwB did not say why"
grep -q "peer answered AUTHENTICATION_FAILED" "$TMP/gwA.log" || fail "gwA did not hear AUTHENTICATION_FAILED"
established gwA && fail "gwA established against a gateway that does not trust it"
established gwB && fail "gwB established with an untrusted peer"
log "gwB auth_failures: $(auth_failures gwB), gwA: $(auth_failures gwA)"
stop untrusted

log "3: gwB presents an expired certificate"
start expired.pem caA.pem
wait_for 20 counted gwA || fail "gwA counted no authentication failure"
grep -q "failed: expired certificate" "$TMP/gwA.log" || fail "gwA did not say the certificate expired"
established gwA && fail "gwA established with an expired certificate"
stop expired
exit 0
