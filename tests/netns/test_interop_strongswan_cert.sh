#!/usr/bin/env bash
# Interop with strongSwan 5.9 over UDP with certificates (authmethod signature; RFC 7427 or the classic
# RSA/ECDSA methods, as strongSwan chooses):
#
#   hostA 10.1.0.10 -- lan0 gwA wan0 100.64.0.2 -- c0 carrier c1 -- 203.0.113.2 wan0 gwB lan0 -- hostB 10.2.0.10
#                 10.1.0.1  (iketcpd)            NAT 203.0.113.1          (charon)  10.2.0.1
#
# (tests/netns/strongswan/interop.sh.) A throw-away PKI (ss_pki): CA A trusted by both, RSA-2048 and
# ECDSA P-256 certificates for branch.example (iketcpd) and hq.example (strongSwan), and a hq.example
# certificate from CA X that nobody trusts.
#  1-4. iketcpd RSA / strongSwan ECDSA and iketcpd ECDSA / strongSwan RSA, each initiated by either side:
#       both have the IKE SA and CHILD SA with the same SPIs over udp, each authenticated the other with
#       the right key type, hostA and hostB ping each other, the responder deletes the IKE SA.
#  5.   strongSwan initiates with the CA X certificate: iketcpd answers AUTHENTICATION_FAILED (strongSwan
#       receives it), counts stats.ike.auth_failures, nothing comes up.
#  6.   iketcpd initiates to strongSwan presenting the CA X certificate: iketcpd refuses it and counts it.
# Skips (77) only when strongSwan is not installed.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/netns/strongswan/interop.sh"
need_root
need jq tcpdump iptables unshare openssl
ssi_need
ssi_trap

PKI=$TMP/pki
ss_pki "$PKI" || fail "cannot make the test PKI"
ssi_up

STARTED=
# configure OURS(gwA-rsa|gwA-ec) THEIRS(gwB-rsa|gwB-ec|gwB-wrong): both sides on the new credentials.
configure() {
	gwa_conf signature aes128gcm-prfsha256 19 aes128gcm "$PKI/$1.pem" "$PKI/caA.pem"
	ss_install_cert "$SS" "$PKI/$2.crt" "$PKI/$2.key" "$PKI/caA.crt" || fail "ss_install_cert $2"
	ssb_conf pubkey aes128gcm16-prfsha256-ecp256 aes128gcm16-ecp256 "$2.crt"
	if [ -z "$STARTED" ]; then
		gwa_start gwA
		ssb_start
		STARTED=1
	else
		gwa_reload
		ssb_reload
	fi
}

# authenticated_with CASE FROM_LINE WHO KIND(RSA|ECDSA): charon's log (since line FROM_LINE) says it
# authenticated WHO with a KIND signature.
authenticated_with() {
	local line
	line=$(tail -n +"$2" "$TMP/charon.log" | grep -m1 "authentication of '$3' \\((myself) \\)\\{0,1\\}with .* successful") ||
		fail "$1: strongSwan did not log a successful authentication of $3"
	echo "$line" | grep -q "$4" || fail "$1: strongSwan authenticated $3 without a $4 signature: $line"
	log "$1: strongSwan: ${line#*] }"
}

