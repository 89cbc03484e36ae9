/**
 * Loading: a JSON or YAML file (`--config FILE` or GA_COLLECTOR_CONFIG), then the environment,
 * over the schema's defaults; convict checks the keys it knows, reports.ts and properties.ts the
 * rest. Every problem is one UsageError line naming the key, and, for a value that came from the
 * environment, the variable (and the value, unless it is secret). Each value's source is kept
 * for `ga-collector config`.
 */
import fs from 'node:fs';
import path from 'node:path';
import convict from 'convict';
import YAML from 'yaml';
import type { UsageError } from '../errors.js';
import { configError, firstLine, unknownKeyProblem } from './problems.js';
import { normaliseProperties, resolveCredentials } from './properties.js';
import { normaliseDiscovery } from './discovery.js';
import { normaliseReports } from './reports.js';
import { DEFAULT_REPORTS, DEFAULT_SEARCH_CONSOLE_REPORTS, configSchema, schemaLeaves, type ConvictShape } from './schema.js';
import { normaliseSearchConsoleReports, normaliseSites } from './searchConsole.js';
import type { Config } from './types.js';

export interface LoadOptions {
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** demo and a few commands run without a database URL or key file */
  requireDatabase?: boolean;
  requireCredentials?: boolean;
}

/** Where a value came from: the schema's default, the config file, or an environment variable. */
export type ValueSource = { kind: 'default' } | { kind: 'file'; file: string } | { kind: 'env'; variable: string };

export interface LoadedConfig {
  config: Config;
  /** the config file read, as given; undefined when there was none */
  file: string | undefined;
  /** how the file was named: `--config` (flag) or GA_COLLECTOR_CONFIG (env) */
  fileFrom: 'flag' | 'env' | null;
  /** per schema key (`database.url`, ..., `properties`) and for `reports` */
  sources: Record<string, ValueSource>;
}

/** Loads, validates and normalises the configuration. Throws UsageError naming the key. */
export function loadConfig(opts: LoadOptions = {}): Config {
  return loadConfigWithSources(opts).config;
}

/** loadConfig, and where each value came from. Throws UsageError naming the key. */
export function loadConfigWithSources(opts: LoadOptions = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env['GA_COLLECTOR_CONFIG'];
  const fileFrom = opts.file !== undefined ? 'flag' : file !== undefined ? 'env' : null;
  const doc = file ? readConfigFile(file) : {};
  const problem = (key: string, message: string) => sourcedProblem(key, message, env, doc, file);
  let raw: convict.Config<ConvictShape>;
  try {
    raw = convict(configSchema(), { env, args: [] });
  } catch (err) {
    throw problemFromConvict(err, problem);
  }
  const sources = valueSources(doc, env, file);
  let reportsInput: unknown = DEFAULT_REPORTS;
  if ('reports' in doc) {
    reportsInput = doc['reports'];
    delete doc['reports'];
  }
  // the same for searchConsole.reports, inside the searchConsole map convict knows
  let searchConsoleReportsInput: unknown = DEFAULT_SEARCH_CONSOLE_REPORTS;
  const searchConsoleDoc = doc['searchConsole'];
  if (typeof searchConsoleDoc === 'object' && searchConsoleDoc !== null && !Array.isArray(searchConsoleDoc) && 'reports' in searchConsoleDoc) {
    const { reports: scReports, ...rest } = searchConsoleDoc as Record<string, unknown>;
    searchConsoleReportsInput = scReports;
    doc['searchConsole'] = rest;
    sources['searchConsole.reports'] = { kind: 'file', file: file! };
  }
  try {
    if (file) raw.load(doc);
    raw.validate({ allowed: 'strict' });
  } catch (err) {
    throw problemFromConvict(err, problem);
  }
  const c = raw.getProperties();
  if (c.concurrency < 1) throw problem('concurrency', 'must be at least 1');
  if (c.fetch.maxDaysPerRun < 1) throw problem('fetch.maxDaysPerRun', 'must be at least 1');
  if (c.fetch.pageSize < 1 || c.fetch.pageSize > 250000) throw problem('fetch.pageSize', 'must be between 1 and 250000');
  if (c.fetch.perPropertyConcurrency < 1 || c.fetch.perPropertyConcurrency > 50) {
    throw problem('fetch.perPropertyConcurrency', 'must be between 1 and 50 (Google allows 10 for a standard property, 50 for Analytics 360)');
  }
  if (c.fetch.maxAttempts < 1) throw problem('fetch.maxAttempts', 'must be at least 1');
  if (!(c.fetch.quotaReserve >= 0 && c.fetch.quotaReserve < 1)) throw problem('fetch.quotaReserve', 'must be a share from 0 to below 1, e.g. 0.1');
  if (c.fetch.maxServerErrorsPerHour < 1) throw problem('fetch.maxServerErrorsPerHour', 'must be at least 1');
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(c.database.schema)) {
    throw problem('database.schema', `must be a lower-case SQL identifier, got ${JSON.stringify(c.database.schema)}`);
  }
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(c.searchConsole.schema)) {
    throw problem('searchConsole.schema', `must be a lower-case SQL identifier, got ${JSON.stringify(c.searchConsole.schema)}`);
  }
  if (c.searchConsole.schema === c.database.schema) {
    throw problem('searchConsole.schema', `must differ from database.schema (${c.database.schema}): each schema has a fetch_days of its own`);
  }
  if (opts.requireDatabase !== false && !c.database.url) {
    throw configError('database.url: required (set it in the config file or DATABASE_URL)');
  }
  const reports = normaliseReports(reportsInput);
  const baseDir = file ? path.dirname(path.resolve(file)) : process.cwd();
  // a bad file named by the environment says which variable named it
  const credentialsVariable = sources['google.credentials']?.kind === 'env' ? ' (from GOOGLE_APPLICATION_CREDENTIALS)' : '';
  const credentialsKey = `google.credentials${credentialsVariable}`;
  // what a property and a site take from the top level when their entry does not say
  const sourceDefaults = {
    defaultSchedule: c.schedule,
    defaultCredentials: c.google.credentials,
    defaultCredentialsKey: credentialsKey,
    defaultImpersonate: c.google.impersonate,
    baseDir,
    env,
    requireCredentials: opts.requireCredentials !== false,
  };
  const properties = normaliseProperties(c.properties, { reports, ...sourceDefaults });
  const discovery = normaliseDiscovery(c.discovery, reports);
  const searchConsoleReports = normaliseSearchConsoleReports(searchConsoleReportsInput, Object.keys(reports));
  const sites = normaliseSites(c.searchConsole.sites, searchConsoleReports, sourceDefaults);
  const config: Config = {
    database: c.database,
    google: {
      ...c.google,
      credentials: c.google.credentials
        ? resolveCredentials(c.google.credentials, credentialsKey, baseDir, env, discovery.enabled && opts.requireCredentials !== false)
        : '',
    },
    schedule: c.schedule,
    concurrency: c.concurrency,
    http: { ...c.http, webConfigFile: c.http.webConfigFile ? path.resolve(baseDir, c.http.webConfigFile) : '' },
    log: c.log,
    shutdown: c.shutdown,
    fetch: c.fetch,
    properties,
    reports,
    discovery,
    searchConsole: { schema: c.searchConsole.schema, sites, reports: searchConsoleReports },
  };
  return { config, file, fileFrom, sources };
}

