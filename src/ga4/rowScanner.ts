/**
 * The row scanner: reads the `rows` array of a runReport body byte by byte and writes row text
 * (rowText.ts) as it goes, one segment per date, making no object per row or value. It knows the
 * layout Google sends: the fields of `Row`, `DimensionValue` and `MetricValue` in proto order, any
 * whitespace, any escapes, UTF-8. Anything else throws NotScannable, and the page takes the slow
 * path (pageRows.ts); a value it finds fault with throws the same RetryableError parsePage would.
 *
 * It reads a whole body (run) or a body as it arrives (scan, from pageStream.ts): each window of
 * bytes is read up to its last complete row, and a row cut by the window's end is read again,
 * whole, from the next window (the scanner's state is rewound to the row's start). Row text goes
 * into blocks: a block is started between windows when the one in hand has no room for a window's
 * rows, so a page's text is never copied to grow; a date that goes on in a new block gets a
 * segment there marked `continued`.
 */
import type { ReportDefinition } from '../config/index.js';
import type { CallContext } from './callContext.js';
import {
  BACKSLASH,
  COLON,
  COMMA,
  LBRACE,
  LBRACKET,
  MINUS,
  NEWLINE,
  NINE,
  QUOTE,
  RBRACE,
  RBRACKET,
  TAB,
  ZERO,
  copyBytes,
  isIntegerText,
  isPlainDecimal,
  skipValue,
  skipWhitespace,
} from './jsonBytes.js';
import { malformed, metricValue, outOfRange, unordered } from './responses.js';
import { copyText, metricField, storableText } from './rowText.js';
import { RowTextSegments } from './rowSegments.js';

/**
 * The body is not in the layout the scanner knows: parse it instead. A signal between the scanner
 * and parsePageBytes, which catches it; it never leaves pageRows.ts, so it is no error kind of
 * errors.ts.
 */
export class NotScannable extends Error {
  /** @param reason what the scanner found, when it is more than the layout */
  constructor(reason = 'the body is not in the layout the row scanner reads') {
    super(reason);
  }
}

const KEY_DIMENSION_VALUES = Buffer.from('"dimensionValues"');
const KEY_METRIC_VALUES = Buffer.from('"metricValues"');
const KEY_VALUE = Buffer.from('"value"');

/** Bytes before a window's end within which a row is checked to be whole before it is read. */
const WHOLE_ROW_CHECK = 2048;

/** Where in the rows array the scanner is: just after its `[`, after a row, or after a comma. */
const FIRST = 0;
const AFTER_ROW = 1;
const BEFORE_ROW = 2;

/** Reads the rows array from its `[` and writes row text; `position` ends after the `]`. */
export class RowScanner extends RowTextSegments {
  /** where in the body (or the window) the scanner is */
  position: number;
  rowsSeen = 0;
  /** metric types as read from the metric headers, checked against the parsed rest */
  readonly integer: boolean[];
  private where = FIRST;
  /** `property_id` and its tab: the start of every row */
  private readonly prefix: Buffer;
  private readonly dimensionCount: number;
  private readonly metricCount: number;
  /** the span of the last value read (valueSpan) */
  private from = 0;
  private to = 0;
  private escaped = false;
  /**
   * @param bytes the whole body (run), or the first window (scan)
   * @param rowsOpen where the rows array's `[` is in `bytes`
   */
  constructor(
    private bytes: Buffer,
    rowsOpen: number,
    private readonly def: ReportDefinition,
    private readonly start: string,
    private readonly end: string,
    private readonly ctx: CallContext,
    integer: boolean[],
    private readonly ordered: boolean,
  ) {
    super();
    this.dimensionCount = def.dimensions.length;
    this.metricCount = def.metrics.length;
    this.integer = integer;
    this.prefix = Buffer.from(`${copyText(ctx.propertyId)}\t`);
    this.position = rowsOpen + 1;
  }

  /** Reads the whole rows array of the body given; `position` ends after its `]`. */
  run(): void {
    // row text is about half as long as the JSON it comes from, and never longer per value
    this.startBlock((this.bytes.length >> 1) + 1024, false);
    if (!this.rows(true)) throw new NotScannable();
  }

  /**
   * Reads the complete rows of `window` from `from` on: the first window holds the rows' `[` at
   * `rowsOpen` (from is then `rowsOpen + 1`), each next one the bytes of the window before from its
   * `position` on, then new ones (from 0). Returns true when the rows array ended (`position` just
   * after its `]`), false when more bytes are needed (`position` where the next window takes over).
   * With `last`, the window is the body's end: a row it cuts is a fault.
   * @throws NotScannable or the RetryableError of a value, as run does
   */
  scan(window: Buffer, from: number, last: boolean): boolean {
    this.bytes = window;
    this.position = from;
    // a window's rows take fewer bytes as row text than as JSON: room for them in one block
    const room = window.length - this.position + 1024;
    // the first window gets a block of its own size: a short page, often the whole body, holds no more
    if (this.out.length - this.outLength < room) this.startBlock(room, this.out.length > 0);
    return this.rows(last);
  }

