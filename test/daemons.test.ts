/**
 * Several daemons on one database, and daemons killed with SIGKILL: each property, report and
 * date is fetched once per scheduled time, nothing is duplicated, and a dead daemon's work is
 * completed by another or by its own restart, with every stored date whole.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateReport } from '@ga-collector/fake-google';
import { addDays, dateRange, localDate } from '../src/time.js';
import { logLines, runCli, startCli, startFake, testDb, waitFor, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

/** Jobs running in a daemon started by startCli, by its status document (`/api/status`). */
async function runningJobs(daemon: ReturnType<typeof startCli>): Promise<number> {
  const url = logLines(daemon.out.stdout).find((l) => l['event'] === 'http_listening')?.['url'];
  if (typeof url !== 'string') throw new Error('no HTTP server yet');
  const doc = (await (await fetch(`${url}/api/status`, { signal: AbortSignal.timeout(10_000) })).json()) as { summary: { running: number } };
  return doc.summary.running;
}

const P = ['610001', '610002', '610003'];
const dims = ['deviceCategory', 'country'];
const metrics = ['sessions', 'screenPageViews'];

/** Every stored date is whole: its rows are exactly Google's, and the ledger agrees. */
async function assertWholeDays(db: TestDb, table: string, property: string, opts: { complete?: string[] } = {}) {
  const [exists] = await db.query<{ t: string | null }>(`SELECT to_regclass($1) AS t`, [`"${db.schema}".fetch_days`]);
  if (!exists!.t) {
    assert.equal(opts.complete, undefined, 'nothing stored at all');
    return; // killed before the first migration: nothing stored, nothing partial
  }
  const ledger = await db.query<{ date: string; row_count: number }>(
    `SELECT to_char(date,'YYYY-MM-DD') AS date, row_count FROM "${db.schema}".fetch_days WHERE property_id = $1 AND report = $2`,
    [property, table],
  );
  const stored = await db.query<{ date: string; n: number; sessions: string }>(
    `SELECT to_char(date,'YYYY-MM-DD') AS date, count(*)::int AS n, sum(sessions)::text AS sessions FROM "${db.schema}"."${table}" WHERE property_id = $1 GROUP BY date`,
    [property],
  );
  const byDate = new Map(stored.map((s) => [s.date, s]));
  for (const l of ledger) {
    const want = generateReport({ propertyId: property, date: l.date, dimensions: dims, metrics });
    const got = byDate.get(l.date);
    assert.equal(got?.n ?? 0, l.row_count, `${property} ${l.date}: the ledger agrees with the data`);
    assert.equal(l.row_count, want.length, `${property} ${l.date}: a whole day`);
    assert.equal(got?.sessions ?? '0', String(want.reduce((s, r) => s + r.values[0]!, 0)), `${property} ${l.date}: Google's numbers`);
    byDate.delete(l.date);
  }
  assert.deepEqual([...byDate.keys()], [], `${property}: no rows without a ledger entry`);
  if (opts.complete) assert.deepEqual(ledger.map((l) => l.date).sort(), opts.complete, `${property}: every date stored`);
}

