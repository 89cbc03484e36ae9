/**
 * The status page in a real browser: a running `ga-collector demo` (on the test database, fake
 * Google inside), loaded in headless Chromium, must show both properties with their time zones,
 * the Search Console site, their reports and a chart each. The screenshot goes to test-output/status-page.png.
 * Needs Debian's chromium (/usr/bin/chromium); without it, and only then, the browser test skips.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { renderStatusPage } from '../src/http/statusPage.js';
import type { StatusDocument } from '../src/status.js';
import { ROOT, startCli, testDb, waitFor, type TestDb } from './helpers.js';
import { CHROMIUM as CHROMIUM_TOOL, skipUnless } from './tools.js';

const CHROMIUM = CHROMIUM_TOOL.command;
const SHOT = path.join(ROOT, 'test-output', 'status-page.png');

describe('status page', () => {
  let db: TestDb;
  let demo: ReturnType<typeof startCli>;
  let url: string;

  before(async () => {
    db = await testDb('statuspage');
    demo = startCli(['demo'], { env: { DATABASE_URL: db.url, GA_COLLECTOR_DB_SCHEMA: db.schema, GA_COLLECTOR_HTTP_PORT: '0' } });
    url = await waitFor(() => /status page:\s+(http:\/\/\S+)/.exec(demo.out.stdout)?.[1], {
      timeoutMs: 30_000,
      what: `the demo's status page address\n${demo.out.stdout}${demo.out.stderr}`,
    });
    await waitFor(() => /data is in after/.test(demo.out.stdout), { timeoutMs: 60_000, what: `the demo's data\n${demo.out.stdout}${demo.out.stderr}` });
  });
  after(async () => {
    if (demo && demo.child.exitCode === null) {
      demo.child.kill('SIGTERM');
      await demo.exited;
    }
    await db?.query(`DROP SCHEMA IF EXISTS "${db.schema}_gsc" CASCADE`).catch(() => undefined);
    await db?.drop();
  });

  it('is served as HTML with both properties and the Search Console site, their reports and a chart each', async () => {
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    const html = await res.text();
    for (const [id, tz] of [
      ['100001', 'America/Los_Angeles'],
      ['100002', 'Pacific/Auckland'],
    ]) {
      assert.match(html, new RegExp(`Property ${id} <span class="muted">· ${tz.replace('/', '\\/')}`));
    }
    assert.match(
      html,
      /<section class="card site" data-site="sc-domain:example\.com">\n<h3>Search Console site sc-domain:example\.com <span class="muted">· Pacific days \(America\/Los_Angeles\)/,
    );
    // the demo site's only report groups by query and page
    assert.match(
      html,
      /clicks per day, summed over the stored rows of report performance \(grouped by query: the top rows Google served, anonymized queries left out/,
    );
    assert.equal((html.match(/<svg class="chart"/g) ?? []).length, 3, 'a chart per property and one for the site');
    assert.doesNotMatch(html, /<script/i, 'no front-end code');
  });

  it('renders in headless Chromium: properties, reports, charts; screenshot saved', { skip: skipUnless(CHROMIUM_TOOL), timeout: 30_000 }, async () => {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const refused: string[] = [];
      page.on('console', (m) => /Content Security Policy|Refused to/i.test(m.text()) && refused.push(m.text()));
      const res = await page.goto(url);
      assert.equal(res?.status(), 200);
      // the stylesheet is allowed by its hash in the CSP: the browser applies it and refuses nothing
      assert.doesNotMatch(res!.headers()['content-security-policy'] ?? '', /unsafe-inline/);
      assert.equal(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(246, 248, 250)');
      assert.deepEqual(refused, []);
      const cards = page.locator('section.property');
      assert.equal(await cards.count(), 2);
      const headings = await page.locator('section.property h3').allInnerTexts();
      assert.deepEqual(headings.map((h) => h.replace(/\s+/g, ' ')).sort(), ['Property 100001 · America/Los_Angeles', 'Property 100002 · Pacific/Auckland']);
      for (const id of ['100001', '100002']) {
        const card = page.locator(`section.property[data-property="${id}"]`);
        // the chart is drawn: a visible SVG with a line through 30 days of points
        const svg = card.locator('svg.chart');
        assert.ok(await svg.isVisible(), `chart of ${id} visible`);
        const box = await svg.boundingBox();
        assert.ok(box && box.width > 300 && box.height > 80, `chart of ${id} has a size: ${JSON.stringify(box)}`);
        const points = (await svg.locator('polyline.line').getAttribute('points'))!.trim().split(' ');
        assert.ok(points.length >= 29, `${points.length} points`);
        assert.deepEqual((await card.locator('table.reports tbody td:first-child').allInnerTexts()).sort(), ['daily', 'devices']);
        assert.deepEqual(await card.locator('.pill').allInnerTexts(), ['ok', 'ok']);
      }
      // the Search Console site: its card, its report, its clicks chart drawn over the days stored
      const site = page.locator('section.site[data-site="sc-domain:example.com"]');
      assert.equal(await site.count(), 1);
      assert.equal(
        (await site.locator('h3').innerText()).replace(/\s+/g, ' '),
        'Search Console site sc-domain:example.com · Pacific days (America/Los_Angeles)',
      );
      const siteChart = site.locator('svg.chart');
      assert.ok(await siteChart.isVisible(), 'the clicks chart is visible');
      assert.match((await siteChart.getAttribute('aria-label'))!, /^clicks per day for site sc-domain:example\.com, 30 days/);
      assert.ok((await siteChart.locator('polyline.line').getAttribute('points'))!.trim().split(' ').length >= 29);
      assert.deepEqual(await site.locator('table.reports tbody td:first-child').allInnerTexts(), ['performance']);
      assert.deepEqual(await site.locator('.pill').allInnerTexts(), ['ok']);
      assert.match(await page.locator('h2').first().innerText(), /Properties and Search Console sites/);
      assert.match(await page.locator('#tokens').innerText(), /demo-collector@ga-collector-demo\.iam\.gserviceaccount\.com\s+\w+\s+valid/);
      fs.mkdirSync(path.dirname(SHOT), { recursive: true });
      await page.screenshot({ path: SHOT, fullPage: true });
      assert.ok(fs.statSync(SHOT).size > 10_000, 'a real screenshot');
    } finally {
      await browser.close();
    }
  });
});

describe('status page rendering', () => {
  const base: StatusDocument = {
    generatedAt: '2026-03-10T12:00:00.000Z',
    version: '0.0.0',
    database: { reachable: true },
    tokens: [
      {
        account: 'a@p.iam.gserviceaccount.com',
        keyId: 'k1',
        valid: false,
        expiresAt: null,
        failingSince: '2026-03-10T11:00:00.000Z',
        lastError: 'token exchange refused',
      },
    ],
    reports: [
      {
        kind: 'ga4',
        property: '1',
        report: 'daily',
        timeZone: 'UTC',
        running: false,
        lastSuccess: '2026-03-09T12:00:00.000Z',
        lastRun: null,
        dataThrough: '2026-03-08',
        firstDate: '2026-02-01',
        storedDays: 30,
        gaps: 6,
        datesPending: 0,
        nextRun: '2026-03-11T04:00:00.000Z',
        lastError: '<b>403</b> no access',
        lastErrorAt: '2026-03-10T11:30:00.000Z',
        stale: false,
        attention: 'failing',
      },
    ],
    recentFailures: [{ at: '2026-03-10T11:30:00.000Z', property: '1', report: 'daily', error: '<script>alert(1)</script>' }],
    series: [{ kind: 'ga4', property: '1', report: 'daily', metric: 'sessions', source: 'totals', points: [] }],
    lastReload: null,
    summary: { properties: 1, sites: 0, needAttention: 1, reports: 1, failing: 1, stale: 0, withGaps: 1, running: 0 },
    page: { page: 1, perPage: 50, pages: 1, properties: 1 },
  };

  it('escapes what it shows, marks failures, and says when there is no data yet', () => {
    const html = renderStatusPage(base);
    assert.doesNotMatch(html, /<script>alert|<b>403/);
    assert.match(html, /&lt;b&gt;403&lt;\/b&gt; no access/);
    assert.match(html, /<span class="pill bad">failing<\/span>/);
    assert.match(html, /1 of 1 tokens not valid/);
    assert.match(html, /no data yet/);
    assert.match(html, /<td class="num warn">6<\/td>/, 'gaps stand out');
    assert.match(html, /title="2026-03-09T12:00:00.000Z">24 h ago</);
    assert.doesNotMatch(html, /reload refused/i);
  });

  it('shows stale and gap states, the pages, and a refused reload with its time and reason', () => {
    const row = base.reports[0]!;
    const html = renderStatusPage({
      ...base,
      reports: [
        { ...row, property: '2', lastError: null, lastErrorAt: null, stale: true, attention: 'stale' },
        { ...row, property: '3', lastError: null, lastErrorAt: null, attention: 'gaps' },
        { ...row, property: '4', lastError: null, lastErrorAt: null, gaps: 0, attention: null },
      ],
      series: [],
      lastReload: { at: '2026-03-10T11:58:00.000Z', ok: false, error: 'reload refused: <http.port> changed; restart the daemon for that' },
      summary: { properties: 130, sites: 0, needAttention: 2, reports: 130, failing: 0, stale: 1, withGaps: 1, running: 0 },
      page: { page: 2, perPage: 50, pages: 3, properties: 130 },
    });
    assert.match(html, /data-property="2"[\s\S]*<span class="pill bad" title="[^"]*">stale<\/span>/);
    assert.match(html, /data-property="3"[\s\S]*<span class="pill warn">gaps<\/span>/);
    assert.match(html, /data-property="4"[\s\S]*<span class="pill ok">ok<\/span>/);
    assert.match(
      html,
      /properties 51–100 of 130; the 2 that need attention come first · <a href="\?page=1" rel="prev">← previous<\/a> · <a href="\?page=3" rel="next">next →<\/a>/,
    );
    assert.match(
      html,
      /<div class="banner" role="alert" id="reload-refused"><strong>Configuration reload refused<\/strong> <time datetime="2026-03-10T11:58:00.000Z" title="2026-03-10T11:58:00.000Z">2 min ago<\/time>: reload refused: &lt;http.port&gt; changed/,
    );
  });

  it("captions a site's clicks chart by what its report groups by", () => {
    const row = { ...base.reports[0]!, kind: 'searchConsole' as const, property: 'sc-domain:example.com', report: 'r', timeZone: 'America/Los_Angeles' };
    const points = [
      { date: '2026-03-06', value: 10 },
      { date: '2026-03-07', value: 12 },
    ];
    const caption = (dimensions: string[], aggregationType = 'auto') => {
      const html = renderStatusPage({
        ...base,
        reports: [row],
        series: [{ kind: 'searchConsole', property: row.property, report: 'r', metric: 'clicks', source: 'rowSum', dimensions, aggregationType, points }],
      });
      return /<p class="chart-note">([^<]*)<\/p>/.exec(html)![1]!;
    };
    const total = caption([]);
    assert.match(
      total,
      /^clicks per day, summed over the stored rows of report r \(grouped by date alone: the site&#39;s total in Search Console\): 12 on 2026-03-07/,
    );
    assert.doesNotMatch(total, /anonymized|below/);
    const byQuery = caption(['query', 'country']);
    assert.match(byQuery, /grouped by query: the top rows Google served, anonymized queries left out, so it can be below the site&#39;s total/);
    assert.doesNotMatch(byQuery, /per page/);
    const byPage = caption(['page']);
    assert.match(byPage, /by page: impressions and clicks counted per page/);
    assert.doesNotMatch(byPage, /anonymized/);
    assert.match(caption([], 'byPage'), /counted per page/, 'aggregated by page though grouped by date alone');
    const both = caption(['query', 'page', 'country', 'device']);
    assert.match(both, /anonymized queries left out, so it can be below the site&#39;s total; by page: impressions and clicks counted per page/);
    assert.match(caption(['country', 'device']), /grouped by date and country, device: adds up to the site&#39;s total/);
  });
});
