/**
 * Access tokens, one per service account, renewed before they are needed.
 *
 * A fetch must never wait for a token exchange in the normal case, so each credential has a timer
 * that renews the token while a quarter of its lifetime is still left: for Google's one-hour
 * tokens that is 15 minutes of slack, room for several retries with backoff if the token endpoint
 * is briefly down, while the old token keeps serving requests. Concurrent callers that find no
 * valid token share one in-flight exchange. The key file is read again on every exchange, so a
 * rotated key is picked up without a restart.
 *
 * Whatever the token endpoint answers (a lifetime of one second, a token every API call refuses
 * with 401, a lifetime that cannot be read), one principal starts at most one exchange per
 * `minExchangeIntervalMs` (10 s), its first excepted: a floor below the renewal timer, the retry
 * backoff and 401 renewals alike, so no answer can turn into an exchange storm. Each exchange runs
 * under a deadline (exchange.ts); stop() aborts the one in flight.
 */
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { AbortedError, PermanentError, RetryableError, TokenExpiredError, describe } from '../errors.js';
import { backoffDelay, type BackoffPolicy } from '../net/backoff.js';
import { clampTimerMs } from '../net/deadline.js';
import { GOOGLE_TOKEN_URL } from '../config/googleUrls.js';
import { DEFAULT_EXCHANGE_TIMEOUT_MS, exchangeToken, type ExchangedToken } from './exchange.js';
import { readServiceAccountKey, type ServiceAccountKey } from './serviceAccountKey.js';

export { exchangeDeadlineMs } from './exchange.js';

/** Renew when this share of the lifetime is left. */
const REFRESH_AT_REMAINING_SHARE = 0.25;
/** A token this close to expiry is not handed out: a request could outlive it (capped at a tenth of short lifetimes). */
const MIN_REMAINING_MS = 10_000;
const MIN_REMAINING_SHARE = 0.1;
/**
 * A failed exchange is tried again within 2, 4, 8 ... 60 s, never sooner than half a second (the
 * token endpoint is not hammered); well inside the quarter of a lifetime a renewal has in hand.
 */
const RETRY: BackoffPolicy = { baseMs: 2_000, capMs: 60_000, floorMs: 500 };
/** A permanent refusal (a revoked key) is retried five times slower: the operator may replace the key file. */
const RETRY_REFUSED: BackoffPolicy = { ...RETRY, capMs: 5 * RETRY.capMs };
/** The floor between two exchanges of one principal (see the module comment). */
export const DEFAULT_MIN_EXCHANGE_INTERVAL_MS = 10_000;

export interface TokenStatus {
  account: string;
  keyFile: string;
  keyId: string;
  valid: boolean;
  expiresAt: number | null;
  lastRefreshAt: number | null;
  failingSince: number | null;
  lastError: string | null;
}

export interface TokenSourceOptions {
  keyFile: string;
  tokenUrl: string;
  logger: Logger;
  metrics: Metrics;
  now?: () => number;
  /** deadline of one exchange, ms; default 30 s (exchangeDeadlineMs() derives it from fetch.timeoutSeconds) */
  exchangeTimeoutMs?: number;
  /** at most one exchange per this many ms per principal, the first excepted; default 10 s */
  minExchangeIntervalMs?: number;
  /** systemd's $CREDENTIALS_DIRECTORY: key files there are not warned about for their mode */
  credentialsDirectory?: string | undefined;
  /** warnings already logged, as `file\0code` (shared by a TokenManager's sources so each is logged once) */
  warned?: Set<string>;
}

export class TokenSource {
  readonly account: string;
  readonly keyFile: string;
  private key: ServiceAccountKey;
  private token: ExchangedToken | null = null;
  private inflight: Promise<ExchangedToken> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;
  private failingSince: number | null = null;
  private lastError: string | null = null;
  private lastRefreshAt: number | null = null;
  /** when the last exchange was started (the floor counts from it) */
  private lastExchangeAt: number | null = null;
  private stopped = false;
  /** aborted by stop(): ends the exchange in flight and its wait for the floor */
  private controller = new AbortController();
  private readonly now: () => number;
  private readonly logger: Logger;
  private readonly warned: Set<string>;
  private readonly minInterval: number;

