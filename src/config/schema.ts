/**
 * The convict schema: every key that has one value (not the `reports` map, not the entries of
 * `properties`, which reports.ts and properties.ts check), with its documentation, default and
 * environment variable. The README's configuration table is generated from it
 * (scripts/config-reference.ts).
 */
import convict from 'convict';
import { isValidSchedule } from '../schedule/cron.js';
import {
  GOOGLE_ADMIN_API_ROOT_URL,
  GOOGLE_DATA_API_ROOT_URL,
  GOOGLE_IAM_CREDENTIALS_ROOT_URL,
  GOOGLE_SEARCH_CONSOLE_ROOT_URL,
  GOOGLE_TOKEN_URL,
} from './googleUrls.js';
import { NUMBER_FORMATS } from './numberFormats.js';
import { serviceAccountEmailProblem } from './problems.js';
import type { Config } from './types.js';

// int, nat, port, number: a string is read whole (`4x`, `1e1`, `0x10` are refused), never parseInt's prefix
for (const format of NUMBER_FORMATS) convict.addFormat(format);

convict.addFormat({
  name: 'cron',
  validate(value: unknown) {
    if (!isValidSchedule(value)) {
      throw new Error(`must be a cron expression like "0 4 * * *", got ${JSON.stringify(value)}`);
    }
  },
});

convict.addFormat({
  name: 'url',
  validate(value: unknown) {
    if (typeof value !== 'string') throw new Error('must be a URL');
    if (value === '') return;
    try {
      new URL(value);
    } catch {
      // never echo the value: it may be a connection string with a password
      throw new Error('must be a URL');
    }
  },
});

convict.addFormat({
  name: 'service-account-email',
  validate(value: unknown) {
    if (typeof value !== 'string') throw new Error('must be a service account email');
    const problem = value === '' ? null : serviceAccountEmailProblem(value);
    if (problem) throw new Error(problem);
  },
});

convict.addFormat({
  name: 'property-list',
  validate(value: unknown) {
    if (!Array.isArray(value)) throw new Error('must be a list of { id, reports?, schedule?, credentials?, impersonate? }');
  },
  coerce(value: unknown) {
    // From the environment: "123,456" is a list of property ids with default settings.
    if (typeof value === 'string') {
      return value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
        .map((id) => ({ id }));
    }
    return value;
  },
});

convict.addFormat({
  name: 'site-list',
  validate(value: unknown) {
    if (!Array.isArray(value)) throw new Error('must be a list of { url, reports?, schedule?, credentials?, impersonate? }');
  },
});

convict.addFormat({
  name: 'flag',
  // convict's own Boolean takes every string but "false" for true, so GA_COLLECTOR_DISCOVERY=0 would switch it on
  validate(value: unknown) {
    if (typeof value !== 'boolean') throw new Error('must be true or false');
  },
  coerce(value: unknown) {
    if (typeof value !== 'string') return value;
    const v = value.trim().toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(v)) return true;
    if (['false', '0', 'no', 'off', ''].includes(v)) return false;
    return value;
  },
});

convict.addFormat({
  name: 'id-list',
  validate(value: unknown) {
    if (!Array.isArray(value)) throw new Error('must be a list of numeric ids');
  },
});

convict.addFormat({
  name: 'name-list',
  validate(value: unknown) {
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v.length > 0)) throw new Error('must be a list of report names');
  },
});

/** What convict hands back: the schema's keys with their values, `properties` still unchecked. */
export interface ConvictShape {
  database: Config['database'];
  google: Config['google'];
  schedule: string;
  concurrency: number;
  http: { host: string; port: number; webConfigFile: string };
  log: Config['log'];
  shutdown: Config['shutdown'];
  fetch: Config['fetch'];
  properties: unknown[];
  discovery: { enabled: boolean; accounts: unknown[]; exclude: unknown[]; reports: string[] | null };
  searchConsole: { schema: string; sites: unknown[] };
}

