/**
 * The data behind the fake Search Console's Performance report: a pure function of the site,
 * the Pacific date, the search type and (for days not yet final) the hour of the fake's
 * calendar clock, so tests can compute what the API serves.
 *
 * Each day, a number of searches is drawn; each picks a query (skewed: a few queries get most
 * searches), a page, a country, a device and maybe a search appearance, gets a number of
 * impressions at a position that depends on the query, and clicks drawn from a click-through
 * rate that falls with the position. Searches with the same values add up to one fact. Some
 * searches are anonymized (rare queries Google does not show): they count in every grouping
 * without `query` and are left out of any grouping by `query`, so the query rows of a day add
 * up to less than the day's total, as at Google
 * (https://support.google.com/webmasters/answer/7576553, "anonymized queries").
 *
 * Written apart from the collector's own code on purpose (as dates.ts): the fake must not share
 * a bug with the client it tests.
 */
import { addDays, daysBetween, eachDate, todayIn } from './dates.js';
import { hash32, seededRandom } from './generator.js';
import type { Site } from './state.js';
import type { SearchAnalyticsFilter, SearchAnalyticsQuery, SearchAnalyticsRow } from './types.js';

/** Search Console's calendar: its days are Pacific days, whatever the site's audience. */
export const PACIFIC = 'America/Los_Angeles';

/** The dimensions searchAnalytics.query groups by, spelled as the API answers them. */
export const SC_DIMENSIONS = ['date', 'query', 'page', 'country', 'device', 'searchAppearance'] as const;

/** searchAnalytics.query's `type` (formerly `searchType`). */
export const SEARCH_TYPES = ['web', 'image', 'video', 'news', 'discover', 'googleNews'] as const;

/** How much of a site's web traffic each search type has. */
const TYPE_SCALE: Record<string, number> = { web: 1, image: 0.3, video: 0.1, news: 0.08, discover: 0.25, googleNews: 0.05 };

/** ISO 3166-1 alpha-3, lower case, as the API names countries. */
const COUNTRIES = ['usa', 'gbr', 'ind', 'deu', 'can', 'fra', 'aus', 'bra', 'esp', 'ita', 'nld', 'jpn', 'mex', 'pol', 'swe'];
const DEVICES = ['MOBILE', 'DESKTOP', 'TABLET'];
const DEVICE_CUMULATIVE = [0.6, 0.96, 1];
const APPEARANCES = ['PRODUCT_SNIPPETS', 'REVIEW_SNIPPET', 'VIDEO', 'MERCHANT_LISTINGS', 'TRANSLATED_RESULT'];
/** Share of searches shown with a search appearance; the others are absent from a grouping by it. */
const APPEARANCE_SHARE = 0.3;

const QUERY_HEADS = [
  'best',
  'cheap',
  'how to choose',
  'buy',
  'free',
  'top',
  'easy',
  'quick',
  'review',
  'compare',
  'local',
  'online',
  'new',
  'used',
  'simple',
  'pro',
];
const QUERY_TAILS = [
  'running shoes',
  'coffee grinder',
  'garden tools',
  'bike lights',
  'desk lamp',
  'rain jacket',
  'tea kettle',
  'yoga mat',
  'phone case',
  'backpack',
  'water bottle',
  'headphones',
  'camping stove',
  'office chair',
  'wool socks',
  'sunglasses',
];
const PAGE_SECTIONS = ['blog', 'products', 'guides', 'help'];

/** Days a date stays fresh: `final` data ends at Pacific today-3 (https://support.google.com/webmasters/answer/96568). */
export const FINAL_LAG_DAYS = 3;
/** How far back the API serves data (https://support.google.com/webmasters/answer/7576553: 16 months). */
const HORIZON_MONTHS = 16;

/** One combination of values on one day. `q` is -1 for anonymized queries. */
interface Fact {
  q: number;
  page: number;
  country: number;
  device: number;
  appearance: number;
  clicks: number;
  impressions: number;
  /** position times impressions, so positions average weighted by impressions */
  positionSum: number;
}

const zipfTables = new Map<number, number[]>();

