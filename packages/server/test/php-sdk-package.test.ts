/**
 * The PHP SDK (sdk/php) is installed on its own (Composer), without the rest of this repository, so it
 * ships a copy of the gateway's publish script: sdk/php/resources/publish.lua. Its RedisPublisher runs that
 * copy in the gateway's Redis, so it must be the gateway's script byte for byte: a copy that differs by one
 * byte has another SHA1 (EVALSHA would load a second script) and may write keys the gateway reads otherwise.
 *
 * When this test fails because packages/server/lua/publish.lua changed, refresh the copy from the
 * repository root and commit both files together:
 *
 *     cp packages/server/lua/publish.lua sdk/php/resources/publish.lua
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../../../', import.meta.url);
const read = (path: string): Buffer => readFileSync(new URL(path, root));
const sha1 = (bytes: Buffer): string => createHash('sha1').update(bytes).digest('hex');

describe('the PHP SDK package', () => {
  const gateway = read('packages/server/lua/publish.lua');
  const copy = read('sdk/php/resources/publish.lua');

  it('ships a byte-for-byte copy of the gateway publish script (refresh: cp packages/server/lua/publish.lua sdk/php/resources/publish.lua)', () => {
    expect(copy.length, 'size of sdk/php/resources/publish.lua').toBe(gateway.length);
    // The first differing byte, so a failure says where the copy went stale.
    const at = copy.findIndex((byte, i) => byte !== gateway[i]);
    expect(at, 'offset of the first byte that differs').toBe(-1);
    expect(sha1(copy)).toBe(sha1(gateway));
  });

  it('ships the script in the Composer package: resources/ is neither archive-excluded nor export-ignored', () => {
    const composer = JSON.parse(read('sdk/php/composer.json').toString('utf8')) as { archive?: { exclude?: string[] } };
    const excluded = composer.archive?.exclude ?? [];
    expect(excluded.filter((pattern) => /resources|publish\.lua|^\/?\*/.test(pattern))).toEqual([]);
    const attributes = read('sdk/php/.gitattributes').toString('utf8');
    expect(attributes).not.toMatch(/^\/?(resources|\*)\S*\s+export-ignore/m);
  });
});
