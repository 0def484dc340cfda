#!/usr/bin/env bash
# make demo: the reference topology with two iketcp gateways (see scripts/topology.sh).
# Each step prints a progress line; a failure names the step and its log. Everything the
# demo creates (namespaces, processes, pins) is removed at the end, also when interrupted.
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$TOP/build
. "$TOP/scripts/topology.sh"

P="iketcp-demo"
WORK=$(mktemp -d /tmp/iketcp-demo.XXXXXX)
PIDS=()
STEP=0

cleanup() {
	local rc=$?
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null
	done
	topo_down "$P"
	if [ $rc -eq 0 ]; then rm -rf "$WORK"; else echo "logs kept in $WORK"; fi
	exit $rc
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

step() { STEP=$((STEP + 1)); printf '[%d] %s ... ' "$STEP" "$1"; }
ok() { echo "ok${1:+ ($1)}"; }
die() { echo "FAILED"; echo "step $STEP failed: $1${2:+ (log: $2)}" >&2; exit 1; }
nsx() { local n=$1; shift; ip netns exec "$(topo_ns "$n")" "$@"; }
ctl() { local n=$1; shift; nsx "$n" "$BUILD/iketcpctl" -s "$WORK/$n/iketcpd.sock" "$@"; }
stat() { ctl "$1" stats --json | jq -r ".$2.$3"; }

[ "$(id -u)" -eq 0 ] || { echo "make demo needs root (network namespaces, XDP)" >&2; exit 1; }
[ -x "$BUILD/iketcpd" ] || { echo "build first: make" >&2; exit 1; }

step "leftovers from an earlier run"
topo_down "$P"
ok

step "reference topology: hostA - gwA - carrier (NAT, no UDP) - gwB - hostB"
topo_up "$P" >"$WORK/topology.log" 2>&1 || die "could not build the topology" "$WORK/topology.log"
ok "5 namespaces"

step "gwB's HTTPS admin service on 203.0.113.2:443 (nginx)"
mkdir -p "$WORK/admin"
pid=$(topo_admin_https "$WORK/admin") || die "nginx" "$WORK/admin/nginx-error.log"
PIDS+=("$pid")
for _ in $(seq 50); do nsx gwB curl -sk --max-time 1 https://203.0.113.2/ >/dev/null 2>&1 && break; sleep 0.1; done
nsx gwB curl -sk --max-time 1 https://203.0.113.2/ >/dev/null || die "nginx did not answer" "$WORK/admin/nginx-error.log"
ok

for gw in gwB gwA; do
	step "iketcpd on $gw from shared/spec/$gw.conf"
	mkdir -p "$WORK/$gw"
	spec=$TOP/tests/conf/$gw.conf
	[ -f "$TOP/../shared/spec/$gw.conf" ] && spec=$TOP/../shared/spec/$gw.conf
	topo_gateway_conf "$spec" "$WORK/$gw/$gw.conf" "$WORK/$gw" "/sys/fs/bpf/$P-$gw"
	"$BUILD/iketcpd" --check -c "$WORK/$gw/$gw.conf" >"$WORK/$gw/check.log" 2>&1 || die "--check" "$WORK/$gw/check.log"
	ip netns exec "$(topo_ns "$gw")" "$BUILD/iketcpd" -c "$WORK/$gw/$gw.conf" >"$WORK/$gw/iketcpd.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 100); do ctl "$gw" status >/dev/null 2>&1 && break; sleep 0.1; done
	ctl "$gw" status >/dev/null 2>&1 || die "iketcpd did not start" "$WORK/$gw/iketcpd.log"
	ok "$(nsx "$gw" ip link show wan0 | grep -o 'prog/xdp id [0-9]* name [a-z_]*')"
done

step "the carrier drops UDP: IKE over UDP 500 from gwA cannot reach gwB"
nsx gwA python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); [s.sendto(b"x"*28, ("203.0.113.2", 500)) for _ in range(3)]'
drops=$(nsx carrier iptables -L FORWARD -v -n -x | awk '$3 == "DROP" {print $1}')
[ "${drops:-0}" -ge 3 ] || die "UDP was not dropped by the carrier"
ok "$drops datagrams dropped"

