/**
 * The first-run notice. It is recorded per catalog fingerprint in `notice.json`: shown again when the set
 * of collected fields changes. Until it has been shown once on the machine, nothing is sent.
 */
import path from 'node:path';
import { readJsonObject, writeJsonAtomic } from './_fs.js';
import type { Catalog } from './catalog/types.js';
import { FILES } from './paths.js';

export interface NoticeState {
  /** Fingerprint → ISO time it was shown. */
  readonly shown: Readonly<Record<string, string>>;
}

export function readNoticeState(configDir: string): NoticeState {
  const value = readJsonObject(path.join(configDir, FILES.notice));
  const shown: Record<string, string> = {};
  if (value?.shown && typeof value.shown === 'object')
    for (const [fingerprint, at] of Object.entries(value.shown as Record<string, unknown>))
      if (typeof at === 'string') shown[fingerprint] = at;
  return { shown };
}

export function recordNoticeShown(configDir: string, fingerprint: string, now: number): void {
  const state = readNoticeState(configDir);
  writeJsonAtomic(path.join(configDir, FILES.notice), {
    shown: { ...state.shown, [fingerprint]: new Date(now).toISOString() },
  });
}

/** The notice was shown at least once on this machine (any catalog version): events may be sent. */
export function noticeEverShown(state: NoticeState): boolean {
  return Object.keys(state.shown).length > 0;
}

/**
 * The notice text. It says what is collected and what is not, where the full list is, how to turn it
 * off and how to see what would be sent. Written for stderr; every line stands alone.
 */
export function noticeText(catalog: Catalog, changed: boolean): string {
  const title = catalog.title;
  const optOut = catalog.input.optOutEnv?.[0];
  const off = optOut ? `${optOut}=1 or DO_NOT_TRACK=1` : 'DO_NOT_TRACK=1 or TELEMARK_DISABLED=1';
  const lines = [
    changed
      ? `${title} has changed what its anonymous usage data contains.`
      : `${title} collects anonymous usage data to learn which commands fail and why, and where to improve.`,
    '  Sent: event names with a few typed details (such as an outcome or an error message with names,',
    '  paths, hosts and addresses removed), the tool and OS versions, and a random install id.',
    '  Never sent: your name, host name, IP address, file paths, or cluster and workload names.',
  ];
  if (catalog.input.docsUrl) lines.push(`  The full list: ${catalog.input.docsUrl}`);
  lines.push(`  To turn it off, set ${off}. To see what would be sent, set TELEMARK_DEBUG=1.`);
  return `${lines.join('\n')}\n`;
}
