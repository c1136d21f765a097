#!/bin/sh
# Installs what tcpstate-exporter needs on Debian: iproute2 (ss), and Node.js >= 20.5 when absent.
# With --test, also what the test suite needs: prometheus (promtool), python3 (the socket lab) and
# iptables (test/kernel/backoff.test.ts drops packets inside its own network namespace).
# Safe to re-run. Never replaces an existing Node.js >= 20.5 (e.g. from NodeSource).
set -eu

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# gcc + libc6-dev: build/tcpstate-diag, the netlink source (npm ci builds it; without them, ss is used).
pkgs="iproute2 ca-certificates gcc libc6-dev"
[ "$want_test" = 1 ] && pkgs="$pkgs prometheus python3 iptables"

node_ok() {
  command -v node >/dev/null 2>&1 && node -e '
    const [a, b] = process.versions.node.split(".").map(Number);
    process.exit(a > 20 || (a === 20 && b >= 5) ? 0 : 1);'
}

missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if ! node_ok; then
  # Debian 13 ships Node.js 20; Debian 12's is 18, too old for fastify 5.
  candidate=$(apt-cache policy nodejs 2>/dev/null | awk '/Candidate:/ {print $2}')
  case "$candidate" in
    2[0-9].*|[3-9][0-9].*) missing="$missing nodejs npm" ;;
    *)
      echo "tcpstate-exporter needs Node.js >= 20.5; this system offers nodejs '${candidate:-none}'." >&2
      echo "Install Node.js 20 or newer (e.g. https://github.com/nodesource/distributions) and re-run." >&2
      exit 1 ;;
  esac
fi
if [ -n "$missing" ]; then
  $SUDO apt-get update -qq
  # prometheus is only wanted for promtool: do not start its server.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
  if [ "$want_test" = 1 ] && command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi
node_ok || { echo "Node.js >= 20.5 still missing" >&2; exit 1; }
echo "debian-setup: ready (node $(node -v), $(ss -V 2>/dev/null | head -1))"
