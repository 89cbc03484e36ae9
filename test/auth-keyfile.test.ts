/**
 * Key files as people really have them: read when the key inside is sound (a byte-order mark,
 * UTF-16, CRLF, whitespace, line breaks escaped or flattened by a secret store), refused with one
 * line naming the file when it is something else, and warned about (once) when others can read it.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { exchangeToken } from '../src/auth/exchange.js';
import { readServiceAccountKey } from '../src/auth/serviceAccountKey.js';
import { TokenManager } from '../src/auth/tokenManager.js';
import { UsageError } from '../src/errors.js';
import type { ServiceAccountKeyJson } from '@ga-collector/fake-google';
import { createLogger, type Logger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import { migrate } from '../src/store/migrations.js';
import { SA_EMAIL, logLines, runCli, startFake, testDb, tmpDir, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

const P = '566001';

function capture(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger('info', sink as never), lines };
}

/** Pieces of a private key's body that must never appear in a message or a log line. */
function secretFragments(pem: string): string[] {
  const body = pem
    .split('\n')
    .filter((l) => l && !l.startsWith('-----'))
    .join('');
  return [body.slice(0, 24), body.slice(200, 224), body.slice(-40, -16)];
}

function assertNoSecret(text: string, pem: string, what: string): void {
  for (const f of secretFragments(pem)) assert.ok(!text.includes(f), `${what}: quotes the key`);
  assert.doesNotMatch(text, /PRIVATE KEY-----\\n|GOCSPX-/, `${what}: quotes a secret`);
}

