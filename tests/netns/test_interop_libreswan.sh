#!/usr/bin/env bash
# Interop with libreswan 4.10 (pluto) over TCP (RFC 8229 / 9329), PSK, IDs branch.example / hq.example:
#
#   ns ls (pluto)  eth0 203.0.113.1/24 ---------------- wan0 203.0.113.2/24  ns gw (iketcpd)  lan0 10.2.0.1/24
#   branch.example, 10.1.0.0/24                                              hq.example, 10.2.0.0/24
#
# libreswan runs unpacked from its .deb (scripts/peers/libreswan.sh) with the espintcp shim: this kernel
# has no ESP, so libreswan can never install a CHILD SA; we tell that failure apart from ours.
#  1. pluto initiates to 203.0.113.2:443 (XDP steers it to iketcpd's 11443). 1a childless (impair
#     omit-v2-ike-auth-child): a clean IKE SA, same SPIs on both sides, no NAT seen by either. 1b with
#     the CHILD SA: iketcpd installs it, pluto fails its own kernel install (expected, no ESP here).
#  2. iketcpd initiates to pluto's TCP 4500 (ike-tcp-port 4500): pluto answers TS_UNACCEPTABLE (its kernel
#     cannot install): iketcpd has the IKE SA up without CHILD SA and logs the notify.
#  3. DELETE both ways: libreswan's --deletestate takes iketcpd's tunnel down; `iketcpctl down` (as
#     responder in 1, as initiator in 2) removes libreswan's IKE SA.
#  4. A wrong PSK on pluto: iketcpd answers AUTHENTICATION_FAILED and counts stats.ike.auth_failures;
#     a wrong PSK on iketcpd: libreswan answers AUTHENTICATION_FAILED, counted the same; 4c. pluto
#     rejects iketcpd's ID after iketcpd completed the SA: iketcpd drops it (RFC 7296 2.21.2).
#  5. IKE SA rekeys (RFC 7296 1.3.2) of the childless IKE SA of 1a: one started by libreswan (impair
#     event-v2-rekey), one by iketcpd (the control socket's `rekey`), and in 2 one by iketcpd as the
#     original initiator: each time both sides move to the same new SPI pair and the old SA is gone.
# Every TCP session is captured on libreswan's side and decoded with tools/wireshark/iketcp.lua.
# Skips (77) when libreswan cannot be fetched (no apt access) or its runtime libraries are missing.
. "$(dirname "$0")/lib.sh"
. "$TOP/scripts/peers/libreswan.sh"
need_root
need jq tcpdump tshark gcc unshare
ls_setup || skip "libreswan cannot be fetched/unpacked (apt-get download libreswan; runtime libraries: $LS_RUNTIME_PKGS)"
log "libreswan $(ls_version)"

PSK="correct horse battery staple"
LS=$TMP/ls              # pluto's instance directory
PLUTO_PID=
# lib.sh's cleanup after stopping pluto (it is not in PIDS: ls_stop asks it to shut down first) and
# removing what a killed daemon left pinned.
# IKETCP_KEEP_LOGS=DIR keeps every log and capture.
trap 'rc=$?; [ -n "$PLUTO_PID" ] && ls_stop "$LS" "$PLUTO_PID"; rm -rf "/sys/fs/bpf/$NSP-gw"
	[ $rc -ne 0 ] && [ $rc -ne $SKIP ] && [ -f "$LS/pluto.log" ] && { echo "--- pluto.log"; grep -v "^.\{24\}| " "$LS/pluto.log" | tail -40; }
	[ -n "${IKETCP_KEEP_LOGS:-}" ] && { mkdir -p "$IKETCP_KEEP_LOGS"; cp -a "$TMP/." "$IKETCP_KEEP_LOGS/"; }
	(exit $rc); cleanup' EXIT

ns_add ls
ns_add gw
veth ls eth0 gw wan0
nsx ls ip addr add 203.0.113.1/24 dev eth0
nsx gw ip addr add 203.0.113.2/24 dev wan0
# iketcpd's inner interface: a veth end inside its own namespace.
nsx gw ip link add lan0 type veth peer name lan0p
nsx gw ip link set lan0 up
nsx gw ip link set lan0p up
nsx gw ip addr add 10.2.0.1/24 dev lan0
nsx ls ip link add lan0 type veth peer name lan0p
nsx ls ip link set lan0 up
nsx ls ip link set lan0p up
nsx ls ip addr add 10.1.0.1/24 dev lan0

