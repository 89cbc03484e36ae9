/**
 * Property discovery: which GA4 properties the default principal can read, as the Admin API
 * lists them, kept by `discovery.accounts` and `discovery.exclude`, and how they join the
 * configured ones (configured ∪ discovered; an entry of `properties` always wins).
 *
 * `Discovery` runs the listing at start, when asked (SIGHUP) and once a day. A failed listing is
 * logged and kept on the status board, the last good list stays in force, and the listing is
 * tried again with backoff (Google answering 403 until someone enables the Admin API is the usual
 * case, and that heals without a restart). A property that is no longer listed is logged and kept
 * on the board with the time it went; nothing of its data is touched.
 */
import { backoffDelay } from '../net/backoff.js';
import type { TokenSource } from '../auth/tokenManager.js';
import type { Config, PropertyConfig } from '../config/index.js';
import { describe } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { clampTimerMs } from '../net/deadline.js';
import type { AccountSummary, AdminClient } from './adminClient.js';

/** A property found by discovery, with where it was found. */
export interface DiscoveredProperty {
  id: string;
  displayName: string;
  /** numeric GA account id */
  account: string;
  accountName: string;
  propertyType: string;
  parent: string;
}

/** A discovered property the Admin API no longer lists. */
export interface DisappearedProperty extends DiscoveredProperty {
  /** ms since epoch: the listing that first missed it */
  at: number;
}

/** What the status page shows of discovery. */
export interface DiscoveryStatus {
  running: boolean;
  lastRunAt: number | null;
  lastSuccessAt: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
  nextRunAt: number | null;
  /** accounts the last good listing returned */
  accountsListed: number;
  /** properties the last good listing returned, before the filters */
  propertiesListed: number;
  /** kept by the filters: the gauge's value */
  kept: DiscoveredProperty[];
  disappeared: DisappearedProperty[];
}

/** Flattens a listing into properties (a property listed twice is taken once). */
export function flatten(accounts: AccountSummary[]): DiscoveredProperty[] {
  const seen = new Set<string>();
  const out: DiscoveredProperty[] = [];
  for (const a of accounts) {
    for (const p of a.properties) {
      if (seen.has(p.id)) continue;
      seen.add(p.id);
      out.push({ id: p.id, displayName: p.displayName, account: a.id, accountName: a.displayName, propertyType: p.propertyType, parent: p.parent });
    }
  }
  return out;
}

/** The listed properties that `discovery.accounts` and `discovery.exclude` keep. */
export function applyFilters(listed: DiscoveredProperty[], filters: Pick<Config['discovery'], 'accounts' | 'exclude'>): DiscoveredProperty[] {
  const accounts = new Set(filters.accounts);
  const exclude = new Set(filters.exclude);
  return listed.filter((p) => (accounts.size === 0 || accounts.has(p.account)) && !exclude.has(p.id));
}

/**
 * The configuration the scheduler runs: every configured property as configured, then every kept
 * discovered property that is not configured, with the default schedule, the default credentials
 * (the principal that listed it) and `discovery.reports`. Returns `config` itself when discovery
 * adds nothing.
 */
export function withDiscovered(config: Config, kept: DiscoveredProperty[]): Config {
  if (!config.discovery.enabled || kept.length === 0) return config;
  const configured = new Set(config.properties.map((p) => p.id));
  const added: PropertyConfig[] = kept
    .filter((p) => !configured.has(p.id))
    .map((p) => ({
      id: p.id,
      reports: [...config.discovery.reports],
      schedule: config.schedule,
      credentials: config.google.credentials,
      impersonate: config.google.impersonate,
    }));
  if (added.length === 0) return config;
  return { ...config, properties: [...config.properties, ...added] };
}

