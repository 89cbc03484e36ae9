/**
 * Access tokens, one per principal, renewed before they are needed, whatever mints them: a key, a
 * federated identity, a person's sign-in, the metadata server, an impersonation (credential.ts).
 *
 * A fetch must never wait for a token exchange in the normal case, so each credential has a timer
 * that renews the token while a quarter of its lifetime is still left: for Google's one-hour
 * tokens that is 15 minutes of slack, room for several retries with backoff if the token endpoint
 * is briefly down, while the old token keeps serving requests. Concurrent callers that find no
 * valid token share one in-flight exchange. The credentials file is read again on every exchange,
 * so a rotated key or a new sign-in is picked up without a restart.
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
import { backoffDelay, sleep, type BackoffPolicy } from '../net/backoff.js';
import { untilAborted } from '../net/abort.js';
import { clampTimerMs } from '../net/deadline.js';
import { buildCredential, type Credential, type CredentialKind, type PrincipalSpec } from './credential.js';
import { DEFAULT_EXCHANGE_TIMEOUT_MS, type ExchangedToken } from './exchange.js';

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
const DEFAULT_MIN_EXCHANGE_INTERVAL_MS = 10_000;

export type { PrincipalSpec } from './credential.js';

export interface TokenStatus {
  account: string;
  /** what mints the tokens: key, federated, user, attached, impersonated */
  kind: CredentialKind;
  /** where tokens come from, one line (credential.ts) */
  origin: string;
  /** the credentials file, or `metadata server` */
  keyFile: string;
  keyId: string;
  valid: boolean;
  expiresAt: number | null;
  lastRefreshAt: number | null;
  failingSince: number | null;
  lastError: string | null;
}

export interface TokenSourceOptions {
  /** the credentials file ('' for Application Default Credentials) and a service account to impersonate ('') */
  spec: PrincipalSpec;
  /** google.tokenUrl: key files only ('' for the key's token_uri) */
  tokenUrl: string;
  /** google.iamCredentialsRootUrl (impersonation); default Google's */
  iamCredentialsRootUrl?: string;
  /** the environment Application Default Credentials read (HOME, CLOUDSDK_CONFIG, GCE_METADATA_HOST, ...); default process.env */
  env?: NodeJS.ProcessEnv;
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
  /** the credentials file, or `metadata server` */
  readonly keyFile: string;
  private credential: Credential;
  /** the principal an exchange told (the metadata server's email, a person's), when the file did not */
  private learnedAccount = '';
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
  private logger: Logger;
  private readonly warned: Set<string>;
  private readonly minInterval: number;

  /** Reads the credentials file at once. Throws UsageError for a malformed one. */
  constructor(private readonly opts: TokenSourceOptions) {
    this.warned = opts.warned ?? new Set();
    this.minInterval = Math.max(0, opts.minExchangeIntervalMs ?? DEFAULT_MIN_EXCHANGE_INTERVAL_MS);
    this.now = opts.now ?? Date.now;
    this.credential = this.build(opts.logger);
    this.keyFile = this.credential.file || 'metadata server';
    this.logger = opts.logger.child({ account: this.account });
  }

  /**
   * The principal, as the `account` label: the key's or impersonated service account's email, a
   * federated pool's provider; for the metadata server and a person's sign-in, what the first
   * exchange told (`metadata:default` or `user:FILE` until then).
   */
  get account(): string {
    return this.credential.account || this.learnedAccount || (this.credential.kind === 'attached' ? 'metadata:default' : `user:${this.credential.file}`);
  }

  /** Whether `account` names one principal (an email), not a federated pool's provider. */
  get accountUnique(): boolean {
    return this.credential.unique;
  }

  /** Whether `account` is the principal's final name (not a stand-in until the first exchange). */
  get accountKnown(): boolean {
    return Boolean(this.credential.account || this.learnedAccount);
  }

  /** Where the last step of an exchange goes: the token endpoint of a key (configured, else its token_uri), STS, IAM Credentials, the metadata server. */
  get tokenUrl(): string {
    return this.credential.endpoint;
  }

