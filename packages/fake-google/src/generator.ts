/**
 * The deterministic data behind every report: a pure function of property,
 * date, dimensions and revision. The server and the tests both call it, so a
 * test can compute exactly which rows the fake serves.
 *
 * Each day, a number of "visits" is drawn (how many depends on the property and
 * the weekday); each visit picks one value per dimension from that dimension's
 * skewed value set. Every distinct combination drawn becomes a row, so popular
 * combinations have large values and rare ones are absent on many days, and row
 * counts vary from day to day as they do in GA.
 */
import { dimensionDef, metricType, type DimensionDef } from './catalog.js';

/** Additive building blocks of every metric; ratios are derived from them. */
export interface Components {
  sessions: number;
  engagedSessions: number;
  totalUsers: number;
  activeUsers: number;
  newUsers: number;
  screenPageViews: number;
  eventCount: number;
  keyEvents: number;
  userEngagementDuration: number;
  sessionDuration: number;
  purchaseRevenue: number;
  totalRevenue: number;
}

export interface ComponentRow {
  dims: string[];
  c: Components;
}

export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** mulberry32: small, fast and good enough for test data and fault rates. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const cumulative = new Map<string, number[]>();

function pick(def: DimensionDef, rnd: () => number): string {
  const values = def.values ?? [''];
  let cum = cumulative.get(def.apiName);
  if (!cum) {
    // Zipf-like skew: the first value is the most frequent.
    let total = 0;
    cum = values.map((_, i) => (total += 1 / Math.pow(i + 1, 0.9)));
    cumulative.set(def.apiName, cum);
  }
  const x = rnd() * (cum[cum.length - 1] ?? 1);
  const i = cum.findIndex((c) => x < c);
  return values[i < 0 ? values.length - 1 : i] ?? '';
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

function dayDraws(propertyId: string, date: string): number {
  const scale = 0.6 + 1.4 * (hash32(`scale|${propertyId}`) / 2 ** 32);
  const dow = new Date(`${date}T00:00:00Z`).getUTCDay();
  const weekly = dow === 0 || dow === 6 ? 0.7 : 1;
  const noise = 0.8 + 0.4 * (hash32(`day|${propertyId}|${date}`) / 2 ** 32);
  return Math.max(1, Math.round(500 * scale * weekly * noise));
}

function components(seedKey: string, visits: number, revision: number): Components {
  const r = seededRandom(hash32(seedKey));
  let sessions = visits + Math.floor(visits * 1.5 * r());
  // GA revises recent days upwards as late hits are processed.
  sessions += revision * Math.max(1, Math.round(sessions * 0.04));
  const engagedSessions = Math.min(sessions, Math.round(sessions * (0.45 + 0.3 * r())));
  const totalUsers = Math.max(1, Math.min(sessions, Math.round(sessions * (0.7 + 0.25 * r()))));
  const activeUsers = Math.max(1, Math.min(totalUsers, Math.round(totalUsers * (0.85 + 0.15 * r()))));
  const newUsers = Math.min(totalUsers, Math.round(totalUsers * (0.15 + 0.6 * r())));
  const screenPageViews = sessions + Math.round(sessions * (0.5 + 3 * r()));
  const eventCount = screenPageViews + Math.round(sessions * (1 + 3 * r()));
  const keyEvents = Math.floor(sessions * 0.12 * r());
  const userEngagementDuration = Math.round(engagedSessions * (20 + 180 * r()));
  const sessionDuration = userEngagementDuration + Math.round(sessions * 25 * r());
  const purchaseRevenue = keyEvents > 0 ? round2(keyEvents * (9 + 120 * r())) : 0;
  const totalRevenue = round2(purchaseRevenue + sessions * 0.02 * r());
  return {
    sessions,
    engagedSessions,
    totalUsers,
    activeUsers,
    newUsers,
    screenPageViews,
    eventCount,
    keyEvents,
    userEngagementDuration,
    sessionDuration,
    purchaseRevenue,
    totalRevenue,
  };
}

/**
 * Unfiltered rows of one day, in ascending order of their dimension values.
 * `dimensions` are the requested dimensions without `date`, in request order.
 * With `rowsPerDay` (benchmarks that need a known volume), the day instead has
 * the first `rowsPerDay` combinations of the dimensions' value sets (fewer
 * when there are not that many), each with a few visits.
 */
export function generateComponents(propertyId: string, date: string, dimensions: string[], revision: number, rowsPerDay?: number): ComponentRow[] {
  const defs = dimensions.map((name) => {
    const def = dimensionDef(name);
    if (!def) throw new Error(`unknown dimension ${name}`);
    return def;
  });
  const dimKey = dimensions.join(',');
  const draws = dayDraws(propertyId, date);
  const visits = new Map<string, { dims: string[]; n: number }>();
  if (rowsPerDay !== undefined) {
    const sets = defs.map((d) => (d.derive ? [d.derive(date)] : (d.values ?? [''])));
    const total = sets.reduce((n, s) => n * s.length, 1);
    for (let i = 0; i < Math.min(rowsPerDay, total); i++) {
      // mixed-radix digits of i pick one value per dimension, the last dimension varying fastest
      let rest = i;
      const dims = new Array<string>(sets.length);
      for (let k = sets.length - 1; k >= 0; k--) {
        const set = sets[k]!;
        dims[k] = set[rest % set.length] ?? '';
        rest = Math.floor(rest / set.length);
      }
      visits.set(dims.join('\u0000'), { dims, n: 1 + (hash32(`n|${propertyId}|${date}|${i}`) % 20) });
    }
  } else if (defs.every((d) => d.derive)) {
    const dims = defs.map((d) => d.derive?.(date) ?? '');
    visits.set(dims.join('\u0000'), { dims, n: draws });
  } else {
    const rnd = seededRandom(hash32(`draw|${propertyId}|${date}|${dimKey}`));
    for (let i = 0; i < draws; i++) {
      const dims = defs.map((d) => (d.derive ? d.derive(date) : pick(d, rnd)));
      const key = dims.join('\u0000');
      const hit = visits.get(key);
      if (hit) hit.n++;
      else visits.set(key, { dims, n: 1 });
    }
  }
  const rows = [...visits.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, v]) => ({ dims: v.dims, c: components(`row|${propertyId}|${date}|${dimKey}|${key}`, v.n, revision) }));
  // a benchmark's fixed volume tells no day's story; every other report shares out the day's figures
  return rowsPerDay !== undefined ? rows : shareOut(dayComponents(propertyId, date, draws, revision), rows, userOverlap(propertyId, date));
}

