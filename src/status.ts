/**
 * The status document: what the daemon is doing, for the status page and `/api/status`.
 *
 * `StatusView` joins the job board (schedule/jobBoard.ts: running now, last error, next run,
 * recent failures) and the last configuration reload with the ledger into the status document, in
 * a constant number of queries whatever the number of properties (their SQL is in
 * store/statusQueries.ts), and orders properties that need attention first: failing, then stale,
 * then with gaps. Search Console sites are listed after the properties, alike: their ledger is
 * in the Search Console schema, their calendar Pacific (store/siteStatusQueries.ts).
 */
import type { DiscoveredProperty, DiscoveryStatus } from './discovery/discovery.js';
import { describe } from './errors.js';
import type { Logger } from './log.js';
import { withDeadline } from './net/deadline.js';
import { previousFire } from './schedule/cron.js';
import type { JobBoard } from './schedule/jobBoard.js';
import { resolveStartDate } from './schedule/planner.js';
import { siteClicksSeries, siteCoverage } from './store/siteStatusQueries.js';
import { configuredSources, type Config } from './config/index.js';
import { reportStatus } from './reportStatus.js';
import { siteWindow } from './schedule/siteJob.js';
import { siteCharts, siteStatuses } from './statusSites.js';
import { columnName } from './store/identifiers.js';
import { databaseNow } from './store/ledger.js';
import type { Pool } from './store/pool.js';
import { totalsName } from './store/reportTables.js';
import { ledgerCoverage, propertyTimeZones, totalsSeries, type Coverage, type CoverageWindow } from './store/statusQueries.js';
import { addDays, daysBetween, localDate } from './time.js';
import { VERSION } from './version.js';

/** Discovery's state and the property ids only it put in the configuration in effect. */
export interface DiscoveryView extends DiscoveryStatus {
  added: Set<string>;
}

export type { ReloadRecord, ReportStatus, StatusDocument, StatusQuery } from './statusDocument.js';
import type { Attention, ReloadRecord, ReportStatus, StatusDocument, StatusQuery, TokenView } from './statusDocument.js';

const DEFAULT_PER_PAGE = 50;
export const MAX_PER_PAGE = 500;

export interface StatusViewDeps {
  pool: Pool;
  board: JobBoard;
  /** the last SIGHUP's outcome; none when the caller reloads nothing */
  lastReload?: () => ReloadRecord | null;
  /** the configuration in effect (it changes on SIGHUP) */
  config: () => Config;
  tokens: () => TokenView[];
  /** property discovery, when it is on */
  discovery?: () => DiscoveryView | null;
  now: () => number;
  /** when the daemon started: a schedule that fired before it is not held against a report */
  startedAt?: number;
  logger?: Logger;
}

/** How long the ledger may take before the page says the database is not answering. */
const DB_DEADLINE_MS = 5_000;
/**
 * A ledger read this recent is served as it is; one up to LEDGER_STALE_MS old is served while a
 * new read runs in the background. Reading 60,000 properties x reports takes most of a second, so
 * however many browsers reload the page, the ledger is read at most about every 2 s, and a
 * request does not wait for it (the in-memory state, running jobs and errors, is always current).
 */
const LEDGER_FRESH_MS = 2_000;
const LEDGER_STALE_MS = 30_000;
/** A run may take this long after its schedule fired before the report counts as stale. */
const STALE_AFTER_MS = 60 * 60 * 1000;
/** Days of totals a chart reads; it shows the last 30 of the property's own days. */
const CHART_DAYS = 32;

interface LedgerState {
  readAt?: number;
  reachable: boolean;
  error?: string;
  zones: Map<string, string>;
  coverage: Map<string, Coverage>;
  /**
   * The clock the calendar is read by: the earlier of ours and the database's, as the runner plans
   * (a clock that ran ahead must not count an unfinished day as stored or missing).
   */
  calendarNow?: number;
}

const RANK: Record<Attention, number> = { failing: 0, stale: 1, gaps: 2 };

