/**
 * From a report definition and a date range to complete days of rows: builds the runReport
 * request (the `date` dimension always first), walks the pages with limit/offset until `rowCount`
 * rows have arrived, turns each page into row text (pageRows.ts: checked, converted by the metric
 * headers' types, one segment per date), and yields each date as soon as it is complete. Rows are
 * ordered by date (then every dimension, so paging is stable), so only the one date that straddles
 * a page boundary is held back; the next page is requested and read while the current one's dates
 * are stored, so memory is bounded by two pages.
 */
import type { ReportDefinition } from '../config.js';
import { RetryableError } from '../errors.js';
import { addDays } from '../time.js';
import { int64, type CallContext, type Ga4Client, type RunReportRequest, type RunReportResponse } from './client.js';
import { parsePageBytes } from './pageRows.js';
import { rowKeys, segmentsOf, type DaySegment } from './rowText.js';
import type { DayData, PropertyQuota, ReportRow, ResponseMeta } from './types.js';

export interface FetchRangeOptions {
  pageSize: number;
  /** called with every response's propertyQuota */
  onQuota?: (quota: PropertyQuota) => void;
  /** called with the response metadata of the first page */
  onMeta?: (meta: ResponseMeta) => void;
}

export function buildRequest(def: ReportDefinition, start: string, end: string, offset: number, limit: number): RunReportRequest {
  return {
    dateRanges: [{ startDate: start, endDate: end }],
    dimensions: [{ name: 'date' }, ...def.dimensions.map((name) => ({ name }))],
    metrics: def.metrics.map((name) => ({ name })),
    limit: int64(limit),
    offset: int64(offset),
    orderBys: [
      { dimension: { dimensionName: 'date' } },
      ...def.dimensions.map((dimensionName) => ({ dimension: { dimensionName } })),
    ],
    returnPropertyQuota: true,
  };
}

/**
 * Yields every date of [start, end], complete and in order (days without data have no rows).
 * Google honours `orderBys`; an endpoint that does not (rows out of date order) is read again from
 * the first page with every row of the range held until the end, so no date is ever cut short:
 * slower and bounded by the range instead of a page, and said in the log. Dates yielded before the
 * disorder showed are yielded again, whole.
 */
export async function* fetchRange(
  client: Ga4Client,
  ctx: CallContext,
  def: ReportDefinition,
  start: string,
  end: string,
  opts: FetchRangeOptions,
): AsyncGenerator<DayData> {
  try {
    yield* fetchRangeStreaming(client, ctx, def, start, end, opts);
    return;
  } catch (err) {
    if (!(err instanceof RetryableError) || err.code !== 'unordered') throw err;
    ctx.logger.warn({ event: 'rows_unordered', start, end }, 'the API did not order rows by date; reading the whole range before storing it');
  }
  yield* fetchRangeBuffered(client, ctx, def, start, end, opts);
}

async function* fetchRangeBuffered(
  client: Ga4Client,
  ctx: CallContext,
  def: ReportDefinition,
  start: string,
  end: string,
  opts: FetchRangeOptions,
): AsyncGenerator<DayData> {
  const byDate = new Map<string, { rows: ReportRow[]; keys: Set<string> }>();
  const listing = new Listing(ctx, opts);
  for (;;) {
    const res = await client.runReport(ctx, buildRequest(def, start, end, listing.offset, opts.pageSize));
    const page = parsePage(res, def, start, end, ctx);
    for (const row of page.rows) {
      let day = byDate.get(row.date);
      if (!day) byDate.set(row.date, (day = { rows: [], keys: new Set() }));
      const key = row.dims.join('\u0000');
      if (day.keys.has(key)) {
        throw new RetryableError(`runReport for property ${ctx.propertyId}: ${row.date} has the same row twice across pages; the range is fetched again`, 'inconsistent_pages');
      }
      day.keys.add(key);
      day.rows.push(row);
    }
    if (listing.take(res, page.rowCount, page.rows.length, page.meta)) break;
  }
  const meta = listing.meta!;
  for (let date = start; date <= end; date = addDays(date, 1)) {
    const rows = byDate.get(date)?.rows ?? [];
    byDate.delete(date);
    yield { date, rowCount: rows.length, text: segmentsOf(ctx.propertyId, rows).map((s) => s.text), meta };
  }
}