/**
 * How much of a day's users its rows share, 0.8 to 0.95 by property and date: the rows of a report
 * that splits the day count about `1 / overlap` times the day's users.
 */
function userOverlap(propertyId: string, date: string): number {
  return 0.8 + 0.15 * (hash32(`overlap|${propertyId}|${date}`) / 2 ** 32);
}

/**
 * GA's total of one date, whatever the dimensions of the report: the row of the report by date
 * alone (generateReport with no dimensions), which `metricAggregations: TOTAL` over that date
 * gives for any report. Sessions and the other counts are the sum of any report's rows of the
 * day; users are fewer than the rows count (shareOut). With `rowsPerDay` (benchmarks) the rows
 * are a fixed volume that tells no day's story and do not add up to it.
 */
export function dayTotal(propertyId: string, date: string, revision: number, rowsPerDay?: number): Components {
  return generateComponents(propertyId, date, [], revision, rowsPerDay)[0]!.c;
}

/**
 * The day's own figures, whatever the dimensions: the one row of a report by date alone (the same
 * seed as before there were other reports to agree with), and GA's total of any other report.
 */
function dayComponents(propertyId: string, date: string, draws: number, revision: number): Components {
  return components(`row|${propertyId}|${date}||`, draws, revision);
}

/**
 * Shares the day's figures out over a report's rows, in proportion to what each row drew, so that
 * as in GA the same metric agrees across reports: the sessions of a report by device add up to
 * the sessions of the report by date alone, and to the day's total. Each row keeps its own
 * relations (engaged sessions within sessions, views at least sessions, events at least views,
 * revenue in cents). Users overlap instead: a user is counted on every row they appear on, so as
 * in GA the rows of a day with more than one row count more users than the day has (totalUsers,
 * activeUsers and newUsers alike; the day's own figure is its total): they add up to
 * `ceil(dayUsers / overlap)` (at least one more than the day, each row at least one user and at most
 * its sessions, active and new users at most its total users), shared out in proportion to what
 * each row drew.
 */
