/**
 * `ga-collector status`: what the database holds, read from the database alone (no Google, no
 * token), per configured property and report: data through which date, gaps, the last fetch, the
 * dates still revising, the dates GA flagged, and a failing last run (`job_failures`). Data of
 * properties or reports no longer configured is listed apart, with the prune that removes it.
 *
 * A gap is a date from the report's start date through the property's yesterday (in its own time
 * zone, by the earlier of this machine's clock and the database's, as the runner plans) that is
 * not stored as finished. A property never fetched has no known time zone: all its dates are
 * missing, counted as a gap. Exit 0, or 1 when any gap or failing run is recorded.
 *
 * Search Console sites are listed after the properties, from their own schema
 * (searchConsole.schema): their calendar is Pacific, so a site's gaps are the dates from the
 * report's start date through the newest date Google serves for its `dataState` (today-3 for
 * `final`, today-1 for `all`) that are not stored; Google flags no Search Console date.
 */
import type { Config } from '../config/index.js';
import { redactUrl } from '../log.js';
import { resolveStartDate } from '../schedule/planner.js';
import { siteWindow } from '../schedule/siteJob.js';
import { SEARCH_CONSOLE_TIME_ZONE } from '../searchConsole/report.js';
import { gapRuns, markedRuns, type DateMark, type DateRun, type GapWindow } from '../store/dateRanges.js';
import { jobFailures, type JobFailure } from '../store/jobFailures.js';
import { databaseNow, ledgerSummary, type ReportSummary } from '../store/ledger.js';
import { migrationState } from '../store/migrations.js';
import type { Pool } from '../store/pool.js';
import { siteCoverage } from '../store/siteStatusQueries.js';
import { SEARCH_CONSOLE_MIGRATIONS_DIR, searchConsoleTables } from '../store/sourceTables.js';
import { ledgerCoverage, propertyTimeZones, type Coverage, type CoverageWindow } from '../store/statusQueries.js';
import { addDays, localDate } from '../time.js';
import { formatRuns, isoSeconds, plural, withCommandPool } from './common.js';

interface Runs {
  days: number;
  runs: Array<{ from: string; to: string }>;
}

interface ReportStatusLine {
  /** a GA4 property, or a Search Console site (`property` is then its URL) */
  kind: 'ga4' | 'searchConsole';
  property: string;
  report: string;
  /** null: the property was never fetched, its calendar is not known */
  timeZone: string | null;
  /** the window gaps are counted in; null when the time zone is not known */
  window: { from: string; through: string } | null;
  dataThrough: string | null;
  firstDate: string | null;
  storedDays: number;
  lastFetch: string | null;
  /** days null: never fetched, every date from the start date is missing */
  gaps: { days: number | null; runs: Array<{ from: string; to: string }> };
  revising: Runs;
  flagged: { thresholding: Runs; sampling: Runs; otherRow: Runs };
  failure: { since: string; at: string; runs: number; error: string; permanent: boolean } | null;
}

export interface StatusOutput {
  generatedAt: string;
  database: string;
  schema: string;
  migrations: { current: number; latest: number };
  /** the Search Console schema, when sites are configured */
  searchConsole: { schema: string; migrations: { current: number; latest: number } } | null;
  /** the properties' reports, then the sites' */
  reports: ReportStatusLine[];
  /** stored data of pairs outside the configuration's properties and sites (with discovery on, discovered ones among them) */
  unconfigured: Array<{ kind: 'ga4' | 'searchConsole'; property: string; report: string; storedDays: number; lastDate: string | null }>;
  /** discovery is on: properties outside `properties` may be discovered ones, which this command cannot list */
  discovery: boolean;
  summary: { reports: number; withGaps: number; failing: number; revising: number; flagged: number };
  /** no gap and no failing run */
  ok: boolean;
}

/** Reads the status; exit 0 or 1 as the module says, 2 for a database setting that cannot work. */
export async function runStatus(config: Config, json: boolean): Promise<number> {
  return withCommandPool(config, async (pool) => {
    const status = await readStatus(pool, config);
    process.stdout.write(json ? `${JSON.stringify(status, null, 2)}\n` : `${formatStatus(status)}\n`);
    return status.ok ? 0 : 1;
  });
}

