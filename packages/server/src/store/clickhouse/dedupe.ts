/**
 * Exact dedupe across collectors that share one ClickHouse, without transactions.
 *
 * Every stored event leaves a claim in `event_keys`: (key, key2, write_id, received_at). A write
 * 1. looks up the claims of its candidates' keys: a message with a live claim is a duplicate;
 * 2. inserts the rest (the claims come with them, from a materialized view, in the same INSERT);
 * 3. looks again for claims of the same messages by other writes. Two collectors that got the same
 *    message at the same time both pass step 1; whichever runs step 3 last sees both claims. The winner
 *    is the earliest received (then the smaller write id); every other claim is recorded in
 *    `event_losers` with its winner, and the `events` view hides it.
 *
 * A claim is live unless its write was aborted, or it lost to a winner that is itself live enough not to
 * be aborted. Aborting a write (the outage journal does, before writing a failed batch again) thereby
 * revives whatever lost to it, so a message is never hidden twice over.
 *
 * Messages are identified by a 128-bit key of (app, message_id) (`dedupeKey`), so claims hold only
 * numbers: cheap to store, sort and look up.
 */
import crypto from 'node:crypto';

// crypto.hash (Node ≥ 20.12) is twice as fast as a Hash object for one short input.
const md5Hex: (text: string) => string =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('md5', text)
    : (text) => crypto.createHash('md5').update(text).digest('hex');

export interface Claim {
  /** The 128-bit dedupe key of (app, message_id), as two UInt64 decimal strings. */
  readonly key: string;
  readonly key2: string;
  readonly writeId: string;
  readonly receivedAt: number;
  readonly aborted: boolean;
}

export interface LoserEntry {
  readonly key: string;
  readonly writeId: string;
  readonly winner: string;
  readonly winnerAborted: boolean;
}

export interface LoserRecord {
  readonly key: string;
  readonly writeId: string;
  readonly winner: string;
}

/** Claims that still stand: not aborted, and not beaten by a write that was not aborted. */
export function liveClaims(claims: readonly Claim[], losers: readonly LoserEntry[]): Claim[] {
  if (losers.length === 0) return claims.filter((c) => !c.aborted);
  const beaten = new Set<string>();
  for (const l of losers) if (!l.winnerAborted) beaten.add(`${l.key}\u0000${l.writeId}`);
  return claims.filter((c) => !c.aborted && !beaten.has(`${c.key}\u0000${c.writeId}`));
}

/** One message's identity in JS: both halves of its 128-bit key. */
export const messageKey = (key: string, key2: string): string => `${key}:${key2}`;

/** The messages (as `messageKey`) that already have a live claim. */
export function storedMessages(claims: readonly Claim[], losers: readonly LoserEntry[]): Set<string> {
  const stored = new Set<string>();
  for (const c of liveClaims(claims, losers)) stored.add(messageKey(c.key, c.key2));
  return stored;
}

/** Earliest received wins; ties go to the smaller write id (compared as unsigned 64-bit integers). */
export function compareClaims(a: Claim, b: Claim): number {
  if (a.receivedAt !== b.receivedAt) return a.receivedAt < b.receivedAt ? -1 : 1;
  const x = BigInt(a.writeId);
  const y = BigInt(b.writeId);
  return x < y ? -1 : x > y ? 1 : 0;
}

export interface RaceResolution {
  /** Messages (as `messageKey`) whose live winner is not `writeId`: they count as duplicates of this write. */
  readonly lost: Set<string>;
  /** Claims to record as beaten, each with its winner. */
  readonly losers: LoserRecord[];
}

/**
 * After `writeId` inserted its messages: among the live claims of each message, keep the winner and
 * record every other claim as beaten by it. `claims` must include this write's own claims.
 */
export function resolveRaces(
  writeId: string,
  claims: readonly Claim[],
  losers: readonly LoserEntry[],
): RaceResolution {
  const byMessage = new Map<string, Claim[]>();
  for (const c of liveClaims(claims, losers)) {
    const k = messageKey(c.key, c.key2);
    const list = byMessage.get(k);
    if (list) list.push(c);
    else byMessage.set(k, [c]);
  }
  const records: LoserRecord[] = [];
  for (const list of byMessage.values()) {
    if (list.length < 2) continue;
    const winner = list.reduce((best, c) => (compareClaims(c, best) < 0 ? c : best));
    for (const c of list)
      if (c !== winner) records.push({ key: c.key, writeId: c.writeId, winner: winner.writeId });
  }
  // This write's verdict on its own claims counts them even when the other write's check got there first
  // and recorded them as beaten (they are then no longer live): the loser corrects its own counts, and
  // only its own, whichever check ran first.
  const lost = new Set<string>();
  for (const mine of claims) {
    if (mine.writeId !== writeId || mine.aborted) continue;
    const k = messageKey(mine.key, mine.key2);
    const rivals = byMessage.get(k) ?? [];
    if (rivals.some((c) => c !== mine && c.writeId !== writeId && compareClaims(c, mine) < 0)) lost.add(k);
  }
  return { lost, losers: records };
}

// ——— the key ———

export interface DedupeKey {
  /** High 64 bits: orders `event_keys` and shards rows across a cluster. */
  readonly key: string;
  /** Low 64 bits: together with `key`, the message's identity. */
  readonly key2: string;
}

/**
 * The dedupe key of (app, messageId): MD5 of the UTF-8 of `app`, NUL, `messageId` (a lone surrogate
 * encodes as U+FFFD, as it is stored), as two UInt64 decimal strings. Stored in every row and used to
 * shard, so it is part of the data format: its outputs are pinned by a test. 128 bits make a collision
 * between two different messages practically impossible (≈ n²/2¹²⁹ for n stored messages).
 */
export function dedupeKey(app: string, messageId: string): DedupeKey {
  const hex = md5Hex(`${app}\u0000${messageId}`);
  return { key: BigInt(`0x${hex.slice(0, 16)}`).toString(), key2: BigInt(`0x${hex.slice(16)}`).toString() };
}
