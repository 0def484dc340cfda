# Shared by test_interop_strongswan*.sh (sourced after lib.sh): the topology, both peers' configs, and
# the checks one interop case makes. strongSwan 5.9 speaks IKEv2 over UDP only (no RFC 8229), so this is
# the reference topology with a carrier that lets UDP through and drops TCP instead:
#
#   hostA 10.1.0.10 -- lan0 gwA wan0 100.64.0.2 -- c0 carrier c1 -- 203.0.113.2 wan0 gwB lan0 -- hostB 10.2.0.10
#                 10.1.0.1  (iketcpd)            NAT 203.0.113.1          (charon)  10.2.0.1
#
# The carrier masquerades gwA to 203.0.113.1 and forwards UDP 500/4500 arriving on 203.0.113.1 back to
# gwA (a port forward), so strongSwan can initiate too and both directions cross a real NAT (NAT-T,
# RFC 3948 / RFC 7296 2.23). TCP is dropped: everything must go over UDP. strongSwan runs with
# kernel-libipsec (userspace ESP on ipsec0, routes in table 220) and `encap = yes`.
. "$TOP/scripts/topology.sh"
. "$TOP/scripts/peers/strongswan.sh"

SS=$TMP/ss                      # charon's instance directory (in namespace gwB)
SS_DIRS=("$SS")                 # every charon instance, stopped on exit
SOCK=$TMP/gwA/iketcpd.sock
P1=to-hq                        # iketcpd's phase1 (static, remote-gw 203.0.113.2, both roles)
SSC=branch                      # strongSwan's connection; its CHILD SA is branch-net

# ssi_need: skip without strongSwan, fail on an incomplete one.
ssi_need() {
	ss_have || skip "strongSwan not installed ($SS_PACKAGES)"
	local missing
	missing=$(ss_plugins_missing)
	[ -z "$missing" ] || fail "strongSwan plugins missing: $missing(install $SS_PACKAGES)"
}

ssi_up() {
	topo_up "$NSP" || fail "topology"
	NSS+=("$NSP-hostA" "$NSP-gwA" "$NSP-carrier" "$NSP-gwB" "$NSP-hostB")
	local c="ip netns exec $NSP-carrier iptables"
	$c -D FORWARD -p udp -j DROP || fail "carrier: no UDP drop rule to remove (scripts/topology.sh changed?)"
	$c -A FORWARD -p tcp -j DROP || fail "carrier: iptables"
	$c -t nat -A PREROUTING -i c1 -d 203.0.113.1 -p udp -m multiport --dports 500,4500 \
		-j DNAT --to-destination 100.64.0.2 || fail "carrier: DNAT"
	mkdir -p "$TMP/gwA"
	ss_instance "$SS" || fail "strongSwan instance"
}

ctl() { ip netns exec "$NSP-gwA" "$IKETCPCTL" -s "$SOCK" "$@"; }
# tun JQ: a jq test on iketcpd's tunnel $P1.
tun() { ctl status --json | jq -e ".tunnels[] | select(.name == \"$P1\") | $1" >/dev/null; }
tunval() { ctl status --json | jq -r ".tunnels[] | select(.name == \"$P1\") | $1"; }
ours_up() { tun '.state == "established" and (.child_sas | length) >= 1'; }
ours_down() { ! tun '.state == "established"'; }
theirs_up() { [ "$(ss_ike_established gwB "$SS")" -ge 1 ] && [ "$(ss_child_installed gwB "$SS")" -ge 1 ]; }
theirs_down() { [ "$(ss_ike_sas gwB "$SS" | wc -l)" -eq 0 ]; }
auth_failures() { stat_of gwA "$SOCK" ike auth_failures; }

# gwa_conf AUTH(psk|signature) IKE_PROPOSAL DHGRPS ESP_PROPOSAL [CERT CA]: iketcpd's config in
# $TMP/gwA.conf, validated with --check. DHGRPS is also the PFS group list of the phase2. UDP needs no
# TCP service (config.md: transport udp is FortiOS' default); IKETCP_SS_TCP_SERVICE=enable turns it on
# anyway, to tell the two apart when diagnosing.
gwa_conf() {
	local auth=$1 ike=$2 grp=$3 esp=$4 cert=${5:-} ca=${6:-} cred
	if [ "$auth" = psk ]; then
		cred="set psksecret \"$PSK\""
	else
		cred="set certificate \"$cert\"
        set ca \"$ca\""
	fi
	cat >"$TMP/gwA.conf" <<EOF
config system settings
    set control-socket "$SOCK"
    set bpf-pin-path "/sys/fs/bpf/$NSP-gwA"
    set ike-tcp-service ${IKETCP_SS_TCP_SERVICE:-disable}
    set inner-interface "lan0"
end
config vpn ipsec phase1-interface
    edit "$P1"
        set interface "wan0"
        set ike-version 2
        set remote-gw 203.0.113.2
        set transport udp
        set nattraversal enable
        set authmethod $auth
        $cred
        set localid "branch.example"
        set peerid "hq.example"
        set proposal $ike
        set dhgrp $grp
        set auto-negotiate disable
    next
end
config vpn ipsec phase2-interface
    edit "$P1-lan"
        set phase1name "$P1"
        set proposal $esp
        set pfs enable
        set dhgrp $grp
        set src-subnet 10.1.0.0 255.255.255.0
        set dst-subnet 10.2.0.0 255.255.255.0
    next
end
EOF
	"$IKETCPD" --check -c "$TMP/gwA.conf" >"$TMP/check.txt" 2>&1 ||
		fail "iketcpd --check rejects the interop config: $(cat "$TMP/check.txt")"
}

