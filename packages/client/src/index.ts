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
export type { ConsentSignal } from './consent.js';
export type { TelemetryErrorCode } from './errors.js';
export { TelemetryError } from './errors.js';
export type { LedgerEntry } from './ledger.js';
export type {
  FlushReason,
  FlushResult,
  ShowNoticeOptions,
  Telemetry,
  TelemetryOptions,
  TelemetryStatus,
} from './telemetry.js';
export { createTelemetry } from './telemetry.js';
export { LIBRARY_VERSION } from './version.js';
export type {
  BatchRequest,
  BatchResponse,
  Control,
  MessageResult,
  Notice,
  WireContext,
  WireMessage,
} from './wire.js';
export { LIMITS, plainAgentName } from './wire.js';
