/**
 * The metadata server of Compute Engine, GKE (Workload Identity), Cloud Run and Cloud Functions:
 * tokens of the service account attached to the machine, pod or service, the last step of
 * Application Default Credentials.
 *
 * Asked directly (GET with `Metadata-Flavor: Google`, the answer must carry the same header), not
 * through google-auth-library's Compute client: that goes through gcp-metadata, which takes
 * neither a transport nor a signal and retries by itself, so neither our deadline nor our backoff
 * would hold. Where the server is, and whether to expect one, follows Google's libraries:
 * `GCE_METADATA_HOST` (or `GCE_METADATA_IP`) moves it from 169.254.169.254;
 * `METADATA_SERVER_DETECTION` is `assume-present`, `none`, `bios-only` or `ping-only`
 * (gcp-metadata's meanings); without it, this is Google Cloud when the machine says so (the BIOS
 * of a Compute Engine VM or GKE node, Cloud Run's and Cloud Functions' environment variables).
 *
 * Off Google Cloud, a metadata server that does not answer means there are no credentials at all:
 * a permanent failure with the three ways to get some. On Google Cloud it is retried: GKE's
 * metadata server can take a few seconds to come up with a pod.
 *
 * The server caches a token until it has five minutes left, so a renewal a quarter before expiry
 * may get the same token back with its shorter remaining lifetime; the token manager then renews
 * again at a quarter of that, and gets a fresh one
 * (https://cloud.google.com/compute/docs/access/authenticate-workloads#applications).
 */
import fs from 'node:fs';
import { PermanentError, RetryableError, systemErrorCode } from '../errors.js';
import { withDeadline } from '../net/deadline.js';
import { authTransport, httpFailure, isRetryableStatus } from './authHttp.js';
import type { MintedToken } from './mintedToken.js';
import { parseTokenResponse } from './tokenResponse.js';

/** How long to wait for a metadata server that may not exist (gcp-metadata waits 3 s as well). */
const PROBE_MS = 3_000;
const DETECTION = ['assume-present', 'none', 'bios-only', 'ping-only'] as const;

export interface MetadataServer {
  /** e.g. http://169.254.169.254 */
  base: string;
  /** expect a server here (Google Cloud, or told so): a silent one is retried, not "no credentials" */
  expected: boolean;
  /** METADATA_SERVER_DETECTION=none, or bios-only off Google Cloud: never asked */
  disabled: boolean;
}

