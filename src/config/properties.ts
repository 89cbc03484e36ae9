/**
 * The `properties` list: each entry a GA4 property id (alone, or `{ id, reports?, schedule?,
 * credentials?, impersonate? }`), checked by a zod schema so the result is typed; then what one entry cannot
 * tell alone: an id listed twice, a report that is not defined, where its key file is.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { isValidSchedule } from '../schedule/cron.js';
import { configError, serviceAccountEmailProblem, zodProblem } from './problems.js';
import { nameList } from './reports.js';
import type { PropertyConfig, ReportDefinition } from './types.js';

const PROPERTY_KEYS = ['id', 'reports', 'schedule', 'credentials', 'impersonate'] as const;

/** `schedule`, `credentials` and `impersonate` of a property or site entry. */
export const principalFields = {
  schedule: z
    .custom<string>((v) => isValidSchedule(v), { error: (iss) => `must be a cron expression like "0 4 * * *", got ${JSON.stringify(iss.input)}` })
    .optional(),
  credentials: z.custom<string>((v) => typeof v === 'string' && v.length > 0, { error: 'must be a credentials file path' }).optional(),
  impersonate: z
    .custom<string>((v) => typeof v === 'string' && (v === '' || serviceAccountEmailProblem(v) === null), {
      error: (iss) => (typeof iss.input === 'string' ? serviceAccountEmailProblem(iss.input)! : 'must be a service account email'),
    })
    .optional(),
};

const entrySchema = z.preprocess(
  // a bare id, 123 or "123", is a property with every default
  (v) => (typeof v === 'string' || typeof v === 'number' ? { id: v } : v),
  z.strictObject(
    {
      id: z
        .custom<string | number>((v) => (typeof v === 'string' || typeof v === 'number') && /^[0-9]{1,20}$/.test(String(v)), {
          error: (iss) => `must be the numeric GA4 property id (GA Admin > Property details), got ${JSON.stringify(iss.input)}`,
        })
        .transform(String),
      reports: nameList.optional(),
      ...principalFields,
    },
    { error: (iss) => (iss.code === 'invalid_type' ? 'must be { id, reports?, schedule?, credentials?, impersonate? }' : undefined) },
  ),
);

/** Where relative key files are found and whether they must exist now. */
export interface PropertyContext {
  reports: Record<string, ReportDefinition>;
  defaultSchedule: string;
  /** `google.credentials`, as given ('' when unset: Application Default Credentials) */
  defaultCredentials: string;
  /** how errors name `google.credentials` (and the variable it came from) */
  defaultCredentialsKey?: string;
  /** `google.impersonate` ('' for none) */
  defaultImpersonate: string;
  /** relative paths are relative to the config file's directory */
  baseDir: string;
  env: NodeJS.ProcessEnv;
  requireCredentials: boolean;
}

/**
 * Checks the `properties` list and fills in each property's defaults (every report, the default
 * schedule, `google.credentials`).
 *
 * @throws UsageError `config: properties[i]...: <problem>` for the first problem found
 */
export function normaliseProperties(input: readonly unknown[], ctx: PropertyContext): PropertyConfig[] {
  const seen = new Set<string>();
  return input.map((item, i) => {
    const key = `properties[${i}]`;
    const parsed = entrySchema.safeParse(item);
    if (!parsed.success) throw zodProblem(parsed.error, key, PROPERTY_KEYS);
    const p = parsed.data;
    const id = p.id;
    if (seen.has(id)) throw configError(`${key}.id: property ${id} is listed twice`);
    seen.add(id);
    const reportNames = p.reports ?? Object.keys(ctx.reports);
    for (const r of reportNames) {
      if (!ctx.reports[r]) throw configError(`${key}.reports: unknown report ${JSON.stringify(r)} (defined: ${Object.keys(ctx.reports).join(', ')})`);
    }
    const schedule = p.schedule ?? ctx.defaultSchedule;
    return { id, reports: reportNames, schedule, ...principalOf(p, key, ctx) };
  });
}

/**
 * The principal of a property or site entry: its own `credentials` and `impersonate`, else the
 * `google.*` ones. No credentials anywhere is Application Default Credentials ('').
 *
 * @throws UsageError when a key file does not exist (and must) or cannot be read
 */
export function principalOf(
  entry: { credentials?: string | undefined; impersonate?: string | undefined },
  key: string,
  ctx: PropertyContext,
): { credentials: string; impersonate: string } {
  let credentials = '';
  if (entry.credentials !== undefined) {
    credentials = resolveCredentials(entry.credentials, `${key}.credentials`, ctx.baseDir, ctx.env, ctx.requireCredentials);
  } else if (ctx.defaultCredentials) {
    credentials = resolveCredentials(ctx.defaultCredentials, ctx.defaultCredentialsKey ?? 'google.credentials', ctx.baseDir, ctx.env, ctx.requireCredentials);
  }
  // an entry naming credentials of its own is another principal: google.impersonate is not put on top of them
  const impersonate = entry.impersonate ?? (entry.credentials !== undefined ? '' : ctx.defaultImpersonate);
  return { credentials, impersonate };
}

/**
 * A key file path as given, relative to the config file, or (a bare name) in
 * $CREDENTIALS_DIRECTORY, where systemd's LoadCredential= puts it.
 *
 * @throws UsageError when it does not exist (and `mustExist`) or cannot be read
 */
export function resolveCredentials(value: string, key: string, baseDir: string, env: NodeJS.ProcessEnv, mustExist = true): string {
  const candidates: string[] = [path.resolve(baseDir, value)];
  const credDir = env['CREDENTIALS_DIRECTORY'];
  if (credDir && !value.includes('/')) candidates.unshift(path.join(credDir, value));
  for (const c of candidates) {
    if (fs.existsSync(c)) {
      try {
        fs.accessSync(c, fs.constants.R_OK);
      } catch {
        throw configError(`${key}: key file ${c} is not readable by this user`);
      }
      return c;
    }
  }
  if (!mustExist) return candidates[candidates.length - 1]!;
  const where = credDir && !value.includes('/') ? ` (looked in ${credDir} and ${baseDir})` : '';
  throw configError(`${key}: key file ${value} does not exist${where}`);
}