# ssb_conf AUTH(psk|pubkey) IKE_PROPOSAL ESP_PROPOSAL [CERT]: charon's swanctl.conf (hq.example).
ssb_conf() {
	{
		echo "connections {"
		ss_conn_conf "$SSC" 203.0.113.2 203.0.113.1 hq.example branch.example "$1" "$2" "$3" \
			10.2.0.0/24 10.1.0.0/24 "${4:-}"
		echo "}"
		if [ "$1" = psk ]; then
			echo "secrets {"
			ss_psk_secret hq.example branch.example "$PSK"
			echo "}"
		fi
	} >"$SS/swanctl/swanctl.conf"
}

gwa_start() { daemon_start gwA "$TMP/gwA.conf" "$1"; GWA_LOG=$TMP/$1.log; }
gwa_reload() {
	ctl reload >"$TMP/reload.txt" 2>&1 || fail "iketcpctl reload: $(cat "$TMP/reload.txt")"
}
ssb_start() { ss_start gwB "$SS" charon || fail "charon did not start or did not load $SS/swanctl"; }
ssb_reload() { ss_reload gwB "$SS" || fail "swanctl --load-all"; }

# initiate CASE WHO(ours|theirs|none): start the IKE SA from one side (none: the caller did) and wait
# for both to be up.
initiate() {
	local c=$1 who=$2
	if [ "$who" = ours ]; then
		ctl up "$P1" >"$TMP/up.txt" 2>&1 || fail "$c: iketcpctl up $P1: $(cat "$TMP/up.txt")"
	elif [ "$who" = theirs ]; then
		ss_swanctl gwB "$SS" --initiate --child "$SSC-net" --timeout 10 >"$TMP/initiate.txt" 2>&1 ||
			{ tail -20 "$TMP/initiate.txt"; ctl status; fail "$c: strongSwan's initiation failed"; }
	fi
	wait_for 15 ours_up || { ctl status; ss_swanctl gwB "$SS" --list-sas; fail "$c: iketcpd: IKE SA + CHILD SA not established"; }
	wait_for 10 theirs_up || { ss_swanctl gwB "$SS" --list-sas; fail "$c: strongSwan: IKE SA + CHILD SA not established"; }
}

# same_sas CASE: transport udp, and the SPIs iketcpd reports are strongSwan's (IKE pair, CHILD SA pair
# crossed: our inbound is its outbound).
same_sas() {
	local c=$1 sa i r ci co
	sa=$(ss_ike_sas gwB "$SS" | head -1)
	[ "$(tunval .transport)" = udp ] || fail "$c: iketcpd reports transport '$(tunval .transport)', not udp"
	i=$(tunval .ike_sa.spi_i) r=$(tunval .ike_sa.spi_r)
	ci=$(tunval '.child_sas[0].spi_in') co=$(tunval '.child_sas[0].spi_out')
	[ "$i" = "$(ss_ike_field "$sa" initiator-spi)" ] && [ "$r" = "$(ss_ike_field "$sa" responder-spi)" ] ||
		fail "$c: IKE SPIs differ: iketcpd ${i}_i ${r}_r, strongSwan: $sa"
	[ "$ci" = "$(ss_ike_field "$sa" spi-out)" ] && [ "$co" = "$(ss_ike_field "$sa" spi-in)" ] ||
		fail "$c: CHILD SA SPIs differ: iketcpd in $ci out $co, strongSwan: $sa"
	# iketcpd is really behind the carrier's NAT: both sides must see it (NAT_DETECTION hashes right)
	[ "$(ss_ike_field "$sa" nat-remote)" = yes ] || fail "$c: strongSwan did not detect the NAT in front of iketcpd: $sa"
	[ "$(ss_ike_field "$sa" remote-port)" = 4500 ] || fail "$c: strongSwan does not talk to port 4500: $sa"
	log "$c: same SAs: IKE ${i}_i ${r}_r, CHILD SA $ci/$co, udp, NAT-T"
}

