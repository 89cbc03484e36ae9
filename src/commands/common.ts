/**
 * What the one-shot commands that read or change the database (status, prune, migrate, the dry
 * runs) share: a small pool of their own, and one line for a database failure with the exit code
 * the command line promises (2 for a setting that cannot work, 1 otherwise).
 */
import type { Config } from '../config/index.js';
import { UsageError, describe } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { classifyDbError, describeDbError } from '../store/dbErrors.js';
import { createPool, type Pool } from '../store/pool.js';

/** A logger that writes nothing: these commands speak on stdout and stderr themselves. */
function quietLogger(): Logger {
  return createLogger('silent');
}

/** A pool of at most two connections to the configured database. */
export function commandPool(config: Config, logger: Logger = quietLogger()): Pool {
  return createPool(config.database.url, logger, 2, { schema: config.database.schema });
}

/**
 * Runs `fn` with a pool, ends the pool, and turns a failure into one line on stderr: a bad
 * setting (no such database, a refused login) is exit 2, bad input exit 2, anything else exit 1.
 */
export async function withCommandPool(config: Config, fn: (pool: Pool) => Promise<number>): Promise<number> {
  const pool = commandPool(config);
  try {
    return await fn(pool);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`ga-collector: ${err.message}\n`);
      return 2;
    }
    const kind = classifyDbError(err);
    const isDb = kind !== 'other' || (err as { code?: unknown }).code !== undefined;
    process.stderr.write(`ga-collector: ${isDb ? `database: ${describeDbError(err, config.database.url)}` : describe(err)}\n`);
    return kind === 'config' ? 2 : 1;
  } finally {
    await pool.end().catch(() => undefined);
  }
}

/** `2024-05-31T04:00:12Z`: an instant for people, to the second. */
export function isoSeconds(at: Date | number | null | undefined): string | null {
  if (at === null || at === undefined) return null;
  return new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** `2024-04-01 to 2024-04-03, 2024-04-10` (at most `max` runs, then "and N more"). */
export function formatRuns(runs: Array<{ from: string; to: string }>, max = 6): string {
  const shown = runs.slice(0, max).map((r) => (r.from === r.to ? r.from : `${r.from} to ${r.to}`));
  if (runs.length > max) shown.push(`and ${runs.length - max} more`);
  return shown.join(', ');
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
