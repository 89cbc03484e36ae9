/**
 * The page loop: from a report definition and a date range to complete days of rows. Asks for the
 * pages (requests.ts reportPageRequest) with limit/offset until `rowCount` rows have arrived, turns
 * each page into row text (pageRows.ts: checked and converted by responses.ts, one segment per
 * date), and yields each date as soon as it is complete. Rows are
 * ordered by date (then every dimension, so paging is stable), so only the one date that straddles
 * a page boundary is held back; the next pages (up to `parallelPages` requests at once:
 * pageWindow.ts) are requested and read while the current one's dates are stored, so memory is
 * bounded by `2 × parallelPages` pages (2 with one request at a time). What happens when a page
 * or a listing turns out bad is said at fetchRange.
 */
import type { ReportDefinition } from '../config/index.js';
import { AbortedError, RetryableError, describe } from '../errors.js';
import { addDays, dateRange } from '../time.js';
import type { CallContext } from './callContext.js';
import type { Ga4Client } from './client.js';
import { parsePageBytes, type PageRows } from './pageRows.js';
import { PageStream } from './pageStream.js';
import { PageWindow } from './pageWindow.js';
import { reportPageRequest } from './requests.js';
import { Listing, dayOf, unordered, type ListingHooks } from './responses.js';
import type { DaySegment } from './rowText.js';
import type { DayData } from './types.js';

export interface FetchRangeOptions extends ListingHooks {
  /** rows per page (the request's `limit`) */
  pageSize: number;
  /**
   * requests for a listing's pages in flight at once once its first page is in (pageWindow.ts);
   * default 1: the next page only, while the current one's dates are handed on
   */
  parallelPages?: number;
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
  for (let attempt = 1; ;) {
    const handedOut: string[] = [];
    // a signal per listing: a page read ahead for a listing that is given up is cancelled, and
    // gives its request slot back at once
    const listingAbort = new AbortController();
    const onAbort = () => listingAbort.abort();
    if (ctx.signal?.aborted) listingAbort.abort();
    else ctx.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const listingCtx: CallContext = { ...ctx, signal: listingAbort.signal };
      const days = ordered ? readOrdered(client, listingCtx, def, start, end, opts) : readWhole(client, listingCtx, def, start, end, opts);
      for await (const day of days) {
        handedOut.push(day.date);
        unconfirmed.delete(day.date);
        yield day;
      }
      return;
    } catch (err) {
      if (ctx.signal?.aborted) throw withUnconfirmed(new AbortedError(), unconfirmed);
      const code = err instanceof RetryableError ? err.code : undefined;
      if (code === 'unordered' || code === 'inconsistent_pages') for (const date of handedOut) unconfirmed.add(date);
      if (ordered && code === 'unordered') {
        ordered = false;
        ctx.logger.warn(
          { event: 'rows_unordered', start, end, handedOut: handedOut.length },
          'the API did not order rows by date; reading the whole range before storing it',
        );
        continue;
      }
      if (code !== 'inconsistent_pages') throw withUnconfirmed(err, unconfirmed);
      try {
        await client.backOff(ctx, err as RetryableError, attempt++, 'runReport');
      } catch (final) {
        throw withUnconfirmed(final, unconfirmed);
      }
      ctx.logger.warn(
        { event: 'listing_restart', start, end, attempt, err: describe(err) },
        'the data changed while it was read; reading the range again from its first page',
      );
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
  // A page is read as it arrives (pageStream.ts), not when the caller asks for its dates: the
  // caller is then usually storing the previous batch, so reading and storing overlap. A page the
  // scanner gives up on is asked for again and read whole, and so are the listing's later pages.
  let streamed = true;
  const readPage = async (offset: number, signal: AbortSignal): Promise<PageRows> => {
    const pageCtx = { ...ctx, signal };
    const request = reportPageRequest(def, start, end, offset, opts.pageSize);
    if (streamed) {
      const read = await client.runReportPageStream(pageCtx, request, () => new PageStream(def, start, end, ctx));
      if (read.ok) return read.value;
      streamed = false;
      ctx.logger.warn(
        { event: 'page_read_whole', offset, reason: describe(read.error) },
        'the page could not be read as it arrived; asking for it again and reading this listing whole',
      );
    }
    return client.runReportPage(pageCtx, request, (body) => parsePageBytes(body, def, start, end, ctx));
  };
  const pages = new PageWindow(readPage, ctx.signal, Math.max(1, opts.parallelPages ?? 1));
  // rows a page holds: the first page's, when more follow (Google may send fewer than `limit`)
  let stride = 0;
  for (;;) {
    const offset = listing.offset;
    const page = await pages.take(offset);
    const done = listing.take(page.response, page.rowCount, page.rows, page.meta);
    if (offset === 0) stride = page.rows;
    const meta = listing.meta!;
    // each page is in date order (parsePageBytes checks that); it must also go on from where the
    // pages before it stopped
    const first = page.segments[0];
    if (first && first.date < (pending.length ? pending[pending.length - 1]!.date : nextDate)) {
      throw unordered(ctx);
    }
    for (const segment of page.segments) pending.push(segment);
    // Ask for the next pages before this one's dates are handed on: Google and the network work
    // while the caller stores them. At most `parallelPages` requests are in flight and
    // `2 × parallelPages` pages held, so memory stays bounded (pageWindow.ts); a page shorter
    // than the first cancels the pages asked for after it.
    if (!done) pages.fill(listing.offset, stride, page.rowCount);
    const last = pending.length ? pending[pending.length - 1]!.date : null;
    // Every date before the last row's date is complete (rows are ordered by date); at the end, all are.
    const completeThrough = done ? end : last !== null ? addDays(last, -1) : null;
    if (completeThrough !== null) {
      let taken = 0;
      while (nextDate <= completeThrough) {
        const from = taken;
        while (taken < pending.length && pending[taken]!.date === nextDate) taken++;
        yield dayOf(ctx, def, nextDate, pending.slice(from, taken), meta);
        nextDate = addDays(nextDate, 1);
      }
      pending = pending.slice(taken);
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
    const page = await client.runReportPage(ctx, reportPageRequest(def, start, end, listing.offset, opts.pageSize), (body) =>
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
