import type { Catalog, Notice } from 'telemark';

/** Token bucket: `perSecond` refill, `burst` capacity. */
export interface RateLimit {
  readonly perSecond: number;
  readonly burst: number;
}

/** One registered app: the catalog its events are validated against and its ingest policy. */
export interface AppEntry {
  readonly name: string;
  readonly catalog: Catalog;
  readonly writeKeys: readonly string[];
  /** Accept messages without a write key that name this app (Telepresence sends no key). */
  readonly allowKeyless: boolean;
  readonly latestVersion?: string;
  readonly notices: readonly Notice[];
  /** Kill switch: when set, every response tells clients to stop until this ISO time. */
  readonly disableUntil?: string;
  readonly rateLimits: { readonly perWriteKey: RateLimit; readonly perInstall: RateLimit };
  /** Events older than this are removed by retention; 0 keeps everything. */
  readonly retentionDays: number;
}

export interface AppRegistry {
  get(name: string): AppEntry | undefined;
  byWriteKey(key: string): AppEntry | undefined;
  list(): readonly AppEntry[];
}
