#!/bin/sh
# Makes the Dockerfile's base image (NODE_BASE, e.g. docker.io/library/node:24.22.3-bookworm-slim)
# in local container storage, for machines that reach Debian's mirrors and the npm registry but
# no container registry: a Debian 12 root filesystem from mmdebstrap (minbase, documentation
# excluded as in debian:bookworm-slim, with bookworm-updates and bookworm-security) plus the
# pinned Node.js LTS binary, headers and npm from the npm registry (scripts/node-dist.sh), and
# the `node` user (uid/gid 1000) of the official image. It is tagged exactly as the Dockerfile's
# FROM names it, so `buildah build --pull=never` uses it.
#
# The image carries the label tcpstate.base.recipe (a hash of this script and the pins); an
# existing image with the same recipe younger than TCPSTATE_BASE_MAX_AGE_DAYS (default 7: Debian's
# security updates) is kept. TCPSTATE_BASE_REBUILD=1 forces a rebuild. Needs root, buildah,
# mmdebstrap, curl. Prints the image reference on stdout.
set -eu
cd "$(dirname "$0")/.."
. ./scripts/node-dist.sh

base=$(sed -n 's/^ARG NODE_BASE=//p' Dockerfile | head -1)
[ -n "$base" ] || { echo "image-base: no 'ARG NODE_BASE=' in Dockerfile" >&2; exit 1; }
case "$base" in
  *@*) echo "image-base: NODE_BASE's default in the Dockerfile is pinned by digest ($base); a local build cannot reproduce that digest" >&2; exit 1 ;;
  *":$NODE_VERSION-bookworm"*) ;;
  *) echo "image-base: the Dockerfile's NODE_BASE ($base) does not name Node.js $NODE_VERSION (scripts/node-dist.sh)" >&2; exit 1 ;;
esac

recipe=$(cat scripts/image-base.sh scripts/node-dist.sh | sha256sum | cut -c1-16)
max_age_days=${TCPSTATE_BASE_MAX_AGE_DAYS:-7}

mkdir -p /run/lock
exec 9>/run/lock/tcpstate-image-base.lock
flock 9 # two builds of the same tag at once would race; the second reuses the first's image

if [ "${TCPSTATE_BASE_REBUILD:-0}" != 1 ] &&
  have=$(buildah inspect --type image --format '{{index .OCIv1.Config.Labels "tcpstate.base.recipe"}}' "$base" 2>/dev/null); then
  created=$(buildah inspect --type image --format '{{.OCIv1.Created.Unix}}' "$base")
  age_days=$((($(date +%s) - created) / 86400))
  if [ "$have" = "$recipe" ] && [ "$age_days" -lt "$max_age_days" ]; then
    echo "image-base: reusing $base (recipe $recipe, $age_days days old)" >&2
    echo "$base"
    exit 0
  fi
fi

start=$(date +%s)
work=$(mktemp -d /var/tmp/tcpstate-base.XXXXXX)
ctr=""
cleanup() {
  [ -z "$ctr" ] || buildah rm "$ctr" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

root=$work/rootfs
echo "image-base: mmdebstrap bookworm (minbase) ..." >&2
mmdebstrap --quiet --variant=minbase --include=ca-certificates \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --customize-hook='chroot "$1" groupadd --gid 1000 node' \
  --customize-hook='chroot "$1" useradd --uid 1000 --gid node --shell /bin/bash --create-home node' \
  bookworm "$root" \
  "deb http://deb.debian.org/debian bookworm main" \
  "deb http://deb.debian.org/debian bookworm-updates main" \
  "deb http://deb.debian.org/debian-security bookworm-security main"
echo "image-base: Node.js $NODE_VERSION and npm $NPM_VERSION from $NPM_REGISTRY ..." >&2
install_node_dist "$root/usr/local"
# What apt-get must not see inside the image build: mmdebstrap's resolv.conf/hostname of the host.
rm -f "$root/etc/resolv.conf" "$root/etc/hostname"

ctr=$(buildah from --pull=never scratch)
mnt=$(buildah mount "$ctr")
tar -C "$root" -cf - . | tar -C "$mnt" -xpf - --numeric-owner
buildah umount "$ctr" >/dev/null
buildah config \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env NODE_VERSION="$NODE_VERSION" \
  --cmd node --workingdir / --os linux --arch "$(dpkg --print-architecture)" \
  --label tcpstate.base.recipe="$recipe" \
  --label tcpstate.base.node="$NODE_VERSION" \
  --label tcpstate.base.npm="$NPM_VERSION" \
  --label tcpstate.base.made-by=scripts/image-base.sh \
  "$ctr"
old_id=$(buildah inspect --type image --format '{{.FromImageID}}' "$base" 2>/dev/null || true)
buildah commit --quiet --rm "$ctr" "$base" >/dev/null
ctr=""
# The image this one replaces is untagged now: remove it unless a container still uses it.
[ -z "$old_id" ] || buildah rmi "$old_id" >/dev/null 2>&1 || true
echo "image-base: built $base in $(($(date +%s) - start)) s" >&2
echo "$base"
