/**
 * The configuration reference in README.md, generated from the convict schema (`configSchema()`)
 * and the documentation of `reports` (`REPORTS_DOC`, which convict does not see), so the README
 * cannot drift from the code: `npm run docs` rewrites the table between the
 * `<!-- config-reference:start -->` and `<!-- config-reference:end -->` markers, and
 * test/config-reference.test.ts fails when the README's table differs.
 *
 *   node --import tsx scripts/config-reference.ts          rewrite README.md
 *   node --import tsx scripts/config-reference.ts --check  exit 1 when README.md is stale
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { REPORTS_DOC, SEARCH_CONSOLE_REPORTS_DOC, configSchema } from '../src/config/index.js';
import { flow } from '../src/config/flow.js';

export const README = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'README.md');
const START = '<!-- config-reference:start -->';
const END = '<!-- config-reference:end -->';

interface Leaf {
  doc: string;
  format: unknown;
  default: unknown;
  env?: string;
  sensitive?: boolean;
}

function isLeaf(node: unknown): node is Leaf {
  return typeof node === 'object' && node !== null && 'doc' in node && 'default' in node;
}

function leaves(node: Record<string, unknown>, prefix = ''): Array<[string, Leaf]> {
  return Object.entries(node).flatMap(([k, v]) => {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isLeaf(v)) return [[key, v] as [string, Leaf]];
    return typeof v === 'object' && v !== null ? leaves(v as Record<string, unknown>, key) : [];
  });
}

function defaultCell(v: unknown): string {
  if (v === '' || v === null || v === undefined || (Array.isArray(v) && v.length === 0)) return '—';
  return `\`${flow(v)}\``;
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The Markdown table, one row per key. */
export function renderConfigReference(): string {
  const rows = leaves(configSchema() as unknown as Record<string, unknown>).map(([key, leaf]) => {
    let meaning = leaf.doc;
    if (Array.isArray(leaf.format)) meaning += ` One of: ${leaf.format.join(', ')}.`;
    if (leaf.sensitive) meaning += ' Never logged.';
    return `| \`${key}\` | ${leaf.env ? `\`${leaf.env}\`` : '—'} | ${cell(defaultCell(leaf.default))} | ${cell(meaning)} |`;
  });
  rows.push(`| \`reports\` | — | ${cell(defaultCell(REPORTS_DOC.default))} | ${cell(REPORTS_DOC.doc)} |`);
  rows.push(`| \`searchConsole.reports\` | — | ${cell(defaultCell(SEARCH_CONSOLE_REPORTS_DOC.default))} | ${cell(SEARCH_CONSOLE_REPORTS_DOC.doc)} |`);
  return ['| key | env | default | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/** The README's current block between the markers. */
export function readmeBlock(text: string): string {
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md lacks the ${START} ... ${END} markers`);
  return text.slice(a + START.length, b).trim();
}

export function withReference(text: string): string {
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md lacks the ${START} ... ${END} markers`);
  return `${text.slice(0, a + START.length)}\n${renderConfigReference()}\n${text.slice(b)}`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const text = fs.readFileSync(README, 'utf8');
  if (process.argv.includes('--check')) {
    const stale = readmeBlock(text) !== renderConfigReference();
    process.stdout.write(stale ? 'README.md: the configuration reference is stale; run `npm run docs`\n' : 'README.md: configuration reference up to date\n');
    process.exit(stale ? 1 : 0);
  }
  const next = withReference(text);
  if (next !== text) fs.writeFileSync(README, next);
  process.stdout.write(next !== text ? 'README.md: configuration reference rewritten\n' : 'README.md: configuration reference already up to date\n');
}
