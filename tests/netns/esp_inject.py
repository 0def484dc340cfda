#!/usr/bin/env python3
"""Hostile ESP into a gateway's RFC 9329 listener, made from ESP that really crossed the carrier.

usage: esp_inject.py PCAP SERVER PORT SPI CASE
  PCAP    a capture (tcpdump -w, Ethernet) of the client -> SERVER:PORT direction, taken
          from before the stream's SYN, so the RFC 9329 framing can be followed from the
          IKETCP prefix on.
  SPI     the SPI (hex) the server receives on: the newest captured ESP frame for it is
          the "real packet" every case starts from.
  CASE    unknown_spi | replay | flip_ct | flip_icv | flip_seq | trunc7 | trunc20
          | ike_replay: the newest IKE request captured (SPI is not used), sent again
A new stream (IKETCP prefix, RFC 9329 section 3) carries the one frame; exit 0 when the
server keeps the stream open after it (a bad ESP packet is a counted drop, not a reason to
close). The server's counters are checked by the caller. For ike_replay the IKE frames the
server sends back within a second are counted and printed ("ike frames back: N").
"""
import socket
import struct
import sys
import time

ETH_LEN = 14
PREFIX = b"IKETCP"


def read_pcap(path):
    """Yields (ts, frame) from a classic pcap file, either byte order, usec or nsec stamps."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError("pcap: no global header")
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        raise ValueError("pcap: bad magic (pcapng is not read here)")
    linktype = struct.unpack(end + "I", data[20:24])[0]
    if linktype != 1:
        raise ValueError("pcap: link type %d, want Ethernet" % linktype)
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(end + "IIII", data[off:off + 16])
        off += 16
        if off + incl > len(data):
            break  # cut short by the capture being stopped
        yield data[off:off + incl]
        off += incl


def tcp_segments(path, server, port):
    """(client address, client port) -> list of (flags, seq, payload) towards server:port (IPv4)."""
    want = socket.inet_aton(server)
    flows = {}
    for fr in read_pcap(path):
        if len(fr) < ETH_LEN + 20 or fr[12:14] != b"\x08\x00":
            continue
        ip = fr[ETH_LEN:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        if ip[9] != 6 or ip[16:20] != want or ihl < 20 or total > len(ip):
            continue
        tcp = ip[ihl:total]
        if len(tcp) < 20:
            continue
        sport, dport, seq = struct.unpack(">HHI", tcp[:8])
        doff = (tcp[12] >> 4) * 4
        if dport != port or doff < 20 or doff > len(tcp):
            continue
        flows.setdefault((socket.inet_ntoa(ip[12:16]), sport), []).append((tcp[13], seq, tcp[doff:]))
    return flows


def reassemble(segs):
    """The client's byte stream from its SYN on; retransmissions and overlaps keep the first copy."""
    syn = [s for f, s, _ in segs if f & 0x02]
    if not syn:
        return b""
    isn = syn[0]
    buf = bytearray()
    for _, seq, payload in sorted(segs, key=lambda x: (x[1] - isn - 1) & 0xFFFFFFFF):
        at = (seq - isn - 1) & 0xFFFFFFFF
        if not payload:
            continue
        if at > len(buf):
            break  # a hole: nothing after it can be framed
        buf += payload[len(buf) - at:]
    return bytes(buf)


def frames(stream, prefixed=True):
    """Frame bodies (without the length field) of an RFC 9329 stream, in order."""
    if prefixed and not stream.startswith(PREFIX):
        return []
    out, off = [], len(PREFIX) if prefixed else 0
    while off + 2 <= len(stream):
        flen = struct.unpack(">H", stream[off:off + 2])[0]
        if flen < 3 or off + flen > len(stream):
            break
        out.append(stream[off + 2:off + flen])
        off += flen
    return out


def is_ike(body):
    return len(body) >= 4 and body[:4] == b"\x00\x00\x00\x00"


def esp_frames(stream):
    """ESP packets of an RFC 9329 stream, in order."""
    return [b for b in frames(stream) if len(b) >= 4 and not is_ike(b)]


