#!/usr/bin/env python3
"""A small IKEv2 (RFC 7296) message crafter that talks RFC 9329 to iketcpd: good and bad IKE_SA_INIT
requests, IKE_AUTH for SPIs nobody knows, and a flood of IKE_SA_INIT from many source addresses.
Standard library only: no crypto is needed, since nothing here gets past IKE_SA_INIT (the KE data is
32 random bytes, a syntactically valid Curve25519 public value).

usage: ike_peer.py CASE HOST PORT [--sources A,B,...] [--conns N] [--per-conn N] [--hold S]
Exit 0 when the answer (or its absence) is what the case expects; counters are the caller's job.
"""
import argparse
import os
import select
import socket
import struct
import sys
import time

# RFC 7296 3.1-3.10 numbers
IKE_SA_INIT, IKE_AUTH = 34, 35
FLAG_I, FLAG_R = 0x08, 0x20
PL_NONE, PL_SA, PL_KE, PL_NONCE, PL_N, PL_SK = 0, 33, 34, 40, 41, 46
PROTO_IKE = 1
XF_ENCR, XF_PRF, XF_INTEG, XF_DH = 1, 2, 3, 4
ENCR_3DES, ENCR_AES_GCM_16 = 3, 20
PRF_HMAC_MD5, PRF_HMAC_SHA2_256 = 1, 5
AUTH_HMAC_MD5_96 = 1
MODP_2048, ECP_256, CURVE_25519 = 14, 19, 31
ATTR_KEY_LENGTH = 0x800E  # AF bit set: TV format
N_UNSUPPORTED_CRITICAL_PAYLOAD, N_INVALID_MAJOR_VERSION, N_INVALID_SYNTAX = 1, 5, 7
N_NO_PROPOSAL_CHOSEN, N_INVALID_KE_PAYLOAD, N_COOKIE = 14, 17, 16390
KE_LEN = {MODP_2048: 256, ECP_256: 64, CURVE_25519: 32}


# ---- encoding -------------------------------------------------------------------------

def transform(xtype, xid, key_bits=None, last=False):
    """3.3.2: | 0 (last) or 3 | RESERVED | Length | Type | RESERVED | Transform ID | attributes"""
    attrs = struct.pack(">HH", ATTR_KEY_LENGTH, key_bits) if key_bits else b""
    return struct.pack(">BBHBBH", 0 if last else 3, 0, 8 + len(attrs), xtype, 0, xid) + attrs


def proposal(num, xforms, last=True):
    """3.3.1: | 0 (last) or 2 | RESERVED | Length | Num | Protocol | SPI Size | #Transforms | (no SPI)"""
    body = b"".join(transform(*x, last=(i == len(xforms) - 1)) for i, x in enumerate(xforms))
    return struct.pack(">BBHBBBB", 0 if last else 2, 0, 8 + len(body), num, PROTO_IKE, 0, len(xforms)) + body


def sa_body(groups=(ECP_256, CURVE_25519), encr=(ENCR_AES_GCM_16, 128), prf=PRF_HMAC_SHA2_256, integ=None):
    xf = [(XF_ENCR, encr[0], encr[1]), (XF_PRF, prf)]
    if integ is not None:
        xf.append((XF_INTEG, integ))
    xf += [(XF_DH, g) for g in groups]
    return proposal(1, xf)


def ke_body(group, data=None):
    if data is None:
        data = os.urandom(KE_LEN.get(group, 32))
    return struct.pack(">HH", group, 0) + data


def notify_body(ntype, data=b""):
    return struct.pack(">BBH", 0, 0, ntype) + data  # protocol 0, SPI size 0


