/**
 * Every request ga-collector sends to the Data API, built here and nowhere else: a report page (the
 * per-date totals are the pages of a report by date alone, totals.ts), the time-zone probe, and
 * the URL parameters of `runReport` and `getMetadata`. The response checks (responses.ts) rely on
 * what these ask for: the `date` dimension first, rows ordered by date and then by every dimension.
 */
import type { analyticsdata_v1beta } from '@googleapis/analyticsdata';
import type { ReportDefinition } from '../config/index.js';

export type RunReportRequest = analyticsdata_v1beta.Schema$RunReportRequest;
export type RunReportParams = analyticsdata_v1beta.Params$Resource$Properties$Runreport;
export type MetadataParams = analyticsdata_v1beta.Params$Resource$Properties$Getmetadata;

/**
 * An int64 request field (limit, offset). The generated types say string, Google's JSON mapping
 * takes a number or a decimal string; we send a JSON number, which no reader can mistake for text
 * (a string offset added to a limit concatenates in JavaScript).
 */
function int64(value: number): string {
  return value as unknown as string;
}

/** `date` first, then the definition's dimensions: the row layout every check expects. */
function dimensionsOf(def: ReportDefinition): RunReportRequest['dimensions'] {
  return [{ name: 'date' }, ...def.dimensions.map((name) => ({ name }))];
}

function metricsOf(def: ReportDefinition): RunReportRequest['metrics'] {
  return def.metrics.map((name) => ({ name }));
}

/**
 * One page (`limit` rows from `offset`) of a report over [start, end] (YYYY-MM-DD). Ordered by
 * date, so a date is complete once a later one shows, then by every dimension, so the pages of
 * one listing never overlap or skip a row while the data stands still.
 */
export function reportPageRequest(def: ReportDefinition, start: string, end: string, offset: number, limit: number): RunReportRequest {
  return {
    dateRanges: [{ startDate: start, endDate: end }],
    dimensions: dimensionsOf(def),
    metrics: metricsOf(def),
    limit: int64(limit),
    offset: int64(offset),
    orderBys: [{ dimension: { dimensionName: 'date' } }, ...def.dimensions.map((dimensionName) => ({ dimension: { dimensionName } }))],
    returnPropertyQuota: true,
  };
}

/**
 * The smallest report: one row of yesterday's sessions. Its response metadata says the property's
 * time zone, which `getMetadata` does not, and it proves runReport works; `sessions` is a metric
 * every GA4 property has, so the answer does not depend on a report definition.
 */
export function timeZoneProbeRequest(): RunReportRequest {
  return {
    dateRanges: [{ startDate: 'yesterday', endDate: 'yesterday' }],
    dimensions: [{ name: 'date' }],
    metrics: [{ name: 'sessions' }],
    limit: int64(1),
    returnPropertyQuota: true,
  };
}

/** `properties.runReport`'s parameters. prettyPrint=false: Google indents JSON by default, which doubles what is sent and parsed. */
export function runReportParams(propertyId: string, body: RunReportRequest): RunReportParams {
  return { property: `properties/${propertyId}`, requestBody: body, prettyPrint: false };
}

/** `properties.getMetadata`'s parameters: the property's own fields, custom ones included. */
export function metadataParams(propertyId: string): MetadataParams {
  return { name: `properties/${propertyId}/metadata`, prettyPrint: false };
}
