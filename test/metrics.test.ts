/**
 * /metrics, /healthz and /readyz of a running daemon (`ga-collector run` as a child process)
 * after a fetch cycle against the fake Google: every documented family with its labels and values a
 * user would check, promtool's lint, and the alert rules' names and labels against what is
 * exported.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { ROOT, SA_EMAIL, startFake, testDb, waitFor, writeConfig, type FakeSetup, type TestDb } from './helpers.js';
import { TcpProxy, get, parseExposition, promtool, startDaemon, valueOf, type DaemonProcess, type Family } from './ops-helpers.js';
import { PROMTOOL, skipUnless } from './tools.js';

const LA = '111111';
const DENIED = '333333';
const HOUR_QUOTA = 33_333;
const DAY_QUOTA = 177_777;

/**
 * The README's metrics reference (between its metrics-reference markers): name -> [type, labels].
 * Every family the daemon exports must be documented there, and every documented one exported.
 */
const DOCUMENTED: Record<string, [string, string[]]> = (() => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const table = /<!-- metrics-reference:start -->([\s\S]*?)<!-- metrics-reference:end -->/.exec(readme)?.[1] ?? '';
  const out: Record<string, [string, string[]]> = {};
  for (const m of table.matchAll(/^\| `(ga_collector_\w+)` \| (\w+) \| ([^|]*) \|/gm)) {
    out[m[1]!] = [m[2]!, [...m[3]!.matchAll(/`(\w+)`/g)].map((l) => l[1]!)];
  }
  return out;
})();

const reports = { daily: { metrics: ['sessions', 'totalUsers'], startDate: '6daysAgo', refreshDays: 2 } };

