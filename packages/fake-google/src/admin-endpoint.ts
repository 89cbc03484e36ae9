/**
 * `GET /v1beta/accountSummaries`, as the GA Admin API answers `accountSummaries.list`: the GA
 * accounts the caller can see, each with the properties of it the caller can read (access on
 * the whole account shows all of them; access on a property shows that one), paged by
 * `pageSize` (default 50, at most 200, more is coerced to 200) and an opaque `pageToken` that
 * only this server's own tokens pass. The last page has no `nextPageToken`; empty fields are
 * left out, as proto3 JSON does. The Admin API must be enabled in the caller's Cloud project.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { canRead } from './api-auth.js';
import { apiError, jsonReply, type Reply } from './http-util.js';
import type { Account, FakeState, Property } from './state.js';

const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 200;

interface TokenPayload {
  /** who asked: a token is good for that principal only */
  p: string;
  /** index of the next account summary */
  o: number;
  /** the pageSize of the call that handed it out (the next calls must ask the same) */
  s: number | null;
}

function signToken(state: FakeState, payload: TokenPayload): string {
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  const mac = createHmac('sha256', state.pageTokenSecret).update(body).digest('base64url');
  return `${body}.${mac}`;
}

function readToken(state: FakeState, token: string): TokenPayload | null {
  const [body, mac, extra] = token.split('.');
  if (!body || !mac || extra !== undefined) return null;
  const want = createHmac('sha256', state.pageTokenSecret).update(body).digest();
  const got = Buffer.from(mac, 'base64url');
  if (got.length !== want.length || !timingSafeEqual(got, want)) return null;
  try {
    const p = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as TokenPayload;
    return typeof p.p === 'string' && Number.isInteger(p.o) && p.o >= 0 ? p : null;
  } catch {
    return null;
  }
}

/** Google's answer when the API is not enabled in the consumer project. */
function serviceDisabled(projectId: string): Reply {
  const activate = `https://console.developers.google.com/apis/api/analyticsadmin.googleapis.com/overview?project=${projectId}`;
  return apiError(
    403,
    'PERMISSION_DENIED',
    `Google Analytics Admin API has not been used in project ${projectId} before or it is disabled. Enable it by visiting ${activate} then retry. If you enabled this API recently, wait a few minutes for the action to propagate to our systems and retry.`,
    {
      details: [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: 'SERVICE_DISABLED',
          domain: 'googleapis.com',
          metadata: { consumer: `projects/${projectId}`, service: 'analyticsadmin.googleapis.com' },
        },
        { '@type': 'type.googleapis.com/google.rpc.Help', links: [{ description: 'Google developers console API activation', url: activate }] },
      ],
    },
  );
}

const byNumber = (a: string, b: string) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);

/** The account summaries `caller` may see, accounts and properties in id order. */
function visible(state: FakeState, caller: Account): Array<{ id: string; displayName: string; properties: Property[] }> {
  const byAccount = new Map<string, Property[]>();
  for (const p of state.properties.values()) {
    if (!canRead(state, caller.clientEmail, p)) continue;
    let list = byAccount.get(p.account);
    if (!list) byAccount.set(p.account, (list = []));
    list.push(p);
  }
  // access on a whole account shows it even when it has no property
  for (const [id, emails] of state.accountGrants) if (emails.has(caller.clientEmail) && !byAccount.has(id)) byAccount.set(id, []);
  return [...byAccount.keys()].sort(byNumber).map((id) => ({
    id,
    displayName: state.gaAccounts.get(id)?.displayName ?? `Account ${id}`,
    properties: byAccount.get(id)!.sort((a, b) => byNumber(a.id, b.id)),
  }));
}

/** One page of accountSummaries.list for an authenticated caller. */
export function listAccountSummaries(state: FakeState, caller: Account, query: URLSearchParams, pretty: boolean): Reply {
  if (state.adminApiDisabled.has(caller.projectId)) return serviceDisabled(caller.projectId);
  const rawSize = query.get('pageSize');
  let asked: number | null = null;
  if (rawSize !== null) {
    if (!/^-?\d+$/.test(rawSize)) return apiError(400, 'INVALID_ARGUMENT', `Invalid value at 'page_size' (TYPE_INT32), "${rawSize}"`);
    asked = Number(rawSize);
    if (asked < 0) return apiError(400, 'INVALID_ARGUMENT', 'page_size must be positive');
  }
  let offset = 0;
  const rawToken = query.get('pageToken');
  if (rawToken) {
    const t = readToken(state, rawToken);
    if (!t || t.p !== caller.clientEmail) return apiError(400, 'INVALID_ARGUMENT', 'Invalid page token.');
    if (t.s !== asked) return apiError(400, 'INVALID_ARGUMENT', 'The page size must match the call that provided the page token.');
    offset = t.o;
  }
  const size = Math.min(asked === null || asked === 0 ? DEFAULT_PAGE_SIZE : Math.min(asked, MAX_PAGE_SIZE), state.adminPageSize);
  const all = visible(state, caller);
  const page = all.slice(offset, offset + size);
  const body: Record<string, unknown> = {};
  if (page.length > 0) {
    body['accountSummaries'] = page.map((a) => {
      const summary: Record<string, unknown> = { name: `accountSummaries/${a.id}`, account: `accounts/${a.id}`, displayName: a.displayName };
      if (a.properties.length > 0) {
        summary['propertySummaries'] = a.properties.map((p) => ({
          property: `properties/${p.id}`,
          displayName: p.displayName,
          propertyType: p.propertyType,
          parent: p.parent,
        }));
      }
      return summary;
    });
  }
  if (offset + size < all.length) body['nextPageToken'] = signToken(state, { p: caller.clientEmail, o: offset + size, s: asked });
  return jsonReply(200, body, {}, pretty);
}
