/**
 * The optional uWebSockets.js module. It is not on the npm registry, so it is loaded only when this
 * transport is chosen (`transport: 'uws'`), with a dynamic import; the types below are the small part of its
 * API the transport uses, so the gateway compiles without it.
 */

export type Bytes = ArrayBuffer | Uint8Array | string;
export interface UwsWebSocket<T> {
  send(message: Bytes, isBinary?: boolean, compress?: boolean): number;
  end(code?: number, shortMessage?: Bytes): void;
  close(): void;
  ping(message?: Bytes): number;
  cork(cb: () => void): unknown;
  getBufferedAmount(): number;
  getUserData(): T;
}
export interface UwsResponse {
  writeStatus(status: string): UwsResponse;
  writeHeader(key: string, value: string): UwsResponse;
  end(body?: Bytes, closeConnection?: boolean): UwsResponse;
  endWithoutBody(reportedContentLength?: number, closeConnection?: boolean): UwsResponse;
  tryEnd(fullBodyOrChunk: Bytes, totalSize: number): [boolean, boolean];
  getWriteOffset(): number;
  onWritable(handler: (offset: number) => boolean): UwsResponse;
  close(): UwsResponse;
  onAborted(handler: () => void): UwsResponse;
  onData(handler: (chunk: ArrayBuffer, isLast: boolean) => void): UwsResponse;
  cork(cb: () => void): UwsResponse;
  getRemoteAddressAsText(): ArrayBuffer;
  upgrade<T>(userData: T, key: string, protocol: string, extensions: string, context: unknown): void;
}
export interface UwsRequest {
  getHeader(lowerCaseKey: string): string;
  getUrl(): string;
  getQuery(): string | undefined;
  getMethod(): string;
  forEach(cb: (key: string, value: string) => void): void;
}
export interface UwsBehavior<T> {
  compression?: number;
  maxPayloadLength?: number;
  maxBackpressure?: number;
  closeOnBackpressureLimit?: boolean;
  idleTimeout?: number;
  sendPingsAutomatically?: boolean;
  upgrade?: (res: UwsResponse, req: UwsRequest, context: unknown) => void;
  open?: (ws: UwsWebSocket<T>) => void;
  message?: (ws: UwsWebSocket<T>, message: ArrayBuffer, isBinary: boolean) => void;
  pong?: (ws: UwsWebSocket<T>, message: ArrayBuffer) => void;
  close?: (ws: UwsWebSocket<T>, code: number, message: ArrayBuffer) => void;
}
export interface UwsApp {
  ws<T>(pattern: string, behavior: UwsBehavior<T>): UwsApp;
  any(pattern: string, handler: (res: UwsResponse, req: UwsRequest) => void): UwsApp;
  listen(host: string, port: number, cb: (listenSocket: unknown) => void): UwsApp;
  close(): UwsApp;
}
/** The uWebSockets.js module (as much of it as this transport uses). */
export interface UwsModule {
  App(): UwsApp;
  us_listen_socket_close(listenSocket: unknown): void;
  us_socket_local_port(listenSocket: unknown): number;
}

/** The package name users install (from GitHub, or an npm alias such as `uWebSockets.js@npm:uwebsockets`). */
export const UWS_PACKAGE = 'uWebSockets.js';

/** Loads uWebSockets.js, or fails with a message that says how to install it. */
export async function loadUws(): Promise<UwsModule> {
  try {
    // A variable specifier keeps bundlers and tsc from resolving the optional package at build time.
    const name = UWS_PACKAGE;
    const mod = (await import(name)) as { default?: UwsModule } & Partial<UwsModule>;
    const uws = (mod.default ?? mod) as UwsModule;
    if (typeof uws.App !== 'function') throw new Error('the module has no App()');
    return uws;
  } catch (err) {
    throw new Error(
      `transport 'uws' needs the optional package ${UWS_PACKAGE}, which could not be loaded (${(err as Error).message}). ` +
        `Install its authors' build from GitHub (npm install uNetworking/uWebSockets.js#<release tag>) or use transport 'ws'. ` +
        `(The npm package uwebsockets, which the benchmarks install, is a build republished by a third party: not for production.)`,
      { cause: err },
    );
  }
}
