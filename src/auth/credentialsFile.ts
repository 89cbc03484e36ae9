/**
 * A Google credentials file of any kind Google's client libraries take, read and checked before
 * it is used, so that a malformed one stops the start with one line (exit 2) instead of failing
 * every exchange:
 *
 * - `service_account`: a key (serviceAccountKey.ts);
 * - `external_account`: Workload Identity Federation, as `gcloud iam workload-identity-pools
 *   create-cred-config` writes it: an STS audience, where the subject token comes from (a file, a
 *   URL, an executable, AWS, an X.509 certificate), and optionally a service account to impersonate;
 * - `impersonated_service_account`: other credentials (`source_credentials`) that mint tokens for
 *   a service account, as `gcloud auth application-default login --impersonate-service-account` writes;
 * - `authorized_user`: a person's refresh token, as `gcloud auth application-default login`
 *   writes. It works, with a warning: the collector then acts as that person.
 *
 * URLs in the file (`token_url`, `token_uri`, `service_account_impersonation_url`) are the ones
 * used: they win over the `google.*Url` settings. No message quotes a secret of the file.
 */
import fs from 'node:fs';
import { ExternalAccountClient } from 'google-auth-library';
import { UsageError } from '../errors.js';
import { redactUrl } from '../log.js';
import { loosePermissionsNote, type KeyFileNote } from './keyFileNotes.js';
import { readCredentialsJson, serviceAccountKeyFromJson, type ReadKeyOptions, type ServiceAccountKey } from './serviceAccountKey.js';

/** Google's token endpoint, for files that name none. */
const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
/** Google's Security Token Service, for external_account files without token_url. */
const GOOGLE_STS_URL = 'https://sts.googleapis.com/v1/token';

interface FileBase {
  file: string;
  /** warnings about the file: each logged once and shown as a `warn` row by check */
  notes: KeyFileNote[];
}

interface ServiceAccountFile extends FileBase {
  type: 'service_account';
  key: ServiceAccountKey;
}

export interface ExternalAccountFile extends FileBase {
  type: 'external_account';
  /** the file's JSON, as google-auth-library's ExternalAccountClient takes it */
  json: Record<string, unknown>;
  /** the STS audience: the workload identity pool provider's full resource name */
  audience: string;
  /** where the subject token is exchanged (the file's token_url, else Google's STS) */
  tokenUrl: string;
  /** the file's service_account_impersonation_url, '' when it has none */
  impersonationUrl: string;
  /** the service account that URL names, '' when none */
  impersonatedEmail: string;
  /** where the subject token comes from, for messages: `file /run/…`, `URL …`, `executable …`, `AWS`, `X.509 certificate` */
  subjectSource: string;
}

export interface AuthorizedUserFile extends FileBase {
  type: 'authorized_user';
  clientId: string;
  clientSecret: string;
  refreshToken: string;
  /** the file's token_uri (as Google's Python library reads it), else Google's token endpoint */
  tokenUri: string;
  /** the file's `account` (gcloud writes it, often empty) */
  account: string;
}

interface ImpersonationFile extends FileBase {
  type: 'impersonated_service_account';
  /** the service account tokens are minted for */
  targetEmail: string;
  /** the IAM Credentials root the URL names, e.g. https://iamcredentials.googleapis.com */
  endpoint: string;
  impersonationUrl: string;
  delegates: string[];
  /** the credentials that call generateAccessToken */
  source: ServiceAccountFile | ExternalAccountFile | AuthorizedUserFile;
}

export type CredentialsFile = ServiceAccountFile | ExternalAccountFile | AuthorizedUserFile | ImpersonationFile;

const IMPERSONATION_URL_RE = /^(https?:\/\/[^\s]+?)\/v1\/projects\/-\/serviceAccounts\/([^/:\s]+):generateAccessToken$/;

/**
 * Reads and checks a credentials file of any kind.
 *
 * @throws UsageError, one line naming the file, for a file that is not usable credentials
 */
export function readCredentialsFile(file: string, opts: ReadKeyOptions = {}): CredentialsFile {
  const read = readCredentialsJson(file);
  return fromJson(read.json, file, read.notes, opts, read.stat, false);
}

function fromJson(json: Record<string, unknown>, file: string, notes: KeyFileNote[], opts: ReadKeyOptions, stat: fs.Stats, nested: boolean): CredentialsFile {
  const bad = (what: string) => new UsageError(`credentials file ${file}: ${what}`);
  switch (json['type']) {
    case 'external_account':
      return externalAccount(json, file, notes);
    case 'authorized_user':
      return authorizedUser(json, file, notes, opts, stat);
    case 'impersonated_service_account': {
      if (nested) throw bad('"source_credentials" is itself an impersonation; name the credentials that call generateAccessToken there');
      return impersonation(json, file, notes, opts, stat);
    }
    case 'external_account_authorized_user':
      throw bad(
        'holds a person\'s Workforce Identity Federation sign-in ("type": "external_account_authorized_user"), which ga-collector does not take; use a service account: attached, federated (external_account) or impersonated (google.impersonate)',
      );
    default: {
      // a key, or something that is not credentials: serviceAccountKey.ts says which
      const key = serviceAccountKeyFromJson(json, file, notes, opts, stat);
      return { type: 'service_account', file, key, notes: key.notes };
    }
  }
}

