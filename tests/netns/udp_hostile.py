#!/usr/bin/env python3
"""Hostile datagrams for iketcpd's UDP ports (RFC 7296 2.23, RFC 3948): garbage, bad IKE, stray ESP
and an IKE_SA_INIT flood. The IKE messages and the checks of each answer are ike_peer.py's, run over
UDP: on ike-natt-port every IKE message carries the four-byte non-ESP marker.

usage: udp_hostile.py garbage HOST
       udp_hostile.py ike HOST PORT CASE          CASE: any of ike_peer.py's but flood, or major-strict, jumbo
       udp_hostile.py esp HOST CASE --iface IF [--spi HEX] [--src ADDR]
       udp_hostile.py sniff-ike HOST --out FILE [--iface IF] [--exchange N]
       udp_hostile.py ike-replay HOST FILE [--src ADDR]
       udp_hostile.py flood HOST --sources A,B,... --socks N --per-sock M --secs S [--answer-cookies] [--group N]
Every case expects silence (or, for the IKE cases, the answer ike_peer.py expects): exit 0 when that
is what came back. The gateway's counters are the caller's job.
"""
import argparse
import os
import random
import selectors
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ike_peer  # noqa: E402  (message builders, parser and per-case checks)
from ike_peer import say  # noqa: E402

IKE_PORT, NATT_PORT = 500, 4500
MARKER = b"\0\0\0\0"   # RFC 3948 2.2: non-ESP marker
QUIET = 0.15           # seconds of silence that count as "no answer" on a veth


def udp_socket(src=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src or "0.0.0.0", 0))  # a fresh source port: a fresh path at the gateway
    return s


def recv_all(s, wait, want=0):
    """Datagrams until `wait` s pass without one (0.1 s once `want` have come)."""
    out = []
    while True:
        s.settimeout(wait if not want or len(out) < want else 0.1)
        try:
            out.append(s.recv(65536))
        except socket.timeout:
            return out


def ike_out(port, msg):
    return MARKER + msg if port == NATT_PORT else msg


def ike_in(port, dgram):
    """The IKE message in an answer, or None (ESP or a keepalive on 4500)."""
    if port != NATT_PORT:
        return dgram
    return dgram[4:] if dgram[:4] == MARKER else None


def udp_exchange(a, msgs, want=0, wait=QUIET):
    """ike_peer.exchange over UDP: one socket (one path) per exchange; a datagram socket is always 'open'."""
    s = udp_socket()
    for m in msgs:
        s.sendto(ike_out(a.port, m), (a.host, a.port))
    got = [ike_in(a.port, d) for d in recv_all(s, max(wait, QUIET), want)]
    s.close()
    return [m for m in got if m is not None], True


ike_peer.exchange = udp_exchange  # every ike_peer case now speaks UDP


# ---- garbage: too short to be anything (udp.malformed), and one keepalive ----------------------

def garbage(a):
    """12 datagrams that must be counted as malformed, 1 NAT keepalive; none answered."""
    r = os.urandom
    to500 = [b"", r(1), r(2), r(3), r(27)]                          # < an IKE header
    to4500 = [b"", b"\x00", r(2), r(3), MARKER, MARKER + r(1), MARKER + r(27)]  # < a marker + header
    s = udp_socket()
    for d in to500:
        s.sendto(d, (a.host, IKE_PORT))
    for d in to4500:
        s.sendto(d, (a.host, NATT_PORT))
    s.sendto(b"\xff", (a.host, NATT_PORT))                          # a keepalive, from anyone
    got = recv_all(s, QUIET * 2)
    say(f"garbage: {len(to500)} datagrams to {IKE_PORT}, {len(to4500)} + 1 keepalive to {NATT_PORT}; "
        f"{len(got)} answers")
    return not got


# ---- IKE cases: ike_peer's, plus two that only make sense here ---------------------------------

