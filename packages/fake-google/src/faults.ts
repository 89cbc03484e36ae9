/**
 * Injected failures. Faults are tried in the order they were injected; the
 * first one that matches the request (and, for a `rate`, wins its draw from a
 * seeded PRNG) applies, and counts against its `times`.
 */
import { seededRandom } from './generator.js';
import type { EventKind, Fault, RewriteRequest } from './types.js';

interface ActiveFault {
  fault: Fault;
  left: number;
}

export class FaultPlan {
  private active: ActiveFault[] = [];
  private readonly random: () => number;

  constructor(seed: number) {
    this.random = seededRandom(seed);
  }

  add(fault: Fault): void {
    if (fault.kind === 'status' && fault.status === undefined) throw new Error('a status fault needs a status');
    if (fault.kind === 'delay' && fault.delayMs === undefined) throw new Error('a delay fault needs delayMs');
    if (fault.kind === 'rewrite' && typeof fault.rewrite !== 'function') throw new Error('a rewrite fault needs a rewrite function');
    if (fault.rate !== undefined && (fault.rate < 0 || fault.rate > 1)) throw new Error('fault rate must be within 0..1');
    this.active.push({ fault, left: fault.times ?? Number.POSITIVE_INFINITY });
  }

  clear(): void {
    this.active = [];
  }

  /**
   * The fault that hits this request, if any; `request` is a runReport request's offset and limit
   * (a searchAnalytics request's startRow and rowLimit), `site` a Search Console request's site URL.
   */
  take(endpoint: EventKind, property: string | undefined, request?: RewriteRequest, site?: string): Fault | undefined {
    for (const a of this.active) {
      const f = a.fault;
      if (a.left <= 0) continue;
      if (f.endpoint !== 'any' && f.endpoint !== endpoint) continue;
      if (f.property !== undefined && f.property !== property) continue;
      if (f.site !== undefined && f.site !== site) continue;
      if (f.match !== undefined && (request === undefined || !f.match(request))) continue;
      if (f.rate !== undefined && f.rate < 1 && this.random() >= f.rate) continue;
      a.left--;
      return f;
    }
    return undefined;
  }
}

/** Faults that answer `200` with a body that is not the page asked for. */
export const BAD_BODY_FAULTS: ReadonlySet<string> = new Set(['truncate', 'stall', 'garbage', 'html', 'rewrite']);

/** How a fault is recorded in `FakeEvent.fault`. */
export function faultLabel(f: Fault): string {
  return f.kind === 'status' ? `status:${f.status ?? 0}` : f.kind;
}
