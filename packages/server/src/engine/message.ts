import type { ClientId } from '@herald/protocol';
import type { BroadcastInput, EngineMessage } from './types.js';

/**
 * Serializes a message envelope `{"type","channel","payload","seq"}` (plus `"user"` for a broadcast that has
 * one) once: the canonical bytes of a message
 * (what history stores and native clients receive; other protocols derive their frames from them, once per
 * message). `payloadJson` is already JSON text; `type` and `channel` are validated names, but go through
 * JSON.stringify anyway so the output is valid JSON whatever they hold.
 */
export function encodeMessage(type: string, channel: string, payloadJson: string, seq: number, user?: string): Buffer {
  const tail = user === undefined ? '}' : `,"user":${JSON.stringify(user)}}`;
  return Buffer.from(`{"type":${JSON.stringify(type)},"channel":${JSON.stringify(channel)},"payload":${payloadJson},"seq":${seq}${tail}`);
}

/** An unsequenced message (see BroadcastInput): seq 0 and no epoch; `user` ends the envelope when given. */
export function broadcastMessage(input: BroadcastInput): EngineMessage {
  const msg: EngineMessage = { channel: input.channel, seq: 0, epoch: '', frame: encodeMessage(input.type, input.channel, input.payloadJson, 0, input.user) };
  if (input.exclude !== undefined) msg.exclude = input.exclude;
  return msg;
}

/** The pseudo-channel of messages to one connection (never subscribable). */
export function clientChannel(client: ClientId): string {
  return `client:${client}`;
}

/** A message to one connection, as the engine hands it to the node: no seq, no epoch, no history. */
export function directMessage(client: ClientId, frame: Buffer): EngineMessage {
  return { channel: clientChannel(client), seq: 0, epoch: '', frame };
}
