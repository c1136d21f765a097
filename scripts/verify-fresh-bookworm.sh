#!/bin/sh
# Runs the README's two commands, exactly as written, on a fresh Debian 12 root filesystem:
# mmdebstrap bookworm (default variant: what a minimal Debian install has, nodejs not included),
# a clone of this repository in it, entered with unshare + pivot_root (its own mounts of /proc, /sys,
# /dev, /run, the host's network, which the kernel tests need). Prints each command's time and
# status. Root only; takes ~10 minutes. Not part of CI (it is what the README promises).
#
#   sudo scripts/verify-fresh-bookworm.sh [REPO-OR-CLONE-URL [BRANCH]]
#
# PREINSTALL="pkg ..." adds Debian packages to the root filesystem first (e.g. PREINSTALL=nodejs: a
# Debian 12 that has its own Node.js 18); ONLY_FIRST=1 stops after the first command.
#
# Networks that reach the npm registry through a TLS-intercepting proxy: set EXTRA_CA=FILE (a PEM
# CA) and it is installed in the root filesystem as a site's own CA would be
# (/usr/local/share/ca-certificates, NODE_EXTRA_CA_CERTS), before the commands run.
set -eu
repo=${1:-$(cd "$(dirname "$0")/.." && pwd)}
branch=${2:-}
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
work=$(mktemp -d /var/tmp/tcpstate-fresh.XXXXXX)
root=$work/rootfs
echo "fresh-bookworm: $root"
t0=$(date +%s)
mmdebstrap --quiet ${PREINSTALL:+--include="$(echo $PREINSTALL | tr ' ' ,)"} bookworm "$root" \
  "deb http://deb.debian.org/debian bookworm main" \
  "deb http://deb.debian.org/debian bookworm-updates main" \
  "deb http://deb.debian.org/debian-security bookworm-security main"
echo "fresh-bookworm: mmdebstrap $(($(date +%s) - t0)) s; node in it: $(chroot "$root" sh -c 'command -v node && node -v || echo none' | tr '\n' ' ')"
git clone -q ${branch:+-b "$branch"} "$repo" "$root/root/tcpstate-exporter"
echo "fresh-bookworm: cloned $(git -C "$root/root/tcpstate-exporter" log --oneline -1)"
cp /etc/resolv.conf "$root/etc/resolv.conf"
extra_env=""
if [ -n "${EXTRA_CA:-}" ]; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp "$EXTRA_CA" "$root/usr/local/share/ca-certificates/site-ca.crt"
  extra_env="NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/site-ca.crt"
fi

run() { # run LABEL COMMAND: one README command in the chroot, as root's login shell would
  label=$1
  shift
  s=$(date +%s)
  set +e
  unshare --mount --propagation private --fork sh -c '
    root=$1; shift
    mount --bind "$root" "$root" # / must be a mount point (ip netns exec remounts it)
    mount -t proc proc "$root/proc"
    mount -t sysfs sys "$root/sys"
    # a Debian machine has the cgroup2 hierarchy mounted there (the netns identity test makes a pod-shaped cgroup)
    mount -t cgroup2 none "$root/sys/fs/cgroup"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs tmpfs "$root/run"
    mount -t tmpfs tmpfs "$root/tmp"
    # pivot_root, not chroot: the kernel refuses user namespaces to a chrooted process (unshare(2):
    # EPERM "in a chroot environment"), which a real machine never is; the tests use them.
    mkdir -p "$root/.oldroot"
    cd "$root" && pivot_root . .oldroot && cd / || exit 125
    umount -l /.oldroot 2>/dev/null || true
    exec env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"' \
    sh "$root" $extra_env sh -c "cd /root/tcpstate-exporter && $*"
  rc=$?
  set -e
  echo "fresh-bookworm: [$label] exit $rc after $(($(date +%s) - s)) s: $*"
  return $rc
}

# The commands, taken from the README (the first two ```sh blocks), not retyped here.
first=$(awk '/^```sh$/ {getline; print; exit}' "$root/root/tcpstate-exporter/README.md")
second=$(awk '/^```sh$/ {n++; if (n == 2) {getline; print; exit}}' "$root/root/tcpstate-exporter/README.md")
echo "fresh-bookworm: first:  $first"
echo "fresh-bookworm: second: $second"

# The first command ends in a daemon (npm start): it runs until it serves /metrics with the
# netlink source up (checked from outside: the chroot shares this host's network), then is stopped.
if ss -Htln 'sport = :9812' | grep -q .; then echo "fresh-bookworm: port 9812 is taken on this host" >&2; exit 1; fi
run first "$first" &
first_pid=$!
ok=0
for _ in $(seq 900); do
  sleep 1
  kill -0 "$first_pid" 2>/dev/null || break
  if curl -fsS http://127.0.0.1:9812/metrics 2>/dev/null | grep -E '^tcpstate_(source_up|build_info)'; then ok=1; break; fi
done
# the daemon inside: a descendant of the first command running the exporter (after pivot_root its
# /proc/PID/root no longer names the root filesystem's path, so it is found by ancestry)
descendants() { for c in $(pgrep -P "$1" || true); do echo "$c"; descendants "$c"; done; }
for p in $(descendants "$first_pid"); do
  tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q 'tcpstate-exporter.js' && kill -TERM "$p" 2>/dev/null || true
done
# (npm start, its shell and unshare then end by themselves: killing them first would orphan the daemon)
wait "$first_pid" || true
[ "$ok" = 1 ] || { echo "fresh-bookworm: FIRST COMMAND never served /metrics" >&2; exit 1; }
echo "fresh-bookworm: first command served /metrics after $(($(date +%s) - t0)) s since start"
if [ "${ONLY_FIRST:-0}" = 1 ]; then rm -rf "$work"; exit 0; fi
run second "$second"
echo "fresh-bookworm: both commands passed in $(($(date +%s) - t0)) s; removing $work"
rm -rf "$work"
