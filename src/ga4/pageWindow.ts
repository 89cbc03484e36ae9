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
 * Memory: at most `width` pages are asked for and not yet taken; with the page being taken (its
 * dates handed on one by one), at most `width + 1` pages are held, within `2 × width`.
 */
import { AbortedError } from '../errors.js';

interface Asked<P> {
  offset: number;
  abort: AbortController;
  page: Promise<P>;
}

export class PageWindow<P> {
  private readonly asked: Asked<P>[] = [];

  /**
   * @param fetchPage asks for the page at `offset` (rows), its request cancelled by `signal`
   * @param signal the listing's signal: aborted, every page asked for is cancelled
   * @param width pages asked for at once, at least 1 (1: the next page only, while the current one is taken)
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
    }
    return this.asked.shift()!.page;
  }

  /**
   * Asks for the pages from `offset` on, `stride` rows apart and below `rowCount`, until `width`
   * are asked for and not taken. Pages asked for before that no longer line up with `offset` are
   * cancelled first.
   */
  fill(offset: number, stride: number, rowCount: number): void {
    if (this.asked.length > 0 && this.asked[0]!.offset !== offset) this.cancel();
    let next = this.asked.length > 0 ? this.asked[this.asked.length - 1]!.offset + stride : offset;
    while (this.asked.length < this.width && next < rowCount && stride > 0) {
      this.ask(next);
      next += stride;
    }
  }

  /** Cancels every page asked for and not taken: each gives its request slot back at once. */
  cancel(): void {
    for (const asked of this.asked.splice(0)) asked.abort.abort(new AbortedError());
  }

  private ask(offset: number): void {
    const abort = new AbortController();
    const onAbort = () => abort.abort(new AbortedError());
    if (this.signal?.aborted) abort.abort(new AbortedError());
    else this.signal?.addEventListener('abort', onAbort, { once: true });
    const page = this.fetchPage(offset, abort.signal).finally(() => this.signal?.removeEventListener('abort', onAbort));
    // a page asked for ahead and then cancelled is never awaited: its failure must not surface as
    // an unhandled rejection; a page that is taken fails where it is awaited
    page.catch(() => undefined);
    this.asked.push({ offset, abort, page });
  }
}
