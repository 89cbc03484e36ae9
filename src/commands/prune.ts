/**
 * `ga-collector prune`: deletes what a GA4 property, a Search Console site or a report that left
 * the configuration left in the database (store/prune.ts). Without --yes it says what it would
 * delete, with row counts, and deletes nothing. Anything still configured is refused (exit 2): its
 * data is not stale, and the daemon would only fetch it again. A property is looked for in GA4's
 * schema, a site in Search Console's, a report alone in both (report names are unique across them).
 */
import type { Config } from '../config/index.js';
import { UsageError } from '../errors.js';
import { PruneBusyError, prune, prunePlan, type PruneStep } from '../store/prune.js';
import { migrationState } from '../store/migrations.js';
import { SEARCH_CONSOLE_MIGRATIONS_DIR, ga4Tables, searchConsoleTables, type SourceTables } from '../store/sourceTables.js';
import { plural, withCommandPool } from './common.js';

/** What to prune, as the command line says it: a property or a site (not both), a report, or one report of either. */
export interface PruneRequest {
  propertyId?: string;
  /** a Search Console site URL, as searchConsole.sites spelt it */
  site?: string;
  report?: string;
}

/** Exit 0 (done, or nothing to do, or the plan without --yes), 1 on a database failure, 2 when the target is still configured. */
export async function runPrune(config: Config, request: PruneRequest, yes: boolean): Promise<number> {
  stillConfigured(config, request);
  const what = describeTarget(request);
  const id = request.propertyId ?? request.site;
  const target = { ...(id ? { id } : {}), ...(request.report ? { report: request.report } : {}) };
  return withCommandPool(config, async (pool) => {
    const candidates: Array<{ tables: SourceTables; dir?: string }> = [];
    if (!request.site) candidates.push({ tables: ga4Tables(config.database.schema) });
    if (!request.propertyId) candidates.push({ tables: searchConsoleTables(config.searchConsole.schema), dir: SEARCH_CONSOLE_MIGRATIONS_DIR });
    const sources: SourceTables[] = [];
    for (const c of candidates) if ((await migrationState(pool, c.tables.schema, c.dir)).current > 0) sources.push(c.tables);
    if (sources.length === 0) {
      const schemas = candidates.map((c) => c.tables.schema);
      process.stdout.write(
        `prune ${what}: nothing stored (${schemas.length === 1 ? `schema ${schemas[0]} has` : `schemas ${schemas.join(' and ')} have`} no ga-collector tables)\n`,
      );
      return 0;
    }
    if (!yes) {
      const plan: PruneStep[] = [];
      for (const tables of sources) plan.push(...(await prunePlan(pool, tables, target)));
      if (plan.length === 0) {
        process.stdout.write(`prune ${what}: nothing stored\n`);
        return 0;
      }
      process.stdout.write(
        `prune ${what}: would ${plan.some((s) => s.action === 'drop') ? 'drop and delete' : 'delete'}:\n${steps(plan)}\nnothing was deleted; run again with --yes to delete it\n`,
      );
      return 0;
    }
    let done: PruneStep[];
    try {
      done = await prune(pool, sources, target);
    } catch (err) {
      if (err instanceof PruneBusyError) {
        process.stderr.write(`ga-collector: prune ${what}: ${err.message}\n`);
        return 1;
      }
      throw err;
    }
    if (done.length === 0) {
      process.stdout.write(`prune ${what}: nothing stored\n`);
      return 0;
    }
    const rows = done.reduce((n, s) => n + s.rows, 0);
    process.stdout.write(`prune ${what}: done, ${plural(rows, 'row')} removed in one transaction:\n${steps(done)}\n`);
    return 0;
  });
}

function describeTarget(t: PruneRequest): string {
  const source = t.propertyId ? `property ${t.propertyId}` : t.site ? `site ${t.site}` : undefined;
  if (source && t.report) return `${source} report ${t.report}`;
  return source ?? `report ${t.report}`;
}

const AFTER = 'prune deletes only what left the configuration; remove it there first (and reload a running daemon)';

/** Refuses a target the configuration still has; bad input, found before the database is touched. */
function stillConfigured(config: Config, t: PruneRequest): void {
  if (t.site) return siteStillConfigured(config, t.site, t.report);
  const property = t.propertyId ? config.properties.find((p) => p.id === t.propertyId) : undefined;
  if (t.propertyId && t.report) {
    if (property?.reports.includes(t.report))
      throw new UsageError(
        `prune: property ${t.propertyId} still uses report ${t.report} (properties[${config.properties.indexOf(property)}].reports); ${AFTER}`,
      );
    return;
  }
  if (property)
    throw new UsageError(`prune: property ${t.propertyId} is still in the configuration (properties[${config.properties.indexOf(property)}]); ${AFTER}`);
  // with discovery on, a property outside `properties` may be one discovery fetches: prune would
  // delete data the daemon keeps up to date (this command asks Google nothing, so it cannot tell)
  if (t.propertyId && config.discovery.enabled && !config.discovery.exclude.includes(t.propertyId))
    throw new UsageError(
      `prune: discovery is on and property ${t.propertyId} may be one it fetches; prune deletes only what left the configuration: add it to discovery.exclude (and reload a running daemon) first`,
    );
  if (t.report && config.reports[t.report]) throw new UsageError(`prune: report ${t.report} is still in the configuration (reports.${t.report}); ${AFTER}`);
  if (t.report && config.searchConsole.reports[t.report])
    throw new UsageError(`prune: report ${t.report} is still in the configuration (searchConsole.reports.${t.report}); ${AFTER}`);
}

/** A site, or one report of a site, that searchConsole.sites still has: refused. */
function siteStillConfigured(config: Config, url: string, report: string | undefined): void {
  const i = config.searchConsole.sites.findIndex((s) => s.url === url);
  if (i < 0) return;
  if (!report) throw new UsageError(`prune: site ${url} is still in the configuration (searchConsole.sites[${i}]); ${AFTER}`);
  // a site without its own `reports` uses every searchConsole.reports entry
  if (config.searchConsole.sites[i]!.reports.includes(report))
    throw new UsageError(`prune: site ${url} still uses report ${report} (searchConsole.sites[${i}]); ${AFTER}`);
}

function steps(list: PruneStep[]): string {
  const w = Math.max(...list.map((s) => `${s.schema}.${s.relation}`.length));
  return list
    .map((s) => {
      const name = `${s.schema}.${s.relation}`.padEnd(w);
      if (s.action === 'drop') return `  ${`drop ${s.kind}`.padEnd(11)}  ${name}${s.kind === 'table' ? `  (${plural(s.rows, 'row')})` : ''}`;
      return `  delete from  ${name}  ${plural(s.rows, 'row')}`;
    })
    .join('\n');
}
