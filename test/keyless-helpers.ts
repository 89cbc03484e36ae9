/**
 * A fake Google with one principal of every credential kind and the files that name them, as
 * gcloud writes them: a key; an attached service account (metadata server); Workload Identity
 * Federation from a token file, from a URL (Azure), from an executable and from AWS; a person
 * (gcloud's ADC file) alone, behind google.impersonate, and inside an impersonated_service_account
 * file; a key behind google.impersonate. Each principal is granted its own property.
 *
 * Environments for spawned processes point HOME and CLOUDSDK_CONFIG at a temporary directory and
 * GCE_METADATA_HOST at the fake, so nothing ever reads the real ~/.config/gcloud or 169.254.169.254.
 */
import fs from 'node:fs';
import path from 'node:path';
import { FakeGoogle, type FakeGoogleOptions } from '@ga-collector/fake-google';
import { tmpDir, writeJson } from './helpers.js';

export const PROJECT_NUMBER = '123456789012';
export const ATTACHED = 'vm-runner@keyless-project.iam.gserviceaccount.com';
/** the service accounts the URL-, executable- and AWS-sourced federations impersonate */
export const READERS = {
  azure: 'azure-reader@keyless-project.iam.gserviceaccount.com',
  executable: 'onprem-reader@keyless-project.iam.gserviceaccount.com',
  aws: 'aws-reader@keyless-project.iam.gserviceaccount.com',
};
export const KEY_SA = 'key-holder@keyless-project.iam.gserviceaccount.com';
export const PERSON = 'alice@example.com';
export const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com';
export const AZURE_ISSUER = 'https://sts.windows.net/00000000-0000-0000-0000-000000000000/';
export const AWS_ROLE_ARN = 'arn:aws:sts::111122223333:assumed-role/collector-role/i-0123456789abcdef0';

/** One principal and how a property names it. */
export interface Principal {
  /** a name for the test: `attached`, `oidc-file`, ... */
  name: string;
  property: string;
  /** what the `account` label and check should say */
  account: string;
  /** who the Data API sees (GA's grant): the account, or a federated principal:// */
  grantee: string;
  /** check's first column word */
  kind: 'key' | 'federated' | 'user' | 'attached' | 'impersonated';
  /** the property entry's credentials keys (none: Application Default Credentials) */
  config: { credentials?: string; impersonate?: string };
}

export interface KeylessWorld {
  fake: FakeGoogle;
  dir: string;
  principals: Principal[];
  /** the environment of a process that should find these credentials (and nothing of the real machine) */
  env: NodeJS.ProcessEnv;
  /** the STS audience of the OIDC provider (GitHub-style tokens in a file, executable, Azure) */
  oidcAudience: string;
  /** the STS audience of the AWS provider */
  awsAudience: string;
  /** the file-sourced federated principal (no service account) */
  oidcPrincipal: string;
  /** writes an external_account file */
  externalAccountFile(name: string, fields: Record<string, unknown>): string;
  stop(): Promise<void>;
}

const TZ = 'UTC';

