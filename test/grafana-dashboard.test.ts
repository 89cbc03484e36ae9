/**
 * deploy/grafana/ga-collector.json: a dashboard Grafana can import (datasource as an import input),
 * whose every PromQL expression parses (promtool) and refers only to families the daemon exports.
 * test/prometheus-scrape.test.ts evaluates every expression against a real Prometheus.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { Metrics } from '../src/metrics.js';
import { DASHBOARD, dashboardPanels, dashboardQueries, familiesIn } from './dashboard.js';
import { tmpDir } from './helpers.js';
import { promtool } from './ops-helpers.js';
import { PROMTOOL, skipUnless } from './tools.js';

describe('Grafana dashboard', () => {
  it('is an importable dashboard: unique panel ids, the Prometheus datasource as an import input', () => {
    const d = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as { uid: string; title: string; __inputs: Array<{ name: string; pluginId: string }> };
    assert.equal(d.uid, 'ga-collector');
    assert.deepEqual(
      d.__inputs.map((i) => [i.name, i.pluginId]),
      [['DS_PROMETHEUS', 'prometheus']],
    );
    const panels = dashboardPanels();
    assert.equal(new Set(panels.map((p) => p.id)).size, panels.length, 'unique panel ids');
    for (const p of panels) {
      assert.equal(p.datasource?.uid, '${DS_PROMETHEUS}', `${p.title}: datasource`);
      assert.ok((p.targets ?? []).length > 0, `${p.title}: has a query`);
    }
  });

  it('shows freshness, outcomes, rows, API codes, quota, token expiry and dates pending', () => {
    const all = dashboardQueries()
      .map((q) => q.expr)
      .join('\n');
    for (const family of [
      'ga_collector_last_success_timestamp_seconds',
      'ga_collector_fetch_runs_total',
      'ga_collector_rows_written_total',
      'ga_collector_api_requests_total',
      'ga_collector_quota_tokens_remaining',
      'ga_collector_token_expiry_timestamp_seconds',
      'ga_collector_dates_pending',
    ]) {
      assert.ok(all.includes(family), `a panel shows ${family}`);
    }
  });

  it('refers only to families the daemon exports', async () => {
    const exported = new Set((await new Metrics({ defaultMetrics: false }).registry.getMetricsAsJSON()).map((m) => m.name));
    for (const q of dashboardQueries()) {
      for (const family of familiesIn(q.expr)) assert.ok(exported.has(family), `${q.panel}: ${family} is not exported`);
    }
  });

  it('every expression parses (promtool check rules)', { skip: skipUnless(PROMTOOL) }, () => {
    const dir = tmpDir('dashboard');
    try {
      const file = path.join(dir, 'dashboard-rules.yml');
      const rules = dashboardQueries().map((q, i) => ({ record: `dashboard:panel_${i}`, expr: q.expr }));
      fs.writeFileSync(file, YAML.stringify({ groups: [{ name: 'dashboard', rules }] }));
      const r = promtool(['check', 'rules', file]);
      assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
