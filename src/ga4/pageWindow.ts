/**
 * The pages of one listing asked for ahead of their use, several at once, handed back in offset
 * order (the page loop, report.ts readOrdered).
 *
 * Why pages by offset and not the range cut into shorter date ranges: the first page of a listing
 * says its `rowCount` and how many rows a page holds, and from then on every page's offset is
 * known, so up to `width` pages can be in flight whatever the rows' spread over the dates: a range
 * whose rows fit in a few dates is read in parallel too, which date chunks would not do. It also
 * costs no request more than reading the pages one by one (a range of one page is one request,
 * where date chunks would ask one per chunk, each charged quota tokens), and the listing stays one:
 * the same rowCount checks, rows in date order across its pages, each date complete before it is
 * handed on, dates oldest first. The price is the first page of each listing, which is asked for
 * alone.
 *
 * Requests go on while the caller is busy (storing a batch): a page that arrives makes room for
 * the next request, as long as fewer than `2 × width` pages are held.
 *
 * Memory: at most `width` requests in flight, and at most `2 × width − 1` pages asked for and not
 * taken (in flight or arrived), and no more of them than HELD_ROWS rows of pages allow (at least
 * one); with the page being taken (its dates handed on one by one), at most `2 × width` pages are
 * held. With `width` 1: the next page only, while the current one is taken.
 */
import { AbortedError } from '../errors.js';

/**
 * Rows of pages asked for and not taken, at most: large pages are read ahead fewer at a time. A
 * page read as it arrives (pageStream.ts) holds its row text, about half its JSON. Measured when
 * pages were still held whole as bytes, some four times over while read: peak RSS of the bench's
 * 1,000,000-row backfill at zero latency, pages of 25,000 rows (one run each, this 2-core
 * machine): width 1, 164 MB; width 4 holding 2 × 4 − 1 pages, 226 MB; width 4 holding at most
 * 100,000 rows (4 pages), 206 MB.
 */
const HELD_ROWS = 100_000;

interface Asked<P> {
  offset: number;
  abort: AbortController;
  page: Promise<P>;
  /** the request has not settled (and was not cancelled) */
  flying: boolean;
}

export class PageWindow<P> {
  private readonly asked: Asked<P>[] = [];
  private flying = 0;
  /** the offset of the next page to ask for, rows apart and below rowCount (from fill) */
  private next = 0;
  private stride = 0;
  private rowCount = 0;

  /**
   * @param fetchPage asks for the page at `offset` (rows), its request cancelled by `signal`
   * @param signal the listing's signal: aborted, every page asked for is cancelled and no more is asked for
   * @param width requests in flight at once, at least 1
   */
  constructor(
    private readonly fetchPage: (offset: number, signal: AbortSignal) => Promise<P>,
    private readonly signal: AbortSignal | undefined,
    readonly width: number,
  ) {}

  /**
   * The page at `offset`: the one asked for ahead when the next one lines up with it, else (the
   * first page, or a page that came back shorter than the pages before it) asked for now, the
   * pages asked for after it being cancelled. The promise rejects as the request does.
   */
  take(offset: number): Promise<P> {
    if (this.asked[0]?.offset !== offset) {
      this.cancel();
      this.ask(offset);
      this.next = offset + this.stride;
    }
    const taken = this.asked.shift()!;
    this.top();
    return taken.page;
  }

  /**
   * From here on, pages from `offset` on, `stride` rows apart and below `rowCount`, are asked for
   * (width at a time). Pages asked for before that no longer line up with `offset` are cancelled first.
   */
  fill(offset: number, stride: number, rowCount: number): void {
    if (this.asked.length > 0 && this.asked[0]!.offset !== offset) this.cancel();
    this.stride = stride;
    this.rowCount = rowCount;
    this.next = this.asked.length > 0 ? this.asked[this.asked.length - 1]!.offset + stride : offset;
    this.top();
  }

  /** Cancels every page asked for and not taken: each gives its request slot back at once. */
  cancel(): void {
    for (const asked of this.asked.splice(0)) {
      if (asked.flying) {
        asked.flying = false;
        this.flying -= 1;
      }
      asked.abort.abort(new AbortedError());
    }
  }

  /** Asks for pages while fewer than `width` are in flight and fewer than `2 × width − 1` (and HELD_ROWS rows of pages) are held. */
  private top(): void {
    const held = Math.max(1, Math.min(2 * this.width - 1, Math.floor(HELD_ROWS / Math.max(1, this.stride))));
    while (!this.signal?.aborted && this.stride > 0 && this.next < this.rowCount && this.flying < this.width && this.asked.length < held) {
      this.ask(this.next);
      this.next += this.stride;
    }
  }

  private ask(offset: number): void {
    const abort = new AbortController();
    const onAbort = () => abort.abort(new AbortedError());
    if (this.signal?.aborted) abort.abort(new AbortedError());
    else this.signal?.addEventListener('abort', onAbort, { once: true });
    const asked: Asked<P> = { offset, abort, page: this.fetchPage(offset, abort.signal), flying: true };
    this.flying += 1;
    this.asked.push(asked);
    const settled = () => {
      this.signal?.removeEventListener('abort', onAbort);
      if (!asked.flying) return;
      asked.flying = false;
      this.flying -= 1;
      // its slot is free: the next page is asked for even while the caller is busy
      this.top();
    };
    // a page asked for ahead and then cancelled is never awaited: its failure must not surface as
    // an unhandled rejection; a page that is taken fails where it is awaited
    asked.page.then(settled, settled);
  }
}
