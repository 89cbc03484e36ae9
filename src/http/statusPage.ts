/**
 * The status page, rendered on the server from the `/api/status` document: plain HTML with one
 * stylesheet and inline SVG, no script and no front-end build, so it works from `curl` to a
 * locked-down browser, under a Content-Security-Policy that allows that stylesheet alone (by its
 * hash: no 'unsafe-inline'). A page of properties, those that need attention first (failing,
 * stale, with gaps), one card each (its time zone, a chart of its main metric over the last 30
 * days from GA's per-date totals, a row per report; a discovered one says where it was found),
 * and a card per Search Console site (its Pacific calendar, a chart of its clicks per day summed
 * over its stored rows, a row per report),
 * then discovery (when on: its last listing, its error, the properties that went), the service
 * accounts' tokens and the recent failures. A refused configuration reload is a banner at the top. It reloads itself
 * every 30 s.
 */
import crypto from 'node:crypto';
import type { StatusDocument } from '../status.js';

type Report = StatusDocument['reports'][number];
type Series = StatusDocument['series'][number];

const esc = (s: unknown) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** "3 min ago", "in 5 h": relative to the document's own time, so the page is reproducible. */
function relative(iso: string | null, now: number): string {
  if (!iso) return 'never';
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  return seconds < 0 ? `in ${span(-seconds)}` : `${span(seconds)} ago`;
}

function span(seconds: number): string {
  if (seconds < 90) return `${seconds} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} d`;
}

const number = (v: number) => (Number.isInteger(v) ? v.toLocaleString('en-US') : v.toLocaleString('en-US', { maximumFractionDigits: 2 }));

/** A report is failing when its last error is newer than its last success (status.ts decides). */
function failing(report: Report): boolean {
  return report.attention === 'failing';
}

/** Metrics whose days add up: counts of sessions, events, views, revenue; not users, rates or averages. */
function additive(metric: string): boolean {
  return !/users|rate|average|per|duration$/i.test(metric) || /^userEngagementDuration$/.test(metric);
}