  /** The loop of scan and run over `bytes`. */
  private rows(last: boolean): boolean {
    const bytes = this.bytes;
    for (;;) {
      const at = skipWhitespace(bytes, this.position);
      if (at >= bytes.length) {
        if (last) throw new NotScannable();
        this.position = at;
        return false;
      }
      if (this.where === AFTER_ROW || (this.where === FIRST && bytes[at] === RBRACKET)) {
        this.position = at + 1;
        if (bytes[at] === RBRACKET) {
          this.closeDay();
          return true;
        }
        if (bytes[at] !== COMMA) throw new NotScannable();
        this.where = BEFORE_ROW;
        continue;
      }
      this.position = at;
      // near the window's end, a row is read only once it is whole (a row cut short would throw,
      // and throwing is slow); a longer row cut by the end throws and is caught below
      if (!last && bytes.length - at < WHOLE_ROW_CHECK && skipValue(bytes, at) < 0) return false;
      this.mark();
      try {
        this.row();
      } catch (err) {
        // cut by the window's end: read again, whole, from the next window
        if (!last && skipValue(bytes, at) < 0) {
          this.position = at;
          this.rewind();
          return false;
        }
        throw err;
      }
      this.where = AFTER_ROW;
    }
  }

  /** `{"dimensionValues":[...],"metricValues":[...]}` */
  private row(): void {
    this.expect(LBRACE);
    this.key(KEY_DIMENSION_VALUES);
    this.expect(LBRACKET);
    this.ensure(this.prefix.length + 16);
    this.outLength = copyBytes(this.prefix, 0, this.prefix.length, this.out, this.outLength);
    this.dateValue();
    for (let dimension = 0; dimension < this.dimensionCount; dimension++) {
      this.expect(COMMA);
      this.value(false, false, dimension);
    }
    this.expect(RBRACKET);
    this.expect(COMMA);
    this.key(KEY_METRIC_VALUES);
    this.expect(LBRACKET);
    for (let metric = 0; metric < this.metricCount; metric++) {
      if (metric > 0) this.expect(COMMA);
      this.value(true, this.integer[metric]!, metric);
    }
    this.expect(RBRACKET);
    this.expect(RBRACE);
    this.out[this.outLength++] = NEWLINE;
    this.rowsSeen++;
    this.segmentRows++;
  }

  /** The next non-blank byte must be `byte`. */
  private expect(byte: number): void {
    const at = skipWhitespace(this.bytes, this.position);
    if (this.bytes[at] !== byte) throw new NotScannable();
    this.position = at + 1;
  }

  /** `"name" :` */
  private key(name: Buffer): void {
    const bytes = this.bytes;
    const at = skipWhitespace(bytes, this.position);
    // a loop, not Buffer#compare: a native call per value costs more than the bytes
    for (let offset = 0; offset < name.length; offset++) if (bytes[at + offset] !== name[offset]) throw new NotScannable();
    this.position = at + name.length;
    this.expect(COLON);
  }

  /**
   * `{"value": "..."}` or `{}` (proto3 leaves an empty value out): false for `{}`, else true with
   * the string's span in `from`/`to` (fields, not a returned object: this runs for every value).
   */
  private valueSpan(): boolean {
    const bytes = this.bytes;
    this.expect(LBRACE);
    let at = skipWhitespace(bytes, this.position);
    if (bytes[at] === RBRACE) {
      this.position = at + 1;
      return false;
    }
    this.position = at;
    this.key(KEY_VALUE);
    at = skipWhitespace(bytes, this.position);
    if (bytes[at] !== QUOTE) throw new NotScannable();
    const from = at + 1;
    let escaped = false;
    for (at = from; ; at++) {
      const byte = bytes[at];
      if (byte === QUOTE) break;
      if (byte === BACKSLASH) {
        escaped = true;
        at++;
      } else if (byte === undefined || byte < 32) {
        throw new NotScannable();
      }
    }
    this.position = at + 1;
    this.expect(RBRACE);
    this.from = from;
    this.to = at;
    this.escaped = escaped;
    return true;
  }