def message(payloads, exchange=IKE_SA_INIT, spi_i=None, spi_r=0, flags=FLAG_I, msg_id=0,
            version=0x20, length_delta=0):
    """payloads: [(type, body) or (type, body, critical)]; the chain and every length are filled in."""
    if spi_i is None:
        spi_i = struct.unpack(">Q", os.urandom(8))[0] | 1
    chain = b""
    for i, p in enumerate(payloads):
        ptype, body = p[0], p[1]
        crit = 0x80 if len(p) > 2 and p[2] else 0
        nxt = payloads[i + 1][0] if i + 1 < len(payloads) else PL_NONE
        chain += struct.pack(">BBH", nxt, crit, 4 + len(body)) + body
    first = payloads[0][0] if payloads else PL_NONE
    length = 28 + len(chain) + length_delta
    hdr = struct.pack(">QQBBBBII", spi_i, spi_r, first, version, exchange, flags, msg_id, length)
    return hdr + chain


def init_request(groups=(ECP_256, CURVE_25519), ke_group=CURVE_25519, sa=None, extra=(), order=None, **kw):
    pls = {"SA": (PL_SA, sa if sa is not None else sa_body(groups)),
           "KE": (PL_KE, ke_body(ke_group)),
           "Ni": (PL_NONCE, os.urandom(32))}
    seq = [pls[n] for n in (order or ("SA", "KE", "Ni"))] + list(extra)
    return message(seq, **kw)


# ---- decoding -------------------------------------------------------------------------

def parse(msg):
    """(header dict, [(type, critical, body)]); raises ValueError on anything malformed."""
    if len(msg) < 28:
        raise ValueError("shorter than an IKE header")
    spi_i, spi_r, nxt, ver, exch, flags, mid, length = struct.unpack(">QQBBBBII", msg[:28])
    if length != len(msg):
        raise ValueError(f"header length {length} != {len(msg)}")
    hdr = dict(spi_i=spi_i, spi_r=spi_r, version=ver, exchange=exch, flags=flags, msg_id=mid)
    pls, off = [], 28
    while nxt != PL_NONE:
        if off + 4 > len(msg):
            raise ValueError("payload header past the end")
        n2, fl, plen = struct.unpack(">BBH", msg[off:off + 4])
        if plen < 4 or off + plen > len(msg):
            raise ValueError("payload length past the end")
        pls.append((nxt, bool(fl & 0x80), msg[off + 4:off + plen]))
        off += plen
        nxt = n2
    if off != len(msg):
        raise ValueError("bytes after the last payload")
    return hdr, pls


def notifies(pls):
    """[(type, data)] of the Notify payloads (3.10)."""
    out = []
    for t, _, b in pls:
        if t == PL_N:
            proto, spi_size, ntype = struct.unpack(">BBH", b[:4])
            out.append((ntype, b[4 + spi_size:]))
    return out


# ---- RFC 9329 stream ------------------------------------------------------------------

def frame(msg):
    return struct.pack(">HI", len(msg) + 6, 0) + msg  # Length (counts itself), non-ESP marker


def connect(host, port, src=None, timeout=5.0):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if src:
        s.bind((src, 0))
    s.settimeout(timeout)
    s.connect((host, port))
    s.sendall(b"IKETCP")
    return s


class Reader:
    """Whole RFC 9329 frames from a socket; IKE messages only (the marker stripped)."""

    def __init__(self, s):
        self.s, self.buf, self.closed = s, b"", False

    def feed(self):
        try:
            d = self.s.recv(65536)
        except (BlockingIOError, socket.timeout):
            return
        except ConnectionError:
            d = b""
        if not d:
            self.closed = True
        self.buf += d

    def pop(self):
        if len(self.buf) < 2:
            return None
        n = struct.unpack(">H", self.buf[:2])[0]
        if n < 2:
            raise ValueError(f"bad frame length {n}")
        if len(self.buf) < n:
            return None
        f, self.buf = self.buf[2:n], self.buf[n:]
        if len(f) >= 4 and f[:4] == b"\0\0\0\0":
            return f[4:]
        return self.pop()  # ESP or keepalive: not ours

    def next(self, timeout):
        end = time.time() + timeout
        while True:
            m = self.pop()
            if m is not None:
                return m
            left = end - time.time()
            if left <= 0 or self.closed:
                return None
            self.s.settimeout(left)
            self.feed()