/** An area chart of one metric per day, with the range of values and dates as labels. */
function chart(series: Series): string {
  // the last 30 of the property's own days (the query's window is the server's calendar)
  const points = series.points.slice(-30);
  if (points.length === 0) return '<p class="muted chart-empty">no data yet</p>';
  const width = 960;
  const height = 170;
  const pad = { l: 52, r: 12, t: 12, b: 24 };
  const iw = width - pad.l - pad.r;
  const ih = height - pad.t - pad.b;
  const max = Math.max(1, ...points.map((p) => p.value));
  const x = (i: number) => pad.l + (points.length > 1 ? (i * iw) / (points.length - 1) : iw / 2);
  const y = (v: number) => pad.t + ih - (v / max) * ih;
  const line = points.map((p, i) => `${x(i).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ');
  const area = `${x(0).toFixed(1)},${pad.t + ih} ${line} ${x(points.length - 1).toFixed(1)},${pad.t + ih}`;
  const last = points[points.length - 1]!;
  // a sum over days means something for counts, not for users (a user of two days is one) or rates
  const total = points.reduce((n, p) => n + p.value, 0);
  const grid = [0, 0.5, 1]
    .map((f) => {
      const gy = (pad.t + ih - f * ih).toFixed(1);
      return `<line x1="${pad.l}" x2="${width - pad.r}" y1="${gy}" y2="${gy}" class="grid"/><text x="${pad.l - 6}" y="${gy}" class="axis" text-anchor="end" dominant-baseline="middle">${esc(number(max >= 10 ? Math.round(max * f) : Math.round(max * f * 100) / 100))}</text>`;
    })
    .join('');
  const dots = points
    .map((p, i) => `<circle cx="${x(i).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="2"><title>${esc(p.date)}: ${esc(number(p.value))}</title></circle>`)
    .join('');
  const site = series.kind === 'searchConsole';
  const note = site
    ? `${esc(series.metric)} per day, summed over the stored rows of report ${esc(series.report)} (${esc(rowSumBasis(series.dimensions ?? [], series.aggregationType))})`
    : `${esc(series.metric)} per day, GA's daily total (report ${esc(series.report)})`;
  return `<svg class="chart" role="img" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" aria-label="${esc(series.metric)} per day for ${site ? 'site' : 'property'} ${esc(series.property)}, ${points.length} days, latest ${esc(number(last.value))} on ${esc(last.date)}">
<g>${grid}</g>
<polygon class="area" points="${area}"/><polyline class="line" points="${line}"/><g class="dots">${dots}</g>
<text x="${pad.l}" y="${height - 6}" class="axis">${esc(points[0]!.date)}</text><text x="${width - pad.r}" y="${height - 6}" class="axis" text-anchor="end">${esc(last.date)}</text>
</svg>
<p class="chart-note">${note}: ${esc(number(last.value))} on ${esc(last.date)}${additive(series.metric) ? `, ${esc(number(total))} in ${points.length} days` : ''}</p>`;
}

/**
 * What a site chart's sum over a report's rows is, by what the report groups by
 * (anonymized queries: https://support.google.com/webmasters/answer/7576553; counted by page
 * rather than by property when grouped or aggregated by page: https://support.google.com/webmasters/answer/7042828).
 */
function rowSumBasis(dimensions: readonly string[], aggregationType?: string): string {
  const byQuery = dimensions.includes('query');
  const byPage = dimensions.includes('page') || aggregationType === 'byPage';
  const notes: string[] = [];
  if (byQuery) notes.push("grouped by query: the top rows Google served, anonymized queries left out, so it can be below the site's total");
  if (byPage) notes.push("by page: impressions and clicks counted per page, not per search, so it can differ from the site's total");
  if (dimensions.includes('searchAppearance')) notes.push('by search appearance: a result with several appearances counts in each');
  if (notes.length) return `${notes.join('; ')} in Search Console`;
  return dimensions.length === 0
    ? "grouped by date alone: the site's total in Search Console"
    : `grouped by date and ${dimensions.join(', ')}: adds up to the site's total in Search Console`;
}

const PILL: Record<string, string> = {
  running: '<span class="pill run">running</span>',
  failing: '<span class="pill bad">failing</span>',
  stale: '<span class="pill bad" title="no successful run since the schedule fired more than an hour ago">stale</span>',
  gaps: '<span class="pill warn">gaps</span>',
  ok: '<span class="pill ok">ok</span>',
  waiting: '<span class="pill">waiting</span>',
};

function reportRow(report: Report, now: number): string {
  const state = report.running ? 'running' : (report.attention ?? (report.lastSuccess ? 'ok' : 'waiting'));
  return `<tr class="${failing(report) || report.stale ? 'bad' : ''}">
<td><strong>${esc(report.report)}</strong></td><td>${PILL[state]}</td>
<td title="${esc(report.lastSuccess ?? '')}">${esc(relative(report.lastSuccess, now))}</td>
<td>${esc(report.dataThrough ?? '—')}</td>
<td class="num">${esc(report.storedDays)}</td>
<td class="num${report.gaps > 0 ? ' warn' : ''}">${esc(report.gaps)}</td>
<td class="num">${esc(report.datesPending ?? '—')}</td>
<td title="${esc(report.nextRun ?? '')}">${esc(report.nextRun ? relative(report.nextRun, now) : '—')}</td>
<td class="err">${report.lastError ? `${esc(report.lastError)} <span class="muted">(${esc(relative(report.lastErrorAt, now))})</span>` : ''}</td>
</tr>`;
}

function propertyCard(id: string, reports: Report[], series: Series | undefined, now: number): string {
  const tz = reports.find((r) => r.timeZone)?.timeZone ?? 'time zone not known yet';
  const bad = reports.some((r) => failing(r) || r.stale);
  const d = reports[0]?.discovered;
  const found = d
    ? ` <span class="pill" title="found by discovery in account ${esc(d.account)}${d.accountName ? ` (${esc(d.accountName)})` : ''}, ${esc(d.propertyType)}">discovered</span> <span class="muted">${esc(d.displayName)} · account ${esc(d.accountName || d.account)}</span>`
    : '';
  const site = reports[0]?.kind === 'searchConsole';
  const heading = site
    ? `<section class="card site${bad ? ' failing' : ''}" data-site="${esc(id)}">
<h3>Search Console site ${esc(id)} <span class="muted">· Pacific days (${esc(tz)})</span></h3>`
    : `<section class="card property${bad ? ' failing' : ''}" data-property="${esc(id)}">
<h3>Property ${esc(id)} <span class="muted">· ${esc(tz)}</span>${found}</h3>`;
  return `${heading}
${series ? chart(series) : `<p class="muted">no chart: the ${site ? 'site' : 'property'} has no report</p>`}
<table class="reports"><thead><tr><th>report</th><th>state</th><th>last success</th><th>data through</th><th class="num">days</th><th class="num">gaps</th><th class="num">pending</th><th>next run</th><th>last error</th></tr></thead>
<tbody>
${reports.map((r) => reportRow(r, now)).join('\n')}
</tbody></table>
</section>`;
}

/** Discovery: what the last listing found, when the next one runs, its error, and the properties that went. */
function discoverySection(d: NonNullable<StatusDocument['discovery']>, now: number): string {
  const when = d.lastSuccess ? `listed ${relative(d.lastSuccess, now)}` : 'no successful listing yet';
  const gone = d.disappeared
    .map(
      (
        p,
      ) => `<tr><td>${esc(p.property)}</td><td>${esc(p.displayName)}</td><td>${esc(p.accountName || p.account)} <span class="muted">(${esc(p.account)})</span></td>
<td><time datetime="${esc(p.at)}" title="${esc(p.at)}">${esc(relative(p.at, now))}</time></td></tr>`,
    )
    .join('\n');
  return `<div class="card" id="discovery">
<p>${esc(d.kept)} ${d.kept === 1 ? 'property' : 'properties'} kept of ${esc(d.listed)} listed in ${esc(d.accounts)} ${d.accounts === 1 ? 'account' : 'accounts'} (${esc(d.added)} not in the configured list); ${esc(when)}${d.running ? ' · <span class="pill run">listing</span>' : ''}${d.nextRun ? ` · next <span title="${esc(d.nextRun)}">${esc(relative(d.nextRun, now))}</span>` : ''}</p>
${d.lastError ? `<p class="err" id="discovery-error">Discovery failing <span class="muted">(${esc(relative(d.lastErrorAt, now))})</span>: ${esc(d.lastError)}. The configured properties${d.lastSuccess ? ' and the last discovered ones' : ''} are fetched meanwhile; it is tried again by itself.</p>` : ''}
${
  gone
    ? `<h3>No longer listed</h3><p class="muted">Not fetched any more by discovery; their data stays.</p><table id="disappeared"><thead><tr><th>property</th><th>name</th><th>account</th><th>since</th></tr></thead><tbody>
${gone}
</tbody></table>`
    : ''
}
</div>`;
}

/** Links to the other pages, keeping the page size when it is not the default. */
function pager(page: NonNullable<StatusDocument['page']>, attention: number, withSites: boolean): string {
  const href = (n: number) => `?page=${n}${page.perPage !== DEFAULT_PER_PAGE ? `&amp;perPage=${page.perPage}` : ''}`;
  const first = (page.page - 1) * page.perPage + 1;
  const last = Math.min(page.properties, page.page * page.perPage);
  const where =
    page.properties === 0
      ? withSites
        ? 'no properties or sites'
        : 'no properties'
      : first > page.properties
        ? `page ${page.page} of ${page.pages}: past the last ${withSites ? 'property or site' : 'property'}`
        : `${withSites ? 'properties and sites' : 'properties'} ${first}–${last} of ${page.properties}`;
  const links = [
    page.page > 1 ? `<a href="${href(page.page - 1)}" rel="prev">← previous</a>` : '',
    page.page < page.pages ? `<a href="${href(page.page + 1)}" rel="next">next →</a>` : '',
  ].filter(Boolean);
  return `<nav class="pager" aria-label="pages">${where}${attention ? `; the ${attention} that need attention come first` : ''}${links.length ? ` · ${links.join(' · ')}` : ''}</nav>`;
}

const DEFAULT_PER_PAGE = 50;

/**
 * The page's one stylesheet. Its hash is in the Content-Security-Policy, so it must stay a
 * constant: nothing of the document goes in it.
 */
const STYLE = `
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#f6f8fa;--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--accent:#0969da}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:var(--fg);background:var(--bg)}
header{background:#fff;border-bottom:1px solid var(--line);padding:1rem 1.5rem}
header h1{font-size:20px;margin:0 0 .4rem}
main{padding:1rem 1.5rem;max-width:1200px}
h2{font-size:16px;margin:1.5rem 0 .6rem}
.banner{border:1px solid #ffcecb;background:#ffebe9;color:var(--bad);border-radius:8px;padding:.6rem 1rem;margin:0 0 1rem}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:1rem 1.2rem;margin:0 0 1rem}
.card.failing{border-color:var(--bad)}
.card h3{margin:0 0 .5rem;font-size:15px}
table{border-collapse:collapse;width:100%;margin:.5rem 0 0;background:#fff}
td,th{border-bottom:1px solid var(--line);padding:.35rem .55rem;text-align:left;vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.03em}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.warn{color:var(--warn);font-weight:600}
tr.bad td{background:#fff5f5}
.err{color:var(--bad);max-width:32rem;overflow-wrap:anywhere}
.muted{color:var(--muted);font-weight:normal}
.mono{font-family:ui-monospace,monospace;font-size:12px}
.pill{display:inline-block;border-radius:999px;padding:0 .55rem;font-size:12px;border:1px solid var(--line);color:var(--muted);white-space:nowrap}
.pill.ok{color:var(--ok);border-color:#aceebb;background:#dafbe1}
.pill.bad{color:var(--bad);border-color:#ffcecb;background:#ffebe9}
.pill.warn{color:var(--warn);border-color:#f5e0a0;background:#fff8c5}
.pill.run{color:var(--accent);border-color:#b6e3ff;background:#ddf4ff}
.pager{color:var(--muted);margin:0 0 .8rem}
svg.chart{width:100%;height:auto;display:block}
svg.chart .grid{stroke:#eaeef2}
svg.chart .axis{font-size:11px;fill:var(--muted)}
svg.chart .area{fill:#0969da1f}
svg.chart .line{fill:none;stroke:var(--accent);stroke-width:2}
svg.chart .dots circle{fill:var(--accent)}
.chart-note{margin:.2rem 0 .4rem;color:var(--muted);font-size:12px}
ul#failures{padding-left:1.2rem}ul#failures li{margin:.2rem 0}
footer{color:var(--muted);font-size:12px;padding:0 1.5rem 1.5rem}
`;

/**
 * The page's Content-Security-Policy: nothing loads but its own stylesheet, allowed by hash; no
 * script, no frame may hold the page, no form or base URL.
 */
export const STATUS_PAGE_CSP = `default-src 'none'; style-src 'sha256-${crypto.createHash('sha256').update(STYLE).digest('base64')}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

/**
 * The whole page for a status document (a page of properties, or all of them when the document
 * is not paged), as a UTF-8 HTML string. Everything from the document is escaped.
 */
export function renderStatusPage(doc: StatusDocument): string {
  const now = Date.parse(doc.generatedAt);
  const byProperty = new Map<string, Report[]>();
  for (const report of doc.reports) {
    let list = byProperty.get(report.property);
    if (!list) byProperty.set(report.property, (list = []));
    list.push(report);
  }
  const seriesOf = new Map(doc.series.map((s) => [s.property, s]));
  const cards = [...byProperty].map(([p, reports]) => propertyCard(p, reports, seriesOf.get(p), now)).join('\n');
  const sum = doc.summary;
  const badTokens = doc.tokens.filter((t) => !t.valid).length;
  const tokens = doc.tokens
    .map(
      (t) => `<tr class="${t.valid ? '' : 'bad'}"><td>${esc(t.account)}</td><td class="mono">${esc(t.keyId || '—')}</td>
<td>${t.valid ? '<span class="pill ok">valid</span>' : '<span class="pill bad">no valid token</span>'}</td>
<td title="${esc(t.expiresAt ?? '')}">${esc(t.expiresAt ? relative(t.expiresAt, now) : '—')}</td>
<td class="err">${t.lastError ? `${esc(t.lastError)}${t.failingSince ? ` <span class="muted">(failing since ${esc(relative(t.failingSince, now))})</span>` : ''}` : ''}</td></tr>`,
    )
    .join('\n');
  const failures = doc.recentFailures
    .slice(0, 20)
    .map(
      (f) =>
        `<li><time datetime="${esc(f.at)}" title="${esc(f.at)}">${esc(relative(f.at, now))}</time> <strong>${esc(f.property)}/${esc(f.report)}</strong>: ${esc(f.error)}</li>`,
    )
    .join('\n');
  const summary = [
    doc.database.reachable
      ? '<span class="pill ok">database reachable</span>'
      : `<span class="pill bad">database unreachable</span> <span class="err">${esc(doc.database.error)}</span>`,
    badTokens
      ? `<span class="pill bad">${badTokens} of ${doc.tokens.length} tokens not valid</span>`
      : `<span class="pill ok">${doc.tokens.length} ${doc.tokens.length === 1 ? 'token' : 'tokens'} valid</span>`,
    sum.failing ? `<span class="pill bad">${sum.failing} of ${sum.reports} reports failing</span>` : `<span class="pill ok">${sum.reports} reports ok</span>`,
    sum.stale ? `<span class="pill bad">${sum.stale} stale</span>` : '',
    sum.withGaps ? `<span class="pill warn">${sum.withGaps} with gaps</span>` : '',
    doc.discovery?.lastError ? '<span class="pill bad">discovery failing</span>' : '',
  ]
    .filter(Boolean)
    .join(' ');
  const reload = doc.lastReload;
  const banner =
    reload && !reload.ok
      ? `<div class="banner" role="alert" id="reload-refused"><strong>Configuration reload refused</strong> <time datetime="${esc(reload.at)}" title="${esc(reload.at)}">${esc(relative(reload.at, now))}</time>: ${esc(reload.error)}. The daemon runs on with the configuration it had; fix the file and send SIGHUP again.</div>`
      : '';
  const alarm = sum.failing || sum.stale || badTokens || !doc.database.reachable || (reload && !reload.ok) || doc.discovery?.lastError;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${alarm ? '⚠ ' : ''}ga-collector status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30">
<style>${STYLE}</style></head><body>
<header><h1>ga-collector</h1><div id="summary">${summary}</div></header>
<main>
${banner}
<h2>Properties${sum.sites ? ' and Search Console sites' : ''}</h2>
${doc.page ? pager(doc.page, sum.needAttention, sum.sites > 0) : ''}
<div id="properties">
${cards || '<p class="muted">no properties or sites configured</p>'}
</div>
${
  doc.discovery
    ? `<h2>Discovery</h2>
${discoverySection(doc.discovery, now)}`
    : ''
}
<h2>Service accounts</h2>
<div class="card"><table id="tokens"><thead><tr><th>account</th><th>key id</th><th>token</th><th>expires</th><th>last error</th></tr></thead><tbody>
${tokens || '<tr><td colspan="5" class="muted">no service accounts</td></tr>'}
</tbody></table></div>
<h2>Recent failures</h2>
<div class="card"><ul id="failures">${failures || '<li class="muted">none</li>'}</ul></div>
</main>
<footer>version ${esc(doc.version)} · generated ${esc(doc.generatedAt)} · <a href="/api/status">/api/status</a> · <a href="/metrics">/metrics</a> · <a href="/readyz">/readyz</a></footer>
</body></html>
`;
}
