import type { ClientId } from '@herald/protocol';
import type { EngineMessage } from './types.js';

/**
 * Serializes a message envelope `{"type","channel","payload","seq"}` once: the canonical bytes of a message
 * (what history stores and native clients receive; other protocols derive their frames from them, once per
 * message). `payloadJson` is already JSON text; `type` and `channel` are validated names, but go through
 * JSON.stringify anyway so the output is valid JSON whatever they hold.
 */
export function encodeMessage(type: string, channel: string, payloadJson: string, seq: number): Buffer {
  return Buffer.from(`{"type":${JSON.stringify(type)},"channel":${JSON.stringify(channel)},"payload":${payloadJson},"seq":${seq}}`);
}

/** The pseudo-channel of messages to one connection (never subscribable). */
export function clientChannel(client: ClientId): string {
  return `client:${client}`;
}

/** A message to one connection, as the engine hands it to the node: no seq, no epoch, no history. */
export function directMessage(client: ClientId, frame: Buffer): EngineMessage {
  return { channel: clientChannel(client), seq: 0, epoch: '', frame };
}
