/**
 * Configuration: one convict schema, loaded from a JSON or YAML file and the environment, then
 * checked strictly. Every problem becomes a UsageError whose message names the key, so the
 * command line can print one line and exit 2.
 */
import fs from 'node:fs';
import path from 'node:path';
import convict from 'convict';
import { isValidSchedule } from './schedule/cron.js';
import YAML from 'yaml';
import { UsageError } from './errors.js';
import { columnName, validateReportName } from './store/identifiers.js';
import { reportNameCollision } from './store/reservedNames.js';

export interface ReportDefinition {
  name: string;
  /** GA4 dimension API names, never including `date` (it is always requested). */
  dimensions: string[];
  metrics: string[];
  /** `YYYY-MM-DD` or `NdaysAgo`. */
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

export interface Config {
  database: { url: string; schema: string };
  google: { credentials: string; impersonate: string; iamCredentialsRootUrl: string; tokenUrl: string; apiRootUrl: string };
  schedule: string;
  concurrency: number;
  /** webConfigFile: absolute path of the TLS and basic-auth file (http/webConfig.ts), '' or absent for none */
  http: { host: string; port: number; webConfigFile?: string };
  log: { level: string; format: 'json' | 'pretty' | null };
  shutdown: { graceSeconds: number };
  fetch: {
    maxDaysPerRun: number;
    pageSize: number;
    timeoutSeconds: number;
    maxAttempts: number;
    jobDeadlineSeconds: number;
    quotaReserve: number;
    maxServerErrorsPerHour: number;
  };
  properties: PropertyConfig[];
  reports: Record<string, ReportDefinition>;
}

export const DEFAULT_TOKEN_URL = 'https://oauth2.googleapis.com/token';
export const DEFAULT_API_ROOT_URL = 'https://analyticsdata.googleapis.com/';
const DEFAULT_IAM_CREDENTIALS_ROOT_URL = 'https://iamcredentials.googleapis.com/';

/** A service account's email, as IAM Credentials takes it (user accounts cannot be impersonated). */
function serviceAccountEmailProblem(value: string): string | null {
  if (!/^[^@\s]+@[^@\s]+$/.test(value)) return `must be a service account email (NAME@PROJECT.iam.gserviceaccount.com), got ${JSON.stringify(value)}`;
  if (!/\.gserviceaccount\.com$/i.test(value)) return `must be a service account email (NAME@PROJECT.iam.gserviceaccount.com): only service accounts can be impersonated, got ${JSON.stringify(value)}`;
  return null;
}

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DAYS_AGO_RE = /^(\d+)daysAgo$/;

export function isValidDate(value: string): boolean {
  const m = DATE_RE.exec(value);
  if (!m) return false;
  const d = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === value;
}

function isStartDate(value: string): boolean {
  return isValidDate(value) || DAYS_AGO_RE.test(value) || value === 'yesterday';
}


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


const schema = {
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
      default: DEFAULT_IAM_CREDENTIALS_ROOT_URL,
      env: 'GA_COLLECTOR_IAM_CREDENTIALS_ROOT_URL',
    },
    tokenUrl: {
      doc: "Where a key's signed JWT is exchanged for an access token (key files only; other credentials files name their own endpoints); default: the key file's token_uri, else https://oauth2.googleapis.com/token.",
      format: 'url',
      default: '',
      env: 'GA_COLLECTOR_TOKEN_URL',
    },
    apiRootUrl: { doc: 'Root of the Data API.', format: 'url', default: DEFAULT_API_ROOT_URL, env: 'GA_COLLECTOR_API_ROOT_URL' },
  },
  schedule: { doc: "Default cron expression for every property's fetch (server's local time).", format: 'cron', default: '0 4 * * *', env: 'GA_COLLECTOR_SCHEDULE' },
  concurrency: { doc: 'API requests in flight at once, across all properties.', format: 'nat', default: 4, env: 'GA_COLLECTOR_CONCURRENCY' },
  http: {
    host: { doc: 'Address of the metrics, health and status server.', format: String, default: '127.0.0.1', env: 'GA_COLLECTOR_HTTP_HOST' },
    port: { doc: 'Port of the metrics, health and status server (0 picks a free one).', format: 'port', default: 9464, env: 'GA_COLLECTOR_HTTP_PORT' },
    webConfigFile: {
      doc: "A web config file as Prometheus exporters take it (YAML: tls_server_config { cert_file, key_file }, basic_auth_users { name: bcrypt hash }): HTTPS and basic authentication for every path but /healthz. Relative to the config file; re-read when it changes.",
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
      // Memory grows with the page: while a page arrives and is read it is held about four times
      // as bytes (socket chunks, the whole body, the body gaxios hands over, its row text), plus
      // the next page read ahead. 25000 rows keep a 1,000,000-row backfill near 160 MB RSS; 100000
      // took it past 230 MB (npm run bench). Fewer, larger pages cost fewer requests.
      doc: 'Rows asked per runReport page (Google returns at most 250000); memory grows with it.',
      format: 'nat',
      default: 25000,
      env: 'GA_COLLECTOR_PAGE_SIZE',
    },
    timeoutSeconds: { doc: 'Timeout of one API request.', format: 'nat', default: 120, env: 'GA_COLLECTOR_REQUEST_TIMEOUT_SECONDS' },
    maxAttempts: { doc: 'Attempts per API request for retryable failures (429, 5xx, timeouts, resets).', format: 'nat', default: 6, env: 'GA_COLLECTOR_MAX_ATTEMPTS' },
    jobDeadlineSeconds: {
      doc: 'A job (one property and report) starts no retry that would end later than this after it began, and one still running then is aborted by the watchdog (logged as job_stuck, counted as a failure, tried again after a pause); what is left is due again on the next run.',
      format: 'nat',
      default: 3600,
      env: 'GA_COLLECTOR_JOB_DEADLINE_SECONDS',
    },
    quotaReserve: {
      doc: "Share of a property's hourly or daily quota tokens kept in reserve: below it, the rest of a backlog waits for the next quota window.",
      format: Number,
      default: 0.1,
      env: 'GA_COLLECTOR_QUOTA_RESERVE',
    },
    maxServerErrorsPerHour: {
      doc: 'Server errors (5xx) a property may answer in an hour before it is left alone until the hour is over (Google limits them per project and property).',
      format: 'nat',
      default: 8,
      env: 'GA_COLLECTOR_MAX_SERVER_ERRORS_PER_HOUR',
    },
  },
  properties: {
    doc: 'List of { id, reports?, schedule?, credentials?, impersonate? }; credentials and impersonate (as the google. keys) give a property another principal; from the environment, a comma-separated list of ids.',
    format: 'property-list',
    default: [] as unknown[],
    env: 'GA_COLLECTOR_PROPERTIES',
  },
};