def exchange(a, msgs, want=0, wait=0.8):
    """Send msgs on one stream; collect the IKE answers until none comes for `wait` seconds (a shorter
    wait once the `want` answers we expect are in: anything more would be a surplus answer)."""
    s = connect(a.host, a.port)
    r = Reader(s)
    for m in msgs:
        s.sendall(frame(m))
    out = []
    while True:
        m = r.next(wait if len(out) < want or not want else 0.3)
        if m is None:
            break
        out.append(m)
    # The stream must still be open: bad IKE is dropped, never a reason to close (RFC 9329 is the framing).
    open_ = not r.closed
    s.close()
    return out, open_


def say(*x):
    print(*x, flush=True)


# ---- cases ----------------------------------------------------------------------------

def expect_silence(a, msgs, what):
    answers, open_ = exchange(a, msgs)
    if answers:
        say(f"{what}: unexpected answer {parse(answers[0])}")
        return False
    if not open_:
        say(f"{what}: the daemon closed the stream")
        return False
    return True


def expect_notify(a, msg, ntype, check_data=None, what=""):
    answers, open_ = exchange(a, [msg], want=1)
    if len(answers) != 1:
        say(f"{what}: {len(answers)} answers, expected 1")
        return False
    hdr, pls = parse(answers[0])
    req = parse(msg)[0]
    ok = (hdr["exchange"] == IKE_SA_INIT and hdr["flags"] & FLAG_R and not hdr["flags"] & FLAG_I and
          hdr["spi_i"] == req["spi_i"] and hdr["spi_r"] == 0 and hdr["msg_id"] == 0 and open_)
    ns = notifies(pls)
    say(f"{what}: answer flags {hdr['flags']:#x} spi_r {hdr['spi_r']:#x} notifies {[(t, d.hex()) for t, d in ns]}")
    if not ok or len(ns) != 1 or ns[0][0] != ntype or len(pls) != 1:
        return False
    return check_data(ns[0][1]) if check_data else True


def expect_sa(a, msg, what):
    """A full IKE_SA_INIT answer: SA, KE (group 31, 32 bytes), Nr, fresh SPIr."""
    answers, open_ = exchange(a, [msg], want=1)
    if len(answers) != 1 or not open_:
        say(f"{what}: {len(answers)} answers, open {open_}")
        return False
    hdr, pls = parse(answers[0])
    types = [t for t, _, _ in pls]
    ke = [b for t, _, b in pls if t == PL_KE]
    say(f"{what}: answer spi_r {hdr['spi_r']:#x} payloads {types}")
    return (hdr["flags"] == FLAG_R and hdr["spi_r"] != 0 and types.count(PL_SA) == 1 and len(ke) == 1 and
            struct.unpack(">H", ke[0][:2])[0] == CURVE_25519 and len(ke[0]) == 4 + 32 and PL_NONCE in types)


def case_short(a):
    # 20 bytes: less than the 28-byte IKE header (counted by the transport, tcp.ike_too_short)
    return expect_silence(a, [os.urandom(20)], "short")


def case_truncated(a):
    # a good request cut after 60 bytes; the header still claims the whole length
    return expect_silence(a, [init_request()[:60]], "truncated")


def case_hdr_len_long(a):
    return expect_silence(a, [init_request(length_delta=+16)], "header length > frame")


def case_hdr_len_short(a):
    return expect_silence(a, [init_request(length_delta=-8)], "header length < frame")