function shareOut(day: Components, rows: ComponentRow[], overlap: number): ComponentRow[] {
  if (rows.length <= 1) return rows.map((r) => ({ dims: r.dims, c: day }));
  const of = (f: (c: Components) => number) => rows.map((r) => f(r.c));
  const plus = (a: number[], b: number[]) => a.map((x, i) => x + (b[i] ?? 0));
  const cents = (v: number) => Math.round(v * 100);
  // every row drew at least one visit, so it keeps at least one session
  const sessions = apportion(
    day.sessions - rows.length,
    of((c) => c.sessions - 1),
  ).map((n) => n + 1);
  const engaged = apportion(
    day.engagedSessions,
    of((c) => c.engagedSessions),
    sessions,
  );
  const views = plus(
    sessions,
    apportion(
      day.screenPageViews - day.sessions,
      of((c) => c.screenPageViews - c.sessions),
    ),
  );
  const events = plus(
    views,
    apportion(
      day.eventCount - day.screenPageViews,
      of((c) => c.eventCount - c.screenPageViews),
    ),
  );
  const keyEvents = apportion(
    day.keyEvents,
    of((c) => c.keyEvents),
  );
  const engagement = apportion(
    day.userEngagementDuration,
    of((c) => c.userEngagementDuration),
  );
  const duration = plus(
    engagement,
    apportion(
      day.sessionDuration - day.userEngagementDuration,
      of((c) => c.sessionDuration - c.userEngagementDuration),
    ),
  );
  const purchase = apportion(
    cents(day.purchaseRevenue),
    of((c) => cents(c.purchaseRevenue)),
  );
  const revenue = plus(
    purchase,
    apportion(
      cents(day.totalRevenue) - cents(day.purchaseRevenue),
      of((c) => cents(c.totalRevenue) - cents(c.purchaseRevenue)),
    ),
  );
  // Users overlap: a user on two rows (two devices) is counted on both, so the rows count more
  // users than the day has, each row at least one and at most its sessions.
  const n = rows.length;
  const counted = (dayUsers: number, caps: number[], least: number) =>
    Math.min(
      caps.reduce((a, b) => a + b, 0),
      dayUsers === 0 ? least * n : Math.max(least * n, dayUsers + 1, Math.ceil(dayUsers / overlap)),
    );
  const sharedUsers = (dayUsers: number, weights: number[], caps: number[], least: number) =>
    apportion(
      counted(dayUsers, caps, least) - least * n,
      weights.map((w) => Math.max(0, w - least)),
      caps.map((cap) => cap - least),
    ).map((u) => u + least);
  const totalUsers = sharedUsers(
    day.totalUsers,
    of((c) => c.totalUsers),
    sessions,
    1,
  );
  const activeUsers = sharedUsers(
    day.activeUsers,
    of((c) => c.activeUsers),
    totalUsers,
    1,
  );
  const newUsers = sharedUsers(
    day.newUsers,
    of((c) => c.newUsers),
    totalUsers,
    0,
  );
  return rows.map((r, i) => ({
    dims: r.dims,
    c: {
      sessions: sessions[i]!,
      engagedSessions: engaged[i]!,
      totalUsers: totalUsers[i]!,
      activeUsers: activeUsers[i]!,
      newUsers: newUsers[i]!,
      screenPageViews: views[i]!,
      eventCount: events[i]!,
      keyEvents: keyEvents[i]!,
      userEngagementDuration: engagement[i]!,
      sessionDuration: duration[i]!,
      purchaseRevenue: purchase[i]! / 100,
      totalRevenue: revenue[i]! / 100,
    },
  }));
}

/**
 * Splits a whole number over rows in proportion to their weights (largest remainders, ties to the
 * earlier row), never giving a row more than its cap; equal shares when every weight is zero.
 * The parts add up to `total` exactly (as long as the caps leave room for it).
 */
function apportion(total: number, weights: number[], caps?: number[]): number[] {
  const out = weights.map(() => 0);
  let open = weights.map((_, i) => i).filter((i) => !caps || (caps[i] ?? 0) > 0);
  let left = total;
  while (left > 0 && open.length > 0) {
    const sumW = open.reduce((n, i) => n + (weights[i] ?? 0), 0);
    const share = (i: number) => (sumW > 0 ? (left * (weights[i] ?? 0)) / sumW : left / open.length);
    // rows the proportional share would overfill get their cap, and the rest is shared again
    const full = caps ? open.filter((i) => out[i]! + share(i) >= caps[i]!) : [];
    if (full.length > 0) {
      for (const i of full) {
        left -= caps![i]! - out[i]!;
        out[i] = caps![i]!;
      }
      open = open.filter((i) => !full.includes(i));
      continue;
    }
    const shares = open.map(share);
    const parts = shares.map(Math.floor);
    let rest = left - parts.reduce((n, x) => n + x, 0);
    const order = shares.map((_, j) => j).sort((a, b) => shares[b]! - parts[b]! - (shares[a]! - parts[a]!) || a - b);
    for (const j of order) {
      if (rest <= 0) break;
      parts[j]!++;
      rest--;
    }
    open.forEach((i, j) => (out[i]! += parts[j]!));
    left = 0;
  }
  return out;
}

