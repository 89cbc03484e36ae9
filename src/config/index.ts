/**
 * The configuration: one convict schema for the keys with one value (schema.ts), zod schemas for
 * the `reports` map and the `properties` list (reports.ts, properties.ts), loading from a file and
 * the environment with each value's source (load.ts), and Google's default addresses
 * (googleUrls.ts). Importers use this module.
 */
export type { Config, PropertyConfig, ReportDefinition, SearchConsoleReport, SiteConfig } from './types.js';
export { configuredSources, propertySource, siteSource, siteTableDefinition, sourceDefinition, type SourceConfig, type SourceKind } from './sources.js';
export { loadConfig, loadConfigWithSources, type LoadedConfig, type ValueSource } from './load.js';
export { REPORTS_DOC, SEARCH_CONSOLE_REPORTS_DOC, configSchema, schemaLeaves } from './schema.js';
