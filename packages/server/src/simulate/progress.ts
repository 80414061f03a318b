/**
 * Progress on stderr: a bar redrawn in place on a terminal, plain lines (at most one every few seconds,
 * and at the end) when stderr is a file or a pipe, so logs stay readable.
 */
import type { SimulateStats } from './index.js';

export interface ProgressOutput {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): unknown;
}

export interface ProgressReporter {
  update(stats: SimulateStats): void;
  done(stats: SimulateStats): void;
}

const PLAIN_INTERVAL_MS = 5000;
const TTY_INTERVAL_MS = 100;

const fmt = (n: number): string => n.toLocaleString('en-US');

export function createProgressReporter(
  output: ProgressOutput,
  now: () => number = () => performance.now(),
): ProgressReporter {
  const started = now();
  let last = -Infinity;
  const line = (s: SimulateStats): string => {
    const seconds = Math.max(0.001, (now() - started) / 1000);
    return `day ${s.daysDone}/${s.days} · ${fmt(s.delivered)} events delivered · ${fmt(Math.round(s.delivered / seconds))}/s`;
  };
  const bar = (s: SimulateStats): string => {
    const text = line(s);
    const width = Math.max(10, Math.min(40, (output.columns ?? 80) - text.length - 10));
    const filled = Math.round((s.daysDone / Math.max(1, s.days)) * width);
    const percent = String(Math.floor((s.daysDone / Math.max(1, s.days)) * 100)).padStart(3);
    return `\r[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${percent}% ${text}\u001b[K`;
  };
  return {
    update(stats) {
      const t = now();
      if (output.isTTY) {
        if (t - last < TTY_INTERVAL_MS) return;
        last = t;
        output.write(bar(stats));
      } else {
        if (t - last < PLAIN_INTERVAL_MS) return;
        last = t;
        output.write(`simulate: ${line(stats)}\n`);
      }
    },
    done(stats) {
      output.write(output.isTTY ? `${bar(stats)}\n` : `simulate: ${line(stats)}\n`);
    },
  };
}
