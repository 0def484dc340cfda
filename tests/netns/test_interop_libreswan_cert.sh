#!/usr/bin/env bash
# Interop with libreswan 4.10 (pluto) over TCP (RFC 8229) with X.509 certificates (RFC 7427 Digital
# Signature, AUTH method 14), branch.example (pluto) / hq.example (iketcpd), both from a throw-away CA A:
#
#   ns ls (pluto)  eth0 203.0.113.1/24 ---------------- wan0 203.0.113.2/24  ns gw (iketcpd)  lan0 10.2.0.1/24
#
# libreswan runs unpacked from its .deb with the espintcp shim (scripts/peers/libreswan.sh); its kernel
# cannot install CHILD SAs here, so as initiator it runs childless (impair omit-v2-ike-auth-child) and as
# responder it answers the CHILD SA with TS_UNACCEPTABLE (the IKE SA stays up).
#  1. pluto initiates to iketcpd's 443: a) pluto ECDSA P-256 / iketcpd RSA-2048, b) pluto RSA / iketcpd ECDSA.
#  2. iketcpd initiates to pluto's 4500: a) iketcpd RSA / pluto ECDSA, b) iketcpd ECDSA / pluto RSA.
#     Each: the IKE SA is up on both sides over tcp with the same SPIs, each side names the other's ID,
#     pluto logs the digital-signature scheme it verified and that it accepted our CERT, no failures counted.
#  3. pluto presents a branch.example certificate from CA B: iketcpd answers AUTHENTICATION_FAILED
#     ("untrusted certificate"), counts stats.ike.auth_failures; pluto receives the notify.
#  4. iketcpd initiates presenting its expired certificate: libreswan (NSS) refuses it and answers
#     AUTHENTICATION_FAILED, which iketcpd counts.
# Skips (77) only when libreswan cannot be fetched/unpacked or its runtime libraries are missing.
. "$(dirname "$0")/lib.sh"
. "$TOP/scripts/peers/libreswan.sh"
. "$TOP/tests/netns/libreswan_cert.sh"
need_root
need jq openssl gcc unshare certutil pk12util
ls_setup || skip "libreswan cannot be fetched/unpacked (apt-get download libreswan; runtime libraries: $LS_RUNTIME_PKGS)"
log "libreswan $(ls_version)"

PKI=$TMP/pki
LS=$TMP/ls
SOCK=$TMP/gw/iketcpd.sock
PIN=/sys/fs/bpf/$NSP-gw
PLUTO_PID=
GW=
trap 'rc=$?; [ -n "$PLUTO_PID" ] && ls_stop "$LS" "$PLUTO_PID"; rm -rf "$PIN"
	[ $rc -ne 0 ] && [ $rc -ne $SKIP ] && [ -f "$LS/pluto.log" ] && { echo "--- pluto.log"; grep -v "^.\{24\}| " "$LS/pluto.log" | tail -40; }
	[ -n "${IKETCP_KEEP_LOGS:-}" ] && { mkdir -p "$IKETCP_KEEP_LOGS"; cp -a "$TMP/." "$IKETCP_KEEP_LOGS/"; }
	(exit $rc); cleanup' EXIT

lsc_pki "$PKI" || fail "cannot make the test PKI"
ls_instance "$LS" || fail "pluto instance"
lsc_nss_import "$LS" "$PKI" gwA branch-rsa branch-caB || fail "cannot import the certificates into pluto's NSS db"

lsc_topology || fail "topology"
mkdir -p "$TMP/gw"

ctl() { ip netns exec "$NSP-gw" "$IKETCPCTL" -s "$SOCK" "$@"; }
tun() { ctl status --json | jq -e ".tunnels[] | select(.name == \"$1\") | $2" >/dev/null; }
gw_up() { tun "$1" '.state == "established" and .transport == "tcp" and (.ike_sa.spi_i | length) == 16'; }
gw_established() { tun "$1" '.state == "established"'; }
ls_up() { [ "$(ls_ike_established "$LS")" -ge 1 ]; }
auth_failures() { stat_of gw "$SOCK" ike auth_failures; }
failures_over() { [ "$(auth_failures)" -gt "$1" ]; }

