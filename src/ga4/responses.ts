/**
 * What the Data API answers, checked and converted, below the page loop (report.ts) and the byte
 * scanner (pageRows.ts): a page's shape and rows (parsePage), metric values (metricValue), and the
 * checks across the pages of one listing (Listing, dayOf).
 *
 * Nothing that fails a check ever becomes data: each failure is a RetryableError whose code says
 * what to do about it (errors.ts RetryCode): `bad_response` (ask for the page again),
 * `inconsistent_pages` (read the listing again), `unordered` (read the range whole). A metric value its column cannot hold (`"1.5"` for an
 * integer) is no such failure: it is Google's data, so its date is marked (types.ts Unstorable)
 * and refused by the store, never retried.
 */
import type { analyticsdata_v1beta } from '@googleapis/analyticsdata';
import type { ReportDefinition } from '../config/index.js';
import { RetryableError } from '../errors.js';
import type { CallContext } from './callContext.js';
import { addSanitized, rowKeys, storableText, type DaySegment, type Sanitized } from './rowText.js';
import type { DayData, PropertyQuota, ReportRow, ResponseMeta, Unstorable } from './types.js';

export type RunReportResponse = analyticsdata_v1beta.Schema$RunReportResponse;
export type MetadataResponse = analyticsdata_v1beta.Schema$Metadata;

/** A page that is no usable answer (retried like a 5xx). */
export function malformed(ctx: CallContext, what: string): RetryableError {
  return new RetryableError(`runReport for property ${ctx.propertyId}: malformed response (${what})`, 'bad_response');
}

/** A row dated outside the range asked for: a page of some other request. */
export function outOfRange(ctx: CallContext, date: string, start: string, end: string): RetryableError {
  return new RetryableError(`runReport for property ${ctx.propertyId}: row dated ${date} outside the requested ${start}..${end}`, 'bad_response');
}

/** Rows out of date order: the page loop reads the range whole instead. */
export function unordered(ctx: CallContext): RetryableError {
  return new RetryableError(`runReport for property ${ctx.propertyId}: rows are not ordered by date`, 'unordered');
}

/**
 * A page body as a JSON object.
 * @throws RetryableError code `bad_response` for a body that is not JSON (truncated, a proxy's
 *   page) or not an object
 */
export function parseJson(body: Buffer, ctx: CallContext): RunReportResponse {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new RetryableError(`runReport for property ${ctx.propertyId}: response body is not JSON (truncated, or a proxy's page?)`, 'bad_response', undefined, {
      cause: err,
    });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw malformed(ctx, 'body is not an object');
  return parsed as RunReportResponse;
}

/** A decimal number as JSON, JavaScript and PostgreSQL all read it (and `.5`, `5.`); no hex, no Infinity. */
const DECIMAL = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

// eslint-disable-next-line no-control-regex -- control characters are exactly what must be found
const COPY_BREAKING = /[\u0000-\u001f\\]/;

/**
 * A metric value as stored: integers stay decimal strings (bigint-safe), the rest become numbers.
 * Google sends every value as a string. One its column cannot hold (`"1.5"` or `""` for an
 * integer, `"abc"` or `"NaN"` for any) is Google's data, not a bad page: asking again gives it
 * again. It is handed to `unstorable` and returned as sent, and the date that holds it is refused
 * (types.ts Unstorable). Only a value that would break the row text (a control character: tab,
 * newline, NUL; a backslash) or is no string at all is a malformed response, made by `bad`.
 */
export function metricValue(raw: unknown, integer: boolean, bad: (what: string) => Error, unstorable: (value: string) => void): string | number {
  if (raw !== null && raw !== undefined && typeof raw !== 'string' && typeof raw !== 'number')
    throw bad(`${integer ? 'integer ' : ''}metric value ${JSON.stringify(raw)}`);
  const text = String(raw ?? '0');
  if (COPY_BREAKING.test(text)) throw bad(`${integer ? 'integer ' : ''}metric value ${JSON.stringify(text)}`);
  if (integer) {
    // digits beyond bigint's range are kept as sent: PostgreSQL refuses them, failing that date alone
    if (!/^-?\d+$/.test(text)) unstorable(text);
    return text;
  }
  if (!DECIMAL.test(text)) {
    unstorable(text);
    return text;
  }
  const value = Number(text);
  // A number beyond a double's range (1e400) is kept as sent, never stored as Infinity:
  // PostgreSQL refuses it, failing that date alone.
  return Number.isFinite(value) ? value : text;
}

/** The response metadata ga-collector keeps (the ledger's and status page's), with proto3's omitted fields filled in. */
function responseMeta(metadata: RunReportResponse['metadata']): ResponseMeta {
  const md = metadata ?? {};
  return {
    timeZone: md.timeZone ?? null,
    currencyCode: md.currencyCode ?? null,
    dataLossFromOtherRow: md.dataLossFromOtherRow === true,
    subjectToThresholding: md.subjectToThresholding === true,
    sampling: (md.samplingMetadatas ?? []).map((sampling) => ({
      samplesReadCount: sampling.samplesReadCount ?? null,
      samplingSpaceSize: sampling.samplingSpaceSize ?? null,
    })),
  };
}

export interface Page {
  rows: ReportRow[];
  /** rows of the whole listing, as the response says */
  rowCount: number;
  meta: ResponseMeta;
}

/**
 * Checks a response's shape against the request (reportPageRequest: `date` then the definition's
 * dimensions, its metrics) and converts its rows; dates must lie in [start, end].
 * @throws RetryableError code `bad_response` for anything off: never data
 */
