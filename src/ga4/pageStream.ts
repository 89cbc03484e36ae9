/**
 * A runReport page read as its body arrives: the rows are scanned into row text chunk by chunk
 * (rowScanner.ts scan), so the body is never held whole, nor copied whole (as a buffered read
 * does: the socket's chunks, then their concatenation, then gaxios' ArrayBuffer of it).
 *
 * Why: at a page of 25,000 rows (some 5 MB of JSON) and four pages in flight, those copies and
 * the row text left to the garbage collector (rowTextBlocks.ts) held tens of MB. Peak RSS of the
 * bench's 1,000,000-row backfill, `node dist/main.js` without launch flags, three runs each: pages
 * read whole, 177 to 179 MB; read as they arrive, row text in recycled blocks, 155 to 159 MB, in
 * the same time. The rest is the young generation's (src/main.ts, first line).
 *
 * The phases of a body: its head (the members before `rows`: headers, metadata when Google writes
 * it first) is gathered until the `rows` array opens; the rows are scanned window by window, a
 * window being the bytes the previous one left (a row it cut) followed by a new chunk, in a buffer
 * reused from chunk to chunk; the tail (rowCount, metadata, quota) is gathered and parsed with the
 * head, as pageRows.ts does with the rest of a whole body.
 *
 * A head in which no rows array opens (an empty page, a layout with the rows late) is read whole
 * by pageRows.ts when the body ends: nothing is lost then. A body cut short (it ends inside its
 * rows, or its rest is no JSON) is a bad page, retried as the whole read's would be. Once rows
 * were scanned, any other fault (a layout or value the scanner does not take, a bad date or
 * number, bytes that are not UTF-8) throws NotScannable: the bytes read so far are gone, and the caller asks for the page
 * again and reads it whole (report.ts), so the slow path has the last word on it as on any page
 * (rows out of date order included: the whole read then says `unordered`).
 */
import { isUtf8 } from 'node:buffer';
import { RetryableError, describe } from '../errors.js';
import type { ReportDefinition } from '../config/index.js';
import type { CallContext } from './callContext.js';
import { topLevel, withoutRows, type TopLevelLayout } from './jsonBytes.js';
import { parsePageBytes, scannedPage, type PageRows } from './pageRows.js';
import { parseJson } from './responses.js';
import { NotScannable, RowScanner, metricTypes } from './rowScanner.js';

/** A head this long with no rows array open in it is read whole (the search for one stops). */
const HEAD_LIMIT = 1024 * 1024;

const EMPTY_ROWS = Buffer.from('"rows":[]');

export class PageStream {
  /** the body's chunks until the rows open, or all of them when read whole */
  private head: Buffer[] = [];
  private headBytes = 0;
  private wholeBody = false;
  private scanner: RowScanner | undefined;
  /** the head up to the `"rows"` key, kept for the rest of the response */
  private before: Buffer = Buffer.alloc(0);
  /** the window being scanned: `work` up to `windowEnd` (the first window is the head itself) */
  private work: Buffer = Buffer.alloc(0);
  /** `work` is a buffer of ours, not a chunk the caller handed over */
  private workOwned = false;
  private windowEnd = 0;
  private tail: Buffer[] | undefined;

  /** Reads an ordered page of `def` over [start, end] (as parsePageBytes with `ordered`). */
  constructor(
    private readonly def: ReportDefinition,
    private readonly start: string,
    private readonly end: string,
    private readonly ctx: CallContext,
  ) {}

  /**
   * The body's next chunk. The chunk is not written to.
   * @throws NotScannable: the page must be read whole
   */
  push(chunk: Buffer): void {
    if (this.tail) this.tail.push(chunk);
    else if (this.scanner) scanned(() => this.scanWindow(chunk, false));
    else scanned(() => this.gather(chunk));
  }

