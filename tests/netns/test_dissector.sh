#!/usr/bin/env bash
# The Wireshark dissector tools/wireshark/iketcp.lua decodes a captured RFC 9329 stream.
#
#   ns cli  dc0 10.99.0.1 ---- ds0 10.99.0.2  ns srv   TCP 4500: IKE server (iketcpd, or a python peer)
#           dc1 10.99.1.1 ---- dk0 10.99.1.2  ns sink  TCP 443, 12345-12348: python peers
#   tcpdump -i any in ns cli (the client's view: no XDP port steering in it)
#
# Streams: 4500 every frame kind (prefix, IKE, ESP, keepalive, several frames per segment, one frame in
# 1-byte segments, the server's IKE answer); 12345 IKETCP on a port the dissector does not own (heuristic);
# 12346 a valid-looking frame without prefix (must not be claimed); 443 without prefix (left to TLS);
# 12347 malformed frames (short, length 1, then lost framing); 12348 the prefix split over two segments.
# Then tests/dissector/test_hostile.sh: sub-dissector-crashing frames from a generated pcap.
# IKETCP_DISSECTOR_SERVER=auto|python|daemon picks the 4500 server (auto: the daemon if it passes --check).
# IKETCP_KEEP_CAP=FILE keeps a copy of the capture.
source "$(dirname "$0")/lib.sh"
# lib.sh's cleanup, after stopping our processes and removing what a killed daemon left pinned.
trap 'rc=$?; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; sleep 0.3
	rm -rf "/sys/fs/bpf/$NSP"; (exit $rc); cleanup' EXIT

need_root
need tshark tcpdump python3 ss
LUA=$TOP/tools/wireshark/iketcp.lua
PEER=$TOP/tests/dissector/iketcp_peer.py
# make test builds the daemon first, so by default our own session is what gets captured.
SERVER=${IKETCP_DISSECTOR_SERVER:-daemon}
PY=$(python3 -c 'import sys; print(sys.executable)')  # skip the (slow) pyenv shim for every peer
CAP=$TMP/cap.pcap

ns_add cli
ns_add srv
ns_add sink
veth cli dc0 srv ds0
veth cli dc1 sink dk0
nsx cli ip addr add 10.99.0.1/24 dev dc0
nsx srv ip addr add 10.99.0.2/24 dev ds0
nsx cli ip addr add 10.99.1.1/24 dev dc1
nsx sink ip addr add 10.99.1.2/24 dev dk0

listening() { ip netns exec "$NSP-$1" ss -Hltn "sport = :$2" | grep -q .; }

# The daemon as the 4500 server: gwB.conf with our interface names and private paths.
daemon_conf() {
	sed -e "s/\"wan0\"/\"ds0\"/" \
		-e "/^config system settings/a\\    set control-socket \"$TMP/iketcpd.sock\"\\n    set bpf-pin-path \"/sys/fs/bpf/$NSP\"" \
		/work/shared/spec/gwB.conf >"$TMP/gw.conf"
}

start_daemon() {
	# gwB's inner-interface: a veth end (the dummy module may be missing).
	nsx srv ip link add lan0 type veth peer name lan0p && nsx srv ip link set lan0 up
	bg iketcpd ip netns exec "$NSP-srv" "$BUILD/iketcpd" -c "$TMP/gw.conf"
	wait_for 5 listening srv 4500
}

start_python() {
	bg srv4500 ip netns exec "$NSP-srv" "$PY" "$PEER" server 4500 --answer
	wait_for 5 listening srv 4500
}

# start_server: sets ANSWERS: 1 the server answers with one IKE_SA_INIT frame (python); "any" the daemon,
# which may or may not answer yet (then whatever IKE frames it sends must decode).
start_server() {
	if [ "$SERVER" != python ] && [ -x "$BUILD/iketcpd" ] && daemon_conf &&
		"$BUILD/iketcpd" --check -c "$TMP/gw.conf" >"$TMP/check.log" 2>&1; then
		log "server: build/iketcpd"
		if start_daemon; then
			ANSWERS=any
			return 0
		fi
		[ "$SERVER" = daemon ] && fail "iketcpd did not listen on TCP 4500"
		echo "WARN: iketcpd did not listen on TCP 4500; falling back to the python server" >&2
		kill "$LAST_PID" 2>/dev/null
	elif [ "$SERVER" = daemon ]; then
		fail "IKETCP_DISSECTOR_SERVER=daemon but build/iketcpd is missing or rejects the config"
	fi
	log "server: python"
	start_python || fail "python server did not listen on 4500"
	ANSWERS=1
}

log "start"
start_server
bg sink443 ip netns exec "$NSP-sink" "$PY" "$PEER" server 443
bg sink12345 ip netns exec "$NSP-sink" "$PY" "$PEER" server 12345 --answer
bg sink12346 ip netns exec "$NSP-sink" "$PY" "$PEER" server 12346
bg sink12347 ip netns exec "$NSP-sink" "$PY" "$PEER" server 12347
bg sink12348 ip netns exec "$NSP-sink" "$PY" "$PEER" server 12348
for p in 443 12345 12346 12347 12348; do wait_for 5 listening sink $p || fail "sink did not listen on $p"; done

