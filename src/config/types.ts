/** The configuration's shape once loaded and checked (load.ts): what the rest of the code reads. */

export interface ReportDefinition {
  name: string;
  /** GA4 dimension API names, never including `date` (it is always requested). */
  dimensions: string[];
  metrics: string[];
  /** `YYYY-MM-DD`, `NdaysAgo` or `yesterday`. */
  startDate: string;
  refreshDays: number;
  /**
   * What else than its names the rows depend on, as one string (a Search Console report's search
   * type and aggregation); a date stored under another variant is fetched again. GA4: none.
   */
  variant?: string;
}

export interface PropertyConfig {
  id: string;
  reports: string[];
  schedule: string;
  /** Absolute path of the credentials file for this property; '' for Application Default Credentials. */
  credentials: string;
  /** Service account whose tokens are minted with those credentials; '' for none. */
  impersonate: string;
}

/** Search Console's `dimensions` (API names); `date` is always requested and never listed in a definition. */
export type SearchConsoleDimension = 'query' | 'page' | 'country' | 'device' | 'searchAppearance';

/** One `searchConsole.reports` entry (searchanalytics.query's request fields, https://developers.google.com/webmaster-tools/v1/searchanalytics/query). */
export interface SearchConsoleReport {
  name: string;
  /** in definition order, never including `date` */
  dimensions: SearchConsoleDimension[];
  type: 'web' | 'image' | 'video' | 'news' | 'discover' | 'googleNews';
  /** `final`: only finished data (Pacific today-3 and before); `all`: fresh data too (through today-1) */
  dataState: 'final' | 'all';
  aggregationType: 'auto' | 'byPage' | 'byProperty';
  /** `YYYY-MM-DD`, `NdaysAgo` or `yesterday`, relative to the Pacific today */
  startDate: string;
  refreshDays: number;
}

/** One `searchConsole.sites` entry, defaults filled in (as a PropertyConfig's). */
export interface SiteConfig {
  /** as Search Console names the property: `sc-domain:example.com` or `https://www.example.com/` */
  url: string;
  reports: string[];
  schedule: string;
  credentials: string;
  impersonate: string;
}

interface SearchConsoleConfig {
  /** schema of the Search Console tables (never database.schema) */
  schema: string;
  sites: SiteConfig[];
  reports: Record<string, SearchConsoleReport>;
}

/** Property discovery (src/discovery/): which of the properties the Admin API lists are fetched. */
export interface DiscoveryConfig {
  enabled: boolean;
  /** numeric GA account ids; empty: every account */
  accounts: string[];
  /** numeric property ids never fetched through discovery */
  exclude: string[];
  /** the reports of a discovered property (every report when the key is not set) */
  reports: string[];
}

export interface Config {
  database: { url: string; schema: string };
  google: {
    credentials: string;
    impersonate: string;
    iamCredentialsRootUrl: string;
    tokenUrl: string;
    apiRootUrl: string;
    adminApiRootUrl: string;
    searchConsoleRootUrl: string;
  };
  schedule: string;
  concurrency: number;
  /** webConfigFile: absolute path of the TLS and basic-auth file (http/webConfig.ts), '' or absent for none */
  http: { host: string; port: number; webConfigFile?: string };
  log: { level: string; format: 'json' | 'pretty' | null };
  shutdown: { graceSeconds: number };
  fetch: {
    maxDaysPerRun: number;
    pageSize: number;
    perPropertyConcurrency: number;
    timeoutSeconds: number;
    maxAttempts: number;
    jobDeadlineSeconds: number;
    quotaReserve: number;
    maxServerErrorsPerHour: number;
  };
  properties: PropertyConfig[];
  reports: Record<string, ReportDefinition>;
  discovery: DiscoveryConfig;
  searchConsole: SearchConsoleConfig;
}
