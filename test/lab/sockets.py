#!/usr/bin/env python3
"""Socket lab: builds, on loopback, the failure tcpstate-exporter exists for.

  * N orphaned FIN-WAIT-1 sockets on the server side of a listening port: the server fills its
    client's tiny receive buffer (the client never reads, so it advertises a zero window), then
    close()s with unsent data still queued. The kernel queues the FIN behind that data and keeps
    the orphan alive on the persist timer; its local port is the listening port.
  * M idle ESTABLISHED pairs.
  * K TIME-WAIT sockets (client closes first, peer closes after the FIN).

Why Python and not Node: Node's net API cannot set SO_SNDBUF/SO_RCVBUF on TCP sockets nor read
SIOCINQ, which the exact byte accounting needs. The TypeScript driver (lab.ts) runs this script.

Protocol: prints one JSON line when the sockets are built; then each "measure" line on stdin is
answered with one JSON line of the figures the exporter should show; EOF or "quit" ends the lab.
Ending it closes the peers with unread data, which sends each orphan an RST (TCPAbortOnClose), so
no orphan outlives the lab even if it is killed.
"""

import argparse
import errno
import fcntl
import http.client
import json
import socket
import struct
import sys
import termios
import time

CHUNK = b"x" * 65536


def inq(sock):
    """Bytes in the socket's receive queue (SIOCINQ == FIONREAD)."""
    return struct.unpack("I", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def listener(host, port, backlog, sndbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if sndbuf:
        # Accepted children inherit the listener's buffer sizes.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    s.bind((host, port))
    s.listen(backlog)
    return s


def connect_pair(host, port, lst, rcvbuf=None):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        # Before connect(): the window scale is fixed at SYN time.
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    c.connect((host, port))
    p, _ = lst.accept()
    return c, p


def fill(clients):
    """Writes until every client's send buffer and its peer's receive buffer are full."""
    written = [0] * len(clients)
    for c in clients:
        c.setblocking(False)
    quiet_rounds = 0
    while quiet_rounds < 3:
        progress = False
        for i, c in enumerate(clients):
            while True:
                try:
                    n = c.send(CHUNK)
                except OSError as e:
                    if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                        break
                    raise
                written[i] += n
                progress = True
        quiet_rounds = 0 if progress else quiet_rounds + 1
        time.sleep(0.05)
    return written


def http_get(port, path):
    """GET from inside the lab's namespace, closing with an RST (SO_LINGER 0) so that the scrape
    leaves no TIME-WAIT or FIN-WAIT socket behind to disturb the counts."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.connect()
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read().decode()
    result = {"status": r.status, "body": body, "contentType": r.getheader("content-type", "")}
    conn.close()
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1", help="loopback address to use (127.0.0.0/8 only)")
    ap.add_argument("--base-port", type=int, default=17001, help="listeners on base, base+1, base+2")
    ap.add_argument("--fin-wait1", type=int, default=20)
    ap.add_argument("--established", type=int, default=10)
    ap.add_argument("--time-wait", type=int, default=10)
    ap.add_argument("--sndbuf", type=int, default=16384, help="server SO_SNDBUF (the kernel doubles it)")
    ap.add_argument("--rcvbuf", type=int, default=4096, help="client SO_RCVBUF (the kernel doubles it)")
    a = ap.parse_args()
    if not a.host.startswith("127."):
        sys.exit("sockets.py: refusing a non-loopback address: " + a.host)

    backlog = max(a.fin_wait1, a.established, a.time_wait, 16) + 16
    l_fw1 = listener(a.host, a.base_port, backlog, a.sndbuf)
    l_est = listener(a.host, a.base_port + 1, backlog)
    l_tw = listener(a.host, a.base_port + 2, backlog)

    # FIN-WAIT-1 orphans (server side) behind zero-window clients.
    pairs = [connect_pair(a.host, a.base_port, l_fw1, a.rcvbuf) for _ in range(a.fin_wait1)]
    written = fill([server for _, server in pairs])
    # Let the last ACKs land so nothing is in flight: the persist timer, not retransmit, runs.
    time.sleep(0.3)
    for _, server in pairs:
        server.close()
    peers = [client for client, _ in pairs]

    # Idle ESTABLISHED pairs.
    established = [connect_pair(a.host, a.base_port + 1, l_est) for _ in range(a.established)]

    # TIME-WAIT: the client closes first; the peer sees EOF and closes too.
    tw = [connect_pair(a.host, a.base_port + 2, l_tw) for _ in range(a.time_wait)]
    for c, _ in tw:
        c.close()
    for _, p in tw:
        p.settimeout(5)
        p.recv(1)
        p.close()
    time.sleep(0.2)

    print(json.dumps({
        "ready": True,
        "ports": {"fin_wait1": a.base_port, "established": a.base_port + 1, "time_wait": a.base_port + 2},
        "written": sum(written),
    }), flush=True)

    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "quit":
            break
        if cmd.startswith("get "):
            _, port, path = cmd.split(" ", 2)
            try:
                result = http_get(int(port), path)
            except OSError as e:  # e.g. not listening yet: report, keep the lab alive
                result = {"status": 0, "body": "", "contentType": "", "error": str(e)}
            print(json.dumps(result), flush=True)
            continue
        if cmd == "measure":
            held = [inq(p) for p in peers]
            print(json.dumps({
                "fin_wait1": a.fin_wait1,
                "established": a.fin_wait1 + 2 * a.established,
                "time_wait": a.time_wait,
                "listen": 3,
                # Send-Q of each orphan: bytes written minus what its peer has received (and ACKed);
                # the kernel adds 1 for the queued FIN.
                "fin_wait1_send_queue_without_fin": sum(written) - sum(held),
                "peer_recv_queue": sum(held),
                "written": sum(written),
            }), flush=True)
    for p in peers:
        p.close()
    for c, p in established:
        c.close()
        p.close()


if __name__ == "__main__":
    main()
