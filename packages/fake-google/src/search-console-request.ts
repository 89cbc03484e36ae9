/**
 * The body of `searchAnalytics.query`, read and checked as Search Console does
 * (https://developers.google.com/webmaster-tools/v1/searchanalytics/query): enum values in
 * either spelling the API takes (`date` or `DATE`, `byPage` or `BY_PAGE`), int32 fields as
 * numbers or strings, unknown fields refused, and the combinations Google refuses refused in
 * its words where they are known.
 */
import { isIsoDate } from './dates.js';
import { aggregatesByPage, SC_DIMENSIONS, SEARCH_TYPES } from './search-console-data.js';
import type { SearchAnalyticsFilter } from './types.js';

/** rowLimit's range and default (https://developers.google.com/webmaster-tools/v1/searchanalytics/query). */
const MAX_ROW_LIMIT = 25_000;
const DEFAULT_ROW_LIMIT = 1_000;

const AGGREGATION_TYPES = ['auto', 'byPage', 'byProperty', 'byNewsShowcasePanel'] as const;
const DATA_STATES = ['final', 'all', 'hourly_all'] as const;
const OPERATORS = ['equals', 'notEquals', 'contains', 'notContains', 'includingRegex', 'excludingRegex'] as const;
const FILTER_DIMENSIONS = ['query', 'page', 'country', 'device', 'searchAppearance'] as const;

const KNOWN_FIELDS = new Set([
  'startDate',
  'endDate',
  'dimensions',
  'type',
  'searchType',
  'dimensionFilterGroups',
  'aggregationType',
  'rowLimit',
  'startRow',
  'dataState',
]);

export interface SearchAnalyticsRequest {
  startDate: string;
  endDate: string;
  /** canonical spelling (`searchAppearance`) */
  dimensions: string[];
  type: string;
  dataState: 'final' | 'all' | 'hourly_all';
  aggregationType: (typeof AGGREGATION_TYPES)[number];
  rowLimit: number;
  /** rowLimit as the request gave it (absent or 0: the default) */
  rowLimitGiven?: number;
  startRow: number;
  dimensionFilterGroups: Array<{ groupType: 'and'; filters: SearchAnalyticsFilter[] }>;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

/** `DATE`, `date`, `SEARCH_APPEARANCE`, `searchAppearance` -> the canonical spelling of `values`, or undefined. */
function canonical<T extends string>(value: unknown, values: readonly T[]): T | undefined {
  if (typeof value !== 'string') return undefined;
  const squash = (s: string): string => s.replaceAll('_', '').toLowerCase();
  return values.find((v) => squash(v) === squash(value));
}

function int32(value: unknown, field: string): Parsed<number | undefined> {
  if (value === undefined || value === null) return { ok: true, value: undefined };
  const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || Math.abs(n) > 2 ** 31 - 1)
    return { ok: false, message: `Invalid value at '${field}' (TYPE_INT32), ${JSON.stringify(value)}` };
  return { ok: true, value: n };
}

