/**
 * The catalog model: what a tool may collect, written once and used everywhere —
 * compile-time types for `report()`, runtime validation in the client and the collector,
 * the public "what we collect" page, and the dashboards (outcomes and funnels).
 *
 * Trait types are deliberately narrow. There is no free-form passthrough: free text is
 * either an `error` (always scrubbed, also reduced to a fingerprint) or a bounded `string`
 * (always scrubbed, optionally replaced by a keyed hash).
 */

interface TraitBase {
  /** One sentence for the "what we collect" page. */
  readonly description?: string;
  /** When true, an event without this trait is rejected. @default false */
  readonly required?: boolean;
}

export interface BooleanTrait extends TraitBase {
  readonly type: 'boolean';
}

export interface IntegerTrait extends TraitBase {
  readonly type: 'integer';
  /** @default 0 */
  readonly min?: number;
  /** @default Number.MAX_SAFE_INTEGER */
  readonly max?: number;
}

export interface NumberTrait extends TraitBase {
  readonly type: 'number';
  readonly min?: number;
  readonly max?: number;
}

/** A non-negative elapsed time. The unit is part of the schema, never guessed from the name. */
export interface DurationTrait extends TraitBase {
  readonly type: 'duration';
  readonly unit: 's' | 'ms';
  /** Upper bound in `unit`. @default 86400 s (one day) */
  readonly max?: number;
}

export interface EnumTrait<V extends string = string> extends TraitBase {
  readonly type: 'enum';
  readonly values: readonly V[];
}

export interface EnumListTrait<V extends string = string> extends TraitBase {
  readonly type: 'enumList';
  readonly values: readonly V[];
  /** @default values.length */
  readonly maxItems?: number;
}

/**
 * Command-line flag names (`--run`, `-s`). Values are stripped (`--expose=8080` → `--expose`),
 * anything that does not look like a flag is dropped, duplicates are removed.
 */
export interface FlagListTrait extends TraitBase {
  readonly type: 'flagList';
  /** @default 32 */
  readonly maxItems?: number;
}

/** Free text from an error. Always scrubbed; the collector also derives a stable fingerprint. */
export interface ErrorTrait extends TraitBase {
  readonly type: 'error';
  /** Characters kept after scrubbing. @default 1024 */
  readonly maxLength?: number;
}

/** Bounded free text. Always scrubbed; with `hashed`, replaced by a keyed hash that never leaves the secret. */
export interface StringTrait extends TraitBase {
  readonly type: 'string';
  readonly maxLength: number;
  /** Send `HMAC-SHA256(local secret, value)` instead of the value. @default false */
  readonly hashed?: boolean;
}

export type TraitSpec =
  | BooleanTrait
  | IntegerTrait
  | NumberTrait
  | DurationTrait
  | EnumTrait
  | EnumListTrait
  | FlagListTrait
  | ErrorTrait
  | StringTrait;

export type TraitType = TraitSpec['type'];

export interface EventSpec {
  /** What happened, in one sentence: it becomes the "what we collect" page. */
  readonly description: string;
  readonly traits?: Readonly<Record<string, TraitSpec>>;
}

/** One possible result of an outcome: an event, optionally narrowed by a boolean or enum trait value. */
export interface OutcomeResultSpec {
  readonly event: string;
  readonly where?: Readonly<Record<string, boolean | string>>;
  /** `success` and `failure` make the rate; `other` results (interrupted, errored) are shown but not in the rate's numerator. */
  readonly kind: 'success' | 'failure' | 'other';
  readonly label?: string;
}

export interface OutcomeSpec {
  readonly title: string;
  readonly description?: string;
  readonly results: Readonly<Record<string, OutcomeResultSpec>>;
}

export interface FunnelSpec {
  readonly title: string;
  readonly description?: string;
  /** Event names in order; a session converts a step only after it converted the previous one. */
  readonly steps: readonly string[];
  /** Maximum time from the first step to the last. @default 600 */
  readonly windowSeconds?: number;
}

