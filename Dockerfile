# tcpstate-exporter: build the TypeScript and the netlink helper, then a slim runtime with
# iproute2 (ss, the fallback source).
# (Not built in this repository's CI: no Docker engine there. Keep it simple and pinned.)

FROM node:20-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# npm ci's postinstall compiles native/tcpstate-diag.c into build/; here a failure is an error.
COPY scripts/build-native.sh ./scripts/
COPY native ./native
RUN TCPSTATE_NATIVE_REQUIRED=1 npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 \
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
USER 1000:1000
EXPOSE 9812
# Run with the host's network namespace (docker --network host, Kubernetes hostNetwork: true) so
# that the netlink dump, ss and /proc/net/tcp see the host's sockets, not the container's own.
ENTRYPOINT ["node", "/app/bin/tcpstate-exporter.js"]
HEALTHCHECK --interval=30s --timeout=3s CMD node -e "fetch('http://127.0.0.1:9812/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
