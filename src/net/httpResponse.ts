/**
 * Reading a failed Google API call's response the same way for every API (Data, Admin): its HTTP
 * status, a header from gaxios's Headers object or a plain record, and Retry-After.
 */

/** A Retry-After longer than this is not waited for in the same run: the attempts are better spread. */
const MAX_RETRY_AFTER_MS = 120_000;

/** A response header, from gaxios's Headers object or a plain record; null when absent or empty. */
export function responseHeader(headers: unknown, name: string): string | null {
  const bag = headers as { get?: (key: string) => string | null } | Record<string, string> | undefined;
  const value = typeof bag?.get === 'function' ? bag.get(name) : (bag as Record<string, string> | undefined)?.[name];
  return typeof value === 'string' && value !== '' ? value : null;
}

/** The HTTP status of a failed request; undefined when no response came. */
export function httpStatus(err: unknown): number | undefined {
  const status = (err as { response?: { status?: unknown } }).response?.status;
  return typeof status === 'number' ? status : undefined;
}

/** Retry-After in seconds, as ms (at most two minutes); undefined when absent or not a number. */
export function retryAfterMs(headers: unknown): number | undefined {
  const value = responseHeader(headers, 'retry-after');
  const seconds = value ? Number(value) : NaN;
  return Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds * 1000, MAX_RETRY_AFTER_MS) : undefined;
}
