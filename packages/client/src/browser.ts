/**
 * Entry of the IIFE bundle (`dist/herald.min.js`, global `Herald`): what a plain `<script>` page needs.
 * Kept smaller than the ESM entry to stay within the size budget; `ErrorCode` values are plain strings
 * (`err.serverCode === 'forbidden'`).
 */
export { HeraldClient, createClient } from './client.js';
export { HeraldError, ClientErrorCode } from './errors.js';
export { CloseCode } from '@herald/protocol';
