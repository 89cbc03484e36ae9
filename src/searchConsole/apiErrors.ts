/**
 * A failed Search Console call, sorted as a Data API call is (ga4/apiErrors.ts), with the
 * answers that mean something else here: 403 (the principal is not a user of the site), 400 (a
 * definition Google refuses), 404, and 429. Google sends the same "quota exceeded" for every
 * Search Analytics quota (https://developers.google.com/webmaster-tools/limits): per-site and
 * per-user 1,200 queries a minute, per-project 40,000 a minute and 30,000,000 a day, and the load
 * quota (short-term, 10-minute chunks: "wait 15 minutes"; long-term, a day). A message that names
 * a minute is retried with backoff, one that names a day waits for the next Pacific day, and any
 * other waits the 15 minutes Google asks for.
 */
import { DeferError, PermanentError, RetryableError } from '../errors.js';
import { classify as classifyGa4 } from '../ga4/apiErrors.js';
import { where, type CallContext } from '../ga4/callContext.js';
import { nextPacificMidnight } from '../ga4/quota.js';
import { httpStatus, retryAfterMs } from '../net/httpResponse.js';

/** Google's advice for an exceeded load quota. */
const LOAD_QUOTA_WAIT_MS = 15 * 60_000;

interface GoogleErrorBody {
  error?: { code?: number; message?: string; status?: string };
}

/**
 * Sorts a searchanalytics.query failure into retryable, deferred or permanent, with a message
 * that says what to do. The library's error is not kept as `cause` (it carries the token).
 * @param now ms since epoch, for when a quota window resets
 */
export function classify(err: unknown, ctx: CallContext, method: string, now = Date.now()): Error {
  const status = httpStatus(err);
  if (status === undefined || ![400, 403, 404, 429].includes(status)) return classifyGa4(err, ctx, method, now);
  const failure = err as { response?: { data?: unknown; headers?: unknown } };
  const body = failure.response?.data;
  const googleError = typeof body === 'object' && body !== null ? (body as GoogleErrorBody).error : undefined;
  const googleStatus = googleError?.status ?? `HTTP_${status}`;
  const googleMessage = (googleError?.message ?? '').split('\n')[0]!.trim();
  const account = ctx.tokens.account;
  const site = ctx.propertyId;
  const at = where(ctx);
  if (status === 403 && /insufficient authentication scopes/i.test(googleMessage)) {
    return new PermanentError(
      `${method} for ${at}: the access token of ${account} lacks the webmasters.readonly scope (${googleStatus}: ${googleMessage}): on Compute Engine or GKE set google.impersonate to a service account the attached one may impersonate (or give the VM the webmasters.readonly access scope)`,
      'scope_insufficient',
    );
  }
  if (status === 403) {
    return new PermanentError(
      `${account} is not a user of Search Console site ${site} (${googleStatus}): add it in Search Console > Settings > Users and permissions > Add user, with the email ${account} (Restricted permission is enough), and check that the url is the property exactly as Search Console lists it (sc-domain:example.com, or https://www.example.com/ with its slash)`,
      'permission_denied',
    );
  }
  if (status === 400) {
    return new PermanentError(
      `${method} for ${at} was refused as invalid (${googleStatus}): ${googleMessage || 'bad request'}; fix the report in searchConsole.reports`,
      'invalid_argument',
    );
  }
  if (status === 404) {
    return new PermanentError(
      `${method} for ${at}: not found (${googleMessage || 'HTTP 404'}); check the site url and google.searchConsoleRootUrl`,
      'not_found',
    );
  }
  if (/per day|daily|QPD/i.test(googleMessage)) {
    return new DeferError(
      `${method} for ${at}: daily quota exceeded (${googleMessage}); deferred to the next Pacific day`,
      'quota_day',
      nextPacificMidnight(now),
    );
  }
  if (/per minute|QPM/i.test(googleMessage)) {
    return new RetryableError(`${method} for ${at}: rate limited (${googleMessage})`, 'quota', retryAfterMs(failure.response?.headers));
  }
  return new DeferError(
    `${method} for ${at}: quota exceeded (${googleMessage || googleStatus}); Google asks to wait 15 minutes (load quota)`,
    'quota_load',
    now + LOAD_QUOTA_WAIT_MS,
  );
}
