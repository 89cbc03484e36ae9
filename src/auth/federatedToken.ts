/**
 * Workload Identity Federation (`external_account` files) through google-auth-library's
 * ExternalAccountClient, which knows every subject-token source: a file (Kubernetes, Azure AKS), a
 * URL (Azure's instance metadata, a sidecar), an executable, AWS (a signed GetCallerIdentity
 * request, from the environment or EC2 metadata) and X.509 certificates. How it is bent:
 *
 * - A fresh client per exchange, and `refreshAccessTokenAsync()` called directly: that is exactly
 *   one STS exchange (plus the file's service-account impersonation, if it has one) and returns
 *   the token with its expiry. The client's own lazy refresh and cache are never used.
 * - Its transport is ours (authHttp.ts): the client's `transporter` option, which it also hands to
 *   URL and AWS subject-token suppliers. Its STS helper makes a transport of its own, so ours is
 *   put there too; an X.509 source replaces both mid-exchange (for its mTLS agent), so ours is
 *   bound to the replacements as well.
 * - The URLs are the file's (token_url, service_account_impersonation_url): they win over
 *   google.* settings, as Google's libraries do.
 * - Which step failed (reading the subject token, STS, impersonation) is noted as it happens, so a
 *   refusal names what to fix: the audience, the subject token and where it came from, or the
 *   Token Creator role.
 */
import { ExternalAccountClient, type BaseExternalAccountClient, type gaxios } from 'google-auth-library';
import { AbortedError, PermanentError, RetryableError } from '../errors.js';
import { redactUrl } from '../log.js';
import { authTransport, bindToExchange, httpFailure, isRetryableStatus, networkFailure, oauthErrorOf, sanitize } from './authHttp.js';
import type { ExternalAccountFile } from './credentialsFile.js';
import { impersonationError } from './impersonation.js';
import type { MintedToken } from './mintedToken.js';
import { parseGeneratedAccessToken, parseTokenResponse } from './tokenResponse.js';

type Step = 'subject' | 'sts' | 'impersonation';

/** The protected and private parts of the client this module reaches into (google-auth-library 10.x). */
interface ClientInternals {
  transporter: gaxios.Gaxios;
  stsCredential: { transporter: gaxios.Gaxios; exchangeToken: (...args: unknown[]) => Promise<unknown> };
  retrieveSubjectToken(): Promise<string>;
  getImpersonatedAccessToken(token: string): Promise<unknown>;
  refreshAccessTokenAsync(): Promise<unknown>;
}

class StepError extends Error {
  constructor(
    readonly step: Step,
    readonly original: unknown,
  ) {
    super(original instanceof Error ? original.message : String(original));
  }
}

/**
 * One federated exchange for `scopes`.
 *
 * @throws PermanentError naming the audience, the subject token's source or both principals of a
 *   refused impersonation; RetryableError for 5xx, 429, network failures and a subject token that
 *   could not be read (its source may come back); AbortedError when `signal` aborts
 */
export async function federatedToken(f: ExternalAccountFile, scopes: readonly string[], signal: AbortSignal): Promise<MintedToken> {
  const issuedAt = Date.now();
  const { transporter } = authTransport(signal);
  const client = ExternalAccountClient.fromJSON({ ...f.json, scopes: [...scopes], transporter } as unknown as Parameters<
    typeof ExternalAccountClient.fromJSON
  >[0]) as BaseExternalAccountClient | null;
  if (!client) throw new PermanentError(`credentials file ${f.file} is not an external_account file`, 'bad_credentials');
  const c = client as unknown as ClientInternals;
  let step: Step = 'subject';
  c.stsCredential.transporter = transporter;
  const seen = new WeakSet<object>([transporter]);
  /** ours on whatever transports and STS helper the client holds now */
  const bind = () => {
    for (const t of [c.transporter, c.stsCredential.transporter]) {
      if (!seen.has(t)) {
        bindToExchange(t, signal);
        seen.add(t);
      }
    }
    const sts = c.stsCredential;
    if (seen.has(sts)) return;
    seen.add(sts);
    const exchange = sts.exchangeToken.bind(sts);
    sts.exchangeToken = async (...args: unknown[]) => {
      step = 'sts';
      return exchange(...args).catch((err: unknown) => Promise.reject(new StepError('sts', err)));
    };
  };
  bind();
  const retrieve = c.retrieveSubjectToken.bind(client);
  c.retrieveSubjectToken = async () => {
    step = 'subject';
    try {
      const token = await retrieve();
      bind();
      return token;
    } catch (err) {
      throw new StepError('subject', err);
    }
  };
  const impersonate = c.getImpersonatedAccessToken.bind(client);
  c.getImpersonatedAccessToken = async (token: string) => {
    step = 'impersonation';
    return impersonate(token).catch((err: unknown) => Promise.reject(new StepError('impersonation', err)));
  };
  let result: { res?: { data?: unknown } | null };
  try {
    result = (await c.refreshAccessTokenAsync()) as typeof result;
  } catch (err) {
    throw classify(err instanceof StepError ? err : new StepError(step, err), f);
  }
  // the answer of the last call: STS's, or the impersonation's (the library keeps it as `res`)
  const body = result.res?.data;
  const parsed = f.impersonationUrl
    ? parseGeneratedAccessToken(body, redactUrl(f.impersonationUrl), issuedAt)
    : parseTokenResponse(body, redactUrl(f.tokenUrl));
  return { accessToken: parsed.accessToken, issuedAt, expiresAt: issuedAt + parsed.lifetimeS * 1000, ...(parsed.note ? { note: parsed.note } : {}) };
}