const DEFAULT_REPORTS: Record<string, unknown> = {
  daily: { dimensions: ['date'], metrics: ['sessions', 'totalUsers', 'screenPageViews'] },
};

/**
 * `reports` is a map whose keys are the user's report names. convict would take those names for
 * schema keys of its own, so the map is taken out of the file before convict sees it and checked
 * here instead (normaliseReports); it is documented beside the schema for the reference.
 */
export const REPORTS_DOC = {
  doc: 'Named report definitions: { dimensions, metrics, startDate (YYYY-MM-DD or NdaysAgo, default 30daysAgo), refreshDays (default 3) }.',
  default: DEFAULT_REPORTS,
};

/** The schema, for the generated configuration reference. */
export function configSchema(): typeof schema {
  return schema;
}

export interface LoadOptions {
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** demo and a few commands run without a database URL or key file */
  requireDatabase?: boolean;
  requireCredentials?: boolean;
}

/** Loads, validates and normalises the configuration. Throws UsageError naming the key. */
export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env['GA_COLLECTOR_CONFIG'];
  let raw: convict.Config<any>;
  try {
    raw = convict(schema, { env, args: [] });
  } catch (err) {
    throw new UsageError(`config: ${firstLine(err)}`);
  }
  let reportsInput: Record<string, unknown> = DEFAULT_REPORTS;
  if (file) {
    const doc = readConfigFile(file);
    if ('reports' in doc) {
      const r = doc['reports'];
      if (typeof r !== 'object' || r === null || Array.isArray(r)) {
        throw new UsageError('config: reports: must be a map of report name to { dimensions, metrics, startDate?, refreshDays? }');
      }
      reportsInput = r as Record<string, unknown>;
      delete doc['reports'];
    }
    try {
      raw.load(doc);
    } catch (err) {
      throw new UsageError(`config: ${convictMessage(err)}`);
    }
  }
  try {
    raw.validate({ allowed: 'strict' });
  } catch (err) {
    throw new UsageError(`config: ${convictMessage(err)}`);
  }
  const c = raw.getProperties() as unknown as {
    database: Config['database'];
    google: Config['google'];
    schedule: string;
    concurrency: number;
    http: Config['http'];
    log: Config['log'];
    shutdown: Config['shutdown'];
    fetch: Config['fetch'];
    properties: unknown[];
  };
  if (c.concurrency < 1) throw new UsageError('config: concurrency: must be at least 1');
  if (c.fetch.maxDaysPerRun < 1) throw new UsageError('config: fetch.maxDaysPerRun: must be at least 1');
  if (c.fetch.pageSize < 1 || c.fetch.pageSize > 250000) throw new UsageError('config: fetch.pageSize: must be between 1 and 250000');
  if (c.fetch.maxAttempts < 1) throw new UsageError('config: fetch.maxAttempts: must be at least 1');
  if (!(c.fetch.quotaReserve >= 0 && c.fetch.quotaReserve < 1)) throw new UsageError('config: fetch.quotaReserve: must be a share from 0 to below 1, e.g. 0.1');
  if (c.fetch.maxServerErrorsPerHour < 1) throw new UsageError('config: fetch.maxServerErrorsPerHour: must be at least 1');
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(c.database.schema)) {
    throw new UsageError(`config: database.schema: must be a lower-case SQL identifier, got ${JSON.stringify(c.database.schema)}`);
  }
  if (opts.requireDatabase !== false && !c.database.url) {
    throw new UsageError('config: database.url: required (set it in the config file or DATABASE_URL)');
  }
  const reports = normaliseReports(reportsInput);
  const baseDir = file ? path.dirname(path.resolve(file)) : process.cwd();
  const properties = normaliseProperties(c.properties, reports, c.schedule, c.google, baseDir, env, opts.requireCredentials !== false);
  return {
    database: c.database,
    google: {
      ...c.google,
      credentials: c.google.credentials ? resolveCredentials(c.google.credentials, 'google.credentials', baseDir, env, false) : '',
    },
    schedule: c.schedule,
    concurrency: c.concurrency,
    http: { ...c.http, webConfigFile: c.http.webConfigFile ? path.resolve(baseDir, c.http.webConfigFile) : '' },
    log: c.log,
    shutdown: c.shutdown,
    fetch: c.fetch,
    properties,
    reports,
  };
}