SOCK=$TMP/gw/iketcpd.sock
ctl() { ip netns exec "$NSP-gw" "$IKETCPCTL" -s "$SOCK" "$@"; }
tun() { ctl status --json | jq -e ".tunnels[] | select(.name == \"$1\") | $2" >/dev/null; }
gw_ike_up() { tun "$1" '.state == "established" and .transport == "tcp" and (.ike_sa.spi_i | length) > 0 and (.ike_sa.spi_r | length) > 0'; }
gw_down() { ! tun "$1" '.state == "established"'; }
gw_childs() { ctl status --json | jq -r ".tunnels[] | select(.name == \"$1\") | .child_sas | length"; }
ls_up() { [ "$(ls_ike_established "$LS")" -ge 1 ]; }
ls_gone() { [ "$(ls_ike_established "$LS")" -eq 0 ]; }
ls_one() { [ "$(ls_ike_established "$LS")" -eq 1 ]; }
gw_spis() { ctl status --json | jq -r ".tunnels[] | select(.name == \"$1\") | .ike_sa | .spi_i + \"/\" + .spi_r"; }
spis_moved() { local s; s=$(gw_spis "$1"); [ "$s" != "$2" ] && [ "$s" != "/" ] && [ -n "$s" ]; }
# rekeyed CASE TUNNEL OLD WHO(ours|the peer's) GWLOG: iketcpd's IKE SA moved from OLD to a new pair that
# libreswan negotiated too, and libreswan is left with one IKE SA (the old one deleted).
rekeyed() {
	wait_for 10 spis_moved "$2" "$3" || { ctl status; tail -20 "$LS/pluto.log"; fail "$1: iketcpd's IKE SA SPIs did not change"; }
	wait_for 10 ls_one || { ls_whack "$LS" --showstates; fail "$1: libreswan does not have exactly one IKE SA after the rekey"; }
	wait_for 5 grep -q "IKE SA ${3%/*}_i ${3#*/}_r rekeyed to .* ($4)" "$TMP/$5.log" ||
		{ grep -i "rekey" "$TMP/$5.log" | tail; fail "$1: iketcpd did not log the rekey as $4"; }
	gw_ike_up "$2" || fail "$1: iketcpd's tunnel is not established after the rekey"
	local s; s=$(gw_spis "$2")
	ls_keyed_spis "$LS" "${s%/*}" "${s#*/}" || fail "$1: libreswan has no IKE SA ${s%/*}_i ${s#*/}_r"
	grep -v "^.\{24\}| " "$LS/pluto.log" | grep -E "AUTHENTICATION_FAILED|NO_PROPOSAL_CHOSEN|INVALID_SYNTAX|INVALID_KE_PAYLOAD|TEMPORARY_FAILURE" &&
		fail "$1: libreswan logged an error notify"
	log "$1: IKE SA $3 -> $(gw_spis "$2") ($4)"
}

# gw_conf ROLE(responder|initiator) PSK: iketcpd's config (gwB.conf shape; the initiator talks to pluto's 4500).
gw_conf() {
	mkdir -p "$TMP/gw"
	if [ "$1" = responder ]; then
		cat >"$TMP/gw.conf" <<EOF
config system settings
    set control-socket "$SOCK"
    set bpf-pin-path "/sys/fs/bpf/$NSP-gw"
    set ike-tcp-service enable
    set ike-tls-service disable
    set ike-tcp-port 443
    set inner-interface "lan0"
end
config vpn ipsec phase1-interface
    edit "branch"
        set interface "wan0"
        set ike-version 2
        set type dynamic
        set authmethod psk
        set psksecret "$2"
        set localid "hq.example"
        set peerid "branch.example"
        set proposal aes128gcm-prfsha256 aes256gcm-prfsha384
        set dhgrp 19 31
    next
end
config vpn ipsec phase2-interface
    edit "branch-lan"
        set phase1name "branch"
        set proposal aes128gcm aes256gcm
        set src-subnet 10.2.0.0 255.255.255.0
        set dst-subnet 10.1.0.0 255.255.255.0
    next
end
EOF
	else
		cat >"$TMP/gw.conf" <<EOF
config system settings
    set control-socket "$SOCK"
    set bpf-pin-path "/sys/fs/bpf/$NSP-gw"
    set ike-tcp-service enable
    set ike-tls-service disable
    set ike-tcp-port 4500
    set inner-interface "lan0"
end
config vpn ipsec phase1-interface
    edit "to-ls"
        set interface "wan0"
        set ike-version 2
        set remote-gw 203.0.113.1
        set transport tcp
        set authmethod psk
        set psksecret "$2"
        set localid "hq.example"
        set peerid "branch.example"
        set proposal aes128gcm-prfsha256
        set dhgrp 19
    next
end
config vpn ipsec phase2-interface
    edit "to-ls-lan"
        set phase1name "to-ls"
        set proposal aes128gcm
        set src-subnet 10.2.0.0 255.255.255.0
        set dst-subnet 10.1.0.0 255.255.255.0
    next
end
EOF
	fi
}

