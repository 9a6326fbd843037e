// Signs and verifies Standard Webhooks messages with the reference npm package `standardwebhooks` (a
// devDependency of the repository), for WebhookTest.php: the PHP verifier is checked against the real thing.
//
// stdin: a JSON list of jobs, one of
//   {"op": "sign", "secret": "whsec_...", "id": "msg_1", "timestamp": 1700000000, "payload": "{...}"}
//   {"op": "verify", "secret": "whsec_...", "payload": "{...}", "headers": {"webhook-id": "...", ...}}
// stdout: a JSON list with one result per job: for sign, the webhook-signature value (`v1,<base64>`);
// for verify, {"ok": true, "event": ...} or {"ok": false, "error": "<message>"} (verify checks the
// timestamp against this machine's clock, as the package always does).
import { Webhook } from 'standardwebhooks';

let input = '';
for await (const chunk of process.stdin) input += chunk;

const results = JSON.parse(input).map((job) => {
  const webhook = new Webhook(job.secret);
  if (job.op === 'sign') return webhook.sign(job.id, new Date(job.timestamp * 1000), job.payload);
  if (job.op === 'verify') {
    try {
      return { ok: true, event: webhook.verify(job.payload, job.headers) };
    } catch (err) {
      return { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
  }
  throw new Error(`unknown op ${job.op}`);
});
process.stdout.write(JSON.stringify(results));
