// The HTTP face: built without listening so tests can app.inject(). Only this module imports fastify.

import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Exposition } from '../metrics/registry.ts';
import type { SnapshotView } from '../snapshot.ts';
import { escapeHtml, registerSocketsRoute } from './sockets.ts';

export interface AppOptions {
  registry: Exposition;
  view: SnapshotView;
  telemetryPath: string;
  version: string;
  logger: FastifyBaseLogger;
  /** Called when the server closes (the poller stops here). */
  onClose?: () => Promise<void>;
}

export function buildApp(options: AppOptions): FastifyInstance {
  const { registry, view, telemetryPath, version } = options;
  // Scrapes every few seconds would drown the log: no per-request lines.
  const app = Fastify({
    loggerInstance: options.logger,
    logController: new LogController({ disableRequestLogging: true }),
  });

  app.get(telemetryPath, async (_req, reply) => {
    const body = await registry.metrics();
    return reply.type(registry.contentType).send(body);
  });

  registerSocketsRoute(app, view);

  app.get('/healthz', async (_req, reply) => reply.type('text/plain; charset=utf-8').send('ok\n'));

  app.get('/readyz', async (_req, reply) => {
    const ready = view.snapshot() !== undefined;
    return reply
      .code(ready ? 200 : 503)
      .type('text/plain; charset=utf-8')
      .send(ready ? 'ready\n' : 'not ready: no poll has completed yet\n');
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
<li><a href="/readyz">/readyz</a> &mdash; readiness (503 until the first poll has completed)</li>
<li><a href="/sockets?state=fin_wait1">/sockets</a> &mdash; the worst sockets of the latest poll (JSON, or HTML in a browser)</li>
</ul>
</body></html>
`;
    app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(page));
  }

  app.setNotFoundHandler(async (req, reply) =>
    reply.code(404).type('text/plain; charset=utf-8').send(`404 not found: ${req.url}\n`),
  );

  if (options.onClose !== undefined) {
    const onClose = options.onClose;
    app.addHook('onClose', async () => onClose());
  }
  return app;
}
