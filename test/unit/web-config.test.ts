// --web.config.file parsing (exporter-toolkit's format): what is accepted, and for each mistake
// a message naming the field. loadWebConfig against real certificate files made by openssl.

import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { loadWebConfig, parseWebConfig, WebConfigError } from '../../src/http/web-config.ts';
import { parseBasic } from '../../src/http/security.ts';
import { makeCerts, type Certs } from '../helpers/tls.ts';

// htpasswd -nbBC 10 "" secret (made for this test; "secret" is the password)
const HASH = '$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG';

const parse = (yaml: string) => parseWebConfig(yaml, '/etc/tcpstate');
const rejects = (yaml: string, re: RegExp) =>
  assert.throws(() => parse(yaml), (e: unknown) => e instanceof WebConfigError && re.test(e.message), `${yaml} should fail with ${re}`);

describe('web config: accepted', () => {
  it('an empty file: plain HTTP, no auth (as exporter-toolkit)', () => {
    for (const text of ['', '---\n', '{}\n']) {
      const c = parse(text);
      assert.equal(c.tls, undefined);
      assert.equal(c.users.size, 0);
      assert.deepEqual(c.headers, {});
    }
  });

  it('TLS with relative file names resolved against the config file directory, TLS 1.2 to 1.3 by default', () => {
    const c = parse('tls_server_config:\n  cert_file: server.crt\n  key_file: /abs/server.key\n');
    assert.deepEqual(c.tls?.cert, { file: '/etc/tcpstate/server.crt' });
    assert.deepEqual(c.tls?.key, { file: '/abs/server.key' });
    assert.equal(c.tls?.minVersion, 'TLSv1.2');
    assert.equal(c.tls?.maxVersion, 'TLSv1.3');
    assert.equal(c.tls?.clientAuth, 'NoClientCert');
    assert.equal(c.tls?.ciphers, undefined);
    assert.equal(c.tls?.honorCipherOrder, true);
  });

  it('mTLS, versions, Go cipher and curve names mapped to OpenSSL names (TLS 1.3 suites ignored as in Go)', () => {
    const c = parse(
      [
        'tls_server_config:',
        '  cert_file: s.crt',
        '  key_file: s.key',
        '  client_auth_type: RequireAndVerifyClientCert',
        '  client_ca_file: ca.crt',
        '  min_version: TLS12',
        '  max_version: TLS12',
        '  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]',
        '  prefer_server_cipher_suites: false',
        '  curve_preferences: [X25519, CurveP256]',
      ].join('\n'),
    );
    assert.equal(c.tls?.clientAuth, 'RequireAndVerifyClientCert');
    assert.deepEqual(c.tls?.clientCa, { file: '/etc/tcpstate/ca.crt' });
    assert.equal(c.tls?.maxVersion, 'TLSv1.2');
    assert.equal(c.tls?.ciphers, 'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305');
    assert.equal(c.tls?.honorCipherOrder, false);
    assert.equal(c.tls?.ecdhCurve, 'X25519:P-256');
  });

  it('RequireClientCert is the old spelling of RequireAnyClientCert', () => {
    assert.equal(parse('tls_server_config: {cert_file: a, key_file: b, client_auth_type: RequireClientCert}').tls?.clientAuth, 'RequireAnyClientCert');
  });

  it('bcrypt users ($2a$, $2b$, $2y$), the allowed headers, rate_limit, http2 accepted', () => {
    const c = parse(
      [
        'basic_auth_users:',
        `  alice: ${HASH}`,
        `  bob: ${HASH.replace('$2y$', '$2b$')}`,
        'http_server_config:',
        '  http2: false',
        '  headers:',
        '    X-Frame-Options: deny',
        '    X-Content-Type-Options: nosniff',
        '    Strict-Transport-Security: max-age=31536000; includeSubDomains',
        '    Content-Security-Policy: ""',
        'rate_limit: {interval: 100ms, burst: 5}',
      ].join('\n'),
    );
    assert.deepEqual([...c.users.keys()], ['alice', 'bob']);
    // A blank header is unset, as exporter-toolkit documents.
    assert.deepEqual(c.headers, { 'X-Frame-Options': 'deny', 'X-Content-Type-Options': 'nosniff', 'Strict-Transport-Security': 'max-age=31536000; includeSubDomains' });
    assert.deepEqual(c.rateLimit, { intervalMs: 100, burst: 5 });
  });
});

