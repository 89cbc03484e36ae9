/**
 * The GA Admin API client for discovery: `accountSummaries.list` (v1beta) through Google's own
 * per-API package, every page, with our token, our deadline (net/deadline.ts) and the retry and
 * error sorting of the Data API client (ga4/client.ts): 429, 5xx, timeouts and resets back off
 * with full jitter and retry; 403 and 400 fail at once with a message that says what to do.
 *
 * Facts from Google's reference for ListAccountSummaries: `pageSize` counts account summaries
 * (default 50, at most 200, more is coerced to 200), the service may return fewer than asked
 * even when more pages follow, and a response without `nextPageToken` is the last page. Each
 * summary names `accounts/{id}` and lists its `propertySummaries` (`properties/{id}`, display
 * name, `propertyType` ordinary / subproperty / roll-up, `parent` account or property); it lists
 * only what the caller can read.
 */
import type { analyticsadmin_v1beta } from '@googleapis/analyticsadmin';
import type { TokenSource } from '../auth/tokenManager.js';
import { AbortedError, PermanentError, RetryableError, TokenExpiredError, describe, systemErrorCode } from '../errors.js';
import { backoffDelay, sleep } from '../net/backoff.js';
import type { Logger } from '../log.js';
import { withDeadline } from '../net/deadline.js';
import { httpStatus, retryAfterMs } from '../net/httpResponse.js';
import { withNetworkCause } from '../net/networkCause.js';

/** One GA4 property as the Admin API summarises it. */
interface PropertySummary {
  /** numeric property id */
  id: string;
  displayName: string;
  /** PROPERTY_TYPE_ORDINARY, PROPERTY_TYPE_SUBPROPERTY or PROPERTY_TYPE_ROLLUP (all fetched alike) */
  propertyType: string;
  /** `accounts/{id}` or, for a subproperty, `properties/{id}` */
  parent: string;
}

/** One GA account with the properties of it the caller can read. */
export interface AccountSummary {
  /** numeric account id */
  id: string;
  displayName: string;
  properties: PropertySummary[];
}

export interface AdminClientOptions {
  /** google.adminApiRootUrl */
  rootUrl: string;
  /** deadline of one page request, ms */
  timeoutMs: number;
  /** attempts per page for retryable failures */
  maxAttempts: number;
  /** backoff base and cap, ms (tests shorten them) */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** account summaries asked per page; Google's maximum (200) unless a test asks fewer */
  pageSize?: number;
}

/** Google's maximum page size for accountSummaries.list. */
const MAX_PAGE_SIZE = 200;
/** A listing that pages on past this is not converging (a page token that never ends). */
const MAX_PAGES = 10_000;

type ListResponse = analyticsadmin_v1beta.Schema$GoogleAnalyticsAdminV1betaListAccountSummariesResponse;

export class AdminClient {
  private apiLoaded: Promise<analyticsadmin_v1beta.Analyticsadmin> | undefined;

  constructor(private readonly opts: AdminClientOptions) {}

  /**
   * Google's Admin API package, loaded at the first listing: it is the largest of the Google
   * packages (about 0.5 s and 18 MB to load, measured here), and only discovery needs it.
   */
  private api(): Promise<analyticsadmin_v1beta.Analyticsadmin> {
    const rootUrl = this.opts.rootUrl.endsWith('/') ? this.opts.rootUrl : `${this.opts.rootUrl}/`;
    this.apiLoaded ??= import('@googleapis/analyticsadmin').then(({ analyticsadmin }) => analyticsadmin({ version: 'v1beta', rootUrl }));
    return this.apiLoaded;
  }

