/**
 * Are a report's dimension and metric names known to a property? The property's own metadata
 * (the Data API's `getMetadata`: the standard fields plus the property's custom ones) says so.
 * `ga-collector check` shows the answer as a table; the runner asks the same question before a
 * definition the property has not stored under yet changes anything in the database, so a typo
 * fails that report with the fix instead of adding a column and clearing history.
 */
import type { ReportDefinition } from '../config/index.js';
import { AbortedError, PermanentError } from '../errors.js';
import type { CallContext } from './callContext.js';
import type { Ga4Client } from './client.js';
import type { MetadataResponse } from './responses.js';

type FieldList = Array<{ apiName?: string | null; deprecatedApiNames?: string[] | null }> | undefined;

/** Known names of one kind: apiName -> undefined, and a deprecated name -> "old (now new)". */
function knownNames(list: FieldList): Map<string, string | undefined> {
  const names = new Map<string, string | undefined>();
  for (const field of list ?? []) {
    if (!field.apiName) continue;
    names.set(field.apiName, undefined);
    for (const old of field.deprecatedApiNames ?? []) names.set(old, `${old} (now ${field.apiName})`);
  }
  return names;
}

export interface UnknownField {
  kind: 'dimension' | 'metric';
  name: string;
  /** the nearest known name of that kind, when one is close (a typo) */
  suggestion?: string;
}

/** The definition's names the metadata does not know, dimensions first, in the config's order. */
export function unknownFields(def: Pick<ReportDefinition, 'dimensions' | 'metrics'>, md: MetadataResponse): UnknownField[] {
  const dimensions = knownNames(md.dimensions);
  const metrics = knownNames(md.metrics);
  const out: UnknownField[] = [];
  const add = (kind: UnknownField['kind'], name: string, known: Map<string, string | undefined>) => {
    if (known.has(name)) return;
    const suggestion = nearest(name, [...known.keys()]);
    out.push({ kind, name, ...(suggestion ? { suggestion } : {}) });
  };
  for (const name of def.dimensions) add('dimension', name, dimensions);
  for (const name of def.metrics) add('metric', name, metrics);
  return out;
}

/** The definition's names that Google still accepts under an older name, as "old (now new)". */
export function deprecatedFields(def: Pick<ReportDefinition, 'dimensions' | 'metrics'>, md: MetadataResponse): string[] {
  const dimensions = knownNames(md.dimensions);
  const metrics = knownNames(md.metrics);
  return [...def.dimensions.map((name) => dimensions.get(name)), ...def.metrics.map((name) => metrics.get(name))].filter(
    (note): note is string => typeof note === 'string',
  );
}

/** "dimension colour, metric sesions" (as `check` lists them). */
export function listUnknown(unknown: UnknownField[]): string {
  return unknown.map((field) => `${field.kind} ${field.name}`).join(', ');
}

/** "sesions -> sessions", for the names that have a near match; '' when none has. */
function listSuggestions(unknown: UnknownField[]): string {
  return unknown
    .filter((field) => field.suggestion)
    .map((field) => `${field.name} -> ${field.suggestion}`)
    .join(', ');
}

/** The fix line for a report with unknown names (check's and the runner's). */
export function unknownFieldsFix(report: string, unknown: UnknownField[]): string {
  const near = listSuggestions(unknown);
  return `fix reports.${report} in the config${near ? ` (did you mean ${near}?)` : ''}: names are the Data API's apiName (e.g. screenPageViews, not "Views"); custom ones are customEvent:NAME / customUser:NAME`;
}

/**
 * The closest candidate by edit distance (letters compared without case; a swap of two neighbours
 * counts once), if it is close enough to be a typo: at most a third of the name's length.
 */
export function nearest(name: string, candidates: string[]): string | undefined {
  const lower = name.toLowerCase();
  const limit = Math.max(1, Math.floor(lower.length / 3));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    if (Math.abs(candidate.length - lower.length) >= bestDistance) continue;
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps. */
function editDistance(source: string, target: string): number {
  // distances[row][column]: from the first `row` characters of source to the first `column` of target
  const distances: number[][] = Array.from({ length: source.length + 1 }, (_, row) => [row, ...Array<number>(target.length).fill(0)]);
  for (let column = 1; column <= target.length; column++) distances[0]![column] = column;
  for (let row = 1; row <= source.length; row++) {
    for (let column = 1; column <= target.length; column++) {
      const cost = source[row - 1] === target[column - 1] ? 0 : 1;
      let distance = Math.min(distances[row - 1]![column]! + 1, distances[row]![column - 1]! + 1, distances[row - 1]![column - 1]! + cost);
      const swapped = row > 1 && column > 1 && source[row - 1] === target[column - 2] && source[row - 2] === target[column - 1];
      if (swapped) distance = Math.min(distance, distances[row - 2]![column - 2]! + 1);
      distances[row]![column] = distance;
    }
  }
  return distances[source.length]![target.length]!;
}

export interface FieldCatalogOptions {
  /** how long a property's metadata is used before it is asked again; default an hour */
  ttlMs?: number;
  now?: () => number;
}

/**
 * Each property's metadata, asked once and kept for `ttlMs` (custom dimensions are added in GA
 * now and then; an hour keeps requests to one per property an hour at most), shared by every job
 * of the property that asks at the same time. `forget()` (on a configuration reload) asks again,
 * so a custom field created in GA and then named in the config is seen at once.
 */
export class FieldCatalog {
  private readonly cache = new Map<string, { at: number; metadata: Promise<MetadataResponse> }>();
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(
    private readonly client: Ga4Client,
    opts: FieldCatalogOptions = {},
  ) {
    this.ttlMs = opts.ttlMs ?? 3_600_000;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Throws a PermanentError naming every unknown field of the definition (with the nearest known
   * name as a suggestion, and the fix) when the property's metadata does not know them all.
   * Failures to get the metadata (403, 5xx after retries, a token) are thrown as the client sorted them.
   */
  async check(ctx: CallContext, def: ReportDefinition): Promise<void> {
    const md = await this.metadata(ctx);
    const unknown = unknownFields(def, md);
    if (unknown.length === 0) return;
    throw new PermanentError(
      `report ${def.name}: unknown to property ${ctx.propertyId}: ${listUnknown(unknown)}; ${unknownFieldsFix(def.name, unknown)}; nothing was fetched or changed`,
      'unknown_field',
    );
  }

  forget(): void {
    this.cache.clear();
  }

  private async metadata(ctx: CallContext): Promise<MetadataResponse> {
    for (let attempt = 1; ; attempt++) {
      let entry = this.cache.get(ctx.propertyId);
      if (!entry || this.now() - entry.at > this.ttlMs) {
        const metadata = this.client.getMetadata(ctx);
        entry = { at: this.now(), metadata };
        this.cache.set(ctx.propertyId, entry);
        const mine = entry;
        // a failure is not kept: the next job asks again
        metadata.catch(() => {
          if (this.cache.get(ctx.propertyId) === mine) this.cache.delete(ctx.propertyId);
        });
      }
      try {
        return await entry.metadata;
      } catch (err) {
        // another job's request, aborted with that job (a reload or shutdown): ask again for this one
        if (err instanceof AbortedError && !ctx.signal?.aborted && attempt < 3) continue;
        throw err;
      }
    }
  }
}
