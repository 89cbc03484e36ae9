/**
 * Public types of the fake Google used by tests, the demo command and benchmarks.
 * Production code never imports this module: it only knows the fake through the
 * configured `google.tokenUrl` and `google.apiRootUrl`.
 */

export interface FakeGoogleOptions {
  /** Lifetime of issued access tokens; the token response says `expires_in = lifetime - 1`, as Google does (3599). Default 3600. */
  tokenLifetimeSeconds?: number;
  /** Largest page the report endpoint returns, whatever `limit` asks. Default 250000 (Google's cap). */
  maxPageSize?: number;
  /** Injectable clock, ms since epoch. Drives JWT iat/exp checks, token expiry, quota windows and each property's "today". */
  now?: () => number;
  /** A clock for the properties' calendars only (today, yesterday, NdaysAgo), so a test can put a property at any instant while tokens are checked against real time. Default: `now`. */
  calendarNow?: () => number;
  host?: string;
  port?: number;
  /** When set, dates within `days` of a property's today change value with each runReport call that covers them. */
  revision?: { days: number };
  /** Seed of the PRNG that decides `rate`-limited faults, so runs are reproducible. Default 1. */
  faultSeed?: number;
  /**
   * Most account summaries one Admin API `accountSummaries.list` page holds, whatever `pageSize`
   * asks (Google: "the service may return fewer than this value"), so tests page without 200
   * accounts. Default 200 (Google's maximum).
   */
  adminPageSize?: number;
  /**
   * Compress answers as Google's front end does: a request whose `Accept-Encoding` takes gzip gets
   * its body gzipped, with `content-encoding: gzip` (faults that cut a body cut the compressed
   * bytes, as a dropped connection would). Default false: bodies are sent as they are.
   */
  compress?: boolean;
}

/** `metadata` is the Data API's getMetadata; `gceMetadata` the metadata server of Compute Engine (identity.ts). */
export type EventKind =
  | 'token'
  | 'runReport'
  | 'metadata'
  | 'gceMetadata'
  | 'sts'
  | 'generateAccessToken'
  | 'azureIdentity'
  | 'awsMetadata'
  | 'accountSummaries'
  /** Search Console's searchAnalytics.query */
  | 'searchAnalytics'
  /** Search Console's sites.get and sites.list */
  | 'sites';

export interface FakeEvent {
  kind: EventKind;
  receivedAt: number;
  /** When the response was sent or the connection dropped (reset, hang ended by the client or by stop); 0 while pending. */
  respondedAt: number;
  /** HTTP status sent; 0 when the connection was dropped without a response (reset, hang). */
  status: number;
  account?: string;
  property?: string;
  /** For API calls: when the bearer token used was issued. */
  tokenIssuedAt?: number;
  /** For API calls: the scopes of the bearer token used. */
  scopes?: string[];
  /** Rows in this page of a runReport response. */
  rows?: number;
  offset?: number;
  limit?: number;
  /** Earliest startDate and latest endDate of the request, resolved to YYYY-MM-DD in the property's time zone. */
  startDate?: string;
  endDate?: string;
  /** For runReport: the dimensions asked, in request order, and the `metricAggregations` (TOTAL, MAXIMUM, MINIMUM). */
  dimensions?: string[];
  aggregations?: string[];
  /** For a served runReport: the quota tokens it was charged (the `consumed` of its propertyQuota). */
  tokens?: number;
  /** The answer's `content-encoding` when it was compressed (`gzip`, with the `compress` option). */
  encoding?: string;
  /** The injected fault that hit this request: `status:503`, `delay`, `reset`, `truncate`, `hang`, `stall`, `garbage`, `html`, `reverse`, `rewrite`. */
  fault?: string;
  /** For accountSummaries: the pageSize asked (absent when not given) and whether a pageToken came. */
  pageSize?: number;
  pageToken?: boolean;
  /** For searchAnalytics and sites.get: the Search Console site URL of the path, decoded (`sc-domain:example.com`). */
  site?: string;
  /** For searchAnalytics: the request's startRow and rowLimit (absent when not given), and its dataState (default `final`). */
  startRow?: number;
  rowLimit?: number;
  dataState?: string;
}

export type FaultEndpoint = EventKind | 'any';
/**
 * - `status`: an error status with Google's error body; `delay`: wait, then answer normally;
 * - `reset`: drop the connection; `hang`: accept the request and never answer;
 * - `truncate`: `200` with the first half of the body (and a matching content-length);
 * - `stall`: `200` headers (with the full content-length) and half the body, then nothing more;
 * - `garbage`: `200`, `application/json`, and a body that is not JSON (an upstream proxy's text);
 * - `html`: `200`, `text/html`, a proxy's or captive portal's page;
 * - `reverse`: rows in the reverse of the requested order (an endpoint that ignores `orderBys`);
 * - `rewrite`: the answer as `rewrite` makes it (in-process tests).
 */
export type FaultKind = 'status' | 'delay' | 'reset' | 'truncate' | 'hang' | 'stall' | 'garbage' | 'html' | 'reverse' | 'rewrite';

/** The request a `rewrite` fault sees, besides the response body. */
export interface RewriteRequest {
  offset: number;
  limit: number;
  /** the dimensions asked for, in request order (a report's per-date totals: `['date']`) */
  dimensions: string[];
}