/** Extra context read from the environment, e.g. `TELEPRESENCE_REPORT_GITHUB_ACTIONS_INTEGRATION`. Only declared keys pass. */
export interface ExtraContextSpec {
  readonly envPrefix: string;
  /** Lower-case key (the env var's suffix, lower-cased) → a narrow trait type. */
  readonly keys: Readonly<Record<string, BooleanTrait | IntegerTrait | EnumTrait>>;
}

/** A legacy install-id file of an earlier version of the tool, migrated on first run. */
export interface LegacyIdSpec {
  /** Short name, sent as `legacy_id_source` when an id is migrated. */
  readonly name: string;
  /** Path relative to `base`. */
  readonly path: string;
  /** `xdgConfig`: `$XDG_CONFIG_HOME` or `~/.config` on every OS; `home`: the home directory. */
  readonly base: 'xdgConfig' | 'home' | 'platformConfig';
}

export interface CatalogInput {
  /** The application name sent with every event; the collector's registry key. */
  readonly app: string;
  /** Human title for docs and the dashboard. @default app */
  readonly title?: string;
  /** Opening paragraph of the "what we collect" page. */
  readonly intro?: string;
  /** Where the project documents telemetry; printed in the first-run notice. */
  readonly docsUrl?: string;
  /** The tool's own opt-out variables. `1/true/yes/on` disable; `0/false/off/` (empty) do not. */
  readonly optOutEnv?: readonly string[];
  readonly extraContext?: ExtraContextSpec;
  /** Directory name under the user config dir. @default app */
  readonly configDirName?: string;
  readonly legacyIdFiles?: readonly LegacyIdSpec[];
  readonly events: Readonly<Record<string, EventSpec>>;
  readonly outcomes?: Readonly<Record<string, OutcomeSpec>>;
  readonly funnels?: Readonly<Record<string, FunnelSpec>>;
}

/** A validated, frozen catalog. `input` keeps the literal types so `report()` can be typed from it. */
export interface Catalog<C extends CatalogInput = CatalogInput> {
  readonly app: string;
  readonly title: string;
  readonly input: C;
  // A conditional type, so `Catalog<Literal>` is checked structurally and stays assignable to `Catalog`
  // (a bare `keyof` would make the parameter contravariant, hence invariant).
  readonly eventNames: readonly (C extends { readonly events: infer E } ? keyof E & string : never)[];
  /** sha256 (hex, 16 chars) of the set of collected fields; changes re-show the first-run notice. */
  readonly fingerprint: string;
}

type TraitValue<T extends TraitSpec> = T extends BooleanTrait
  ? boolean
  : T extends IntegerTrait | NumberTrait | DurationTrait
    ? number
    : T extends EnumTrait<infer V>
      ? V
      : T extends EnumListTrait<infer V>
        ? readonly V[]
        : T extends FlagListTrait
          ? readonly string[]
          : T extends ErrorTrait
            ? string | Error
            : T extends StringTrait
              ? string
              : never;

type RequiredKeys<R> = { [K in keyof R]: R[K] extends { required: true } ? K : never }[keyof R];
type OptionalKeys<R> = Exclude<keyof R, RequiredKeys<R>>;

type TraitsFromSpecs<R> =
  R extends Readonly<Record<string, TraitSpec>>
    ? { [K in RequiredKeys<R>]: TraitValue<R[K]> } & { [K in OptionalKeys<R>]?: TraitValue<R[K]> }
    : Record<string, never>;

type Simplify<T> = { [K in keyof T]: T[K] } & {};

export type EventNameOf<C extends CatalogInput> = keyof C['events'] & string;

/** The traits `report(event, traits)` accepts for one event. */
export type TraitsOf<C extends CatalogInput, E extends EventNameOf<C>> = Simplify<
  TraitsFromSpecs<C['events'][E]['traits']>
>;

/** `[traits]` when the event has a required trait, `[traits?]` otherwise. */
export type ReportArgs<C extends CatalogInput, E extends EventNameOf<C>> = [
  RequiredKeys<NonNullable<C['events'][E]['traits']>>,
] extends [never]
  ? [traits?: TraitsOf<C, E>]
  : [traits: TraitsOf<C, E>];
