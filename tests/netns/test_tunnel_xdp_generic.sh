#!/usr/bin/env bash
# The AF_XDP dataplane with `set xdp-mode generic` end to end on the reference topology (scripts/topology.sh):
#
#   hostA 10.1.0.10 -- lan0 gwA wan0 100.64.0.2 -- carrier -- 203.0.113.2 wan0 gwB lan0 -- hostB 10.2.0.10
#                 10.1.0.1  (clear.bpf.o, AF_XDP)  (NAT + drops UDP)  (clear.bpf.o, AF_XDP)  10.2.0.1
#
# In generic mode the LAN hosts keep their GSO: gwA's AF_XDP socket takes each TCP superpacket of
# hostA's whole, in several descriptors (multi-buffer), and splits it to fit the link before sealing;
# gwB joins the opened segments of each stream read and sends them as one superpacket through a packet
# socket with a vnet header. Ping both ways, 16 MB of TCP each way checked by SHA-256, both offloads
# seen at work in each daemon's counters (iketcpctl stats, section tun), nothing but TCP 443 on the
# carrier; then the same over ESP in UDP, superpackets split to fit the path, and a DF packet too big
# for it answered with ICMP fragmentation-needed.
. "$(dirname "$0")/lib.sh"
OFFLOAD_DP=afxdp
OFFLOAD_SETTING="set xdp-mode generic"
OFFLOAD_LOG="afxdp: lan0: XDP generic mode, .*multi-buffer"
. "$TOP/tests/netns/offload_tunnel.sh"
