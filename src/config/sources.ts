/**
 * What the scheduler and the runner fetch, whichever API it comes from: a source is a GA4
 * property or a Search Console site, with its reports, schedule and principal. They are planned,
 * locked, fetched, stored and counted alike; the kind decides the report definitions, the
 * calendar, the fetcher and the tables (schedule/runner.ts, store/sourceTables.ts). A site's id is
 * its URL (which never looks like a numeric property id); report names are unique across both kinds.
 */
import { SEARCH_CONSOLE_METRICS } from '../store/sourceTables.js';
import type { Config, PropertyConfig, ReportDefinition, SearchConsoleReport, SiteConfig } from './types.js';

export type SourceKind = 'ga4' | 'searchConsole';

export interface SourceConfig {
  kind: SourceKind;
  /** the GA4 property id, or the Search Console site URL */
  id: string;
  reports: string[];
  schedule: string;
  credentials: string;
  impersonate: string;
}

export function propertySource(p: PropertyConfig): SourceConfig {
  return { kind: 'ga4', ...p };
}

export function siteSource(s: SiteConfig): SourceConfig {
  const { url, ...rest } = s;
  return { kind: 'searchConsole', id: url, ...rest };
}

/** Every configured source: the properties (discovered ones included), then the sites. */
export function configuredSources(config: Config): SourceConfig[] {
  return [...config.properties.map(propertySource), ...config.searchConsole.sites.map(siteSource)];
}

/**
 * A Search Console report as the store and the planner see a definition: its dimensions besides
 * the date, and the four metrics every searchanalytics.query row has.
 */
export function siteTableDefinition(report: SearchConsoleReport): ReportDefinition {
  return {
    name: report.name,
    dimensions: [...report.dimensions],
    metrics: [...SEARCH_CONSOLE_METRICS],
    startDate: report.startDate,
    refreshDays: report.refreshDays,
    // other rows altogether, not other columns: a date stored under another type or aggregation is fetched again
    variant: `type=${report.type} aggregationType=${report.aggregationType}`,
  };
}

/** The definition of `report` for a source of `kind` (a site's as siteTableDefinition); undefined when not configured. */
export function sourceDefinition(config: Config, kind: SourceKind, report: string): ReportDefinition | undefined {
  if (kind === 'ga4') return config.reports[report];
  const sc = config.searchConsole.reports[report];
  return sc ? siteTableDefinition(sc) : undefined;
}
