#!/usr/bin/env python3
"""Sockets spread over network namespaces, for `npm run bench -- --netns` (loopback only).

  netnslab.py --port P --groups G --pairs N --fw1 F NAME...

For each named namespace (`ip netns add NAME`, lo up), this one process enters it (setns on
/run/netns/NAME: a socket belongs to the namespace it is created in), builds G groups, each a
listener on 127.0.0.1:P+g with N idle ESTABLISHED pairs and F orphaned FIN-WAIT-1 sockets behind
zero-window clients, and comes back. 200 namespaces × 1 group and 1 namespace × 200 groups hold
the same sockets. Prints "ready S" (S sockets) when built; closing stdin ends it (closing the
zero-window clients with unread data resets the orphans).
"""

import argparse
import ctypes
import os
import resource
import sys

# The socket lab's building blocks, shared with the tests and bench/biglab.py.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "lab"))
from sockets import connect_pair, hold_until_stdin_closes, listener, orphans_behind_zero_window  # noqa: E402

HOST = "127.0.0.1"
CLONE_NEWNET = 0x40000000
LIBC = ctypes.CDLL(None, use_errno=True)


def setns(fd):
    if LIBC.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--groups", type=int, required=True)
    ap.add_argument("--pairs", type=int, required=True)
    ap.add_argument("--fw1", type=int, required=True)
    ap.add_argument("names", nargs="+")
    a = ap.parse_args()
    per = a.groups * (1 + 2 * a.pairs + 2 * a.fw1)
    want = per * len(a.names) + 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        # Up to the hard limit (raising that needs CAP_SYS_RESOURCE): the bench spreads the sockets
        # over several of these processes, as it does biglab.py's.
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    keep = []
    sockets = 0
    for name in a.names:
        fd = os.open(os.path.join("/run/netns", name), os.O_RDONLY)
        setns(fd)
        os.close(fd)
        try:
            for g in range(a.groups):
                lst = listener(HOST, a.port + g, a.pairs + a.fw1 + 16, sndbuf=4096)
                for _ in range(a.pairs):
                    keep.extend(connect_pair(HOST, a.port + g, lst))
                keep.extend(orphans_behind_zero_window(HOST, a.port + g, lst, a.fw1))
                keep.append(lst)
                sockets += 1 + 2 * a.pairs + 2 * a.fw1
        finally:
            setns(home)
    hold_until_stdin_closes(keep, sockets)


if __name__ == "__main__":
    main()