  /**
   * Every account summary the token's principal can see, all pages, in the order Google gives.
   * Malformed entries (a name that is not `accounts/N` or `properties/N`) are left out and logged.
   *
   * @throws PermanentError (403: the Admin API is not enabled in the principal's Cloud project, or
   *   the token lacks the scope; 400; 404 a wrong root URL), RetryableError once the attempts are
   *   spent, TokenExpiredError when no token can be had, AbortedError when `signal` aborts.
   */
  async listAccountSummaries(tokens: TokenSource, logger: Logger, signal?: AbortSignal): Promise<AccountSummary[]> {
    const out: AccountSummary[] = [];
    const api = await this.api();
    const seenTokens = new Set<string>();
    let pageToken: string | undefined;
    for (let page = 1; page <= MAX_PAGES; page++) {
      const body = await this.page(api, tokens, logger, page, pageToken, signal);
      for (const a of body.accountSummaries ?? []) {
        const summary = toAccount(a, logger);
        if (summary) out.push(summary);
      }
      const next = body.nextPageToken ?? '';
      if (!next) return out;
      if (seenTokens.has(next)) {
        throw new RetryableError(
          `accountSummaries.list: the Admin API returned page token of page ${page} again; the listing does not converge`,
          'bad_response',
        );
      }
      seenTokens.add(next);
      pageToken = next;
    }
    throw new RetryableError(`accountSummaries.list: more than ${MAX_PAGES} pages; the listing does not converge`, 'bad_response');
  }

  private async page(
    api: analyticsadmin_v1beta.Analyticsadmin,
    tokens: TokenSource,
    logger: Logger,
    page: number,
    pageToken: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<ListResponse> {
    const base = this.opts.backoffBaseMs ?? 1_000;
    const cap = this.opts.backoffCapMs ?? 32_000;
    const backoff = (attempt: number) => backoffDelay(attempt, { baseMs: base, capMs: cap });
    const pageSize = Math.min(MAX_PAGE_SIZE, Math.max(1, this.opts.pageSize ?? MAX_PAGE_SIZE));
    let refreshedFor401 = false;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw new AbortedError();
      let token: string;
      try {
        token = await tokens.getToken();
      } catch (err) {
        if (!(err instanceof RetryableError) || err instanceof TokenExpiredError || attempt >= this.opts.maxAttempts) throw err;
        const delay = backoff(attempt);
        logger.warn({ event: 'token_unavailable', attempt, err: describe(err), retryInMs: Math.round(delay) }, 'no access token yet; retrying');
        await sleep(delay, signal);
        continue;
      }
      let error: Error;
      let status: number | undefined;
      try {
        const res = await withDeadline(`accountSummaries.list (page ${page})`, this.opts.timeoutMs, signal, (s) =>
          api.accountSummaries.list(
            // prettyPrint=false: Google indents JSON by default
            { pageSize, ...(pageToken ? { pageToken } : {}), prettyPrint: false },
            { headers: { Authorization: `Bearer ${token}` }, signal: s, retry: false, responseType: 'json' },
          ),
        );
        const data: unknown = res.data;
        if (typeof data === 'object' && data !== null && !Array.isArray(data)) return data as ListResponse;
        // gaxios hands back a body that is not JSON as a plain string
        error = new RetryableError('accountSummaries.list: response body is not JSON (truncated?)', 'bad_response');
        status = 200;
      } catch (err) {
        if (err instanceof AbortedError || signal?.aborted) throw new AbortedError();
        status = httpStatus(err);
        error = classifyAdminError(err, tokens.account);
      }
      if (status === 401 && !refreshedFor401) {
        // one forced refresh and one more try: the token may have been revoked early
        refreshedFor401 = true;
        logger.warn({ event: 'api_unauthenticated', method: 'accountSummaries.list' }, 'Admin API refused the access token; refreshing it once');
        await tokens.invalidate(token);
        attempt -= 1;
        continue;
      }
      if (!(error instanceof RetryableError) || attempt >= this.opts.maxAttempts) throw error;
      const delay = error.retryAfterMs ?? backoff(attempt);
      logger.warn(
        { event: 'api_retry', method: 'accountSummaries.list', page, attempt, code: error.code, retryInMs: Math.round(delay), err: describe(error) },
        'retryable Admin API failure, backing off',
      );
      await sleep(delay, signal);
    }
  }
}