# ls_conf PSK AUTO(add|start) [RIGHTID]: pluto as branch.example; TCP only, to iketcpd's 443.
ls_conf() {
	ls_instance "$LS" || fail "pluto instance"
	{
		ls_conf_setup "$LS"
		cat <<EOF
conn hq
	ikev2=insist
	authby=secret
	left=203.0.113.1
	leftid=@branch.example
	leftsubnet=10.1.0.0/24
	right=203.0.113.2
	rightid=${3:-@hq.example}
	rightsubnet=10.2.0.0/24
	ike=aes_gcm128-sha2_256;dh19
	esp=aes_gcm128
	enable-tcp=yes
	tcp-remoteport=443
	retransmit-timeout=10s
	rekey=no
	auto=$2
EOF
	} >"$LS/ipsec.conf"
	printf '@branch.example %s : PSK "%s"\n' "${3:-@hq.example}" "$1" >"$LS/ipsec.secrets"
	chmod 600 "$LS/ipsec.secrets"
}

pluto_start() {
	PLUTO_PID=$(ls_start "$NSP-ls" "$LS") || { tail -20 "$LS/pluto.log" 2>/dev/null; fail "pluto did not start"; }
}
pluto_stop() {
	ls_stop "$LS" "$PLUTO_PID"
	PLUTO_PID=
	cp "$LS/pluto.log" "$TMP/pluto-$1.log.txt" 2>/dev/null
	: >"$LS/pluto.log"
}

# capture NAME / capture_end: tcpdump on libreswan's eth0, the wire as the peer sees it (on iketcpd's wan0
# the XDP/tc steering shows the two directions with different ports, 11443 in and 443 out).
capture() {
	ip netns exec "$NSP-ls" tcpdump -i eth0 -n -U --immediate-mode -w "$TMP/$1.pcap" tcp >"$TMP/tcpdump-$1.txt" 2>&1 &
	CAP_PID=$!
	PIDS+=("$CAP_PID")
	wait_for 5 grep -q "listening on" "$TMP/tcpdump-$1.txt" || fail "tcpdump did not start"
}
capture_end() { sleep 0.5; kill -INT "$CAP_PID"; wait "$CAP_PID" 2>/dev/null; }

