/**
 * Reading a runReport body as Google does: first the JSON-to-proto
 * transcoding (unknown fields and wrong types are rejected before the method
 * runs), then the method's own checks, in Google's order and wording.
 */
import { isKnownDimension, metricType } from './catalog.js';
import { resolveDate } from './dates.js';

type Scalar = 'string' | 'int64' | 'bool' | 'any';
interface EnumType {
  enumName: string;
  values: readonly string[];
}
interface MessageType {
  typeName: string;
  fields: Record<string, FieldType>;
}
type FieldType = Scalar | EnumType | MessageType | { repeated: Scalar | EnumType | MessageType };

const V1BETA = 'type.googleapis.com/google.analytics.data.v1beta';
const msg = (name: string, fields: Record<string, FieldType>): MessageType => ({ typeName: `${V1BETA}.${name}`, fields });

const DIMENSION = msg('Dimension', { name: 'string', dimensionExpression: 'any' });
const METRIC = msg('Metric', { name: 'string', expression: 'string', invisible: 'bool' });
const DATE_RANGE = msg('DateRange', { startDate: 'string', endDate: 'string', name: 'string' });
const ORDER_TYPE: EnumType = {
  enumName: `${V1BETA}.OrderBy.DimensionOrderBy.OrderType`,
  values: ['ORDER_TYPE_UNSPECIFIED', 'ALPHANUMERIC', 'CASE_INSENSITIVE_ALPHANUMERIC', 'NUMERIC'],
};
const ORDER_BY = msg('OrderBy', {
  metric: msg('OrderBy.MetricOrderBy', { metricName: 'string' }),
  dimension: msg('OrderBy.DimensionOrderBy', { dimensionName: 'string', orderType: ORDER_TYPE }),
  pivot: 'any',
  desc: 'bool',
});
const AGGREGATION: EnumType = { enumName: `${V1BETA}.MetricAggregation`, values: ['METRIC_AGGREGATION_UNSPECIFIED', 'TOTAL', 'MINIMUM', 'MAXIMUM', 'COUNT'] };
const RUN_REPORT = msg('RunReportRequest', {
  property: 'string',
  dimensions: { repeated: DIMENSION },
  metrics: { repeated: METRIC },
  dateRanges: { repeated: DATE_RANGE },
  dimensionFilter: 'any',
  metricFilter: 'any',
  offset: 'int64',
  limit: 'int64',
  metricAggregations: { repeated: AGGREGATION },
  orderBys: { repeated: ORDER_BY },
  currencyCode: 'string',
  cohortSpec: 'any',
  keepEmptyRows: 'bool',
  returnPropertyQuota: 'bool',
  comparisons: 'any',
});

const snake = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const camel = (s: string): string => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

type Json = Record<string, unknown>;

/** Converts JSON to the message shape (camelCase keys, int64 as numbers); collects Google's transcoding errors. */
function transcode(value: unknown, type: FieldType, path: string, errors: string[]): unknown {
  if (value === null) return undefined;
  if (typeof type === 'object' && 'repeated' in type) {
    if (!Array.isArray(value)) {
      errors.push(`Invalid value at '${path}' (${typeLabel(type.repeated)}), ${show(value)}`);
      return undefined;
    }
    return value.map((v, i) => transcode(v, type.repeated, `${path}[${i}]`, errors));
  }
  if (type === 'any') return value;
  if (type === 'string' || type === 'bool') {
    if (typeof value !== (type === 'string' ? 'string' : 'boolean')) errors.push(`Invalid value at '${path}' (${typeLabel(type)}), ${show(value)}`);
    return value;
  }
  if (type === 'int64') {
    // proto3 JSON takes int64 as a number or a decimal string.
    if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
    if (typeof value === 'string' && /^-?\d+$/.test(value)) return Number(value);
    errors.push(`Invalid value at '${path}' (TYPE_INT64), ${show(value)}`);
    return undefined;
  }
  if ('enumName' in type) {
    if (typeof value !== 'string' || !type.values.includes(value)) errors.push(`Invalid value at '${path}' (${type.enumName}), ${show(value)}`);
    return value;
  }
  if (typeof value !== 'object' || Array.isArray(value)) {
    errors.push(
      path
        ? `Invalid value at '${path}' (${type.typeName}), ${show(value)}`
        : 'Invalid JSON payload received. Unknown name "": Root element must be a message.',
    );
    return undefined;
  }
  const out: Json = {};
  for (const [key, v] of Object.entries(value as Json)) {
    const name = key in type.fields ? key : camel(key);
    const fieldType = type.fields[name];
    if (!fieldType) {
      errors.push(`Invalid JSON payload received. Unknown name ${show(key)}${path ? ` at '${path}'` : ''}: Cannot find field.`);
      continue;
    }
    out[name] = transcode(v, fieldType, path ? `${path}.${snake(name)}` : snake(name), errors);
  }
  return out;
}

