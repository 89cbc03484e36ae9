/**
 * Per-date totals of a report, as the API computes them (`metricAggregations: TOTAL`). Metrics such
 * as totalUsers count distinct users, so they do not add up across dimension rows; GA's own total
 * for a date is the number to use for "users that day". The request (requests.ts totalsRequest)
 * gives each date a single-day range of its own, a few dates per request; responses.ts
 * totalsByDate reads the answer.
 */
import type { ReportDefinition } from '../config/index.js';
import { PermanentError, RetryableError, describe } from '../errors.js';
import type { CallContext } from './callContext.js';
import type { Ga4Client } from './client.js';
import { TOTALS_RANGES_PER_REQUEST, totalsRequest } from './requests.js';
import { totalsByDate } from './responses.js';
import type { DayTotals, PropertyQuota } from './types.js';

type Totals = Map<string, DayTotals>;

/**
 * Totals per date (metric values in definition order, and the first one its column cannot hold);
 * a date without data has no entry.
 * An endpoint that refuses several named ranges, or answers them in a shape we cannot attribute
 * to dates, is asked one date at a time instead; one that refuses TOTAL altogether gets null:
 * totals are a companion of the report, never a reason to fail it.
 */
export async function fetchTotals(
  client: Ga4Client,
  ctx: CallContext,
  def: ReportDefinition,
  dates: string[],
  onQuota?: (quota: PropertyQuota) => void,
): Promise<Totals | null> {
  const out: Totals = new Map();
  for (let from = 0; from < dates.length; from += TOTALS_RANGES_PER_REQUEST) {
    const chunk = dates.slice(from, from + TOTALS_RANGES_PER_REQUEST);
    try {
      await fetchChunk(client, ctx, def, chunk, out, onQuota);
    } catch (err) {
      if (chunk.length === 1 || !unattributable(err)) throw err;
      ctx.logger.warn({ event: 'totals_fallback', err: describe(err) }, 'several date ranges refused for totals; asking one date at a time');
      for (const date of chunk) await fetchChunk(client, ctx, def, [date], out, onQuota);
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
  onQuota?: (quota: PropertyQuota) => void,
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

/** One totals request for `chunk` (at most TOTALS_RANGES_PER_REQUEST dates), its rows added to `out`. */
async function fetchChunk(
  client: Ga4Client,
  ctx: CallContext,
  def: ReportDefinition,
  chunk: string[],
  out: Totals,
  onQuota?: (quota: PropertyQuota) => void,
): Promise<void> {
  const res = await client.runReport(ctx, totalsRequest(def, chunk));
  if (res.propertyQuota) onQuota?.(res.propertyQuota as PropertyQuota);
  for (const [date, values] of totalsByDate(res, def, chunk, ctx)) out.set(date, values);
}
