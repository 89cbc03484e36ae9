/**
 * The pool of row text blocks (ga4/rowTextBlocks.ts): a block is taken again only once nothing
 * holds it (the scanner writing into it, each segment cut from it), a date's holds are given back
 * once however often it is released, and buffers that are not pooled blocks are left alone. Then
 * through the real reader (PageStream, dayOf): a date not yet released keeps its row text intact
 * while later pages are scanned into recycled blocks, and its blocks are recycled once it is.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import type { ReportDefinition } from '../src/config/index.js';
import { parsePageBytes, type PageRows } from '../src/ga4/pageRows.js';
import { PageStream } from '../src/ga4/pageStream.js';
import { dayOf } from '../src/ga4/responses.js';
import { BLOCK_BYTES, holdBlock, releaseBlock, releaseDay, takeBlock } from '../src/ga4/rowTextBlocks.js';
import type { DayData } from '../src/ga4/types.js';

const META = { timeZone: 'UTC', currencyCode: 'USD', dataLossFromOtherRow: false, subjectToThresholding: false, sampling: [] };
/** a date whose row text is cut from `block` in `pieces` segments */
const dayIn = (date: string, block: Buffer, pieces = 1): DayData => {
  const text = Array.from({ length: pieces }, (_, k) => block.subarray(k * 10, k * 10 + 10));
  for (const piece of text) holdBlock(piece);
  return { date, rowCount: pieces, text, meta: META };
};
/** takes `n` blocks (kept): the pool is then empty, and what is taken next is new or given back since */
const drain = (n: number): Buffer[] => Array.from({ length: n }, () => takeBlock());

describe('row text blocks: the pool', () => {
  it('a block is taken again only once the scanner and every segment cut from it let go', () => {
    drain(40);
    const block = takeBlock();
    assert.equal(block.length, BLOCK_BYTES);
    const first = block.subarray(0, 100);
    const second = block.subarray(100, 250);
    holdBlock(first);
    holdBlock(second);
    releaseBlock(block); // the scanner moves on
    releaseBlock(first); // one segment stored
    const other = takeBlock();
    assert.notEqual(other.buffer, block.buffer, 'a block a segment still holds is not taken');
    releaseBlock(other);
    releaseBlock(second); // the last one
    const again = takeBlock();
    assert.equal(again.buffer, block.buffer, 'the free block is taken again');
    // and the one freed before it is next
    assert.equal(takeBlock().buffer, other.buffer);
  });

  it('a date released twice gives its holds back once', () => {
    drain(40);
    const block = takeBlock();
    const one = dayIn('2025-03-01', block, 2); // two segments, two holds
    const two = dayIn('2025-03-02', block);
    releaseBlock(block);
    releaseDay(one);
    releaseDay(one);
    releaseDay(one);
    const other = takeBlock();
    assert.notEqual(other.buffer, block.buffer, 'the other date still holds the block');
    releaseDay(two);
    assert.equal(takeBlock().buffer, block.buffer, 'free once the last date lets go');
  });

  it('a block released more often than it was held is put back once, not twice', () => {
    drain(40);
    const block = takeBlock();
    releaseBlock(block);
    releaseBlock(block);
    releaseBlock(block.subarray(5, 9));
    assert.equal(takeBlock().buffer, block.buffer);
    assert.notEqual(takeBlock().buffer, block.buffer, 'handed out once');
  });

  it('buffers that are not pooled blocks are neither held nor put in the pool', () => {
    drain(40);
    const foreign = [Buffer.allocUnsafe(BLOCK_BYTES), Buffer.alloc(16), Buffer.from('row text\n')];
    for (const buffer of foreign) {
      holdBlock(buffer);
      releaseBlock(buffer);
      releaseBlock(buffer);
    }
    releaseDay({ date: '2025-03-01', rowCount: 1, text: foreign, meta: META });
    const taken = drain(8).map((b) => b.buffer);
    for (const buffer of foreign) assert.ok(!taken.includes(buffer.buffer), 'a foreign buffer is never handed out as a block');
    const bytes = Buffer.from('row text\n');
    assert.deepEqual(foreign[2], bytes, 'and never written into');
  });
});

// ---------------------------------------------------------------- through the reader

const ctx = { propertyId: '7', tokens: null as never, logger: pino({ level: 'silent' }) };
const def: ReportDefinition = { name: 'r', dimensions: ['pagePath'], metrics: ['sessions'], startDate: '30daysAgo', refreshDays: 3 };

