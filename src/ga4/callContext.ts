/**
 * What every Data API call carries: whose property it is for, the token source to authenticate
 * with, a logger scoped to the job, the job's abort signal and deadline.
 */
import type { TokenSource } from '../auth/tokenManager.js';
import type { Logger } from '../log.js';

export interface CallContext {
  propertyId: string;
  tokens: TokenSource;
  logger: Logger;
  signal?: AbortSignal | undefined;
  /** for error messages: which report asked */
  report?: string;
  /** ms since epoch: no retry is started that would end after this (the job's deadline) */
  deadline?: number;
}

/** "property 123, report daily": who asked, for error messages. */
export function where(ctx: CallContext): string {
  return `property ${ctx.propertyId}${ctx.report ? `, report ${ctx.report}` : ''}`;
}