/** Every key's source: the environment wins over the file (convict applies it last), the file over the default. */
function valueSources(doc: Record<string, unknown>, env: NodeJS.ProcessEnv, file: string | undefined): Record<string, ValueSource> {
  const sources: Record<string, ValueSource> = {};
  for (const leaf of schemaLeaves()) {
    if (leaf.env && env[leaf.env] !== undefined) sources[leaf.key] = { kind: 'env', variable: leaf.env };
    else if (file && valueAt(doc, leaf.key) !== undefined) sources[leaf.key] = { kind: 'file', file };
    else sources[leaf.key] = { kind: 'default' };
  }
  sources['reports'] = file && 'reports' in doc ? { kind: 'file', file } : { kind: 'default' };
  sources['searchConsole.reports'] = { kind: 'default' };
  return sources;
}

function valueAt(doc: Record<string, unknown>, key: string): unknown {
  let node: unknown = doc;
  for (const part of key.split('.')) {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/**
 * `config: <key>: <problem>`, saying where a bad value came from: a variable is named with its
 * value (`got "abc" from GA_COLLECTOR_CONCURRENCY`), unless the key is secret; a file's value is
 * quoted.
 */
function sourcedProblem(key: string, message: string, env: NodeJS.ProcessEnv, doc: Record<string, unknown>, file: string | undefined): UsageError {
  const leaf = schemaLeaves().find((l) => l.key === key);
  const quoted = /, got /.test(message);
  if (leaf?.env && env[leaf.env] !== undefined) {
    if (leaf.sensitive) return configError(`${key}: ${message} (from ${leaf.env})`);
    return configError(`${key}: ${quoted ? `${message} from ${leaf.env}` : `${message}, got ${JSON.stringify(env[leaf.env])} from ${leaf.env}`}`);
  }
  const inFile = file ? valueAt(doc, key) : undefined;
  if (inFile !== undefined && !quoted && !leaf?.sensitive && typeof inFile !== 'object') {
    return configError(`${key}: ${message}, got ${JSON.stringify(inFile)}`);
  }
  return configError(`${key}: ${message}`);
}

/** convict's messages, reduced to the first problem as "key: problem", with the nearest known key for an unknown one. */
function problemFromConvict(err: unknown, problem: (key: string, message: string) => UsageError): UsageError {
  const line = firstLine(err);
  // an unknown key first, wherever convict listed it: a misspelt key usually explains the rest
  const undeclared = /configuration param '([^']+)' not declared in the schema/.exec(err instanceof Error ? err.message : line);
  if (undeclared) {
    return unknownKeyProblem(undeclared[1]!, [...schemaLeaves().map((l) => l.key), 'reports', 'searchConsole.reports']);
  }
  const m = /^([\w.[\]]+): (.*)$/.exec(line);
  if (m) return problem(m[1]!, m[2]!.replace(/: value was .*$/, ''));
  return configError(line);
}

function readConfigFile(file: string): Record<string, unknown> {
  if (!fs.existsSync(file)) throw configError(`file ${file} does not exist`);
  let text: string;
  try {
    // a byte-order mark (editors on Windows write one) is not part of the document
    text = fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
  } catch (err) {
    throw configError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? firstLine(err)}`);
  }
  let doc: unknown;
  try {
    doc = /\.json$/i.test(file) ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    throw configError(`cannot read ${file}: ${firstLine(err)}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw configError(`${file}: must be a map of keys (see the configuration reference)`);
  return { ...doc };
}
