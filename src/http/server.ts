/**
 * The HTTP side: Prometheus metrics, liveness, readiness, the status page and its JSON.
 * Nothing here writes; every handler is a read of the daemon's state.
 *
 * The server holds its ground when reachable beyond loopback (the Docker image binds 0.0.0.0):
 * every connection has a deadline for its headers, its request, its idle time and (HTTPS) its
 * handshake, and there is a cap on connections at once, past which new ones are closed at once.
 * Every response carries security headers. HTTPS and basic authentication come from a web config
 * file as Prometheus exporters take it (webConfig.ts); /healthz stays open (see `OPEN_PATHS`).
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { HttpListenError, UsageError, describe } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { StatusDocument, StatusQuery } from '../status.js';
import { MAX_PER_PAGE } from '../status.js';
import { STATUS_PAGE_CSP, renderStatusPage } from './statusPage.js';
import { BasicAuth, loadWebConfig, tlsOptions, type WebConfig } from './webConfig.js';

/** What the server shows of the daemon: the status document and readiness. */
export interface DaemonView {
  /** the status document: everything, or a page of properties (attention first) */
  statusDocument(query?: StatusQuery): Promise<StatusDocument>;
  readiness(): Promise<{ ready: boolean; reasons: string[] }>;
}

/** The server's deadlines and cap. Defaults fit a Prometheus scrape and a person with a browser. */
export interface HttpLimits {
  /** the request line and headers must have arrived this long after the request began (slow senders) */
  headersTimeoutMs: number;
  /** the whole request must have arrived by then */
  requestTimeoutMs: number;
  /** an idle keep-alive connection is closed after this */
  keepAliveTimeoutMs: number;
  /** a connection without any traffic, one that never sends a byte included, is closed after this */
  idleTimeoutMs: number;
  /** a TLS handshake must be done by then */
  handshakeTimeoutMs: number;
  /** connections at once; past it, new ones are closed as they come */
  maxConnections: number;
}

const DEFAULT_HTTP_LIMITS: HttpLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
  handshakeTimeoutMs: 10_000,
  // a few Prometheus servers, a few browsers (six connections each): far below the file limit
  maxConnections: 100,
};

/**
 * Paths served without credentials. /healthz says "ok" and nothing else, and the probes that ask it
 * (the Docker HEALTHCHECK, a liveness probe) are the ones least able to carry a password. /readyz is
 * not among them: its reasons name accounts and database errors.
 */
const OPEN_PATHS = new Set(['/healthz']);

/** On every response: no sniffing, no framing, no referrer leaking the page's address. */
const SECURITY_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};
/** Responses that are not the page load nothing and may be framed by nobody. */
const DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** Interval of the connection-list sweep that enforces the header and request deadlines. */
const checkingInterval = (limits: HttpLimits) => Math.max(250, Math.min(5_000, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 2)));
/** How often a request may look at the web config file (and its certificate) for changes. */
const WEB_CONFIG_CHECK_MS = 2_000;

export interface HttpServerOptions {
  host: string;
  port: number;
  metrics: Metrics;
  source: DaemonView;
  logger: Logger;
  /** absolute path of a web config file (TLS, basic auth); '' or undefined: plain HTTP, no auth */
  webConfigFile?: string | undefined;
  limits?: Partial<HttpLimits>;
}

export class HttpServer {
  private server: http.Server | https.Server | null = null;
  private readonly limits: HttpLimits;
  private webConfig: WebConfig | null;
  private auth: BasicAuth;
  private webConfigStamp = '';
  private webConfigCheckedAt = 0;
  private dropped = 0;
  private dropLoggedAt = 0;

