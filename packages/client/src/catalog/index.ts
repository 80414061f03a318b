export {
  CatalogError,
  catalogFingerprint,
  catalogFromJSON,
  catalogProblems,
  catalogToJSON,
  defineCatalog,
} from './define.js';
export { catalogToMarkdown } from './markdown.js';
export type {
  BooleanTrait,
  Catalog,
  CatalogInput,
  DurationTrait,
  EnumListTrait,
  EnumTrait,
  ErrorTrait,
  EventNameOf,
  EventSpec,
  ExtraContextSpec,
  FlagListTrait,
  FunnelSpec,
  IntegerTrait,
  LegacyIdSpec,
  NumberTrait,
  OutcomeResultSpec,
  OutcomeSpec,
  ReportArgs,
  StringTrait,
  TraitSpec,
  TraitsOf,
  TraitType,
} from './types.js';
export type { RejectReason, ValidationResult } from './validate.js';
export { checkTraitValue, errorMaxLength, textTraits, validateEvent } from './validate.js';
