export type {
  Catalog,
  CatalogInput,
  EventNameOf,
  EventSpec,
  FunnelSpec,
  OutcomeSpec,
  RejectReason,
  ReportArgs,
  TraitSpec,
  TraitsOf,
} from './catalog/index.js';
export {
  CatalogError,
  catalogFingerprint,
  catalogFromJSON,
  catalogProblems,
  catalogToJSON,
  catalogToMarkdown,
  defineCatalog,
  validateEvent,
} from './catalog/index.js';
export type {
  BatchRequest,
  BatchResponse,
  Control,
  MessageResult,
  Notice,
  WireContext,
  WireMessage,
} from './wire.js';
export { LIMITS } from './wire.js';
