/**
 * Complete dates waiting to be written together (one transaction per batch). A date handed out
 * again (a listing read again from its first page, the buffered read after rows came out of
 * order) replaces the one held: a batch never holds a date twice, and the newer read wins.
 */
import type { DayData } from '../ga4/types.js';

export class DayBatch {
  private readonly days = new Map<string, DayData>();
  /** rows held */
  rows = 0;
  /** when the oldest date held was added (ms since epoch) */
  startedAt = 0;

  add(day: DayData, now: number): void {
    const held = this.days.get(day.date);
    if (held) this.rows -= held.rowCount;
    else if (this.days.size === 0) this.startedAt = now;
    this.days.set(day.date, day);
    this.rows += day.rowCount;
  }

  get size(): number {
    return this.days.size;
  }

  /** Every date held, each once, and an empty batch. */
  take(): DayData[] {
    const out = [...this.days.values()];
    this.days.clear();
    this.rows = 0;
    return out;
  }
}
