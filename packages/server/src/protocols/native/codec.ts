import type { SubscribedFrame } from '@herald/protocol';
import type { MessageCodec } from '../../delivery/protocol.js';
import type { EngineMessage } from '../../engine/types.js';

/**
 * Native protocol v1 frames of core messages: the canonical envelope bytes as they are (serialized once, by
 * the engine), and a fresh `subscribed` with `recovered: false` when a channel starts over in a new epoch.
 */
export const nativeCodec: MessageCodec = {
  frame: (msg) => msg.frame,
  epochReset(msg: EngineMessage): Buffer {
    const frame: SubscribedFrame = { type: 'subscribed', channel: msg.channel, seq: msg.seq - 1, epoch: msg.epoch, recovered: false };
    return Buffer.from(JSON.stringify(frame));
  },
  inbox: (msg) => msg.frame,
};
