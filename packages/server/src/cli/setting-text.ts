/**
 * How a setting is shown to a person, the same in `--help` and docs/configuration.md: its default as text and the
 * placeholder of its flag's value.
 */
import { DEFAULTS } from '../gateway/options.js';
import { NODE_DEFAULTS, type NodeSettings, type Setting } from './settings.js';

/** The default of a setting, as text for docs and help. */
export function defaultText(s: Setting): string {
  if (s.defaultNote !== undefined) return s.defaultNote;
  const v = s.key in NODE_DEFAULTS ? NODE_DEFAULTS[s.key as keyof NodeSettings] : DEFAULTS[s.key as keyof typeof DEFAULTS];
  if (Array.isArray(v)) return v.length === 0 ? 'empty' : v.join(',');
  return String(v);
}

/** Placeholder shown after a flag for the value it takes. */
export function flagArgument(s: Setting): string {
  switch (s.type) {
    case 'bool':
      return '';
    case 'int':
      return s.env.endsWith('_MS') ? ' <ms>' : s.env.endsWith('_BYTES') ? ' <bytes>' : ' <n>';
    case 'list':
      return ' <list>';
    case 'files':
      return ' <paths>';
    case 'enum':
      return ' <value>';
    case 'string':
      return ' <value>';
    case 'json':
      return ' <json>';
  }
}