describe('metrics and health of a running daemon after a fetch cycle', () => {
  let db: TestDb;
  let g: FakeSetup;
  let proxy: TcpProxy;
  let daemon: DaemonProcess;
  let started: number;
  let text: string;
  let families: Map<string, Family>;

  before(async () => {
    db = await testDb('metrics');
    g = await startFake([
      { id: LA, timeZone: 'America/Los_Angeles' },
      { id: DENIED, timeZone: 'Europe/Berlin', grant: false },
    ]);
    g.fake.setQuota(LA, { tokensPerHour: HOUR_QUOTA, tokensPerDay: DAY_QUOTA });
    // The daemon reaches PostgreSQL through a proxy the test can cut.
    const pgUrl = new URL(db.url);
    proxy = new TcpProxy(pgUrl.hostname, Number(pgUrl.port || 5432));
    await proxy.open();
    pgUrl.host = `127.0.0.1:${proxy.port}`;
    const config = writeConfig(g.dir, { ...db, url: pgUrl.toString() }, g, {
      properties: [{ id: LA }, { id: DENIED }],
      reports,
      schedule: '0 4 * * *',
      http: { host: '127.0.0.1', port: 0 },
    });
    started = Date.now() / 1000;
    daemon = await startDaemon(config);
    // the start-up run: LA succeeds, DENIED fails (403)
    await waitFor(
      () => {
        const events = daemon.logs().map((l) => `${l['event']} ${l['property']}`);
        return events.includes(`job_succeeded ${LA}`) && events.includes(`job_failed ${DENIED}`);
      },
      { timeoutMs: 30_000, what: 'the start-up fetch cycle' },
    );
    const m = await get(`${daemon.url}/metrics`);
    assert.equal(m.status, 200);
    assert.match(m.type, /^text\/plain; version=0\.0\.4/);
    text = m.body;
    families = parseExposition(text);
  });

  after(async () => {
    await daemon?.stop();
    await proxy?.close();
    await g?.stop();
    await db?.drop();
  });

  it("exports every family of the README's metrics reference with its type and exactly its labels, and no other", () => {
    for (const [name, [type, labels]] of Object.entries(DOCUMENTED)) {
      const f = families.get(name);
      assert.ok(f, `family ${name} missing from /metrics`);
      assert.equal(f.type, type, `${name} type`);
      assert.ok(f.help.length > 10, `${name} has a HELP text`);
      assert.ok(f.samples.length > 0, `${name} has samples`);
      for (const s of f.samples) assert.deepEqual(Object.keys(s.labels).sort(), [...labels].sort(), `${name} labels of ${JSON.stringify(s.labels)}`);
    }
    const extra = [...families.keys()].filter((n) => n.startsWith('ga_collector_') && !(n in DOCUMENTED));
    assert.deepEqual(extra, [], "every ga_collector_ family is in the README's metrics reference");
    // after the start-up cycle nothing runs; the deadline is the default; each abort reason starts at 0
    assert.equal(valueOf(families, 'ga_collector_oldest_running_job_seconds', {}), 0);
    assert.equal(valueOf(families, 'ga_collector_job_deadline_seconds', {}), 3600);
    assert.equal(valueOf(families, 'ga_collector_jobs_aborted_total', { reason: 'deadline' }), 0);
    assert.equal(valueOf(families, 'ga_collector_jobs_aborted_total', { reason: 'shutdown' }), 0);
    assert.equal(valueOf(families, 'ga_collector_jobs_aborted_total', { reason: 'reload' }), 0);
    // prom-client's default metrics are there too (the stale-data alert uses process_start_time_seconds)
    for (const n of [
      'process_start_time_seconds',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_seconds',
    ]) {
      assert.ok(families.has(n), `default metric ${n}`);
    }
    const startTime = valueOf(families, 'process_start_time_seconds', {})!;
    assert.ok(Math.abs(startTime - started) < 30, `process_start_time_seconds ${startTime} is about when the daemon started (${started})`);
  });

  it('counts fetch runs per outcome, from 0, and the rows that are in the table', async () => {
    const runs = (property: string, outcome: string) => valueOf(families, 'ga_collector_fetch_runs_total', { property, report: 'daily', outcome });
    assert.equal(runs(LA, 'success'), 1);
    assert.equal(runs(LA, 'failure'), 0, 'the failure counter exists at 0 (alerts use increase())');
    assert.equal(runs(DENIED, 'failure'), 1);
    assert.equal(runs(DENIED, 'success'), 0);

    const [{ n }] = (await db.query<{ n: string }>(`SELECT count(*) AS n FROM "${db.schema}".daily WHERE property_id = $1`, [LA])) as [{ n: string }];
    assert.ok(Number(n) >= 6, `rows stored: ${n}`);
    assert.equal(
      valueOf(families, 'ga_collector_rows_written_total', { property: LA, report: 'daily' }),
      Number(n),
      'rows_written equals the rows in ga4.daily',
    );
    assert.equal(valueOf(families, 'ga_collector_rows_written_total', { property: DENIED, report: 'daily' }), 0);

    const last = valueOf(families, 'ga_collector_last_success_timestamp_seconds', { property: LA, report: 'daily' })!;
    assert.ok(last >= started && last <= Date.now() / 1000, `last success ${last} within the run`);
    assert.equal(
      valueOf(families, 'ga_collector_last_success_timestamp_seconds', { property: DENIED, report: 'daily' }),
      undefined,
      'never succeeded: no series',
    );
    assert.equal(valueOf(families, 'ga_collector_dates_pending', { property: LA, report: 'daily' }), 0, 'nothing pending after a success');
    const pendingDenied = valueOf(families, 'ga_collector_dates_pending', { property: DENIED, report: 'daily' });
    assert.ok(pendingDenied === undefined || pendingDenied > 0, `DENIED pending: ${pendingDenied}`);
  });

  it("counts API requests by status as the fake saw them, and reports the fake's quota", () => {
    const seen = (property: string, status: number) => g.fake.events.filter((e) => e.property === property && e.kind !== 'token' && e.status === status).length;
    assert.ok(seen(LA, 200) >= 1);
    assert.equal(valueOf(families, 'ga_collector_api_requests_total', { property: LA, code: '200' }), seen(LA, 200));
    assert.equal(valueOf(families, 'ga_collector_api_requests_total', { property: DENIED, code: '403' }), seen(DENIED, 403));
    assert.equal(seen(DENIED, 403), 1, 'a 403 is not retried');

    const hour = valueOf(families, 'ga_collector_quota_tokens_remaining', { property: LA, window: 'hour' })!;
    const day = valueOf(families, 'ga_collector_quota_tokens_remaining', { property: LA, window: 'day' })!;
    assert.ok(hour > HOUR_QUOTA - 1_000 && hour < HOUR_QUOTA, `hourly quota left ${hour} of ${HOUR_QUOTA}`);
    // both buckets are charged the same tokens per request
    assert.equal(day - hour, DAY_QUOTA - HOUR_QUOTA, `daily quota left ${day}`);
  });

  it('shows the token expiry in the future and one successful refresh', () => {
    const expiry = valueOf(families, 'ga_collector_token_expiry_timestamp_seconds', { account: SA_EMAIL })!;
    const now = Date.now() / 1000;
    assert.ok(expiry > now + 3000 && expiry <= now + 3600, `token expires at ${expiry}, now ${now}`);
    assert.equal(valueOf(families, 'ga_collector_token_refreshes_total', { account: SA_EMAIL, outcome: 'success' }), g.fake.counts().tokenOk);
    assert.equal(valueOf(families, 'ga_collector_token_refreshes_total', { account: SA_EMAIL, outcome: 'failure' }), 0);
  });

  it('passes promtool check metrics (ga_collector_ families) and the whole exposition parses', { skip: skipUnless(PROMTOOL) }, () => {
    const ours =
      text
        .split('\n')
        .filter((l) => /^(# (HELP|TYPE) )?ga_collector_/.test(l))
        .join('\n') + '\n';
    const r = promtool(['check', 'metrics'], ours);
    assert.equal(r.code, 0, `promtool check metrics (ga_collector_):\n${r.stdout}${r.stderr}`);
    assert.equal((r.stdout + r.stderr).trim(), '', 'no lint findings');

    // The whole text: prom-client's own nodejs_active_*_total gauges break promtool's naming lint
    // ("non-counter metrics should not have _total suffix"); that is theirs. Anything else, and any
    // parse error, is a failure.
    const all = promtool(['check', 'metrics'], text);
    const findings = (all.stdout + all.stderr).split('\n').filter((l) => l.trim());
    assert.ok(!findings.some((l) => /error while linting|parse|unexpected|invalid/i.test(l)), `parse errors:\n${findings.join('\n')}`);
    const notTheirs = findings.filter((l) => !/^nodejs_active_\w+_total non-counter metrics should not have "_total" suffix$/.test(l.trim()));
    assert.deepEqual(notTheirs, [], 'only prom-client default gauges are flagged');
  });

  it('answers /healthz 200 and /readyz 200 when the database and the token are fine', async () => {
    const h = await get(`${daemon.url}/healthz`);
    assert.equal(h.status, 200);
    const r = await get(`${daemon.url}/readyz`);
    assert.equal(r.status, 200, r.body);
    assert.match(r.type, /application\/json/);
    assert.deepEqual(JSON.parse(r.body), { ready: true });
  });

  it('answers /readyz 503 with a JSON reason while the database is unreachable, 200 again when it is back; /healthz stays 200', async () => {
    await proxy.close();
    const r = await get(`${daemon.url}/readyz`);
    assert.equal(r.status, 503, r.body);
    assert.match(r.type, /application\/json/);
    const body = JSON.parse(r.body) as { ready: boolean; reasons: string[] };
    assert.equal(body.ready, false);
    assert.equal(body.reasons.length, 1, r.body);
    assert.match(body.reasons[0]!, /^database: /);
    assert.equal((await get(`${daemon.url}/healthz`)).status, 200, 'alive while not ready');
    await proxy.open();
    await waitFor(async () => (await get(`${daemon.url}/readyz`)).status === 200, { timeoutMs: 10_000, what: '/readyz 200 after the database came back' });
  });

  it('the alert rules use only exported families, with their labels', () => {
    const rules = YAML.parse(fs.readFileSync(path.join(ROOT, 'deploy/prometheus/alerts.yml'), 'utf8')) as {
      groups: Array<{ rules: Array<{ alert: string; expr: string; annotations: Record<string, string> }> }>;
    };
    const targetLabels = ['job', 'instance'];
    const referenced = new Set<string>();
    for (const rule of rules.groups.flatMap((gr) => gr.rules)) {
      const names = [...new Set(rule.expr.match(/\b[a-z_][a-z0-9_]*(?=\s*(\{|\[|\)|\s|$|<|>|=|-|\+|\*|\/))/g) ?? [])].filter((n) =>
        /^(ga_collector_|process_|nodejs_)/.test(n),
      );
      const allowed = new Set(targetLabels);
      for (const n of names) {
        const f = families.get(n);
        assert.ok(f && f.samples.length > 0, `${rule.alert}: ${n} is not exported`);
        for (const s of f.samples) for (const l of Object.keys(s.labels)) allowed.add(l);
        referenced.add(n);
      }
      if (rule.expr.includes('up{')) allowed.add('job');
      const used = new Set<string>();
      for (const m of rule.expr.matchAll(/\b(?:on|without|by|ignoring)\s*\(([^)]*)\)/g)) for (const l of m[1]!.split(',')) if (l.trim()) used.add(l.trim());
      for (const m of rule.expr.matchAll(/\{([^}]*)\}/g)) for (const l of m[1]!.matchAll(/([a-z_]+)\s*=~?/g)) used.add(l[1]!);
      for (const text of Object.values(rule.annotations ?? {})) for (const m of text.matchAll(/\$labels\.([a-z_]+)/g)) used.add(m[1]!);
      const unknown = [...used].filter((l) => !allowed.has(l));
      assert.deepEqual(unknown, [], `${rule.alert}: labels not exported by ${names.join(', ') || 'its series'}`);
      // label values the daemon uses
      for (const m of rule.expr.matchAll(/(outcome|window)="([^"]*)"/g)) {
        const values = new Set(names.flatMap((n) => families.get(n)!.samples.map((s) => s.labels[m[1]!])));
        assert.ok(values.has(m[2]!), `${rule.alert}: ${m[1]}="${m[2]}" never exported`);
      }
    }
    assert.deepEqual(
      [...referenced].sort(),
      [
        'ga_collector_dates_pending',
        'ga_collector_fetch_runs_total',
        'ga_collector_job_deadline_seconds',
        'ga_collector_last_success_timestamp_seconds',
        'ga_collector_oldest_running_job_seconds',
        'ga_collector_quota_tokens_remaining',
        'ga_collector_token_expiry_timestamp_seconds',
        'ga_collector_token_refreshes_total',
        'process_start_time_seconds',
      ],
      'the families the rules were checked against',
    );
  });
});

