import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config/index.js';
import { restartOnlyChanges } from '../src/config/reload.js';
import { UsageError } from '../src/errors.js';
import { runCli, tmpDir, writeJson } from './helpers.js';

const dir = tmpDir('config');
const key = path.join(dir, 'key.json');
fs.writeFileSync(key, '{}');

function write(name: string, content: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, content);
  return f;
}

function loadErr(content: string, env: NodeJS.ProcessEnv = {}, ext = 'yaml'): string {
  const file = write(`c-${Math.random().toString(36).slice(2)}.${ext}`, content);
  try {
    loadConfig({ file, env: { DATABASE_URL: 'postgres://u:secretpw@localhost/db', ...env } });
  } catch (err) {
    assert.ok(err instanceof UsageError, `expected UsageError, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), 'one line');
    assert.ok(!err.message.includes('secretpw'), 'no password in the message');
    return err.message;
  }
  assert.fail('expected the config to be refused');
}

describe('config', () => {
  it('loads YAML with defaults and resolves the key next to the config file', () => {
    const file = write(
      'ok.yaml',
      `database:\n  url: postgres://localhost/x\ngoogle:\n  credentials: key.json\nproperties:\n  - id: "123"\n  - id: 456\n    schedule: "*/5 * * * *"\n`,
    );
    const c = loadConfig({ file, env: {} });
    assert.equal(c.database.schema, 'ga4');
    assert.equal(c.schedule, '0 4 * * *');
    assert.equal(c.concurrency, 4);
    assert.equal(c.http.port, 9464);
    assert.deepEqual(
      c.properties.map((p) => [p.id, p.schedule, p.credentials, p.reports]),
      [
        ['123', '0 4 * * *', key, ['daily']],
        ['456', '*/5 * * * *', key, ['daily']],
      ],
    );
    assert.deepEqual(c.reports['daily'], {
      name: 'daily',
      dimensions: [],
      metrics: ['sessions', 'totalUsers', 'screenPageViews'],
      startDate: '30daysAgo',
      refreshDays: 3,
    });
  });

  it('loads JSON and takes every key from the environment', () => {
    const file = write('ok.json', JSON.stringify({ properties: [{ id: '1' }] }));
    const c = loadConfig({
      file,
      env: {
        DATABASE_URL: 'postgres://localhost/y',
        GA_COLLECTOR_DB_SCHEMA: 'analytics',
        GOOGLE_APPLICATION_CREDENTIALS: key,
        GA_COLLECTOR_SCHEDULE: '30 5 * * *',
        GA_COLLECTOR_CONCURRENCY: '7',
        GA_COLLECTOR_HTTP_PORT: '9999',
        GA_COLLECTOR_TOKEN_URL: 'http://127.0.0.1:1/token',
        LOG_LEVEL: 'debug',
      },
    });
    assert.equal(c.database.schema, 'analytics');
    assert.equal(c.schedule, '30 5 * * *');
    assert.equal(c.properties[0]!.schedule, '30 5 * * *');
    assert.equal(c.concurrency, 7);
    assert.equal(c.http.port, 9999);
    assert.equal(c.google.tokenUrl, 'http://127.0.0.1:1/token');
    assert.equal(c.log.level, 'debug');
  });

  it('reads a JSON or YAML file that starts with a UTF-8 byte-order mark', () => {
    for (const [ext, body] of [
      ['json', '{"database":{"url":"postgres://localhost/db"},"properties":[]}'],
      ['yaml', 'database:\n  url: postgres://localhost/db\nproperties: []\n'],
    ] as const) {
      const file = write(`bom.${ext}`, `\uFEFF${body}`);
      const config = loadConfig({ file, env: {}, requireCredentials: false });
      assert.equal(config.database.url, 'postgres://localhost/db', ext);
    }
  });

  it('names GOOGLE_APPLICATION_CREDENTIALS when the file it names does not exist', () => {
    const message = loadErr('properties: ["123"]\n', { GOOGLE_APPLICATION_CREDENTIALS: path.join(dir, 'missing-key.json') });
    assert.match(message, /^config: google\.credentials \(from GOOGLE_APPLICATION_CREDENTIALS\): key file .*missing-key\.json does not exist$/);
  });

  it('takes a property list from GA_COLLECTOR_PROPERTIES', () => {
    const c = loadConfig({ env: { DATABASE_URL: 'postgres://localhost/y', GOOGLE_APPLICATION_CREDENTIALS: key, GA_COLLECTOR_PROPERTIES: '11, 22' } });
    assert.deepEqual(
      c.properties.map((p) => p.id),
      ['11', '22'],
    );
  });

  it('finds a bare key name in $CREDENTIALS_DIRECTORY', () => {
    const credDir = tmpDir('creds');
    writeJson(path.join(credDir, 'google-key.json'), {});
    const file = write('cred.yaml', `google:\n  credentials: google-key.json\nproperties: ["1"]\n`);
    const c = loadConfig({ file, env: { DATABASE_URL: 'postgres://localhost/y', CREDENTIALS_DIRECTORY: credDir } });
    assert.equal(c.properties[0]!.credentials, path.join(credDir, 'google-key.json'));
  });

  it('refuses an unknown key, naming it', () => {
    assert.match(loadErr('databse:\n  url: postgres://x/y\n'), /databse.*unknown key/);
    assert.match(loadErr(`google:\n  credentials: ${key}\nproperties:\n  - id: "1"\n    shedule: "0 4 * * *"\n`), /properties\[0\]\.shedule: unknown key/);
    assert.match(loadErr(`reports:\n  daily:\n    metrics: [sessions]\n    refresh: 2\n`), /reports\.daily\.refresh: unknown key/);
  });

  it('refuses a bad cron expression', () => {
    assert.match(loadErr('schedule: "every day"\n'), /schedule: must be a cron expression/);
    assert.match(
      loadErr(`google:\n  credentials: ${key}\nproperties:\n  - id: "1"\n    schedule: "61 * * * *"\n`),
      /properties\[0\]\.schedule: must be a cron expression/,
    );
  });

  it('refuses a non-numeric property id', () => {
    assert.match(loadErr(`google:\n  credentials: ${key}\nproperties:\n  - id: "UA-1234-1"\n`), /properties\[0\]\.id: must be the numeric GA4 property id/);
  });

  it('refuses a malformed date', () => {
    assert.match(loadErr(`reports:\n  daily:\n    metrics: [sessions]\n    startDate: "2024-13-01"\n`), /reports\.daily\.startDate: must be YYYY-MM-DD/);
    assert.match(loadErr(`reports:\n  daily:\n    metrics: [sessions]\n    startDate: "last week"\n`), /reports\.daily\.startDate/);
  });

  it('fetch.perPropertyConcurrency: 4 by default, from the environment, 1 to 50, and a reload cannot change it', () => {
    const file = write('ppc.yaml', 'database:\n  url: postgres://localhost/db\nproperties: []\n');
    const base = loadConfig({ file, env: {}, requireCredentials: false });
    assert.equal(base.fetch.perPropertyConcurrency, 4);
    const env = loadConfig({ file, env: { GA_COLLECTOR_PER_PROPERTY_CONCURRENCY: '50' }, requireCredentials: false });
    assert.equal(env.fetch.perPropertyConcurrency, 50);
    for (const bad of [0, 51]) {
      assert.match(
        loadErr(`properties: []\nfetch:\n  perPropertyConcurrency: ${bad}\n`),
        /fetch\.perPropertyConcurrency: must be between 1 and 50 \(Google allows 10 for a standard property, 50 for Analytics 360\)/,
      );
    }
    assert.deepEqual(restartOnlyChanges(base, env), ['fetch.perPropertyConcurrency']);
  });

  it('refuses a missing key file', () => {
    assert.match(
      loadErr(`google:\n  credentials: /nonexistent/key.json\nproperties: ["1"]\n`),
      /google\.credentials: key file \/nonexistent\/key\.json does not exist/,
    );
  });

  it('without credentials anywhere: Application Default Credentials; impersonation keys checked and inherited', () => {
    const env = { DATABASE_URL: 'postgres://localhost/x' };
    const adc = loadConfig({ file: write('adc.yaml', 'properties: ["1"]\n'), env });
    assert.deepEqual([adc.properties[0]!.credentials, adc.properties[0]!.impersonate], ['', '']);
    const ownKey = write('own-key.json', '{}');
    const c = loadConfig({
      file: write(
        'imp.yaml',
        `google:\n  impersonate: reader@p.iam.gserviceaccount.com\nproperties:\n  - id: "1"\n  - id: "2"\n    impersonate: other@p.iam.gserviceaccount.com\n  - id: "3"\n    credentials: ${ownKey}\n`,
      ),
      env,
    });
    assert.deepEqual(
      c.properties.map((p) => [p.id, p.credentials, p.impersonate]),
      [
        ['1', '', 'reader@p.iam.gserviceaccount.com'],
        ['2', '', 'other@p.iam.gserviceaccount.com'],
        ['3', ownKey, ''],
      ],
      'a property with credentials of its own is its own principal',
    );
    assert.equal(
      loadConfig({ file: write('imp-env.yaml', 'properties: ["1"]\n'), env: { ...env, GA_COLLECTOR_IMPERSONATE: 'x@y.iam.gserviceaccount.com' } }).google
        .impersonate,
      'x@y.iam.gserviceaccount.com',
    );
    assert.match(
      loadErr(`google:\n  impersonate: alice@example.com\nproperties: ["1"]\n`),
      /google\.impersonate: must be a service account email .*only service accounts can be impersonated/,
    );
    assert.match(loadErr(`properties:\n  - id: "1"\n    impersonate: not-an-email\n`), /properties\[0\]\.impersonate: must be a service account email/);
    assert.match(loadErr(`google:\n  iamCredentialsRootUrl: "not a url"\nproperties: ["1"]\n`), /google\.iamCredentialsRootUrl: must be a URL/);
  });

  it('refuses a missing or bad database url without echoing it', () => {
    const file = write('nodb.yaml', 'properties: []\n');
    assert.throws(() => loadConfig({ file, env: {} }), /database\.url: required/);
    assert.match(loadErr('properties: []\n', { DATABASE_URL: 'not a url with secretpw' }), /database\.url: must be a URL/);
  });

  it('refuses report names and fields that cannot be relations and columns', () => {
    assert.match(loadErr(`reports:\n  Daily-Report:\n    metrics: [sessions]\n`), /reports\.Daily-Report: a report name must be/);
    assert.match(loadErr(`reports:\n  daily:\n    metrics: [sessions, Sessions]\n`), /map to the same column sessions/);
    assert.match(loadErr(`reports:\n  daily:\n    dimensions: [country]\n    metrics: []\n`), /metrics: at least one metric/);
  });

  it('refuses a malformed file and a missing one', () => {
    assert.match(loadErr('database: [unclosed\n'), /config: cannot read/);
    assert.throws(() => loadConfig({ file: '/nonexistent.yaml', env: {} }), /config: file \/nonexistent\.yaml does not exist/);
  });
});

