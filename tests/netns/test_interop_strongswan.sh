#!/usr/bin/env bash
# Interop with strongSwan 5.9 (charon, kernel-libipsec) over UDP (IKEv2 on 500/4500, ESP in UDP 4500), PSK:
#
#   hostA 10.1.0.10 -- lan0 gwA wan0 100.64.0.2 -- c0 carrier c1 -- 203.0.113.2 wan0 gwB lan0 -- hostB 10.2.0.10
#                 10.1.0.1  (iketcpd)            NAT 203.0.113.1          (charon)  10.2.0.1
#
# (tests/netns/strongswan/interop.sh: the carrier masquerades gwA, port-forwards UDP 500/4500 to it and
# drops TCP.) iketcpd: phase1 `transport udp`, `nattraversal enable`, branch.example; charon: hq.example.
# For each case both daemons are reconfigured (iketcpctl reload, swanctl --load-all) to one suite and
# group, one side initiates, and then:
#   - both have the IKE SA and the CHILD SA, with the same SPIs, transport udp, the asked suite and group,
#     and strongSwan sees iketcpd behind the NAT, talking to it on 4500;
#   - hostA and hostB ping each other through the tunnel, counted on both CHILD SAs;
#   - the side that did not initiate deletes the IKE SA and the other follows.
# Cases: AES-128-GCM/19, AES-256-GCM/14, ChaCha20-Poly1305/31, AES-CBC-256+HMAC-SHA2-256/19 and /14, each
# initiated by iketcpd and by strongSwan; then iketcpd offers its defaults and strongSwan wants only
# MODP-2048 (INVALID_KE_PAYLOAD, retry). IKETCP_SS_FULL=1 runs every suite x group x role (24 cases).
# A capture on the carrier checks that only UDP 500/4500 crossed it, ESP in UDP 4500 both ways.
# Skips (77) only when strongSwan is not installed.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/netns/strongswan/interop.sh"
need_root
need jq tcpdump iptables unshare
ssi_need
ssi_trap

PSK="correct horse battery staple"
ssi_up

STARTED=
# run_case SUITE GROUP WHO(ours|theirs) [OURS_IKE OURS_GROUPS]: one case (see the top); the last two
# override iketcpd's proposal list and group list (the strongSwan side keeps the case's single suite).
run_case() {
	local name=$1 grp=$2 who=$3
	local oi oe si se sip scp oir ocr ssg ssgn
	read -r oi oe si se sip scp oir ocr <<<"$(suite "$name")"
	read -r ssg ssgn <<<"$(ss_group "$grp")"
	local c="$name/$grp/$who" ogrp=$grp
	if [ $# -gt 3 ]; then oi=$4 ogrp=$5 oe="aes128gcm aes256gcm chacha20poly1305 aes256-sha256" c="$c/negotiated"; fi
	sip=${sip//\~/ } scp=${scp//\~/ }
	gwa_conf psk "$oi" "$ogrp" "$oe"
	ssb_conf psk "$si-$ssg" "$se-$ssg"
	if [ -z "$STARTED" ]; then
		gwa_start gwA
		ssb_start
		capture_start
		STARTED=1
	else
		gwa_reload
		ssb_reload
	fi
	initiate "$c" "$who"
	same_sas "$c"
	suite_is "$c" "$sip" "$scp" "$ssgn" "$oir" "$ocr" "$grp"
	traffic "$c"
	teardown "$c" "$([ "$who" = ours ] && echo theirs || echo ours)"
	log "$c: up, same SAs, ping both ways, deleted"
}

if [ -n "${IKETCP_SS_FULL:-}" ]; then
	for s in aes128gcm aes256gcm chacha aescbc; do
		for g in 19 14 31; do
			run_case $s $g ours
			run_case $s $g theirs
		done
	done
else
	run_case aes128gcm 19 ours
	grep -q "NAT detected in front of us" "$GWA_LOG" || fail "iketcpd did not detect the carrier's NAT in front of it"
	run_case aes128gcm 19 theirs
	run_case aes256gcm 14 ours
	run_case aes256gcm 14 theirs
	run_case chacha 31 ours
	run_case chacha 31 theirs
	run_case aescbc 19 ours
	run_case aescbc 14 theirs
fi
# iketcpd offers its default lists (KE for group 19 first); strongSwan only takes MODP-2048: it answers
# INVALID_KE_PAYLOAD and iketcpd retries with a group 14 KE (RFC 7296 1.2).
run_case aes256gcm 14 ours "aes128gcm-prfsha256 aes256gcm-prfsha384" "19 14 31"
grep -q "DH group ECP_256 unacceptable, requesting MODP_2048" "$TMP/charon.log" ||
	fail "strongSwan never answered INVALID_KE_PAYLOAD to a group 19 KE (did iketcpd not send 19 first?)"

capture_check
[ "$(auth_failures)" = 0 ] || fail "iketcpd counted authentication failures"
daemon_stop gwA
ss_stop "$SS"
exit 0
