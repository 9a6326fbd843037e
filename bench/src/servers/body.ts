import type { IncomingMessage } from 'node:http';

/** One published item as the baselines read it (the same JSON body Herald's array form takes). */
export interface Item {
  channel: string;
  type: string;
  payload: unknown;
}

export function readItems(req: IncomingMessage): Promise<Item[]> {
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