describe('command line', () => {
  it('exits 2 with one line for bad input', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['frobnicate'], /unknown command "frobnicate"/],
      [['run', '--bogus'], /run: unknown flag --bogus/],
      [['backfill', '--property', '1', '--from', '2024-01-32', '--to', '2024-02-01'], /--from must be a date as YYYY-MM-DD/],
      [['backfill', '--property', '1', '--from', '2024-02-01', '--to', '2024-01-01'], /--from 2024-02-01 is after --to 2024-01-01/],
      [['run', '--once', '--config', write('bad.yaml', 'schedule: nope\n')], /schedule: must be a cron expression/],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(args, { env: { DATABASE_URL: 'postgres://localhost/x' } });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, 'exactly one line');
      assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
    }
  });

  it('exits 2 naming a malformed key file', async () => {
    const bad = write(
      'bad-key.json',
      '{"type":"service_account","client_email":"a@b.c","private_key":"-----BEGIN PRIVATE KEY-----\\nnope\\n-----END PRIVATE KEY-----\\n"}',
    );
    const cfg = write('badkey.yaml', `google:\n  credentials: ${bad}\nproperties: ["1"]\n`);
    const r = await runCli(['run', '--once', '--config', cfg], { env: { DATABASE_URL: 'postgres://localhost/x' } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /key file .*bad-key\.json: "private_key" is not a valid RSA private key/);
    assert.doesNotMatch(r.stderr, /nope/);
  });
});
