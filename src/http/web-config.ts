// --web.config.file: Prometheus exporter-toolkit's web configuration format (the file users already
// write for node_exporter), parsed and checked here. Pure except loadWebConfig, which reads the
// file and the certificate files it names. Every problem is reported with the field it is in.
//
// Supported: tls_server_config (cert/cert_file, key/key_file, client_ca/client_ca_file,
// client_auth_type, min_version, max_version, cipher_suites, prefer_server_cipher_suites,
// curve_preferences), http_server_config.headers, basic_auth_users (bcrypt only), rate_limit.
// Not supported (refused with a message, never silently ignored): client_allowed_sans.
// http_server_config.http2 is accepted and has no effect: the exporter serves HTTP/1.1 only.

import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions, type SecureVersion } from 'node:tls';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseDuration } from '../config.ts';

export class WebConfigError extends Error {}

/** exporter-toolkit's client_auth_type values (Go's tls.ClientAuthType names). */
export const CLIENT_AUTH_TYPES = [
  'NoClientCert',
  'RequestClientCert',
  'RequireAnyClientCert',
  'RequireClientCert', // exporter-toolkit's old spelling of RequireAnyClientCert
  'VerifyClientCertIfGiven',
  'RequireAndVerifyClientCert',
] as const;
export type ClientAuthType = 'NoClientCert' | 'RequestClientCert' | 'RequireAnyClientCert' | 'VerifyClientCertIfGiven' | 'RequireAndVerifyClientCert';

const TLS_VERSIONS: Readonly<Record<string, SecureVersion>> = { TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' };

/**
 * Go's crypto/tls suite names (tls.CipherSuites()) for TLS ≤ 1.2 → OpenSSL's names. As in Go,
 * cipher_suites governs TLS 1.0–1.2 only; the three TLS 1.3 names are accepted and do nothing.
 */
export const CIPHER_SUITES: Readonly<Record<string, string | null>> = {
  TLS_RSA_WITH_AES_128_CBC_SHA: 'AES128-SHA',
  TLS_RSA_WITH_AES_256_CBC_SHA: 'AES256-SHA',
  TLS_RSA_WITH_AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_AES_128_GCM_SHA256: null,
  TLS_AES_256_GCM_SHA384: null,
  TLS_CHACHA20_POLY1305_SHA256: null,
};

/** Go's curve names → OpenSSL's. */
const CURVES: Readonly<Record<string, string>> = { CurveP256: 'P-256', CurveP384: 'P-384', CurveP521: 'P-521', X25519: 'X25519' };

/** The headers exporter-toolkit lets a web config set, with the values allowed where it restricts them. */
export const EXTRA_HEADERS: Readonly<Record<string, readonly string[] | null>> = {
  'Strict-Transport-Security': null,
  'X-Content-Type-Options': ['nosniff'],
  'X-Frame-Options': ['deny', 'sameorigin'],
  'X-XSS-Protection': null,
  'Content-Security-Policy': null,
};

/** $2a$/$2b$/$2y$ (htpasswd -B writes 2y), cost 04–31, 22 salt + 31 hash characters. */
const BCRYPT = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;

const HELP_BCRYPT = `make one with: htpasswd -nBC 10 "" | tr -d ':\\n'`;

const str = z.string({ message: 'must be a string' });

const tlsSchema = z.strictObject({
  cert: str.optional(),
  key: str.optional(),
  client_ca: str.optional(),
  cert_file: str.optional(),
  key_file: str.optional(),
  client_auth_type: z.enum(CLIENT_AUTH_TYPES, { message: `must be one of ${CLIENT_AUTH_TYPES.join(', ')}` }).optional(),
  client_ca_file: str.optional(),
  client_allowed_sans: z.unknown().optional(),
  min_version: z.enum(Object.keys(TLS_VERSIONS) as [string, ...string[]], { message: 'must be TLS10, TLS11, TLS12 or TLS13' }).optional(),
  max_version: z.enum(Object.keys(TLS_VERSIONS) as [string, ...string[]], { message: 'must be TLS10, TLS11, TLS12 or TLS13' }).optional(),
  cipher_suites: z.array(z.enum(Object.keys(CIPHER_SUITES) as [string, ...string[]], { message: 'is not a cipher suite name of Go\'s tls.CipherSuites() (e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)' }), { message: 'must be a list of cipher suite names' }).optional(),
  prefer_server_cipher_suites: z.boolean({ message: 'must be true or false' }).optional(),
  curve_preferences: z.array(z.enum(Object.keys(CURVES) as [string, ...string[]], { message: `must be one of ${Object.keys(CURVES).join(', ')}` }), { message: 'must be a list of curve names' }).optional(),
});

const schema = z
  .strictObject({
    tls_server_config: tlsSchema.nullish(),
    http_server_config: z
      .strictObject({
        http2: z.boolean({ message: 'must be true or false' }).optional(),
        headers: z.record(str, str).nullish(),
      })
      .nullish(),
    basic_auth_users: z.record(str, str).nullish(),
    rate_limit: z
      .strictObject({
        interval: z.union([str, z.number()]).optional(),
        burst: z.number({ message: 'must be a whole number' }).int('must be a whole number').min(0, 'must be >= 0').optional(),
      })
      .nullish(),
  }, { message: 'must be a YAML mapping' });

type Raw = z.infer<typeof schema>;

export interface TlsSettings {
  /** PEM text or a file (absolute: relative paths are resolved against the config file's directory). */
  cert: { file: string } | { pem: string };
  key: { file: string } | { pem: string };
  clientCa: { file: string } | { pem: string } | undefined;
  clientAuth: ClientAuthType;
  minVersion: SecureVersion;
  maxVersion: SecureVersion;
  /** OpenSSL cipher list for TLS ≤ 1.2, or undefined for Node's default. */
  ciphers: string | undefined;
  honorCipherOrder: boolean;
  /** OpenSSL curve list, or undefined for Node's default. */
  ecdhCurve: string | undefined;
}

export interface WebConfig {
  tls: TlsSettings | undefined;
  /** user → bcrypt hash. Empty: no authentication. */
  users: ReadonlyMap<string, string>;
  headers: Readonly<Record<string, string>>;
  /** Token bucket: one request per intervalMs, bursts of `burst`; undefined: no limit. */
  rateLimit: { intervalMs: number; burst: number } | undefined;
}

function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  return path.map(String).join('.');
}

