/**
 * Tests that need a tool outside Node.js (Prometheus, promtool, Chromium, script(1)) skip with a
 * one-line reason where it is missing, so `npm test` passes on a machine with only Node.js.
 * `.ci/run` installs every tool and sets GA_COLLECTOR_TEST_REQUIRE_TOOLS=1: there a missing tool
 * is not skipped but fails its test, so CI never passes while silently skipping them.
 */
import fs from 'node:fs';
import path from 'node:path';

export const TOOLS_REQUIRED = process.env['GA_COLLECTOR_TEST_REQUIRE_TOOLS'] === '1';

export interface Tool {
  /** a command looked up on PATH, or an absolute path */
  command: string;
  /** the Debian package that brings it */
  debianPackage: string;
}

export const PROMTOOL: Tool = { command: 'promtool', debianPackage: 'prometheus' };
export const PROMETHEUS: Tool = { command: process.env['PROMETHEUS_BIN'] ?? '/usr/bin/prometheus', debianPackage: 'prometheus' };
export const CHROMIUM: Tool = { command: '/usr/bin/chromium', debianPackage: 'chromium' };
export const SCRIPT: Tool = { command: 'script', debianPackage: 'bsdutils' };

/** The tool's full path, or null when it is not installed. */
export function locate(tool: Tool): string | null {
  const candidates = tool.command.includes('/')
    ? [tool.command]
    : (process.env['PATH'] ?? '')
        .split(path.delimiter)
        .filter(Boolean)
        .map((dir) => path.join(dir, tool.command));
  for (const file of candidates) {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * For `it(name, { skip: skipUnless(TOOL) }, ...)`: false when the tool is there (or CI requires it,
 * so the test runs and fails naming the package), else the reason the test is skipped.
 */
export function skipUnless(...tools: Tool[]): string | false {
  if (TOOLS_REQUIRED) return false;
  const missing = tools.filter((t) => locate(t) === null);
  if (missing.length === 0) return false;
  return `needs ${missing.map((t) => `${t.command} (Debian package ${t.debianPackage})`).join(' and ')}, which is not installed`;
}
