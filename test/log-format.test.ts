/**
 * log.format: JSON lines by default off a terminal, readable lines through pino-pretty when asked
 * (or on a terminal), and secrets redacted in both.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createLogger, defaultLogFormat } from '../src/log.js';
import { runCli, testDb, type TestDb } from './helpers.js';

function capture(): { stream: Writable & { write: (s: string) => boolean }; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, done) {
      text += chunk;
      done();
    },
  });
  return { stream: stream as Writable & { write: (s: string) => boolean }, text: () => text };
}

describe('log.format', () => {
  let db: TestDb;
  before(async () => {
    db = await testDb('logformat');
  });
  after(async () => db?.drop());

  it('defaults to json off a terminal and pretty on one', () => {
    assert.equal(defaultLogFormat({ isTTY: false }), 'json');
    assert.equal(defaultLogFormat({}), 'json');
    assert.equal(defaultLogFormat({ isTTY: true }), 'pretty');
  });

  it('json: one parseable object per line; pretty: a readable line with level, message and fields; secrets redacted in both', () => {
    const json = capture();
    createLogger('info', json.stream as never, 'json').info({ event: 'token_refreshed', accessToken: 'ya29.secret-token' }, 'access token refreshed');
    const line = JSON.parse(json.text().trim()) as Record<string, unknown>;
    assert.equal(line['level'], 'info');
    assert.equal(line['msg'], 'access token refreshed');
    assert.equal(line['event'], 'token_refreshed');
    assert.equal(line['accessToken'], '[redacted]');

    const pretty = capture();
    createLogger('info', pretty.stream as never, 'pretty').warn(
      { event: 'api_retry', property: '123', accessToken: 'ya29.secret-token' },
      'retryable API failure',
    );
    const text = pretty.text();
    assert.equal(text.trim().split('\n').length, 1, `one line: ${text}`);
    assert.match(text, /WARN.*retryable API failure/);
    assert.match(text, /"property":"123"/);
    assert.doesNotMatch(text, /ya29\.secret-token/);
    assert.throws(() => JSON.parse(text), 'not JSON');
  });

  it('the command line honours LOG_FORMAT and refuses an unknown format with exit 2', async () => {
    const env = { DATABASE_URL: db.url, GA_COLLECTOR_DB_SCHEMA: db.schema };
    const pretty = await runCli(['migrate'], { env: { ...env, LOG_FORMAT: 'pretty' } });
    assert.equal(pretty.code, 0, pretty.stderr);
    assert.match(pretty.stdout, /INFO.*migration applied/);
    assert.doesNotMatch(pretty.stdout, /^\{/m);

    await db.query(`DROP SCHEMA ${db.schema} CASCADE`);
    const json = await runCli(['migrate'], { env });
    assert.equal(json.code, 0, json.stderr);
    const first = JSON.parse(json.stdout.trim().split('\n')[0]!) as Record<string, unknown>;
    assert.equal(first['event'], 'migration_applied');

    const bad = await runCli(['migrate'], { env: { ...env, LOG_FORMAT: 'xml' } });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^ga-collector: config: log\.format: .*json.*pretty/);
    assert.equal(bad.stderr.trim().split('\n').length, 1);
  });
});
