/**
 * README.md's shell commands and the check that runs them on a fresh clone (scripts/readme-check.mjs, run by
 * scripts/test.sh) stay in step: every ```sh block has a step, every step finds its block, and a block that
 * changes what the check relies on fails here, fast, before the slow run.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readmePlan, shellBlocks, STEPS } from '../../../scripts/readme-commands.mjs';

const README = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');

describe('README commands', () => {
  it('has a step of the fresh-clone check for every ```sh block, and a block for every step', () => {
    const { blocks, expectedMessage } = readmePlan(README);
    expect([...blocks.keys()].sort()).toEqual(Object.keys(STEPS).sort());
    expect(JSON.parse(expectedMessage)).toMatchObject({ channel: 'news', seq: 1 });
  });

  it('finds indented blocks (inside list items) and ignores other languages', () => {
    const md = '## A\n\n```sh\necho a\n```\n\n1. x\n\n   ```sh\n   echo b\n   ```\n\n```php\n<?php\n```\n';
    expect(shellBlocks(md)).toEqual([
      { heading: 'A', index: 0, text: 'echo a' },
      { heading: 'A', index: 1, text: 'echo b' },
    ]);
  });

  it.each([
    ['a new command block', (md: string) => md.replace('## In the browser', '```sh\nnpx herald doctor\n```\n\n## In the browser')],
    ['another start command', (md: string) => md.replace('npm ci && npm start      #', 'npm ci && npm run dev      #')],
    ['the curl publishing elsewhere', (md: string) => md.replace(`-d '{"channel":"news"`, `-d '{"channel":"demo"`)],
    ['Scaling out without npx herald', (md: string) => md.replace('HERALD_PORT=8082 npx herald &', 'HERALD_PORT=8082 node packages/server/bin/herald.js &')],
    ['a renamed section', (md: string) => md.replace('### First push with curl', '### First push')],
  ])('fails when the README changes without the check: %s', (_name, edit) => {
    const changed = edit(README);
    expect(changed).not.toBe(README);
    expect(() => readmePlan(changed)).toThrow(/README\.md and scripts\/readme-commands\.mjs disagree/);
  });
});
