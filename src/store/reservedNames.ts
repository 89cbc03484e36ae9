/**
 * Report names that would collide with a relation in the schema. Every relation of a schema (a
 * table, a view, an index, a sequence) shares one namespace (pg_class), so a report is refused
 * when any relation it creates (reportTables.ts: its table, `<report>_totals`, their indexes)
 * has the name of one of ga-collector's own relations or of another report's.
 *
 * ga-collector's own names are read from what creates them, the files in `migrations/` and the
 * `schema_migrations` table of migrations.ts, when the configuration is loaded, so a new migration
 * reserves its names without anyone keeping a list. test/reserved-report-names.test.ts compares
 * them with what a migrated schema really holds.
 */
import { MIGRATIONS_DIR, SCHEMA_MIGRATIONS_TABLE, listMigrations } from './migrations.js';
import { reportRelationNames } from './reportTables.js';

const NAME = String.raw`(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)`;
const QUALIFIED = String.raw`(${NAME}(?:\s*\.\s*${NAME})?)`;
const CREATE_RE = new RegExp(
  String.raw`^CREATE\s+(?:OR\s+REPLACE\s+)?(?:(?:GLOBAL|LOCAL)\s+)?(?:(?:TEMP|TEMPORARY|UNLOGGED)\s+)?(TABLE|VIEW|MATERIALIZED\s+VIEW|SEQUENCE|(?:UNIQUE\s+)?INDEX)\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?` +
    QUALIFIED,
  'i',
);
const UNNAMED_INDEX_RE = new RegExp(
  String.raw`^CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?ON\s+(?:ONLY\s+)?${QUALIFIED}\s*(?:USING\s+\w+\s*)?\(([^)]*)\)`,
  'i',
);
const ALTER_TABLE_RE = new RegExp(String.raw`^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?${QUALIFIED}\s+([\s\S]*)$`, 'i');

/** The last part of a possibly qualified, possibly quoted name, as PostgreSQL stores it. */
function bare(qualified: string): string {
  const parts = qualified.match(new RegExp(NAME, 'g')) ?? [qualified];
  const last = parts[parts.length - 1]!;
  return last.startsWith('"') ? last.slice(1, -1).replace(/""/g, '"') : last.toLowerCase();
}

/** SQL without comments and dollar-quoted bodies, split into statements. */
function statements(sql: string): string[] {
  return sql
    .replace(/\$([A-Za-z_]\w*)?\$[\s\S]*?\$\1?\$/g, "''")
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/--[^\n]*/g, ' ')
    .split(';')
    .map((s) => s.trim().replace(/\s+/g, ' '))
    .filter(Boolean);
}