describe('key files as people have them', () => {
  let g: FakeSetup;
  let key: ServiceAccountKeyJson;
  let dir: string;
  const write = (name: string, content: string | Buffer, mode = 0o600): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, content, { mode });
    fs.chmodSync(file, mode);
    return file;
  };

  before(async () => {
    g = await startFake([{ id: P, timeZone: 'UTC' }]);
    key = JSON.parse(fs.readFileSync(g.keyFile, 'utf8')) as ServiceAccountKeyJson;
    dir = tmpDir('keyfiles');
  });
  after(() => g.stop());

  describe('read, and the key inside works', () => {
    const json = (k: Record<string, unknown>) => JSON.stringify(k, null, 2);
    const cases: Array<{ name: string; content: () => string | Buffer; mangled: RegExp | null }> = [
      { name: 'as downloaded', content: () => json(key), mangled: null },
      { name: 'with a UTF-8 byte-order mark', content: () => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json(key))]), mangled: null },
      {
        name: 'in UTF-16 with a byte-order mark (PowerShell `>`)',
        content: () => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(json(key), 'utf16le')]),
        mangled: null,
      },
      {
        name: 'with CRLF line ends, in the file and in private_key',
        content: () => json({ ...key, private_key: key.private_key.replace(/\n/g, '\r\n') }).replace(/\n/g, '\r\n'),
        mangled: null,
      },
      {
        name: 'with whitespace around the file and the values',
        content: () => `\n  ${json({ ...key, private_key: `  ${key.private_key}\n\n`, client_email: ` ${key.client_email} ` })}  \n\n`,
        mangled: null,
      },
      {
        name: 'with private_key line breaks as the two characters \\n',
        content: () => json({ ...key, private_key: key.private_key.replace(/\n/g, '\\n') }),
        mangled: /arrived as the two characters \\n \(as after a paste through a secret store\); the key was read anyway$/,
      },
      {
        name: 'with private_key line breaks escaped twice (\\\\n)',
        content: () => json({ ...key, private_key: key.private_key.replace(/\n/g, '\\\\n') }),
        mangled: /arrived as the two characters \\n/,
      },
      {
        name: 'with private_key flattened onto one line with spaces',
        content: () => json({ ...key, private_key: key.private_key.replace(/\n/g, ' ') }),
        mangled: /arrived flattened into spaces/,
      },
      {
        name: 'with raw line breaks inside the JSON string',
        content: () => json(key).replace(/\\n/g, '\n'),
        mangled: /arrived as raw line breaks inside the JSON string/,
      },
      { name: 'without "type" (the other fields say what it is)', content: () => json({ ...key, type: undefined }), mangled: null },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const file = write(`ok-${crypto.randomBytes(4).toString('hex')}.json`, c.content());
        const k = readServiceAccountKey(file);
        assert.equal(k.clientEmail, SA_EMAIL);
        assert.equal(k.privateKeyId, key.private_key_id);
        assert.deepEqual(
          k.notes.map((n) => n.code),
          c.mangled ? ['mangled_newlines'] : [],
        );
        if (c.mangled) {
          assert.ok(k.notes[0]!.message.startsWith(`key file ${file}: the line breaks of "private_key" arrived `), k.notes[0]!.message);
          assert.match(k.notes[0]!.message, c.mangled);
          assertNoSecret(k.notes[0]!.message, key.private_key, c.name);
        }
        const t = await exchangeToken(k, { tokenUrl: g.fake.tokenUrl });
        assert.match(t.accessToken, /^ya29\./, 'the fake verified an assertion signed with it');
      });
    }
  });

  describe('refused with one line that names the file and says what to do', () => {
    const pk = () => key.private_key;
    const body = () =>
      pk()
        .split('\n')
        .filter((l) => l && !l.startsWith('-----'))
        .join('\n');
    const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const cases: Array<{ name: string; content: () => string | Buffer; want: RegExp }> = [
      {
        name: 'an OAuth client secret of an installed app',
        content: () =>
          JSON.stringify({
            installed: {
              client_id: '1234-abc.apps.googleusercontent.com',
              project_id: 'p',
              client_secret: 'GOCSPX-s3cr3t',
              redirect_uris: ['http://localhost'],
            },
          }),
        want: /is an OAuth client secret \(a client ID for an installed application\), not a service-account key; create a JSON key for the service account instead: Google Cloud console > IAM & Admin > Service accounts > the account > Keys > Add key > Create new key > JSON$/,
      },
      {
        name: 'an OAuth client secret of a web app',
        content: () => JSON.stringify({ web: { client_id: '1234-abc.apps.googleusercontent.com', client_secret: 'GOCSPX-s3cr3t' } }),
        want: /is an OAuth client secret \(a client ID for a web application\), not a service-account key; create a JSON key .*IAM & Admin > Service accounts/,
      },
      {
        name: 'a JSON array holding the key',
        content: () => JSON.stringify([key]),
        want: /holds a JSON array; a key file is the one object Google Cloud downloads/,
      },
      {
        name: 'gcloud user credentials',
        content: () => JSON.stringify({ type: 'authorized_user', client_id: 'x', client_secret: 'GOCSPX-s3cr3t', refresh_token: '1//r' }),
        want: /holds user credentials \("type": "authorized_user".*not a service-account key/,
      },
      {
        name: 'another credential type',
        content: () => JSON.stringify({ type: 'external_account', audience: '//iam.googleapis.com/x' }),
        want: /holds a Workload Identity Federation configuration/,
      },
      {
        name: 'an unknown type',
        content: () => JSON.stringify({ ...key, type: 'serviceaccount' }),
        want: /"type" is "serviceaccount", expected "service_account"/,
      },
      { name: 'an empty file', content: () => '', want: /is empty; create a JSON key/ },
      { name: 'only whitespace and a byte-order mark', content: () => '\uFEFF  \n', want: /is empty/ },
      { name: 'the bare PEM key without its JSON', content: () => pk(), want: /is a bare PEM file, not the JSON key file/ },
      {
        name: 'the key file base64-encoded',
        content: () => Buffer.from(JSON.stringify(key)).toString('base64'),
        want: /is base64-encoded; decode it first \(base64 -d .* > key\.json\)/,
      },
      {
        name: 'a binary .p12 file',
        content: () =>
          Buffer.concat([
            Buffer.from([
              0x30, 0x82, 0x09, 0x9a, 0x02, 0x01, 0x03, 0x30, 0x82, 0x09, 0x60, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01, 0xa0, 0x00,
            ]),
            crypto.randomBytes(256),
          ]),
        want: /is a binary file \(a \.p12 key\?\), not a JSON key/,
      },
      {
        name: 'YAML',
        content: () => `type: service_account\nclient_email: ${SA_EMAIL}\n`,
        want: /is not valid JSON( \(line 1, column \d+\))?; create a JSON key/,
      },
      {
        name: 'JSON cut off inside the key',
        content: () => JSON.stringify(key).slice(0, 900),
        want: /is not valid JSON( \(line \d+, column \d+\))?; create a JSON key/,
      },
      { name: 'JSON null', content: () => 'null', want: /holds a JSON null, not a service-account key object/ },
      { name: 'a JSON string', content: () => JSON.stringify(JSON.stringify(key)), want: /holds a JSON string, not a service-account key object/ },
      { name: 'no client_email', content: () => JSON.stringify({ ...key, client_email: undefined }), want: /"client_email" is missing/ },
      {
        name: 'a client_email that is no address',
        content: () => JSON.stringify({ ...key, client_email: 'collector' }),
        want: /"client_email" is not an email address/,
      },
      { name: 'no private_key', content: () => JSON.stringify({ ...key, private_key: '' }), want: /"private_key" is missing/ },
      {
        name: 'a private_key without its BEGIN and END lines',
        content: () => JSON.stringify({ ...key, private_key: body() }),
        want: /"private_key" lacks its -----BEGIN PRIVATE KEY----- and -----END PRIVATE KEY----- lines/,
      },
      {
        name: 'a private_key cut short',
        content: () => JSON.stringify({ ...key, private_key: pk().slice(0, 600) }),
        want: /"private_key" is not a complete PEM block/,
      },
      {
        name: 'a private_key with a damaged body',
        content: () => JSON.stringify({ ...key, private_key: pk().replace(/\n[A-Za-z0-9+/]{64}\n/, '\n') }),
        want: /"private_key" is not a valid RSA private key in PEM form \(damaged or cut short\)/,
      },
      {
        name: 'an encrypted private_key',
        content: () =>
          JSON.stringify({ ...key, private_key: other.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }) }),
        want: /"private_key" is encrypted with a passphrase/,
      },
      {
        name: 'a public key as private_key',
        content: () => JSON.stringify({ ...key, private_key: other.publicKey.export({ type: 'spki', format: 'pem' }) }),
        want: /"private_key" holds a public key, not the private key/,
      },
      {
        name: 'an EC private_key',
        content: () =>
          JSON.stringify({
            ...key,
            private_key: crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
          }),
        want: /"private_key" is an EC key; Google service-account keys are RSA/,
      },
      {
        name: 'a token_uri that is no URL',
        content: () => JSON.stringify({ ...key, token_uri: 'oauth2.googleapis.com/token' }),
        want: /"token_uri" is not an http\(s\) URL/,
      },
      {
        name: 'a file far too large to be a key',
        content: () => JSON.stringify({ ...key, padding: 'x'.repeat(100_000) }),
        want: /is \d+ bytes, far more than a service-account key/,
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const file = write(`bad-${crypto.randomBytes(4).toString('hex')}.json`, c.content());
        assert.throws(
          () => readServiceAccountKey(file),
          (err: unknown) => {
            assert.ok(err instanceof UsageError, `a UsageError: ${String(err)}`);
            assert.ok(err.message.startsWith(`key file ${file}: `), err.message);
            assert.match(err.message, c.want);
            assert.equal(err.message.split('\n').length, 1, 'one line');
            assertNoSecret(err.message, key.private_key, c.name);
            return true;
          },
        );
      });
    }

    it('a directory, and a file that does not exist', () => {
      assert.throws(() => readServiceAccountKey(dir), new RegExp(`^UsageError: key file ${dir}: is a directory, not a key file$`));
      assert.throws(() => readServiceAccountKey(path.join(dir, 'nope.json')), /key file .*nope\.json: does not exist/);
    });
  });

  describe('a key file others can read: warned once, never refused', () => {
    const manager = (logger: Logger, credentialsDirectory?: string) =>
      new TokenManager({ tokenUrl: g.fake.tokenUrl, logger, metrics: new Metrics({ defaultMetrics: false }), minExchangeIntervalMs: 0, credentialsDirectory });

    for (const [mode, who] of [
      [0o644, /is readable by every user of this machine \(mode 0644\)/],
      [0o640, /is readable by its group \(mode 0640\)/],
      [0o660, /is readable by its group and writable by its group \(mode 0660\)/],
      [0o606, /is readable by every user of this machine and writable by every user of this machine \(mode 0606\)/],
    ] as const) {
      it(`mode ${mode.toString(8)}: one warning line with the fix, however many exchanges`, async () => {
        const file = write(`loose-${mode.toString(8)}.json`, JSON.stringify(key), mode);
        const { logger, lines } = capture();
        const m = manager(logger);
        const tokens = m.forKeyFile(file);
        m.forKeyFile(file);
        try {
          await m.start();
          for (let i = 0; i < 3; i++) await tokens.invalidate(await tokens.getToken());
          const warnings = lines.filter((l) => l['event'] === 'key_file_warning');
          assert.equal(warnings.length, 1, JSON.stringify(warnings));
          assert.equal(warnings[0]!['level'], 'warn');
          assert.equal(warnings[0]!['code'], 'loose_permissions');
          assert.equal(warnings[0]!['fix'], `chmod 600 ${file}`);
          assert.match(String(warnings[0]!['msg']), who);
          assert.match(String(warnings[0]!['msg']), new RegExp(`^key file ${file} is .*; fix: chmod 600 ${file}$`));
          assert.ok(tokens.status().valid, 'the key is used all the same');
        } finally {
          m.stop();
        }
      });
    }

    it('modes 0600 and 0400: no warning', () => {
      for (const mode of [0o600, 0o400]) {
        const file = write(`tight-${mode.toString(8)}.json`, JSON.stringify(key), mode);
        assert.deepEqual(readServiceAccountKey(file).notes, []);
      }
    });

    it("a systemd credential (0400 plus the service's ACL, which stat shows as 0440): no warning inside $CREDENTIALS_DIRECTORY", () => {
      const credDir = tmpDir('credentials');
      const file = path.join(credDir, 'ga-key');
      fs.writeFileSync(file, JSON.stringify(key));
      fs.chmodSync(file, 0o440);
      assert.deepEqual(readServiceAccountKey(file, { credentialsDirectory: credDir }).notes, []);
      // the same mode elsewhere is a group that can read the key
      assert.deepEqual(
        readServiceAccountKey(file, { credentialsDirectory: dir }).notes.map((n) => n.code),
        ['loose_permissions'],
      );
      assert.deepEqual(
        readServiceAccountKey(file).notes.map((n) => n.code),
        ['loose_permissions'],
      );
    });

    it('mangled line breaks: one warning line per key file, not one per exchange', async () => {
      const file = write('escaped.json', JSON.stringify({ ...key, private_key: key.private_key.replace(/\n/g, '\\n') }));
      const { logger, lines } = capture();
      const m = manager(logger);
      const tokens = m.forKeyFile(file);
      try {
        await m.start();
        for (let i = 0; i < 3; i++) await tokens.invalidate(await tokens.getToken());
        const warnings = lines.filter((l) => l['event'] === 'key_file_warning');
        assert.deepEqual(
          warnings.map((w) => w['code']),
          ['mangled_newlines'],
        );
        assert.equal(lines.filter((l) => l['event'] === 'token_refreshed').length, 4, 'four exchanges, each re-reading the file');
        assertNoSecret(JSON.stringify(lines), key.private_key, 'log');
      } finally {
        m.stop();
      }
    });
  });
});

