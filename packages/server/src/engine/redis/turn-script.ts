/** The turn script of `RedisContext` (client.ts): a turn's commands and script runs as one script call on a single Redis. */

/**
 * Most operations (commands and script runs) in one turn script call: bounds how long one call holds Redis (a
 * few ms at most), as a pipeline of as many commands would, between which Redis serves other clients.
 */
export const TURN_SCRIPT_OPS = 500;

/** Commands a Lua script may not run: a call holding one goes out in a pipeline of its own, in its place. */
const NOT_IN_SCRIPTS = new Set([
  'eval',
  'evalsha',
  'eval_ro',
  'evalsha_ro',
  'fcall',
  'fcall_ro',
  'script',
  'multi',
  'exec',
  'watch',
  'subscribe',
  'psubscribe',
  'ssubscribe',
  'blpop',
  'brpop',
  'xread',
  'xreadgroup',
  'wait',
]);

/**
 * The turn script: the commands and script runs of one turn as one script call on a single Redis. Each script a
 * turn carried so far is in it as a function of its own KEYS and ARGV (as the publish batch wraps publish.lua), and
 * a command runs with `redis.pcall`; each under its own protection, so that one failing (WRONGTYPE, OOM, a script's
 * error) is that operation's answer and the others still run, as in a pipeline.
 *
 * Usage: EVALSHA <sha1> 0 <ops>, where <ops> is the JSON array of the operations, each [script, [keys...],
 * [args...]] with every key and argument a string: script 0 is a command (its args are its name and arguments, its
 * keys among them: a single Redis does not require a script to declare its keys; never on a Redis Cluster), any
 * other the index of a script. One argument, not one per key and argument: ioredis builds a command string by
 * concatenating each argument with its length (five strings per argument), which for the hundreds of arguments
 * of a turn cost more than the JSON encoding (native) and decoding (cjson, in Redis).
 */
export function turnScriptSource(sources: readonly string[]): string {
  const functions = sources.map((source, i) => `S[${i + 1}] = function(KEYS, ARGV)\n${source}\nend`).join('\n');
  return `local S = {}
${functions}
local ops = cjson.decode(ARGV[1])
local out = {}
for i = 1, #ops do
  local op = ops[i]
  local s, ok, res = op[1], true, nil
  if s == 0 then
    res = redis.pcall(unpack(op[3]))
  else
    ok, res = pcall(S[s], op[2], op[3])
  end
  if not ok then
    if type(res) == 'table' and res.err then out[i] = res else out[i] = { err = 'ERR ' .. tostring(res) } end
  elseif res == nil then
    out[i] = false
  else
    out[i] = res
  end
end
return out
`;
}

/** One operation of a turn script call: a command (script 0: name and arguments) or a script run. */
export type TurnOp = [script: number, keys: readonly string[], args: string[]];

/**
 * `ops` as the turn script's argument. JSON escapes a lone UTF-16 surrogate (`\ud800`), which cjson rejects; ioredis
 * writes it as U+FFFD, and so does this (only when the JSON has such an escape: a well-formed string has none).
 */
export function encodeOps(ops: readonly TurnOp[]): string {
  const json = JSON.stringify(ops);
  if (!json.includes('\\u')) return json;
  const fix = (v: string): string => Buffer.from(v, 'utf8').toString('utf8');
  return JSON.stringify(ops.map(([s, keys, args]) => [s, keys.map(fix), args.map(fix)]));
}

/** An argument as the turn script gets it (a string), or undefined for a Buffer (not sent through JSON). */
function turnArg(a: string | number | Buffer): string | undefined {
  return typeof a === 'string' ? a : typeof a === 'number' ? String(a) : undefined;
}

/** `args` as strings for the turn script; undefined when one is a Buffer. */
export function toTurnArgs(args: ReadonlyArray<string | number | Buffer>): string[] | undefined {
  const out: string[] = [];
  for (const a of args) {
    const s = turnArg(a);
    if (s === undefined) return undefined;
    out.push(s);
  }
  return out;
}

/** A reply with its Buffers (bulk and status replies of a turn script call) as UTF-8 strings, as a pipeline answers. */
export function utf8(reply: unknown): unknown {
  if (Buffer.isBuffer(reply)) return reply.toString('utf8');
  if (Array.isArray(reply)) return reply.map(utf8);
  return reply;
}

/** One command a pipeline builder asked for: its name and arguments. */
export type RecordedCommand = [name: string, args: Array<string | number | Buffer>];

/**
 * The turn script operations of a pipeline call's commands, or undefined when one of them cannot go in a script: a
 * command Lua may not run (NOT_IN_SCRIPTS), a Buffer argument, or a Buffer reply asked for (`getBuffer`).
 */
export function commandOps(commands: readonly RecordedCommand[]): TurnOp[] | undefined {
  const ops: TurnOp[] = [];
  for (const [name, args] of commands) {
    const strings = NOT_IN_SCRIPTS.has(name.toLowerCase()) || name.endsWith('Buffer') ? undefined : toTurnArgs(args);
    if (!strings) return undefined;
    strings.unshift(name);
    ops.push([0, [], strings]);
  }
  return ops;
}