/** The status document, from a few queries whatever the number of properties. */
async function readStatus(pool: Pool, config: Config, ownNow = Date.now()): Promise<StatusOutput> {
  const schema = config.database.schema;
  const migrations = await migrationState(pool, schema);
  const pairs = config.properties.flatMap((p) => p.reports.map((report) => ({ propertyId: p.id, report })));
  const migrated = migrations.current > 0;
  const now = Math.min(ownNow, await databaseNow(pool));
  const zones = migrated ? await propertyTimeZones(pool, schema) : new Map<string, string>();

  const windowOf = (tz: string, report: string) => {
    const today = localDate(now, tz);
    return { from: resolveStartDate(config.reports[report]!.startDate, today), through: addDays(today, -1) };
  };
  const coverageWindows: CoverageWindow[] = [];
  for (const tz of new Set(zones.values())) {
    for (const report of Object.keys(config.reports)) coverageWindows.push({ timeZone: tz, report, ...windowOf(tz, report) });
  }
  const gapWindows: GapWindow[] = [];
  for (const { propertyId, report } of pairs) {
    const tz = zones.get(propertyId);
    if (tz) gapWindows.push({ propertyId, report, timeZone: tz, ...windowOf(tz, report) });
  }
  const key = (p: string, r: string) => `${p}\0${r}`;
  const [coverage, gaps, marks, failures, summary] = migrated
    ? await Promise.all([
        ledgerCoverage(pool, schema, coverageWindows),
        gapRuns(pool, schema, gapWindows),
        markedRuns(pool, schema, pairs),
        jobFailures(pool, schema),
        ledgerSummary(pool, schema),
      ])
    : [[], [], [], [], []];
  const coverageBy = new Map(coverage.map((c) => [key(c.propertyId, c.report), c]));
  const gapsBy = group(gaps);
  const marksBy = new Map<string, Map<DateMark, DateRun[]>>();
  for (const m of marks) {
    const k = key(m.propertyId, m.report);
    if (!marksBy.has(k)) marksBy.set(k, new Map());
    const byMark = marksBy.get(k)!;
    byMark.set(m.mark, [...(byMark.get(m.mark) ?? []), m]);
  }
  const failureBy = new Map(failures.map((f) => [key(f.propertyId, f.report), f]));
  const runsOf = (list: DateRun[] | undefined): Runs => ({
    days: (list ?? []).reduce((n, r) => n + r.days, 0),
    runs: (list ?? []).map((r) => ({ from: r.from, to: r.to })),
  });

  const reports: ReportStatusLine[] = pairs.map(({ propertyId, report }) => {
    const k = key(propertyId, report);
    const tz = zones.get(propertyId) ?? null;
    const cov = coverageBy.get(k);
    const m = marksBy.get(k);
    const f = failureBy.get(k);
    const window = tz ? windowOf(tz, report) : null;
    const gapList = gapsBy.get(k);
    return {
      property: propertyId,
      report,
      timeZone: tz,
      window,
      ...storedOf(cov),
      gaps: window ? runsOf(gapList) : { days: null, runs: [] },
      revising: runsOf(m?.get('revising')),
      flagged: { thresholding: runsOf(m?.get('thresholding')), sampling: runsOf(m?.get('sampling')), otherRow: runsOf(m?.get('otherRow')) },
      failure: failureOf(f),
      kind: 'ga4' as const,
    };
  });
  const configured = new Set(pairs.map((p) => key(p.propertyId, p.report)));
  const unconfigured: StatusOutput['unconfigured'] = summary
    .filter((s) => !configured.has(key(s.propertyId, s.report)))
    .map((s) => ({ kind: 'ga4', property: s.propertyId, report: s.report, storedDays: s.days, lastDate: s.lastDate }));
  const sites = await readSites(pool, config, now);
  reports.push(...sites.reports);
  unconfigured.push(...sites.unconfigured);
  const withGaps = reports.filter((r) => r.gaps.days === null || r.gaps.days > 0).length;
  const failing = reports.filter((r) => r.failure).length;
  const flaggedCount = (r: ReportStatusLine) => r.flagged.thresholding.days + r.flagged.sampling.days + r.flagged.otherRow.days;
  return {
    generatedAt: isoSeconds(ownNow)!,
    database: redactUrl(config.database.url),
    schema,
    migrations,
    searchConsole: sites.state,
    reports,
    unconfigured,
    discovery: config.discovery.enabled,
    summary: {
      reports: reports.length,
      withGaps,
      failing,
      revising: reports.filter((r) => r.revising.days > 0).length,
      flagged: reports.filter((r) => flaggedCount(r) > 0).length,
    },
    ok: withGaps === 0 && failing === 0,
  };
}