function externalAccount(json: Record<string, unknown>, file: string, notes: KeyFileNote[]): ExternalAccountFile {
  const bad = (what: string) => new UsageError(`credentials file ${file}: ${what}`);
  const audience = str(json['audience']);
  if (!audience)
    throw bad(
      '"audience" is missing (the workload identity pool provider, //iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER)',
    );
  if (!str(json['subject_token_type'])) throw bad('"subject_token_type" is missing');
  const source = json['credential_source'];
  if (typeof source !== 'object' || source === null || Array.isArray(source)) {
    throw bad(
      '"credential_source" is missing: where the subject token comes from (file, url, executable or environment_id); recreate the file with gcloud iam workload-identity-pools create-cred-config',
    );
  }
  const tokenUrl = str(json['token_url']) || GOOGLE_STS_URL;
  if (!isHttpUrl(tokenUrl)) throw bad('"token_url" is not an http(s) URL');
  const impersonationUrl = str(json['service_account_impersonation_url']);
  let impersonatedEmail = '';
  if (impersonationUrl) {
    const m = IMPERSONATION_URL_RE.exec(impersonationUrl);
    if (!m)
      throw bad('"service_account_impersonation_url" is not https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/EMAIL:generateAccessToken');
    impersonatedEmail = decodeURIComponent(m[2]!);
  }
  const cs = source as Record<string, unknown>;
  const executable = cs['executable'] as Record<string, unknown> | undefined;
  if (executable && process.env['GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES'] !== '1') {
    // google-auth-library reads this variable itself, as every Google client library does
    throw bad(
      "its subject token comes from an executable, which runs only when the environment says GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1; set it for the collector's process",
    );
  }
  try {
    // the library's own checks of the source (one of file/url/executable, a valid AWS version, an executable timeout in range)
    ExternalAccountClient.fromJSON(json as unknown as Parameters<typeof ExternalAccountClient.fromJSON>[0]);
  } catch (err) {
    throw bad(`${firstLine(err)}; recreate the file with gcloud iam workload-identity-pools create-cred-config`);
  }
  const subjectSource = executable
    ? `executable ${
        String(executable['command'] ?? '')
          .trim()
          .split(/\s+/)[0]
      }`
    : typeof cs['environment_id'] === 'string'
      ? 'AWS'
      : typeof cs['file'] === 'string'
        ? `file ${cs['file']}`
        : typeof cs['url'] === 'string'
          ? `URL ${redactUrl(cs['url'])}`
          : cs['certificate']
            ? 'X.509 certificate'
            : 'credential_source';
  return { type: 'external_account', file, json, audience, tokenUrl, impersonationUrl, impersonatedEmail, subjectSource, notes };
}

function authorizedUser(json: Record<string, unknown>, file: string, fileNotes: KeyFileNote[], opts: ReadKeyOptions, stat: fs.Stats): AuthorizedUserFile {
  const bad = (what: string) => new UsageError(`credentials file ${file}: ${what}`);
  for (const field of ['client_id', 'client_secret', 'refresh_token']) {
    if (!str(json[field])) throw bad(`"${field}" is missing; sign in again with gcloud auth application-default login`);
  }
  const tokenUri = str(json['token_uri']) || GOOGLE_TOKEN_URL;
  if (!isHttpUrl(tokenUri)) throw bad('"token_uri" is not an http(s) URL');
  const notes = [...fileNotes];
  notes.push({
    code: 'user_credentials',
    message: `credentials file ${file} holds a person's credentials ("type": "authorized_user", from gcloud auth application-default login): the collector acts as that person, and stops when they lose access to the property, sign out or leave`,
    fix: 'fine for a trial on a laptop; on a server use a service account: attached to the machine (GKE, Compute Engine, Cloud Run), federated (gcloud iam workload-identity-pools create-cred-config), or impersonated with google.impersonate',
  });
  const loose = loosePermissionsNote(file, stat, opts.credentialsDirectory, 'that person');
  if (loose) notes.push(loose);
  return {
    type: 'authorized_user',
    file,
    clientId: str(json['client_id']),
    clientSecret: str(json['client_secret']),
    refreshToken: str(json['refresh_token']),
    tokenUri,
    account: str(json['account']),
    notes,
  };
}

function impersonation(json: Record<string, unknown>, file: string, notes: KeyFileNote[], opts: ReadKeyOptions, stat: fs.Stats): ImpersonationFile {
  const bad = (what: string) => new UsageError(`credentials file ${file}: ${what}`);
  const impersonationUrl = str(json['service_account_impersonation_url']);
  const m = IMPERSONATION_URL_RE.exec(impersonationUrl);
  if (!m)
    throw bad(
      '"service_account_impersonation_url" is missing or not https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/EMAIL:generateAccessToken',
    );
  const sourceJson = json['source_credentials'];
  if (typeof sourceJson !== 'object' || sourceJson === null || Array.isArray(sourceJson)) {
    throw bad('"source_credentials" is missing: the credentials that call generateAccessToken');
  }
  const delegates = json['delegates'] ?? [];
  if (!Array.isArray(delegates) || !delegates.every((d) => typeof d === 'string')) throw bad('"delegates" must be a list of service account emails');
  const source = fromJson(sourceJson as Record<string, unknown>, file, notes, opts, stat, true) as ImpersonationFile['source'];
  return {
    type: 'impersonated_service_account',
    file,
    targetEmail: decodeURIComponent(m[2]!),
    endpoint: m[1]!,
    impersonationUrl,
    delegates: delegates as string[],
    source,
    notes: source.type === 'service_account' ? source.key.notes : source.notes,
  };
}

function str(v: unknown): string {
  return typeof v === 'string' ? v.trim() : '';
}

function isHttpUrl(v: string): boolean {
  return /^https?:\/\/[^\s]+$/i.test(v);
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.trim();
}
