/**
 * Where the row scanner's text goes (rowScanner.ts extends this): blocks of row text
 * (rowTextBlocks.ts), the date being written and its segment, the segments finished, and a mark
 * at the start of the row in hand, to rewind to when a window of bytes cut the row.
 *
 * A date's rows in one page are one segment, unless the page's text went on in a new block in the
 * middle of the date: the rows in the new block are then a segment of their own, marked
 * `continued`. Fields are protected, not private: the scanner writes bytes into `out` directly,
 * a value at a time, and a call per byte would cost more than the bytes.
 */
import { BLOCK_BYTES, holdBlock, releaseBlock, takeBlock } from './rowTextBlocks.js';
import type { DaySegment, Sanitized } from './rowText.js';
import type { Unstorable } from './types.js';

/** A finished segment: where its row text lies. */
interface SegmentSpan {
  date: string;
  rows: number;
  block: Buffer;
  from: number;
  to: number;
  sanitized: Sanitized | undefined;
  unstorable: Unstorable | undefined;
  continued: boolean;
}

export class RowTextSegments {
  /** the block row text goes to */
  protected out: Buffer = Buffer.alloc(0);
  /** bytes of `out` written */
  protected outLength = 0;
  /** the current date as yyyymmdd, its text, and where its segment starts */
  protected day = -1;
  protected date = '';
  protected segmentStart = 0;
  protected segmentRows = 0;
  /** the current date's rows began in an earlier block */
  private segmentContinued = false;
  /** values of the current segment changed by storableText, and their dimensions */
  protected segmentSanitized = 0;
  protected segmentSanitizedDimensions: string[] = [];
  /** the segment's first metric value its column cannot hold */
  protected segmentUnstorable: Unstorable | undefined;
  private readonly finished: SegmentSpan[] = [];
  /** the state at the start of the row in hand (mark) */
  private markOut = 0;
  private markDay = -1;
  private markDate = '';
  private markSegmentStart = 0;
  private markSegmentRows = 0;
  private markContinued = false;
  private markSanitized = 0;
  private markSanitizedDimensions: string[] = [];
  private markSanitizedLength = 0;
  private markUnstorable: Unstorable | undefined;
  private markFinished = 0;

  /**
   * The segments written, once the scanner is done: it writes no more, and its block may be taken
   * again once they are stored.
   */
  segments(): DaySegment[] {
    releaseBlock(this.out);
    return this.finished.map((span) => ({
      date: span.date,
      rows: span.rows,
      text: span.block.subarray(span.from, span.to),
      ...(span.sanitized ? { sanitized: span.sanitized } : {}),
      ...(span.unstorable ? { unstorable: span.unstorable } : {}),
      ...(span.continued ? { continued: true as const } : {}),
    }));
  }

  /**
   * A new block of at least `bytes` for the rows to come (between rows only): with `pooled`, a
   * pooled block when one is large enough, else one of `bytes`. The current date's rows so far stay
   * in the block they are in, as a segment, and the date goes on in the new one.
   */
  protected startBlock(bytes: number, pooled: boolean): void {
    if (this.segmentRows > 0) {
      this.closeDay();
      this.segmentContinued = true;
      this.segmentRows = 0;
      this.segmentSanitized = 0;
      this.segmentSanitizedDimensions = [];
      this.segmentUnstorable = undefined;
    }
    releaseBlock(this.out);
    this.out = pooled && bytes <= BLOCK_BYTES ? takeBlock() : Buffer.allocUnsafe(bytes);
    this.outLength = 0;
    this.segmentStart = 0;
  }

  /** A row with a new date starts at `rowStart`: the previous date's segment ends there. */
  protected beginDay(day: number, date: string, rowStart: number): void {
    const written = this.outLength;
    this.outLength = rowStart;
    this.closeDay();
    this.outLength = written;
    this.day = day;
    this.date = date;
    this.segmentStart = rowStart;
    this.segmentRows = 0;
    this.segmentContinued = false;
    this.segmentSanitized = 0;
    this.segmentSanitizedDimensions = [];
    this.segmentUnstorable = undefined;
  }

  /** The current date's segment ends here (nothing when it has no rows). */
  protected closeDay(): void {
    if (this.day < 0 || this.segmentRows === 0) return;
    const sanitized = this.segmentSanitized > 0 ? { values: this.segmentSanitized, dimensions: this.segmentSanitizedDimensions } : undefined;
    holdBlock(this.out);
    this.finished.push({
      date: this.date,
      rows: this.segmentRows,
      block: this.out,
      from: this.segmentStart,
      to: this.outLength,
      sanitized,
      unstorable: this.segmentUnstorable,
      continued: this.segmentContinued,
    });
  }

  /** A row starts: what rewind() goes back to. */
  protected mark(): void {
    this.markOut = this.outLength;
    this.markDay = this.day;
    this.markDate = this.date;
    this.markSegmentStart = this.segmentStart;
    this.markSegmentRows = this.segmentRows;
    this.markContinued = this.segmentContinued;
    this.markSanitized = this.segmentSanitized;
    this.markSanitizedDimensions = this.segmentSanitizedDimensions;
    this.markSanitizedLength = this.segmentSanitizedDimensions.length;
    this.markUnstorable = this.segmentUnstorable;
    this.markFinished = this.finished.length;
  }

  /** Back to the state of mark(): the row in hand was not written. */
  protected rewind(): void {
    this.outLength = this.markOut;
    this.day = this.markDay;
    this.date = this.markDate;
    this.segmentStart = this.markSegmentStart;
    this.segmentRows = this.markSegmentRows;
    this.segmentContinued = this.markContinued;
    this.segmentSanitized = this.markSanitized;
    this.segmentSanitizedDimensions = this.markSanitizedDimensions;
    this.segmentSanitizedDimensions.length = this.markSanitizedLength;
    this.segmentUnstorable = this.markUnstorable;
    for (const span of this.finished.splice(this.markFinished)) releaseBlock(span.block);
  }

  /** Room for `count` more bytes (and the row's newline) in the block, copied to a larger one if need be. */
  protected ensure(count: number): void {
    if (this.outLength + count + 1 <= this.out.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.outLength + count + 1024));
    this.out.copy(bigger, 0, 0, this.outLength);
    // the segments finished in the old block keep it; the scanner's own hold ends
    releaseBlock(this.out);
    this.out = bigger;
  }
}
