/**
 * Keeps the documentation in step with the code: every error code and close code is documented, nothing
 * that does not exist is, and docs/configuration.md is exactly what the generator renders from SETTINGS.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLOSE_CODE_INFO, ERROR_CODE_INFO, PUSHER_CODE_INFO, type ErrorSurface } from '@herald/protocol';
import { ClientErrorCode } from '../../client/src/errors.js';
import { renderConfigurationDoc } from '../src/cli/config-docs.js';

const docsDir = new URL('../../../docs/', import.meta.url);
const readDoc = (name: string): string => readFileSync(new URL(name, docsDir), 'utf8');

const errorCodes = Object.keys(ERROR_CODE_INFO) as Array<keyof typeof ERROR_CODE_INFO>;
const closeCodes = Object.keys(CLOSE_CODE_INFO).map(Number) as Array<keyof typeof CLOSE_CODE_INFO>;

/** The lines under the heading `## <title>` (or `# <title>`), up to the next heading of level 1 or 2. */
function section(md: string, title: string): string[] {
  const lines = md.split(/\r?\n/);
  const start = lines.findIndex((l) => l === `## ${title}` || l === `# ${title}`);
  if (start < 0) throw new Error(`heading "## ${title}" not found`);
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((l) => /^#{1,2} /.test(l));
  return end < 0 ? rest : rest.slice(0, end);
}

/** The cells of a Markdown table row (`| a | b |`), trimmed; pipes escaped as `\|` stay inside their cell. */
function cells(row: string): string[] {
  return row
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());
}

/** Table rows whose first cell matches `first`, as cells. */
function rows(lines: readonly string[], first: RegExp): string[][] {
  return lines
    .filter((l) => l.trimStart().startsWith('|'))
    .map(cells)
    .filter((c) => first.test(c[0] ?? ''));
}

const sorted = <T>(xs: readonly T[]): T[] => [...xs].sort();
const surfaceText: Record<ErrorSurface, string> = { ws: 'WebSocket', http: 'HTTP', both: 'WebSocket, HTTP' };
const yesNo = (b: boolean): string => (b ? 'yes' : 'no');

describe('docs/errors.md', () => {
  const md = readDoc('errors.md');

  describe('## Error codes', () => {
    const lines = section(md, 'Error codes');
    const table = rows(lines, /^`[^`]+`$/);

    it('has one row per code of ERROR_CODE_INFO, and no other code', () => {
      const documented = table.map((c) => (c[0] as string).slice(1, -1));
      expect(sorted(documented), 'error codes in the "## Error codes" table of docs/errors.md').toEqual(sorted(errorCodes));
    });

    it.each(errorCodes)('`%s` has a row starting with "| `code` |"', (code) => {
      expect(lines.filter((l) => l.startsWith(`| \`${code}\` |`))).toHaveLength(1);
    });

    it.each(errorCodes)('`%s` row has the surface and HTTP status of ERROR_CODE_INFO and says what to do', (code) => {
      const info = ERROR_CODE_INFO[code];
      const row = table.find((c) => c[0] === `\`${code}\``);
      expect(row, `row for ${code}`).toBeDefined();
      const [, where, status, meaning, todo] = row as string[];
      expect(where, `where ${code} appears`).toBe(surfaceText[info.surface]);
      expect(status, `HTTP status of ${code}`).toBe(info.status === undefined ? '-' : String(info.status));
      expect(meaning, `meaning of ${code}`).toMatch(/\w/);
      expect(todo, `what to do about ${code}`).toMatch(/\w/);
    });
  });

  describe('## Browser SDK', () => {
    const table = rows(section(md, 'Browser SDK'), /^`HERALD_ERR_CLIENT_[A-Z_]+`$/);

    it("has one row per code of the client's ClientErrorCode, and no other code", () => {
      const documented = table.map((c) => (c[0] as string).slice(1, -1));
      expect(sorted(documented), 'client error codes in the "## Browser SDK" table of docs/errors.md').toEqual(sorted(Object.values(ClientErrorCode)));
      for (const row of table) expect(row[1], `when ${row[0]} is reported`).toMatch(/\w/);
    });
  });

  describe('## Close codes', () => {
    const lines = section(md, 'Close codes');
    const table = rows(lines, /^\d+$/);

    it('has one row per code of CLOSE_CODE_INFO, and no other code', () => {
      expect(sorted(table.map((c) => Number(c[0]))), 'close codes in the "## Close codes" table of docs/errors.md').toEqual(sorted(closeCodes));
    });

    it.each(closeCodes)('%i has a row starting with "| <code> |" with its name and reconnect rule', (code) => {
      expect(lines.filter((l) => l.startsWith(`| ${code} |`))).toHaveLength(1);
      const row = table.find((c) => c[0] === String(code)) as string[];
      expect(row[1], `name of ${code}`).toBe(CLOSE_CODE_INFO[code].name);
      expect(row[2], `reconnect rule of ${code}`).toBe(yesNo(CLOSE_CODE_INFO[code].reconnect));
      expect(row[3], `meaning of ${code}`).toMatch(/\w/);
    });
  });
});

