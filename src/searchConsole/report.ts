/**
 * The Search Console page loop: from a report definition and a date range to complete days of
 * rows, as the store takes them (ga4/types.ts DayData: row text in the column order `site_url`,
 * `date`, each dimension, clicks, impressions, ctr, position).
 *
 * Requests ask `rowLimit` rows (25,000, the most Google serves a request) with `startRow`
 * increasing until a page returns no rows (https://developers.google.com/webmaster-tools/v1/how-tos/all-your-data).
 * Rows come sorted by clicks, not by date, so no date is complete before the last page of its
 * request: the range is read in chunks of at most CHUNK_DAYS dates, each grouped by `date`, and a
 * chunk's rows are held (as row text, no object per row) until its last page. Google serves at
 * most 50,000 rows per day and search type (same page), so a chunk holds at most 350,000 rows:
 * about 50 MB of row text at 150 bytes a row, whatever the range. A report grouped by
 * `searchAppearance` is asked one date per request, by that dimension alone: Google refuses it
 * with any other, `date` included.
 *
 * An answer that is no usable page (a row without its keys, a number that is not one, a date
 * outside the request) is asked again like a 5xx; a chunk whose pages disagree (the same row on
 * two pages: the data changed while it was read) is read again from its first page under the
 * same retry policy, before any of its dates is handed out.
 */
import type { SearchConsoleReport } from '../config/index.js';
import { AbortedError, RetryableError, describe } from '../errors.js';
import type { CallContext } from '../ga4/callContext.js';
import { addSanitized, copyText, metricField, storableText, type Sanitized } from '../ga4/rowText.js';
import type { DayData, ResponseMeta } from '../ga4/types.js';
import { addDays, dateRange } from '../time.js';
import type { SearchAnalyticsRequest, SearchAnalyticsResponse, SearchConsoleClient } from './client.js';

/** Search Console's calendar: its dates are Pacific days (https://support.google.com/webmasters/answer/96568). */
export const SEARCH_CONSOLE_TIME_ZONE = 'America/Los_Angeles';

/** Rows asked per request: the most Google serves. */
const ROW_LIMIT = 25_000;

/** Dates read (and held) together; see the module comment for the memory this bounds. */
export const CHUNK_DAYS = 7;

/** What a Search Console date's ledger row says: the Pacific calendar, no GA data-quality flags. */
const META: ResponseMeta = {
  timeZone: SEARCH_CONSOLE_TIME_ZONE,
  currencyCode: null,
  dataLossFromOtherRow: false,
  subjectToThresholding: false,
  sampling: [],
};

export interface SiteRangeOptions {
  /** rows per request; ROW_LIMIT unless a test asks for small pages */
  rowLimit?: number;
}

/** The request for rows `startRow` on of `start`..`end` (one date for a searchAppearance report). */
function queryRequest(report: SearchConsoleReport, start: string, end: string, startRow: number, rowLimit: number): SearchAnalyticsRequest {
  const byAppearance = report.dimensions.includes('searchAppearance');
  return {
    startDate: start,
    endDate: end,
    dimensions: byAppearance ? ['searchAppearance'] : ['date', ...report.dimensions],
    type: report.type,
    dataState: report.dataState,
    aggregationType: report.aggregationType,
    rowLimit,
    startRow,
  };
}

/**
 * Yields every date of [start, end], complete and in order (a date without data has no rows).
 * @throws what the client met (apiErrors.ts sorts it); AbortedError when the job's signal aborts
 */
export async function* fetchSiteRange(
  client: SearchConsoleClient,
  ctx: CallContext,
  report: SearchConsoleReport,
  start: string,
  end: string,
  opts: SiteRangeOptions = {},
): AsyncGenerator<DayData> {
  const step = report.dimensions.includes('searchAppearance') ? 1 : CHUNK_DAYS;
  for (let from = start; from <= end; from = addDays(from, step)) {
    const to = addDays(from, step - 1) < end ? addDays(from, step - 1) : end;
    yield* await readChunk(client, ctx, report, from, to, opts.rowLimit ?? ROW_LIMIT);
  }
}