/** A page of `perDate` rows for each date, every value tagged with `tag` (so pages differ). */
function body(tag: string, dates: string[], perDate: number): Buffer {
  const rows = dates.flatMap((date) =>
    Array.from({ length: perDate }, (_, i) => ({
      dimensionValues: [{ value: date.replace(/-/g, '') }, { value: `/${tag}/${'x'.repeat(40)}/${i}` }],
      metricValues: [{ value: String(i) }],
    })),
  );
  return Buffer.from(
    JSON.stringify({
      dimensionHeaders: [{ name: 'date' }, { name: 'pagePath' }],
      metricHeaders: [{ name: 'sessions', type: 'TYPE_INTEGER' }],
      rows,
      rowCount: rows.length,
      metadata: { timeZone: 'UTC', currencyCode: 'USD' },
    }),
  );
}

/** The page read as it arrives, in chunks of 64 KiB (as a socket hands them over). */
function stream(b: Buffer): PageRows {
  const reader = new PageStream(def, '2025-03-01', '2025-03-31', ctx);
  for (let at = 0; at < b.length; at += 65536) reader.push(Buffer.from(b.subarray(at, at + 65536)));
  return reader.finish();
}

/** Each date of a page as the page loop hands it on. */
function days(page: PageRows): DayData[] {
  const dates = [...new Set(page.segments.map((s) => s.date))];
  return dates.map((date) =>
    dayOf(
      ctx,
      def,
      date,
      page.segments.filter((s) => s.date === date),
      page.meta,
    ),
  );
}

/** pooled blocks are BLOCK_BYTES long; a page's first window gets one of its own size */
const pooled = (text: Buffer) => text.buffer.byteLength === BLOCK_BYTES;

describe('row text blocks: through PageStream and dayOf', () => {
  it('a date not yet released keeps its row text while later pages are scanned into recycled blocks', () => {
    drain(40);
    const short = stream(body('short', ['2025-03-01'], 20));
    assert.ok(!short.segments.some((s) => pooled(s.text)), 'a page of one window holds no pooled block');
    // the second date's rows come after the first window: in pooled blocks
    const first = stream(body('first', ['2025-03-01', '2025-03-02'], 1000));
    const [stored, held] = days(first);
    const heldBlocks = new Set(held!.text.filter(pooled).map((t) => t.buffer));
    assert.ok(heldBlocks.size > 0, 'the held date is in a pooled block');
    const heldText = Buffer.concat(held!.text);
    const want = parsePageBytes(body('first', ['2025-03-02'], 1000), def, '2025-03-01', '2025-03-31', ctx).segments[0]!.text;
    assert.deepEqual(heldText, want, 'read right to begin with');
    releaseDay(stored!);

    const seenBlocks: ArrayBufferLike[] = [];
    for (let n = 0; n < 12; n++) {
      const page = stream(body(`later${n}`, ['2025-03-03', '2025-03-04', '2025-03-05'], 1500));
      for (const segment of page.segments.filter((s) => pooled(s.text))) {
        assert.ok(!heldBlocks.has(segment.text.buffer), `page ${n}: no row text written into a block a date still holds`);
        seenBlocks.push(segment.text.buffer);
      }
      for (const day of days(page)) releaseDay(day);
      assert.deepEqual(Buffer.concat(held!.text), heldText, `after page ${n}: the held date's row text is intact`);
    }
    assert.ok(seenBlocks.length >= 24, `later pages wrote into pooled blocks (${seenBlocks.length} segments)`);
    assert.ok(new Set(seenBlocks).size <= 4, `and reused the blocks earlier ones gave back (${new Set(seenBlocks).size} blocks)`);

    releaseDay(held!);
    const next = stream(body('next', ['2025-03-06'], 1500));
    assert.ok(
      next.segments.some((s) => heldBlocks.has(s.text.buffer)),
      'once released, its block is taken again',
    );
  });

  it('a date continued over several blocks gives every pooled one back, once', () => {
    drain(40);
    const page = stream(body('long', ['2025-03-10'], 12_000));
    const blocks = [...new Set(page.segments.map((s) => s.text.buffer))];
    assert.ok(page.segments.length >= 3 && page.segments.slice(1).every((s) => s.continued), 'one date, continued in new blocks');
    assert.equal(blocks.length, page.segments.length, 'a segment per block');
    const inPool = page.segments.filter((s) => pooled(s.text)).map((s) => s.text.buffer);
    assert.ok(inPool.length >= 2, 'pooled blocks after the first window');
    const [day] = days(page);
    assert.equal(day!.rowCount, 12_000);
    releaseDay(day!);
    releaseDay(day!);
    const taken = drain(inPool.length + 2).map((b) => b.buffer);
    for (const block of inPool) assert.equal(taken.filter((b) => b === block).length, 1, 'each pooled block back in the pool once');
    assert.ok(!taken.includes(page.segments[0]!.text.buffer), "the first window's own block is not pooled");
  });
});