# decode NAME PORT WANT_EXCHANGES...: the stream to PORT carries the IKETCP prefix once (from the
# originator) and IKE frames both ways, with each IKE exchange type listed.
decode() {
	local name=$1 port=$2; shift 2
	tshark -X lua_script:"$TOP/tools/wireshark/iketcp.lua" -r "$TMP/$name.pcap" -T fields -E separator='|' \
		-E occurrence=a -E aggregator=',' -e tcp.srcport -e tcp.dstport -e iketcp.prefix -e iketcp.kind \
		-e isakmp.exchangetype >"$TMP/$name.fields" 2>"$TMP/tshark-$name.txt" || fail "tshark: $(cat "$TMP/tshark-$name.txt")"
	grep -qi "lua.*error\|error.*lua" "$TMP/tshark-$name.txt" && fail "dissector Lua error: $(cat "$TMP/tshark-$name.txt")"
	frames() { # DIR(to|from) FIELD VALUE: how many VALUEs in FIELD (3 prefix, 4 kind, 5 exchange) of this stream's frames
		awk -F'|' -v port="$port" -v dir="$1" -v f="$2" -v val="$3" '
			(dir == "to" && $2 == port) || (dir == "from" && $1 == port) {
				n = split($f, v, ","); for (i = 1; i <= n; i++) if (v[i] == val) k++ }
			END { print k + 0 }' "$TMP/$name.fields"
	}
	local pre ike_to ike_from
	pre=$(frames to 3 IKETCP)
	ike_to=$(frames to 4 1)
	ike_from=$(frames from 4 1)
	local streams
	streams=$(awk -F'|' -v port="$port" '$2 == port { print $1 }' "$TMP/$name.fields" | sort -u | wc -l)
	log "$name capture: $streams TCP streams, prefix $pre, IKE frames to $port: $ike_to, from $port: $ike_from"
	[ "$pre" -eq "$streams" ] && [ "$pre" -ge 1 ] && [ "$(frames from 3 IKETCP)" -eq 0 ] ||
		fail "$name: one IKETCP prefix per stream, from the originator (to $port: $pre, streams $streams); $(cat "$TMP/$name.fields")"
	[ "$ike_to" -ge 2 ] && [ "$ike_from" -ge 2 ] || fail "$name: IKE frames both ways; $(cat "$TMP/$name.fields")"
	local x
	for x in "$@"; do
		[ "$(frames to 5 "$x")" -ge 1 ] && [ "$(frames from 5 "$x")" -ge 1 ] ||
			fail "$name: IKE exchange $x missing in one direction; $(cat "$TMP/$name.fields")"
	done
}
IKE_SA_INIT=34 IKE_AUTH=35 CREATE_CHILD_SA=36 INFORMATIONAL=37

# same_sa CASE TUNNEL: the IKE SA iketcpd reports is the one libreswan negotiated (same SPI pair).
same_sa() {
	local i r
	i=$(ctl status --json | jq -r ".tunnels[] | select(.name == \"$2\") | .ike_sa.spi_i")
	r=$(ctl status --json | jq -r ".tunnels[] | select(.name == \"$2\") | .ike_sa.spi_r")
	ls_saw_spis "$LS" "$i" "$r" || fail "$1: libreswan's log has no IKE SA ${i}_i ${r}_r"
	log "$1: same IKE SA on both sides: ${i}_i ${r}_r"
}

# no_nat CASE GWLOG: there is no NAT between the two: the NAT_DETECTION hashes (RFC 7296 2.23) of each side
# must match what the other computes (libreswan logs its verdict at plutodebug level).
no_nat() {
	! grep -E "NAT_TRAVERSAL (this|that) end is behind NAT" "$LS/pluto.log" ||
		fail "$1: libreswan saw a NAT that is not there: iketcpd's NAT_DETECTION hashes are wrong"
	! grep "NAT detected" "$TMP/$2.log" || fail "$1: iketcpd saw a NAT that is not there: libreswan's NAT_DETECTION hashes differ from ours"
}

# ---- 1. libreswan initiates to iketcpd (responder) over TCP 443 ----
gw_conf responder "$PSK"
daemon_start gw "$TMP/gw.conf" gw1
ls_conf "$PSK" add
pluto_start
capture c1

# 1a. childless (impair omit-v2-ike-auth-child): a clean IKE SA on both sides.
ls_whack "$LS" --impair omit-v2-ike-auth-child >/dev/null 2>&1 || fail "1a: whack --impair omit-v2-ike-auth-child"
ls_whack "$LS" --name hq --initiate --asynchronous >/dev/null 2>&1
wait_for 15 gw_ike_up branch || { ctl status; fail "1a: iketcpd: childless IKE SA from libreswan not established"; }
wait_for 10 ls_up || { ls_whack "$LS" --showstates; fail "1a: libreswan: childless IKE SA not established"; }
tun branch '(.ike_sa.dhgrp | tostring) == "19" and (.ike_sa.proposal | test("AES_GCM_16_128|aes128gcm"; "i"))' ||
	{ ctl status --json; fail "1a: IKE SA proposal/dhgrp"; }
