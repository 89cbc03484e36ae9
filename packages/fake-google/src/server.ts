/**
 * `FakeGoogle`: one local HTTP server that plays the Google endpoints the
 * collector talks to, the OAuth token endpoint, the GA4 Data API and the GA
 * Admin API's account summaries (discovery), with the behaviour (and failures)
 * of the real ones.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { listAccountSummaries } from './admin-endpoint.js';
import { ADMIN_API, authenticate, authorizeProperty } from './api-auth.js';
import { buildMetadata } from './catalog.js';
import { addDays, assertTimeZone, isIsoDate, todayIn } from './dates.js';
import { BAD_BODY_FAULTS, FaultPlan, faultLabel } from './faults.js';
import { acceptsGzip, faultReply, htmlError, invalidArgument, jsonReply, type Reply } from './http-util.js';
import { generateServiceAccountKey, keyJson, parsePublicKey, projectOf } from './keys.js';
import { runReport } from './report-endpoint.js';
import { transcodeRunReport, validateRunReport } from './report-request.js';
import { createState, type FakeState } from './state.js';
import { handleToken } from './token-endpoint.js';
import { FakeIdentity } from './identity.js';
import { handleKeyless, isKeylessKind, keylessRoute } from './keyless-routes.js';
import { handleRefreshGrant, isRefreshGrant } from './refresh-grant.js';
import { SearchConsole } from './search-console.js';
import { handleSearchConsole, searchConsoleRoute } from './search-console-endpoint.js';
import type {
  AccountSpec,
  EventKind,
  Fault,
  FakeCounts,
  FakeEvent,
  FakeGoogleOptions,
  GaAccountSpec,
  PropertySpec,
  QuotaSettings,
  RewriteRequest,
  SearchAnalyticsQuery,
  SearchAnalyticsRow,
  ServiceAccountKeyJson,
  SitePermissionLevel,
  SiteSpec,
} from './types.js';

/** The GA account of a property added without one. */
const DEFAULT_GA_ACCOUNT = '100001';

interface Route {
  kind: EventKind;
  property?: string;
  /** a Search Console request's site URL */
  site?: string;
  /** generateAccessToken's service account */
  target?: string;
}

const MAX_BODY = 8 * 1024 * 1024;

function route(method: string, path: string): Route | undefined {
  if (path === '/token') return method === 'POST' ? { kind: 'token' } : undefined;
  const report = /^\/v1beta\/properties\/([^/:]+):runReport$/.exec(path);
  if (report) return method === 'POST' ? { kind: 'runReport', property: report[1] } : undefined;
  const metadata = /^\/v1beta\/properties\/([^/:]+)\/metadata$/.exec(path);
  if (metadata) return method === 'GET' ? { kind: 'metadata', property: metadata[1] } : undefined;
  if (path === '/v1beta/accountSummaries') return method === 'GET' ? { kind: 'accountSummaries' } : undefined;
  return keylessRoute(method, path);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size <= MAX_BODY) chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * A runReport (searchAnalytics) body's offset, limit (startRow, rowLimit) and dimensions, as far as
 * it can be read (for faults that match on them).
 */
function pageOf(body: string, kind: EventKind): RewriteRequest | undefined {
  try {
    const b = JSON.parse(body) as { offset?: unknown; limit?: unknown; startRow?: unknown; rowLimit?: unknown; dimensions?: unknown };
    const dimensions = Array.isArray(b.dimensions)
      ? b.dimensions.map((d) => (typeof d === 'string' ? d : String((d as { name?: unknown } | null)?.name ?? '')))
      : [];
    if (kind === 'searchAnalytics') return { offset: Number(b.startRow ?? 0) || 0, limit: Number(b.rowLimit ?? 0) || 1000, dimensions };
    return { offset: Number(b.offset ?? 0) || 0, limit: Number(b.limit ?? 0) || 0, dimensions };
  } catch {
    return undefined;
  }
}

export class FakeGoogle {
  private readonly state: FakeState;
  private readonly faults: FaultPlan;
  private readonly host: string;
  private readonly port: number;
  private readonly compress: boolean;
  private server: Server | undefined;
  private baseUrl: string | undefined;
  private stopped: Promise<void> | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly held = new Set<ServerResponse>();
  private readonly assertions: string[] = [];
  /** identities without a key: metadata server, people, federation, impersonation grants (identity.ts) */
  readonly identity: FakeIdentity;
  private readonly searchConsole: SearchConsole;

