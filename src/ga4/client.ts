/**
 * The Data API client: `runReport` and `getMetadata` through Google's own package, with our token,
 * our timeout and abort signal, and errors sorted once into retryable and permanent. Retrying
 * happens here too (full-jitter exponential backoff), since `runReport` is a POST that the
 * client's own retry logic leaves alone.
 */
import { analyticsdata, type analyticsdata_v1beta } from '@googleapis/analyticsdata';
import type { TokenSource } from '../auth/tokenManager.js';
import { AbortedError, PermanentError, RetryableError, describe } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Limiter } from './limiter.js';

export type RunReportRequest = analyticsdata_v1beta.Schema$RunReportRequest;
export type RunReportResponse = analyticsdata_v1beta.Schema$RunReportResponse;
export type MetadataResponse = analyticsdata_v1beta.Schema$Metadata;

export interface CallContext {
  propertyId: string;
  tokens: TokenSource;
  logger: Logger;
  signal?: AbortSignal | undefined;
  /** for error messages: which report asked */
  report?: string;
}

export interface Ga4ClientOptions {
  apiRootUrl: string;
  timeoutMs: number;
  maxAttempts: number;
  limiter: Limiter;
  metrics: Metrics;
  /** backoff base and cap, ms (tests shorten them) */
  backoffBaseMs?: number;
  backoffCapMs?: number;
}

export class Ga4Client {
  private readonly api: analyticsdata_v1beta.Analyticsdata;

  constructor(private readonly opts: Ga4ClientOptions) {
    const rootUrl = opts.apiRootUrl.endsWith('/') ? opts.apiRootUrl : `${opts.apiRootUrl}/`;
    this.api = analyticsdata({ version: 'v1beta', rootUrl });
  }

  runReport(ctx: CallContext, body: RunReportRequest): Promise<RunReportResponse> {
    return this.call(ctx, 'runReport', async (headers, signal) => {
      const res = await this.api.properties.runReport(
        { property: `properties/${ctx.propertyId}`, requestBody: body },
        { headers, signal, timeout: this.opts.timeoutMs, retry: false, responseType: 'json' },
      );
      return res.data;
    });
  }

  getMetadata(ctx: CallContext): Promise<MetadataResponse> {
    return this.call(ctx, 'getMetadata', async (headers, signal) => {
      const res = await this.api.properties.getMetadata(
        { name: `properties/${ctx.propertyId}/metadata` },
        { headers, signal, timeout: this.opts.timeoutMs, retry: false, responseType: 'json' },
      );
      return res.data;
    });
  }

  private async call<T>(
    ctx: CallContext,
    method: string,
    send: (headers: Record<string, string>, signal: AbortSignal | undefined) => Promise<T>,
  ): Promise<T> {
    const base = this.opts.backoffBaseMs ?? 1_000;
    const cap = this.opts.backoffCapMs ?? 32_000;
    let refreshedFor401 = false;
    for (let attempt = 1; ; attempt++) {
      if (ctx.signal?.aborted) throw new AbortedError();
      const token = await ctx.tokens.getToken();
      let result: { ok: true; value: T } | { ok: false; error: Error; status: number | undefined };
      result = await this.opts.limiter.run(async () => {
        try {
          const value = await send({ Authorization: `Bearer ${token}` }, ctx.signal);
          this.opts.metrics.apiRequests.inc({ property: ctx.propertyId, code: '200' });
          if (typeof value !== 'object' || value === null) {
            // gaxios hands back a body that is not JSON as a plain string
            return { ok: false, status: 200, error: new RetryableError(`${method} for property ${ctx.propertyId}: response body is not JSON (truncated?)`, 'bad_response') };
          }
          return { ok: true, value };
        } catch (err) {
          const status = httpStatus(err);
          this.opts.metrics.apiRequests.inc({ property: ctx.propertyId, code: status === undefined ? 'error' : String(status) });
          return { ok: false, status, error: classify(err, ctx, method) };
        }
      });
      if (result.ok) return result.value;
      const { error, status } = result;
      if (ctx.signal?.aborted) throw new AbortedError();
      if (status === 401 && !refreshedFor401) {
        // One forced refresh and one more try: the token may have been revoked early.
        refreshedFor401 = true;
        ctx.logger.warn({ event: 'api_unauthenticated', method }, 'API refused the access token; refreshing it once');
        await ctx.tokens.invalidate(token);
        attempt -= 1;
        continue;
      }
      if (!(error instanceof RetryableError) || attempt >= this.opts.maxAttempts) throw error;
      const delay = error.retryAfterMs ?? Math.random() * Math.min(cap, base * 2 ** (attempt - 1));
      ctx.logger.warn(
        { event: 'api_retry', method, attempt, code: error.code, retryInMs: Math.round(delay), err: describe(error) },
        'retryable API failure, backing off',
      );
      await sleep(delay, ctx.signal);
    }
  }
}

