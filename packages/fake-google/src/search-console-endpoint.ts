/**
 * Search Console API (searchconsole.googleapis.com, paths of Webmasters v3, which v1 keeps):
 *
 * - `POST /webmasters/v3/sites/{siteUrl}/searchAnalytics/query`
 *   (https://developers.google.com/webmaster-tools/v1/searchanalytics/query)
 * - `GET /webmasters/v3/sites/{siteUrl}` (sites.get) and `GET /webmasters/v3/sites` (sites.list)
 *   (https://developers.google.com/webmaster-tools/v1/sites)
 *
 * `{siteUrl}` is percent-encoded in the path (`sc-domain%3Aexample.com`,
 * `https%3A%2F%2Fwww.example.com%2F`), so routes are matched on the raw path. The token needs a
 * `webmasters` scope; the caller must be a user of the site (an unverified user sees the site in
 * sites.get/list, not its data). Errors carry the legacy `errors` array of Webmasters v3 besides
 * `status`, as Google answers them.
 */
import { authenticate, type ApiInfo } from './api-auth.js';
import { addDays, todayIn } from './dates.js';
import { jsonReply, type Reply } from './http-util.js';
import { analyticsRows, FINAL_LAG_DAYS, PACIFIC } from './search-console-data.js';
import { parseSearchAnalytics, responseAggregationType, type SearchAnalyticsRequest } from './search-console-request.js';
import type { FakeState, Site } from './state.js';
import type { EventKind, FakeEvent } from './types.js';

const SCOPES = ['https://www.googleapis.com/auth/webmasters.readonly', 'https://www.googleapis.com/auth/webmasters'];
const api = (rpc: string): ApiInfo => ({ rpc, service: 'searchconsole.googleapis.com', scopes: SCOPES });
const SEARCH_ANALYTICS_API = api('google.searchconsole.v1.SearchAnalytics');
const SITES_API = api('google.searchconsole.v1.Sites');

/** Google's limit of searchAnalytics.query calls per site per minute (https://developers.google.com/webmaster-tools/limits). */
export const DEFAULT_QUERIES_PER_MINUTE = 1_200;

export interface SearchConsoleRoute {
  kind: Extract<EventKind, 'searchAnalytics' | 'sites'>;
  /** the decoded site URL; absent for sites.list */
  site?: string;
}

/** Matches a raw (still percent-encoded) path; undefined when it is none of Search Console's. */
export function searchConsoleRoute(method: string, rawPath: string): SearchConsoleRoute | undefined {
  const decode = (s: string): string | undefined => {
    try {
      return decodeURIComponent(s);
    } catch {
      return undefined;
    }
  };
  if (rawPath === '/webmasters/v3/sites') return method === 'GET' ? { kind: 'sites' } : undefined;
  const query = /^\/webmasters\/v3\/sites\/([^/]+)\/searchAnalytics\/query$/.exec(rawPath);
  if (query) {
    const site = decode(query[1] ?? '');
    return method === 'POST' && site !== undefined ? { kind: 'searchAnalytics', site } : undefined;
  }
  const get = /^\/webmasters\/v3\/sites\/([^/]+)$/.exec(rawPath);
  if (get) {
    const site = decode(get[1] ?? '');
    return method === 'GET' && site !== undefined ? { kind: 'sites', site } : undefined;
  }
  return undefined;
}

/** Google's error envelope with Webmasters v3's `errors` array. */
function scError(code: number, status: string, message: string, reason: string, domain = 'global'): Reply {
  return jsonReply(code, { error: { code, message, errors: [{ message, domain, reason }], status } });
}

/** The 403 for a site the caller may not use, or that does not exist (Google does not tell them apart). */
function noPermission(siteUrl: string): Reply {
  return scError(
    403,
    'PERMISSION_DENIED',
    `User does not have sufficient permission for site '${siteUrl}'. See also: https://support.google.com/webmasters/answer/2451999.`,
    'forbidden',
  );
}

/**
 * Google's 429 for the per-site queries-per-minute limit. The wording follows the quota errors
 * Google's API front end gives for per-minute limits; the limit's name is the documented one.
 */
function quotaExceeded(siteUrl: string): Reply {
  return scError(
    429,
    'RESOURCE_EXHAUSTED',
    `Quota exceeded for quota metric 'Search Analytics queries' and limit 'Queries per minute per site' of service 'searchconsole.googleapis.com' for site '${siteUrl}'.`,
    'rateLimitExceeded',
    'usageLimits',
  );
}