async function* fetchRangeStreaming(
  client: Ga4Client,
  ctx: CallContext,
  def: ReportDefinition,
  start: string,
  end: string,
  opts: FetchRangeOptions,
): AsyncGenerator<DayData> {
  const listing = new Listing(ctx, opts);
  let nextDate = start; // first date not yet yielded
  let pending: DaySegment[] = []; // rows of dates not yet known to be complete
  // A page is read (pageRows) as soon as it arrives, not when the caller asks for its dates: the
  // caller is then usually storing the previous batch, so reading and storing overlap.
  const request = (offset: number) => prefetch(client.runReportBytes(ctx, buildRequest(def, start, end, offset, opts.pageSize)).then((body) => parsePageBytes(body, def, start, end, ctx)));
  let next = request(0);
  for (;;) {
    const page = await next;
    const done = listing.take(page.response, page.rowCount, page.rows, page.meta);
    const meta = listing.meta!;
    for (const segment of page.segments) pending.push(segment);
    // Ask for the next page before this one's dates are handed on: Google and the network work
    // while the caller stores them. At most one page is read ahead, so memory stays bounded.
    if (!done) next = request(listing.offset);
    const last = pending.length ? pending[pending.length - 1]!.date : null;
    if (last !== null && pending[0]!.date < nextDate) {
      throw new RetryableError(`runReport for property ${ctx.propertyId}: rows are not ordered by date`, 'unordered');
    }
    // Every date before the last row's date is complete (rows are ordered by date); at the end, all are.
    const completeThrough = done ? end : last !== null ? addDays(last, -1) : null;
    if (completeThrough !== null) {
      let i = 0;
      while (nextDate <= completeThrough) {
        const text: Buffer[] = [];
        let rowCount = 0;
        const from = i;
        for (; i < pending.length && pending[i]!.date === nextDate; i++) {
          text.push(pending[i]!.text);
          rowCount += pending[i]!.rows;
        }
        // a date from several pages: the same combination twice means pages overlapped (data shifted between requests)
        if (i - from > 1) {
          const seen = new Set<string>();
          for (let k = from; k < i; k++) {
            for (const key of rowKeys(pending[k]!.text, def.dimensions.length)) {
              if (seen.has(key)) {
                throw new RetryableError(`runReport for property ${ctx.propertyId}: ${nextDate} has the same row twice across pages; the range is fetched again`, 'inconsistent_pages');
              }
              seen.add(key);
            }
          }
        }
        if (i < pending.length && pending[i]!.date < nextDate) {
          throw new RetryableError(`runReport for property ${ctx.propertyId}: rows are not ordered by date`, 'unordered');
        }
        yield { date: nextDate, rowCount, text, meta };
        nextDate = addDays(nextDate, 1);
      }
      pending = pending.slice(i);
    }
    if (done) return;
  }
}

/**
 * Where one listing (the pages of one request) stands, and the checks every page must pass:
 * the same rowCount on each, no empty page before rowCount rows have come, never more rows.
 * Hands each page's quota and the first page's metadata to the caller.
 */
class Listing {
  offset = 0;
  meta: ResponseMeta | null = null;
  private expected: number | null = null;

  constructor(
    private readonly ctx: CallContext,
    private readonly opts: FetchRangeOptions,
  ) {}

  /** Accounts a page; true when every row of the listing has arrived. */
  take(res: RunReportResponse, rowCount: number, rows: number, meta: ResponseMeta): boolean {
    const who = `runReport for property ${this.ctx.propertyId}`;
    if (res.propertyQuota) this.opts.onQuota?.(res.propertyQuota as PropertyQuota);
    if (this.meta === null) {
      this.meta = meta;
      this.opts.onMeta?.(meta);
    }
    if (this.expected === null) this.expected = rowCount;
    else if (rowCount !== this.expected) {
      throw new RetryableError(`${who}: rowCount changed between pages (${this.expected} -> ${rowCount}); the range is fetched again`, 'inconsistent_pages');
    }
    if (rows === 0 && this.offset < this.expected) {
      throw new RetryableError(`${who}: page at offset ${this.offset} is empty but rowCount is ${this.expected}`, 'inconsistent_pages');
    }
    this.offset += rows;
    if (this.offset > this.expected) {
      throw new RetryableError(`${who}: received ${this.offset} rows but rowCount is ${this.expected}`, 'inconsistent_pages');
    }
    return this.offset >= this.expected;
  }
}

