#!/usr/bin/env python3
"""FIN-WAIT-1 orphans behind zero-window peers from chosen loopback addresses, for the peers/owners test.

Run inside a network namespace of its own (the orphans outlive this process by minutes otherwise).
A listener on 127.0.0.1:PORT (this process owns it); one client per --peer address (bound to it:
any 127.0.0.0/8 address is local on lo) with a small receive buffer that never reads; the server
end fills its send queue and closes: an orphan in FIN-WAIT-1 with the bytes the peer has not taken.
--keep also connects from 127.5.6.7 and keeps the server end open (ESTABLISHED, owned by this process).

Prints one JSON line {"pid", "port", "comm"} when built, then answers commands on stdin, one JSON
line each: "measure" (per orphan: peer address, Send-Q = bytes written - bytes the peer holds + 1
for the FIN), "get PORT PATH" (an HTTP GET to 127.0.0.1:PORT inside the namespace).
"""
import argparse
import fcntl
import http.client
import json
import socket
import struct
import sys
import termios
import time


def inq(sock):
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--peer", action="append", default=[])
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()

    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    lst.bind(("127.0.0.1", a.port))
    lst.listen(64)

    orphans = []  # (peer address, client socket, bytes the server wrote)
    for i, addr in enumerate(a.peer):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window scale is fixed at SYN time
        c.bind((addr, 0))
        c.connect(("127.0.0.1", a.port))
        s, _ = lst.accept()
        s.setblocking(False)
        # Different amounts per peer, so the byte totals tell the networks apart.
        want = 20000 + 7000 * i
        sent = 0
        chunk = b"x" * 1000
        deadline = time.time() + 5
        while sent < want and time.time() < deadline:
            try:
                sent += s.send(chunk[: min(1000, want - sent)])
            except BlockingIOError:
                time.sleep(0.01)
        s.close()  # FIN queued behind the unread data: FIN-WAIT-1, orphaned
        orphans.append((addr, c, sent))

    kept = []
    if a.keep:
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.bind(("127.5.6.7", 0))
        c.connect(("127.0.0.1", a.port))
        s, _ = lst.accept()
        kept.append((c, s))

    print(json.dumps({"pid": __import__("os").getpid(), "port": a.port, "comm": open("/proc/self/comm").read().strip()}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "measure":
            out = [{"peer": addr, "send_queue": sent - inq(c) + 1} for addr, c, sent in orphans]
            print(json.dumps({"orphans": out}), flush=True)
        elif cmd[0] == "get":
            conn = http.client.HTTPConnection("127.0.0.1", int(cmd[1]), timeout=10)
            conn.request("GET", cmd[2])
            r = conn.getresponse()
            body = r.read().decode()
            print(json.dumps({"status": r.status, "body": body, "contentType": r.getheader("content-type") or ""}), flush=True)
            conn.close()


if __name__ == "__main__":
    main()
