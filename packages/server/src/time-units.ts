/** Milliseconds per unit, for the server's epoch-ms arithmetic (UTC throughout: every day is 24 h). */
export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