/** Index in 0..n-1, skewed toward 0 (Zipf-like, as search demand is). */
function zipf(n: number, rnd: () => number): number {
  let cum = zipfTables.get(n);
  if (!cum) {
    let total = 0;
    cum = Array.from({ length: n }, (_, i) => (total += 1 / Math.pow(i + 1, 1.05)));
    zipfTables.set(n, cum);
  }
  const x = rnd() * (cum[cum.length - 1] ?? 1);
  const i = cum.findIndex((c) => x < c);
  return i < 0 ? n - 1 : i;
}

/** The site's i-th query: distinct for every i. */
function queryText(site: Site, i: number): string {
  const a = (i + (site.seed % QUERY_HEADS.length)) % QUERY_HEADS.length;
  const b = (Math.floor(i / QUERY_HEADS.length) + (site.seed % QUERY_TAILS.length)) % QUERY_TAILS.length;
  const round = Math.floor(i / (QUERY_HEADS.length * QUERY_TAILS.length));
  return `${QUERY_HEADS[a]} ${QUERY_TAILS[b]}${round > 0 ? ` ${round + 1}` : ''}`;
}

/** Where the site's pages live: the URL-prefix property itself, or https://www. of a Domain property. */
function origin(site: Site): string {
  return site.url.startsWith('sc-domain:') ? `https://www.${site.url.slice('sc-domain:'.length)}/` : site.url;
}

/** The site's i-th page (canonical URL); page 0 is the home page. */
function pageUrl(site: Site, i: number): string {
  if (i === 0) return origin(site);
  return `${origin(site)}${PAGE_SECTIONS[i % PAGE_SECTIONS.length]}/item-${i}`;
}