  constructor(opts: FakeGoogleOptions = {}) {
    this.state = createState({
      tokenLifetimeSeconds: opts.tokenLifetimeSeconds ?? 3600,
      maxPageSize: opts.maxPageSize ?? 250_000,
      revisionDays: opts.revision?.days,
      now: opts.now ?? Date.now,
      calendarNow: opts.calendarNow ?? opts.now ?? Date.now,
      adminPageSize: opts.adminPageSize ?? 200,
    });
    this.faults = new FaultPlan(opts.faultSeed ?? 1);
    this.identity = new FakeIdentity(this.state);
    this.searchConsole = new SearchConsole(this.state);
    this.host = opts.host ?? '127.0.0.1';
    this.port = opts.port ?? 0;
    this.compress = opts.compress ?? false;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent && !res.destroyed) this.write(res, jsonReply(500, { error: { code: 500, message: String(err), status: 'INTERNAL' } }));
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    this.baseUrl = `http://${host}:${port}`;
    this.state.audiences.push(this.tokenUrl);
  }

  /** Closes the server and every connection, including keep-alive and hanging ones. Safe to call twice. */
  stop(): Promise<void> {
    const server = this.server;
    if (!server) return Promise.resolve();
    this.stopped ??= new Promise<void>((resolve) => {
      for (const t of this.timers) clearTimeout(t);
      this.timers.clear();
      for (const res of this.held) res.destroy();
      this.held.clear();
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return this.stopped;
  }

  get url(): string {
    if (!this.baseUrl) throw new Error('FakeGoogle is not started: call start() first');
    return this.baseUrl;
  }

  get tokenUrl(): string {
    return `${this.url}/token`;
  }

  get apiRootUrl(): string {
    return `${this.url}/`;
  }

  /** The value for google.searchConsoleRootUrl: the fake serves Search Console at its root too. */
  get searchConsoleRootUrl(): string {
    return `${this.url}/`;
  }

  /** Adds a Search Console property (search-console.ts). */
  addSite(spec: SiteSpec): void {
    this.searchConsole.addSite(spec);
  }

  /** Makes the account a user of the site; default siteFullUser. siteUnverifiedUser sees the site but not its data. */
  grantSite(clientEmail: string, siteUrl: string, permissionLevel: SitePermissionLevel = 'siteFullUser'): void {
    this.searchConsole.grant(clientEmail, siteUrl, permissionLevel);
  }

  revokeSite(clientEmail: string, siteUrl: string): void {
    this.searchConsole.revoke(clientEmail, siteUrl);
  }

  /** searchAnalytics.query calls allowed per minute for the site (Google: 1,200); beyond it, 429 RESOURCE_EXHAUSTED. */
  setSearchConsoleQuota(siteUrl: string, q: { queriesPerMinute?: number }): void {
    this.searchConsole.setQuota(siteUrl, q);
  }

  /** Every row searchAnalytics.query would answer for `q` now, across all pages, in the API's order (search-console-data.ts). */
  searchAnalyticsRows(siteUrl: string, q: SearchAnalyticsQuery): SearchAnalyticsRow[] {
    return this.searchConsole.rows(siteUrl, q);
  }

  /** Search Console's today (America/Los_Angeles) by the fake's calendar clock. */
  searchConsoleToday(): string {
    return this.searchConsole.today();
  }

  /** Registers a public key for an account (creating the account on first use); an account may hold several keys. */
  addAccount(a: AccountSpec): void {
    const publicKey = parsePublicKey(a.publicKeyPem);
    let account = this.state.accounts.get(a.clientEmail);
    if (!account) {
      account = {
        clientEmail: a.clientEmail,
        clientId: String(100_000_000_000_000_000_000n + BigInt(this.state.accounts.size + 1) * 7_919n),
        projectId: a.projectId ?? projectOf(a.clientEmail),
        keys: [],
      };
      this.state.accounts.set(a.clientEmail, account);
    }
    account.keys.push({ id: a.privateKeyId, publicKey, revoked: false });
  }

  /** Makes a new RSA key for the account and returns its key file, as the Cloud console downloads it. Needs start() first (for token_uri). */
  createAccount(clientEmail: string, opts: { projectId?: string } = {}): ServiceAccountKeyJson {
    const tokenUri = this.tokenUrl;
    const key = generateServiceAccountKey();
    const projectId = opts.projectId ?? this.state.accounts.get(clientEmail)?.projectId ?? projectOf(clientEmail);
    this.addAccount({ clientEmail, publicKeyPem: key.publicKeyPem, privateKeyId: key.privateKeyId, projectId });
    const json = keyJson(clientEmail, projectId, key, tokenUri);
    json.client_id = this.state.accounts.get(clientEmail)?.clientId ?? json.client_id;
    return json;
  }

  /** Later assertions signed with that key (every key of the account when no id is given) fail; issued tokens stay valid. */
  revokeKey(clientEmail: string, privateKeyId?: string): void {
    const account = this.state.accounts.get(clientEmail);
    if (!account) throw new Error(`unknown account ${clientEmail}`);
    for (const k of account.keys) if (privateKeyId === undefined || k.id === privateKeyId) k.revoked = true;
  }

  addProperty(p: PropertySpec): void {
    if (!/^\d+$/.test(p.id)) throw new Error(`property id must be numeric: ${p.id}`);
    assertTimeZone(p.timeZone);
    const dataFrom = p.dataFrom ?? '2020-01-01';
    if (!isIsoDate(dataFrom)) throw new Error(`dataFrom must be YYYY-MM-DD: ${dataFrom}`);
    if (p.rowsPerDay !== undefined && !(Number.isInteger(p.rowsPerDay) && p.rowsPerDay >= 1))
      throw new Error(`rowsPerDay must be a positive integer: ${p.rowsPerDay}`);
    const account = p.account ?? DEFAULT_GA_ACCOUNT;
    if (!this.state.gaAccounts.has(account)) this.addGaAccount({ id: account });
    if (p.parent !== undefined && !/^(accounts|properties)\/\d+$/.test(p.parent)) throw new Error(`parent must be accounts/N or properties/N: ${p.parent}`);
    this.state.properties.set(p.id, {
      id: p.id,
      timeZone: p.timeZone,
      currencyCode: p.currencyCode ?? 'USD',
      dataFrom,
      ...(p.rowsPerDay !== undefined ? { rowsPerDay: p.rowsPerDay } : {}),
      account,
      displayName: p.displayName ?? `Property ${p.id}`,
      propertyType: p.propertyType ?? 'PROPERTY_TYPE_ORDINARY',
      parent: p.parent ?? `accounts/${account}`,
    });
  }

  /** Deletes a property: the Admin API stops listing it and the Data API answers 403 for it. */
  removeProperty(propertyId: string): void {
    this.state.properties.delete(propertyId);
    this.state.grants.delete(propertyId);
  }

  /** A Google Analytics account (what the Admin API lists properties under); also made by addProperty on first use. */
  addGaAccount(a: GaAccountSpec): void {
    if (!/^\d+$/.test(a.id)) throw new Error(`GA account id must be numeric: ${a.id}`);
    this.state.gaAccounts.set(a.id, { id: a.id, displayName: a.displayName ?? `Account ${a.id}` });
  }

  /** Access on a whole GA account: every property of it, present and future. */
  grantAccount(clientEmail: string, gaAccountId: string): void {
    let set = this.state.accountGrants.get(gaAccountId);
    if (!set) this.state.accountGrants.set(gaAccountId, (set = new Set()));
    set.add(clientEmail);
  }

  revokeAccount(clientEmail: string, gaAccountId: string): void {
    this.state.accountGrants.get(gaAccountId)?.delete(clientEmail);
  }

  /** Whether the Admin API is enabled in a Cloud project (it is, until switched off here). */
  setAdminApiEnabled(projectId: string, enabled: boolean): void {
    if (enabled) this.state.adminApiDisabled.delete(projectId);
    else this.state.adminApiDisabled.add(projectId);
  }

  grant(clientEmail: string, propertyId: string): void {
    let set = this.state.grants.get(propertyId);
    if (!set) {
      set = new Set();
      this.state.grants.set(propertyId, set);
    }
    set.add(clientEmail);
  }

  revoke(clientEmail: string, propertyId: string): void {
    this.state.grants.get(propertyId)?.delete(clientEmail);
  }

  /** Every request to a known endpoint, in order of arrival. */
  get events(): FakeEvent[] {
    return this.state.events;
  }

  /** Every access token the token endpoint has handed out (for tests that look for leaked secrets). */
  issuedTokens(): string[] {
    return [...this.state.tokens.keys()];
  }

  /** Every signed JWT assertion posted to the token endpoint, valid or not, in order of arrival. */
  receivedAssertions(): string[] {
    return [...this.assertions];
  }

  counts(): FakeCounts {
    const c: FakeCounts = { token: 0, tokenOk: 0, runReport: 0, runReportOk: 0, byProperty: {} };
    for (const e of this.state.events) {
      if (e.kind === 'token') {
        c.token++;
        if (e.status === 200 && e.fault !== 'stall') c.tokenOk++;
      } else if (e.kind === 'runReport') {
        c.runReport++;
        if (e.status === 200 && !BAD_BODY_FAULTS.has(e.fault ?? '')) c.runReportOk++;
        if (e.property !== undefined) c.byProperty[e.property] = (c.byProperty[e.property] ?? 0) + 1;
      }
    }
    return c;
  }

  inject(fault: Fault): void {
    this.faults.add(fault);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /**
   * Makes the token endpoint answer its successes differently, as proxies and private STS
   * endpoints do: `rewrite` gets Google's body (`access_token`, `expires_in`, `token_type`) and
   * returns the one to send, e.g. `(b) => ({ ...b, expires_in: String(b.expires_in) })`. The
   * token's real lifetime is unchanged. `undefined` restores Google's answer.
   */
  rewriteTokenResponse(rewrite: ((body: Record<string, unknown>) => unknown) | undefined): void {
    this.state.tokenResponseRewrite = rewrite;
  }

  /** Sets the tokens remaining in the current day/hour windows, and the concurrent-request limit. */
  setQuota(propertyId: string, settings: QuotaSettings): void {
    this.state.quota.set(propertyId, settings);
  }

  /** The revision the next runReport page for this date would be served with (0 outside the revision window). */
  revisionOf(propertyId: string, date: string): number {
    const property = this.state.properties.get(propertyId);
    const days = this.state.revisionDays;
    if (!property || days === undefined) return 0;
    const today = todayIn(property.timeZone, this.state.calendarNow());
    if (date < addDays(today, -days) || date > today) return 0;
    return this.state.revisions.get(propertyId)?.get(date) ?? 0;
  }

  /** The calendar date in the property's time zone, by the fake's clock. */
  todayOf(propertyId: string): string {
    const property = this.state.properties.get(propertyId);
    if (!property) throw new Error(`unknown property ${propertyId}`);
    return todayIn(property.timeZone, this.state.calendarNow());
  }

  /**
   * A reply's headers and bytes as sent to this request: gzipped when the fake compresses
   * (`compress`) and the request takes gzip, as Google does.
   */
  private encode(res: ServerResponse, reply: Reply): { headers: Record<string, string>; body: Buffer } {
    const body = Buffer.from(reply.body);
    if (!this.compress || !acceptsGzip(res.req.headers['accept-encoding'])) return { headers: reply.headers, body };
    return { headers: { ...reply.headers, 'content-encoding': 'gzip' }, body: gzipSync(body) };
  }

  private write(res: ServerResponse, reply: Reply, event?: FakeEvent, truncate = false): void {
    if (res.destroyed || res.writableEnded) return;
    if (this.compress) {
      // a truncated body is cut where a dropped connection cuts it: in the bytes sent
      const { headers, body } = this.encode(res, reply);
      const sent = truncate ? body.subarray(0, Math.floor(body.length / 2)) : body;
      res.writeHead(reply.status, { ...headers, 'content-length': sent.length });
      res.end(sent);
      if (event && headers['content-encoding']) event.encoding = headers['content-encoding'];
    } else {
      const body = truncate ? reply.body.slice(0, Math.floor(reply.body.length / 2)) : reply.body;
      res.writeHead(reply.status, { ...reply.headers, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    }
    if (event) {
      event.status = reply.status;
      event.respondedAt = this.state.now();
    }
  }

  /** Sends a successful answer as the fault that hit the request (if any) spoils it. */
  private deliver(res: ServerResponse, reply: Reply, event: FakeEvent, fault: Fault | undefined, request?: RewriteRequest): void {
    switch (fault?.kind) {
      case 'truncate':
        return this.write(res, reply, event, true);
      case 'garbage':
        // what an upstream proxy (Envoy) answers when the backend went away mid-request
        return this.write(
          res,
          {
            status: 200,
            headers: { 'content-type': 'application/json; charset=UTF-8' },
            body: 'upstream connect error or disconnect/reset before headers. reset reason: connection termination',
          },
          event,
        );
      case 'html':
        return this.write(
          res,
          {
            status: 200,
            headers: { 'content-type': 'text/html; charset=UTF-8' },
            body: '<!DOCTYPE html>\n<html><head><title>Sign in to the network</title></head><body><form action="/login">Please sign in to continue.</form></body></html>\n',
          },
          event,
        );
      case 'stall': {
        if (res.destroyed || res.writableEnded) return;
        const { headers, body } = this.encode(res, reply);
        res.writeHead(reply.status, { ...headers, 'content-length': body.length });
        res.write(body.subarray(0, Math.floor(body.length / 2)));
        event.status = reply.status;
        if (headers['content-encoding']) event.encoding = headers['content-encoding'];
        // the rest never comes; the connection stays open until the client gives up (or stop())
        this.held.add(res);
        res.on('close', () => this.held.delete(res));
        return;
      }
      case 'rewrite': {
        const out = fault.rewrite!(JSON.parse(reply.body) as Record<string, unknown>, request ?? { offset: 0, limit: 0, dimensions: [] });
        return this.write(res, { ...reply, body: typeof out === 'string' ? out : JSON.stringify(out) }, event);
      }
      default:
        return this.write(res, reply, event);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake.invalid');
    let path = url.pathname;
    try {
      path = decodeURIComponent(path);
    } catch {
      // keep it undecoded: it will not match a route
    }
    const r: Route | undefined = searchConsoleRoute(req.method ?? 'GET', url.pathname) ?? route(req.method ?? 'GET', path);
    const body = await readBody(req);
    if (!r) {
      this.write(res, htmlError(404, url.pathname));
      return;
    }
    const event: FakeEvent = { kind: r.kind, receivedAt: this.state.now(), respondedAt: 0, status: 0 };
    if (r.property !== undefined) event.property = r.property;
    if (r.site !== undefined) event.site = r.site;
    if (r.kind === 'accountSummaries') {
      event.pageToken = url.searchParams.has('pageToken');
      const size = Number(url.searchParams.get('pageSize') ?? NaN);
      if (Number.isInteger(size)) event.pageSize = size;
    }
    this.state.events.push(event);
    res.on('close', () => {
      if (event.respondedAt === 0) event.respondedAt = this.state.now();
    });

    const paged = r.kind === 'runReport' || r.kind === 'searchAnalytics';
    const fault = this.faults.take(r.kind, r.property, paged ? pageOf(body, r.kind) : undefined, r.site);
    if (fault) event.fault = faultLabel(fault);
    if (fault?.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'status') {
      this.write(res, faultReply(fault.status ?? 500, fault.message), event);
      return;
    }
    const pretty = url.searchParams.get('prettyPrint') !== 'false';
    const hold = async (): Promise<boolean> => {
      if (fault?.kind === 'delay') await this.sleep(fault.delayMs ?? 0);
      if (fault?.kind === 'hang') {
        this.held.add(res);
        res.on('close', () => this.held.delete(res));
        return false;
      }
      return !res.destroyed;
    };

    if (r.kind === 'token') {
      const assertion = new URLSearchParams(body).get('assertion');
      if (assertion) this.assertions.push(assertion);
      if (!(await hold())) return;
      const params = new URLSearchParams(body);
      const outcome = isRefreshGrant(params)
        ? handleRefreshGrant(this.identity, this.state, params)
        : handleToken(this.state, body, req.headers['content-type'] ?? '');
      if (outcome.account !== undefined) event.account = outcome.account;
      this.deliver(res, outcome.reply, event, fault);
      return;
    }

    if (isKeylessKind(r.kind)) {
      if (!(await hold())) return;
      const outcome = handleKeyless(this.identity, this.state, { kind: r.kind, ...(r.target ? { target: r.target } : {}) }, req, url, path, body);
      if (outcome.account !== undefined) event.account = outcome.account;
      this.deliver(res, outcome.reply, event, fault);
      return;
    }

    if (r.kind === 'searchAnalytics' || r.kind === 'sites') {
      if (!(await hold())) return;
      const sc = { kind: r.kind, ...(r.site !== undefined ? { site: r.site } : {}) };
      const outcome = handleSearchConsole(this.state, sc, req.headers.authorization, body, pretty, event, { reverse: fault?.kind === 'reverse' });
      if (outcome.reply.status !== 200) return this.write(res, outcome.reply, event);
      this.deliver(res, outcome.reply, event, fault, outcome.page && { ...outcome.page, dimensions: pageOf(body, r.kind)?.dimensions ?? [] });
      return;
    }

    if (r.kind === 'accountSummaries') {
      if (!(await hold())) return;
      const auth = authenticate(this.state, req.headers.authorization, 'ListAccountSummaries', ADMIN_API);
      if (!auth.ok) return this.write(res, auth.reply, event);
      event.account = auth.value.account.clientEmail;
      event.tokenIssuedAt = auth.value.token.issuedAt;
      this.write(res, listAccountSummaries(this.state, auth.value.account, url.searchParams, pretty), event, fault?.kind === 'truncate');
      return;
    }

    const method = r.kind === 'runReport' ? 'RunReport' : 'GetMetadata';
    if (r.kind === 'metadata' && !(await hold())) return;
    const auth = authenticate(this.state, req.headers.authorization, method);
    if (!auth.ok) return this.write(res, auth.reply, event);
    event.account = auth.value.account.clientEmail;
    event.tokenIssuedAt = auth.value.token.issuedAt;
    event.scopes = auth.value.token.scopes;

    if (r.kind === 'metadata') {
      const prop = authorizeProperty(this.state, auth.value.account, r.property ?? '');
      if (!prop.ok) return this.write(res, prop.reply, event);
      this.deliver(res, jsonReply(200, buildMetadata(prop.value.id), {}, pretty), event, fault);
      return;
    }

    // Transcoding errors come before the method's own checks, as at Google.
    const transcoded = transcodeRunReport(body);
    if (!transcoded.ok) return this.write(res, invalidArgument(transcoded.message), event);
    const prop = authorizeProperty(this.state, auth.value.account, r.property ?? '');
    if (!prop.ok) return this.write(res, prop.reply, event);
    const property = prop.value;
    const today = todayIn(property.timeZone, this.state.calendarNow());
    const valid = validateRunReport(transcoded.value, today);
    if (!valid.ok) return this.write(res, invalidArgument(valid.message), event);
    const request = valid.value;
    event.offset = request.offset;
    if (request.limitGiven !== undefined) event.limit = request.limitGiven;
    event.dimensions = request.dimensions;
    event.startDate = request.dateRanges.map((d) => d.start).sort()[0];
    event.endDate = request.dateRanges
      .map((d) => d.end)
      .sort()
      .at(-1);
    event.aggregations = request.aggregations;

    const overConcurrency = this.state.quota.enter(property.id);
    if (overConcurrency) return this.write(res, faultReply(429, overConcurrency), event);
    res.on('close', () => this.state.quota.leave(property.id));
    // A slow or hanging request holds its concurrency slot, as it would at Google.
    if (!(await hold())) return;
    const outcome = runReport(this.state, property, auth.value.account.projectId, request, today, pretty, { reverse: fault?.kind === 'reverse' });
    if (outcome.rows !== undefined) event.rows = outcome.rows;
    if (outcome.tokens !== undefined) event.tokens = outcome.tokens;
    if (outcome.reply.status !== 200) return this.write(res, outcome.reply, event);
    this.deliver(res, outcome.reply, event, fault, { offset: request.offset, limit: request.limit, dimensions: request.dimensions });
  }
}
