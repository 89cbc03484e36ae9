/**
 * Token endpoints that answer a little differently, or not at all: lenient reading of
 * `expires_in`, a floor on how often one principal exchanges, and a deadline on every exchange
 * that neither a silent endpoint nor a garbage collection can take away.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { TokenManager } from '../src/auth/tokenManager.js';
import { AbortedError, DeadlineExceededError } from '../src/errors.js';
import { FakeGoogle } from '@ga-collector/fake-google';
import { Ga4Client } from '../src/ga4/client.js';
import { Limiter } from '../src/ga4/limiter.js';
import { createLogger, type Logger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import { SA_EMAIL, logLines, metricSum, runCli, startFake, testDb, waitFor, writeConfig, type FakeSetup, type TestDb } from './helpers.js';
import { startDaemon } from './ops-helpers.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const P = '555001';
const report = { dateRanges: [{ startDate: 'yesterday', endDate: 'yesterday' }], metrics: [{ name: 'sessions' }] };

/** A logger whose JSON lines the test can read. */
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

/** Waits `ms` with garbage collections in between, so a timer held only weakly would be lost. */
async function collectGarbageFor(ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
  }
}

const tokenEvents = (fake: FakeGoogle) => fake.events.filter((e) => e.kind === 'token');

describe('token endpoints that answer expires_in differently', () => {
  // each: what the endpoint sends, the lifetime we should believe (s), the warning it deserves
  const forms: Array<{ name: string; value: unknown; omit?: boolean; lifetimeS: number; warning: RegExp | null }> = [
    { name: 'a string, "3600"', value: '3600', lifetimeS: 3600, warning: null },
    { name: 'a string with blanks, " 3599 "', value: ' 3599 ', lifetimeS: 3599, warning: null },
    { name: 'missing', value: undefined, omit: true, lifetimeS: 3600, warning: /answered without expires_in; assuming 3600 s/ },
    { name: 'null', value: null, lifetimeS: 3600, warning: /answered without expires_in; assuming 3600 s/ },
    { name: 'zero', value: 0, lifetimeS: 3600, warning: /answered expires_in 0, not a positive number of seconds; assuming 3600 s/ },
    { name: 'negative', value: -5, lifetimeS: 3600, warning: /answered expires_in -5, not a positive number/ },
    { name: 'not a number, "soon"', value: 'soon', lifetimeS: 3600, warning: /answered expires_in "soon", not a positive number/ },
    {
      name: "ninety days (past Node's 24.8-day timer limit)",
      value: 90 * 86400,
      lifetimeS: 12 * 3600,
      warning: /answered expires_in 7776000; renewing as if it were 12 h/,
    },
    { name: 'absurd, 1e12', value: 1e12, lifetimeS: 12 * 3600, warning: /renewing as if it were 12 h/ },
  ];

  it('each form: one exchange, a working token with a sane expiry, at most one warning, no timer overflow', async () => {
    const overflow: string[] = [];
    const onWarning = (w: Error) => {
      if (w.name === 'TimeoutOverflowWarning') overflow.push(w.message);
    };
    process.on('warning', onWarning);
    const runs = forms.map(async (form) => {
      const g = await startFake([{ id: P, timeZone: 'UTC' }]);
      g.fake.rewriteTokenResponse((b) => {
        const { expires_in: _, ...rest } = b;
        return form.omit ? rest : { ...rest, expires_in: form.value };
      });
      const { logger, lines } = capture();
      const metrics = new Metrics({ defaultMetrics: false });
      // a short floor, so an exchange storm (one a second, were the odd lifetimes believed) would show in the window
      const manager = new TokenManager({ tokenUrl: g.fake.tokenUrl, logger, metrics, minExchangeIntervalMs: 200 });
      const tokens = manager.forKeyFile(g.keyFile);
      const client = new Ga4Client({ apiRootUrl: g.fake.apiRootUrl, timeoutMs: 5_000, maxAttempts: 1, limiter: new Limiter(2), metrics });
      try {
        const before = Date.now();
        await manager.start();
        const end = Date.now() + 2_000;
        while (Date.now() < end) {
          await tokens.getToken();
          // callers at a steady pace over the window: the pacing is the load under test
          await new Promise((r) => setTimeout(r, 100));
        }
        await client.runReport({ propertyId: P, tokens, logger }, report);
        const st = tokens.status();
        return { form, exchanges: tokenEvents(g.fake).length, st, before, lines, metrics: await metrics.text() };
      } finally {
        manager.stop();
        await g.stop();
      }
    });
    const results = await Promise.all(runs);
    process.off('warning', onWarning);
    for (const { form, exchanges, st, before, lines, metrics } of results) {
      const at = `expires_in ${form.name}`;
      assert.equal(exchanges, 1, `${at}: exchanges the fake saw in 2 s`);
      assert.equal(st.valid, true, at);
      assert.equal(st.lastError, null, at);
      const lifetimeS = (st.expiresAt! - before) / 1000;
      assert.ok(Math.abs(lifetimeS - form.lifetimeS) < 5, `${at}: believed lifetime ${lifetimeS} s, want ${form.lifetimeS}`);
      const warnings = lines.filter((l) => l['event'] === 'token_response_odd');
      if (form.warning) {
        assert.equal(warnings.length, 1, `${at}: one warning`);
        assert.equal(warnings[0]!['level'], 'warn');
        assert.match(String(warnings[0]!['msg']), form.warning);
      } else {
        assert.equal(warnings.length, 0, `${at}: no warning`);
      }
      assert.ok(!lines.some((l) => /Invalid time value/.test(JSON.stringify(l))), at);
      assert.ok(!lines.some((l) => l['event'] === 'token_refresh_failed'), `${at}: no exchange was taken for a failure`);
      assert.equal(metricSum(metrics, 'ga_collector_token_refreshes_total', { outcome: 'failure' }), 0, at);
      assert.ok(Math.abs(metricSum(metrics, 'ga_collector_token_expiry_timestamp_seconds') - st.expiresAt! / 1000) < 1, `${at}: expiry gauge`);
    }
    assert.deepEqual(overflow, [], 'no TimeoutOverflowWarning');
  });

  it('a lifetime too short to be useful cannot drive more than one exchange per floor interval', async () => {
    // expires_in 1: believed (a private STS may mean it), but the floor holds the exchanges apart
    const g = await startFake([{ id: P, timeZone: 'UTC' }]);
    g.fake.rewriteTokenResponse((b) => ({ ...b, expires_in: 1 }));
    const metrics = new Metrics({ defaultMetrics: false });
    const floored = new TokenManager({ tokenUrl: g.fake.tokenUrl, logger: createLogger('silent'), metrics, minExchangeIntervalMs: 500 });
    const tokens = floored.forKeyFile(g.keyFile);
    try {
      await floored.start();
      const started = Date.now();
      // callers that keep asking, as jobs do
      while (Date.now() - started < 2_500) {
        await tokens.getToken();
        // asking again and again, as jobs do: the pacing is the load under test
        await new Promise((r) => setTimeout(r, 20));
      }
      const ev = tokenEvents(g.fake);
      assert.ok(ev.length >= 2, `it does renew (${ev.length} exchanges)`);
      assert.ok(ev.length <= 1 + Math.ceil(2_600 / 500), `at most one per 500 ms after the first: ${ev.length}`);
      for (let i = 1; i < ev.length; i++)
        assert.ok(ev[i]!.receivedAt - ev[i - 1]!.receivedAt >= 450, `exchange ${i} came ${ev[i]!.receivedAt - ev[i - 1]!.receivedAt} ms after the one before`);
    } finally {
      floored.stop();
      await g.stop();
    }
  });

  it('with the default floor, a one-second lifetime gets one exchange in several seconds, not one per second', async () => {
    const g = await startFake([{ id: P, timeZone: 'UTC' }]);
    g.fake.rewriteTokenResponse((b) => ({ ...b, expires_in: 1 }));
    const manager = new TokenManager({ tokenUrl: g.fake.tokenUrl, logger: createLogger('silent'), metrics: new Metrics({ defaultMetrics: false }) });
    const tokens = manager.forKeyFile(g.keyFile);
    try {
      await manager.start();
      await waitFor(() => !tokens.status().valid, { what: 'the one-second token expired' });
      // callers that find the token expired wait for the floor; they are not answered by a storm
      const waiting = Array.from({ length: 5 }, () =>
        tokens.getToken().then(
          () => 'token',
          (err: unknown) => err,
        ),
      );
      // a window in which no second exchange may happen: its length is what is asserted
      await new Promise((r) => setTimeout(r, 1_500));
      assert.equal(tokenEvents(g.fake).length, 1, 'one exchange within the 10 s floor');
      manager.stop();
      for (const w of await Promise.all(waiting)) assert.ok(w instanceof AbortedError, `a waiter ended by stop(): ${String(w)}`);
    } finally {
      manager.stop();
      await g.stop();
    }
  });
});

