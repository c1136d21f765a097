# tcpstate-exporter: build the TypeScript, then a slim runtime with iproute2 (ss).
# (Not built in this repository's CI: no Docker engine there. Keep it simple and pinned.)

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
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
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
# ss reads the socket table over netlink (sock_diag), which needs no privilege; run unprivileged.
USER 1000:1000
EXPOSE 9812
# Run with the host's network namespace (docker --network host, Kubernetes hostNetwork: true) so
# that ss and /proc/net/tcp see the host's sockets, not the container's own.
ENTRYPOINT ["node", "/app/bin/tcpstate-exporter.js"]
HEALTHCHECK --interval=30s --timeout=3s CMD node -e "fetch('http://127.0.0.1:9812/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
