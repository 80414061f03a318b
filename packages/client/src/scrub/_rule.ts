/** One redaction rule: a global pattern, its replacer, and a cheap pre-check that skips it on most texts. */
export interface Rule {
  readonly name: string;
  /**
   * A cheap pre-check: a substring, a non-global pattern, or a predicate the text must satisfy for the
   * rule to have a chance. Patterns that start with a literal are fast; a leading character class
   * makes the engine try every position, so guards are chosen to skip the costly patterns. A
   * predicate also gets the text as earlier rules left it, for rules that run after most redaction.
   */
  readonly needs?: string | RegExp | ((facts: TextFacts, current: string) => boolean);
  readonly pattern: RegExp;
  // biome-ignore lint/suspicious/noExplicitAny: this is String.prototype.replace's own replacer type
  readonly replace: string | ((match: string, ...groups: any[]) => string);
}

/**
 * Apply rules in order; returns the text and appends the names of the rules that changed it.
 * Guards are checked against the input (and its lower-case form, computed once): rules only replace
 * text with markers, so what the input lacks a later stage cannot gain, and the checks stay cheap.
 */
export function applyRules(text: string, rules: readonly Rule[], fired: string[] | undefined): string {
  let facts: TextFacts | undefined;
  let current = text;
  for (const rule of rules) {
    const needs = rule.needs;
    if (needs !== undefined) {
      let possible: boolean;
      if (typeof needs === 'string') possible = text.includes(needs);
      else if (typeof needs === 'function') {
        facts ??= new TextFacts(text);
        possible = needs(facts, current);
      } else possible = needs.test(text);
      if (!possible) continue;
    }
    // biome-ignore lint/suspicious/noExplicitAny: both overloads of replace accept this union
    const next = current.replace(rule.pattern, rule.replace as any);
    if (next !== current) {
      if (fired && !fired.includes(rule.name)) fired.push(rule.name);
      current = next;
    }
  }
  return current;
}

/**
 * Rules rebuilt with one object shape (every field present, in one order). Rule literals differ in
 * which fields they spell out; mixed shapes make the engine's lookups in the hot loop megamorphic,
 * which measured twice as slow.
 */
export function compileRules(rules: readonly Rule[]): readonly Rule[] {
  return Object.freeze(
    rules.map((rule) =>
      Object.freeze({ name: rule.name, needs: rule.needs, pattern: rule.pattern, replace: rule.replace }),
    ),
  );
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The middle of a UUID (lower case). */
const UUID_INSIDE = /-[0-9a-f]{4}-[0-9a-f]{4}-/;

/** 1 for the characters of base64 and hex secrets: `[A-Za-z0-9_+/=-]`. */
const BASE64_CHAR = (() => {
  const table = new Uint8Array(128);
  for (let c = 48; c <= 57; c++) table[c] = 1;
  for (let c = 65; c <= 90; c++) table[c] = 1;
  for (let c = 97; c <= 122; c++) table[c] = 1;
  for (const c of '-_+/=') table[c.charCodeAt(0)] = 1;
  return table;
})();

const isBase64Char = (c: number): boolean => c < 128 && BASE64_CHAR[c] === 1;

/**
 * Whether `text` holds a run of at least `length` characters of `[A-Za-z0-9_+/=-]`. Such a run covers
 * one of every `length`-th position, so those are read first and a run is only measured around a
 * probe that hits: a typical error is ruled out in a few reads instead of a pass over every character.
 */
export function hasBase64Run(text: string, length: number): boolean {
  const n = text.length;
  let probe = length - 1;
  while (probe < n) {
    if (!isBase64Char(text.charCodeAt(probe))) {
      probe += length;
      continue;
    }
    let start = probe;
    while (start > 0 && isBase64Char(text.charCodeAt(start - 1))) start--;
    let end = probe + 1;
    while (end < n && isBase64Char(text.charCodeAt(end))) end++;
    if (end - start >= length) return true;
    // `end` is outside any run: a long run lies wholly after it, so it covers `end + length`.
    probe = end + length;
  }
  return false;
}

function countOf(text: string, char: string): number {
  let count = 0;
  for (let index = text.indexOf(char); index !== -1; index = text.indexOf(char, index + 1)) count++;
  return count;
}

/**
 * Facts about an input that several guards share, each computed at most once: its lower-case form,
 * whether it holds a UUID, and how many `:` and `-` it has.
 */
export class TextFacts {
  readonly text: string;
  #lower: string | undefined;
  #uuid: boolean | undefined;
  #colons: number | undefined;
  #dashes: number | undefined;

  constructor(text: string) {
    this.text = text;
  }

  get lower(): string {
    this.#lower ??= this.text.toLowerCase();
    return this.#lower;
  }

  get hasUuid(): boolean {
    this.#uuid ??= UUID_INSIDE.test(this.lower);
    return this.#uuid;
  }

  get colons(): number {
    if (this.#colons === undefined) this.#colons = countOf(this.text, ':');
    return this.#colons;
  }

  get dashes(): number {
    if (this.#dashes === undefined) this.#dashes = countOf(this.text, '-');
    return this.#dashes;
  }
}
