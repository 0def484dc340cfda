#!/usr/bin/env bash
# The strongSwan interop harness checked on its own: strongSwan in gwA's place, same topology and checks
# as test_interop_strongswan*.sh (tests/netns/strongswan/interop.sh):
#
#   hostA 10.1.0.10 -- lan0 gwA wan0 100.64.0.2 -- c0 carrier c1 -- 203.0.113.2 wan0 gwB lan0 -- hostB 10.2.0.10
#                 10.1.0.1  (charon)             NAT 203.0.113.1          (charon)  10.2.0.1
#
# When this passes and test_interop_strongswan fails, the failure is iketcpd's, not the peer's or the
# topology's. Each suite once (groups 19, 14, 31, 14), initiators alternating, PSK; then certificates
# (RSA for gwA, ECDSA for gwB); each time the same SAs on both sides, NAT seen, ping both ways, DELETE
# followed. A carrier capture: only UDP 500/4500, ESP in UDP both ways. About 8 s.
# Skips (77) only when strongSwan is not installed.
. "$(dirname "$0")/../../tests/netns/lib.sh"
. "$TOP/tests/netns/strongswan/interop.sh"
need_root
need tcpdump iptables unshare openssl
ssi_need
ssi_trap
SSA=$TMP/ssa
SS_DIRS+=("$SSA")

PSK="correct horse battery staple"
ss_pki "$TMP/pki" || fail "cannot make the test PKI"
ssi_up
ss_instance "$SSA" || fail "second strongSwan instance"

# both_conf AUTH IKE ESP [CERT_A CERT_B]: the two mirror-image strongSwan configs.
both_conf() {
	ssb_conf "$1" "$2" "$3" "${5:-}"
	{
		echo "connections {"
		ss_conn_conf "$SSC" 100.64.0.2 203.0.113.2 branch.example hq.example "$1" "$2" "$3" \
			10.1.0.0/24 10.2.0.0/24 "${4:-}"
		echo "}"
		if [ "$1" = psk ]; then
			echo "secrets {"
			ss_psk_secret branch.example hq.example "$PSK"
			echo "}"
		fi
	} >"$SSA/swanctl/swanctl.conf"
}

a_down() { [ "$(ss_ike_sas gwA "$SSA" | wc -l)" -eq 0 ]; }

STARTED=
# run SUITE GROUP WHO(a|b) AUTH [CERT_A CERT_B]
run() {
	local c="$1/$2/$3/$4" oi oe si se sip scp oir ocr ssg ssgn sa ikepart childpart
	read -r oi oe si se sip scp oir ocr <<<"$(suite "$1")"
	read -r ssg ssgn <<<"$(ss_group "$2")"
	sip=${sip//\~/ } scp=${scp//\~/ }
	both_conf "$4" "$si-$ssg" "$se-$ssg" "${5:-}" "${6:-}"
	if [ -z "$STARTED" ]; then
		ss_start gwA "$SSA" charonA || fail "charon in gwA"
		ssb_start
		capture_start
		STARTED=1
	else
		ss_reload gwA "$SSA" || fail "$c: gwA swanctl --load-all"
		ssb_reload
	fi
	if [ "$3" = a ]; then
		ss_swanctl gwA "$SSA" --initiate --child "$SSC-net" --timeout 10 >"$TMP/init.txt" 2>&1 || fail "$c: gwA initiation: $(tail -5 "$TMP/init.txt")"
	else
		ss_swanctl gwB "$SS" --initiate --child "$SSC-net" --timeout 10 >"$TMP/init.txt" 2>&1 || fail "$c: gwB initiation: $(tail -5 "$TMP/init.txt")"
	fi
	wait_for 5 theirs_up || fail "$c: gwB not up"
	sa=$(ss_ike_sas gwB "$SS" | head -1)
	ikepart=${sa%%child-sas*} childpart=${sa#*child-sas}
	echo "$ikepart" | grep -q " $sip .*dh-group=$ssgn " || fail "$c: IKE SA is not '$sip' $ssgn: $ikepart"
	echo "$childpart" | grep -q " $scp " || fail "$c: CHILD SA is not '$scp': $childpart"
	[ "$(ss_ike_field "$sa" nat-remote)" = yes ] || fail "$c: gwB did not see gwA's NAT: $sa"
	[ "$(ss_ike_field "$sa" remote-port)" = 4500 ] || fail "$c: not on 4500: $sa"
	[ "$(ss_ike_field "$(ss_ike_sas gwA "$SSA" | head -1)" initiator-spi)" = "$(ss_ike_field "$sa" initiator-spi)" ] ||
		fail "$c: the two sides report different IKE SAs"
	nsx hostA ping -c 3 -i 0.2 -W 2 10.2.0.10 >/dev/null || fail "$c: ping hostA -> hostB"
	nsx hostB ping -c 3 -i 0.2 -W 2 10.1.0.10 >/dev/null || fail "$c: ping hostB -> hostA"
	sa=$(ss_ike_sas gwB "$SS" | head -1)
	[ "$(ss_ike_field "$sa" packets-in)" -ge 6 ] && [ "$(ss_ike_field "$sa" packets-out)" -ge 6 ] ||
		fail "$c: CHILD SA counters: $sa"
	if [ "$3" = a ]; then
		ss_swanctl gwB "$SS" --terminate --ike "$SSC" --timeout 5 >/dev/null 2>&1 || fail "$c: gwB terminate"
	else
		ss_swanctl gwA "$SSA" --terminate --ike "$SSC" --timeout 5 >/dev/null 2>&1 || fail "$c: gwA terminate"
	fi
	wait_for 5 theirs_down || fail "$c: gwB kept the IKE SA"
	wait_for 5 a_down || fail "$c: gwA kept the IKE SA"
	log "$c: up, same SA, NAT-T, ping both ways, deleted"
}

run aes128gcm 19 a psk
run aes256gcm 14 b psk
run chacha 31 a psk
run aescbc 14 b psk
ss_install_cert "$SSA" "$TMP/pki/gwA-rsa.crt" "$TMP/pki/gwA-rsa.key" "$TMP/pki/caA.crt" || fail "certs gwA"
ss_install_cert "$SS" "$TMP/pki/gwB-ec.crt" "$TMP/pki/gwB-ec.key" "$TMP/pki/caA.crt" || fail "certs gwB"
run aes128gcm 19 b pubkey gwA-rsa.crt gwB-ec.crt
grep -q "authentication of 'branch.example' with RSA" "$TMP/charon.log" || fail "gwB did not check gwA's RSA signature"
grep -q "authentication of 'hq.example' with ECDSA" "$TMP/charonA.log" || fail "gwA did not check gwB's ECDSA signature"
capture_check
ss_stop "$SSA"
ss_stop "$SS"
exit 0
