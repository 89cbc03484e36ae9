/**
 * Reading a service-account JSON key as Google's console downloads it. Problems become one-line
 * UsageErrors that name the file and never quote the key.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { UsageError } from '../errors.js';

export interface ServiceAccountKey {
  file: string;
  clientEmail: string;
  privateKey: string;
  privateKeyId: string;
  projectId: string;
  tokenUri: string;
}

export function readServiceAccountKey(file: string): ServiceAccountKey {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`key file ${file}: cannot be read (${code ?? 'error'})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UsageError(`key file ${file}: is not JSON; download a JSON key for the service account (IAM > Service accounts > Keys > Add key > JSON)`);
  }
  if (typeof json !== 'object' || json === null) throw new UsageError(`key file ${file}: is not a service-account key object`);
  const k = json as Record<string, unknown>;
  if (k['type'] !== 'service_account') {
    throw new UsageError(
      `key file ${file}: "type" is ${JSON.stringify(k['type'] ?? null)}, expected "service_account" (user credentials and external accounts are not supported)`,
    );
  }
  for (const field of ['client_email', 'private_key']) {
    if (typeof k[field] !== 'string' || !(k[field] as string).length) throw new UsageError(`key file ${file}: "${field}" is missing`);
  }
  const privateKey = k['private_key'] as string;
  try {
    const key = crypto.createPrivateKey(privateKey);
    if (key.asymmetricKeyType !== 'rsa') throw new Error('not RSA');
  } catch {
    throw new UsageError(`key file ${file}: "private_key" is not a valid RSA private key in PEM form`);
  }
  return {
    file,
    clientEmail: k['client_email'] as string,
    privateKey,
    privateKeyId: typeof k['private_key_id'] === 'string' ? k['private_key_id'] : '',
    projectId: typeof k['project_id'] === 'string' ? k['project_id'] : '',
    tokenUri: typeof k['token_uri'] === 'string' ? k['token_uri'] : '',
  };
}