  /** Reads the key file at once. Throws UsageError for a bad key file. */
  constructor(private readonly opts: TokenSourceOptions) {
    this.warned = opts.warned ?? new Set();
    this.minInterval = Math.max(0, opts.minExchangeIntervalMs ?? DEFAULT_MIN_EXCHANGE_INTERVAL_MS);
    this.keyFile = opts.keyFile;
    this.now = opts.now ?? Date.now;
    this.key = this.readKey(opts.logger);
    this.account = this.key.clientEmail;
    this.logger = opts.logger.child({ account: this.account });
  }

  /** The URL exchanges go to: the configured one, else the key's token_uri, else Google's. */
  get tokenUrl(): string {
    return this.opts.tokenUrl || this.key.tokenUri || GOOGLE_TOKEN_URL;
  }

  /** First exchange; a failure is logged and retried in the background, not thrown. */
  async start(): Promise<void> {
    if (this.controller.signal.aborted) {
      // an exchange aborted by stop() may still be settling; let it, then start afresh
      await this.inflight?.catch(() => undefined);
      this.controller = new AbortController();
    }
    this.stopped = false;
    try {
      await this.refresh();
    } catch {
      // refresh() already logged, counted and scheduled a retry
    }
  }

  /** Stops renewing and aborts an exchange in flight (its callers get AbortedError). Idempotent. */
  stop(): void {
    this.stopped = true;
    this.clearTimer();
    this.controller.abort(new AbortedError('token renewal stopped'));
  }

  /**
   * A token valid for at least a few more seconds. Returns at once in the normal case; waits for
   * an exchange only when none is valid (start-up, or refresh failing past expiry), and then no
   * longer than the floor plus the exchange deadline, or until `signal` aborts (AbortedError).
   */
  async getToken(signal?: AbortSignal): Promise<string> {
    if (this.token && this.token.expiresAt - this.now() > this.minRemaining(this.token)) return this.token.accessToken;
    if (this.failingSince !== null && !this.inflight && this.token !== null) {
      // The token ran out while renewals keep failing: fail fast instead of hammering a token
      // endpoint that the background renewal is already retrying with backoff.
      throw new TokenExpiredError(
        `token for ${this.account} expired; refresh failing since ${new Date(this.failingSince).toISOString()}: ${this.lastError}`,
      );
    }
    return (await untilAborted(this.refresh(), signal)).accessToken;
  }

  /** The API said 401: the token we hold is no good. Share one exchange among all who noticed. */
  async invalidate(badToken: string): Promise<void> {
    // Requests refused together notice at different moments. Only the first renews; the others
    // wait for that exchange or find its token already there. (Before, a refusal noticed after
    // the renewal had finished started another one: an exchange per straggler.)
    if (this.inflight) {
      await this.inflight.catch(() => undefined);
      return;
    }
    if (this.token !== null && this.token.accessToken !== badToken) return;
    this.token = null;
    await this.refresh().catch(() => undefined);
  }

  status(): TokenStatus {
    return {
      account: this.account,
      keyFile: this.keyFile,
      keyId: this.key.privateKeyId,
      valid: this.token !== null && this.token.expiresAt > this.now(),
      expiresAt: this.token?.expiresAt ?? null,
      lastRefreshAt: this.lastRefreshAt,
      failingSince: this.failingSince,
      lastError: this.lastError,
    };
  }

  private minRemaining(t: ExchangedToken): number {
    return Math.min(MIN_REMAINING_MS, (t.expiresAt - t.issuedAt) * MIN_REMAINING_SHARE);
  }

  /** Reads the key file; each of its warnings is logged once per file. */
  private readKey(logger: Logger): ServiceAccountKey {
    const key = readServiceAccountKey(this.keyFile, { credentialsDirectory: this.opts.credentialsDirectory });
    for (const note of key.notes) {
      this.warnOnce(`${this.keyFile}\0${note.code}`, () =>
        logger.warn({ event: 'key_file_warning', code: note.code, file: this.keyFile, fix: note.fix }, `${note.message}; fix: ${note.fix}`),
      );
    }
    return key;
  }

