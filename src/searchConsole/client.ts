/**
 * The Search Console client: `searchanalytics.query` through Google's own per-API package
 * (@googleapis/searchconsole) at `google.searchConsoleRootUrl`, with the token of the site's
 * principal, under the same request slots, deadline, retry and backoff as the Data API
 * (ga4/apiCaller.ts): one `concurrency` for both APIs, the server-error budget and the per-site
 * slots keyed by the site's URL. Failures are sorted by apiErrors.ts. The site URL is a path
 * parameter: the library encodes it whole (`sc-domain%3Aexample.com`,
 * `https%3A%2F%2Fwww.example.com%2F`), as Google expects.
 */
import type { searchconsole_v1 } from '@googleapis/searchconsole';
import { ApiCaller, jsonObject, requestOptions, type ApiCallerOptions } from '../ga4/apiCaller.js';
import type { CallContext } from '../ga4/callContext.js';
import { classify } from './apiErrors.js';

export type SearchAnalyticsRequest = searchconsole_v1.Schema$SearchAnalyticsQueryRequest;
export type SearchAnalyticsResponse = searchconsole_v1.Schema$SearchAnalyticsQueryResponse;
export type WmxSite = searchconsole_v1.Schema$WmxSite;

/** How calls are made (ga4/apiCaller.ts, shared with the Data API client), and where Search Console is. */
export type SearchConsoleClientOptions = Omit<ApiCallerOptions, 'classify'> & { rootUrl: string };

export class SearchConsoleClient {
  private apiLoaded: Promise<searchconsole_v1.Searchconsole> | undefined;
  private readonly caller: ApiCaller;

  constructor(private readonly opts: SearchConsoleClientOptions) {
    this.caller = new ApiCaller({ ...opts, classify });
  }

  /** Google's Search Console package, loaded at the first call: a collector without sites never loads it. */
  private api(): Promise<searchconsole_v1.Searchconsole> {
    const rootUrl = this.opts.rootUrl.endsWith('/') ? this.opts.rootUrl : `${this.opts.rootUrl}/`;
    this.apiLoaded ??= import('@googleapis/searchconsole').then(({ searchconsole }) => searchconsole({ version: 'v1', rootUrl }));
    return this.apiLoaded;
  }

  /**
   * One searchanalytics.query call for the site `ctx.propertyId`, its body parsed as JSON and
   * handed to `read`. A RetryableError with code `bad_response` thrown by `read` (a malformed
   * answer) is asked again like a 5xx; anything else `read` throws is thrown as it is.
   */
  query<R>(ctx: CallContext, body: SearchAnalyticsRequest, read: (response: SearchAnalyticsResponse) => R): Promise<R> {
    const json = jsonObject<SearchAnalyticsResponse>(ctx, 'searchanalytics.query');
    return this.caller.call(
      ctx,
      'searchanalytics.query',
      async (headers, signal) => {
        const res = await (await this.api()).searchanalytics.query({ siteUrl: ctx.propertyId, requestBody: body }, requestOptions(headers, signal, 'json'));
        return res.data;
      },
      (response) => read(json(response)),
    );
  }

  /**
   * sites.get for the site `ctx.propertyId`: its URL and the principal's `permissionLevel`
   * (siteOwner, siteFullUser, siteRestrictedUser, or siteUnverifiedUser, which may not read data)
   * (https://developers.google.com/webmaster-tools/v1/sites/get). For `ga-collector check`.
   * @throws PermanentError permission_denied (403) when the principal is no user of the site
   */
  getSite(ctx: CallContext): Promise<WmxSite> {
    const json = jsonObject<WmxSite>(ctx, 'sites.get');
    return this.caller.call(
      ctx,
      'sites.get',
      async (headers, signal) => {
        const res = await (await this.api()).sites.get({ siteUrl: ctx.propertyId }, requestOptions(headers, signal, 'json'));
        return res.data;
      },
      json,
    );
  }

  /** The retry policy (ga4/apiCaller.ts), for the page loop's restart of a range read inconsistently. */
  backOff(ctx: CallContext, error: Error, attempt: number, method: string): Promise<void> {
    return this.caller.backOff(ctx, error, attempt, method);
  }
}
