// A WebSocket test client for the PHP tests (PHP has no WebSocket client): connects to the gateway,
// sends a `connect` frame, and prints one JSON line per event on stdout:
//   {"event":"open"}  {"event":"frame","frame":{...},"raw":"<the frame's JSON text>"}  {"event":"close","code":4401,"reason":"..."}
// Batched messages are split into frames. Each stdin line is sent as a text frame; stdin EOF closes the
// socket (code 1000) and exits.
// Usage: node ws-client.mjs <ws url> [connect frame JSON]
import { createInterface } from 'node:readline';
import WebSocket from 'ws';

const [url, connectJson] = process.argv.slice(2);
if (!url) {
  process.stderr.write('usage: node ws-client.mjs <ws url> [connect frame JSON]\n');
  process.exit(2);
}
const print = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);

const ws = new WebSocket(url);
ws.on('open', () => {
  print({ event: 'open' });
  if (connectJson) ws.send(connectJson);
});
ws.on('message', (data, isBinary) => {
  if (isBinary) {
    print({ event: 'binary', length: data.length });
    return;
  }
  for (const line of data.toString('utf8').split('\n')) print({ event: 'frame', frame: JSON.parse(line), raw: line });
});
ws.on('error', (err) => print({ event: 'error', message: err.message }));
ws.on('close', (code, reason) => {
  print({ event: 'close', code, reason: reason.toString('utf8') });
  process.exit(0);
});

createInterface({ input: process.stdin })
  .on('line', (line) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(line);
  })
  .on('close', () => {
    if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close(1000);
    else process.exit(0);
  });