def case_major(a):
    # 2.5: a higher major version is dropped; an INVALID_MAJOR_VERSION notify is a SHOULD
    answers, open_ = exchange(a, [init_request(version=0x30)])
    if not open_:
        return False
    if not answers:
        say("major version 3: dropped without an answer")
        return True
    hdr, pls = parse(answers[0])
    ns = notifies(pls)
    say(f"major version 3: answered {ns}")
    return hdr["version"] >> 4 == 2 and ns and ns[0][0] == N_INVALID_MAJOR_VERSION


def case_pl_past_end(a):
    m = bytearray(init_request())
    m[28 + 2:28 + 4] = struct.pack(">H", len(m))  # the SA payload claims more than the message holds
    return expect_silence(a, [bytes(m)], "payload length past the end")


def case_pl_len_below_4(a):
    m = bytearray(init_request())
    m[28 + 2:28 + 4] = struct.pack(">H", 2)
    return expect_silence(a, [bytes(m)], "payload length below 4")


def case_critical(a):
    # 3.2: an unknown payload with the critical bit: UNSUPPORTED_CRITICAL_PAYLOAD naming its type
    m = init_request(extra=[(200, b"\xaa" * 8, True)])
    return expect_notify(a, m, N_UNSUPPORTED_CRITICAL_PAYLOAD, lambda d: d == bytes([200]),
                         "critical payload 200")


def case_noncritical(a):
    # the same payload without the critical bit is skipped: a normal answer
    return expect_sa(a, init_request(extra=[(200, b"\xaa" * 8, False)]), "non-critical payload 200")


def case_dup_sa(a):
    m = message([(PL_SA, sa_body()), (PL_SA, sa_body()), (PL_KE, ke_body(CURVE_25519)),
                 (PL_NONCE, os.urandom(32))])
    return expect_silence(a, [m], "two SA payloads")


def case_no_ke(a):
    m = message([(PL_SA, sa_body()), (PL_NONCE, os.urandom(32))])
    return expect_silence(a, [m], "no KE payload")


def case_cookie_late(a):
    # 2.6: N(COOKIE) must be the first payload; here it comes last
    return expect_silence(a, [init_request(extra=[(PL_N, notify_body(N_COOKIE, os.urandom(16)))])],
                          "N(COOKIE) not first")


def case_reordered(a):
    # RFC 7296 fixes no order among SA, KE and Ni: KE Ni SA is answered normally
    return expect_sa(a, init_request(order=("KE", "Ni", "SA")), "payloads KE Ni SA")


def case_good(a):
    return expect_sa(a, init_request(), "good IKE_SA_INIT")


def case_no_proposal(a):
    sa = sa_body(encr=(ENCR_3DES, None), prf=PRF_HMAC_MD5, integ=AUTH_HMAC_MD5_96)
    return expect_notify(a, init_request(sa=sa), N_NO_PROPOSAL_CHOSEN, None, "3DES/MD5 only")


def case_invalid_ke(a):
    # we offer 14 and 31 but send KE for 14 (supported by the engine, not configured): it asks for 31
    m = init_request(groups=(MODP_2048, CURVE_25519), ke_group=MODP_2048)
    ok1 = expect_notify(a, m, N_INVALID_KE_PAYLOAD, lambda d: d == struct.pack(">H", CURVE_25519),
                        "KE 14, offers 14 31")
    # offering 19 and 31 with a KE for 14: its first configured group, 19
    m = init_request(groups=(ECP_256, CURVE_25519), ke_group=MODP_2048)
    ok2 = expect_notify(a, m, N_INVALID_KE_PAYLOAD, lambda d: d == struct.pack(">H", ECP_256),
                        "KE 14, offers 19 31")
    return ok1 and ok2


def case_retransmit(a):
    m = init_request()
    answers, open_ = exchange(a, [m, m], want=2)
    if len(answers) != 2 or not open_:
        say(f"retransmit: {len(answers)} answers")
        return False
    h0, _ = parse(answers[0])
    say(f"retransmit: 2 answers, {len(answers[0])} bytes, spi_r {h0['spi_r']:#x}, identical {answers[0] == answers[1]}")
    return answers[0] == answers[1] and h0["spi_r"] != 0


