# tcpstate-exporter: build the TypeScript and the netlink helper, then a slim runtime with
# iproute2 (ss, the fallback source) and tini (PID 1: reaps every child, forwards signals).
# Built and run by `npm run test:image` (buildah, no Docker engine needed): see README "Image".
#
# The base is the official Node.js image of the current LTS line on Debian 12, pinned to one
# release by NODE_BASE. Where you build from a registry, pin it by digest as well:
#   docker build --build-arg NODE_BASE=docker.io/library/node:24.22.3-bookworm-slim@sha256:<digest> .
# (<digest>: `skopeo inspect docker://docker.io/library/node:24.22.3-bookworm-slim`, field Digest,
# or `docker buildx imagetools inspect`). Machines without a container registry make this exact
# tag locally with scripts/image-base.sh. To move to a newer Node.js release, change the tag here
# and the pins in scripts/node-dist.sh together (test:image refuses a mismatch).
ARG NODE_BASE=docker.io/library/node:24.22.3-bookworm-slim

FROM ${NODE_BASE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY scripts/build-native.sh scripts/build.ts scripts/build-info.ts ./scripts/
COPY native ./native
COPY src ./src
# The commit built (the context has no .git): --build-arg TCPSTATE_BUILD_REVISION=$(git rev-parse HEAD).
# npm run build records it in dist/build-info.json, for --version and tcpstate_build_info.
ARG TCPSTATE_BUILD_REVISION=unknown
# npm ci's postinstall compiles native/tcpstate-diag.c into build/; here a failure is an error
# (warnings are not: a newer compiler's new warning must not fail the image).
RUN TCPSTATE_NATIVE_REQUIRED=1 npm ci --no-audit --no-fund \
 && npm run build

FROM ${NODE_BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# --ignore-scripts: the helper comes from the build stage (no compiler here).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY --from=build /app/build ./build
COPY bin ./bin
# The helper and ss read the socket table over netlink (sock_diag), which needs no privilege.
# Nothing is written at run time: the root filesystem can be read-only.
USER 1000:1000
EXPOSE 9812
# Run with the host's network namespace (docker --network host, Kubernetes hostNetwork: true) so
# that the netlink dump, ss and /proc/net/tcp see the host's sockets, not the container's own.
# tini -s: reaps as PID 1, and as a registered subreaper when something else is PID 1.
ENTRYPOINT ["/usr/bin/tini", "-s", "--", "/app/bin/tcpstate-exporter.js"]
# Finds the exporter's own listening sockets, so it follows --web.listen-address wherever it is
# set; plain HTTP or TLS. Needs the docker image format (buildah build --format docker).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s CMD ["node", "/app/bin/tcpstate-healthcheck.js"]
