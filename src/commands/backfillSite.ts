/**
 * `backfill --site URL`: a date range of a Search Console site fetched and stored now, under the
 * same lock, planner, day writer and ledger as a scheduled run (schedule/siteJob.ts). Dates are
 * Search Console's Pacific days; `NdaysAgo` and `yesterday` count from the Pacific today (by the
 * earlier of this machine's clock and the database's). A range that ends after the newest date
 * Google serves a report's dataState (today-3 for final, today-1 for all), or starts before the
 * oldest it serves (16 months back, searchConsole/horizon.ts), is refused as bad input.
 */
import type { CliArgs } from '../cli.js';
import { siteSource, type Config } from '../config/index.js';
import type { Daemon } from '../daemon.js';
import { UsageError, describe } from '../errors.js';
import { SEARCH_CONSOLE_HORIZON_MONTHS, searchConsoleHorizon } from '../searchConsole/horizon.js';
import { SEARCH_CONSOLE_TIME_ZONE } from '../searchConsole/report.js';
import { siteLastDate } from '../schedule/siteJob.js';
import { databaseNow } from '../store/ledger.js';
import { localDate, parseDateSpec, resolveDateSpec } from '../time.js';
import { summaryLine, type JobOutcome } from './summary.js';

/**
 * The config of a site's backfill: the one site asked for, which must be in searchConsole.sites,
 * with a report it uses; no property. Bad input is found before the database is touched.
 * @throws UsageError naming the problem
 */
export function siteBackfillConfig(config: Config, args: CliArgs): Config {
  const sites = config.searchConsole.sites;
  const site = sites.find((s) => s.url === args.site);
  if (!site) {
    const listed = sites.map((s) => s.url);
    const near = nearestSite(args.site!, listed);
    throw new UsageError(
      `backfill: site ${args.site} is not in searchConsole.sites (${listed.length ? listed.join(', ') : 'no sites configured'}); ${near ? `did you mean ${near}? ` : ''}add it there first, spelt as Search Console lists it`,
    );
  }
  const reports = config.searchConsole.reports;
  if (args.report && !reports[args.report]) {
    throw new UsageError(`backfill: unknown report ${JSON.stringify(args.report)} (searchConsole.reports: ${Object.keys(reports).join(', ') || 'none'})`);
  }
  if (args.report && !site.reports.includes(args.report)) {
    throw new UsageError(
      `backfill: site ${site.url} does not use report ${args.report} (its reports: ${site.reports.join(', ')}); add it to the site's reports first`,
    );
  }
  return { ...config, properties: [], discovery: { ...config.discovery, enabled: false }, searchConsole: { ...config.searchConsole, sites: [site] } };
}

/** A site URL's host, lowercased, without `www.`: `sc-domain:example.com` and `https://www.example.com/` both give `example.com`. */
function siteHost(url: string): string | null {
  const domain = /^sc-domain:(.+)$/i.exec(url.trim());
  let host: string;
  if (domain) host = domain[1]!;
  else {
    try {
      host = new URL(url.trim()).hostname;
    } catch {
      return null;
    }
  }
  return (
    host
      .toLowerCase()
      .replace(/^www\./, '')
      .replace(/\.$/, '') || null
  );
}

/**
 * The configured site a mistyped `--site` most likely means: the same URL but for a trailing slash
 * or letter case, else the one configured site of the same host (sc-domain:example.com beside
 * https://www.example.com/, http beside https). Undefined when none or several fit.
 */
export function nearestSite(asked: string, listed: readonly string[]): string | undefined {
  const bare = (u: string) => u.trim().replace(/\/+$/, '').toLowerCase();
  const same = listed.filter((u) => bare(u) === bare(asked));
  if (same.length === 1) return same[0];
  const host = siteHost(asked);
  if (host === null) return undefined;
  const sameHost = listed.filter((u) => siteHost(u) === host);
  return sameHost.length === 1 ? sameHost[0] : undefined;
}

/**
 * The range in Pacific days, checked against each report's newest served date and against the
 * oldest Search Console serves (searchConsole/horizon.ts).
 * @throws UsageError for a range that starts before the horizon, ends too late or starts after it ends
 */
export function siteBackfillRange(config: Config, reports: readonly string[], args: CliArgs, nowMs: number[]): { from: string; to: string } {
  const today = localDate(Math.min(...nowMs), SEARCH_CONSOLE_TIME_ZONE);
  const from = resolveDateSpec(parseDateSpec(args.from!)!, today);
  const to = resolveDateSpec(parseDateSpec(args.to!)!, today);
  const named = (flag: string, given: string, date: string) => `${flag} ${given}${given === date ? '' : ` (${date})`}`;
  for (const name of reports) {
    const report = config.searchConsole.reports[name]!;
    const last = siteLastDate(report, ...nowMs);
    if (to > last) {
      throw new UsageError(
        `backfill: ${named('--to', args.to!, to)} is after ${last}, the newest date Search Console serves report ${name} (dataState ${report.dataState}, Pacific time); end the range at ${last}`,
      );
    }
  }
  if (from > to) throw new UsageError(`backfill: ${named('--from', args.from!, from)} is after ${named('--to', args.to!, to)}`);
  const oldest = searchConsoleHorizon(today);
  if (from < oldest) {
    throw new UsageError(
      `backfill: ${named('--from', args.from!, from)} is before ${oldest}, the oldest date Search Console serves (it keeps about ${SEARCH_CONSOLE_HORIZON_MONTHS} months of data, Pacific time); start the range at ${oldest} or later`,
    );
  }
  return { from, to };
}

/** Runs the backfill of the one site of `config` (siteBackfillConfig). Returns the exit code: 0, 1 when a report failed, 2 for a refused range. */
export async function backfillSite(daemon: Daemon, config: Config, args: CliArgs, startedAt: number): Promise<number> {
  const site = config.searchConsole.sites[0]!;
  const reports = args.report ? [args.report] : site.reports;
  let range: { from: string; to: string };
  try {
    range = siteBackfillRange(config, reports, args, [Date.now(), await databaseNow(daemon.pool)]);
  } catch (err) {
    await daemon.stop(0);
    process.stderr.write(`ga-collector: ${describe(err)}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
  const outcomes: JobOutcome[] = [];
  for (const report of reports) {
    const r = await daemon.scheduler.backfill(siteSource(site), report, range.from, range.to);
    outcomes.push(r);
    if (!r.ok) process.stderr.write(`ga-collector: backfill ${site.url}/${report}: ${r.error}\n`);
    else process.stdout.write(`backfill ${site.url}/${report}: ${r.dates} dates, ${r.rows} rows (${range.from} to ${range.to})\n`);
  }
  await daemon.stop(0);
  process.stdout.write(`${await summaryLine(`backfill ${site.url}`, daemon.metrics, outcomes, 0, startedAt)}\n`);
  return outcomes.some((o) => !o.ok) ? 1 : 0;
}
