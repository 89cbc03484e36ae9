/**
 * The `searchConsole` keys beside GA4's: `searchConsole.reports` (a map of report name to a
 * searchanalytics.query definition, taken out of the file before convict sees it, as `reports` is)
 * and the entries of `searchConsole.sites`, each checked by a zod schema so the result is typed.
 * What one entry cannot tell alone (a site listed twice, an unknown report, a report name GA4's
 * reports use too) is checked after it. The request fields and their values are Google's:
 * https://developers.google.com/webmaster-tools/v1/searchanalytics/query
 */
import { z } from 'zod';
import { reportNameCollision } from '../store/reservedNames.js';
import { SEARCH_CONSOLE_MIGRATIONS_DIR } from '../store/sourceTables.js';
import { validateReportName } from '../store/identifiers.js';
import { configError, zodProblem } from './problems.js';
import { principalFields, principalOf, type PropertyContext } from './properties.js';
import { nameList, refreshDaysField, startDateField } from './reports.js';
import type { SearchConsoleDimension, SearchConsoleReport, SiteConfig } from './types.js';

const REPORT_KEYS = ['dimensions', 'type', 'dataState', 'aggregationType', 'startDate', 'refreshDays'] as const;
const SITE_KEYS = ['url', 'reports', 'schedule', 'credentials', 'impersonate'] as const;
const DIMENSIONS = ['date', 'query', 'page', 'country', 'device', 'searchAppearance'] as const;

const oneOf = <T extends string>(values: readonly T[], fallback: T) =>
  z
    .custom<T>((v) => typeof v === 'string' && (values as readonly string[]).includes(v), {
      error: (iss) => `must be one of ${values.join(', ')}, got ${JSON.stringify(iss.input)}`,
    })
    .default(fallback as never);

const definitionSchema = z.strictObject(
  {
    dimensions: nameList
      .default(['date'])
      .refine((d) => d.every((x) => (DIMENSIONS as readonly string[]).includes(x)), {
        error: (iss) => {
          const bad = (iss.input as string[]).find((x) => !(DIMENSIONS as readonly string[]).includes(x));
          return `unknown Search Console dimension ${JSON.stringify(bad)} (known: ${DIMENSIONS.join(', ')})`;
        },
      })
      .transform((d) => d.filter((x) => x !== 'date') as SearchConsoleDimension[])
      // Google refuses searchAppearance grouped with any other dimension: such a report is fetched a date per request, by it alone
      .refine(
        (d) => !d.includes('searchAppearance') || d.length === 1,
        'searchAppearance cannot be combined with query, page, country or device (Google refuses it); make it a report of its own',
      ),
    type: oneOf(['web', 'image', 'video', 'news', 'discover', 'googleNews'] as const, 'web'),
    dataState: oneOf(['final', 'all'] as const, 'final'),
    aggregationType: oneOf(['auto', 'byPage', 'byProperty'] as const, 'auto'),
    startDate: startDateField('480daysAgo'),
    refreshDays: refreshDaysField(4),
  },
  { error: (iss) => (iss.code === 'invalid_type' ? `must be { ${REPORT_KEYS.map((k) => `${k}?`).join(', ')} }` : undefined) },
);

/**
 * Checks `searchConsole.reports` and returns its definitions by name. A name GA4's `reports` has
 * too is refused: one name, one relation, one job per source.
 *
 * @throws UsageError `config: searchConsole.reports.<name>...: <problem>` for the first problem found
 */