sleep 0.3
[ "$(gw_childs branch)" = 0 ] || { ctl status; fail "1a: iketcpd has a CHILD SA for a childless IKE_AUTH"; }
[ "$(ls_child_established "$LS")" -eq 0 ] || fail "1a: libreswan shows a CHILD SA"
grep -qE "AUTHENTICATION_FAILED|TS_UNACCEPTABLE|NO_PROPOSAL_CHOSEN|INVALID_SYNTAX" "$LS/pluto.log" && fail "1a: libreswan saw an error notify"
no_nat 1a gw1
same_sa 1a branch
log "1a: childless IKE SA up on both sides"
# 5a. libreswan rekeys the IKE SA (it is the rekey's initiator, iketcpd the responder).
old=$(gw_spis branch)
serial=$(ls_ike_serial "$LS")
ls_whack "$LS" --impair "event-v2-rekey:$serial" >"$TMP/impair-rekey.txt" 2>&1 ||
	fail "5a: whack --impair event-v2-rekey:$serial: $(cat "$TMP/impair-rekey.txt")"
rekeyed 5a branch "$old" "the peer's" gw1
# 5b. iketcpd rekeys it (the control socket's rekey), libreswan answers.
old=$(gw_spis branch)
ctl rekey branch >"$TMP/rekey.txt" 2>&1 || fail "5b: rekey branch refused: $(cat "$TMP/rekey.txt")"
rekeyed 5b branch "$old" ours gw1
# 3a. libreswan deletes the IKE SA: iketcpd takes the tunnel down.
# (libreswan 4.10: `whack --down` on a childless IKE SA leaves it; --deletestate sends the DELETE.)
serial=$(ls_ike_serial "$LS")
[ -n "$serial" ] || { ls_whack "$LS" --showstates; fail "3a: no libreswan IKE SA serial"; }
ls_whack "$LS" --deletestate "$serial" >"$TMP/deletestate.txt" 2>&1
wait_for 10 gw_down branch || { ctl status; fail "3a: iketcpd kept the IKE SA after libreswan's DELETE"; }
grep -q "peer deleted IKE SA" "$TMP/gw1.log" || fail "3a: iketcpd did not log the peer's DELETE"
wait_for 5 ls_gone || fail "3a: libreswan kept its IKE SA after --down"
log "3a: libreswan's DELETE took iketcpd's tunnel down"
# 3b. again, then iketcpctl down on our (responder) side: libreswan sees the DELETE.
ls_whack "$LS" --name hq --initiate --asynchronous >/dev/null 2>&1
wait_for 15 gw_ike_up branch || { ctl status; fail "3b: iketcpd: second IKE SA not established"; }
wait_for 10 ls_up || fail "3b: libreswan: second IKE SA not established"
ctl down branch >"$TMP/down.txt" 2>&1 || fail "3b: iketcpctl down branch refused: $(cat "$TMP/down.txt")"
wait_for 10 ls_gone || { ls_whack "$LS" --showstates; fail "3b: libreswan kept the IKE SA after iketcpctl down branch"; }
wait_for 5 gw_down branch || fail "3b: iketcpd still established after its own down"
log "3b: iketcpctl down (responder side) -> libreswan deleted its IKE SA"

# 1b. with the CHILD SA: iketcpd installs it; libreswan's own kernel install fails (no ESP here, expected):
#     libreswan then drops its IKE SA without a notify (its behaviour, not a protocol error of ours).
ls_whack "$LS" --impair none >/dev/null 2>&1
ls_whack "$LS" --name hq --initiate --asynchronous >/dev/null 2>&1
wait_for 15 gw_ike_up branch || { ctl status; fail "1b: iketcpd: IKE SA from libreswan not established"; }
wait_for 5 bash -c "[ \$(ip netns exec $NSP-gw $IKETCPCTL -s $SOCK status --json | jq '.tunnels[] | select(.name == \"branch\") | .child_sas | length') -ge 1 ]" ||
	{ ctl status; fail "1b: iketcpd did not install the CHILD SA"; }
tun branch '.child_sas[0].proposal | test("AES_GCM_16_128|aes128gcm"; "i")' || { ctl status --json; fail "1b: CHILD SA proposal"; }
wait_for 10 grep -q "initiator established IKE SA" "$LS/pluto.log" || fail "1b: libreswan did not establish the IKE SA"
wait_for 5 grep -qE "Add SA esp.*(Function not implemented|Protocol not supported)" "$LS/pluto.log" ||
	{ grep -iE "kernel|child|TS_|NOTIFY" "$LS/pluto.log" | tail -20; fail "1b: libreswan's CHILD SA: no kernel install error in its log (expected one)"; }
