/** The configuration's shape once loaded and checked (load.ts): what the rest of the code reads. */

export interface ReportDefinition {
  name: string;
  /** GA4 dimension API names, never including `date` (it is always requested). */
  dimensions: string[];
  metrics: string[];
  /** `YYYY-MM-DD`, `NdaysAgo` or `yesterday`. */
  startDate: string;
  refreshDays: number;
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
  google: { credentials: string; impersonate: string; iamCredentialsRootUrl: string; tokenUrl: string; apiRootUrl: string; adminApiRootUrl: string };
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
}
