/**
 * A fake Google for tests, the demo command and benchmarks: the OAuth 2.0
 * token endpoint, the GA4 Data API v1beta (runReport, getMetadata), the GA
 * Admin API v1beta's accountSummaries.list and the Search Console API
 * (searchAnalytics.query, sites.get, sites.list), checking what the real ones check
 * and failing on demand.
 */
export { FakeGoogle } from './server.js';
export { generateReport } from './generator.js';
export { isKnownDimension, metricType, type MetricType } from './catalog.js';
export { formatDouble } from './report-endpoint.js';
export type {
  AccountSpec,
  EventKind,
  FakeCounts,
  FakeEvent,
  FakeGoogleOptions,
  Fault,
  FaultEndpoint,
  FaultKind,
  GaAccountSpec,
  PropertySpec,
  QuotaSettings,
  SearchAnalyticsQuery,
  SearchAnalyticsRow,
  ServiceAccountKeyJson,
  SitePermissionLevel,
  SiteSpec,
} from './types.js';
