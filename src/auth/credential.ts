/**
 * A principal's credentials as one chain that mints API tokens: what `google.credentials` (or a
 * property's `credentials`) names, else Application Default Credentials, then the impersonation
 * the file itself asks for (`impersonated_service_account`), then `google.impersonate` on top of
 * whatever came before. Each link but the last mints with `cloud-platform`, the scope
 * generateAccessToken wants of its caller; the last mints with the API scopes (scopes.ts).
 *
 * Application Default Credentials, in Google's order
 * (https://cloud.google.com/docs/authentication/application-default-credentials):
 * GOOGLE_APPLICATION_CREDENTIALS (config.ts has already made it google.credentials), gcloud's
 * file (`$CLOUDSDK_CONFIG/application_default_credentials.json`, else
 * `~/.config/gcloud/…`, `%APPDATA%\gcloud\…` on Windows), then the metadata server.
 *
 * Building reads the files (a malformed one throws UsageError); the token source builds again
 * before every exchange, so a file replaced in place (a rotated key, a new sign-in) is picked up.
 */
import fs from 'node:fs';
import path from 'node:path';
import { redactUrl } from '../log.js';
import { withDeadline } from '../net/deadline.js';
import { exchangeToken } from './exchange.js';
import { readCredentialsFile, type CredentialsFile } from './credentialsFile.js';
import { federatedToken, principalSetOf } from './federatedToken.js';
import { impersonate } from './impersonation.js';
import type { KeyFileNote } from './keyFileNotes.js';
import { metadataServerOf, metadataToken } from './metadataServer.js';
import type { MintedToken } from './mintedToken.js';
import { API_SCOPES, CLOUD_PLATFORM_SCOPE } from './scopes.js';
import { userToken } from './userToken.js';

/** What mints a principal's tokens, named for people: check's first column, the status page. */
export type CredentialKind = 'key' | 'federated' | 'user' | 'attached' | 'impersonated';

export interface PrincipalSpec {
  /** a credentials file; '' for Application Default Credentials */
  credentials: string;
  /** a service account email to impersonate on top; '' for none */
  impersonate: string;
}

export interface CredentialContext {
  /** google.tokenUrl: key files only; '' for the key's token_uri */
  tokenUrl: string;
  /** google.iamCredentialsRootUrl */
  iamCredentialsRootUrl: string;
  /** where Application Default Credentials look (HOME, CLOUDSDK_CONFIG, GCE_METADATA_HOST, ...) */
  env: NodeJS.ProcessEnv;
  credentialsDirectory?: string | undefined;
}

/** A principal's credentials, built from its spec (see the module comment). */
export interface Credential {
  kind: CredentialKind;
  /** the principal: an email, or a federated pool's provider; '' until an exchange tells it (the metadata server's) */
  account: string;
  /** `account` names one principal (an email); a pool's provider stands for all its workloads */
  unique: boolean;
  /** the credentials file ('' for the metadata server) */
  file: string;
  /** a key's id, '' for other kinds */
  keyId: string;
  /** where tokens come from, one line for check and the logs, without secrets */
  origin: string;
  /** the URL of the last step, for messages */
  endpoint: string;
  /** the file's warnings */
  notes: KeyFileNote[];
  /**
   * One exchange through the whole chain, with the API scopes, within `timeoutMs` held by our own
   * timer (net/deadline.ts): DeadlineExceededError when it runs out, AbortedError when `signal` aborts.
   */
  mint(signal: AbortSignal, timeoutMs: number): Promise<MintedToken>;
}

/** One step of a chain: what a Credential says of itself, and how to mint with any scopes. */
interface Link extends Omit<Credential, 'mint'> {
  /** the principal as an IAM member, for a Token Creator grant (given what the last exchange learned) */
  member(learned: string): string;
  /** `timeoutMs` is for a link that holds its own deadline (a key's exchange names its key id in the message) */
  mint(scopes: readonly string[], signal: AbortSignal, timeoutMs?: number): Promise<MintedToken>;
}

/** Default IAM Credentials root. */
const DEFAULT_IAM_CREDENTIALS_ROOT_URL = 'https://iamcredentials.googleapis.com/';

/**
 * Builds the chain for a spec. Throws UsageError for a malformed credentials file.
 */
export function buildCredential(spec: PrincipalSpec, ctx: CredentialContext): Credential {
  let link = spec.credentials ? fileLink(spec.credentials, ctx, '') : defaultLink(ctx);
  if (spec.impersonate) {
    link = impersonationLink(link, spec.impersonate, ctx.iamCredentialsRootUrl || DEFAULT_IAM_CREDENTIALS_ROOT_URL, [], 'google.impersonate');
  }
  const top = link;
  return {
    ...top,
    mint: (signal, timeoutMs) =>
      top.kind === 'key'
        ? top.mint(API_SCOPES, signal, timeoutMs)
        : withDeadline(`token exchange for ${top.account || top.kind} at ${redactUrl(top.endpoint)}`, timeoutMs, signal, (s) => top.mint(API_SCOPES, s)),
  };
}

