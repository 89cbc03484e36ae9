/**
 * HTTPS and basic authentication for the HTTP server, configured as Prometheus exporters are (the
 * exporter-toolkit's web config file), so one file format serves the whole monitoring stack:
 *
 *   tls_server_config:
 *     cert_file: server.crt      # PEM, the chain after the certificate; relative to this file
 *     key_file: server.key
 *     min_version: TLS12         # optional: TLS12 (default) or TLS13
 *   basic_auth_users:
 *     prometheus: $2y$10$...     # bcrypt, e.g. `htpasswd -nBC 10 "" | tr -d ':\n'`
 *
 * Unknown keys are refused (as the toolkit refuses them), and so are the toolkit's keys this
 * server does not implement (client certificates, cipher choices, http_server_config), so a file
 * never silently means less than it says. Problems are UsageErrors naming the file and the key.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import YAML from 'yaml';
import { UsageError } from '../errors.js';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
}

export interface WebConfig {
  /** absolute path of the web config file */
  file: string;
  tls: TlsFiles | null;
  /** user name -> bcrypt hash; empty: no authentication */
  users: Map<string, string>;
}

const TOP_KEYS = ['tls_server_config', 'basic_auth_users'];
const TLS_KEYS = ['cert_file', 'key_file', 'min_version'];
/** exporter-toolkit keys that mean something this server does not do: refused rather than ignored */
const UNSUPPORTED = new Set([
  'http_server_config',
  'rate_limit',
  'tls_server_config.cert',
  'tls_server_config.key',
  'tls_server_config.client_auth_type',
  'tls_server_config.client_ca_file',
  'tls_server_config.client_allowed_sans',
  'tls_server_config.cipher_suites',
  'tls_server_config.curve_preferences',
  'tls_server_config.max_version',
  'tls_server_config.prefer_server_cipher_suites',
]);
const VERSIONS: Record<string, TlsFiles['minVersion']> = { TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' };
const BCRYPT_RE = /^\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}$/;

/** Reads and checks a web config file; the TLS files are read too, so a bad key fails at start. */
export function loadWebConfig(file: string): WebConfig {
  const bad = (what: string, cause?: unknown) => new UsageError(`http.webConfigFile: ${file}: ${what}`, cause === undefined ? undefined : { cause });
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw bad((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, err);
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw bad(`not YAML: ${String((err as Error).message).split('\n')[0]}`, err);
  }
  doc ??= {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw bad('must be a map with tls_server_config and/or basic_auth_users');
  const top = doc as Record<string, unknown>;
  checkKeys(top, TOP_KEYS, '', bad);

  let tlsFiles: TlsFiles | null = null;
  const tlsSection = top['tls_server_config'];
  if (tlsSection !== undefined && tlsSection !== null) {
    if (typeof tlsSection !== 'object' || Array.isArray(tlsSection)) throw bad('tls_server_config: must be a map with cert_file and key_file');
    const tlsKeys = tlsSection as Record<string, unknown>;
    checkKeys(tlsKeys, TLS_KEYS, 'tls_server_config.', bad);
    const dir = path.dirname(file);
    const pathOf = (key: string) => {
      const given = tlsKeys[key];
      if (typeof given !== 'string' || given === '') throw bad(`tls_server_config.${key}: required, a PEM file path`);
      return path.resolve(dir, given);
    };
    const min = tlsKeys['min_version'] ?? 'TLS12';
    const minVersion = typeof min === 'string' ? VERSIONS[min] : undefined;
    if (!minVersion) throw bad(`tls_server_config.min_version: must be TLS12 or TLS13`);
    tlsFiles = { certFile: pathOf('cert_file'), keyFile: pathOf('key_file'), minVersion };
    tlsOptions(tlsFiles, file);
  }

  const users = new Map<string, string>();
  const usersSection = top['basic_auth_users'];
  if (usersSection !== undefined && usersSection !== null) {
    if (typeof usersSection !== 'object' || Array.isArray(usersSection)) throw bad('basic_auth_users: must be a map of user name to bcrypt hash');
    for (const [name, hash] of Object.entries(usersSection as Record<string, unknown>)) {
      if (name === '' || name.includes(':')) throw bad(`basic_auth_users: ${JSON.stringify(name)} cannot be a user name (empty or with a colon)`);
      // the hash is not echoed: it is a secret's derivative
      if (typeof hash !== 'string' || !BCRYPT_RE.test(hash))
        throw bad(`basic_auth_users.${name}: not a bcrypt hash (make one with: htpasswd -nBC 10 "" | tr -d ':\\n')`);
      users.set(name, hash);
    }
  }
  return { file, tls: tlsFiles, users };
}

/** The certificate and key as `https.createServer` / `setSecureContext` take them; checked to match. */
export function tlsOptions(files: TlsFiles, webConfigFile: string): { cert: Buffer; key: Buffer; minVersion: TlsFiles['minVersion'] } {
  const read = (key: 'cert_file' | 'key_file', file: string) => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new UsageError(
        `http.webConfigFile: ${webConfigFile}: tls_server_config.${key}: ${file} ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'cannot be read'}`,
        { cause: err },
      );
    }
  };
  const opts = { cert: read('cert_file', files.certFile), key: read('key_file', files.keyFile), minVersion: files.minVersion };
  try {
    tls.createSecureContext(opts);
  } catch (err) {
    // OpenSSL's own words ("key values mismatch", "no start line"), never the key's bytes
    throw new UsageError(
      `http.webConfigFile: ${webConfigFile}: tls_server_config: the certificate and key cannot be used: ${String((err as Error).message).split('\n')[0]}`,
      { cause: err },
    );
  }
  return opts;
}