/** The value of one metric for a row's components. */
export function metricValue(c: Components, metric: string): number {
  switch (metric) {
    case 'sessions':
      return c.sessions;
    case 'totalUsers':
      return c.totalUsers;
    case 'activeUsers':
      return c.activeUsers;
    case 'newUsers':
      return c.newUsers;
    case 'screenPageViews':
      return c.screenPageViews;
    case 'eventCount':
      return c.eventCount;
    case 'engagedSessions':
      return c.engagedSessions;
    case 'keyEvents':
    case 'conversions':
      return c.keyEvents;
    case 'bounceRate':
      return c.sessions ? (c.sessions - c.engagedSessions) / c.sessions : 0;
    case 'engagementRate':
      return c.sessions ? c.engagedSessions / c.sessions : 0;
    case 'sessionsPerUser':
      return c.activeUsers ? c.sessions / c.activeUsers : 0;
    case 'averageSessionDuration':
      return c.sessions ? c.sessionDuration / c.sessions : 0;
    case 'userEngagementDuration':
      return c.userEngagementDuration;
    case 'totalRevenue':
      return c.totalRevenue;
    case 'purchaseRevenue':
      return c.purchaseRevenue;
    default:
      throw new Error(`unknown metric ${metric}`);
  }
}

/**
 * Merges rows: several days of one combination, or the days' totals (dayTotal)
 * into the total of a range. Counts add up, but a user active on several days
 * is one user: user metrics are deduplicated, so they come out below the sum
 * whenever more than one row is merged, as GA's totals do.
 */
export function mergeComponents(rows: Components[]): Components {
  const first = rows[0];
  if (rows.length === 1 && first) return first;
  const sum = (k: keyof Components): number => rows.reduce((s, c) => s + c[k], 0);
  const max = (k: keyof Components): number => rows.reduce((m, c) => Math.max(m, c[k]), 0);
  const overlap = 0.75 + 0.2 / rows.length;
  const users = (k: 'totalUsers' | 'activeUsers' | 'newUsers'): number => Math.max(max(k), Math.floor(sum(k) * overlap));
  return {
    sessions: sum('sessions'),
    engagedSessions: sum('engagedSessions'),
    totalUsers: users('totalUsers'),
    activeUsers: users('activeUsers'),
    newUsers: users('newUsers'),
    screenPageViews: sum('screenPageViews'),
    eventCount: sum('eventCount'),
    keyEvents: sum('keyEvents'),
    userEngagementDuration: sum('userEngagementDuration'),
    sessionDuration: sum('sessionDuration'),
    purchaseRevenue: round2(sum('purchaseRevenue')),
    totalRevenue: round2(sum('totalRevenue')),
  };
}

/**
 * The rows the fake serves for one property and date: one entry per combination
 * of dimension values present that day, in ascending order of dimension values,
 * without the rows whose requested metrics are all zero (GA drops those unless
 * `keepEmptyRows`). `dimensions` excludes `date` and keeps request order.
 */
export function generateReport(args: {
  propertyId: string;
  date: string;
  dimensions: string[];
  metrics: string[];
  revision?: number;
  keepEmptyRows?: boolean;
  /** as the property's `rowsPerDay` */
  rowsPerDay?: number;
}): Array<{ dims: string[]; values: number[] }> {
  for (const m of args.metrics) if (!metricType(m)) throw new Error(`unknown metric ${m}`);
  return generateComponents(args.propertyId, args.date, args.dimensions, args.revision ?? 0, args.rowsPerDay)
    .map((row) => ({ dims: row.dims, values: args.metrics.map((m) => metricValue(row.c, m)) }))
    .filter((row) => args.keepEmptyRows || args.metrics.length === 0 || row.values.some((v) => v !== 0));
}
