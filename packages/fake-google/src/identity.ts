/**
 * The fake Google's identities without a key: service accounts attached to "this machine" (the
 * metadata server), people with a refresh token (gcloud's authorized_user), workload identity
 * pools with their OIDC and AWS providers (STS), who may impersonate whom (IAM Credentials), and
 * the external token sources a federated workload reads its subject token from (an OIDC issuer, an
 * Azure-style identity endpoint, AWS instance metadata). Tests configure it through
 * `FakeGoogle.identity`; the endpoints in the neighbouring files read it.
 *
 * Every token any endpoint issues goes into the state's token table under its principal (an
 * email, or a federated `principal://…` name), so the Data API accepts it for whatever that
 * principal was granted (FakeGoogle.grant).
 */
import { createSign, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import type { Account, FakeState } from './state.js';

const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';
/** What gcloud auth application-default login consents to by default. */
const GCLOUD_DEFAULT_SCOPES = ['openid', 'https://www.googleapis.com/auth/userinfo.email', CLOUD_PLATFORM, 'https://www.googleapis.com/auth/sqlservice.login'];

export interface FakeUser {
  email: string;
  clientId: string;
  clientSecret: string;
  refreshToken: string;
  scopes: string[];
  revoked: boolean;
  /** answer invalid_rapt (a reauthentication policy) */
  reauth: boolean;
}

export interface OidcIssuer {
  url: string;
  privateKey: KeyObject;
  kid: string;
}

export interface WorkloadProvider {
  /** //iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/R */
  audience: string;
  projectNumber: string;
  pool: string;
  kind: 'oidc' | 'aws';
  /** oidc: the issuer whose signature and `iss` are accepted */
  issuer?: string;
  /** oidc: accepted `aud` values; default the provider's https:// name */
  allowedAudiences: string[];
  /** aws: the AWS account whose roles are accepted */
  awsAccountId?: string;
  /** the attribute condition: false rejects the identity */
  condition?: (claims: Record<string, unknown>) => boolean;
  disabled: boolean;
}

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** the assumed role's ARN, the federated subject */
  arn: string;
}

export interface AwsInstance extends AwsCredentials {
  region: string;
  roleName: string;
  /** IMDSv2 session token handed out by PUT /latest/api/token */
  imdsToken: string;
}

/** The registry (see the module comment). */
export class FakeIdentity {
  /**
   * The service account the metadata server answers for (null: none), the access scopes of the
   * "VM", and whether `?scopes=` is honoured (Cloud Run, App Engine) or ignored (Compute Engine,
   * GKE: the token always has the VM's access scopes).
   */
  attached: { email: string; scopes: string[]; honoursRequestedScopes: boolean } | null = null;
  /** metadata tokens cached per account and scopes, as the real server caches them */
  readonly metadataCache = new Map<string, { token: string; expiresAt: number }>();
  readonly users = new Map<string, FakeUser>();
  readonly issuers = new Map<string, OidcIssuer>();
  readonly providers = new Map<string, WorkloadProvider>();
  /** access key id -> AWS credentials STS accepts */
  readonly aws = new Map<string, AwsCredentials>();
  awsInstance: AwsInstance | null = null;
  /** who may call the Azure-style identity endpoint: it answers a token of this issuer and subject */
  azureIdentity: { issuer: string; subject: string } | null = null;
  /** target service account -> principals (or principal sets) with the Token Creator role on it */
  readonly tokenCreators = new Map<string, Set<string>>();
  /** service accounts that exist without a key (impersonation targets, attached accounts) */
  readonly serviceAccounts = new Set<string>();

  constructor(private readonly state: FakeState) {}

  /** A service account that exists (for impersonation) without a key of its own. */
  addServiceAccount(email: string): void {
    this.serviceAccounts.add(email);
    ensurePrincipal(this.state, email, projectOfEmail(email));
  }

  /** The metadata server answers for this service account from now on (null: none attached). */
  attachServiceAccount(email: string | null, opts: { scopes?: string[]; honoursRequestedScopes?: boolean } = {}): void {
    if (email === null) {
      this.attached = null;
      return;
    }
    this.addServiceAccount(email);
    this.attached = { email, scopes: opts.scopes ?? [CLOUD_PLATFORM], honoursRequestedScopes: opts.honoursRequestedScopes ?? true };
  }

  /**
   * A person with a refresh token; returns their gcloud ADC file (`authorized_user`), with
   * `token_uri` pointing at `tokenUri` (the fake's token endpoint).
   */
  addUser(email: string, tokenUri: string, opts: { scopes?: string[] } = {}): Record<string, string> {
    const user: FakeUser = {
      email,
      clientId: `${randomDigits(12)}-${randomBytes(16).toString('hex')}.apps.googleusercontent.com`,
      clientSecret: `d-FL95Q19q7MQmFpd7hHD0Ty${randomBytes(2).toString('hex')}`,
      refreshToken: `1//0${randomBytes(48).toString('base64url')}`,
      scopes: opts.scopes ?? GCLOUD_DEFAULT_SCOPES,
      revoked: false,
      reauth: false,
    };
    this.users.set(user.refreshToken, user);
    ensurePrincipal(this.state, email, 'user-project');
    return {
      account: '',
      client_id: user.clientId,
      client_secret: user.clientSecret,
      refresh_token: user.refreshToken,
      type: 'authorized_user',
      universe_domain: 'googleapis.com',
      token_uri: tokenUri,
    };
  }

  /** The person's refresh tokens stop working (they signed out, or an admin revoked them). */
  revokeUser(email: string): void {
    for (const u of this.users.values()) if (u.email === email) u.revoked = true;
  }

