/**
 * The cuts around scrubbing. `report()` cuts an error to what the scrubber will read, and the sender
 * cuts what it scrubbed to the trait's length: both are loaded at start-up, unlike the scrubber and the
 * property caps, so they live apart from them (see rolldown.config.mjs).
 */
import type { Scrubber, ScrubResult } from './index.js';

/**
 * Characters of a text the scrubber reads (`maxInputLength`'s default), and so of an error the client
 * keeps until it is scrubbed: what the scrubber reads is what it would have kept anyway.
 */
export const MAX_SCRUB_INPUT = 16_384;

const isSpace = (code: number): boolean => code === 32 || (code >= 9 && code <= 13);

/**
 * Cut to at most `max` characters at a space, before scrubbing: a secret cut in two is no longer
 * recognisable (`postgres://admin:supersec` reads as host:port), and its head would pass. Without a
 * space before `max` the text is one token, and nothing of it is kept.
 */
export function cutAtSpace(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max;
  while (end > 0 && !isSpace(text.charCodeAt(end))) end--;
  return text.slice(0, end);
}

/**
 * Scrub a trait's text, then cut it to its length: the cut comes after, because a secret cut in two is
 * no longer recognisable, and again after because markers can be longer than what they replace. The
 * client's sender and the collector both store what this returns.
 */
export function scrubToLength(scrubber: Scrubber, text: string, max: number): ScrubResult {
  const result = scrubber(text);
  return result.text.length > max ? { text: result.text.slice(0, max), rules: result.rules } : result;
}
