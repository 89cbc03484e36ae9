/**
 * The Search Console part of `run --once --dry-run` and `backfill --site --dry-run`: each site's
 * plan from the Search Console ledger, in its Pacific calendar, with nothing fetched or written.
 * A chunk of dates (searchConsole/report.ts: 7 dates, or one for a searchAppearance report) costs
 * at least two requests: a page of rows and the empty page that ends the listing.
 */
import type { Config, SiteConfig } from '../config/index.js';
import { siteTableDefinition } from '../config/index.js';
import { searchConsoleHorizon } from '../searchConsole/horizon.js';
import { CHUNK_DAYS, SEARCH_CONSOLE_TIME_ZONE } from '../searchConsole/report.js';
import { previousFire } from '../schedule/cron.js';
import { plan as planDates } from '../schedule/planner.js';
import { siteLagDays } from '../schedule/siteJob.js';
import { siteBackfillRange } from './backfillSite.js';
import { ledgerDays, type LedgerDay } from '../store/ledger.js';
import type { Pool } from '../store/pool.js';
import { tablesExist } from '../store/schemas.js';
import { searchConsoleTables } from '../store/sourceTables.js';
import { daysBetween } from '../time.js';
import { plural } from './common.js';

function requestsFor(config: Config, report: string, days: number): number {
  const perRequest = config.searchConsole.reports[report]!.dimensions.includes('searchAppearance') ? 1 : CHUNK_DAYS;
  return 2 * Math.ceil(days / perRequest);
}

/** Lines of the sites' plan for `run --once --dry-run`, and the dates and requests it counts. */
export async function sitesOncePlan(
  config: Config,
  pool: Pool,
  now: number,
  ownNow: number,
): Promise<{ lines: string[]; dates: number; requests: number; jobs: number; reports: number }> {
  const tables = searchConsoleTables(config.searchConsole.schema);
  const readable = await tablesExist(pool, tables.schema, ['fetch_days', 'report_definition_versions']);
  const lines: string[] = [];
  let dates = 0;
  let requests = 0;
  let jobs = 0;
  let reports = 0;
  for (const site of config.searchConsole.sites) {
    lines.push('', `site ${site.url} (${SEARCH_CONSOLE_TIME_ZONE}), schedule ${site.schedule}`);
    const lastFire = previousFire(site.schedule, new Date(ownNow));
    for (const name of site.reports) {
      const report = config.searchConsole.reports[name]!;
      const days: LedgerDay[] = readable ? await ledgerDays(pool, tables, site.url, name, '0001-01-01') : [];
      const pl = planDates({
        def: siteTableDefinition(report),
        timeZone: SEARCH_CONSOLE_TIME_ZONE,
        now: new Date(now),
        lastFire,
        ledger: days,
        maxDays: config.fetch.maxDaysPerRun,
        lagDays: siteLagDays(report),
        oldestDate: searchConsoleHorizon,
      });
      const taken = pl.ranges.reduce((n, [a, b]) => n + daysBetween(a, b) + 1, 0);
      const req = pl.ranges.reduce((n, [a, b]) => n + requestsFor(config, name, daysBetween(a, b) + 1), 0);
      const what = taken
        ? `${plural(taken, 'date')} in ${plural(pl.ranges.length, 'range')}: ${pl.ranges.map(([a, b]) => (a === b ? a : `${a} to ${b}`)).join(', ')}; at least ${plural(req, 'request')}`
        : 'nothing due';
      const left = pl.due.length > taken ? `; ${plural(pl.due.length - taken, 'more date')} left for later runs` : '';
      lines.push(`  report ${name} (through ${pl.yesterday}, dataState ${report.dataState}): ${what}${left}`);
      dates += taken;
      requests += req;
      reports += 1;
      if (taken) jobs += 1;
    }
  }
  return { lines, dates, requests, jobs, reports };
}

/**
 * Lines of `backfill --site --dry-run`'s plan.
 * @throws UsageError for a range the real backfill refuses
 */
export async function siteBackfillPlan(
  config: Config,
  pool: Pool,
  req: { site: SiteConfig; reports: string[]; from: string; to: string },
  nowMs: number[],
): Promise<string[]> {
  const range = siteBackfillRange(
    config,
    req.reports,
    { command: 'backfill', once: false, dryRun: true, json: false, yes: false, from: req.from, to: req.to },
    nowMs,
  );
  const tables = searchConsoleTables(config.searchConsole.schema);
  const readable = await tablesExist(pool, tables.schema, ['fetch_days']);
  const days = daysBetween(range.from, range.to) + 1;
  const out = ['', `site ${req.site.url} (${SEARCH_CONSOLE_TIME_ZONE}): ${range.from} to ${range.to}, ${plural(days, 'date')}, both included`];
  let requests = 0;
  for (const name of req.reports) {
    const stored = readable ? (await ledgerDays(pool, tables, req.site.url, name, range.from)).filter((d) => d.date <= range.to).length : 0;
    const r = requestsFor(config, name, days);
    requests += r;
    out.push(`  report ${name}: ${plural(days, 'date')} fetched and stored, ${stored} of them replacing stored dates; at least ${plural(r, 'request')}`);
  }
  out.push('', `plan: ${plural(req.reports.length, 'report')} of site ${req.site.url}; at least ${plural(requests, 'request')}`);
  return out;
}
