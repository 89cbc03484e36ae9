/**
 * How the collector is started: dist/main.js's first line gives Node its options
 * (`#!/usr/bin/env -S node --max-semi-space-size=2`, src/main.ts says why), and the systemd unit
 * and the Docker image, which call node themselves, give it the same ones. Run as a program (the
 * way `ga-collector` runs once installed), dist/main.js starts through that line.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { MAIN, ROOT } from './helpers.js';

const run = promisify(execFile);

/** The Node options of a `#!/usr/bin/env -S node ...` line; null for another interpreter line. */
function shebangFlags(file: string): string[] | null {
  const first = fs.readFileSync(file, 'utf8').split('\n', 1)[0]!;
  const match = /^#!\/usr\/bin\/env -S node((?: --[a-z-]+=\S+)*)$/.exec(first);
  return match ? match[1]!.split(' ').filter(Boolean) : null;
}

describe('launch flags', () => {
  const flags = shebangFlags(path.join(ROOT, 'src', 'main.ts'));

  it('src/main.ts starts with env -S node and its options, and the build keeps that line', () => {
    assert.deepEqual(flags, ['--max-semi-space-size=2']);
    assert.deepEqual(shebangFlags(MAIN), flags);
  });

  it('the systemd unit runs node with the same options', () => {
    const unit = fs.readFileSync(path.join(ROOT, 'deploy', 'systemd', 'ga-collector.service'), 'utf8');
    const execStart = unit.split('\n').find((line) => line.startsWith('ExecStart='));
    assert.equal(execStart, `ExecStart=/usr/bin/node ${flags!.join(' ')} /opt/ga-collector/dist/main.js run --config /etc/ga-collector/config.yaml`);
  });

  it('the Docker image runs node with the same options', () => {
    const dockerfile = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const entrypoint = dockerfile.split('\n').find((line) => line.startsWith('ENTRYPOINT '));
    assert.equal(entrypoint, `ENTRYPOINT ${JSON.stringify(['node', ...flags!, 'dist/main.js'])}`.replace(/","/g, '", "'));
  });

  it('dist/main.js runs as a program through its first line', async () => {
    const { stdout } = await run(MAIN, ['--version'], { cwd: ROOT });
    assert.match(stdout, /^ga-collector \d+\.\d+\.\d+/);
  });
});