  /** What the source is built from. */
  get spec(): PrincipalSpec {
    return this.opts.spec;
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
      throw new TokenExpiredError(`token for ${this.account} expired; refresh failing since ${new Date(this.failingSince).toISOString()}: ${this.lastError}`);
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
      kind: this.credential.kind,
      origin: this.credential.origin,
      keyFile: this.keyFile,
      keyId: this.credential.keyId,
      valid: this.token !== null && this.token.expiresAt > this.now(),
      expiresAt: this.token?.expiresAt ?? null,
      lastRefreshAt: this.lastRefreshAt,
      failingSince: this.failingSince,
      lastError: this.lastError,
    };
  }

  /** The credentials file's warnings (a key others can read, a person's credentials), as check shows them. */
  notes(): Credential['notes'] {
    return this.credential.notes;
  }

  private minRemaining(t: ExchangedToken): number {
    return Math.min(MIN_REMAINING_MS, (t.expiresAt - t.issuedAt) * MIN_REMAINING_SHARE);
  }

  /** Reads the credentials; each warning about its file is logged once per file. */
  private build(logger: Logger): Credential {
    const o = this.opts;
    const credential = buildCredential(o.spec, {
      tokenUrl: o.tokenUrl,
      iamCredentialsRootUrl: o.iamCredentialsRootUrl ?? '',
      env: o.env ?? process.env,
      credentialsDirectory: o.credentialsDirectory,
    });
    for (const note of credential.notes) {
      this.warnOnce(`${credential.file}\0${note.code}`, () =>
        logger.warn({ event: 'key_file_warning', code: note.code, file: credential.file, fix: note.fix }, `${note.message}; fix: ${note.fix}`),
      );
    }
    return credential;
  }

  /** The first exchange named the principal (metadata server, a person): use that name from now on. */
  private learn(account: string | undefined): void {
    if (!account || this.credential.account || account === this.learnedAccount) return;
    this.learnedAccount = account;
    this.logger = this.opts.logger.child({ account });
    this.opts.metrics.tokenRefreshes.inc({ account, outcome: 'success' }, 0);
    this.opts.metrics.tokenRefreshes.inc({ account, outcome: 'failure' }, 0);
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
    if (wait > 0) await sleep(wait, signal, 'token renewal stopped');
    if (signal.aborted) throw new AbortedError('token renewal stopped');
    const started = this.now();
    this.lastExchangeAt = started;
    try {
      // Re-read the credentials: an operator may have rotated a key or signed in again in place.
      this.credential = this.build(this.logger);
      const credential = this.credential;
      const token = await credential.mint(signal, this.opts.exchangeTimeoutMs ?? DEFAULT_EXCHANGE_TIMEOUT_MS);
      this.learn(token.account);
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
        {
          event: 'token_refresh_failed',
          err: this.lastError,
          code: (err as { code?: unknown }).code,
          attempt: this.failures,
          retryInMs: Math.round(delay),
          tokenValid: this.status().valid,
        },
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

/**
 * All token sources, one per principal: sources whose principal is known from their files alone
 * (a key's account, an impersonated service account, a federated pool) share one when they name
 * the same principal, however many files and properties name it.
 */
export class TokenManager {
  private readonly bySpec = new Map<string, TokenSource>();
  private readonly byAccount = new Map<string, TokenSource>();
  private readonly all = new Set<TokenSource>();
  /** credentials-file and token-endpoint warnings already logged, across all sources */
  private readonly warned = new Set<string>();

  constructor(private readonly opts: Omit<TokenSourceOptions, 'spec' | 'warned'>) {}

  /**
   * The source for a principal (a credentials file or Application Default Credentials, and a
   * service account to impersonate), created on first use; the file's warnings are logged then,
   * once. Throws UsageError for a malformed credentials file.
   */
  forPrincipal(p: { credentials: string; impersonate?: string | undefined }): TokenSource {
    const spec: PrincipalSpec = { credentials: p.credentials, impersonate: p.impersonate ?? '' };
    const id = `${spec.credentials}\0${spec.impersonate}`;
    const known = this.bySpec.get(id);
    if (known) return known;
    const source = new TokenSource({ ...this.opts, spec, warned: this.warned });
    // only a label that names one principal is shared: a pool's provider stands for many workloads
    const shared = source.accountKnown && source.accountUnique;
    const same = shared ? this.byAccount.get(source.account) : undefined;
    if (same) {
      this.bySpec.set(id, same);
      return same;
    }
    this.bySpec.set(id, source);
    if (shared) this.byAccount.set(source.account, source);
    this.all.add(source);
    return source;
  }

  /** forPrincipal for a credentials file without impersonation. */
  forKeyFile(keyFile: string): TokenSource {
    return this.forPrincipal({ credentials: keyFile });
  }

  sources(): TokenSource[] {
    return [...this.all];
  }

  async start(): Promise<void> {
    await Promise.all(this.sources().map((s) => s.start()));
  }

  /** Stops every renewal and aborts the exchanges in flight. Idempotent. */
  stop(): void {
    for (const s of this.sources()) s.stop();
  }
}
