#!/usr/bin/env python3
"""One worker of the big socket lab used by `npm run bench` (loopback only).

  --role fw1 --count N --port P   N orphaned FIN-WAIT-1 sockets on the server side of 127.0.0.1:P,
                                  stuck behind zero-window clients (small buffers keep memory modest);
                                  the clients stay open in this process.
  --role est --count N --port P   N/2 idle ESTABLISHED pairs (N sockets) to 127.0.0.1:P.
  --role tw  --count N --port P   N TIME-WAIT sockets (client closes first), kept by the kernel for 60 s.

One process may hold 20 000 descriptors: the bench spreads larger counts over several workers.
Prints one line "ready N" when built; closing stdin ends it (closing the zero-window clients with
unread data resets the orphans, so nothing outlives the bench).
"""

import argparse
import errno
import socket
import sys
import time

CHUNK = b"x" * 16384
BATCH = 1000


def listener(port, backlog, sndbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if sndbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    s.bind(("127.0.0.1", port))
    s.listen(backlog)
    return s


def pair(lst, port, rcvbuf=None):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    c.connect(("127.0.0.1", port))
    s, _ = lst.accept()
    return c, s


def fill(socks):
    for s in socks:
        s.setblocking(False)
    quiet = 0
    while quiet < 2:
        progress = False
        for s in socks:
            while True:
                try:
                    s.send(CHUNK)
                    progress = True
                except OSError as e:
                    if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                        break
                    raise
        quiet = 0 if progress else quiet + 1
        time.sleep(0.02)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--role", choices=["fw1", "est", "tw"], required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--port", type=int, required=True)
    a = ap.parse_args()
    keep = []
    if a.role == "fw1":
        lst = listener(a.port, BATCH + 16, sndbuf=4096)
        done = 0
        while done < a.count:
            n = min(BATCH, a.count - done)
            pairs = [pair(lst, a.port, rcvbuf=4096) for _ in range(n)]
            fill([s for _, s in pairs])
            time.sleep(0.05)
            for c, s in pairs:
                s.close()  # the server side becomes an orphan in FIN-WAIT-1
                keep.append(c)  # the zero-window client never reads
            done += n
        keep.append(lst)
    elif a.role == "est":
        lst = listener(a.port, BATCH + 16)
        for _ in range(a.count // 2):
            keep.extend(pair(lst, a.port))
        keep.append(lst)
    else:
        lst = listener(a.port, BATCH + 16)
        done = 0
        while done < a.count:
            n = min(BATCH, a.count - done)
            pairs = [pair(lst, a.port) for _ in range(n)]
            for c, _ in pairs:
                c.close()
            for _, s in pairs:
                s.settimeout(5)
                s.recv(1)
                s.close()
            done += n
        keep.append(lst)
    print(f"ready {a.count}", flush=True)
    sys.stdin.read()
    for s in keep:
        s.close()


if __name__ == "__main__":
    main()
