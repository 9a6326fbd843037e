import type { MemoryEngineOptions } from '../engine/memory/engine.js';
import type { ResolvedOptions } from './options.js';

/** The memory engine's options from the gateway's (the one place the two are mapped). */
export function memoryEngineOptions(o: ResolvedOptions): MemoryEngineOptions {
  return {
    historySize: o.historySize,
    historyTtl: o.historyTtl,
    historyMaxBytes: o.historyMaxBytes,
    historyTotalBytes: o.historyTotalBytes,
    idempotencyTtl: o.idempotencyTtl,
    idempotencyMaxKeys: o.idempotencyMaxKeys,
  };
}
