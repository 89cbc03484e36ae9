/**
 * Daemon.start() and Daemon.stop(), the only ways the daemon's parts come up and go down:
 * start() goes only as far as asked, stop() is idempotent and shared by concurrent callers, and a
 * stop during start-up ends the start-up's waits instead of waiting them out.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config/index.js';
import { Daemon } from '../src/daemon.js';
import { AbortedError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { startFake, testDb, waitFor, writeConfig, type FakeSetup, type TestDb } from './helpers.js';
import { TcpProxy } from './ops-helpers.js';

const P = '940001';
const reports = { daily: { metrics: ['sessions'], startDate: '3daysAgo' } };

describe('daemon lifecycle', () => {
  let g: FakeSetup;
  let db: TestDb;
  before(async () => {
    g = await startFake([{ id: P, timeZone: 'UTC' }]);
    db = await testDb('lifecycle');
  });
  after(async () => {
    await g.stop();
    await db.drop();
  });

  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger('info', { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const daemonFor = (url = db.url) => {
    const file = writeConfig(g.dir, { ...db, url }, g, { properties: [{ id: P }], reports, http: { port: 0 } });
    return new Daemon({ config: loadConfig({ file, env: {} }), logger, http: true });
  };
  const tokenExchanges = () => g.fake.events.filter((e) => e.kind === 'token').length;

  it("start({ upTo: 'database' }) migrates and brings nothing else up: no token, no HTTP, no fetch", async () => {
    const exchangesBefore = tokenExchanges();
    const daemon = daemonFor();
    try {
      await daemon.start({ upTo: 'database' });
      const [migrated] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${db.schema}".schema_migrations`);
      assert.ok(migrated!.n >= 1, 'migrations applied');
      assert.equal(tokenExchanges(), exchangesBefore, 'no token asked for');
      assert.equal(daemon.http?.url, '', 'HTTP not listening');
    } finally {
      await daemon.stop(0);
    }
  });

  it('stop() called twice at once, and again later, shares one stop; a start() after it starts nothing', async () => {
    const daemon = daemonFor();
    await daemon.start({ upTo: 'services' });
    assert.ok(daemon.http?.url, 'HTTP listening');
    const first = daemon.stop(0);
    const second = daemon.stop(0);
    assert.equal(first, second, 'the second caller awaits the first stop');
    await Promise.all([first, second]);
    assert.equal(daemon.stop(0), first, 'a later call returns the same settled promise');
    assert.equal(daemon.http?.url, '', 'HTTP closed');
    await assert.rejects(daemon.start(), AbortedError);
  });

  it('stop() while start() waits for a database that is down: start() rejects as aborted at once, stop() completes', async () => {
    const target = new URL(db.url);
    const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    await proxy.open();
    await proxy.close();
    const down = new URL(db.url);
    down.hostname = '127.0.0.1';
    down.port = String(proxy.port);
    const daemon = daemonFor(down.toString());
    logs.length = 0;
    const outcome = daemon.start({ databaseWaitMs: 60_000 }).then(
      () => 'started',
      (err: unknown) => (err instanceof AbortedError ? 'aborted' : `failed: ${String(err)}`),
    );
    // the first attempt was refused; the pause before the next one has begun
    await waitFor(() => logs.some((l) => l['event'] === 'database_unavailable'), { what: 'start-up waiting for the database' });
    const stopping = daemon.stop();
    assert.equal(await outcome, 'aborted');
    await stopping;
    assert.equal(daemon.http?.url, '', 'HTTP never came up');
  });
});
