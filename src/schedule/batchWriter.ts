/**
 * A job's complete dates on their way to the store, in batches (one transaction each), and what
 * the store and the page loop can say back:
 * - a date handed out again (a listing read again from its first page, the buffered read after
 *   rows came out of order) replaces the one held: a batch never holds a date twice, the newer
 *   read wins;
 * - a date holding a value its column cannot hold (`"1.5"` for an integer metric, found by the page
 *   checks; one PostgreSQL refuses, such as an integer beyond bigint) is left out and remembered,
 *   the other dates of the batch are stored; the job then fails naming each (`refusedError`);
 * - values changed to be storable (U+0000 removed, lone surrogates replaced) are counted in
 *   `ga_collector_values_sanitized_total` and warned about once per date;
 * - dates stored from a listing later found inconsistent, and not read again whole, are removed
 *   when the read fails for good (`forgetUnconfirmed`): a gap the next run fills, not a half day.
 */
import { describe } from '../errors.js';
import type { ReportDefinition } from '../config/index.js';
import { unconfirmedDates } from '../ga4/report.js';
import { releaseDay } from '../ga4/rowTextBlocks.js';
import type { DayData } from '../ga4/types.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { describeRefused, forgetDays, replaceDaysOrRefuse, type RefusedDay } from '../store/dayWriter.js';
import type { PoolClient } from '../store/pool.js';
import type { TablesArg } from '../store/sourceTables.js';

export interface BatchWriterDeps {
  db: PoolClient;
  /** GA4's schema, or the source's tables */
  schema: TablesArg;
  def: ReportDefinition;
  propertyId: string;
  /** dates strictly before this are outside the refresh window when written */
  settledBefore: string;
  /** the newest date Google has finished for the property: the writer refuses later ones */
  lastDate?: string;
  /** the definition's id, recorded with each date; called before the first write (creates or extends the report's relation) */
  definition?: () => Promise<number | null>;
  metrics: Metrics;
  log: Logger;
}

export class BatchWriter {
  private readonly held = new Map<string, DayData>();
  /** rows held */
  rows = 0;
  /** when the oldest date held was added (ms since epoch) */
  startedAt = 0;
  /** dates refused (a value the column cannot hold), over the whole job */
  readonly refused: RefusedDay[] = [];
  private readonly stored = new Set<string>();
  private readonly warned = new Set<string>();

  constructor(private readonly deps: BatchWriterDeps) {}

  get size(): number {
    return this.held.size;
  }

  add(day: DayData, now: number): void {
    const held = this.held.get(day.date);
    if (held) {
      this.rows -= held.rowCount;
      releaseDay(held);
    } else if (this.held.size === 0) this.startedAt = now;
    this.held.set(day.date, day);
    this.rows += day.rowCount;
  }

  /** Writes the dates held. Returns how many dates and rows were stored (refused ones are not). */
  async flush(): Promise<{ dates: number; rows: number }> {
    const { db, schema, def, propertyId, settledBefore, metrics, log } = this.deps;
    const days = [...this.held.values()];
    this.held.clear();
    this.rows = 0;
    if (days.length === 0) return { dates: 0, rows: 0 };
    let result: Awaited<ReturnType<typeof replaceDaysOrRefuse>>;
    try {
      const definitionId = (await this.deps.definition?.()) ?? null;
      result = await replaceDaysOrRefuse(db, {
        schema,
        def,
        propertyId,
        days,
        settledBefore,
        definitionId,
        ...(this.deps.lastDate !== undefined ? { lastDate: this.deps.lastDate } : {}),
      });
    } finally {
      // written, refused or failed: nothing reads these dates' row text again (ga4/rowTextBlocks.ts)
      for (const day of days) releaseDay(day);
    }
    const refusedNow = new Set(result.refused.map((r) => r.date));
    for (const refused of result.refused) {
      this.refused.push(refused);
      log.error(
        { event: 'date_refused', date: refused.date, column: refused.column, err: refused.reason },
        'a value its column cannot hold; this date is not stored',
      );
    }
    let dates = 0;
    for (const day of days) {
      if (refusedNow.has(day.date)) continue;
      dates++;
      this.stored.add(day.date);
      if (day.sanitized) {
        metrics.valuesSanitized.inc({ property: propertyId, report: def.name }, day.sanitized.values);
        if (!this.warned.has(day.date)) {
          this.warned.add(day.date);
          log.warn(
            { event: 'values_sanitized', date: day.date, values: day.sanitized.values, dimensions: day.sanitized.dimensions },
            'stored values PostgreSQL cannot hold as sent: U+0000 removed, lone surrogates replaced by U+FFFD',
          );
        }
      }
    }
    return { dates, rows: result.written };
  }

  /** After the page loop failed with `err`: removes the dates it stored but could not confirm whole. */
  async forgetUnconfirmed(err: unknown): Promise<void> {
    const { db, schema, def, propertyId, log } = this.deps;
    const suspect = unconfirmedDates(err).filter((d) => this.stored.has(d));
    if (suspect.length === 0) return;
    log.warn({ event: 'dates_forgotten', dates: suspect }, 'dates stored from an inconsistent read are removed; the next run fetches them again');
    try {
      await forgetDays(db, { schema, def, propertyId, dates: suspect });
      for (const date of suspect) this.stored.delete(date);
    } catch (forgetErr) {
      log.error({ event: 'forget_failed', dates: suspect, err: describe(forgetErr) }, 'could not remove dates stored from an inconsistent read');
    }
  }

  /** The job's failure when dates were refused, naming each date, column and value; null when none was. */
  refusedError(): Error | null {
    if (this.refused.length === 0) return null;
    const { def, propertyId } = this.deps;
    return new Error(
      `property ${propertyId}, report ${def.name}: ${this.refused.length} date(s) refused for a value the column cannot hold, the others are stored; ${describeRefused(this.refused)} (fetched again on the next run)`,
    );
  }
}
