/**
 * A failed Data API call, sorted once into what the scheduler does with it: try again
 * (RetryableError), come back when a quota window resets (DeferError), or fail with the fix
 * (PermanentError). Google's status codes and quota messages are described at
 * developers.google.com/analytics/devguides/reporting/data/v1/quotas and in its API error model
 * (cloud.google.com/apis/design/errors).
 */
import { AbortedError, DeferError, PermanentError, RetryableError, systemErrorCode, type RetryCode } from '../errors.js';
import { where, type CallContext } from './callContext.js';
import { nextHour, nextPacificMidnight } from './quota.js';
import { httpStatus, retryAfterMs } from '../net/httpResponse.js';
import { networkCause, withNetworkCause } from '../net/networkCause.js';

interface GoogleErrorBody {
  error?: { code?: number; message?: string; status?: string };
}

/**
 * Sorts an API failure into retryable, deferred or permanent, with a message that says what to do.
 * The library's error is not kept as `cause`: it carries the request, access token included.
 * @param now ms since epoch, for when a used-up quota window resets
 */
export function classify(err: unknown, ctx: CallContext, method: string, now = Date.now()): Error {
  const failure = err as { response?: { data?: unknown; headers?: unknown }; code?: string; name?: string; message?: string; cause?: { code?: string } };
  const status = httpStatus(err);
  const at = where(ctx);
  if (status === undefined) {
    // DOMException and undici errors are told apart by name: they are not our classes
    if (failure.name === 'AbortError' || /aborted/i.test(failure.message ?? '')) {
      if (ctx.signal?.aborted) return new AbortedError();
      return new RetryableError(`${method} for ${at} timed out`, 'timeout');
    }
    if (failure.name === 'TimeoutError' || /timeout|timed out/i.test(failure.message ?? ''))
      return new RetryableError(`${method} for ${at} timed out`, 'timeout');
    const code: RetryCode =
      systemErrorCode(failure.code) ??
      systemErrorCode(failure.cause?.code) ??
      systemErrorCode(networkCause(err).code) ??
      (/ECONNRESET|socket hang up|premature close/i.test(failure.message ?? '') ? 'ECONNRESET' : 'network');
    // the underlying error's words (net/networkCause.ts): "socket hang up", "connect ECONNREFUSED 127.0.0.1:9"
    return new RetryableError(`${method} for ${at} failed before a response: ${withNetworkCause(code, err)}`, code);
  }
  // a request made with `responseType: 'stream'` (ga4/client.ts runReportPageStream) gets no
  // body in `data`: gaxios puts Google's error body, as text, in the message instead
  const body = jsonBody(failure.response?.data ?? failure.message);
  const googleError = typeof body === 'object' && body !== null ? (body as GoogleErrorBody).error : undefined;
  const googleStatus = googleError?.status ?? `HTTP_${status}`;
  const googleMessage = (googleError?.message ?? '').split('\n')[0]!.trim();
  const account = ctx.tokens.account;
  if (status === 403 && /insufficient authentication scopes/i.test(googleMessage)) {
    // Compute Engine and GKE's metadata servers hand out the VM's access scopes whatever is asked
    return new PermanentError(
      `${method} for ${at}: the access token of ${account} lacks the analytics.readonly scope (${googleStatus}: ${googleMessage}): on Compute Engine or GKE set google.impersonate to a service account the attached one may impersonate (or give the VM the analytics.readonly access scope); for a person's gcloud credentials, impersonate a service account too`,
      'scope_insufficient',
    );
  }
  if (status === 403) {
    return new PermanentError(
      `service account ${account} has no access to GA4 property ${ctx.propertyId} (${googleStatus}): add ${account} as a Viewer of property ${ctx.propertyId} in GA Admin > Property settings > Property access management, and check that the id is the numeric property id`,
      'permission_denied',
    );
  }
  if (status === 400) {
    return new PermanentError(
      `${method} for ${at} was refused as invalid (${googleStatus}): ${googleMessage || 'bad request'}; fix the report definition in the config (check names with \`ga-collector check\`)`,
      'invalid_argument',
    );
  }
  if (status === 404) {
    return new PermanentError(`${method} for ${at}: not found (${googleMessage || 'HTTP 404'}); check the property id and google.apiRootUrl`, 'not_found');
  }
  if (status === 401) {
    return new RetryableError(`${method} for ${at}: access token refused (UNAUTHENTICATED)`, 'unauthenticated');
  }
  if (status === 429) {
    // Exhausted hourly or daily tokens come back only with the next window: stop and come back then.
    if (/tokens per day/i.test(googleMessage)) {
      return new DeferError(
        `${method} for ${at}: daily quota exhausted (${googleMessage}); deferred to the next Pacific day`,
        'quota_day',
        nextPacificMidnight(now),
      );
    }
    if (/tokens per (project per )?hour|per hour/i.test(googleMessage)) {
      return new DeferError(`${method} for ${at}: hourly quota exhausted (${googleMessage}); deferred to the next hour`, 'quota_hour', nextHour(now));
    }
    return new RetryableError(`${method} for ${at}: rate limited (${googleMessage || 'RESOURCE_EXHAUSTED'})`, 'quota', retryAfterMs(failure.response?.headers));
  }
  if (status >= 500 || status === 408) {
    // Google's own status (UNAVAILABLE) when its body names one; a proxy's bare 502 says only the code
    return new RetryableError(`${method} for ${at}: Google answered HTTP ${status}${googleError?.status ? ` ${googleError.status}` : ''}`, `http_${status}`);
  }
  return new PermanentError(
    `${method} for ${at}: unexpected HTTP ${status} ${googleError?.status ?? ''} ${googleMessage}`.replace(/\s+/g, ' ').trim(),
    `http_${status}`,
  );
}

/** An error response's body as gaxios hands it over: parsed already, or text that may be Google's JSON error. */
function jsonBody(data: unknown): unknown {
  if (typeof data !== 'string') return data;
  try {
    return JSON.parse(data) as unknown;
  } catch {
    return data;
  }
}