describe('several daemons on one database', () => {
  let db: TestDb;
  let g: FakeSetup;
  before(async () => {
    db = await testDb('multi');
    g = await startFake(
      P.map((id) => ({ id, timeZone: 'UTC' })),
      { maxPageSize: 60 },
    );
  });
  after(async () => {
    await g.stop();
    await db.drop();
  });

  it('fetch each property, report and date once, with no duplicates, and take over from one that dies', async () => {
    const reports = { devices: { dimensions: dims, metrics, startDate: '30daysAgo', refreshDays: 2 } };
    // slow answers, so the daemons overlap and one can be killed mid-run
    g.fake.inject({ endpoint: 'runReport', kind: 'delay', delayMs: 60 });
    const config = writeConfig(g.dir, db, g, { properties: P.map((id) => ({ id })), reports, schedule: '0 4 * * *', http: { port: 0 }, concurrency: 2 });
    const daemons = [0, 1, 2].map(() => startCli(['run', '--config', config]));
    const today = localDate(Date.now(), 'UTC');
    const all = dateRange(addDays(today, -30), addDays(today, -1));
    try {
      // kill one daemon as soon as it is in the middle of a job
      const victim = await waitFor(() => daemons.find((d) => logLines(d.out.stdout).some((l) => l['event'] === 'job_planned' && (l['due'] as number) > 0)), {
        timeoutMs: 20_000,
        what: 'a daemon planning work',
      });
      victim.child.kill('SIGKILL');
      await victim.exited;
      await waitFor(
        async () => {
          const [r] = await db.query<{ n: string }>(`SELECT count(*) AS n FROM "${db.schema}".fetch_days`);
          return Number(r!.n) === P.length * all.length;
        },
        { timeoutMs: 40_000, what: 'every date stored by the survivors' },
      );
      // the survivors finish whatever they were doing (their status documents show no job running), then stop cleanly
      const survivors = daemons.filter((d) => d !== victim);
      await waitFor(async () => (await Promise.all(survivors.map(runningJobs))).every((n) => n === 0), { timeoutMs: 30_000, what: 'the survivors idle' });
    } finally {
      for (const d of daemons) if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGTERM');
    }
    const exits = await Promise.all(daemons.map((d) => d.exited));
    assert.equal(exits.filter((e) => e.signal === 'SIGKILL').length, 1);
    assert.deepEqual(
      exits.filter((e) => e.signal !== 'SIGKILL').map((e) => e.code),
      [0, 0],
      'the survivors shut down cleanly',
    );
    for (const p of P) await assertWholeDays(db, 'devices', p, { complete: all });
    // once per scheduled time: each date's first page was requested once, except what the killed daemon had in flight
    // (the data requests; the per-date totals are separate requests, by date alone)
    const firstPages = g.fake.events.filter(
      (e) => e.kind === 'runReport' && e.offset === 0 && e.startDate && e.startDate !== e.endDate && (e.dimensions?.length ?? 0) > 1,
    );
    const perDate = new Map<string, number>();
    for (const e of firstPages)
      for (const d of dateRange(e.startDate!, e.endDate!)) perDate.set(`${e.property} ${d}`, (perDate.get(`${e.property} ${d}`) ?? 0) + 1);
    const twice = [...perDate.entries()].filter(([, n]) => n > 1);
    const victimProps = new Set(twice.map(([k]) => k.split(' ')[0]));
    assert.ok(victimProps.size <= 2, `dates fetched twice belong to the killed daemon's jobs only: ${twice.map(([k]) => k).join(', ')}`);
    assert.ok(twice.every(([, n]) => n === 2));
    const dup = await db.query(`SELECT 1 FROM "${db.schema}".devices GROUP BY property_id, date, device_category, country HAVING count(*) > 1`);
    assert.equal(dup.length, 0, 'no duplicates');
    const deadlocks = daemons.flatMap((d) => logLines(d.out.stdout)).filter((l) => /deadlock/i.test(String(l['err'] ?? '')));
    assert.deepEqual(deadlocks, []);
  });
});

describe('crash safety', () => {
  it('kill -9 at random moments of a large backfill never leaves a partial day; a restart completes it exactly', async () => {
    const db = await testDb('crash');
    const g = await startFake([{ id: P[0]!, timeZone: 'UTC' }], { maxPageSize: 50 });
    // pages are fetched fetch.perPropertyConcurrency (4) at a time: a delay long enough that the backfill outlasts the random kill
    g.fake.inject({ endpoint: 'runReport', kind: 'delay', delayMs: 100 });
    try {
      const reports = { devices: { dimensions: dims, metrics, startDate: '90daysAgo' } };
      const config = writeConfig(g.dir, db, g, { properties: [{ id: P[0] }], reports });
      const today = localDate(Date.now(), 'UTC');
      const from = addDays(today, -90);
      const to = addDays(today, -1);
      let seed = 7;
      const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
      const storedDates = async (since = new Date(0)) => {
        const [t] = await db.query<{ t: string | null }>(`SELECT to_regclass($1) AS t`, [`"${db.schema}".fetch_days`]);
        if (!t!.t) return 0;
        const [n] = await db.query<{ n: string }>(`SELECT count(*) AS n FROM "${db.schema}".fetch_days WHERE fetched_at > $1`, [since]);
        return Number(n!.n);
      };
      let kills = 0;
      for (let trial = 0; trial < 4; trial++) {
        const trialStart = new Date();
        const run = startCli(['backfill', '--config', config, '--property', P[0]!, '--from', from, '--to', to]);
        // a random moment after this run has stored something, so every kill lands mid-backfill
        await waitFor(async () => (await storedDates(trialStart)) > 0 || run.child.exitCode !== null, { timeoutMs: 30_000, intervalMs: 20, what: 'progress' });
        // the random moment is the test: no fixed point of the backfill is special
        await new Promise((r) => setTimeout(r, rnd() * 1200));
        if (run.child.exitCode === null) {
          run.child.kill('SIGKILL');
          kills++;
        }
        await run.exited;
        await assertWholeDays(db, 'devices', P[0]!); // whatever was stored is whole
      }
      assert.ok(kills >= 3, `the backfill was killed mid-way (${kills} of 4 trials)`);
      const r = await runCli(['backfill', '--config', config, '--property', P[0]!, '--from', from, '--to', to], { timeoutMs: 120_000 });
      assert.equal(r.code, 0, r.stderr);
      await assertWholeDays(db, 'devices', P[0]!, { complete: dateRange(from, to) });
    } finally {
      await g.stop();
      await db.drop();
    }
  });
});
