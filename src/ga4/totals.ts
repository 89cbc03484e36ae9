/**
 * Per-date totals of a report, as the API computes them (`metricAggregations: TOTAL`). Metrics such
 * as totalUsers count distinct users, so they do not add up across dimension rows; GA's own total
 * for a date is the number to use for "users that day". A TOTAL covers a whole date range, so each
 * date gets a single-day range of its own: up to four per request (the API's maximum of date
 * ranges), named by the date so the totals rows can be told apart, with `limit: 1` because only
 * the totals are wanted.
 */
import type { ReportDefinition } from '../config.js';
import { RetryableError } from '../errors.js';
import type { CallContext, Ga4Client } from './client.js';
import { metricValue } from './report.js';
import type { PropertyQuota } from './types.js';

const RANGES_PER_REQUEST = 4;

/** Totals per date (metric values in definition order); a date without data has no entry. */
export async function fetchTotals(
  client: Ga4Client,
  ctx: CallContext,
  def: ReportDefinition,
  dates: string[],
  onQuota?: (q: PropertyQuota) => void,
): Promise<Map<string, Array<string | number>>> {
  const out = new Map<string, Array<string | number>>();
  for (let i = 0; i < dates.length; i += RANGES_PER_REQUEST) {
    const chunk = dates.slice(i, i + RANGES_PER_REQUEST);
    const res = await client.runReport(ctx, {
      dateRanges: chunk.map((d) => ({ startDate: d, endDate: d, name: `d${d}` })),
      dimensions: [{ name: 'date' }, ...def.dimensions.map((name) => ({ name }))],
      metrics: def.metrics.map((name) => ({ name })),
      metricAggregations: ['TOTAL'],
      limit: '1',
      returnPropertyQuota: true,
    });
    if (res.propertyQuota) onQuota?.(res.propertyQuota as PropertyQuota);
    const integer = (res.metricHeaders ?? []).map((h) => h.type === 'TYPE_INTEGER');
    if (integer.length !== def.metrics.length) {
      throw new RetryableError(`runReport totals for property ${ctx.propertyId}: malformed response (metric headers)`, 'bad_response');
    }
    for (const row of res.totals ?? []) {
      const dims = row.dimensionValues ?? [];
      // with one range the dateRange dimension is absent; with several it is last
      const name = chunk.length === 1 ? `d${chunk[0]}` : dims[dims.length - 1]?.value;
      const date = name?.startsWith('d') ? name.slice(1) : undefined;
      if (!date || !chunk.includes(date)) {
        throw new RetryableError(`runReport totals for property ${ctx.propertyId}: totals row for unknown range ${JSON.stringify(name)}`, 'bad_response');
      }
      const bad = (what: string) => new RetryableError(`runReport totals for property ${ctx.propertyId}: malformed response (${what})`, 'bad_response');
      const values = (row.metricValues ?? []).map((m, k) => metricValue(m.value, integer[k]!, bad));
      if (values.length !== def.metrics.length) {
        throw new RetryableError(`runReport totals for property ${ctx.propertyId}: malformed totals row`, 'bad_response');
      }
      out.set(date, values);
    }
  }
  return out;
}
