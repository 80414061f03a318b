/**
 * k-anonymity for breakdowns: a row seen by fewer than k distinct installs is never shown on its own;
 * such rows are folded into one `other` row, whose figures are recomputed over the folded values (distinct
 * installs do not add up, so the other row is never a sum of the folded rows' install counts).
 */
export const OTHER = 'other';

export function splitByK<T extends { readonly installs: number }>(
  rows: readonly T[],
  k: number,
): { kept: T[]; folded: T[] } {
  const kept: T[] = [];
  const folded: T[] = [];
  for (const row of rows) (row.installs >= k ? kept : folded).push(row);
  return { kept, folded };
}