const schema: convict.Schema<ConvictShape> = {
  database: {
    url: { doc: 'PostgreSQL connection string (required except for demo).', format: 'url', default: '', env: 'DATABASE_URL', sensitive: true },
    schema: { doc: 'Schema that holds every table and view.', format: String, default: 'ga4', env: 'GA_COLLECTOR_DB_SCHEMA' },
  },
  google: {
    credentials: {
      doc: "A Google credentials JSON file of any kind Google's client libraries accept: service_account (a key), external_account (Workload Identity Federation), impersonated_service_account, authorized_user; a bare file name is also looked up in $CREDENTIALS_DIRECTORY (systemd LoadCredential=). Unset: Application Default Credentials (gcloud's file, then the metadata server of GCE/GKE/Cloud Run, at GCE_METADATA_HOST when set).",
      format: String,
      default: '',
      env: 'GOOGLE_APPLICATION_CREDENTIALS',
    },
    impersonate: {
      doc: 'A service account email: tokens are minted for it (IAM Credentials generateAccessToken) with the credentials above, which need the Token Creator role (roles/iam.serviceAccountTokenCreator) on it.',
      format: 'service-account-email',
      default: '',
      env: 'GA_COLLECTOR_IMPERSONATE',
    },
    iamCredentialsRootUrl: {
      doc: "Root of the IAM Credentials API (impersonation); a credentials file's own service_account_impersonation_url wins.",
      format: 'url',
      default: GOOGLE_IAM_CREDENTIALS_ROOT_URL,
      env: 'GA_COLLECTOR_IAM_CREDENTIALS_ROOT_URL',
    },
    tokenUrl: {
      doc: `Where a key's signed JWT is exchanged for an access token (key files only; other credentials files name their own endpoints); default: the key file's token_uri, else ${GOOGLE_TOKEN_URL}.`,
      format: 'url',
      default: '',
      env: 'GA_COLLECTOR_TOKEN_URL',
    },
    apiRootUrl: { doc: 'Root of the Data API.', format: 'url', default: GOOGLE_DATA_API_ROOT_URL, env: 'GA_COLLECTOR_API_ROOT_URL' },
    adminApiRootUrl: {
      doc: 'Root of the GA Admin API (property discovery).',
      format: 'url',
      default: GOOGLE_ADMIN_API_ROOT_URL,
      env: 'GA_COLLECTOR_ADMIN_API_ROOT_URL',
    },
    searchConsoleRootUrl: {
      doc: 'Root of the Search Console API (searchanalytics.query).',
      format: 'url',
      default: GOOGLE_SEARCH_CONSOLE_ROOT_URL,
      env: 'GA_COLLECTOR_SEARCH_CONSOLE_ROOT_URL',
    },
  },
  schedule: {
    doc: "Default cron expression for every property's fetch (server's local time).",
    format: 'cron',
    default: '0 4 * * *',
    env: 'GA_COLLECTOR_SCHEDULE',
  },
  concurrency: { doc: 'API requests in flight at once, across all properties.', format: 'nat', default: 4, env: 'GA_COLLECTOR_CONCURRENCY' },
  http: {
    host: { doc: 'Address of the metrics, health and status server.', format: String, default: '127.0.0.1', env: 'GA_COLLECTOR_HTTP_HOST' },
    port: { doc: 'Port of the metrics, health and status server (0 picks a free one).', format: 'port', default: 9464, env: 'GA_COLLECTOR_HTTP_PORT' },
    webConfigFile: {
      doc: 'A web config file as Prometheus exporters take it (YAML: tls_server_config { cert_file, key_file }, basic_auth_users { name: bcrypt hash }): HTTPS and basic authentication for every path but /healthz. Relative to the config file; re-read when it changes.',
      format: String,
      default: '',
      env: 'GA_COLLECTOR_WEB_CONFIG_FILE',
    },
  },
  log: {
    level: { doc: 'pino log level.', format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', env: 'LOG_LEVEL' },
    format: {
      doc: 'json: one JSON object per line (pino); pretty: readable lines (pino-pretty). Unset: pretty on a terminal, json otherwise.',
      format: ['json', 'pretty'],
      default: null,
      nullable: true,
      env: 'LOG_FORMAT',
    },
  },
  shutdown: {
    graceSeconds: {
      doc: 'On SIGTERM/SIGINT, how long in-flight fetches may finish before they are aborted.',
      format: 'nat',
      default: 30,
      env: 'GA_COLLECTOR_SHUTDOWN_GRACE_SECONDS',
    },
  },
  fetch: {
    maxDaysPerRun: {
      doc: "At most this many dates per property and report in one run, so one property's backlog cannot eat the others' quota; the rest follows on the next runs.",
      format: 'nat',
      default: 400,
      env: 'GA_COLLECTOR_MAX_DAYS_PER_RUN',
    },
    pageSize: {
      // Memory grows with the page: a page is read as it arrives (ga4/pageStream.ts) and holds its
      // row text, about half its JSON, until its dates are stored; up to 100,000 rows of pages are
      // read ahead (ga4/pageWindow.ts). Fewer, larger pages cost fewer requests. Peak RSS of the
      // 1,000,000-row backfill at 25000 rows a page: README, Performance (npm run bench).
      doc: 'Rows asked per runReport page (Google returns at most 250000); memory grows with it.',
      format: 'nat',
      default: 25000,
      env: 'GA_COLLECTOR_PAGE_SIZE',
    },
    perPropertyConcurrency: {
      // Google: 10 concurrent requests for a standard property, 50 for Analytics 360, counted over
      // every client of the property (developers.google.com/analytics/devguides/reporting/data/v1/quotas);
      // 4 leaves room for the others (Looker Studio, the GA interface's exports).
      doc: "API requests one property may have in flight at once, over all its reports, within concurrency: a long range's pages are fetched that many at a time, up to 100,000 rows of pages read ahead in memory. Google allows 10 for a standard property, 50 for Analytics 360, over every client of the property.",
      format: 'nat',
      default: 4,
      env: 'GA_COLLECTOR_PER_PROPERTY_CONCURRENCY',
    },
    timeoutSeconds: { doc: 'Timeout of one API request.', format: 'nat', default: 120, env: 'GA_COLLECTOR_REQUEST_TIMEOUT_SECONDS' },
    maxAttempts: {
      doc: 'Attempts per API request for retryable failures (429, 5xx, timeouts, resets).',
      format: 'nat',
      default: 6,
      env: 'GA_COLLECTOR_MAX_ATTEMPTS',
    },
    jobDeadlineSeconds: {
      doc: 'A job (one property and report) starts no retry that would end later than this after it began, and one still running then is aborted by the watchdog (logged as job_stuck, counted as a failure, tried again after a pause); what is left is due again on the next run.',
      format: 'nat',
      default: 3600,
      env: 'GA_COLLECTOR_JOB_DEADLINE_SECONDS',
    },
    quotaReserve: {
      doc: "Share of a property's hourly or daily quota tokens kept in reserve: below it, the rest of a backlog waits for the next quota window.",
      format: 'number',
      default: 0.1,
      env: 'GA_COLLECTOR_QUOTA_RESERVE',
    },
    maxServerErrorsPerHour: {
      doc: 'Server errors (5xx) a property may answer in an hour, all daemons on the database together, before it is left alone until its oldest is an hour old (Google allows 10 per project and property).',
      format: 'nat',
      default: 8,
      env: 'GA_COLLECTOR_MAX_SERVER_ERRORS_PER_HOUR',
    },
  },
  properties: {
    doc: 'List of { id, reports?, schedule?, credentials?, impersonate? }; credentials and impersonate (as the google. keys) give a property another principal; from the environment, a comma-separated list of ids.',
    format: 'property-list',
    default: [],
    env: 'GA_COLLECTOR_PROPERTIES',
  },
  discovery: {
    enabled: {
      doc: "Also fetch every GA4 property the principal of google.credentials can read, as the Admin API lists them (accountSummaries.list): at start, on SIGHUP and once a day. A new property is backfilled from each report's startDate; one that is no longer listed is logged and shown on the status page, and its data stays.",
      format: 'flag',
      default: false,
      env: 'GA_COLLECTOR_DISCOVERY',
    },
    accounts: {
      doc: 'Discover only the properties of these GA account ids (numeric, GA Admin > Account details); empty: every account.',
      format: 'id-list',
      default: [],
    },
    exclude: { doc: 'Property ids discovery never fetches (an entry of properties is fetched all the same).', format: 'id-list', default: [] },
    reports: {
      doc: 'The reports fetched for discovered properties; unset: every report. An entry of properties with the same id wins.',
      format: 'name-list',
      default: null,
      nullable: true,
    },
  },
  searchConsole: {
    sites: {
      doc: 'Search Console sites to fetch: list of { url, reports?, schedule?, credentials?, impersonate? }; url as Search Console names the property (sc-domain:example.com, or https://www.example.com/ with its trailing slash); the rest as in properties (reports default to every searchConsole.reports entry). The principal must be a user of the site (Search Console > Settings > Users and permissions).',
      format: 'site-list',
      default: [],
    },
    schema: {
      doc: 'Schema of the Search Console tables (one relation per searchConsole.reports entry, fetch_days); not database.schema.',
      format: String,
      default: 'gsc',
      env: 'GA_COLLECTOR_SEARCH_CONSOLE_SCHEMA',
    },
  },
};

export const DEFAULT_REPORTS: Record<string, unknown> = {
  daily: { dimensions: ['date'], metrics: ['sessions', 'totalUsers', 'screenPageViews'] },
};

/**
 * `reports` is a map whose keys are the user's report names. convict would take those names for
 * schema keys of its own, so the map is taken out of the file before convict sees it and checked
 * by reports.ts instead; it is documented beside the schema for the reference.
 */
export const REPORTS_DOC = {
  doc: 'Named report definitions: { dimensions, metrics, startDate (YYYY-MM-DD or NdaysAgo, default 30daysAgo), refreshDays (default 3) }.',
  default: DEFAULT_REPORTS,
};

export const DEFAULT_SEARCH_CONSOLE_REPORTS: Record<string, unknown> = {
  performance: { dimensions: ['date', 'query', 'page', 'country', 'device'] },
};

/** `searchConsole.reports`, taken out of the file before convict sees it (as `reports`), checked by config/searchConsole.ts. */
export const SEARCH_CONSOLE_REPORTS_DOC = {
  doc: 'Named Search Console report definitions: { dimensions (of date, query, page, country, device, searchAppearance; searchAppearance only with date), type (web default, image, video, news, discover, googleNews), dataState (final default: through the Pacific today-3; all: fresh data through today-1), aggregationType (auto default, byPage, byProperty), startDate (YYYY-MM-DD or NdaysAgo, default 480daysAgo), refreshDays (default 4) }. Names are unique across reports and searchConsole.reports.',
  default: DEFAULT_SEARCH_CONSOLE_REPORTS,
};

/** The schema, for the generated configuration reference and for convict. */
export function configSchema(): convict.Schema<ConvictShape> {
  return schema;
}

/** One key of the schema with one value: its dotted name, environment variable and whether it is secret. */
export interface SchemaLeaf {
  key: string;
  env: string | undefined;
  sensitive: boolean;
}

/** Every key of the schema, in schema order (`database.url`, ..., `properties`). */
export function schemaLeaves(): SchemaLeaf[] {
  const out: SchemaLeaf[] = [];
  const walk = (node: object, prefix: string) => {
    for (const [k, v] of Object.entries(node)) {
      const key = prefix ? `${prefix}.${k}` : k;
      if (typeof v !== 'object' || v === null) continue;
      if ('doc' in v && 'default' in v) {
        out.push({ key, env: 'env' in v && typeof v.env === 'string' ? v.env : undefined, sensitive: 'sensitive' in v && v.sensitive === true });
      } else {
        walk(v, key);
      }
    }
  };
  walk(schema, '');
  return out;
}
