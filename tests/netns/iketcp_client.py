#!/usr/bin/env python3
"""A test client for iketcpd's RFC 9329 listener: good streams and every kind of bad one.

usage: iketcp_client.py CASE HOST PORT [--tls] [--count N] [--hold SECONDS]
Exit 0 when what the client saw matches what the case expects (for example the
daemon closing the connection); the daemon's counters are checked by the caller.
"""
import argparse
import socket
import ssl
import struct
import sys
import time
import resource


def ike_message(exchange=34, length=40):
    # IKE header (RFC 7296 section 3.1): SPIi, SPIr, next payload, version 2.0,
    # exchange type, flags (initiator), message id, length; then filler.
    hdr = struct.pack(">QQBBBBII", 0x1122334455667788, 0, 0, 0x20, exchange, 0x08, 0, length)
    return hdr + bytes(length - len(hdr))


def ike_frame(msg):
    return struct.pack(">HI", len(msg) + 6, 0) + msg


def esp_frame(spi=0x01020304, length=64):
    body = struct.pack(">II", spi, 1) + bytes(length - 8)
    return struct.pack(">H", len(body) + 2) + body


KEEPALIVE = b"\x00\x03\xff"


def connect(host, port, use_tls, timeout=10.0):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.connect((host, port))
    if use_tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # peers authenticate with IKE (RFC 9329 Appendix A)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        s = ctx.wrap_socket(s)
    return s


def closed_by_peer(s, within):
    """True when the daemon closes the connection within `within` seconds."""
    s.settimeout(within)
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return True
    except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def still_open(s, wait=0.5):
    return not closed_by_peer(s, wait)


def case_good(a):
    s = connect(a.host, a.port, a.tls)
    s.sendall(b"IKETCP" + ike_frame(ike_message()) + esp_frame() + KEEPALIVE)
    # many frames in one write
    s.sendall(b"".join(ike_frame(ike_message()) for _ in range(50)))
    # one frame in 1-byte writes
    for b in ike_frame(ike_message(length=60)):
        s.sendall(bytes([b]))
        time.sleep(0.001)
    ok = still_open(s)
    s.close()
    return ok


def case_http(a):
    s = connect(a.host, a.port, False)
    s.sendall(b"GET / HTTP/1.1\r\nHost: gw\r\n\r\n")
    return closed_by_peer(s, 3)


def case_tls_hello(a):
    # A real ClientHello, sent to a daemon whose TLS service is off.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    s = connect(a.host, a.port, False)
    s.sendall(out.read())
    return closed_by_peer(s, 3)


def case_truncated_prefix(a):
    s = connect(a.host, a.port, a.tls)
    s.sendall(b"IKE")
    start = time.time()
    closed = closed_by_peer(s, 9)
    took = time.time() - start
    print(f"truncated prefix closed after {took:.1f}s")
    return closed and 4.0 <= took <= 8.0


def case_silent(a):
    s = connect(a.host, a.port, a.tls)
    return closed_by_peer(s, 9)


def case_length(a, value, expect_close):
    s = connect(a.host, a.port, a.tls)
    s.sendall(b"IKETCP" + struct.pack(">H", value) + bytes(max(0, value - 2)))
    if expect_close:
        return closed_by_peer(s, 3)
    s.sendall(ike_frame(ike_message()))  # the stream goes on
    ok = still_open(s)
    s.close()
    return ok


def case_partial(a):
    s = connect(a.host, a.port, a.tls)
    s.sendall(b"IKETCP" + b"\xff\xff" + bytes(1000))  # a 65535-byte frame, cut short
    time.sleep(0.3)
    s.close()
    return True


def case_short_ike(a):
    s = connect(a.host, a.port, a.tls)
    s.sendall(b"IKETCP" + struct.pack(">HI", 16, 0) + bytes(10))
    ok = still_open(s)
    s.close()
    return ok


def open_idle(a, count):
    """`count` connections that send only the prefix (raising our descriptor limit for them)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = count + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    socks = []
    for _ in range(count):
        s = connect(a.host, a.port, False)
        s.sendall(b"IKETCP")
        socks.append(s)
    return socks


def case_many(a):
    """Hold `count` idle connections; report how many the daemon kept open."""
    socks = open_idle(a, a.count)
    time.sleep(a.hold)
    alive = sum(1 for s in socks if still_open(s, 0.001))
    print(f"{alive} of {a.count} connections open after {a.hold}s")
    for s in socks:
        s.close()
    return alive == a.count


def case_over_limit(a):
    """`count` connections fill the limit; one more is refused (closed at once)."""
    socks = open_idle(a, a.count)
    time.sleep(1.0)
    extra = connect(a.host, a.port, False)
    refused = closed_by_peer(extra, 3)
    for s in socks:
        s.close()
    return refused


CASES = {
    "good": case_good,
    "http": case_http,
    "tls-hello": case_tls_hello,
    "truncated-prefix": case_truncated_prefix,
    "silent": case_silent,
    "len0": lambda a: case_length(a, 0, True),
    "len1": lambda a: case_length(a, 1, True),
    "len2": lambda a: case_length(a, 2, False),
    "len5": lambda a: case_length(a, 5, False),
    "len65535-partial": case_partial,
    "short-ike": case_short_ike,
    "many": case_many,
    "over-limit": case_over_limit,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case", choices=sorted(CASES))
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--tls", action="store_true")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--hold", type=float, default=1.0)
    a = p.parse_args()
    ok = CASES[a.case](a)
    print(f"{a.case} {a.host}:{a.port}{' tls' if a.tls else ''}: {'ok' if ok else 'UNEXPECTED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
