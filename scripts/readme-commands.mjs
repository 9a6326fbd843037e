// The shell commands of README.md, as scripts/readme-check.mjs runs them on a fresh clone. Every ```sh block
// of the README must have a step here and every step must find its block: a README whose commands change
// without the check being updated fails packages/server/test/readme.test.ts (and the check itself).

/** Every fenced ```sh block of `markdown`, with the heading it sits under and its index under that heading. */
export function shellBlocks(markdown) {
  const blocks = [];
  const counts = new Map();
  let heading = '';
  let open;
  for (const line of markdown.split(/\r?\n/)) {
    if (open) {
      if (line.trim() === '```') {
        if (open.sh) blocks.push({ heading: open.heading, index: open.index, text: open.lines.join('\n') });
        open = undefined;
      } else {
        open.lines.push(line.slice(open.indent));
      }
      continue;
    }
    const h = /^#{1,6} (.+)$/.exec(line);
    if (h) heading = h[1].trim();
    const fence = /^(\s*)```(\w*)\s*$/.exec(line);
    if (!fence) continue;
    const sh = fence[2] === 'sh';
    const index = counts.get(heading) ?? 0;
    if (sh) counts.set(heading, index + 1);
    open = { sh, heading, index, indent: fence[1].length, lines: [] };
  }
  return blocks;
}

/**
 * What the check does with each block (`<heading>#<index>`): `run` runs it as written, the other kinds
 * name what is substituted or why it is not run.
 */
export const STEPS = {
  'Quick start#0': { kind: 'quick-start', what: 'npm ci && npm start: the gateway in development mode; `npm test` is this very suite and is not run' },
  'First push with curl#0': { kind: 'subscriber', what: 'the node WebSocket one-liner, left running' },
  'First push with curl#1': { kind: 'publish', what: 'the curl publish, KEY=dev_... replaced by the key npm start printed' },
  'Push to one user#0': { kind: 'secrets', what: 'npm start with a generated API key and JWT secret: no development banner' },
  'From PHP#0': { kind: 'same-as', of: 'Push to one user#0', what: 'the same commands as "Push to one user"' },
  'Scaling out#0': { kind: 'scaling', what: 'two nodes and a --workers 4 node on Redis; a publish on one reaches a subscriber on another' },
  'Development#0': { kind: 'development', what: '`npx vitest run <one suite>` is run; `npm test` (this suite) and `npm run build` (run above) are not' },
};

/** The lines of a block that are commands (comments and blank lines dropped; `\` continuations kept). */
export function commands(text) {
  return text
    .split('\n')
    .map((l) => l.replace(/\s+#[^'"]*$/, '').trimEnd())
    .filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
}

/**
 * Pairs each README block with its step; throws, naming them, when a block has no step or a step no block,
 * or when a block no longer has what its step relies on.
 */
export function readmePlan(markdown) {
  const blocks = shellBlocks(markdown);
  const byKey = new Map(blocks.map((b) => [`${b.heading}#${b.index}`, b]));
  const problems = [];
  for (const key of byKey.keys()) if (!(key in STEPS)) problems.push(`README block "${key}" has no step in scripts/readme-commands.mjs`);
  for (const key of Object.keys(STEPS)) if (!byKey.has(key)) problems.push(`step "${key}" finds no \`\`\`sh block in README.md`);
  const need = (key, ok, what) => {
    const b = byKey.get(key);
    if (b && !ok(b.text)) problems.push(`README block "${key}" no longer ${what}`);
  };
  need('Quick start#0', (t) => commands(t)[0] === 'npm ci && npm start', 'starts with `npm ci && npm start`');
  need('First push with curl#0', (t) => /node -e/.test(t) && /subs: \{ news: \{\} \}/.test(t), 'subscribes to news with a node one-liner');
  need('First push with curl#1', (t) => /^KEY=dev_\.\.\./m.test(t) && /"channel":"news"/.test(t), 'sets KEY=dev_... and publishes to news');
  need(
    'Push to one user#0',
    (t) => /HERALD_API_KEY=/.test(t) && /HERALD_JWT_SECRET=/.test(t) && commands(t).at(-1) === 'npm start',
    'exports both secrets and runs npm start',
  );
  need('From PHP#0', (t) => t === byKey.get('Push to one user#0')?.text, 'equals the "Push to one user" block');
  need(
    'Scaling out#0',
    (t) => /HERALD_REDIS_URL=redis:\/\/127\.0\.0\.1:6379/.test(t) && (t.match(/npx herald/g) ?? []).length === 3 && /--workers 4/.test(t),
    'starts three `npx herald` nodes (one with --workers 4) on redis://127.0.0.1:6379',
  );
  need('Development#0', (t) => commands(t).some((c) => /^npx vitest run \S+\.test\.ts$/.test(c)), 'runs one suite with `npx vitest run`');
  if (!/The subscriber prints `(\{.+\})`\./.test(markdown)) problems.push('README no longer says "The subscriber prints `{...}`."');
  if (problems.length > 0) throw new Error(`README.md and scripts/readme-commands.mjs disagree:\n- ${problems.join('\n- ')}`);
  const expected = /The subscriber prints `(\{.+\})`\./.exec(markdown)[1];
  return { blocks: byKey, expectedMessage: expected };
}
