export * from './channel.js';
export * from './close-codes.js';
export * from './error-codes.js';
export * from './frames.js';
export * from './parse.js';
export * from './namespace.js';
export * from './pusher.js';
