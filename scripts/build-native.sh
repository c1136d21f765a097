#!/bin/sh
# Builds build/tcpstate-diag, the small netlink (inet_diag) dumper behind --source netlink.
# Run by `npm ci`/`npm install` (postinstall) and by `npm run build:native`. Without a C compiler
# it warns and succeeds: the exporter then reads the socket table with ss (--source auto).
# Set TCPSTATE_NATIVE_REQUIRED=1 to make a failed build an error (CI, the Dockerfile).
set -eu
cd "$(dirname "$0")/.."
out=build/tcpstate-diag
cc=${CC:-cc}
if [ -z "${CC:-}" ] && ! command -v cc >/dev/null 2>&1 && command -v gcc >/dev/null 2>&1; then cc=gcc; fi
if ! command -v "$cc" >/dev/null 2>&1; then
  msg="no C compiler ($cc): $out not built; --source auto will use ss (Debian: apt-get install gcc libc6-dev)"
  if [ "${TCPSTATE_NATIVE_REQUIRED:-0}" = 1 ]; then echo "build-native: $msg" >&2; exit 1; fi
  echo "build-native: warning: $msg" >&2
  exit 0
fi
mkdir -p build
if ! "$cc" -O2 -Wall -Wextra -std=c11 -pthread -o "$out.tmp" native/tcpstate-diag.c; then
  rm -f "$out.tmp"
  msg="compiling native/tcpstate-diag.c failed (needs libc6-dev / linux-libc-dev headers); --source auto will use ss"
  if [ "${TCPSTATE_NATIVE_REQUIRED:-0}" = 1 ]; then echo "build-native: $msg" >&2; exit 1; fi
  echo "build-native: warning: $msg" >&2
  exit 0
fi
mv "$out.tmp" "$out"
echo "build-native: built $out"