describe('docs/errors.md: ## Pusher protocol', () => {
  const table = rows(section(readDoc('errors.md'), 'Pusher protocol'), /^\d+$/);
  const codes = Object.keys(PUSHER_CODE_INFO).map(Number) as Array<keyof typeof PUSHER_CODE_INFO>;

  it('has one row per code of PUSHER_CODE_INFO, and no other code', () => {
    expect(sorted(table.map((c) => Number(c[0]))), 'codes in the "## Pusher protocol" table of docs/errors.md').toEqual(sorted(codes));
  });

  it.each(codes)('%i has its name, where it is sent and what pusher-js does', (code) => {
    const row = table.find((c) => c[0] === String(code)) as string[];
    const info = PUSHER_CODE_INFO[code];
    expect([row[1], row[2], row[3]], `row of ${code}`).toEqual([info.name, info.surface, info.reconnect]);
    expect(row[4], `meaning of ${code}`).toMatch(/\w/);
  });

  it('is mentioned in docs/pusher.md, code by code', () => {
    const pusher = readDoc('pusher.md');
    for (const code of codes) expect(pusher, `${code} in docs/pusher.md`).toContain(String(code));
  });
});

describe('docs/protocol.md', () => {
  const md = readDoc('protocol.md');

  it.each(errorCodes)('mentions error code `%s`', (code) => {
    expect(md).toContain(`\`${code}\``);
  });

  it.each(closeCodes)('mentions close code %i', (code) => {
    expect(md).toMatch(new RegExp(`(^|[^0-9])${code}([^0-9]|$)`));
  });

  it('has a close code table with exactly the codes of CLOSE_CODE_INFO, names and reconnect rules', () => {
    const table = rows(section(md, 'Close codes'), /^\d+$/);
    expect(sorted(table.map((c) => Number(c[0]))), 'close codes in the "## Close codes" table of docs/protocol.md').toEqual(sorted(closeCodes));
    for (const row of table) {
      const info = CLOSE_CODE_INFO[Number(row[0]) as keyof typeof CLOSE_CODE_INFO];
      expect([row[1], row[2]], `close code ${row[0]}`).toEqual([info.name, yesNo(info.reconnect)]);
    }
  });

  it('has an error code summary with exactly the codes of ERROR_CODE_INFO', () => {
    const table = rows(section(md, 'Error codes'), /^`[^`]+`$/);
    expect(sorted(table.map((c) => (c[0] as string).slice(1, -1)))).toEqual(sorted(errorCodes));
    for (const row of table) {
      const info = ERROR_CODE_INFO[(row[0] as string).slice(1, -1) as keyof typeof ERROR_CODE_INFO];
      expect([row[1], row[2]], `error code ${row[0]}`).toEqual([info.surface === 'http' ? '' : 'yes', info.status === undefined ? '' : String(info.status)]);
    }
  });
});

describe('docs/configuration.md', () => {
  it('is exactly what renderConfigurationDoc() renders from SETTINGS', () => {
    const expected = renderConfigurationDoc();
    let actual: string;
    try {
      actual = readDoc('configuration.md');
    } catch {
      actual = '';
    }
    const hint = 'docs/configuration.md is stale: run `npx tsc -b packages/server && node scripts/gen-config-docs.mjs` and commit the result';
    // Compare without the diff first so the message always carries the fix; then with it for the details.
    expect(actual === expected, hint).toBe(true);
    expect(actual, hint).toBe(expected);
  });
});
