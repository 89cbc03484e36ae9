/**
 * `POST /v1beta/properties/{id}:runReport` once the caller is authenticated,
 * authorized and the body is valid: builds every row of the request from the
 * generator, orders them, cuts the requested page and answers in the proto3
 * JSON shape of RunReportResponse (default values omitted).
 */
import { dimensionDef, metricType } from './catalog.js';
import { addDays, compactDate, daysBetween, eachDate } from './dates.js';
import { dayTotal, generateComponents, mergeComponents, metricValue, type Components } from './generator.js';
import { apiError, jsonReply, type Reply } from './http-util.js';
import type { OrderBy, ReportRequest } from './report-request.js';
import type { FakeState, Property } from './state.js';

interface Row {
  dims: string[];
  rangeIndex: number;
  c: Components;
  values: number[];
}

export interface ReportOutcome {
  reply: Reply;
  rows?: number;
  /** quota tokens charged (tokenCost), when the request was served */
  tokens?: number;
}

/**
 * Formats a double as protobuf does (`%.15g`, or `%.17g` when 15 digits do not
 * round-trip), so `Number(text)` gives back exactly the generated value.
 */
export function formatDouble(v: number): string {
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const s = toG(v, 15);
  return Number(s) === v ? s : toG(v, 17);
}

function toG(v: number, precision: number): string {
  if (v === 0) return '0';
  const exp = Number(v.toExponential(precision - 1).split('e')[1]);
  if (exp < -4 || exp >= precision) {
    const [mantissa = '', e = '0'] = v.toExponential(precision - 1).split('e');
    const m = mantissa.includes('.') ? mantissa.replace(/0+$/, '').replace(/\.$/, '') : mantissa;
    const n = Number(e);
    return `${m}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
  }
  const fixed = v.toFixed(Math.max(0, precision - 1 - exp));
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
}

function formatMetric(v: number, metric: string): string {
  return metricType(metric) === 'TYPE_INTEGER' ? String(Math.round(v)) : formatDouble(v);
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function comparator(req: ReportRequest): (a: Row, b: Row) => number {
  const orderBys: OrderBy[] =
    req.orderBys.length > 0
      ? req.orderBys
      : // Without orderBys Google sorts by the first metric, descending.
        req.metrics[0] !== undefined
        ? [{ metric: req.metrics[0], desc: true }]
        : [];
  return (a, b) => {
    for (const o of orderBys) {
      let d: number;
      if ('metric' in o) {
        const i = req.metrics.indexOf(o.metric);
        d = (a.values[i] ?? 0) - (b.values[i] ?? 0);
      } else {
        const i = req.dimensions.indexOf(o.dimension);
        const x = a.dims[i] ?? '';
        const y = b.dims[i] ?? '';
        if (o.orderType === 'NUMERIC') {
          const nx = Number(x);
          const ny = Number(y);
          d = (Number.isNaN(nx) ? -Infinity : nx) - (Number.isNaN(ny) ? -Infinity : ny);
          if (Number.isNaN(d)) d = 0;
        } else if (o.orderType === 'CASE_INSENSITIVE_ALPHANUMERIC') {
          d = compareStrings(x.toLowerCase(), y.toLowerCase());
        } else {
          d = compareStrings(x, y);
        }
      }
      if (d !== 0) return o.desc ? -d : d;
    }
    return 0;
  };
}

/** Revision of each covered date: how many first-page calls have covered it, inside the revision window. */
function revisionsFor(state: FakeState, property: Property, dates: Set<string>, today: string, firstPage: boolean): (date: string) => number {
  const days = state.revisionDays;
  if (days === undefined) return () => 0;
  let counts = state.revisions.get(property.id);
  if (!counts) {
    counts = new Map();
    state.revisions.set(property.id, counts);
  }
  const windowStart = addDays(today, -days);
  const inWindow = (d: string): boolean => d >= windowStart && d <= today;
  // Only calls for a first page revise the data, so the pages of one listing stay consistent.
  if (firstPage) for (const d of dates) if (inWindow(d)) counts.set(d, (counts.get(d) ?? 0) + 1);
  const c = counts;
  return (d) => (inWindow(d) ? (c.get(d) ?? 0) : 0);
}

/**
 * Recent results, so paging through a large report does not regenerate and
 * re-sort every row for each page (benchmarks page through 100k-row reports).
 */
/** The rows of a request in its order, and GA's total of each of its date ranges. */
interface Built {
  rows: Row[];
  totals: Components[];
}

const caches = new WeakMap<FakeState, Map<string, Built>>();
const CACHE_SIZE = 16;

function cacheFor(state: FakeState): Map<string, Built> {
  let cache = caches.get(state);
  if (!cache) {
    cache = new Map();
    caches.set(state, cache);
  }
  return cache;
}

function buildRows(state: FakeState, property: Property, req: ReportRequest, today: string): Built {
  const nonDate = req.dimensions.filter((d) => d !== 'date');
  const positions = req.dimensions.map((d) => (d === 'date' ? -1 : nonDate.indexOf(d)));
  const multi = req.dateRanges.length > 1;
  const spans = req.dateRanges.map((r) => {
    const from = r.start > property.dataFrom ? r.start : property.dataFrom;
    const to = r.end < today ? r.end : today;
    return from <= to ? eachDate(from, to) : [];
  });
  const covered = new Set(spans.flat());
  const revisionOf = revisionsFor(state, property, covered, today, req.offset === 0);
  const { offset: _offset, limit: _limit, limitGiven: _given, returnPropertyQuota: _quota, aggregations: _agg, ...shape } = req;
  const cacheKey = JSON.stringify([property.id, property.dataFrom, property.rowsPerDay, today, shape, [...covered].map(revisionOf)]);
  const cached = cacheFor(state).get(cacheKey);
  if (cached) return cached;
  const all: Row[] = [];
  for (const [rangeIndex, dates] of spans.entries()) {
    const groups = new Map<string, { dims: string[]; parts: Components[] }>();
    for (const date of dates) {
      for (const row of generateComponents(property.id, date, nonDate, revisionOf(date), property.rowsPerDay)) {
        const dims = positions.map((p) => (p < 0 ? compactDate(date) : (row.dims[p] ?? '')));
        if (multi) dims.push(req.dateRanges[rangeIndex]?.name ?? '');
        const key = dims.join('\u0000');
        const g = groups.get(key);
        if (g) g.parts.push(row.c);
        else groups.set(key, { dims, parts: [row.c] });
      }
    }
    for (const g of groups.values()) {
      const c = mergeComponents(g.parts);
      all.push({ dims: g.dims, rangeIndex, c, values: req.metrics.map((m) => metricValue(c, m)) });
    }
  }
  // A stable base order (dimension values, then range) so equal keys never swap between pages.
  all.sort((a, b) => {
    for (let i = 0; i < a.dims.length; i++) {
      const d = compareStrings(a.dims[i] ?? '', b.dims[i] ?? '');
      if (d !== 0) return d;
    }
    return a.rangeIndex - b.rangeIndex;
  });
  const rows = all.filter((r) => req.keepEmptyRows || req.metrics.length === 0 || r.values.some((v) => v !== 0));
  rows.sort(comparator(req));
  // GA's total of a range is the same whatever the dimensions: its days' own figures, merged
  const totals = spans.map((dates) => mergeComponents(dates.map((date) => dayTotal(property.id, date, revisionOf(date), property.rowsPerDay))));
  const built = { rows, totals };
  const cache = cacheFor(state);
  cache.set(cacheKey, built);
  for (const key of cache.keys()) {
    if (cache.size <= CACHE_SIZE) break;
    cache.delete(key);
  }
  return built;
}

/**
 * Quota tokens one runReport costs (a whole number, at least 1). Google publishes no formula, only
 * what makes a request dearer: "the number of rows, columns, filter complexity, and date range"
 * (https://developers.google.com/analytics/devguides/reporting/data/v1/quotas), and that "most
 * requests consume fewer than 10 tokens" (PropertyQuota reference). The fake's model has that shape:
 *
 *   tokens = 1 + floor((dimensions + metrics - 1) / 6) + floor(days / 60) + floor(rowsReturned / 10,000)
 *
 * where `days` counts the days of every date range and `rowsReturned` the rows of this page. So a
 * one-day, one-page request of a few columns costs 1, a 365-day page of 25,000 rows of 8 columns
 * 1 + 1 + 6 + 2 = 10, and asking a year one day at a time costs at least 365.
 */
function tokenCost(req: Pick<ReportRequest, 'dimensions' | 'metrics' | 'dateRanges'>, rowsReturned: number): number {
  const columns = req.dimensions.length + req.metrics.length;
  const days = req.dateRanges.reduce((n, r) => n + daysBetween(r.start, r.end) + 1, 0);
  return 1 + Math.floor(Math.max(0, columns - 1) / 6) + Math.floor(days / 60) + Math.floor(rowsReturned / 10_000);
}

function toJsonRow(dims: string[], values: number[], metrics: string[]): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  if (dims.length) row.dimensionValues = dims.map((value) => ({ value }));
  if (values.length) row.metricValues = values.map((v, i) => ({ value: formatMetric(v, metrics[i] ?? '') }));
  return row;
}

function aggregateRows(req: ReportRequest, rows: Row[], totals: Components[], kind: 'TOTAL' | 'MAXIMUM' | 'MINIMUM'): Record<string, unknown>[] {
  const marker = kind === 'TOTAL' ? 'RESERVED_TOTAL' : kind === 'MAXIMUM' ? 'RESERVED_MAX' : 'RESERVED_MIN';
  const multi = req.dateRanges.length > 1;
  const out: Record<string, unknown>[] = [];
  for (const [i, range] of req.dateRanges.entries()) {
    const inRange = rows.filter((r) => r.rangeIndex === i);
    if (inRange.length === 0) continue;
    const dims: string[] = req.dimensions.map(() => marker);
    if (multi) dims.push(range.name);
    let values: number[];
    if (kind === 'TOTAL') {
      values = req.metrics.map((m) => metricValue(totals[i]!, m));
    } else {
      const pickFn = kind === 'MAXIMUM' ? Math.max : Math.min;
      // reduce, not spread: a page can hold 250000 rows, more arguments than a call takes.
      values = req.metrics.map((_, j) => inRange.reduce((acc, r) => pickFn(acc, r.values[j] ?? 0), inRange[0]?.values[j] ?? 0));
    }
    out.push(toJsonRow(dims, values, req.metrics));
  }
  return out;
}

/**
 * Serves one runReport page for an authorized account. `reverse` serves the rows in the reverse
 * of the requested order, as an endpoint that ignores `orderBys` might (fault `reverse`).
 */
export function runReport(
  state: FakeState,
  property: Property,
  project: string,
  req: ReportRequest,
  today: string,
  pretty: boolean,
  opts: { reverse?: boolean } = {},
): ReportOutcome {
  const thresholded = req.dimensions.some((d) => dimensionDef(d)?.thresholded);
  const exhausted = state.quota.exhausted(property.id, project, thresholded);
  if (exhausted) return { reply: apiError(429, 'RESOURCE_EXHAUSTED', exhausted) };

  const { rows, totals } = buildRows(state, property, req, today);
  const pageSize = Math.min(req.limit, state.maxPageSize);
  const page = opts.reverse
    ? rows.slice(Math.max(0, rows.length - req.offset - pageSize), Math.max(0, rows.length - req.offset)).reverse()
    : rows.slice(req.offset, req.offset + pageSize);
  const tokens = tokenCost(req, page.length);
  const quota = state.quota.consume(property.id, project, tokens, thresholded);

  const body: Record<string, unknown> = {};
  const headerNames = req.dateRanges.length > 1 ? [...req.dimensions, 'dateRange'] : req.dimensions;
  if (headerNames.length) body.dimensionHeaders = headerNames.map((name) => ({ name }));
  if (req.metrics.length) body.metricHeaders = req.metrics.map((name) => ({ name, type: metricType(name) }));
  if (page.length) body.rows = page.map((r) => toJsonRow(r.dims, r.values, req.metrics));
  const aggregationField = { TOTAL: 'totals', MAXIMUM: 'maximums', MINIMUM: 'minimums' } as const;
  for (const kind of ['TOTAL', 'MAXIMUM', 'MINIMUM'] as const) {
    if (!req.aggregations.includes(kind)) continue;
    const agg = aggregateRows(req, rows, totals, kind);
    if (agg.length) body[aggregationField[kind]] = agg;
  }
  if (rows.length) body.rowCount = rows.length;
  body.metadata = {
    currencyCode: req.currencyCode ?? property.currencyCode,
    timeZone: property.timeZone,
    ...(thresholded ? { subjectToThresholding: true } : {}),
  };
  if (req.returnPropertyQuota) body.propertyQuota = quota;
  body.kind = 'analyticsData#runReport';
  return { reply: jsonReply(200, body, {}, pretty), rows: page.length, tokens };
}
