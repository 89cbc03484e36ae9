/**
 * What the benchmark prints: one Markdown table of every measurement (measured, reference, ratio,
 * target, pass), the machine line (CPU, cores, load average, memory, versions) and notes.
 */
import os from 'node:os';

export interface Line {
  name: string;
  result: string;
  reference?: string;
  ratio?: string;
  target?: string;
  /** true met, false missed, 'pending' a target this build cannot measure yet */
  ok?: boolean | 'pending';
}

export const lines: Line[] = [];
export const notes: string[] = [];

const T0 = performance.now();
const loadAtStart = os.loadavg();

export function rate(rows: number, ms: number): number {
  return (rows / ms) * 1000;
}
export const fmtRate = (r: number) => `${Math.round(r).toLocaleString('en-US')} rows/s`;
export const fmtMb = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MB`;
export const fmtS = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

export function progress(what: string): void {
  process.stderr.write(`[bench ${((performance.now() - T0) / 1000).toFixed(0).padStart(3)} s] ${what}\n`);
}

/** Whether any target was missed (pending ones are not misses). */
export function missed(): boolean {
  return lines.some((l) => l.ok === false);
}

const fmtLoad = (l: number[]) => l.map((v) => v.toFixed(2)).join(' / ');

function machine(pgVersion: string): string {
  const cpus = os.cpus();
  return [
    cpus[0]?.model ?? 'unknown CPU',
    `${os.availableParallelism()} cores (nproc)`,
    `load average (1 / 5 / 15 min) ${fmtLoad(loadAtStart)} at the start, ${fmtLoad(os.loadavg())} at the end`,
    `${Math.round(os.totalmem() / 2 ** 30)} GiB memory`,
    `PostgreSQL ${pgVersion}`,
    `Node.js ${process.version}`,
  ].join(', ');
}

export function print(pgVersion: string): void {
  const header = ['measurement', 'measured', 'reference', 'ratio', 'target', 'pass'];
  const pass = (l: Line) => (l.ok === undefined ? '' : l.ok === 'pending' ? 'pending' : l.ok ? 'ok' : 'MISSED');
  const rows = lines.map((l) => [l.name, l.result, l.reference ?? '', l.ratio ?? '', l.target ?? '', pass(l)]);
  const out = [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => ' --- ').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
    `Machine: ${machine(pgVersion)}. Benchmark wall time ${fmtS(performance.now() - T0)}, ${new Date().toISOString().slice(0, 10)}.`,
    ...notes.map((n) => `Note: ${n}`),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}
