/**
 * `ga-collector check`'s Search Console rows (check.ts runs them after the GA4 properties'): the
 * Search Console schema's migrations, then per configured site its access (sites.get with the
 * site's principal: the permission level Search Console gives it) and per site report its
 * definition and one searchanalytics.query of a single row for the newest date the report's
 * `dataState` serves, which proves Google accepts the definition and lets the principal read data.
 * Nothing here writes. Permission levels: https://support.google.com/webmasters/answer/2451999
 * (Owner, Full or Restricted may read Search Analytics; an unverified user may not).
 */
import type { TokenSource } from './auth/tokenManager.js';
import { fail, ok, plural, skip, type CheckRow } from './checkRow.js';
import type { Config, SearchConsoleReport, SiteConfig } from './config/index.js';
import { PermanentError, describe } from './errors.js';
import type { Logger } from './log.js';
import { siteLastDate } from './schedule/siteJob.js';
import type { SearchConsoleClient } from './searchConsole/client.js';
import { SEARCH_CONSOLE_TIME_ZONE } from './searchConsole/report.js';
import { describeDbError } from './store/dbErrors.js';
import { migrationState } from './store/migrations.js';
import { createPool } from './store/pool.js';
import { SEARCH_CONSOLE_MIGRATIONS_DIR } from './store/sourceTables.js';
import { redactUrl } from './log.js';

/** The place in Search Console where a principal is made a user of a property. */
const ADD_USER = 'Search Console > Settings > Users and permissions > Add user';

/** Search Console's names of the permission levels sites.get returns. */
const LEVEL_NAMES: Record<string, string> = {
  siteOwner: 'Owner',
  siteFullUser: 'Full user',
  siteRestrictedUser: 'Restricted user',
  siteUnverifiedUser: 'unverified user',
};

export interface SiteCheckOptions {
  now: () => number;
  logger: Logger;
}

/** The fix for a principal that cannot read a site's data: make it a user, named by its email. */
function addUserFix(account: string, site: string): string {
  if (!account.includes('@')) {
    return `Search Console grants access to email addresses only, and ${account} is a federated identity without one: let it impersonate a service account (google.impersonate, or service_account_impersonation_url in its file) and add that account in ${ADD_USER} of ${site}`;
  }
  return `in ${ADD_USER}: email ${account}, permission Restricted (enough to read; Full works too), on the property ${site}; and check that the url is the property exactly as Search Console lists it (sc-domain:example.com, or https://www.example.com/ with its slash)`;
}

/**
 * The Search Console schema (searchConsole.schema): reachable and its own migrations current.
 * A schema not created yet is pending: `migrate` or `run` creates it.
 */
export async function checkSearchConsoleSchema(config: Config, logger: Logger): Promise<CheckRow> {
  const schema = config.searchConsole.schema;
  const what = `database ${schema}`;
  const where = redactUrl(config.database.url);
  const pool = createPool(config.database.url, logger, 1, { schema });
  try {
    const state = await migrationState(pool, schema, SEARCH_CONSOLE_MIGRATIONS_DIR);
    if (state.current > state.latest) {
      return fail(
        what,
        `${where}: Search Console schema ${schema} is at migration ${state.current}, newer than this ga-collector (${state.latest})`,
        'upgrade ga-collector to the version that migrated this schema, or use another searchConsole.schema',
      );
    }
    if (state.current === state.latest) return ok(what, `Search Console schema ${schema} at migration ${state.current} (current)`);
    return fail(
      what,
      `Search Console schema ${schema} at migration ${state.current} of ${state.latest}: ${state.latest - state.current} pending`,
      '`ga-collector migrate --config FILE` applies them (`run` also migrates at start)',
    );
  } catch (err) {
    return fail(what, `${where}: ${describeDbError(err, config.database.url)}`, 'check database.url and that PostgreSQL is running and reachable from here');
  } finally {
    await pool.end().catch(() => undefined);
  }
}

/**
 * A row per configured site (its access), then a row per report of it; `tokensOf` is the site's
 * principal's working token source, if any; `client` asks Search Console (check.ts builds it).
 */
export async function checkSites(
  config: Config,
  tokensOf: (site: SiteConfig) => TokenSource | undefined,
  client: SearchConsoleClient,
  opts: SiteCheckOptions,
): Promise<CheckRow[]> {
  const rows: CheckRow[] = [];
  for (const site of config.searchConsole.sites) rows.push(...(await checkSite(config, site, tokensOf(site), client, opts)));
  return rows;
}

