"""A TCP peer that misbehaves, in its own process, for the plug-in's bad-input tests.

``python garbage_server.py MODE``: prints ``READY <port>``, accepts connections until its stdin
closes, and for each one:
- ``noise``: reads what comes and answers with random bytes in valid OSC 1.0 frames;
- ``bigframe``: answers a frame header declaring 2 GiB;
- ``badosc``: answers well-framed OSC with wrong argument types and unknown addresses;
- ``deaf``: never reads (the plug-in's socket buffer fills up) and never answers.
"""
from __future__ import annotations

import random
import socket
import struct
import sys
import threading


def osc(address: str, tags: str, *payload: bytes) -> bytes:
    def pad(b: bytes) -> bytes:
        b += b"\0"
        return b + b"\0" * (-len(b) % 4)

    return pad(address.encode()) + pad(("," + tags).encode()) + b"".join(payload)


def serve(conn: socket.socket, mode: str) -> None:
    rng = random.Random(7)
    conn.settimeout(0.2)
    sent = False
    try:
        while True:
            if mode != "deaf":
                try:
                    if not conn.recv(1 << 16):
                        return
                except socket.timeout:
                    pass
            if mode == "noise":
                body = bytes(rng.randrange(256) for _ in range(4 * rng.randrange(1, 64)))
                conn.sendall(struct.pack(">I", len(body)) + body)
            elif mode == "bigframe" and not sent:
                conn.sendall(struct.pack(">I", 2**31) + b"\0" * 64)
                sent = True
            elif mode == "badosc":
                for body in (osc("/idm/hit/frame", "sss", b"x\0\0\0", b"y\0\0\0", b"z\0\0\0"),
                             osc("/idm/hits/end", "s", b"no\0\0"),
                             osc("/idm/whatever", ""),
                             osc("/idm/error", "is", struct.pack(">i", 5), b"oops\0\0\0\0")):
                    conn.sendall(struct.pack(">I", len(body)) + body)
            elif mode == "deaf":
                threading.Event().wait(0.2)
    except OSError:
        return


def main() -> int:
    mode = sys.argv[1]
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    lsock.settimeout(0.2)
    print(f"READY {lsock.getsockname()[1]}", flush=True)
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    conns = []
    while not done.is_set():
        try:
            conn, _ = lsock.accept()
        except socket.timeout:
            continue
        if mode == "deaf":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conns.append(conn)
        threading.Thread(target=serve, args=(conn, mode), daemon=True).start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