  /** The date dimension: yyyymmdd, in range, dates in order; starts a segment when it changes. */
  private dateValue(): void {
    const present = this.valueSpan();
    const { bytes, from, to, escaped } = this;
    // escaped digits are valid JSON that Google never sends: the slow path reads them
    if (present && escaped) throw new NotScannable();
    let day = 0;
    if (present && to - from === 8) {
      for (let at = from; at < to; at++) {
        const byte = bytes[at]!;
        if (byte < ZERO || byte > NINE) {
          day = -1;
          break;
        }
        day = day * 10 + (byte - ZERO);
      }
    } else {
      day = -1;
    }
    if (day < 0) throw malformed(this.ctx, `date value ${JSON.stringify(present ? bytes.toString('utf8', from, to) : '')}`);
    if (day !== this.day) {
      const date = `${String(Math.floor(day / 10000)).padStart(4, '0')}-${String(Math.floor(day / 100) % 100).padStart(2, '0')}-${String(day % 100).padStart(2, '0')}`;
      if (date < this.start || date > this.end) throw outOfRange(this.ctx, date, this.start, this.end);
      if (day < this.day && this.ordered) throw unordered(this.ctx);
      // the row's prefix is already written: the previous segment ends and this one starts before it
      const rowStart = this.outLength - this.prefix.length;
      this.beginDay(day, date, rowStart);
    }
    const at = this.outLength;
    const out = this.out;
    out[at] = bytes[from]!;
    out[at + 1] = bytes[from + 1]!;
    out[at + 2] = bytes[from + 2]!;
    out[at + 3] = bytes[from + 3]!;
    out[at + 4] = MINUS;
    out[at + 5] = bytes[from + 4]!;
    out[at + 6] = bytes[from + 5]!;
    out[at + 7] = MINUS;
    out[at + 8] = bytes[from + 6]!;
    out[at + 9] = bytes[from + 7]!;
    this.outLength = at + 10;
  }

  /** A dimension or metric value (`index` its index among them), tab first. */
  private value(metric: boolean, integer: boolean, index: number): void {
    const present = this.valueSpan();
    const { bytes, from, to, escaped } = this;
    if (!present) {
      // an omitted value: '' for a dimension, 0 for a metric (as parsePage reads them)
      this.ensure(2);
      this.out[this.outLength++] = TAB;
      if (metric) this.out[this.outLength++] = ZERO;
      return;
    }
    if (!escaped && (!metric || (integer ? isIntegerText(bytes, from, to) : isPlainDecimal(bytes, from, to)))) {
      this.ensure(to - from + 1);
      this.out[this.outLength++] = TAB;
      this.outLength = copyBytes(bytes, from, to, this.out, this.outLength);
      return;
    }
    this.rareValue(metric, integer, index);
  }

  /**
   * The rare values: escapes, exponents, or not numbers at all (metricValue decides, as parsePage
   * does: malformed, or kept as sent and its date refused). A method of its own so that value(),
   * which runs for every value, stays small enough to be inlined.
   */
  private rareValue(metric: boolean, integer: boolean, index: number): void {
    const { bytes, from, to, escaped } = this;
    let text = escaped ? (JSON.parse(bytes.toString('utf8', from - 1, to + 1)) as string) : bytes.toString('utf8', from, to);
    if (!metric && escaped) {
      // only an escape can carry U+0000 or a lone surrogate (the body is valid UTF-8)
      const storable = storableText(text);
      if (storable !== null) {
        text = storable;
        this.segmentSanitized++;
        const name = this.def.dimensions[index]!;
        if (!this.segmentSanitizedDimensions.includes(name)) this.segmentSanitizedDimensions.push(name);
      }
    }
    const field = metric
      ? metricField(
          metricValue(
            text,
            integer,
            (what) => malformed(this.ctx, what),
            (value) => void (this.segmentUnstorable ??= { metric: index, value }),
          ),
        )
      : copyText(text);
    const length = Buffer.byteLength(field);
    this.ensure(length + 1);
    this.out[this.outLength++] = TAB;
    this.outLength += this.out.write(field, this.outLength, 'utf8');
  }
}

/**
 * The metric types from the `metricHeaders` before the rows (Google writes the fields in proto
 * order, headers first). The scanner must know them before it reads a value; when they are not
 * where expected, it gives up (NotScannable).
 */
export function metricTypes(bytes: Buffer, span: [number, number] | null, count: number): boolean[] {
  if (span === null) throw new NotScannable();
  let headers: unknown;
  try {
    headers = JSON.parse(bytes.toString('utf8', span[0], span[1]));
  } catch {
    throw new NotScannable();
  }
  if (!Array.isArray(headers) || headers.length !== count) throw new NotScannable();
  return headers.map((header: { type?: unknown }) => header?.type === 'TYPE_INTEGER');
}
