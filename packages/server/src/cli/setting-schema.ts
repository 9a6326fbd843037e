/**
 * The shape of the configuration schema (settings.ts): a setting's type and fields, and the settings of the process
 * rather than of one gateway with their defaults.
 */
import { ENGINE_DEFAULTS } from '../engine/defaults.js';
import type { EngineSettings } from '../gateway/node.js';
import type { GatewayOptions } from '../gateway/options.js';
import type { LogLevel } from '../util/logger.js';

/** The value type of a setting, which decides how its text is parsed. */
export type SettingType = 'int' | 'bool' | 'string' | 'list' | 'enum' | 'files' | 'json';

/** One configuration setting: its option name, environment variable, flag, type and documentation. */
/** Settings of the process rather than of one gateway: logging, the engine, the ingest, workers. */
export interface NodeSettings extends EngineSettings {
  logLevel: LogLevel;
  /** Processes to run; undefined means the default (cores with Redis, 1 without). */
  workers: number | undefined;
  /** The JSON configuration file the settings were read from, if any. */
  config: string | undefined;
  /** Let development mode listen on an interface other than loopback. */
  devAllowRemote: boolean;
  /** `json`, `pretty`, or `auto` (pretty in development mode on a terminal, JSON otherwise). */
  logFormat: LogFormat;
  /** One Pusher app from the environment (all three or none); added to `pusherApps`. */
  pusherAppId?: string | undefined;
  pusherAppKey?: string | undefined;
  pusherAppSecret?: string | undefined;
}

/** How log lines are written. */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export const NODE_DEFAULTS: NodeSettings = {
  logLevel: 'info',
  redisUrl: undefined,
  redisCluster: undefined,
  redisPrefix: ENGINE_DEFAULTS.redisPrefix,
  redisSharded: false,
  presenceTtl: ENGINE_DEFAULTS.presenceTtl,
  nodeId: undefined,
  ingest: true,
  workers: undefined,
  config: undefined,
  devAllowRemote: false,
  logFormat: 'auto',
  pusherAppId: undefined,
  pusherAppKey: undefined,
  pusherAppSecret: undefined,
};

export interface Setting {
  key: keyof GatewayOptions | keyof NodeSettings;
  env: string;
  flag: string;
  type: SettingType;
  /** Never printed or logged. */
  secret?: boolean;
  values?: readonly string[];
  description: string;
  /** Shown instead of the default value when the default depends on something else. */
  defaultNote?: string;
}
