/**
 * What the daily counters count of an event besides its status: `clamped`, `skewed` and
 * `dropped_by_client`. Counted by the store, for the events it accepts, in the write that stores them
 * (`WriteBatch.statusCounters`): only the store knows which events are duplicates before the commit, and
 * a resend (or the same message twice in one batch) counts once (docs/collector.md, "Guarantees"). Until
 * 2026-11-29 the collector counted them for every prepared event, before dedupe: each resend counted
 * again, and a client's reported losses were multiplied by its retries.
 */
import type { StoredEvent } from './types.js';

/** A skew correction larger than this (either way) counts the event as `skewed` in the data-health counters. */
export const SKEW_COUNT_THRESHOLD_MS = 60_000;

/** `EncodedEvents.flags` bits. */
export const EVENT_CLAMPED = 1;
export const EVENT_SKEWED = 2;

/** An event's `EncodedEvents.flags`: whether it counts as clamped, as skewed. */
export const eventFlags = (e: StoredEvent): number =>
  (e.clamped ? EVENT_CLAMPED : 0) | (Math.abs(e.skewMs) > SKEW_COUNT_THRESHOLD_MS ? EVENT_SKEWED : 0);

/** The counter kinds an accepted event adds to besides `accepted`. */
export type EventCountKind = 'clamped' | 'skewed' | 'dropped_by_client';
export const EVENT_COUNT_KINDS: readonly EventCountKind[] = ['clamped', 'skewed', 'dropped_by_client'];

/**
 * The rule every store follows for each accepted event (a duplicate counts none): `clamped` and `skewed`
 * by its flags, `dropped_by_client` by the losses it reports. `add` is called only for a kind the event
 * counts, with `n` > 0; a correction that takes an acceptance back negates `n`. Called per event, so the
 * caller passes one `add` for all of them.
 */
export const addEventCounts = (
  flags: number,
  dropped: number,
  add: (kind: EventCountKind, n: number) => void,
): void => {
  if (flags & EVENT_CLAMPED) add('clamped', 1);
  if (flags & EVENT_SKEWED) add('skewed', 1);
  if (dropped > 0) add('dropped_by_client', dropped);
};