  private warnOnce(key: string, log: () => void): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    log();
  }

  /** ms until the floor allows the next exchange */
  private untilFloor(): number {
    return this.lastExchangeAt === null ? 0 : Math.max(0, this.lastExchangeAt + this.minInterval - this.now());
  }

  private refresh(): Promise<ExchangedToken> {
    if (!this.inflight) {
      // whoever starts the exchange, the pending timer is moot
      this.clearTimer();
      this.inflight = this.exchange().finally(() => {
        this.inflight = null;
      });
    }
    return this.inflight;
  }

  private async exchange(): Promise<ExchangedToken> {
    const signal = this.controller.signal;
    const wait = this.untilFloor();
    if (wait > 0) await abortableSleep(wait, signal);
    if (signal.aborted) throw new AbortedError('token renewal stopped');
    const started = this.now();
    this.lastExchangeAt = started;
    try {
      // Re-read the key: an operator may have rotated it in place.
      this.key = this.readKey(this.logger);
      const token = await exchangeToken(this.key, { tokenUrl: this.tokenUrl, timeoutMs: this.opts.exchangeTimeoutMs ?? DEFAULT_EXCHANGE_TIMEOUT_MS, signal });
      this.token = token;
      this.failures = 0;
      this.failingSince = null;
      this.lastError = null;
      this.lastRefreshAt = this.now();
      this.opts.metrics.tokenRefreshes.inc({ account: this.account, outcome: 'success' });
      this.opts.metrics.tokenExpiry.set({ account: this.account }, token.expiresAt / 1000);
      const note = token.note;
      if (note) this.warnOnce(`${this.tokenUrl}\0${note.code}`, () => this.logger.warn({ event: 'token_response_odd', code: note.code }, note.message));
      const lifetime = token.expiresAt - token.issuedAt;
      this.logger.info(
        { event: 'token_refreshed', expiresAt: new Date(token.expiresAt).toISOString(), durationMs: this.now() - started },
        'access token refreshed',
      );
      this.schedule(Math.max(this.untilFloor(), lifetime * (1 - REFRESH_AT_REMAINING_SHARE)));
      return token;
    } catch (err) {
      // stopped on purpose: not the endpoint's failure
      if (err instanceof AbortedError && signal.aborted) throw err;
      this.failures += 1;
      this.failingSince ??= started;
      this.lastError = describe(err);
      this.opts.metrics.tokenRefreshes.inc({ account: this.account, outcome: 'failure' });
      const permanent = err instanceof PermanentError || !(err instanceof RetryableError);
      const delay = Math.max(this.untilFloor(), backoffDelay(this.failures, permanent ? RETRY_REFUSED : RETRY));
      this.logger.error(
        { event: 'token_refresh_failed', err: this.lastError, code: (err as { code?: unknown }).code, attempt: this.failures, retryInMs: Math.round(delay), tokenValid: this.status().valid },
        'access token refresh failed',
      );
      this.schedule(delay);
      throw err;
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.clearTimer();
    // clamped: a lifetime of weeks would overflow Node's timer and fire at once
    this.timer = setTimeout(() => {
      this.timer = null;
      this.refresh().catch(() => undefined);
    }, clampTimerMs(ms));
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** Waits `ms`, or rejects with AbortedError when `signal` aborts first. */
function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new AbortedError('token renewal stopped'));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError('token renewal stopped'));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, clampTimerMs(ms));
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** `p`, unless `signal` aborts first (AbortedError); `p` itself carries on for its other waiters. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(new AbortedError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortedError());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** All token sources, one per service account (key files naming the same account share one). */
export class TokenManager {
  private readonly byFile = new Map<string, TokenSource>();
  private readonly byAccount = new Map<string, TokenSource>();
  /** key-file and token-endpoint warnings already logged, across all sources */
  private readonly warned = new Set<string>();

  constructor(private readonly opts: Omit<TokenSourceOptions, 'keyFile' | 'warned'>) {}

  /**
   * The source for a key file, created on first use; the file's warnings (mode, mangled line
   * breaks) are logged then, once. Throws UsageError for a bad key file.
   */
  forKeyFile(keyFile: string): TokenSource {
    const known = this.byFile.get(keyFile);
    if (known) return known;
    const source = new TokenSource({ ...this.opts, keyFile, warned: this.warned });
    const same = this.byAccount.get(source.account);
    if (same) {
      this.byFile.set(keyFile, same);
      return same;
    }
    this.byFile.set(keyFile, source);
    this.byAccount.set(source.account, source);
    return source;
  }

  sources(): TokenSource[] {
    return [...this.byAccount.values()];
  }

  async start(): Promise<void> {
    await Promise.all(this.sources().map((s) => s.start()));
  }

  /** Stops every renewal and aborts the exchanges in flight. Idempotent. */
  stop(): void {
    for (const s of this.sources()) s.stop();
  }
}