/** Parses and checks a web config's text. `dir` is the directory relative file names are resolved against. */
export function parseWebConfig(text: string, dir: string): WebConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true, prettyErrors: true });
  } catch (e) {
    throw new WebConfigError(`not valid YAML: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
  }
  const result = schema.safeParse(doc ?? {});
  if (!result.success) {
    throw new WebConfigError(
      result.error.issues
        .map((i) => {
          if (i.code === 'unrecognized_keys') return `${i.keys.map((k) => fieldPath([...i.path, k])).join(', ')}: unknown field`;
          return i.path.length === 0 ? i.message : `${fieldPath(i.path)}: ${i.message}`;
        })
        .join('; '),
    );
  }
  return fromRaw(result.data, dir);
}

function fromRaw(raw: Raw, dir: string): WebConfig {
  const users = new Map<string, string>();
  for (const [user, hash] of Object.entries(raw.basic_auth_users ?? {})) {
    // The value is a secret: it never appears in a message.
    if (!BCRYPT.test(hash)) throw new WebConfigError(`basic_auth_users.${user}: not a bcrypt hash (plain-text passwords are refused; ${HELP_BCRYPT})`);
    if (user.includes(':')) throw new WebConfigError(`basic_auth_users.${user}: a user name cannot contain ":" (HTTP basic auth splits on it)`);
    users.set(user, hash);
  }

  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw.http_server_config?.headers ?? {})) {
    if (!(name in EXTRA_HEADERS)) {
      throw new WebConfigError(`http_server_config.headers.${name}: this header cannot be configured (allowed: ${Object.keys(EXTRA_HEADERS).join(', ')})`);
    }
    const allowed = EXTRA_HEADERS[name];
    if (allowed != null && !allowed.includes(value)) {
      throw new WebConfigError(`http_server_config.headers.${name}: "${value}" is not one of ${allowed.join(', ')}`);
    }
    if (/[\r\n\0]/.test(value)) throw new WebConfigError(`http_server_config.headers.${name}: the value contains a line break`);
    if (value !== '') headers[name] = value;
  }

  let rateLimit: WebConfig['rateLimit'];
  const rl = raw.rate_limit;
  if (rl != null) {
    const iv = rl.interval ?? 0;
    const intervalMs = typeof iv === 'number' ? (iv === 0 ? 0 : NaN) : iv === '0' || iv === '0s' ? 0 : (parseDuration(iv) ?? NaN);
    if (Number.isNaN(intervalMs)) throw new WebConfigError(`rate_limit.interval: "${String(iv)}" is not a duration like 100ms, 1s, 1m`);
    if (intervalMs > 0) rateLimit = { intervalMs, burst: rl.burst ?? 0 };
  }

  return { tls: tlsFromRaw(raw.tls_server_config ?? undefined, dir), users, headers, rateLimit };
}

function tlsFromRaw(t: z.infer<typeof tlsSchema> | undefined, dir: string): TlsSettings | undefined {
  if (t === undefined) return undefined;
  // exporter-toolkit's IsEnabled: any of these turns TLS on (and then cert and key are required).
  const enabled = [t.cert, t.key, t.cert_file, t.key_file, t.client_ca, t.client_ca_file, t.client_auth_type].some((v) => v !== undefined && v !== '');
  if (!enabled) return undefined;
  if (t.client_allowed_sans !== undefined && t.client_allowed_sans !== null) {
    throw new WebConfigError('tls_server_config.client_allowed_sans: not supported by tcpstate-exporter (refused rather than ignored); restrict clients with client_ca_file instead');
  }
  const pick = (inline: string | undefined, file: string | undefined, name: string, fileName: string, required: boolean) => {
    const hasInline = inline !== undefined && inline !== '';
    const hasFile = file !== undefined && file !== '';
    if (hasInline && hasFile) throw new WebConfigError(`tls_server_config: give ${name} or ${fileName}, not both`);
    if (hasFile) return { file: resolve(dir, file) };
    if (hasInline) return { pem: inline };
    if (required) throw new WebConfigError(`tls_server_config: missing one of ${name} or ${fileName}`);
    return undefined;
  };
  const cert = pick(t.cert, t.cert_file, 'cert', 'cert_file', true)!;
  const key = pick(t.key, t.key_file, 'key', 'key_file', true)!;
  const clientCa = pick(t.client_ca, t.client_ca_file, 'client_ca', 'client_ca_file', false);
  const clientAuth: ClientAuthType = t.client_auth_type === 'RequireClientCert' ? 'RequireAnyClientCert' : (t.client_auth_type ?? 'NoClientCert');
  if (clientCa !== undefined && clientAuth === 'NoClientCert') {
    throw new WebConfigError('tls_server_config.client_auth_type: client_ca_file is set but client_auth_type is NoClientCert (use RequireAndVerifyClientCert)');
  }
  if ((clientAuth === 'RequireAndVerifyClientCert' || clientAuth === 'VerifyClientCertIfGiven') && clientCa === undefined) {
    throw new WebConfigError(`tls_server_config.client_ca_file: required with client_auth_type ${clientAuth} (the CA that signs client certificates)`);
  }
  const minVersion = TLS_VERSIONS[t.min_version ?? 'TLS12']!;
  const maxVersion = TLS_VERSIONS[t.max_version ?? 'TLS13']!;
  if (minVersion > maxVersion) throw new WebConfigError('tls_server_config.min_version: higher than max_version');
  const suites = (t.cipher_suites ?? []).map((s) => CIPHER_SUITES[s]).filter((s): s is string => typeof s === 'string');
  const curves = (t.curve_preferences ?? []).map((c) => CURVES[c]!);
  return {
    cert,
    key,
    clientCa,
    clientAuth,
    minVersion,
    maxVersion,
    ciphers: suites.length > 0 ? suites.join(':') : undefined,
    honorCipherOrder: t.prefer_server_cipher_suites ?? true,
    ecdhCurve: curves.length > 0 ? curves.join(':') : undefined,
  };
}

/** Files the loaded config depends on: the config file itself and the TLS files it names. */
export function dependencies(path: string, config: WebConfig | undefined): string[] {
  const files = [path];
  const t = config?.tls;
  if (t !== undefined) for (const s of [t.cert, t.key, t.clientCa]) if (s !== undefined && 'file' in s) files.push(s.file);
  return files;
}

function material(s: { file: string } | { pem: string }, field: string): string {
  if ('pem' in s) return s.pem;
  try {
    return readFileSync(s.file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new WebConfigError(`tls_server_config.${field}: cannot read ${s.file} (${code})`);
  }
}

/** Node's TLS options for the settings: files read now, the context built once to prove it works. */
export function secureContextOptions(t: TlsSettings): SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean } {
  const cert = material(t.cert, 'file' in t.cert ? 'cert_file' : 'cert');
  const key = material(t.key, 'file' in t.key ? 'key_file' : 'key');
  const ca = t.clientCa === undefined ? undefined : material(t.clientCa, 'file' in t.clientCa ? 'client_ca_file' : 'client_ca');
  const options = {
    cert,
    key,
    ...(ca === undefined ? {} : { ca }),
    minVersion: t.minVersion,
    maxVersion: t.maxVersion,
    ...(t.ciphers === undefined ? {} : { ciphers: t.ciphers }),
    honorCipherOrder: t.honorCipherOrder,
    ...(t.ecdhCurve === undefined ? {} : { ecdhCurve: t.ecdhCurve }),
    // The handshake itself refuses a missing or unverifiable certificate only for
    // RequireAndVerifyClientCert; the other policies are applied once it completes (server.ts).
    requestCert: t.clientAuth !== 'NoClientCert',
    rejectUnauthorized: t.clientAuth === 'RequireAndVerifyClientCert',
  };
  const certField = 'file' in t.cert ? 'cert_file' : 'cert';
  const keyField = 'file' in t.key ? 'key_file' : 'key';
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw new WebConfigError(`tls_server_config.${certField}: not a PEM certificate`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new WebConfigError(`tls_server_config.${keyField}: not a PEM private key (or it is encrypted)`);
  }
  if (!x509.checkPrivateKey(privateKey)) throw new WebConfigError(`tls_server_config.${keyField}: this key does not belong to the certificate in ${certField}`);
  if (ca !== undefined && !/-----BEGIN CERTIFICATE-----/.test(ca)) {
    throw new WebConfigError(`tls_server_config.${'file' in t.clientCa! ? 'client_ca_file' : 'client_ca'}: no PEM certificate in it`);
  }
  try {
    createSecureContext(options);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const field = /cipher/i.test(msg) ? 'cipher_suites' : /curve|ecdh/i.test(msg) ? 'curve_preferences' : /ca|issuer/i.test(msg) ? 'client_ca_file' : certField;
    throw new WebConfigError(`tls_server_config.${field}: ${msg}`);
  }
  return options;
}

export interface LoadedWebConfig {
  config: WebConfig;
  tlsOptions: ReturnType<typeof secureContextOptions> | undefined;
}

/** Reads and checks the file and every file it names; throws WebConfigError naming the field. */
export function loadWebConfig(path: string): LoadedWebConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new WebConfigError(`cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const config = parseWebConfig(text, dirname(resolve(path)));
  return { config, tlsOptions: config.tls === undefined ? undefined : secureContextOptions(config.tls) };
}
