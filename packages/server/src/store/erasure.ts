import { sql } from './sql.js';
import type { Store } from './types.js';

/**
 * How an erasure finds an install's quarantine entries, which have no install column: by its id as a
 * whole JSON string in the kept text (`"anonymousId":"<id>"`, `"install_id":"<id>"`), quotes included,
 * so that erasing `inst` leaves `inst-2` alone. Two forms: as JSON.stringify writes it (the kept form of
 * a parsed message) and unescaped (a body kept as sent), which differ only for ids with quotes,
 * backslashes or control characters.
 */
export function quotedInstallId(installId: string): readonly [string, string] {
  return [`"${installId}"`, JSON.stringify(installId)];
}

/**
 * Whether the store holds anything of an app: an event, or a quarantine entry under its name. An erasure
 * for an app the store has nothing of most likely names it wrong, and its "0 erased" would pass for an
 * erasure done.
 */
export async function storeHasApp(store: Store, app: string): Promise<boolean> {
  const events = await store.query(sql`SELECT 1 AS found FROM events WHERE app = ${app} LIMIT 1`);
  if (events.length > 0) return true;
  return (await store.listQuarantine({ app, limit: 1 })).length > 0;
}
