/**
 * The privacy scrubber: every string that leaves a user's machine goes through it (client), and again
 * through it on arrival (collector). Redacts per token, so an error stays recognisable.
 *
 * CONTRACT (implementation in progress): the signatures below are fixed; rules are filled in.
 */

/** What the local machine knows exactly; the collector scrubs without it (generic rules only). */
export interface ScrubIdentity {
  readonly homeDir?: string;
  readonly userName?: string;
  readonly hostName?: string;
}

export interface ScrubResult {
  readonly text: string;
  /** Names of the rules that fired, in order, without duplicates (shown in debug mode). */
  readonly rules: readonly string[];
}

export type Scrubber = (text: string) => ScrubResult;

/** Compile the rules once for an identity; the returned function is the hot path. */
export function createScrubber(_identity: ScrubIdentity = {}): Scrubber {
  return (text) => ({ text, rules: [] });
}

/**
 * A stable fingerprint of an error: the scrubbed message with its variable parts (numbers, quoted
 * names, ids, redaction markers) removed, hashed to 16 hex characters.
 */
export function errorFingerprint(scrubbedText: string): string {
  return errorTemplate(scrubbedText).slice(0, 16);
}

/** The message with variable parts replaced by placeholders: the human-readable face of a fingerprint. */
export function errorTemplate(scrubbedText: string): string {
  return scrubbedText;
}
