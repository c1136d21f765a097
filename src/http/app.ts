// The HTTP face: built without listening so tests can app.inject(). Only this module imports fastify.

import type { RequestListener, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Exposition } from '../metrics/registry.ts';
import type { SnapshotView } from '../snapshot.ts';
import { acceptsGzip, gzipPieces } from './compression.ts';
import type { WebSecurity } from './security.ts';
import { DEFAULT_LIMITS } from './server.ts';
import { escapeHtml, registerSocketsRoute, type SocketsOptions } from './sockets.ts';

export interface AppOptions {
  registry: Exposition;
  view: SnapshotView;
  telemetryPath: string;
  version: string;
  logger: FastifyBaseLogger;
  /**
   * /healthz fails once the latest snapshot (or, before the first, the start) is older than this:
   * polls that hang leave figures that are no longer true. Without it /healthz is always 200.
   */
  maxSnapshotAgeMs?: number;
  /** Called when the server closes (the poller stops here). */
  onClose?: () => Promise<void>;
  /** Serve /sockets (peer addresses). Off unless asked for (--web.sockets). */
  sockets?: boolean;
  /** /sockets: finds the processes owning socket inodes (on demand); without it no owners are shown. */
  findOwners?: SocketsOptions['findOwners'];
  /** --web.config.file at run time: auth, headers, rate limit on every path but the probes. */
  security?: WebSecurity;
  /** Makes the http/https server (server.ts serverParts); fastify's default otherwise (tests). */
  serverFactory?: (handler: RequestListener) => Server;
}

const STATUS_TEXT: Readonly<Record<number, string>> = { 400: 'bad request', 404: 'not found', 405: 'method not allowed', 413: 'request body too large', 415: 'unsupported media type' };

export function buildApp(options: AppOptions): FastifyInstance {
  const { registry, view, telemetryPath, version } = options;
  // Scrapes every few seconds would drown the log: no per-request lines.
  const app = Fastify({
    loggerInstance: options.logger,
    logController: new LogController({ disableRequestLogging: true }),
    // Every route is a GET: a body is never needed.
    bodyLimit: DEFAULT_LIMITS.bodyLimitBytes,
    // Connections are closed by server.ts shutdown(), which waits for requests in flight.
    forceCloseConnections: false,
    // Malformed requests and timeouts: fastify's default logs the error object, whose rawPacket
    // holds the request's bytes, Authorization header included. Log the code only.
    clientErrorHandler(this: FastifyInstance, err: Error & { code?: string }, socket: Duplex) {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      const [status, text] = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout'] : err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large'] : [400, 'Bad Request'];
      this.log.debug({ code: err.code }, 'client error');
      const body = `${status} ${text.toLowerCase()}\n`;
      if (socket.writable) socket.write(`HTTP/1.1 ${status} ${text}\r\nContent-Length: ${body.length}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n${body}`);
      socket.destroy();
    },
    ...(options.serverFactory === undefined ? {} : { serverFactory: options.serverFactory }),
    // Only for fastify's "listening at https://…" line: the server itself comes from serverFactory.
    ...(options.security?.tls === true ? { https: {} } : {}),
  });

  if (options.security !== undefined) app.addHook('onRequest', options.security.onRequest);

  // Error bodies never carry a stack, a file path or a library's message: a fixed text by status.
  // 4xx messages are about the request itself (fastify's validation) and are kept.
  app.setErrorHandler(async (err: Error & { statusCode?: number; validation?: unknown }, req, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) {
      req.log.error({ err: { type: err.name, message: err.message }, method: req.method, path: req.routeOptions.url }, 'request failed');
      return reply.code(status).type('text/plain; charset=utf-8').send(`${status} internal server error\n`);
    }
    const message = err.validation !== undefined ? err.message : (STATUS_TEXT[status] ?? 'bad request');
    return reply.code(status).type('text/plain; charset=utf-8').send(`${status} ${message}\n`);
  });

  app.get(telemetryPath, async (req, reply) => {
    // In pieces: the part made from the snapshot alone is encoded and compressed once per snapshot.
    const pieces = await registry.pieces();
    reply.type(registry.contentType).header('vary', 'Accept-Encoding');
    if (!acceptsGzip(req.headers['accept-encoding'])) return reply.send(Buffer.concat(pieces.map((p) => p.bytes)));
    return reply.header('content-encoding', 'gzip').send(await gzipPieces(pieces));
  });

  if (options.sockets === true) registerSocketsRoute(app, view, options.findOwners === undefined ? {} : { findOwners: options.findOwners });

  const startedAtMs = Date.now();
  app.get('/healthz', async (_req, reply) => {
    const max = options.maxSnapshotAgeMs;
    const taken = view.snapshot()?.takenAtMs;
    const ageMs = Date.now() - (taken ?? startedAtMs);
    if (max !== undefined && ageMs > max) {
      const what = taken === undefined ? 'no poll has completed since the start' : 'the latest poll completed';
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send(`unhealthy: ${what} ${Math.round(ageMs / 1000)} s ago (more than ${Math.round(max / 1000)} s: polls hang)\n`);
    }
    return reply.type('text/plain; charset=utf-8').send('ok\n');
  });

  app.get('/readyz', async (_req, reply) => {
    const snapshot = view.snapshot();
    // Every source down is not a reading of this host: not ready (the next good poll makes it so).
    const why =
      snapshot === undefined ? 'no poll has completed yet' : snapshot.sources.some((s) => s.up) ? undefined : 'every source failed in the latest poll (see the log)';
    return reply
      .code(why === undefined ? 200 : 503)
      .type('text/plain; charset=utf-8')
      .send(why === undefined ? 'ready\n' : `not ready: ${why}\n`);
  });

  if (telemetryPath !== '/') {
    const path = escapeHtml(telemetryPath);
    const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>tcpstate-exporter</title></head>
<body>
<h1>tcpstate-exporter ${escapeHtml(version)}</h1>
<p>Prometheus exporter for Linux TCP socket state: sockets per state, send queues held in FIN-WAIT-1,
persist (zero-window probe) timers and orphan memory.</p>
<ul>
<li><a href="${path}">${path}</a> &mdash; metrics</li>
<li><a href="/healthz">/healthz</a> &mdash; liveness</li>
<li><a href="/readyz">/readyz</a> &mdash; readiness (503 until the first poll has completed, and while every source fails)</li>
${options.sockets === true ? '<li><a href="/sockets?state=fin_wait1">/sockets</a> &mdash; the worst sockets of the latest poll (JSON, or HTML in a browser)</li>\n' : ''}</ul>
</body></html>
`;
    app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(page));
  }

  app.setNotFoundHandler(async (req, reply) => {
    const q = req.url.indexOf('?');
    const path = (q < 0 ? req.url : req.url.slice(0, q)).slice(0, 200).replace(/[^\x21-\x7e]/g, '?');
    return reply.code(404).type('text/plain; charset=utf-8').send(`404 not found: ${path}\n`);
  });

  if (options.onClose !== undefined) {
    const onClose = options.onClose;
    app.addHook('onClose', async () => onClose());
  }
  return app;
}
