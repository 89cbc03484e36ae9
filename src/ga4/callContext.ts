/**
 * What every Data API call carries: whose property it is for, the token source to authenticate
 * with, a logger scoped to the job, the job's abort signal and deadline.
 */
import type { TokenSource } from '../auth/tokenManager.js';
import type { Logger } from '../log.js';

export interface CallContext {
  /** the GA4 property id, or the Search Console site URL (`kind`) */
  propertyId: string;
  /** which API the call is for; absent: GA4 */
  kind?: 'ga4' | 'searchConsole';
  tokens: TokenSource;
  logger: Logger;
  signal?: AbortSignal | undefined;
  /** for error messages: which report asked */
  report?: string;
  /** ms since epoch: no retry is started that would end after this (the job's deadline) */
  deadline?: number;
}

/** "property 123, report daily" (or "site sc-domain:example.com, report performance"): who asked, for error messages. */
export function where(ctx: CallContext): string {
  return `${ctx.kind === 'searchConsole' ? 'site' : 'property'} ${ctx.propertyId}${ctx.report ? `, report ${ctx.report}` : ''}`;
}
