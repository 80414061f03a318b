/** Where a status line is shown: stderr, or a test's stand-in. */
export interface StatusOutput {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): unknown;
}

/** Redraws of a status line, at most one per this many ms: more is flicker, and costs the work time. */
const REDRAW_EVERY_MS = 100;

/**
 * One line that a long command redraws in place (as `migrate`'s bar does) while the work goes on, and
 * clears at the end so that the report after it stands alone. Only on a terminal: in a log or a pipe
 * every redraw would be a line of its own, and a script reads stdout's report, not this.
 */
export function statusLine(output: StatusOutput) {
  let drawnAt = Number.NEGATIVE_INFINITY;
  let shown = false;
  return {
    /** Show `text`; `urgent` for a change of state, which is never skipped for being too soon. */
    update(text: string, urgent = false): void {
      if (!output.isTTY) return;
      const now = performance.now();
      if (!urgent && now - drawnAt < REDRAW_EVERY_MS) return;
      drawnAt = now;
      // A line longer than the terminal wraps, and `\r` would then redraw only its last part.
      const width = Math.max(20, (output.columns || 80) - 1);
      const fitted = text.length > width ? `${text.slice(0, width - 1)}…` : text;
      output.write(`\r${fitted}\u001b[K`);
      shown = true;
    },
    clear(): void {
      if (shown) output.write('\r\u001b[K');
      shown = false;
    },
  };
}
