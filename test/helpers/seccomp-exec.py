#!/usr/bin/python3
"""Runs a command under seccomp filters like those systemd builds for a unit (test helper).

  seccomp-exec.py [--allow SYSCALL,...] [--families AF_X,...] [--errno N] [--no-namespaces | --namespaces TYPE,...] [--deny-wx] -- COMMAND ARGS...

--allow: an allow-list; every other system call fails with --errno (EPERM by default), as
  SystemCallFilter= with SystemCallErrorNumber= does. Names this architecture does not know are
  skipped, as systemd skips them.
--families: RestrictAddressFamilies=: socket() and socketpair() for any other address family fail
  with EAFNOSUPPORT, as systemd makes them.
--no-namespaces: RestrictNamespaces=yes: unshare(), setns() and clone() with a CLONE_NEW* flag
  fail with EPERM; clone3() with ENOSYS (its flags are in memory seccomp cannot read), so that
  the C library falls back to clone(), as systemd does.
--namespaces: RestrictNamespaces=TYPE... (e.g. net): as --no-namespaces for every other type
  (unshare()/clone() with its CLONE_NEW* flag, setns() naming it), and setns() with type 0 (any),
  as systemd builds it; the listed types pass.
--deny-wx: MemoryDenyWriteExecute=yes as systemd 252 builds it: mmap() asking for write and
  execute at once, mprotect()/pkey_mprotect() asking for execute, and shmat(SHM_EXEC) fail.
Both set no_new_privs first (the kernel demands it for an unprivileged filter).
Needs Debian's python3-seccomp (libseccomp's bindings), hence /usr/bin/python3.
"""
import errno
import os
import sys

import socket

import seccomp

PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000
# CLONE_NEWTIME, NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
CLONE_NEW = (0x80, 0x20000, 0x2000000, 0x4000000, 0x8000000, 0x10000000, 0x20000000, 0x40000000)
NS_FLAG = {"time": 0x80, "mnt": 0x20000, "cgroup": 0x2000000, "uts": 0x4000000, "ipc": 0x8000000, "user": 0x10000000, "pid": 0x20000000, "net": 0x40000000}


def main(argv):
    allow, families, deny_wx, no_ns, err = None, None, False, False, errno.EPERM
    ns_allowed = None
    i = 0
    while i < len(argv) and argv[i] != "--":
        if argv[i] == "--allow":
            allow = [s for s in argv[i + 1].split(",") if s]
            i += 2
        elif argv[i] == "--families":
            families = [int(getattr(socket, f)) for f in argv[i + 1].split(",") if f]
            i += 2
        elif argv[i] == "--errno":
            err = int(argv[i + 1])
            i += 2
        elif argv[i] == "--no-namespaces":
            no_ns = True
            i += 1
        elif argv[i] == "--namespaces":
            ns_allowed = [NS_FLAG[t] for t in argv[i + 1].split(",") if t]
            i += 2
        elif argv[i] == "--deny-wx":
            deny_wx = True
            i += 1
        else:
            sys.exit(f"seccomp-exec: unknown option {argv[i]}")
    cmd = argv[i + 1:]
    if not cmd:
        sys.exit("seccomp-exec: no command after --")

    if families is not None:
        f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        for call in ("socket", "socketpair"):
            # Address families are small numbers (AF_MAX is 46 on Linux 6.x): refuse each unlisted one.
            for fam in range(64):
                if fam not in families:
                    f.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), call, seccomp.Arg(0, seccomp.EQ, fam))
            f.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), call, seccomp.Arg(0, seccomp.GE, 64))
        f.load()
    if no_ns:
        f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        eperm = seccomp.ERRNO(errno.EPERM)
        f.add_rule(eperm, "unshare")
        f.add_rule(eperm, "setns")
        for flag in CLONE_NEW:
            f.add_rule(eperm, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
        f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        f.load()
    if ns_allowed is not None:
        f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        eperm = seccomp.ERRNO(errno.EPERM)
        f.add_rule(eperm, "setns", seccomp.Arg(1, seccomp.EQ, 0))
        for flag in CLONE_NEW:
            if flag in ns_allowed:
                continue
            f.add_rule(eperm, "unshare", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
            f.add_rule(eperm, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
            f.add_rule(eperm, "setns", seccomp.Arg(1, seccomp.MASKED_EQ, flag, flag))
        f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        f.load()
    if deny_wx:
        f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        eperm = seccomp.ERRNO(errno.EPERM)
        wx = PROT_WRITE | PROT_EXEC
        f.add_rule(eperm, "mmap", seccomp.Arg(2, seccomp.MASKED_EQ, wx, wx))
        f.add_rule(eperm, "mprotect", seccomp.Arg(2, seccomp.MASKED_EQ, PROT_EXEC, PROT_EXEC))
        f.add_rule(eperm, "pkey_mprotect", seccomp.Arg(2, seccomp.MASKED_EQ, PROT_EXEC, PROT_EXEC))
        f.add_rule(eperm, "shmat", seccomp.Arg(2, seccomp.MASKED_EQ, SHM_EXEC, SHM_EXEC))
        f.load()
    # Last: once loaded, the allow-list (without seccomp() itself) admits no further filter.
    if allow is not None:
        f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(err))
        for name in allow:
            try:
                f.add_rule(seccomp.ALLOW, name)
            except (RuntimeError, ValueError):
                pass  # not a system call of this architecture
        # execve itself must pass to start the command.
        f.add_rule(seccomp.ALLOW, "execve")
        f.load()
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
