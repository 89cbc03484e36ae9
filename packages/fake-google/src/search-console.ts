/**
 * The fake's Search Console properties: adding sites, their users and their per-minute quota,
 * and the rows a query gets (for tests' expectations). FakeGoogle's Search Console methods
 * delegate here.
 */
import { hash32 } from './generator.js';
import { todayIn } from './dates.js';
import { analyticsRows, PACIFIC, SC_DIMENSIONS, SEARCH_TYPES } from './search-console-data.js';
import { DEFAULT_QUERIES_PER_MINUTE } from './search-console-endpoint.js';
import type { FakeState, Site } from './state.js';
import type { SearchAnalyticsQuery, SearchAnalyticsRow, SitePermissionLevel, SiteSpec } from './types.js';

const LEVELS: readonly SitePermissionLevel[] = ['siteOwner', 'siteFullUser', 'siteRestrictedUser', 'siteUnverifiedUser'];

/** `sc-domain:example.com` or an http(s) URL prefix ending in `/`, as Search Console names properties. */
function assertSiteUrl(url: string): void {
  if (/^sc-domain:[a-z0-9.-]+\.[a-z]{2,}$/i.test(url)) return;
  if (/^https?:\/\/[^/\s]+\/(\S*\/)?$/.test(url)) return;
  throw new Error(`site url must be sc-domain:DOMAIN or an http(s) URL prefix ending in /: ${url}`);
}

function positiveInt(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer: ${v}`);
  return v;
}

export class SearchConsole {
  constructor(private readonly state: FakeState) {}

  addSite(spec: SiteSpec): void {
    assertSiteUrl(spec.url);
    const share = spec.anonymizedShare ?? 0.2;
    if (!(share >= 0 && share < 1)) throw new Error(`anonymizedShare must be within 0..1 (1 excluded): ${share}`);
    const existing = this.state.sites.get(spec.url);
    const site: Site = {
      url: spec.url,
      queries: positiveInt('queries', spec.queries, 40),
      pages: positiveInt('pages', spec.pages, 12),
      seed: spec.seed ?? hash32(`site|${spec.url}`),
      anonymizedShare: share,
      users: existing?.users ?? new Map(),
      queriesPerMinute: existing?.queriesPerMinute ?? DEFAULT_QUERIES_PER_MINUTE,
      recentQueries: existing?.recentQueries ?? [],
    };
    this.state.sites.set(spec.url, site);
  }

  private site(url: string): Site {
    const site = this.state.sites.get(url);
    if (!site) throw new Error(`unknown site ${url}: addSite first`);
    return site;
  }

  grant(clientEmail: string, siteUrl: string, level: SitePermissionLevel): void {
    if (!LEVELS.includes(level)) throw new Error(`unknown permission level ${String(level)}`);
    this.site(siteUrl).users.set(clientEmail, level);
  }

  revoke(clientEmail: string, siteUrl: string): void {
    this.state.sites.get(siteUrl)?.users.delete(clientEmail);
  }

  setQuota(siteUrl: string, q: { queriesPerMinute?: number }): void {
    const site = this.site(siteUrl);
    if (q.queriesPerMinute !== undefined) {
      if (!Number.isInteger(q.queriesPerMinute) || q.queriesPerMinute < 0) throw new Error(`queriesPerMinute must be a non-negative integer`);
      site.queriesPerMinute = q.queriesPerMinute;
    }
  }

  today(): string {
    return todayIn(PACIFIC, this.state.calendarNow());
  }

  /** What the API would answer, all pages; dimension names and types in the API's spelling. */
  rows(siteUrl: string, q: SearchAnalyticsQuery): SearchAnalyticsRow[] {
    const site = this.site(siteUrl);
    for (const d of q.dimensions) if (!(SC_DIMENSIONS as readonly string[]).includes(d)) throw new Error(`unknown dimension ${d}`);
    if (q.type !== undefined && !(SEARCH_TYPES as readonly string[]).includes(q.type)) throw new Error(`unknown type ${q.type}`);
    if (q.dimensions.includes('searchAppearance') && q.dimensions.length > 1) throw new Error('searchAppearance cannot be combined with other dimensions');
    return analyticsRows(site, q, this.state.calendarNow());
  }
}