/** Whether two property lists would schedule the same work. */
export function sameProperties(a: PropertyConfig[], b: PropertyConfig[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((p, i) => {
    const q = b[i]!;
    return p.id === q.id && p.schedule === q.schedule && p.credentials === q.credentials && p.reports.join('\0') === q.reports.join('\0');
  });
}

export interface DiscoveryDeps {
  client: AdminClient;
  /** the default principal's token source */
  tokens: () => TokenSource;
  /** the filters in effect (they change on SIGHUP) */
  filters: () => Pick<Config['discovery'], 'accounts' | 'exclude'>;
  logger: Logger;
  metrics: Metrics;
  /** told after every successful listing, with what the filters kept; applies it (resolves once applied) */
  onChange: (kept: DiscoveredProperty[]) => Promise<void>;
  now?: () => number;
  /** between successful listings, ms (default a day) */
  intervalMs?: number;
  /** first retry after a failure, ms; doubles up to retryCapMs (defaults 30 s and 1 h) */
  retryBaseMs?: number;
  retryCapMs?: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const MAX_DISAPPEARED = 500;

export class Discovery {
  private listed: DiscoveredProperty[] | null = null;
  private kept: DiscoveredProperty[] = [];
  private readonly disappeared = new Map<string, DisappearedProperty>();
  private accountsListed = 0;
  private lastRunAt: number | null = null;
  private lastSuccessAt: number | null = null;
  private lastError: string | null = null;
  private lastErrorAt: number | null = null;
  private nextRunAt: number | null = null;
  private failures = 0;
  private inflight: Promise<boolean> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private looping = false;
  private stopped = false;
  private readonly controller = new AbortController();
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(private readonly deps: DiscoveryDeps) {
    this.now = deps.now ?? Date.now;
    this.log = deps.logger.child({ component: 'discovery' });
  }

  /**
   * One listing now (joined by whoever asks while it runs; asked again meanwhile, it runs once more
   * after). Resolves true when it succeeded; never throws. With the loop started, the next listing
   * is scheduled: a day after a success, with backoff after a failure.
   */
  run(reason: string): Promise<boolean> {
    if (this.stopped) return Promise.resolve(false);
    if (this.inflight) {
      this.again = true;
      return this.inflight;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.inflight = this.listOnce(reason).finally(() => {
      this.inflight = null;
      if (this.again && !this.stopped) {
        this.again = false;
        void this.run(reason);
      } else {
        this.scheduleNext();
      }
    });
    return this.inflight;
  }

  /** From now on, list again once a day, and after a failure with backoff. */
  startLoop(): void {
    this.looping = true;
    if (!this.inflight) this.scheduleNext();
  }

  /**
   * The filters changed (SIGHUP): the last good listing through the filters now in force (the
   * gauge follows); empty before any listing succeeded.
   */
  refilter(): DiscoveredProperty[] {
    if (this.listed !== null) this.setKept(applyFilters(this.listed, this.deps.filters()), true);
    return this.kept;
  }

  status(): DiscoveryStatus {
    return {
      running: this.inflight !== null,
      lastRunAt: this.lastRunAt,
      lastSuccessAt: this.lastSuccessAt,
      lastError: this.lastError,
      lastErrorAt: this.lastErrorAt,
      nextRunAt: this.nextRunAt,
      accountsListed: this.accountsListed,
      propertiesListed: this.listed?.length ?? 0,
      kept: this.kept,
      disappeared: [...this.disappeared.values()].sort((a, b) => b.at - a.at),
    };
  }

  /** Idempotent: no more listings; one in flight is aborted. */
  stop(): void {
    this.stopped = true;
    this.looping = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.nextRunAt = null;
    this.controller.abort();
  }

  private async listOnce(reason: string): Promise<boolean> {
    const started = this.now();
    this.lastRunAt = started;
    let tokens: TokenSource;
    let accounts: AccountSummary[];
    try {
      tokens = this.deps.tokens();
      accounts = await this.deps.client.listAccountSummaries(tokens, this.log, this.controller.signal);
    } catch (err) {
      if (this.stopped) return false;
      this.failures += 1;
      this.lastError = describe(err);
      this.lastErrorAt = this.now();
      this.log.error(
        { event: 'discovery_failed', reason, attempt: this.failures, err: this.lastError, keeping: this.kept.length },
        this.listed === null
          ? 'property discovery failed; fetching the configured properties only'
          : 'property discovery failed; keeping the last discovered properties',
      );
      return false;
    }
    const listed = flatten(accounts);
    const kept = applyFilters(listed, this.deps.filters());
    const at = this.now();
    this.noteDisappeared(listed, at);
    const first = this.listed === null;
    this.listed = listed;
    this.accountsListed = new Set(accounts.map((a) => a.id)).size;
    this.setKept(kept, !first);
    this.failures = 0;
    this.lastError = null;
    this.lastErrorAt = null;
    this.lastSuccessAt = at;
    // the Admin API lists what the principal can read and answers an empty list, not an error, when that is nothing
    if (listed.length === 0) {
      this.log.warn(
        { event: 'discovery_empty', principal: tokens.account },
        'the Admin API lists no GA4 property for this principal: add it as a Viewer of the GA accounts or properties to fetch (GA Admin > Account access management)',
      );
    }
    const unseen = this.deps.filters().accounts.filter((a) => !accounts.some((x) => x.id === a));
    if (unseen.length) {
      this.log.warn(
        { event: 'discovery_account_unseen', accounts: unseen, principal: tokens.account },
        'discovery.accounts names accounts this principal cannot see',
      );
    }
    try {
      await this.deps.onChange(this.kept);
    } catch (err) {
      this.log.error({ event: 'discovery_apply_failed', err: describe(err) }, 'the discovered properties could not be applied');
    }
    // after applying: once this is logged, the scheduler runs what was found
    this.log.info(
      { event: 'discovery_finished', reason, accounts: this.accountsListed, listed: listed.length, kept: kept.length, durationMs: this.now() - started },
      'properties discovered',
    );
    return true;
  }

  /** Kept properties the new listing lacks are gone (not those the filters now drop: that is the operator's choice). */
  private noteDisappeared(listed: DiscoveredProperty[], at: number): void {
    const now = new Set(listed.map((p) => p.id));
    for (const p of this.kept) {
      if (now.has(p.id) || this.disappeared.has(p.id)) continue;
      this.disappeared.set(p.id, { ...p, at });
      this.log.warn(
        { event: 'property_disappeared', property: p.id, account: p.account, displayName: p.displayName },
        'a discovered property is no longer listed by the Admin API (access removed, property deleted or moved); discovery stops fetching it and its data stays',
      );
    }
    for (const id of [...this.disappeared.keys()]) if (now.has(id)) this.disappeared.delete(id);
    while (this.disappeared.size > MAX_DISAPPEARED) {
      const oldest = [...this.disappeared.values()].sort((a, b) => a.at - b.at)[0]!;
      this.disappeared.delete(oldest.id);
    }
  }

  private setKept(kept: DiscoveredProperty[], logNew: boolean): void {
    const before = new Set(this.kept.map((p) => p.id));
    for (const p of kept) {
      if (before.has(p.id)) continue;
      // the first listing can bring thousands: those are in the summary line, each at debug
      const level = logNew ? 'info' : 'debug';
      this.log[level](
        { event: 'property_discovered', property: p.id, account: p.account, displayName: p.displayName, propertyType: p.propertyType },
        'property discovered',
      );
    }
    this.kept = kept;
    this.deps.metrics.propertiesDiscovered.set(kept.length);
  }

  private scheduleNext(): void {
    if (!this.looping || this.stopped) return;
    const base = this.deps.retryBaseMs ?? 30_000;
    const cap = this.deps.retryCapMs ?? 60 * 60 * 1000;
    // after a failure: backoff with jitter, at least half the base (never back at once); else a day
    const delay = this.failures > 0 ? backoffDelay(this.failures, { baseMs: base, capMs: cap, floorMs: base / 2 }) : (this.deps.intervalMs ?? DAY_MS);
    this.nextRunAt = this.now() + delay;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.run(this.failures > 0 ? 'retry' : 'daily');
    }, clampTimerMs(delay));
    this.timer.unref();
  }
}