bg tcpdump ip netns exec "$NSP-cli" tcpdump -Z root -i any -n -U -s 0 -w "$CAP" tcp
TCPDUMP=$LAST_PID
wait_for 5 grep -q listening "$TMP/tcpdump.log" || fail "tcpdump did not start"

nsx cli "$PY" "$PEER" client 10.99.0.2 4500 full >"$TMP/full.log" 2>&1 || fail "client 4500: $(cat "$TMP/full.log")"
nsx cli "$PY" "$PEER" client 10.99.1.2 12345 prefix-only >"$TMP/heur.log" 2>&1 || fail "client 12345"
nsx cli "$PY" "$PEER" client 10.99.1.2 12346 plain >"$TMP/plain.log" 2>&1 || fail "client 12346"
nsx cli "$PY" "$PEER" client 10.99.1.2 443 plain >"$TMP/tls.log" 2>&1 || fail "client 443"
nsx cli "$PY" "$PEER" client 10.99.1.2 12347 malformed >"$TMP/bad.log" 2>&1 || fail "client 12347"
nsx cli "$PY" "$PEER" client 10.99.1.2 12348 split-prefix >"$TMP/split.log" 2>&1 || fail "client 12348"
# Both FINs of the last connection on disk: everything before them was written too.
fins() { [ "$(tcpdump -r "$CAP" -n "tcp port 12348 and tcp[tcpflags] & tcp-fin != 0" 2>/dev/null | wc -l)" -ge 2 ]; }
wait_for 5 fins || fail "capture lacks the end of the last connection"
kill -INT "$TCPDUMP"
wait "$TCPDUMP" 2>/dev/null
[ -s "$CAP" ] || fail "empty capture"
log "captured; decoding"
[ -n "${IKETCP_KEEP_CAP:-}" ] && cp "$CAP" "$IKETCP_KEEP_CAP"

sent() { sed -n "s/^$2=//p" "$TMP/$1.log"; }
[ "$ANSWERS" = any ] || [ "$(sent full answered)" = "$ANSWERS" ] ||
	fail "4500 server answered=$(sent full answered), expected $ANSWERS"

# One line per frame: ports | protocols | prefix | kinds | exchange types | ESP SPIs | segments.
tshark -X lua_script:"$LUA" -r "$CAP" -T fields -E separator='|' -E occurrence=a -E aggregator=',' \
	-e tcp.srcport -e tcp.dstport -e frame.protocols -e iketcp.prefix -e iketcp.kind \
	-e isakmp.exchangetype -e esp.spi -e tcp.segment.count >"$TMP/fields.txt" 2>"$TMP/tshark.log" ||
	fail "tshark failed: $(cat "$TMP/tshark.log")"
grep -qi "lua.*error\|error.*lua" "$TMP/tshark.log" && fail "Lua error: $(cat "$TMP/tshark.log")"

# count PORT DIR FIELD VALUE: how many VALUEs in FIELD (3 protocols .. 8 segments) of frames of the stream
# on PORT, in direction DIR (to: towards PORT, from: from PORT, any).
count() {
	awk -F'|' -v port="$1" -v dir="$2" -v f="$3" -v val="$4" '
		(dir == "to" && $2 == port) || (dir == "from" && $1 == port) ||
		(dir == "any" && ($1 == port || $2 == port)) {
			n = split($f, v, ",")
			for (i = 1; i <= n; i++) if (v[i] == val || (val == "*" && v[i] != "")) c++
		}
		END { print c + 0 }' "$TMP/fields.txt"
}
expect() { # expect WHAT GOT WANT
	[ "$2" = "$3" ] || fail "$1: got $2, expected $3; fields (sport|dport|protocols|prefix|kinds|exchange|spi|segments):
$(cat "$TMP/fields.txt")"
	log "ok: $1 = $2"
}
PROTO=3 PREFIXF=4 KIND=5 EXCH=6 SPI=7 SEGS=8

# Registered port 4500: every frame kind, both directions.
expect "4500 prefix" "$(count 4500 to $PREFIXF IKETCP)" 1
expect "4500 IKE frames (client)" "$(count 4500 to $KIND 1)" "$(sent full ike)"
expect "4500 IKE_SA_INIT (client)" "$(count 4500 to $EXCH 34)" "$(sent full ike)"
expect "4500 ESP frames" "$(count 4500 to $KIND 2)" "$(sent full esp)"
expect "4500 ESP SPI 0x12345678" "$(count 4500 to $SPI 0x12345678)" "$(sent full esp)"
expect "4500 keepalives" "$(count 4500 to $KIND 3)" "$(sent full keepalive)"
expect "4500 malformed" "$(count 4500 any $KIND 4)" 0
if [ "$ANSWERS" = any ]; then
	expect "4500 server IKE frames decoded as isakmp" "$(count 4500 from $EXCH '*')" "$(count 4500 from $KIND 1)"