function normaliseReports(input: Record<string, unknown>): Record<string, ReportDefinition> {
  const out: Record<string, ReportDefinition> = {};
  const names = Object.keys(input);
  if (names.length === 0) throw new UsageError('config: reports: at least one report is needed');
  for (const name of names) {
    const key = `reports.${name}`;
    const problem = validateReportName(name);
    if (problem) throw new UsageError(`config: ${key}: ${problem}`);
    const def = input[name];
    if (typeof def !== 'object' || def === null || Array.isArray(def)) {
      throw new UsageError(`config: ${key}: must be { dimensions, metrics, startDate?, refreshDays? }`);
    }
    const d = def as Record<string, unknown>;
    for (const k of Object.keys(d)) {
      if (!['dimensions', 'metrics', 'startDate', 'refreshDays'].includes(k)) {
        throw new UsageError(`config: ${key}.${k}: unknown key (allowed: dimensions, metrics, startDate, refreshDays)`);
      }
    }
    const dimensions = stringList(d['dimensions'] ?? [], `${key}.dimensions`).filter((x) => x !== 'date');
    const metrics = stringList(d['metrics'], `${key}.metrics`);
    if (metrics.length === 0) throw new UsageError(`config: ${key}.metrics: at least one metric is needed`);
    if (metrics.length > 10) throw new UsageError(`config: ${key}.metrics: the Data API allows at most 10 metrics per report`);
    if (dimensions.length > 8) throw new UsageError(`config: ${key}.dimensions: the Data API allows at most 9 dimensions per report, date included`);
    const startDate = d['startDate'] ?? '30daysAgo';
    if (typeof startDate !== 'string' || !isStartDate(startDate)) {
      throw new UsageError(`config: ${key}.startDate: must be YYYY-MM-DD (a real date) or NdaysAgo, got ${JSON.stringify(startDate)}`);
    }
    const refreshDays = d['refreshDays'] ?? 3;
    if (typeof refreshDays !== 'number' || !Number.isInteger(refreshDays) || refreshDays < 0 || refreshDays > 90) {
      throw new UsageError(`config: ${key}.refreshDays: must be a whole number from 0 to 90, got ${JSON.stringify(refreshDays)}`);
    }
    const columns = new Map<string, string>();
    for (const field of [...dimensions, ...metrics]) {
      const col = columnName(field);
      const clash = columns.get(col);
      if (clash) throw new UsageError(`config: ${key}: ${clash} and ${field} map to the same column ${col}`);
      if (col === 'property_id' || col === 'date') throw new UsageError(`config: ${key}: ${field} maps to the reserved column ${col}`);
      columns.set(col, field);
    }
    out[name] = { name, dimensions, metrics, startDate, refreshDays };
  }
  const collision = reportNameCollision(names);
  if (collision) throw new UsageError(`config: ${collision}`);
  return out;
}