  /** @throws UsageError when the web config file is missing or wrong (exit 2) */
  constructor(private readonly opts: HttpServerOptions) {
    const limits = { ...DEFAULT_HTTP_LIMITS, ...opts.limits };
    // Node refuses a header deadline later than the request deadline
    this.limits = { ...limits, headersTimeoutMs: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) };
    this.webConfig = opts.webConfigFile ? loadWebConfig(opts.webConfigFile) : null;
    this.webConfigStamp = this.stamp();
    this.auth = new BasicAuth(this.webConfig?.users ?? new Map());
  }

  /** @throws HttpListenError (port in use, not permitted) or UsageError (http.host not usable here) */
  async start(): Promise<void> {
    const limits = this.limits;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.handle(req, res).catch((err) => {
        this.opts.logger.error({ event: 'http_error', path: req.url, err: describe(err) }, 'HTTP handler failed');
        if (!res.headersSent) res.writeHead(500, { ...SECURITY_HEADERS, 'content-security-policy': DEFAULT_CSP, 'content-type': 'text/plain' });
        res.end('internal error\n');
      });
    };
    const httpOpts: http.ServerOptions = {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: checkingInterval(limits),
      keepAliveTimeout: limits.keepAliveTimeoutMs,
    };
    const tlsFiles = this.webConfig?.tls;
    const server = tlsFiles
      ? https.createServer({ ...httpOpts, ...tlsOptions(tlsFiles, this.webConfig!.file), handshakeTimeout: limits.handshakeTimeoutMs }, handler)
      : http.createServer(httpOpts, handler);
    server.keepAliveTimeout = limits.keepAliveTimeoutMs;
    // with no 'timeout' listener, Node destroys a socket idle this long: the only deadline that
    // reaches a connection that never sends a byte (the header deadline starts with the first one)
    server.setTimeout(limits.idleTimeoutMs);
    server.maxConnections = limits.maxConnections;
    server.on('drop', () => this.onDrop());
    // before the TLS layer takes the connection, so a renewed certificate serves this one already
    server.prependListener('connection', () => this.refreshWebConfig());
    // a failed handshake or a garbled request is the client's problem, not a log line each
    server.on('tlsClientError', (_err, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, this.opts.host, this.opts.port)));
      server.listen(this.opts.port, this.opts.host, () => resolve());
    });
    server.on('error', (err) => this.opts.logger.error({ event: 'http_server_error', err: describe(err) }, 'HTTP server error'));
    this.server = server;
    this.opts.logger.info(
      { event: 'http_listening', url: this.url, tls: Boolean(tlsFiles), basicAuth: this.auth.enabled, maxConnections: limits.maxConnections },
      'HTTP server listening',
    );
  }

  get url(): string {
    const address = this.server?.address() as AddressInfo | null;
    if (!address) return '';
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `${this.server instanceof https.Server ? 'https' : 'http'}://${host}:${address.port}`;
  }

  /** Connections open now (those refused past the cap are not among them). */
  connections(): Promise<number> {
    const server = this.server;
    if (!server) return Promise.resolve(0);
    return new Promise((resolve, reject) => server.getConnections((err, count) => (err ? reject(err) : resolve(count))));
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private onDrop(): void {
    this.dropped++;
    const now = Date.now();
    if (now - this.dropLoggedAt < 60_000) return;
    this.dropLoggedAt = now;
    this.opts.logger.warn(
      { event: 'http_connections_refused', refused: this.dropped, maxConnections: this.limits.maxConnections },
      'HTTP connection limit reached: new connections are closed',
    );
    this.dropped = 0;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const send = (httpStatus: number, type: string, body: string, headers: Record<string, string> = {}) => {
      res.writeHead(httpStatus, { ...SECURITY_HEADERS, 'content-security-policy': DEFAULT_CSP, 'content-type': type, ...headers }).end(body);
    };
    if (!OPEN_PATHS.has(path)) {
      this.refreshWebConfig();
      if (this.auth.enabled && !(await this.auth.check(req.headers.authorization))) {
        send(401, 'text/plain', 'unauthorized\n', { 'www-authenticate': 'Basic realm="ga-collector", charset="UTF-8"' });
        return;
      }
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(405, 'text/plain', 'method not allowed\n', { allow: 'GET, HEAD' });
      return;
    }
    switch (path) {
      case '/metrics': {
        const body = await this.opts.metrics.text();
        send(200, this.opts.metrics.contentType, body);
        return;
      }
      case '/healthz':
        send(200, 'text/plain', 'ok\n');
        return;
      case '/readyz': {
        const readiness = await this.opts.source.readiness();
        send(
          readiness.ready ? 200 : 503,
          'application/json',
          JSON.stringify(readiness.ready ? { ready: true } : { ready: false, reasons: readiness.reasons }) + '\n',
        );
        return;
      }
      case '/api/status':
      case '/': {
        let query: StatusQuery;
        try {
          query = pageQuery(url.searchParams, path === '/');
        } catch (err) {
          send(400, 'text/plain', `${describe(err)}\n`);
          return;
        }
        const doc = await this.opts.source.statusDocument(query);
        if (path === '/') send(200, 'text/html; charset=utf-8', renderStatusPage(doc), { 'content-security-policy': STATUS_PAGE_CSP });
        else send(200, 'application/json', JSON.stringify(doc, null, 2) + '\n');
        return;
      }
      default:
        send(404, 'text/plain', 'not found\n');
    }
  }

  /** The web config file's (and its TLS files') sizes and times: a change means re-read. */
  private stamp(): string {
    const webConfig = this.webConfig;
    if (!webConfig) return '';
    return [webConfig.file, webConfig.tls?.certFile, webConfig.tls?.keyFile]
      .filter((file): file is string => Boolean(file))
      .map((file) => {
        try {
          const stat = fs.statSync(file);
          return `${stat.mtimeMs}:${stat.size}`;
        } catch {
          return 'missing';
        }
      })
      .join('|');
  }

  /**
   * As exporters do, a changed web config applies without a restart: new users and passwords at
   * once, a renewed certificate to the connections that follow. A broken file is logged and the
   * one in force kept; switching HTTPS on or off needs a restart (the port's protocol changes).
   */
  private refreshWebConfig(): void {
    const current = this.webConfig;
    const now = Date.now();
    if (!current || now - this.webConfigCheckedAt < WEB_CONFIG_CHECK_MS) return;
    this.webConfigCheckedAt = now;
    const stamp = this.stamp();
    if (stamp === this.webConfigStamp) return;
    this.webConfigStamp = stamp;
    const log = this.opts.logger;
    try {
      const next = loadWebConfig(current.file);
      if (Boolean(next.tls) !== Boolean(current.tls)) {
        log.error({ event: 'web_config_reload_failed', file: current.file }, 'web config: turning HTTPS on or off needs a restart; keeping the one in force');
        return;
      }
      if (next.tls && this.server instanceof https.Server) this.server.setSecureContext(tlsOptions(next.tls, next.file));
      this.webConfig = next;
      this.auth = new BasicAuth(next.users);
      log.info({ event: 'web_config_reloaded', file: current.file, tls: Boolean(next.tls), users: next.users.size }, 'web config reloaded');
    } catch (err) {
      log.error({ event: 'web_config_reload_failed', file: current.file, err: describe(err) }, 'web config reload failed; keeping the one in force');
    }
  }
}

