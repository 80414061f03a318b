/**
 * What "by trait" offers in the breakdown panel: each catalog event with at least one trait the API can
 * group by (enum, boolean, enumList: closed value sets), and those traits (docs/analytics.md).
 */
import type { CatalogJson } from './api.js';

const BREAKDOWN_TRAIT_TYPES: readonly string[] = ['enum', 'boolean', 'enumList'];

export interface TraitChoice {
  readonly event: string;
  readonly traits: readonly string[];
}

/** The catalog's events (in catalog order) with their breakdown traits (sorted); events without any are left out. */
export function traitChoices(catalog: CatalogJson): TraitChoice[] {
  const choices: TraitChoice[] = [];
  for (const [event, spec] of Object.entries(catalog.events)) {
    const traits = Object.entries(spec.traits ?? {})
      .filter(([, t]) => BREAKDOWN_TRAIT_TYPES.includes(t.type))
      .map(([name]) => name)
      .sort();
    if (traits.length > 0) choices.push({ event, traits });
  }
  return choices;
}

/** True when the catalog offers `trait` for `event`. */
export const offersTrait = (choices: readonly TraitChoice[], event: string, trait: string): boolean =>
  choices.some((c) => c.event === event && c.traits.includes(trait));
