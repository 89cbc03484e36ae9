/**
 * Per-date totals of a report with dimensions besides the date: GA's own figure for each date.
 * Metrics that count distinct users (totalUsers, activeUsers, newUsers: "the number of distinct
 * users", https://developers.google.com/analytics/devguides/reporting/data/v1/api-schema) do not
 * add up across a report's rows: a user seen on two devices is on both rows and is one user that
 * day. GA computes each row over the events that have its dimension values, so in a report by
 * `date` alone the row of a date is computed over all of that date's events, distinct users
 * counted once: it is the date's total, the figure `metricAggregations: TOTAL` gives for a range
 * of that one date.
 *
 * So the totals of a range are one more listing of it: the report's metrics by `date` alone
 * (totalsDefinition), read by the page loop every listing goes through (report.ts fetchRange:
 * paging, checks, retries, rows out of order), a row a date, held until the range's rows are
 * stored. That is one request per range, since a page holds up to 250,000 dates; asking TOTAL of
 * single-day ranges instead costs a request per four dates (the API's most ranges a request):
 * 92 more for a 365-day backfill.
 */
import type { ReportDefinition } from '../config/index.js';
import { PermanentError, RetryableError, describe } from '../errors.js';
import type { CallContext } from './callContext.js';
import type { Ga4Client } from './client.js';
import { fetchRange, type FetchRangeOptions } from './report.js';
import { metricFields } from './rowText.js';
import type { DayTotals } from './types.js';

type Totals = Map<string, DayTotals>;

/** The definition whose listing is a report's per-date totals: its metrics by `date` alone. */
function totalsDefinition(def: ReportDefinition): ReportDefinition {
  return { ...def, dimensions: [] };
}

/**
 * GA's totals of each date of [start, end] (YYYY-MM-DD) that has data: metric values in
 * definition order (as row text holds them: decimal strings, or the value as sent when its column
 * cannot hold it), and that value, marked `totals`, as `unstorable`; a date without data has no
 * entry. `opts` are the report listing's (page size, quota hook).
 * @throws whatever fetchRange throws once its retries are spent; RetryableError `bad_response`
 *   for a date answered with more than one row (no answer by date alone)
 */
async function fetchTotals(client: Ga4Client, ctx: CallContext, def: ReportDefinition, start: string, end: string, opts: FetchRangeOptions): Promise<Totals> {
  const out: Totals = new Map();
  for await (const day of fetchRange(client, ctx, totalsDefinition(def), start, end, opts)) {
    if (day.rowCount === 0) continue;
    if (day.rowCount > 1) {
      throw new RetryableError(
        `runReport totals for property ${ctx.propertyId}: ${day.rowCount} rows for ${day.date} in a report by date alone`,
        'bad_response',
      );
    }
    const values = metricFields(Buffer.concat(day.text), def.metrics.length);
    out.set(day.date, day.unstorable ? { values, unstorable: { ...day.unstorable, totals: true } } : { values });
  }
  return out;
}

/**
 * Like fetchTotals, but an endpoint that refuses the totals request (400 `INVALID_ARGUMENT`)
 * yields null, said once in the log: totals are a companion of the report, never a reason to
 * fail it.
 */
export async function fetchTotalsIfServed(
  client: Ga4Client,
  ctx: CallContext,
  def: ReportDefinition,
  start: string,
  end: string,
  opts: FetchRangeOptions,
): Promise<Totals | null> {
  try {
    return await fetchTotals(client, ctx, def, start, end, opts);
  } catch (err) {
    if (!(err instanceof PermanentError && err.code === 'invalid_argument')) throw err;
    ctx.logger.warn({ event: 'totals_unavailable', start, end, err: describe(err) }, 'per-date totals not served; the report is stored without them');
    return null;
  }
}
