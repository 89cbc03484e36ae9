/**
 * Every error kind the daemon throws on purpose, sorted once, so the command line can choose an
 * exit code and a scheduler can choose between retrying, deferring and failing. Callers tell them
 * apart with `instanceof`, never by `name`. This module imports nothing: every layer may use it.
 *
 * An error that replaces another keeps it as `cause` (`new X(message, { cause })`), except a
 * failed HTTP request of the Google libraries: it carries the request it was (an access token in
 * its headers, a signed JWT in its body), and no secret may reach a log or an error.
 */

/** Bad input from the user: command line, config file, key file. Exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * A Node.js or undici error code of a request that got no answer at all (ECONNRESET,
 * ECONNREFUSED, ENOTFOUND, EAI_AGAIN, UND_ERR_SOCKET): the code is kept so a log tells a
 * refused connection from a failed name lookup.
 */
export type SystemErrorCode = `E${string}` | `UND_ERR_${string}`;

/** Codes of a DeferError: which budget ran out. */
export type DeferCode =
  /** the property's tokens per day (reset at midnight Pacific time) */
  | 'quota_day'
  /** the property's or the project's tokens per hour (reset on the hour) */
  | 'quota_hour'
  /** the property answered too many server errors in the last hour */
  | 'server_errors'
  /** Search Console's quota exceeded (load quota: Google says to wait 15 minutes) */
  | 'quota_load';

/** Why a failure may heal by itself; logs and `api_retry` events show it as `code`. */
export type RetryCode =
  | DeferCode
  /** no answer within the deadline (ours, net/deadline.ts, or the library's) */
  | 'timeout'
  /** no answer, and no system error code to say why */
  | 'network'
  | SystemErrorCode
  /** a 5xx or 408 of the Data API, a 5xx, 408 or 429 of the token endpoint */
  | `http_${number}`
  /** the Data API refused the access token (401): renewed once, then retried */
  | 'unauthenticated'
  /** the Data API said 429 with no quota window used up: a short burst limit */
  | 'quota'
  /** a body that is not a usable answer: not JSON, truncated, malformed, a date out of range */
  | 'bad_response'
  /** the listing changed while its pages were read: rowCount changed, a row on two pages */
  | 'inconsistent_pages'
  /** the rows did not come in date order (an endpoint that ignores orderBys) */
  | 'unordered'
  /** a federated credential's subject token could not be read or fetched (a file not written yet, a source down) */
  | 'subject_unavailable'
  /** no access token: it ran out while renewals keep failing */
  | 'token_expired';

/** A failure worth trying again (429, 5xx, timeouts, resets, a token endpoint that is down). */
export class RetryableError extends Error {
  override name = 'RetryableError';
  constructor(
    message: string,
    readonly code: RetryCode,
    readonly retryAfterMs?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * Retrying now is pointless until `resetAt`: the property's hourly or daily quota is used up, or it
 * has answered too many server errors this hour. The job stops and is queued again at `resetAt`.
 */
export class DeferError extends RetryableError {
  override name = 'DeferError';
  constructor(
    message: string,
    code: DeferCode,
    readonly resetAt: number,
  ) {
    super(message, code);
  }
}

/** A call ran past its deadline (net/deadline.ts). Retryable: the next attempt may well be answered. */
export class DeadlineExceededError extends RetryableError {
  override name = 'DeadlineExceededError';
  constructor(what: string, ms: number) {
    super(`${what} timed out after ${formatMs(ms)}`, 'timeout');
  }
}

/**
 * No valid access token and its renewals failing: a fetch fails at once rather than retrying, since
 * the token source already retries the exchange with backoff in the background.
 */
export class TokenExpiredError extends RetryableError {
  override name = 'TokenExpiredError';
  constructor(message: string) {
    super(message, 'token_expired');
  }
}

/**
 * A failure that will not heal by itself (403, 400, invalid_grant). The message says how to fix it;
 * `code` names the refusal (`permission_denied`, `invalid_argument`, `not_found`, `unknown_field`,
 * `http_<status>`, or the token endpoint's OAuth error such as `invalid_grant`).
 */
export class PermanentError extends Error {
  override name = 'PermanentError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** The process is shutting down; in-flight work was aborted on purpose. */
export class AbortedError extends Error {
  override name = 'AbortedError';
  constructor(message = 'aborted by shutdown') {
    super(message);
  }
}

/** A key's `private_key` that is no usable PEM RSA key; the reason never quotes the key, the caller names the file. */
export class PemError extends Error {
  override name = 'PemError';
}

/** The schema holds a migration this ga-collector does not know: it was migrated by a newer version. */
export class DatabaseTooNewError extends Error {
  override name = 'DatabaseTooNewError';
}

/**
 * A numbered migration failed. Its SQLSTATE stays on the error as `code`, so start-up can tell a
 * busy database (retry) from a bad migration (fail); the PostgreSQL error is the `cause`.
 */
export class MigrationError extends Error {
  override name = 'MigrationError';
  constructor(
    message: string,
    readonly code: string | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The HTTP port is taken or may not be bound: a runtime failure (exit 1), unlike a wrong address (UsageError, exit 2). */
export class HttpListenError extends Error {
  override name = 'HttpListenError';
}

/** The demo's embedded PostgreSQL cannot run here (no binaries for this platform, no user to run it as). */
export class EmbeddedPostgresUnavailable extends Error {
  override name = 'EmbeddedPostgresUnavailable';
}

/** The system error code of a request that got no answer, when it has one (see SystemErrorCode). */
export function systemErrorCode(code: unknown): SystemErrorCode | undefined {
  return typeof code === 'string' && /^(?:E|UND_ERR_)[A-Z0-9_]+$/.test(code) ? (code as SystemErrorCode) : undefined;
}

/** start() failed in `part`; the part's own error is the `cause`. */
export class StartError extends Error {
  override name = 'StartError';
  constructor(
    readonly part: 'database' | 'http',
    cause: unknown,
  ) {
    super(describe(cause), { cause });
  }
}

/** A one-line description of any thrown value, safe to log (never a stack, never a request body). */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0] ?? err.name;
  return String(err);
}

function formatMs(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
