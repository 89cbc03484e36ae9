/** The status page, rendered on the server: plain HTML and inline SVG, no front-end build. */
import type { StatusDocument } from './server.js';

const esc = (s: unknown) =>
  String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function ago(iso: string | null, now: number): string {
  if (!iso) return 'never';
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (s < 0) return `in ${fmt(-s)}`;
  return `${fmt(s)} ago`;
}

function fmt(s: number): string {
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

function sparkline(points: Array<{ date: string; value: number }>): string {
  if (points.length === 0) return '<span class="muted">no data yet</span>';
  const w = 300;
  const h = 60;
  const max = Math.max(1, ...points.map((p) => p.value));
  const step = points.length > 1 ? w / (points.length - 1) : 0;
  const coords = points.map((p, i) => `${(i * step).toFixed(1)},${(h - (p.value / max) * (h - 4) - 2).toFixed(1)}`).join(' ');
  const last = points[points.length - 1]!;
  return `<svg class="chart" role="img" aria-label="last ${points.length} days, latest ${esc(last.value)} on ${esc(last.date)}" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><polyline fill="none" stroke="#2563eb" stroke-width="2" points="${coords}"/></svg>`;
}

export function renderStatusPage(doc: StatusDocument): string {
  const now = Date.parse(doc.generatedAt);
  const rows = doc.reports
    .map(
      (r) => `<tr class="${r.lastError && (!r.lastSuccess || (r.lastErrorAt ?? '') > r.lastSuccess) ? 'bad' : 'ok'}">
  <td>${esc(r.property)}</td><td>${esc(r.report)}</td><td>${esc(r.timeZone ?? '?')}</td>
  <td title="${esc(r.lastSuccess)}">${esc(ago(r.lastSuccess, now))}</td>
  <td>${esc(r.dataThrough ?? '—')}</td><td>${esc(r.gaps)}</td><td>${esc(r.datesPending ?? '—')}</td>
  <td title="${esc(r.nextRun)}">${r.running ? 'running now' : esc(ago(r.nextRun, now))}</td>
  <td class="err">${esc(r.lastError ?? '')}</td></tr>`,
    )
    .join('\n');
  const tokens = doc.tokens
    .map((t) => `<tr class="${t.valid ? 'ok' : 'bad'}"><td>${esc(t.account)}</td><td>${esc(t.keyId)}</td><td>${t.valid ? 'valid' : 'NOT VALID'}</td><td>${esc(t.expiresAt ? ago(t.expiresAt, now) : '—')}</td><td class="err">${esc(t.lastError ?? '')}</td></tr>`)
    .join('\n');
  const charts = doc.series
    .map((s) => `<figure><figcaption>${esc(s.property)} · ${esc(s.report)} · ${esc(s.metric)} (30 days)</figcaption>${sparkline(s.points)}</figure>`)
    .join('\n');
  const failures = doc.recentFailures
    .slice(0, 20)
    .map((f) => `<li><time>${esc(f.at)}</time> ${esc(f.property)}/${esc(f.report)}: ${esc(f.error)}</li>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ga-collector status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#111}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:top}
tr.bad td{background:#fef2f2}.err{color:#b91c1c;max-width:40rem}.muted{color:#777}
figure{display:inline-block;margin:0 1.5rem 1rem 0}figcaption{font-size:12px;color:#555}
</style></head><body>
<h1>ga-collector</h1>
<p class="muted">version ${esc(doc.version)} · generated ${esc(doc.generatedAt)} · database ${doc.database.reachable ? 'reachable' : `<strong class="err">unreachable: ${esc(doc.database.error)}</strong>`}</p>
<h2>Properties and reports</h2>
<table id="reports"><thead><tr><th>property</th><th>report</th><th>time zone</th><th>last success</th><th>data through</th><th>gaps</th><th>pending</th><th>next run</th><th>last error</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<h2>Charts</h2>
<div id="charts">${charts || '<p class="muted">no data yet</p>'}</div>
<h2>Service accounts</h2>
<table id="tokens"><thead><tr><th>account</th><th>key id</th><th>token</th><th>expires</th><th>last error</th></tr></thead><tbody>
${tokens}
</tbody></table>
<h2>Recent failures</h2>
<ul id="failures">${failures || '<li class="muted">none</li>'}</ul>
</body></html>
`;
}
