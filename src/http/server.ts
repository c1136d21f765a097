// The listening socket: the Node http/https server fastify runs on, with the limits a hostile or
// broken client meets (timeouts, a connection cap), TLS from --web.config.file with its reloads
// and client-certificate policy, the all-interfaces listen (dual-stack `::`, IPv4 when the host has
// no IPv6), and a shutdown that cannot hang.

import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { WebSecurity } from './security.ts';

export interface ServerLimits {
  /** Whole request line and headers must arrive within this (slowloris). */
  headersTimeoutMs: number;
  /** Whole request, body included, must arrive within this (a trickled body). */
  requestTimeoutMs: number;
  /** A kept-alive connection with no request is closed after this. */
  keepAliveTimeoutMs: number;
  /** A connection with no traffic at all is closed after this. */
  idleTimeoutMs: number;
  /** Open connections at most; beyond, the oldest one without a request in flight is closed. */
  maxConnections: number;
  /** How long in-flight requests get at shutdown before their connections are closed. */
  shutdownGraceMs: number;
  /** Request bodies above this are refused (every route is a GET). */
  bodyLimitBytes: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 20_000,
  // Longer than the usual scrape intervals (15 s–60 s), so Prometheus keeps its connection.
  keepAliveTimeoutMs: 120_000,
  idleTimeoutMs: 150_000,
  maxConnections: 512,
  shutdownGraceMs: 2_000,
  bodyLimitBytes: 16 * 1024,
};

interface Conn {
  /** The accepted socket, and its TLS socket once the handshake is done (closing that one closes both). */
  socket: Socket;
  tls: TLSSocket | undefined;
  /** Requests being answered on it. */
  inFlight: number;
}

/** A live connection's remote endpoint: unique among the connections of one listener. */
function endpoint(s: Socket): string | undefined {
  return s.remoteAddress === undefined ? undefined : `${s.remoteAddress}|${s.remotePort}`;
}

function close(c: Conn): void {
  (c.tls ?? c.socket).destroy();
  c.socket.destroy();
}

/**
 * Tracks every accepted connection (TLS ones from before their handshake, which Node's own
 * connection list does not see), caps their number, and closes them at shutdown.
 */
export class Connections {
  /** By remote endpoint, in accept order. */
  private readonly conns = new Map<string, Conn>();
  private closing = false;
  evicted = 0;

  constructor(
    private readonly max: number,
    private readonly logger: FastifyBaseLogger,
  ) {}

  get size(): number {
    return this.conns.size;
  }

  accept(socket: Socket): void {
    const key = endpoint(socket);
    if (this.closing || key === undefined) {
      socket.destroy();
      return;
    }
    if (this.conns.size >= this.max) {
      // Oldest first (Map order is accept order): a flood of idle connections cannot lock out a
      // scraper that connects and asks at once.
      let victim: [string, Conn] | undefined;
      for (const e of this.conns) {
        if (e[1].inFlight === 0) {
          victim = e;
          break;
        }
      }
      if (victim === undefined) {
        socket.destroy();
        return;
      }
      this.evicted++;
      if (this.evicted === 1 || this.evicted % 1000 === 0) {
        this.logger.warn({ maxConnections: this.max, evicted: this.evicted }, 'connection limit reached: closing the oldest idle connections');
      }
      this.conns.delete(victim[0]);
      close(victim[1]);
    }
    const conn: Conn = { socket, tls: undefined, inFlight: 0 };
    this.conns.set(key, conn);
    socket.once('close', () => {
      if (this.conns.get(key) === conn) this.conns.delete(key);
    });
  }

  /** The connection's handshake is done: close it through its TLS socket from now on. */
  secured(tls: TLSSocket): void {
    const key = endpoint(tls);
    const c = key === undefined ? undefined : this.conns.get(key);
    if (c === undefined) return;
    c.tls = tls;
    tls.once('close', () => {
      if (this.conns.get(key!) === c) this.conns.delete(key!);
    });
  }

  request(req: IncomingMessage, res: ServerResponse): void {
    const key = endpoint(req.socket);
    const c = key === undefined ? undefined : this.conns.get(key);
    if (c === undefined) return;
    c.inFlight++;
    res.once('close', () => {
      c.inFlight--;
      if (this.closing && c.inFlight === 0) close(c);
    });
  }