/** The date 16 months before `today`: older dates have no data. */
function horizonOf(today: string): string {
  const [y = 0, m = 1, d = 1] = today.split('-').map(Number);
  const months = y * 12 + (m - 1) - HORIZON_MONTHS;
  const year = Math.floor(months / 12);
  const month = (months % 12) + 1;
  const last = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(Math.min(d, last)).padStart(2, '0')}`;
}

/** The hour (0-23) in Search Console's calendar at `nowMs`. */
function pacificHour(nowMs: number): number {
  const hour = new Intl.DateTimeFormat('en-US', { timeZone: PACIFIC, hour: '2-digit', hourCycle: 'h23' }).format(new Date(nowMs));
  return Number(hour) % 24;
}

/**
 * How much of a day's final values is visible: 1 once the day is final (Pacific today-3 and
 * older), less for fresher days, growing each hour (fresh data keeps changing until final).
 */
function completeness(date: string, today: string, hour: number): number {
  const ageHours = daysBetween(date, today) * 24 + hour;
  if (ageHours >= FINAL_LAG_DAYS * 24) return 1;
  return 0.35 + (0.65 * Math.max(0, ageHours)) / (FINAL_LAG_DAYS * 24);
}

/** A day's facts counted by page (a search showing two pages is an impression of each) and by property (one impression). */
interface DayFacts {
  byPage: Fact[];
  byProperty: Fact[];
}

const dayCache = new Map<string, DayFacts>();
const DAY_CACHE_SIZE = 4096;
/** Share of searches that show two pages of the site. */
const SECOND_PAGE_SHARE = 0.15;

function add(map: Map<string, Fact>, f: Fact): void {
  const key = `${f.q},${f.page},${f.country},${f.device},${f.appearance}`;
  const g = map.get(key);
  if (!g) map.set(key, { ...f });
  else {
    g.clicks += f.clicks;
    g.impressions += f.impressions;
    g.positionSum += f.positionSum;
  }
}

/**
 * A day's final facts for one search type. A search that shows two pages of the site counts
 * one impression for each page by page, and one for the site (at the topmost position) by
 * property, as Search Console counts them (https://support.google.com/webmasters/answer/7042828):
 * totals by page have more impressions than by property, and the same clicks.
 */
function dayFacts(site: Site, date: string, type: string): DayFacts {
  const cacheKey = `${site.url}|${site.seed}|${site.queries}|${site.pages}|${site.anonymizedShare}|${type}|${date}`;
  const cached = dayCache.get(cacheKey);
  if (cached) return cached;
  const rnd = seededRandom(hash32(`${site.seed}|${site.url}|${type}|${date}`));
  const weekday = new Date(`${date}T00:00:00Z`).getUTCDay();
  const weekFactor = weekday === 0 || weekday === 6 ? 0.7 : 1;
  const draws = Math.max(1, Math.round(site.queries * 6 * (TYPE_SCALE[type] ?? 1) * weekFactor * (0.85 + 0.3 * rnd())));
  const byPage = new Map<string, Fact>();
  const byProperty = new Map<string, Fact>();
  for (let i = 0; i < draws; i++) {
    const q = zipf(site.queries, rnd);
    const anonymized = rnd() < site.anonymizedShare;
    const page = (q * 5 + zipf(site.pages, rnd)) % site.pages;
    const second = site.pages > 1 && rnd() < SECOND_PAGE_SHARE ? (page + 1 + zipf(site.pages - 1, rnd)) % site.pages : -1;
    const country = zipf(COUNTRIES.length, rnd);
    const d = rnd();
    const device = DEVICE_CUMULATIVE.findIndex((c) => d < c);
    const appearance = rnd() < APPEARANCE_SHARE ? zipf(APPEARANCES.length, rnd) : -1;
    const impressions = 1 + Math.floor(rnd() ** 2 * 30);
    // Each query ranks around its own position; anonymized searches rank as the query drawn, so
    // their share of clicks is about anonymizedShare.
    const base = 1 + (hash32(`${site.seed}|position|${q}`) % 2500) / 100;
    const position = Math.max(1, base + (rnd() - 0.5) * 3);
    const ctr = 0.35 / Math.pow(position, 0.9);
    // each click lands on one page: mostly the top one
    let clicks = 0;
    let secondClicks = 0;
    for (let j = 0; j < impressions; j++) {
      if (rnd() < ctr) {
        if (second >= 0 && rnd() < 0.3) secondClicks++;
        else clicks++;
      }
    }
    const common = { q: anonymized ? -1 : q, country, device, appearance };
    add(byPage, { ...common, page, clicks, impressions, positionSum: position * impressions });
    if (second >= 0) add(byPage, { ...common, page: second, clicks: secondClicks, impressions, positionSum: (position + 1) * impressions });
    add(byProperty, { ...common, page: -1, clicks: clicks + secondClicks, impressions, positionSum: position * impressions });
  }
  const facts = { byPage: [...byPage.values()], byProperty: [...byProperty.values()] };
  dayCache.set(cacheKey, facts);
  for (const key of dayCache.keys()) {
    if (dayCache.size <= DAY_CACHE_SIZE) break;
    dayCache.delete(key);
  }
  return facts;
}

/** The newest date served for a dataState: today-3 for `final`, today (partial) for `all`. */
function lastServedDate(dataState: string, today: string): string {
  return dataState === 'final' ? addDays(today, -FINAL_LAG_DAYS) : today;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The value of dimension `d` of a fact on `date`. */
function valueOf(site: Site, f: Fact, d: string, date: string): string {
  switch (d) {
    case 'date':
      return date;
    case 'query':
      return queryText(site, f.q);
    case 'page':
      return pageUrl(site, f.page);
    case 'country':
      return COUNTRIES[f.country] ?? '';
    case 'device':
      return DEVICES[f.device] ?? '';
    default:
      return APPEARANCES[f.appearance] ?? '';
  }
}

/**
 * Whether a fact passes one filter (https://developers.google.com/webmaster-tools/v1/searchanalytics/query,
 * dimensionFilterGroups[].filters[]): `contains` and `notContains` ignore case, `equals` does not;
 * regular expressions are RE2 at Google, JavaScript's here. Anonymized queries pass no query filter.
 */
function passes(site: Site, f: Fact, date: string, filter: SearchAnalyticsFilter): boolean {
  if (filter.dimension === 'query' && f.q < 0) return false;
  if (filter.dimension === 'searchAppearance' && f.appearance < 0) return false;
  const v = valueOf(site, f, filter.dimension, date);
  const e = filter.expression;
  switch (filter.operator ?? 'equals') {
    case 'equals':
      return v === e;
    case 'notEquals':
      return v !== e;
    case 'contains':
      return v.toLowerCase().includes(e.toLowerCase());
    case 'notContains':
      return !v.toLowerCase().includes(e.toLowerCase());
    case 'includingRegex':
      return new RegExp(e).test(v);
    default:
      return !new RegExp(e).test(v);
  }
}

/** Whether a query is aggregated by page: asked, or `auto` with page grouped or filtered. */
export function aggregatesByPage(q: Pick<SearchAnalyticsQuery, 'dimensions' | 'aggregationType' | 'dimensionFilterGroups'>): boolean {
  const t = q.aggregationType ?? 'auto';
  if (t !== 'auto') return t === 'byPage';
  return q.dimensions.includes('page') || (q.dimensionFilterGroups ?? []).some((g) => g.filters.some((f) => f.dimension === 'page'));
}

/**
 * Every row searchAnalytics.query answers for `q` on `site` at instant `nowMs` (the calendar
 * clock), across all pages, in the API's order: by click count descending
 * (https://developers.google.com/webmaster-tools/v1/searchanalytics/query: "Results are sorted by
 * click count descending"), and with `date` among the dimensions by date ascending first, as the
 * API's own date-grouped sample shows (https://developers.google.com/webmaster-tools/v1/how-tos/search_analytics).
 * Ties go by impressions, then keys, so pages never overlap. Rows without dimensions have
 * `keys: []` here (the API leaves `keys` out). `q` must be valid (search-console-request.ts).
 */
export function analyticsRows(site: Site, q: SearchAnalyticsQuery, nowMs: number): SearchAnalyticsRow[] {
  const today = todayIn(PACIFIC, nowMs);
  const hour = pacificHour(nowMs);
  const type = q.type ?? 'web';
  const from = [q.startDate, horizonOf(today)].sort()[1] ?? q.startDate;
  const to = [q.endDate, lastServedDate(q.dataState ?? 'final', today)].sort()[0] ?? q.endDate;
  const dims = q.dimensions;
  const byQuery = dims.includes('query');
  const byAppearance = dims.includes('searchAppearance');
  const byPage = aggregatesByPage(q);
  const filters = (q.dimensionFilterGroups ?? []).flatMap((g) => g.filters);
  const groups = new Map<string, { keys: string[]; clicks: number; impressions: number; positionSum: number }>();
  for (const date of from <= to ? eachDate(from, to) : []) {
    const share = completeness(date, today, hour);
    const day = dayFacts(site, date, type);
    for (const f of byPage ? day.byPage : day.byProperty) {
      if (byQuery && f.q < 0) continue;
      if (byAppearance && f.appearance < 0) continue;
      if (!filters.every((filter) => passes(site, f, date, filter))) continue;
      const impressions = share === 1 ? f.impressions : Math.round(f.impressions * share);
      if (impressions === 0) continue;
      const clicks = share === 1 ? f.clicks : Math.round(f.clicks * share);
      const position = f.positionSum / f.impressions;
      const keys = dims.map((d) => valueOf(site, f, d, date));
      const key = keys.join('\u0000');
      const g = groups.get(key);
      if (g) {
        g.clicks += clicks;
        g.impressions += impressions;
        g.positionSum += position * impressions;
      } else {
        groups.set(key, { keys, clicks, impressions, positionSum: position * impressions });
      }
    }
  }
  const dateAt = dims.indexOf('date');
  const rows = [...groups.values()].map((g) => ({
    keys: g.keys,
    clicks: g.clicks,
    impressions: g.impressions,
    ctr: g.clicks / g.impressions,
    position: g.positionSum / g.impressions,
  }));
  rows.sort(
    (a, b) =>
      (dateAt >= 0 ? compare(a.keys[dateAt] ?? '', b.keys[dateAt] ?? '') : 0) ||
      b.clicks - a.clicks ||
      b.impressions - a.impressions ||
      compare(a.keys.join('\u0000'), b.keys.join('\u0000')),
  );
  return rows;
}