describe('a token endpoint that does not answer', () => {
  let g: FakeSetup;
  before(async () => {
    g = await startFake([{ id: P, timeZone: 'UTC' }]);
  });
  after(() => g.stop());

  function setup(exchangeTimeoutMs: number) {
    const { logger, lines } = capture();
    const metrics = new Metrics({ defaultMetrics: false });
    const manager = new TokenManager({ tokenUrl: g.fake.tokenUrl, logger, metrics, exchangeTimeoutMs, minExchangeIntervalMs: 100 });
    const tokens = manager.forKeyFile(g.keyFile);
    const client = new Ga4Client({ apiRootUrl: g.fake.apiRootUrl, timeoutMs: 5_000, maxAttempts: 1, limiter: new Limiter(2), metrics });
    return { logger, lines, metrics, manager, tokens, client };
  }

  it('accepts and never answers: the exchange times out, is logged and counted, waiters are released; once it heals a token comes and a fetch succeeds', async () => {
    g.fake.clearFaults();
    g.fake.inject({ endpoint: 'token', kind: 'hang', times: 2 });
    const before = tokenEvents(g.fake).length;
    const { logger, lines, metrics, manager, tokens, client } = setup(400);
    try {
      const started = Date.now();
      const waiter = tokens.getToken();
      const starting = manager.start();
      await collectGarbageFor(200);
      await assert.rejects(waiter, (err: unknown) => err instanceof DeadlineExceededError && /timed out after 400 ms/.test((err as Error).message));
      assert.ok(Date.now() - started < 3_000, 'the waiter was released near the deadline');
      await starting;
      // the renewal retries with backoff: the second attempt hangs too, the third gets a token
      await collectGarbageFor(300);
      await waitFor(() => tokens.status().valid, { timeoutMs: 15_000, what: 'a token once the endpoint answers again' });
      const failures = lines.filter((l) => l['event'] === 'token_refresh_failed');
      assert.equal(failures.length, 2);
      for (const f of failures) {
        assert.equal(f['level'], 'error');
        assert.match(
          String(f['err']),
          new RegExp(`token exchange for service account ${SA_EMAIL} \\(key id \\w+\\) at http://127\\.0\\.0\\.1:\\d+/token timed out after 400 ms`),
        );
        assert.equal(f['code'], 'timeout');
      }
      const text = await metrics.text();
      assert.equal(metricSum(text, 'ga_collector_token_refreshes_total', { account: SA_EMAIL, outcome: 'failure' }), 2);
      assert.equal(metricSum(text, 'ga_collector_token_refreshes_total', { account: SA_EMAIL, outcome: 'success' }), 1);
      const ev = tokenEvents(g.fake).slice(before);
      assert.deepEqual(
        ev.map((e) => e.fault ?? e.status),
        ['hang', 'hang', 200],
      );
      // our side closed the hung connections: the socket was torn down, not merely abandoned
      await waitFor(() => ev.slice(0, 2).every((e) => e.respondedAt > 0), { what: 'the fake saw both hung connections closed' });
      const res = await client.runReport({ propertyId: P, tokens, logger }, report);
      assert.ok(Array.isArray(res.rows), 'the fetch succeeded');
    } finally {
      manager.stop();
    }
  });

  it('a response that stalls mid-body ends at the deadline too, and the next exchange succeeds', async () => {
    g.fake.clearFaults();
    g.fake.inject({ endpoint: 'token', kind: 'stall', times: 1 });
    const before = tokenEvents(g.fake).length;
    const { lines, metrics, manager, tokens } = setup(500);
    try {
      const waiter = tokens.getToken();
      void manager.start();
      await collectGarbageFor(200);
      await assert.rejects(waiter, /timed out after 500 ms/);
      await collectGarbageFor(200);
      await waitFor(() => tokens.status().valid, { timeoutMs: 15_000, what: 'a token after the stalled one' });
      assert.deepEqual(
        tokenEvents(g.fake)
          .slice(before)
          .map((e) => e.fault ?? 'ok'),
        ['stall', 'ok'],
      );
      assert.equal(lines.filter((l) => l['event'] === 'token_refresh_failed').length, 1);
      assert.equal(metricSum(await metrics.text(), 'ga_collector_token_refreshes_total', { outcome: 'failure' }), 1);
    } finally {
      manager.stop();
    }
  });

  it('stop() aborts an exchange in flight: its waiters get AbortedError at once, and it is no failure of the endpoint', async () => {
    g.fake.clearFaults();
    g.fake.inject({ endpoint: 'token', kind: 'hang' });
    const before = tokenEvents(g.fake).length;
    const { lines, metrics, manager, tokens } = setup(60_000);
    try {
      const waiter = tokens.getToken();
      await waitFor(() => tokenEvents(g.fake).length > before, { what: 'the exchange reached the endpoint' });
      const stopped = Date.now();
      manager.stop();
      await assert.rejects(waiter, AbortedError);
      assert.ok(Date.now() - stopped < 1_000);
      await waitFor(
        () =>
          tokenEvents(g.fake)
            .slice(before)
            .every((e) => e.respondedAt > 0),
        { what: 'the connection closed' },
      );
      assert.equal(metricSum(await metrics.text(), 'ga_collector_token_refreshes_total', { outcome: 'failure' }), 0);
      assert.equal(lines.filter((l) => l['event'] === 'token_refresh_failed').length, 0);
    } finally {
      manager.stop();
      g.fake.clearFaults();
    }
  });

  it("a caller's own signal ends its wait; the exchange carries on for the others", async () => {
    g.fake.clearFaults();
    g.fake.inject({ endpoint: 'token', kind: 'delay', delayMs: 600, times: 1 });
    const { manager, tokens } = setup(5_000);
    try {
      const job = new AbortController();
      const impatient = tokens.getToken(job.signal);
      const patient = tokens.getToken();
      setTimeout(() => job.abort(), 100);
      await assert.rejects(impatient, AbortedError);
      assert.match(await patient, /^ya29\./);
    } finally {
      manager.stop();
    }
  });
});

