/**
 * SIGHUP held before `telemark serve` can reload: from the CLI's first statement (main.ts) through the
 * start-up (reading the file, opening the store — minutes, for a ClickHouse that is not up yet), until
 * the collector runs and takes SIGHUP over. Without a listener the signal ends the process. Internal.
 */
let held = false;
let holding = false;
const hold = () => {
  held = true;
};

/** Start holding SIGHUP (again a no-op while holding). */
export function holdSighup(): void {
  if (holding) return;
  holding = true;
  held = false;
  process.on('SIGHUP', hold);
}

/**
 * Stop holding; true if a SIGHUP came meanwhile. Called once the caller's own listener is on: a moment
 * with neither, and a SIGHUP would end the process.
 */
export function releaseSighup(): boolean {
  process.off('SIGHUP', hold);
  holding = false;
  const came = held;
  held = false;
  return came;
}
