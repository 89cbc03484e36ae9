/**
 * The Data API client: `runReport` and `getMetadata` through Google's own package, with our token,
 * our deadline (net/deadline.ts) and abort signal, and failures sorted once (apiErrors.ts) into
 * retryable, deferred and permanent. Retrying happens in apiCaller.ts (shared with Search
 * Console), since `runReport` is a POST that the library's own retry logic leaves alone; a page
 * whose body turns out unusable once read (truncated, not JSON, inconsistent) is retried the same
 * way, and the page loop restarts a listing under the same policy (`backOff`). Requests come from
 * requests.ts.
 */
import { analyticsdata, type analyticsdata_v1beta } from '@googleapis/analyticsdata';
import type { Readable } from 'node:stream';
import { RetryableError } from '../errors.js';
import { ApiCaller, jsonObject, requestOptions, type ApiCallerOptions } from './apiCaller.js';
import { classify } from './apiErrors.js';
import { responseHeader } from '../net/httpResponse.js';
import { where, type CallContext } from './callContext.js';
import { metadataParams, runReportParams, type RunReportRequest } from './requests.js';
import type { MetadataResponse, RunReportResponse } from './responses.js';

/** How calls are made (apiCaller.ts: deadline, attempts, slots, budget, backoff), and where the Data API is. */
export type Ga4ClientOptions = Omit<ApiCallerOptions, 'classify'> & { apiRootUrl: string };

export class Ga4Client {
  private readonly api: analyticsdata_v1beta.Analyticsdata;
  private readonly caller: ApiCaller;

  constructor(opts: Ga4ClientOptions) {
    const rootUrl = opts.apiRootUrl.endsWith('/') ? opts.apiRootUrl : `${opts.apiRootUrl}/`;
    this.api = analyticsdata({ version: 'v1beta', rootUrl });
    this.caller = new ApiCaller({ ...opts, classify });
  }

  /** One runReport call, its body parsed as JSON. */
  runReport(ctx: CallContext, body: RunReportRequest): Promise<RunReportResponse> {
    return this.call(
      ctx,
      'runReport',
      async (headers, signal) => {
        const res = await this.api.properties.runReport(runReportParams(ctx.propertyId, body), requestOptions(headers, signal, 'json'));
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
        const res = await this.request(ctx, body, headers, signal, 'arraybuffer');
        return { body: Buffer.from(res.data as unknown as ArrayBuffer), type: responseHeader(res.headers, 'content-type') };
      },
      ({ body, type }) => {
        checkJson(ctx, type);
        return read(body);
      },
    );
  }

  /**
   * One runReport page read as its body arrives: each chunk goes to the reader `open` makes (a
   * new one per attempt) as it comes, within the request's deadline and slots, so the body is
   * never held whole (ga4/pageStream.ts). Failures before and while the body arrives are retried
   * as any request's. A RetryableError of the reader is the page's fault and is handled as
   * runReportPage's `read` errors are (`bad_response` asked for again like a 5xx, any other code
   * thrown). When the reader gives up on the body otherwise (any other error from `push` or
   * `finish`), the rest of it is dropped and `{ ok: false, error }` returned: the caller asks for
   * the page again (runReportPage) and reads it whole.
   */
  async runReportPageStream<R>(
    ctx: CallContext,
    body: RunReportRequest,
    open: () => { push(chunk: Buffer): void; finish(): R },
  ): Promise<{ ok: true; value: R } | { ok: false; error: unknown }> {
    return this.call(
      ctx,
      'runReport',
      async (headers, signal) => {
        const res = await this.request(ctx, body, headers, signal, 'stream');
        const type = responseHeader(res.headers, 'content-type');
        const stream = res.data as unknown as Readable;
        if (type !== null && !isJson(type)) {
          // not worth reading (checkJson refuses it)
          stream.destroy();
          return { type, outcome: undefined };
        }
        const reader = open();
        // a network failure while the body arrives is thrown here, and retried as any request's
        for await (const chunk of stream) {
          try {
            reader.push(chunk);
          } catch (error) {
            // leaving the loop destroys the body: the page is asked for again and read whole
            return { type, outcome: { ok: false as const, error } };
          }
        }
        try {
          return { type, outcome: { ok: true as const, value: reader.finish() } };
        } catch (error) {
          return { type, outcome: { ok: false as const, error } };
        }
      },
      ({ type, outcome }) => {
        checkJson(ctx, type);
        if (!outcome!.ok && outcome!.error instanceof RetryableError) throw outcome!.error;
        return outcome!;
      },
    );
  }

  getMetadata(ctx: CallContext): Promise<MetadataResponse> {
    return this.call(
      ctx,
      'getMetadata',
      async (headers, signal) => {
        const res = await this.api.properties.getMetadata(metadataParams(ctx.propertyId), requestOptions(headers, signal, 'json'));
        return res.data;
      },
      jsonObject(ctx, 'getMetadata'),
    );
  }

  /**
   * The one retry policy (apiCaller.ts): resolves when another attempt after `error` should be
   * made, throws when it should not. The page loop restarts a listing under it.
   */
  backOff(ctx: CallContext, error: Error, attempt: number, method: string): Promise<void> {
    return this.caller.backOff(ctx, error, attempt, method);
  }

  /** A runReport request as both page reads send it, the body as `responseType` says. */
  private request(ctx: CallContext, body: RunReportRequest, headers: Record<string, string>, signal: AbortSignal, responseType: 'arraybuffer' | 'stream') {
    return this.api.properties.runReport(runReportParams(ctx.propertyId, body), requestOptions(headers, signal, responseType));
  }

  private call<T, R>(
    ctx: CallContext,
    method: string,
    send: (headers: Record<string, string>, signal: AbortSignal) => Promise<T>,
    read: (value: T) => R,
  ): Promise<R> {
    return this.caller.call(ctx, method, send, read);
  }
}

/**
 * A 200 answer that is not JSON: a proxy's or captive portal's page answered in Google's place,
 * never worth parsing (RetryableError `bad_response`, retried as a 5xx).
 */
function checkJson(ctx: CallContext, type: string | null): void {
  if (type !== null && !isJson(type)) {
    throw new RetryableError(`runReport for ${where(ctx)}: answered 200 with ${type.split(';')[0]} instead of JSON (a proxy in between?)`, 'bad_response');
  }
}

/** A Content-Type that says JSON. */
function isJson(type: string): boolean {
  return /\bjson\b/i.test(type);
}