def case_unknown_spi(a):
    spi_i, spi_r = struct.unpack(">QQ", os.urandom(16))
    sk = os.urandom(8 + 64 + 16)  # IV, ciphertext, ICV: nobody can open it
    m = message([(PL_SK, sk)], exchange=IKE_AUTH, spi_i=spi_i | 1, spi_r=spi_r | 1, msg_id=1)
    # the SK payload's Next Payload (IDi) is inside the encryption: patch it in
    m = m[:28] + bytes([35]) + m[29:]
    return expect_silence(a, [m], "IKE_AUTH for an unknown SPI")


def case_flood(a):
    """conns streams over the given source addresses, per_conn IKE_SA_INIT requests each. Every stream must
    be dealt with in time: each request answered with an SA, or, once the responder is under load, with
    N(COOKIE) and the stream closed (RFC 7296 2.6, RFC 9329 6.3). Streams are held `hold` s afterwards."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < a.conns + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (a.conns + 64, max(hard, a.conns + 64)))
    srcs = a.sources.split(",") if a.sources else [None]
    start = time.time()
    readers, sent = [], 0
    for i in range(a.conns):
        s = connect(a.host, a.port, srcs[i % len(srcs)])
        s.sendall(b"".join(frame(init_request()) for _ in range(a.per_conn)))
        sent += a.per_conn
        s.setblocking(False)
        readers.append(Reader(s))
    say(f"flood: {sent} requests sent on {a.conns} streams from {len(srcs)} addresses "
        f"in {time.time() - start:.2f}s")
    answered = cookies = other = 0
    left = {r.s.fileno(): r for r in readers}
    want = {r.s.fileno(): a.per_conn for r in readers}
    while left and time.time() - start < a.limit:
        rd, _, _ = select.select(list(left), [], [], 0.5)
        for fd in rd:
            r = left[fd]
            r.feed()
            while (m := r.pop()) is not None:
                hdr, pls = parse(m)
                if hdr["spi_r"] and any(t == PL_SA for t, _, _ in pls):
                    answered += 1
                elif not hdr["spi_r"] and [t for t, _ in notifies(pls)] == [N_COOKIE]:
                    cookies += 1
                else:
                    other += 1
                want[fd] -= 1
            if want[fd] <= 0 or r.closed:
                del left[fd]
    took = time.time() - start
    say(f"flood: {answered} of {sent} answered with an SA, {cookies} with a COOKIE, {other} other answers, "
        f"in {took:.2f}s; {len(left)} streams left waiting")
    time.sleep(a.hold)
    for r in readers:
        r.s.close()
    return not left and other == 0 and answered + cookies > 0 and took < a.limit


CASES = {
    "short": case_short, "truncated": case_truncated, "hdr-len-long": case_hdr_len_long,
    "hdr-len-short": case_hdr_len_short, "major": case_major, "pl-past-end": case_pl_past_end,
    "pl-len-below-4": case_pl_len_below_4, "critical": case_critical, "noncritical": case_noncritical,
    "dup-sa": case_dup_sa, "no-ke": case_no_ke, "cookie-late": case_cookie_late, "reordered": case_reordered,
    "good": case_good, "no-proposal": case_no_proposal, "invalid-ke": case_invalid_ke,
    "retransmit": case_retransmit, "unknown-spi": case_unknown_spi, "flood": case_flood,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case", choices=sorted(CASES))
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--sources", default="")
    p.add_argument("--conns", type=int, default=250)
    p.add_argument("--per-conn", type=int, default=8)
    p.add_argument("--hold", type=float, default=0.0)
    p.add_argument("--limit", type=float, default=10.0)
    a = p.parse_args()
    ok = CASES[a.case](a)
    say(f"{a.case}: {'ok' if ok else 'UNEXPECTED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
