/**
 * The Data API client: `runReport` and `getMetadata` through Google's own package, with our token,
 * our deadline (net/deadline.ts) and abort signal, and failures sorted once (apiErrors.ts) into
 * retryable, deferred and permanent. Retrying happens here too (net/backoff.ts), since `runReport`
 * is a POST that the library's own retry logic leaves alone; a page whose body turns out unusable
 * once read (truncated, not JSON, inconsistent) is retried the same way, and the page loop restarts
 * a listing under the same policy (`backOff`). Requests come from requests.ts.
 */
import { analyticsdata, type analyticsdata_v1beta } from '@googleapis/analyticsdata';
import { AbortedError, DeferError, RetryableError, TokenExpiredError, describe } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { abortSafeFetch } from '../net/abortSafeFetch.js';
import { backoffDelay, sleep, type BackoffPolicy } from '../net/backoff.js';
import { withDeadline } from '../net/deadline.js';
import { classify } from './apiErrors.js';
import { httpStatus, responseHeader } from '../net/httpResponse.js';
import { where, type CallContext } from './callContext.js';
import { Limiter } from './limiter.js';
import { PROPERTY_CONCURRENCY, ServerErrorBudget } from './quota.js';
import { metadataParams, runReportParams, type RunReportRequest } from './requests.js';
import type { MetadataResponse, RunReportResponse } from './responses.js';

export interface Ga4ClientOptions {
  apiRootUrl: string;
  /** deadline of one request, headers and whole body, ms; a timeout is retried like a 5xx */
  timeoutMs: number;
  /** attempts per request (and per listing, in the page loop) for retryable failures */
  maxAttempts: number;
  limiter: Limiter;
  metrics: Metrics;
  /** backoff base and cap, ms (tests shorten them); default 1 s and 32 s */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** server errors (5xx) one property may answer in an hour before it is left alone until the hour is over */
  maxServerErrorsPerHour?: number;
  /**
   * requests one property may have in flight at once, over all its reports (fetch.perPropertyConcurrency),
   * each also holding a slot of `limiter`; default PROPERTY_CONCURRENCY, Google's limit for a standard property
   */
  perPropertyConcurrency?: number;
  now?: () => number;
}

type Attempt<T> = { ok: true; value: T } | { ok: false; error: Error; status: number | undefined };

export class Ga4Client {
  private readonly api: analyticsdata_v1beta.Analyticsdata;
  private readonly perProperty = new Map<string, Limiter>();
  private readonly serverErrors: ServerErrorBudget;
  private readonly backoff: BackoffPolicy;
  private readonly now: () => number;

  constructor(private readonly opts: Ga4ClientOptions) {
    const rootUrl = opts.apiRootUrl.endsWith('/') ? opts.apiRootUrl : `${opts.apiRootUrl}/`;
    this.api = analyticsdata({ version: 'v1beta', rootUrl });
    this.now = opts.now ?? Date.now;
    this.serverErrors = new ServerErrorBudget(opts.maxServerErrorsPerHour ?? 8, this.now);
    this.backoff = { baseMs: opts.backoffBaseMs ?? 1_000, capMs: opts.backoffCapMs ?? 32_000 };
  }

  private propertyLimiter(propertyId: string): Limiter {
    let limiter = this.perProperty.get(propertyId);
    if (!limiter) this.perProperty.set(propertyId, (limiter = new Limiter(this.opts.perPropertyConcurrency ?? PROPERTY_CONCURRENCY)));
    return limiter;
  }

  /** One runReport call, its body parsed as JSON. */
  runReport(ctx: CallContext, body: RunReportRequest): Promise<RunReportResponse> {
    return this.call(
      ctx,
      'runReport',
      async (headers, signal) => {
        const res = await this.api.properties.runReport(
          runReportParams(ctx.propertyId, body),
          // no `timeout`: the deadline is ours (withDeadline in call), see net/deadline.ts
          { headers, signal, retry: false, responseType: 'json', fetchImplementation: abortSafeFetch },
        );
        return res.data;
      },
      jsonObject(ctx, 'runReport'),
    );
  }