/** Starts the fake and writes every file; properties are numbered from `firstProperty`. */
export async function keylessWorld(opts: FakeGoogleOptions & { firstProperty?: number } = {}): Promise<KeylessWorld> {
  const fake = new FakeGoogle(opts);
  await fake.start();
  const dir = tmpDir('keyless');
  const home = path.join(dir, 'home');
  fs.mkdirSync(home);
  const id = fake.identity;
  const root = fake.url;
  let next = opts.firstProperty ?? 810_001;
  const principals: Principal[] = [];
  const add = (p: Omit<Principal, 'property' | 'grantee'>, grantee: string) => {
    const property = String(next++);
    fake.addProperty({ id: property, timeZone: TZ });
    fake.grant(grantee, property);
    principals.push({ ...p, property, grantee });
  };
  const impersonationUrl = (email: string) => `${root}/v1/projects/-/serviceAccounts/${email}:generateAccessToken`;
  const externalAccountFile = (name: string, fields: Record<string, unknown>) =>
    writeJson(path.join(dir, name), {
      universe_domain: 'googleapis.com',
      type: 'external_account',
      token_url: `${root}/v1/token`,
      ...fields,
    });

  // a key
  const keyFile = writeJson(path.join(dir, 'key.json'), fake.createAccount(KEY_SA));
  add({ name: 'key', account: KEY_SA, kind: 'key', config: { credentials: keyFile } }, KEY_SA);

  // the attached service account: Application Default Credentials end at the metadata server
  id.attachServiceAccount(ATTACHED);
  add({ name: 'attached', account: ATTACHED, kind: 'attached', config: {} }, ATTACHED);

  // Workload Identity Federation: an OIDC provider trusting GitHub-style and Azure-style tokens
  id.addOidcIssuer(GITHUB_ISSUER);
  id.addOidcIssuer(AZURE_ISSUER);
  const oidcAudience = id.addWorkloadProvider({ projectNumber: PROJECT_NUMBER, pool: 'collector-pool', provider: 'github', issuer: GITHUB_ISSUER });
  const azureAudience = id.addWorkloadProvider({
    projectNumber: PROJECT_NUMBER,
    pool: 'collector-pool',
    provider: 'azure',
    issuer: AZURE_ISSUER,
    allowedAudiences: ['api://collector'],
  });
  const stsAudience = (aud: string) => `https://iam.googleapis.com/${aud.replace('//iam.googleapis.com/', '')}`;
  // grants to the whole pool: any workload of it may impersonate the readers
  for (const reader of Object.values(READERS)) {
    id.grantTokenCreator(`principalSet://iam.googleapis.com/projects/${PROJECT_NUMBER}/locations/global/workloadIdentityPools/collector-pool/*`, reader);
  }

  // from a token file, no service account: the federated principal itself reads GA (the fake lets it)
  const tokenFile = path.join(dir, 'github-token.jwt');
  fs.writeFileSync(
    tokenFile,
    id.oidcToken({ issuer: GITHUB_ISSUER, subject: 'repo:acme/collector:ref:refs/heads/main', audience: stsAudience(oidcAudience), lifetimeSeconds: 6 * 3600 }),
  );
  const oidcFile = externalAccountFile('wif-file.json', {
    audience: oidcAudience,
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    credential_source: { file: tokenFile, format: { type: 'text' } },
  });
  const oidcPrincipal = id.federatedPrincipal(oidcAudience, 'repo:acme/collector:ref:refs/heads/main');
  add({ name: 'oidc-file', account: oidcAudience, kind: 'federated', config: { credentials: oidcFile } }, oidcPrincipal);

  // from a URL (Azure's identity endpoint), impersonating the reader
  id.azureIdentity = { issuer: AZURE_ISSUER, subject: 'azure-managed-identity-object-id' };
  const azureFile = externalAccountFile('wif-azure.json', {
    audience: azureAudience,
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    service_account_impersonation_url: impersonationUrl(READERS.azure),
    credential_source: {
      url: `${root}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=api://collector`,
      headers: { Metadata: 'True' },
      format: { type: 'json', subject_token_field_name: 'access_token' },
    },
  });

  // from an executable, impersonating the reader
  const exe = path.join(dir, 'subject-token.sh');
  const exeToken = id.oidcToken({ issuer: GITHUB_ISSUER, subject: 'onprem:batch-host', audience: stsAudience(oidcAudience), lifetimeSeconds: 6 * 3600 });
  fs.writeFileSync(
    exe,
    `#!/bin/sh\necho '${JSON.stringify({ version: 1, success: true, token_type: 'urn:ietf:params:oauth:token-type:jwt', id_token: exeToken, expiration_time: Math.floor(Date.now() / 1000) + 6 * 3600 })}'\n`,
    { mode: 0o755 },
  );
  const exeFile = externalAccountFile('wif-executable.json', {
    audience: oidcAudience,
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    service_account_impersonation_url: impersonationUrl(READERS.executable),
    credential_source: { executable: { command: exe, timeout_millis: 10_000 } },
  });

  // from AWS (instance metadata, IMDSv2), impersonating the reader
  const awsAudience = id.addWorkloadProvider({ projectNumber: PROJECT_NUMBER, pool: 'collector-pool', provider: 'aws', awsAccountId: '111122223333' });
  id.setAwsInstance({
    region: 'eu-west-1',
    roleName: 'collector-role',
    accessKeyId: 'ASIAFAKEACCESSKEY123',
    secretAccessKey: 'fakeSecretAccessKey/abcdefghijklmnopqrstuv',
    sessionToken: 'FwoGZXIvYXdzEFAKESESSION',
    arn: AWS_ROLE_ARN,
  });
  const awsFile = externalAccountFile('wif-aws.json', {
    audience: awsAudience,
    subject_token_type: 'urn:ietf:params:aws:token-type:aws4_request',
    service_account_impersonation_url: impersonationUrl(READERS.aws),
    credential_source: {
      environment_id: 'aws1',
      region_url: `${root}/latest/meta-data/placement/availability-zone`,
      url: `${root}/latest/meta-data/iam/security-credentials`,
      regional_cred_verification_url: 'https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15',
      imdsv2_session_token_url: `${root}/latest/api/token`,
    },
  });
  add({ name: 'azure-url', account: READERS.azure, kind: 'federated', config: { credentials: azureFile } }, READERS.azure);
  add({ name: 'executable', account: READERS.executable, kind: 'federated', config: { credentials: exeFile } }, READERS.executable);
  add({ name: 'aws', account: READERS.aws, kind: 'federated', config: { credentials: awsFile } }, READERS.aws);

  // a person: gcloud's ADC file with analytics consented, read directly
  const personDirect = writeJson(
    path.join(dir, 'person-analytics.json'),
    id.addUser(PERSON, fake.tokenUrl, {
      scopes: [
        'openid',
        'https://www.googleapis.com/auth/userinfo.email',
        'https://www.googleapis.com/auth/analytics.readonly',
        'https://www.googleapis.com/auth/webmasters.readonly',
      ],
    }),
  );
  add({ name: 'user', account: PERSON, kind: 'user', config: { credentials: personDirect } }, PERSON);

  // a person with gcloud's default sign-in, impersonating a laptop reader
  const LAPTOP = 'laptop-reader@keyless-project.iam.gserviceaccount.com';
  const personDefault = writeJson(path.join(dir, 'person-default.json'), id.addUser('bob@example.com', fake.tokenUrl));
  id.grantTokenCreator('bob@example.com', LAPTOP);
  add({ name: 'user+impersonate', account: LAPTOP, kind: 'impersonated', config: { credentials: personDefault, impersonate: LAPTOP } }, LAPTOP);

  // gcloud auth application-default login --impersonate-service-account: one file
  const FILE_TARGET = 'file-target@keyless-project.iam.gserviceaccount.com';
  const carol = id.addUser('carol@example.com', fake.tokenUrl);
  id.grantTokenCreator('carol@example.com', FILE_TARGET);
  const impFile = writeJson(path.join(dir, 'impersonated.json'), {
    type: 'impersonated_service_account',
    service_account_impersonation_url: impersonationUrl(FILE_TARGET),
    delegates: [],
    source_credentials: carol,
  });
  add({ name: 'impersonated-file', account: FILE_TARGET, kind: 'impersonated', config: { credentials: impFile } }, FILE_TARGET);

  // a key impersonating another account (spreading quota over projects)
  const KEY_TARGET = 'quota-b@other-project.iam.gserviceaccount.com';
  id.grantTokenCreator(KEY_SA, KEY_TARGET);
  add({ name: 'key+impersonate', account: KEY_TARGET, kind: 'impersonated', config: { credentials: keyFile, impersonate: KEY_TARGET } }, KEY_TARGET);

  // the attached account impersonating (GKE: the workload's account mints for the reader)
  const GKE_TARGET = 'gke-reader@keyless-project.iam.gserviceaccount.com';
  id.grantTokenCreator(ATTACHED, GKE_TARGET);
  add({ name: 'attached+impersonate', account: GKE_TARGET, kind: 'impersonated', config: { impersonate: GKE_TARGET } }, GKE_TARGET);

  const env: NodeJS.ProcessEnv = {
    HOME: home,
    CLOUDSDK_CONFIG: path.join(home, 'gcloud-config-absent'),
    GCE_METADATA_HOST: new URL(root).host,
    GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES: '1',
  };
  return { fake, dir, principals, env, oidcAudience, awsAudience, oidcPrincipal, externalAccountFile, stop: () => fake.stop() };
}
