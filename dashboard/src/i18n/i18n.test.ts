import { describe, expect, it } from 'vitest';
import { en } from './en.ts';
import { zh } from './zh.ts';
import { COMMAND_NAMES, EVENT_KINDS } from '@kiosk-fleet/protocol';
import { detectLanguage, format, hasKey } from './index.ts';

const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe('dictionaries', () => {
  it('have exactly the same keys in zh-CN and English', () => {
    const enKeys = Object.keys(en).sort();
    const zhKeys = Object.keys(zh).sort();
    expect(zhKeys.filter((k) => !enKeys.includes(k))).toEqual([]);
    expect(enKeys.filter((k) => !zhKeys.includes(k))).toEqual([]);
  });

  it('have no empty message and the same placeholders in both languages', () => {
    for (const [key, text] of Object.entries(en)) {
      const other = (zh as Record<string, string>)[key] ?? '';
      expect(text.trim(), key).not.toBe('');
      expect(other.trim(), key).not.toBe('');
      expect(placeholders(other), key).toEqual(placeholders(text));
    }
  });
});

describe('coverage of the protocol', () => {
  it('names every event kind the protocol defines, in both languages', () => {
    expect(EVENT_KINDS.filter((k) => !hasKey(`event.${k}`))).toEqual([]);
  });

  it('names every command and every command status', () => {
    expect(COMMAND_NAMES.filter((c) => !hasKey(`command.name.${c}`))).toEqual([]);
    expect(['pending', 'sent', 'ok', 'error', 'expired'].filter((s) => !hasKey(`command.status.${s}`))).toEqual([]);
  });
});

describe('language', () => {
  it('follows the browser: any zh-* gives Chinese, en-* English, a stored choice wins', () => {
    expect(detectLanguage(null, ['zh-TW', 'en'])).toBe('zh-CN');
    expect(detectLanguage(null, ['en-GB', 'zh-CN'])).toBe('en');
    expect(detectLanguage('en', ['zh-CN'])).toBe('en');
    expect(detectLanguage(null, ['fr-FR'])).toBe('zh-CN');
  });

  it('fills placeholders and leaves unknown ones visible', () => {
    expect(format('{n} of {total}', { n: 3, total: 5 })).toBe('3 of 5');
    expect(format('{n} of {total}', { n: 3 })).toBe('3 of {total}');
  });
});
