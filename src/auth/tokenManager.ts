/**
 * Access tokens, one per service account, renewed before they are needed.
 *
 * A fetch must never wait for a token exchange in the normal case, so each credential has a timer
 * that renews the token while a quarter of its lifetime is still left: for Google's one-hour
 * tokens that is 15 minutes of slack, room for several retries with backoff if the token endpoint
 * is briefly down, while the old token keeps serving requests. Concurrent callers that find no
 * valid token share one in-flight exchange. The key file is read again on every exchange, so a
 * rotated key is picked up without a restart.
 */
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { PermanentError, RetryableError, describe } from '../errors.js';
import { exchangeToken, type ExchangedToken } from './exchange.js';
import { readServiceAccountKey, type ServiceAccountKey } from './serviceAccountKey.js';

/** Renew when this share of the lifetime is left. */
const REFRESH_AT_REMAINING_SHARE = 0.25;
/** A token this close to expiry is not handed out: a request could outlive it (capped at a tenth of short lifetimes). */
const MIN_REMAINING_MS = 10_000;
const MIN_REMAINING_SHARE = 0.1;
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 60_000;

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
  private stopped = false;
  private readonly now: () => number;
  private readonly logger: Logger;

  constructor(private readonly opts: TokenSourceOptions) {
    this.key = readServiceAccountKey(opts.keyFile);
    this.account = this.key.clientEmail;
    this.keyFile = opts.keyFile;
    this.now = opts.now ?? Date.now;
    this.logger = opts.logger.child({ account: this.account });
  }

  /** The URL exchanges go to: the configured one, else the key's token_uri, else Google's. */
  get tokenUrl(): string {
    return this.opts.tokenUrl || this.key.tokenUri || 'https://oauth2.googleapis.com/token';
  }

  /** First exchange; a failure is logged and retried in the background, not thrown. */
  async start(): Promise<void> {
    this.stopped = false;
    try {
      await this.refresh();
    } catch {
      // refresh() already logged, counted and scheduled a retry
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * A token valid for at least a few more seconds. Returns at once in the normal case; waits for
   * an exchange only when none is valid (start-up, or refresh failing past expiry).
   */
  async getToken(): Promise<string> {
    if (this.token && this.token.expiresAt - this.now() > this.minRemaining(this.token)) return this.token.accessToken;
    if (this.failingSince !== null && !this.inflight && this.token !== null) {
      // The token ran out while renewals keep failing: fail fast instead of hammering a token
      // endpoint that the background renewal is already retrying with backoff.
      throw new TokenExpiredError(
        `token for ${this.account} expired; refresh failing since ${new Date(this.failingSince).toISOString()}: ${this.lastError}`,
      );
    }
    return (await this.refresh()).accessToken;
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

  private refresh(): Promise<ExchangedToken> {
    if (!this.inflight) {
      this.inflight = this.exchange().finally(() => {
        this.inflight = null;
      });
    }
    return this.inflight;
  }

  private async exchange(): Promise<ExchangedToken> {
    const started = this.now();
    try {
      // Re-read the key: an operator may have rotated it in place.
      this.key = readServiceAccountKey(this.keyFile);
      const token = await exchangeToken(this.key, { tokenUrl: this.tokenUrl });
      this.token = token;
      this.failures = 0;
      this.failingSince = null;
      this.lastError = null;
      this.lastRefreshAt = this.now();
      this.opts.metrics.tokenRefreshes.inc({ account: this.account, outcome: 'success' });
      this.opts.metrics.tokenExpiry.set({ account: this.account }, token.expiresAt / 1000);
      const lifetime = token.expiresAt - token.issuedAt;
      this.logger.info(
        { event: 'token_refreshed', expiresAt: new Date(token.expiresAt).toISOString(), durationMs: this.now() - started },
        'access token refreshed',
      );
      this.schedule(Math.max(1_000, lifetime * (1 - REFRESH_AT_REMAINING_SHARE)));
      return token;
    } catch (err) {
      this.failures += 1;
      this.failingSince ??= started;
      this.lastError = describe(err);
      this.opts.metrics.tokenRefreshes.inc({ account: this.account, outcome: 'failure' });
      const permanent = err instanceof PermanentError || !(err instanceof RetryableError);
      // Permanent refusals (revoked key) are retried slowly: the operator may replace the key file.
      const cap = permanent ? 5 * RETRY_MAX_MS : RETRY_MAX_MS;
      const delay = Math.random() * Math.min(cap, RETRY_BASE_MS * 2 ** Math.min(this.failures, 12));
      this.logger.error(
        { event: 'token_refresh_failed', err: this.lastError, attempt: this.failures, retryInMs: Math.round(delay), tokenValid: this.status().valid },
        'access token refresh failed',
      );
      this.schedule(Math.max(RETRY_BASE_MS / 2, delay));
      throw err;
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.refresh().catch(() => undefined);
    }, ms);
    this.timer.unref();
  }
}

/** No valid token and renewals failing: a fetch fails at once rather than retrying. */
export class TokenExpiredError extends RetryableError {
  override name = 'TokenExpiredError';
  constructor(message: string) {
    super(message, 'token_expired');
  }
}

/** All token sources, one per service account (key files naming the same account share one). */
export class TokenManager {
  private readonly byFile = new Map<string, TokenSource>();
  private readonly byAccount = new Map<string, TokenSource>();

  constructor(private readonly opts: Omit<TokenSourceOptions, 'keyFile'>) {}

  /** The source for a key file, created on first use. Throws UsageError for a bad key file. */
  forKeyFile(keyFile: string): TokenSource {
    const known = this.byFile.get(keyFile);
    if (known) return known;
    const source = new TokenSource({ ...this.opts, keyFile });
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

  stop(): void {
    for (const s of this.sources()) s.stop();
  }
}
