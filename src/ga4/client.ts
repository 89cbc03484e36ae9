/**
 * The Data API client: `runReport` and `getMetadata` through Google's own package, with our token,
 * our deadline (net/deadline.ts) and abort signal, and errors sorted once into retryable and
 * permanent. Retrying happens here too (full-jitter exponential backoff), since `runReport` is a
 * POST that the client's own retry logic leaves alone; a page whose body turns out unusable once
 * read (truncated, not JSON, inconsistent) is retried the same way, and the page loop restarts a
 * listing under the same policy (`backOff`).
 */
import { analyticsdata, type analyticsdata_v1beta } from '@googleapis/analyticsdata';
import { TokenExpiredError, type TokenSource } from '../auth/tokenManager.js';
import { AbortedError, DeferError, PermanentError, RetryableError, describe } from '../errors.js';
import { abortSafeFetch } from '../net/abortSafeFetch.js';
import { withDeadline } from '../net/deadline.js';
import { localDate } from '../time.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { Limiter } from './limiter.js';

export type RunReportRequest = analyticsdata_v1beta.Schema$RunReportRequest;

/**
 * An int64 request field (limit, offset). The generated types say string, Google's JSON mapping
 * takes a number or a decimal string; we send a JSON number, which no reader can mistake for text
 * (a string offset added to a limit concatenates in JavaScript).
 */
export function int64(n: number): string {
  return n as unknown as string;
}
export type RunReportResponse = analyticsdata_v1beta.Schema$RunReportResponse;
export type MetadataResponse = analyticsdata_v1beta.Schema$Metadata;

export interface CallContext {
  propertyId: string;
  tokens: TokenSource;
  logger: Logger;
  signal?: AbortSignal | undefined;
  /** for error messages: which report asked */
  report?: string;
  /** ms since epoch: no retry is started that would end after this (the job's deadline) */
  deadline?: number;
}

export interface Ga4ClientOptions {
  apiRootUrl: string;
  /** deadline of one request, headers and whole body, ms; a timeout is retried like a 5xx */
  timeoutMs: number;
  /** attempts per request (and per listing, in the page loop) for retryable failures */
  maxAttempts: number;
  limiter: Limiter;
  metrics: Metrics;
  /** backoff base and cap, ms (tests shorten them) */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** server errors (5xx) one property may answer in an hour before it is left alone until the hour is over */
  maxServerErrorsPerHour?: number;
  now?: () => number;
}

/** Google's limit of concurrent requests per standard property. */
const PROPERTY_CONCURRENCY = 10;
const HOUR_MS = 3_600_000;

export class Ga4Client {
  private readonly api: analyticsdata_v1beta.Analyticsdata;
  private readonly perProperty = new Map<string, Limiter>();
  /** per property: when its recent server errors happened (a sliding hour) */
  private readonly serverErrors = new Map<string, number[]>();
  private readonly now: () => number;

  constructor(private readonly opts: Ga4ClientOptions) {
    const rootUrl = opts.apiRootUrl.endsWith('/') ? opts.apiRootUrl : `${opts.apiRootUrl}/`;
    this.api = analyticsdata({ version: 'v1beta', rootUrl });
    this.now = opts.now ?? Date.now;
  }

  private propertyLimiter(propertyId: string): Limiter {
    let l = this.perProperty.get(propertyId);
    if (!l) this.perProperty.set(propertyId, (l = new Limiter(PROPERTY_CONCURRENCY)));
    return l;
  }

  /**
   * Google limits server errors per project and property per hour; a property that keeps failing
   * is left alone until its oldest recent error is an hour old, instead of burning that budget.
   */
  private checkServerErrorBudget(ctx: CallContext): void {
    const max = this.opts.maxServerErrorsPerHour ?? 8;
    const now = this.now();
    const recent = (this.serverErrors.get(ctx.propertyId) ?? []).filter((t) => t > now - HOUR_MS);
    this.serverErrors.set(ctx.propertyId, recent);
    if (recent.length >= max) {
      throw new DeferError(
        `property ${ctx.propertyId} answered ${recent.length} server errors in the last hour; leaving it alone until ${new Date(recent[0]! + HOUR_MS).toISOString()}`,
        'server_errors',
        recent[0]! + HOUR_MS,
      );
    }
  }

