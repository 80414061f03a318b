/**
 * The privacy scrubber: every string that leaves a user's machine goes through it (client), and again
 * through it on arrival (collector). Redacts per token, so an error stays recognisable:
 *
 *   Get "https://10.0.0.1:6443/api/v1/namespaces/team-a/services/traffic-manager": dial tcp 10.0.0.1:6443
 *   Get "https://<url-host>:6443/api/v1/namespaces/<ns>/services/traffic-manager": dial tcp <ip>:6443
 *
 * The rules, their order and every choice (what is kept and why) are documented in docs/privacy.md.
 */

import { cutAtSpace, MAX_SCRUB_INPUT } from './_cut.js';
import {
  createAddressRules,
  createHostRules,
  createIdRules,
  createPathRules,
  createSecretRules,
  createUrlRules,
  createUserRules,
} from './_generic.js';
import { createKubeRules } from './_kube.js';
import { keepSharedKubeName } from './_paths.js';
import { applyRules, compileRules, type Rule } from './_rule.js';
import { SHARED_KUBE_NAMES } from './_vocabulary.js';

export type { CappedProperties, PropertyLimits } from './_cap.js';
export { capProperties, DEFAULT_PROPERTY_LIMITS, truncateText } from './_cap.js';
export { scrubToLength } from './_cut.js';
export { errorFingerprint, errorTemplate } from './_template.js';

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

export interface ScrubOptions {
  /**
   * Longer input is cut at a space before scrubbing (a token that crosses the cut is dropped whole), so
   * a huge string costs bounded time; the rule `truncated` fires. @default 16384
   */
  readonly maxInputLength?: number;
  /**
   * Kubernetes names to keep in addition to the built-in shared ones (`default`, `kube-system`,
   * `ambassador`, `traffic-manager`…): names of the tool's own objects, the same on every cluster.
   */
  readonly keepKubeNames?: readonly string[];
}

/** Every marker the scrubber writes, for documentation and for tests. */
export const SCRUB_MARKERS: readonly string[] = Object.freeze([
  '<home>',
  '<path>',
  '<file>',
  '<user>',
  '<host>',
  '<url-host>',
  '<credentials>',
  '<query>',
  '<fragment>',
  '<email>',
  '<ip>',
  '<mac>',
  '<token>',
  '<secret>',
  '<uuid>',
  '<arn>',
  '<ns>',
  '<workload>',
  '<pod>',
  '<service>',
  '<intercept>',
  '<context>',
  '<cluster>',
  '<release>',
  '<container>',
  '<node>',
  '<image>',
  '<name>',
]);

export class ScrubOptionsError extends Error {
  readonly code = 'TMK_CLIENT_SCRUB_OPTIONS';
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`Invalid scrubber options:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ScrubOptionsError';
    this.problems = problems;
  }
}

function checkOptions(identity: ScrubIdentity, options: ScrubOptions): void {
  const problems: string[] = [];
  for (const key of ['homeDir', 'userName', 'hostName'] as const) {
    const value = identity[key];
    if (value !== undefined && typeof value !== 'string') problems.push(`identity.${key} must be a string`);
  }
  const max = options.maxInputLength;
  if (max !== undefined && (!Number.isInteger(max) || max < 256)) {
    problems.push(
      `maxInputLength must be an integer ≥ 256 (pass a larger limit, or leave it out for ${MAX_SCRUB_INPUT})`,
    );
  }
  const keep = options.keepKubeNames;
  if (keep !== undefined && (!Array.isArray(keep) || keep.some((name) => typeof name !== 'string'))) {
    problems.push('keepKubeNames must be an array of strings');
  }
  if (problems.length > 0) throw new ScrubOptionsError(problems);
}

/**
 * Compile the rules once for an identity; the returned function is the hot path. Throws
 * `ScrubOptionsError` (code `TMK_CLIENT_SCRUB_OPTIONS`) only for invalid arguments, never when scrubbing.
 */
export function createScrubber(identity: ScrubIdentity = {}, options: ScrubOptions = {}): Scrubber {
  checkOptions(identity, options);
  const maxInputLength = options.maxInputLength ?? MAX_SCRUB_INPUT;
  const extraKept = new Set(options.keepKubeNames ?? []);
  const keepName =
    extraKept.size === 0
      ? keepSharedKubeName
      : (name: string) => SHARED_KUBE_NAMES.has(name) || extraKept.has(name);
  const rules: readonly Rule[] = compileRules([
    ...createSecretRules(),
    ...createUrlRules(keepName),
    ...createKubeRules(keepName),
    ...createPathRules(identity),
    ...createAddressRules(),
    ...createHostRules(identity, keepName),
    ...createUserRules(identity),
    ...createIdRules(),
  ]);
  return (input) => {
    const fired: string[] = [];
    if (typeof input !== 'string' || input === '')
      return { text: typeof input === 'string' ? input : '', rules: fired };
    let text = input;
    if (text.length > maxInputLength) {
      text = cutAtSpace(text, maxInputLength);
      fired.push('truncated');
    }
    return { text: applyRules(text, rules, fired), rules: fired };
  };
}