export interface Fault {
  endpoint: FaultEndpoint;
  /** Only requests for this property (never token requests). */
  property?: string;
  /** Only Search Console requests for this site URL (`sc-domain:example.com`, `https://www.example.com/`). */
  site?: string;
  kind: FaultKind;
  /** For kind `status`: 429, 500, 502, 503 or 504 (any other code gets a generic Google error body). */
  status?: number;
  /** For kind `delay`: how long to wait before handling the request normally. */
  delayMs?: number;
  /** How many requests it hits; default unlimited. */
  times?: number;
  /** Probability per matching request, 0..1, drawn from a seeded PRNG. Default 1. */
  rate?: number;
  /** Overrides the error message of a `status` fault. */
  message?: string;
  /**
   * Only runReport requests for which this says true (e.g. data pages: `limit > 1`); it sees the request's offset,
   * limit and dimensions (for searchAnalytics: startRow, rowLimit and dimensions).
   */
  match?: (request: RewriteRequest) => boolean;
  /**
   * For kind `rewrite`: gets the JSON body the endpoint would send (parsed) and returns what to
   * send instead: an object (serialized as JSON) or a string (sent as it is).
   */
  rewrite?: (body: Record<string, unknown>, request: RewriteRequest) => unknown;
}

/** A service-account key file exactly as the Google Cloud console downloads it. */
export interface ServiceAccountKeyJson {
  type: 'service_account';
  project_id: string;
  private_key_id: string;
  private_key: string;
  client_email: string;
  client_id: string;
  auth_uri: string;
  token_uri: string;
  auth_provider_x509_cert_url: string;
  client_x509_cert_url: string;
  universe_domain: 'googleapis.com';
}

export interface PropertySpec {
  id: string;
  /** IANA time zone, e.g. America/Los_Angeles. */
  timeZone: string;
  /** Default USD. */
  currencyCode?: string;
  /** YYYY-MM-DD; no rows before it. Default 2020-01-01. */
  dataFrom?: string;
  /**
   * Exactly this many rows per day (up to the number of combinations of the requested
   * dimensions' values), for benchmarks that need a known volume. Default: drawn from visits.
   */
  rowsPerDay?: number;
  /** The GA account (numeric id) the Admin API lists it under; created on first use. Default 100001. */
  account?: string;
  /** Default `Property <id>`. */
  displayName?: string;
  /** Default PROPERTY_TYPE_ORDINARY. */
  propertyType?: 'PROPERTY_TYPE_ORDINARY' | 'PROPERTY_TYPE_SUBPROPERTY' | 'PROPERTY_TYPE_ROLLUP';
  /** `accounts/<id>` (default, the property's account) or, for a subproperty, `properties/<source id>`. */
  parent?: string;
}

/** A Google Analytics account (not a service account): what the Admin API lists properties under. */
export interface GaAccountSpec {
  /** numeric account id */
  id: string;
  /** Default `Account <id>`. */
  displayName?: string;
}

export interface AccountSpec {
  clientEmail: string;
  publicKeyPem: string;
  privateKeyId?: string;
  projectId?: string;
}

/** Remaining tokens in the current windows, and the concurrent-request limit. */
export interface QuotaSettings {
  tokensPerDay?: number;
  tokensPerHour?: number;
  tokensPerProjectPerHour?: number;
  concurrentRequests?: number;
}

export interface FakeCounts {
  token: number;
  tokenOk: number;
  runReport: number;
  runReportOk: number;
  /** runReport requests per property, whatever their outcome. */
  byProperty: Record<string, number>;
}

/** A Search Console property. */
export interface SiteSpec {
  /** As Search Console names it: `sc-domain:example.com` (Domain property) or `https://www.example.com/` (URL-prefix, trailing slash). */
  url: string;
  /** Distinct search queries the site is found with. Default 40. */
  queries?: number;
  /** Distinct pages of the site shown in results. Default 12. */
  pages?: number;
  /** Seed of the site's data, so two sites with one seed differ only by URL. Default: derived from the URL. */
  seed?: number;
  /** Share (0..1) of clicks from anonymized (rare) queries, left out of any grouping by query. Default 0.2. */
  anonymizedShare?: number;
}

/** A principal's permission on a Search Console site (https://support.google.com/webmasters/answer/2451999). */
export type SitePermissionLevel = 'siteOwner' | 'siteFullUser' | 'siteRestrictedUser' | 'siteUnverifiedUser';

/** What FakeGoogle.searchAnalyticsRows computes: the request body's fields that shape the rows. */
export interface SearchAnalyticsQuery {
  /** YYYY-MM-DD, Pacific days. */
  startDate: string;
  endDate: string;
  /** of date, query, page, country, device, searchAppearance */
  dimensions: string[];
  /** web (default), image, video, news, discover, googleNews */
  type?: string;
  /** final (default) or all */
  dataState?: 'final' | 'all';
  /** auto (default), byPage, byProperty */
  aggregationType?: string;
  /** filters, all of which a row must pass (groupType `and`, the only one Google has) */
  dimensionFilterGroups?: Array<{ groupType?: 'and'; filters: SearchAnalyticsFilter[] }>;
}

/** One filter of a dimensionFilterGroup: `operator` defaults to `equals`. */
export interface SearchAnalyticsFilter {
  /** query, page, country, device or searchAppearance */
  dimension: string;
  operator?: 'equals' | 'notEquals' | 'contains' | 'notContains' | 'includingRegex' | 'excludingRegex';
  expression: string;
}

/** One row of searchAnalytics.query's answer. */
export interface SearchAnalyticsRow {
  keys: string[];
  clicks: number;
  impressions: number;
  ctr: number;
  position: number;
}