# suite_is CASE SS_IKE SS_CHILD DHGROUP OURS_IKE_RE OURS_CHILD_RE GROUP: both sides negotiated what the case
# asked for. SS_IKE and SS_CHILD are patterns in strongSwan's raw IKE SA and CHILD SA fields
# ("encr-alg=AES_GCM_16 encr-keysize=128"), DHGROUP its group name, the REs match iketcpd's names.
suite_is() {
	local c=$1 sa ikepart childpart
	sa=$(ss_ike_sas gwB "$SS" | head -1)
	ikepart=${sa%%child-sas*} childpart=${sa#*child-sas}
	echo "$ikepart" | grep -q " $2 .*dh-group=$4 " || fail "$c: strongSwan's IKE SA is not $2/$4: $ikepart"
	echo "$childpart" | grep -q " $3 " || fail "$c: strongSwan's CHILD SA is not $3: $childpart"
	tun ".ike_sa.proposal | test(\"$5\"; \"i\")" && tun ".child_sas[0].proposal | test(\"$6\"; \"i\")" ||
		{ ctl status --json; fail "$c: iketcpd's IKE SA /$5/ or CHILD SA /$6/ proposal differs"; }
	[ "$(tunval .ike_sa.dhgrp)" = "$7" ] || fail "$c: iketcpd's IKE SA group is $(tunval .ike_sa.dhgrp), not $7"
}

# traffic CASE: ping both ways through the CHILD SA, counters moved on both sides.
traffic() {
	local c=$1 sa
	nsx hostA ping -c 3 -i 0.2 -W 2 10.2.0.10 >"$TMP/ping.txt" 2>&1 || { cat "$TMP/ping.txt"; fail "$c: ping hostA -> hostB"; }
	nsx hostB ping -c 3 -i 0.2 -W 2 10.1.0.10 >"$TMP/ping.txt" 2>&1 || { cat "$TMP/ping.txt"; fail "$c: ping hostB -> hostA"; }
	sa=$(ss_ike_sas gwB "$SS" | head -1)
	[ "$(ss_ike_field "$sa" packets-in)" -ge 6 ] && [ "$(ss_ike_field "$sa" packets-out)" -ge 6 ] ||
		fail "$c: strongSwan's CHILD SA counted too few packets: $sa"
	tun '.child_sas[0].packets_in >= 6 and .child_sas[0].packets_out >= 6' ||
		{ ctl status --json; fail "$c: iketcpd's CHILD SA counted too few packets"; }
}

# teardown CASE WHO(ours|theirs): that side deletes the IKE SA; the other must follow (INFORMATIONAL
# DELETE over UDP).
teardown() {
	local c=$1 who=$2
	if [ "$who" = ours ]; then
		ctl down "$P1" >/dev/null 2>&1 || fail "$c: iketcpctl down $P1"
	else
		ss_swanctl gwB "$SS" --terminate --ike "$SSC" --timeout 5 >"$TMP/terminate.txt" 2>&1 ||
			fail "$c: swanctl --terminate: $(cat "$TMP/terminate.txt")"
	fi
	wait_for 10 theirs_down || { ss_swanctl gwB "$SS" --list-sas; fail "$c: strongSwan kept its IKE SA after the DELETE ($who)"; }
	wait_for 10 ours_down || { ctl status; fail "$c: iketcpd kept its IKE SA after the DELETE ($who)"; }
}

# capture_start / capture_check: the carrier's strongSwan side; IKE on UDP 500 then 4500, ESP in UDP 4500
# both ways, nothing else between the gateways.
capture_start() {
	ip netns exec "$NSP-carrier" tcpdump -i c1 -n -U --immediate-mode -w "$TMP/carrier.pcap" \
		'not (ip6 or arp)' >"$TMP/tcpdump.txt" 2>&1 &
	CAP_PID=$!
	PIDS+=("$CAP_PID")
	wait_for 5 grep -q "listening on" "$TMP/tcpdump.txt" || fail "tcpdump did not start"
}
capture_check() {
	sleep 0.3
	kill -INT "$CAP_PID"
	wait "$CAP_PID" 2>/dev/null
	local n500 esp_out esp_in other
	n500=$(tcpdump -n -r "$TMP/carrier.pcap" 'udp port 500' 2>/dev/null | wc -l)
	# ESP in UDP (RFC 3948): a non-zero first 4 bytes after the UDP header (zero is the non-ESP marker)
	esp_out=$(tcpdump -n -r "$TMP/carrier.pcap" 'src host 203.0.113.1 and udp port 4500 and udp[8:4] != 0 and udp[4:2] > 9' 2>/dev/null | wc -l)
	esp_in=$(tcpdump -n -r "$TMP/carrier.pcap" 'dst host 203.0.113.1 and udp port 4500 and udp[8:4] != 0 and udp[4:2] > 9' 2>/dev/null | wc -l)
	other=$(tcpdump -n -r "$TMP/carrier.pcap" 'not (udp and host 203.0.113.1 and host 203.0.113.2 and (port 500 or port 4500))' 2>/dev/null | wc -l)
	log "carrier: UDP 500 packets $n500, ESP-in-UDP from iketcpd $esp_out, to iketcpd $esp_in, other $other"
	[ "$n500" -ge 2 ] || fail "no IKE on UDP 500 crossed the carrier"
	[ "$esp_out" -ge 6 ] && [ "$esp_in" -ge 6 ] || fail "too little ESP in UDP 4500 crossed the carrier"
	[ "$other" -eq 0 ] || { tcpdump -n -r "$TMP/carrier.pcap" 'not (udp and host 203.0.113.1 and host 203.0.113.2 and (port 500 or port 4500))' | head; fail "other traffic crossed the carrier"; }
}

# suite NAME(aes128gcm|aes256gcm|chacha|aescbc): the suite in each side's words, one per word:
#   OURS_IKE OURS_ESP (config.md names) SS_IKE SS_ESP (swanctl proposals, without the group)
#   SS_IKE_PAT SS_CHILD_PAT (strongSwan's raw list-sas fields, ~ for a space)
#   OURS_IKE_RE OURS_CHILD_RE (regular expressions for iketcpctl's proposal names)
suite() {
	case $1 in
	aes128gcm) echo "aes128gcm-prfsha256 aes128gcm aes128gcm16-prfsha256 aes128gcm16" \
		"encr-alg=AES_GCM_16~encr-keysize=128~prf-alg=PRF_HMAC_SHA2_256 encr-alg=AES_GCM_16~encr-keysize=128" \
		"AES_GCM_16_128.*PRF_HMAC_SHA2_256 AES_GCM_16_128|aes128gcm" ;;
	aes256gcm) echo "aes256gcm-prfsha384 aes256gcm aes256gcm16-prfsha384 aes256gcm16" \
		"encr-alg=AES_GCM_16~encr-keysize=256~prf-alg=PRF_HMAC_SHA2_384 encr-alg=AES_GCM_16~encr-keysize=256" \
		"AES_GCM_16_256.*PRF_HMAC_SHA2_384 AES_GCM_16_256|aes256gcm" ;;
	chacha) echo "chacha20poly1305-prfsha256 chacha20poly1305 chacha20poly1305-prfsha256 chacha20poly1305" \
		"encr-alg=CHACHA20_POLY1305.*prf-alg=PRF_HMAC_SHA2_256 encr-alg=CHACHA20_POLY1305" \
		"CHACHA20_POLY1305.*PRF_HMAC_SHA2_256 CHACHA20_POLY1305|chacha20poly1305" ;;
	aescbc) echo "aes256-sha256 aes256-sha256 aes256-sha256 aes256-sha256" \
		"encr-alg=AES_CBC~encr-keysize=256~integ-alg=HMAC_SHA2_256_128~prf-alg=PRF_HMAC_SHA2_256" \
		"encr-alg=AES_CBC~encr-keysize=256~integ-alg=HMAC_SHA2_256_128" \
		"AES_CBC_256.*HMAC_SHA2_256_128.*PRF_HMAC_SHA2_256 AES_CBC_256.*HMAC_SHA2_256|aes256-sha256" ;;
	esac
}
# ss_group 19|14|31: the group as swanctl names it and as list-sas shows it.
ss_group() { case $1 in 19) echo "ecp256 ECP_256" ;; 14) echo "modp2048 MODP_2048" ;; 31) echo "curve25519 CURVE_25519" ;; esac; }

# On failure also show charon's view (its log is $TMP/charon.log, printed by lib.sh's cleanup).
ssi_trap() {
	trap 'rc=$?; [ $rc -ne 0 ] && [ $rc -ne $SKIP ] && [ -f "$SS/pid" ] && { echo "--- strongSwan SAs"; ss_swanctl gwB "$SS" --list-sas 2>&1 | head -30; }
		for d in "${SS_DIRS[@]}"; do ss_stop "$d"; done; rm -rf "/sys/fs/bpf/$NSP-gwA"
		[ -n "${IKETCP_KEEP_LOGS:-}" ] && { mkdir -p "$IKETCP_KEEP_LOGS"; cp -a "$TMP/." "$IKETCP_KEEP_LOGS/"; }
		(exit $rc); cleanup' EXIT
}
