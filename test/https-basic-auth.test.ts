/**
 * HTTPS and basic authentication from a web config file as Prometheus exporters take it: a
 * self-signed certificate made by openssl here, bcrypt hashes (both the `$2b$` of bcryptjs and the
 * `$2y$` of htpasswd); good, bad and missing credentials; /healthz open; a changed file applies
 * without a restart; passwords never reach the log; a wrong file is one clear line.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { HttpServer } from '../src/http/server.js';
import { loadWebConfig } from '../src/http/webConfig.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import { source } from './http-helpers.js';
import { tmpDir, waitFor } from './helpers.js';

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const OPENSSL = hasOpenssl();
const skip = OPENSSL ? false : 'openssl is not installed: it makes the test certificate (apt-get install openssl)';

/** A self-signed certificate for 127.0.0.1, and its key. */
function selfSigned(dir: string, name: string): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    {
      stdio: 'ignore',
    },
  );
  return { cert, key };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** GET over HTTPS, trusting only the test's certificate (no `rejectUnauthorized: false`). */
function get(url: string, ca: Buffer, auth?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // a new connection each time (no keep-alive, no session reuse), so each sees the certificate served now
    const req = https.get(
      url,
      { agent: false, ca, headers: auth ? { authorization: `Basic ${Buffer.from(auth).toString('base64')}` } : {}, timeout: 10_000 },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

describe('HTTPS and basic authentication from a web config file', { skip }, () => {
  let dir: string;
  let ca: Buffer;
  let web: string;
  let server: HttpServer;
  let log = '';
  const PASSWORD = 'correct horse battery staple';
  const ALICE_PASSWORD = 'alice-pw';

  before(async () => {
    dir = tmpDir('webcfg');
    const { cert, key } = selfSigned(dir, 'server');
    ca = fs.readFileSync(cert);
    web = path.join(dir, 'web.yml');
    // htpasswd writes $2y$: the same algorithm under another name
    const aliceHash = bcrypt.hashSync(ALICE_PASSWORD, 4).replace(/^\$2b\$/, '$2y$');
    fs.writeFileSync(
      web,
      `tls_server_config:\n  cert_file: server.crt\n  key_file: ${key}\nbasic_auth_users:\n  prometheus: ${bcrypt.hashSync(PASSWORD, 10)}\n  alice: '${aliceHash}'\n`,
    );
    const logger = createLogger('info', { write: (s: string) => (log += s) } as never);
    server = new HttpServer({ host: '127.0.0.1', port: 0, metrics: new Metrics({ defaultMetrics: false }), source, logger, webConfigFile: web });
    await server.start();
  });
  after(async () => {
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves HTTPS with the configured certificate, and no plain HTTP', async () => {
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const r = await get(`${server.url}/healthz`, ca);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok\n');
    await assert.rejects(fetch(`${server.url.replace('https:', 'http:')}/healthz`, { signal: AbortSignal.timeout(10_000) }));
  });

  it('asks for credentials everywhere but /healthz, and takes only the right ones', async () => {
    for (const p of ['/metrics', '/api/status', '/', '/readyz', '/nothing-here']) {
      const none = await get(`${server.url}${p}`, ca);
      assert.equal(none.status, 401, `${p} without credentials`);
      assert.equal(none.headers['www-authenticate'], 'Basic realm="ga-collector", charset="UTF-8"');
      assert.equal(none.headers['x-frame-options'], 'DENY');
      assert.doesNotMatch(none.body, /ga_collector|property/);
    }
    assert.equal((await get(`${server.url}/metrics`, ca, 'prometheus:wrong')).status, 401, 'wrong password');
    assert.equal((await get(`${server.url}/metrics`, ca, `mallory:${PASSWORD}`)).status, 401, 'unknown user');
    assert.equal((await get(`${server.url}/metrics`, ca, 'prometheus')).status, 401, 'no colon');
    assert.equal((await get(`${server.url}/metrics`, ca, `PROMETHEUS:${PASSWORD}`)).status, 401, 'user names are exact');
    const ok = await get(`${server.url}/metrics`, ca, `prometheus:${PASSWORD}`);
    assert.equal(ok.status, 200);
    assert.match(ok.body, /ga_collector_fetch_runs_total/);
    assert.equal((await get(`${server.url}/api/status`, ca, `prometheus:${PASSWORD}`)).status, 200);
    assert.equal((await get(`${server.url}/`, ca, `alice:${ALICE_PASSWORD}`)).status, 200, 'a $2y$ hash (htpasswd)');
    assert.equal((await get(`${server.url}/healthz`, ca, 'prometheus:wrong')).status, 200, '/healthz ignores credentials');
  });

  it('applies a changed file without a restart: a new password works, the old one no longer', { timeout: 30_000 }, async () => {
    const text = fs.readFileSync(web, 'utf8');
    const next = text.replace(/prometheus: \S+/, `prometheus: ${bcrypt.hashSync('rotated', 4)}`) + `  bob: '${bcrypt.hashSync('bob-pw', 4)}'\n`;
    fs.writeFileSync(web, next);
    await waitFor(async () => (await get(`${server.url}/metrics`, ca, 'prometheus:rotated')).status === 200, {
      timeoutMs: 20_000,
      what: 'the new password accepted',
    });
    assert.equal((await get(`${server.url}/metrics`, ca, `prometheus:${PASSWORD}`)).status, 401);
    assert.equal((await get(`${server.url}/metrics`, ca, 'bob:bob-pw')).status, 200);
    assert.match(log, /"event":"web_config_reloaded"/);
  });

  it('serves a renewed certificate to the connections that follow, without a restart', { timeout: 30_000 }, async () => {
    const renewed = selfSigned(dir, 'renewed');
    fs.copyFileSync(renewed.key, path.join(dir, 'server.key'));
    fs.copyFileSync(renewed.cert, path.join(dir, 'server.crt'));
    const newCa = fs.readFileSync(renewed.cert);
    await waitFor(
      async () =>
        (await get(`${server.url}/healthz`, newCa).catch(() => null)) !== null &&
        (await get(`${server.url}/metrics`, newCa, 'prometheus:rotated').catch(() => null))?.status === 200,
      {
        timeoutMs: 20_000,
        what: 'the renewed certificate served',
      },
    );
    await assert.rejects(get(`${server.url}/healthz`, ca), /self[- ]signed|certificate/i, 'the old certificate is no longer served');
    ca = newCa;
  });

  it('keeps the file in force when a changed one is broken, and says so in the log', { timeout: 30_000 }, async () => {
    const good = fs.readFileSync(web, 'utf8');
    fs.writeFileSync(web, `${good}  eve: not-a-hash\n`);
    try {
      await waitFor(async () => (await get(`${server.url}/metrics`, ca, 'prometheus:rotated')).status === 200 && /web_config_reload_failed/.test(log), {
        timeoutMs: 20_000,
        what: 'the broken file refused',
      });
      assert.match(log, /basic_auth_users\.eve: not a bcrypt hash/);
    } finally {
      fs.writeFileSync(web, good);
    }
  });

  it('never logs a password or an Authorization header', () => {
    for (const secret of [PASSWORD, ALICE_PASSWORD, 'rotated', 'bob-pw', Buffer.from(`prometheus:${PASSWORD}`).toString('base64')])
      assert.ok(!log.includes(secret), secret);
  });
});

describe('web config file problems', { skip }, () => {
  let dir: string;
  before(() => {
    dir = tmpDir('webcfgbad');
    selfSigned(dir, 'a');
    selfSigned(dir, 'b');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const problem = (yaml: string) => {
    const file = path.join(dir, 'web.yml');
    fs.writeFileSync(file, yaml);
    try {
      loadWebConfig(file);
    } catch (err) {
      assert.equal((err as Error).name, 'UsageError');
      return (err as Error).message.replace(`${file}: `, '');
    }
    return 'accepted';
  };

  it('are one line naming the key', () => {
    assert.equal(problem(''), 'accepted', 'an empty file: plain HTTP, no auth');
    assert.equal(problem('basic_auth_user:\n  a: b\n'), 'http.webConfigFile: basic_auth_user: unknown key (allowed: tls_server_config, basic_auth_users)');
    assert.equal(
      problem('http_server_config:\n  http2: false\n'),
      'http.webConfigFile: http_server_config: not supported by ga-collector (supported: tls_server_config, basic_auth_users)',
    );
    assert.equal(
      problem('tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  client_ca_file: a.crt\n'),
      'http.webConfigFile: tls_server_config.client_ca_file: not supported by ga-collector (supported: tls_server_config.cert_file, tls_server_config.key_file, tls_server_config.min_version)',
    );
    assert.equal(problem('tls_server_config:\n  cert_file: a.crt\n'), 'http.webConfigFile: tls_server_config.key_file: required, a PEM file path');
    assert.equal(
      problem('tls_server_config:\n  cert_file: a.crt\n  key_file: missing.key\n'),
      `http.webConfigFile: tls_server_config.key_file: ${path.join(dir, 'missing.key')} does not exist`,
    );
    assert.match(
      problem('tls_server_config:\n  cert_file: a.crt\n  key_file: b.key\n'),
      /^http\.webConfigFile: tls_server_config: the certificate and key cannot be used: .*mismatch/,
    );
    assert.equal(
      problem('tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  min_version: TLS10\n'),
      'http.webConfigFile: tls_server_config.min_version: must be TLS12 or TLS13',
    );
    assert.equal(problem('tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  min_version: TLS13\n'), 'accepted');
    assert.equal(
      problem('basic_auth_users:\n  prometheus: hunter2\n'),
      `http.webConfigFile: basic_auth_users.prometheus: not a bcrypt hash (make one with: htpasswd -nBC 10 "" | tr -d ':\\n')`,
    );
    assert.doesNotMatch(problem('basic_auth_users:\n  prometheus: hunter2\n'), /hunter2/, 'the value is not echoed');
    assert.match(problem('basic_auth_users: [a, b]\n'), /basic_auth_users: must be a map/);
    assert.match(problem('a: [\n'), /^http\.webConfigFile: not YAML/);
  });
});
