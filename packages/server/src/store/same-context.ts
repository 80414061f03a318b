/**
 * Whether two events share their context: the columns that describe where an event came from rather than
 * what happened. Both engines' encoders compare each event with the previous one, which a batch's events
 * mostly equal, to reuse what they made for it (DuckDB its context id, ClickHouse the run of context
 * columns) instead of building it again.
 */
import type { StoredEvent } from './types.js';

/**
 * Whether two events have the same context tuple, compared field by field (no allocation). `extra`
 * must be the same object, or two empty ones; otherwise the caller falls back to the key.
 */
export function sameContext(a: StoredEvent, b: StoredEvent): boolean {
  return (
    a.appVersion === b.appVersion &&
    a.clamped === b.clamped &&
    a.osName === b.osName &&
    a.osVersion === b.osVersion &&
    a.osBuild === b.osBuild &&
    a.arch === b.arch &&
    a.platform === b.platform &&
    a.installMethod === b.installMethod &&
    a.envClass === b.envClass &&
    a.ciVendor === b.ciVendor &&
    a.container === b.container &&
    a.wsl === b.wsl &&
    a.agent === b.agent &&
    a.mode === b.mode &&
    a.nodeVersion === b.nodeVersion &&
    a.protocol === b.protocol &&
    a.library === b.library &&
    a.newInstall === b.newInstall &&
    a.droppedBefore === b.droppedBefore &&
    (a.extra === b.extra || (isEmptyObject(a.extra) && isEmptyObject(b.extra)))
  );
}

function isEmptyObject(value: object): boolean {
  for (const _ in value) return false;
  return Object.getOwnPropertySymbols(value).length === 0 && Object.getOwnPropertyNames(value).length === 0;
}