def case_major_strict(a):
    # 2.5 / 3.10.1: answered with INVALID_MAJOR_VERSION (ike_peer's case also accepts silence)
    return ike_peer.expect_notify(a, ike_peer.init_request(version=0x30), ike_peer.N_INVALID_MAJOR_VERSION,
                                  None, "major version 3")


def case_jumbo(a):
    # the largest IPv4 datagram: a good request followed by ~64 KB the header does not count
    m = ike_peer.init_request()
    room = 65507 - len(ike_out(a.port, b""))
    return ike_peer.expect_silence(a, [m + os.urandom(room - len(m))], "64 KB datagram, header length short")


IKE_CASES = dict(ike_peer.CASES, **{"major-strict": case_major_strict, "jumbo": case_jumbo})
del IKE_CASES["flood"]


# ---- ESP: stray, replayed and tampered, with and without a path ----------------------------------

def sniff(iface, host, match, timeout=5.0):
    """The UDP payload of the first datagram to host:4500 crossing iface that match() accepts."""
    # ETH_P_ALL: a tap for one protocol sees only what the interface receives, not what it sends
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0003))
    s.bind((iface, 0x0003))
    dst = socket.inet_aton(host)
    end = time.time() + timeout
    try:
        while time.time() < end:
            s.settimeout(max(end - time.time(), 0.01))
            try:
                p, where = s.recvfrom(65536)
            except socket.timeout:
                break
            if where[1] != 0x0800:
                continue
            ihl = (p[0] & 0x0F) * 4
            frag = struct.unpack(">H", p[6:8])[0] & 0x3FFF
            if len(p) < ihl + 8 + 16 or p[9] != 17 or p[16:20] != dst or frag:
                continue
            dport = struct.unpack(">H", p[ihl + 2:ihl + 4])[0]
            if dport == NATT_PORT and match(p[ihl + 8:]):
                return p[ihl + 8:]
    finally:
        s.close()
    return None


def sniff_esp(iface, host, spi):
    return sniff(iface, host, lambda b: b[:4] != MARKER and (spi is None or b[:4] == spi))


def open_path(a, s):
    """An IKE message from this socket: the gateway now has a path for it (ike.unknown_spi +1)."""
    spi_i, spi_r = struct.unpack(">QQ", os.urandom(16))
    # an INFORMATIONAL (37) with an SK payload only a real SA could open
    m = ike_peer.message([(ike_peer.PL_SK, os.urandom(8 + 64 + 16))], exchange=37, spi_i=spi_i | 1,
                         spi_r=spi_r | 1, msg_id=7)
    s.sendto(MARKER + m, (a.host, NATT_PORT))


