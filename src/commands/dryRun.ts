/**
 * `run --once --dry-run` and `backfill --dry-run`: the plan, from the configuration and the
 * database's ledger, with nothing fetched or written: no migration, no DDL, no ledger change, no
 * token, no request to Google. The planner needs each property's time zone; it comes from the
 * ledger (`properties`), and for a property never fetched the plan says that one probe request
 * would be made and counts its dates by UTC.
 *
 * Expected requests are a floor: a range is one runReport request per page of `fetch.pageSize`
 * rows (how many rows a range holds is known only once Google answers), plus, for a report with
 * dimensions, one for its per-date totals (a page of the report by date alone, ga4/totals.ts); a
 * definition the property has not stored dates under yet costs one getMetadata per property first.
 */
import type { Config, PropertyConfig, SiteConfig } from '../config/index.js';
import { siteBackfillPlan, sitesOncePlan } from './dryRunSites.js';
import { UsageError } from '../errors.js';
import { redactUrl } from '../log.js';
import { previousFire } from '../schedule/cron.js';
import { plan as planDates } from '../schedule/planner.js';
import { databaseNow, definitionStored, ledgerDays, type LedgerDay } from '../store/ledger.js';
import { migrationState } from '../store/migrations.js';
import type { Pool } from '../store/pool.js';
import { hasTotals } from '../store/reportTables.js';
import { propertyTimeZones } from '../store/statusQueries.js';
import { addDays, daysBetween, lastFinishedDate, parseDateSpec, resolveDateSpec } from '../time.js';
import { plural, withCommandPool } from './common.js';
import { tablesExist } from '../store/schemas.js';

export type DryRunRequest =
  | { mode: 'once' }
  | { mode: 'backfill'; property: PropertyConfig; reports: string[]; from: string; to: string }
  | { mode: 'backfillSite'; site: SiteConfig; reports: string[]; from: string; to: string };

/** What the database can tell the planner, read once. */
interface Ledger {
  pool: Pool;
  schema: string;
  zones: Map<string, string>;
  /** the ledger tables exist (the schema is migrated far enough to read them) */
  readable: boolean;
  /** the earlier of this machine's clock and the database's, as the runner plans */
  now: number;
}

/** Prints the plan. Exit 0; 2 for a backfill range the real run would refuse; 1 when the database cannot be read. */
export async function runDryRun(config: Config, req: DryRunRequest): Promise<number> {
  return withCommandPool(config, async (pool) => {
    const schema = config.database.schema;
    const state = await migrationState(pool, schema);
    const out: string[] = [`dry run: nothing is fetched, migrated or written (database ${redactUrl(config.database.url)}, schema ${schema})`];
    if (state.current > state.latest) {
      process.stderr.write(
        `ga-collector: database: schema ${schema} is at migration ${state.current}, newer than this ga-collector (${state.latest}): upgrade ga-collector\n`,
      );
      return 1;
    }
    if (state.current < state.latest)
      out.push(
        `schema ${schema} is at migration ${state.current} of ${state.latest}: the run would first apply ${plural(state.latest - state.current, 'migration')}`,
      );
    const readable = await tablesExist(pool, schema, ['properties', 'fetch_days', 'report_definition_versions']);
    const ownNow = Date.now();
    const ledger: Ledger = {
      pool,
      schema,
      zones: readable ? await propertyTimeZones(pool, schema) : new Map(),
      readable,
      now: Math.min(ownNow, await databaseNow(pool)),
    };
    if (req.mode === 'once') {
      out.push(...(await oncePlan(config, ledger, ownNow)));
      if (config.searchConsole.sites.length) {
        const sites = await sitesOncePlan(config, pool, ledger.now, ownNow);
        out.push(
          ...sites.lines,
          '',
          `plan of the sites: ${plural(sites.dates, 'date')} to fetch for ${sites.jobs} of ${plural(sites.reports, 'report')} of ${plural(config.searchConsole.sites.length, 'site')}; at least ${plural(sites.requests, 'request')}`,
        );
      }
      // discovered properties need the Admin API, and so a token: a dry run asks for neither
      if (config.discovery.enabled) out.push('discovery is on: the properties it would add are not planned here (a dry run asks Google nothing)');
    } else if (req.mode === 'backfillSite') out.push(...(await siteBackfillPlan(config, pool, req, [ownNow, ledger.now])));
    else out.push(...(await backfillPlan(config, ledger, req)));
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  });
}

/** Requests a range costs at least: one page, and one of the totals when the report has them. */
function rangeRequests(config: Config, report: string): number {
  return 1 + (hasTotals(config.reports[report]!) ? 1 : 0);
}

/** Whether the property has dates stored under every one of these definitions (else one getMetadata first). */
async function definitionsKnown(config: Config, ledger: Ledger, propertyId: string, reports: string[]): Promise<boolean> {
  if (!ledger.readable) return false;
  for (const r of reports) if (!(await definitionStored(ledger.pool, ledger.schema, propertyId, config.reports[r]!))) return false;
  return true;
}

