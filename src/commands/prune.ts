/**
 * `ga-collector prune`: deletes what a property or report that left the configuration left in the
 * database (store/prune.ts). Without --yes it says what it would delete, with row counts, and
 * deletes nothing. Anything still configured is refused (exit 2): its data is not stale, and the
 * daemon would only fetch it again.
 */
import type { Config } from '../config/index.js';
import { UsageError } from '../errors.js';
import { PruneBusyError, prune, prunePlan, type PruneStep, type PruneTarget } from '../store/prune.js';
import { migrationState } from '../store/migrations.js';
import { plural, withCommandPool } from './common.js';

/** Exit 0 (done, or nothing to do, or the plan without --yes), 1 on a database failure, 2 when the target is still configured. */
export async function runPrune(config: Config, target: PruneTarget, yes: boolean): Promise<number> {
  stillConfigured(config, target);
  const schema = config.database.schema;
  const what = describeTarget(target);
  return withCommandPool(config, async (pool) => {
    const state = await migrationState(pool, schema);
    if (state.current === 0) {
      process.stdout.write(`prune ${what}: nothing stored (schema ${schema} has no ga-collector tables)\n`);
      return 0;
    }
    if (!yes) {
      const plan = await prunePlan(pool, schema, target);
      if (plan.length === 0) {
        process.stdout.write(`prune ${what}: nothing stored\n`);
        return 0;
      }
      process.stdout.write(
        `prune ${what}: would ${plan.some((s) => s.action === 'drop') ? 'drop and delete' : 'delete'}:\n${steps(schema, plan)}\nnothing was deleted; run again with --yes to delete it\n`,
      );
      return 0;
    }
    let done: PruneStep[];
    try {
      done = await prune(pool, schema, target);
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
    process.stdout.write(`prune ${what}: done, ${plural(rows, 'row')} removed in one transaction:\n${steps(schema, done)}\n`);
    return 0;
  });
}

function describeTarget(t: PruneTarget): string {
  if (t.propertyId && t.report) return `property ${t.propertyId} report ${t.report}`;
  return t.propertyId ? `property ${t.propertyId}` : `report ${t.report}`;
}

/** Refuses a target the configuration still has; bad input, found before the database is touched. */
function stillConfigured(config: Config, t: PruneTarget): void {
  const property = t.propertyId ? config.properties.find((p) => p.id === t.propertyId) : undefined;
  const after = 'prune deletes only what left the configuration; remove it there first (and reload a running daemon)';
  if (t.propertyId && t.report) {
    if (property?.reports.includes(t.report))
      throw new UsageError(
        `prune: property ${t.propertyId} still uses report ${t.report} (properties[${config.properties.indexOf(property)}].reports); ${after}`,
      );
    return;
  }
  if (property)
    throw new UsageError(`prune: property ${t.propertyId} is still in the configuration (properties[${config.properties.indexOf(property)}]); ${after}`);
  // with discovery on, a property outside `properties` may be one discovery fetches: prune would
  // delete data the daemon keeps up to date (this command asks Google nothing, so it cannot tell)
  if (t.propertyId && config.discovery.enabled && !config.discovery.exclude.includes(t.propertyId))
    throw new UsageError(
      `prune: discovery is on and property ${t.propertyId} may be one it fetches; prune deletes only what left the configuration: add it to discovery.exclude (and reload a running daemon) first`,
    );
  if (t.report && config.reports[t.report]) throw new UsageError(`prune: report ${t.report} is still in the configuration (reports.${t.report}); ${after}`);
}

function steps(schema: string, list: PruneStep[]): string {
  const w = Math.max(...list.map((s) => `${schema}.${s.relation}`.length));
  return list
    .map((s) => {
      const name = `${schema}.${s.relation}`.padEnd(w);
      if (s.action === 'drop') return `  ${`drop ${s.kind}`.padEnd(11)}  ${name}${s.kind === 'table' ? `  (${plural(s.rows, 'row')})` : ''}`;
      return `  delete from  ${name}  ${plural(s.rows, 'row')}`;
    })
    .join('\n');
}
