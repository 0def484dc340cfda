#!/usr/bin/env python3
"""Write pcap fixtures of hand-made TCP streams for the iketcp.lua dissector (no root, no network).

  mkpcap.py hostile OUT.pcap   hostile frames inside a valid stream on TCP 4500; each hostile frame
                               is followed, in the same segment, by a valid IKE_SA_INIT frame that
                               must still decode (a hostile frame may not stop its neighbours)

Expected decode (checked by tests/dissector/test_hostile.sh):
  IKE_SA_INIT frames decoded: NEIGHBOURS (printed as neighbours=N on stdout)
"""
import struct
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from iketcp_peer import PREFIX, frame, ike_frame  # noqa: E402

CLI, SRV = bytes([10, 99, 0, 1]), bytes([10, 99, 0, 2])
CPORT, SPORT = 40000, 4500


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def packet(src, dst, sport, dport, seq, ack, flags, payload=b""):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + tcp


class Stream:
    """One TCP connection, client 10.99.0.1:40000 -> server 10.99.0.2:4500, with a handshake."""

    SYN, ACK, PSH = 0x02, 0x10, 0x08

    def __init__(self):
        self.pkts = []
        self.cseq, self.sseq = 1000, 5000
        self.pkts.append(packet(CLI, SRV, CPORT, SPORT, self.cseq, 0, self.SYN))
        self.pkts.append(packet(SRV, CLI, SPORT, CPORT, self.sseq, self.cseq + 1, self.SYN | self.ACK))
        self.cseq += 1
        self.sseq += 1
        self.pkts.append(packet(CLI, SRV, CPORT, SPORT, self.cseq, self.sseq, self.ACK))

    def send(self, data):
        self.pkts.append(packet(CLI, SRV, CPORT, SPORT, self.cseq, self.sseq, self.PSH | self.ACK, data))
        self.cseq += len(data)
        self.pkts.append(packet(SRV, CLI, SPORT, CPORT, self.sseq, self.cseq, self.ACK))

    def write(self, path):
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            for i, p in enumerate(self.pkts):
                f.write(struct.pack("<IIII", 1800000000 + i, 0, len(p), len(p)) + p)


def hostile_frames():
    """Payloads that a sub-dissector or our own parser could choke on."""
    spi = b"\x11" * 8
    yield frame(bytes(4) + b"\x01")                      # IKE message of 1 byte
    yield frame(bytes(4) + spi + bytes(8) + b"\x28\x20\x22\x08")  # IKE header cut at 20 bytes
    hdr = spi + bytes(8) + struct.pack("!BBBBII", 40, 0x20, 34, 0x08, 0, 0xFFFFFFFF)
    yield frame(bytes(4) + hdr)                          # IKE length 4 GiB
    yield frame(bytes(4) + hdr[:24] + struct.pack("!I", 32) + struct.pack("!BBH", 0, 0, 0xFFFF))  # payload len > msg
    yield frame(b"\x12\x34\x56\x78")                     # ESP with an SPI and nothing else
    yield frame(b"\x12\x34\x56\x78\x00")                 # ESP cut inside the sequence number
    yield frame(b"\xff\xff")                             # 2 bytes, not a keepalive
    yield frame(b"\xfe")                                 # 1 byte, not a keepalive
    yield frame(b"")                                     # length 2, empty payload
    yield frame(bytes(4))                                # marker only


def hostile(out):
    s = Stream()
    s.send(PREFIX)
    n = 0
    for h in hostile_frames():
        s.send(h + ike_frame(b"\x22" * 8))
        n += 1
    s.write(out)
    print(f"neighbours={n}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "hostile":
        hostile(sys.argv[2])
    else:
        raise SystemExit(__doc__)
