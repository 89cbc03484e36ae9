/**
 * The routes of the keyless endpoints (metadata server, STS, IAM Credentials, subject-token
 * sources) and their dispatch, kept apart from server.ts, which only asks here first.
 */
import type { IncomingMessage } from 'node:http';
import type { Reply } from './http-util.js';
import { handleGenerateAccessToken } from './iam-credentials.js';
import type { FakeIdentity } from './identity.js';
import { handleMetadataServer } from './metadata-server.js';
import type { FakeState } from './state.js';
import { handleSts } from './sts-endpoint.js';
import { handleAwsImds, handleAzureIdentity } from './subject-sources.js';
import type { EventKind } from './types.js';

export type KeylessKind = Extract<EventKind, 'gceMetadata' | 'sts' | 'generateAccessToken' | 'azureIdentity' | 'awsMetadata'>;

export interface KeylessRoute {
  kind: KeylessKind;
  /** generateAccessToken: the target service account */
  target?: string;
}

export function keylessRoute(method: string, path: string): KeylessRoute | undefined {
  if (path.startsWith('/computeMetadata/v1/')) return method === 'GET' ? { kind: 'gceMetadata' } : undefined;
  if (path === '/v1/token') return method === 'POST' ? { kind: 'sts' } : undefined;
  const gat = /^\/v1\/projects\/-\/serviceAccounts\/([^/:]+):generateAccessToken$/.exec(path);
  if (gat) return method === 'POST' ? { kind: 'generateAccessToken', target: gat[1]! } : undefined;
  if (path === '/metadata/identity/oauth2/token') return method === 'GET' ? { kind: 'azureIdentity' } : undefined;
  if (path.startsWith('/latest/')) return { kind: 'awsMetadata' };
  return undefined;
}

export function isKeylessKind(kind: EventKind): kind is KeylessKind {
  return kind === 'gceMetadata' || kind === 'sts' || kind === 'generateAccessToken' || kind === 'azureIdentity' || kind === 'awsMetadata';
}

export function handleKeyless(
  identity: FakeIdentity,
  state: FakeState,
  route: KeylessRoute,
  req: IncomingMessage,
  url: URL,
  path: string,
  body: string,
): { reply: Reply; account?: string } {
  const header = (name: string) => {
    const v = req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  switch (route.kind) {
    case 'gceMetadata':
      return handleMetadataServer(identity, state, path, url.searchParams, header('metadata-flavor'));
    case 'sts':
      return handleSts(identity, state, body, header('content-type') ?? '');
    case 'generateAccessToken':
      return handleGenerateAccessToken(identity, state, route.target!, header('authorization'), body);
    case 'azureIdentity':
      return { reply: handleAzureIdentity(identity, url.searchParams, header('metadata')) };
    case 'awsMetadata':
      return { reply: handleAwsImds(identity, req.method ?? 'GET', path, req.headers) };
  }
}
