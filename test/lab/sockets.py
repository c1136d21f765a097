#!/usr/bin/env python3
"""Socket lab: builds, on loopback, the failure tcpstate-exporter exists for.

  * N orphaned FIN-WAIT-1 sockets on the server side of a listening port: the server fills its
    client's tiny receive buffer (the client never reads, so it advertises a zero window), then
    close()s with unsent data still queued. The kernel queues the FIN behind that data and keeps
    the orphan alive on the persist timer; its local port is the listening port.
  * M idle ESTABLISHED pairs.
  * K TIME-WAIT sockets (client closes first, peer closes after the FIN).

The other stuck-state failure modes, each on a port of its own (0 = not built):
  * CLOSE-WAIT leak (--close-wait N, port base+3): an application that never closes connections its
    peers closed. Each client sends i+1 bytes (never read) and half-closes; the server keeps its
    end open: N owned CLOSE-WAIT sockets, Recv-Q = i+1 bytes. The clients stay in FIN-WAIT-2, owned.
  * Orphaned FIN-WAIT-2 (--fin-wait2 N, port base+4): the server closes; its clients acknowledge the
    FIN but never close (they sit in CLOSE-WAIT on ephemeral ports). The server ends are orphans
    in FIN-WAIT-2 (timewait minisockets) until net.ipv4.tcp_fin_timeout (60 s by default).
  * Orphaned LAST-ACK (--last-ack N, port base+5): the client half-closes and stops reading; the
    server answers with more than the client's window, then closes: the FIN is queued behind the
    unsent data, so the orphan sits in LAST-ACK on the persist timer with its Send-Q, as FIN-WAIT-1
    orphans do.
  * SYN-RECV flood (--syn-recv N, port base+6; private network namespace only): an iptables rule in
    this namespace drops the listener's SYN-ACKs on arrival (INPUT: dropped on OUTPUT, the send
    fails and the kernel discards the request at its first retransmission, within a second), so N
    handshakes stay half-open: N request sockets in SYN-RECV, N clients in SYN-SENT. The kernel
    gives a request up after tcp_synack_retries (about 63 s) and the client's next SYN
    retransmission makes a new one.
  * Listen-queue overflow (--listen-overflow N --listen-backlog B, port base+7): a listener that
    never accept()s. B+1 connections complete and wait in its accept queue (LISTEN Recv-Q = B+1,
    Send-Q = B); the other clients' SYNs are dropped (TcpExt ListenOverflows, ListenDrops) and they
    stay in SYN-SENT, retransmitting.
Every figure of "measure" comes from the sockets themselves (SIOCINQ, TCP_INFO), the lab's own
writes, or /proc/net/netstat of the lab's namespace; never from ss.

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
import os
import socket
import struct
import subprocess
import sys
import termios
import time

CHUNK = b"x" * 65536


def inq(sock):
    """Bytes in the socket's receive queue (SIOCINQ == FIONREAD)."""
    return struct.unpack("I", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


# tcp_info.tcpi_state (include/net/tcp_states.h), in the exporter's spelling.
STATE_NAMES = {1: "established", 2: "syn_sent", 3: "syn_recv", 4: "fin_wait1", 5: "fin_wait2",
               6: "time_wait", 7: "close", 8: "close_wait", 9: "last_ack", 10: "listen", 11: "closing"}


def tcp_info(sock):
    """(state, u32 fields of struct tcp_info from tcpi_rto on) as the kernel reports them."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return raw[0], struct.unpack_from("13I", raw, 8)


def state_of(sock):
    return STATE_NAMES.get(tcp_info(sock)[0], "unknown")


def listen_queue(sock):
    """A listener's accept queue: (connections waiting, backlog). For LISTEN sockets tcp_get_info()
    reports sk_ack_backlog in tcpi_unacked and sk_max_ack_backlog in tcpi_sacked."""
    _, u = tcp_info(sock)
    return u[4], u[5]


def netstat_counters(names):
    """TcpExt counters of this network namespace from /proc/net/netstat."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    out = {}
    for head, values in zip(lines[0::2], lines[1::2]):
        if head.startswith("TcpExt:"):
            out.update(zip(head.split()[1:], (int(v) for v in values.split()[1:])))
    return {n: out.get(n) for n in names}


def own_netns():
    """True when this process runs in a named network namespace (`ip netns add`, /run/netns)."""
    try:
        me = os.stat("/proc/self/ns/net")
        for name in os.listdir("/run/netns"):
            st = os.stat(os.path.join("/run/netns", name))
            if (st.st_dev, st.st_ino) == (me.st_dev, me.st_ino):
                return True
    except OSError:
        pass
    return False


def connect_nowait(host, port, wait_for_established=0.0):
    """A non-blocking connect; optionally waits (up to the given seconds) for the handshake, so that
    connections complete one after another and the kernel's accounting is deterministic."""
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.setblocking(False)
    try:
        c.connect((host, port))
    except BlockingIOError:
        pass
    deadline = time.monotonic() + wait_for_established
    while time.monotonic() < deadline and state_of(c) != "established":
        time.sleep(0.005)
    return c


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


def listener_with_pairs(host, port, n, sndbuf=None, rcvbuf=None):
    """A listener on port (backlog n + 16) and n (client, server) pairs connected to it."""
    lst = listener(host, port, n + 16, sndbuf)
    return lst, [connect_pair(host, port, lst, rcvbuf) for _ in range(n)]


def close_client_first(pairs):
    """TIME-WAIT on the client side: each client closes first, its peer reads the EOF and closes too."""
    for c, _ in pairs:
        c.close()
    for _, p in pairs:
        p.settimeout(5)
        p.recv(1)
        p.close()


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


def orphans_behind_zero_window(host, port, lst, n):
    """n server sides (accepted on lst, small send buffers if lst has them) closed with unread data
    queued toward clients that never read: orphans in FIN-WAIT-1 probing a zero window. Returns the
    clients, whose close (an RST: unread data) ends the orphans. Used by bench/biglab.py and
    bench/netnslab.py."""
    pairs = [connect_pair(host, port, lst, rcvbuf=4096) for _ in range(n)]
    fill([s for _, s in pairs])
    for _, s in pairs:
        s.close()
    return [c for c, _ in pairs]


def hold_until_stdin_closes(keep, count):
    """A bench lab worker's end: says "ready COUNT", keeps the sockets until stdin closes, closes them."""
    print(f"ready {count}", flush=True)
    sys.stdin.read()
    for s in keep:
        s.close()


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
    ap.add_argument("--close-wait", type=int, default=0, help="CLOSE-WAIT sockets an application never closes (port base+3)")
    ap.add_argument("--fin-wait2", type=int, default=0, help="orphaned FIN-WAIT-2 sockets (port base+4)")
    ap.add_argument("--last-ack", type=int, default=0, help="orphaned LAST-ACK sockets behind zero-window peers (port base+5)")
    ap.add_argument("--syn-recv", type=int, default=0, help="half-open handshakes (port base+6; needs a private network namespace)")
    ap.add_argument("--listen-overflow", type=int, default=0, help="clients of a listener that never accepts (port base+7)")
    ap.add_argument("--listen-backlog", type=int, default=4, help="backlog of the --listen-overflow listener")
    ap.add_argument("--sndbuf", type=int, default=16384, help="server SO_SNDBUF (the kernel doubles it)")
    ap.add_argument("--rcvbuf", type=int, default=4096, help="client SO_RCVBUF (the kernel doubles it)")
    ap.add_argument("--sndbuf-steps", type=int, default=1,
                    help="FIN-WAIT-1 orphan i gets SO_SNDBUF sndbuf x (1 + i mod N): N different Send-Q sizes (1: all alike)")
    a = ap.parse_args()
    if not a.host.startswith("127."):
        sys.exit("sockets.py: refusing a non-loopback address: " + a.host)
    if a.syn_recv > 0 and not own_netns():
        sys.exit("sockets.py: --syn-recv adds an iptables rule: run it in a private network namespace (lab --netns)")

    backlog = max(a.fin_wait1, a.established, a.time_wait, 16) + 16
    l_fw1 = listener(a.host, a.base_port, backlog, a.sndbuf)
    l_est = listener(a.host, a.base_port + 1, backlog)
    l_tw = listener(a.host, a.base_port + 2, backlog)

    # FIN-WAIT-1 orphans (server side) behind zero-window clients.
    pairs = [connect_pair(a.host, a.base_port, l_fw1, a.rcvbuf) for _ in range(a.fin_wait1)]
    if a.sndbuf_steps > 1:
        for i, (_, server) in enumerate(pairs):
            server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, a.sndbuf * (1 + i % a.sndbuf_steps))
    written = fill([server for _, server in pairs])
    # Let the last ACKs land so nothing is in flight: the persist timer, not retransmit, runs.
    time.sleep(0.3)
    for _, server in pairs:
        server.close()
    peers = [client for client, _ in pairs]

    # Idle ESTABLISHED pairs.
    established = [connect_pair(a.host, a.base_port + 1, l_est) for _ in range(a.established)]

    # TIME-WAIT: the client closes first; the peer sees EOF and closes too.
    close_client_first([connect_pair(a.host, a.base_port + 2, l_tw) for _ in range(a.time_wait)])
    time_wait_made = time.monotonic()
    time.sleep(0.2)
    listeners = 3

    # CLOSE-WAIT leak: clients send i+1 bytes and half-close; the server never reads nor closes.
    close_wait = []
    if a.close_wait > 0:
        l_cw, pairs_cw = listener_with_pairs(a.host, a.base_port + 3, a.close_wait)
        listeners += 1
        for i, (c, p) in enumerate(pairs_cw):
            c.sendall(b"r" * (i + 1))
            c.shutdown(socket.SHUT_WR)
            close_wait.append((c, p, i + 1))

    # Orphaned FIN-WAIT-2: the server closes, the clients never do.
    fin_wait2 = []
    if a.fin_wait2 > 0:
        l_fw2, pairs_fw2 = listener_with_pairs(a.host, a.base_port + 4, a.fin_wait2)
        listeners += 1
        for c, p in pairs_fw2:
            fin_wait2.append((c, p.getsockname()[1], c.getsockname()[1]))
            p.close()
    fin_wait2_made = time.monotonic()

    # Orphaned LAST-ACK behind zero-window clients: half-close, then the server writes and closes.
    last_ack = []
    last_ack_written = []
    if a.last_ack > 0:
        l_la, pairs_la = listener_with_pairs(a.host, a.base_port + 5, a.last_ack, a.sndbuf, a.rcvbuf)
        listeners += 1
        for c, _ in pairs_la:
            c.shutdown(socket.SHUT_WR)
        time.sleep(0.1)
        last_ack_written = fill([p for _, p in pairs_la])
        time.sleep(0.3)
        for c, p in pairs_la:
            last_ack.append((c, p.getsockname()[1], c.getsockname()[1]))
            p.close()

    # SYN-RECV: the listener's SYN-ACKs are dropped in this namespace, the handshakes stay half-open.
    syn_recv = []
    if a.syn_recv > 0:
        port = a.base_port + 6
        subprocess.run(["iptables", "-A", "INPUT", "-p", "tcp", "-s", a.host, "--sport", str(port),
                        "--tcp-flags", "SYN,ACK", "SYN,ACK", "-j", "DROP"], check=True)
        # A backlog above N: below it the kernel keeps request sockets (no SYN cookies).
        l_sr = listener(a.host, port, a.syn_recv + 16)
        listeners += 1
        syn_recv = [connect_nowait(a.host, port) for _ in range(a.syn_recv)]
        time.sleep(0.2)

    # Listen-queue overflow: a listener that never accepts.
    overflow = []
    counters_before = netstat_counters(["ListenOverflows", "ListenDrops"])
    if a.listen_overflow > 0:
        l_ov = listener(a.host, a.base_port + 7, a.listen_backlog)
        listeners += 1
        overflow = [connect_nowait(a.host, a.base_port + 7, 0.2) for _ in range(a.listen_overflow)]
    made = time.monotonic()

    ports = {"fin_wait1": a.base_port, "established": a.base_port + 1, "time_wait": a.base_port + 2}
    for name, n, off in (("close_wait", a.close_wait, 3), ("fin_wait2", a.fin_wait2, 4), ("last_ack", a.last_ack, 5),
                         ("syn_recv", a.syn_recv, 6), ("listen_overflow", a.listen_overflow, 7)):
        if n > 0:
            ports[name] = a.base_port + off
    print(json.dumps({"ready": True, "ports": ports, "written": sum(written)}), flush=True)

    def totals(extra, tw):
        base = {"fin_wait1": a.fin_wait1, "established": a.fin_wait1 + 2 * a.established, "time_wait": tw, "listen": listeners}
        for st, n in extra.items():
            base[st] = n if base.get(st, 0) is None else base.get(st, 0) + n
        return base

    def scenarios():
        """Per-socket truth of each failure mode, and what it adds to each state's count."""
        out = {}
        states = {}

        def add(state, n):
            states[state] = states.get(state, 0) + n

        if close_wait:
            # Recv-Q as the socket table shows it (rcv_nxt - copied_seq) counts the peer's FIN as
            # one byte; SIOCINQ does not.
            socks = [{"local_port": a.base_port + 3, "remote_port": c.getsockname()[1], "state": state_of(p),
                      "recv_queue": inq(p) + 1, "unread": inq(p), "sent": sent} for c, p, sent in close_wait]
            out["close_wait"] = {"port": a.base_port + 3, "sockets": socks,
                                 "clients": [state_of(c) for c, _, _ in close_wait]}
            for x in socks:
                add(x["state"], 1)
            for c, _, _ in close_wait:
                add(state_of(c), 1)
        if fin_wait2:
            age = time.monotonic() - fin_wait2_made
            with open("/proc/sys/net/ipv4/tcp_fin_timeout") as f:
                fin_timeout = int(f.read())
            alive = age < fin_timeout
            out["fin_wait2"] = {
                "port": a.base_port + 4,
                "fin_timeout_seconds": fin_timeout,
                "age_seconds": round(age, 1),
                # The orphans die tcp_fin_timeout after the close; within a second of it, unknown.
                "orphans": len(fin_wait2) if age < fin_timeout - 1 else (0 if age > fin_timeout + 1 else None),
                "sockets": [{"local_port": lp, "remote_port": rp, "state": "fin_wait2"} for _, lp, rp in fin_wait2] if alive else [],
                "clients": [state_of(c) for c, _, _ in fin_wait2],
                # The clients got the FIN (1 byte of Recv-Q in the socket table each) and nothing else.
                "clients_recv_queue": sum(inq(c) + 1 for c, _, _ in fin_wait2),
            }
            if out["fin_wait2"]["orphans"] is not None:
                add("fin_wait2", out["fin_wait2"]["orphans"])
            for c, _, _ in fin_wait2:
                add(state_of(c), 1)
        if last_ack:
            held = [inq(c) for c, _, _ in last_ack]
            socks = [{"local_port": lp, "remote_port": rp, "state": "last_ack",
                      # Send-Q: written minus what the peer received; the kernel adds 1 for the FIN.
                      "send_queue": w - h + 1} for (_, lp, rp), w, h in zip(last_ack, last_ack_written, held)]
            out["last_ack"] = {"port": a.base_port + 5, "sockets": socks, "peer_recv_queue": sum(held),
                               "clients": [state_of(c) for c, _, _ in last_ack]}
            add("last_ack", len(socks))
            for c, _, _ in last_ack:
                add(state_of(c), 1)
        if syn_recv:
            clients = [state_of(c) for c in syn_recv]
            out["syn_recv"] = {"port": a.base_port + 6, "clients": clients,
                               "sockets": [{"local_port": a.base_port + 6, "remote_port": c.getsockname()[1], "state": "syn_recv"}
                                           for c in syn_recv]}
            add("syn_recv", len(syn_recv))
            for st in clients:
                add(st, 1)
        if overflow:
            queued, backlog = listen_queue(l_ov)
            clients = [state_of(c) for c in overflow]
            now = netstat_counters(["ListenOverflows", "ListenDrops"])
            out["listen_overflow"] = {
                "port": a.base_port + 7, "backlog": backlog, "accept_queue": queued, "clients": clients,
                "counters": now,
                "counters_since_start": {k: (now[k] - counters_before[k]) if now[k] is not None else None for k in now},
            }
            for st in clients:
                add(st, 1)
            add("established", queued)  # the children waiting in the accept queue
        return out, states

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
        if cmd.startswith("drain "):
            # The first K zero-window peers read everything: their orphans send the rest and the FIN,
            # which the peer acknowledges: each orphan moves on to FIN-WAIT-2 (the peer stays open).
            k = int(cmd.split(" ", 1)[1])
            eof = 0
            for p in peers[:k]:
                p.setblocking(False)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    try:
                        if p.recv(1 << 20) == b"":
                            eof += 1
                            break
                    except OSError as e:
                        if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                            raise
                        time.sleep(0.01)
            print(json.dumps({"drained": k, "eof": eof}), flush=True)
            continue
        if cmd == "measure":
            held = [inq(p) for p in peers]
            scen, extra = scenarios()
            tw_age = time.monotonic() - time_wait_made
            # TIME-WAIT lasts TCP_TIMEWAIT_LEN = 60 s, a kernel constant; within a second of it, unknown.
            tw = a.time_wait if tw_age < 59 else (0 if tw_age > 61 else None)
            print(json.dumps({
                "fin_wait1": a.fin_wait1,
                # The orphans' zero-window clients are ESTABLISHED too, and both ends of each idle pair.
                "established": a.fin_wait1 + 2 * a.established,
                "established_parts": {"fin_wait1_clients": a.fin_wait1, "idle_pairs": 2 * a.established},
                "time_wait": tw,
                "time_wait_expires_in": max(0, round(60 - tw_age, 1)),
                "listen": listeners,
                "other_states": extra,
                # Every socket the lab made, per state (TIME-WAIT None around its expiry).
                "states": {st: (None if v is None else v) for st, v in totals(extra, tw).items()},
                "scenarios": scen,
                "age_seconds": round(time.monotonic() - made, 1),
                # Send-Q of each orphan: bytes written minus what its peer has received (and ACKed);
                # the kernel adds 1 for the queued FIN.
                "fin_wait1_send_queue_without_fin": sum(written) - sum(held),
                # Per orphan: its local (listening) and peer port and its Send-Q (the FIN included).
                "fin_wait1_sockets": [{"local_port": a.base_port, "remote_port": p.getsockname()[1], "send_queue": w - h + 1}
                                      for p, w, h in zip(peers, written, held)],
                "peer_recv_queue": sum(held),
                "written": sum(written),
            }), flush=True)
    for p in peers:
        p.close()
    for c, p in established:
        c.close()
        p.close()
    for c, p, _ in close_wait:
        c.close()
        p.close()
    for c, _, _ in fin_wait2 + last_ack:
        c.close()
    for c in syn_recv + overflow:
        c.close()
    if a.syn_recv > 0:
        subprocess.run(["iptables", "-D", "INPUT", "-p", "tcp", "-s", a.host, "--sport", str(a.base_port + 6),
                        "--tcp-flags", "SYN,ACK", "SYN,ACK", "-j", "DROP"], check=False)


if __name__ == "__main__":
    main()