  /** An OIDC issuer (GitHub Actions, Kubernetes, an on-premises IdP) whose tokens the tests mint. */
  addOidcIssuer(url: string): void {
    if (this.issuers.has(url)) return;
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.issuers.set(url, { url, privateKey, kid: randomBytes(8).toString('hex') });
  }

  /** A signed OIDC token of a registered issuer, as the workload's platform would hand it out. */
  oidcToken(o: { issuer: string; subject: string; audience: string; lifetimeSeconds?: number; claims?: Record<string, unknown> }): string {
    const issuer = this.issuers.get(o.issuer);
    if (!issuer) throw new Error(`unknown issuer ${o.issuer}: addOidcIssuer first`);
    const now = Math.floor(this.state.now() / 1000);
    return signJwt(issuer, { iss: o.issuer, sub: o.subject, aud: o.audience, iat: now, exp: now + (o.lifetimeSeconds ?? 3600), ...o.claims });
  }

  /**
   * A workload identity pool provider; returns its STS audience
   * (`//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/R`).
   */
  addWorkloadProvider(o: {
    projectNumber: string;
    pool: string;
    provider: string;
    issuer?: string;
    awsAccountId?: string;
    allowedAudiences?: string[];
    condition?: (claims: Record<string, unknown>) => boolean;
  }): string {
    const path = `projects/${o.projectNumber}/locations/global/workloadIdentityPools/${o.pool}/providers/${o.provider}`;
    const audience = `//iam.googleapis.com/${path}`;
    if (o.issuer) this.addOidcIssuer(o.issuer);
    this.providers.set(audience, {
      audience,
      projectNumber: o.projectNumber,
      pool: o.pool,
      kind: o.awsAccountId ? 'aws' : 'oidc',
      ...(o.issuer ? { issuer: o.issuer } : {}),
      ...(o.awsAccountId ? { awsAccountId: o.awsAccountId } : {}),
      allowedAudiences: o.allowedAudiences ?? [`https://iam.googleapis.com/${path}`],
      ...(o.condition ? { condition: o.condition } : {}),
      disabled: false,
    });
    return audience;
  }

  /** The federated principal STS issues tokens for, given a provider's audience and the subject. */
  federatedPrincipal(audience: string, subject: string): string {
    const p = this.providers.get(audience);
    if (!p) throw new Error(`unknown provider ${audience}`);
    return `principal://iam.googleapis.com/projects/${p.projectNumber}/locations/global/workloadIdentityPools/${p.pool}/subject/${subject}`;
  }

  /** AWS credentials (a role's session) that STS accepts in signed GetCallerIdentity requests. */
  addAwsCredentials(c: AwsCredentials): void {
    this.aws.set(c.accessKeyId, c);
  }

  /** Serves these credentials at the fake's AWS instance metadata paths (IMDSv2). */
  setAwsInstance(c: Omit<AwsInstance, 'imdsToken'>): void {
    this.addAwsCredentials(c);
    this.awsInstance = { ...c, imdsToken: randomBytes(24).toString('base64url') };
  }

  /** `caller` (an email, `principal://…`, or a `principalSet://…/*`) gets the Token Creator role on `target`. */
  grantTokenCreator(caller: string, target: string): void {
    this.addServiceAccount(target);
    let set = this.tokenCreators.get(target);
    if (!set) this.tokenCreators.set(target, (set = new Set()));
    set.add(caller);
  }

  revokeTokenCreator(caller: string, target: string): void {
    this.tokenCreators.get(target)?.delete(caller);
  }

  /** Whether `principal` may mint tokens for `target` (an exact grant, or a principal set of its pool). */
  mayImpersonate(principal: string, target: string): boolean {
    const grants = this.tokenCreators.get(target);
    if (!grants) return false;
    for (const g of grants) {
      if (g === principal) return true;
      const set = /^principalSet:\/\/iam\.googleapis\.com\/(.+)\/\*$/.exec(g);
      if (set && principal.startsWith(`principal://iam.googleapis.com/${set[1]}/subject/`)) return true;
    }
    return false;
  }
}

/** Makes sure the Data API knows a principal as an account (FakeGoogle.grant then gives it access). */
export function ensurePrincipal(state: FakeState, principal: string, projectId: string): Account {
  let account = state.accounts.get(principal);
  if (!account) {
    account = { clientEmail: principal, clientId: randomDigits(21), projectId, keys: [] };
    state.accounts.set(principal, account);
  }
  return account;
}

/** Issues an access token for `principal` and records it; returns the token. */
export function issueToken(state: FakeState, principal: string, scopes: string[], lifetimeSeconds: number, prefix = 'ya29.c.'): string {
  const token = `${prefix}${randomBytes(96).toString('base64url')}`;
  const now = state.now();
  state.tokens.set(token, { account: principal, scopes, issuedAt: now, expiresAt: now + lifetimeSeconds * 1000 });
  return token;
}

export function signJwt(key: { privateKey: KeyObject; kid: string }, claims: Record<string, unknown>): string {
  const enc = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const header = enc({ alg: 'RS256', kid: key.kid, typ: 'JWT' });
  const body = enc(claims);
  const signer = createSign('RSA-SHA256');
  signer.update(`${header}.${body}`);
  return `${header}.${body}.${signer.sign(key.privateKey).toString('base64url')}`;
}

function projectOfEmail(email: string): string {
  return /@([^.]+)\.iam\.gserviceaccount\.com$/.exec(email)?.[1] ?? 'fake-project';
}

function randomDigits(n: number): string {
  let s = String(1 + (randomBytes(1)[0]! % 9));
  while (s.length < n) s += String(randomBytes(1)[0]! % 10);
  return s;
}
