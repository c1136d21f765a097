// The web config at run time: the loaded file, its re-reading, basic auth, extra headers and the
// rate limit, applied to every path but the probes.
//
// Re-reading. exporter-toolkit reads its file on every request and every TLS handshake. Here the
// file and the TLS files it names are stat()ed on every new connection (before its handshake) and
// every request, and read again only when one changed (inode, size, mtime or ctime: a Kubernetes
// Secret's symlink swap counts), or on SIGHUP. So a rotated certificate serves the very next
// connection and a changed password the very next request, without parsing YAML per request.
// As in exporter-toolkit, a file that became invalid (or unreadable) fails closed: guarded paths
// answer 500 until it is fixed (the error is logged once per change); TLS keeps its last good
// certificate. Switching TLS on or off, or changing client_auth_type, needs a restart (Node fixes
// both when the server is made): such a change is treated as invalid too.

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { statSync } from 'node:fs';
import bcrypt from 'bcryptjs';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import { dependencies, loadWebConfig, WebConfigError, type LoadedWebConfig } from './web-config.ts';

/** Paths served without authentication (orchestrator probes; they reveal nothing). */
export const UNGUARDED_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

/**
 * Compared against when the user name is unknown, so an unknown user costs the same bcrypt as a
 * known one (no user enumeration by timing). A hash of a string no one can send as a password's
 * match for a real user; cost 10, as htpasswd -B makes by default.
 */
const DUMMY_HASH = '$2b$10$SeX8ZuyS5U0dQcnmhXvq0e3ZK5HHJyyC865IxrMHIDVpmvewn3X56';

/** Verified (user, hash, password) outcomes kept, as exporter-toolkit's cache (it keeps 100). */
export const AUTH_CACHE_SIZE = 100;
/** bcrypt runs one at a time (CPU); at most this many wait, further first-time attempts get 429. */
export const MAX_WAITING_VERIFICATIONS = 32;

type TlsOptions = NonNullable<LoadedWebConfig['tlsOptions']>;

export class WebSecurity {
  private loaded: LoadedWebConfig | undefined;
  private error: string | undefined;
  private signature = '';
  /** HMAC key for the cache: entries do not hold passwords, and cannot be tested offline without it. */
  private readonly cacheKey = randomBytes(32);
  /**
   * Outcomes by HMAC key, successes and failures apart: wrong passwords (anyone can send them) only
   * ever evict other wrong passwords, never a scraper's verified entry; a hit refreshes its entry.
   */
  private readonly cache = { ok: new Set<string>(), denied: new Set<string>() };
  private bcryptQueue: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  /** bcrypt comparisons run so far (the cache makes repeated scrapes cost none). */
  bcryptRuns = 0;
  private tokens = 0;
  private tokensAt = 0;
  private readonly tlsListeners: Array<(o: TlsOptions) => void> = [];
  /** Whether the server was made with TLS (cannot change without a restart). */
  readonly tls: boolean;
  readonly clientAuth: string;

  /** Loads the file at start: throws WebConfigError (the caller exits non-zero). */
  constructor(
    private readonly path: string | undefined,
    private readonly logger: FastifyBaseLogger,
  ) {
    if (path !== undefined) {
      this.loaded = loadWebConfig(path);
      this.signature = this.sign();
    }
    this.tls = this.loaded?.tlsOptions !== undefined;
    this.clientAuth = this.loaded?.config.tls?.clientAuth ?? 'NoClientCert';
    this.tokens = this.loaded?.config.rateLimit?.burst ?? 0;
    this.tokensAt = Date.now();
  }

  /** The TLS options the server is made with (undefined: plain HTTP). */
  tlsOptions(): TlsOptions | undefined {
    return this.loaded?.tlsOptions;
  }

  /** Called with the new options whenever the TLS material is re-read successfully. */
  onTlsChange(listener: (o: TlsOptions) => void): void {
    this.tlsListeners.push(listener);
  }

  /** The settings in force, or undefined while the file is invalid. */
  current(): LoadedWebConfig | undefined {
    return this.error === undefined ? this.loaded : undefined;
  }

  private sign(): string {
    if (this.path === undefined) return '';
    return dependencies(this.path, this.loaded?.config)
      .map((f) => {
        try {
          const s = statSync(f, { bigint: true });
          return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
        } catch (e) {
          return (e as NodeJS.ErrnoException).code ?? 'error';
        }
      })
      .join('|');
  }

  /** Re-reads the file when it (or a file it names) changed since it was last read. Cheap: a few stat(). */
  check(): void {
    if (this.path === undefined) return;
    if (this.sign() !== this.signature) this.reload('changed');
  }

