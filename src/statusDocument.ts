/**
 * The status document's shape: what `/api/status` answers and the status page renders (built by
 * StatusView in status.ts). Field names are a contract with whoever reads the JSON.
 */

/** The outcome of the last SIGHUP. */
export interface ReloadRecord {
  at: number;
  ok: boolean;
  /** why it was refused; null when it was applied */
  error: string | null;
}

/** Why a report is shown first: its last run failed, it missed its schedule, or dates are missing. */
export type Attention = 'failing' | 'stale' | 'gaps';

export interface ReportStatus {
  /** a GA4 property, or a Search Console site (`property` is then the site's URL, as in the metrics' `property` label) */
  kind: 'ga4' | 'searchConsole';
  property: string;
  report: string;
  timeZone: string | null;
  running: boolean;
  lastSuccess: string | null;
  lastRun: string | null;
  dataThrough: string | null;
  firstDate: string | null;
  storedDays: number;
  /** dates from the report's start date through the property's yesterday (a site's: the newest date Google serves for the report's dataState, Pacific) that are not stored */
  gaps: number;
  datesPending: number | null;
  nextRun: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
  /** no successful run since the schedule fired (or the daemon started) more than an hour ago */
  stale: boolean;
  attention: Attention | null;
  /** where discovery found the property, when discovery (not `properties`) put it in the configuration */
  discovered: { account: string; accountName: string; displayName: string; propertyType: string } | null;
}

/** Discovery in the status document. */
interface DiscoveryDocument {
  running: boolean;
  lastRun: string | null;
  lastSuccess: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
  nextRun: string | null;
  /** accounts and properties the last good listing returned */
  accounts: number;
  listed: number;
  /** kept by discovery.accounts and discovery.exclude (ga_collector_properties_discovered) */
  kept: number;
  /** of those, not in `properties`: fetched because discovery found them */
  added: number;
  /** discovered properties the Admin API stopped listing, newest first; their data stays */
  disappeared: Array<{ property: string; displayName: string; account: string; accountName: string; at: string }>;
}

export interface StatusDocument {
  generatedAt: string;
  version: string;
  /** readAt: when the ledger figures (stored days, gaps, data through) were read */
  database: { reachable: boolean; error?: string; readAt?: string };
  tokens: Array<{ account: string; keyId: string; valid: boolean; expiresAt: string | null; failingSince: string | null; lastError: string | null }>;
  /** every configured property and report in configuration order; with a page, that page's, attention first */
  reports: ReportStatus[];
  recentFailures: Array<{ at: string; property: string; report: string; error: string }>;
  /**
   * per property of `reports`: the first metric of its first report, from GA's per-date totals
   * (`source` totals); per site: clicks per date summed over the stored rows of its report with the
   * fewest dimensions (`source` rowSum: grouped by date alone, the site's total; by query, the top
   * rows Google served without anonymized queries; by page, counted per page), that report's
   * `dimensions` besides date and its `aggregationType` given so the sum can be read
   */
  series: Array<{
    kind: 'ga4' | 'searchConsole';
    property: string;
    report: string;
    metric: string;
    source: 'totals' | 'rowSum';
    /** a site's chart: the dimensions its report groups by besides date ([]: date alone) */
    dimensions?: string[];
    /** a site's chart: its report's aggregationType (auto, byPage, byProperty) */
    aggregationType?: string;
    points: Array<{ date: string; value: number }>;
  }>;
  /** property discovery; null when it is off */
  discovery: DiscoveryDocument | null;
  /** the last SIGHUP, applied or refused; null when there was none */
  lastReload: { at: string; ok: boolean; error: string | null } | null;
  /** counts over every property and site (`properties` GA4's, `sites` Search Console's, `needAttention` of both), whatever the page */
  summary: {
    properties: number;
    sites: number;
    needAttention: number;
    reports: number;
    failing: number;
    stale: number;
    withGaps: number;
    running: number;
  };
  /** null when everything was asked for; `properties` counts the cards paged, sites among them */
  page: { page: number; perPage: number; pages: number; properties: number } | null;
}

/** Which properties: all (no page), or a page of them ordered attention first. */
export interface StatusQuery {
  page?: number;
  perPage?: number;
}

/** The token fields the page shows. */
export interface TokenView {
  account: string;
  keyId: string;
  valid: boolean;
  expiresAt: number | null;
  failingSince: number | null;
  lastError: string | null;
}