/** Where the metadata server is and whether one is expected, from the environment. */
export function metadataServerOf(env: NodeJS.ProcessEnv): MetadataServer {
  const host = (env['GCE_METADATA_IP'] || env['GCE_METADATA_HOST'] || '169.254.169.254').trim();
  const base = (/^https?:\/\//.test(host) ? host : `http://${host}`).replace(/\/+$/, '');
  const detection = (DETECTION as readonly string[]).includes(env['METADATA_SERVER_DETECTION'] ?? '') ? env['METADATA_SERVER_DETECTION']! : '';
  const resident = detection === 'ping-only' || detection === 'none' ? false : detection === 'assume-present' ? true : onGoogleCloud(env);
  return { base, expected: resident, disabled: detection === 'none' || (detection === 'bios-only' && !resident) };
}

/** Google Cloud's serverless environment variables, or a Google BIOS (Compute Engine VMs, GKE nodes and their pods). */
function onGoogleCloud(env: NodeJS.ProcessEnv): boolean {
  if (env['K_SERVICE'] || env['CLOUD_RUN_JOB'] || env['FUNCTION_NAME'] || env['FUNCTION_TARGET'] || env['GAE_SERVICE']) return true;
  if (process.platform !== 'linux') return false;
  for (const f of ['/sys/class/dmi/id/bios_vendor', '/sys/class/dmi/id/product_name']) {
    try {
      if (/Google/.test(fs.readFileSync(f, 'utf8'))) return true;
    } catch {
      // not readable: not evidence either way
    }
  }
  return false;
}

/** What to say when there are no credentials anywhere: `lookedAt` lists the places tried, `why` the server's silence. */
function noCredentialsError(lookedAt: string[], why: string): PermanentError {
  return new PermanentError(
    `no Google credentials found: set google.credentials (a key file, a Workload Identity Federation file from gcloud iam workload-identity-pools create-cred-config, ...), or run on Google Cloud with an attached service account, or run \`gcloud auth application-default login\` (for a trial on a laptop; add google.impersonate). Looked at: ${[...lookedAt, why].join('; ')}`,
    'no_credentials',
  );
}

export interface MetadataTokenOptions {
  scopes: readonly string[];
  signal: AbortSignal;
  /** the attached account's email when already known (it is asked once) */
  email?: string;
  /** the other places Application Default Credentials looked, for the "no credentials" message */
  lookedAt: string[];
}

/**
 * The attached service account's email (when not known yet) and a token for `scopes`.
 *
 * @throws PermanentError `no_credentials` (no server off Google Cloud), or for a server that says
 *   no service account is attached or is not a Google metadata server; RetryableError otherwise
 */
export async function metadataToken(m: MetadataServer, o: MetadataTokenOptions): Promise<MintedToken> {
  if (m.disabled) throw noCredentialsError(o.lookedAt, 'no metadata server (METADATA_SERVER_DETECTION)');
  const issuedAt = Date.now();
  const path = `${m.base}/computeMetadata/v1/instance/service-accounts/default`;
  let email = o.email ?? '';
  if (!email) {
    // the first call doubles as the probe: short when no server is expected
    const probe = (signal: AbortSignal) => get(m, `${path}/email`, signal, o.lookedAt);
    email = String(
      m.expected
        ? await probe(o.signal)
        : await withDeadline(`metadata server ${m.base}`, PROBE_MS, o.signal, probe).catch((err: unknown) => {
            if (err instanceof RetryableError)
              throw noCredentialsError(
                o.lookedAt,
                `no metadata server answered at ${m.base} (${err.code === 'timeout' ? `nothing within ${PROBE_MS / 1000} s` : err.code})`,
              );
            throw err;
          }),
    ).trim();
  }
  const data = await get(m, `${path}/token?scopes=${encodeURIComponent(o.scopes.join(','))}`, o.signal, o.lookedAt);
  let body: unknown = data;
  if (typeof data === 'string') {
    try {
      body = JSON.parse(data);
    } catch {
      throw new RetryableError(`metadata server ${m.base} answered a token that is not JSON`, 'bad_response');
    }
  }
  const parsed = parseTokenResponse(body, `metadata server ${m.base}`);
  return {
    accessToken: parsed.accessToken,
    issuedAt,
    expiresAt: issuedAt + parsed.lifetimeS * 1000,
    account: email,
    ...(parsed.note ? { note: parsed.note } : {}),
  };
}

async function get(m: MetadataServer, url: string, signal: AbortSignal, lookedAt: string[]): Promise<unknown> {
  const { transporter } = authTransport(signal);
  const what = `metadata server ${m.base}`;
  let res: { data: unknown; headers: Headers };
  try {
    res = (await transporter.request({ url, method: 'GET', headers: { 'Metadata-Flavor': 'Google' }, responseType: 'text' })) as unknown as typeof res;
  } catch (err) {
    const f = httpFailure(err);
    if (f.status === undefined) {
      if (f.name === 'AbortError' || /aborted|timeout/i.test(f.message)) throw new RetryableError(`${what} timed out`, 'timeout');
      throw new RetryableError(`${what} did not answer: ${f.code ?? 'network error'}`, systemErrorCode(f.code) ?? 'network');
    }
    if (isRetryableStatus(f.status)) throw new RetryableError(`${what} answered HTTP ${f.status}`, `http_${f.status}`);
    if (f.status === 404) {
      throw new PermanentError(
        `${what} has no service account for this machine, pod or service (HTTP 404): attach one (Compute Engine: --service-account; Cloud Run: --service-account; GKE: Workload Identity with a Kubernetes service account), or set google.credentials`,
        'no_service_account',
      );
    }
    if (f.status === 403)
      throw new PermanentError(
        `${what} refused the request (HTTP 403): the endpoint may be disabled for this VM, or a proxy is in the way (metadata requests must not go through HTTP_PROXY)`,
        'http_403',
      );
    throw new PermanentError(`${what} answered HTTP ${f.status}`, `http_${f.status}`);
  }
  const flavor = typeof res.headers?.get === 'function' ? res.headers.get('metadata-flavor') : undefined;
  if (flavor !== 'Google') {
    if (!m.expected) throw noCredentialsError(lookedAt, `${m.base} answered, but not as a Google metadata server (no Metadata-Flavor: Google header)`);
    throw new PermanentError(
      `${m.base} is not a Google metadata server (its answer lacks the Metadata-Flavor: Google header): check GCE_METADATA_HOST`,
      'not_metadata_server',
    );
  }
  return res.data;
}
