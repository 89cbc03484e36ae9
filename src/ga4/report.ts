/**
 * From a report definition and a date range to complete days of rows: builds the runReport
 * request (the `date` dimension always first), walks the pages with limit/offset until `rowCount`
 * rows have arrived, turns each page into row text (pageRows.ts: checked, converted by the metric
 * headers' types, one segment per date), and yields each date as soon as it is complete. Rows are
 * ordered by date (then every dimension, so paging is stable), so only the one date that straddles
 * a page boundary is held back; the next page is requested and read while the current one's dates
 * are stored, so memory is bounded by two pages. What happens when a page or a listing turns out
 * bad is said at fetchRange.
 */
import type { ReportDefinition } from '../config/index.js';
import { AbortedError, RetryableError, describe } from '../errors.js';
import { addDays, dateRange } from '../time.js';
import { int64, type CallContext, type Ga4Client, type RunReportRequest, type RunReportResponse } from './client.js';
import { parsePageBytes } from './pageRows.js';
import { addSanitized, rowKeys, storableText, type DaySegment, type Sanitized } from './rowText.js';
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
 *
 * What goes wrong while reading, and what happens then (one policy, Ga4Client.backOff, for all):
 * - a page that is unusable once read (truncated, not JSON, malformed, a date out of range) is
 *   asked for again by the client, with the attempts and backoff of a 5xx;
 * - a listing that changed while it was read (rowCount changed between pages, the same row on two
 *   pages, an empty page before rowCount rows, more rows than rowCount) is read again from its
 *   first page, under the same policy;
 * - rows out of date order (an endpoint that ignores `orderBys`; Google honours them) switch to
 *   reading the whole range from the first page with every row held until the end, so no date is
 *   cut short: slower, bounded by the range instead of a page, and said in the log.
 * A listing read again hands out every date again, whole; the caller replaces what it had of
 * them. When reading fails for good after a listing was found inconsistent, the error carries the
 * dates handed out from that listing and not handed out again (`unconfirmedDates`): the caller
 * must not keep them as complete.
 */
export async function* fetchRange(
  client: Ga4Client,
  ctx: CallContext,
  def: ReportDefinition,
  start: string,
  end: string,
  opts: FetchRangeOptions,
): AsyncGenerator<DayData> {
  // dates handed out by a listing later found inconsistent, and not handed out again since
  const unconfirmed = new Set<string>();
  let ordered = true;
  for (let attempt = 1; ; ) {
    const handedOut: string[] = [];
    // a signal per listing: a page read ahead for a listing that is given up is cancelled, and
    // gives its request slot back at once
    const listingAbort = new AbortController();
    const onAbort = () => listingAbort.abort();
    if (ctx.signal?.aborted) listingAbort.abort();
    else ctx.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const lctx: CallContext = { ...ctx, signal: listingAbort.signal };
      const days = ordered ? readOrdered(client, lctx, def, start, end, opts) : readWhole(client, lctx, def, start, end, opts);
      for await (const day of days) {
        handedOut.push(day.date);
        unconfirmed.delete(day.date);
        yield day;
      }
      return;
    } catch (err) {
      if (ctx.signal?.aborted) throw withUnconfirmed(new AbortedError(), unconfirmed);
      const code = err instanceof RetryableError ? err.code : undefined;
      if (code === 'unordered' || code === 'inconsistent_pages') for (const d of handedOut) unconfirmed.add(d);
      if (ordered && code === 'unordered') {
        ordered = false;
        ctx.logger.warn({ event: 'rows_unordered', start, end, handedOut: handedOut.length }, 'the API did not order rows by date; reading the whole range before storing it');
        continue;
      }
      if (code !== 'inconsistent_pages') throw withUnconfirmed(err, unconfirmed);
      try {
        await client.backOff(ctx, err as RetryableError, attempt++, 'runReport');
      } catch (final) {
        throw withUnconfirmed(final, unconfirmed);
      }
      ctx.logger.warn({ event: 'listing_restart', start, end, attempt, err: describe(err) }, 'the data changed while it was read; reading the range again from its first page');
    } finally {
      ctx.signal?.removeEventListener('abort', onAbort);
      listingAbort.abort();
    }
  }
}

const UNCONFIRMED = new WeakMap<object, readonly string[]>();

function withUnconfirmed(err: unknown, dates: Set<string>): unknown {
  if (dates.size > 0 && typeof err === 'object' && err !== null) UNCONFIRMED.set(err, [...dates].sort());
  return err;
}

/**
 * The dates a failed fetchRange handed out from a listing it then found inconsistent (rows out of
 * order, data changed between pages) and did not hand out again: they may be incomplete.
 */
export function unconfirmedDates(err: unknown): readonly string[] {
  return (typeof err === 'object' && err !== null && UNCONFIRMED.get(err)) || [];
}

/**
 * The streaming read: each date as soon as a later date shows it complete, the next page asked
 * for while the caller stores the current one's dates.
 */