else
	expect "4500 IKE_SA_INIT (server, no prefix)" "$(count 4500 from $EXCH 34)" "$ANSWERS"
fi
expect "4500 prefix from server" "$(count 4500 from $PREFIXF '*')" 0
# The 1-byte-write frame: isakmp decoded in a frame reassembled from many segments.
split=$(awk -F'|' '$2 == 4500 && $6 ~ /34/ && $8 + 0 >= 10 { c++ } END { print c + 0 }' "$TMP/fields.txt")
expect "4500 IKE frame reassembled from >= 10 segments" "$split" 1
# Several frames in one segment: one packet carrying IKE, ESP, keepalive, ESP.
multi=$(awk -F'|' '$2 == 4500 && $5 == "1,2,3,2" { c++ } END { print c + 0 }' "$TMP/fields.txt")
expect "4500 segment with IKE,ESP,keepalive,ESP" "$multi" 1

# Unregistered port 12345: the heuristic finds the prefix, the conversation carries the answer.
expect "12345 prefix (heuristic)" "$(count 12345 to $PREFIXF IKETCP)" 1
expect "12345 IKE_SA_INIT (client)" "$(count 12345 to $EXCH 34)" "$(sent heur ike)"
expect "12345 IKE_SA_INIT (server)" "$(count 12345 from $EXCH 34)" 1

# Negative: no prefix on an unregistered port is not ours (nor isakmp's).
expect "12346 frames claimed by iketcp" "$(awk -F'|' '($1 == 12346 || $2 == 12346) && $3 ~ /iketcp/' "$TMP/fields.txt" | wc -l)" 0
expect "12346 isakmp" "$(count 12346 any $EXCH '*')" 0
# Negative: 443 without prefix goes back to TLS.
expect "443 iketcp frames" "$(count 443 any $KIND '*')" 0
tls=$(awk -F'|' '$2 == 443 && $3 ~ /:tls/' "$TMP/fields.txt" | wc -l)
[ "$tls" -ge 1 ] || fail "443 stream without prefix not handed to tls"
log "ok: 443 handed to tls"

# Prefix split over two segments (heuristic waits for the rest).
expect "12348 prefix (split)" "$(count 12348 to $PREFIXF IKETCP)" 1
expect "12348 IKE_SA_INIT" "$(count 12348 to $EXCH 34)" "$(sent split ike)"

# Malformed: a 4-byte frame and a length of 1 are flagged; after it, framing is lost, nothing decoded.
expect "12347 IKE frames" "$(count 12347 to $KIND 1)" "$(sent bad ike)"
expect "12347 keepalives" "$(count 12347 to $KIND 3)" "$(sent bad keepalive)"
expect "12347 malformed frames" "$(count 12347 to $KIND 4)" $(($(sent bad short) + $(sent bad bad_length)))
expect "12347 IKE_SA_INIT" "$(count 12347 to $EXCH 34)" "$(sent bad ike)"
tshark -X lua_script:"$LUA" -r "$CAP" -Y "tcp.dstport == 12347" -T fields -E occurrence=a -E aggregator='|' \
	-e _ws.expert.message >"$TMP/experts.txt" 2>/dev/null
experts() { grep -c "$1" "$TMP/experts.txt"; }
expect "12347 frames with expert iketcp.short" "$(experts 'too short for a non-ESP marker')" 1
expect "12347 frames with expert iketcp.bad_length" "$(experts 'length below 2')" 1
expect "12347 frames with expert iketcp.framing_lost" "$(experts 'Framing lost')" 1

# Preference iketcp.ports: claim 12346 (read as frames: its valid-looking frame decodes), give 443 back.
tshark -X lua_script:"$LUA" -o iketcp.ports:12346 -r "$CAP" -Y "tcp.len > 0" -T fields -E separator='|' \
	-e tcp.srcport -e tcp.dstport -e frame.protocols -e isakmp.exchangetype >"$TMP/prefs.txt" 2>/dev/null
expect "ports=12346: 12346 IKE_SA_INIT" "$(awk -F'|' '$2 == 12346 && $4 == 34' "$TMP/prefs.txt" | wc -l)" 1
expect "ports=12346: 443 frames through iketcp" "$(awk -F'|' '$2 == 443 && $3 ~ /iketcp/' "$TMP/prefs.txt" | wc -l)" 0
expect "ports=12346: 4500 still found by the heuristic" "$(awk -F'|' '$2 == 4500 && $4 ~ /34/' "$TMP/prefs.txt" | wc -l)" 3

# Hostile frames from a generated pcap (no network needed; also runnable on its own).
bash "$TOP/tests/dissector/test_hostile.sh" || fail "tests/dissector/test_hostile.sh"

log "dissector decodes RFC 9329 streams"
