import { ERROR_CODE_INFO, type ErrorCode } from '@herald/protocol';

/**
 * An error with a stable protocol error code. HTTP-facing errors carry the status from the catalogue in
 * `@herald/protocol`; `field` names the offending request field; `cause` keeps the underlying error.
 */
export class HeraldError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly field: string | undefined;
  readonly extra: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, opts: { field?: string; cause?: unknown; extra?: Record<string, unknown> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HeraldError';
    this.code = code;
    this.status = ERROR_CODE_INFO[code].status ?? 500;
    this.field = opts.field;
    this.extra = opts.extra;
  }
}

/** The engine (history, presence, broker) could not be reached. Nothing was accepted. */
export class EngineUnavailableError extends HeraldError {
  constructor(message: string, cause?: unknown) {
    super('engine_unavailable', message, { cause });
    this.name = 'EngineUnavailableError';
  }
}

/**
 * A command was sent to the engine and not answered in time (or its connection dropped while it was in
 * flight): it may have run. The caller must retry with the same idempotency id, never assume either way.
 */
export class EngineTimeoutError extends HeraldError {
  constructor(message: string, cause?: unknown) {
    super('engine_timeout', message, { cause });
    this.name = 'EngineTimeoutError';
  }
}

/** The JSON body of an HTTP error response. */
export function errorBody(err: HeraldError): string {
  const e: Record<string, unknown> = { code: err.code, message: err.message };
  if (err.field !== undefined) e['field'] = err.field;
  if (err.extra) Object.assign(e, err.extra);
  return JSON.stringify({ error: e });
}