/** The pool's principal set, as IAM names it in a role binding (from the provider's audience). */
export function principalSetOf(audience: string): string {
  const m = /^\/\/iam\.googleapis\.com\/(.+?)\/providers\/[^/]+$/.exec(audience);
  return m ? `principalSet://iam.googleapis.com/${m[1]}/*` : `the principals of ${audience}`;
}

function classify(err: StepError, f: ExternalAccountFile): Error {
  const original = err.original;
  if (original instanceof AbortedError || original instanceof RetryableError || original instanceof PermanentError) return original;
  const failure = httpFailure(original);
  const from = `credentials file ${f.file}`;
  if (err.step === 'subject') {
    const where = `the subject token from ${f.subjectSource}`;
    if (failure.status !== undefined) {
      return new RetryableError(`${from}: ${where} could not be fetched: HTTP ${failure.status}`, 'subject_unavailable');
    }
    // a request (URL, AWS metadata) that got no answer; gaxios errors carry their request
    if (failure.url !== undefined) return networkFailure(`${from}: fetching ${where}`, original);
    // a file not there yet (Kubernetes writes projected tokens), an executable that failed: it may recover
    return new RetryableError(`${from}: ${where} could not be read: ${sanitize(failure.message)}`, 'subject_unavailable');
  }
  if (err.step === 'impersonation') {
    const caller = principalSetOf(f.audience);
    return impersonationError(original, {
      caller: `federated principals of ${f.audience}`,
      member: caller,
      target: f.impersonatedEmail,
      endpoint: f.impersonationUrl,
      federated: true,
    });
  }
  // STS
  const sts = redactUrl(f.tokenUrl);
  if (failure.status === undefined) return networkFailure(`${from}: token exchange at STS ${sts}`, original);
  if (isRetryableStatus(failure.status)) return new RetryableError(`${from}: STS ${sts} answered HTTP ${failure.status}`, `http_${failure.status}`);
  const oauth = oauthErrorOf(failure.body);
  const said = oauth ? `${oauth.error}${oauth.description ? `: ${oauth.description}` : ''}`.replace(/\.+$/, '') : `HTTP ${failure.status}`;
  const code = oauth?.error ?? `http_${failure.status}`;
  if (oauth && (oauth.error === 'invalid_target' || (/"?audience"?/i.test(oauth.description) && !/ID Token|token's|subject/i.test(oauth.description)))) {
    return new PermanentError(
      `${from}: STS refused the audience ${f.audience} (${said}). Fix "audience" in ${f.file}: it must be the workload identity pool provider's full name, //iam.googleapis.com/projects/PROJECT_NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER (gcloud iam workload-identity-pools providers describe PROVIDER --workload-identity-pool=POOL --location=global --format='value(name)'), and the pool and provider must exist and be enabled`,
      code,
    );
  }
  if (oauth?.error === 'unauthorized_client') {
    return new PermanentError(
      `${from}: STS refused the subject token from ${f.subjectSource} for ${f.audience} (${said}): the provider's attribute condition does not admit this identity; check --attribute-condition of the provider, or the token's claims`,
      code,
    );
  }
  return new PermanentError(
    `${from}: STS refused the subject token from ${f.subjectSource} for ${f.audience} (${said}). Check the token: its audience must be one the provider allows (by default https://iam.googleapis.com/${f.audience.replace(/^\/\/iam\.googleapis\.com\//, '')}), its issuer the provider's issuer, and it must not be expired`,
    code,
  );
}
