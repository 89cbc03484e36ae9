/**
 * How every Google API call is made, whichever API it is (the Data API, Search Console): under the
 * request slots (all requests, and those of one property or site), with our token, our deadline
 * (net/deadline.ts) and abort signal, a 401 answered by one forced token refresh, failures sorted
 * once by the API's own `classify` into retryable, deferred and permanent, and retried with
 * backoff (net/backoff.ts) or Retry-After, within the attempts and the job's deadline. Each request
 * is admitted by a RequestBudget and settled with it: a property or site that keeps answering 5xx
 * is left alone for the rest of the hour, by this daemon alone (ServerErrorBudget) or by every
 * daemon on the database (schedule/sharedQuota.ts).
 * The API clients (ga4/client.ts, searchConsole/client.ts) say only what to send and how to read it.
 */
import { AbortedError, DeferError, RetryableError, TokenExpiredError, describe } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { backoffDelay, sleep, type BackoffPolicy } from '../net/backoff.js';
import { abortSafeFetch } from '../net/abortSafeFetch.js';
import { withDeadline } from '../net/deadline.js';
import { httpStatus } from '../net/httpResponse.js';
import { where, type CallContext } from './callContext.js';
import { Limiter } from './limiter.js';
import { PROPERTY_CONCURRENCY, ServerErrorBudget, type RequestBudget, type RequestTicket } from './quota.js';

export interface ApiCallerOptions {
  /** deadline of one request, headers and whole body, ms; a timeout is retried like a 5xx */
  timeoutMs: number;
  /** attempts per request (and per listing, in the page loop) for retryable failures */
  maxAttempts: number;
  /** the request slots shared by every API client */
  limiter: Limiter;
  metrics: Metrics;
  /** sorts a failed request of this API (never called with our own AbortedError or a RetryableError) */
  classify: (err: unknown, ctx: CallContext, method: string, now: number) => Error;
  /** backoff base and cap, ms (tests shorten them); default 1 s and 32 s */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** server errors (5xx) one property or site may answer in an hour before it is left alone until the hour is over */
  maxServerErrorsPerHour?: number;
  /**
   * asked before each request and told its outcome (server errors, quota deferrals); default an
   * in-memory ServerErrorBudget of `maxServerErrorsPerHour` (8)
   */
  budget?: RequestBudget;
  /**
   * requests one property or site may have in flight at once, over all its reports
   * (fetch.perPropertyConcurrency), each also holding a slot of `limiter`; default
   * PROPERTY_CONCURRENCY, Google's limit for a standard property
   */
  perPropertyConcurrency?: number;
  now?: () => number;
}

type Attempt<T> = { ok: true; value: T } | { ok: false; error: Error; status: number | undefined };

export class ApiCaller {
  private readonly perProperty = new Map<string, Limiter>();
  private readonly budget: RequestBudget;
  private readonly backoff: BackoffPolicy;
  private readonly now: () => number;

  constructor(private readonly opts: ApiCallerOptions) {
    this.now = opts.now ?? Date.now;
    this.budget = opts.budget ?? new ServerErrorBudget(opts.maxServerErrorsPerHour ?? 8, this.now);
    this.backoff = { baseMs: opts.backoffBaseMs ?? 1_000, capMs: opts.backoffCapMs ?? 32_000 };
  }

  private propertyLimiter(propertyId: string): Limiter {
    let limiter = this.perProperty.get(propertyId);
    if (!limiter) this.perProperty.set(propertyId, (limiter = new Limiter(this.opts.perPropertyConcurrency ?? PROPERTY_CONCURRENCY)));
    return limiter;
  }

  /**
   * The one retry policy. After attempt number `attempt` (1-based) failed with `error`: waits the
   * backoff (Retry-After when Google sent one, else net/backoff.ts) and resolves when another
   * attempt should be made; throws instead when it should not (a permanent or deferring error,
   * attempts used up, the job's deadline too near, shutdown).
   */
  async backOff(ctx: CallContext, error: Error, attempt: number, method: string): Promise<void> {
    if (ctx.signal?.aborted) throw new AbortedError();
    if (!(error instanceof RetryableError) || error instanceof DeferError) throw error;
    if (attempt >= this.opts.maxAttempts) {
      throw attempt > 1 ? new RetryableError(`${describe(error)} (gave up after ${attempt} attempts)`, error.code, undefined, { cause: error }) : error;
    }
    const delay = error.retryAfterMs ?? backoffDelay(attempt, this.backoff);
    if (ctx.deadline !== undefined && this.now() + delay > ctx.deadline) {
      throw new RetryableError(`${describe(error)} (gave up: the job's deadline is reached)`, error.code, undefined, { cause: error });
    }
    this.opts.metrics.apiRetries.inc();
    ctx.logger.warn(
      { event: 'api_retry', method, attempt, code: error.code, retryInMs: Math.round(delay), err: describe(error) },
      'retryable API failure, backing off',
    );
    await sleep(delay, ctx.signal);
  }