describe('web config: refused, naming the field', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['YAML syntax', 'tls_server_config: [', /not valid YAML/],
    ['not a mapping', '- a\n- b\n', /must be a YAML mapping/],
    ['unknown top-level field', 'basic_auth_user:\n  a: b\n', /basic_auth_user: unknown field/],
    ['unknown TLS field', 'tls_server_config:\n  certfile: a\n', /tls_server_config\.certfile: unknown field/],
    ['plain-text password', 'basic_auth_users:\n  alice: hunter2\n', /basic_auth_users\.alice: not a bcrypt hash/],
    ['truncated hash', `basic_auth_users:\n  alice: ${HASH.slice(0, -1)}\n`, /basic_auth_users\.alice: not a bcrypt hash/],
    ['a user with a colon', `basic_auth_users:\n  "a:b": ${HASH}\n`, /basic_auth_users\.a:b: a user name cannot contain ":"/],
    ['missing key', 'tls_server_config:\n  cert_file: a\n', /missing one of key or key_file/],
    ['missing cert', 'tls_server_config:\n  key_file: a\n', /missing one of cert or cert_file/],
    ['cert and cert_file', 'tls_server_config:\n  cert: x\n  cert_file: a\n  key_file: b\n', /cert or cert_file, not both/],
    ['bad client_auth_type', 'tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Always\n', /tls_server_config\.client_auth_type: must be one of/],
    ['CA without a policy', 'tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: ca\n', /client_auth_type: client_ca_file is set but client_auth_type is NoClientCert/],
    ['verify without a CA', 'tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n', /client_ca_file: required with client_auth_type RequireAndVerifyClientCert/],
    ['bad version', 'tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS14\n', /tls_server_config\.min_version: must be TLS10/],
    ['min above max', 'tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  max_version: TLS12\n', /min_version: higher than max_version/],
    ['invented cipher', 'tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_FOO]\n', /tls_server_config\.cipher_suites\.0: is not a cipher suite name/],
    ['invented curve', 'tls_server_config:\n  cert_file: a\n  key_file: b\n  curve_preferences: [CurveP999]\n', /tls_server_config\.curve_preferences\.0: must be one of/],
    ['client_allowed_sans (not supported: refused, not ignored)', 'tls_server_config:\n  cert_file: a\n  key_file: b\n  client_allowed_sans: [x]\n', /client_allowed_sans: not supported/],
    ['header not allowed', 'http_server_config:\n  headers:\n    Server: x\n', /http_server_config\.headers\.Server: this header cannot be configured/],
    ['header value not allowed', 'http_server_config:\n  headers:\n    X-Frame-Options: allow\n', /headers\.X-Frame-Options: "allow" is not one of deny, sameorigin/],
    ['http2 not a boolean', 'http_server_config:\n  http2: maybe\n', /http_server_config\.http2: must be true or false/],
    ['rate_limit interval', 'rate_limit:\n  interval: soon\n', /rate_limit\.interval: "soon" is not a duration/],
  ];
  for (const [name, yaml, re] of cases) it(name, () => rejects(yaml, re));

  it('never puts a password hash into a message', () => {
    try {
      parse(`basic_auth_users:\n  alice: ${HASH}x\n`);
      assert.fail('accepted');
    } catch (e) {
      assert.ok(e instanceof WebConfigError);
      assert.doesNotMatch(e.message, /X0h1g/);
    }
  });
});

describe('basic auth header', () => {
  it('parses user:password (password may hold colons), refuses anything else', () => {
    const b = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
    assert.deepEqual(parseBasic(b('prom:a:b')), { user: 'prom', password: 'a:b' });
    assert.deepEqual(parseBasic(`basic  ${Buffer.from('u:').toString('base64')}`), { user: 'u', password: '' });
    for (const h of [undefined, '', 'Bearer x', b('nocolon'), 'Basic', 'Basic !!!']) assert.equal(parseBasic(h), undefined, String(h));
  });
});

describe('loadWebConfig with real files', () => {
  let certs: Certs;
  before(() => {
    certs = makeCerts();
  });
  after(() => rmSync(certs.dir, { recursive: true, force: true }));
  const write = (yaml: string) => {
    const path = `${certs.dir}/web.yml`;
    writeFileSync(path, yaml);
    return path;
  };

  it('loads cert, key and client CA; builds the TLS options', () => {
    const l = loadWebConfig(write('tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n'));
    assert.match(String(l.tlsOptions?.cert), /BEGIN CERTIFICATE/);
    assert.equal(l.tlsOptions?.requestCert, true);
    assert.equal(l.tlsOptions?.rejectUnauthorized, true);
  });

  it('a missing file, a key that does not match, a CA that is not PEM: each named', () => {
    const cases: Array<[string, RegExp]> = [
      ['tls_server_config:\n  cert_file: nope.crt\n  key_file: server.key\n', /tls_server_config\.cert_file: cannot read .*nope\.crt \(ENOENT\)/],
      ['tls_server_config:\n  cert_file: server.crt\n  key_file: nope.key\n', /tls_server_config\.key_file: cannot read .*nope\.key \(ENOENT\)/],
      ['tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n', /tls_server_config\.key_file: this key does not belong to the certificate in cert_file/],
      ['tls_server_config:\n  cert_file: server.key\n  key_file: server.key\n', /tls_server_config\.cert_file: not a PEM certificate/],
      ['tls_server_config:\n  cert_file: server.crt\n  key_file: server.crt\n', /tls_server_config\.key_file: not a PEM private key/],
      ['tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: server.key\n', /tls_server_config\.client_ca_file: no PEM certificate/],
    ];
    for (const [yaml, re] of cases) {
      assert.throws(() => loadWebConfig(write(yaml)), (e: unknown) => e instanceof WebConfigError && re.test(e.message), yaml);
    }
    assert.throws(() => loadWebConfig(`${certs.dir}/absent.yml`), /cannot read .*absent\.yml \(ENOENT\)/);
  });
});