async function* readOrdered(
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
  const request = (offset: number) =>
    prefetch(client.runReportPage(ctx, buildRequest(def, start, end, offset, opts.pageSize), (body) => parsePageBytes(body, def, start, end, ctx)));
  let next = request(0);
  for (;;) {
    const page = await next;
    const done = listing.take(page.response, page.rowCount, page.rows, page.meta);
    const meta = listing.meta!;
    // each page is in date order (parsePageBytes checks that); it must also go on from where the
    // pages before it stopped
    const first = page.segments[0];
    if (first && first.date < (pending.length ? pending[pending.length - 1]!.date : nextDate)) {
      throw new RetryableError(`runReport for property ${ctx.propertyId}: rows are not ordered by date`, 'unordered');
    }
    for (const segment of page.segments) pending.push(segment);
    // Ask for the next page before this one's dates are handed on: Google and the network work
    // while the caller stores them. At most one page is read ahead, so memory stays bounded.
    if (!done) next = request(listing.offset);
    const last = pending.length ? pending[pending.length - 1]!.date : null;
    // Every date before the last row's date is complete (rows are ordered by date); at the end, all are.
    const completeThrough = done ? end : last !== null ? addDays(last, -1) : null;
    if (completeThrough !== null) {
      let i = 0;
      while (nextDate <= completeThrough) {
        const from = i;
        while (i < pending.length && pending[i]!.date === nextDate) i++;
        yield dayOf(ctx, def, nextDate, pending.slice(from, i), meta);
        nextDate = addDays(nextDate, 1);
      }
      pending = pending.slice(i);
    }
    if (done) return;
  }
}

/** The buffered read: every page of the range first (rows in any order), then each date. */
async function* readWhole(
  client: Ga4Client,
  ctx: CallContext,
  def: ReportDefinition,
  start: string,
  end: string,
  opts: FetchRangeOptions,
): AsyncGenerator<DayData> {
  const listing = new Listing(ctx, opts);
  const byDate = new Map<string, DaySegment[]>();
  for (;;) {
    const page = await client.runReportPage(ctx, buildRequest(def, start, end, listing.offset, opts.pageSize), (body) =>
      parsePageBytes(body, def, start, end, ctx, { ordered: false }),
    );
    const done = listing.take(page.response, page.rowCount, page.rows, page.meta);
    for (const segment of page.segments) {
      const list = byDate.get(segment.date);
      if (list) list.push(segment);
      else byDate.set(segment.date, [segment]);
    }
    if (done) break;
  }
  const meta = listing.meta!;
  // every date is checked before the first is handed out: nothing of an inconsistent listing is stored
  const days = dateRange(start, end).map((date) => dayOf(ctx, def, date, byDate.get(date) ?? [], meta));
  byDate.clear();
  yield* days;
}

/** One complete date from its segments; the same row twice means pages overlapped (data shifted between requests). */
function dayOf(ctx: CallContext, def: ReportDefinition, date: string, segments: DaySegment[], meta: ResponseMeta): DayData {
  if (segments.length > 1) {
    const seen = new Set<string>();
    for (const s of segments) {
      for (const key of rowKeys(s.text, def.dimensions.length)) {
        if (seen.has(key)) {
          throw new RetryableError(`runReport for property ${ctx.propertyId}: ${date} has the same row on two pages (the data changed while it was read)`, 'inconsistent_pages');
        }
        seen.add(key);
      }
    }
  }
  let rowCount = 0;
  let sanitized: Sanitized | undefined;
  for (const s of segments) {
    rowCount += s.rows;
    sanitized = addSanitized(sanitized, s.sanitized);
  }
  return { date, rowCount, text: segments.map((s) => s.text), meta, ...(sanitized ? { sanitized } : {}) };
}

/**
 * Where one listing (the pages of one request) stands, and the checks every page must pass:
 * the same rowCount on each, no empty page before rowCount rows have come, never more rows.
 * Hands each page's quota and the first page's metadata to the caller. A failed check is a
 * RetryableError with code `inconsistent_pages`: the listing changed while it was read.
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
      throw new RetryableError(`${who}: rowCount changed between pages (${this.expected} -> ${rowCount}): the data changed while it was read`, 'inconsistent_pages');
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
  const v = String(raw ?? '0');
  if (integer) {
    // digits beyond bigint's range are kept as sent: PostgreSQL refuses them, failing that date alone
    if (!/^-?\d+$/.test(v)) throw bad(`integer metric value ${JSON.stringify(v)}`);
    return v;
  }
  if (!DECIMAL.test(v)) throw bad(`metric value ${JSON.stringify(v)}`);
  const n = Number(v);
  // A number beyond a double's range (1e400) is kept as sent, never stored as Infinity:
  // PostgreSQL refuses it, failing that date alone.
  return Number.isFinite(n) ? n : v;
}

/** A decimal number as JSON, JavaScript and PostgreSQL all read it (and `.5`, `5.`); no hex, no Infinity. */
const DECIMAL = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

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
    let sanitized: string[] | undefined;
    const dims = dv.slice(1).map((d, k) => {
      const value = d.value ?? '';
      const storable = typeof value === 'string' ? storableText(value) : null;
      if (storable === null) return value;
      (sanitized ??= []).push(def.dimensions[k]!);
      return storable;
    });
    return sanitized ? { date, dims, metrics, sanitized } : { date, dims, metrics };
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
