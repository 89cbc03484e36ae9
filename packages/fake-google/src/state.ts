/**
 * What the fake Google knows: accounts and their keys, properties and who may
 * read them, issued tokens, quotas, revision counters and the event log. The
 * endpoints read and change it; `FakeGoogle` owns it.
 */
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { QuotaBook } from './quota.js';
import type { RegisteredKey } from './keys.js';
import type { FakeEvent, SitePermissionLevel } from './types.js';

export interface Account {
  clientEmail: string;
  clientId: string;
  projectId: string;
  keys: RegisteredKey[];
}

export interface Property {
  id: string;
  timeZone: string;
  currencyCode: string;
  dataFrom: string;
  rowsPerDay?: number;
  /** the GA account it belongs to, and how the Admin API summarises it */
  account: string;
  displayName: string;
  propertyType: string;
  parent: string;
}

/** A Search Console property and who may use it. */
export interface Site {
  url: string;
  queries: number;
  pages: number;
  seed: number;
  anonymizedShare: number;
  /** client email -> permission level */
  users: Map<string, SitePermissionLevel>;
  /** searchAnalytics.query calls allowed per minute (Google: 1,200 per site, https://developers.google.com/webmaster-tools/limits) */
  queriesPerMinute: number;
  /** when the searchAnalytics.query calls of the last minute came (ms, state.now()) */
  recentQueries: number[];
}

/** A Google Analytics account. */
interface GaAccount {
  id: string;
  displayName: string;
}

export interface IssuedToken {
  account: string;
  scopes: string[];
  issuedAt: number;
  expiresAt: number;
}

export interface FakeState {
  readonly tokenLifetimeSeconds: number;
  readonly maxPageSize: number;
  readonly revisionDays: number | undefined;
  readonly now: () => number;
  readonly accounts: Map<string, Account>;
  readonly properties: Map<string, Property>;
  /** property id -> client emails allowed to read it */
  readonly grants: Map<string, Set<string>>;
  readonly tokens: Map<string, IssuedToken>;
  readonly quota: QuotaBook;
  /** property id -> date -> runReport calls (with offset 0) that covered that date */
  readonly revisions: Map<string, Map<string, number>>;
  /** the clock of each property's calendar (today, yesterday, NdaysAgo) */
  readonly calendarNow: () => number;
  readonly events: FakeEvent[];
  /** GA accounts by numeric id */
  readonly gaAccounts: Map<string, GaAccount>;
  /** GA account id -> client emails with access to the whole account (every property of it) */
  readonly accountGrants: Map<string, Set<string>>;
  /** Cloud projects in which the Admin API is not enabled */
  readonly adminApiDisabled: Set<string>;
  readonly adminPageSize: number;
  /** Signs the Admin API's page tokens, so a token the fake did not hand out is refused as at Google. */
  readonly pageTokenSecret: Buffer;
  /** Audiences a JWT assertion may name: Google's token URL and the fake's own. */
  audiences: string[];
  /** Rewrites the token endpoint's success body (FakeGoogle.rewriteTokenResponse). */
  tokenResponseRewrite?: ((body: Record<string, unknown>) => unknown) | undefined;
  /** Search Console sites by URL, as Search Console spells it */
  readonly sites: Map<string, Site>;
  /** Signs the id_tokens Google returns for assertions without an API scope; made on first use. */
  idTokenKey?: { privateKey: KeyObject; kid: string };
}

export function createState(opts: {
  tokenLifetimeSeconds: number;
  maxPageSize: number;
  revisionDays: number | undefined;
  now: () => number;
  calendarNow: () => number;
  adminPageSize: number;
}): FakeState {
  return {
    ...opts,
    gaAccounts: new Map(),
    sites: new Map(),
    accountGrants: new Map(),
    adminApiDisabled: new Set(),
    pageTokenSecret: randomBytes(32),
    accounts: new Map(),
    properties: new Map(),
    grants: new Map(),
    tokens: new Map(),
    quota: new QuotaBook(opts.now),
    revisions: new Map(),
    events: [],
    audiences: ['https://oauth2.googleapis.com/token'],
  };
}

export function idTokenKey(state: FakeState): { privateKey: KeyObject; kid: string } {
  if (!state.idTokenKey) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    state.idTokenKey = { privateKey, kid: randomBytes(20).toString('hex') };
  }
  return state.idTokenKey;
}
