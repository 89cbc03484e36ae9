/** What the GA4 layer hands to the store: rows of complete dates and the response metadata. */

export interface ReportRow {
  /** YYYY-MM-DD */
  date: string;
  /** values of the report's non-date dimensions, in definition order */
  dims: string[];
  /** integer metrics as decimal strings (bigint-safe), others as numbers; a value as sent when it is `unstorable` */
  metrics: Array<string | number>;
  /** the dimensions (API names) whose value was changed to be storable, one entry per value */
  sanitized?: string[];
  /** the row's first metric value its column cannot hold, when any (the date is then refused) */
  unstorable?: Unstorable;
}

/**
 * A metric value Google sent that its column cannot hold: `"1.5"` or `""` for an integer metric
 * (a bigint column), `"abc"` or `"NaN"` for any. It is Google's data, not a transport fault:
 * asking again gives the same value, so the date that holds it is refused (never stored, its old
 * rows and ledger row kept, so it stays due) and the job fails naming date, column and value.
 */
export interface Unstorable {
  /** index of the metric in the definition */
  metric: number;
  /** the value as Google sent it (the JSON string, unescaped) */
  value: string;
  /** true when it came in GA's totals for the date rather than in a row */
  totals?: boolean;
}

export interface ResponseMeta {
  timeZone: string | null;
  currencyCode: string | null;
  dataLossFromOtherRow: boolean;
  subjectToThresholding: boolean;
  /** samplingMetadatas as Google sent them; empty when the data is unsampled */
  sampling: Array<{ samplesReadCount?: string | null; samplingSpaceSize?: string | null }>;
}

export interface PropertyQuota {
  tokensPerDay?: { consumed?: number | null; remaining?: number | null } | null;
  tokensPerHour?: { consumed?: number | null; remaining?: number | null } | null;
  concurrentRequests?: { consumed?: number | null; remaining?: number | null } | null;
  serverErrorsPerProjectPerHour?: { consumed?: number | null; remaining?: number | null } | null;
  tokensPerProjectPerHour?: { consumed?: number | null; remaining?: number | null } | null;
}

/** One complete date: every row GA has for it (possibly none). */
export interface DayData {
  date: string;
  rowCount: number;
  /** the rows as row text (rowText.ts), in one or more pieces (a date can span pages) */
  text: Buffer[];
  meta: ResponseMeta;
  /** GA's own totals for the date (reports with dimensions only): null when GA had no data for it,
   * undefined when totals could not be fetched (the stored ones are then left as they are) */
  totals?: Array<string | number> | null;
  /** values of this date changed to be storable (rowText.ts storableText), when any */
  sanitized?: { values: number; dimensions: string[] };
  /** the first metric value of this date (rows, then totals) its column cannot hold: the date is refused */
  unstorable?: Unstorable;
}

/** GA's totals of one date: metric values in definition order, and the first one its column cannot hold. */
export interface DayTotals {
  values: Array<string | number>;
  unstorable?: Unstorable;
}