def newest_ike_request(pcap, server, port):
    """The captured IKE request (non-ESP marker included) with the highest message ID."""
    best = None
    for segs in tcp_segments(pcap, server, port).values():
        for body in frames(reassemble(segs)):
            ike = body[4:]
            if not is_ike(body) or len(ike) < 28 or ike[19] & 0x20:  # too short, or a response
                continue
            msg_id = struct.unpack(">I", ike[20:24])[0]
            if best is None or msg_id >= best[0]:
                best = (msg_id, body)
    if best is None:
        raise SystemExit("esp_inject: no IKE request in %s" % pcap)
    return best[1]


def ike_frames_back(s, secs):
    """IKE frames the server sends on s within secs; None when it closes the stream."""
    data, end = b"", time.time() + secs
    while time.time() < end:
        s.settimeout(max(0.01, end - time.time()))
        try:
            got = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            return None
        if not got:
            return None
        data += got
    return sum(1 for b in frames(data, prefixed=False) if is_ike(b))


def replay_ike(pcap, server, port):
    body = newest_ike_request(pcap, server, port)
    ike = body[4:]
    print("ike_replay: exchange %d, message ID %d, %d bytes" %
          (ike[18], struct.unpack(">I", ike[20:24])[0], len(body)))
    s = socket.create_connection((server, port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(PREFIX + struct.pack(">H", len(body) + 2) + body)
    n = ike_frames_back(s, 1.0)
    s.close()
    if n is None:
        print("esp_inject: ike_replay: the server closed the stream", file=sys.stderr)
        return 1
    print("ike frames back: %d" % n)
    return 0


def newest_real_esp(pcap, server, port, spi):
    best = None
    for segs in tcp_segments(pcap, server, port).values():
        for body in esp_frames(reassemble(segs)):
            if struct.unpack(">I", body[:4])[0] == spi:
                seq = struct.unpack(">I", body[4:8])[0]
                if best is None or seq > best[0]:
                    best = (seq, body)
    if best is None:
        raise SystemExit("esp_inject: no ESP frame for SPI %08x in %s" % (spi, pcap))
    return best[1]


def flip(b, i, mask=0x01):
    b = bytearray(b)
    b[i] ^= mask
    return bytes(b)


def hostile(case, real, spi):
    if case == "unknown_spi":
        return struct.pack(">I", spi ^ 0x5A5A5A5A) + real[4:]
    if case == "replay":
        return real
    if case == "flip_ct":  # a byte in the middle of the ciphertext (after SPI, seq and IV)
        return flip(real, 16 + (len(real) - 16 - 16) // 2)
    if case == "flip_icv":  # the last byte: part of the 16-byte ICV
        return flip(real, len(real) - 1)
    if case == "flip_seq":  # the top byte of the sequence number: a number never seen, 2^30 ahead
        return flip(real, 4, 0x40)
    if case == "trunc7":
        return real[:7]
    if case == "trunc20":
        return real[:20]
    raise SystemExit("esp_inject: unknown case " + case)


def main():
    if len(sys.argv) != 6:
        raise SystemExit(__doc__)
    pcap, server, port, spi, case = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4], 16), sys.argv[5]
    if case == "ike_replay":
        return replay_ike(pcap, server, port)
    real = newest_real_esp(pcap, server, port, spi)
    esp = hostile(case, real, spi)
    print("%s: real ESP seq %d, %d bytes -> sending %d bytes (seq field %s)" %
          (case, struct.unpack(">I", real[4:8])[0], len(real), len(esp),
           struct.unpack(">I", esp[4:8])[0] if len(esp) >= 8 else "cut"))
    s = socket.create_connection((server, port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(PREFIX + struct.pack(">H", len(esp) + 2) + esp)
    # Still open after the bad frame: the drop is per packet, the stream is not punished.
    s.settimeout(0.5)
    try:
        closed = s.recv(4096) == b""
    except socket.timeout:
        closed = False
    except ConnectionResetError:
        closed = True
    s.close()
    if closed:
        print("esp_inject: %s: the server closed the stream" % case, file=sys.stderr)
        return 1
    time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