function normaliseProperties(
  input: unknown[],
  reports: Record<string, ReportDefinition>,
  defaultSchedule: string,
  google: { credentials: string; impersonate: string },
  baseDir: string,
  env: NodeJS.ProcessEnv,
  requireCredentials: boolean,
): PropertyConfig[] {
  const seen = new Set<string>();
  return input.map((item, i) => {
    const key = `properties[${i}]`;
    const p = typeof item === 'string' || typeof item === 'number' ? { id: String(item) } : item;
    if (typeof p !== 'object' || p === null || Array.isArray(p)) {
      throw new UsageError(`config: ${key}: must be { id, reports?, schedule?, credentials?, impersonate? }`);
    }
    const o = p as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (!['id', 'reports', 'schedule', 'credentials', 'impersonate'].includes(k)) {
        throw new UsageError(`config: ${key}.${k}: unknown key (allowed: id, reports, schedule, credentials, impersonate)`);
      }
    }
    const id = typeof o['id'] === 'number' ? String(o['id']) : o['id'];
    if (typeof id !== 'string' || !/^[0-9]{1,20}$/.test(id)) {
      throw new UsageError(
        `config: ${key}.id: must be the numeric GA4 property id (GA Admin > Property details), got ${JSON.stringify(o['id'])}`,
      );
    }
    if (seen.has(id)) throw new UsageError(`config: ${key}.id: property ${id} is listed twice`);
    seen.add(id);
    const reportNames = o['reports'] === undefined ? Object.keys(reports) : stringList(o['reports'], `${key}.reports`);
    for (const r of reportNames) {
      if (!reports[r]) throw new UsageError(`config: ${key}.reports: unknown report ${JSON.stringify(r)} (defined: ${Object.keys(reports).join(', ')})`);
    }
    const schedule = o['schedule'] ?? defaultSchedule;
    if (!isValidSchedule(schedule)) {
      throw new UsageError(`config: ${key}.schedule: must be a cron expression like "0 4 * * *", got ${JSON.stringify(o['schedule'])}`);
    }
    // no credentials anywhere: Application Default Credentials ('')
    let credentials = '';
    if (o['credentials'] !== undefined) {
      if (typeof o['credentials'] !== 'string' || !o['credentials']) throw new UsageError(`config: ${key}.credentials: must be a credentials file path`);
      credentials = resolveCredentials(o['credentials'], `${key}.credentials`, baseDir, env, requireCredentials);
    } else if (google.credentials) {
      credentials = resolveCredentials(google.credentials, 'google.credentials', baseDir, env, requireCredentials);
    }
    // A property naming credentials of its own is another principal: google.impersonate is not put on top of them.
    let impersonate = o['credentials'] !== undefined ? '' : google.impersonate;
    if (o['impersonate'] !== undefined) {
      if (typeof o['impersonate'] !== 'string') throw new UsageError(`config: ${key}.impersonate: must be a service account email`);
      const problem = o['impersonate'] === '' ? null : serviceAccountEmailProblem(o['impersonate']);
      if (problem) throw new UsageError(`config: ${key}.impersonate: ${problem}`);
      impersonate = o['impersonate'];
    }
    return { id, reports: reportNames, schedule, credentials, impersonate };
  });
}

