import { describe, expect, it } from 'vitest';
import { en } from './en.ts';
import { zh } from './zh.ts';
import { COMMAND_NAMES, EVENT_KINDS, TEXTS, renderText } from '@kiosk-fleet/protocol';
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

describe('hub sentences (protocol TEXTS, rendered by hub-text.ts)', () => {
  it('every code has both templates, the same placeholders in each, and each placeholder declared with its kind', () => {
    for (const [code, spec] of Object.entries(TEXTS)) {
      expect(spec.en.trim(), code).not.toBe('');
      expect(spec.zh.trim(), code).not.toBe('');
      expect(placeholders(spec.zh), code).toEqual(placeholders(spec.en));
      expect(placeholders(spec.en), code).toEqual(Object.keys(spec.params).sort());
    }
  });

  it('Chinese templates are Chinese and English ones carry no Chinese (an operator’s own note aside)', () => {
    for (const [code, spec] of Object.entries(TEXTS)) {
      expect(spec.en, code).not.toMatch(/[\u4e00-\u9fff]/);
      if (spec.zh.replace(/\{\w+\}/g, '').trim() === '') continue;
      expect(spec.zh, code).toMatch(/[\u4e00-\u9fff]/);
      expect(spec.zh.replace(/\{\w+\}/g, ''), code).not.toMatch(/[a-z]{2,}/i);
    }
  });

  it('names in closed sets (presence, wave names) exist in both languages', () => {
    for (const [code, spec] of Object.entries(TEXTS)) {
      for (const kind of Object.values(spec.params as Record<string, unknown>)) {
        if (typeof kind !== 'object' || kind === null) continue;
        for (const [value, names] of Object.entries(kind as Record<string, { zh: string; en: string }>)) {
          expect(names.zh, `${code} ${value}`).toMatch(/[\u4e00-\u9fff]/);
          expect(names.en, `${code} ${value}`).not.toBe('');
        }
      }
    }
  });

  it('an unknown code (a newer hub) renders as nothing, so the page shows the English text it came with', () => {
    expect(renderText({ code: 'alert.from-the-future', params: {} }, 'zh')).toBeNull();
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
