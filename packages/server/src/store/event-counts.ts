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