/** gcloud's Application Default Credentials file for this environment. */
function gcloudAdcFile(env: NodeJS.ProcessEnv): string {
  const dir = env['CLOUDSDK_CONFIG']
    ? env['CLOUDSDK_CONFIG']
    : process.platform === 'win32' && env['APPDATA']
      ? path.join(env['APPDATA'], 'gcloud')
      : path.join(env['HOME'] || '/nonexistent', '.config', 'gcloud');
  return path.join(dir, 'application_default_credentials.json');
}

function defaultLink(ctx: CredentialContext): Link {
  const fromEnv = ctx.env['GOOGLE_APPLICATION_CREDENTIALS'];
  if (fromEnv) return fileLink(fromEnv, ctx, ' (GOOGLE_APPLICATION_CREDENTIALS)');
  const gcloud = gcloudAdcFile(ctx.env);
  if (fs.existsSync(gcloud)) return fileLink(gcloud, ctx, " (gcloud's Application Default Credentials)");
  const server = metadataServerOf(ctx.env);
  const lookedAt = ['google.credentials and GOOGLE_APPLICATION_CREDENTIALS (unset)', `${gcloud} (absent)`];
  let email = '';
  return {
    kind: 'attached',
    account: '',
    unique: true,
    file: '',
    keyId: '',
    origin: `the service account attached to this machine, pod or service; token from the metadata server ${server.base}`,
    endpoint: server.base,
    notes: [],
    member: (learned) => `serviceAccount:${learned || email || 'ATTACHED_SERVICE_ACCOUNT'}`,
    async mint(scopes, signal) {
      const t = await metadataToken(server, { scopes, signal, lookedAt, ...(email ? { email } : {}) });
      email = t.account ?? email;
      return t;
    },
  };
}

function fileLink(file: string, ctx: CredentialContext, via: string): Link {
  const f = readCredentialsFile(file, { credentialsDirectory: ctx.credentialsDirectory });
  return linkOf(f, ctx, via);
}

function linkOf(f: CredentialsFile, ctx: CredentialContext, via: string): Link {
  switch (f.type) {
    case 'service_account': {
      const key = f.key;
      const tokenUrl = ctx.tokenUrl || key.tokenUri || 'https://oauth2.googleapis.com/token';
      return {
        kind: 'key',
        account: key.clientEmail,
        unique: true,
        file: f.file,
        keyId: key.privateKeyId,
        origin: `key ${key.privateKeyId || '(no key id)'} from ${f.file}${via}; token from ${redactUrl(tokenUrl)}`,
        endpoint: tokenUrl,
        notes: f.notes,
        member: () => `serviceAccount:${key.clientEmail}`,
        mint: (scopes, signal, timeoutMs) => exchangeToken(key, { tokenUrl, scopes, signal, ...(timeoutMs !== undefined ? { timeoutMs } : {}) }),
      };
    }
    case 'external_account': {
      const then = f.impersonationUrl ? `, then impersonating ${f.impersonatedEmail} at ${redactUrl(f.impersonationUrl)}` : '';
      return {
        kind: 'federated',
        // Google Analytics grants access to emails: without impersonation the principal is the pool's provider
        account: f.impersonatedEmail || f.audience,
        unique: Boolean(f.impersonatedEmail),
        file: f.file,
        keyId: '',
        origin: `Workload Identity Federation from ${f.file}${via}: subject token from ${f.subjectSource}, exchanged at STS ${redactUrl(f.tokenUrl)} for ${f.audience}${then}`,
        endpoint: f.impersonationUrl || f.tokenUrl,
        notes: f.notes,
        member: () => (f.impersonatedEmail ? `serviceAccount:${f.impersonatedEmail}` : principalSetOf(f.audience)),
        mint: (scopes, signal) => federatedToken(f, scopes, signal),
      };
    }
    case 'authorized_user': {
      let email = f.account;
      return {
        kind: 'user',
        account: f.account,
        unique: true,
        file: f.file,
        keyId: '',
        origin: `a person's credentials from ${f.file}${via}; token from ${redactUrl(f.tokenUri)}`,
        endpoint: f.tokenUri,
        notes: f.notes,
        member: (learned) => `user:${learned || email || 'YOUR_EMAIL'}`,
        async mint(_scopes, signal) {
          // a refresh token carries the scopes consented at sign-in, whatever is asked
          const t = await userToken(f, signal);
          email = t.account ?? email;
          return t;
        },
      };
    }
    case 'impersonated_service_account':
      return impersonationLink(linkOf(f.source, ctx, via), f.targetEmail, f.endpoint, f.delegates, f.file);
  }
}

function impersonationLink(base: Link, target: string, endpoint: string, delegates: string[], by: string): Link {
  return {
    kind: 'impersonated',
    account: target,
    unique: true,
    file: base.file,
    keyId: base.keyId,
    origin: `${base.origin}; then impersonating ${target} at ${redactUrl(endpoint)} (${by})`,
    endpoint,
    notes: base.notes,
    member: () => `serviceAccount:${target}`,
    async mint(scopes, signal) {
      const caller = await base.mint([CLOUD_PLATFORM_SCOPE], signal);
      const who = caller.account || base.account;
      return impersonate({
        callerToken: caller.accessToken,
        caller: who || 'the base credentials',
        member: base.member(who),
        target,
        endpoint,
        delegates,
        scopes,
        signal,
      });
    },
  };
}