function checkKeys(section: Record<string, unknown>, allowed: string[], prefix: string, bad: (what: string) => Error): void {
  for (const key of Object.keys(section)) {
    if (allowed.includes(key)) continue;
    if (UNSUPPORTED.has(`${prefix}${key}`))
      throw bad(`${prefix}${key}: not supported by ga-collector (supported: ${allowed.map((a) => prefix + a).join(', ')})`);
    throw bad(`${prefix}${key}: unknown key (allowed: ${allowed.map((a) => prefix + a).join(', ')})`);
  }
}

/** A bcrypt hash of a random password, compared against for unknown users so they take as long as known ones. */
const DUMMY_HASH = '$2b$10$hVhFMnCBiaEadS5cJly.Cu70dNooW48G0GFhLgUmfTwOUpXNegMnu';
const CACHE_SIZE = 256;

/**
 * Checks `Authorization: Basic` headers against bcrypt hashes. bcrypt is slow on purpose (tens of
 * milliseconds at cost 10), so, as in exporter-toolkit: one comparison runs at a time (a flood of
 * guesses cannot take every core), and outcomes are cached under a digest of user, hash and
 * password (Prometheus sends the same credentials every scrape; the password itself is not kept).
 */
export class BasicAuth {
  private readonly cache = new Map<string, boolean>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly users: Map<string, string>) {}

  get enabled(): boolean {
    return this.users.size > 0;
  }

  /** True when the header carries a configured user and that user's password. */
  async check(header: string | undefined): Promise<boolean> {
    const credentials = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
    if (!credentials) return false;
    const decoded = Buffer.from(credentials[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const known = this.users.get(user);
    const hash = known ?? DUMMY_HASH;
    const key = crypto.createHash('sha256').update(`${user}\0${hash}\0${password}`).digest('base64');
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached;
    // bcryptjs is loaded by the first check: a collector without basic auth never loads it
    const run = this.queue.then(async () => (await import('bcryptjs')).default.compare(password, hash));
    this.queue = run.catch(() => undefined);
    const ok = known !== undefined && (await run.catch(() => false));
    if (this.cache.size >= CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, ok);
    return ok;
  }
}