describe('the daemon with a token endpoint that does not answer', () => {
  let db: TestDb;
  let g: FakeSetup;
  before(async () => {
    db = await testDb('tokenhang');
    g = await startFake([{ id: P, timeZone: 'UTC' }]);
  });
  after(async () => {
    await g?.stop();
    await db?.drop();
  });

  it('logs the timed-out exchange and fetches once the endpoint heals', async () => {
    g.fake.inject({ endpoint: 'token', kind: 'hang' });
    const config = writeConfig(g.dir, db, g, {
      properties: [{ id: P }],
      reports: { daily: { metrics: ['sessions'], startDate: '3daysAgo', refreshDays: 1 } },
      http: { host: '127.0.0.1', port: 0 },
      // the exchange deadline follows fetch.timeoutSeconds (at most 30 s)
      fetch: { timeoutSeconds: 1 },
    });
    const daemon = await startDaemon(config);
    try {
      const failed = await waitFor(() => daemon.logs().find((l) => l['event'] === 'token_refresh_failed'), {
        timeoutMs: 20_000,
        what: 'a logged exchange timeout',
      });
      assert.match(String(failed['err']), /token exchange for service account .* timed out after 1 s/);
      g.fake.clearFaults();
      await waitFor(() => daemon.logs().some((l) => l['event'] === 'job_succeeded'), { timeoutMs: 40_000, what: 'a fetch after the endpoint healed' });
      const rows = await db.query(`SELECT count(*)::int AS n FROM "${db.schema}".fetch_days WHERE property_id = $1`, [P]);
      assert.ok((rows[0]!['n'] as number) > 0, 'dates stored');
    } finally {
      g.fake.clearFaults();
      assert.equal(await daemon.stop(), 0);
    }
  });

  it('SIGTERM stops it while a job waits for a renewal that hangs', async () => {
    // 12-second tokens, renewed after the 10 s floor; a fetch every second, so one waits for the token
    const short = await startFake([{ id: P, timeZone: 'UTC' }], { tokenLifetimeSeconds: 12 });
    const config = writeConfig(short.dir, db, short, {
      properties: [{ id: P, schedule: '* * * * * *' }],
      reports: { daily: { metrics: ['sessions'], startDate: '3daysAgo', refreshDays: 1 } },
      http: { host: '127.0.0.1', port: 0 },
      shutdown: { graceSeconds: 1 },
    });
    const daemon = await startDaemon(config);
    try {
      await waitFor(() => daemon.logs().some((l) => l['event'] === 'job_succeeded'), { timeoutMs: 20_000, what: 'the start-up fetch' });
      short.fake.inject({ endpoint: 'token', kind: 'hang' });
      const status = async () =>
        (await fetch(`${daemon.url}/api/status`)).json() as Promise<{ tokens: Array<{ valid: boolean }>; reports: Array<{ running: boolean }> }>;
      await waitFor(
        async () => {
          const st = await status();
          return tokenEvents(short.fake).some((e) => e.fault === 'hang') && st.tokens.every((t) => !t.valid) && st.reports.some((r) => r.running);
        },
        { timeoutMs: 30_000, what: 'the renewal hanging, the token expired and a job waiting for it' },
      );
      const stopping = Date.now();
      const code = await daemon.stop(20_000);
      assert.equal(code, 0, daemon.out.stderr);
      assert.ok(Date.now() - stopping < 10_000, `stopped ${Date.now() - stopping} ms after SIGTERM, not after the 30 s exchange deadline`);
      assert.ok(logLines(daemon.out.stdout).some((l) => l['event'] === 'stopped'));
      await waitFor(
        () =>
          tokenEvents(short.fake)
            .filter((e) => e.fault === 'hang')
            .every((e) => e.respondedAt > 0),
        { what: 'the hung exchange closed' },
      );
    } finally {
      await daemon.stop(1_000);
      await short.stop();
    }
  });

  it('check: a token endpoint answering expires_in as a string is fine', async () => {
    g.fake.rewriteTokenResponse((b) => ({ ...b, expires_in: String(b['expires_in']) }));
    try {
      const config = writeConfig(g.dir, db, g, { properties: [{ id: P }] });
      const r = await runCli(['check', '--config', config]);
      assert.match(r.stdout, /^ok\s+key collector@\S+\s+key \w+ from .*expires in (59|60) min/m);
      assert.doesNotMatch(r.stdout, /Invalid time value|FAIL\s+key/);
    } finally {
      g.fake.rewriteTokenResponse(undefined);
    }
  });
});