  /**
   * The page, once the body has ended.
   * @throws NotScannable: the page must be read whole; RetryableError `bad_response` for a body
   *   cut short; what parsePageBytes throws for a head in which no rows opened (read whole here)
   */
  finish(): PageRows {
    if (!this.scanner) return parsePageBytes(Buffer.concat(this.head, this.headBytes), this.def, this.start, this.end, this.ctx);
    const scanner = this.scanner;
    if (!this.tail) {
      scanned(() => this.scanWindow(Buffer.alloc(0), false));
      // the rows want more bytes and the body has none
      if (!this.tail) throw cutShort(this.ctx);
    }
    const rest = Buffer.concat([this.before, EMPTY_ROWS, ...this.tail]);
    const withoutTheRows = withoutRows(rest, this.before.length, this.before.length + EMPTY_ROWS.length);
    // the rest is no JSON (cut short after the rows): what the whole read says of the body too
    const res = parseJson(withoutTheRows, this.ctx);
    return scanned(() => scannedPage(res, scanner, this.def, this.start, this.end, this.ctx));
  }

  /** Head bytes, until the rows array opens in them. */
  private gather(chunk: Buffer): void {
    this.head.push(chunk);
    this.headBytes += chunk.length;
    if (this.wholeBody) return;
    const head = this.head.length === 1 ? chunk : Buffer.concat(this.head, this.headBytes);
    const layout = topLevel(head);
    if (layout === null) {
      this.wholeBody = this.headBytes > HEAD_LIMIT;
      return;
    }
    this.head = [head];
    const before = head.subarray(0, layout.rowsKey);
    // the scanner copies bytes as they are: a head that is not UTF-8 goes to the slow path whole
    if (!isUtf8(before)) {
      this.wholeBody = true;
      return;
    }
    let integer: boolean[];
    try {
      integer = metricTypes(head, layout.metricHeaders, this.def.metrics.length);
    } catch (err) {
      if (!(err instanceof NotScannable)) throw err;
      this.wholeBody = true;
      return;
    }
    this.startRows(head, layout, integer);
  }

  /** The rows open in `head`: its bytes from the `[` on are the first window. */
  private startRows(head: Buffer, layout: TopLevelLayout, integer: boolean[]): void {
    this.before = Buffer.from(head.subarray(0, layout.rowsKey));
    this.scanner = new RowScanner(head, layout.rowsOpen, this.def, this.start, this.end, this.ctx, integer, true);
    this.head = [];
    this.headBytes = 0;
    this.work = head;
    this.windowEnd = head.length;
    this.scanFrom(layout.rowsOpen + 1, false);
  }

  /** The bytes the last window left, then `chunk`, scanned. */
  private scanWindow(chunk: Buffer, last: boolean): void {
    const left = this.windowEnd - this.scanner!.position;
    const need = left + chunk.length;
    if (this.work.length < need || !this.workOwned) {
      const bigger = Buffer.allocUnsafe(Math.max(need, 2 * chunk.length, 64 * 1024));
      this.work.copy(bigger, 0, this.scanner!.position, this.windowEnd);
      this.work = bigger;
      this.workOwned = true;
    } else {
      this.work.copyWithin(0, this.scanner!.position, this.windowEnd);
    }
    chunk.copy(this.work, left);
    this.windowEnd = need;
    this.scanFrom(0, last);
  }

  private scanFrom(from: number, last: boolean): void {
    const scanner = this.scanner!;
    const window = this.work.subarray(0, this.windowEnd);
    const ended = scanner.scan(window, from, last);
    // the rows read from this window must have been UTF-8 (a character never spans two rows)
    if (!isUtf8(window.subarray(from, scanner.position))) throw new NotScannable();
    if (ended) this.tail = [Buffer.from(window.subarray(scanner.position))];
  }
}

/**
 * A body that ended inside its rows: a connection or a proxy cut it. Retried as a bad page
 * (RetryableError `bad_response`, as the whole read says of it: not JSON), read as it arrives
 * again: the layout is not in question.
 */
function cutShort(ctx: CallContext): RetryableError {
  return new RetryableError(`runReport for property ${ctx.propertyId}: response body ended inside its rows (cut short)`, 'bad_response');
}

/**
 * What the scanner (or the checks of the rest) found fault with is not the page's last word: the
 * slow path has it, as for a page read whole (pageRows.ts), so a fault throws NotScannable and the
 * page is read whole, rows out of date order included.
 */
function scanned<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw err instanceof NotScannable ? err : new NotScannable(describe(err));
  }
}
