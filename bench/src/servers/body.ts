import { createServer, type IncomingMessage, type Server } from 'node:http';

/** One published item as the baselines read it (the same JSON body Herald's array form takes). */
export interface Item {
  channel: string;
  type: string;
  payload: unknown;
}

function readItems(req: IncomingMessage): Promise<Item[]> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Item | Item[];
        resolve(Array.isArray(v) ? v : [v]);
      } catch (err) {
        reject(err as Error);
      }
    });
    req.on('error', reject);
  });
}

/**
 * The baselines' HTTP side: `POST /publish` with one item or an array; `publish` delivers them, then the
 * answer is `{"published":n}` (400 for a body that is not JSON, 404 for anything else).
 */
export function publishServer(publish: (items: Item[]) => void): Server {
  return createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/publish') {
      res.writeHead(404).end();
      return;
    }
    readItems(req).then(
      (items) => {
        publish(items);
        res.writeHead(200, { 'content-type': 'application/json' }).end(`{"published":${items.length}}`);
      },
      () => res.writeHead(400).end(),
    );
  });
}
