/**
 * A runReport page from its response bytes straight to row text (rowText.ts), one segment per
 * date, without parsing the rows into objects.
 *
 * Why: in a proto3 JSON page every value is an object of its own (`{"value":"38"}`), so
 * `JSON.parse` builds some twenty objects per row, to be converted to one more object per row and
 * held until stored. On a 1,000,000-row backfill that parse and the garbage collection it causes
 * are most of the collector's CPU, and the parsed pages, promoted to the old generation while the
 * previous batch is written, most of its memory (profiled). Here the `rows` array is read byte by
 * byte and each value copied to the output as it is; the only objects made are one per date. The
 * rest of the response (headers, rowCount, metadata, quota) is small and goes through
 * `JSON.parse` and `parsePage`'s checks.
 *
 * The scanner (rowScanner.ts, reading bytes with jsonBytes.ts) knows the layout Google sends:
 * the fields of `Row`, `DimensionValue` and `MetricValue` in proto order, any whitespace, any
 * escapes, UTF-8. Anything else (an unknown field, a truncated body, bytes that are not UTF-8)
 * makes it give up, and the whole body goes through `JSON.parse` and `parsePage` instead: never a
 * wrong row, at worst the slower path. The values are checked as `parsePage` checks them: the
 * date, its range and order, integer and numeric metrics; and a page the scanner finds fault with
 * is read again by the slow path, so the error (or the rows) are always the slow path's.
 * test/pageRowsProperty.test.ts checks the two paths against each other on generated bodies.
 */
import { isUtf8 } from 'node:buffer';
import type { ReportDefinition } from '../config/index.js';
import type { CallContext } from './callContext.js';
import { topLevel, withoutRows } from './jsonBytes.js';
import { parseJson, parsePage, unordered, type RunReportResponse } from './responses.js';
import { NotScannable, RowScanner, metricTypes } from './rowScanner.js';
import { segmentsOf, type DaySegment } from './rowText.js';
import type { ResponseMeta } from './types.js';

export interface PageRows {
  /** rows in this page */
  rows: number;
  /** this page's rows as row text, one segment per date, in date order (when read as ordered;
   * else one segment per run of rows of the same date, in page order) */
  segments: DaySegment[];
  /** rows of the whole listing, as the response says */
  rowCount: number;
  meta: ResponseMeta;
  /** the response without its rows (quota, headers, metadata) */
  response: RunReportResponse;
  /** false when the body took the slow path (JSON.parse) */
  scanned: boolean;
}

export interface ReadOptions {
  /**
   * true (the default): rows must come in date order, else RetryableError code `unordered`;
   * false: any order (the buffered read of an endpoint that ignores orderBys).
   */
  ordered?: boolean;
}

/**
 * The rows of a response body as row text, and the rest of the response; see the module comment.
 * Dimension values PostgreSQL cannot hold are made storable (rowText.ts storableText) and counted
 * in the segments' `sanitized`.
 * @throws RetryableError code `bad_response` for a body that is not a usable page (not JSON,
 *   malformed, a date out of range), `unordered` for rows out of date order when `ordered`
 */
export function parsePageBytes(body: Buffer, def: ReportDefinition, start: string, end: string, ctx: CallContext, opts: ReadOptions = {}): PageRows {
  const ordered = opts.ordered ?? true;
  // the scanner copies bytes as they are: only valid UTF-8 may be copied (the slow path decodes
  // anything else with replacement characters, as JSON.parse of the decoded text sees it)
  const layout = isUtf8(body) ? topLevel(body) : null;
  if (layout === null) return parsed(body, def, start, end, ctx, ordered);
  try {
    const scanner = new RowScanner(body, layout.rowsOpen, def, start, end, ctx, metricTypes(body, layout.metricHeaders, def.metrics.length), ordered);
    scanner.run();
    return scannedPage(parseJson(withoutRows(body, layout.rowsKey, scanner.position), ctx), scanner, def, start, end, ctx);
  } catch {
    // A layout the scanner does not know, or a page it finds fault with: the slow path reads it
    // and has the last word, so both paths give the same rows and the same errors. Bad pages are
    // rare; reading them twice costs nothing that matters.
    return parsed(body, def, start, end, ctx, ordered);
  }
}

/**
 * A page whose rows the scanner read: the rest of the body (`res`, the body without its rows,
 * parsed) gets the checks of a parsed page.
 * @throws NotScannable when the rest contradicts what the scanner assumed; what parsePage throws
 */
export function scannedPage(res: RunReportResponse, scanner: RowScanner, def: ReportDefinition, start: string, end: string, ctx: CallContext): PageRows {
  // a second rows field: JSON.parse keeps the last one, and so does the slow path
  if ('rows' in res) throw new NotScannable();
  // headers, rowCount and metadata get the same checks as a parsed page (it has no rows now)
  const page = parsePage(res, def, start, end, ctx);
  const integer = (res.metricHeaders ?? []).map((header) => header.type === 'TYPE_INTEGER');
  // the scanner read the metric types ahead; should it have misread them, parse instead
  if (integer.some((isInteger, index) => isInteger !== scanner.integer[index])) throw new NotScannable();
  return { rows: scanner.rowsSeen, segments: scanner.segments(), rowCount: page.rowCount, meta: page.meta, response: res, scanned: true };
}

/** The slow path: JSON.parse, parsePage, then row text. */
function parsed(body: Buffer, def: ReportDefinition, start: string, end: string, ctx: CallContext, ordered: boolean): PageRows {
  const res = parseJson(body, ctx);
  const page = parsePage(res, def, start, end, ctx);
  const segments = segmentsOf(ctx.propertyId, page.rows);
  if (ordered) {
    for (let index = 1; index < segments.length; index++) {
      if (segments[index]!.date < segments[index - 1]!.date) throw unordered(ctx);
    }
  }
  const { rows: _rows, ...rest } = res;
  return { rows: page.rows.length, segments, rowCount: page.rowCount, meta: page.meta, response: rest, scanned: false };
}
