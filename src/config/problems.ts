/**
 * How a configuration problem is said: one line, `config: <key>: <problem>`, naming where a bad
 * value came from, with the nearest known key when an unknown one looks like a typo.
 */
import type { z } from 'zod';
import { UsageError } from '../errors.js';

/** `config: <message>` as the UsageError the command line prints (exit 2). */
export function configError(message: string): UsageError {
  return new UsageError(`config: ${message}`);
}

export function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.trim();
}

/** Edit distance (insertions, deletions, substitutions, and swaps of two neighbours). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known name closest to `given` (case-insensitively), when it is close enough to be a typo:
 * at most a third of its letters off (and at most 3). Undefined otherwise.
 */
function nearest(given: string, known: readonly string[]): string | undefined {
  const g = given.toLowerCase();
  let best: { name: string; d: number } | undefined;
  for (const name of known) {
    const d = distance(g, name.toLowerCase());
    if (!best || d < best.d) best = { name, d };
  }
  if (!best || best.d === 0 || best.d > Math.min(3, Math.ceil(given.length / 3))) return undefined;
  return best.name;
}

/** "; did you mean X?" when an unknown name is close to a known one, else ''. */
export function didYouMean(given: string, known: readonly string[]): string {
  const n = nearest(given, known);
  return n ? `; did you mean ${n}?` : '';
}

/**
 * The problem with an undeclared dotted key, named at its first unknown part: a misspelt map
 * (`searchConsole.reprots`) takes in every key under it, and it is the map that is wrong, not
 * `searchConsole.reprots.performance.dimensions`. The nearest name beside it is suggested.
 *
 * @param known every known key with one value, dotted (`fetch.pageSize`); the maps holding them are known too
 */
export function unknownKeyProblem(key: string, known: readonly string[]): UsageError {
  const parts = key.split('.');
  const isKnown = (k: string) => known.some((name) => name === k || name.startsWith(`${k}.`));
  for (let i = 1; i <= parts.length; i++) {
    const prefix = parts.slice(0, i).join('.');
    if (isKnown(prefix)) {
      if (known.includes(prefix)) break; // under a key with one value: convict's own path is the best name
      continue;
    }
    const parent = parts.slice(0, i - 1).join('.');
    const siblings = [
      ...new Set(
        known
          .filter((name) => (parent === '' ? true : name.startsWith(`${parent}.`)))
          .map((name) => name.slice(parent === '' ? 0 : parent.length + 1).split('.')[0]!),
      ),
    ];
    const near = nearest(parts[i - 1]!, siblings);
    return configError(`${prefix}: unknown key${near ? `; did you mean ${parent === '' ? '' : `${parent}.`}${near}?` : ''}`);
  }
  return configError(`${key}: unknown key${didYouMean(key, known)}`);
}

/** `reports.daily.metrics`, `properties[0].id`: a zod path under `prefix` as the config names it. */
function keyPath(prefix: string, path: readonly PropertyKey[]): string {
  let out = prefix;
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `.${String(p)}`;
  return out;
}

/**
 * The first problem zod found, as `config: <key>: <problem>`. An unknown key comes first (as the
 * old hand-written checks did): a misspelt key usually explains the other problems.
 */
export function zodProblem(error: z.ZodError, prefix: string, allowed: readonly string[]): UsageError {
  const issues = error.issues;
  const unknown = issues.find((i) => i.code === 'unrecognized_keys');
  if (unknown && unknown.code === 'unrecognized_keys') {
    const k = unknown.keys[0]!;
    return configError(`${keyPath(prefix, unknown.path)}.${k}: unknown key (allowed: ${allowed.join(', ')})${didYouMean(k, allowed)}`);
  }
  const first = issues[0]!;
  return configError(`${keyPath(prefix, first.path)}: ${first.message}`);
}

/**
 * Why `value` is not a service account's email, or null when it is one. IAM Credentials mints
 * tokens only for service accounts (NAME@PROJECT.iam.gserviceaccount.com); a person cannot be
 * impersonated.
 */
export function serviceAccountEmailProblem(value: string): string | null {
  if (!/^[^@\s]+@[^@\s]+$/.test(value)) return `must be a service account email (NAME@PROJECT.iam.gserviceaccount.com), got ${JSON.stringify(value)}`;
  if (!/\.gserviceaccount\.com$/i.test(value)) {
    return `must be a service account email (NAME@PROJECT.iam.gserviceaccount.com): only service accounts can be impersonated, got ${JSON.stringify(value)}`;
  }
  return null;
}