  /**
   * One runReport page: the response body as bytes, unparsed, handed to `read` (the page loop
   * reads rows straight from them, pageRows.ts, far cheaper than a parse that builds an object per
   * value). A RetryableError with code `bad_response` thrown by `read` (a truncated or non-JSON
   * body, a malformed page) is retried like a 5xx: the same attempts, the same backoff; any other
   * error of `read` is thrown as it is. Error bodies are still parsed (gaxios does that for
   * `arraybuffer`), so classify() sees Google's error.
   */
  runReportPage<R>(ctx: CallContext, body: RunReportRequest, read: (body: Buffer) => R): Promise<R> {
    return this.call(
      ctx,
      'runReport',
      async (headers, signal) => {
        const res = await this.api.properties.runReport(runReportParams(ctx.propertyId, body), {
          headers,
          signal,
          retry: false,
          responseType: 'arraybuffer',
          fetchImplementation: abortSafeFetch,
        });
        return { body: Buffer.from(res.data as unknown as ArrayBuffer), type: responseHeader(res.headers, 'content-type') };
      },
      ({ body, type }) => {
        // a proxy's or captive portal's page answered in Google's place: never worth parsing
        if (type !== null && !/\bjson\b/i.test(type)) {
          throw new RetryableError(
            `runReport for ${where(ctx)}: answered 200 with ${type.split(';')[0]} instead of JSON (a proxy in between?)`,
            'bad_response',
          );
        }
        return read(body);
      },
    );
  }

  getMetadata(ctx: CallContext): Promise<MetadataResponse> {
    return this.call(
      ctx,
      'getMetadata',
      async (headers, signal) => {
        const res = await this.api.properties.getMetadata(metadataParams(ctx.propertyId), {
          headers,
          signal,
          retry: false,
          responseType: 'json',
          fetchImplementation: abortSafeFetch,
        });
        return res.data;
      },
      jsonObject(ctx, 'getMetadata'),
    );
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
  private async call<T, R>(
    ctx: CallContext,
    method: string,
    send: (headers: Record<string, string>, signal: AbortSignal) => Promise<T>,
    read: (value: T) => R,
  ): Promise<R> {
    let refreshedFor401 = false;
    for (let attempt = 1; ; attempt++) {
      if (ctx.signal?.aborted) throw new AbortedError();
      this.serverErrors.check(ctx.propertyId);
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

  /** One request, holding its slots: counted in the metrics, a failure sorted (apiErrors.ts). */
  private async attempt<T>(
    ctx: CallContext,
    method: string,
    token: string,
    send: (headers: Record<string, string>, signal: AbortSignal) => Promise<T>,
  ): Promise<Attempt<T>> {
    try {
      // the deadline ends the wait (and so frees both slots) even if the request ignores its signal
      const value = await withDeadline(`${method} for ${where(ctx)}`, this.opts.timeoutMs, ctx.signal, (signal) =>
        send({ Authorization: `Bearer ${token}` }, signal),
      );
      this.opts.metrics.apiRequests.inc({ property: ctx.propertyId, code: '200' });
      return { ok: true, value };
    } catch (err) {
      const status = httpStatus(err);
      // our own abort (shutdown, an abandoned read-ahead) is not an answer of the API
      if (!(err instanceof AbortedError))
        this.opts.metrics.apiRequests.inc({ property: ctx.propertyId, code: status === undefined ? 'error' : String(status) });
      if (status !== undefined && status >= 500) this.serverErrors.record(ctx.propertyId);
      const error = err instanceof RetryableError || err instanceof AbortedError ? err : classify(err, ctx, method, this.now());
      return { ok: false, status, error };
    }
  }
}

/** A read for JSON methods: gaxios hands back a body that is not JSON as a plain string. */
function jsonObject<T>(ctx: CallContext, method: string): (value: T) => T {
  return (value) => {
    if (typeof value !== 'object' || value === null) {
      throw new RetryableError(`${method} for ${where(ctx)}: response body is not JSON (truncated, or a proxy's page?)`, 'bad_response');
    }
    return value;
  };
}
