/**
 * Per-date totals of a report, as the API computes them (`metricAggregations: TOTAL`). Metrics such
 * as totalUsers count distinct users, so they do not add up across dimension rows; GA's own total
 * for a date is the number to use for "users that day". A TOTAL covers a whole date range, so each
 * date gets a single-day range of its own: up to four per request (the API's maximum of date
 * ranges), named by the date so the totals rows can be told apart, with `limit: 1` because only
 * the totals are wanted.
 */
import type { ReportDefinition } from '../config/index.js';
import { PermanentError, RetryableError, describe } from '../errors.js';
import { int64, type CallContext, type Ga4Client } from './client.js';
import { metricValue } from './report.js';
import type { PropertyQuota } from './types.js';

const RANGES_PER_REQUEST = 4;

type Totals = Map<string, Array<string | number>>;

/**
 * Totals per date (metric values in definition order); a date without data has no entry.
 * An endpoint that refuses several named ranges, or answers them in a shape we cannot attribute
 * to dates, is asked one date at a time instead; one that refuses TOTAL altogether gets null:
 * totals are a companion of the report, never a reason to fail it.
 */
export async function fetchTotals(
  client: Ga4Client,
  ctx: CallContext,
  def: ReportDefinition,
  dates: string[],
  onQuota?: (q: PropertyQuota) => void,
): Promise<Totals | null> {
  const out: Totals = new Map();
  for (let i = 0; i < dates.length; i += RANGES_PER_REQUEST) {
    const chunk = dates.slice(i, i + RANGES_PER_REQUEST);
    try {
      await fetchChunk(client, ctx, def, chunk, out, onQuota);
    } catch (err) {
      if (chunk.length === 1 || !unattributable(err)) throw err;
      ctx.logger.warn({ event: 'totals_fallback', err: describe(err) }, 'several date ranges refused for totals; asking one date at a time');
      for (const d of chunk) await fetchChunk(client, ctx, def, [d], out, onQuota);
    }
  }
  return out;
}

/** Like fetchTotals, but a refusal of the totals request itself yields null instead of an error. */
export async function fetchTotalsIfServed(
  client: Ga4Client,
  ctx: CallContext,
  def: ReportDefinition,
  dates: string[],
  onQuota?: (q: PropertyQuota) => void,
): Promise<Totals | null> {
  try {
    return await fetchTotals(client, ctx, def, dates, onQuota);
  } catch (err) {
    if (!unattributable(err)) throw err;
    ctx.logger.warn({ event: 'totals_unavailable', err: describe(err) }, 'per-date totals not served; the report is stored without them');
    return null;
  }
}

function unattributable(err: unknown): boolean {
  return (err instanceof PermanentError && err.code === 'invalid_argument') || (err instanceof RetryableError && err.code === 'bad_totals');
}

async function fetchChunk(
  client: Ga4Client,
  ctx: CallContext,
  def: ReportDefinition,
  chunk: string[],
  out: Totals,
  onQuota?: (q: PropertyQuota) => void,
): Promise<void> {
  const res = await client.runReport(ctx, {
    dateRanges: chunk.length === 1 ? [{ startDate: chunk[0], endDate: chunk[0] }] : chunk.map((d) => ({ startDate: d, endDate: d, name: `d${d}` })),
    dimensions: [{ name: 'date' }, ...def.dimensions.map((name) => ({ name }))],
    metrics: def.metrics.map((name) => ({ name })),
    metricAggregations: ['TOTAL'],
    limit: int64(1),
    returnPropertyQuota: true,
  });
  if (res.propertyQuota) onQuota?.(res.propertyQuota as PropertyQuota);
  const bad = (what: string) => new RetryableError(`runReport totals for property ${ctx.propertyId}: ${what}`, 'bad_totals');
  const integer = (res.metricHeaders ?? []).map((h) => h.type === 'TYPE_INTEGER');
  if (integer.length !== def.metrics.length) throw bad('metric headers do not match the request');
  const totals = res.totals ?? [];
  if (chunk.length > 1 && totals.length > chunk.length) throw bad('more totals rows than date ranges');
  for (const row of totals) {
    const dims = row.dimensionValues ?? [];
    // with one range the dateRange dimension is absent; with several it is last and carries our name
    const name = chunk.length === 1 ? `d${chunk[0]}` : dims[dims.length - 1]?.value;
    const date = name?.startsWith('d') ? name.slice(1) : undefined;
    if (!date || !chunk.includes(date)) throw bad(`totals row for an unknown range ${JSON.stringify(name)}`);
    const malformed = (what: string) => bad(`malformed response (${what})`);
    const values = (row.metricValues ?? []).map((m, k) => metricValue(m.value, integer[k]!, malformed));
    if (values.length !== def.metrics.length) throw malformed('totals row width');
    out.set(date, values);
  }
}