# good_case OURS THEIRS WHO(ours|theirs)
good_case() {
	local c="$1/$2/$3" from
	configure "$1" "$2"
	from=$(($(wc -l <"$TMP/charon.log") + 1))
	if [ "$3" = theirs ]; then
		if ! ss_swanctl gwB "$SS" --initiate --child "$SSC-net" --timeout 10 >"$TMP/initiate.txt" 2>&1; then
			# strongSwan sends its certificate only when asked (send_cert = ifasked, its default): iketcpd,
			# responder, must put a CERTREQ in its IKE_SA_INIT response (RFC 7296 3.7) to get one.
			tail -n +"$from" "$TMP/charon.log" | grep "parsed IKE_SA_INIT response" | grep -q CERTREQ ||
				fail "$c: iketcpd's IKE_SA_INIT response has no CERTREQ, so strongSwan (send_cert = ifasked, its default) sent no CERT; iketcpd: $(grep -m1 "authentication failed" "$GWA_LOG")"
			tail -20 "$TMP/initiate.txt"
			fail "$c: strongSwan's initiation failed"
		fi
		initiate "$c" none
	else
		initiate "$c" ours
	fi
	same_sas "$c"
	authenticated_with "$c" "$from" branch.example "$([ "$1" = gwA-rsa ] && echo RSA || echo ECDSA)"
	authenticated_with "$c" "$from" hq.example "$([ "$2" = gwB-rsa ] && echo RSA || echo ECDSA)"
	grep -q "CERT" <(tail -n +"$from" "$TMP/charon.log" | grep "parsed IKE_AUTH") || fail "$c: no CERT payload seen by strongSwan"
	traffic "$c"
	teardown "$c" "$([ "$3" = ours ] && echo theirs || echo ours)"
	[ "$(auth_failures)" = 0 ] || fail "$c: iketcpd counted authentication failures"
	log "$c: up, same SAs, ping both ways, deleted"
}

good_case gwA-rsa gwB-ec ours
good_case gwA-rsa gwB-ec theirs
good_case gwA-ec gwB-rsa ours
good_case gwA-ec gwB-rsa theirs

# 5. strongSwan initiates with a certificate from CA X (sent unasked: the point is the CA, not CERTREQ).
SS_SEND_CERT=always configure gwA-ec gwB-wrong
ss_swanctl gwB "$SS" --initiate --child "$SSC-net" --timeout 10 >"$TMP/initiate.txt" 2>&1 &&
	fail "5: strongSwan's initiation with an untrusted certificate succeeded"
grep -q "received AUTHENTICATION_FAILED notify error" "$TMP/charon.log" ||
	{ grep "parsed IKE_AUTH response" "$TMP/charon.log" | tail -3; fail "5: strongSwan did not receive AUTHENTICATION_FAILED from iketcpd"; }
wait_for 5 bash -c "[ \$(ip netns exec $NSP-gwA $IKETCPCTL -s $SOCK stats --json | jq .ike.auth_failures) -ge 1 ]" ||
	{ ctl stats; fail "5: iketcpd did not count the untrusted certificate in stats.ike.auth_failures"; }
ours_down || fail "5: iketcpd established with an untrusted certificate"
grep -q "authentication failed: untrusted certificate" "$GWA_LOG" || fail "5: iketcpd did not say the certificate is untrusted"
theirs_down || fail "5: strongSwan kept an IKE SA"
log "5: CA X certificate from strongSwan: AUTHENTICATION_FAILED, auth_failures $(auth_failures)"

# 6. iketcpd initiates; strongSwan (responder) presents the CA X certificate.
fails0=$(auth_failures)
ctl up "$P1" >/dev/null 2>&1 || fail "6: iketcpctl up"
wait_for 15 bash -c "[ \$(ip netns exec $NSP-gwA $IKETCPCTL -s $SOCK stats --json | jq .ike.auth_failures) -gt $fails0 ]" ||
	{ ctl stats; fail "6: iketcpd did not count strongSwan's untrusted certificate"; }
ours_down || fail "6: iketcpd established with an untrusted responder certificate"
# (its log line is rate-limited together with case 5's: the counter is the check)
# RFC 7296 2.21.2 lets the initiator tell the responder (INFORMATIONAL with AUTHENTICATION_FAILED), it
# need not: only reported here.
sleep 1
if theirs_down; then log "6: strongSwan dropped its IKE SA too"; else log "6: strongSwan still holds the IKE SA (iketcpd sent no notify; RFC 7296 2.21.2 MAY)"; fi
log "6: CA X certificate from strongSwan refused by iketcpd, auth_failures $(auth_failures)"

daemon_stop gwA
ss_stop "$SS"
exit 0