function typeLabel(t: Scalar | EnumType | MessageType): string {
  if (typeof t === 'string') return t === 'int64' ? 'TYPE_INT64' : t === 'bool' ? 'TYPE_BOOL' : 'TYPE_STRING';
  return 'enumName' in t ? t.enumName : t.typeName;
}

export type OrderBy =
  { desc: boolean; metric: string } | { desc: boolean; dimension: string; orderType: 'ALPHANUMERIC' | 'CASE_INSENSITIVE_ALPHANUMERIC' | 'NUMERIC' };

export interface ReportRequest {
  dimensions: string[];
  metrics: string[];
  /** Resolved to YYYY-MM-DD in the property's time zone. */
  dateRanges: Array<{ start: string; end: string; name: string }>;
  limit: number;
  limitGiven: number | undefined;
  offset: number;
  orderBys: OrderBy[];
  aggregations: Array<'TOTAL' | 'MAXIMUM' | 'MINIMUM'>;
  keepEmptyRows: boolean;
  returnPropertyQuota: boolean;
  currencyCode: string | undefined;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

/** The transcoding step: JSON syntax, unknown fields, wrong types. An empty body is an empty message. */
export function transcodeRunReport(body: string): Parsed<Json> {
  let raw: unknown = {};
  if (body.trim() !== '') {
    try {
      raw = JSON.parse(body);
    } catch (err) {
      return { ok: false, message: jsonSyntaxMessage(body, err) };
    }
  }
  const errors: string[] = [];
  const value = transcode(raw, RUN_REPORT, '', errors);
  if (errors.length > 0) return { ok: false, message: errors.join('\n') };
  return { ok: true, value: (value ?? {}) as Json };
}

function jsonSyntaxMessage(body: string, err: unknown): string {
  const pos = /position (\d+)/.exec(err instanceof Error ? err.message : '');
  if (!pos) return 'Invalid JSON payload received. Unexpected end of string.';
  const at = Number(pos[1]);
  const lineStart = body.lastIndexOf('\n', at - 1) + 1;
  const lineEnd = body.indexOf('\n', at);
  const line = body.slice(lineStart, lineEnd < 0 ? undefined : lineEnd);
  return `Invalid JSON payload received. Unexpected token.\n${line}\n${' '.repeat(at - lineStart)}^`;
}

const SCHEMA_HINT = 'For a list of valid dimensions and metrics, see https://developers.google.com/analytics/devguides/reporting/data/v1/api-schema ';
const MIN_START = '2015-08-13';
const DEFAULT_LIMIT = 10_000;
const MAX_LIMIT = 250_000;

const list = <T>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]) : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function duplicates(names: string[]): string[] {
  return [...new Set(names.filter((n, i) => names.indexOf(n) !== i))];
}