log "1b: IKE SA up both sides, iketcpd CHILD SA $(ctl status --json | jq -r '.tunnels[] | select(.name == "branch") | .child_sas[0] | "\(.spi_in)/\(.spi_out) \(.proposal)"')"
log "1b: expected on libreswan's side: $(grep -m1 -oE "netlink response for Add SA esp.*" "$LS/pluto.log")"
grep -qE "AUTHENTICATION_FAILED|TS_UNACCEPTABLE|NO_PROPOSAL_CHOSEN" "$LS/pluto.log" && fail "1b: libreswan received an error notify"
ls_whack "$LS" --trafficstatus >"$TMP/traffic.txt" 2>&1
! grep -q "#[0-9]*: " "$TMP/traffic.txt" || fail "1b: libreswan lists traffic for a CHILD SA its kernel refused: $(cat "$TMP/traffic.txt")"
capture_end
decode c1 443 $IKE_SA_INIT $IKE_AUTH $CREATE_CHILD_SA $INFORMATIONAL
pluto_stop 1
# iketcpd still holds that IKE SA (libreswan left without a DELETE): a fresh daemon for the next case.
daemon_stop gw1

# ---- 4. wrong PSK: libreswan initiates with another key: AUTHENTICATION_FAILED, counted ----
daemon_start gw "$TMP/gw.conf" gw4
fails0=$(stat_of gw "$SOCK" ike auth_failures)
ls_conf "not the right key" add
pluto_start
ls_whack "$LS" --name hq --initiate --asynchronous >/dev/null 2>&1
wait_for 15 bash -c "[ \$(ip netns exec $NSP-gw $IKETCPCTL -s $SOCK stats --json | jq .ike.auth_failures) -gt $fails0 ]" ||
	{ ctl stats; fail "4: iketcpd did not count the wrong PSK in stats.ike.auth_failures"; }
wait_for 10 grep -q "AUTHENTICATION_FAILED" "$LS/pluto.log" ||
	{ tail -20 "$LS/pluto.log"; fail "4: libreswan did not receive AUTHENTICATION_FAILED"; }
gw_down branch || fail "4: iketcpd established with a wrong PSK"
ls_gone || fail "4: libreswan established with a wrong PSK"
log "4: wrong PSK on libreswan: AUTHENTICATION_FAILED, auth_failures $fails0 -> $(stat_of gw "$SOCK" ike auth_failures)"
pluto_stop 4
daemon_stop gw4

# ---- 4c. libreswan rejects iketcpd's AUTH (it expects another ID): iketcpd must not keep the SA ----
daemon_start gw "$TMP/gw.conf" gw4c
ls_conf "$PSK" add @elsewhere.example
pluto_start
ls_whack "$LS" --name hq --initiate --asynchronous >/dev/null 2>&1
wait_for 10 grep -q "Peer ID '@hq.example' mismatched" "$LS/pluto.log" ||
	{ tail -20 "$LS/pluto.log"; fail "4c: libreswan did not reject iketcpd's ID"; }
# libreswan says so with INFORMATIONAL { D(IKE) } (iketcpd would take N(AUTHENTICATION_FAILED) the same way)
wait_for 5 grep -qE "peer deleted IKE SA|the peer rejected our authentication" "$TMP/gw4c.log" ||
	fail "4c: iketcpd heard nothing of libreswan's rejection"
wait_for 5 gw_down branch || { ctl status; fail "4c: iketcpd kept an IKE SA the initiator rejected"; }
[ "$(gw_childs branch)" = 0 ] || fail "4c: iketcpd kept the CHILD SA of a rejected IKE SA"
ls_gone || fail "4c: libreswan established with the wrong ID"
log "4c: libreswan rejected iketcpd's ID; iketcpd dropped the SA it had completed: $(grep -m1 -oE "peer deleted IKE SA.*|the peer rejected.*" "$TMP/gw4c.log")"
pluto_stop 4c
daemon_stop gw4c

