/**
 * The collector's control block, persisted by whoever delivered last: the kill switch (read by the consent
 * resolver), the latest version and server notices (returned by `notices()`), and a retry hint.
 */
import path from 'node:path';
import { readJsonObject, writeJsonAtomic } from './_fs.js';
import { FILES } from './paths.js';
import type { Control, Notice } from './wire.js';

export interface StoredControl {
  readonly receivedAt: string;
  readonly latestVersion?: string;
  readonly notices?: readonly Notice[];
  readonly disableUntil?: string;
}

const MAX_NOTICES = 10;
const MAX_NOTICE_TEXT = 500;

function cleanNotices(value: unknown): Notice[] {
  if (!Array.isArray(value)) return [];
  const notices: Notice[] = [];
  for (const item of value.slice(0, MAX_NOTICES)) {
    if (!item || typeof item !== 'object') continue;
    const { id, text, level } = item as Record<string, unknown>;
    if (typeof id !== 'string' || typeof text !== 'string' || text.trim() === '') continue;
    notices.push({
      id: id.slice(0, 100),
      // Notices are printed by the host tool: no control characters from a server may reach a terminal.
      text: text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '').slice(0, MAX_NOTICE_TEXT),
      ...(level === 'warn' || level === 'info' ? { level } : {}),
    });
  }
  return notices;
}

export function readControl(configDir: string): StoredControl | undefined {
  const value = readJsonObject(path.join(configDir, FILES.control));
  if (!value) return undefined;
  return {
    receivedAt: typeof value.receivedAt === 'string' ? value.receivedAt : '',
    ...(typeof value.latestVersion === 'string' ? { latestVersion: value.latestVersion } : {}),
    notices: cleanNotices(value.notices),
    ...(typeof value.disableUntil === 'string' ? { disableUntil: value.disableUntil } : {}),
  };
}

/** Store a control block received from the collector (the newest one replaces the previous one). */
export function writeControl(configDir: string, control: Control, now: number): StoredControl {
  const stored: StoredControl = {
    receivedAt: new Date(now).toISOString(),
    ...(typeof control.latestVersion === 'string' && control.latestVersion.length <= 64
      ? { latestVersion: control.latestVersion }
      : {}),
    notices: cleanNotices(control.notices),
    ...(typeof control.disableUntil === 'string' && Number.isFinite(Date.parse(control.disableUntil))
      ? { disableUntil: control.disableUntil }
      : {}),
  };
  writeJsonAtomic(path.join(configDir, FILES.control), stored);
  return stored;
}

type Parsed = { core: number[]; pre: string[] };

function parseVersion(version: string): Parsed | undefined {
  const match = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/.exec(version.trim());
  if (!match) return undefined;
  return { core: [Number(match[1]), Number(match[2]), Number(match[3])], pre: match[4]?.split('.') ?? [] };
}

/** Semver precedence: negative when a < b, 0 when equal, positive when a > b; undefined if either is not semver. */
export function compareVersions(a: string, b: string): number | undefined {
  const x = parseVersion(a);
  const y = parseVersion(b);
  if (!x || !y) return undefined;
  for (let i = 0; i < 3; i++) if (x.core[i] !== y.core[i]) return (x.core[i] ?? 0) - (y.core[i] ?? 0);
  if (x.pre.length === 0 || y.pre.length === 0) return y.pre.length - x.pre.length;
  for (let i = 0; i < Math.max(x.pre.length, y.pre.length); i++) {
    const p = x.pre[i];
    const q = y.pre[i];
    if (p === undefined) return -1;
    if (q === undefined) return 1;
    if (p === q) continue;
    const pn = /^\d+$/.test(p);
    const qn = /^\d+$/.test(q);
    if (pn && qn) return Number(p) - Number(q);
    if (pn !== qn) return pn ? -1 : 1;
    return p < q ? -1 : 1;
  }
  return 0;
}

/** An upgrade notice when the collector knows a newer version, then the collector's own notices. */
export function noticesFrom(control: StoredControl | undefined, title: string, version: string): Notice[] {
  if (!control) return [];
  const notices: Notice[] = [];
  const latest = control.latestVersion;
  if (latest && (compareVersions(latest, version) ?? 0) > 0)
    notices.push({
      id: `upgrade:${latest}`,
      text: `${title} ${latest} is available (you have ${version}).`,
      level: 'info',
    });
  notices.push(...(control.notices ?? []));
  return notices;
}
