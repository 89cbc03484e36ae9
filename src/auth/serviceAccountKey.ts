/**
 * Reading a service-account JSON key as people really have it, not only as Google's console
 * downloads it: a UTF-8 byte-order mark (Windows editors), UTF-16 (PowerShell's `>`), CRLF line
 * ends, whitespace, a `private_key` whose line breaks arrived escaped or flattened (pasted through
 * a secret store) are all read, the last with a warning. Files that are something else (an OAuth
 * client secret, user credentials, a bare PEM, a JSON array, base64 of a key, a .p12) are refused
 * with one line that names the file, says what it is and what to download instead. No message
 * ever quotes the file's content.
 */
import fs from 'node:fs';
import { PemError, UsageError } from '../errors.js';
import { loosePermissionsNote, type KeyFileNote } from './keyFileNotes.js';
import { normalisePrivateKeyPem } from './pem.js';

export type { KeyFileNote } from './keyFileNotes.js';

export interface ServiceAccountKey {
  file: string;
  clientEmail: string;
  /** PEM, normalised (see pem.ts) */
  privateKey: string;
  privateKeyId: string;
  projectId: string;
  tokenUri: string;
  /** what is odd about the file but did not stop it from being read; each worth one warning */
  notes: KeyFileNote[];
}

export interface ReadKeyOptions {
  /** systemd's `$CREDENTIALS_DIRECTORY`: files there are not judged by their mode (see keyFileNotes.ts) */
  credentialsDirectory?: string | undefined;
}

/** A key file is about 2.3 KB; anything much larger is some other file. */
const MAX_KEY_FILE_BYTES = 64 * 1024;

const NEW_KEY =
  'create a JSON key for the service account instead: Google Cloud console > IAM & Admin > Service accounts > the account > Keys > Add key > Create new key > JSON';

/**
 * Reads and checks a service-account key file.
 *
 * @throws UsageError, one line naming the file, for a file that is not a usable service-account key
 */
export function readServiceAccountKey(file: string, opts: ReadKeyOptions = {}): ServiceAccountKey {
  const read = readCredentialsJson(file);
  return serviceAccountKeyFromJson(read.json, file, read.notes, opts, read.stat);
}

/** A credentials file read as far as its JSON object, before its `type` is looked at. */
export interface CredentialsJson {
  json: Record<string, unknown>;
  stat: fs.Stats;
  /** what was odd about the file's text (line breaks of private_key) */
  notes: KeyFileNote[];
}

/**
 * Reads a Google credentials file of any kind as far as its JSON object, leniently as to encoding
 * and line breaks (see the module comment). Messages say "key file": most files given are keys.
 *
 * @throws UsageError, one line naming the file, for a file that is not one JSON object
 */
