/** The Grafana dashboard shipped in deploy/grafana/, read the way the tests need it. */
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './helpers.js';

export const DASHBOARD = path.join(ROOT, 'deploy/grafana/ga-collector.json');

export interface DashboardQuery {
  panel: string;
  expr: string;
}

interface Panel {
  id: number;
  title: string;
  type: string;
  datasource?: { type?: string; uid?: string };
  targets?: Array<{ expr?: string; refId?: string }>;
  panels?: Panel[];
}

export function dashboardPanels(): Panel[] {
  const d = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] };
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every PromQL expression of every panel. */
export function dashboardQueries(): DashboardQuery[] {
  return dashboardPanels().flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr ?? '' })));
}

/** The ga_collector_ families an expression refers to (suffixes of histograms do not occur here). */
export function familiesIn(expr: string): string[] {
  return [...new Set([...expr.matchAll(/\bga_collector_[a-z0-9_]+/g)].map((m) => m[0]))];
}
