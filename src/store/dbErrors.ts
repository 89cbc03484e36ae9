/**
 * Database failures, sorted once. Three kinds, by what helps:
 *
 * - `config`: waiting will not heal it: the database does not exist, the role may not log in, the
 *   password is wrong, the host name does not resolve, TLS is misconfigured, a privilege is
 *   missing. Start-up says so in one line and exits 2 at once (systemd's
 *   `RestartPreventExitStatus=2` then leaves it stopped).
 * - `unavailable`: the server is down, starting, restarting, failing over, full, or it dropped our
 *   connection (`pg_terminate_backend`, `idle_session_timeout`), or a statement gave up on a lock
 *   or ran past its timeout. Start-up waits and retries; a job fails as retryable and runs again
 *   later.
 * - `other`: anything else (a bug, a bad migration); reported as it is.
 *
 * SQLSTATEs from PostgreSQL's Appendix A (errcodes); Node's socket error codes from libuv.
 */

export type DbFailureKind = 'config' | 'unavailable' | 'other';

/** SQLSTATEs that no amount of waiting fixes, each with what to do about it. */
const CONFIG_SQLSTATES: Record<string, string> = {
  '3D000': 'create the database, or fix the database name in database.url / DATABASE_URL',
  '28P01': 'fix the user name or password in database.url / DATABASE_URL',
  '28000': 'the role must exist and have LOGIN, and pg_hba.conf must admit it from this host with the method the server expects',
  '42501': '`ga-collector check` names the missing privilege and the GRANT that gives it',
  '3F000': 'fix database.schema',
  '42P07': 'a relation of that name is in the way in database.schema; choose another report name or database.schema',
};

/** SQLSTATE classes and codes of a database that is away for now, or of a statement that gave up. */
const UNAVAILABLE_SQLSTATES = new Set([
  '57P01', // admin_shutdown: fast shutdown, or pg_terminate_backend
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up, shutting down, in recovery
  '57P05', // idle_session_timeout
  '25P03', // idle_in_transaction_session_timeout
  '53300', // too_many_connections
  '53000', // insufficient_resources
  '55P03', // lock_not_available: our lock_timeout
  '57014', // query_canceled: our statement_timeout, or a cancel
  '40001', // serialization_failure
  '40P01', // deadlock_detected
]);

/** Socket errors of a server that is down or out of reach for now. */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EPIPE',
  // a temporary DNS failure (the resolver did not answer), unlike ENOTFOUND
  'EAI_AGAIN',
  // a Unix socket that is not there: the server is not running
  'ENOENT',
]);

/**
 * Socket and TLS errors that are settings, not weather. ENOTFOUND is NXDOMAIN: the resolver
 * answered that the name does not exist, which is almost always a typo in the host; a resolver that
 * did not answer is EAI_AGAIN and is waited for.
 */
const CONFIG_CODES: Record<string, string> = {
  ENOTFOUND: 'fix the host name in database.url / DATABASE_URL',
  EACCES: 'the Unix socket of database.url is not accessible to this user',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the server certificate is self-signed: give its CA (sslrootcert) or fix sslmode in database.url',
  SELF_SIGNED_CERT_IN_CHAIN: 'the server certificate is not trusted: give its CA (sslrootcert) or fix sslmode in database.url',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the server certificate is not trusted: give its CA (sslrootcert) or fix sslmode in database.url',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the server certificate is not trusted: give its CA (sslrootcert) or fix sslmode in database.url',
  CERT_HAS_EXPIRED: 'the server certificate has expired',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the server certificate does not name this host: connect by the name it carries',
};

/** Messages of the pg driver for a connection that ended, timed out or cannot be used. */
const UNAVAILABLE_MESSAGES = [
  /Connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /is not queryable/i,
  /Connection ended unexpectedly/i,
  /server closed the connection unexpectedly/i,
];

/** Messages of the pg driver for settings that cannot work. */
const CONFIG_MESSAGES: Array<[RegExp, string]> = [
  [/does not support SSL/i, 'the server does not speak TLS: remove sslmode=require (or ssl=true) from database.url, or enable ssl on the server'],
  [/client password must be a string|password must be a string/i, 'the server wants a password: put it in database.url / DATABASE_URL'],
  [/Invalid URL|invalid connection string/i, 'database.url is not a valid postgres:// URL'],
];

function codeOf(err: unknown): string | undefined {
  const e = err as { code?: unknown; errors?: unknown[] } | null;
  if (e && typeof e.code === 'string') return e.code;
  // Node's happy-eyeballs connect (localhost: ::1 and 127.0.0.1) fails with an AggregateError
  if (e && Array.isArray(e.errors))
    for (const inner of e.errors) if (inner && typeof (inner as { code?: unknown }).code === 'string') return (inner as { code: string }).code;
  return undefined;
}

/** The error's kind; see the module comment. */
export function classifyDbError(err: unknown): DbFailureKind {
  const code = codeOf(err);
  if (code) {
    if (CONFIG_SQLSTATES[code] || CONFIG_CODES[code]) return 'config';
    if (UNAVAILABLE_SQLSTATES.has(code) || UNAVAILABLE_CODES.has(code) || code.startsWith('08')) return 'unavailable';
  }
  const message = err instanceof Error ? err.message : String(err);
  if (CONFIG_MESSAGES.some(([re]) => re.test(message))) return 'config';
  if (UNAVAILABLE_MESSAGES.some((re) => re.test(message))) return 'unavailable';
  return 'other';
}

/** True when the database is away for now (or dropped us): worth waiting for and trying again. */
export function isDatabaseUnavailable(err: unknown): boolean {
  return classifyDbError(err) === 'unavailable';
}

/**
 * One line for a log or stderr: the driver's message (never a stack), the password of `url`
 * blanked should it appear, and for a `config` failure what to do.
 */
export function describeDbError(err: unknown, url?: string): string {
  let message = '';
  if (err instanceof Error) message = err.message.split('\n')[0] ?? '';
  if (!message) {
    const inner = (err as { errors?: Array<{ message?: string }> } | null)?.errors?.[0]?.message;
    message = inner ?? codeOf(err) ?? (err instanceof Error ? err.name : String(err));
  }
  message = blankPassword(message, url);
  const code = codeOf(err);
  const hint = (code && (CONFIG_SQLSTATES[code] ?? CONFIG_CODES[code])) ?? CONFIG_MESSAGES.find(([re]) => re.test(message))?.[1];
  return hint ? `${message} (${hint})` : message;
}

function blankPassword(text: string, url?: string): string {
  if (!url) return text;
  let password: string;
  try {
    password = decodeURIComponent(new URL(url).password);
  } catch {
    return text;
  }
  // a very short password would blank ordinary words; the driver's messages never carry it anyway
  if (password.length < 4) return text;
  return text.split(password).join('***').split(encodeURIComponent(password)).join('***');
}