/** Builds the status document from the board, the ledger and the configuration in effect. */
export class StatusView {
  private inflight: Promise<LedgerState> | null = null;
  private cache: { readAt: number; config: Config; writes: number; state: LedgerState } | null = null;
  private readonly startedAt: number;

  constructor(private readonly deps: StatusViewDeps) {
    this.startedAt = deps.startedAt ?? deps.now();
  }

  /**
   * The status document. The ledger is read at most every couple of seconds, by one caller for
   * all (see LEDGER_FRESH_MS), and the charts only for the properties returned.
   */
  async document(query: StatusQuery = {}): Promise<StatusDocument> {
    const config = this.deps.config();
    const now = this.deps.now();
    const ledger = await this.ledger(config, now);
    const discovery = this.deps.discovery?.() ?? null;
    const found = new Map<string, DiscoveredProperty>();
    for (const p of discovery?.kept ?? []) if (discovery!.added.has(p.id)) found.set(p.id, p);
    const all = this.reports(config, ledger, now, found);
    const order = new Map(configuredSources(config).map((p, i) => [p.id, i]));
    const paged = query.page !== undefined || query.perPage !== undefined;
    let reports = all;
    let page: StatusDocument['page'] = null;
    if (paged) {
      const perPage = Math.min(MAX_PER_PAGE, Math.max(1, query.perPage ?? DEFAULT_PER_PAGE));
      const rank = new Map<string, number>();
      for (const row of all) rank.set(row.property, Math.min(rank.get(row.property) ?? 3, row.attention ? RANK[row.attention] : 3));
      const ids = [...rank.keys()].sort((a, b) => rank.get(a)! - rank.get(b)! || order.get(a)! - order.get(b)!);
      const pages = Math.max(1, Math.ceil(ids.length / perPage));
      const pageNo = Math.max(1, query.page ?? 1);
      const shown = new Map(ids.slice((pageNo - 1) * perPage, pageNo * perPage).map((id, i) => [id, i]));
      reports = all.filter((r) => shown.has(r.property)).sort((a, b) => shown.get(a.property)! - shown.get(b.property)!);
      page = { page: pageNo, perPage, pages, properties: ids.length };
    }
    let series: StatusDocument['series'] = [];
    if (ledger.reachable) {
      try {
        series = await this.series(config, reports, now);
      } catch (err) {
        // the charts are an extra: without them the page still says what matters
        this.deps.logger?.warn({ event: 'status_charts_failed', err: describe(err) }, 'status page charts could not be read');
      }
    }
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    const reload = this.deps.lastReload?.() ?? null;
    return {
      generatedAt: new Date(now).toISOString(),
      version: VERSION,
      database: ledger.reachable
        ? { reachable: true, ...(ledger.readAt ? { readAt: new Date(ledger.readAt).toISOString() } : {}) }
        : { reachable: false, error: ledger.error ?? 'unknown' },
      tokens: this.deps.tokens().map((t) => ({
        account: t.account,
        keyId: t.keyId,
        valid: t.valid,
        expiresAt: iso(t.expiresAt),
        failingSince: iso(t.failingSince),
        lastError: t.lastError,
      })),
      reports,
      recentFailures: this.deps.board.failures.map((f) => ({ at: new Date(f.at).toISOString(), property: f.propertyId, report: f.report, error: f.error })),
      series,
      discovery: discovery
        ? {
            running: discovery.running,
            lastRun: iso(discovery.lastRunAt),
            lastSuccess: iso(discovery.lastSuccessAt),
            lastError: discovery.lastError,
            lastErrorAt: iso(discovery.lastErrorAt),
            nextRun: iso(discovery.nextRunAt),
            accounts: discovery.accountsListed,
            listed: discovery.propertiesListed,
            kept: discovery.kept.length,
            added: found.size,
            disappeared: discovery.disappeared.map((p) => ({
              property: p.id,
              displayName: p.displayName,
              account: p.account,
              accountName: p.accountName,
              at: new Date(p.at).toISOString(),
            })),
          }
        : null,
      lastReload: reload ? { at: new Date(reload.at).toISOString(), ok: reload.ok, error: reload.error } : null,
      summary: {
        properties: new Set(all.filter((r) => r.kind === 'ga4').map((r) => r.property)).size,
        sites: new Set(all.filter((r) => r.kind === 'searchConsole').map((r) => r.property)).size,
        needAttention: new Set(all.filter((r) => r.attention).map((r) => r.property)).size,
        reports: all.length,
        failing: all.filter((r) => r.attention === 'failing').length,
        stale: all.filter((r) => r.stale).length,
        withGaps: all.filter((r) => r.gaps > 0).length,
        running: all.filter((r) => r.running).length,
      },
      page,
    };
  }

