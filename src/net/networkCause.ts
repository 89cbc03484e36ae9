/**
 * What a request that got no answer met, for a message: the system error code (ECONNREFUSED,
 * ECONNRESET, UND_ERR_SOCKET ...) and the underlying error's own words ("socket hang up",
 * "connect ECONNREFUSED 127.0.0.1:9"), read from the error and its `cause` chain (gaxios wraps
 * node-fetch's FetchError, undici puts the socket error in `cause`). No secret is carried: only
 * codes and the reason part of messages, with any URL cut to its origin and path.
 */

/** How deep the `cause` chain is read. */
const MAX_DEPTH = 4;
/** A reason longer than this is cut: it goes into one log line. */
const MAX_REASON = 160;

interface Failure {
  code?: unknown;
  message?: unknown;
  cause?: unknown;
}

/** A message's reason: node-fetch's "request to URL failed, reason: X" gives X; URLs lose their query and fragment. */
function reasonOf(message: string): string {
  const reason = /reason: (.*)$/s.exec(message)?.[1] ?? message;
  const clean = reason
    .split('\n')[0]!
    .replace(/(https?:\/\/[^\s?#]*)[?#]\S*/g, '$1')
    .trim();
  return clean.length > MAX_REASON ? `${clean.slice(0, MAX_REASON - 1)}…` : clean;
}

/**
 * The code and reason of a network failure; `code` is the first string code in the chain that
 * looks like a system one, `reason` the innermost message (the most specific). Either may be undefined.
 */
export function networkCause(err: unknown): { code?: string; reason?: string } {
  let code: string | undefined;
  let reason: string | undefined;
  let e = err as Failure | undefined;
  for (let depth = 0; e && typeof e === 'object' && depth < MAX_DEPTH; depth++, e = e.cause as Failure | undefined) {
    if (code === undefined && typeof e.code === 'string' && /^(?:E|UND_ERR_)[A-Z0-9_]+$/.test(e.code)) code = e.code;
    if (typeof e.message === 'string' && e.message.trim()) reason = reasonOf(e.message);
  }
  return { ...(code ? { code } : {}), ...(reason ? { reason } : {}) };
}

/**
 * `label` followed by the failure's own words in parentheses, unless they only repeat it:
 * `ECONNRESET (socket hang up)`, `network (other side closed)`, `ECONNREFUSED (connect ECONNREFUSED 127.0.0.1:9)`.
 */
export function withNetworkCause(label: string, err: unknown): string {
  const { reason } = networkCause(err);
  return reason && reason !== label ? `${label} (${reason})` : label;
}