function toAccount(a: analyticsadmin_v1beta.Schema$GoogleAnalyticsAdminV1betaAccountSummary, logger: Logger): AccountSummary | null {
  const id = /^accounts\/([0-9]+)$/.exec(a.account ?? '')?.[1];
  if (!id) {
    logger.warn({ event: 'discovery_malformed', account: a.account ?? null }, 'an account summary without a valid account name was left out');
    return null;
  }
  const properties: PropertySummary[] = [];
  for (const p of a.propertySummaries ?? []) {
    const pid = /^properties\/([0-9]+)$/.exec(p.property ?? '')?.[1];
    if (!pid) {
      logger.warn({ event: 'discovery_malformed', account: id, property: p.property ?? null }, 'a property summary without a valid property name was left out');
      continue;
    }
    properties.push({
      id: pid,
      displayName: p.displayName ?? '',
      propertyType: p.propertyType ?? 'PROPERTY_TYPE_UNSPECIFIED',
      parent: p.parent ?? `accounts/${id}`,
    });
  }
  return { id, displayName: a.displayName ?? '', properties };
}

interface GoogleErrorBody {
  error?: { code?: number; message?: string; status?: string; details?: Array<{ reason?: string }> };
}

/**
 * Sorts an Admin API failure into retryable or permanent, with a message that says what to do.
 * `account` is the principal (for the message). Google's own message is kept: for a disabled API
 * it names the Cloud project and the console page that enables it.
 */
function classifyAdminError(err: unknown, account: string): Error {
  if (err instanceof RetryableError || err instanceof PermanentError || err instanceof AbortedError) return err;
  const e = err as { response?: { data?: unknown; headers?: unknown }; code?: string; name?: string; message?: string; cause?: { code?: string } };
  const status = httpStatus(err);
  const method = 'accountSummaries.list';
  if (status === undefined) {
    if (e.name === 'TimeoutError' || /timeout|timed out/i.test(e.message ?? '')) return new RetryableError(`${method} timed out`, 'timeout');
    const raw = e.code ?? e.cause?.code ?? (/ECONNRESET|socket hang up|premature close/i.test(e.message ?? '') ? 'ECONNRESET' : 'network');
    return new RetryableError(`${method} failed before a response: ${withNetworkCause(raw, err)}`, systemErrorCode(raw) ?? 'network');
  }
  const body = e.response?.data;
  const g = typeof body === 'object' && body !== null ? (body as GoogleErrorBody).error : undefined;
  const gstatus = g?.status ?? `HTTP_${status}`;
  const gmessage = (g?.message ?? '').split('\n')[0]!.trim();
  const reasons = (g?.details ?? []).map((d) => d?.reason).filter(Boolean);
  if (status === 403) {
    if (reasons.includes('ACCESS_TOKEN_SCOPE_INSUFFICIENT') || /insufficient authentication scopes/i.test(gmessage)) {
      return new PermanentError(
        `${method} for ${account} was refused (${gstatus}: ${gmessage}): the access token lacks the analytics.readonly scope; if the credentials are delegated or restricted, allow that scope`,
        'permission_denied',
      );
    }
    const refused = `${method} for ${account} was refused (${gstatus}${gmessage ? `: ${gmessage}` : ''})`;
    const enable = `enable "Google Analytics Admin API" in the Google Cloud project of ${account} (console > APIs & Services > Library)`;
    if (reasons.includes('SERVICE_DISABLED') || /has not been used|is disabled|not enabled/i.test(gmessage)) {
      return new PermanentError(`${refused}: the Admin API is not enabled for the Cloud project; ${enable}`, 'api_disabled');
    }
    return new PermanentError(
      `${refused}: the Admin API is not enabled for the Cloud project, or the principal lacks access; ${enable}, and check ${account} in GA Admin > Account access management`,
      'permission_denied',
    );
  }
  if (status === 400) return new PermanentError(`${method} was refused as invalid (${gstatus}): ${gmessage || 'bad request'}`, 'invalid_argument');
  if (status === 404) return new PermanentError(`${method}: not found (${gmessage || 'HTTP 404'}); check google.adminApiRootUrl`, 'not_found');
  if (status === 401) return new RetryableError(`${method}: access token refused (UNAUTHENTICATED)`, 'unauthenticated');
  if (status === 429) return new RetryableError(`${method}: rate limited (${gmessage || 'RESOURCE_EXHAUSTED'})`, 'quota', retryAfterMs(e.response?.headers));
  if (status >= 500 || status === 408) return new RetryableError(`${method}: Google answered HTTP ${status} ${gstatus}`, `http_${status}`);
  return new PermanentError(`${method}: unexpected HTTP ${status} ${gstatus} ${gmessage}`.trim(), `http_${status}`);
}