# ---- 2. iketcpd initiates to libreswan's TCP 4500 ----
ls_conf "$PSK" add
pluto_start
capture c2
gw_conf initiator "$PSK"
daemon_start gw "$TMP/gw.conf" gw2
ctl up to-ls >/dev/null 2>&1
wait_for 15 gw_ike_up to-ls || { ctl status; tail -30 "$LS/pluto.log"; fail "2: iketcpd: IKE SA to libreswan not established"; }
wait_for 10 ls_up || { ls_whack "$LS" --status; fail "2: libreswan: IKE SA from iketcpd not established"; }
sleep 0.5
[ "$(gw_childs to-ls)" = 0 ] || { ctl status; fail "2: iketcpd reports a CHILD SA that libreswan refused"; }
grep -q "TS_UNACCEPTABLE" "$TMP/gw2.log" || { grep -i "child\|notify" "$TMP/gw2.log" | tail; fail "2: iketcpd did not log libreswan's TS_UNACCEPTABLE"; }
grep -q "responder established IKE SA" "$LS/pluto.log" || fail "2: libreswan did not log its IKE SA as established"
grep -qE "Add SA esp.*(Function not implemented|Protocol not supported)" "$LS/pluto.log" ||
	fail "2: libreswan refused the CHILD SA but not because of its kernel (expected: Add SA esp ... Function not implemented)"
no_nat 2 gw2
same_sa 2 to-ls
log "2: IKE SA up both sides, no CHILD SA; iketcpd: $(grep -m1 -o "IKE SA up without CHILD SA.*" "$TMP/gw2.log")"
# 5c. iketcpd (the original initiator) rekeys the IKE SA; 5d. then libreswan does.
old=$(gw_spis to-ls)
ctl rekey to-ls >"$TMP/rekey.txt" 2>&1 || fail "5c: rekey to-ls refused: $(cat "$TMP/rekey.txt")"
rekeyed 5c to-ls "$old" ours gw2
old=$(gw_spis to-ls)
serial=$(ls_ike_serial "$LS")
ls_whack "$LS" --impair "event-v2-rekey:$serial" >"$TMP/impair-rekey.txt" 2>&1 ||
	fail "5c: whack --impair event-v2-rekey:$serial: $(cat "$TMP/impair-rekey.txt")"
rekeyed 5d to-ls "$old" "the peer's" gw2
ctl down to-ls >/dev/null || fail "2: iketcpctl down to-ls"
wait_for 10 ls_gone || { ls_whack "$LS" --showstates; fail "2: libreswan kept the IKE SA after iketcpd's DELETE"; }
wait_for 5 gw_down to-ls || fail "2: iketcpd still established after down"
log "2: iketcpctl down -> libreswan deleted the IKE SA"
# libreswan closes the stream once the IKE SA is gone; with no SA left to carry, iketcpd must not re-dial
# it (the transport's first reconnect comes after 1 s).
sleep 2.5
redials=$(stat_of gw "$SOCK" tcp reconnects)
[ "$redials" = 0 ] || { ip netns exec "$NSP-gw" ss -tn; fail "2: iketcpd re-dialled libreswan $redials times after down, with no IKE SA to carry"; }
gw_down to-ls && ls_gone || fail "2: the tunnel came back after down"
capture_end
decode c2 4500 $IKE_SA_INIT $IKE_AUTH $CREATE_CHILD_SA $INFORMATIONAL
daemon_stop gw2

# ---- 4b. wrong PSK on iketcpd (initiator): libreswan answers AUTHENTICATION_FAILED, we count it ----
gw_conf initiator "not the right key"
daemon_start gw "$TMP/gw.conf" gw4b
ctl up to-ls >/dev/null 2>&1
wait_for 15 bash -c "[ \$(ip netns exec $NSP-gw $IKETCPCTL -s $SOCK stats --json | jq .ike.auth_failures) -ge 1 ]" ||
	{ ctl stats; tail -5 "$TMP/gw4b.log"; fail "4b: iketcpd did not count libreswan's AUTHENTICATION_FAILED"; }
grep -q "authentication with .* failed: peer answered AUTHENTICATION_FAILED" "$TMP/gw4b.log" ||
	fail "4b: iketcpd did not log the peer's AUTHENTICATION_FAILED"
grep -q "responding to IKE_AUTH .* with encrypted notification AUTHENTICATION_FAILED" "$LS/pluto.log" || fail "4b: libreswan did not answer AUTHENTICATION_FAILED"
gw_down to-ls || fail "4b: iketcpd established with a wrong PSK"
ls_gone || fail "4b: libreswan established with a wrong PSK"
log "4b: wrong PSK on iketcpd: libreswan answered AUTHENTICATION_FAILED, auth_failures $(stat_of gw "$SOCK" ike auth_failures)"
daemon_stop gw4b
pluto_stop 2
exit 0