/** Reads a request body; `message` is Google's (or as near as known) when it is refused. */
export function parseSearchAnalytics(body: string): Parsed<SearchAnalyticsRequest> {
  let raw: unknown;
  try {
    raw = body.trim() === '' ? {} : JSON.parse(body);
  } catch (err) {
    return { ok: false, message: `Invalid JSON payload received. ${err instanceof Error ? err.message : String(err)}` };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return { ok: false, message: 'Invalid JSON payload received. Root element must be a message.' };
  const b = raw as Record<string, unknown>;
  for (const k of Object.keys(b))
    if (!KNOWN_FIELDS.has(k)) return { ok: false, message: `Invalid JSON payload received. Unknown name "${k}": Cannot find field.` };

  for (const field of ['startDate', 'endDate'] as const) {
    const v = b[field];
    if (v === undefined || v === '') return { ok: false, message: `${field} field is required.` };
    if (typeof v !== 'string' || !isIsoDate(v)) return { ok: false, message: `Could not parse ${field}: ${JSON.stringify(v)}. Dates are YYYY-MM-DD.` };
  }
  const startDate = b.startDate as string;
  const endDate = b.endDate as string;
  if (startDate > endDate) return { ok: false, message: 'startDate must be earlier than or equal to endDate.' };

  const dimensions: string[] = [];
  if (b.dimensions !== undefined) {
    if (!Array.isArray(b.dimensions)) return { ok: false, message: `Invalid value at 'dimensions', ${JSON.stringify(b.dimensions)}` };
    for (const [i, d] of b.dimensions.entries()) {
      const name = canonical(d, SC_DIMENSIONS);
      if (!name)
        return { ok: false, message: `Invalid value at 'dimensions[${i}]' (type.googleapis.com/google.searchconsole.v1.Dimension), ${JSON.stringify(d)}` };
      if (dimensions.includes(name)) return { ok: false, message: `Dimension ${name} is given more than once.` };
      dimensions.push(name);
    }
  }
  // Observed answer of the API (the dimension must be requested alone, one date per request).
  if (dimensions.includes('searchAppearance') && dimensions.length > 1)
    return { ok: false, message: 'Cannot group by search appearance dimension together with another dimension.' };

  const typeRaw = b.type ?? b.searchType;
  const type = typeRaw === undefined ? 'web' : canonical(typeRaw, SEARCH_TYPES);
  if (!type) return { ok: false, message: `Invalid value at 'type' (type.googleapis.com/google.searchconsole.v1.Type), ${JSON.stringify(typeRaw)}` };

  const dataState = b.dataState === undefined ? 'final' : canonical(b.dataState, DATA_STATES);
  if (!dataState)
    return { ok: false, message: `Invalid value at 'data_state' (type.googleapis.com/google.searchconsole.v1.DataState), ${JSON.stringify(b.dataState)}` };

  const aggregationType = b.aggregationType === undefined ? 'auto' : canonical(b.aggregationType, AGGREGATION_TYPES);
  if (!aggregationType)
    return {
      ok: false,
      message: `Invalid value at 'aggregation_type' (type.googleapis.com/google.searchconsole.v1.AggregationType), ${JSON.stringify(b.aggregationType)}`,
    };
  // "If you group or filter by page, you cannot aggregate by property" (the request's reference).
  if (aggregationType === 'byProperty' && dimensions.includes('page'))
    return { ok: false, message: 'Aggregation by property is not supported when grouping or filtering by page. Use aggregationType auto or byPage.' };
  if (aggregationType === 'byNewsShowcasePanel' && (dimensions.includes('page') || !['discover', 'googleNews'].includes(type)))
    return { ok: false, message: 'byNewsShowcasePanel aggregation is supported only for type discover or googleNews, without the page dimension.' };

  const groups = filterGroups(b.dimensionFilterGroups);
  if (!groups.ok) return groups;
  if (aggregationType === 'byProperty' && groups.value.some((g) => g.filters.some((f) => f.dimension === 'page')))
    return { ok: false, message: 'Aggregation by property is not supported when grouping or filtering by page. Use aggregationType auto or byPage.' };

  const limit = int32(b.rowLimit, 'row_limit');
  if (!limit.ok) return limit;
  const start = int32(b.startRow, 'start_row');
  if (!start.ok) return start;
  if (limit.value !== undefined && (limit.value < 0 || limit.value > MAX_ROW_LIMIT))
    return { ok: false, message: `rowLimit must be between 1 and ${MAX_ROW_LIMIT}; got ${limit.value}.` };
  if (start.value !== undefined && start.value < 0) return { ok: false, message: `startRow must be non-negative; got ${start.value}.` };

  return {
    ok: true,
    value: {
      startDate,
      endDate,
      dimensions,
      type,
      dataState,
      aggregationType,
      // proto3: 0 is "not set"
      rowLimit: limit.value || DEFAULT_ROW_LIMIT,
      ...(limit.value !== undefined ? { rowLimitGiven: limit.value } : {}),
      startRow: start.value ?? 0,
      dimensionFilterGroups: groups.value,
    },
  };
}

/** dimensionFilterGroups: `[{ groupType?: 'and', filters: [{ dimension, operator?, expression }] }]`. */
function filterGroups(raw: unknown): Parsed<SearchAnalyticsRequest['dimensionFilterGroups']> {
  if (raw === undefined) return { ok: true, value: [] };
  if (!Array.isArray(raw)) return { ok: false, message: `Invalid value at 'dimension_filter_groups', ${JSON.stringify(raw)}` };
  const out: SearchAnalyticsRequest['dimensionFilterGroups'] = [];
  for (const [i, g] of raw.entries()) {
    const group = (g ?? {}) as { groupType?: unknown; filters?: unknown };
    if (group.groupType !== undefined && canonical(group.groupType, ['and'] as const) === undefined)
      return { ok: false, message: `Invalid value at 'dimension_filter_groups[${i}].group_type', ${JSON.stringify(group.groupType)}` };
    if (group.filters !== undefined && !Array.isArray(group.filters))
      return { ok: false, message: `Invalid value at 'dimension_filter_groups[${i}].filters', ${JSON.stringify(group.filters)}` };
    const filters: SearchAnalyticsFilter[] = [];
    for (const [j, f] of ((group.filters ?? []) as unknown[]).entries()) {
      const at = `dimension_filter_groups[${i}].filters[${j}]`;
      const filter = (f ?? {}) as { dimension?: unknown; operator?: unknown; expression?: unknown };
      const dimension = canonical(filter.dimension, FILTER_DIMENSIONS);
      if (!dimension) return { ok: false, message: `Invalid value at '${at}.dimension', ${JSON.stringify(filter.dimension)}` };
      const operator = filter.operator === undefined ? 'equals' : canonical(filter.operator, OPERATORS);
      if (!operator) return { ok: false, message: `Invalid value at '${at}.operator', ${JSON.stringify(filter.operator)}` };
      if (typeof filter.expression !== 'string') return { ok: false, message: `${at}.expression is required.` };
      if (operator.endsWith('Regex')) {
        try {
          new RegExp(filter.expression);
        } catch {
          return { ok: false, message: `Invalid regular expression: ${filter.expression}` };
        }
      }
      filters.push({ dimension, operator, expression: filter.expression });
    }
    out.push({ groupType: 'and', filters });
  }
  return { ok: true, value: out };
}

/** The response's responseAggregationType: what was asked, or for `auto`, by page when grouping by page. */
export function responseAggregationType(req: SearchAnalyticsRequest): string {
  if (req.aggregationType !== 'auto') return req.aggregationType;
  return aggregatesByPage(req) ? 'byPage' : 'byProperty';
}
