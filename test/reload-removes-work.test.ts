/**
 * A reload keeps its word: a property or report it removes gets no more requests, whether its job
 * was queued, deferred (waiting for quota) or running, and nothing crashes on the definition that
 * is gone; the shutdown that follows a reload waits the reloaded grace period.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config/index.js';
import { Daemon } from '../src/daemon.js';
import { createLogger } from '../src/log.js';
import { logLines, startCli, startFake, testDb, waitFor, writeConfig } from './helpers.js';

const DEFERRED = '640001';
const RUNNING = '640002';
const KEPT = '640003';
const QUEUED = '640004';
const HOUR = 3_600_000;

describe('SIGHUP that removes properties and a report', () => {
  it('cancels their queued, deferred and running work: no more requests, no TypeError', async () => {
    const db = await testDb('reloadremove');
    const g = await startFake([DEFERRED, RUNNING, KEPT, QUEUED].map((id) => ({ id, timeZone: 'UTC' })));
    const logs: Array<Record<string, unknown>> = [];
    const logger = createLogger('info', { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
    // The deferred job waits for the next full hour (when Google's hourly quota resets): this
    // daemon's clock is set a few seconds before it, so the deferral would end during the test.
    const offset = Math.ceil(Date.now() / HOUR) * HOUR - Date.now() - 12_000;
    const reports = { daily: { metrics: ['sessions'], startDate: '60daysAgo' }, extra: { metrics: ['totalUsers'], startDate: '60daysAgo' } };
    const v1 = writeConfig(g.dir, db, g, {
      properties: [{ id: DEFERRED, reports: ['daily'] }, { id: RUNNING, reports: ['daily'] }, { id: KEPT }, { id: QUEUED, reports: ['daily'] }],
      reports,
      concurrency: 1, // two jobs at once: RUNNING and KEPT's daily; KEPT's extra and QUEUED wait
      fetch: { pageSize: 5, quotaReserve: 0 },
    });
    g.fake.setQuota(DEFERRED, { tokensPerHour: 0 });
    for (const id of [RUNNING, KEPT]) g.fake.inject({ endpoint: 'runReport', property: id, kind: 'delay', delayMs: 250 });
    const daemon = new Daemon({ config: loadConfig({ file: v1, env: {} }), logger, now: () => Date.now() + offset, continueBacklog: true, deferJitterMs: 0 });
    const seen = (event: string, property: string, report = 'daily') =>
      logs.some((l) => l['event'] === event && l['property'] === property && (l['report'] ?? report) === report);
    const requests = (property: string) => g.fake.events.filter((e) => e.property === property && e.kind !== 'token').length;
    try {
      await daemon.start();
      await waitFor(() => seen('job_deferred', DEFERRED) && seen('job_planned', RUNNING) && seen('job_planned', KEPT), {
        what: 'one job deferred, two running',
      });
      const deferredAt = Date.now();
      assert.ok(!seen('job_planned', QUEUED) && !seen('job_planned', KEPT, 'extra'), 'two jobs still queued');

      const v2 = writeConfig(g.dir, db, g, {
        properties: [{ id: KEPT }],
        reports: { daily: reports.daily },
        concurrency: 1,
        fetch: { pageSize: 5, quotaReserve: 0 },
      });
      await daemon.reload(loadConfig({ file: v2, env: {} }));
      const cancelled = logs
        .filter((l) => l['event'] === 'job_cancelled')
        .map((l) => `${l['property']}/${l['report']} ${l['state']}`)
        .sort();
      assert.deepEqual(cancelled, [`${DEFERRED}/daily deferred`, `${RUNNING}/daily running`, `${KEPT}/extra queued`, `${QUEUED}/daily queued`].sort());
      await waitFor(() => seen('job_aborted', RUNNING), { what: 'the running job of the removed property aborted' });
      const counts = { deferred: requests(DEFERRED), running: requests(RUNNING), queued: requests(QUEUED) };
      assert.equal(counts.queued, 0);

      // the kept report of the kept property goes on to the end
      await waitFor(() => seen('job_succeeded', KEPT), { timeoutMs: 60_000, what: "the kept property's daily stored" });
      // ...and past the moment the deferred job would have come back
      await waitFor(() => Date.now() > deferredAt + 16_000, { timeoutMs: 30_000 });
      assert.deepEqual(
        { deferred: requests(DEFERRED), running: requests(RUNNING), queued: requests(QUEUED) },
        counts,
        'no request for removed properties after the reload',
      );
      assert.ok(!seen('job_planned', KEPT, 'extra'), 'the removed report never started');
      const [extra] = await db.query<{ t: string | null }>(`SELECT to_regclass($1)::text AS t`, [`"${db.schema}".extra`]);
      assert.equal(extra!.t, null, 'nothing of the removed report was stored');
      const [kept] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${db.schema}".fetch_days WHERE property_id = $1 AND report = 'daily'`, [
        KEPT,
      ]);
      assert.equal(kept!.n, 60);
      // every stored date of the aborted job is whole
      const partial = await db.query(
        `SELECT f.date FROM "${db.schema}".fetch_days f WHERE f.property_id = $1
            AND f.row_count <> (SELECT count(*) FROM "${db.schema}".daily d WHERE d.property_id = f.property_id AND d.date = f.date)`,
        [RUNNING],
      );
      assert.deepEqual(partial, []);
      const crashes = logs.filter((l) => l['event'] === 'job_crashed' || /TypeError|Cannot read/.test(JSON.stringify(l)));
      assert.deepEqual(crashes, []);
      // the abort says why, and is no error
      const aborted = logs.find((l) => l['event'] === 'job_aborted' && l['property'] === RUNNING)!;
      assert.equal(aborted['err'], 'aborted: removed by a configuration reload');
      assert.equal(aborted['level'], 'warn');
      // the removed properties and report leave /metrics, so alerts on them (stale data, a backlog) end
      const text = await daemon.metrics.text();
      for (const id of [DEFERRED, RUNNING, QUEUED]) assert.doesNotMatch(text, new RegExp(`property="${id}"`), `no series of removed property ${id}`);
      assert.doesNotMatch(text, /report="extra"/, 'no series of the removed report');
      assert.match(text, new RegExp(`ga_collector_fetch_runs_total\\{property="${KEPT}",report="daily",outcome="success"\\} [1-9]`));
    } finally {
      await daemon.stop(0);
      await g.stop();
      await db.drop();
    }
  });
});

describe('shutdown after a reload', () => {
  it('waits the grace period of the reloaded configuration', async () => {
    const db = await testDb('reloadgrace');
    const g = await startFake([{ id: RUNNING, timeZone: 'UTC' }], { maxPageSize: 40 });
    try {
      g.fake.inject({ endpoint: 'runReport', kind: 'delay', delayMs: 300 });
      const reports = { devices: { dimensions: ['deviceCategory', 'country'], metrics: ['sessions'], startDate: '60daysAgo' } };
      const config = writeConfig(g.dir, db, g, { properties: [{ id: RUNNING }], reports, http: { port: 0 }, shutdown: { graceSeconds: 120 } });
      const d = startCli(['run', '--config', config]);
      await waitFor(() => logLines(d.out.stdout).some((l) => l['event'] === 'job_planned'), { what: 'a long fetch under way' });
      const cfg = JSON.parse(fs.readFileSync(config, 'utf8'));
      fs.writeFileSync(config, JSON.stringify({ ...cfg, shutdown: { graceSeconds: 1 } }));
      d.child.kill('SIGHUP');
      await waitFor(() => logLines(d.out.stdout).some((l) => l['event'] === 'reloaded'), { what: 'reloaded' });
      const t0 = Date.now();
      d.child.kill('SIGTERM');
      const exit = await d.exited;
      assert.equal(exit.code, 0, d.out.stderr);
      const lines = logLines(d.out.stdout);
      assert.equal(lines.find((l) => l['event'] === 'shutdown')?.['graceSeconds'], 1);
      assert.ok(
        lines.some((l) => l['event'] === 'shutdown_aborting'),
        'aborted after the reloaded one second, not the two minutes it started with',
      );
      assert.ok(Date.now() - t0 < 30_000, `exited ${Date.now() - t0} ms after SIGTERM`);
    } finally {
      await g.stop();
      await db.drop();
    }
  });
});
