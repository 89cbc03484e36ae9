/**
 * `ga-collector config`: the configuration in effect, after the file, the environment and the
 * defaults were applied and checked exactly as `run` checks them, each value with its source (the
 * file, an environment variable, or the default). The database password is never printed; key
 * files are named by path only, never read here.
 */
import { loadConfigWithSources, schemaLeaves, type Config, type LoadedConfig, type ValueSource } from '../config/index.js';
import { GOOGLE_TOKEN_URL } from '../config/googleUrls.js';
import { redactUrl } from '../log.js';
import { flow } from '../config/flow.js';

/** What an unset key means, instead of an empty value. */
const UNSET: Record<string, string> = {
  'google.credentials': "(unset: each property's own credentials)",
  'google.tokenUrl': `(unset: the key file's token_uri, else ${GOOGLE_TOKEN_URL})`,
  'http.webConfigFile': '(unset: plain HTTP, no authentication)',
  'log.format': '(unset: pretty on a terminal, json otherwise)',
};

/**
 * Loads the configuration as `run` would (a bad one is the same one line and exit 2, through the
 * caller) and prints it. Exit 0.
 */
export function runShowConfig(file: string | undefined): number {
  const loaded = loadConfigWithSources({ file });
  process.stdout.write(`${formatConfig(loaded)}\n`);
  return 0;
}

/** A property's or site's principal as shown: its credentials file ('(none)': Application Default Credentials), and whom it impersonates, when anyone. */
function principal(entry: { credentials: string; impersonate: string }): Record<string, string> {
  return { credentials: entry.credentials || '(none)', ...(entry.impersonate ? { impersonate: entry.impersonate } : {}) };
}

/**
 * The table: key, value, source; `properties[i]`, `reports.<name>`, `searchConsole.sites[i]` and
 * `searchConsole.reports.<name>` one row each.
 */
function formatConfig(loaded: LoadedConfig): string {
  const { config, sources } = loaded;
  const rows: Array<[string, string, string]> = [];
  for (const leaf of schemaLeaves()) {
    if (leaf.key === 'properties' || leaf.key === 'searchConsole.sites') continue;
    const value = valueAt(config, leaf.key);
    let shown: string;
    if (leaf.sensitive) shown = typeof value === 'string' && value ? redactUrl(value) : '(unset)';
    else if (value === '' || value === null || value === undefined) shown = UNSET[leaf.key] ?? '(unset)';
    else shown = flow(value);
    rows.push([leaf.key, shown, sourceText(sources[leaf.key])]);
  }
  const propSource = sourceText(sources['properties']);
  if (config.properties.length === 0) rows.push(['properties', '(none)', propSource]);
  config.properties.forEach((p, i) =>
    rows.push([`properties[${i}]`, flow({ id: p.id, reports: p.reports, schedule: p.schedule, ...principal(p) }), propSource]),
  );
  const reportSource = sourceText(sources['reports']);
  for (const def of Object.values(config.reports)) {
    rows.push([
      `reports.${def.name}`,
      flow({ dimensions: ['date', ...def.dimensions], metrics: def.metrics, startDate: def.startDate, refreshDays: def.refreshDays }),
      reportSource,
    ]);
  }
  const { sites, reports: scReports } = config.searchConsole;
  const siteSource = sourceText(sources['searchConsole.sites']);
  if (sites.length === 0) rows.push(['searchConsole.sites', '(none)', siteSource]);
  sites.forEach((s, i) =>
    rows.push([`searchConsole.sites[${i}]`, flow({ url: s.url, reports: s.reports, schedule: s.schedule, ...principal(s) }), siteSource]),
  );
  const scReportSource = sourceText(sources['searchConsole.reports']);
  for (const def of Object.values(scReports)) {
    const { name, dimensions, ...rest } = def;
    rows.push([`searchConsole.reports.${name}`, flow({ dimensions: ['date', ...dimensions], ...rest }), scReportSource]);
  }
  const w0 = Math.max(3, ...rows.map((r) => r[0].length));
  const w1 = Math.min(70, Math.max(5, ...rows.map((r) => r[1].length)));
  const line = (r: [string, string, string]) => `${r[0].padEnd(w0)}  ${r[1].padEnd(w1)}  ${r[2]}`;
  const fileLine = loaded.file
    ? `config file: ${loaded.file}${loaded.fileFrom === 'env' ? ' (from GA_COLLECTOR_CONFIG)' : ''}`
    : 'config file: none (--config FILE or GA_COLLECTOR_CONFIG); environment and defaults only';
  return [fileLine, '', line(['key', 'value', 'source']), ...rows.map(line)].join('\n');
}

function sourceText(s: ValueSource | undefined): string {
  if (!s || s.kind === 'default') return 'default';
  return s.kind === 'env' ? `env ${s.variable}` : `file ${s.file}`;
}

function valueAt(config: Config, key: string): unknown {
  let node: unknown = config;
  for (const part of key.split('.')) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}