describe('readiness while the token endpoint refuses the key', () => {
  let db: TestDb;
  let g: FakeSetup;
  let daemon: DaemonProcess;

  before(async () => {
    db = await testDb('readyz_token');
    g = await startFake([{ id: LA, timeZone: 'America/Los_Angeles' }]);
    g.fake.revokeKey(SA_EMAIL);
    const config = writeConfig(g.dir, db, g, { properties: [{ id: LA }], reports, http: { host: '127.0.0.1', port: 0 } });
    daemon = await startDaemon(config);
  });
  after(async () => {
    await daemon?.stop();
    await g?.stop();
    await db?.drop();
  });

  it('answers /readyz 503 naming the account and the refusal; /healthz 200; the failure is counted', async () => {
    await waitFor(() => daemon.logs().some((l) => l['event'] === 'token_refresh_failed'), { what: 'a refused token exchange' });
    const r = await get(`${daemon.url}/readyz`);
    assert.equal(r.status, 503, r.body);
    const body = JSON.parse(r.body) as { ready: boolean; reasons: string[] };
    assert.equal(body.ready, false);
    assert.equal(body.reasons.length, 1, r.body);
    assert.match(body.reasons[0]!, new RegExp(`^token for ${SA_EMAIL.replace(/\./g, '\\.')}: refresh failing: .*invalid_grant`));
    assert.equal((await get(`${daemon.url}/healthz`)).status, 200);
    const f = parseExposition((await get(`${daemon.url}/metrics`)).body);
    assert.ok(valueOf(f, 'ga_collector_token_refreshes_total', { account: SA_EMAIL, outcome: 'failure' })! >= 1);
    assert.equal(valueOf(f, 'ga_collector_token_refreshes_total', { account: SA_EMAIL, outcome: 'success' }), 0);
    assert.equal(f.get('ga_collector_token_expiry_timestamp_seconds')?.samples.length ?? 0, 0, 'no token, no expiry');
  });
});
