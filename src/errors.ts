/**
 * Error kinds, sorted once. Everything the daemon throws on purpose is one of these, so the
 * command line can choose an exit code and a scheduler can choose between retrying and failing.
 */

/** Bad input from the user: command line, config file, key file. Exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A failure worth trying again (429, 5xx, timeouts, resets, a token endpoint that is down). */
export class RetryableError extends Error {
  override name = 'RetryableError';
  constructor(
    message: string,
    readonly code: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
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
    code: string,
    readonly resetAt: number,
  ) {
    super(message, code);
  }
}

/** A failure that will not heal by itself (403, 400, invalid_grant). The message says how to fix it. */
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

export function isRetryable(err: unknown): err is RetryableError {
  return err instanceof RetryableError;
}

/** A one-line description of any thrown value, safe to log (never a stack, never a request body). */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0] ?? err.name;
  return String(err);
}