/**
 * A metric value as stored: integers stay decimal strings (bigint-safe), the rest become numbers.
 * Google sends every value as a string; anything that is not a number is a malformed response.
 */
export function metricValue(raw: string | null | undefined, integer: boolean, bad: (what: string) => Error): string | number {
  const v = raw ?? '0';
  if (integer) {
    if (!/^-?\d+$/.test(v)) throw bad(`integer metric value ${JSON.stringify(v)}`);
    return v;
  }
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw bad(`metric value ${JSON.stringify(v)}`);
  return n;
}

/** Work started ahead of its use; a failure surfaces where it is awaited, never as an unhandled rejection. */
function prefetch<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

interface Page {
  rows: ReportRow[];
  rowCount: number;
  meta: ResponseMeta;
}

/** Checks a response's shape and converts its rows. Anything off is a RetryableError, never data. */
export function parsePage(res: RunReportResponse, def: ReportDefinition, start: string, end: string, ctx: CallContext): Page {
  const bad = (what: string) => new RetryableError(`runReport for property ${ctx.propertyId}: malformed response (${what})`, 'bad_response');
  if (typeof res !== 'object' || res === null) throw bad('body is not an object');
  const dimHeaders = (res.dimensionHeaders ?? []).map((h) => h.name);
  const metricHeaders = res.metricHeaders ?? [];
  const wantDims = ['date', ...def.dimensions];
  if (dimHeaders.length !== wantDims.length || dimHeaders.some((n, i) => n !== wantDims[i])) {
    throw bad(`dimension headers ${JSON.stringify(dimHeaders)}`);
  }
  if (metricHeaders.length !== def.metrics.length || metricHeaders.some((h, i) => h.name !== def.metrics[i])) {
    throw bad(`metric headers ${JSON.stringify(metricHeaders.map((h) => h.name))}`);
  }
  const integer = metricHeaders.map((h) => h.type === 'TYPE_INTEGER');
  const rowCount = res.rowCount === undefined || res.rowCount === null ? 0 : Number(res.rowCount);
  if (!Number.isInteger(rowCount) || rowCount < 0) throw bad('rowCount');
  const rawRows = res.rows ?? [];
  if (!Array.isArray(rawRows)) throw bad('rows is not a list');
  const rows: ReportRow[] = rawRows.map((r) => {
    const dv = r.dimensionValues ?? [];
    const mv = r.metricValues ?? [];
    if (dv.length !== wantDims.length || mv.length !== def.metrics.length) throw bad('row width');
    const rawDate = dv[0]?.value ?? '';
    if (!/^\d{8}$/.test(rawDate)) throw bad(`date value ${JSON.stringify(rawDate)}`);
    const date = `${rawDate.slice(0, 4)}-${rawDate.slice(4, 6)}-${rawDate.slice(6, 8)}`;
    if (date < start || date > end) {
      throw new RetryableError(`runReport for property ${ctx.propertyId}: row dated ${date} outside the requested ${start}..${end}`, 'bad_response');
    }
    const metrics = mv.map((m, i) => metricValue(m.value, integer[i]!, bad));
    return { date, dims: dv.slice(1).map((d) => d.value ?? ''), metrics };
  });
  const md = res.metadata ?? {};
  return {
    rows,
    rowCount,
    meta: {
      timeZone: md.timeZone ?? null,
      currencyCode: md.currencyCode ?? null,
      dataLossFromOtherRow: md.dataLossFromOtherRow === true,
      subjectToThresholding: md.subjectToThresholding === true,
      sampling: (md.samplingMetadatas ?? []).map((s) => ({ samplesReadCount: s.samplesReadCount ?? null, samplingSpaceSize: s.samplingSpaceSize ?? null })),
    },
  };
}
