/** Names people read for the protocol's and the hub's identifiers, in the current language. */
import { PERIPHERALS, TERMINAL_TYPES } from '@kiosk-fleet/protocol';
import { hasKey, pickName, t, type MessageKey } from './i18n/index.ts';

/** `prefix.value` from the dictionaries, or the raw value when the hub sends something newer than this build. */
export function label(prefix: string, value: string): string {
  const key = `${prefix}.${value}`;
  return hasKey(key) ? t(key as MessageKey) : value;
}

export function peripheralLabel(id: string): string {
  return pickName((PERIPHERALS as Record<string, { zh: string; en: string }>)[id], id);
}

export function typeLabel(type: string): string {
  return pickName((TERMINAL_TYPES as Record<string, { name: { zh: string; en: string } }>)[type]?.name, type);
}