/** Counts a searchAnalytics.query call against the site's per-minute limit; false when over it. */
function admit(state: FakeState, site: Site): boolean {
  const now = state.now();
  site.recentQueries = site.recentQueries.filter((t) => t > now - 60_000);
  if (site.recentQueries.length >= site.queriesPerMinute) return false;
  site.recentQueries.push(now);
  return true;
}

export interface SearchConsoleOutcome {
  reply: Reply;
  /** for faults that match or rewrite on the page asked: startRow and rowLimit */
  page?: { offset: number; limit: number };
}

/**
 * Answers one Search Console request (after faults that drop or delay it); fills in `event`
 * (account, token, and for searchAnalytics the request's paging, dates, dataState and rows).
 * `reverse` serves a page's rows in reverse order (fault `reverse`).
 */
export function handleSearchConsole(
  state: FakeState,
  route: SearchConsoleRoute,
  authorization: string | undefined,
  body: string,
  pretty: boolean,
  event: FakeEvent,
  opts: { reverse?: boolean } = {},
): SearchConsoleOutcome {
  const query = route.kind === 'searchAnalytics';
  const method = query ? 'Query' : route.site === undefined ? 'List' : 'Get';
  const auth = authenticate(state, authorization, method, query ? SEARCH_ANALYTICS_API : SITES_API);
  if (!auth.ok) return { reply: auth.reply };
  const caller = auth.value.account.clientEmail;
  event.account = caller;
  event.tokenIssuedAt = auth.value.token.issuedAt;
  event.scopes = auth.value.token.scopes;

  if (route.site === undefined) {
    const siteEntry = [...state.sites.values()]
      .filter((s) => s.users.has(caller))
      .sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0))
      .map((s) => ({ siteUrl: s.url, permissionLevel: s.users.get(caller) }));
    // an empty list is `{}`, as proto3 JSON leaves out empty repeated fields
    return { reply: jsonReply(200, siteEntry.length ? { siteEntry } : {}, {}, pretty) };
  }
  const site = state.sites.get(route.site);
  const level = site?.users.get(caller);
  if (!site || level === undefined) return { reply: noPermission(route.site) };
  if (!query) return { reply: jsonReply(200, { siteUrl: site.url, permissionLevel: level }, {}, pretty) };
  if (level === 'siteUnverifiedUser') return { reply: noPermission(route.site) };

  const parsed = parseSearchAnalytics(body);
  if (parsed.ok) {
    const r = parsed.value;
    event.startRow = r.startRow;
    if (r.rowLimitGiven !== undefined) event.rowLimit = r.rowLimitGiven;
    event.startDate = r.startDate;
    event.endDate = r.endDate;
    event.dataState = r.dataState;
  }
  if (!admit(state, site)) return { reply: quotaExceeded(site.url) };
  if (!parsed.ok) return { reply: scError(400, 'INVALID_ARGUMENT', parsed.message, 'badRequest') };
  const r = parsed.value;
  return { reply: queryReply(state, site, r, pretty, event, opts.reverse === true), page: { offset: r.startRow, limit: r.rowLimit } };
}

function queryReply(state: FakeState, site: Site, r: SearchAnalyticsRequest, pretty: boolean, event: FakeEvent, reverse: boolean): Reply {
  const now = state.calendarNow();
  const all = analyticsRows(
    site,
    {
      startDate: r.startDate,
      endDate: r.endDate,
      dimensions: r.dimensions,
      type: r.type,
      dataState: r.dataState === 'final' ? 'final' : 'all',
      aggregationType: r.aggregationType,
      dimensionFilterGroups: r.dimensionFilterGroups,
    },
    now,
  );
  const page = all.slice(r.startRow, r.startRow + r.rowLimit);
  if (reverse) page.reverse();
  event.rows = page.length;
  const body: Record<string, unknown> = {};
  // Rows without dimensions have no `keys`, as the API leaves out an empty list.
  if (page.length)
    body.rows = page.map((row) => (row.keys.length ? row : { clicks: row.clicks, impressions: row.impressions, ctr: row.ctr, position: row.position }));
  body.responseAggregationType = responseAggregationType(r);
  // "populated only when the request's dataState is all, data is grouped by DATE, and the
  // requested date range contains incomplete data points" (Metadata.firstIncompleteDate).
  const firstIncomplete = addDays(todayIn(PACIFIC, now), 1 - FINAL_LAG_DAYS);
  if (r.dataState !== 'final' && r.dimensions.includes('date') && r.endDate >= firstIncomplete) {
    body.metadata = { firstIncompleteDate: r.startDate > firstIncomplete ? r.startDate : firstIncomplete };
  }
  return jsonReply(200, body, {}, pretty);
}
