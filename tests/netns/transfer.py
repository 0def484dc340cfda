#!/usr/bin/env python3
"""A TCP transfer checked end to end: `sink ADDR PORT` prints the bytes and SHA-256 it received;
`send ADDR PORT BYTES [PAUSE_S]` sends random bytes (64 KiB at a time, pausing between chunks when asked)
and prints the same line for what it sent. Equal lines: nothing was lost, duplicated or corrupted."""
import hashlib
import os
import socket
import sys
import time


def sink(addr, port):
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(1)
    c, _ = s.accept()
    h, n = hashlib.sha256(), 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        h.update(b)
        n += len(b)
    print(n, h.hexdigest())


def send(addr, port, size, pause):
    data = os.urandom(size)
    s = socket.create_connection((addr, port), timeout=30)
    for i in range(0, len(data), 1 << 16):
        s.sendall(data[i:i + (1 << 16)])
        if pause:
            time.sleep(pause)
    s.close()
    print(len(data), hashlib.sha256(data).hexdigest())


if __name__ == "__main__":
    if sys.argv[1] == "sink":
        sink(sys.argv[2], int(sys.argv[3]))
    else:
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]) if len(sys.argv) > 5 else 0)
