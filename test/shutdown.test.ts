/**
 * Signals: SIGTERM/SIGINT stop scheduling, let in-flight fetches finish within the grace period,
 * then abort them without writing a partial date, and exit 0; a second signal forces the exit;
 * SIGHUP reloads properties, reports and schedules.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { logLines, startCli, startFake, testDb, waitFor, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

const P = '900001';
const Q = '900002';
const reports = { devices: { dimensions: ['deviceCategory', 'country'], metrics: ['sessions'], startDate: '40daysAgo' } };

async function wholeDays(db: TestDb) {
  // the relation comes with the first stored date: none, and the ledger must be empty too
  const [rel] = await db.query<{ t: string | null }>(`SELECT to_regclass($1) AS t`, [`"${db.schema}".devices`]);
  if (!rel?.t) {
    assert.deepEqual(await db.query(`SELECT 1 FROM "${db.schema}".fetch_days`), []);
    return [];
  }
  return db.query<{ date: string; row_count: number; n: number }>(
    `SELECT to_char(f.date,'YYYY-MM-DD') AS date, f.row_count, (SELECT count(*)::int FROM "${db.schema}".devices d WHERE d.property_id = f.property_id AND d.date = f.date) AS n
       FROM "${db.schema}".fetch_days f`,
  );
}

describe('signals', () => {
  let db: TestDb;
  let g: FakeSetup;
  before(async () => {
    db = await testDb('signals');
    g = await startFake(
      [
        { id: P, timeZone: 'UTC' },
        { id: Q, timeZone: 'UTC' },
      ],
      { maxPageSize: 40 },
    );
  });
  after(async () => {
    await g.stop();
    await db.drop();
  });

  it('SIGTERM during a long fetch: in-flight work finishes within the grace period, exit 0', async () => {
    await db.pool.query(`DROP SCHEMA IF EXISTS "${db.schema}" CASCADE`);
    g.fake.clearFaults();
    g.fake.inject({ endpoint: 'runReport', kind: 'delay', delayMs: 30 });
    const config = writeConfig(g.dir, db, g, { properties: [{ id: P }], reports, http: { port: 0 }, shutdown: { graceSeconds: 30 } });
    const d = startCli(['run', '--config', config]);
    await waitFor(() => logLines(d.out.stdout).some((l) => l['event'] === 'job_planned'), { what: 'a fetch under way' });
    d.child.kill('SIGTERM');
    const exit = await d.exited;
    assert.equal(exit.code, 0, d.out.stderr);
    const lines = logLines(d.out.stdout);
    assert.ok(lines.some((l) => l['event'] === 'shutdown' && l['signal'] === 'SIGTERM'));
    assert.ok(
      lines.some((l) => l['event'] === 'job_succeeded'),
      'the in-flight job was allowed to finish',
    );
    assert.ok(
      lines.some((l) => l['event'] === 'stopped'),
      'logged its stop before exiting',
    );
    for (const r of await wholeDays(db)) assert.equal(r.n, r.row_count, r.date);
  });

  it('past the grace period the fetch is aborted without writing a partial date', async () => {
    await db.pool.query(`DROP SCHEMA IF EXISTS "${db.schema}" CASCADE`);
    g.fake.clearFaults();
    g.fake.inject({ endpoint: 'runReport', kind: 'delay', delayMs: 300 });
    const config = writeConfig(g.dir, db, g, { properties: [{ id: P }], reports, http: { port: 0 }, shutdown: { graceSeconds: 1 } });
    const d = startCli(['run', '--config', config]);
    await waitFor(() => logLines(d.out.stdout).some((l) => l['event'] === 'job_planned'), { what: 'a fetch under way' });
    const t0 = Date.now();
    d.child.kill('SIGINT');
    const exit = await d.exited;
    assert.equal(exit.code, 0, d.out.stderr);
    assert.ok(Date.now() - t0 < 8_000, 'stopped soon after the grace period');
    const lines = logLines(d.out.stdout);
    assert.ok(lines.some((l) => l['event'] === 'shutdown_aborting'));
    assert.ok(lines.some((l) => l['event'] === 'job_aborted'));
    for (const r of await wholeDays(db)) assert.equal(r.n, r.row_count, `${r.date}: no partial date`);
  });

  it('a second signal forces the exit', async () => {
    g.fake.clearFaults();
    g.fake.inject({ endpoint: 'runReport', kind: 'delay', delayMs: 500 });
    const config = writeConfig(g.dir, db, g, { properties: [{ id: Q }], reports, http: { port: 0 }, shutdown: { graceSeconds: 60 } });
    const d = startCli(['run', '--config', config]);
    await waitFor(() => logLines(d.out.stdout).some((l) => l['event'] === 'job_planned'), { what: 'a fetch under way' });
    d.child.kill('SIGTERM');
    await waitFor(() => logLines(d.out.stdout).some((l) => l['event'] === 'shutdown'));
    d.child.kill('SIGTERM');
    const exit = await d.exited;
    assert.equal(exit.code, 143);
    assert.ok(logLines(d.out.stdout).some((l) => l['event'] === 'forced_exit'));
  });

  it('SIGHUP reloads properties and reports without a restart; a bad config is refused and the old one kept', async () => {
    await db.pool.query(`DROP SCHEMA IF EXISTS "${db.schema}" CASCADE`);
    g.fake.clearFaults();
    const small = { daily: { metrics: ['sessions'], startDate: '3daysAgo' } };
    const config = writeConfig(g.dir, db, g, { properties: [{ id: P }], reports: small, http: { port: 0 } });
    const d = startCli(['run', '--config', config]);
    try {
      await waitFor(() => logLines(d.out.stdout).some((l) => l['event'] === 'job_succeeded' && l['property'] === P), { what: 'first property fetched' });
      const cfg = JSON.parse(fs.readFileSync(config, 'utf8'));
      fs.writeFileSync(
        config,
        JSON.stringify({ ...cfg, properties: [{ id: P }, { id: Q }], reports: { ...small, weekly: { metrics: ['totalUsers'], startDate: '2daysAgo' } } }),
      );
      d.child.kill('SIGHUP');
      await waitFor(() => logLines(d.out.stdout).some((l) => l['event'] === 'reloaded'), { what: 'reloaded' });
      await waitFor(
        async () => {
          const rows = await db.query(`SELECT 1 FROM "${db.schema}".weekly WHERE property_id = $1`, [Q]).catch(() => []);
          return rows.length === 2;
        },
        { what: 'the new property and report fetched' },
      );
      fs.writeFileSync(config, JSON.stringify({ ...cfg, bogus: true }));
      d.child.kill('SIGHUP');
      await waitFor(() => logLines(d.out.stdout).some((l) => l['event'] === 'reload_failed' && /bogus/.test(String(l['err']))), { what: 'reload refused' });
      assert.equal(d.child.exitCode, null, 'still running');
    } finally {
      d.child.kill('SIGTERM');
      assert.equal((await d.exited).code, 0);
    }
  });
});
