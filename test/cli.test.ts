/**
 * The command line as a user meets it: usage, --help of every command, --version, one line and
 * exit 2 for bad input (with the nearest flag or command), and `ga-collector config`: the
 * configuration in effect with each value's source, the password never shown.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { MAIN, runCli, tmpDir } from './helpers.js';

const dir = tmpDir('cli');
const key = path.join(dir, 'key.json');
fs.writeFileSync(key, '{}');

function write(name: string, content: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, content);
  return f;
}

const COMMANDS = ['run', 'migrate', 'backfill', 'check', 'status', 'config', 'prune', 'demo'];

function oneLine(r: { stderr: string }): void {
  assert.equal(r.stderr.trim().split('\n').length, 1, `exactly one line: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
}

describe('usage and help', () => {
  it('a bare ga-collector prints the usage on stderr and exits 2', async () => {
    const r = await runCli([]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^usage: ga-collector <command>/);
    for (const c of COMMANDS) assert.match(r.stderr, new RegExp(`^  ${c} +\\S`, 'm'), c);
  });

  it('--help prints the usage on stdout and exits 0; --version the version', async () => {
    const help = await runCli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: ga-collector <command>/);
    const version = await runCli(['--version']);
    assert.equal(version.code, 0);
    const pkg = JSON.parse(fs.readFileSync(path.join(path.dirname(MAIN), '..', 'package.json'), 'utf8')) as { version: string };
    assert.equal(version.stdout, `ga-collector ${pkg.version}\n`);
  });

  it("every help line fits in 100 columns (the long ones wrapped, each flag's text under its column)", async () => {
    for (const c of COMMANDS) {
      const r = await runCli(['help', c]);
      assert.equal(r.code, 0, c);
      const long = r.stdout.split('\n').filter((l) => l.length > 100);
      assert.deepEqual(long, [], c);
    }
    const backfill = (await runCli(['help', 'backfill'])).stdout;
    assert.match(
      backfill,
      /^ {2}--site URL {5}a site of searchConsole\.sites, as listed there \(sc-domain:example\.com,\n {17}https:\/\/www\.example\.com\/\)$/m,
    );
    assert.match(backfill, /Search Console keeps about 16 months/);
  });

  it('backfill --site --to today names Search Console, not GA', async () => {
    const site = await runCli(['backfill', '--site', 'sc-domain:example.com', '--from', '5daysAgo', '--to', 'today']);
    assert.equal(site.code, 2);
    assert.match(site.stderr, /--to today: Search Console has not finished today \(Pacific\)/);
    assert.doesNotMatch(site.stderr, /GA /);
    const property = await runCli(['backfill', '--property', '1', '--from', '5daysAgo', '--to', 'today']);
    assert.match(property.stderr, /--to today: GA has not finished today/);
  });

  it('every command takes --help and documents each of its flags', async () => {
    const flags: Record<string, string[]> = {
      run: ['--config FILE', '--once', '--dry-run', '-h, --help'],
      migrate: ['--config FILE'],
      backfill: ['--config FILE', '--property ID', '--report NAME', '--from DATE', '--to DATE', '--dry-run'],
      check: ['--config FILE', '--json'],
      status: ['--config FILE', '--json'],
      config: ['--config FILE'],
      prune: ['--config FILE', '--property ID', '--site URL', '--report NAME', '--yes'],
      demo: ['--keep', '--data-dir DIR'],
    };
    for (const c of COMMANDS) {
      for (const args of [
        [c, '--help'],
        [c, '-h'],
        ['help', c],
      ]) {
        const r = await runCli(args);
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stdout, new RegExp(`^usage: ga-collector ${c}\\b`), args.join(' '));
        for (const f of flags[c]!) assert.match(r.stdout, new RegExp(`^  ${f.replace(/[-]/g, '\\-')}\\s+\\S`, 'm'), `${c} documents ${f}`);
      }
    }
    const backfill = await runCli(['backfill', '--help']);
    assert.match(backfill.stdout, /--to DATE\s+the last date, included/);
    assert.match(backfill.stdout, /both included/);
  });

  it('bad input is one line and exit 2, with the nearest flag or command', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['stauts'], /^ga-collector: unknown command "stauts" .*; did you mean status\?$/m],
      [['run', '--dryrun'], /^ga-collector: run: unknown flag --dryrun \(flags: --config, --once, --dry-run, --help\); did you mean --dry-run\?$/m],
      [['status', '--jsn'], /did you mean --json\?/],
      [['run', '--dry-run'], /run: --dry-run goes with --once/],
      [['run', '--once=yes'], /run: --once takes no value/],
      [['status', '--config'], /status: --config needs a value \(FILE\)/],
      [['status', 'extra'], /status: unexpected argument "extra"/],
      [
        ['backfill', '--property', '1', '--from', '2024-02-30', '--to', '2024-03-01'],
        /backfill: --from must be a date as YYYY-MM-DD, NdaysAgo or yesterday, got "2024-02-30"/,
      ],
      [['backfill', '--property', '1', '--from', 'yesterday', '--to', 'today'], /--to today: GA has not finished today/],
      [['prune'], /prune: say what to prune/],
      [['prune', '--property', 'G-123'], /prune: --property must be a numeric GA4 property id/],
      [['prune', '--report', 'Bad-Name'], /prune: --report "Bad-Name": a report name must be/],
      [['prune', '--property', '1', '--site', 'sc-domain:example.com'], /prune: give --property ID or --site URL, not both/],
      [
        ['prune', '--site', 'https://www.example.com'],
        /prune: --site is no Search Console site name: a URL-prefix property ends with \/ as Search Console lists it: "https:\/\/www\.example\.com\/"/,
      ],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(args, { env: { DATABASE_URL: 'postgres://localhost/x' } });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
      oneLine(r);
    }
  });

  it('a bad value from the environment names the variable and the value; an unknown key the nearest one', async () => {
    const env = { DATABASE_URL: 'postgres://u:hunter2@localhost/x', GOOGLE_APPLICATION_CREDENTIALS: key, GA_COLLECTOR_PROPERTIES: '1' };
    const conc = await runCli(['config'], { env: { ...env, GA_COLLECTOR_CONCURRENCY: 'abc' } });
    assert.equal(conc.code, 2);
    assert.equal(conc.stderr, 'ga-collector: config: concurrency: must be a positive integer, got "abc" from GA_COLLECTOR_CONCURRENCY\n');
    const level = await runCli(['run', '--once'], { env: { ...env, LOG_LEVEL: 'loud' } });
    assert.equal(level.code, 2);
    assert.match(level.stderr, /^ga-collector: config: log\.level: must be one of .*, got "loud" from LOG_LEVEL$/m);
    // a secret is named by its variable, never shown
    const url = await runCli(['status'], { env: { ...env, DATABASE_URL: 'not a url hunter2' } });
    assert.equal(url.code, 2);
    assert.equal(url.stderr, 'ga-collector: config: database.url: must be a URL (from DATABASE_URL)\n');
    const typo = await runCli(['config', '--config', write('typo.yaml', 'htp:\n  port: 9000\n')], { env });
    assert.equal(typo.code, 2);
    assert.equal(typo.stderr, 'ga-collector: config: htp: unknown key; did you mean http?\n');
    const nested = await runCli(['config', '--config', write('typo2.yaml', 'reports:\n  daily:\n    metrics: [sessions]\n    refreshDay: 2\n')], { env });
    assert.equal(nested.code, 2);
    assert.match(nested.stderr, /reports\.daily\.refreshDay: unknown key \(allowed: dimensions, metrics, startDate, refreshDays\); did you mean refreshDays\?/);
    for (const r of [conc, level, url, typo, nested]) {
      oneLine(r);
      assert.doesNotMatch(r.stderr + r.stdout, /hunter2/);
    }
  });
});

describe('ga-collector config', () => {
  it('prints every value in effect with its source: file, environment or default; the password redacted', async () => {
    const file = write(
      'shown.yaml',
      `database:\n  url: postgres://collector:s3cret-pw@db.internal:5432/analytics\ngoogle:\n  credentials: key.json\nschedule: "15 3 * * *"\nproperties:\n  - id: "123456"\n  - id: "654321"\n    reports: [devices]\nreports:\n  daily:\n    metrics: [sessions]\n  devices:\n    dimensions: [deviceCategory]\n    metrics: [activeUsers]\n    startDate: 90daysAgo\n`,
    );
    const r = await runCli(['config', '--config', file], { env: { GA_COLLECTOR_CONCURRENCY: '2', GA_COLLECTOR_DB_SCHEMA: 'analytics' } });
    assert.equal(r.code, 0, r.stderr);
    const row = (key: string) => r.stdout.split('\n').find((l) => l.startsWith(`${key} `)) ?? assert.fail(`no row ${key} in\n${r.stdout}`);
    assert.match(r.stdout, new RegExp(`^config file: ${file.replace(/[.]/g, '\\.')}$`, 'm'));
    assert.match(row('database.url'), new RegExp(`postgres://collector:\\*\\*\\*@db\\.internal:5432/analytics\\s+file ${file}$`));
    assert.match(row('database.schema'), /analytics\s+env GA_COLLECTOR_DB_SCHEMA$/);
    assert.match(row('concurrency'), /\b2\s+env GA_COLLECTOR_CONCURRENCY$/);
    assert.match(row('schedule'), /15 3 \* \* \*\s+file /);
    assert.match(row('http.port'), /9464\s+default$/);
    assert.match(row('google.tokenUrl'), /\(unset: the key file's token_uri, else https:\/\/oauth2\.googleapis\.com\/token\)\s+default$/);
    assert.match(row('google.credentials'), new RegExp(`${key.replace(/[.]/g, '\\.')}\\s+file `));
    assert.match(
      row('properties[0]'),
      new RegExp(`\\{ id: 123456, reports: \\[daily, devices\\], schedule: 15 3 \\* \\* \\*, credentials: ${key.replace(/[.]/g, '\\.')} \\}`),
    );
    assert.match(row('properties[1]'), /reports: \[devices\]/);
    assert.match(row('reports.devices'), /\{ dimensions: \[date, deviceCategory\], metrics: \[activeUsers\], startDate: 90daysAgo, refreshDays: 3 \}\s+file /);
    assert.doesNotMatch(r.stdout + r.stderr, /s3cret-pw/);
  });

  it('shows each Search Console site and report on a row of its own, as properties and reports', async () => {
    const file = write(
      'sites.yaml',
      [
        `google:\n  credentials: ${key}\n  impersonate: reader@proj.iam.gserviceaccount.com`,
        'properties: ["1"]',
        'searchConsole:',
        '  reports:',
        '    performance:\n      dimensions: [date, query, page]',
        '    appearance:\n      dimensions: [searchAppearance]\n      dataState: all\n      refreshDays: 2',
        '  sites:',
        '    - sc-domain:example.com',
        '    - url: https://www.example.org/\n      reports: [performance]\n      schedule: "0 6 * * *"\n      credentials: key.json',
        '',
      ].join('\n'),
    );
    const r = await runCli(['config', '--config', file], { env: { DATABASE_URL: 'postgres://localhost/x' } });
    assert.equal(r.code, 0, r.stderr);
    const row = (k: string) => r.stdout.split('\n').find((l) => l.startsWith(`${k} `)) ?? assert.fail(`no row ${k} in\n${r.stdout}`);
    const k = key.replace(/[.]/g, '\\.');
    assert.match(
      row('searchConsole.sites[0]'),
      new RegExp(
        `^searchConsole\\.sites\\[0\\] +\\{ url: sc-domain:example\\.com, reports: \\[performance, appearance\\], schedule: 0 4 \\* \\* \\*, credentials: ${k}, impersonate: reader@proj\\.iam\\.gserviceaccount\\.com \\} +file `,
      ),
    );
    // credentials of its own: another principal, google.impersonate is not put on top; no blank impersonate
    assert.match(
      row('searchConsole.sites[1]'),
      new RegExp(`\\{ url: https://www\\.example\\.org/, reports: \\[performance\\], schedule: 0 6 \\* \\* \\*, credentials: ${k} \\} +file `),
    );
    assert.match(
      row('searchConsole.reports.performance'),
      /\{ dimensions: \[date, query, page\], type: web, dataState: final, aggregationType: auto, startDate: 480daysAgo, refreshDays: 4 \} +file /,
    );
    assert.match(row('searchConsole.reports.appearance'), /\{ dimensions: \[date, searchAppearance\], type: web, dataState: all, .*refreshDays: 2 \} +file /);
    assert.match(row('properties[0]'), /credentials: .*, impersonate: reader@proj\.iam\.gserviceaccount\.com \}/);
    assert.doesNotMatch(r.stdout, /^searchConsole\.sites +/m, 'no list of every site on one row');
    assert.doesNotMatch(r.stdout, /impersonate: *[,}]/, 'no blank impersonate');

    const none = await runCli(['config', '--config', write('nosites.yaml', `properties: ["1"]\ngoogle:\n  credentials: ${key}\n`)], {
      env: { DATABASE_URL: 'postgres://localhost/x' },
    });
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stdout, /^searchConsole\.sites +\(none\) +default$/m);
    assert.match(none.stdout, /^searchConsole\.reports\.performance +\{ dimensions: \[date, query, page, country, device\], type: web, .* +default$/m);
  });

  it('takes the file from GA_COLLECTOR_CONFIG, hides a password given as a URL parameter, and exits 2 on a bad config', async () => {
    const file = write('fromenv.yaml', `properties: ["1"]\ngoogle:\n  credentials: ${key}\n`);
    const r = await runCli(['config'], { env: { GA_COLLECTOR_CONFIG: file, DATABASE_URL: 'postgres://db.internal/analytics?user=c&password=p4ss-in-query' } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^config file: .*fromenv\.yaml \(from GA_COLLECTOR_CONFIG\)$/m);
    assert.match(r.stdout, /^database\.url +postgres:\/\/db\.internal\/analytics\?user=c&password=\*\*\* +env DATABASE_URL$/m);
    assert.match(r.stdout, /^reports\.daily +.* default$/m);
    assert.doesNotMatch(r.stdout, /p4ss-in-query/);
    const bad = await runCli(['config', '--config', write('bad.yaml', 'schedule: nope\n')], { env: { DATABASE_URL: 'postgres://localhost/x' } });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^ga-collector: config: schedule: must be a cron expression like "0 4 \* \* \*", got "nope"$/m);
    oneLine(bad);
  });
});
