/**
 * Delivery: takes sealed segments (and those of dead writers), posts them in batches to
 * `{endpoint}/v1/batch`, removes what the collector answered for, and keeps the rest for a retry with
 * backoff. The detached sender and `flush()` both run this, always under the spool lock.
 */
import path from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { unlinkQuietly } from '../_fs.js';
import { machineGate } from '../consent.js';
import { writeControl } from '../control.js';
import { effectiveInstallId, ensureStoredIdentity, type StoredIdentity } from '../identity.js';
import { appendLedger } from '../ledger.js';
import { LOCK_HEARTBEAT_MS, type Lock } from '../lock.js';
import { createMachineFacts } from '../machine.js';
import {
  expandRecord,
  finishRecord,
  installMethodOf,
  type MachineFacts,
  parseEventLine,
  parseSegmentHeader,
  type RecordIdentity,
  type SegmentHeader,
  type SpoolRecord,
} from '../message.js';
import { noticeEverShown, readNoticeState } from '../notice.js';
import { type Env, FILES, legacyIdPath } from '../paths.js';
import {
  adoptSegment,
  discardSpool,
  enforceSpoolLimits,
  isAbandoned,
  listSpool,
  readSegment,
  rewriteSegment,
  type SegmentEntry,
} from '../spool.js';
import { type BatchResponse, LIMITS, type MessageResult, type WireMessage } from '../wire.js';
import { backoffDelay, parseRetryAfter } from './backoff.js';
import {
  CONFIG_CODES,
  type DeliveryState,
  deliveryFingerprint,
  RETRYABLE_STATUS,
  readDeliveryState,
  refusalFix,
  writeDeliveryState,
} from './delivery-state.js';
import { post } from './http.js';

const gzipAsync = promisify(gzip);

export interface DeliveryConfig {
  readonly app: string;
  readonly configDir: string;
  readonly endpoint: string;
  readonly writeKey?: string;
  readonly connectMs: number;
  readonly totalMs: number;
  readonly maxBytes: number;
  readonly maxAgeMs: number;
  readonly env: Env;
  readonly libraryVersion: string;
}

export interface DeliveryRun {
  /** Absolute time (ms) by which delivery stops, whatever it is doing. */
  readonly deadline: number;
  readonly lock: Lock;
  /** The longest backoff to wait for in this process; longer ones end the run. */
  readonly maxSleepMs: number;
}

export type DeliveryStop =
  | 'empty'
  | 'backoff'
  | 'deadline'
  | 'lost_lock'
  | 'disabled'
  | 'notice_pending'
  | 'killed';

/** Why the last attempt of a run failed (none when it succeeded). */
export interface DeliveryFailure {
  /** `HTTP 401 TMK_ERR_BAD_WRITE_KEY`, `ECONNREFUSED: …`: the same text as `lastError`. */
  readonly error: string;
  readonly status: number | null;
  /** The collector's code, or the network error's. */
  readonly code: string | null;
  /** Retrying cannot fix it: what to change (see `refusalFix`). Undefined for failures that pass. */
  readonly fix: string | undefined;
}

export interface DeliveryOutcome {
  readonly reason: DeliveryStop;
  readonly delivered: number;
  readonly duplicates: number;
  readonly rejected: number;
  readonly attempts: number;
  readonly nextAttemptAt: number | null;
  readonly lastError: string | null;
  /** The last attempt's failure, when the last attempt failed. */
  readonly failure: DeliveryFailure | null;
  /** Events removed from the spool because the collector's kill switch is in force. */
  readonly discarded: number;
}

/** Status codes that say the request itself is refused: split the batch to find the culprit. */
const SPLITTABLE = new Set([400, 413, 415, 422]);
/** A refusal that no batch can fix (wrong endpoint, key, app): wait long, keep the events. */
const CONFIG_FAILURE_MIN_DELAY_MS = 5 * 60 * 1000;

interface BatchItem {
  readonly message: WireMessage;
  readonly json: string;
}

interface ConsumedLines {
  /** Format 2: the segment's header, kept when the segment is rewritten. */
  readonly header: string | undefined;
  readonly lines: string[];
  /** Lines taken from the front of the segment. */
  count: number;
  /** For each taken line: it is in the batch (false: unusable, dropped). */
  readonly sent: boolean[];
}

