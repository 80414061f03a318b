/**
 * Error templates and fingerprints: the same error with other names, numbers, paths or addresses has
 * the same template, so the collector can group it. Input is text the scrubber already cleaned.
 */
import { createHash } from 'node:crypto';
import { SEGMENT } from './_generic.js';
import { createKubeRules } from './_kube.js';
import { applyRules, compileRules, type Rule } from './_rule.js';

/** Markers that stand for the same kind of thing, folded so that an IP and a host name group together. */
const MARKER_FAMILIES: Readonly<Record<string, string>> = {
  '<ip>': '<host>',
  '<url-host>': '<host>',
  '<host>': '<host>',
  '<mac>': '<host>',
  '<email>': '<user>',
  '<user>': '<user>',
  '<token>': '<secret>',
  '<secret>': '<secret>',
  '<credentials>': '<secret>',
  '<uuid>': '<id>',
  '<arn>': '<id>',
};

const TEMPLATE_RULES: readonly Rule[] = compileRules([
  // Names the scrubber keeps because every cluster has them (`default`, `traffic-manager`) vary
  // between occurrences of one error as much as customer names do.
  ...createKubeRules(() => false),
  {
    name: 'quoted',
    pattern: /"(?:[^"\\\n]|\\.){0,400}"|(?<![\w'])'[^'\n]{1,400}'(?![\w'])|`[^`\n]{1,400}`/g,
    replace: (match: string) => `${match[0]}<*>${match[0]}`,
  },
  {
    name: 'path',
    pattern: new RegExp(
      String.raw`(?<![\w.>/\\-])(?:<home>|<path>|~|[A-Za-z]:)?(?:(?:\\\\|\\|/+)${SEGMENT})+[\\/]?`,
      'g',
    ),
    replace: '<path>',
  },
  {
    name: 'marker-path',
    pattern: /<home>|<file>(?:\.\w+)?/g,
    replace: '<path>',
  },
  {
    name: 'marker-family',
    pattern: /<(?:ip|url-host|host|mac|email|user|token|secret|credentials|uuid|arn)>/g,
    replace: (match: string) => MARKER_FAMILIES[match] ?? match,
  },
  {
    // A workload, its pod or its service, with or without `.<namespace>`, is one object to a reader:
    // `traffic-agent <workload>` and `traffic-agent <pod>.default` are the same error.
    name: 'kube-object-family',
    pattern: /<(?:workload|pod|service|intercept)>(?:\.(?:<ns>|[a-z0-9][a-z0-9-]{0,62})(?![\w-]))?/g,
    replace: '<object>',
  },
  {
    name: 'hex',
    pattern: /\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,}\b/gi,
    replace: '<id>',
  },
  {
    name: 'duration',
    pattern: /\b(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h)){1,4}\b/g,
    replace: '<duration>',
  },
  {
    name: 'number',
    pattern: /(?<![\w.])[-+]?\d+(?:[.,]\d+)*(?![\w])/g,
    replace: '<n>',
  },
  {
    name: 'space',
    pattern: /\s+/g,
    replace: ' ',
  },
]);

/**
 * The message with variable parts replaced by placeholders: the human-readable face of a fingerprint.
 * Quoted strings become `"<*>"`, paths `<path>`, numbers `<n>`, durations `<duration>`, hex ids
 * `<id>`, names in Kubernetes positions their typed marker (workloads, pods, services and intercepts,
 * with or without their namespace, fold into `<object>`), and address/secret markers fold into one
 * family each (`<host>`, `<secret>`, `<user>`, `<id>`). Idempotent.
 */
export function errorTemplate(scrubbedText: string): string {
  return applyRules(scrubbedText, TEMPLATE_RULES, undefined).trim();
}

/** sha256 of the template, first 16 hex characters. */
export function errorFingerprint(scrubbedText: string): string {
  return createHash('sha256').update(errorTemplate(scrubbedText)).digest('hex').slice(0, 16);
}
