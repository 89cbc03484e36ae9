/**
 * The blocks row text is scanned into (rowScanner.ts), recycled once every date written in them
 * is stored, instead of left to the garbage collector.
 *
 * Why: a block lives from its page's arrival until its dates' batch is stored, long enough to be
 * promoted to V8's old generation, where only a full collection frees it; and V8 starts one for
 * memory held outside its heap (ArrayBuffers) only once some 64 MB more of it than after the last
 * one is allocated. A backfill scans some 100 MB of row text per 1,000,000 rows, so blocks left to
 * the collector kept tens of MB of dead row text resident (peak RSS of the bench's
 * 1,000,000-row backfill: 172 to 181 MB with the page read as it arrives, blocks not recycled).
 *
 * Who holds a block: the scanner while it writes into it, and each segment of rows cut from it.
 * The scanner lets go when it moves to the next block or ends (`releaseBlock`); a segment's hold
 * ends when the date it belongs to has been written, committed or refused (`releaseDay`, from
 * schedule/batchWriter.ts), or has been replaced by a newer read of the same date. A date that is
 * never written (a job that fails or stops with dates in hand, totals) never lets go: its blocks
 * are then the collector's, as any buffer. A block is taken again only once nothing holds it.
 */
import type { DayData } from './types.js';

/** Bytes of a block: large enough that a block is rarely closed with much room unused, small enough that a short page holds little more than its text. */
export const BLOCK_BYTES = 512 * 1024;

/** Free blocks kept for reuse, at most (16 MB): a burst of read-ahead beyond that is the collector's. */
const MAX_FREE = 32;

const free: Buffer[] = [];
/** holds per pooled block, by its memory */
const holds = new WeakMap<ArrayBufferLike, { block: Buffer; count: number }>();
/** dates whose holds were given back: never twice */
const released = new WeakSet<DayData>();

/** A block of BLOCK_BYTES, held once (by the scanner that writes into it). */
export function takeBlock(): Buffer {
  const block = free.pop() ?? Buffer.allocUnsafe(BLOCK_BYTES);
  holds.set(block.buffer, { block, count: 1 });
  return block;
}

/** One more hold on the block `text` is cut from (a segment of it handed out); nothing for other buffers. */
export function holdBlock(text: Buffer): void {
  const hold = holds.get(text.buffer);
  if (hold) hold.count += 1;
}

/** Gives back one hold on the block `text` is cut from; the last one makes it free. */
export function releaseBlock(text: Buffer): void {
  const hold = holds.get(text.buffer);
  if (!hold || hold.count <= 0) return;
  hold.count -= 1;
  if (hold.count > 0) return;
  holds.delete(text.buffer);
  if (free.length < MAX_FREE) free.push(hold.block);
}

/**
 * Gives back the holds of a date's row text, once it is written (or refused) and nothing will
 * read it again; a second call for the same date does nothing.
 */
export function releaseDay(day: DayData): void {
  if (released.has(day)) return;
  released.add(day);
  for (const text of day.text) releaseBlock(text);
}
