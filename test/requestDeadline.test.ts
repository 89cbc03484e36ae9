/**
 * API requests have deadlines that cannot be lost: runReport (JSON and bytes) and getMetadata end
 * at fetch.timeoutSeconds even when the server accepts and never answers, or sends headers and
 * half a body and stalls, and even after forced garbage collections (the timer is ours, not an
 * `AbortSignal.timeout()` that only a joined signal refers to). A timeout frees the request slot,
 * is counted as code `error`, and is retried with backoff.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { generateReport } from '@ga-collector/fake-google';
import { makeDaemon, metricSum, startFake, testDb } from './helpers.js';
import { scriptedApi, type ScriptedApi } from './scripted-api.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Forces a garbage collection every `ms` until stopped. */
function collectGarbage(ms = 25): () => void {
  const t = setInterval(gc, ms);
  return () => clearInterval(t);
}

const page = {
  dimensionHeaders: [{ name: 'date' }],
  metricHeaders: [{ name: 'sessions', type: 'TYPE_INTEGER' }],
  rows: [{ dimensionValues: [{ value: '20240101' }], metricValues: [{ value: '5' }] }],
  rowCount: 1,
  metadata: { timeZone: 'UTC' },
};

describe('each request method ends at its deadline, after garbage collections too, and frees its slot', () => {
  const apis: ScriptedApi[] = [];
  after(async () => {
    for (const a of apis) await a.stop();
  });

  const methods = [
    ['runReport', (api: ScriptedApi) => api.client.runReport(api.ctx, {})],
    ['runReport read as bytes (runReportPage)', (api: ScriptedApi) => api.client.runReportPage(api.ctx, {}, (b) => b.length)],
  ] as const;
  for (const [method, call] of methods) {
    for (const how of ['hang', 'stall'] as const) {
      it(`${method}: a server that ${how === 'hang' ? 'accepts and never answers' : 'sends headers and half the body, then stalls'} is cut at the deadline, as a retryable timeout counted as code error`, async () => {
        const api = await scriptedApi(() => (how === 'hang' ? 'hang' : { stall: page }), { timeoutMs: 300, maxAttempts: 2 });
        apis.push(api);
        const stop = collectGarbage();
        try {
          await assert.rejects(call(api), /runReport for property 1, report r timed out after 300 ms \(gave up after 2 attempts\)/);
        } finally {
          stop();
        }
        assert.equal(api.requests.length, 2, 'retried once');
        assert.equal(api.limiter.inFlight, 0, 'every request slot is free again');
        assert.equal(metricSum(await api.metrics.text(), 'ga_collector_api_requests_total', { code: 'error' }), 2);
      });
    }
  }

  it('getMetadata: a hang is cut at the deadline too', async () => {
    const api = await scriptedApi(() => 'hang', { timeoutMs: 300, maxAttempts: 1 });
    apis.push(api);
    const stop = collectGarbage();
    try {
      await assert.rejects(api.client.getMetadata(api.ctx), /getMetadata for property 1, report r timed out after 300 ms/);
    } finally {
      stop();
    }
    assert.equal(api.limiter.inFlight, 0, 'the request slot is free again');
  });

  it('a deadline that fires while the request is still being prepared ends it cleanly, never as an uncaught exception', async () => {
    // a 1 ms deadline fires at every stage: before the request is sent, while it is sent, while it waits
    const api = await scriptedApi(() => 'hang', { timeoutMs: 1, maxAttempts: 1 });
    apis.push(api);
    const uncaught: string[] = [];
    const onUncaught = (err: Error) => void uncaught.push(err.message);
    process.on('uncaughtException', onUncaught);
    try {
      for (let i = 0; i < 100; i++) {
        await assert.rejects(api.client.runReport(api.ctx, {}), /timed out after 1 ms/);
        await assert.rejects(
          api.client.runReportPage(api.ctx, {}, (b) => b),
          /timed out after 1 ms/,
        );
      }
      // a quiet moment for a late uncaught exception to surface: that none comes is what is asserted
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      process.off('uncaughtException', onUncaught);
    }
    assert.deepEqual(uncaught, [], 'no uncaught exception');
    assert.equal(api.limiter.inFlight, 0, 'every request slot is free again');
  });

  it('a timed-out request that is retried succeeds on the next attempt', async () => {
    let n = 0;
    const api = await scriptedApi(() => (n++ < 2 ? { stall: page } : page), { timeoutMs: 300, maxAttempts: 3 });
    apis.push(api);
    const stop = collectGarbage();
    try {
      assert.equal(await api.client.runReportPage(api.ctx, {}, (b) => JSON.parse(b.toString()).rowCount), 1);
    } finally {
      stop();
    }
    assert.equal(api.requests.length, 3);
  });
});

describe('run --once with concurrency 2 and stalled requests', () => {
  it('several stalled and hung requests, forced garbage collections: every slot comes back and the data ends exact', async () => {
    const props = ['730001', '730002', '730003'];
    const db = await testDb('deadline');
    const g = await startFake(
      props.map((id) => ({ id, timeZone: 'UTC' })),
      { maxPageSize: 2 },
    );
    const metrics = ['sessions', 'screenPageViews'];
    const daemon = await makeDaemon(
      db,
      g,
      {
        properties: props.map((id) => ({ id })),
        reports: { daily: { metrics, startDate: '6daysAgo', refreshDays: 2 } },
        concurrency: 2,
        fetch: { timeoutSeconds: 1, maxAttempts: 6 },
      },
      { backoffBaseMs: 20 },
    );
    // more stalled requests than slots, in two rounds: the first requests, and data pages later on
    g.fake.inject({ endpoint: 'runReport', kind: 'stall', times: 3 });
    g.fake.inject({ endpoint: 'runReport', kind: 'hang', times: 1 });
    g.fake.inject({ endpoint: 'runReport', kind: 'stall', times: 3, match: (r) => r.offset > 0 });
    const stop = collectGarbage(50);
    try {
      const results = await daemon.scheduler.runOnce();
      assert.deepEqual(
        results.map((r) => r.error ?? 'ok'),
        props.map(() => 'ok'),
      );
      for (const p of props) {
        const rows = await db.query<{ date: string; a: string; b: string }>(
          `SELECT to_char(date,'YYYY-MM-DD') AS date, sessions::text AS a, screen_page_views::text AS b FROM "${db.schema}".daily WHERE property_id = $1 ORDER BY date`,
          [p],
        );
        assert.equal(rows.length, 6, `${p}: six dates`);
        for (const r of rows) {
          const [want] = generateReport({ propertyId: p, date: r.date, dimensions: [], metrics });
          assert.deepEqual([Number(r.a), Number(r.b)], want!.values, `${p} ${r.date}`);
        }
      }
      const cut = g.fake.events.filter((e) => e.fault === 'stall' || e.fault === 'hang').length;
      assert.equal(cut, 7, 'every stall and hang was met');
      assert.equal(metricSum(await daemon.metrics.text(), 'ga_collector_api_requests_total', { code: 'error' }), cut, 'each counted as code error');
    } finally {
      stop();
      await daemon.stop(0);
      await g.stop();
      await db.drop();
    }
  });
});