async function oncePlan(config: Config, ledger: Ledger, ownNow: number): Promise<string[]> {
  const out: string[] = [];
  let dates = 0;
  let requests = 0;
  let jobs = 0;
  for (const p of config.properties) {
    const tz = ledger.zones.get(p.id);
    const extra: string[] = [];
    if (!tz) {
      extra.push('time zone unknown: one probe request would be made (dates below by UTC until it is known)');
      requests += 1;
    }
    if (!(await definitionsKnown(config, ledger, p.id, p.reports))) {
      extra.push('a report definition new to this property: one getMetadata request checks its names first');
      requests += 1;
    }
    out.push('', `property ${p.id} (${tz ?? 'time zone unknown'}), schedule ${p.schedule}${extra.length ? `: ${extra.join('; ')}` : ''}`);
    const lastFire = previousFire(p.schedule, new Date(ownNow));
    for (const report of p.reports) {
      const def = config.reports[report]!;
      const days: LedgerDay[] = tz && ledger.readable ? await ledgerDays(ledger.pool, ledger.schema, p.id, report, '0001-01-01') : [];
      const pl = planDates({ def, timeZone: tz ?? 'UTC', now: new Date(ledger.now), lastFire, ledger: days, maxDays: config.fetch.maxDaysPerRun });
      const taken = pl.ranges.reduce((n, [a, b]) => n + daysBetween(a, b) + 1, 0);
      const req = pl.ranges.length * rangeRequests(config, report);
      const notes: string[] = [];
      if (pl.due.length > taken)
        notes.push(`${plural(pl.due.length - taken, 'more date')} left for later runs (fetch.maxDaysPerRun ${config.fetch.maxDaysPerRun})`);
      if (pl.settleOnly.length) notes.push(`${plural(pl.settleOnly.length, 'date')} would be marked settled`);
      if (pl.stale) notes.push(`${plural(pl.stale, 'date')} stored under an older definition fetched again`);
      const what = taken
        ? `${plural(taken, 'date')} in ${plural(pl.ranges.length, 'range')}: ${pl.ranges.map(([a, b]) => (a === b ? a : `${a} to ${b}`)).join(', ')}; at least ${plural(req, 'request')}`
        : 'nothing due';
      out.push(`  report ${report}: ${what}${notes.length ? `; ${notes.join('; ')}` : ''}`);
      dates += taken;
      requests += req;
      if (taken) jobs += 1;
    }
  }
  const jobsTotal = config.properties.reduce((n, p) => n + p.reports.length, 0);
  out.push(
    '',
    `plan: ${plural(dates, 'date')} to fetch for ${jobs} of ${plural(jobsTotal, 'report')} of ${plural(config.properties.length, 'property', 'properties')}; at least ${plural(requests, 'request')}`,
  );
  return out;
}

async function backfillPlan(config: Config, ledger: Ledger, req: Extract<DryRunRequest, { mode: 'backfill' }>): Promise<string[]> {
  const p = req.property;
  const tz = ledger.zones.get(p.id);
  const out: string[] = [''];
  let requests = 0;
  const fromSpec = parseDateSpec(req.from)!;
  const toSpec = parseDateSpec(req.to)!;
  let range: { from: string; to: string } | null = null;
  if (tz) {
    const lastDate = lastFinishedDate(tz, ledger.now);
    const today = addDays(lastDate, 1);
    const from = resolveDateSpec(fromSpec, today);
    const to = resolveDateSpec(toSpec, today);
    const named = (flag: string, given: string, date: string) => `${flag} ${given}${given === date ? '' : ` (${date})`}`;
    // the same refusals as the real backfill (main.ts backfillRange)
    if (to > lastDate) {
      throw new UsageError(
        `backfill: ${named('--to', req.to, to)} is after property ${p.id}'s yesterday, ${lastDate} (${tz}): Google has not finished later dates; end the range at ${lastDate} (--to yesterday)`,
      );
    }
    if (from > to) throw new UsageError(`backfill: ${named('--from', req.from, from)} is after ${named('--to', req.to, to)}`);
    range = { from, to };
    out.push(`property ${p.id} (${tz}): ${from} to ${to}, ${plural(daysBetween(from, to) + 1, 'date')}, both included`);
  } else {
    requests += 1;
    const both = fromSpec.kind === 'date' && toSpec.kind === 'date';
    if (both) range = { from: fromSpec.date, to: toSpec.date };
    out.push(
      `property ${p.id}: time zone unknown: one probe request would be made (it also decides whether --to ${req.to} is after the property's yesterday)${both ? `; ${range!.from} to ${range!.to}, ${plural(daysBetween(range!.from, range!.to) + 1, 'date')}` : `; --from ${req.from} --to ${req.to} are resolved in that time zone`}`,
    );
  }
  if (!(await definitionsKnown(config, ledger, p.id, req.reports))) {
    out.push('a report definition new to this property: one getMetadata request checks its names first');
    requests += 1;
  }
  for (const report of req.reports) {
    if (!range) {
      out.push(`  report ${report}: the range once the time zone is known; at least 1 request`);
      requests += 1;
      continue;
    }
    const days = daysBetween(range.from, range.to) + 1;
    const req2 = rangeRequests(config, report);
    const stored =
      tz && ledger.readable ? (await ledgerDays(ledger.pool, ledger.schema, p.id, report, range.from)).filter((d) => d.date <= range!.to).length : 0;
    out.push(`  report ${report}: ${plural(days, 'date')} fetched and stored, ${stored} of them replacing stored dates; at least ${plural(req2, 'request')}`);
    requests += req2;
  }
  out.push('', `plan: ${plural(req.reports.length, 'report')} of property ${p.id}; at least ${plural(requests, 'request')}`);
  return out;
}