  private async ledger(config: Config, now: number): Promise<LedgerState> {
    const cached = this.cache;
    // a read is reused only while nothing was stored since: the page never contradicts a finished job
    const age = cached && cached.config === config && cached.writes === this.deps.board.ledgerWrites ? Date.now() - cached.readAt : Infinity;
    if (cached && age <= LEDGER_FRESH_MS) return cached.state;
    const next = this.refresh(config, now);
    if (cached && age <= LEDGER_STALE_MS) {
      next.catch(() => undefined);
      return cached.state;
    }
    return next;
  }

  /** One read at a time, shared by whoever asks meanwhile; kept when the database answered. */
  private refresh(config: Config, now: number): Promise<LedgerState> {
    this.inflight ??= (async () => {
      const readAt = Date.now();
      const writes = this.deps.board.ledgerWrites;
      const state = await this.readLedger(config, now);
      state.readAt = readAt;
      if (state.reachable) this.cache = { readAt, config, writes, state };
      return state;
    })().finally(() => (this.inflight = null));
    return this.inflight;
  }

  /** Two queries: the properties' time zones (each one's calendar), then the ledger against each zone's windows. */
  private async readLedger(config: Config, now: number): Promise<LedgerState> {
    const { pool } = this.deps;
    const schema = config.database.schema;
    const zones = new Map<string, string>();
    try {
      return await withDeadline("the status page's database read", DB_DEADLINE_MS, undefined, async () => {
        for (const [id, tz] of await propertyTimeZones(pool, schema)) zones.set(id, tz);
        const calendarNow = Math.min(now, await databaseNow(pool));
        const calendar = new Calendar(calendarNow);
        const windows: CoverageWindow[] = [];
        for (const tz of new Set(zones.values())) {
          for (const def of Object.values(config.reports)) {
            const { from, through } = calendar.window(tz, def.startDate);
            windows.push({ timeZone: tz, report: def.name, from, through });
          }
        }
        const stored = await ledgerCoverage(pool, schema, windows);
        const sc = config.searchConsole;
        if (sc.sites.length) {
          const siteWindows = Object.values(sc.reports).map((def) => ({ report: def.name, ...siteWindow(def, calendarNow) }));
          stored.push(...(await siteCoverage(pool, sc.schema, siteWindows)));
        }
        // a site's id is its URL, never a numeric property id: one map holds both
        const coverage = new Map(stored.map((c) => [`${c.propertyId}\0${c.report}`, c]));
        return { reachable: true, zones, coverage, calendarNow };
      });
    } catch (err) {
      return { reachable: false, error: describe(err), zones, coverage: new Map() };
    }
  }