/** `?page=N&perPage=M`: the page always pages (page 1 by default); the JSON only when asked. */
function pageQuery(params: URLSearchParams, alwaysPage: boolean): StatusQuery {
  const num = (name: string, max: number): number | undefined => {
    const given = params.get(name);
    if (given === null) return undefined;
    if (!/^[0-9]{1,6}$/.test(given) || Number(given) < 1 || Number(given) > max) throw new Error(`${name}: must be a whole number from 1 to ${max}`);
    return Number(given);
  };
  const page = num('page', 999_999);
  const perPage = num('perPage', MAX_PER_PAGE);
  if (page === undefined && perPage === undefined && !alwaysPage) return {};
  return { page: page ?? 1, ...(perPage !== undefined ? { perPage } : {}) };
}

/** One line that names the setting to change. */
function listenError(err: NodeJS.ErrnoException, host: string, port: number): Error {
  switch (err.code) {
    case 'EADDRINUSE':
      return new HttpListenError(`http.port ${port} on ${host} is already in use`, { cause: err });
    case 'EACCES':
      return new HttpListenError(`http.port ${port} on ${host}: permission denied (a port below 1024 needs root or CAP_NET_BIND_SERVICE)`, { cause: err });
    case 'EADDRNOTAVAIL':
      return new UsageError(`http.host ${host} is not an address of this machine`, { cause: err });
    case 'ENOTFOUND':
      return new UsageError(`http.host ${host} cannot be resolved`, { cause: err });
    default:
      return new HttpListenError(`http.port ${port} on ${host}: cannot listen: ${describe(err)}`, { cause: err });
  }
}