  /**
   * `send` under the request slots and a deadline, then `read` of what it returned, retried as
   * backOff says. `read` runs outside the slots: parsing a page holds no request slot.
   */
  async call<T, R>(
    ctx: CallContext,
    method: string,
    send: (headers: Record<string, string>, signal: AbortSignal) => Promise<T>,
    read: (value: T) => R,
  ): Promise<R> {
    let refreshedFor401 = false;
    for (let attempt = 1; ; attempt++) {
      if (ctx.signal?.aborted) throw new AbortedError();
      let token: string;
      try {
        token = await ctx.tokens.getToken(ctx.signal);
      } catch (err) {
        // an expired token with renewals failing, or a refused key: no API call can succeed now
        if (!(err instanceof RetryableError) || err instanceof TokenExpiredError || attempt >= this.opts.maxAttempts) throw err;
        const delay = backoffDelay(attempt, this.backoff);
        if (ctx.deadline !== undefined && this.now() + delay > ctx.deadline) throw err;
        ctx.logger.warn({ event: 'token_unavailable', attempt, err: describe(err), retryInMs: Math.round(delay) }, 'no access token yet; retrying');
        await sleep(delay, ctx.signal);
        continue;
      }
      // the property's slot first, so a busy property does not sit on global slots while it waits
      const result: Attempt<T> = await this.propertyLimiter(ctx.propertyId).run(() => this.opts.limiter.run(() => this.attempt(ctx, method, token, send)));
      let error: Error;
      let status: number | undefined;
      if (result.ok) {
        try {
          return read(result.value);
        } catch (err) {
          // only a bad page is asked for again; anything else (rows out of order: the same page
          // again would say the same) is the caller's to handle
          if (!(err instanceof RetryableError) || err.code !== 'bad_response') throw err;
          error = err;
          status = 200;
        }
      } else {
        ({ error, status } = result);
      }
      if (ctx.signal?.aborted) throw new AbortedError();
      if (status === 401 && !refreshedFor401) {
        // One forced refresh and one more try: the token may have been revoked early.
        refreshedFor401 = true;
        ctx.logger.warn({ event: 'api_unauthenticated', method }, 'API refused the access token; refreshing it once');
        await ctx.tokens.invalidate(token);
        attempt -= 1;
        continue;
      }
      await this.backOff(ctx, error, attempt, method);
    }
  }

  /**
   * One request, holding its slots, admitted by the budget and settled with it: counted in the
   * metrics, a failure sorted (the API's `classify`). A property the budget defers throws DeferError here.
   */
  private async attempt<T>(
    ctx: CallContext,
    method: string,
    token: string,
    send: (headers: Record<string, string>, signal: AbortSignal) => Promise<T>,
  ): Promise<Attempt<T>> {
    let ticket: RequestTicket;
    try {
      ticket = await this.budget.admit(ctx.propertyId);
    } catch (err) {
      // the rest of the budget is in flight: backed off and tried again like a failed request
      if (err instanceof RetryableError && !(err instanceof DeferError)) return { ok: false, status: undefined, error: err };
      throw err;
    }
    try {
      // the deadline ends the wait (and so frees both slots) even if the request ignores its signal
      const value = await withDeadline(`${method} for ${where(ctx)}`, this.opts.timeoutMs, ctx.signal, (signal) =>
        send({ Authorization: `Bearer ${token}` }, signal),
      );
      this.opts.metrics.apiRequests.inc({ property: ctx.propertyId, code: '200' });
      await ticket.settle(200);
      return { ok: true, value };
    } catch (err) {
      const status = httpStatus(err);
      // our own abort (shutdown, an abandoned read-ahead) is not an answer of the API
      if (!(err instanceof AbortedError))
        this.opts.metrics.apiRequests.inc({ property: ctx.propertyId, code: status === undefined ? 'error' : String(status) });
      const error = err instanceof RetryableError || err instanceof AbortedError ? err : this.opts.classify(err, ctx, method, this.now());
      await ticket.settle(status, error instanceof DeferError ? error : undefined);
      return { ok: false, status, error };
    }
  }
}

/** A read for JSON methods: gaxios hands back a body that is not JSON as a plain string. */
export function jsonObject<T>(ctx: CallContext, method: string): (value: T) => T {
  return (value) => {
    if (typeof value !== 'object' || value === null) {
      throw new RetryableError(`${method} for ${where(ctx)}: response body is not JSON (truncated, or a proxy's page?)`, 'bad_response');
    }
    return value;
  };
}

/**
 * The options of a Google API request sent through ApiCaller.call: its headers and signal, the
 * body as `responseType` says, no retries of the library's own (call retries) and no `timeout`
 * (the deadline is call's, see net/deadline.ts), abortSafeFetch as the fetch.
 */
export function requestOptions<T extends 'json' | 'arraybuffer' | 'stream'>(headers: Record<string, string>, signal: AbortSignal, responseType: T) {
  return { headers, signal, retry: false, responseType, fetchImplementation: abortSafeFetch };
}