  private reports(config: Config, ledger: LedgerState, now: number, found: Map<string, DiscoveredProperty>): ReportStatus[] {
    const calendar = new Calendar(Math.min(now, ledger.calendarNow ?? now));
    const due = new Map<string, number | null>(); // most properties share a schedule; previousFire is not free
    const out: ReportStatus[] = [];
    for (const property of config.properties) {
      if (!due.has(property.schedule)) due.set(property.schedule, this.dueSince(property.schedule, now));
      const since = due.get(property.schedule)!;
      const listing = found.get(property.id);
      const discovered = listing
        ? { account: listing.account, accountName: listing.accountName, displayName: listing.displayName, propertyType: listing.propertyType }
        : null;
      for (const report of property.reports) {
        const job = this.deps.board.job(property.id, report);
        const stored = ledger.coverage.get(`${property.id}\0${report}`);
        const tz = ledger.zones.get(property.id) ?? job.timeZone;
        // a zone known only from this run (not yet in `properties`) has no window in the query: all its dates count
        const gaps = tz ? Math.max(0, calendar.window(tz, config.reports[report]!.startDate).days - (stored ? (stored.inWindow ?? stored.days) : 0)) : 0;
        out.push(reportStatus({ kind: 'ga4', property: property.id, report, timeZone: tz ?? null, job, stored, gaps, since, discovered }));
      }
    }
    out.push(...siteStatuses(config, ledger.coverage, this.deps.board, calendar.now, (schedule) => this.dueSince(schedule, now)));
    return out;
  }

  /**
   * Since when a successful run is owed: the schedule's latest firing, or the daemon's start when
   * that came later (it runs what is due at once); null while that is less than an hour ago.
   */
  private dueSince(schedule: string, now: number): number | null {
    const fired = previousFire(schedule, new Date(now))?.getTime() ?? null;
    const since = Math.max(fired ?? 0, this.startedAt);
    return now - since > STALE_AFTER_MS ? since : null;
  }

  /** One query for every chart shown: each property's first report's first metric, from its totals. */
  private async series(config: Config, reports: ReportStatus[], now: number): Promise<StatusDocument['series']> {
    const shown = new Set(reports.map((r) => r.property));
    const byReport = new Map<string, string[]>();
    const chartOf: Array<Omit<StatusDocument['series'][number], 'points'>> = [];
    for (const property of config.properties) {
      const report = property.reports[0];
      if (!shown.has(property.id) || !report) continue;
      const metric = config.reports[report]!.metrics[0]!;
      chartOf.push({ kind: 'ga4' as const, property: property.id, report, metric, source: 'totals' as const });
      byReport.set(report, [...(byReport.get(report) ?? []), property.id]);
    }
    const requests = [...byReport].map(([report, properties]) => {
      const def = config.reports[report]!;
      return { report, relation: totalsName(def), column: columnName(def.metrics[0]!), properties };
    });
    const since = addDays(localDate(now, 'UTC'), -CHART_DAYS);
    const points = await withDeadline("the status page's chart read", DB_DEADLINE_MS, undefined, () =>
      totalsSeries(this.deps.pool, config.database.schema, requests, since),
    );
    const sites = siteCharts(config, shown);
    chartOf.push(...sites.charts);
    if (sites.requests.length) {
      const clicks = await withDeadline("the status page's chart read", DB_DEADLINE_MS, undefined, () =>
        siteClicksSeries(this.deps.pool, config.searchConsole.schema, sites.requests, since),
      );
      points.push(...clicks.map((c) => ({ property: c.site, report: c.report, date: c.date, value: c.value })));
    }
    const byKey = new Map<string, Array<{ date: string; value: number }>>();
    for (const point of points) {
      const key = `${point.property}\0${point.report}`;
      let list = byKey.get(key);
      if (!list) byKey.set(key, (list = []));
      list.push({ date: point.date, value: point.value });
    }
    return chartOf.map((c) => ({ ...c, points: byKey.get(`${c.property}\0${c.report}`) ?? [] }));
  }
}

/** Each time zone's today, and each report's gap window in it, computed once per document. */
class Calendar {
  private readonly windows = new Map<string, { from: string; through: string; days: number }>();
  constructor(readonly now: number) {}

  /** From the report's start date through the property's yesterday (its last finished date); `days` in it (0 when it is empty). */
  window(tz: string, startDate: string): { from: string; through: string; days: number } {
    const key = `${tz}\0${startDate}`;
    let span = this.windows.get(key);
    if (!span) {
      const today = localDate(this.now, tz);
      const from = resolveStartDate(startDate, today);
      const through = addDays(today, -1);
      this.windows.set(key, (span = { from, through, days: Math.max(0, daysBetween(from, through) + 1) }));
    }
    return span;
  }
}