  /** Reads the file again now (SIGHUP, or a change seen by check()). */
  reload(reason: 'changed' | 'SIGHUP'): void {
    if (this.path === undefined) return;
    let next: LoadedWebConfig;
    try {
      next = loadWebConfig(this.path);
      const clientAuth = next.config.tls?.clientAuth ?? 'NoClientCert';
      if ((next.tlsOptions !== undefined) !== this.tls) {
        throw new WebConfigError(`TLS cannot be switched ${this.tls ? 'off' : 'on'} while running: restart the exporter`);
      }
      if (clientAuth !== this.clientAuth) {
        throw new WebConfigError(`tls_server_config.client_auth_type: a change (${this.clientAuth} → ${clientAuth}) needs a restart`);
      }
    } catch (e) {
      const message = e instanceof WebConfigError ? e.message : 'unexpected error';
      // Signature of what failed, so an unchanged bad file is not re-read on every request.
      this.signature = this.sign();
      if (this.error !== message) {
        this.logger.error({ webConfigFile: this.path, reason }, `--web.config.file: ${message}; refusing requests (500) until it is fixed`);
      }
      this.error = message;
      return;
    }
    this.loaded = next;
    this.signature = this.sign();
    const wasInvalid = this.error !== undefined;
    this.error = undefined;
    this.cache.ok.clear();
    this.cache.denied.clear();
    const limit = next.config.rateLimit;
    this.tokens = Math.min(this.tokens, limit?.burst ?? 0);
    if (next.tlsOptions !== undefined) for (const l of this.tlsListeners) l(next.tlsOptions);
    this.logger.info({ webConfigFile: this.path, reason, recovered: wasInvalid }, '--web.config.file re-read');
  }

  /** Token bucket: true if the request may go on. */
  private takeToken(limit: { intervalMs: number; burst: number }): boolean {
    const now = Date.now();
    this.tokens = Math.min(limit.burst, this.tokens + (now - this.tokensAt) / limit.intervalMs);
    this.tokensAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** fastify onRequest hook: headers, rate limit, then basic auth, on every path but the probes. */
  readonly onRequest = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (this.path === undefined) return;
    this.check();
    const loaded = this.current();
    if (loaded !== undefined) for (const [k, v] of Object.entries(loaded.config.headers)) void reply.header(k, v);
    const q = req.url.indexOf('?');
    if (UNGUARDED_PATHS.has(q < 0 ? req.url : req.url.slice(0, q))) return;
    if (loaded === undefined) {
      return reply.code(500).type('text/plain; charset=utf-8').send('500 internal server error: the web configuration is invalid (see the exporter log)\n');
    }
    const { users, rateLimit } = loaded.config;
    if (rateLimit !== undefined && !this.takeToken(rateLimit)) {
      return reply.code(429).header('retry-after', '1').type('text/plain; charset=utf-8').send('429 too many requests\n');
    }
    if (users.size === 0) return;
    const verdict = await this.verify(users, req.headers.authorization);
    if (verdict === 'ok') return;
    if (verdict === 'busy') {
      return reply.code(429).header('retry-after', '1').type('text/plain; charset=utf-8').send('429 too many requests\n');
    }
    return reply.code(401).header('www-authenticate', 'Basic').type('text/plain; charset=utf-8').send('401 unauthorized\n');
  };

  /** Checks an Authorization header against the users. Never logs or keeps the password. */
  async verify(users: ReadonlyMap<string, string>, header: string | undefined): Promise<'ok' | 'denied' | 'busy'> {
    const creds = parseBasic(header);
    if (creds === undefined) return 'denied';
    // Find the user comparing every name in constant time (digests of equal length).
    const wanted = createHash('sha256').update(creds.user).digest();
    let hash: string | undefined;
    for (const [name, h] of users) {
      if (timingSafeEqual(createHash('sha256').update(name).digest(), wanted)) hash = h;
    }
    const known = hash !== undefined;
    const against = hash ?? DUMMY_HASH;
    const key = createHmac('sha256', this.cacheKey).update(creds.user).update('\0').update(against).update('\0').update(creds.password).digest('base64');
    if (this.cache.ok.has(key)) {
      remember(this.cache.ok, key);
      return known ? 'ok' : 'denied';
    }
    if (this.cache.denied.has(key)) return 'denied';
    if (this.waiting >= MAX_WAITING_VERIFICATIONS) return 'busy';
    this.waiting++;
    const run = this.bcryptQueue.then(() => {
      this.bcryptRuns++;
      return bcrypt.compare(creds.password, against);
    });
    this.bcryptQueue = run.catch(() => undefined);
    let match: boolean;
    try {
      match = await run;
    } catch {
      match = false;
    } finally {
      this.waiting--;
    }
    const ok = match && known;
    remember(ok ? this.cache.ok : this.cache.denied, key);
    return ok ? 'ok' : 'denied';
  }
}

/** Adds or refreshes `key` as the newest entry, dropping the oldest beyond AUTH_CACHE_SIZE. */
function remember(set: Set<string>, key: string): void {
  set.delete(key);
  set.add(key);
  if (set.size > AUTH_CACHE_SIZE) set.delete(set.values().next().value!);
}

/** `Basic base64(user:password)` → its parts, or undefined. */
export function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  if (header === undefined) return undefined;
  const m = /^basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header);
  if (m === null) return undefined;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}
