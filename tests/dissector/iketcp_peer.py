#!/usr/bin/env python3
"""RFC 9329 stream peers for tests/netns/test_dissector.sh: the bytes the Wireshark dissector must decode.

  iketcp_peer.py client HOST PORT SCRIPT   SCRIPT: full (every frame kind and segmentation), prefix-only
                                           (prefix + one IKE frame in one write), split-prefix (prefix in
                                           two segments), malformed (short frame, length 1, lost framing),
                                           plain (no prefix)
  iketcp_peer.py server PORT [--answer]    accept connections, read and discard; with --answer send one
                                           IKE_SA_INIT response frame (no prefix: responder direction)

The client prints what it sent as key=value lines; the test derives its expected counts from them.
"""
import os
import socket
import struct
import sys
import threading
import time

PREFIX = b"IKETCP"
IKE_SA_INIT = 34
NEXT_NONCE = 40
FLAG_INITIATOR = 0x08
FLAG_RESPONSE = 0x20
ESP_SPI = 0x12345678


def frame(payload):
    """RFC 9329 section 3: a 16-bit length that counts itself, then the payload."""
    return struct.pack("!H", len(payload) + 2) + payload


def ike_sa_init(spi_i, spi_r, flags):
    """An IKE header (RFC 7296 section 3.1) with one Nonce payload (3.9), enough for isakmp to decode."""
    nonce = os.urandom(32)
    pld = struct.pack("!BBH", 0, 0, 4 + len(nonce)) + nonce
    hdr = spi_i + spi_r + struct.pack("!BBBBII", NEXT_NONCE, 0x20, IKE_SA_INIT, flags, 0, 28 + len(pld))
    return hdr + pld


def ike_frame(spi_i, spi_r=bytes(8), flags=FLAG_INITIATOR):
    return frame(bytes(4) + ike_sa_init(spi_i, spi_r, flags))


def esp_frame(seq):
    """An ESP packet (RFC 4303 section 2): SPI, sequence number, opaque payload."""
    return frame(struct.pack("!II", ESP_SPI, seq) + os.urandom(32))


KEEPALIVE = frame(b"\xff")


def client(host, port, script):
    s = socket.create_connection((host, port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    spi = os.urandom(8)
    sent = {"ike": 0, "esp": 0, "keepalive": 0, "split_segments": 0}

    def put(data, pause=0.03):
        s.sendall(data)
        time.sleep(pause)  # with TCP_NODELAY, each write is its own segment

    if script == "plain":
        # Looks like a valid IKE frame, but without the prefix: must not be claimed off-port.
        put(ike_frame(spi))
        put(b"hello, this is not IKE over TCP\r\n")
    elif script == "prefix-only":
        put(PREFIX + ike_frame(spi))
        sent["ike"] += 1
    elif script == "full":
        put(PREFIX)
        put(ike_frame(spi))
        sent["ike"] += 1
        put(esp_frame(1))
        sent["esp"] += 1
        put(KEEPALIVE)
        sent["keepalive"] += 1
        # Several frames in one write (one segment).
        put(ike_frame(spi) + esp_frame(2) + KEEPALIVE + esp_frame(3))
        sent["ike"] += 1
        sent["esp"] += 2
        sent["keepalive"] += 1
        # One frame in 1-byte writes: reassembly across many segments.
        data = ike_frame(spi)
        for b in data:
            put(bytes([b]), 0.003)
        sent["ike"] += 1
        sent["split_segments"] = len(data)
    elif script == "split-prefix":
        # The prefix itself in two segments: the heuristic must wait for the rest.
        put(PREFIX[:3])
        put(PREFIX[3:])
        put(ike_frame(spi))
        sent["ike"] += 1
    elif script == "malformed":
        # A frame too short for a marker, then a length of 1 (framing lost), then more bytes.
        put(PREFIX + KEEPALIVE + frame(b"\xaa\xbb") + ike_frame(spi))
        sent["keepalive"] += 1
        sent["ike"] += 1
        sent["short"] = 1
        put(struct.pack("!H", 1) + b"garbage")
        sent["bad_length"] = 1
        put(ike_frame(spi))  # after lost framing: shown as undecodable, not as IKE
    else:
        raise SystemExit("unknown script " + script)

    # Give the server time to answer before we close.
    s.settimeout(0.5)
    try:
        got = s.recv(4096)
    except socket.timeout:
        got = b""
    s.close()
    for k, v in sent.items():
        print(f"{k}={v}")
    print(f"answered={1 if got else 0}")


def serve_one(conn, answer):
    with conn:
        conn.settimeout(10)
        answered = False
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                if answer and not answered:
                    # Responder direction: frames only, no prefix.
                    conn.sendall(ike_frame(os.urandom(8), os.urandom(8), FLAG_RESPONSE))
                    answered = True
        except OSError:
            return


def server(port, answer):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(8)
    print(f"listening on {port}", flush=True)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve_one, args=(conn, answer), daemon=True).start()


def main(argv):
    if len(argv) >= 4 and argv[0] == "client":
        client(argv[1], int(argv[2]), argv[3])
    elif len(argv) >= 2 and argv[0] == "server":
        server(int(argv[1]), "--answer" in argv[2:])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
