#!/usr/bin/env python3
"""One worker of the big socket lab used by `npm run bench` (loopback only).

  --role fw1 --count N --port P   N orphaned FIN-WAIT-1 sockets on the server side of 127.0.0.1:P,
                                  stuck behind zero-window clients (small buffers keep memory modest);
                                  the clients stay open in this process.
  --role est --count N --port P   N/2 idle ESTABLISHED pairs (N sockets) to 127.0.0.1:P.
  --role tw  --count N --port P   N TIME-WAIT sockets (client closes first), kept by the kernel for 60 s.
  --role churn --count N --port P  until stdin closes, every --cycle seconds: N/4 new orphaned FIN-WAIT-1
                                  sockets behind zero-window clients and N new ESTABLISHED pairs; each batch
                                  lives --hold cycles, then its zero-window clients close (an RST ends the
                                  orphans) and its pairs close client first (TIME-WAIT). Used by `npm run soak`.

One process may hold 20 000 descriptors: the bench spreads larger counts over several workers.
Prints one line "ready N" when built; closing stdin ends it (closing the zero-window clients with
unread data resets the orphans, so nothing outlives the bench).
"""

import argparse
import collections
import os
import select
import sys
import time

# The socket lab's building blocks (listeners, connected pairs, TIME-WAIT, zero-window orphans), shared
# with the tests and bench/netnslab.py.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "lab"))
from sockets import close_client_first, connect_pair, hold_until_stdin_closes, listener, orphans_behind_zero_window  # noqa: E402

BATCH = 1000
HOST = "127.0.0.1"


def stdin_closed(timeout):
    """Waits up to timeout seconds; True once stdin has reached EOF."""
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    return bool(ready) and sys.stdin.read(1) == ""


def churn(a):
    """Sockets created and closed continuously until stdin closes (see the module's doc)."""
    fw1_lst = listener(HOST, a.port, a.count + 16, sndbuf=4096)
    est_lst = listener(HOST, a.port + 1, a.count + 16)
    batches = collections.deque()
    cycles = 0
    print(f"ready {a.count}", flush=True)
    while True:
        started = time.monotonic()
        clients = orphans_behind_zero_window(HOST, a.port, fw1_lst, max(1, a.count // 4))
        pairs = [connect_pair(HOST, a.port + 1, est_lst) for _ in range(a.count)]
        batches.append((clients, pairs))
        if len(batches) > a.hold:
            old_clients, old_pairs = batches.popleft()
            for c in old_clients:
                c.close()  # unread data: an RST, which ends its orphan at once
            close_client_first(old_pairs)
        cycles += 1
        if stdin_closed(max(0.0, a.cycle - (time.monotonic() - started))):
            break
    for clients, pairs in batches:
        for c in clients:
            c.close()
        close_client_first(pairs)
    fw1_lst.close()
    est_lst.close()
    print(f"stopped after {cycles} cycles", file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--role", choices=["fw1", "est", "tw", "churn"], required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cycle", type=float, default=2.0, help="churn: seconds between batches")
    ap.add_argument("--hold", type=int, default=5, help="churn: cycles a batch lives")
    a = ap.parse_args()
    if a.role == "churn":
        churn(a)
        return
    keep = []
    if a.role == "fw1":
        lst = listener(HOST, a.port, BATCH + 16, sndbuf=4096)
        done = 0
        while done < a.count:
            n = min(BATCH, a.count - done)
            keep.extend(orphans_behind_zero_window(HOST, a.port, lst, n))
            done += n
        keep.append(lst)
    elif a.role == "est":
        lst = listener(HOST, a.port, BATCH + 16)
        for _ in range(a.count // 2):
            keep.extend(connect_pair(HOST, a.port, lst))
        keep.append(lst)
    else:
        lst = listener(HOST, a.port, BATCH + 16)
        done = 0
        while done < a.count:
            n = min(BATCH, a.count - done)
            close_client_first([connect_pair(HOST, a.port, lst) for _ in range(n)])
            done += n
        keep.append(lst)
    hold_until_stdin_closes(keep, a.count)


if __name__ == "__main__":
    main()