# start CASE ROLE GW_PEM PLUTO_NICK PLUTO_AUTH GW_AUTH: both sides configured for CASE, pluto first.
start() {
	lsc_ls_conf "$LS" "$4" "$5" "$6"
	PLUTO_PID=$(ls_start "$NSP-ls" "$LS") || fail "$1: pluto did not start: $(tail -5 "$LS/pluto.log" 2>/dev/null)"
	lsc_gw_conf "$TMP/$1.conf" "$SOCK" "$PIN" "$2" "$PKI/$3" "$PKI/caA.pem"
	GW=gw$1
	daemon_start gw "$TMP/$1.conf" "$GW"
}
stop() {
	daemon_stop "$GW"
	ls_stop "$LS" "$PLUTO_PID"
	PLUTO_PID=
	mv "$LS/pluto.log" "$TMP/pluto-$1.log.txt"
	rm -rf "$PIN"
}

# same_sa CASE TUNNEL: iketcpd's IKE SA is the one pluto negotiated (same SPI pair in pluto's log).
same_sa() {
	local i r
	i=$(ctl status --json | jq -r ".tunnels[] | select(.name == \"$2\") | .ike_sa.spi_i")
	r=$(ctl status --json | jq -r ".tunnels[] | select(.name == \"$2\") | .ike_sa.spi_r")
	ls_saw_spis "$LS" "$i" "$r" || fail "$1: pluto's log has no IKE SA ${i}_i ${r}_r"
}

