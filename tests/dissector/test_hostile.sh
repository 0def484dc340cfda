#!/usr/bin/env bash
# iketcp.lua on hostile frames (tests/dissector/mkpcap.py hostile): no Lua error, every hostile frame
# flagged, and the valid IKE frame after each one in the same segment still decoded.
# No root or network needed. Exit 0 pass, 77 skip (no tshark), 1 fail.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LUA=$TOP/tools/wireshark/iketcp.lua
command -v tshark >/dev/null || { echo "SKIP: tshark not installed" >&2; exit 77; }
TMP=$(mktemp -d /tmp/iketcp-hostile.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

python3 "$TOP/tests/dissector/mkpcap.py" hostile "$TMP/h.pcap" >"$TMP/mk.txt" || fail "mkpcap.py"
want=$(sed -n 's/^neighbours=//p' "$TMP/mk.txt")

tshark -X lua_script:"$LUA" -r "$TMP/h.pcap" -Y "tcp.len > 0" -T fields -E separator='|' \
	-E occurrence=a -E aggregator=',' -e iketcp.kind -e isakmp.exchangetype -e _ws.expert.message \
	>"$TMP/f.txt" 2>"$TMP/err.txt" || fail "tshark: $(cat "$TMP/err.txt")"
grep -q "Lua Error" "$TMP/f.txt" "$TMP/err.txt" && fail "Lua error: $(grep -h "Lua Error" "$TMP/f.txt" "$TMP/err.txt")"

# Every data segment after the prefix ends with the valid neighbour: last kind IKE, last exchange 34.
got=$(awk -F'|' '$1 ~ /(^|,)1$/ && $2 ~ /(^|,)34$/' "$TMP/f.txt" | wc -l)
[ "$got" = "$want" ] || fail "neighbours decoded: $got, expected $want
$(cat "$TMP/f.txt")"

check() { # check MESSAGE COUNT
	local n
	n=$(grep -o "$1" "$TMP/f.txt" | wc -l)
	[ "$n" = "$2" ] || fail "'$1': $n, expected $2"
}
check "Frame too short for a non-ESP marker or an SPI" 3
check "ESP packet shorter than SPI and sequence number" 2
check "Non-ESP marker without an IKE message" 1
check "Frame length below 2" 0
echo "hostile: $want hostile frames flagged, neighbours decoded, no Lua error"