/** Top-level comma-separated parts of a parenthesised list (a table body). */
function topLevelParts(body: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < body.length; i++) {
    const ch = body[i];
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === ',' && depth === 0) {
      parts.push(body.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(body.slice(start).trim());
  return parts.filter(Boolean);
}

/** Names PostgreSQL gives the constraints, indexes and sequences a table definition implies. */
function impliedNames(table: string, body: string, into: Set<string>): void {
  const cols = (list: string) => list.split(',').map((c) => bare(c.trim()));
  for (const part of topLevelParts(body)) {
    const named = /^CONSTRAINT\s+("(?:[^"]|"")+"|\w+)/i.exec(part);
    if (named) {
      into.add(bare(named[1]!));
      continue;
    }
    const tablePk = /^PRIMARY\s+KEY\s*\(/i.test(part);
    const tableUnique = /^UNIQUE\s*\(([^)]*)\)/i.exec(part);
    if (tablePk) into.add(`${table}_pkey`);
    else if (tableUnique) into.add(`${table}_${cols(tableUnique[1]!).join('_')}_key`);
    else if (!/^(CHECK|FOREIGN|EXCLUDE|LIKE)\b/i.test(part)) {
      const col = bare(new RegExp(`^${NAME}`).exec(part)?.[0] ?? '');
      for (const c of part.matchAll(/CONSTRAINT\s+("(?:[^"]|"")+"|\w+)/gi)) into.add(bare(c[1]!));
      if (/\bPRIMARY\s+KEY\b/i.test(part)) into.add(`${table}_pkey`);
      if (/\bUNIQUE\b/i.test(part)) into.add(`${table}_${col}_key`);
      if (/^\S+\s+(small|big)?serial\b/i.test(part) || /\bGENERATED\s+(ALWAYS|BY\s+DEFAULT)\s+AS\s+IDENTITY\b/i.test(part)) into.add(`${table}_${col}_seq`);
    }
  }
}

/** The names of the relations `sql` creates (and renames to), as PostgreSQL would store them. */
export function relationNamesIn(sql: string): Set<string> {
  const names = new Set<string>();
  for (const st of statements(sql)) {
    const unnamed = UNNAMED_INDEX_RE.exec(st);
    if (unnamed) {
      const cols = unnamed[2]!.split(',').map((c) => bare(c.trim().split(/\s+/)[0]!));
      names.add(`${bare(unnamed[1]!)}_${cols.join('_')}_idx`);
      continue;
    }
    const created = CREATE_RE.exec(st);
    if (created) {
      const name = bare(created[2]!);
      names.add(name);
      if (/^TABLE$/i.test(created[1]!)) {
        const open = st.indexOf('(', created[0].length);
        const close = st.lastIndexOf(')');
        if (open >= 0 && close > open) impliedNames(name, st.slice(open + 1, close), names);
      }
    }
    const altered = ALTER_TABLE_RE.exec(st);
    if (altered) {
      const table = bare(altered[1]!);
      for (const c of altered[2]!.matchAll(/ADD\s+CONSTRAINT\s+("(?:[^"]|"")+"|\w+)/gi)) names.add(bare(c[1]!));
      if (/ADD\s+PRIMARY\s+KEY/i.test(altered[2]!)) names.add(`${table}_pkey`);
      const col = /ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\s+(.*)/i.exec(altered[2]!);
      if (col && !/^(CONSTRAINT|PRIMARY|UNIQUE|CHECK|FOREIGN)$/i.test(col[1]!)) impliedNames(table, `${col[1]} ${col[2]}`, names);
    }
    for (const r of st.matchAll(new RegExp(String.raw`\bRENAME\s+TO\s+(${NAME})`, 'gi'))) names.add(bare(r[1]!));
  }
  return names;
}

const cache = new Map<string, ReadonlySet<string>>();

/**
 * Every relation name ga-collector's own tables take in the schema: what `migrations/*.sql`
 * create (tables, views, indexes, sequences, and the indexes and sequences they imply) and the
 * `schema_migrations` table. Read once per directory.
 *
 * @throws when the migrations directory cannot be read (an incomplete installation)
 */
export function ownRelationNames(dir = MIGRATIONS_DIR): ReadonlySet<string> {
  let names = cache.get(dir);
  if (!names) {
    const all = relationNamesIn(`CREATE TABLE ${SCHEMA_MIGRATIONS_TABLE};`);
    for (const m of listMigrations(dir)) for (const n of relationNamesIn(m.sql)) all.add(n);
    names = all;
    cache.set(dir, names);
  }
  return names;
}

const ROLES = ['table', 'per-date totals', 'index', 'totals index'];

/**
 * The first report name of `names` whose relations collide with ga-collector's own or with another
 * report's, as `reports.<name>: ...` (one line, saying what to do); undefined when none does.
 */
export function reportNameCollision(names: readonly string[], dir = MIGRATIONS_DIR): string | undefined {
  const own = ownRelationNames(dir);
  const taken = new Map<string, { report: string; role: string }>();
  for (const name of names) {
    reportRelationNames(name).forEach((rel, i) => {
      if (!taken.has(rel)) taken.set(rel, { report: name, role: ROLES[i]! });
    });
  }
  const ownTables = [...own].filter((n) => !/_(pkey|key|idx|seq)$/.test(n)).sort();
  for (const name of names) {
    const rels = reportRelationNames(name);
    for (const [i, rel] of rels.entries()) {
      const what = i === 0 ? `${rel} is` : `its ${ROLES[i]} would be ${rel}, which is`;
      if (own.has(rel)) {
        return `reports.${name}: ${what} a name ga-collector's own relations take in the schema (${ownTables.join(', ')} and their indexes); choose another report name`;
      }
      const other = taken.get(rel);
      if (other && other.report !== name) {
        return `reports.${name}: ${what} also the name of report ${other.report}'s ${other.role}; choose another report name`;
      }
    }
  }
  return undefined;
}
