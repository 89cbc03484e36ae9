/** Configuration values written back as a person would type them in the YAML file. */

/** A value as YAML's flow style writes it: `{ id: 123, reports: [daily] }`. */
export function flow(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(flow).join(', ')}]`;
  if (typeof value === 'object' && value !== null) {
    return `{ ${Object.entries(value)
      .map(([key, item]) => `${key}: ${flow(item)}`)
      .join(', ')} }`;
  }
  return String(value);
}