/** The sites' lines, from the Search Console schema (not created yet: nothing stored, every date a gap). */
async function readSites(
  pool: Pool,
  config: Config,
  now: number,
): Promise<{ state: StatusOutput['searchConsole']; reports: ReportStatusLine[]; unconfigured: StatusOutput['unconfigured'] }> {
  const sc = config.searchConsole;
  const tables = searchConsoleTables(sc.schema);
  const migrations = await migrationState(pool, sc.schema, SEARCH_CONSOLE_MIGRATIONS_DIR);
  if (sc.sites.length === 0) {
    // no site configured (any more): what earlier ones stored is still listed, for prune
    const left = migrations.current > 0 ? await ledgerSummary(pool, tables) : [];
    return { state: null, reports: [], unconfigured: left.map(unconfiguredSite) };
  }
  const windowOf = (report: string) => {
    const { from, through } = siteWindow(sc.reports[report]!, now);
    return { from, through };
  };
  const pairs = sc.sites.flatMap((s) => s.reports.map((report) => ({ propertyId: s.url, report })));
  const gapWindows: GapWindow[] = pairs.map((p) => ({ ...p, timeZone: SEARCH_CONSOLE_TIME_ZONE, ...windowOf(p.report) }));
  const empty: [Coverage[], DateRun[], Array<DateRun & { mark: DateMark }>, JobFailure[], ReportSummary[]] = [[], [], [], [], []];
  const [coverage, gaps, marks, failures, summary] =
    migrations.current > 0
      ? await Promise.all([
          siteCoverage(
            pool,
            sc.schema,
            Object.keys(sc.reports).map((report) => ({ report, ...windowOf(report) })),
          ),
          gapRuns(pool, tables, gapWindows),
          markedRuns(pool, tables, pairs),
          jobFailures(pool, tables),
          ledgerSummary(pool, tables),
        ])
      : empty;
  const key = (p: string, r: string) => `${p}\0${r}`;
  const coverageBy = new Map(coverage.map((c) => [key(c.propertyId, c.report), c]));
  const failureBy = new Map(failures.map((f) => [key(f.propertyId, f.report), f]));
  const gapsBy = group(gaps);
  const revisingBy = group(marks.filter((m) => m.mark === 'revising'));
  const runsOf = (list: DateRun[] | undefined): Runs => ({
    days: (list ?? []).reduce((n, r) => n + r.days, 0),
    runs: (list ?? []).map((r) => ({ from: r.from, to: r.to })),
  });
  const none: Runs = { days: 0, runs: [] };
  const reports = pairs.map(({ propertyId, report }): ReportStatusLine => {
    const k = key(propertyId, report);
    const cov = coverageBy.get(k);
    const f = failureBy.get(k);
    const { days, ...window } = siteWindow(sc.reports[report]!, now);
    // no schema yet: nothing stored, the whole window is one gap
    const gapList = migrations.current > 0 ? gapsBy.get(k) : days > 0 ? [{ propertyId, report, ...window, to: window.through, days }] : [];
    return {
      property: propertyId,
      report,
      timeZone: SEARCH_CONSOLE_TIME_ZONE,
      window,
      ...storedOf(cov),
      gaps: runsOf(gapList),
      revising: runsOf(revisingBy.get(k)),
      // Search Console has no data-quality flags of GA's kind (the columns stay false)
      flagged: { thresholding: none, sampling: none, otherRow: none },
      failure: failureOf(f),
      kind: 'searchConsole',
    };
  });
  const configured = new Set(pairs.map((p) => key(p.propertyId, p.report)));
  const unconfigured: StatusOutput['unconfigured'] = summary.filter((s) => !configured.has(key(s.propertyId, s.report))).map(unconfiguredSite);
  return { state: { schema: sc.schema, migrations }, reports, unconfigured };
}

/** What the ledger holds of a report, from its coverage row (none: nothing stored). */
function storedOf(cov: Coverage | undefined): Pick<ReportStatusLine, 'dataThrough' | 'firstDate' | 'storedDays' | 'lastFetch'> {
  return {
    dataThrough: cov?.lastDate ?? null,
    firstDate: cov?.firstDate ?? null,
    storedDays: cov?.days ?? 0,
    lastFetch: cov ? isoSeconds(cov.lastFetchedMs) : null,
  };
}

/** A report's recorded failure as the status shows it; null when its last run did not fail. */
function failureOf(f: JobFailure | undefined): ReportStatusLine['failure'] {
  return f ? { since: isoSeconds(f.firstFailedAt)!, at: isoSeconds(f.failedAt)!, runs: f.failures, error: f.error, permanent: f.permanent } : null;
}

function unconfiguredSite(s: ReportSummary): StatusOutput['unconfigured'][number] {
  return { kind: 'searchConsole', property: s.propertyId, report: s.report, storedDays: s.days, lastDate: s.lastDate };
}

function group(runs: DateRun[]): Map<string, DateRun[]> {
  const out = new Map<string, DateRun[]>();
  for (const r of runs) {
    const k = `${r.propertyId}\0${r.report}`;
    out.set(k, [...(out.get(k) ?? []), r]);
  }
  return out;
}

const MARK_LABELS: Record<'thresholding' | 'sampling' | 'otherRow', string> = {
  thresholding: 'thresholding',
  sampling: 'sampling',
  otherRow: '(other) row',
};

