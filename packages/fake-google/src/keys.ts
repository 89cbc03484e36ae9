/**
 * Service-account keys: generating them as the Cloud console does, and reading
 * and verifying the RS256 JWT assertions signed with them.
 */
import { createPublicKey, createVerify, generateKeyPairSync, randomBytes, randomInt, type KeyObject } from 'node:crypto';
import type { ServiceAccountKeyJson } from './types.js';

export interface RegisteredKey {
  id: string | undefined;
  publicKey: KeyObject;
  revoked: boolean;
}

export interface GeneratedKey {
  privateKeyPem: string;
  publicKeyPem: string;
  privateKeyId: string;
}

/** An RSA-2048 pair with a 40-hex-digit key id, as Google issues them. */
export function generateServiceAccountKey(): GeneratedKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKeyId: randomBytes(20).toString('hex'),
  };
}

export function parsePublicKey(pem: string): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== 'rsa') throw new Error('service-account keys must be RSA');
  return key;
}

/** Google's project id from a service-account address (`name@PROJECT.iam.gserviceaccount.com`). */
export function projectOf(clientEmail: string): string {
  const m = /@([^.]+)\.iam\.gserviceaccount\.com$/.exec(clientEmail);
  return m?.[1] ?? 'fake-project';
}

function numericId(digits: number): string {
  let s = String(randomInt(1, 10));
  while (s.length < digits) s += String(randomInt(0, 10));
  return s;
}

export function keyJson(clientEmail: string, projectId: string, key: GeneratedKey, tokenUri: string): ServiceAccountKeyJson {
  return {
    type: 'service_account',
    project_id: projectId,
    private_key_id: key.privateKeyId,
    private_key: key.privateKeyPem,
    client_email: clientEmail,
    client_id: numericId(21),
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: tokenUri,
    auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
    client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(clientEmail)}`,
    universe_domain: 'googleapis.com',
  };
}

export interface ParsedJwt {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  signingInput: string;
  signature: Buffer;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function decodeJsonSegment(segment: string): Record<string, unknown> | undefined {
  if (!B64URL.test(segment)) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Splits a compact JWS; undefined when it is not three well-formed segments of JSON objects. */
export function parseJwt(token: string): ParsedJwt | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const [h, c, s] = parts as [string, string, string];
  const header = decodeJsonSegment(h);
  const claims = decodeJsonSegment(c);
  if (!header || !claims || !B64URL.test(s)) return undefined;
  return { header, claims, signingInput: `${h}.${c}`, signature: Buffer.from(s, 'base64url') };
}

export function verifyRs256(jwt: ParsedJwt, key: KeyObject): boolean {
  const verifier = createVerify('RSA-SHA256');
  verifier.update(jwt.signingInput);
  try {
    return verifier.verify(key, jwt.signature);
  } catch {
    return false;
  }
}

/** A numeric claim, given as a JSON number or a string of digits (Google accepts both). */
export function numericClaim(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && /^\d+$/.test(value)) return Number(value);
  return undefined;
}