export function readCredentialsJson(file: string): CredentialsJson {
  const bad = (what: string, cause?: unknown) => new UsageError(`key file ${file}: ${what}`, cause === undefined ? undefined : { cause });
  let stat: fs.Stats;
  let bytes: Buffer;
  try {
    // stat first: opening a FIFO or a device would block or never end
    stat = fs.statSync(file);
    if (stat.isDirectory()) throw bad('is a directory, not a key file');
    if (!stat.isFile()) throw bad('is not a regular file');
    if (stat.size > MAX_KEY_FILE_BYTES) throw bad(`is ${stat.size} bytes, far more than a service-account key (about 2.3 KB): is it the right file?`);
    bytes = fs.readFileSync(file);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw bad('does not exist', err);
    if (code === 'EACCES' || code === 'EPERM') throw bad(`is not readable by this user (${code})`, err);
    throw bad(`cannot be read (${code ?? 'error'})`, err);
  }
  const notes: KeyFileNote[] = [];
  const text = decode(bytes);
  if (text === null) throw bad(`is a binary file (a .p12 key?), not a JSON key; ${NEW_KEY}`);
  const trimmed = text.trim();
  if (!trimmed) throw bad(`is empty; ${NEW_KEY}`);
  if (trimmed.startsWith('-----BEGIN')) throw bad(`is a bare PEM file, not the JSON key file (which also names the account); ${NEW_KEY}`);

  let json: unknown;
  try {
    json = JSON.parse(trimmed);
  } catch (err) {
    const repaired = parseWithRawLineBreaks(trimmed);
    if (repaired !== undefined) {
      json = repaired;
      notes.push(mangledNote(file, 'as raw line breaks inside the JSON string, which JSON does not allow'));
    } else if (isBase64Json(trimmed)) {
      throw bad(`is base64-encoded; decode it first (base64 -d ${file} > key.json) and point google.credentials at the result`);
    } else {
      throw bad(`is not valid JSON${where(trimmed, err)}; ${NEW_KEY}`);
    }
  }
  if (Array.isArray(json)) throw bad('holds a JSON array; a key file is the one object Google Cloud downloads, {"type": "service_account", …}');
  if (typeof json !== 'object' || json === null) throw bad(`holds a JSON ${json === null ? 'null' : typeof json}, not a service-account key object`);
  const k = json as Record<string, unknown>;
  if (k['type'] === undefined && (isObject(k['installed']) || isObject(k['web']))) {
    throw bad(
      `is an OAuth client secret (a client ID for ${isObject(k['installed']) ? 'an installed' : 'a web'} application), not a service-account key; ${NEW_KEY}`,
    );
  }
  return { json: k, stat, notes };
}

/**
 * The service-account key in a credentials file's JSON object (or in the `source_credentials` of
 * an impersonation file), checked. `stat` is the file's, for the permissions warning.
 *
 * @throws UsageError naming the file
 */
export function serviceAccountKeyFromJson(
  k: Record<string, unknown>,
  file: string,
  fileNotes: KeyFileNote[],
  opts: ReadKeyOptions = {},
  stat?: fs.Stats,
): ServiceAccountKey {
  const bad = (what: string, cause?: unknown) => new UsageError(`key file ${file}: ${what}`, cause === undefined ? undefined : { cause });
  const notes = [...fileNotes];
  const type = k['type'];
  const looksLikeKey = typeof k['private_key'] === 'string' && typeof k['client_email'] === 'string';
  if (type !== 'service_account' && !(type === undefined && looksLikeKey)) throw bad(wrongType(type));

  const clientEmail = typeof k['client_email'] === 'string' ? k['client_email'].trim() : '';
  if (!clientEmail) throw bad('"client_email" is missing');
  if (!/^[^@\s]+@[^@\s]+$/.test(clientEmail)) throw bad('"client_email" is not an email address');
  if (typeof k['private_key'] !== 'string' || !k['private_key'].trim()) throw bad('"private_key" is missing');
  let privateKey: string;
  try {
    const pem = normalisePrivateKeyPem(k['private_key']);
    privateKey = pem.pem;
    if (pem.mangled && !notes.some((n) => n.code === 'mangled_newlines')) {
      notes.push(mangledNote(file, pem.mangled === 'escaped' ? 'as the two characters \\n' : 'flattened into spaces'));
    }
  } catch (err) {
    if (err instanceof PemError) throw bad(`"private_key" ${err.message}; ${NEW_KEY}`, err);
    throw err;
  }
  const tokenUri = str(k['token_uri']);
  if (tokenUri && !/^https?:\/\/[^\s]+$/i.test(tokenUri)) throw bad('"token_uri" is not an http(s) URL');

  const loose = stat ? loosePermissionsNote(file, stat, opts.credentialsDirectory) : null;
  if (loose) notes.push(loose);
  return { file, clientEmail, privateKey, privateKeyId: str(k['private_key_id']), projectId: str(k['project_id']), tokenUri, notes };
}

function str(v: unknown): string {
  return typeof v === 'string' ? v.trim() : '';
}

function isObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function mangledNote(file: string, how: string): KeyFileNote {
  return {
    code: 'mangled_newlines',
    message: `key file ${file}: the line breaks of "private_key" arrived ${how} (as after a paste through a secret store); the key was read anyway`,
    fix: `replace ${file} with the JSON key file exactly as Google Cloud downloaded it`,
  };
}

/** What a file of another credential kind is, and what to use instead. */
function wrongType(type: unknown): string {
  switch (type) {
    case 'authorized_user':
      return `holds user credentials ("type": "authorized_user", as gcloud auth application-default login writes), not a service-account key; ${NEW_KEY}`;
    case 'external_account':
    case 'external_account_authorized_user':
      return `holds a Workload Identity Federation configuration ("type": "${type}"), not a service-account key`;
    case 'impersonated_service_account':
      return 'holds impersonation credentials ("type": "impersonated_service_account"), not a service-account key';
    case undefined:
      return `has no "type" and no "private_key" and "client_email": it is not a service-account key; ${NEW_KEY}`;
    default: {
      const shown = JSON.stringify(type) ?? String(type);
      return `"type" is ${shown.length > 40 ? `${shown.slice(0, 37)}...` : shown}, expected "service_account"; ${NEW_KEY}`;
    }
  }
}

/** UTF-8 (with or without a byte-order mark) or UTF-16 with one; null for a binary file. */
function decode(bytes: Buffer): string | null {
  let text: string;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) text = bytes.subarray(3).toString('utf8');
  else if (bytes[0] === 0xff && bytes[1] === 0xfe) text = bytes.subarray(2).toString('utf16le');
  else if (bytes[0] === 0xfe && bytes[1] === 0xff) text = Buffer.from(bytes.subarray(2)).swap16().toString('utf16le');
  else text = bytes.toString('utf8');
  // a byte-order mark that survived a second conversion, as U+FEFF at the start
  text = text.replace(/^\uFEFF/, '');
  // control characters other than tab and line breaks: binary content
  // eslint-disable-next-line no-control-regex
  if (text.includes('\uFFFD') || /[\u0000-\u0008\u000e-\u001f]/.test(text)) return null;
  return text;
}

/**
 * JSON whose strings hold raw line breaks (someone "fixed" the `\n` escapes of `private_key` into
 * real ones): escaped back and parsed; undefined when that does not make it JSON either.
 */
function parseWithRawLineBreaks(text: string): unknown {
  let out = '';
  let inString = false;
  let escaped = false;
  let changed = false;
  for (const ch of text) {
    if (inString) {
      if (escaped) escaped = false;
      else if (ch === '\\') escaped = true;
      else if (ch === '"') inString = false;
      else if (ch === '\n' || ch === '\r') {
        out += ch === '\n' ? '\\n' : '';
        changed = true;
        continue;
      }
    } else if (ch === '"') {
      inString = true;
    }
    out += ch;
  }
  if (!changed) return undefined;
  try {
    return JSON.parse(out);
  } catch {
    return undefined;
  }
}

function isBase64Json(text: string): boolean {
  if (!/^[A-Za-z0-9+/=_-\s]+$/.test(text)) return false;
  try {
    const decoded = Buffer.from(text.replace(/\s+/g, ''), 'base64').toString('utf8').trim();
    return decoded.startsWith('{') && typeof JSON.parse(decoded) === 'object';
  } catch {
    return false;
  }
}

/** " (line L, column C)" from a JSON.parse error, without the snippet newer Node versions quote. */
function where(text: string, err: unknown): string {
  const message = err instanceof Error ? err.message : '';
  const lc = /line (\d+) column (\d+)/.exec(message);
  if (lc) return ` (line ${lc[1]}, column ${lc[2]})`;
  const pos = /position (\d+)/.exec(message);
  if (!pos) return '';
  const before = text.slice(0, Number(pos[1])).split('\n');
  return ` (line ${before.length}, column ${before.at(-1)!.length + 1})`;
}