interface Batch {
  readonly items: BatchItem[];
  /** Lines consumed from the front of each segment (sent or dropped as unusable). */
  readonly consumed: Map<SegmentEntry, ConsumedLines>;
  readonly unusable: number;
  readonly droppedFiles: string[];
  /** Segments left alone because their writer is still writing them. */
  readonly inProgress: number;
  /** Segments removed because they held no complete event. */
  readonly emptied: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A format-1 line: a complete record. */
function parseLine(line: string): SpoolRecord | undefined {
  try {
    const value = JSON.parse(line) as SpoolRecord;
    return value && typeof value === 'object' && typeof value.messageId === 'string' && value.context?.cli
      ? value
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The install id for the events of format-2 segments, created when missing (a CLI's exit never reads or
 * makes it). The run of the first segment that needed it is recorded as the install's first run.
 */
function createIdentitySource(configDir: string, env: Env) {
  let stored: StoredIdentity | undefined;
  return (header: SegmentHeader, segment: SegmentEntry): RecordIdentity => {
    const run = `${header.cli.sessionId}:${segment.pid}`;
    const legacyFiles = () =>
      (header.legacyIdFiles ?? []).map((spec) => ({
        name: spec.name,
        path: legacyIdPath(spec, env, process.platform),
      }));
    stored ??= ensureStoredIdentity(configDir, legacyFiles, Date.now(), run).stored;
    const install = stored;
    let secret: Buffer | undefined;
    return {
      installIdAt: (time) => effectiveInstallId(install, time, header.idRotationDays),
      get secret() {
        secret ??= Buffer.from(install.secret, 'hex');
        return secret;
      },
      ...(install.firstRun === run
        ? { firstRun: install.legacySource ? { legacySource: install.legacySource } : {} }
        : {}),
    };
  };
}

/**
 * Take messages from the oldest segments, up to the batch limits, finishing each record (adding the
 * header's context and the install id to format-2 events, scrubbing what is left to scrub, adding the
 * machine's facts). The first message carries the dropped-events count.
 */
function buildBatch(
  segments: readonly SegmentEntry[],
  maxEvents: number,
  machine: MachineFacts,
  dropped: { count: number; files: string[] },
  identityFor: ReturnType<typeof createIdentitySource>,
): Batch {
  const items: BatchItem[] = [];
  const consumed = new Map<SegmentEntry, ConsumedLines>();
  let unusable = 0;
  let inProgress = 0;
  let emptied = 0;
  // Room for `{"batch":[`, `],"sentAt":"…"}` and commas.
  let bytes = 64;
  const now = Date.now();
  outer: for (const segment of segments) {
    let content: ReturnType<typeof readSegment>;
    try {
      content = readSegment(segment, now);
    } catch {
      continue;
    }
    if (content.inProgress) {
      inProgress++;
      continue;
    }
    const lines = content.events;
    if (lines.length === 0) {
      // Nothing complete in it (a header alone, or torn): nothing to send, and nothing to wait for.
      unlinkQuietly(segment.file);
      emptied++;
      continue;
    }
    // Format 2: without its header (torn by a crash), a segment's events cannot be sent.
    const header = segment.format === 2 ? parseSegmentHeader(content.header) : undefined;
    const identity = header ? identityFor(header, segment) : undefined;
    const installMethod = header ? installMethodOf(header) : 'unknown';
    const toRecord = (line: string): SpoolRecord | undefined => {
      if (segment.format === 1) return parseLine(line);
      const event = header && identity ? parseEventLine(line) : undefined;
      return event && header && identity ? expandRecord(header, installMethod, event, identity) : undefined;
    };
    const entry: ConsumedLines = { header: content.header, lines, count: 0, sent: [] };
    consumed.set(segment, entry);
    for (const line of lines) {
      let message: WireMessage | undefined;
      try {
        const parsed = toRecord(line);
        if (parsed)
          message = addDropped(finishRecord(parsed, machine).message, items.length === 0 ? dropped.count : 0);
      } catch {}
      const json = message && JSON.stringify(message);
      if (!message || !json || Buffer.byteLength(json) > LIMITS.maxEventBytes) {
        entry.count++;
        entry.sent.push(false);
        unusable++;
        continue;
      }
      const size = Buffer.byteLength(json) + 1;
      if (items.length >= maxEvents || (items.length > 0 && bytes + size > LIMITS.maxBatchBytes)) break outer;
      items.push({ message, json });
      bytes += size;
      entry.count++;
      entry.sent.push(true);
    }
  }
  return {
    items,
    consumed,
    unusable,
    inProgress,
    emptied,
    droppedFiles: items.length > 0 ? dropped.files : [],
  };
}

function addDropped(message: WireMessage, dropped: number): WireMessage {
  if (dropped <= 0) return message;
  const cli = message.context.cli;
  return {
    ...message,
    context: { ...message.context, cli: { ...cli, dropped: (cli.dropped ?? 0) + dropped } },
  };
}

function commit(batch: Batch, upTo?: number): void {
  // upTo: only the first n items were answered for (the rest stay); undefined means all of them.
  let remaining = upTo ?? Number.POSITIVE_INFINITY;
  for (const [segment, entry] of batch.consumed) {
    let take = 0;
    for (let i = 0; i < entry.count; i++) {
      if (entry.sent[i]) {
        if (remaining <= 0) break;
        remaining--;
      }
      take++;
    }
    if (take > 0) rewriteSegment(segment, entry.lines.slice(take), entry.header);
  }
  if (upTo === undefined || upTo > 0) for (const file of batch.droppedFiles) unlinkQuietly(file);
}

function parseResponse(body: string): Partial<BatchResponse> & { code?: string } {
  try {
    const value = JSON.parse(body);
    return value && typeof value === 'object' ? value : {};
  } catch {
    return {};
  }
}

export async function deliver(config: DeliveryConfig, run: DeliveryRun): Promise<DeliveryOutcome> {
  const { configDir } = config;
  const spoolDir = path.join(configDir, FILES.spool);
  const url = new URL('v1/batch', config.endpoint.endsWith('/') ? config.endpoint : `${config.endpoint}/`);
  const outcome = {
    delivered: 0,
    duplicates: 0,
    rejected: 0,
    attempts: 0,
    nextAttemptAt: null as number | null,
    lastError: null as string | null,
    failure: null as DeliveryFailure | null,
    discarded: 0,
  };
  const done = (reason: DeliveryStop): DeliveryOutcome => ({ reason, ...outcome });
  /** What the state this run saves applies to (a later run with another key or endpoint ignores it). */
  const fingerprint = deliveryFingerprint(config);
  let maxEvents: number = LIMITS.maxBatchEvents;
  /** The control block this run saved last (as received): a batch that brings the same one writes nothing. */
  let savedControl: string | undefined;
  const machine = createMachineFacts(configDir, config.env, true);
  const identityFor = createIdentitySource(configDir, config.env);
  let lockLost = false;
  const heartbeat = setInterval(() => {
    if (!run.lock.heartbeat()) lockLost = true;
  }, LOCK_HEARTBEAT_MS);
  heartbeat.unref();

  try {
    for (;;) {
      const now = Date.now();
      if (now >= run.deadline) return done('deadline');
      if (lockLost || !run.lock.stillOwned()) return done('lost_lock');
      const gate = machineGate(configDir, config.app, config.env, process.platform, now);
      if (gate === 'server') {
        // While the kill switch is in force nothing waits in the spool (docs/client.md, "Kill switch").
        outcome.discarded += discardSpool(spoolDir);
        return done('killed');
      }
      if (gate) return done('disabled');
      if (!noticeEverShown(readNoticeState(configDir))) return done('notice_pending');

      let state = readDeliveryState(configDir, config);
      if (state.nextAttemptAt > now) {
        const wait = state.nextAttemptAt - now;
        outcome.nextAttemptAt = state.nextAttemptAt;
        if (wait > run.maxSleepMs || now + wait >= run.deadline) return done('backoff');
        await sleep(wait);
        continue;
      }

      let listing = listSpool(spoolDir);
      for (const segment of listing.segments)
        if (segment.state === 'open' && isAbandoned(segment, now)) adoptSegment(segment);
      listing = listSpool(spoolDir);
      enforceSpoolLimits(spoolDir, { maxBytes: config.maxBytes, maxAgeMs: config.maxAgeMs }, now, listing);
      listing = listSpool(spoolDir);
      const ready = listing.segments.filter((s) => s.state === 'ready');
      if (ready.length === 0) return done('empty');

      const dropped = {
        count: listing.dropped.reduce((sum, d) => sum + d.count, 0),
        files: listing.dropped.map((d) => d.file),
      };
      const batch = buildBatch(ready, maxEvents, machine, dropped, identityFor);
      if (batch.items.length === 0) {
        if (batch.unusable > 0) {
          // Only unusable lines (truncated or oversized): remove them and look again.
          outcome.rejected += batch.unusable;
          commit(batch);
          continue;
        }
        // Only segments a CLI is writing at this moment (one write at its exit): look again shortly.
        if (batch.inProgress > 0) {
          await sleep(Math.min(50, Math.max(0, run.deadline - Date.now())));
          continue;
        }
        if (batch.emptied > 0) continue;
        // What is left cannot be read now (permissions?): leave it for a later run.
        return done('empty');
      }

      const sentAt = new Date().toISOString();
      const body = await gzipAsync(
        `{"batch":[${batch.items.map((i) => i.json).join(',')}],"sentAt":"${sentAt}"}`,
      );
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'content-encoding': 'gzip',
        'user-agent': `telemark/${config.libraryVersion}`,
      };
      if (config.writeKey)
        headers.authorization = `Basic ${Buffer.from(`${config.writeKey}:`).toString('base64')}`;
      // The run's deadline ends the request by its signal, not by shortening its timeouts: a timeout is
      // then always the collector's (or the network's), and `aborted` always the deadline.
      const controller = new AbortController();
      const deadlineTimer = setTimeout(() => controller.abort(), Math.max(0, run.deadline - Date.now()));
      outcome.attempts++;
      const result = await post(url, body, {
        headers,
        connectMs: config.connectMs,
        totalMs: config.totalMs,
        env: config.env,
        signal: controller.signal,
      });
      clearTimeout(deadlineTimer);
      const after = Date.now();
      // Cut short by this run's deadline (a flush's timeout), not by the collector: nothing was learnt
      // about it, so no failure is recorded and no backoff holds the next run back.
      if (!result.ok && result.code === 'aborted') {
        outcome.lastError = `${result.code}: ${result.error}`;
        return done('deadline');
      }
      state = readDeliveryState(configDir, config);

      if (result.ok && result.status >= 200 && result.status < 300) {
        const response = parseResponse(result.body);
        let accepted = 0;
        let duplicate = 0;
        let rejected = 0;
        const rejectedByReason: Record<string, number> = { ...state.rejected };
        /** Messages refused one by one for a reason no retry fixes (no write key, an unknown app). */
        let refused: { code: string; count: number } | undefined;
        // Results that are not a list say nothing per message: as without any, the 2xx accepted them all.
        const results: unknown[] = Array.isArray(response.results) ? response.results : [];
        const answered = new Map<unknown, MessageResult>();
        for (const r of results)
          if (r && typeof r === 'object') answered.set((r as MessageResult).messageId, r as MessageResult);
        for (const item of batch.items) {
          const answer = answered.get(item.message.messageId);
          // A 2xx means committed: a message the answer does not mention was accepted.
          if (!answer || answer.status === 'accepted') accepted++;
          else if (answer.status === 'duplicate') duplicate++;
          else {
            rejected++;
            const reason = typeof answer.reason === 'string' ? answer.reason.slice(0, 64) : 'rejected';
            rejectedByReason[reason] = (rejectedByReason[reason] ?? 0) + 1;
            if (CONFIG_CODES.has(reason)) {
              refused ??= { code: reason, count: 0 };
              if (refused.code === reason) refused.count++;
            }
          }
        }
        commit(batch);
        const refusedText = refused
          ? `HTTP ${result.status}, ${refused.count} message${refused.count === 1 ? '' : 's'} rejected ${refused.code}`
          : null;
        // Rejected messages leave the spool (the collector keeps them in quarantine), but a reason like
        // this one rejects every message: the host must hear of it, as of a refused request.
        outcome.failure =
          refused && refusedText
            ? {
                error: refusedText,
                status: result.status,
                code: refused.code,
                fix: refusalFix(result.status, refused.code, config.endpoint, config.app, refusedText),
              }
            : null;
        if (refusedText) outcome.lastError = refusedText;
        outcome.delivered += accepted;
        outcome.duplicates += duplicate;
        outcome.rejected += rejected + batch.unusable;
        if (batch.unusable > 0) rejectedByReason.unusable = (rejectedByReason.unusable ?? 0) + batch.unusable;
        const retryAfterMs =
          typeof response.control?.retryAfterMs === 'number' && response.control.retryAfterMs > 0
            ? Math.min(response.control.retryAfterMs, 24 * 3600 * 1000)
            : undefined;
        const next: DeliveryState = {
          ...state,
          fingerprint,
          failures: 0,
          nextAttemptAt: retryAfterMs ? after + retryAfterMs : 0,
          lastAttemptAt: after,
          lastStatus: result.status,
          lastError: refusedText,
          lastCode: refused?.code ?? null,
          lastSuccessAt: after,
          delivered: state.delivered + accepted,
          duplicates: state.duplicates + duplicate,
          rejected: rejectedByReason,
        };
        writeDeliveryState(configDir, next);
        try {
          appendLedger(configDir, {
            sentAt,
            endpoint: url.href,
            status: result.status,
            accepted,
            duplicate,
            rejected,
            messages: batch.items.map((i) => i.message),
          });
        } catch {}
        // The collector sends a control block only when it has something to say: an answer without
        // one says nothing any more (a notice or latest version withdrawn), so it replaces the last one.
        const control = response.control && typeof response.control === 'object' ? response.control : {};
        const received = JSON.stringify(control);
        if (received !== savedControl) {
          const stored = writeControl(configDir, control, after);
          savedControl = received;
          if (stored.disableUntil && Date.parse(stored.disableUntil) > after) {
            outcome.discarded += discardSpool(spoolDir);
            return done('killed');
          }
        }
        // The batch size learnt from a 413 is kept for the rest of the run: growing again would only
        // trade one saved request for another refused one.
        continue;
      }

      const status = result.ok ? result.status : null;
      const response = result.ok ? parseResponse(result.body) : {};
      const errorText = result.ok
        ? `HTTP ${result.status}${response.code ? ` ${response.code}` : ''}`
        : `${result.code}: ${result.error}`;
      outcome.lastError = errorText;
      const failureCode = result.ok
        ? typeof response.code === 'string'
          ? response.code
          : null
        : result.code;

      if (status !== null && SPLITTABLE.has(status) && !CONFIG_CODES.has(String(response.code))) {
        // An answer about the batch, not a failure to deliver: the collector is there and takes requests.
        outcome.failure = null;
        if (batch.items.length > 1) {
          maxEvents = Math.max(1, Math.floor(batch.items.length / 2));
          continue;
        }
        // One message the collector refuses on its own: drop it, count it, move on.
        commit(batch, 1);
        outcome.rejected += 1 + batch.unusable;
        const reason = `http_${status}`;
        writeDeliveryState(configDir, {
          ...state,
          fingerprint,
          lastAttemptAt: after,
          lastStatus: status,
          lastError: errorText,
          lastCode: failureCode,
          rejected: { ...state.rejected, [reason]: (state.rejected[reason] ?? 0) + 1 },
        });
        continue;
      }

      const failures = state.failures + 1;
      const retryAfter = result.ok ? parseRetryAfter(result.headers['retry-after'], after) : undefined;
      let delay = backoffDelay(failures, retryAfter);
      if (status !== null && !RETRYABLE_STATUS.has(status) && status < 500)
        delay = Math.max(delay, CONFIG_FAILURE_MIN_DELAY_MS);
      const nextAttemptAt = after + delay;
      outcome.nextAttemptAt = nextAttemptAt;
      outcome.failure = {
        error: errorText,
        status,
        code: failureCode,
        fix: refusalFix(status, failureCode, config.endpoint, config.app),
      };
      writeDeliveryState(configDir, {
        ...state,
        fingerprint,
        failures,
        nextAttemptAt,
        lastAttemptAt: after,
        lastStatus: status,
        lastError: errorText,
        lastCode: failureCode,
      });
    }
  } finally {
    clearInterval(heartbeat);
  }
}