async function checkSite(
  config: Config,
  site: SiteConfig,
  tokens: TokenSource | undefined,
  client: SearchConsoleClient,
  opts: SiteCheckOptions,
): Promise<CheckRow[]> {
  const what = `site ${site.url}`;
  const reportRows = (detail: string) => site.reports.map((r) => skip(`${what} report ${r}`, detail));
  if (!tokens) return [skip(what, 'not checked: its principal has no working token (see above)'), ...reportRows('not checked')];
  const ctx = { propertyId: site.url, kind: 'searchConsole' as const, tokens, logger: opts.logger };
  let level: string;
  try {
    level = (await client.getSite(ctx)).permissionLevel ?? 'unknown';
  } catch (err) {
    return [fail(what, describe(err), accessFix(err, config, tokens.account, site.url)), ...reportRows('not checked: no access to the site')];
  }
  if (level === 'siteUnverifiedUser') {
    return [
      fail(
        what,
        `${tokens.account} is an unverified user of ${site.url}: Search Console lists the property but serves it no data`,
        addUserFix(tokens.account, site.url),
      ),
      ...reportRows('not checked: no access to the data'),
    ];
  }
  const rows: CheckRow[] = [ok(what, `readable by ${tokens.account} (${LEVEL_NAMES[level] ?? level}); dates are Pacific days (${SEARCH_CONSOLE_TIME_ZONE})`)];
  for (const name of site.reports) rows.push(await checkSiteReport(config.searchConsole.reports[name]!, site.url, ctx, client, opts.now));
  return rows;
}

function accessFix(err: unknown, config: Config, account: string, site: string): string {
  if (err instanceof PermanentError && err.code === 'scope_insufficient') {
    return `set google.impersonate (or searchConsole.sites[].impersonate) to a service account that ${account} may impersonate (role roles/iam.serviceAccountTokenCreator); add that account in ${ADD_USER}`;
  }
  if (err instanceof PermanentError && err.code === 'permission_denied') return addUserFix(account, site);
  if (err instanceof PermanentError) return 'check the site url and google.searchConsoleRootUrl';
  return `the Search Console API at ${config.google.searchConsoleRootUrl} did not answer well; check network and google.searchConsoleRootUrl, then run check again`;
}

/**
 * A report's definition, as the daemon asks it: every dimension is one searchanalytics.query
 * groups by, searchAppearance alone (config/searchConsole.ts refuses the rest before this runs);
 * then one row of its newest date, which Google refuses (400) when it cannot serve the definition.
 */
async function checkSiteReport(
  report: SearchConsoleReport,
  site: string,
  ctx: { propertyId: string; kind: 'searchConsole'; tokens: TokenSource; logger: Logger },
  client: SearchConsoleClient,
  now: () => number,
): Promise<CheckRow> {
  const what = `site ${site} report ${report.name}`;
  const date = siteLastDate(report, now());
  const byAppearance = report.dimensions.includes('searchAppearance');
  const definition = `date + ${report.dimensions.length ? report.dimensions.join(', ') : 'no other dimension'}; type ${report.type}, dataState ${report.dataState}, aggregationType ${report.aggregationType}${byAppearance ? '; a date per request (searchAppearance)' : ''}`;
  try {
    const rows = await client.query(
      { ...ctx, report: report.name },
      {
        startDate: date,
        endDate: date,
        dimensions: byAppearance ? ['searchAppearance'] : ['date', ...report.dimensions],
        type: report.type,
        dataState: report.dataState,
        aggregationType: report.aggregationType,
        rowLimit: 1,
      },
      (response) => response.rows?.length ?? 0,
    );
    return ok(what, `${definition}; a 1-row query for ${date} answered (${rows} ${plural(rows, 'row', 'rows')})`);
  } catch (err) {
    const fix =
      err instanceof PermanentError && err.code === 'invalid_argument'
        ? `Google refuses this definition: change searchConsole.reports.${report.name} (dimensions, type, dataState, aggregationType) as the message says`
        : err instanceof PermanentError && err.code === 'permission_denied'
          ? addUserFix(ctx.tokens.account, site)
          : err instanceof PermanentError
            ? 'check the site url and google.searchConsoleRootUrl'
            : 'the Search Console API did not answer well; run check again';
    return fail(what, `${definition}: ${describe(err)}`, fix);
  }
}
