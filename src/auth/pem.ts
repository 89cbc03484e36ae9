/**
 * A service account's `private_key` as it arrives after people have handled it: copied through a
 * secret store, an environment variable or a Windows editor. The key's bytes survive those trips;
 * only its layout does not. So the PEM block is rebuilt from its label and base64 body, and only a
 * key whose body is damaged, or that is not an unencrypted RSA private key, is refused.
 */
import crypto from 'node:crypto';
import { PemError } from '../errors.js';

export interface NormalisedPem {
  /** the key as `-----BEGIN …-----\n<base64, 64 a line>\n-----END …-----\n` */
  pem: string;
  /** how its line breaks arrived, when not as line breaks: worth a warning */
  mangled: 'escaped' | 'spaces' | null;
}

const BLOCK_RE = /^-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END ([A-Z0-9 ]+)-----$/;

/**
 * Rebuilds a PEM private key from what a key file's `private_key` holds: CRLF line ends,
 * surrounding whitespace, line breaks escaped as `\n` (once or twice) or flattened into spaces.
 *
 * @throws PemError naming what is wrong (no BEGIN line, encrypted, a public key, not RSA, damaged)
 */
export function normalisePrivateKeyPem(raw: string): NormalisedPem {
  let text = raw.trim();
  let mangled: NormalisedPem['mangled'] = null;
  // `\n` as two characters (or `\\n` after a second round of escaping): base64 has no backslash,
  // so inside a PEM block a backslash can only be a line break that was escaped on the way
  if (/\\+[rn]/.test(text)) {
    text = text.replace(/(?:\\+r)?\\+n/g, '\n').replace(/\\+r/g, '\n');
    mangled = 'escaped';
  }
  text = text.replace(/\r\n?/g, '\n').trim();
  const m = BLOCK_RE.exec(text);
  if (!m) {
    if (/-----BEGIN [A-Z0-9 ]+-----/.test(text)) throw new PemError('is not a complete PEM block (its -----END line is missing or damaged)');
    if (/^[A-Za-z0-9+/=\s]+$/.test(text)) throw new PemError('lacks its -----BEGIN PRIVATE KEY----- and -----END PRIVATE KEY----- lines');
    throw new PemError('is not a PEM private key');
  }
  const label = m[1]!;
  const body = m[2]!;
  if (m[3] !== label) throw new PemError(`is damaged: it begins as ${label} and ends as ${m[3]}`);
  if (/ENCRYPTED/.test(label) || /Proc-Type:/.test(body)) {
    throw new PemError('is encrypted with a passphrase; the JSON keys Google Cloud creates never are');
  }
  if (/PUBLIC KEY|CERTIFICATE/.test(label)) throw new PemError(`holds a ${label.includes('CERTIFICATE') ? 'certificate' : 'public key'}, not the private key`);
  if (label !== 'PRIVATE KEY' && label !== 'RSA PRIVATE KEY') throw new PemError(`holds a PEM ${label}, not an RSA private key`);
  // a body flattened onto one line keeps spaces where its line breaks were
  if (/[^\S\n]/.test(body.trim())) mangled ??= 'spaces';
  const base64 = body.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) throw new PemError('is damaged: its body is not base64');
  const lines = base64.match(/.{1,64}/g) ?? [];
  const pem = `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(pem);
  } catch {
    throw new PemError('is not a valid RSA private key in PEM form (damaged or cut short)');
  }
  if (key.asymmetricKeyType !== 'rsa') throw new PemError(`is an ${String(key.asymmetricKeyType).toUpperCase()} key; Google service-account keys are RSA`);
  return { pem, mangled };
}