  /** One runReport call, its body parsed as JSON. */
  runReport(ctx: CallContext, body: RunReportRequest): Promise<RunReportResponse> {
    return this.call(
      ctx,
      'runReport',
      async (headers, signal) => {
        const res = await this.api.properties.runReport(
          // prettyPrint=false: Google indents JSON by default, which doubles what is sent and parsed
          { property: `properties/${ctx.propertyId}`, requestBody: body, prettyPrint: false },
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
        const res = await this.api.properties.runReport(
          { property: `properties/${ctx.propertyId}`, requestBody: body, prettyPrint: false },
          { headers, signal, retry: false, responseType: 'arraybuffer', fetchImplementation: abortSafeFetch },
        );
        return { body: Buffer.from(res.data as unknown as ArrayBuffer), type: contentType(res.headers) };
      },
      ({ body, type }) => {
        // a proxy's or captive portal's page answered in Google's place: never worth parsing
        if (type !== null && !/\bjson\b/i.test(type)) {
          throw new RetryableError(`runReport for ${where(ctx)}: answered 200 with ${type.split(';')[0]} instead of JSON (a proxy in between?)`, 'bad_response');
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
        const res = await this.api.properties.getMetadata(
          { name: `properties/${ctx.propertyId}/metadata`, prettyPrint: false },
          { headers, signal, retry: false, responseType: 'json', fetchImplementation: abortSafeFetch },
        );
        return res.data;
      },
      jsonObject(ctx, 'getMetadata'),
    );
  }

  /**
   * The one retry policy. After attempt number `attempt` (1-based) failed with `error`: waits the
   * backoff (Retry-After when Google sent one, else full jitter) and resolves when another attempt
   * should be made; throws instead when it should not (a permanent or deferring error, attempts
   * used up, the job's deadline too near, shutdown).
   */
  async backOff(ctx: CallContext, error: Error, attempt: number, method: string): Promise<void> {
    if (ctx.signal?.aborted) throw new AbortedError();
    if (!(error instanceof RetryableError) || error instanceof DeferError) throw error;
    if (attempt >= this.opts.maxAttempts) {
      throw attempt > 1 ? new RetryableError(`${describe(error)} (gave up after ${attempt} attempts)`, error.code) : error;
    }
    const delay = error.retryAfterMs ?? this.backoffMs(attempt);
    if (ctx.deadline !== undefined && this.now() + delay > ctx.deadline) {
      throw new RetryableError(`${describe(error)} (gave up: the job's deadline is reached)`, error.code);
    }
    ctx.logger.warn(
      { event: 'api_retry', method, attempt, code: error.code, retryInMs: Math.round(delay), err: describe(error) },
      'retryable API failure, backing off',
    );
    await sleep(delay, ctx.signal);
  }

  /** Full jitter: a random wait up to the capped exponential step, so retries of many jobs spread out. */
  private backoffMs(attempt: number): number {
    const base = this.opts.backoffBaseMs ?? 1_000;
    const cap = this.opts.backoffCapMs ?? 32_000;
    return Math.random() * Math.min(cap, base * 2 ** (attempt - 1));
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
      this.checkServerErrorBudget(ctx);
      let token: string;
      try {
        token = await ctx.tokens.getToken(ctx.signal);
      } catch (err) {
        // an expired token with renewals failing, or a refused key: no API call can succeed now
        if (!(err instanceof RetryableError) || err instanceof TokenExpiredError || attempt >= this.opts.maxAttempts) throw err;
        const delay = this.backoffMs(attempt);
        if (ctx.deadline !== undefined && this.now() + delay > ctx.deadline) throw err;
        ctx.logger.warn({ event: 'token_unavailable', attempt, err: describe(err), retryInMs: Math.round(delay) }, 'no access token yet; retrying');
        await sleep(delay, ctx.signal);
        continue;
      }
      // the property's slot first, so a busy property does not sit on global slots while it waits
      const result: { ok: true; value: T } | { ok: false; error: Error; status: number | undefined } = await this.propertyLimiter(ctx.propertyId).run(() =>
        this.opts.limiter.run(async () => {
          try {
            // the deadline ends the wait (and so frees both slots) even if the request ignores its signal
            const value = await withDeadline(`${method} for ${where(ctx)}`, this.opts.timeoutMs, ctx.signal, (signal) => send({ Authorization: `Bearer ${token}` }, signal));
            this.opts.metrics.apiRequests.inc({ property: ctx.propertyId, code: '200' });
            return { ok: true, value };
          } catch (err) {
            const status = httpStatus(err);
            // our own abort (shutdown, an abandoned read-ahead) is not an answer of the API
            if (!(err instanceof AbortedError)) this.opts.metrics.apiRequests.inc({ property: ctx.propertyId, code: status === undefined ? 'error' : String(status) });
            if (status !== undefined && status >= 500) this.serverErrors.get(ctx.propertyId)?.push(this.now());
            const error = err instanceof RetryableError || err instanceof AbortedError ? err : classify(err, ctx, method, this.now());
            return { ok: false, status, error };
          }
        }),
      );
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
}

function where(ctx: CallContext): string {
  return `property ${ctx.propertyId}${ctx.report ? `, report ${ctx.report}` : ''}`;
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

function contentType(headers: unknown): string | null {
  const h = headers as { get?: (k: string) => string | null } | Record<string, string> | undefined;
  const v = typeof h?.get === 'function' ? h.get('content-type') : (h as Record<string, string> | undefined)?.['content-type'];
  return typeof v === 'string' && v !== '' ? v : null;
}

function httpStatus(err: unknown): number | undefined {
  const s = (err as { response?: { status?: unknown }; status?: unknown }).response?.status;
  return typeof s === 'number' ? s : undefined;
}

interface GoogleErrorBody {
  error?: { code?: number; message?: string; status?: string };
}

/** Sorts an API failure into retryable or permanent, with a message that says what to do. */
export function classify(err: unknown, ctx: CallContext, method: string, now = Date.now()): Error {
  const e = err as { response?: { status?: number; data?: unknown; headers?: unknown }; code?: string; name?: string; message?: string; cause?: { code?: string } };
  const status = httpStatus(err);
  const at = where(ctx);
  if (status === undefined) {
    if (e.name === 'AbortError' || /aborted/i.test(e.message ?? '')) {
      if (ctx.signal?.aborted) return new AbortedError();
      return new RetryableError(`${method} for ${at} timed out`, 'timeout');
    }
    if (e.name === 'TimeoutError' || /timeout|timed out/i.test(e.message ?? '')) return new RetryableError(`${method} for ${at} timed out`, 'timeout');
    const code = e.code ?? e.cause?.code ?? (/ECONNRESET|socket hang up|premature close/i.test(e.message ?? '') ? 'ECONNRESET' : 'network');
    return new RetryableError(`${method} for ${at} failed before a response: ${code}`, code);
  }
  const body = e.response?.data;
  const g = typeof body === 'object' && body !== null ? (body as GoogleErrorBody).error : undefined;
  const gstatus = g?.status ?? `HTTP_${status}`;
  const gmessage = (g?.message ?? '').split('\n')[0]!.trim();
  const account = ctx.tokens.account;
  if (status === 403 && /insufficient authentication scopes/i.test(gmessage)) {
    // Compute Engine and GKE's metadata servers hand out the VM's access scopes whatever is asked
    return new PermanentError(
      `${method} for ${at}: the access token of ${account} lacks the analytics.readonly scope (${gstatus}: ${gmessage}): on Compute Engine or GKE set google.impersonate to a service account the attached one may impersonate (or give the VM the analytics.readonly access scope); for a person's gcloud credentials, impersonate a service account too`,
      'scope_insufficient',
    );
  }
  if (status === 403) {
    return new PermanentError(
      `service account ${account} has no access to GA4 property ${ctx.propertyId} (${gstatus}): add ${account} as a Viewer of property ${ctx.propertyId} in GA Admin > Property settings > Property access management, and check that the id is the numeric property id`,
      'permission_denied',
    );
  }
  if (status === 400) {
    return new PermanentError(
      `${method} for ${at} was refused as invalid (${gstatus}): ${gmessage || 'bad request'}; fix the report definition in the config (check names with \`ga-collector check\`)`,
      'invalid_argument',
    );
  }
  if (status === 404) {
    return new PermanentError(`${method} for ${at}: not found (${gmessage || 'HTTP 404'}); check the property id and google.apiRootUrl`, 'not_found');
  }
  if (status === 401) {
    return new RetryableError(`${method} for ${at}: access token refused (UNAUTHENTICATED)`, 'unauthenticated');
  }
  if (status === 429) {
    // Exhausted hourly or daily tokens come back only with the next window: stop and come back then.
    if (/tokens per day/i.test(gmessage)) {
      return new DeferError(`${method} for ${at}: daily quota exhausted (${gmessage}); deferred to the next Pacific day`, 'quota_day', nextPacificMidnight(now));
    }
    if (/tokens per (project per )?hour|per hour/i.test(gmessage)) {
      return new DeferError(`${method} for ${at}: hourly quota exhausted (${gmessage}); deferred to the next hour`, 'quota_hour', Math.ceil((now + 1) / HOUR_MS) * HOUR_MS);
    }
    return new RetryableError(`${method} for ${at}: rate limited (${gmessage || 'RESOURCE_EXHAUSTED'})`, 'quota', retryAfter(e.response?.headers));
  }
  if (status >= 500 || status === 408) {
    return new RetryableError(`${method} for ${at}: Google answered HTTP ${status} ${gstatus}`, `http_${status}`);
  }
  return new PermanentError(`${method} for ${at}: unexpected HTTP ${status} ${gstatus} ${gmessage}`.trim(), `http_${status}`);
}

/** GA's daily quotas reset at midnight Pacific time. */
export function nextPacificMidnight(now: number): number {
  const today = localDate(now, 'America/Los_Angeles');
  let lo = now;
  let hi = now + 26 * HOUR_MS;
  while (hi - lo > 1000) {
    const mid = Math.floor((lo + hi) / 2);
    if (localDate(mid, 'America/Los_Angeles') === today) lo = mid;
    else hi = mid;
  }
  return hi;
}

function retryAfter(headers: unknown): number | undefined {
  const h = headers as { get?: (k: string) => string | null } | Record<string, string> | undefined;
  const v = typeof h?.get === 'function' ? h.get('retry-after') : (h as Record<string, string> | undefined)?.['retry-after'];
  const n = v ? Number(v) : NaN;
  return Number.isFinite(n) && n >= 0 ? Math.min(n * 1000, 120_000) : undefined;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError());
    const onAbort = () => {
      clearTimeout(t);
      reject(new AbortedError());
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