# verified CASE OURS(RSA|ECDSA) THEIRS(RSA|ECDSA) TUNNEL PLUTO_AUTH(rsasig|ecdsa): both sides authenticated
# each other with certificates.
verified() {
	local c=$1 line
	same_sa "$c" "$4"
	local role=responder
	[ "$4" = to-ls ] && role=initiator
	tun "$4" ".ike_sa.role == \"$role\" and (.ike_sa.remote | startswith(\"203.0.113.1:\"))" ||
		{ ctl status --json; fail "$c: iketcpd's IKE SA is not $role with 203.0.113.1"; }
	grep -q "$4: IKE SA .* established with .* (fqdn:branch.example)" "$TMP/$GW.log" ||
		fail "$c: iketcpd did not log the IKE SA with peer fqdn:branch.example: $(grep -m1 "IKE SA .* established" "$TMP/$GW.log")"
	# pluto: "... established IKE SA; authenticated peer '<key and scheme>' digital signature using peer
	# certificate '@hq.example' issued by CA '...'"
	line=$(grep -m1 "established IKE SA; authenticated peer" "$LS/pluto.log") || fail "$c: pluto logged no authenticated IKE SA"
	log "$c: pluto: ${line#*: }"
	echo "$line" | grep -q "$2 with SHA2_256' digital signature using peer certificate '@hq.example' issued by CA '.*CN=Test CA A'" ||
		fail "$c: pluto did not verify an $2 digital signature (RFC 7427) with our CA A certificate for hq.example"
	# Which signer pluto used for its own AUTH: as initiator "authby rsasig selects signer RSASSA-PSS" (with
	# the hash it selected before), as responder "using RSASSA-PSS signer from policy" or "using ECDSA
	# signer hardwired". RSA keys sign with RSASSA-PSS in libreswan 4.10.
	# (As responder whose leftauth differs from rightauth, libreswan 4.10 logs "EXPECTATION FAILED:
	# pks->kind == type->private_key_kind" while it verifies our signature: its own quirk, harmless.)
	local signer=ECDSA
	[ "$3" = RSA ] && signer=RSASSA-PSS
	line=$(grep -m1 -E "digsig: +(authby $5 selects signer $signer|using $signer signer)" "$LS/pluto.log") ||
		fail "$c: pluto did not sign with $signer: $(grep "digsig: " "$LS/pluto.log" | grep -i "signer")"
	log "$c: pluto signed: $(grep -B1 -F "${line#*: | }" "$LS/pluto.log" | grep -o "select.*\|using.*" | tr '\n' ' ')"
	# AUTH payloads at plutodebug=all (emitted and parsed): method 14 both ways, nothing else.
	[ "$(grep -c "auth method: IKEv2_AUTH_DIGSIG (0xe)" "$LS/pluto.log")" -ge 2 ] ||
		fail "$c: pluto's log shows no AUTH payload with method 14 (digital signature) both ways"
	grep "auth method: " "$LS/pluto.log" | grep -v "IKEv2_AUTH_DIGSIG (0xe)" &&
		fail "$c: an AUTH payload with another method was exchanged"
	grep -q "received .* using TCP" "$LS/pluto.log" && ! grep -q "using UDP" "$LS/pluto.log" ||
		fail "$c: pluto did not talk IKE over TCP only"
	[ "$(auth_failures)" = 0 ] || fail "$c: iketcpd counted authentication failures"
}

# ---- 1. pluto initiates to iketcpd ----
initiated_by_pluto() { # CASE GW_PEM OURS PLUTO_NICK THEIRS PLUTO_AUTH GW_AUTH
	start "$1" responder "$2" "$4" "$6" "$7"
	ls_whack "$LS" --impair omit-v2-ike-auth-child >/dev/null 2>&1 || fail "$1: whack --impair"
	ls_whack "$LS" --name hq --initiate --asynchronous >/dev/null 2>&1
	wait_for 15 gw_up branch || { ctl status; fail "$1: iketcpd: IKE SA from pluto not established over tcp"; }
	wait_for 10 ls_up || { ls_whack "$LS" --showstates; fail "$1: pluto: IKE SA not established"; }
	verified "$1" "$3" "$5" branch "$6"
	stop "$1"
}
initiated_by_pluto 1a gwB.pem RSA gwA ECDSA ecdsa rsasig
initiated_by_pluto 1b hq-ec.pem ECDSA branch-rsa RSA rsasig ecdsa

# ---- 2. iketcpd initiates to pluto ----
initiated_by_us() { # CASE GW_PEM OURS PLUTO_NICK THEIRS PLUTO_AUTH GW_AUTH
	start "$1" initiator "$2" "$4" "$6" "$7"      # (auto-negotiate: iketcpd initiates at start)
	wait_for 15 gw_up to-ls || { ctl status; fail "$1: iketcpd: IKE SA to pluto not established over tcp"; }
	wait_for 10 ls_up || { ls_whack "$LS" --showstates; fail "$1: pluto: IKE SA not established"; }
	wait_for 5 grep -q "to-ls: IKE SA up without CHILD SA to-ls-lan: TS_UNACCEPTABLE" "$TMP/$GW.log" ||
		fail "$1: iketcpd did not log pluto's TS_UNACCEPTABLE for the CHILD SA (its kernel cannot install it)"
	verified "$1" "$3" "$5" to-ls "$6"
	stop "$1"
}
initiated_by_us 2a gwB.pem RSA gwA ECDSA ecdsa rsasig
initiated_by_us 2b hq-ec.pem ECDSA branch-rsa RSA rsasig ecdsa

# ---- 3. pluto presents a certificate from CA B ----
start 3 responder gwB.pem branch-caB ecdsa rsasig
ls_whack "$LS" --impair omit-v2-ike-auth-child >/dev/null 2>&1
ls_whack "$LS" --name hq --initiate --asynchronous >/dev/null 2>&1
wait_for 15 failures_over 0 || { ctl stats; fail "3: iketcpd did not count pluto's CA B certificate in stats.ike.auth_failures"; }
grep -q "authentication failed: untrusted certificate" "$TMP/$GW.log" ||
	fail "3: iketcpd did not say the certificate is untrusted: $(grep -m1 "authentication failed" "$TMP/$GW.log")"
wait_for 10 grep -q "IKE SA authentication request rejected by peer: AUTHENTICATION_FAILED" "$LS/pluto.log" ||
	fail "3: pluto did not receive AUTHENTICATION_FAILED"
gw_established branch && fail "3: iketcpd established with a CA B certificate"
ls_up && fail "3: pluto established although iketcpd refused its certificate"
log "3: CA B certificate refused: $(grep -m1 -o "authentication failed: .*" "$TMP/$GW.log"), auth_failures $(auth_failures)"
stop 3

# ---- 4. iketcpd presents its expired certificate to pluto ----
start 4 initiator expired.pem gwA ecdsa ecdsa     # (auto-negotiate: iketcpd initiates at start)
wait_for 15 failures_over 0 || { ctl stats; tail -5 "$TMP/$GW.log"; fail "4: iketcpd counted no AUTHENTICATION_FAILED from pluto"; }
grep -q "authentication with .* failed: peer answered AUTHENTICATION_FAILED" "$TMP/$GW.log" ||
	fail "4: iketcpd did not log pluto's AUTHENTICATION_FAILED"
grep -q "encrypted notification AUTHENTICATION_FAILED" "$LS/pluto.log" || fail "4: pluto did not answer AUTHENTICATION_FAILED"
why=$(grep -m1 "SEC_ERROR_EXPIRED_CERTIFICATE" "$LS/pluto.log") ||
	fail "4: pluto refused our expired certificate for another reason: $(grep -m3 "NSS: ERROR\|invalid" "$LS/pluto.log")"
log "4: pluto: ${why#*: }"
gw_established to-ls && fail "4: iketcpd established with an expired certificate"
ls_up && fail "4: pluto established with an expired certificate"
stop 4
exit 0