/** Every page of one chunk, then its dates; read again whole when its pages disagree. */
async function readChunk(
  client: SearchConsoleClient,
  ctx: CallContext,
  report: SearchConsoleReport,
  start: string,
  end: string,
  rowLimit: number,
): Promise<DayData[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await readPages(client, ctx, report, start, end, rowLimit);
    } catch (err) {
      if (ctx.signal?.aborted) throw new AbortedError();
      if (!(err instanceof RetryableError) || err.code !== 'inconsistent_pages') throw err;
      await client.backOff(ctx, err, attempt, 'searchanalytics.query');
      ctx.logger.warn({ event: 'listing_restart', start, end, attempt, err: describe(err) }, 'the data changed while it was read; reading the range again');
    }
  }
}

interface HeldDate {
  lines: string[];
  keys: Set<string>;
  sanitized?: Sanitized;
}

async function readPages(
  client: SearchConsoleClient,
  ctx: CallContext,
  report: SearchConsoleReport,
  start: string,
  end: string,
  rowLimit: number,
): Promise<DayData[]> {
  const byAppearance = report.dimensions.includes('searchAppearance');
  const held = new Map<string, HeldDate>(dateRange(start, end).map((d) => [d, { lines: [], keys: new Set<string>() }]));
  const site = copyText(ctx.propertyId);
  for (let startRow = 0; ;) {
    const rows = await client.query(ctx, queryRequest(report, start, end, startRow, rowLimit), (res) =>
      checkedRows(res, ctx, report, start, end, byAppearance),
    );
    if (rows.length === 0) break;
    for (const row of rows) {
      const day = held.get(row.date)!;
      if (day.keys.has(row.key)) {
        throw new RetryableError(`searchanalytics.query for site ${ctx.propertyId}: the same row on two pages of ${start}..${end}`, 'inconsistent_pages');
      }
      day.keys.add(row.key);
      let line = `${site}\t${row.date}`;
      const changed: string[] = [];
      for (const [i, value] of row.dims.entries()) {
        const storable = storableText(value);
        if (storable !== null) changed.push(report.dimensions[i]!);
        line += `\t${copyText(storable ?? value)}`;
      }
      if (changed.length) day.sanitized = addSanitized(day.sanitized, { values: changed.length, dimensions: changed });
      day.lines.push(`${line}\t${row.metrics.map(metricField).join('\t')}\n`);
    }
    startRow += rows.length;
  }
  return [...held.entries()].map(([date, day]) => ({
    date,
    rowCount: day.lines.length,
    text: day.lines.length ? [Buffer.from(day.lines.join(''), 'utf8')] : [],
    meta: META,
    ...(day.sanitized ? { sanitized: day.sanitized } : {}),
  }));
}

interface CheckedRow {
  date: string;
  dims: string[];
  /** the dimension values as one string, to find a row seen twice */
  key: string;
  metrics: number[];
}

/**
 * A page's rows, checked: keys as the request's dimensions, clicks and impressions whole numbers,
 * ctr and position finite numbers, dates inside the request.
 * @throws RetryableError code `bad_response` for a page that is no usable answer
 */
function checkedRows(
  res: SearchAnalyticsResponse,
  ctx: CallContext,
  report: SearchConsoleReport,
  start: string,
  end: string,
  byAppearance: boolean,
): CheckedRow[] {
  const bad = (what: string) => new RetryableError(`searchanalytics.query for site ${ctx.propertyId}: malformed response (${what})`, 'bad_response');
  const rows = res.rows ?? [];
  if (!Array.isArray(rows)) throw bad('rows is not a list');
  const width = byAppearance ? 1 : report.dimensions.length + 1;
  return rows.map((row) => {
    const keys = row?.keys;
    if (!Array.isArray(keys) || keys.length !== width || !keys.every((k) => typeof k === 'string')) throw bad(`row keys ${JSON.stringify(keys)}`);
    const date = byAppearance ? start : keys[0]!;
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || date < start || date > end) throw bad(`row dated ${JSON.stringify(date)} outside ${start}..${end}`);
    const dims = byAppearance ? keys : keys.slice(1);
    const metrics = [row.clicks, row.impressions, row.ctr, row.position].map((v, i) => {
      // Google leaves a zero out of the JSON, as proto3 does
      const n = v ?? 0;
      if (typeof n !== 'number' || !Number.isFinite(n) || (i < 2 && !Number.isInteger(n))) throw bad(`metric value ${JSON.stringify(v)}`);
      return n;
    });
    return { date, dims, key: JSON.stringify(dims), metrics };
  });
}