describe('key files from the command line', () => {
  let db: TestDb;
  let g: FakeSetup;
  let key: ServiceAccountKeyJson;
  let dir: string;

  before(async () => {
    db = await testDb('keyfile_cli');
    await migrate(db.pool, db.schema, createLogger('silent'));
    g = await startFake([{ id: P, timeZone: 'UTC' }]);
    key = JSON.parse(fs.readFileSync(g.keyFile, 'utf8')) as ServiceAccountKeyJson;
    dir = tmpDir('keyfile-cli');
  });
  after(async () => {
    await g?.stop();
    await db?.drop();
  });

  const config = (keyFile: string, extra: Record<string, unknown> = {}) =>
    writeConfig(
      dir,
      db,
      { ...g, keyFile },
      { properties: [{ id: P }], reports: { daily: { metrics: ['sessions'], startDate: '2daysAgo', refreshDays: 1 } }, ...extra },
    );
  const keyFile = (name: string, content: string, mode = 0o600) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, content, { mode });
    fs.chmodSync(file, mode);
    return file;
  };

  it('run --once with a file that is not a service-account key: exit 2, one line naming the file and what to download', async () => {
    const bad: Array<[string, string, RegExp]> = [
      [
        'client_secret_1234.apps.googleusercontent.com.json',
        JSON.stringify({ installed: { client_id: '1234.apps.googleusercontent.com', client_secret: 'GOCSPX-s3cr3t' } }),
        /is an OAuth client secret .*IAM & Admin > Service accounts > the account > Keys > Add key/,
      ],
      ['array.json', JSON.stringify([key]), /holds a JSON array/],
      ['key.pem', key.private_key, /is a bare PEM file/],
      ['empty.json', '', /is empty/],
      ['b64.json', Buffer.from(JSON.stringify(key)).toString('base64'), /is base64-encoded/],
    ];
    for (const [name, content, want] of bad) {
      const file = keyFile(name, content);
      const r = await runCli(['run', '--once', '--config', config(file)]);
      assert.equal(r.code, 2, `${name}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, `${name}: one line: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^ga-collector: key file ${file}: `));
      assert.match(r.stderr, want);
      assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
      assertNoSecret(r.stderr + r.stdout, key.private_key, name);
    }
  });

  it('check with an OAuth client secret: its row says what the file is and what to download; the rest is still checked', async () => {
    const file = keyFile('client_secret.json', JSON.stringify({ web: { client_id: '1234.apps.googleusercontent.com', client_secret: 'GOCSPX-s3cr3t' } }));
    const r = await runCli(['check', '--config', config(file)]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      new RegExp(
        `^FAIL\\s+key ${file}\\s+key file ${file}: is an OAuth client secret \\(a client ID for a web application\\), not a service-account key; create a JSON key`,
        'm',
      ),
    );
    assert.match(r.stdout, /^ok\s+database/m);
    assert.equal(r.stderr, '');
    assert.doesNotMatch(r.stdout, /GOCSPX/);
  });

  it('check and run --once with a key others can read and whose line breaks came escaped: it works, with a warning each', async () => {
    const file = keyFile('shared.json', JSON.stringify({ ...key, private_key: key.private_key.replace(/\n/g, '\\n') }), 0o644);
    const cfg = config(file);
    const check = await runCli(['check', '--config', cfg]);
    assert.equal(check.code, 0, `a warning does not fail the check:\n${check.stdout}${check.stderr}`);
    const lines = check.stdout.split('\n');
    const perm = lines.findIndex((l) => /^warn\s+key collector@\S+\s+key file .*shared\.json is readable by every user of this machine \(mode 0644\)/.test(l));
    assert.ok(perm >= 0, check.stdout);
    assert.match(lines[perm + 1]!, new RegExp(`^\\s+fix: chmod 600 ${file}$`));
    assert.match(check.stdout, /^warn\s+key collector@\S+\s+key file .*shared\.json: the line breaks of "private_key" arrived as the two characters \\n/m);
    assert.match(check.stdout, /^ok\s+key collector@/m);
    assert.match(check.stdout, /all \d+ checks passed: \d+ ok, 0 failed, 0 skipped, 2 warnings/);

    const run = await runCli(['run', '--once', '--config', cfg]);
    assert.equal(run.code, 0, run.stderr);
    const warnings = logLines(run.stdout).filter((l) => l['event'] === 'key_file_warning');
    assert.deepEqual(warnings.map((w) => w['code']).sort(), ['loose_permissions', 'mangled_newlines']);
    assert.ok(warnings.every((w) => w['level'] === 'warn'));
    assert.match(
      String(warnings.find((w) => w['code'] === 'loose_permissions')!['msg']),
      new RegExp(`key file ${file} is readable by every user .*; fix: chmod 600 ${file}$`),
    );
    assertNoSecret(run.stdout + run.stderr + check.stdout, key.private_key, 'output');
  });

  it('check under systemd LoadCredential (a bare name in $CREDENTIALS_DIRECTORY, mode 0440 by its ACL): no warning', async () => {
    const credDir = tmpDir('creds');
    const file = path.join(credDir, 'ga-key');
    fs.writeFileSync(file, JSON.stringify(key));
    fs.chmodSync(file, 0o440);
    const cfg = config('ga-key');
    const r = await runCli(['check', '--config', cfg], { env: { CREDENTIALS_DIRECTORY: credDir } });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /^warn/m);
    assert.match(r.stdout, new RegExp(`^ok\\s+key collector@\\S+\\s+key \\w+ from ${credDir}/ga-key`, 'm'));
  });
});