/** The status for people: a table, a detail line under a report for each thing to know, a closing tally. */
function formatStatus(s: StatusOutput): string {
  const lines: string[] = [];
  const state =
    s.migrations.current === 0
      ? `schema ${s.schema} not created yet: nothing stored (\`ga-collector migrate\` or \`run\` creates it)`
      : s.migrations.current < s.migrations.latest
        ? `schema ${s.schema} at migration ${s.migrations.current} of ${s.migrations.latest} (\`ga-collector migrate\` applies the rest)`
        : `schema ${s.schema}`;
  lines.push(`database ${s.database}, ${state}`, '');
  const properties = s.reports.filter((r) => r.kind === 'ga4');
  const sites = s.reports.filter((r) => r.kind === 'searchConsole');
  if (properties.length === 0 && sites.length === 0) lines.push('no properties or sites configured');
  if (properties.length) {
    table(lines, ['property', 'report', 'time zone', 'data through', 'gaps', 'last fetch'], properties, (r) => [
      r.property,
      r.report,
      r.timeZone ?? '?',
      r.dataThrough ?? '-',
      r.gaps.days === null ? 'all' : String(r.gaps.days),
      r.lastFetch ?? 'never',
    ]);
  }
  if (sites.length && s.searchConsole) {
    const m = s.searchConsole.migrations;
    const state =
      m.current === 0
        ? `schema ${s.searchConsole.schema} not created yet: nothing stored (\`ga-collector migrate\` or \`run\` creates it)`
        : m.current < m.latest
          ? `schema ${s.searchConsole.schema} at migration ${m.current} of ${m.latest}`
          : `schema ${s.searchConsole.schema}`;
    if (properties.length) lines.push('');
    lines.push(`Search Console sites, ${state}; Pacific days, gaps through the newest date Google serves (final: today-3, all: today-1)`, '');
    table(lines, ['site', 'report', 'data through', 'gaps', 'last fetch'], sites, (r) => [
      r.property,
      r.report,
      r.dataThrough ?? '-',
      String(r.gaps.days ?? 0),
      r.lastFetch ?? 'never',
    ]);
  }
  // with discovery on, a GA4 property outside `properties` may be a discovered one; sites are never discovered
  const outside = s.discovery ? s.unconfigured.filter((u) => u.kind === 'ga4') : [];
  const left = s.unconfigured.filter((u) => !outside.includes(u));
  for (const [list, head] of [
    [outside, 'stored for properties outside `properties` (discovered ones, or no longer configured; this command asks Google nothing, so it cannot tell):'],
    [left, 'stored, but no longer configured (`ga-collector prune` deletes it):'],
  ] as const) {
    if (!list.length) continue;
    lines.push('', head);
    for (const u of list) {
      lines.push(
        `    ${u.kind === 'ga4' ? 'property' : 'site'} ${u.property} report ${u.report}: ${plural(u.storedDays, 'date')}${u.lastDate ? ` through ${u.lastDate}` : ''}`,
      );
    }
  }
  const t = s.summary;
  lines.push(
    '',
    `${plural(t.reports, 'report')}: ${t.withGaps} with gaps, ${t.failing} failing, ${t.revising} with dates still revising, ${t.flagged} with flagged dates${s.ok ? '' : ' (exit 1)'}`,
  );
  return lines.join('\n');
}

/** A table of `head` and a row per line (its cells by `cells`), each followed by its details. */
function table(lines: string[], head: string[], reports: ReportStatusLine[], cells: (r: ReportStatusLine) => string[]): void {
  const rows = reports.map(cells);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => (i === c.length - 1 ? x : x.padEnd(widths[i]!))).join('  ');
  lines.push(line(head));
  reports.forEach((r, i) => {
    lines.push(line(rows[i]!));
    for (const detail of details(r)) lines.push(`    ${detail}`);
  });
}

function details(r: ReportStatusLine): string[] {
  const out: string[] = [];
  if (r.gaps.days === null) out.push(`never fetched: time zone not known yet; every date from ${r.report}'s start date is missing`);
  else if (r.gaps.days > 0) out.push(`gaps: ${plural(r.gaps.days, 'date')}: ${formatRuns(r.gaps.runs)}`);
  if (r.failure) {
    const times = r.failure.runs > 1 ? `${r.failure.runs} runs, since ${r.failure.since}` : `at ${r.failure.at}`;
    out.push(`failing (${times}${r.failure.permanent ? ', will not heal by itself' : ''}): ${r.failure.error}`);
  }
  if (r.revising.days > 0) out.push(`still revising: ${formatRuns(r.revising.runs)}`);
  for (const mark of ['thresholding', 'sampling', 'otherRow'] as const) {
    const f = r.flagged[mark];
    if (f.days > 0) out.push(`${MARK_LABELS[mark]}: ${plural(f.days, 'date')}: ${formatRuns(f.runs)}`);
  }
  return out;
}