function httpStatus(err: unknown): number | undefined {
  const s = (err as { response?: { status?: unknown }; status?: unknown }).response?.status;
  return typeof s === 'number' ? s : undefined;
}

interface GoogleErrorBody {
  error?: { code?: number; message?: string; status?: string };
}

/** Sorts an API failure into retryable or permanent, with a message that says what to do. */
export function classify(err: unknown, ctx: CallContext, method: string): Error {
  const e = err as { response?: { status?: number; data?: unknown; headers?: unknown }; code?: string; name?: string; message?: string };
  const status = httpStatus(err);
  const where = `property ${ctx.propertyId}${ctx.report ? `, report ${ctx.report}` : ''}`;
  if (status === undefined) {
    if (e.name === 'AbortError' || /aborted/i.test(e.message ?? '')) {
      if (ctx.signal?.aborted) return new AbortedError();
      return new RetryableError(`${method} for ${where} timed out`, 'timeout');
    }
    const code = e.code ?? (/ECONNRESET|socket hang up|premature close/i.test(e.message ?? '') ? 'ECONNRESET' : 'network');
    return new RetryableError(`${method} for ${where} failed before a response: ${code}`, code);
  }
  const body = e.response?.data;
  const g = typeof body === 'object' && body !== null ? (body as GoogleErrorBody).error : undefined;
  const gstatus = g?.status ?? `HTTP_${status}`;
  const gmessage = (g?.message ?? '').split('\n')[0]!.trim();
  const account = ctx.tokens.account;
  if (status === 403) {
    return new PermanentError(
      `service account ${account} has no access to GA4 property ${ctx.propertyId} (${gstatus}): add ${account} as a Viewer of property ${ctx.propertyId} in GA Admin > Property settings > Property access management, and check that the id is the numeric property id`,
      'permission_denied',
    );
  }
  if (status === 400) {
    return new PermanentError(
      `${method} for ${where} was refused as invalid (${gstatus}): ${gmessage || 'bad request'}; fix the report definition in the config (check names with \`ga-collector check\`)`,
      'invalid_argument',
    );
  }
  if (status === 404) {
    return new PermanentError(`${method} for ${where}: not found (${gmessage || 'HTTP 404'}); check the property id and google.apiRootUrl`, 'not_found');
  }
  if (status === 401) {
    return new RetryableError(`${method} for ${where}: access token refused (UNAUTHENTICATED)`, 'unauthenticated');
  }
  if (status === 429) {
    const daily = /per day|tokensPerDay|daily/i.test(gmessage);
    return new RetryableError(`${method} for ${where}: quota exhausted (${gmessage || 'RESOURCE_EXHAUSTED'})`, daily ? 'quota_day' : 'quota');
  }
  if (status >= 500 || status === 408) {
    return new RetryableError(`${method} for ${where}: Google answered HTTP ${status} ${gstatus}`, `http_${status}`);
  }
  return new PermanentError(`${method} for ${where}: unexpected HTTP ${status} ${gstatus} ${gmessage}`.trim(), `http_${status}`);
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