step "IKEv2 from gwA to gwB: transport auto tries UDP, then TCP 443 through the carrier's NAT and gwB's XDP steering"
up() { ctl "$1" status --json | jq -e '.tunnels[0].state == "established" and (.tunnels[0].child_sas | length) >= 1' >/dev/null 2>&1; }
# auto-transport-threshold (15 s by default) without an answer over UDP, then IKE_SA_INIT over TCP.
for _ in $(seq 450); do up gwA && up gwB && break; sleep 0.1; done
up gwA && up gwB || die "the tunnel did not come up" "$WORK/gwA/iketcpd.log"
ok "$(ctl gwA status --json | jq -r '.tunnels[0] | "\(.transport) (\(.transport_why // "-")), \(.ike_sa.proposal), CHILD SA in \(.child_sas[0].spi_in) out \(.child_sas[0].spi_out)"')"

step "ping hostA -> hostB through ESP in TCP"
nsx hostA ping -c 10 -i 0.2 -W 2 10.2.0.10 >"$WORK/ping.log" 2>&1 || die "ping failed" "$WORK/ping.log"
RTT=$(sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p' "$WORK/ping.log")
ok "10/10 replies, average RTT $RTT ms"

step "ping gwA -> gwB over the carrier, the same path without the tunnel (for the RTT the tunnel adds)"
nsx gwA ping -c 10 -i 0.2 -W 2 203.0.113.2 >"$WORK/ping-wan.log" 2>&1 || die "ping gwA -> gwB failed" "$WORK/ping-wan.log"
RTT_WAN=$(sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p' "$WORK/ping-wan.log")
ok "gwA -> gwB over the carrier: $RTT_WAN ms"

step "iperf3 hostA -> hostB through the tunnel (5 s, one TCP stream)"
nsx hostB iperf3 -s -1 -B 10.2.0.10 >"$WORK/iperf3-server.log" 2>&1 &
PIDS+=($!)
sleep 0.5
nsx hostA iperf3 -c 10.2.0.10 -t 5 -J >"$WORK/iperf3.json" 2>"$WORK/iperf3.err" || die "iperf3 failed" "$WORK/iperf3.err"
GBPS=$(jq -r '.end.sum_received.bits_per_second / 1e9 | . * 100 | round / 100' "$WORK/iperf3.json")
ok "$GBPS Gbit/s"

step "gwB's admin page from gwA across the carrier, on the same 443 (passed through to nginx)"
page=$(nsx gwA curl -sk --max-time 5 https://203.0.113.2/) || die "curl from gwA failed" "$WORK/gwB/iketcpd.log"
[ "$page" = "gwB admin page" ] || die "got '$page'"
ok "\"$page\""

echo
echo "== gwA: iketcpctl status"
ctl gwA status
echo
echo "== gwB: iketcpctl status"
ctl gwB status
echo
echo "== gwB: counters"
ctl gwB stats --json | jq -c '{tcp: (.tcp | {accepted, frames_ike, frames_esp, admin_passthrough}), esp: (.esp | {packets_in, packets_out, replay_drops, auth_failures}), xdp: (.xdp | {steered_in, steered_out, syn_dropped})}'
echo
echo "Summary"
ctl gwA status --json | jq -r '.tunnels[0] | "  transport     \(.transport) to \(.remote):443 (\(.transport_why // "-")), IKE SA \(.ike_sa.spi_i)/\(.ike_sa.spi_r) \(.ike_sa.proposal)",
  "  CHILD SA      \(.child_sas[0].name): in \(.child_sas[0].spi_in), out \(.child_sas[0].spi_out), \(.child_sas[0].proposal)"'
echo "  ping          hostA -> hostB $RTT ms average (gwA -> gwB without the tunnel: $RTT_WAN ms)"
echo "  throughput    $GBPS Gbit/s, one TCP stream through ESP-in-TCP ($(ctl gwA status --json | jq -r .daemon.dataplane) dataplane)"
echo "  carrier       NATs gwA and drops UDP: everything crossed as TCP to 203.0.113.2:443"
echo "  admin         gwB's HTTPS admin page still answers on 443"
