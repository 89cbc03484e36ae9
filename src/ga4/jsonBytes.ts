/**
 * Byte-level reading of a JSON response body, for the row scanner (rowScanner.ts): skip a string
 * or a value, find the top-level `rows` array, cut it out, check a number's spelling. Not a JSON
 * validator: whatever the scanner does not read itself goes through JSON.parse afterwards.
 */

export const QUOTE = 34;
export const BACKSLASH = 92;
export const COMMA = 44;
export const COLON = 58;
export const MINUS = 45;
const DOT = 46;
export const TAB = 9;
export const NEWLINE = 10;
const CARRIAGE_RETURN = 13;
const SPACE = 32;
export const ZERO = 48;
export const NINE = 57;
export const LBRACE = 123;
export const RBRACE = 125;
export const LBRACKET = 91;
export const RBRACKET = 93;

const KEY_ROWS = Buffer.from('"rows"');
const KEY_METRIC_HEADERS = Buffer.from('"metricHeaders"');

function isWhitespace(byte: number): boolean {
  return byte === SPACE || byte === NEWLINE || byte === CARRIAGE_RETURN || byte === TAB;
}

/** The first position at or after `at` that is not JSON whitespace. */
export function skipWhitespace(bytes: Buffer, at: number): number {
  while (isWhitespace(bytes[at]!)) at++;
  return at;
}

/** From the opening quote of a string to just after its closing quote; -1 when it does not end. */
function skipString(bytes: Buffer, at: number): number {
  for (let pos = at + 1; pos < bytes.length; pos++) {
    const byte = bytes[pos];
    if (byte === BACKSLASH) pos++;
    else if (byte === QUOTE) return pos + 1;
  }
  return -1;
}

/** From the first byte of a JSON value to just after it; -1 when it does not end. */
export function skipValue(bytes: Buffer, at: number): number {
  let depth = 0;
  for (; at < bytes.length; at++) {
    const byte = bytes[at]!;
    if (byte === QUOTE) {
      const after = skipString(bytes, at);
      if (after < 0) return -1;
      if (depth === 0) return after;
      at = after - 1;
    } else if (byte === LBRACE || byte === LBRACKET) {
      depth++;
    } else if (byte === RBRACE || byte === RBRACKET) {
      if (depth === 0) return at; // a number or literal, ended by its container
      if (--depth === 0) return at + 1;
    } else if (depth === 0 && (byte === COMMA || isWhitespace(byte))) {
      return at;
    }
  }
  return -1;
}

function isKey(bytes: Buffer, from: number, to: number, key: Buffer): boolean {
  if (to - from !== key.length) return false;
  for (let offset = 0; offset < key.length; offset++) if (bytes[from + offset] !== key[offset]) return false;
  return true;
}

export interface TopLevelLayout {
  /** where the `"rows"` key starts */
  rowsKey: number;
  /** where its `[` is */
  rowsOpen: number;
  /** the span of the top-level `metricHeaders` value before the rows, when there is one */
  metricHeaders: [number, number] | null;
}

/**
 * Where the top-level `"rows"` key and its `[` are, and the span of the top-level `metricHeaders`
 * value before it; null when the body has no such rows (an empty page) or is not an object. Walks
 * the top-level members only (what precedes the rows: Google writes them after the headers), so a
 * `"rows"` inside a string or a nested object is never taken for them.
 */
export function topLevel(bytes: Buffer): TopLevelLayout | null {
  let at = skipWhitespace(bytes, 0);
  if (bytes[at] !== LBRACE) return null;
  at = skipWhitespace(bytes, at + 1);
  let metricHeaders: [number, number] | null = null;
  for (;;) {
    if (bytes[at] !== QUOTE) return null;
    const key = at;
    const afterKey = skipString(bytes, at);
    if (afterKey < 0) return null;
    let value = skipWhitespace(bytes, afterKey);
    if (bytes[value] !== COLON) return null;
    value = skipWhitespace(bytes, value + 1);
    if (isKey(bytes, key, afterKey, KEY_ROWS)) return bytes[value] === LBRACKET ? { rowsKey: key, rowsOpen: value, metricHeaders } : null;
    const afterValue = skipValue(bytes, value);
    if (afterValue < 0) return null;
    if (isKey(bytes, key, afterKey, KEY_METRIC_HEADERS)) metricHeaders = [value, afterValue];
    at = skipWhitespace(bytes, afterValue);
    if (bytes[at] !== COMMA) return null;
    at = skipWhitespace(bytes, at + 1);
  }
}

/** The body with `"rows": [...]` (from `from` to `to`) and one neighbouring comma cut out. */
export function withoutRows(bytes: Buffer, from: number, to: number): Buffer {
  const after = skipWhitespace(bytes, to);
  if (bytes[after] === COMMA) return Buffer.concat([bytes.subarray(0, from), bytes.subarray(after + 1)]);
  let before = from - 1;
  while (before >= 0 && isWhitespace(bytes[before]!)) before--;
  if (bytes[before] === COMMA) return Buffer.concat([bytes.subarray(0, before), bytes.subarray(to)]);
  return Buffer.concat([bytes.subarray(0, from), bytes.subarray(to)]);
}

/**
 * Copies bytes and returns the end in `target`. A loop, not Buffer#copy: values are a few bytes
 * long, and Buffer#copy of a part of a buffer makes a Uint8Array view per call (profiled: a fifth
 * of the scanner's time, and most of its garbage).
 */
export function copyBytes(source: Buffer, from: number, to: number, target: Buffer, at: number): number {
  for (let pos = from; pos < to; pos++) target[at++] = source[pos]!;
  return at;
}

/** -?[0-9]+ */
export function isIntegerText(bytes: Buffer, from: number, to: number): boolean {
  let at = bytes[from] === MINUS ? from + 1 : from;
  if (at === to) return false;
  for (; at < to; at++) {
    const byte = bytes[at]!;
    if (byte < ZERO || byte > NINE) return false;
  }
  return true;
}

/**
 * -?[0-9]+(.[0-9]+)?, at most 24 bytes: what both JavaScript and PostgreSQL read as the same
 * finite double (both round correctly). Longer spellings take the slow branch: PostgreSQL refuses
 * a decimal that underflows to zero, which JavaScript reads as 0.
 */
export function isPlainDecimal(bytes: Buffer, from: number, to: number): boolean {
  if (to - from > 24) return false;
  let at = bytes[from] === MINUS ? from + 1 : from;
  const digitsFrom = at;
  while (at < to && bytes[at]! >= ZERO && bytes[at]! <= NINE) at++;
  if (at === digitsFrom) return false;
  if (at === to) return true;
  if (bytes[at] !== DOT) return false;
  const fraction = ++at;
  while (at < to && bytes[at]! >= ZERO && bytes[at]! <= NINE) at++;
  return at === to && at > fraction;
}
