#!/bin/sh
# Makes a release tarball: the compiled daemon, the netlink helper and the production dependencies
# only, ready to unpack to /opt/tcpstate-exporter and run with Node.js (no npm, compiler or dev
# dependencies on the target). Usage: scripts/release-tarball.sh [OUTDIR]   (default: release/)
# Prints the tarball's path. Run from a checkout after `npm ci` (the dependency cache it filled is
# reused: no network needed). TCPSTATE_BUILD_REVISION overrides the commit recorded in the build.
set -eu
cd "$(dirname "$0")/.."
outdir=${1:-release}
version=$(node -p "require('./package.json').version")
name="tcpstate-exporter-$version-linux-$(uname -m)"

npm run --silent build >&2
TCPSTATE_NATIVE_REQUIRED=1 sh scripts/build-native.sh >&2

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
dir="$stage/$name"
mkdir -p "$dir/prometheus"
cp -R dist bin build package.json package-lock.json LICENSE README.md CHANGELOG.md deploy docs grafana "$dir/"
cp prometheus/tcpstate.rules.yml "$dir/prometheus/"
rm -f "$dir"/dist/*.map "$dir"/dist/*/*.map
# Production dependencies from the local npm cache; no install scripts (the helper is built above).
(cd "$dir" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error >&2)
mkdir -p "$outdir"
tar -C "$stage" -czf "$outdir/$name.tar.gz" --owner=0 --group=0 "$name"
echo "$outdir/$name.tar.gz"
