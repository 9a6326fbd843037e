/**
 * Serializes a message envelope `{"type","channel","payload","seq"}` once. `payloadJson` is already JSON
 * text; `type` and `channel` are validated names, but go through JSON.stringify anyway so the output is
 * valid JSON whatever they hold.
 */
export function encodeMessage(type: string, channel: string, payloadJson: string, seq: number): Buffer {
  return Buffer.from(`{"type":${JSON.stringify(type)},"channel":${JSON.stringify(channel)},"payload":${payloadJson},"seq":${seq}}`);
}