  /** Stop accepting; close every connection with no request in flight now. */
  beginShutdown(): void {
    this.closing = true;
    for (const c of this.conns.values()) if (c.inFlight === 0) close(c);
  }

  destroyAll(): void {
    for (const c of this.conns.values()) close(c);
  }
}

export interface ServerParts {
  factory: (handler: RequestListener) => Server;
  connections: Connections;
  limits: ServerLimits;
}

/** A fastify serverFactory making the http or https server with the limits and TLS settings. */
export function serverParts(security: WebSecurity, logger: FastifyBaseLogger, limits: ServerLimits = DEFAULT_LIMITS): ServerParts {
  const connections = new Connections(limits.maxConnections, logger);
  const factory = (handler: RequestListener): Server => {
    const common = {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // How often Node checks the two timeouts above (default 30 s would let them overrun).
      connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(limits.headersTimeoutMs / 4))),
      // A request without Host is refused (HTTP/1.1), as Go's server does.
      requireHostHeader: true,
    };
    const tlsOptions = security.tlsOptions();
    let server: Server;
    let tlsServer: TlsServer | undefined;
    if (tlsOptions === undefined) {
      server = createHttpServer(common, handler);
    } else {
      const s = createHttpsServer({ ...common, ...tlsOptions }, handler);
      server = s;
      tlsServer = s;
    }
    server.setTimeout(limits.idleTimeoutMs);
    // Before the TLS handshake (prepended: ahead of the listener that makes the TLS socket), so
    // a changed certificate serves this very connection.
    server.prependListener('connection', (socket: Socket) => {
      security.check();
      connections.accept(socket);
    });
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => connections.request(req, res));
    if (tlsServer !== undefined) {
      security.onTlsChange((o) => tlsServer.setSecureContext(o));
      tlsServer.on('secureConnection', (tls: TLSSocket) => {
        connections.secured(tls);
        // Policies the handshake does not enforce by itself (see web-config.ts secureContextOptions).
        const hasCert = Object.keys(tls.getPeerCertificate()).length > 0;
        const policy = security.clientAuth;
        if ((policy === 'RequireAnyClientCert' && !hasCert) || (policy === 'VerifyClientCertIfGiven' && hasCert && !tls.authorized)) {
          logger.debug({ policy, reason: tls.authorizationError }, 'client certificate refused');
          tls.destroy();
        }
      });
      // Handshake failures (plain HTTP to the TLS port, untrusted or expired client certificates)
      // are the client's problem: one debug line, never the stack.
      tlsServer.on('tlsClientError', (err: Error & { code?: string }, tls: TLSSocket) => {
        // A refused client certificate shows as a hang-up; the verification result says why.
        const certificate = tls.authorizationError === undefined || tls.authorizationError === null ? undefined : String(tls.authorizationError);
        logger.debug({ code: err.code, reason: err.message.slice(0, 200), ...(certificate === undefined ? {} : { certificate }) }, 'TLS handshake failed');
        tls.destroy();
      });
    }
    return server;
  };
  return { factory, connections, limits };
}

/**
 * Listens on host:port. An empty host means all interfaces, as Go's `:port` does: `::` (dual-stack:
 * IPv4 clients arrive as ::ffff:a.b.c.d), or 0.0.0.0 when the host has no IPv6.
 */
export async function listen(app: FastifyInstance, host: string, port: number): Promise<string> {
  if (host !== '') return app.listen({ host, port });
  try {
    return await app.listen({ host: '::', port });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL' && code !== 'EPROTONOSUPPORT') throw e;
    app.log.info({ code }, 'no IPv6 on this host: listening on 0.0.0.0 only');
    return app.listen({ host: '0.0.0.0', port });
  }
}

/**
 * Closes the server: no new connections; idle ones closed now; requests in flight get
 * shutdownGraceMs, then their connections are closed too. Resolves once the server and its
 * onClose hooks (the poller) are done.
 */
export async function shutdown(app: FastifyInstance, parts: ServerParts): Promise<void> {
  parts.connections.beginShutdown();
  const timer = setTimeout(() => parts.connections.destroyAll(), parts.limits.shutdownGraceMs);
  try {
    await app.close();
  } finally {
    clearTimeout(timer);
  }
}
