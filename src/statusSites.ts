/**
 * The Search Console sites in the status document (status.ts builds it): a report status per site
 * and report, and a clicks chart per site. A site is on Search Console's Pacific calendar, and its
 * newest date due is the newest Google serves for the report's dataState (schedule/siteJob.ts), so
 * its gaps are counted through that date, not through yesterday.
 */
import type { Config } from './config/index.js';
import { reportStatus } from './reportStatus.js';
import type { JobBoard } from './schedule/jobBoard.js';
import { siteWindow } from './schedule/siteJob.js';
import { SEARCH_CONSOLE_TIME_ZONE } from './searchConsole/report.js';
import type { ClicksRequest } from './store/siteStatusQueries.js';
import { SEARCH_CONSOLE_METRICS } from './store/sourceTables.js';
import type { Coverage } from './store/statusQueries.js';
import type { ReportStatus, StatusDocument } from './statusDocument.js';

/**
 * A status per configured site and report, as a property's (status.ts): `coverage` keyed by
 * `site\0report`, `calendarNow` the clock the calendar is read by, `dueSince` when a successful
 * run is owed by a schedule (null: not yet).
 */
export function siteStatuses(
  config: Config,
  coverage: Map<string, Coverage>,
  board: JobBoard,
  calendarNow: number,
  dueSince: (schedule: string) => number | null,
): ReportStatus[] {
  const out: ReportStatus[] = [];
  for (const site of config.searchConsole.sites) {
    const since = dueSince(site.schedule);
    for (const report of site.reports) {
      const job = board.job(site.url, report);
      const stored = coverage.get(`${site.url}\0${report}`);
      const gaps = Math.max(0, siteWindow(config.searchConsole.reports[report]!, calendarNow).days - (stored?.inWindow ?? stored?.days ?? 0));
      out.push(
        reportStatus({ kind: 'searchConsole', property: site.url, report, timeZone: SEARCH_CONSOLE_TIME_ZONE, job, stored, gaps, since, discovered: null }),
      );
    }
  }
  return out;
}

/**
 * The clicks chart of each shown site: clicks per date summed over the rows of its report with the
 * fewest dimensions, the nearest to the site's own total (a report by date alone is that total;
 * one by query leaves out anonymized queries; statusPage.ts rowSumBasis says which), and the reads that fetch them.
 */
export function siteCharts(config: Config, shown: Set<string>): { charts: Array<Omit<StatusDocument['series'][number], 'points'>>; requests: ClicksRequest[] } {
  const defs = config.searchConsole.reports;
  const charts: Array<Omit<StatusDocument['series'][number], 'points'>> = [];
  const byReport = new Map<string, string[]>();
  for (const site of config.searchConsole.sites) {
    if (!shown.has(site.url) || site.reports.length === 0) continue;
    const report = [...site.reports].sort((a, b) => defs[a]!.dimensions.length - defs[b]!.dimensions.length)[0]!;
    const def = defs[report]!;
    charts.push({
      kind: 'searchConsole',
      property: site.url,
      report,
      metric: SEARCH_CONSOLE_METRICS[0],
      source: 'rowSum',
      dimensions: [...def.dimensions],
      aggregationType: def.aggregationType,
    });
    byReport.set(report, [...(byReport.get(report) ?? []), site.url]);
  }
  return { charts, requests: [...byReport].map(([report, sites]) => ({ report, sites })) };
}