export function parsePage(res: RunReportResponse, def: ReportDefinition, start: string, end: string, ctx: CallContext): Page {
  const bad = (what: string) => malformed(ctx, what);
  if (typeof res !== 'object' || res === null) throw bad('body is not an object');
  const dimensionNames = (res.dimensionHeaders ?? []).map((header) => header.name);
  const metricHeaders = res.metricHeaders ?? [];
  const wantDimensions = ['date', ...def.dimensions];
  if (dimensionNames.length !== wantDimensions.length || dimensionNames.some((name, index) => name !== wantDimensions[index])) {
    throw bad(`dimension headers ${JSON.stringify(dimensionNames)}`);
  }
  if (metricHeaders.length !== def.metrics.length || metricHeaders.some((header, index) => header.name !== def.metrics[index])) {
    throw bad(`metric headers ${JSON.stringify(metricHeaders.map((header) => header.name))}`);
  }
  const integer = metricHeaders.map((header) => header.type === 'TYPE_INTEGER');
  const rowCount = res.rowCount === undefined || res.rowCount === null ? 0 : Number(res.rowCount);
  if (!Number.isInteger(rowCount) || rowCount < 0) throw bad('rowCount');
  const rawRows = res.rows ?? [];
  if (!Array.isArray(rawRows)) throw bad('rows is not a list');
  const rows: ReportRow[] = rawRows.map((row) => {
    const dimensionValues = row.dimensionValues ?? [];
    const metricValues = row.metricValues ?? [];
    if (dimensionValues.length !== wantDimensions.length || metricValues.length !== def.metrics.length) throw bad('row width');
    const rawDate = dimensionValues[0]?.value ?? '';
    if (!/^\d{8}$/.test(rawDate)) throw bad(`date value ${JSON.stringify(rawDate)}`);
    const date = `${rawDate.slice(0, 4)}-${rawDate.slice(4, 6)}-${rawDate.slice(6, 8)}`;
    if (date < start || date > end) throw outOfRange(ctx, date, start, end);
    let unstorable: Unstorable | undefined;
    const metrics = metricValues.map((metric, index) =>
      metricValue(metric.value, integer[index]!, bad, (value) => void (unstorable ??= { metric: index, value })),
    );
    let sanitized: string[] | undefined;
    const dims = dimensionValues.slice(1).map((dimension, index) => {
      const value = dimension.value ?? '';
      const storable = typeof value === 'string' ? storableText(value) : null;
      if (storable === null) return value;
      (sanitized ??= []).push(def.dimensions[index]!);
      return storable;
    });
    return { date, dims, metrics, ...(sanitized ? { sanitized } : {}), ...(unstorable ? { unstorable } : {}) };
  });
  return { rows, rowCount, meta: responseMeta(res.metadata) };
}

export interface ListingHooks {
  /** called with every response's propertyQuota */
  onQuota?: (quota: PropertyQuota) => void;
  /** called with the response metadata of the first page */
  onMeta?: (meta: ResponseMeta) => void;
}

/**
 * Where one listing (the pages of one request) stands, and the checks every page must pass:
 * the same rowCount on each, no empty page before rowCount rows have come, never more rows.
 * Hands each page's quota and the first page's metadata to the caller. A failed check is a
 * RetryableError with code `inconsistent_pages`: the listing changed while it was read.
 */
export class Listing {
  /** rows received so far: the next page's offset */
  offset = 0;
  /** the first page's response metadata */
  meta: ResponseMeta | null = null;
  private expected: number | null = null;

  constructor(
    private readonly ctx: CallContext,
    private readonly hooks: ListingHooks,
  ) {}

  /** Accounts a page; true when every row of the listing has arrived. */
  take(res: RunReportResponse, rowCount: number, rows: number, meta: ResponseMeta): boolean {
    const who = `runReport for property ${this.ctx.propertyId}`;
    if (res.propertyQuota) this.hooks.onQuota?.(res.propertyQuota as PropertyQuota);
    if (this.meta === null) {
      this.meta = meta;
      this.hooks.onMeta?.(meta);
    }
    if (this.expected === null) this.expected = rowCount;
    else if (rowCount !== this.expected) {
      throw new RetryableError(
        `${who}: rowCount changed between pages (${this.expected} -> ${rowCount}): the data changed while it was read`,
        'inconsistent_pages',
      );
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
 * One complete date from its segments (one per page it spans). The same row on two pages means the
 * pages overlapped: the data shifted between requests (RetryableError `inconsistent_pages`).
 */
export function dayOf(ctx: CallContext, def: ReportDefinition, date: string, segments: DaySegment[], meta: ResponseMeta): DayData {
  // rows of one page are told apart by the page's order; only a date over several pages is checked
  if (segments.filter((segment) => !segment.continued).length > 1) {
    const seen = new Set<string>();
    for (const segment of segments) {
      for (const key of rowKeys(segment.text, def.dimensions.length)) {
        if (seen.has(key)) {
          throw new RetryableError(
            `runReport for property ${ctx.propertyId}: ${date} has the same row on two pages (the data changed while it was read)`,
            'inconsistent_pages',
          );
        }
        seen.add(key);
      }
    }
  }
  let rowCount = 0;
  let sanitized: Sanitized | undefined;
  let unstorable: Unstorable | undefined;
  for (const segment of segments) {
    rowCount += segment.rows;
    sanitized = addSanitized(sanitized, segment.sanitized);
    unstorable ??= segment.unstorable;
  }
  return { date, rowCount, text: segments.map((segment) => segment.text), meta, ...(sanitized ? { sanitized } : {}), ...(unstorable ? { unstorable } : {}) };
}
