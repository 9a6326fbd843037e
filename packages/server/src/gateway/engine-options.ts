import type { MemoryEngineOptions } from '../engine/memory/engine.js';
import type { LifecycleOptions } from '../engine/outbox.js';
import { lifecycleFor } from '../webhooks/config.js';
import { webhookEndpoints, type ResolvedOptions } from './options.js';

/** The lifecycle events the configured webhook endpoints need the engine to track (undefined: none). */
export function engineLifecycle(o: ResolvedOptions): LifecycleOptions | undefined {
  return lifecycleFor(webhookEndpoints(o), o.webhookOfflineDelay);
}

/** The memory engine's options from the gateway's (the one place the two are mapped). */
export function memoryEngineOptions(o: ResolvedOptions): MemoryEngineOptions {
  const lifecycle = engineLifecycle(o);
  return {
    ...(lifecycle === undefined ? {} : { lifecycle }),
    historySize: o.historySize,
    historyTtl: o.historyTtl,
    ...(o.historyMetaTtl === undefined ? {} : { historyMetaTtl: o.historyMetaTtl }),
    historyMaxBytes: o.historyMaxBytes,
    historyTotalBytes: o.historyTotalBytes,
    idempotencyTtl: o.idempotencyTtl,
    idempotencyMaxKeys: o.idempotencyMaxKeys,
    inboxMaxReceipts: o.inboxMaxReceipts,
    inboxTotalBytes: o.inboxTotalBytes,
  };
}
