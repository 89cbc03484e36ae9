/**
 * The `reports` map: a report name (which becomes a relation) to its definition. Each definition
 * is checked by a zod schema, so what comes out is a typed ReportDefinition; what one definition
 * cannot tell alone (two fields that map to one column, names that collide with the collector's
 * own relations) is checked after it.
 */
import { z } from 'zod';
import { columnName, validateReportName } from '../store/identifiers.js';
import { reportNameCollision } from '../store/reservedNames.js';
import { isStartDate } from '../time.js';
import { configError, zodProblem } from './problems.js';
import type { ReportDefinition } from './types.js';

const REPORT_KEYS = ['dimensions', 'metrics', 'startDate', 'refreshDays'] as const;

const LIST = 'must be a list of names';

/** A list of non-empty names, duplicates dropped. */
export const nameList = z
  .custom<string[]>((v) => Array.isArray(v) && v.every((x) => typeof x === 'string' && x.length > 0), { error: LIST })
  .transform((names) => [...new Set(names)]);

/** A report's `startDate`: YYYY-MM-DD (a real date) or NdaysAgo, `fallback` when left out. */
export const startDateField = (fallback: string) =>
  z
    .custom<string>((v) => typeof v === 'string' && isStartDate(v), {
      error: (iss) => `must be YYYY-MM-DD (a real date) or NdaysAgo, got ${JSON.stringify(iss.input)}`,
    })
    .default(fallback);

/** A report's `refreshDays`: a whole number from 0 to 90, `fallback` when left out. */
export const refreshDaysField = (fallback: number) =>
  z
    .custom<number>((v) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 90, {
      error: (iss) => `must be a whole number from 0 to 90, got ${JSON.stringify(iss.input)}`,
    })
    .default(fallback);

const definitionSchema = z.strictObject(
  {
    dimensions: nameList
      .default([])
      .transform((d) => d.filter((x) => x !== 'date'))
      .refine((d) => d.length <= 8, 'the Data API allows at most 9 dimensions per report, date included'),
    metrics: nameList
      .refine((m) => m.length > 0, 'at least one metric is needed')
      .refine((m) => m.length <= 10, 'the Data API allows at most 10 metrics per report'),
    startDate: startDateField('30daysAgo'),
    refreshDays: refreshDaysField(3),
  },
  { error: (iss) => (iss.code === 'invalid_type' ? 'must be { dimensions, metrics, startDate?, refreshDays? }' : undefined) },
);

/**
 * Checks the `reports` map and returns its definitions by name.
 *
 * @throws UsageError `config: reports.<name>...: <problem>` for the first problem found
 */
export function normaliseReports(input: unknown): Record<string, ReportDefinition> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw configError('reports: must be a map of report name to { dimensions, metrics, startDate?, refreshDays? }');
  }
  const out: Record<string, ReportDefinition> = {};
  const entries = Object.entries(input);
  if (entries.length === 0) throw configError('reports: at least one report is needed');
  for (const [name, def] of entries) {
    const key = `reports.${name}`;
    const problem = validateReportName(name);
    if (problem) throw configError(`${key}: ${problem}`);
    const parsed = definitionSchema.safeParse(def);
    if (!parsed.success) throw zodProblem(parsed.error, key, REPORT_KEYS);
    const { dimensions, metrics, startDate, refreshDays } = parsed.data;
    const columns = new Map<string, string>();
    for (const field of [...dimensions, ...metrics]) {
      const col = columnName(field);
      const clash = columns.get(col);
      if (clash) throw configError(`${key}: ${clash} and ${field} map to the same column ${col}`);
      if (col === 'property_id' || col === 'date') throw configError(`${key}: ${field} maps to the reserved column ${col}`);
      columns.set(col, field);
    }
    out[name] = { name, dimensions, metrics, startDate, refreshDays };
  }
  const collision = reportNameCollision(Object.keys(out));
  if (collision) throw configError(collision);
  return out;
}
