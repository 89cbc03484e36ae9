/**
 * A real scrape: Debian's Prometheus server (package `prometheus`, /usr/bin/prometheus) scrapes a
 * running daemon every second with deploy/prometheus/alerts.yml loaded; the test reads the target's
 * health, a series' value, the rules and a pending alert back through Prometheus' HTTP API.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, startFake, testDb, tmpDir, waitFor, writeConfig, type FakeSetup, type TestDb } from './helpers.js';
import { executable, get, spawnTool, startDaemon, type DaemonProcess } from './ops-helpers.js';
import { PROMETHEUS as PROMETHEUS_TOOL, skipUnless } from './tools.js';
import { dashboardQueries } from './dashboard.js';

const PROMETHEUS = PROMETHEUS_TOOL.command;
const ALERTS = path.join(ROOT, 'deploy/prometheus/alerts.yml');
const LA = '111111';
const DENIED = '333333';

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

interface ApiAnswer<T> {
  status: string;
  data: T;
}

describe('Prometheus scrapes the daemon and loads the alert rules', { timeout: 60_000, skip: skipUnless(PROMETHEUS_TOOL) }, () => {
  let db: TestDb;
  let g: FakeSetup;
  let daemon: DaemonProcess;
  let dir: string;
  let prom: ReturnType<typeof spawnTool> | undefined;
  let api: string;
  let target: string;

  const query = async <T>(p: string): Promise<T> => {
    const r = await get(`${api}${p}`);
    assert.equal(r.status, 200, `${p}: ${r.body}`);
    const body = JSON.parse(r.body) as ApiAnswer<T>;
    assert.equal(body.status, 'success', r.body);
    return body.data;
  };
  const instant = async (expr: string) =>
    query<{ result: Array<{ metric: Record<string, string>; value: [number, string] }> }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);

  before(async () => {
    if (!executable(PROMETHEUS)) {
      throw new Error(`${PROMETHEUS} not found: install Debian's Prometheus server (apt-get install -y prometheus), as .ci/run does`);
    }
    db = await testDb('scrape');
    g = await startFake([
      { id: LA, timeZone: 'America/Los_Angeles' },
      { id: DENIED, timeZone: 'Europe/Berlin', grant: false },
    ]);
    // DENIED fails every second, so its failure counter rises while Prometheus watches.
    const config = writeConfig(g.dir, db, g, {
      properties: [{ id: LA }, { id: DENIED, schedule: '* * * * * *' }],
      reports: { daily: { metrics: ['sessions'], startDate: '5daysAgo' } },
      schedule: '0 4 * * *',
      http: { host: '127.0.0.1', port: 0 },
    });
    daemon = await startDaemon(config);
    target = new URL(daemon.url).host;

    dir = tmpDir('prometheus');
    const port = await freePort();
    api = `http://127.0.0.1:${port}`;
    fs.writeFileSync(
      path.join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        `rule_files: [${JSON.stringify(ALERTS)}]`,
        'scrape_configs:',
        '  - job_name: ga-collector',
        `    static_configs: [{ targets: [${JSON.stringify(target)}] }]`,
        '',
      ].join('\n'),
    );
    prom = spawnTool(PROMETHEUS, [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ]);
    await waitFor(
      async () => {
        if (prom!.child.exitCode !== null) throw new Error(`prometheus exited ${prom!.child.exitCode}: ${prom!.out.text}`);
        return (await get(`${api}/-/ready`)).status === 200;
      },
      { timeoutMs: 20_000, intervalMs: 200, what: 'prometheus ready' },
    );
  });

  after(async () => {
    if (prom && prom.child.exitCode === null) {
      prom.child.kill('SIGTERM');
      const t = setTimeout(() => prom!.child.kill('SIGKILL'), 5_000);
      await prom.exited;
      clearTimeout(t);
    }
    await daemon?.stop();
    await g?.stop();
    await db?.drop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the target is up', async () => {
    const t = await waitFor(
      async () => {
        const d = await query<{ activeTargets: Array<{ health: string; labels: Record<string, string>; scrapeUrl: string; lastError: string }> }>(
          '/api/v1/targets',
        );
        return d.activeTargets.find((x) => x.health === 'up');
      },
      { timeoutMs: 15_000, intervalMs: 250, what: 'target up' },
    );
    assert.equal(t.labels['job'], 'ga-collector');
    assert.equal(t.labels['instance'], target);
    assert.equal(t.scrapeUrl, `http://${target}/metrics`);
    assert.equal(t.lastError, '');
    const up = await instant('up{job="ga-collector"}');
    assert.equal(up.result.length, 1);
    assert.equal(up.result[0]!.value[1], '1');
  });

  it('ga_collector_rows_written_total equals the rows stored', async () => {
    const [{ n }] = (await db.query<{ n: string }>(`SELECT count(*) AS n FROM "${db.schema}".daily WHERE property_id = $1`, [LA])) as [{ n: string }];
    assert.ok(Number(n) >= 5, `rows stored: ${n}`);
    const r = await waitFor(async () => (await instant(`ga_collector_rows_written_total{property="${LA}",report="daily"}`)).result[0], {
      timeoutMs: 10_000,
      what: 'the series in Prometheus',
    });
    assert.equal(Number(r.value[1]), Number(n));
    assert.equal(r.metric['job'], 'ga-collector');
    const expiry = await instant('ga_collector_token_expiry_timestamp_seconds - time()');
    assert.equal(expiry.result.length, 1);
    assert.ok(Number(expiry.result[0]!.value[1]) > 3000, `token valid for ${expiry.result[0]!.value[1]} s more`);
  });

  it('loads every rule of deploy/prometheus/alerts.yml and evaluates it without errors', async () => {
    const want = [...fs.readFileSync(ALERTS, 'utf8').matchAll(/^\s*- alert: (\w+)/gm)].map((m) => m[1]!);
    assert.ok(want.length >= 8, `alerts in the file: ${want.join(', ')}`);
    type Rules = { groups: Array<{ name: string; file: string; rules: Array<{ name: string; health: string; lastError?: string; lastEvaluation: string }> }> };
    const groups = await waitFor(
      async () => {
        const d = await query<Rules>('/api/v1/rules?type=alert');
        const rules = d.groups.flatMap((gr) => gr.rules);
        return rules.length === want.length && rules.every((r) => !r.lastEvaluation.startsWith('0001-')) ? d.groups : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 250, what: 'every rule evaluated once' },
    );
    assert.deepEqual(
      groups.map((gr) => [gr.name, gr.file]),
      [['ga-collector', ALERTS]],
    );
    const rules = groups[0]!.rules;
    assert.deepEqual(rules.map((r) => r.name).sort(), [...want].sort());
    for (const r of rules) assert.equal(r.health, 'ok', `${r.name}: ${r.lastError}`);
  });

  it('evaluates every Grafana dashboard query without errors, each with at least one series', async () => {
    for (const q of dashboardQueries()) {
      const r = await waitFor(
        async () => {
          const res = await get(`${api}/api/v1/query?query=${encodeURIComponent(q.expr)}`);
          const body = JSON.parse(res.body) as { status: string; error?: string; data?: { result: unknown[] } };
          assert.equal(body.status, 'success', `${q.panel}: ${q.expr}: ${body.error}`);
          // rate() and increase() need two scrapes: wait for them rather than judge too early
          return body.data!.result.length > 0 ? body.data!.result : undefined;
        },
        { timeoutMs: 15_000, intervalMs: 500, what: `a series for the panel "${q.panel}" (${q.expr})` },
      );
      assert.ok(r.length > 0);
    }
  });

  it("GaCollectorFetchFailing goes pending for the failing property only, with the daemon's labels", async () => {
    type Alerts = { alerts: Array<{ labels: Record<string, string>; state: string }> };
    const pending = await waitFor(
      async () => {
        const a = (await query<Alerts>('/api/v1/alerts')).alerts.filter((x) => x.labels['alertname'] === 'GaCollectorFetchFailing');
        return a.length ? a : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 250, what: 'GaCollectorFetchFailing pending' },
    );
    assert.deepEqual(
      pending.map((a) => [a.labels['property'], a.labels['report'], a.labels['instance'], a.labels['severity'], a.state]),
      [[DENIED, 'daily', target, 'warning', 'pending']],
    );
    const firing = (await query<Alerts>('/api/v1/alerts')).alerts.filter((a) => a.labels['alertname'] !== 'GaCollectorFetchFailing');
    assert.deepEqual(
      firing.map((a) => a.labels['alertname']),
      [],
      'no other alert',
    );
  });
});