/** The method's checks, in Google's order: names, limit/offset, date ranges, cardinality, presence, orderBys, aggregations. */
export function validateRunReport(body: Json, today: string): Parsed<ReportRequest> {
  const fail = (message: string): Parsed<ReportRequest> => ({ ok: false, message });
  const dims = list<Json>(body.dimensions);
  const mets = list<Json>(body.metrics);
  const dimensions = dims.map((d) => str(d?.name));
  const metrics = mets.map((m) => str(m?.name));
  for (const d of dimensions) if (!isKnownDimension(d)) return fail(`Field ${d} is not a valid dimension. ${SCHEMA_HINT}`);
  for (const m of metrics) if (!metricType(m)) return fail(`Field ${m} is not a valid metric.  ${SCHEMA_HINT}`);

  const unsupported = (
    [
      ['dimensionFilter', body.dimensionFilter],
      ['metricFilter', body.metricFilter],
      ['cohortSpec', body.cohortSpec],
      ['comparisons', body.comparisons],
      ['dimensions[].dimensionExpression', dims.find((d) => d?.dimensionExpression)],
      ['metrics[].expression', mets.find((m) => m?.expression)],
      ['orderBys[].pivot', list<Json>(body.orderBys).find((o) => o?.pivot)],
    ] as const
  ).find(([, v]) => v !== undefined);
  if (unsupported) return fail(`[fake-google] ${unsupported[0]} is not implemented by the fake Google (real Google accepts it).`);

  const limit = typeof body.limit === 'number' ? body.limit : undefined;
  const offset = typeof body.offset === 'number' ? body.offset : 0;
  if (limit !== undefined && limit < 0) return fail(`limit must be positive. The API received limit = ${limit}`);
  if (offset < 0) return fail(`offset must be positive. The API received offset = ${offset}`);

  const ranges = list<Json>(body.dateRanges);
  if (ranges.length === 0) return fail('A dateRange is required.');
  if (ranges.length > 4) return fail(`Requests are limited to 4 dateRanges.\n  This request contains ${ranges.length} dateRanges.`);
  const dateRanges: ReportRequest['dateRanges'] = [];
  for (const [i, r] of ranges.entries()) {
    const startSpec = str(r?.startDate);
    const endSpec = str(r?.endDate);
    const start = resolveDate(startSpec, today);
    const end = resolveDate(endSpec, today);
    if (!start) return fail(`Invalid startDate : ${startSpec}. startDate must be YYYY-MM-DD, NdaysAgo, yesterday, or today.`);
    if (!end) return fail(`Invalid endDate : ${endSpec}. endDate must be YYYY-MM-DD, NdaysAgo, yesterday, or today.`);
    if (start <= MIN_START) return fail(`Invalid startDate : ${startSpec}. startDate must be after ${MIN_START}.`);
    if (end >= '3000-01-01') return fail(`Invalid endDate : ${endSpec}. endDate must be before 3000-01-01.`);
    if (start > end) return fail(`start_date must be less than or equal to end_date. start_date = ${start} and end_date = ${end}`);
    const name = str(r?.name);
    if (name.startsWith('date_range_') || name.startsWith('RESERVED_')) return fail(`Date range name ${name} must not start with date_range_ or RESERVED_.`);
    dateRanges.push({ start, end, name: name || `date_range_${i}` });
  }

  if (dimensions.length > 9)
    return fail(`Requests are limited to 9 dimensions within a nested request.\n  This request contains ${dimensions.length} dimensions.`);
  if (metrics.length > 10) return fail(`Requests are limited to 10 metrics within a nested request.\n  This request contains ${metrics.length} metrics.`);
  const dupDims = duplicates(dimensions);
  if (dupDims.length) return fail(`Found duplicate dimensions: ${dupDims.join(', ')}`);
  const dupMets = duplicates(metrics);
  if (dupMets.length) return fail(`Duplicate metrics are not allowed. Found duplicate metrics: ${dupMets.join(', ')}`);
  if (dimensions.length === 0 && metrics.length === 0) return fail('A request must contain dimensions and/or metrics.');

  const orderBys: OrderBy[] = [];
  for (const o of list<Json>(body.orderBys)) {
    const desc = o?.desc === true;
    const metric = o?.metric as Json | undefined;
    const dimension = o?.dimension as Json | undefined;
    if (metric && !dimension) {
      const name = str(metric.metricName);
      if (!metrics.includes(name)) return fail(`Field ${name} exists in OrderBy but is not defined in input Dimensions/Metrics list`);
      orderBys.push({ desc, metric: name });
    } else if (dimension && !metric) {
      const name = str(dimension.dimensionName);
      if (!dimensions.includes(name)) return fail(`Field ${name} exists in OrderBy but is not defined in input Dimensions/Metrics list`);
      const t = str(dimension.orderType);
      orderBys.push({ desc, dimension: name, orderType: t === 'NUMERIC' || t === 'CASE_INSENSITIVE_ALPHANUMERIC' ? t : 'ALPHANUMERIC' });
    } else {
      return fail('OrderBy must set exactly one of metric, dimension or pivot.');
    }
  }

  const aggregations: ReportRequest['aggregations'] = [];
  for (const a of list<string>(body.metricAggregations)) {
    if (a === 'COUNT') return fail('Metric aggregation Count is not supported in ReportRequest.');
    if ((a === 'TOTAL' || a === 'MAXIMUM' || a === 'MINIMUM') && !aggregations.includes(a)) aggregations.push(a);
  }

  return {
    ok: true,
    value: {
      dimensions,
      metrics,
      dateRanges,
      // 0 or absent means the default; above the cap, Google silently caps.
      limit: Math.min(limit || DEFAULT_LIMIT, MAX_LIMIT),
      limitGiven: limit,
      offset,
      orderBys,
      aggregations,
      keepEmptyRows: body.keepEmptyRows === true,
      returnPropertyQuota: body.returnPropertyQuota === true,
      currencyCode: typeof body.currencyCode === 'string' && body.currencyCode ? body.currencyCode : undefined,
    },
  };
}