def esp(a):
    spi = bytes.fromhex(a.spi) if a.spi else None
    real = None
    if a.case.endswith("replay") or a.case in ("path-tamper", "path-short"):
        real = sniff_esp(a.iface, a.host, spi)
        if real is None:
            say(f"esp {a.case}: no ESP to {a.host}:{NATT_PORT} seen on {a.iface}")
            return False
        say(f"esp {a.case}: captured {len(real)} bytes, SPI {real[:4].hex()} seq {struct.unpack('>I', real[4:8])[0]}")
    rnd_spi = struct.pack(">I", random.randint(0x100, 0xFFFFFFFF)) + os.urandom(4 + 8 + 48 + 16)
    pkts = {
        "random-spi": rnd_spi,                            # SPI nobody has, from an address nobody knows
        "short": os.urandom(3) + b"\x01" + b"\x02",       # 5 bytes, not a marker: "ESP" too short
        "ike-no-marker": ike_peer.init_request(),         # IKE on 4500 without the marker is ESP
        "replay": real,                                   # a real packet, from another address
        "path-random-spi": rnd_spi,
        "path-replay": real,                              # seen already: the replay window
        "path-short": real[:8] if real else None,         # the real SPI and a seq, nothing after them
    }
    if a.case == "path-tamper":
        # seq ahead of the window (so the ICV is what decides), one ciphertext bit flipped
        seq = (struct.unpack(">I", real[4:8])[0] + 100000) & 0xFFFFFFFF
        t = bytearray(real[:4] + struct.pack(">I", seq) + real[8:])
        t[len(t) // 2] ^= 0x01
        pkts["path-tamper"] = bytes(t)
    s = udp_socket(a.src)
    if a.case.startswith("path-"):
        open_path(a, s)
        time.sleep(0.05)
    s.sendto(pkts[a.case], (a.host, NATT_PORT))
    got = recv_all(s, QUIET)
    s.close()
    say(f"esp {a.case}: {len(pkts[a.case])} bytes sent from {a.src or 'any'}, {len(got)} answers")
    return not got


# ---- a real IKE request, replayed from another address ------------------------------------------

def sniff_ike(a):
    """Writes the first IKE request (I flag, exchange a.exchange) to host:4500 seen on iface to a.out."""
    def match(b):
        return b[:4] == MARKER and len(b) >= 32 and b[4 + 18] == a.exchange and b[4 + 19] & 0x28 == 0x08
    print("sniffing", flush=True)
    m = sniff(a.iface, a.host, match, timeout=a.timeout)
    if m is None:
        say(f"sniff-ike: no request of exchange {a.exchange} to {a.host}:{NATT_PORT} on {a.iface}")
        return False
    with open(a.out, "wb") as f:
        f.write(m[4:])
    say(f"sniff-ike: {len(m) - 4} bytes, exchange {a.exchange}, message ID {struct.unpack('>I', m[24:28])[0]}")
    return True


def ike_replay(a):
    """The captured request again, byte for byte, from a fresh port on a.src: an authentic retransmission
    (2.1) that the gateway may answer from its cache, but that must not move the SA (2.23)."""
    with open(a.file, "rb") as f:
        m = f.read()
    s = udp_socket(a.src)
    s.sendto(MARKER + m, (a.host, NATT_PORT))
    ike = esp_ = 0
    end = time.time() + 1.0  # a fixed time: if the SA followed us, its ESP keeps coming
    while time.time() < end:
        s.settimeout(max(end - time.time(), 0.01))
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        if d[:4] == MARKER:
            ike += 1
        elif len(d) > 1:
            esp_ += 1
    s.close()
    say(f"ike-replay: {len(m)} bytes from {a.src or 'any'}; in 1 s {ike} IKE answers and {esp_} ESP packets came back")
    return True


# ---- flood: IKE_SA_INIT with made-up SPIs from many ports and addresses ---------------------------

def with_cookie(req, cookie):
    """2.6: the same request with N(COOKIE) as its first payload."""
    n = ike_peer.notify_body(ike_peer.N_COOKIE, cookie)
    hdr = bytearray(req[:28])
    pl = struct.pack(">BBH", hdr[16], 0, 4 + len(n)) + n
    hdr[16] = ike_peer.PL_N
    hdr[24:28] = struct.pack(">I", len(req) + len(pl))
    return bytes(hdr) + pl + req[28:]


def flood(a):
    """socks sockets over the sources (even ones to 500, odd ones to 4500), per_sock requests each, spread
    over secs; answers: an SA (a half-open SA was kept), N(COOKIE) (2.6) or anything else. With
    --answer-cookies the attacker proves its addresses: each request asked for a cookie goes again with
    it, and must then be answered with an SA."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < a.socks + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (a.socks + 64, max(hard, a.socks + 64)))
    srcs = a.sources.split(",")
    sel = selectors.DefaultSelector()
    counts = {"sa": 0, "cookie": 0, "retried": 0, "other": 0}
    reqs = {}  # SPIi -> the request, for its retry with the cookie

    def answer(s, port, m):
        try:
            hdr, pls = ike_peer.parse(m)
        except ValueError:
            return "other"
        if hdr["spi_r"] and any(t == ike_peer.PL_SA for t, _, _ in pls):
            return "sa"
        ns = ike_peer.notifies(pls)
        if hdr["spi_r"] or [t for t, _ in ns] != [ike_peer.N_COOKIE]:
            return "other"
        req = reqs.pop(hdr["spi_i"], None)  # a second COOKIE for the same SPI is "other"
        if not a.answer_cookies:
            return "cookie"
        if req is None:
            return "other"
        try:
            s.sendto(ike_out(port, with_cookie(req, ns[0][1])), (a.host, port))
            counts["retried"] += 1
        except BlockingIOError:
            pass
        return "cookie"

    def drain(timeout):
        for key, _ in sel.select(timeout):
            s, port = key.fileobj, key.data
            while True:
                try:
                    d = s.recv(65536)
                except BlockingIOError:
                    break
                m = ike_in(port, d)
                counts[answer(s, port, m) if m is not None else "other"] += 1

    start = time.time()
    sent = 0
    for i in range(a.socks):
        port = IKE_PORT if i % 2 == 0 else NATT_PORT
        s = udp_socket(srcs[i % len(srcs)])
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, port)
        for _ in range(a.per_sock):
            m = ike_peer.init_request(groups=(a.group,), ke_group=a.group) if a.group else ike_peer.init_request()
            reqs[struct.unpack(">Q", m[:8])[0]] = m
            try:
                s.sendto(ike_out(port, m), (a.host, port))
                sent += 1
            except BlockingIOError:
                pass
        # pace: socket i is due at i / socks of the way through
        due = start + a.secs * (i + 1) / a.socks
        while time.time() < due:
            drain(max(due - time.time(), 0))
    took = time.time() - start
    say(f"flood: {sent} IKE_SA_INIT sent from {a.socks} ports on {len(srcs)} addresses in {took:.2f}s")
    end = time.time() + 1.0
    while time.time() < end:
        drain(end - time.time())
    say(f"flood: answered {counts['sa']} with an SA, {counts['cookie']} with a COOKIE "
        f"({counts['retried']} sent again with it), {counts['other']} other")
    print(f"FLOOD sent={sent} sa={counts['sa']} cookie={counts['cookie']} retried={counts['retried']} "
          f"other={counts['other']}", flush=True)
    return counts["other"] == 0 and counts["cookie"] > 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("garbage")
    g.add_argument("host")
    i = sub.add_parser("ike")
    i.add_argument("host")
    i.add_argument("port", type=int, choices=(IKE_PORT, NATT_PORT))
    i.add_argument("case", choices=sorted(IKE_CASES))
    e = sub.add_parser("esp")
    e.add_argument("host")
    e.add_argument("case", choices=("random-spi", "short", "ike-no-marker", "replay", "path-random-spi",
                                    "path-replay", "path-tamper", "path-short"))
    e.add_argument("--iface", default="c1")
    e.add_argument("--spi", default="")
    e.add_argument("--src", default=None)
    k = sub.add_parser("sniff-ike")
    k.add_argument("host")
    k.add_argument("--iface", default="c1")
    k.add_argument("--exchange", type=int, default=35)
    k.add_argument("--out", required=True)
    k.add_argument("--timeout", type=float, default=30.0)
    r = sub.add_parser("ike-replay")
    r.add_argument("host")
    r.add_argument("file")
    r.add_argument("--src", default=None)
    f = sub.add_parser("flood")
    f.add_argument("host")
    f.add_argument("--sources", required=True)
    f.add_argument("--socks", type=int, default=512)
    f.add_argument("--per-sock", type=int, default=6)
    f.add_argument("--secs", type=float, default=3.0)
    f.add_argument("--answer-cookies", action="store_true")
    f.add_argument("--group", type=int, default=0, help="offer and send a KE of only this DH group")
    a = p.parse_args()
    if a.cmd == "garbage":
        ok = garbage(a)
    elif a.cmd == "ike":
        ok = IKE_CASES[a.case](a)
    elif a.cmd == "esp":
        ok = esp(a)
    elif a.cmd == "sniff-ike":
        ok = sniff_ike(a)
    elif a.cmd == "ike-replay":
        ok = ike_replay(a)
    else:
        ok = flood(a)
    say(f"{a.cmd} {getattr(a, 'case', '')}: {'ok' if ok else 'UNEXPECTED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
