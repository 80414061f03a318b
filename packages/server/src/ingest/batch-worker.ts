/**
 * An ingest worker thread (internal): takes Segment batch bodies as received, and returns them decoded,
 * parsed, validated, prepared and encoded for the store (`batch-pool.ts`). Every step is a pure function
 * of the body and the registry, so it runs here exactly as it would on the request thread.
 */
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { appRegistryOf } from '../config/registry.js';
import { isTelemarkError, notesOf } from '../errors.js';
import { createEventBuilder } from '../pipeline/event-builder.js';
import type { EventEncoderModule } from '../store/types.js';
import type { AppsUpdate, BatchReply, BatchTask, BatchWorkerData } from './batch-pool.js';
import { decodeBodySync } from './body.js';
import { keptBadGzip, prepareSegmentBody } from './prepare-body.js';

const data = workerData as BatchWorkerData;
const deps = {
  registry: appRegistryOf(data.apps),
  builder: createEventBuilder(data.installIdKey ? { installIdKey: data.installIdKey } : {}),
  limits: data.limits,
};
const encoder = (await import(data.encoderModule)) as EventEncoderModule;
const port = parentPort!;

/** This thread's id, so the collector can leave it at normal priority (Linux; 0 elsewhere). */
function threadId(): number {
  try {
    return Number(fs.readlinkSync('/proc/thread-self').split('/').pop()) || 0;
  } catch {
    return 0;
  }
}
port.postMessage({ hello: threadId() });

port.on('message', (task: BatchTask | AppsUpdate) => {
  // A config reload: the bodies that follow are prepared with the new apps.
  if ('apps' in task) {
    deps.registry = appRegistryOf(task.apps);
    return;
  }
  let reply: BatchReply;
  let transfer: ArrayBuffer[] = [];
  try {
    const wire = Buffer.from(task.wire.buffer, task.wire.byteOffset, task.wire.byteLength);
    let decoded: Buffer;
    try {
      decoded = decodeBodySync(wire, task.encoding, data.maxBytes);
    } catch (error) {
      throw keptBadGzip(error, wire, task.route, deps.builder, data.maxBytes);
    }
    const prepared = prepareSegmentBody(
      { route: task.route, decoded, headerKey: task.headerKey, receivedAt: task.receivedAt },
      deps,
    );
    const encoded = prepared.events.length > 0 ? encoder.encode(prepared.events) : undefined;
    if (encoded) transfer = encoder.transferables(encoded);
    reply = {
      id: task.id,
      ok: true,
      bytes: decoded.length,
      results: prepared.results,
      slots: prepared.slots,
      quarantine: prepared.quarantine,
      counters: prepared.counters.toArray(),
      charges: prepared.charges,
      app: prepared.app?.name,
      encoded,
      pseudonymised: prepared.pseudonymised,
    };
  } catch (error) {
    reply = isTelemarkError(error)
      ? { id: task.id, ok: false, code: error.code, detail: error.detail, kept: notesOf(error).keptRaw }
      : {
          id: task.id,
          ok: false,
          message: error instanceof Error ? (error.stack ?? error.message) : String(error),
        };
  }
  port.postMessage(reply, transfer);
});
