/**
 * Identifiers built from configuration (schema, report and column names) are validated and
 * quoted here and only here, so no SQL elsewhere splices a user's string unchecked.
 */

const REPORT_NAME_RE = /^[a-z][a-z0-9_]{0,47}$/;

/**
 * Why a report name cannot name a relation, or undefined when it can. The spelling only: names
 * taken by ga-collector's own relations or by another report's are refused by
 * reportNameCollision() (reservedNames.ts).
 */
export function validateReportName(name: string): string | undefined {
  if (!REPORT_NAME_RE.test(name)) return 'a report name must be lower case letters, digits and _ (starting with a letter, at most 48)';
  return undefined;
}

/** `screenPageViews` -> `screen_page_views`, `customEvent:plan` -> `custom_event_plan`. */
export function columnName(apiName: string): string {
  const snake = apiName
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .toLowerCase();
  const col = /^[0-9]/.test(snake) ? `m_${snake}` : snake;
  return col.slice(0, 63);
}

/** Double-quotes an identifier for PostgreSQL. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `"schema"."name"` */
export function qualified(schema: string, name: string): string {
  return `${ident(schema)}.${ident(name)}`;
}
