#!/usr/bin/env bash
# steer.bpf.o attached by hand (iproute2 + libbpf, all-zero config = 443 -> 11443):
# a client connecting to 443 reaches a listener on 11443 over IPv4 and IPv6, data
# flows both ways, and the client only ever sees port 443. Run twice: with veth
# checksum offload (CHECKSUM_PARTIAL) and with it off (full checksums that the
# receiving stack verifies, rx offload off too, so a wrong update loses packets).
#
#   [cli] cl0 10.77.0.2 fd77::2  <---- veth ---->  sv0 10.77.0.1 fd77::1 [srv]
#                                                  xdp (then tc ingress): dport 443 -> 11443
#                                                  tc egress: sport 11443 -> 443
#                                                  listener: python3 on 11443
. "$(dirname "$0")/lib.sh"
need_root
need ip tc python3 ethtool
OBJ=$BUILD/bpf/steer.bpf.o
[ -f "$OBJ" ] || skip "$OBJ not built"

ns_add srv
ns_add cli
veth srv sv0 cli cl0
ip -n "$NSP-srv" addr add 10.77.0.1/24 dev sv0
ip -n "$NSP-cli" addr add 10.77.0.2/24 dev cl0
ip -n "$NSP-srv" addr add fd77::1/64 dev sv0 nodad
ip -n "$NSP-cli" addr add fd77::2/64 dev cl0 nodad

cat >"$TMP/server.py" <<'PY'
import socket, sys, threading
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", int(sys.argv[1])))
s.listen(16)
print("listening", flush=True)
def serve(c):
    with c:
        data = b""
        while not data.endswith(b"\n"):
            d = c.recv(65536)
            if not d:
                return
            data += d
        # Echo back, bigger than one segment, plus the port the server saw.
        port = c.getsockname()[1]
        c.sendall(("port=%d len=%d\n" % (port, len(data))).encode() + data.upper() * 3)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
cat >"$TMP/client.py" <<'PY'
import socket, sys
host = sys.argv[1]
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
c = socket.socket(fam, socket.SOCK_STREAM)
c.settimeout(5)
c.connect((host, 443))
peer = c.getpeername()[1]
payload = (b"hello-%s-" % host.encode()) * 2000 + b"\n"
c.sendall(payload)
c.shutdown(socket.SHUT_WR)
buf = b""
while True:
    d = c.recv(65536)
    if not d:
        break
    buf += d
head, _, body = buf.partition(b"\n")
assert peer == 443, peer
assert head == b"port=11443 len=%d" % len(payload), head
assert body == payload.upper() * 3, (len(body), len(payload))
print("ok", host, len(payload), len(body))
PY

bg server nsx srv python3 "$TMP/server.py" 11443
bg other nsx srv python3 "$TMP/server.py" 8443
wait_for 5 grep -q listening "$TMP/server.log" || fail "listener did not start"
wait_for 5 grep -q listening "$TMP/other.log" || fail "listener 8443 did not start"

# Ingress by XDP (sec xdp), then by tc (sec classifier, what `set steer-hook tc` attaches).
for hook in xdp tc; do
	log "attach by hand: ingress $hook, tc clsact egress bpf da obj"
	nsx srv tc qdisc add dev sv0 clsact || fail "tc qdisc add clsact"
	if [ "$hook" = xdp ]; then
		nsx srv ip link set dev sv0 xdp obj "$OBJ" sec xdp || fail "ip link set xdp obj"
		nsx srv ip link show dev sv0 | grep -q 'prog/xdp id [0-9]* name xdp_steer' || fail "ip link show: no xdp"
	else
		nsx srv tc filter add dev sv0 ingress bpf da obj "$OBJ" sec classifier || fail "tc filter add ingress"
		nsx srv tc filter show dev sv0 ingress | grep -q 'tc_steer_in' || fail "tc filter show: no tc_steer_in"
	fi
	nsx srv tc filter add dev sv0 egress bpf da obj "$OBJ" sec tc || fail "tc filter add egress"
	nsx srv tc filter show dev sv0 egress | grep -q 'tc_steer ' || fail "tc filter show: no tc_steer"

	# Nothing listens on 443 in srv: a connect succeeding proves the ingress rewrite,
	# the client's peer-port assertion proves the egress rewrite.
	for mode in offload no-offload; do
		off=on
		[ "$mode" = no-offload ] && off=off
		nsx cli ethtool -K cl0 tx $off rx $off >/dev/null || fail "ethtool cl0"
		nsx srv ethtool -K sv0 tx $off rx $off >/dev/null || fail "ethtool sv0"
		for host in 10.77.0.1 fd77::1; do
			out=$(nsx cli python3 "$TMP/client.py" "$host" 2>&1) || fail "$hook $mode $host: $out"
			log "$hook $mode: $out"
		done
	done

	# Other ports are untouched: 8443 is reachable, 80 is refused. (A peer
	# connecting to 11443 directly does not get through: the replies leave as 443.)
	nsx cli python3 -c 'import socket; socket.create_connection(("10.77.0.1", 8443), 3).close()' ||
		fail "$hook: 8443 not reachable"
	if nsx cli python3 -c 'import socket; socket.create_connection(("10.77.0.1", 80), 3)' 2>/dev/null; then
		fail "$hook: port 80 unexpectedly reachable"
	fi

	log "detach by hand"
	[ "$hook" = xdp ] && { nsx srv ip link set dev sv0 xdp off || fail "xdp off"; }
	nsx srv tc qdisc del dev sv0 clsact || fail "tc qdisc del"
	nsx srv ip link show dev sv0 | grep -q 'prog/xdp' && fail "xdp still attached"
	if nsx cli python3 -c 'import socket; socket.create_connection(("10.77.0.1", 443), 3)' 2>/dev/null; then
		fail "443 reachable after detach"
	fi
done
log "pass"
exit 0
