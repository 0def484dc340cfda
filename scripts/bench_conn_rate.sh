#!/usr/bin/env bash
# TCP connection rate to the daemon through the XDP/tc steering (port 443 -> 11443) against
# connecting to a port nothing rewrites (4500, the same daemon), as a ratio measured in one run.
# Prints one JSON line.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/tests/netns/lib.sh"
need_root
N=${BENCH_CONNECTIONS:-3000}
IKETCPD=$BUILD/iketcpd

ns_add gw
ns_add cl
veth gw wan0 cl eth0
ip -n "$NSP-gw" addr add 192.0.2.1/24 dev wan0
ip -n "$NSP-cl" addr add 192.0.2.2/24 dev eth0
nsx cl sysctl -qw net.ipv4.ip_local_port_range="10000 65000"
nsx cl sysctl -qw net.ipv4.tcp_tw_reuse=1
cat >"$TMP/gw.conf" <<CONF
config system settings
    set ike-tcp-service enable
    set ike-tcp-syn-rate 0
    set control-socket "$TMP/ctl.sock"
    set bpf-pin-path "/sys/fs/bpf/$NSP"
end
config vpn ipsec phase1-interface
    edit "dialup"
        set interface "wan0"
        set type dynamic
        set psksecret "benchmark-secret"
    next
end
CONF
daemon_start gw "$TMP/gw.conf" gwd >/dev/null
nsx cl python3 - "$N" <<'PY'
import json, socket, sys, time
n = int(sys.argv[1])
def rate(port):
    start = time.perf_counter()
    for _ in range(n):
        s = socket.create_connection(("192.0.2.1", port))
        s.sendall(b"IKETCP\x00\x03\xff")
        s.close()
    return n / (time.perf_counter() - start)
rate(4500)  # warm up
steered, direct = rate(443), rate(4500)
print(f"TCP connections/s (connect, prefix, keepalive, close; {n} each):")
print(f"  through the steering 443->11443: {steered:8.0f}/s")
print(f"  direct to 4500 (no rewrite):     {direct:8.0f}/s")
print(f"  ratio steered/direct:            {steered / direct:8.3f}")
print(json.dumps({"bench": "conn_rate", "connections": n, "steered_per_s": round(steered),
                  "direct_per_s": round(direct), "ratio": round(steered / direct, 3)}))
PY
daemon_stop gwd