export function normaliseSearchConsoleReports(input: unknown, ga4Reports: readonly string[]): Record<string, SearchConsoleReport> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw configError('searchConsole.reports: must be a map of report name to { dimensions?, type?, dataState?, aggregationType?, startDate?, refreshDays? }');
  }
  const out: Record<string, SearchConsoleReport> = {};
  for (const [name, def] of Object.entries(input)) {
    const key = `searchConsole.reports.${name}`;
    const problem = validateReportName(name);
    if (problem) throw configError(`${key}: ${problem}`);
    if (ga4Reports.includes(name))
      throw configError(`${key}: reports.${name} has this name too; report names are unique across reports and searchConsole.reports`);
    const parsed = definitionSchema.safeParse(def);
    if (!parsed.success) throw zodProblem(parsed.error, key, REPORT_KEYS);
    const d = parsed.data;
    if (d.aggregationType === 'byProperty' && d.dimensions.includes('page')) {
      throw configError(`${key}.aggregationType: byProperty cannot go with the page dimension (Google refuses it); use auto or byPage`);
    }
    out[name] = { name, ...d };
  }
  const collision = reportNameCollision(Object.keys(out), SEARCH_CONSOLE_MIGRATIONS_DIR);
  if (collision) throw configError(`searchConsole.${collision}`);
  return out;
}

const siteSchema = z.preprocess(
  // a bare URL is a site with every default
  (v) => (typeof v === 'string' ? { url: v } : v),
  z.strictObject(
    {
      url: z.custom<string>((v) => typeof v === 'string' && siteUrlProblem(v) === null, {
        error: (iss) => (typeof iss.input === 'string' ? siteUrlProblem(iss.input)! : `must be a Search Console site, got ${JSON.stringify(iss.input)}`),
      }),
      reports: nameList.optional(),
      ...principalFields,
    },
    { error: (iss) => (iss.code === 'invalid_type' ? `must be { ${SITE_KEYS.join(', ')} } (all but url optional)` : undefined) },
  ),
);

/**
 * Why `url` is no Search Console property name, or null when it is one: a Domain property
 * (`sc-domain:example.com`) or a URL-prefix property (`https://www.example.com/`, `http://` too,
 * ending in `/` as Search Console lists it).
 */
export function siteUrlProblem(url: string): string | null {
  if (/^sc-domain:[a-z0-9.-]+\.[a-z0-9-]+$/i.test(url)) return null;
  if (/^sc-domain:/.test(url)) return `must be sc-domain:<domain name>, got ${JSON.stringify(url)}`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `must be sc-domain:example.com or a URL-prefix property like https://www.example.com/, got ${JSON.stringify(url)}`;
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
    return `must be an http(s):// URL-prefix property or sc-domain:..., got ${JSON.stringify(url)}`;
  if (!url.endsWith('/')) return `a URL-prefix property ends with / as Search Console lists it: ${JSON.stringify(`${url}/`)}, got ${JSON.stringify(url)}`;
  return null;
}

/**
 * Checks `searchConsole.sites` and fills in each site's defaults (every searchConsole report, the
 * default schedule, `google.credentials` and `google.impersonate`).
 *
 * @throws UsageError `config: searchConsole.sites[i]...: <problem>` for the first problem found
 */
export function normaliseSites(input: readonly unknown[], reports: Record<string, SearchConsoleReport>, ctx: Omit<PropertyContext, 'reports'>): SiteConfig[] {
  const seen = new Set<string>();
  return input.map((item, i) => {
    const key = `searchConsole.sites[${i}]`;
    const parsed = siteSchema.safeParse(item);
    if (!parsed.success) throw zodProblem(parsed.error, key, SITE_KEYS);
    const s = parsed.data;
    if (seen.has(s.url)) throw configError(`${key}.url: site ${s.url} is listed twice`);
    seen.add(s.url);
    const names = s.reports ?? Object.keys(reports);
    for (const r of names) {
      if (!reports[r])
        throw configError(`${key}.reports: unknown report ${JSON.stringify(r)} (searchConsole.reports: ${Object.keys(reports).join(', ') || 'none'})`);
    }
    return { url: s.url, reports: names, schedule: s.schedule ?? ctx.defaultSchedule, ...principalOf(s, key, { ...ctx, reports: {} }) };
  });
}