/**
 * A key file path as given, relative to the config file, or (a bare name) in
 * $CREDENTIALS_DIRECTORY, where systemd's LoadCredential= puts it.
 */
export function resolveCredentials(value: string, key: string, baseDir: string, env: NodeJS.ProcessEnv, mustExist = true): string {
  const candidates: string[] = [path.resolve(baseDir, value)];
  const credDir = env['CREDENTIALS_DIRECTORY'];
  if (credDir && !value.includes('/')) candidates.unshift(path.join(credDir, value));
  for (const c of candidates) {
    if (fs.existsSync(c)) {
      try {
        fs.accessSync(c, fs.constants.R_OK);
      } catch {
        throw new UsageError(`config: ${key}: key file ${c} is not readable by this user`);
      }
      return c;
    }
  }
  if (!mustExist) return candidates[candidates.length - 1]!;
  const where = credDir && !value.includes('/') ? ` (looked in ${credDir} and ${baseDir})` : '';
  throw new UsageError(`config: ${key}: key file ${value} does not exist${where}`);
}

function readConfigFile(file: string): Record<string, unknown> {
  if (!fs.existsSync(file)) throw new UsageError(`config: file ${file} does not exist`);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`config: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? firstLine(err)}`);
  }
  let doc: unknown;
  try {
    doc = /\.json$/i.test(file) ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    throw new UsageError(`config: cannot read ${file}: ${firstLine(err)}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError(`config: ${file}: must be a map of keys (see the configuration reference)`);
  return doc as Record<string, unknown>;
}

function stringList(value: unknown, key: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v.length > 0)) {
    throw new UsageError(`config: ${key}: must be a list of names`);
  }
  return [...new Set(value as string[])];
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.trim();
}

/** convict's messages, reduced to the first problem as "key: problem". */
function convictMessage(err: unknown): string {
  const line = firstLine(err);
  const undeclared = /configuration param '([^']+)' not declared in the schema/.exec(line);
  if (undeclared) return `${undeclared[1]}: unknown key`;
  const m = /^([\w.[\]]+): (.*)$/.exec(line);
  if (m) return `${m[1]}: ${m[2]!.replace(/: value was .*$/, '')}`;
  return line;
}
