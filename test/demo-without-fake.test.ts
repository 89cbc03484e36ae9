/**
 * An installation without the optional dependencies, as the Docker image and the systemd install
 * make it (`npm ci --omit=optional`): the fake Google (the workspace package
 * @ga-collector/fake-google) is not there. The product must not need it, and `ga-collector demo`,
 * the one command that does, must say so in one line and exit 1 before it starts anything.
 *
 * The installation is made here from the built dist/, migrations/ and package.json, with a
 * node_modules that links every installed package but the fake, so no registry is needed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, tmpDir } from './helpers.js';

const FAKE = '@ga-collector/fake-google';

/** Runs `node <install>/dist/main.js ...args` with a bare environment (no DATABASE_URL). */
function runInstalled(install: string, args: string[]) {
  const res = spawnSync(process.execPath, [path.join(install, 'dist', 'main.js'), ...args], {
    cwd: install,
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], TZ: 'UTC' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe('an installation without the optional dependencies', () => {
  let install: string;
  const fakeLink = () => path.join(install, 'node_modules', FAKE);

  before(() => {
    install = tmpDir('no-optional');
    for (const part of ['dist', 'migrations', 'package.json']) fs.cpSync(path.join(ROOT, part), path.join(install, part), { recursive: true });
    const modules = path.join(install, 'node_modules');
    fs.mkdirSync(path.join(modules, '@ga-collector'), { recursive: true });
    for (const name of fs.readdirSync(path.join(ROOT, 'node_modules'))) {
      if (name === '@ga-collector' || name === '.bin' || name.startsWith('.')) continue;
      fs.symlinkSync(path.join(ROOT, 'node_modules', name), path.join(modules, name));
    }
  });
  after(() => fs.rmSync(install, { recursive: true, force: true }));

  it('loads every production module without the fake Google', () => {
    const modules = ['daemon.js', 'check.js', 'config/index.js', 'ga4/client.js', 'auth/tokenManager.js'].map((m) => path.join(install, 'dist', m));
    for (const m of modules) assert.ok(fs.existsSync(m), `${m} is built`);
    const res = spawnSync(process.execPath, ['--input-type=module', '-e', `for (const m of ${JSON.stringify(modules)}) await import(m);`], {
      cwd: install,
      encoding: 'utf8',
    });
    assert.equal(res.status, 0, res.stderr);
    const version = runInstalled(install, ['--version']);
    assert.equal(version.code, 0, version.stderr);
  });

  it('demo says it needs the optional dependencies when the package was left out, exit 1, nothing started', () => {
    fs.rmSync(fakeLink(), { force: true });
    const res = runInstalled(install, ['demo']);
    assert.equal(res.code, 1, res.stderr);
    assert.equal(res.stdout, '', 'nothing started (no embedded PostgreSQL, no fake)');
    assert.equal(
      res.stderr.trim(),
      `ga-collector demo: the demo needs the optional dependencies: its simulated Google is the package ${FAKE}, which this installation left out (npm ci --omit=optional, as the Docker image and the systemd install run it); run the demo from a checkout of the repository: npm ci && npm run demo`,
    );
  });

  it('demo says the same when npm left a link to a workspace that was not copied (npm ci --omit=dev)', () => {
    fs.rmSync(fakeLink(), { force: true });
    fs.symlinkSync('../../packages/fake-google', fakeLink());
    const res = runInstalled(install, ['demo']);
    assert.equal(res.code, 1, res.stderr);
    assert.equal(res.stdout, '');
    assert.match(res.stderr, /^ga-collector demo: the demo needs the optional dependencies: .*npm ci && npm run demo\n$/);
  });

  it('demo says to build when the package is there but not built', () => {
    fs.rmSync(fakeLink(), { force: true });
    const unbuilt = path.join(install, 'fake-google-unbuilt');
    fs.mkdirSync(unbuilt, { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'packages', 'fake-google', 'package.json'), path.join(unbuilt, 'package.json'));
    fs.symlinkSync(unbuilt, fakeLink());
    const res = runInstalled(install, ['demo']);
    assert.equal(res.code, 1, res.stderr);
    assert.equal(res.stdout, '');
    assert.equal(res.stderr.trim(), `ga-collector demo: the demo's simulated Google (${FAKE}) is installed but not built; run \`npm run build\` first`);
  });
});
