#!/usr/bin/env bash
# The TUN dataplane (`set dataplane tun`) end to end on the reference topology (scripts/topology.sh):
#
#   hostA 10.1.0.10 -- lan0 gwA wan0 100.64.0.2 -- carrier -- 203.0.113.2 wan0 gwB lan0 -- hostB 10.2.0.10
#                 10.1.0.1    iketcp0         (NAT + drops UDP)         iketcp0   10.2.0.1
#
# Both gateways route the other side's LAN into their TUN device iketcp0, which carries virtio-net
# headers with TCP segmentation offload: the kernel hands gwA superpackets of hostA's TCP that it
# splits before sealing, and gwB joins the opened segments of each stream read into superpackets
# before writing them back. Ping both ways, 16 MB of TCP each way checked by SHA-256, the
# offloads seen at work in each daemon's closing counters, and nothing but TCP 443 on the carrier.
# The WAN steering runs at tc ingress here (`set steer-hook tc`: no XDP anywhere on the gateways);
# the other tunnel tests steer with XDP.
# Then the same over ESP in UDP (the carrier letting UDP through): superpackets are split to fit
# the path (the TUN's MTU is the LAN's), nothing on the carrier is fragmented, and a DF packet too
# big for the path is answered with ICMP fragmentation-needed.
. "$(dirname "$0")/lib.sh"
OFFLOAD_DP=tun
OFFLOAD_SETTING="set dataplane tun"
OFFLOAD_LOG="TUN iketcp0 up.*TCP segmentation offload"
OFFLOAD_STEER_HOOK=tc
. "$TOP/tests/netns/offload_tunnel.sh"
